// The frozen rollout plan: everything a rollout needs, computed once when it
// starts and stored with it. Resume and rollback read only this — nothing is
// re-resolved mid-rollout (CONTRACTS: "Effective configuration, in one order").
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "inventory/inventory.h"
#include "config/service_config.h"
#include "core/error.h"
#include "rollout/states.h"
#include "runtime/runtime.h"

namespace sp {

struct PlanApp {
  std::string runtime = "docker";          // "docker" | "process"
  std::string artifact;                    // repo@sha256:... or an executable/tarball path
  std::string version;                     // Label for people: "v2"
  int port = 8080;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;  // Effective env (resources < release < deployment < secrets).
  // Env names whose values are secrets: NAME -> "credential:C", fetched by
  // whoever starts the app, at that moment (never stored in the plan).
  std::map<std::string, std::string> env_refs;
  std::vector<std::string> volumes;
  HealthCheckSpec health;
  std::vector<std::string> smoke;
  Millis stop_timeout{10'000};
};

struct RolloutPlan {
  std::string id;
  PlanKind kind = PlanKind::kRollout;
  std::string service, stack, release, deployment, network;
  PlanApp app;
  std::vector<HostSpec> hosts;
  std::vector<LoadBalancerSpec> load_balancers;
  StrategySpec strategy;
  RegistrySpec registry;                   // Reference only; the password is read at use time.
  std::string docker_host, base_dir;
  std::optional<BastionSpec> bastion;      // How hosts are reached (frozen with the plan).
  HooksSpec hooks;                         // The deployment's hooks (the admin's), frozen with the plan.
  SshAccess ssh;
  std::string previous_rollout_id;         // Last successful rollout of the scope, if any.
  int64_t build_id = 0;                    // The build whose deploy this is (0: none); its agent may follow it.
  int64_t created_ms = 0;
  // Who asked for it, for people: "user@machine" (the CLI), "token:NAME"
  // (through the server), "build N" (a build's own deploy). Never trusted.
  std::string requested_by;
  // Set by a server on the plan a CLI froze itself and journaled there
  // (`rollout run -i URL`): who submitted it. The server and its agents act
  // only on plans the server made, so they never roll back to, reconcile,
  // resume or tear down from such a plan (EngineOptions::act_on_submitted_plans).
  std::string submitted_by;

  std::string ScopeKey() const { return stack + "/" + release + "/" + deployment; }
  // The AppSpec for one host (port override applied, rollout id set).
  AppSpec AppFor(const HostSpec& host) const;
  int PortFor(const HostSpec& host) const { return host.port ? host.port : app.port; }
};

std::string PlanToJson(const RolloutPlan& plan, int indent = -1);
Result<RolloutPlan> PlanFromJson(const std::string& text);

// Builds the plan for a new rollout from the service file, the resolved
// inventory target and the artifact. Validates the artifact reference.
struct PlanInput {
  std::string id;
  std::string artifact, version;
  std::map<std::string, std::string> secrets;
  std::optional<CountOrPercent> batch_override, max_failures_override;
  int64_t now_ms = 0;
};
Result<RolloutPlan> BuildPlan(const ServiceConfig& svc, const ResolvedTarget& target, const PlanInput& in);

// Where a plan acts, from the resolved target: the scope, network, hosts,
// load balancers, access (bastion, ssh) and runtime settings.
void TargetInto(const ResolvedTarget& t, RolloutPlan& p);

// A new random rollout id: "r-" + 12 hex chars.
std::string NewRolloutId();

}  // namespace sp
