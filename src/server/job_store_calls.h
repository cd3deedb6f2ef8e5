// The server's side of an agent's journal and lock calls (the agent's:
// agent/remote_job_store.h).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "queue/job.h"
#include "rollout/journal.h"
#include "rollout/lock.h"

namespace sp {

// Who makes a store call, and what that allows.
struct StoreCaller {
  std::string who;    // The lock holder's prefix: "job 12 ", "cli token:alice ".
  std::string owner;  // Shown in the holder after it: the agent's name, "CLI".
  // lock_acquire takes over a lock still held by an earlier lease with the
  // same prefix (a job's earlier agent, fenced out already).
  bool take_over_own = true;
  // lock_force_release of any holder's lock (a deployer of the scope may
  // force a release anyway: DELETE /v1/locks/...?force=1); else only an
  // earlier lease with the same prefix.
  bool force_release_any = false;
  // Not empty: a CLI that froze its plan itself (-i URL). create_rollout
  // records it in the plan as `submitted_by`, which the server and its
  // agents never act on (RolloutPlan::submitted_by).
  std::string submitted_by;
};

// Runs one call against the server's journal and locks. Only the caller's
// rollout scope (stack/release/deployment) may be locked, and only rollouts
// of that scope read or written.
// A lock TTL asked for (lock_acquire, lock_renew) is clamped to this range.
inline constexpr int64_t kMinLockTtlMs = 1'000, kMaxLockTtlMs = 600'000;

Result<nlohmann::json> ServeStoreCall(JournalStore& journal, LockStore& locks, const StoreCaller& caller,
                                      const std::string& scope, int64_t now_ms, const nlohmann::json& body);

// An agent's call for `job` (whose lease the caller has checked): a lock
// still held by an earlier lease of the same job (an agent that died) is
// taken over: that agent is fenced out already.
Result<nlohmann::json> ServeJobStoreCall(JournalStore& journal, LockStore& locks, const Job& job,
                                         const std::string& scope, int64_t now_ms, const nlohmann::json& body);

}  // namespace sp
