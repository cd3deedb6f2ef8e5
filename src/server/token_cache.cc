#include "server/token_cache.h"

#include "core/digest.h"
#include "server/api_server.h"

namespace sp {

namespace {

constexpr size_t kMaxEntries = 10'000;  // Beyond: cleared (random tokens cannot grow it without bound).

}  // namespace

TokenCache::TokenCache(const ApiServerOptions& o, Millis ttl) : o_(o), ttl_(ttl) {}

http::Router::Authenticate TokenCache::Authenticator() {
  return [this](const std::string& bearer) { return Authenticate(bearer); };
}

void TokenCache::Clear() {
  std::lock_guard lk(mu_);
  entries_.clear();
}

Result<http::Caller> TokenCache::Authenticate(const std::string& bearer) {
  const std::string sha = Sha256Hex(bearer);
  const int64_t mono = o_.clock->MonotonicMs();
  const int64_t now = o_.clock->WallMs();
  const Error refused{ErrorCode::kUnauthenticated, "unknown, revoked or expired token"};
  auto answer = [&](const Entry& e) -> Result<http::Caller> {
    if (!e.caller || (e.expires_ms != 0 && now >= e.expires_ms)) return Err(refused);
    return *e.caller;
  };
  {
    std::lock_guard lk(mu_);
    auto it = entries_.find(sha);
    if (it != entries_.end() && mono - it->second.fetched_ms < ttl_.count()) return answer(it->second);
  }
  Entry e;
  e.fetched_ms = mono;
  if (o_.auth) {
    SP_ASSIGN_OR_RETURN(auto token, o_.auth->ApiTokenFor(sha));
    if (token && auth::Live(*token, now)) {
      if (now - token->last_used_ms >= 60'000) (void)o_.auth->TouchApiToken(token->name, now);
      e.caller = http::Caller{"token:" + token->name, token->scopes, std::nullopt};
      e.expires_ms = token->expires_ms;
    }
  }
  if (!e.caller && o_.queue) {
    SP_ASSIGN_OR_RETURN(auto agent, o_.queue->AgentTokenFor(sha));
    if (agent && (agent->expires_ms == 0 || now < agent->expires_ms)) {
      e.caller = http::Caller{"agent:" + agent->name, {}, *agent};
      e.expires_ms = agent->expires_ms;
    }
  }
  std::lock_guard lk(mu_);
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[sha] = e;
  return answer(e);
}

}  // namespace sp
