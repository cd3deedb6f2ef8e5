// `sallyport server`'s HTTP API (versioned under /v1, JSON in and out).
//
// Inventory (docs/inventory.md, "Inventory service"):
//   GET    /v1/health
//   GET    /v1/inventory                       the whole inventory (file schema)
//   POST   /v1/inventory/apply[?prune=1&dry_run=1]   body: inventory YAML or JSON -> {"changes": [...]}
//   GET    /v1/stacks                          {"stacks": [names]}
//   POST   /v1/stacks                          body {"name": S, ...stack}: 201, 409 if it exists
//   GET|PUT|DELETE /v1/stacks/S
//   POST   /v1/stacks/S/deployments            body {"name": D, ...}
//   GET|PUT|DELETE /v1/stacks/S/deployments/D
//   POST   /v1/stacks/S/deployments/D/releases body {"name": R, ...}
//   GET|PUT|DELETE /v1/stacks/S/deployments/D/releases/R
//   POST   /v1/stacks/S/deployments/D/hosts    body: a host mapping (with its name)
//   GET|PUT|DELETE /v1/stacks/S/deployments/D/hosts/H
//   GET    /v1/resolve?stack=S&release=R&deployment=D[&limit=a,b]
//   POST   /v1/stacks/S/templates/T/claims     body {"user": U}: 201 new claim, 200 the user's existing one,
//                                               409 when the pool has no free host
//   GET    /v1/claims
//   DELETE /v1/stacks/S/claims/D               release personal deployment D (teardown first)
//
// Jobs and agents (issue 6, first part; agents authenticate with
// "Authorization: Bearer <token>", 401 otherwise; a token is bound to labels):
//   POST   /v1/jobs                            enqueue {kind, payload, labels, priority, idempotency_key, max_attempts}
//   GET    /v1/jobs, /v1/jobs/ID, /v1/agents (name, labels, last seen, current job)
//   POST   /v1/agent/register                  {name, labels}: 403 when it declares labels its token is not bound to
//   POST   /v1/agent/claim?wait_ms=N&lease_ms=M[&job=ID]  a job for the token's labels (200; with job=ID only
//                                               that one), or 204 after waiting
//   POST   /v1/agent/jobs/ID/heartbeat|complete|fail   {epoch[, result | error]}: 409 when the lease is lost,
//                                               400 (nothing changed) when malformed
//   POST   /v1/agent/jobs/ID/log               {epoch, lines: [{ts, step, err, text}]}: the agent's lines, fenced
//   GET    /v1/jobs/ID/log[?offset=N|follow=1] the job's log (build jobs: the build's), like a build log
//   POST   /v1/agent/jobs/ID/build             {epoch, build: {...}} or {epoch, step: {...}}: a build job's records
//   POST   /v1/agent/jobs/ID/deploy            {epoch, config, release, deployment, artifact}: queue the deploy's
//                                               rollout job for the deployment's network; answers {job}
// Builds (issue 5):
//   POST   /hooks/github/PROJECT              GitHub push event, X-Hub-Signature-256 (401 if wrong), X-GitHub-Delivery
//   POST   /hooks/gitea/PROJECT, /hooks/gitlab/PROJECT   the same with X-Gitea-Signature / X-Gitea-Delivery, or
//                                               X-Gitlab-Token (the secret) / X-Gitlab-Event-UUID
//   GET    /v1/builds, /v1/builds/ID (with steps), /v1/builds/ID/log[?follow=1] (server-sent events)
//   POST   /v1/builds {project, branch[, sha]}  manual; POST /v1/builds/ID/cancel
//   POST   /v1/agent/jobs/ID/store             {epoch, call, ...}: the rollout's journal and lock, on the
//                                               server, fenced by the lease (server/job_store_rpc.h)
// PUT creates (201) or replaces (200); DELETE answers 204. Errors are
// {"error": {"code": "not_found", "message": "..."}} with 400 (bad input),
// 404 (unknown object, naming it), 409 (exists / busy), 500.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>
#include <string>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <thread>

#include "core/error.h"
#include "inventory/service.h"
#include "build/build_service.h"

namespace httplib {
class Server;
}

namespace sp {

struct ApiServerOptions {
  int threads = 16;                       // Worker threads (keep-alive clients each hold one).
  size_t max_body_bytes = 64u << 20;
  inventory::Service::Teardown teardown;  // Run when a personal deployment is released or expires.
  std::function<int64_t()> now_ms;        // Wall clock (claims' TTL, leases); default: the real one.
  QueueStore* queue = nullptr;            // Jobs and the agent protocol; none: those routes answer 404.
  // The journal and locks of rollouts agents run (POST /v1/agent/jobs/ID/store).
  JournalStore* journal = nullptr;
  LockStore* locks = nullptr;
  // Builds (issue 5): webhooks, /v1/builds; none: those routes answer 404.
  BuildService* builds = nullptr;
  BuildStore* build_store = nullptr;
  // How often claims past their TTL are released (with teardown); 0: never.
  std::chrono::milliseconds expire_every{0};
  // Agents' log lines of jobs: <job_log_dir>/<job id>.log (a build job's go
  // to its build's log); empty: not kept (those routes answer 404).
  std::string job_log_dir;
  // A build running on an agent asks for its deploy (POST
  // /v1/agent/jobs/ID/deploy): the server resolves the target, freezes the
  // plan and queues the rollout job; answers its id. None: 404.
  std::function<Result<int64_t>(const DeployRequest& request)> deploy_start;
};

// Where a job's log lines are kept: <dir>/<job id>.log.
std::string JobLogPath(const std::string& dir, int64_t job_id);
inventory::Doc ClaimToJson(const ClaimRecord& c);
inventory::Doc JobToJson(const Job& j);
inventory::Doc BuildToJson(const BuildRecord& b);
// The resolve endpoint's answer (also printed by `sallyport inventory resolve`).
inventory::Doc ResolvedToJson(const ResolvedTarget& t);

class ApiServer {
 public:
  ApiServer(inventory::Service& inventory, ApiServerOptions options = {});
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port (port 0: any free port) and serves on a background thread.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  // Stops accepting, finishes requests in flight, joins.
  void Stop();
  // A job was enqueued elsewhere in this process: wake the long-polling claims.
  void JobsEnqueued();

 private:
  void Routes();
  void JobRoutes();
  void BuildRoutes();
  inventory::Service& inventory_;
  ApiServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  int listen_fd_ = -1;
  // Resolve answers of the current store revision (deployments without a
  // dynamic source): a resolve is then one revision check and a lookup.
  std::mutex cache_mu_;
  int64_t cache_revision_ = -1;
  std::unordered_map<std::string, std::string> resolve_cache_;
  // Releases expired claims every options_.expire_every until Stop.
  std::thread expirer_;
  std::mutex expire_mu_;
  std::condition_variable expire_cv_;
  bool stopping_ = false;
  // Wakes long-polling claims when a job is enqueued here.
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  int64_t jobs_enqueued_ = 0;
  std::mutex log_mu_;  // Appends to job logs.
};

}  // namespace sp
