#include "server/api_server.h"

#include <cstdio>

#include "core/digest.h"

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
  if (options_.expire_every.count() <= 0) return Ok();
  expirer_ = std::thread([this] {
    std::unique_lock lk(expire_mu_);
    while (!expire_cv_.wait_for(lk, options_.expire_every, [this] { return stopping_; })) {
      lk.unlock();
      auto released = ctx_.inventory.Expire(ctx_.Now(), options_.teardown);
      if (!released) {
        std::fprintf(stderr, "sallyport server: releasing expired claims: %s\n", released.error().message.c_str());
      } else {
        for (const auto& c : *released) {
          std::printf("sallyport server: claim %s/%s expired: torn down, host %s returned to the pool\n",
                      c.stack.c_str(), c.deployment.c_str(), c.host.c_str());
        }
        std::fflush(stdout);
      }
      lk.lock();
    }
  });
  return Ok();
}

void ApiServer::Stop() {
  if (expirer_.joinable()) {
    {
      std::lock_guard lk(expire_mu_);
      stopping_ = true;
    }
    expire_cv_.notify_all();
    expirer_.join();
  }
  http_.Stop();
}

}  // namespace sp
