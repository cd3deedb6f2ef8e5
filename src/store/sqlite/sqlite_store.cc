#include "store/sqlite/sqlite_store.h"

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace sp {

namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS rollouts (
  id TEXT PRIMARY KEY,
  stack TEXT NOT NULL, release TEXT NOT NULL, deployment TEXT NOT NULL,
  kind TEXT NOT NULL, status TEXT NOT NULL, plan TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS rollouts_scope ON rollouts(stack, release, deployment, created_ms);
CREATE TABLE IF NOT EXISTS steps (
  seq INTEGER PRIMARY KEY,
  rollout_id TEXT NOT NULL, host TEXT NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL,
  ts_ms INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS steps_rollout ON steps(rollout_id, seq);
CREATE TABLE IF NOT EXISTS rollout_hosts (
  rollout_id TEXT NOT NULL, host TEXT NOT NULL, state TEXT NOT NULL, last_step TEXT NOT NULL,
  out_of_rotation_ms INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (rollout_id, host));
CREATE TABLE IF NOT EXISTS locks (
  key TEXT PRIMARY KEY, holder TEXT NOT NULL, token TEXT NOT NULL, reason TEXT NOT NULL,
  acquired_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, pid INTEGER NOT NULL, machine TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inventory_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL);
INSERT OR IGNORE INTO inventory_revision(id, revision) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS inventory_stacks (
  name TEXT PRIMARY KEY, doc TEXT NOT NULL, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inventory_claims (
  stack TEXT NOT NULL, deployment TEXT NOT NULL, template TEXT NOT NULL, user TEXT NOT NULL,
  host TEXT NOT NULL, claimed_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
  PRIMARY KEY (stack, deployment));
CREATE UNIQUE INDEX IF NOT EXISTS inventory_claims_host ON inventory_claims(stack, template, host);
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL, payload TEXT NOT NULL, labels TEXT NOT NULL, priority INTEGER NOT NULL,
  idem TEXT, max_attempts INTEGER NOT NULL, backoff_ms INTEGER NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',
  epoch INTEGER NOT NULL DEFAULT 0, lease_expires_ms INTEGER NOT NULL DEFAULT 0,
  not_before_ms INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(idem) WHERE idem IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_claimable ON jobs(state, priority DESC, id);
CREATE TABLE IF NOT EXISTS agent_tokens (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (name TEXT PRIMARY KEY, labels TEXT NOT NULL, last_seen_ms INTEGER NOT NULL,
  current_job INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS projects (name TEXT PRIMARY KEY, git_url TEXT NOT NULL, webhook_secret_ref TEXT NOT NULL,
  created_ms INTEGER NOT NULL, credential_ref TEXT NOT NULL DEFAULT '', known_hosts TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS builds (
  id INTEGER PRIMARY KEY, project TEXT NOT NULL, branch TEXT NOT NULL, sha TEXT NOT NULL, trigger TEXT NOT NULL,
  status TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
  artifact TEXT NOT NULL DEFAULT '', deployment TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL DEFAULT 0, finished_ms INTEGER NOT NULL DEFAULT 0,
  UNIQUE (project, branch, sha));
CREATE INDEX IF NOT EXISTS builds_queue ON builds(status, id);
CREATE TABLE IF NOT EXISTS build_steps (build_id INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
  kind TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER NOT NULL, started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL, PRIMARY KEY (build_id, idx));
CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
)sql";

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

Error DbError(sqlite3* db, const std::string& what) {
  int code = sqlite3_errcode(db);
  ErrorCode ec = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? ErrorCode::kUnavailable : ErrorCode::kInternal;
  return Error{ec, "store: " + what + ": " + sqlite3_errmsg(db)};
}

Status Done(Stmt& st, sqlite3* db, const char* what) {
  if (!st.ok()) return Err(DbError(db, what));
  int rc = st.Step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Err(DbError(db, what));
  return Ok();
}

RolloutRecord ReadRollout(Stmt& st) {
  // Column order: id, stack, release, deployment, kind, status, plan, error, created_ms, updated_ms
  RolloutRecord r;
  r.id = st.Text(0);
  r.stack = st.Text(1);
  r.release = st.Text(2);
  r.deployment = st.Text(3);
  r.kind = st.Text(4);
  r.status = ParseRolloutStatus(st.Text(5)).value_or(RolloutStatus::kFailed);
  r.plan_json = st.Text(6);
  r.error = st.Text(7);
  r.created_ms = st.Int(8);
  r.updated_ms = st.Int(9);
  return r;
}

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

constexpr const char* kRolloutCols =
    "id, stack, release, deployment, kind, status, plan, error, created_ms, updated_ms";
constexpr const char* kLeaseCols = "key, holder, token, reason, acquired_ms, expires_ms, pid, machine";

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path, SqliteOptions opts) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Err(ErrorCode::kUnavailable, "store: cannot open " + path + ": " + msg);
  }
  std::unique_ptr<SqliteStore> s(new SqliteStore(db));
  sqlite3_busy_timeout(db, opts.busy_timeout_ms);
  std::string pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=" + opts.synchronous + "; PRAGMA foreign_keys=ON;";
  SP_TRY(s->Exec(pragmas.c_str()));
  SP_TRY(s->Exec(kSchema));
  // Columns added since a table was first created (older stores).
  for (const auto& [table, column, decl] : std::vector<std::array<const char*, 3>>{
           {"projects", "credential_ref", "TEXT NOT NULL DEFAULT ''"}, {"projects", "known_hosts", "TEXT NOT NULL DEFAULT ''"}}) {
    bool present = false;
    {
      Stmt info(db, (std::string("PRAGMA table_info(") + table + ")").c_str());
      while (info.Step() == SQLITE_ROW) present = present || info.Text(1) == column;
    }
    if (!present) SP_TRY(s->Exec((std::string("ALTER TABLE ") + table + " ADD COLUMN " + column + " " + decl).c_str()));
  }
  return s;
}

SqliteStore::~SqliteStore() {
  for (auto& [sql, st] : cache_) sqlite3_finalize(st);
  sqlite3_close(db_);
}

sqlite3_stmt* SqliteStore::Cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) return nullptr;
  cache_.emplace(sql, st);
  return st;
}

Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Err(ErrorCode::kInternal, "store: " + msg);
  }
  return Ok();
}

