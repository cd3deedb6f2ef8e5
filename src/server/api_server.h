// `sallyport server`'s HTTP API (versioned under /v1, JSON in and out). The
// routes are declared in one table per resource, each route with who may
// call it (http.h):
//   inventory_routes.cc  the inventory service, resolve, personal claims
//   job_routes.cc        jobs, their logs, agents seen
//   agent_routes.cc      the agent protocol (bearer token of an agent)
//   rollout_routes.cc    rollouts and their journal, locks
//   rollout_start_routes.cc  rollouts and rollbacks the server plans
//   build_routes.cc      projects and builds
//   hook_routes.cc       push webhooks (their own signatures)
// Errors are {"error": {"code": "not_found", "message": "..."}} with 400
// (bad input), 401, 403, 404 (unknown object, naming it), 409 (exists /
// busy / lease lost), 500, 503. docs/api.md lists every route.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "build/build_log.h"
#include "build/build_service.h"
#include "build/credentials.h"
#include "core/clock.h"
#include "core/error.h"
#include "inventory/service.h"
#include "notify/notify.h"
#include "rollout/journal.h"
#include "rollout/lock.h"
#include "server/http.h"
#include "server/http_server.h"
#include "server/token_cache.h"
#include "auth/password.h"

namespace sp {

struct ApiServerOptions {
  http::HttpServerOptions http;           // Threads, body limit.
  Clock* clock = nullptr;                 // Required: claims' TTL, leases, waits.
  inventory::Service::Teardown teardown;  // Run when a personal deployment is released or expires.
  QueueStore* queue = nullptr;            // Jobs and the agent protocol; none: those routes answer 404.
  // API tokens and the audit trail. None: only agents' tokens are known (every
  // other route but the public ones answers 401) and nothing is audited.
  auth::AuthStore* auth = nullptr;
  // The journal and locks (rollouts, and the calls of agents' rollouts).
  JournalStore* journal = nullptr;
  LockStore* locks = nullptr;
  // Notifications' records, shown with their rollout; none: not shown.
  NotifyStore* notify = nullptr;
  // Builds: webhooks, /v1/builds, /v1/projects; none: those routes answer 404.
  BuildService* builds = nullptr;
  BuildStore* build_store = nullptr;
  // How often claims past their TTL are released (with teardown); 0: never.
  std::chrono::milliseconds expire_every{0};
  // How often rollout jobs that ran out of attempts are looked for, each
  // still-running rollout's reconcile job queued (QueueReconciles); 0: never.
  std::chrono::milliseconds reconcile_every{2000};
  // Retention: ended jobs (and their logs) and build logs not written for
  // this long are removed, at start and then every half of it (at most
  // hourly); 0: kept forever.
  std::chrono::milliseconds retain{0};
  std::string build_log_dir;  // Where BuildService keeps builds' logs ("": none).
  // Agents' log lines of jobs: <job_log_dir>/<job id>.log (a build job's go
  // to its build's log); empty: not kept (those routes answer 404).
  std::string job_log_dir;
  int64_t log_cap_bytes = kDefaultLogCapBytes;  // Each job's log stops there, with a marker (build_log.h).
  // A build running on an agent asks for its deploy (POST
  // /v1/agent/jobs/ID/deploy): the server resolves the target, freezes the
  // plan and queues the rollout job; answers its id. None: 404.
  std::function<Result<int64_t>(const DeployRequest& request)> deploy_start;
  // The admin's credential bindings, for an agent's job asking for the
  // credential it uses (BoundCredentials); none: those calls answer 404.
  CredentialReader read_credential;
  // Seals a secret's value for the store (PUT /v1/projects/P/secrets/NAME):
  // an Ansible Vault envelope under the server's own vault password, which no
  // writer needs (so an envelope copied from elsewhere can never be replayed
  // as a stored secret). None (no vault password): those writes answer 503.
  std::function<Result<std::string>(const std::string& value)> seal_secret;
};

// Where a job's log lines are kept: <dir>/<job id>.log.
std::string JobLogPath(const std::string& dir, int64_t job_id);

// What every route table reaches: the stores and services, and the state
// the routes share (long-polling claims, job log appends, resolve cache).
struct ServerContext {
  ServerContext(inventory::Service& inv, const ApiServerOptions& o) : inventory(inv), options(o), tokens(o) {}
  inventory::Service& inventory;
  const ApiServerOptions& options;
  TokenCache tokens;  // Who holds a bearer token (token_cache.h).
  auth::LoginLimiter logins;  // Failed logins per user and per peer.
  int64_t Now() const { return options.clock->WallMs(); }
  // Long-polling claims wait on this; JobsEnqueued wakes them.
  std::mutex jobs_mu;
  std::condition_variable jobs_cv;
  int64_t jobs_enqueued = 0;
  void JobsEnqueued();
  std::mutex log_mu;  // Appends to job logs.
  // Resolve answers of the current store revision (deployments without a
  // dynamic source): a resolve is then one revision check and a lookup.
  std::mutex cache_mu;
  int64_t cache_revision = -1;
  std::unordered_map<std::string, std::string> resolve_cache;
};

std::vector<http::Route> InventoryRoutes(ServerContext& ctx);
std::vector<http::Route> JobRoutes(ServerContext& ctx);
std::vector<http::Route> AgentRoutes(ServerContext& ctx);
std::vector<http::Route> RolloutRoutes(ServerContext& ctx);
std::vector<http::Route> RolloutStartRoutes(ServerContext& ctx);
std::vector<http::Route> BuildRoutes(ServerContext& ctx);
std::vector<http::Route> HookRoutes(ServerContext& ctx);
std::vector<http::Route> AuthRoutes(ServerContext& ctx);

// Who holds a bearer token: an API token (o.auth) or an agent's (o.queue),
// live at o.clock's time; read from the store at every call (the server
// uses TokenCache; this is what the cache saves, in bench_token_check).
http::Router::Authenticate MakeAuthenticator(const ApiServerOptions& o);

class ApiServer {
 public:
  ApiServer(inventory::Service& inventory, ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port (port 0: any free port) and serves on a background thread.
  Status Start(const std::string& host, int port);
  int port() const { return http_.port(); }
  // Stops accepting, finishes requests in flight, joins.
  void Stop();
  // A job was enqueued elsewhere in this process: wake the long-polling claims.
  void JobsEnqueued() { ctx_.JobsEnqueued(); }
  // Every route, for tests that call them without sockets.
  const http::Router& router() const { return router_; }

 private:
  ApiServerOptions options_;
  ServerContext ctx_;
  http::Router router_;
  http::HttpServer http_;
  // Runs `chore` every `period` on its own thread until Stop (`first_now`:
  // once at once, too).
  void Every(std::chrono::milliseconds period, std::function<void()> chore, bool first_now = false);
  // Releases expired claims (options_.expire_every).
  void ExpireClaims();
  // Queues the reconciles of dead rollout jobs (options_.reconcile_every).
  void ReconcileDeadRollouts();
  // Removes what is older than options_.retain.
  void Prune();
  std::vector<std::thread> chores_;
  std::mutex chores_mu_;
  std::condition_variable chores_cv_;
  bool stopping_ = false;
  int64_t dead_since_ms_ = 0;  // The dead jobs ReconcileDeadRollouts looks at.
};

}  // namespace sp
