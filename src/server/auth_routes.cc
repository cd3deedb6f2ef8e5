// Tokens and the audit trail (admin only):
//   GET    /v1/tokens            API and agent tokens: name, kind, scopes or labels, creator, times (never a hash)
//   POST   /v1/tokens            {name, scopes: [...], expires_in_s?} -> 201 {name, token} (the secret, shown once)
//   DELETE /v1/tokens/NAME       revoked at once (204)
//   GET    /v1/audit[?limit=N]   the audit trail, newest first
//   POST   /v1/login             public: {user, password, expires_in_s?} -> 201 {name, token, expires_ms, scopes};
//                                429 after 10 failures of a user (30 of a peer) in a minute, before any derivation
#include "auth/wire.h"
#include "core/digest.h"
#include "core/text.h"
#include "server/api_server.h"

namespace sp {

using namespace http::routes;

namespace {

void CreateToken(ServerContext& ctx, auth::AuthStore& store, const Request& req, Response& res) {
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  auth::ApiToken t;
  t.name = body->value("name", "");
  if (!IsValidName(t.name)) return res.Error({ErrorCode::kInvalidArgument, "/name: a name ([a-z0-9-], 1-63)"});
  if (!body->contains("scopes") || !(*body)["scopes"].is_array() || (*body)["scopes"].empty()) {
    return res.Error({ErrorCode::kInvalidArgument, "/scopes: required, a non-empty array of scopes"});
  }
  for (const auto& s : (*body)["scopes"]) {
    if (!s.is_string()) return res.Error({ErrorCode::kInvalidArgument, "/scopes: strings only"});
    if (auto st = auth::ValidateScope(s.get<std::string>()); !st) return res.Error(st.error());
    t.scopes.push_back(s.get<std::string>());
  }
  t.creator = req.caller ? req.caller->who : "";
  t.created_ms = ctx.Now();
  const int64_t ttl_s = body->value("expires_in_s", int64_t{0});
  if (ttl_s < 0) return res.Error({ErrorCode::kInvalidArgument, "/expires_in_s: 0 (never) or more"});
  t.expires_ms = ttl_s == 0 ? 0 : t.created_ms + ttl_s * 1000;
  auto secret = auth::NewTokenSecret();
  if (!secret) return res.Error(secret.error());
  if (auto st = store.PutApiToken(Sha256Hex(*secret), t); !st) return res.Error(st.error());
  ctx.tokens.Clear();
  Doc out = auth::TokenToJson(t);
  out["token"] = *secret;
  res.Json(201, out);
}

// A user's password checked (an unknown user costs the same derivation), a
// token with the user's scopes made; failures counted before anything runs.
void Login(ServerContext& ctx, auth::AuthStore& store, const Request& req, Response& res) {
  constexpr int64_t kDefaultTtlS = 12 * 3600, kMaxTtlS = 30 * 86400;
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  const std::string user = body->value("user", "");
  const std::string password = body->value("password", "");
  const int64_t ttl_s = body->value("expires_in_s", kDefaultTtlS);
  if (!IsValidName(user)) return res.Error({ErrorCode::kInvalidArgument, "/user: a name ([a-z0-9-], 1-63)"});
  if (ttl_s < 60 || ttl_s > kMaxTtlS) {
    return res.Error({ErrorCode::kInvalidArgument, "/expires_in_s: from 60 to 2592000 (30 days)"});
  }
  const int64_t now = ctx.Now();
  if (const int64_t wait = ctx.logins.RetryAfter(user, req.peer, now); wait > 0) {
    res.Error({ErrorCode::kUnavailable,
               "too many failed logins: try again in " + std::to_string((wait + 999) / 1000) + " s"});
    res.status = 429;
    return;
  }
  auto found = store.UserNamed(user);
  if (!found) return res.Error(found.error());
  const bool known = found->has_value();
  if (!auth::VerifyPassword(password, known ? (*found)->password_hash : auth::DecoyPasswordHash()) || !known) {
    ctx.logins.Failed(user, req.peer, now);
    return res.Error({ErrorCode::kUnauthenticated, "unknown user or wrong password"});
  }
  auto secret = auth::NewTokenSecret();
  if (!secret) return res.Error(secret.error());
  auth::ApiToken t;
  t.name = "login-" + user.substr(0, 48) + "-" + secret->substr(4, 8);
  t.scopes = (*found)->scopes;
  t.creator = "user:" + user;
  t.created_ms = now;
  t.expires_ms = now + ttl_s * 1000;
  if (auto st = store.PutApiToken(Sha256Hex(*secret), t); !st) return res.Error(st.error());
  ctx.tokens.Clear();
  Doc out = auth::TokenToJson(t);
  out["token"] = *secret;
  res.Json(201, out);
}

}  // namespace

std::vector<http::Route> AuthRoutes(ServerContext& ctx) {
  if (!ctx.options.auth) return {};
  auth::AuthStore& store = *ctx.options.auth;
  return {
      {Method::kGet, "/v1/tokens", Access::Admin(),
       [&store](const Request&, Response& res) { http::JsonList(res, store.Tokens(), "tokens", auth::TokenToJson); }},
      {Method::kPost, "/v1/tokens", Access::Admin(),
       [&ctx, &store](const Request& req, Response& res) { CreateToken(ctx, store, req, res); }},
      {Method::kDelete, "/v1/tokens/([^/]+)", Access::Admin(),
       [&ctx, &store](const Request& req, Response& res) {
         if (auto st = store.RevokeToken(req.args[0], ctx.Now()); !st) return res.Error(st.error());
         ctx.tokens.Clear();  // At once here; other servers sharing the store within the cache's TTL.
         res.status = 204;
       }},
      {Method::kPost, "/v1/login", Access::Public(),
       [&ctx, &store](const Request& req, Response& res) { Login(ctx, store, req, res); }},
      {Method::kGet, "/v1/audit", Access::Admin(),
       [&store](const Request& req, Response& res) {
         const int limit = static_cast<int>(std::clamp<int64_t>(req.IntParam("limit", 100), 1, 10000));
         http::JsonList(res, store.AuditTrail(limit), "audit", auth::AuditToJson);
       }},
  };
}

}  // namespace sp
