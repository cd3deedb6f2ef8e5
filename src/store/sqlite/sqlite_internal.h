// Internal to the SQLite store (src/store/sqlite): the statement wrapper and
// error mapping shared by the per-interface files. Not part of the public API.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "build/records.h"
#include "inventory/store.h"
#include "queue/job.h"
#include "rollout/journal.h"
#include "rollout/lock.h"

namespace sp::sqlite_internal {

// A prepared statement with positional binding; finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  // Borrows a cached statement: reset (not finalized) when done.
  Stmt(sqlite3* db, sqlite3_stmt* cached) : db_(db), st_(cached), owned_(false) { rc_ = cached ? SQLITE_OK : SQLITE_ERROR; }
  ~Stmt() {
    if (owned_) {
      sqlite3_finalize(st_);
    } else if (st_) {
      sqlite3_reset(st_);
      sqlite3_clear_bindings(st_);
    }
  }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(st_); }
  std::string Text(int col) {
    auto p = sqlite3_column_text(st_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st_, col)))
             : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(st_, col); }
  std::string Error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  bool owned_ = true;
  int rc_;
};

inline Error DbError(sqlite3* db, const std::string& what) {
  int code = sqlite3_errcode(db);
  ErrorCode ec = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? ErrorCode::kUnavailable : ErrorCode::kInternal;
  return Error{ec, "store: " + what + ": " + sqlite3_errmsg(db)};
}

// A labels column ({"key": "value", ...}); anything else reads as none.
inline std::map<std::string, std::string> LabelsFrom(const std::string& text) {
  std::map<std::string, std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  return out;
}

inline Status Done(Stmt& st, sqlite3* db, const char* what) {
  if (!st.ok()) return Err(DbError(db, what));
  int rc = st.Step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Err(DbError(db, what));
  return Ok();
}

}  // namespace sp::sqlite_internal