std::string SqliteStore::Pragmas() {
  std::lock_guard l(mu_);
  std::string out;
  for (const char* p : {"journal_mode", "synchronous", "page_size", "wal_autocheckpoint"}) {
    Stmt st(db_, (std::string("PRAGMA ") + p).c_str());
    if (st.ok() && st.Step() == SQLITE_ROW) out += std::string(out.empty() ? "" : " ") + p + "=" + st.Text(0);
  }
  return out;
}

Status SqliteStore::CreateRollout(const RolloutRecord& r) {
  std::lock_guard l(mu_);
  Stmt st(db_,
          "INSERT INTO rollouts(id, stack, release, deployment, kind, status, plan, error, created_ms, updated_ms) "
          "VALUES(?,?,?,?,?,?,?,?,?,?)");
  st.Bind(1, r.id).Bind(2, r.stack).Bind(3, r.release).Bind(4, r.deployment).Bind(5, r.kind);
  st.Bind(6, std::string(RolloutStatusName(r.status))).Bind(7, r.plan_json).Bind(8, r.error);
  st.Bind(9, r.created_ms).Bind(10, r.updated_ms ? r.updated_ms : r.created_ms);
  return Done(st, db_, "create rollout");
}

Status SqliteStore::FinishRollout(const std::string& id, RolloutStatus status, const std::string& error) {
  std::lock_guard l(mu_);
  Stmt st(db_,
          "UPDATE rollouts SET status=?, error=?, updated_ms=CAST(strftime('%s','now') AS INTEGER)*1000 WHERE id=?");
  st.Bind(1, std::string(RolloutStatusName(status))).Bind(2, error).Bind(3, id);
  SP_TRY(Done(st, db_, "finish rollout"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kNotFound, "rollout " + id + " not found");
  return Ok();
}

Result<RolloutRecord> SqliteStore::GetRollout(const std::string& id) {
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kRolloutCols + " FROM rollouts WHERE id=?").c_str());
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return ReadRollout(st);
  if (rc == SQLITE_DONE) return Err(ErrorCode::kNotFound, "rollout " + id + " not found");
  return Err(DbError(db_, "get rollout"));
}

Result<std::optional<RolloutRecord>> SqliteStore::Latest(const std::string& stack, const std::string& release,
                                                         const std::string& deployment,
                                                         std::optional<RolloutStatus> status) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kRolloutCols +
                    " FROM rollouts WHERE stack=? AND release=? AND deployment=? AND (?='' OR status=?)"
                    " ORDER BY created_ms DESC, rowid DESC LIMIT 1";
  Stmt st(db_, sql.c_str());
  std::string s = status ? std::string(RolloutStatusName(*status)) : "";
  st.Bind(1, stack).Bind(2, release).Bind(3, deployment).Bind(4, s).Bind(5, s);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return std::optional<RolloutRecord>(ReadRollout(st));
  if (rc == SQLITE_DONE) return std::optional<RolloutRecord>();
  return Err(DbError(db_, "latest rollout"));
}

Result<std::vector<RolloutRecord>> SqliteStore::ListRollouts(int limit) {
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kRolloutCols + " FROM rollouts ORDER BY created_ms DESC, rowid DESC LIMIT ?")
                   .c_str());
  st.Bind(1, static_cast<int64_t>(limit));
  std::vector<RolloutRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadRollout(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list rollouts"));
  return out;
}

