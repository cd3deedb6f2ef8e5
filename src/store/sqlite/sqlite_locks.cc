// SqliteStore: the LockStore methods (lease locks).
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <string>

#include "store/sqlite/sqlite_internal.h"

namespace sp {

using sqlite_internal::DbError;
using sqlite_internal::Done;
using sqlite_internal::Stmt;

namespace {

Lease ReadLease(Stmt& st) {
  Lease l;
  l.key = st.Text(0);
  l.holder = st.Text(1);
  l.token = st.Text(2);
  l.reason = st.Text(3);
  l.acquired_ms = st.Int(4);
  l.expires_ms = st.Int(5);
  l.pid = st.Int(6);
  l.machine = st.Text(7);
  return l;
}

constexpr const char* kLeaseCols = "key, holder, token, reason, acquired_ms, expires_ms, pid, machine";

}  // namespace

Result<Lease> SqliteStore::Acquire(const Lease& wanted, int64_t now_ms, int64_t ttl_ms) {
  std::lock_guard l(mu_);
  // One statement: insert, or take over only an expired lease (compare-and-set on expiry).
  Stmt st(db_,
          "INSERT INTO locks(key, holder, token, reason, acquired_ms, expires_ms, pid, machine) "
          "VALUES(?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT(key) DO UPDATE SET holder=excluded.holder, "
          "token=excluded.token, reason=excluded.reason, acquired_ms=excluded.acquired_ms, "
          "expires_ms=excluded.expires_ms, pid=excluded.pid, machine=excluded.machine "
          "WHERE locks.expires_ms <= ?5 OR locks.token = ?3");
  Lease got = wanted;
  got.acquired_ms = now_ms;
  got.expires_ms = now_ms + ttl_ms;
  st.Bind(1, got.key).Bind(2, got.holder).Bind(3, got.token).Bind(4, got.reason).Bind(5, got.acquired_ms);
  st.Bind(6, got.expires_ms).Bind(7, got.pid).Bind(8, got.machine);
  SP_TRY(Done(st, db_, "acquire lock"));
  if (sqlite3_changes(db_) == 1) return got;
  Stmt cur(db_, (std::string("SELECT ") + kLeaseCols + " FROM locks WHERE key=?").c_str());
  cur.Bind(1, wanted.key);
  if (cur.Step() != SQLITE_ROW) return Err(DbError(db_, "read lock"));
  Lease held = ReadLease(cur);
  return Err(ErrorCode::kConflict, "lock " + held.key + " is held by " + held.holder + " (" + held.reason +
                                       "), expires in " + std::to_string((held.expires_ms - now_ms + 999) / 1000) +
                                       "s");
}

Status SqliteStore::Renew(const std::string& key, const std::string& token, int64_t now_ms, int64_t ttl_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE locks SET expires_ms=? WHERE key=? AND token=?"));
  st.Bind(1, now_ms + ttl_ms).Bind(2, key).Bind(3, token);
  SP_TRY(Done(st, db_, "renew lock"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kConflict, "lock " + key + " is no longer ours");
  return Ok();
}

Status SqliteStore::Release(const std::string& key, const std::string& token) {
  std::lock_guard l(mu_);
  Stmt st(db_, "DELETE FROM locks WHERE key=? AND token=?");
  st.Bind(1, key).Bind(2, token);
  return Done(st, db_, "release lock");
}

Result<std::optional<Lease>> SqliteStore::Get(const std::string& key) {
  // Read before every action of a rollout (ScopeLease): prepared once.
  static const std::string sql = std::string("SELECT ") + kLeaseCols + " FROM locks WHERE key=?";
  std::lock_guard l(mu_);
  Stmt st(db_, Cached(sql.c_str()));
  st.Bind(1, key);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return std::optional<Lease>(ReadLease(st));
  if (rc == SQLITE_DONE) return std::optional<Lease>();
  return Err(DbError(db_, "get lock"));
}

Result<std::vector<Lease>> SqliteStore::List() {
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kLeaseCols + " FROM locks ORDER BY key").c_str());
  std::vector<Lease> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadLease(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list locks"));
  return out;
}

Status SqliteStore::ForceRelease(const std::string& key) {
  std::lock_guard l(mu_);
  Stmt st(db_, "DELETE FROM locks WHERE key=?");
  st.Bind(1, key);
  return Done(st, db_, "release lock");
}

}  // namespace sp
