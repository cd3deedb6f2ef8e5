#include "store/sqlite/sqlite_backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <utility>

namespace sp {

namespace {

struct Db {
  sqlite3* db = nullptr;
  ~Db() {
    if (db) sqlite3_close(db);
  }
};

Status SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    return Err(ErrorCode::kUnavailable, "backup: cannot sync " + path);
  }
  ::close(fd);
  return Ok();
}

}  // namespace

Result<BackupResult> BackupStore(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!std::filesystem::exists(from, ec)) return Err(ErrorCode::kNotFound, "backup: no database at " + from);
  if (std::filesystem::exists(to, ec)) {
    return Err(ErrorCode::kConflict, "backup: " + to + " exists (a backup never overwrites a file)");
  }
  const std::string partial = to + ".partial";
  std::filesystem::remove(partial, ec);
  Db src, dst;
  if (sqlite3_open_v2(from.c_str(), &src.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return Err(ErrorCode::kUnavailable, "backup: cannot open " + from + ": " + sqlite3_errmsg(src.db));
  }
  sqlite3_busy_timeout(src.db, 5000);
  // Created private: the database holds token hashes and credentials' bindings.
  const mode_t old_mask = ::umask(077);
  const int opened = sqlite3_open_v2(partial.c_str(), &dst.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  ::umask(old_mask);
  if (opened != SQLITE_OK) return Err(ErrorCode::kUnavailable, "backup: cannot create " + partial);
  // One step copies every page from one read snapshot: never restarted by the
  // server's writes (which a step-by-step copy would be, for ever on a busy server).
  sqlite3_backup* b = sqlite3_backup_init(dst.db, "main", src.db, "main");
  if (!b) return Err(ErrorCode::kUnavailable, std::string("backup: ") + sqlite3_errmsg(dst.db));
  int rc = SQLITE_OK;
  for (int tries = 0; (rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED; ++tries) {
    if (tries == 100) break;
    sqlite3_sleep(50);
  }
  BackupResult out;
  out.pages = sqlite3_backup_pagecount(b);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    std::filesystem::remove(partial, ec);
    return Err(ErrorCode::kUnavailable, "backup: copying " + from + ": " + sqlite3_errstr(rc));
  }
  sqlite3_stmt* check = nullptr;
  std::string verdict = "no answer";
  if (sqlite3_prepare_v2(dst.db, "PRAGMA integrity_check", -1, &check, nullptr) == SQLITE_OK &&
      sqlite3_step(check) == SQLITE_ROW) {
    verdict = reinterpret_cast<const char*>(sqlite3_column_text(check, 0));
  }
  sqlite3_finalize(check);
  sqlite3_close(std::exchange(dst.db, nullptr));
  if (verdict != "ok") {
    std::filesystem::remove(partial, ec);
    return Err(ErrorCode::kInternal, "backup: the copy of " + from + " fails its integrity check: " + verdict);
  }
  SP_TRY(SyncFile(partial));
  std::filesystem::rename(partial, to, ec);
  if (ec) return Err(ErrorCode::kUnavailable, "backup: cannot rename " + partial + " to " + to + ": " + ec.message());
  const std::string dir = std::filesystem::path(to).parent_path().string();
  (void)SyncFile(dir.empty() ? "." : dir);
  out.bytes = static_cast<int64_t>(std::filesystem::file_size(to, ec));
  return out;
}

}  // namespace sp
