// The lease lock of a rollout scope (stack/release/deployment): one holder
// at a time, renewed while it acts, taken over once expired.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/enum_names.h"
#include "core/error.h"

namespace sp {

struct Lease {
  std::string key;       // "stack/release/deployment"
  std::string holder;    // "user@machine pid 123"
  std::string token;     // Random; proves ownership for renew/release.
  std::string reason;    // "rollout r-abc v2" (LockReason)
  int64_t acquired_ms = 0, expires_ms = 0;
  int64_t pid = 0;       // Holder pid, and
  std::string machine;   // machine name: a dead local holder can be detected.
};

class LockStore {
 public:
  virtual ~LockStore() = default;
  // Takes the lease if free or expired (kConflict naming holder, reason and
  // expiry otherwise). `now_ms` is wall time.
  virtual Result<Lease> Acquire(const Lease& wanted, int64_t now_ms, int64_t ttl_ms) = 0;
  // Extends a lease we hold (kConflict if it was taken over).
  virtual Status Renew(const std::string& key, const std::string& token, int64_t now_ms, int64_t ttl_ms) = 0;
  virtual Status Release(const std::string& key, const std::string& token) = 0;
  virtual Result<std::optional<Lease>> Get(const std::string& key) = 0;
  virtual Result<std::vector<Lease>> List() = 0;
  // Removes whoever holds it (operator action: `sallyport lock release --force`).
  virtual Status ForceRelease(const std::string& key) = 0;
};

// A scope lock's reason: "<plan kind> <rollout id> <version>", which people
// read in `lock list` and RolloutIdInLockReason reads back.
std::string LockReason(std::string_view kind, std::string_view rollout_id, std::string_view version);
// The rollout id a LockReason names; "" if the reason has none.
std::string RolloutIdInLockReason(std::string_view reason);

// An operator's release of `key` (`sallyport lock release`, DELETE
// /v1/locks/...). Refused with kConflict — saying who holds it and what
// --force risks — while the holder is live: as `holder_alive` says (a
// process on this machine), else (nullopt, or empty) while its lease has
// not expired. With `force`, or once the holder is dead, the lock is
// removed; kNotFound when free.
Status OperatorRelease(LockStore& locks, const std::string& key, bool force, int64_t now_ms,
                       const std::function<std::optional<bool>(const Lease&)>& holder_alive);

}  // namespace sp