Status SqliteStore::AppendStep(const StepRecord& s) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("INSERT INTO steps(rollout_id, host, step, phase, ts_ms, detail) VALUES(?,?,?,?,?,?)"));
  st.Bind(1, s.rollout_id).Bind(2, s.host).Bind(3, s.step).Bind(4, s.phase).Bind(5, s.ts_ms).Bind(6, s.detail);
  return Done(st, db_, "append step");
}

Result<std::vector<StepRecord>> SqliteStore::Steps(const std::string& rollout_id) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT seq, rollout_id, host, step, phase, ts_ms, detail FROM steps WHERE rollout_id=? ORDER BY seq");
  st.Bind(1, rollout_id);
  std::vector<StepRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(StepRecord{st.Int(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), st.Int(5), st.Text(6)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read steps"));
  return out;
}

Status SqliteStore::PutHost(const HostRecord& h) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("INSERT INTO rollout_hosts(rollout_id, host, state, last_step, out_of_rotation_ms, detail) "
                      "VALUES(?,?,?,?,?,?) ON CONFLICT(rollout_id, host) DO UPDATE SET state=excluded.state, "
                      "last_step=excluded.last_step, out_of_rotation_ms=excluded.out_of_rotation_ms, "
                      "detail=excluded.detail"));
  st.Bind(1, h.rollout_id).Bind(2, h.host).Bind(3, h.state).Bind(4, h.last_step).Bind(5, h.out_of_rotation_ms);
  st.Bind(6, h.detail);
  return Done(st, db_, "put host");
}

Result<std::vector<HostRecord>> SqliteStore::Hosts(const std::string& rollout_id) {
  std::lock_guard l(mu_);
  Stmt st(db_,
          "SELECT rollout_id, host, state, last_step, out_of_rotation_ms, detail FROM rollout_hosts "
          "WHERE rollout_id=? ORDER BY rowid");
  st.Bind(1, rollout_id);
  std::vector<HostRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(HostRecord{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Int(4), st.Text(5)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read hosts"));
  return out;
}

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
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kLeaseCols + " FROM locks WHERE key=?").c_str());
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

namespace sp {

// ---------------------------------------------------------------- inventory

class SqliteStore::Txn final : public InventoryTxn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {}

  Result<std::vector<StackRecord>> Stacks() override {
    Stmt st(db_, "SELECT name, doc, revision FROM inventory_stacks ORDER BY name");
    if (!st.ok()) return Err(DbError(db_, "list stacks"));
    std::vector<StackRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(StackRecord{st.Text(0), st.Text(1), st.Int(2)});
    if (rc != SQLITE_DONE) return Err(DbError(db_, "list stacks"));
    return out;
  }
  Result<std::optional<StackRecord>> Stack(const std::string& name) override {
    Stmt st(db_, "SELECT name, doc, revision FROM inventory_stacks WHERE name=?");
    st.Bind(1, name);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return std::optional<StackRecord>(StackRecord{st.Text(0), st.Text(1), st.Int(2)});
    if (rc != SQLITE_DONE) return Err(DbError(db_, "read stack"));
    return std::optional<StackRecord>();
  }
  Status PutStack(const std::string& name, const std::string& doc) override {
    SP_ASSIGN_OR_RETURN(int64_t rev, Bump());
    Stmt st(db_, "INSERT INTO inventory_stacks(name, doc, revision) VALUES(?,?,?) "
                 "ON CONFLICT(name) DO UPDATE SET doc=excluded.doc, revision=excluded.revision");
    st.Bind(1, name).Bind(2, doc).Bind(3, rev);
    return Done(st, db_, "write stack");
  }
  Status DeleteStack(const std::string& name) override {
    SP_TRY(Bump());
    Stmt st(db_, "DELETE FROM inventory_stacks WHERE name=?");
    st.Bind(1, name);
    SP_TRY(Done(st, db_, "delete stack"));
    Stmt claims(db_, "DELETE FROM inventory_claims WHERE stack=?");
    claims.Bind(1, name);
    return Done(claims, db_, "delete claims");
  }
  Result<std::vector<ClaimRecord>> Claims() override {
    Stmt st(db_, "SELECT stack, template, user, deployment, host, claimed_ms, expires_ms FROM inventory_claims "
                 "ORDER BY stack, deployment");
    if (!st.ok()) return Err(DbError(db_, "list claims"));
    std::vector<ClaimRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back(ClaimRecord{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), st.Int(5), st.Int(6)});
    }
    if (rc != SQLITE_DONE) return Err(DbError(db_, "list claims"));
    return out;
  }
  Status PutClaim(const ClaimRecord& c) override {
    SP_TRY(Bump());
    Stmt st(db_, "INSERT INTO inventory_claims(stack, deployment, template, user, host, claimed_ms, expires_ms) "
                 "VALUES(?,?,?,?,?,?,?) ON CONFLICT(stack, deployment) DO UPDATE SET template=excluded.template, "
                 "user=excluded.user, host=excluded.host, claimed_ms=excluded.claimed_ms, expires_ms=excluded.expires_ms");
    st.Bind(1, c.stack).Bind(2, c.deployment).Bind(3, c.template_name).Bind(4, c.user).Bind(5, c.host);
    st.Bind(6, c.claimed_ms).Bind(7, c.expires_ms);
    return Done(st, db_, "write claim");
  }
  Status DeleteClaim(const std::string& stack, const std::string& deployment) override {
    SP_TRY(Bump());
    Stmt st(db_, "DELETE FROM inventory_claims WHERE stack=? AND deployment=?");
    st.Bind(1, stack).Bind(2, deployment);
    return Done(st, db_, "delete claim");
  }

 private:
  Result<int64_t> Bump() {
    Stmt st(db_, "UPDATE inventory_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision");
    if (!st.ok() || st.Step() != SQLITE_ROW) return Err(DbError(db_, "bump inventory revision"));
    return st.Int(0);
  }
  sqlite3* db_;
};

