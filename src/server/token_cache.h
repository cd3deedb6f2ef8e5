// Who holds a bearer token, for every request: an API token (o.auth) or an
// agent's (o.queue). The store is asked at most once per `ttl` per token (a
// token revoked or created by another server process sharing the store is
// seen within it); this server's own token changes clear the cache at once.
// Expiry is checked at every request against the clock.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "server/http.h"

namespace sp {

struct ApiServerOptions;

inline constexpr const char* kTokenRefused = "unknown, revoked or expired token";

// Who holds a token, and until when (wall clock; 0: never).
struct TokenHolder {
  http::Caller caller;
  int64_t expires_ms = 0;
};

// The live API token (o.auth), else agent's token (o.queue), of this SHA-256
// at `now_ms`, read from the store; none when there is no live one. An API
// token's last use is written at most once a minute.
Result<std::optional<TokenHolder>> LookUpToken(const ApiServerOptions& o, const std::string& sha, int64_t now_ms);

class TokenCache {
 public:
  explicit TokenCache(const ApiServerOptions& o, Millis ttl = Millis(500));
  http::Router::Authenticate Authenticator();
  // A token was created or revoked here.
  void Clear();

 private:
  struct Entry {
    std::optional<TokenHolder> holder;  // None: no such (live) token.
    int64_t fetched_ms = 0;             // Monotonic.
  };
  Result<http::Caller> Authenticate(const std::string& bearer);
  const ApiServerOptions& o_;
  const Millis ttl_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // By the token's SHA-256.
};

}  // namespace sp
