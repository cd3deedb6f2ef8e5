#include "deploy/status.h"

#include <algorithm>

#include "rollout/plan.h"

namespace sp {

using Ordered = nlohmann::ordered_json;

namespace {

Ordered BuildOf(BuildStore* builds, int64_t id) {
  if (!builds || id <= 0) return nullptr;
  auto b = builds->GetBuild(id);
  if (!b) return nullptr;  // Pruned or from another store: the rollout still says its id.
  return Ordered{{"id", b->id}, {"project", b->project}, {"branch", b->branch}, {"sha", b->sha},
                 {"author", b->author}, {"message", b->message.substr(0, b->message.find('\n'))}};
}

Result<Ordered> Current(const StatusSources& in, const std::string& stack, const std::string& release,
                        const std::string& deployment, int64_t now_ms) {
  SP_ASSIGN_OR_RETURN(auto last, in.journal->Latest(stack, release, deployment, RolloutStatus::kSucceeded));
  if (!last) return Ordered(nullptr);
  auto plan = PlanFromJson(last->plan_json);
  Ordered out{{"rollout", last->id},
              {"kind", Name(last->kind)},
              {"version", plan ? plan->app.version : ""},
              {"artifact", plan ? plan->app.artifact : ""},
              {"requested_by", plan ? plan->requested_by : ""},
              {"finished_ms", last->updated_ms},
              {"age_ms", std::max<int64_t>(0, now_ms - last->updated_ms)}};
  out["build_id"] = plan ? plan->build_id : 0;
  out["build"] = BuildOf(in.builds, plan ? plan->build_id : 0);
  return out;
}

Result<Ordered> Running(const StatusSources& in, const std::string& stack, const std::string& release,
                        const std::string& deployment) {
  SP_ASSIGN_OR_RETURN(auto run, in.journal->Latest(stack, release, deployment, RolloutStatus::kRunning));
  if (!run) return Ordered(nullptr);
  SP_ASSIGN_OR_RETURN(auto hosts, in.journal->Hosts(run->id));
  int done = 0, failed = 0, in_progress = 0;
  for (const auto& h : hosts) {
    done += h.state == HostState::kDone;
    failed += h.state == HostState::kFailed || h.state == HostState::kRestored;
    in_progress += h.state == HostState::kInProgress;
  }
  auto plan = PlanFromJson(run->plan_json);
  return Ordered{{"rollout", run->id},
                 {"kind", Name(run->kind)},
                 {"version", plan ? plan->app.version : ""},
                 {"started_ms", run->created_ms},
                 {"hosts_total", hosts.size()},
                 {"hosts_done", done},
                 {"hosts_in_progress", in_progress},
                 {"hosts_failed", failed}};
}

Result<Ordered> LockOf(const StatusSources& in, const std::string& key) {
  if (!in.locks) return Ordered(nullptr);
  SP_ASSIGN_OR_RETURN(auto held, in.locks->Get(key));
  if (!held) return Ordered(nullptr);
  return Ordered{{"holder", held->holder}, {"reason", held->reason}, {"expires_ms", held->expires_ms}};
}

}  // namespace

Result<Ordered> DeliveryStatusJson(const StatusSources& in, int64_t now_ms) {
  Ordered rows = Ordered::array();
  for (const auto& [stack_name, stack] : in.inventory->stacks) {
    for (const auto& [deployment_name, deployment] : stack.deployments) {
      for (const auto& [release_name, release] : deployment.releases) {
        Ordered row{{"stack", stack_name},
                    {"release", release_name},
                    {"deployment", deployment_name},
                    {"network", deployment.network}};
        SP_ASSIGN_OR_RETURN(row["current"], Current(in, stack_name, release_name, deployment_name, now_ms));
        SP_ASSIGN_OR_RETURN(row["running"], Running(in, stack_name, release_name, deployment_name));
        SP_ASSIGN_OR_RETURN(row["lock"], LockOf(in, stack_name + "/" + release_name + "/" + deployment_name));
        rows.push_back(std::move(row));
      }
    }
  }
  return Ordered{{"releases", rows}};
}

}  // namespace sp
