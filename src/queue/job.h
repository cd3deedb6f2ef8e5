// Jobs: the durable queue that hands builds and rollouts to agents, and
// the agents' identities (tokens bound to labels).
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

// The durable job queue (issue 6): jobs leased to one worker at a time, the
// lease renewed by heartbeats and fenced by an epoch that changes every time
// the job is (re)claimed. Every operation is one transaction.
struct JobSpec {
  std::string kind;     // build | rollout | reconcile | hook
  // For a rollout: the frozen plan (JSON); for a reconcile: {plan, reason, dead_job}.
  std::string payload;
  std::map<std::string, std::string> labels;  // Required: a worker must have every one.
  int priority = 0;                  // Higher first; then oldest first.
  std::string idempotency_key;       // Non-empty: enqueueing it again gives the same job.
  int max_attempts = 3;              // Claims (incl. expired leases) before the job is dead.
  int64_t backoff_ms = 1000;         // Before retry n: backoff_ms * 2^(n-1), capped at 5 min.
};

enum class JobState { kQueued, kLeased, kSucceeded, kDead, kCanceled };
inline constexpr std::array<EnumName<JobState>, 5> kJobStateNames{{
    {JobState::kQueued, "queued"},
    {JobState::kLeased, "leased"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kDead, "dead"},
    {JobState::kCanceled, "canceled"},
}};
inline std::string_view JobStateName(JobState s) { return NameIn(kJobStateNames, s); }
inline std::optional<JobState> ParseJobState(std::string_view s) { return ParseIn(kJobStateNames, s); }
// Ended: nothing more happens to it unless someone retries it.
inline bool JobEnded(JobState s) { return s == JobState::kSucceeded || s == JobState::kDead || s == JobState::kCanceled; }

struct Job {
  int64_t id = 0;
  JobSpec spec;
  JobState state = JobState::kQueued;
  int attempts = 0;              // Times claimed.
  std::string lease_owner;
  int64_t epoch = 0;             // Increases with every claim: the fencing token.
  int64_t lease_expires_ms = 0;
  int64_t not_before_ms = 0;     // Backoff: not claimable before this.
  std::string result, error;     // error: the last failure (the dead-letter reason when dead).
  int64_t created_ms = 0, updated_ms = 0;
};

// Whether a worker with labels `have` may take a job that needs `need`
// (every label of the job, with the same value).
inline bool LabelsSatisfy(const std::map<std::string, std::string>& have,
                          const std::map<std::string, std::string>& need) {
  for (const auto& [k, v] : need) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

class QueueStore {
 public:
  virtual ~QueueStore() = default;
  // A new job, or the existing one with the same idempotency key.
  virtual Result<Job> Enqueue(const JobSpec& spec, int64_t now_ms) = 0;
  // The best claimable job whose labels `worker_labels` satisfy: queued and
  // due, or leased with an expired lease (a new epoch; a job out of attempts
  // is dead-lettered instead). nullopt when there is none.
  // `only_job` (non-zero): that job or nothing (an agent taking the
  // rollout its own build queued).
  virtual Result<std::optional<Job>> Claim(const std::string& owner,
                                           const std::map<std::string, std::string>& worker_labels,
                                           int64_t now_ms, int64_t lease_ms, int64_t only_job = 0) = 0;
  // These three succeed only for the current lease (owner and epoch, not
  // expired); anything else is kConflict ("lease lost"), and changes nothing.
  virtual Status Heartbeat(int64_t id, int64_t epoch, const std::string& owner, int64_t now_ms, int64_t lease_ms) = 0;
  // Complete keeps the owner: who ran the job stays on record.
  virtual Status Complete(int64_t id, int64_t epoch, const std::string& owner, const std::string& result,
                          int64_t now_ms) = 0;
  // A failed attempt: queued again after backoff, or dead when out of attempts.
  virtual Status Fail(int64_t id, int64_t epoch, const std::string& owner, const std::string& error,
                      int64_t now_ms) = 0;
  // Given back by its agent (it is stopping) before its end: queued again at
  // once for any agent, the attempt not counted, `note` kept as the error.
  virtual Status HandBack(int64_t id, int64_t epoch, const std::string& owner, const std::string& note,
                          int64_t now_ms) = 0;
  virtual Result<Job> GetJob(int64_t id) = 0;
  virtual Result<std::vector<Job>> ListJobs(int limit) = 0;
  // Jobs of `kind` that will not run again — dead (out of attempts) or
  // canceled — last changed at or after `changed_since_ms`, oldest first,
  // at most `limit`.
  virtual Result<std::vector<Job>> DeadJobs(const std::string& kind, int64_t changed_since_ms, int limit) = 0;
  // Retention: deletes at most `limit` ended jobs (succeeded, dead,
  // canceled) last changed before `ended_before_ms`; their ids.
  virtual Result<std::vector<int64_t>> PruneJobs(int64_t ended_before_ms, int limit) = 0;
  virtual Status Cancel(int64_t id, int64_t now_ms) = 0;   // Queued or leased -> canceled.
  virtual Status Retry(int64_t id, int64_t now_ms) = 0;    // Dead or canceled -> queued, attempts reset.

  // Agent tokens: only a token's SHA-256 is stored, with the name and the
  // labels it is bound to (an agent claims with these, never with labels it
  // declares itself).
  struct AgentToken {
    std::string name;
    std::map<std::string, std::string> labels;
    int64_t expires_ms = 0;  // 0: never. A revoked token is not found at all.
  };
  virtual Status PutAgentToken(const std::string& token_sha256, const AgentToken& agent) = 0;
  virtual Result<std::optional<AgentToken>> AgentTokenFor(const std::string& token_sha256) = 0;

  // What the server last saw of each agent (`sallyport agent list`).
  struct AgentSeen {
    std::string name;
    std::map<std::string, std::string> labels;
    int64_t last_seen_ms = 0;
    int64_t current_job = 0;  // 0: none.
  };
  // `job`: the job it now holds (0: none); nullopt keeps the recorded one.
  virtual Status TouchAgent(const AgentToken& agent, int64_t now_ms, std::optional<int64_t> job) = 0;
  virtual Result<std::vector<AgentSeen>> Agents() = 0;
};

}  // namespace sp
