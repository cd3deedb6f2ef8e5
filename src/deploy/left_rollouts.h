// Rollouts a dead process left unfinished:
// - those a `sallyport server` ran in its own process (builds' deploys
//   with --deploy-on server): its next start finishes them forward, as
//   `sallyport rollout resume` would, with no command typed;
// - those whose rollout job ran out of attempts (each agent that took it
//   died or stalled): a reconcile job puts every host of the plan back to
//   one version in rotation and records the rollout failed with the reason,
//   rolling nothing further (a job that kills its agents is not tried again).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "queue/job.h"
#include "rollout/journal.h"
#include "rollout/lock.h"

namespace sp {

// The holder role of a server's own rollouts (EngineSetup::holder_role):
// their scope lock's holder reads "server user@machine pid N".
inline constexpr char kServerHolderRole[] = "server";

// The ids of the rollouts to finish at a server's start: still `running` in
// the journal, their scope's lock held by a server process of this machine
// that is gone (`alive_here` false; nullopt: another machine's, not ours).
// Never one an operator interrupted (recorded `interrupted`, its lock
// released), one whose lock an operator released or another holder took,
// nor a CLI's or an agent's (theirs are resumed by `rollout resume` and by
// the job's next lease).
Result<std::vector<std::string>> RolloutsLeftByServer(
    JournalStore& journal, LockStore& locks, const std::function<std::optional<bool>(const Lease&)>& alive_here);

// The frozen plan (JSON text) a rollout or reconcile job (`kind`, its
// `payload`) carries; nullopt for other kinds or a payload without one.
std::optional<std::string> PlanTextOfJob(const std::string& kind, const std::string& payload);
// Why a reconcile job's rollout ends ("" if its payload says nothing).
std::string ReconcileReasonOf(const std::string& payload);

// The reconcile job of a dead rollout job: for the same agents (labels),
// its plan and the reason, ahead of other work; one per death (its
// idempotency key names the job and when it died).
JobSpec ReconcileJobSpec(const Job& dead);

// For each rollout job dead or canceled since `since_ms` (QueueStore::DeadJobs) whose
// rollout is still running in the journal, its reconcile job queued (or
// found, if queued before). A job that died before its rollout was
// recorded touched nothing and gets none. The reconcile jobs.
Result<std::vector<Job>> QueueReconciles(QueueStore& queue, JournalStore& journal, int64_t since_ms, int64_t now_ms);

}  // namespace sp
