// People's passwords: scrypt (OpenSSL; memory-hard: N=2^15, r=8, p=1, 32 MiB
// a derivation) with a random 16-byte salt, stored as
// "scrypt$15$8$1$<salt base64>$<key base64>"; and the limit on failed logins
// that applies before any derivation runs.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "core/error.h"

namespace sp::auth {

// kInvalidArgument for a password shorter than 12 characters or over 1,024.
Result<std::string> HashPassword(const std::string& password);
// Whether `password` derives `encoded` (constant-time compare); false for
// anything malformed.
bool VerifyPassword(const std::string& password, const std::string& encoded);
// What an unknown user's login is compared with, so that it costs the same.
const std::string& DecoyPasswordHash();

// Failed logins in a sliding minute: per user (10) and per peer address
// (30). Past either, logins are refused without deriving anything until the
// oldest failure in the window is a minute old. Thread-safe.
class LoginLimiter {
 public:
  LoginLimiter(int per_user = 10, int per_peer = 30, int64_t window_ms = 60'000);
  // 0 when a login may be tried now, else how long to wait (ms).
  int64_t RetryAfter(const std::string& user, const std::string& peer, int64_t now_ms);
  void Failed(const std::string& user, const std::string& peer, int64_t now_ms);

 private:
  int64_t Wait(std::deque<int64_t>& failures, int limit, int64_t now_ms) const;
  const int per_user_, per_peer_;
  const int64_t window_ms_;
  std::mutex mu_;
  std::map<std::string, std::deque<int64_t>> users_, peers_;
};

}  // namespace sp::auth
