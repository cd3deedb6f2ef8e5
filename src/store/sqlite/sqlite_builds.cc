// SqliteStore: the BuildStore methods (projects, builds, build steps, webhook deliveries).
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <string>

#include <nlohmann/json.hpp>

#include "store/sqlite/sqlite_internal.h"

namespace sp {

using sqlite_internal::DbError;
using sqlite_internal::Done;
using sqlite_internal::Stmt;

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

Status SqliteStore::PutBuildConfig(int64_t build_id, const std::string& text) {
  std::lock_guard l(mu_);
  Stmt st(db_, "INSERT INTO build_configs(build_id, config) VALUES(?,?) "
               "ON CONFLICT(build_id) DO UPDATE SET config=excluded.config");
  st.Bind(1, build_id).Bind(2, text);
  return Done(st, db_, "put build config");
}

Result<std::string> SqliteStore::BuildConfig(int64_t build_id) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT config FROM build_configs WHERE build_id=?");
  st.Bind(1, build_id);
  const int rc = st.Step();
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return Err(DbError(db_, "get build config"));
  return st.Text(0);
}

Result<std::optional<BuildRecord>> SqliteStore::BuildOfArtifact(const std::string& artifact) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kBuildCols +
                    " FROM builds WHERE artifact=? AND status='succeeded' ORDER BY id DESC LIMIT 1";
  Stmt st(db_, sql.c_str());
  st.Bind(1, artifact);
  const int rc = st.Step();
  if (rc == SQLITE_DONE) return std::optional<BuildRecord>();
  if (rc != SQLITE_ROW) return Err(DbError(db_, "find the build of an artifact"));
  return std::optional<BuildRecord>(BuildFromRow(st));
}

Status SqliteStore::PutCredential(const CredentialBinding& c) {
  std::lock_guard l(mu_);
  Stmt st(db_, "INSERT INTO credentials(project, name, ref, hosts, created_ms) VALUES(?,?,?,?,?) "
               "ON CONFLICT(project, name) DO UPDATE SET ref=excluded.ref, hosts=excluded.hosts, "
               "created_ms=excluded.created_ms");
  st.Bind(1, c.project).Bind(2, c.name).Bind(3, c.ref).Bind(4, nlohmann::json(c.hosts).dump()).Bind(5, c.created_ms);
  return Done(st, db_, "put credential");
}

Result<std::vector<CredentialBinding>> SqliteStore::Credentials(const std::string& project) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT project, name, ref, hosts, created_ms FROM credentials WHERE project=? ORDER BY name");
  st.Bind(1, project);
  std::vector<CredentialBinding> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    CredentialBinding c{st.Text(0), st.Text(1), st.Text(2), {}, st.Int(4)};
    auto hosts = nlohmann::json::parse(st.Text(3), nullptr, false);
    if (hosts.is_array()) {
      for (const auto& h : hosts) {
        if (h.is_string()) c.hosts.push_back(h.get<std::string>());
      }
    }
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list credentials"));
  return out;
}

Result<std::optional<CredentialBinding>> SqliteStore::Credential(const std::string& project, const std::string& name) {
  SP_ASSIGN_OR_RETURN(auto all, Credentials(project));
  for (auto& c : all) {
    if (c.name == name) return std::optional<CredentialBinding>(std::move(c));
  }
  return std::optional<CredentialBinding>();
}

Status SqliteStore::DeleteCredential(const std::string& project, const std::string& name) {
  std::lock_guard l(mu_);
  Stmt st(db_, "DELETE FROM credentials WHERE project=? AND name=?");
  st.Bind(1, project).Bind(2, name);
  SP_TRY(Done(st, db_, "delete credential"));
  if (sqlite3_changes(db_) == 0) {
    return Err(ErrorCode::kNotFound, "project " + project + " has no credential " + name);
  }
  return Ok();
}

Result<int64_t> SqliteStore::PutSecret(const StoredSecret& s) {
  std::lock_guard l(mu_);
  int64_t version = 0;
  SP_TRY(Transaction([&]() -> Status {
    Stmt top(db_, "SELECT COALESCE(MAX(version), 0) FROM secrets WHERE project=? AND name=? AND scope=?");
    top.Bind(1, s.project).Bind(2, s.name).Bind(3, s.scope);
    if (top.Step() != SQLITE_ROW) return Err(DbError(db_, "put secret"));
    version = top.Int(0) + 1;
    Stmt st(db_, "INSERT INTO secrets(project, name, scope, version, vault, created_by, created_ms) "
                 "VALUES(?,?,?,?,?,?,?)");
    st.Bind(1, s.project).Bind(2, s.name).Bind(3, s.scope).Bind(4, version).Bind(5, s.vault).Bind(6, s.created_by);
    st.Bind(7, s.created_ms);
    return Done(st, db_, "put secret");
  }));
  return version;
}

Result<std::vector<StoredSecret>> SqliteStore::SecretVersions(const std::string& project, const std::string& name) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT project, name, scope, version, vault, created_by, created_ms FROM secrets "
               "WHERE project=? AND name=? ORDER BY scope, version");
  st.Bind(1, project).Bind(2, name);
  std::vector<StoredSecret> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back({st.Text(0), st.Text(1), st.Text(2), st.Int(3), st.Text(4), st.Text(5), st.Int(6)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read secret"));
  return out;
}

Result<std::vector<StoredSecret>> SqliteStore::Secrets(const std::string& project) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT s.project, s.name, s.scope, s.version, s.created_by, s.created_ms FROM secrets s "
               "WHERE s.project=? AND s.version = (SELECT MAX(version) FROM secrets t WHERE t.project=s.project "
               "AND t.name=s.name AND t.scope=s.scope) ORDER BY s.name, s.scope");
  st.Bind(1, project);
  std::vector<StoredSecret> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back({st.Text(0), st.Text(1), st.Text(2), st.Int(3), "", st.Text(4), st.Int(5)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list secrets"));
  return out;
}

Status SqliteStore::DeleteSecret(const std::string& project, const std::string& name, const std::string& scope) {
  std::lock_guard l(mu_);
  Stmt st(db_, "DELETE FROM secrets WHERE project=? AND name=? AND scope=?");
  st.Bind(1, project).Bind(2, name).Bind(3, scope);
  SP_TRY(Done(st, db_, "delete secret"));
  if (sqlite3_changes(db_) == 0) {
    return Err(ErrorCode::kNotFound, "project " + project + " has no secret " + name + " for " + scope);
  }
  return Ok();
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

Result<std::vector<BuildRecord>> SqliteStore::BuildsChangedSince(int64_t since_ms, int limit) {
  std::lock_guard l(mu_);
  static const std::string sql = std::string("SELECT ") + kBuildCols +
                                 " FROM builds WHERE started_ms>=? OR finished_ms>=? ORDER BY id LIMIT ?";
  Stmt st(db_, Cached(sql.c_str()));
  st.Bind(1, since_ms).Bind(2, since_ms).Bind(3, int64_t{limit});
  std::vector<BuildRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(BuildFromRow(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list changed builds"));
  return out;
}

}  // namespace sp
