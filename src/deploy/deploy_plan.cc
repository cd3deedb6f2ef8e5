#include "deploy/deploy_plan.h"

#include <algorithm>

#include "core/text.h"

namespace sp {

namespace {

// The user of deployment `d` under a template's name pattern ("personal-{user}"), or "".
std::string UserUnder(const std::string& pattern, const std::string& d) {
  const size_t at = pattern.find("{user}");
  if (at == std::string::npos) return "";
  const std::string pre = pattern.substr(0, at), post = pattern.substr(at + 6);
  if (d.size() <= pre.size() + post.size() || d.rfind(pre, 0) != 0 ||
      d.compare(d.size() - post.size(), post.size(), post) != 0) {
    return "";
  }
  return d.substr(pre.size(), d.size() - pre.size() - post.size());
}

// Where `plan` sends credential `name`: the registry it logs in to, and the
// app env of its deployment (as a binding names it). Empty: not used.
std::vector<std::string> CredentialDestinations(const RolloutPlan& plan, const std::string& name) {
  const std::string ref = "credential:" + name;
  std::vector<std::string> out;
  if (plan.registry.password_ref == ref) {
    out.push_back(plan.registry.address);
    // Every token realm the plan lets it go to must be the binding's too.
    for (const auto& h : plan.registry.realm_hosts) out.push_back(CredentialBinding::kRealmPrefix + h);
  }
  if (std::any_of(plan.app.env_refs.begin(), plan.app.env_refs.end(), [&](const auto& e) { return e.second == ref; })) {
    out.push_back(CredentialBinding::kDeploymentPrefix + plan.deployment);
  }
  return out;
}

}  // namespace

Status AttachRealmHosts(BuildStore& builds, RolloutPlan& plan) {
  const std::string name = CredentialNameOf(plan.registry.password_ref);
  if (name.empty() || plan.build_id <= 0) return Ok();
  SP_ASSIGN_OR_RETURN(BuildRecord b, builds.GetBuild(plan.build_id));
  SP_ASSIGN_OR_RETURN(auto binding, builds.Credential(b.project, name));
  if (!binding) return Ok();  // Refused when the credential is asked for.
  const std::string prefix = CredentialBinding::kRealmPrefix;
  for (const auto& h : binding->hosts) {
    if (h.rfind(prefix, 0) == 0) plan.registry.realm_hosts.push_back(h.substr(prefix.size()));
  }
  return Ok();
}

Status PinSecretVersions(BuildStore& builds, RolloutPlan& plan) {
  if (plan.build_id <= 0) return Ok();
  std::optional<std::string> project;
  for (auto& [key, ref] : plan.app.env_refs) {
    const std::string name = CredentialNameOf(ref);
    if (name.empty() || name.find('@') != std::string::npos) continue;
    if (!project) {
      SP_ASSIGN_OR_RETURN(BuildRecord b, builds.GetBuild(plan.build_id));
      project = b.project;
    }
    SP_ASSIGN_OR_RETURN(auto stored,
                        StoredSecretFor(builds, *project, name, CredentialBinding::kDeploymentPrefix + plan.deployment));
    if (stored) ref = "credential:" + name + "@" + std::to_string(stored->version);
  }
  return Ok();
}

Result<RolloutPlan> DeployPlan(inventory::Service& inventory, const DeployRequest& r, const LineCallback& log,
                               int64_t now_ms, BuildStore* builds) {
  const ServiceConfig& cfg = *r.cfg;
  auto target = inventory.Resolve(cfg.stack, r.release, r.deployment, r.limit);
  if (!target && target.error().code == ErrorCode::kNotFound) {
    auto cur = inventory.Current();
    const Inventory* inv = cur ? cur->get() : nullptr;
    if (inv && inv->stacks.count(cfg.stack)) {
      for (const auto& [tname, t] : inv->stacks.at(cfg.stack).templates) {
        const std::string user = UserUnder(t.name_pattern, r.deployment);
        if (user.empty()) continue;
        auto claim = inventory.Claim(cfg.stack, tname, user, now_ms);
        if (!claim) return Err(claim.error().Wrap("claiming " + r.deployment));
        log(false, "claimed " + r.deployment + " (host " + claim->host + ") from template " + tname);
        target = inventory.Resolve(cfg.stack, r.release, r.deployment, r.limit);
        break;
      }
    }
  }
  if (!target) return Err(target.error());
  PlanInput in;
  in.id = NewRolloutId();
  in.artifact = r.artifact;
  in.version = r.version;
  in.batch_override = r.batch;
  in.max_failures_override = r.max_failures;
  in.now_ms = now_ms;
  SP_ASSIGN_OR_RETURN(RolloutPlan plan, BuildPlan(cfg, *target, in));
  plan.build_id = r.build_id;
  if (builds) {
    SP_TRY(AttachRealmHosts(*builds, plan));
    SP_TRY(PinSecretVersions(*builds, plan));
  }
  plan.requested_by = !r.requested_by.empty() ? r.requested_by
                      : r.build_id > 0      ? "build " + std::to_string(r.build_id)
                                            : "";
  return plan;
}

JobSpec RolloutJobSpec(const RolloutPlan& plan) {
  JobSpec spec;
  spec.kind = "rollout";
  spec.payload = PlanToJson(plan);
  spec.labels = {{"network", plan.network}};
  spec.idempotency_key = plan.id;
  return spec;
}

Status CheckAgentSeen(QueueStore& queue, const JobSpec& spec, int64_t now_ms, int64_t recent_ms) {
  SP_ASSIGN_OR_RETURN(auto agents, queue.Agents());
  for (const auto& a : agents) {
    if (now_ms - a.last_seen_ms <= recent_ms && LabelsSatisfy(a.labels, spec.labels)) return Ok();
  }
  std::string labels;
  for (const auto& [k, v] : spec.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
  return Err(ErrorCode::kUnavailable,
             "no agent with labels " + labels + " was seen in the last " +
                 (recent_ms % 60'000 == 0 ? std::to_string(recent_ms / 60'000) + " min"
                                          : FormatDuration(Millis(recent_ms))) +
                 ": nothing would take this " + spec.kind + " job. Start one (`sallyport agent run` with a token "
                 "bound to these labels), or queue it anyway (--queue-anyway)");
}

Result<Job> QueueDeploy(const DeployQueue& q, const DeployRequest& r, const LineCallback& log) {
  SP_CHECK(q.queue && q.inventory && q.clock);
  SP_ASSIGN_OR_RETURN(RolloutPlan plan, DeployPlan(*q.inventory, r, log, q.clock->WallMs(), q.builds));
  SP_ASSIGN_OR_RETURN(Job job, q.queue->Enqueue(RolloutJobSpec(plan), q.clock->WallMs()));
  if (q.jobs_enqueued) q.jobs_enqueued();
  log(false, "queued rollout " + plan.id + " as rollout job " + std::to_string(job.id) + " (network " + plan.network + ")");
  return job;
}

Result<std::string> PlanCredential(BuildStore& store, const CredentialReader& read, const RolloutPlan& plan,
                                   const std::string& name) {
  const std::vector<std::string> to = CredentialDestinations(plan, name);
  if (to.empty()) {
    return Err(ErrorCode::kPermissionDenied,
               "rollout " + plan.id + " does not use credential '" + Printable(name) + "'");
  }
  if (plan.build_id <= 0) {
    return Err(ErrorCode::kPermissionDenied, "rollout " + plan.id + " comes from no build: no credential");
  }
  SP_ASSIGN_OR_RETURN(BuildRecord b, store.GetBuild(plan.build_id));
  Result<std::string> value = Err(ErrorCode::kInternal, "no destination");
  for (const auto& where : to) {
    value = read(b.project, name, where);
    if (!value) return value;
  }
  return value;
}

}  // namespace sp
