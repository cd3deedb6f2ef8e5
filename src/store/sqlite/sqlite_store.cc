// SqliteStore, common part: opening the file, schema and migrations,
// pragmas, Exec, Transaction and the statement cache. The store interfaces
// live in sqlite_journal.cc, sqlite_locks.cc, sqlite_inventory.cc,
// sqlite_queue.cc and sqlite_builds.cc.
#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_internal.h"

namespace sp {

using sqlite_internal::Stmt;

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
CREATE TABLE IF NOT EXISTS credentials (project TEXT NOT NULL, name TEXT NOT NULL, ref TEXT NOT NULL,
  hosts TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (project, name));
CREATE TABLE IF NOT EXISTS build_configs (build_id INTEGER PRIMARY KEY, config TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS builds_artifact ON builds(artifact, id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, scopes TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL, creator TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
  last_used_ms INTEGER NOT NULL DEFAULT 0, revoked_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, who TEXT NOT NULL,
  method TEXT NOT NULL, path TEXT NOT NULL, target TEXT NOT NULL, peer TEXT NOT NULL, status INTEGER NOT NULL,
  result TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
)sql";

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path, SqliteOptions opts) {
  // The state holds tokens' hashes, plans and the audit trail: a new file is
  // private (its WAL and shared-memory files take the same mode).
  if (path != ":memory:" && path.rfind("file:", 0) != 0) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
  }
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
  SP_TRY(s->Migrate(path));
  return s;
}

// The schema's versions, oldest first: version i+1 is kMigrations[i]. A
// store records its version in PRAGMA user_version. Append, never edit.
namespace {
// Version 1: the tables (an older store's missing ones created), and the
// columns added since a table was first created.
Status MigrateTo1(sqlite3* db, const std::function<Status(const char*)>& exec) {
  SP_TRY(exec(kSchema));
  for (const auto& [table, column, decl] : std::vector<std::array<const char*, 3>>{
           {"projects", "credential_ref", "TEXT NOT NULL DEFAULT ''"},
           {"projects", "known_hosts", "TEXT NOT NULL DEFAULT ''"},
           {"agent_tokens", "created_ms", "INTEGER NOT NULL DEFAULT 0"},
           {"agent_tokens", "expires_ms", "INTEGER NOT NULL DEFAULT 0"},
           {"agent_tokens", "revoked_ms", "INTEGER NOT NULL DEFAULT 0"}}) {
    bool present = false;
    {
      Stmt info(db, (std::string("PRAGMA table_info(") + table + ")").c_str());
      while (info.Step() == SQLITE_ROW) present = present || info.Text(1) == column;
    }
    if (!present) SP_TRY(exec((std::string("ALTER TABLE ") + table + " ADD COLUMN " + column + " " + decl).c_str()));
  }
  return Ok();
}

// Version 2: notifications' channels and outbox; rollouts by their last change (the notifier's scan).
Status MigrateTo2(sqlite3*, const std::function<Status(const char*)>& exec) {
  return exec(R"sql(
CREATE TABLE IF NOT EXISTS notify_channels (name TEXT PRIMARY KEY, kind TEXT NOT NULL, url_ref TEXT NOT NULL,
  secret_ref TEXT NOT NULL, project TEXT NOT NULL, deployment TEXT NOT NULL, events TEXT NOT NULL,
  templates TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, event_key TEXT NOT NULL,
  event TEXT NOT NULL, subject TEXT NOT NULL, urgent INTEGER NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
  attempts INTEGER NOT NULL, next_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
  delivered_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', UNIQUE (channel, event_key));
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(state, next_ms);
CREATE INDEX IF NOT EXISTS notifications_subject ON notifications(subject, id);
CREATE INDEX IF NOT EXISTS rollouts_updated ON rollouts(updated_ms);
CREATE INDEX IF NOT EXISTS builds_started ON builds(started_ms);
CREATE INDEX IF NOT EXISTS builds_finished ON builds(finished_ms);
)sql");
}

// Version 3: secrets kept in the store (vault envelopes), versioned per scope.
Status MigrateTo3(sqlite3*, const std::function<Status(const char*)>& exec) {
  return exec(R"sql(
CREATE TABLE IF NOT EXISTS secrets (project TEXT NOT NULL, name TEXT NOT NULL, scope TEXT NOT NULL,
  version INTEGER NOT NULL, vault TEXT NOT NULL, created_by TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (project, name, scope, version));
)sql");
}

using Migration = Status (*)(sqlite3* db, const std::function<Status(const char*)>& exec);
constexpr Migration kMigrations[] = {MigrateTo1, MigrateTo2, MigrateTo3};
}  // namespace

const int SqliteStore::kSchemaVersion = static_cast<int>(std::size(kMigrations));

int SqliteStore::UserVersion() {
  Stmt st(db_, "PRAGMA user_version");
  return st.ok() && st.Step() == SQLITE_ROW ? static_cast<int>(st.Int(0)) : -1;
}

int SqliteStore::SchemaVersion() {
  std::lock_guard l(mu_);
  return UserVersion();
}

Status SqliteStore::Migrate(const std::string& path) {
  const auto newer = [&](int version) {
    return Err(ErrorCode::kInvalidArgument,
               "store " + path + " has schema version " + std::to_string(version) + ", newer than this sallyport's (" +
                   std::to_string(kSchemaVersion) +
                   "): run a newer sallyport on it, or restore a backup taken before it was upgraded");
  };
  // Every CLI command opens the store: one read when it is current, no write lock.
  if (const int version = UserVersion(); version == kSchemaVersion) {
    return Ok();
  } else if (version > kSchemaVersion) {
    return newer(version);
  }
  // One process migrates; another opening the store meanwhile waits, then finds it done.
  return Transaction([&]() -> Status {
    const int version = UserVersion();
    if (version < 0) return Err(ErrorCode::kInternal, "store " + path + ": cannot read its schema version");
    if (version > kSchemaVersion) return newer(version);
    for (int v = version; v < kSchemaVersion; ++v) {
      SP_TRY(kMigrations[v](db_, [this](const char* sql) { return Exec(sql); }));
      SP_TRY(Exec(("PRAGMA user_version=" + std::to_string(v + 1)).c_str()));
    }
    return Ok();
  });
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

}  // namespace sp
