// Rollouts and their journal, and the rollout locks:
//   GET    /v1/rollouts[?limit=N]    recent rollouts (newest first)
//   GET    /v1/rollouts/ID           one rollout: its frozen plan, hosts, journal and notifications
//   GET    /v1/status                what runs where: each release x deployment's current version,
//                                    the rollout running there and its lock (deploy/status.h)
//   GET    /v1/locks                 the locks with holder, reason and expiry (never their tokens)
//   DELETE /v1/locks/STACK/RELEASE/DEPLOYMENT[?force=1]   an operator's release: 409 while the
//                                                          holder is live, unless forced
//   POST   /v1/journal/STACK/RELEASE/DEPLOYMENT  {call, ...}: a CLI's rollout that read its inventory
//                                                from this server (-i URL) keeps its journal and lock
//                                                here (server/job_store_calls.h); its plan is marked
//                                                submitted_by the caller, and never acted on here
#include "deploy/status.h"
#include "rollout/journal_wire.h"
#include "rollout/lock.h"
#include "server/api_server.h"
#include "server/job_store_calls.h"
#include "wiring/engine_wiring.h"

namespace sp {

using namespace http::routes;

namespace {

void CliStoreCall(ServerContext& ctx, const Request& req, Response& res) {
  for (const auto& name : req.args) {
    if (!IsValidName(name)) return res.Error({ErrorCode::kInvalidArgument, "invalid name '" + Printable(name) + "'"});
  }
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  if (!body->is_object() || !body->contains("call") || !(*body)["call"].is_string()) {
    return res.Error({ErrorCode::kInvalidArgument, "/call: required (a string)"});
  }
  StoreCaller caller;
  const std::string who = req.caller ? req.caller->who : "unknown";
  caller.who = "cli " + who + " ";
  caller.owner = "CLI";
  caller.take_over_own = false;     // Two CLIs of one user exclude each other like anyone's.
  caller.force_release_any = true;  // As DELETE /v1/locks/...?force=1 lets this caller.
  caller.submitted_by = who + " (CLI)";
  const std::string scope = req.args[0] + "/" + req.args[1] + "/" + req.args[2];
  auto answer = ServeStoreCall(*ctx.options.journal, *ctx.options.locks, caller, scope, ctx.Now(),
                               nlohmann::json::parse(body->dump()));
  if (!answer) return res.Error(answer.error());
  res.Json(200, Doc::parse(answer->dump()));
}

}  // namespace

std::vector<http::Route> RolloutRoutes(ServerContext& ctx) {
  std::vector<http::Route> routes;
  if (JournalStore* journal = ctx.options.journal) {
    routes.push_back({Method::kGet, "/v1/rollouts", Access::Read(), [journal](const Request& req, Response& res) {
                        auto out = RolloutListJson(*journal, static_cast<int>(std::clamp<int64_t>(
                                                                 req.IntParam("limit", 20), 1, 1000)));
                        if (!out) return res.Error(out.error());
                        res.Json(200, *out);
                      }});
    routes.push_back({Method::kGet, R"(/v1/rollouts/([A-Za-z0-9_.-]+))", Access::Read(),
                      [journal, notify = ctx.options.notify](const Request& req, Response& res) {
                        auto out = RolloutShowJson(*journal, req.args[0]);
                        if (!out) return res.Error(out.error());
                        if (notify) {
                          auto sent = notify->NotificationsOf(req.args[0]);
                          if (!sent) return res.Error(sent.error());
                          (*out)["notifications"] = NotificationsJson(*sent);
                        }
                        res.Json(200, *out);
                      }});
  }
  if (JournalStore* journal = ctx.options.journal) {
    routes.push_back({Method::kGet, "/v1/status", Access::Read(), [&ctx, journal](const Request&, Response& res) {
                        auto inv = ctx.inventory.Current();
                        if (!inv) return res.Error(inv.error());
                        auto out = DeliveryStatusJson({inv->get(), journal, ctx.options.locks, ctx.options.build_store},
                                                      ctx.Now());
                        if (!out) return res.Error(out.error());
                        res.Json(200, *out);
                      }});
  }
  if (NotifyStore* notify = ctx.options.notify) {
    routes.push_back({Method::kGet, "/v1/notify/channels", Access::Admin(), [notify](const Request&, Response& res) {
                        auto channels = notify->Channels();
                        if (!channels) return res.Error(channels.error());
                        res.Json(200, ChannelsJson(*channels));
                      }});
  }
  if (LockStore* locks = ctx.options.locks) {
    routes.push_back({Method::kGet, "/v1/locks", Access::Read(), [&ctx, locks](const Request&, Response& res) {
                        auto out = LockListJson(*locks, ctx.Now());
                        if (!out) return res.Error(out.error());
                        res.Json(200, *out);
                      }});
    // A lock's key is stack/release/deployment: releasing it is a deploy there.
    routes.push_back({Method::kDelete, R"(/v1/locks/([^/]+)/([^/]+)/([^/]+))",
                      Access::Of(Need::kDeploy,
                                 [](const Request& req) -> Result<Target> {
                                   return Target{Need::kDeploy, req.args[0] + "/" + req.args[2]};
                                 }),
                      [&ctx, locks](const Request& req, Response& res) {
                        const std::string key = req.args[0] + "/" + req.args[1] + "/" + req.args[2];
                        if (auto st = OperatorRelease(*locks, key, req.Flag("force"), ctx.Now(), HolderAliveHere); !st) {
                          return res.Error(st.error());
                        }
                        res.status = 204;
                      }});
  }
  if (ctx.options.journal && ctx.options.locks) {
    routes.push_back({Method::kPost, R"(/v1/journal/([^/]+)/([^/]+)/([^/]+))",
                      Access::Of(Need::kDeploy,
                                 [](const Request& req) -> Result<Target> {
                                   return Target{Need::kDeploy, req.args[0] + "/" + req.args[2]};
                                 }),
                      [&ctx](const Request& req, Response& res) { CliStoreCall(ctx, req, res); }});
  }
  return routes;
}

}  // namespace sp
