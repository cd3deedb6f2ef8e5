// token create | list | revoke, audit list
#include <cstdio>

#include "auth/wire.h"
#include "cli/command.h"
#include "core/digest.h"
#include "core/text.h"

namespace sp::cli {

namespace {

// An agent's token: bound to labels, made on the server's own store.
int CreateAgentToken(Context& ctx) {
  const Args& a = ctx.a;
  if (ctx.remote()) {
    return Fail({ErrorCode::kInvalidArgument,
                 "an agent's token (--label) is made on the server's machine: --local --store <state.db>"});
  }
  QueueStore::AgentToken t;
  t.name = a.name;
  auto labels = ParseLabelArgs("--label", a.labels);
  if (!labels) return Fail(labels.error());
  t.labels = *labels;
  auto secret = RandomHex(32);
  if (!secret) return Fail(secret.error());
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto st = (*store)->PutAgentToken(Sha256Hex(*secret), t); !st) return Fail(st.error());
  std::printf("%s\n", secret->c_str());  // The only time it is shown.
  return kExitOk;
}

// An API token with scopes: through the server (admin), or on the machine's
// own store (whoever can write it is its admin).
int CreateApiToken(Context& ctx) {
  const Args& a = ctx.a;
  int64_t ttl_s = 0;
  if (!a.expires.empty()) {
    auto d = ParseDuration(a.expires);
    if (!d || d->count() < 1000) return Fail({ErrorCode::kInvalidArgument, "--expires: a duration of 1s or more (e.g. 30d is 720h)"});
    ttl_s = d->count() / 1000;
  }
  for (const auto& s : a.scopes) {
    if (auto st = auth::ValidateScope(s); !st) return Fail(st.error());
  }
  std::string secret;
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    Doc body{{"name", a.name}, {"scopes", a.scopes}, {"expires_in_s", ttl_s}};
    auto r = (*api)->Call("POST", "/v1/tokens", body.dump());
    if (!r) return Fail(r.error());
    secret = (*r).value("token", "");
  } else {
    auth::ApiToken t;
    t.name = a.name;
    t.scopes = a.scopes;
    t.creator = "local";
    t.created_ms = ctx.Now();
    t.expires_ms = ttl_s ? t.created_ms + ttl_s * 1000 : 0;
    auto made = auth::NewTokenSecret();
    if (!made) return Fail(made.error());
    auto store = ctx.Store();
    if (!store) return Fail(store.error());
    if (auto st = (*store)->PutApiToken(Sha256Hex(*made), t); !st) return Fail(st.error());
    secret = *made;
  }
  std::printf("%s\n", secret.c_str());  // The only time it is shown.
  return kExitOk;
}

int Create(Context& ctx) {
  const Args& a = ctx.a;
  if (!IsValidName(a.name)) return Fail({ErrorCode::kInvalidArgument, "--name: invalid token name '" + Printable(a.name) + "'"});
  if (a.scopes.empty() == a.labels.empty()) {
    return Fail({ErrorCode::kInvalidArgument,
                 "give --scope (an API token: read, build:<project>, deploy:<stack>/<deployment>, inventory:write, admin) "
                 "or --label (an agent's token), not both"});
  }
  return a.labels.empty() ? CreateApiToken(ctx) : CreateAgentToken(ctx);
}

int List(Context& ctx) {
  auto d = ReadDoc(ctx, "/v1/tokens", [](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto tokens, s.Tokens());
    Doc out = Doc::array();
    for (const auto& t : tokens) out.push_back(auth::TokenToJson(t));
    return Doc{{"tokens", out}};
  });
  const int64_t now = ctx.Now();
  return PrintDoc(ctx, d, [now](const Doc& doc) {
    if (doc["tokens"].empty()) std::printf("no tokens\n");
    for (const auto& t : doc["tokens"]) {
      std::string grants;
      if (t.contains("labels")) {
        for (const auto& [k, v] : t["labels"].items()) grants += (grants.empty() ? "" : ",") + k + "=" + v.get<std::string>();
      } else {
        for (const auto& sc : t["scopes"]) grants += (grants.empty() ? "" : " ") + sc.get<std::string>();
      }
      const int64_t expires = t.value("expires_ms", int64_t{0});
      const char* state = t.value("revoked_ms", int64_t{0}) ? "revoked" : (expires && now >= expires) ? "expired" : "live";
      std::printf("%-20s %-6s %-8s %s\n", t.value("name", "").c_str(), t.value("kind", "").c_str(), state, grants.c_str());
    }
  });
}

int Revoke(Context& ctx) {
  Status st = Ok();
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    auto r = (*api)->Call("DELETE", "/v1/tokens/" + UrlQuery(ctx.a.name));
    if (!r) st = Err(r.error());
  } else {
    auto store = ctx.Store();
    if (!store) return Fail(store.error());
    st = (*store)->RevokeToken(ctx.a.name, ctx.Now());
  }
  if (!st) return Fail(st.error());
  std::printf("revoked %s\n", ctx.a.name.c_str());
  return kExitOk;
}

int AuditList(Context& ctx) {
  const int limit = ctx.a.limit.empty() ? 100 : std::atoi(ctx.a.limit.c_str());
  auto d = ReadDoc(ctx, "/v1/audit?limit=" + std::to_string(limit), [limit](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto rows, s.AuditTrail(std::max(1, limit)));
    Doc out = Doc::array();
    for (const auto& r : rows) out.push_back(auth::AuditToJson(r));
    return Doc{{"audit", out}};
  });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    if (doc["audit"].empty()) std::printf("no audit records\n");
    for (const auto& r : doc["audit"]) {
      std::printf("%-6lld %-14lld %-24s %-6s %-40s %3d %s\n", static_cast<long long>(r.value("id", int64_t{0})),
                  static_cast<long long>(r.value("at_ms", int64_t{0})), r.value("who", "").c_str(),
                  r.value("method", "").c_str(), r.value("path", "").c_str(), r.value("status", 0),
                  r.value("result", "").c_str());
    }
  });
}

}  // namespace

std::vector<Command> TokenCommands() {
  return {
      {{"token", "create"},
       "Create an API token with scopes, or an agent's token bound to labels; prints it once (only its hash is kept)",
       Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("--name", a.name, "Token name (unique)")->required();
         app.add_option("--scope", a.scopes,
                        "read, read:<project>, build:<project>, deploy:<stack>/<deployment>, inventory:write or admin "
                        "(repeatable; a name may be *)");
         app.add_option("--label", a.labels, "key=value an agent's token may claim work for (repeatable)");
         app.add_option("--expires", a.expires, "Lifetime, e.g. 720h (default: until revoked)");
       },
       Create},
      {{"token", "list"}, "API and agent tokens: name, kind, state, scopes or labels (never the secret)", Kind::kRead,
       Where::kEither, nullptr, List},
      {{"token", "revoke"}, "Revoke a token at once (API or agent)", Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) { app.add_option("name", a.name, "Token name")->required(); }, Revoke},
      {{"audit", "list"}, "Every mutating API request: who, what, from where, result (newest first)", Kind::kRead,
       Where::kEither, [](CLI::App& app, Args& a) { app.add_option("--limit", a.limit, "How many (default 100)"); },
       AuditList},
  };
}

}  // namespace sp::cli
