// Projects and builds:
//   GET    /v1/projects                      the watched repositories (secrets as references only)
//   GET    /v1/projects/P/credentials        credential bindings: names, references, hosts (admin)
//   GET    /v1/projects/P/secrets            stored secrets: names, scopes, versions (never values)
//   PUT    /v1/projects/P/secrets/NAME {scope, value}   a new version, sealed by the server (secrets:P)
//   DELETE /v1/projects/P/secrets/NAME?scope=S          every version of one scope (secrets:P)
//   GET    /v1/builds[?limit=N], /v1/builds/ID (with its steps)
//   POST   /v1/builds {project, branch[, sha]}   a manual build (200 when built before)
//   POST   /v1/builds/ID/cancel
//   GET    /v1/builds/ID/log[?offset=N|follow=1] (server-sent events)
// And the build-job calls of the agent protocol (agent_routes.cc):
// BuildJobRecord and BuildJobDeploy.
#include "build/credentials.h"
#include "build/wire.h"
#include "config/service_config.h"
#include "core/text.h"
#include "server/api_server.h"
#include "server/log_files.h"

namespace sp {

using namespace http::routes;

namespace {

using http::IntField;
using http::StringField;

Status UpdateBuild(BuildStore& store, const Doc& b, int64_t build_id) {
  SP_ASSIGN_OR_RETURN(BuildRecord rec, store.GetBuild(build_id));
  std::string status = std::string(BuildStatusName(rec.status));
  for (Status st : {StringField(b, "status", status), StringField(b, "author", rec.author),
                    StringField(b, "message", rec.message), StringField(b, "artifact", rec.artifact),
                    StringField(b, "deployment", rec.deployment), StringField(b, "error", rec.error),
                    IntField(b, "finished_ms", rec.finished_ms)}) {
    SP_TRY(st);
  }
  auto parsed = ParseBuildStatus(status);
  if (!parsed) return Err(ErrorCode::kInvalidArgument, "/build/status: unknown '" + Printable(status) + "'");
  rec.status = *parsed;
  return store.UpdateBuild(rec);
}

Status PutStep(BuildStore& store, const Doc& x, int64_t build_id) {
  BuildStepRecord rec;
  rec.build_id = build_id;
  int64_t index = -1, exit_code = 0;
  for (Status st : {IntField(x, "index", index), StringField(x, "name", rec.name), StringField(x, "kind", rec.kind),
                    StringField(x, "status", rec.status), IntField(x, "exit_code", exit_code),
                    IntField(x, "started_ms", rec.started_ms), IntField(x, "finished_ms", rec.finished_ms)}) {
    SP_TRY(st);
  }
  if (index < 0 || index > 10'000 || rec.name.empty()) {
    return Err(ErrorCode::kInvalidArgument, "/step: index (0..10000) and name are required");
  }
  rec.index = static_cast<int>(index);
  rec.exit_code = static_cast<int>(exit_code);
  return store.PutBuildStep(rec);
}

Doc BuildWithSteps(BuildStore& store, const BuildRecord& b) {
  Doc out = BuildToJson(b);
  Doc steps = Doc::array();
  if (auto st = store.BuildSteps(b.id)) {
    for (const auto& x : *st) steps.push_back(BuildStepToJson(x));
  }
  out["steps"] = steps;
  return out;
}

void ServeBuildLog(BuildStore& store, BuildService& builds, const Request& req, Response& res) {
  const int64_t id = std::stoll(req.args[0]);
  auto b = store.GetBuild(id);
  if (!b) return res.Error(b.error());
  ServeLogFile(req, res, builds.LogPath(id), [&store, id]() -> std::optional<std::string> {
    auto now = store.GetBuild(id);
    if (!now) return "gone";
    if (now->status == BuildStatus::kQueued || now->status == BuildStatus::kRunning) return std::nullopt;
    return std::string(BuildStatusName(now->status));
  });
}

}  // namespace

// POST /v1/agent/jobs/ID/build: {build: {...}} updates the build, {step: {...}} records a step.
void BuildJobRecord(ServerContext& ctx, const Request&, Response& res, const Doc& body, int64_t build_id) {
  if (!ctx.options.build_store) return res.Error({ErrorCode::kNotFound, "this server keeps no builds"});
  BuildStore& store = *ctx.options.build_store;
  Status st = Ok();
  if (body.contains("build") && body["build"].is_object()) {
    st = UpdateBuild(store, body["build"], build_id);
  } else if (body.contains("step") && body["step"].is_object()) {
    st = PutStep(store, body["step"], build_id);
  } else if (body.contains("config") && body["config"].is_string()) {
    // The commit's sallyport.yml as the agent checked it out; kept only when it parses.
    const std::string text = body["config"];
    auto cfg = ParseServiceConfig(text, "sallyport.yml of build " + std::to_string(build_id));
    st = cfg ? store.PutBuildConfig(build_id, text) : Status(Err(cfg.error()));
  } else {
    st = Err(ErrorCode::kInvalidArgument, "/build, /step or /config: one of them is required");
  }
  if (!st) return res.Error(st.error());
  res.status = 204;
}

// POST /v1/agent/jobs/ID/deploy: the build's sallyport.yml, release,
// deployment and artifact; the server freezes the plan and queues it.
void BuildJobDeploy(ServerContext& ctx, const Request&, Response& res, const Doc& body, int64_t build_id) {
  if (!ctx.options.deploy_start) return res.Error({ErrorCode::kNotFound, "this server does not deploy"});
  for (const char* k : {"config", "release", "deployment", "artifact"}) {
    if (!body.contains(k) || !body[k].is_string()) {
      return res.Error({ErrorCode::kInvalidArgument, std::string("/") + k + ": required (a string)"});
    }
  }
  // The config the build recorded when it read it (the same agent sent it
  // then); the body's only for an agent that recorded none.
  std::string text = body["config"];
  if (ctx.options.build_store) {
    auto kept = ctx.options.build_store->BuildConfig(build_id);
    if (!kept) return res.Error(kept.error());
    if (!kept->empty()) text = *kept;
  }
  auto cfg = ParseServiceConfig(text, "sallyport.yml of build " + std::to_string(build_id));
  if (!cfg) return res.Error(cfg.error());
  if (auto refused = CheckCommitSecrets(*cfg); !refused) return res.Error(refused.error());
  DeployRequest r = DeployOf(*cfg, text, body["release"], body["deployment"], body["artifact"], build_id);
  auto job = ctx.options.deploy_start(r);
  if (!job) return res.Error(job.error());
  res.Json(201, {{"job", *job}});
}

// A route on project P (the path's first capture) needs `need` on it.
Access OfProject(Need need) {
  return Access::Of(need, [need](const Request& req) -> Result<Target> { return Target{need, req.args[0]}; });
}

// The largest secret value a PUT stores.
constexpr size_t kMaxSecretBytes = 64 * 1024;

// PUT /v1/projects/P/secrets/NAME {scope, value}: the value sealed by this
// server (an Ansible Vault envelope under its own password) and stored as
// the next version of (P, NAME, scope); the answer never holds it.
void PutSecret(ServerContext& ctx, BuildStore& store, const Request& req, Response& res) {
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  StoredSecret s;
  s.project = req.args[0];
  s.name = req.args[1];
  std::string value;
  for (Status st : {StringField(*body, "scope", s.scope), StringField(*body, "value", value)}) {
    if (!st) return res.Error(st.error());
  }
  if (!IsValidCredentialName(s.name)) {
    return res.Error({ErrorCode::kInvalidArgument, "secret name: letters, digits, '.', '_' and '-' (1-64)"});
  }
  if (auto st = CheckSecretScope(s.scope); !st) return res.Error(st.error());
  if (value.empty() || value.size() > kMaxSecretBytes || value.find('\0') != std::string::npos) {
    return res.Error({ErrorCode::kInvalidArgument, "/value: 1 to 65536 bytes, no NUL"});
  }
  if (auto p = store.Project(s.project); !p || !*p) {
    return res.Error(p ? Error{ErrorCode::kNotFound, "no project " + s.project} : p.error());
  }
  if (!ctx.options.seal_secret) {
    return res.Error({ErrorCode::kUnavailable, "this server has no vault password to seal secrets with (server "
                                               "--vault-password-file or --vault-id); nothing stored"});
  }
  auto sealed = ctx.options.seal_secret(value);
  std::fill(value.begin(), value.end(), '\0');
  if (!sealed) return res.Error(sealed.error().Wrap("sealing the secret; nothing stored"));
  s.vault = std::move(*sealed);
  s.created_by = req.caller ? req.caller->who : "";
  s.created_ms = ctx.Now();
  auto version = store.PutSecret(s);
  if (!version) return res.Error(version.error());
  s.version = *version;
  res.Json(201, StoredSecretToJson(s));
}

// A route on build ID (the path's first capture) needs `need` on its project.
Access OfBuild(BuildStore& store, Need need) {
  return Access::Of(need, [&store, need](const Request& req) -> Result<Target> {
    SP_ASSIGN_OR_RETURN(BuildRecord b, store.GetBuild(std::stoll(req.args[0])));
    return Target{need, b.project};
  });
}

std::vector<http::Route> BuildRoutes(ServerContext& ctx) {
  if (!ctx.options.builds || !ctx.options.build_store) return {};
  BuildService& builds = *ctx.options.builds;
  BuildStore& store = *ctx.options.build_store;
  return {
      {Method::kGet, "/v1/projects", Access::Read(),
       [&store](const Request&, Response& res) { http::JsonList(res, store.Projects(), "projects", ProjectToJson); }},
      // Credential bindings: references and hosts, never values (admin only).
      {Method::kGet, R"(/v1/projects/([A-Za-z0-9_.-]+)/credentials)", Access::Admin(),
       [&store](const Request& req, Response& res) {
         http::JsonList(res, store.Credentials(req.args[0]), "credentials", CredentialToJson);
       }},
      {Method::kGet, R"(/v1/projects/([A-Za-z0-9_.-]+)/secrets)", OfProject(Need::kRead),
       [&store](const Request& req, Response& res) {
         http::JsonList(res, store.Secrets(req.args[0]), "secrets", StoredSecretToJson);
       }},
      {Method::kPut, R"(/v1/projects/([A-Za-z0-9_.-]+)/secrets/([A-Za-z0-9_.-]+))", OfProject(Need::kSecrets),
       [&ctx, &store](const Request& req, Response& res) { PutSecret(ctx, store, req, res); }},
      {Method::kDelete, R"(/v1/projects/([A-Za-z0-9_.-]+)/secrets/([A-Za-z0-9_.-]+))", OfProject(Need::kSecrets),
       [&store](const Request& req, Response& res) {
         const std::string scope = req.Param("scope");
         if (auto st = CheckSecretScope(scope); !st) return res.Error(st.error().Wrap("?scope"));
         if (auto st = store.DeleteSecret(req.args[0], req.args[1], scope); !st) return res.Error(st.error());
         res.Json(200, {{"deleted", true}});
       }},
      {Method::kGet, "/v1/builds", Access::Read(),
       [&store](const Request& req, Response& res) {
         const int limit = static_cast<int>(std::clamp<int64_t>(req.IntParam("limit", 50), 1, 1000));
         http::JsonList(res, store.ListBuilds(limit), "builds", BuildToJson);
       }},
      {Method::kGet, R"(/v1/builds/(\d+))", OfBuild(store, Need::kRead),
       [&store](const Request& req, Response& res) {
         auto b = store.GetBuild(std::stoll(req.args[0]));
         if (!b) return res.Error(b.error());
         res.Json(200, BuildWithSteps(store, *b));
       }},
      {Method::kPost, "/v1/builds",
       Access::Of(Need::kBuild,
                  [](const Request& req) -> Result<Target> {
                    SP_ASSIGN_OR_RETURN(Doc body, req.Json());
                    return Target{Need::kBuild, body.value("project", "")};
                  }),
       [&builds](const Request& req, Response& res) {
         auto body = req.Json();
         if (!body) return res.Error(body.error());
         auto made = builds.Manual(body->value("project", ""), body->value("branch", ""), body->value("sha", ""));
         if (!made) return res.Error(made.error());
         if (!*made) return res.Json(200, {{"build", nullptr}, {"reason", "this commit was built before"}});
         res.Json(201, {{"build", (*made)->id}});
       }},
      {Method::kPost, R"(/v1/builds/(\d+)/cancel)", OfBuild(store, Need::kBuild),
       [&builds](const Request& req, Response& res) {
         if (auto st = builds.Cancel(std::stoll(req.args[0])); !st) return res.Error(st.error());
         res.Json(202, {{"canceled", true}});
       }},
      {Method::kGet, R"(/v1/builds/(\d+)/log)", OfBuild(store, Need::kRead),
       [&store, &builds](const Request& req, Response& res) { ServeBuildLog(store, builds, req, res); },
       http::Lane::kStream},
  };
}

}  // namespace sp