Result<int64_t> SqliteStore::InventoryRevision() {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("SELECT revision FROM inventory_revision WHERE id = 1"));
  if (!st.ok() || st.Step() != SQLITE_ROW) return Err(DbError(db_, "read inventory revision"));
  return st.Int(0);
}

Result<std::vector<StackRecord>> SqliteStore::InventoryStacks() {
  std::lock_guard l(mu_);
  return Txn(db_).Stacks();
}

Result<std::vector<ClaimRecord>> SqliteStore::InventoryClaims() {
  std::lock_guard l(mu_);
  return Txn(db_).Claims();
}

Status SqliteStore::InventoryWrite(const std::function<Status(InventoryTxn&)>& fn) {
  std::lock_guard l(mu_);
  // IMMEDIATE (in Transaction): the write lock is taken now, so a
  // read-modify-write of another process cannot slip in between our read and
  // our write.
  Txn txn(db_);
  return Transaction([&] { return fn(txn); });
}

}  // namespace sp

// ---------------------------------------------------------------- queue

namespace sp {
namespace {

constexpr const char* kJobCols =
    "id, kind, payload, labels, priority, COALESCE(idem, ''), max_attempts, backoff_ms, state, attempts, owner, epoch, "
    "lease_expires_ms, not_before_ms, result, error, created_ms, updated_ms";

std::map<std::string, std::string> LabelsFrom(const std::string& text) {
  std::map<std::string, std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  return out;
}

Job ReadJobRow(Stmt& st) {
  Job j;
  j.id = st.Int(0);
  j.spec.kind = st.Text(1);
  j.spec.payload = st.Text(2);
  j.spec.labels = LabelsFrom(st.Text(3));
  j.spec.priority = static_cast<int>(st.Int(4));
  j.spec.idempotency_key = st.Text(5);
  j.spec.max_attempts = static_cast<int>(st.Int(6));
  j.spec.backoff_ms = st.Int(7);
  j.state = ParseJobState(st.Text(8)).value_or(JobState::kDead);
  j.attempts = static_cast<int>(st.Int(9));
  j.lease_owner = st.Text(10);
  j.epoch = st.Int(11);
  j.lease_expires_ms = st.Int(12);
  j.not_before_ms = st.Int(13);
  j.result = st.Text(14);
  j.error = st.Text(15);
  j.created_ms = st.Int(16);
  j.updated_ms = st.Int(17);
  return j;
}

bool Satisfies(const std::map<std::string, std::string>& have, const std::map<std::string, std::string>& need) {
  for (const auto& [k, v] : need) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

int64_t BackoffMs(int64_t base, int attempts) {
  int64_t d = std::max<int64_t>(0, base);
  for (int i = 1; i < attempts && d < 300'000; ++i) d *= 2;
  return std::min<int64_t>(d, 300'000);
}

}  // namespace

Status SqliteStore::Transaction(const std::function<Status()>& fn) {
  SP_TRY(Exec("BEGIN IMMEDIATE"));
  Status st = Ok();
  try {
    st = fn();
  } catch (...) {
    (void)Exec("ROLLBACK");
    throw;
  }
  if (!st) {
    (void)Exec("ROLLBACK");
    return st;
  }
  if (Status c = Exec("COMMIT"); !c) {
    (void)Exec("ROLLBACK");
    return c;
  }
  return Ok();
}

Result<Job> SqliteStore::ReadJob(int64_t id) {
  static const std::string sql = std::string("SELECT ") + kJobCols + " FROM jobs WHERE id=?";
  Stmt st(db_, Cached(sql.c_str()));
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return ReadJobRow(st);
  if (rc == SQLITE_DONE) return Err(ErrorCode::kNotFound, "job " + std::to_string(id) + " not found");
  return Err(DbError(db_, "read job"));
}

Result<Job> SqliteStore::Enqueue(const JobSpec& spec, int64_t now_ms) {
  std::lock_guard l(mu_);
  Job out;
  SP_TRY(Transaction([&]() -> Status {
    if (!spec.idempotency_key.empty()) {
      Stmt find(db_, Cached("SELECT id FROM jobs WHERE idem=?"));
      find.Bind(1, spec.idempotency_key);
      int rc = find.Step();
      if (rc == SQLITE_ROW) {
        SP_ASSIGN_OR_RETURN(out, ReadJob(find.Int(0)));
        return Ok();
      }
      if (rc != SQLITE_DONE) return Err(DbError(db_, "find job"));
    }
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : spec.labels) labels[k] = v;
    Stmt ins(db_, Cached("INSERT INTO jobs(kind, payload, labels, priority, idem, max_attempts, backoff_ms, state, "
                         "not_before_ms, created_ms, updated_ms) VALUES(?,?,?,?,NULLIF(?,''),?,?,'queued',?,?,?)"));
    ins.Bind(1, spec.kind).Bind(2, spec.payload).Bind(3, labels.dump()).Bind(4, int64_t{spec.priority});
    ins.Bind(5, spec.idempotency_key).Bind(6, int64_t{std::max(1, spec.max_attempts)}).Bind(7, spec.backoff_ms);
    ins.Bind(8, now_ms).Bind(9, now_ms).Bind(10, now_ms);
    SP_TRY(Done(ins, db_, "enqueue job"));
    SP_ASSIGN_OR_RETURN(out, ReadJob(sqlite3_last_insert_rowid(db_)));
    return Ok();
  }));
  return out;
}

Result<std::optional<Job>> SqliteStore::Claim(const std::string& owner,
                                              const std::map<std::string, std::string>& worker_labels,
                                              int64_t now_ms, int64_t lease_ms, int64_t only_job) {
  std::lock_guard l(mu_);
  std::optional<Job> out;
  SP_TRY(Transaction([&]() -> Status {
    // Best first (priority, then age), labels checked here (few distinct
    // label sets in practice). Two index range scans rather than one OR, which
    // SQLite would answer by scanning every job ever run.
    struct Candidate {
      int64_t priority, id;
      std::string labels;
      bool out_of_attempts;  // An expired lease of a job with no attempt left.
    };
    std::vector<Candidate> candidates;
    const std::initializer_list<const char*> any = {
        "SELECT priority, id, labels, 0 FROM jobs WHERE state='queued' AND not_before_ms<=? AND ?=0 "
        "ORDER BY priority DESC, id LIMIT 256",
        "SELECT priority, id, labels, attempts>=max_attempts FROM jobs WHERE state='leased' AND lease_expires_ms<=? "
        "AND ?=0 ORDER BY priority DESC, id LIMIT 256"};
    const std::initializer_list<const char*> one = {
        "SELECT priority, id, labels, 0 FROM jobs WHERE state='queued' AND not_before_ms<=? AND id=?",
        "SELECT priority, id, labels, attempts>=max_attempts FROM jobs WHERE state='leased' AND lease_expires_ms<=? "
        "AND id=?"};
    for (const char* sql : only_job ? one : any) {
      Stmt pick(db_, Cached(sql));
      pick.Bind(1, now_ms).Bind(2, only_job);
      int rc;
      while ((rc = pick.Step()) == SQLITE_ROW) {
        candidates.push_back({pick.Int(0), pick.Int(1), pick.Text(2), pick.Int(3) != 0});
      }
      if (rc != SQLITE_DONE) return Err(DbError(db_, "pick job"));
    }
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
    });
    int64_t chosen = 0;
    for (const auto& c : candidates) {
      if (c.out_of_attempts) {  // Dead-lettered, not reclaimed.
        Stmt dead(db_, Cached("UPDATE jobs SET state='dead', error='lease expired ' || attempts || ' time(s); last "
                              "owner ' || owner, owner='', updated_ms=? WHERE id=?"));
        dead.Bind(1, now_ms).Bind(2, c.id);
        SP_TRY(Done(dead, db_, "dead-letter job"));
        continue;
      }
      if (Satisfies(worker_labels, LabelsFrom(c.labels))) {
        chosen = c.id;
        break;
      }
    }
    if (!chosen) return Ok();
    Stmt take(db_, Cached("UPDATE jobs SET state='leased', owner=?, epoch=epoch+1, attempts=attempts+1, "
                          "lease_expires_ms=?, updated_ms=? WHERE id=?"));
    take.Bind(1, owner).Bind(2, now_ms + lease_ms).Bind(3, now_ms).Bind(4, chosen);
    SP_TRY(Done(take, db_, "claim job"));
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(chosen));
    out = std::move(j);
    return Ok();
  }));
  return out;
}

