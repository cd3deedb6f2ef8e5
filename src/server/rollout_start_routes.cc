// Rollouts the server plans (a caller names what, never how):
//   POST /v1/rollouts   {build | artifact, deployment[, release, stack, version, limit, batch, max_failures,
//                        dry_run, queue_anyway]}
//       the artifact of a succeeded build, to a (release, deployment): the
//       server reads the build's recorded sallyport.yml, resolves the target
//       in its own inventory, freezes the plan and queues it as a rollout job
//       for the agents of the deployment's network. 201 {rollout, job,
//       network}; with dry_run 200 {plan} and nothing queued; 503 when no
//       agent of that network was seen in the last 2 minutes (unless
//       queue_anyway).
//   POST /v1/rollbacks  {stack, release, deployment[, to, queue_anyway]}
//       the previous successful rollout's plan again (kind "rollback"), or
//       with `to` (a version label or rollout id) an earlier one's, queued
//       the same way.
// Both need deploy:<stack>/<deployment>, the stack read from the build's own
// file. A plan made elsewhere is a job only an admin may queue (POST /v1/jobs).
#include <set>

#include "deploy/deploy_plan.h"
#include "rollout/rollback.h"
#include "server/api_server.h"

namespace sp {

using namespace http::routes;

namespace {

// What a rollout request names, read and checked against the store.
struct RolloutAsk {
  BuildRecord build;
  std::string config_text;
  ServiceConfig cfg;
  std::string release, deployment, version, limit;
  std::string stack;  // As the caller named it ("": the build's); the scope is checked on the build's.
  std::optional<CountOrPercent> batch, max_failures;
  bool dry_run = false;
  bool queue_anyway = false;  // Even when no agent of the network was seen lately.
};

using http::StringField;

Result<std::optional<CountOrPercent>> Amount(const Doc& body, const char* key) {
  std::string text;
  SP_TRY(StringField(body, key, text));
  if (text.empty()) return std::optional<CountOrPercent>();
  auto v = ParseCountOrPercent(text);
  if (!v) return Err(v.error().Wrap(std::string("/") + key));
  return std::optional<CountOrPercent>(*v);
}

// The build the request names: by id, or the newest succeeded build of the
// artifact.
Result<BuildRecord> BuildNamed(BuildStore& store, const Doc& body) {
  if (body.contains("build")) {
    if (!body["build"].is_number_integer()) return Err(ErrorCode::kInvalidArgument, "/build: expected an integer");
    return store.GetBuild(body["build"].get<int64_t>());
  }
  std::string artifact;
  SP_TRY(StringField(body, "artifact", artifact));
  if (artifact.empty()) return Err(ErrorCode::kInvalidArgument, "/build or /artifact: one of them is required");
  SP_ASSIGN_OR_RETURN(auto b, store.BuildOfArtifact(artifact));
  if (!b) return Err(ErrorCode::kNotFound, "no succeeded build pushed " + Printable(artifact));
  return *b;
}

// A boolean field (absent: false).
Result<bool> Flag(const Doc& body, const char* key) {
  if (!body.contains(key)) return false;
  if (!body[key].is_boolean()) return Err(ErrorCode::kInvalidArgument, std::string("/") + key + ": expected true or false");
  return body[key].get<bool>();
}

// `for_scope`: only what the scope check needs (the build's stack and the
// deployment), before the caller may learn anything else of the build.
Result<RolloutAsk> ReadAsk(BuildStore& store, const Request& req, bool for_scope = false) {
  SP_ASSIGN_OR_RETURN(Doc body, req.Json());
  // Only what names the rollout: a config, a plan or hosts are never taken
  // from a caller.
  static const std::set<std::string> kKnown = {"build",   "artifact", "deployment", "release",      "stack",
                                               "version", "limit",    "batch",      "max_failures", "dry_run",
                                               "queue_anyway"};
  for (const auto& [key, value] : body.items()) {
    if (!for_scope && !kKnown.count(key)) {
      return Err(ErrorCode::kInvalidArgument, "/" + Printable(key) + ": unknown field");
    }
  }
  RolloutAsk a;
  SP_ASSIGN_OR_RETURN(a.build, BuildNamed(store, body));
  const std::string which = "build " + std::to_string(a.build.id);
  if (!for_scope && (a.build.status != BuildStatus::kSucceeded || a.build.artifact.empty())) {
    return Err(ErrorCode::kConflict, which + " is " + std::string(BuildStatusName(a.build.status)) +
                                         (a.build.artifact.empty() ? " and pushed no artifact" : ""));
  }
  SP_ASSIGN_OR_RETURN(a.config_text, store.BuildConfig(a.build.id));
  if (a.config_text.empty()) return Err(ErrorCode::kConflict, which + " kept no sallyport.yml to plan from");
  SP_ASSIGN_OR_RETURN(a.cfg, ParseServiceConfig(a.config_text, "sallyport.yml of " + which));
  if (!for_scope) SP_TRY(CheckCommitSecrets(a.cfg));
  for (auto [key, out] : {std::pair{"release", &a.release}, std::pair{"deployment", &a.deployment},
                          std::pair{"stack", &a.stack}, std::pair{"version", &a.version}, std::pair{"limit", &a.limit}}) {
    SP_TRY(StringField(body, key, *out));
  }
  if (a.deployment.empty()) return Err(ErrorCode::kInvalidArgument, "/deployment: required");
  if (a.release.empty()) {
    if (a.cfg.releases.size() != 1) {
      return Err(ErrorCode::kInvalidArgument, "/release: required (" + which + " defines " +
                                                  std::to_string(a.cfg.releases.size()) + " releases)");
    }
    a.release = a.cfg.releases.begin()->first;
  }
  SP_ASSIGN_OR_RETURN(a.batch, Amount(body, "batch"));
  SP_ASSIGN_OR_RETURN(a.max_failures, Amount(body, "max_failures"));
  SP_ASSIGN_OR_RETURN(a.dry_run, Flag(body, "dry_run"));
  SP_ASSIGN_OR_RETURN(a.queue_anyway, Flag(body, "queue_anyway"));
  return a;
}

// The plan queued as a rollout job for its network's agents — refused
// (503) when none was seen lately, unless the caller asks to queue anyway.
void Queue(ServerContext& ctx, const RolloutPlan& plan, bool anyway, Response& res) {
  if (!plan.submitted_by.empty()) {  // A rollback to a version a CLI planned and ran itself.
    return res.Error({ErrorCode::kConflict, "the version to return to was planned by a CLI (" + plan.submitted_by +
                                                "), not by this server, which queues only plans it made: roll back "
                                                "with the CLI (sallyport rollout undo -i <server URL>), or roll out "
                                                "that version from its build"});
  }
  const JobSpec spec = RolloutJobSpec(plan);
  if (!anyway) {
    if (auto seen = CheckAgentSeen(*ctx.options.queue, spec, ctx.Now()); !seen) return res.Error(seen.error());
  }
  auto job = ctx.options.queue->Enqueue(spec, ctx.Now());
  if (!job) return res.Error(job.error());
  ctx.JobsEnqueued();
  res.Json(201, {{"rollout", plan.id}, {"job", job->id}, {"network", plan.network}, {"kind", Name(plan.kind)}});
}

void StartRollout(ServerContext& ctx, BuildStore& store, const Request& req, Response& res) {
  auto a = ReadAsk(store, req);
  if (!a) return res.Error(a.error());
  if (!a->stack.empty() && a->stack != a->cfg.stack) {
    return res.Error({ErrorCode::kInvalidArgument, "/stack: build " + std::to_string(a->build.id) +
                                                       " deploys stack " + a->cfg.stack + ", not " +
                                                       Printable(a->stack)});
  }
  DeployRequest r = DeployOf(a->cfg, a->config_text, a->release, a->deployment, a->build.artifact, a->build.id);
  r.version = a->version;
  r.limit = a->limit;
  r.batch = a->batch;
  r.max_failures = a->max_failures;
  r.requested_by = req.caller ? req.caller->who : "";
  auto plan = DeployPlan(ctx.inventory, r, [](bool, const std::string&) {}, ctx.Now(), &store);
  if (!plan) return res.Error(plan.error());
  if (a->dry_run) return res.Json(200, {{"plan", Doc::parse(PlanToJson(*plan))}});
  Queue(ctx, *plan, a->queue_anyway, res);
}

struct Scope {
  std::string stack, release, deployment;
  std::string to;  // A rollback's version label or rollout id ("": the previous).
  bool queue_anyway = false;
};

Result<Scope> ReadScope(const Request& req) {
  SP_ASSIGN_OR_RETURN(Doc body, req.Json());
  Scope s;
  for (auto [key, out] : {std::pair{"stack", &s.stack}, std::pair{"release", &s.release},
                          std::pair{"deployment", &s.deployment}}) {
    SP_TRY(StringField(body, key, *out));
    if (out->empty()) return Err(ErrorCode::kInvalidArgument, std::string("/") + key + ": required");
  }
  SP_ASSIGN_OR_RETURN(s.queue_anyway, Flag(body, "queue_anyway"));
  SP_TRY(StringField(body, "to", s.to));
  return s;
}

}  // namespace

std::vector<http::Route> RolloutStartRoutes(ServerContext& ctx) {
  std::vector<http::Route> routes;
  if (!ctx.options.queue) return routes;
  if (BuildStore* store = ctx.options.build_store) {
    auto target = [store](const Request& req) -> Result<Target> {
      SP_ASSIGN_OR_RETURN(RolloutAsk a, ReadAsk(*store, req, /*for_scope=*/true));
      return Target{Need::kDeploy, a.cfg.stack + "/" + a.deployment};
    };
    routes.push_back({Method::kPost, "/v1/rollouts", Access::Of(Need::kDeploy, target),
                      [&ctx, store](const Request& req, Response& res) { StartRollout(ctx, *store, req, res); }});
  }
  if (JournalStore* journal = ctx.options.journal) {
    auto target = [](const Request& req) -> Result<Target> {
      SP_ASSIGN_OR_RETURN(Scope s, ReadScope(req));
      return Target{Need::kDeploy, s.stack + "/" + s.deployment};
    };
    routes.push_back({Method::kPost, "/v1/rollbacks", Access::Of(Need::kDeploy, target),
                      [&ctx, journal](const Request& req, Response& res) {
                        auto s = ReadScope(req);
                        if (!s) return res.Error(s.error());
                        auto plan = RollbackPlanFor(*journal, s->stack, s->release, s->deployment, ctx.Now(), s->to);
                        if (!plan) return res.Error(plan.error());
                        plan->requested_by = req.caller ? req.caller->who : "";
                        Queue(ctx, *plan, s->queue_anyway, res);
                      }});
  }
  return routes;
}

}  // namespace sp
