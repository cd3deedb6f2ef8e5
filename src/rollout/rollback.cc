#include "rollout/rollback.h"

#include "core/text.h"

namespace sp {

namespace {

constexpr int kSearched = 1000;

std::string VersionOf(const RolloutRecord& r) {
  auto plan = PlanFromJson(r.plan_json);
  return plan ? plan->app.version : "";
}

// The newest successful rollout of the scope whose id or version is `to`.
Result<RolloutRecord> Chosen(JournalStore& journal, const RolloutRecord& current, const std::string& to) {
  SP_ASSIGN_OR_RETURN(auto recent, journal.ListRollouts(kSearched));
  const std::string current_version = VersionOf(current);
  std::string seen;
  for (const auto& r : recent) {
    if (r.ScopeKey() != current.ScopeKey() || r.status != RolloutStatus::kSucceeded) continue;
    const std::string version = VersionOf(r);
    if (r.id == to || version == to) {
      if (r.id == current.id || (version == to && version == current_version)) {
        return Err(ErrorCode::kConflict, "version " + version + " (rollout " + r.id + ") is what " + current.release +
                                             " runs on " + current.deployment + " now");
      }
      return r;
    }
    if (seen.find(" " + version + ",") == std::string::npos) seen += " " + version + ",";
  }
  if (!seen.empty()) seen.pop_back();
  return Err(ErrorCode::kNotFound, "no successful rollout of " + current.release + " to " + current.deployment +
                                       " has the id or version '" + Printable(to) + "'; versions it ran:" + seen);
}

}  // namespace

Result<RolloutPlan> RollbackPlanFor(JournalStore& journal, const std::string& stack, const std::string& release,
                                    const std::string& deployment, int64_t now_ms, const std::string& to) {
  SP_ASSIGN_OR_RETURN(auto current, journal.Latest(stack, release, deployment, RolloutStatus::kSucceeded));
  if (!current) return Err(ErrorCode::kNotFound, "no successful rollout of " + release + " to " + deployment);
  RolloutRecord from;  // The rollout whose plan runs again.
  if (!to.empty()) {
    SP_ASSIGN_OR_RETURN(from, Chosen(journal, *current, to));
  } else {
    SP_ASSIGN_OR_RETURN(RolloutPlan current_plan, PlanFromJson(current->plan_json));
    if (current_plan.previous_rollout_id.empty()) {
      return Err(ErrorCode::kNotFound, "rollout " + current->id + " has no previous version to return to");
    }
    SP_ASSIGN_OR_RETURN(from, journal.GetRollout(current_plan.previous_rollout_id));
    if (from.ScopeKey() != current->ScopeKey()) {  // A pointer from a plan a CLI submitted is not trusted.
      return Err(ErrorCode::kConflict, "rollout " + current->id + "'s previous rollout " + from.id + " is of " +
                                           from.ScopeKey() + ", not " + current->ScopeKey());
    }
  }
  SP_ASSIGN_OR_RETURN(RolloutPlan plan, PlanFromJson(from.plan_json));
  plan.id = NewRolloutId();
  plan.kind = PlanKind::kRollback;
  plan.previous_rollout_id = current->id;
  plan.created_ms = now_ms;
  plan.requested_by.clear();  // The caller's to say.
  return plan;
}

}  // namespace sp
