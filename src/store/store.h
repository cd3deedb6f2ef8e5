// Narrow store interfaces: JournalStore (rollouts, plans, host steps) and
// LockStore (lease locks). One SQLite file backs both by default.
#pragma once

#include <cstdint>
#include <map>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sp {

enum class RolloutStatus { kRunning, kSucceeded, kFailed, kRolledBack };
std::string_view RolloutStatusName(RolloutStatus s);
std::optional<RolloutStatus> ParseRolloutStatus(std::string_view s);

struct RolloutRecord {
  std::string id;
  std::string release, deployment;   // Scope key is release + "/" + deployment (with stack).
  std::string stack;
  std::string kind = "rollout";      // "rollout" | "rollback"
  RolloutStatus status = RolloutStatus::kRunning;
  std::string plan_json;             // The frozen plan.
  std::string error;                 // Final error, if failed.
  int64_t created_ms = 0, updated_ms = 0;
};

// One line of the journal: written before a step is acted on (phase
// "begin") and after it completes ("end") or fails ("fail").
struct StepRecord {
  int64_t seq = 0;                   // Assigned by the store.
  std::string rollout_id, host, step, phase;
  int64_t ts_ms = 0;
  std::string detail;                // JSON text.
};

// Per-host summary state, updated with the journal.
struct HostRecord {
  std::string rollout_id, host;
  std::string state;                 // "pending", "in_progress", "done", "failed", "restored", "skipped"
  std::string last_step;
  int64_t out_of_rotation_ms = 0;
  std::string detail;
};

class JournalStore {
 public:
  virtual ~JournalStore() = default;
  virtual Status CreateRollout(const RolloutRecord& r) = 0;
  virtual Status FinishRollout(const std::string& id, RolloutStatus status, const std::string& error) = 0;
  virtual Result<RolloutRecord> GetRollout(const std::string& id) = 0;
  // Most recent rollout of the scope with the given status (any status if nullopt).
  virtual Result<std::optional<RolloutRecord>> Latest(const std::string& stack, const std::string& release,
                                                      const std::string& deployment,
                                                      std::optional<RolloutStatus> status) = 0;
  virtual Result<std::vector<RolloutRecord>> ListRollouts(int limit) = 0;
  virtual Status AppendStep(const StepRecord& s) = 0;
  virtual Result<std::vector<StepRecord>> Steps(const std::string& rollout_id) = 0;
  virtual Status PutHost(const HostRecord& h) = 0;
  virtual Result<std::vector<HostRecord>> Hosts(const std::string& rollout_id) = 0;
};

struct Lease {
  std::string key;       // "stack/release/deployment"
  std::string holder;    // "user@machine pid 123"
  std::string token;     // Random; proves ownership for renew/release.
  std::string reason;    // "rollout r-abc v2"
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

// The inventory: one document per stack (the inventory schema's JSON for
// that stack, see docs/inventory.md), and personal-deployment claims. Every
// write runs in one exclusive transaction, so two server processes sharing
// the store never interleave; a write that fails changes nothing.
struct StackRecord {
  std::string name;
  std::string doc;        // JSON.
  int64_t revision = 0;   // Store-wide revision of its last write.
};

struct ClaimRecord {
  std::string stack, template_name, user, deployment, host;
  int64_t claimed_ms = 0, expires_ms = 0;  // expires_ms 0: no TTL.
};

class InventoryTxn {
 public:
  virtual ~InventoryTxn() = default;
  virtual Result<std::vector<StackRecord>> Stacks() = 0;
  virtual Result<std::optional<StackRecord>> Stack(const std::string& name) = 0;
  virtual Status PutStack(const std::string& name, const std::string& doc) = 0;
  virtual Status DeleteStack(const std::string& name) = 0;
  virtual Result<std::vector<ClaimRecord>> Claims() = 0;
  virtual Status PutClaim(const ClaimRecord& c) = 0;
  virtual Status DeleteClaim(const std::string& stack, const std::string& deployment) = 0;
};

class InventoryStore {
 public:
  virtual ~InventoryStore() = default;
  // Changes with every committed inventory write (cheap: for caches).
  virtual Result<int64_t> InventoryRevision() = 0;
  virtual Result<std::vector<StackRecord>> InventoryStacks() = 0;
  virtual Result<std::vector<ClaimRecord>> InventoryClaims() = 0;
  // Runs `fn` in one write transaction: committed if it returns Ok, rolled
  // back (nothing written) if it returns an error or throws.
  virtual Status InventoryWrite(const std::function<Status(InventoryTxn&)>& fn) = 0;
};

// The durable job queue (issue 6): jobs leased to one worker at a time, the
// lease renewed by heartbeats and fenced by an epoch that changes every time
// the job is (re)claimed. Every operation is one transaction.
struct JobSpec {
  std::string kind;     // build | rollout | hook
  std::string payload;  // For a rollout: the frozen plan (JSON).
  std::map<std::string, std::string> labels;  // Required: a worker must have every one.
  int priority = 0;                  // Higher first; then oldest first.
  std::string idempotency_key;       // Non-empty: enqueueing it again gives the same job.
  int max_attempts = 3;              // Claims (incl. expired leases) before the job is dead.
  int64_t backoff_ms = 1000;         // Before retry n: backoff_ms * 2^(n-1), capped at 5 min.
};

enum class JobState { kQueued, kLeased, kSucceeded, kDead, kCanceled };
std::string_view JobStateName(JobState s);

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
  virtual Result<Job> GetJob(int64_t id) = 0;
  virtual Result<std::vector<Job>> ListJobs(int limit) = 0;
  virtual Status Cancel(int64_t id, int64_t now_ms) = 0;   // Queued or leased -> canceled.
  virtual Status Retry(int64_t id, int64_t now_ms) = 0;    // Dead or canceled -> queued, attempts reset.

