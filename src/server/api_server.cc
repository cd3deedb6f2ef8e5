#include "server/api_server.h"

#include <algorithm>
#include <cstdio>

#include "core/digest.h"
#include "core/file.h"
#include "core/text.h"
#include "deploy/left_rollouts.h"

namespace sp {

std::string JobLogPath(const std::string& dir, int64_t job_id) { return dir + "/" + std::to_string(job_id) + ".log"; }

void ServerContext::JobsEnqueued() {
  {
    std::lock_guard lk(jobs_mu);
    ++jobs_enqueued;
  }
  jobs_cv.notify_all();
}

// A bearer token is an API token (with scopes) or an agent's (bound to its
// labels); only their SHA-256 is stored. This one reads the store at every
// call (LookUpToken); the server's TokenCache reads it at most every 500 ms.
http::Router::Authenticate MakeAuthenticator(const ApiServerOptions& o) {
  return [&o](const std::string& bearer) -> Result<http::Caller> {
    SP_ASSIGN_OR_RETURN(auto holder, LookUpToken(o, Sha256Hex(bearer), o.clock->WallMs()));
    if (!holder) return Err(ErrorCode::kUnauthenticated, kTokenRefused);
    return holder->caller;
  };
}

namespace {

// Every mutating request's record, at the router (the one place that
// enforces scopes). A record that cannot be written is reported, not fatal.
http::Router::Audit Auditor(const ApiServerOptions& o) {
  if (!o.auth) return nullptr;
  return [&o](const auth::AuditRecord& record) {
    auth::AuditRecord r = record;
    r.at_ms = o.clock->WallMs();
    if (auto st = o.auth->AppendAudit(r); !st) {
      std::fprintf(stderr, "sallyport server: audit: %s\n", st.error().message.c_str());
    }
  };
}

}  // namespace

ApiServer::ApiServer(inventory::Service& inventory, ApiServerOptions options)
    : options_(std::move(options)),
      ctx_{inventory, options_},
      router_(ctx_.tokens.Authenticator(), Auditor(options_)),
      http_(router_, options_.http) {
  SP_CHECK(options_.clock);
  router_.Add(InventoryRoutes(ctx_));
  router_.Add(JobRoutes(ctx_));
  router_.Add(AgentRoutes(ctx_));
  router_.Add(RolloutRoutes(ctx_));
  router_.Add(RolloutStartRoutes(ctx_));
  router_.Add(BuildRoutes(ctx_));
  router_.Add(HookRoutes(ctx_));
  router_.Add(AuthRoutes(ctx_));
}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::Start(const std::string& host, int port) {
  SP_TRY(http_.Start(host, port));
  if (options_.expire_every.count() > 0) Every(options_.expire_every, [this] { ExpireClaims(); });
  if (options_.reconcile_every.count() > 0 && options_.queue && options_.journal) {
    Every(options_.reconcile_every, [this] { ReconcileDeadRollouts(); });
  }
  if (options_.retain.count() > 0 && options_.queue) {
    // The first pass on the chore's thread too: a large store never delays serving.
    const auto period = std::clamp(options_.retain / 2, std::chrono::milliseconds(1'000),
                                   std::chrono::milliseconds(3'600'000));
    Every(period, [this] { Prune(); }, /*first_now=*/true);
  }
  return Ok();
}

void ApiServer::Every(std::chrono::milliseconds period, std::function<void()> chore, bool first_now) {
  chores_.emplace_back([this, period, chore = std::move(chore), first_now] {
    if (first_now) chore();
    std::unique_lock lk(chores_mu_);
    while (!chores_cv_.wait_for(lk, period, [this] { return stopping_; })) {
      lk.unlock();
      chore();
      lk.lock();
    }
  });
}

void ApiServer::ExpireClaims() {
  auto released = ctx_.inventory.Expire(ctx_.Now(), options_.teardown);
  if (!released) {
    std::fprintf(stderr, "sallyport server: releasing expired claims: %s\n", released.error().message.c_str());
    return;
  }
  for (const auto& c : *released) {
    std::printf("sallyport server: claim %s/%s expired: torn down, host %s returned to the pool\n", c.stack.c_str(),
                c.deployment.c_str(), c.host.c_str());
  }
  std::fflush(stdout);
}

void ApiServer::ReconcileDeadRollouts() {
  const int64_t now = ctx_.Now();
  auto queued = QueueReconciles(*options_.queue, *options_.journal, dead_since_ms_, now);
  if (!queued) {
    std::fprintf(stderr, "sallyport server: reconciling dead rollout jobs: %s\n", queued.error().message.c_str());
    return;
  }
  // Looked at again for a minute: one that died as this pass read is not missed.
  dead_since_ms_ = now - 60'000;
  bool woke = false;
  for (const Job& j : *queued) {
    if (j.created_ms != now) continue;  // Queued by an earlier pass.
    std::printf("sallyport server: reconcile job %lld queued: %s\n", static_cast<long long>(j.id),
                ReconcileReasonOf(j.spec.payload).c_str());
    woke = true;
  }
  std::fflush(stdout);
  if (woke) ctx_.JobsEnqueued();
}

void ApiServer::Prune() {
  const int64_t before = ctx_.Now() - options_.retain.count();
  auto jobs = options_.queue->PruneJobs(before, 100'000);
  if (!jobs) {
    std::fprintf(stderr, "sallyport server: retention: %s\n", jobs.error().message.c_str());
    return;
  }
  // Logs go by their age: an ended job's was last written by the time it
  // ended, and a build's log is no row of this queue.
  int logs = 0;
  for (const std::string& dir : {options_.job_log_dir, options_.build_log_dir}) {
    if (!dir.empty()) logs += RemoveFilesOlderThan(dir, ".log", before);
  }
  if (jobs->empty() && logs == 0) return;
  std::printf("sallyport server: retention: removed %zu ended job(s) and %d log file(s) older than %s\n",
              jobs->size(), logs, FormatDuration(options_.retain).c_str());
  std::fflush(stdout);
}

void ApiServer::Stop() {
  {
    std::lock_guard lk(chores_mu_);
    stopping_ = true;
  }
  chores_cv_.notify_all();
  for (auto& t : chores_) t.join();
  chores_.clear();
  http_.Stop();
}

}  // namespace sp
