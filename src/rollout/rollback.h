// Which plan a rollback runs: the rollout before the scope's current
// successful one, with its own frozen artifact and configuration.
#pragma once

#include <string>

#include "rollout/plan.h"
#include "rollout/journal.h"

namespace sp {

// A new plan (fresh id, kind "rollback") equal to the previous successful
// rollout's plan. kNotFound when there is no current or no previous version.
// `to` (not empty): instead of the previous, the newest successful rollout of
// the scope whose id or version label is `to` (among its last 1,000
// rollouts); kNotFound naming the versions there are, kConflict when it is
// the current one.
Result<RolloutPlan> RollbackPlanFor(JournalStore& journal, const std::string& stack, const std::string& release,
                                    const std::string& deployment, int64_t now_ms, const std::string& to = "");

}  // namespace sp
