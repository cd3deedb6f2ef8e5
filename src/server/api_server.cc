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
// labels); only their SHA-256 is stored, and each lookup reads the store, so
// a revocation holds at once on every server sharing it. A token's last use
// is written at most once a minute.
http::Router::Authenticate MakeAuthenticator(const ApiServerOptions& o) {
  return [&o](const std::string& bearer) -> Result<http::Caller> {
    const std::string sha = Sha256Hex(bearer);
    const int64_t now = o.clock->WallMs();
    const Error refused{ErrorCode::kUnauthenticated, "unknown, revoked or expired token"};
    if (o.auth) {
      SP_ASSIGN_OR_RETURN(auto token, o.auth->ApiTokenFor(sha));
      if (token) {
        if (!auth::Live(*token, now)) return Err(refused);
        if (now - token->last_used_ms >= 60'000) (void)o.auth->TouchApiToken(token->name, now);
        return http::Caller{"token:" + token->name, token->scopes, std::nullopt};
      }
    }
    if (o.queue) {
      SP_ASSIGN_OR_RETURN(auto agent, o.queue->AgentTokenFor(sha));
      if (agent) {
        if (agent->expires_ms != 0 && now >= agent->expires_ms) return Err(refused);
        return http::Caller{"agent:" + agent->name, {}, *agent};
      }
    }
    return Err(refused);
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
