// Push webhooks, public but signed (the project's secret):
//   POST /hooks/github/PROJECT   X-Hub-Signature-256 (401 if wrong), X-GitHub-Delivery
//   POST /hooks/gitea/PROJECT    X-Gitea-Signature, X-Gitea-Delivery
//   POST /hooks/gitlab/PROJECT   X-Gitlab-Token (the secret), X-Gitlab-Event-UUID
// 202 with the build started, 200 when the delivery or commit was seen before.
#include "server/api_server.h"

namespace sp {

using namespace http::routes;

std::vector<http::Route> HookRoutes(ServerContext& ctx) {
  if (!ctx.options.builds) return {};
  BuildService& builds = *ctx.options.builds;
  std::vector<http::Route> routes;
  // Push events: GitHub's, Gitea's and GitLab's signatures and delivery ids.
  for (const BuildService::HookSpec& h : BuildService::kHookSpecs) {
    routes.push_back({Method::kPost, std::string("/hooks/") + h.path + "/([a-z0-9][a-z0-9-]{0,62})", Access::Public(),
                      [&builds, h](const Request& req, Response& res) {
                        auto made = builds.Webhook(req.args[0], req.body, req.Header(h.signature_header),
                                                   req.Header(h.delivery_header), h.format);
                        if (!made) return res.Error(made.error());
                        if (!*made) return res.Json(200, {{"build", nullptr}, {"reason", "seen before: nothing started"}});
                        res.Json(202, {{"build", (*made)->id}});
                      },
                      http::Lane::kQuick, kHookBodyBytes});
  }
  return routes;
}

}  // namespace sp
