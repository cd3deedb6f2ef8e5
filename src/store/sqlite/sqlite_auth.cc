// SqliteStore: the AuthStore methods (API tokens, agent tokens' revocation,
// the append-only audit trail).
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "store/sqlite/sqlite_internal.h"
#include "store/sqlite/sqlite_store.h"

namespace sp {

using sqlite_internal::DbError;
using sqlite_internal::Done;
using sqlite_internal::LabelsFrom;
using sqlite_internal::Stmt;

namespace {

constexpr const char* kTokenCols = "name, scopes, creator, created_ms, expires_ms, last_used_ms, revoked_ms";

auth::ApiToken ReadToken(Stmt& st) {
  auth::ApiToken t;
  t.name = st.Text(0);
  auto scopes = nlohmann::json::parse(st.Text(1), nullptr, false);
  if (scopes.is_array()) {
    for (const auto& s : scopes) {
      if (s.is_string()) t.scopes.push_back(s.get<std::string>());
    }
  }
  t.creator = st.Text(2);
  t.created_ms = st.Int(3);
  t.expires_ms = st.Int(4);
  t.last_used_ms = st.Int(5);
  t.revoked_ms = st.Int(6);
  return t;
}

}  // namespace

Status SqliteStore::PutApiToken(const std::string& token_sha256, const auth::ApiToken& token) {
  std::lock_guard l(mu_);
  return Transaction([&]() -> Status {
    Stmt taken(db_, "SELECT 1 FROM agent_tokens WHERE name=? UNION ALL SELECT 1 FROM api_tokens WHERE name=?");
    taken.Bind(1, token.name).Bind(2, token.name);
    int rc = taken.Step();
    if (rc == SQLITE_ROW) return Err(ErrorCode::kConflict, "a token named '" + token.name + "' exists");
    if (rc != SQLITE_DONE) return Err(DbError(db_, "read tokens"));
    Stmt st(db_, "INSERT INTO api_tokens(token_sha256, name, scopes, creator, created_ms, expires_ms) "
                 "VALUES(?,?,?,?,?,?)");
    st.Bind(1, token_sha256).Bind(2, token.name).Bind(3, nlohmann::json(token.scopes).dump());
    st.Bind(4, token.creator).Bind(5, token.created_ms).Bind(6, token.expires_ms);
    return Done(st, db_, "write API token");
  });
}

Result<std::optional<auth::ApiToken>> SqliteStore::ApiTokenFor(const std::string& token_sha256) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("SELECT name, scopes, creator, created_ms, expires_ms, last_used_ms, revoked_ms "
                      "FROM api_tokens WHERE token_sha256=?"));
  st.Bind(1, token_sha256);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return std::optional<auth::ApiToken>(ReadToken(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read API token"));
  return std::optional<auth::ApiToken>();
}

Result<std::vector<auth::ApiToken>> SqliteStore::Tokens() {
  std::lock_guard l(mu_);
  std::vector<auth::ApiToken> out;
  Stmt st(db_, (std::string("SELECT ") + kTokenCols + " FROM api_tokens ORDER BY created_ms, name").c_str());
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadToken(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list API tokens"));
  Stmt ag(db_, "SELECT name, labels, created_ms, expires_ms, revoked_ms FROM agent_tokens ORDER BY created_ms, name");
  while ((rc = ag.Step()) == SQLITE_ROW) {
    auth::ApiToken t;
    t.kind = "agent";
    t.name = ag.Text(0);
    t.labels = LabelsFrom(ag.Text(1));
    t.created_ms = ag.Int(2);
    t.expires_ms = ag.Int(3);
    t.revoked_ms = ag.Int(4);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list agent tokens"));
  return out;
}

Status SqliteStore::RevokeToken(const std::string& name, int64_t now_ms) {
  std::lock_guard l(mu_);
  int changed = 0;
  for (const char* sql : {"UPDATE api_tokens SET revoked_ms=?1 WHERE name=?2 AND revoked_ms=0",
                          "UPDATE agent_tokens SET revoked_ms=?1 WHERE name=?2 AND revoked_ms=0"}) {
    Stmt st(db_, sql);
    st.Bind(1, now_ms).Bind(2, name);
    SP_TRY(Done(st, db_, "revoke token"));
    changed += sqlite3_changes(db_);
  }
  if (changed == 0) return Err(ErrorCode::kNotFound, "no live token named '" + name + "'");
  return Ok();
}

Status SqliteStore::TouchApiToken(const std::string& name, int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE api_tokens SET last_used_ms=? WHERE name=?"));
  st.Bind(1, now_ms).Bind(2, name);
  return Done(st, db_, "record token use");
}

Status SqliteStore::AppendAudit(const auth::AuditRecord& r) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("INSERT INTO audit(at_ms, who, method, path, target, peer, status, result) "
                      "VALUES(?,?,?,?,?,?,?,?)"));
  st.Bind(1, r.at_ms).Bind(2, r.who).Bind(3, r.method).Bind(4, r.path).Bind(5, r.target).Bind(6, r.from);
  st.Bind(7, static_cast<int64_t>(r.status)).Bind(8, r.result);
  return Done(st, db_, "append audit record");
}

Result<std::vector<auth::AuditRecord>> SqliteStore::AuditTrail(int limit) {
  std::lock_guard l(mu_);
  std::vector<auth::AuditRecord> out;
  Stmt st(db_, "SELECT id, at_ms, who, method, path, target, peer, status, result FROM audit ORDER BY id DESC LIMIT ?");
  st.Bind(1, static_cast<int64_t>(limit));
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    auth::AuditRecord r;
    r.id = st.Int(0);
    r.at_ms = st.Int(1);
    r.who = st.Text(2);
    r.method = st.Text(3);
    r.path = st.Text(4);
    r.target = st.Text(5);
    r.from = st.Text(6);
    r.status = static_cast<int>(st.Int(7));
    r.result = st.Text(8);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read audit trail"));
  return out;
}

Status SqliteStore::PutUser(const auth::User& user) {
  std::lock_guard l(mu_);
  Stmt st(db_, "INSERT INTO users(name, password_hash, scopes, created_ms) VALUES(?,?,?,?) ON CONFLICT(name) DO "
               "UPDATE SET password_hash=excluded.password_hash, scopes=excluded.scopes");
  st.Bind(1, user.name).Bind(2, user.password_hash).Bind(3, nlohmann::json(user.scopes).dump()).Bind(4, user.created_ms);
  return Done(st, db_, "write user");
}

Result<std::optional<auth::User>> SqliteStore::UserNamed(const std::string& name) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT name, password_hash, scopes, created_ms FROM users WHERE name=?");
  st.Bind(1, name);
  const int rc = st.Step();
  if (rc == SQLITE_DONE) return std::optional<auth::User>();
  if (rc != SQLITE_ROW) return Err(DbError(db_, "read user"));
  auth::User u;
  u.name = st.Text(0);
  u.password_hash = st.Text(1);
  for (const auto& s : nlohmann::json::parse(st.Text(2), nullptr, false)) {
    if (s.is_string()) u.scopes.push_back(s.get<std::string>());
  }
  u.created_ms = st.Int(3);
  return std::optional<auth::User>(u);
}

}  // namespace sp
