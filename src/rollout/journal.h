// The rollout journal: rollouts with their frozen plans, each host's state
// and every step, written before a step acts and after it ends. One
// narrow interface (JournalStore); the SQLite store backs it, and an
// agent reaches the server's through the job's lease.
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
#include "rollout/states.h"

namespace sp {

// kInterrupted: an operator stopped it (SIGINT/SIGTERM) between batches;
// its untouched hosts keep the old version until `rollout resume` continues it.
enum class RolloutStatus { kRunning, kSucceeded, kFailed, kRolledBack, kInterrupted };
inline constexpr std::array<EnumName<RolloutStatus>, 5> kRolloutStatusNames{{
    {RolloutStatus::kRunning, "running"},
    {RolloutStatus::kSucceeded, "succeeded"},
    {RolloutStatus::kFailed, "failed"},
    {RolloutStatus::kRolledBack, "rolled_back"},
    {RolloutStatus::kInterrupted, "interrupted"},
}};
inline std::string_view RolloutStatusName(RolloutStatus s) { return NameIn(kRolloutStatusNames, s); }
inline std::optional<RolloutStatus> ParseRolloutStatus(std::string_view s) { return ParseIn(kRolloutStatusNames, s); }

struct RolloutRecord {
  std::string id;
  std::string release, deployment;   // Scope key is release + "/" + deployment (with stack).
  std::string stack;
  PlanKind kind = PlanKind::kRollout;
  RolloutStatus status = RolloutStatus::kRunning;
  std::string plan_json;             // The frozen plan.
  std::string error;                 // Final error, if failed.
  int64_t created_ms = 0, updated_ms = 0;
  // Its scope lock's key, as RolloutPlan::ScopeKey.
  std::string ScopeKey() const { return stack + "/" + release + "/" + deployment; }
};

// One line of the journal: written before a step is acted on (phase
// kBegin) and after it completes (kEnd) or fails (kFail).
struct StepRecord {
  int64_t seq = 0;                   // Assigned by the store.
  std::string rollout_id, host;
  Step step = Step::kNone;
  StepPhase phase = StepPhase::kNone;
  int64_t ts_ms = 0;
  std::string detail;                // JSON text.
};

// Per-host summary state, updated with the journal.
struct HostRecord {
  std::string rollout_id, host;
  HostState state = HostState::kPending;
  Step last_step = Step::kNone;
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

}  // namespace sp