Status SqliteStore::Heartbeat(int64_t id, int64_t epoch, const std::string& owner, int64_t now_ms, int64_t lease_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE jobs SET lease_expires_ms=?, updated_ms=? WHERE id=? AND epoch=? AND owner=? AND "
                      "state='leased' AND lease_expires_ms>?"));
  st.Bind(1, now_ms + lease_ms).Bind(2, now_ms).Bind(3, id).Bind(4, epoch).Bind(5, owner).Bind(6, now_ms);
  SP_TRY(Done(st, db_, "heartbeat"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
  return Ok();
}

Status SqliteStore::Complete(int64_t id, int64_t epoch, const std::string& owner, const std::string& result,
                             int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE jobs SET state='succeeded', result=?, updated_ms=? WHERE id=? AND epoch=? AND "
                      "owner=? AND state='leased' AND lease_expires_ms>?"));
  st.Bind(1, result).Bind(2, now_ms).Bind(3, id).Bind(4, epoch).Bind(5, owner).Bind(6, now_ms);
  SP_TRY(Done(st, db_, "complete job"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
  return Ok();
}

Status SqliteStore::Fail(int64_t id, int64_t epoch, const std::string& owner, const std::string& error,
                         int64_t now_ms) {
  std::lock_guard l(mu_);
  return Transaction([&]() -> Status {
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(id));
    if (j.state != JobState::kLeased || j.epoch != epoch || j.lease_owner != owner || j.lease_expires_ms <= now_ms) {
      return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
    }
    const bool dead = j.attempts >= j.spec.max_attempts;
    Stmt st(db_, Cached("UPDATE jobs SET state=?, error=?, owner='', not_before_ms=?, updated_ms=? WHERE id=?"));
    st.Bind(1, std::string(dead ? "dead" : "queued"))
        .Bind(2, dead ? "attempt " + std::to_string(j.attempts) + " of " + std::to_string(j.spec.max_attempts) +
                            " failed: " + error
                      : error);
    st.Bind(3, now_ms + (dead ? 0 : BackoffMs(j.spec.backoff_ms, j.attempts))).Bind(4, now_ms).Bind(5, id);
    return Done(st, db_, "fail job");
  });
}

