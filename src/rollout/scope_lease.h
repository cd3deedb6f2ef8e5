// The scope lock's lease as every action of a rollout sees it (issue 20).
// While a rollout holds the lock, an action on a host, a runtime or a load
// balancer is allowed only while the lease is still ours: read back from the
// lock store right before the action when `verify_each_action` (a local
// store: a released or taken-over lock is noticed at the very next action,
// not at the next renewal), and otherwise — or when that read fails (a busy
// store, a partition) — while a renewal confirmed it less than three
// quarters of its TTL ago. Once lost, it stays lost: the process makes no
// further action and the next holder reconciles what it left.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "rollout/lock.h"

namespace sp {

class ScopeLease {
 public:
  ScopeLease(LockStore* locks, Clock* clock, bool verify_each_action)
      : locks_(locks), clock_(clock), verify_(verify_each_action) {}
  // The lease was acquired: actions are fenced on it from now on.
  void Held(const Lease& lease, int64_t ttl_ms);
  // A renewal sent at `sent_ms` (the clock's MonotonicMs) was accepted.
  void Renewed(int64_t sent_ms);
  // The store said the lease is no longer ours.
  void Lost(const std::string& why);
  // Released at the end of the rollout: nothing is fenced any more.
  void Dropped();
  // Ok while no lease is held or the held one is still ours; kConflict
  // ("lock lost: ...") otherwise.
  Status Check();
  bool lost() const;

 private:
  Status LostError() const;
  LockStore* locks_;
  Clock* clock_;
  const bool verify_;
  mutable std::mutex mu_;
  std::optional<Lease> lease_;
  int64_t ttl_ms_ = 0;
  int64_t confirmed_until_ = 0;  // MonotonicMs.
  bool lost_ = false;
  std::string why_;
};

}  // namespace sp
