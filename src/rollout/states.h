// The rollout's typed states, each with its one table of wire names (the
// journal, the store, events, the API and the CLI's JSON all use these
// names; docs/rollout.md lists them).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/enum_names.h"

namespace sp {

// What a plan does: ship an artifact, return to a previous one, or remove
// a release from its hosts (a personal deployment's end).
enum class PlanKind { kRollout, kRollback, kTeardown };
inline constexpr std::array<EnumName<PlanKind>, 3> kPlanKindNames{{
    {PlanKind::kRollout, "rollout"},
    {PlanKind::kRollback, "rollback"},
    {PlanKind::kTeardown, "teardown"},
}};

// Where one host of a rollout stands.
enum class HostState { kPending, kInProgress, kDone, kFailed, kRestored, kSkipped };
inline constexpr std::array<EnumName<HostState>, 6> kHostStateNames{{
    {HostState::kPending, "pending"},
    {HostState::kInProgress, "in_progress"},
    {HostState::kDone, "done"},
    {HostState::kFailed, "failed"},
    {HostState::kRestored, "restored"},
    {HostState::kSkipped, "skipped"},
}};

// The steps of a host's procedure (in order from pull to confirm_up), and
// the steps around it. kNone: no step (events of the whole rollout).
enum class Step {
  kNone,
  kPull,
  kDrain,
  kWaitSessions,
  kMaint,
  kStop,
  kStart,
  kHealth,
  kSmoke,
  kReady,
  kConfirmUp,
  kCleanup,
  kRestore,
  kReconcile,
  kTeardown,
  kLock,
  // Hooks (the deployment's, inventory.h HooksSpec), journaled like steps:
  // the rollout's on host "", the host's on the host.
  kPreRollout,
  kPreHost,
  kPostHost,
  kOnFailure,
  kPostRollout,
  // The rollout's alert silence (HooksSpec::silence): made (or adopted)
  // before the first host, expired at the end; journaled on host "".
  kSilence,
  kUnsilence,
};
inline constexpr std::array<EnumName<Step>, 23> kStepNames{{
    {Step::kNone, ""},
    {Step::kPull, "pull"},
    {Step::kDrain, "drain"},
    {Step::kWaitSessions, "wait_sessions"},
    {Step::kMaint, "maint"},
    {Step::kStop, "stop"},
    {Step::kStart, "start"},
    {Step::kHealth, "health"},
    {Step::kSmoke, "smoke"},
    {Step::kReady, "ready"},
    {Step::kConfirmUp, "confirm_up"},
    {Step::kCleanup, "cleanup"},
    {Step::kRestore, "restore"},
    {Step::kReconcile, "reconcile"},
    {Step::kTeardown, "teardown"},
    {Step::kLock, "lock"},
    {Step::kPreRollout, "pre_rollout"},
    {Step::kPreHost, "pre_host"},
    {Step::kPostHost, "post_host"},
    {Step::kOnFailure, "on_failure"},
    {Step::kPostRollout, "post_rollout"},
    {Step::kSilence, "silence"},
    {Step::kUnsilence, "unsilence"},
}};

// A journaled step's line: before it acts, after it ended, after it failed.
enum class StepPhase { kNone, kBegin, kEnd, kFail };
inline constexpr std::array<EnumName<StepPhase>, 4> kStepPhaseNames{{
    {StepPhase::kNone, ""},
    {StepPhase::kBegin, "begin"},
    {StepPhase::kEnd, "end"},
    {StepPhase::kFail, "fail"},
}};

// The progress events of a rollout (the --output json lines).
enum class EventType {
  kRolloutStarted,
  kStep,
  kHostDone,
  kHostFailed,
  kReconcile,
  kServerAdded,
  kWarning,
  kRolloutFinished,
  kTeardownStarted,
  kTeardownFinished,
};
inline constexpr std::array<EnumName<EventType>, 10> kEventTypeNames{{
    {EventType::kRolloutStarted, "rollout_started"},
    {EventType::kStep, "step"},
    {EventType::kHostDone, "host_done"},
    {EventType::kHostFailed, "host_failed"},
    {EventType::kReconcile, "reconcile"},
    {EventType::kServerAdded, "server_added"},
    {EventType::kWarning, "warning"},
    {EventType::kRolloutFinished, "rollout_finished"},
    {EventType::kTeardownStarted, "teardown_started"},
    {EventType::kTeardownFinished, "teardown_finished"},
}};

inline std::string Name(PlanKind v) { return std::string(NameIn(kPlanKindNames, v)); }
inline std::string Name(HostState v) { return std::string(NameIn(kHostStateNames, v)); }
inline std::string Name(Step v) { return std::string(NameIn(kStepNames, v)); }
inline std::string Name(StepPhase v) { return std::string(NameIn(kStepPhaseNames, v)); }
inline std::string Name(EventType v) { return std::string(NameIn(kEventTypeNames, v)); }
inline std::optional<PlanKind> ParsePlanKind(std::string_view s) { return ParseIn(kPlanKindNames, s); }
inline std::optional<HostState> ParseHostState(std::string_view s) { return ParseIn(kHostStateNames, s); }
inline std::optional<Step> ParseStep(std::string_view s) { return ParseIn(kStepNames, s); }
inline std::optional<StepPhase> ParseStepPhase(std::string_view s) { return ParseIn(kStepPhaseNames, s); }
inline std::optional<EventType> ParseEventType(std::string_view s) { return ParseIn(kEventTypeNames, s); }

}  // namespace sp