Result<Job> SqliteStore::GetJob(int64_t id) {
  std::lock_guard l(mu_);
  return ReadJob(id);
}

Result<std::vector<Job>> SqliteStore::ListJobs(int limit) {
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kJobCols + " FROM jobs ORDER BY id DESC LIMIT ?").c_str());
  st.Bind(1, int64_t{limit});
  std::vector<Job> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadJobRow(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list jobs"));
  return out;
}

Status SqliteStore::Cancel(int64_t id, int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, "UPDATE jobs SET state='canceled', updated_ms=? WHERE id=? AND state IN ('queued','leased')");
  st.Bind(1, now_ms).Bind(2, id);
  SP_TRY(Done(st, db_, "cancel job"));
  if (sqlite3_changes(db_) == 0) {
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(id));
    return Err(ErrorCode::kConflict, "job " + std::to_string(id) + " is " + std::string(JobStateName(j.state)));
  }
  return Ok();
}

Status SqliteStore::Retry(int64_t id, int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, "UPDATE jobs SET state='queued', attempts=0, error='', not_before_ms=?, updated_ms=? WHERE id=? AND "
               "state IN ('dead','canceled')");
  st.Bind(1, now_ms).Bind(2, now_ms).Bind(3, id);
  SP_TRY(Done(st, db_, "retry job"));
  if (sqlite3_changes(db_) == 0) {
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(id));
    return Err(ErrorCode::kConflict, "job " + std::to_string(id) + " is " + std::string(JobStateName(j.state)));
  }
  return Ok();
}

Status SqliteStore::PutAgentToken(const std::string& token_sha256, const AgentToken& agent) {
  std::lock_guard l(mu_);
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : agent.labels) labels[k] = v;
  Stmt st(db_, "INSERT INTO agent_tokens(token_sha256, name, labels) VALUES(?,?,?) ON CONFLICT(token_sha256) DO UPDATE "
               "SET name=excluded.name, labels=excluded.labels");
  st.Bind(1, token_sha256).Bind(2, agent.name).Bind(3, labels.dump());
  return Done(st, db_, "write agent token");
}

Result<std::optional<QueueStore::AgentToken>> SqliteStore::AgentTokenFor(const std::string& token_sha256) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("SELECT name, labels FROM agent_tokens WHERE token_sha256=?"));
  st.Bind(1, token_sha256);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return std::optional<AgentToken>(AgentToken{st.Text(0), LabelsFrom(st.Text(1))});
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read agent token"));
  return std::optional<AgentToken>();
}

