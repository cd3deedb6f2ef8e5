// Deploy orchestration: a build's deploy becomes a frozen plan (the target
// resolved through the inventory, a missing personal deployment claimed
// from its template), the plan a rollout job for the agents of the
// deployment's network, and whoever waits follows that job to its end.
#pragma once

#include <functional>
#include <string>

#include "build/credentials.h"
#include "build/pipeline.h"
#include "core/clock.h"
#include "core/error.h"
#include "inventory/service.h"
#include "queue/job.h"
#include "rollout/plan.h"

namespace sp {

// The target of a build's deploy resolved through the inventory (a missing
// personal deployment is claimed from the stack's template whose name
// pattern gives it, at `now_ms`), and the frozen plan of its rollout.
// `builds`, when given, adds the token realms the registry credential's
// binding allows (AttachRealmHosts).
Result<RolloutPlan> DeployPlan(inventory::Service& inventory, const DeployRequest& r, const LineCallback& log,
                               int64_t now_ms, BuildStore* builds = nullptr);

// Copies into plan.registry.realm_hosts the "realm:HOST" entries of the
// binding of the credential the plan's registry password names (the admin's
// `credential set --realm-host`); PlanCredential refuses the value for a
// plan whose realms the binding does not all allow.
Status AttachRealmHosts(BuildStore& builds, RolloutPlan& plan);

// Freezes in the plan the version of each stored secret its app env names
// (credential:NAME -> credential:NAME@V, V the newest for its deployment):
// a resume, or an agent starting the instance later, gets the same value.
// Names without a stored secret stay as they are (the admin's bindings).
Status PinSecretVersions(BuildStore& builds, RolloutPlan& plan);

// The rollout job of a plan: for the agents of the plan's network; the
// plan's id is the idempotency key.
JobSpec RolloutJobSpec(const RolloutPlan& plan);

// How recently an agent must have been seen for a job queued for it to be
// taken (an idle agent asks for work every few seconds).
inline constexpr int64_t kAgentSeenRecentlyMs = 120'000;

// Ok when an agent whose labels take `spec` was seen within `recent_ms` of
// `now_ms`; otherwise kUnavailable naming the labels and what to do: a
// rollout queued for no agent would wait silently.
Status CheckAgentSeen(QueueStore& queue, const JobSpec& spec, int64_t now_ms,
                      int64_t recent_ms = kAgentSeenRecentlyMs);

// Where deploys are queued.
struct DeployQueue {
  QueueStore* queue = nullptr;
  inventory::Service* inventory = nullptr;
  Clock* clock = nullptr;
  std::function<void()> jobs_enqueued;  // Wakes agents' long polls; may be empty.
  BuildStore* builds = nullptr;          // For AttachRealmHosts; may be null.
};

// A build's deploy behind the queue: its plan frozen (DeployPlan), queued as
// a rollout job, the agents woken. The job, or why not.
Result<Job> QueueDeploy(const DeployQueue& q, const DeployRequest& r, const LineCallback& log);

// The value of credential `name` for a rollout of `plan`, whoever runs it:
// looked up in the project of the plan's build and sent only where the plan
// sends it (its registry, the app env of its deployment), each destination
// allowed by the admin's binding. kPermissionDenied when the plan does not
// name it or comes from no build.
Result<std::string> PlanCredential(BuildStore& store, const CredentialReader& read, const RolloutPlan& plan,
                                   const std::string& name);

}  // namespace sp
