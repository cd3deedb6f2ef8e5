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

// runs one call for `job` (whose lease the caller has checked)
// against the server's journal and locks. Only the job's own rollout scope
// may be locked, and only rollouts of that scope read or written. A lock
// still held by an earlier lease of the same job (an agent that died) is
// taken over: that agent is fenced out already.
// An agent's lock TTL (lock_acquire, lock_renew) is clamped to this range.
inline constexpr int64_t kMinLockTtlMs = 1'000, kMaxLockTtlMs = 600'000;

Result<nlohmann::json> ServeJobStoreCall(JournalStore& journal, LockStore& locks, const Job& job,
                                         const std::string& scope, int64_t now_ms, const nlohmann::json& body);

}  // namespace sp