Status SqliteStore::TouchAgent(const AgentToken& agent, int64_t now_ms, std::optional<int64_t> job) {
  std::lock_guard l(mu_);
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : agent.labels) labels[k] = v;
  Stmt st(db_, Cached("INSERT INTO agents(name, labels, last_seen_ms, current_job) VALUES(?1,?2,?3,COALESCE(?4,0)) "
                      "ON CONFLICT(name) DO UPDATE SET labels=excluded.labels, last_seen_ms=excluded.last_seen_ms, "
                      "current_job=COALESCE(?4, agents.current_job)"));
  st.Bind(1, agent.name).Bind(2, labels.dump()).Bind(3, now_ms);
  if (job) st.Bind(4, *job);  // Unbound: NULL, i.e. keep.
  return Done(st, db_, "record agent");
}

Result<std::vector<QueueStore::AgentSeen>> SqliteStore::Agents() {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT name, labels, last_seen_ms, current_job FROM agents ORDER BY name");
  std::vector<AgentSeen> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(AgentSeen{st.Text(0), LabelsFrom(st.Text(1)), st.Int(2), st.Int(3)});
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list agents"));
  return out;
}

// ---------------------------------------------------------------- builds

namespace {
constexpr const char* kBuildCols =
    "id, project, branch, sha, trigger, status, author, message, artifact, deployment, error, created_ms, started_ms, "
    "finished_ms";
}  // namespace

namespace {
BuildRecord BuildFromRow(Stmt& st) {
  BuildRecord b;
  b.id = st.Int(0);
  b.project = st.Text(1);
  b.branch = st.Text(2);
  b.sha = st.Text(3);
  b.trigger = st.Text(4);
  b.status = ParseBuildStatus(st.Text(5)).value_or(BuildStatus::kFailed);
  b.author = st.Text(6);
  b.message = st.Text(7);
  b.artifact = st.Text(8);
  b.deployment = st.Text(9);
  b.error = st.Text(10);
  b.created_ms = st.Int(11);
  b.started_ms = st.Int(12);
  b.finished_ms = st.Int(13);
  return b;
}
}  // namespace

Status SqliteStore::PutProject(const ProjectRecord& p) {
  std::lock_guard l(mu_);
  Stmt st(db_, "INSERT INTO projects(name, git_url, webhook_secret_ref, created_ms, credential_ref, known_hosts) "
               "VALUES(?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET git_url=excluded.git_url, "
               "webhook_secret_ref=excluded.webhook_secret_ref, credential_ref=excluded.credential_ref, "
               "known_hosts=excluded.known_hosts");
  st.Bind(1, p.name).Bind(2, p.git_url).Bind(3, p.webhook_secret_ref).Bind(4, p.created_ms);
  st.Bind(5, p.credential_ref).Bind(6, p.known_hosts);
  return Done(st, db_, "put project");
}

