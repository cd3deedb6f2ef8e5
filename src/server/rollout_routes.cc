// Rollouts and their journal, and the rollout locks:
//   GET    /v1/rollouts[?limit=N]    recent rollouts (newest first)
//   GET    /v1/rollouts/ID           one rollout: its frozen plan, hosts, journal and notifications
//   GET    /v1/locks                 the locks with holder, reason and expiry (never their tokens)
//   DELETE /v1/locks/STACK/RELEASE/DEPLOYMENT[?force=1]   an operator's release: 409 while the
//                                                          holder is live, unless forced
#include "rollout/journal_wire.h"
#include "rollout/lock.h"
#include "server/api_server.h"
#include "wiring/engine_wiring.h"

namespace sp {

using namespace http::routes;

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
  return routes;
}

}  // namespace sp
