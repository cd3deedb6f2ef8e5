#include "rollout/rollback.h"

namespace sp {

Result<RolloutPlan> RollbackPlanFor(JournalStore& journal, const std::string& stack, const std::string& release,
                                    const std::string& deployment, int64_t now_ms) {
  SP_ASSIGN_OR_RETURN(auto current, journal.Latest(stack, release, deployment, RolloutStatus::kSucceeded));
  if (!current) return Err(ErrorCode::kNotFound, "no successful rollout of " + release + " to " + deployment);
  SP_ASSIGN_OR_RETURN(RolloutPlan current_plan, PlanFromJson(current->plan_json));
  if (current_plan.previous_rollout_id.empty()) {
    return Err(ErrorCode::kNotFound, "rollout " + current->id + " has no previous version to return to");
  }
  SP_ASSIGN_OR_RETURN(RolloutRecord prev, journal.GetRollout(current_plan.previous_rollout_id));
  if (prev.ScopeKey() != current->ScopeKey()) {  // A pointer from a plan a CLI submitted is not trusted.
    return Err(ErrorCode::kConflict, "rollout " + current->id + "'s previous rollout " + prev.id + " is of " +
                                         prev.ScopeKey() + ", not " + current->ScopeKey());
  }
  SP_ASSIGN_OR_RETURN(RolloutPlan plan, PlanFromJson(prev.plan_json));
  plan.id = NewRolloutId();
  plan.kind = PlanKind::kRollback;
  plan.previous_rollout_id = current->id;
  plan.created_ms = now_ms;
  plan.requested_by.clear();  // The caller's to say.
  return plan;
}

}  // namespace sp