Result<std::vector<ProjectRecord>> SqliteStore::Projects() {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT name, git_url, webhook_secret_ref, created_ms, credential_ref, known_hosts FROM projects "
               "ORDER BY name");
  std::vector<ProjectRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(ProjectRecord{st.Text(0), st.Text(1), st.Text(2), st.Int(3), st.Text(4), st.Text(5)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list projects"));
  return out;
}

Result<std::optional<ProjectRecord>> SqliteStore::Project(const std::string& name) {
  SP_ASSIGN_OR_RETURN(auto all, Projects());
  for (auto& p : all) {
    if (p.name == name) return std::optional<ProjectRecord>(std::move(p));
  }
  return std::optional<ProjectRecord>();
}

Result<std::optional<BuildRecord>> SqliteStore::CreateBuild(const BuildRecord& b) {
  std::lock_guard l(mu_);
  std::optional<BuildRecord> made;
  SP_TRY(Transaction([&]() -> Status {
    Stmt ins(db_, "INSERT INTO builds(project, branch, sha, trigger, status, created_ms) VALUES(?,?,?,?,'queued',?) "
                  "ON CONFLICT(project, branch, sha) DO NOTHING");
    ins.Bind(1, b.project).Bind(2, b.branch).Bind(3, b.sha).Bind(4, b.trigger).Bind(5, b.created_ms);
    SP_TRY(Done(ins, db_, "create build"));
    if (sqlite3_changes(db_) == 0) return Ok();  // Seen before: one build per commit.
    const int64_t id = sqlite3_last_insert_rowid(db_);
    Stmt sup(db_, "UPDATE builds SET status='superseded', finished_ms=?, error=? WHERE project=? AND branch=? AND "
                  "status='queued' AND id<>?");
    sup.Bind(1, b.created_ms).Bind(2, "superseded by build " + std::to_string(id)).Bind(3, b.project).Bind(4, b.branch).Bind(5, id);
    SP_TRY(Done(sup, db_, "supersede queued builds"));
    BuildRecord r = b;
    r.id = id;
    r.status = BuildStatus::kQueued;
    made = r;
    return Ok();
  }));
  return made;
}

Result<std::optional<BuildRecord>> SqliteStore::StartNextBuild(int64_t now_ms) {
  std::lock_guard l(mu_);
  std::optional<BuildRecord> got;
  SP_TRY(Transaction([&]() -> Status {
    std::string sql = std::string("SELECT ") + kBuildCols + " FROM builds WHERE status='queued' ORDER BY id LIMIT 1";
    Stmt st(db_, sql.c_str());
    int rc = st.Step();
    if (rc == SQLITE_DONE) return Ok();
    if (rc != SQLITE_ROW) return Err(DbError(db_, "next build"));
    BuildRecord b = BuildFromRow(st);
    Stmt up(db_, "UPDATE builds SET status='running', started_ms=? WHERE id=? AND status='queued'");
    up.Bind(1, now_ms).Bind(2, b.id);
    SP_TRY(Done(up, db_, "start build"));
    b.status = BuildStatus::kRunning;
    b.started_ms = now_ms;
    got = b;
    return Ok();
  }));
  return got;
}

Status SqliteStore::UpdateBuild(const BuildRecord& b) {
  std::lock_guard l(mu_);
  Stmt st(db_, "UPDATE builds SET status=?, author=?, message=?, artifact=?, deployment=?, error=?, started_ms=?, "
               "finished_ms=? WHERE id=?");
  st.Bind(1, std::string(BuildStatusName(b.status))).Bind(2, b.author).Bind(3, b.message).Bind(4, b.artifact)
      .Bind(5, b.deployment).Bind(6, b.error).Bind(7, b.started_ms).Bind(8, b.finished_ms).Bind(9, b.id);
  SP_TRY(Done(st, db_, "update build"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kNotFound, "no build " + std::to_string(b.id));
  return Ok();
}

Result<BuildRecord> SqliteStore::GetBuild(int64_t id) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kBuildCols + " FROM builds WHERE id=?";
  Stmt st(db_, sql.c_str());
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return Err(ErrorCode::kNotFound, "no build " + std::to_string(id));
  if (rc != SQLITE_ROW) return Err(DbError(db_, "get build"));
  return BuildFromRow(st);
}

Result<std::vector<BuildRecord>> SqliteStore::ListBuilds(int limit) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kBuildCols + " FROM builds ORDER BY id DESC LIMIT ?";
  Stmt st(db_, sql.c_str());
  st.Bind(1, static_cast<int64_t>(limit));
  std::vector<BuildRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(BuildFromRow(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list builds"));
  return out;
}

Status SqliteStore::PutBuildStep(const BuildStepRecord& s) {
  std::lock_guard l(mu_);
  Stmt st(db_, "INSERT INTO build_steps(build_id, idx, name, kind, status, exit_code, started_ms, finished_ms) "
               "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(build_id, idx) DO UPDATE SET status=excluded.status, "
               "exit_code=excluded.exit_code, started_ms=excluded.started_ms, finished_ms=excluded.finished_ms");
  st.Bind(1, s.build_id).Bind(2, static_cast<int64_t>(s.index)).Bind(3, s.name).Bind(4, s.kind).Bind(5, s.status)
      .Bind(6, static_cast<int64_t>(s.exit_code)).Bind(7, s.started_ms).Bind(8, s.finished_ms);
  return Done(st, db_, "put build step");
}

Result<std::vector<BuildStepRecord>> SqliteStore::BuildSteps(int64_t build_id) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT build_id, idx, name, kind, status, exit_code, started_ms, finished_ms FROM build_steps "
               "WHERE build_id=? ORDER BY idx");
  st.Bind(1, build_id);
  std::vector<BuildStepRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(BuildStepRecord{st.Int(0), static_cast<int>(st.Int(1)), st.Text(2), st.Text(3), st.Text(4),
                                  static_cast<int>(st.Int(5)), st.Int(6), st.Int(7)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "build steps"));
  return out;
}

Result<int> SqliteStore::RecoverInterruptedBuilds(bool requeue, int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, requeue ? "UPDATE builds SET status='queued', started_ms=0, error='interrupted by a server restart; queued again' "
                         "WHERE status='running'"
                       : "UPDATE builds SET status='interrupted', finished_ms=?, error='interrupted by a server restart' "
                         "WHERE status='running'");
  if (!requeue) st.Bind(1, now_ms);
  SP_TRY(Done(st, db_, "recover builds"));
  return sqlite3_changes(db_);
}

Result<bool> SqliteStore::FirstDelivery(const std::string& delivery_id, int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, "INSERT INTO webhook_deliveries(id, seen_ms) VALUES(?,?) ON CONFLICT(id) DO NOTHING");
  st.Bind(1, delivery_id).Bind(2, now_ms);
  SP_TRY(Done(st, db_, "record delivery"));
  return sqlite3_changes(db_) == 1;
}

}  // namespace sp