  // Agent tokens: only a token's SHA-256 is stored, with the name and the
  // labels it is bound to (an agent claims with these, never with labels it
  // declares itself).
  struct AgentToken {
    std::string name;
    std::map<std::string, std::string> labels;
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

// Builds (issue 5): projects the server watches, one build per (project,
// branch, commit) — the dedupe key, kept across restarts — and its steps.
struct ProjectRecord {
  std::string name;
  std::string git_url;             // git://, http(s)://, ssh:// or file:// (tests use git daemon).
  std::string webhook_secret_ref;  // "file:/path" or "env:NAME"; empty: webhooks refused.
  int64_t created_ms = 0;
  // The remote's credential, a secret reference: http(s) a token
  // ("file:/path" or "env:NAME"); ssh a deploy key ("file:/path" to the
  // private key). Empty: none.
  std::string credential_ref;
  std::string known_hosts;         // ssh: the known_hosts file for the remote's host key.
};

enum class BuildStatus { kQueued, kRunning, kSucceeded, kFailed, kCanceled, kInterrupted, kSuperseded, kSkipped };
std::string_view BuildStatusName(BuildStatus s);
std::optional<BuildStatus> ParseBuildStatus(std::string_view s);

struct BuildRecord {
  int64_t id = 0;
  std::string project, branch, sha;
  std::string trigger;             // poll | webhook | manual
  BuildStatus status = BuildStatus::kQueued;
  std::string author, message;     // Of the commit (after checkout).
  std::string artifact;            // repo@sha256:... once pushed.
  std::string deployment;          // Where a successful build deploys ("" = build only).
  std::string error;
  int64_t created_ms = 0, started_ms = 0, finished_ms = 0;
};

struct BuildStepRecord {
  int64_t build_id = 0;
  int index = 0;
  std::string name, kind, status;  // status: running | succeeded | failed | skipped | canceled
  int exit_code = 0;
  int64_t started_ms = 0, finished_ms = 0;
};

class BuildStore {
 public:
  virtual ~BuildStore() = default;
  virtual Status PutProject(const ProjectRecord& p) = 0;
  virtual Result<std::vector<ProjectRecord>> Projects() = 0;
  virtual Result<std::optional<ProjectRecord>> Project(const std::string& name) = 0;
  // A new queued build, or nullopt when (project, branch, sha) was built or
  // queued before (by any trigger). Queued builds of the same branch that
  // have not started are superseded by it.
  virtual Result<std::optional<BuildRecord>> CreateBuild(const BuildRecord& b) = 0;
  // The oldest queued build, now running (nullopt: none).
  virtual Result<std::optional<BuildRecord>> StartNextBuild(int64_t now_ms) = 0;
  virtual Status UpdateBuild(const BuildRecord& b) = 0;
  virtual Result<BuildRecord> GetBuild(int64_t id) = 0;
  virtual Result<std::vector<BuildRecord>> ListBuilds(int limit) = 0;
  virtual Status PutBuildStep(const BuildStepRecord& s) = 0;
  virtual Result<std::vector<BuildStepRecord>> BuildSteps(int64_t build_id) = 0;
  // After a restart: builds left running become interrupted (never
  // "running" forever); with `requeue` they are queued again instead.
  virtual Result<int> RecoverInterruptedBuilds(bool requeue, int64_t now_ms) = 0;
  // Remembers a webhook delivery id; false when it was seen before.
  virtual Result<bool> FirstDelivery(const std::string& delivery_id, int64_t now_ms) = 0;
};

}  // namespace sp
