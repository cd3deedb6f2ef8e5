#include "deploy/left_rollouts.h"

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "rollout/plan.h"

namespace sp {

Result<std::vector<std::string>> RolloutsLeftByServer(
    JournalStore& journal, LockStore& locks, const std::function<std::optional<bool>(const Lease&)>& alive_here) {
  SP_ASSIGN_OR_RETURN(std::vector<Lease> held, locks.List());
  std::vector<std::string> out;
  for (const Lease& lease : held) {
    if (!StartsWith(lease.holder, std::string(kServerHolderRole) + " ")) continue;
    if (alive_here(lease) != std::optional<bool>(false)) continue;  // Running, or not this machine's.
    const std::string id = RolloutIdInLockReason(lease.reason);
    if (id.empty()) continue;
    auto rec = journal.GetRollout(id);
    if (!rec) {
      if (rec.error().code == ErrorCode::kNotFound) continue;  // Its lock, but no record: nothing was touched.
      return Err(rec.error());
    }
    // Only the rollout of that lock's scope, still running.
    if (rec->status != RolloutStatus::kRunning) continue;
    if (rec->ScopeKey() != lease.key) continue;
    out.push_back(id);
  }
  return out;
}

std::optional<std::string> PlanTextOfJob(const std::string& kind, const std::string& payload) {
  if (kind == "rollout") return payload;
  if (kind != "reconcile") return std::nullopt;
  const auto doc = nlohmann::json::parse(payload, nullptr, false);
  if (!doc.is_object() || !doc.contains("plan") || !doc["plan"].is_object()) return std::nullopt;
  return doc["plan"].dump();
}

std::string ReconcileReasonOf(const std::string& payload) {
  const auto doc = nlohmann::json::parse(payload, nullptr, false);
  if (!doc.is_object() || !doc.contains("reason") || !doc["reason"].is_string()) return "";
  return doc["reason"].get<std::string>();
}

JobSpec ReconcileJobSpec(const Job& dead) {
  JobSpec spec;
  spec.kind = "reconcile";
  const std::string why = dead.state == JobState::kCanceled
                              ? "was canceled"
                              : "ran out of attempts (" + std::to_string(dead.attempts) + " of " +
                                    std::to_string(dead.spec.max_attempts) +
                                    (dead.error.empty() ? "" : "; " + dead.error) + ")";
  const std::string reason =
      "rollout job " + std::to_string(dead.id) + " " + why + ": its hosts were reconciled, nothing rolled further";
  spec.payload = nlohmann::json{{"plan", nlohmann::json::parse(dead.spec.payload, nullptr, false)},
                                {"reason", reason},
                                {"dead_job", dead.id}}
                     .dump();
  spec.labels = dead.spec.labels;
  spec.priority = dead.spec.priority + 10;  // Hosts may be out of rotation: before new work.
  spec.idempotency_key = "reconcile-" + std::to_string(dead.id) + "-" + std::to_string(dead.updated_ms);
  spec.max_attempts = 10;
  return spec;
}

Result<std::vector<Job>> QueueReconciles(QueueStore& queue, JournalStore& journal, int64_t since_ms, int64_t now_ms) {
  SP_ASSIGN_OR_RETURN(std::vector<Job> dead, queue.DeadJobs("rollout", since_ms, 1000));
  std::vector<Job> out;
  for (const Job& d : dead) {
    const auto plan = nlohmann::json::parse(d.spec.payload, nullptr, false);
    if (!plan.is_object() || !plan.contains("id") || !plan["id"].is_string()) continue;
    auto rec = journal.GetRollout(plan["id"].get<std::string>());
    if (!rec) {
      if (rec.error().code == ErrorCode::kNotFound) continue;
      return Err(rec.error());
    }
    if (rec->status != RolloutStatus::kRunning) continue;
    SP_ASSIGN_OR_RETURN(Job job, queue.Enqueue(ReconcileJobSpec(d), now_ms));
    out.push_back(job);
  }
  return out;
}

}  // namespace sp
