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

Result<std::optional<TokenHolder>> LookUpToken(const ApiServerOptions& o, const std::string& sha, int64_t now_ms) {
  if (o.auth) {
    SP_ASSIGN_OR_RETURN(auto token, o.auth->ApiTokenFor(sha));
    if (token) {
      if (!auth::Live(*token, now_ms)) return std::optional<TokenHolder>();
      if (now_ms - token->last_used_ms >= 60'000) (void)o.auth->TouchApiToken(token->name, now_ms);
      return std::optional<TokenHolder>({{"token:" + token->name, token->scopes, std::nullopt}, token->expires_ms});
    }
  }
  if (o.queue) {
    SP_ASSIGN_OR_RETURN(auto agent, o.queue->AgentTokenFor(sha));
    if (agent && (agent->expires_ms == 0 || now_ms < agent->expires_ms)) {
      return std::optional<TokenHolder>({{"agent:" + agent->name, {}, *agent}, agent->expires_ms});
    }
  }
  return std::optional<TokenHolder>();
}

Result<http::Caller> TokenCache::Authenticate(const std::string& bearer) {
  const std::string sha = Sha256Hex(bearer);
  const int64_t mono = o_.clock->MonotonicMs();
  const int64_t now = o_.clock->WallMs();
  auto answer = [&](const Entry& e) -> Result<http::Caller> {
    if (!e.holder || (e.holder->expires_ms != 0 && now >= e.holder->expires_ms)) {
      return Err(ErrorCode::kUnauthenticated, kTokenRefused);
    }
    return e.holder->caller;
  };
  {
    std::lock_guard lk(mu_);
    auto it = entries_.find(sha);
    if (it != entries_.end() && mono - it->second.fetched_ms < ttl_.count()) return answer(it->second);
  }
  Entry e;
  e.fetched_ms = mono;
  SP_ASSIGN_OR_RETURN(e.holder, LookUpToken(o_, sha, now));
  std::lock_guard lk(mu_);
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[sha] = e;
  return answer(e);
}

}  // namespace sp
