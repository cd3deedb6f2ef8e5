// The real adapters wired into a rollout engine for one frozen plan: the
// transport (local, or SSH through the plan's bastion), the runtime (docker
// or process), HTTP health checks, HAProxy load balancers (reached through
// the bastion when they are TCP addresses), registry credentials read from
// secret references at the last moment. Used by every app that runs a
// rollout: the CLI, the agent and the server. Holds no business logic.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "inventory/inventory.h"
#include "lb/load_balancer.h"
#include "rollout/engine.h"
#include "rollout/fence.h"
#include "rollout/journal.h"
#include "rollout/lock.h"
#include "transport/ssh/ssh_transport.h"

namespace sp {

// Wraps each load balancer adapter the engine gets (the test tree uses it
// for a negative control; the apps pass none).
using LoadBalancerDecorator = std::function<std::unique_ptr<LoadBalancer>(std::unique_ptr<LoadBalancer>)>;

struct EngineSetup {
  EngineSetup() = default;
  EngineSetup(JournalStore* j, LockStore* l, Millis wait = Millis(0)) : journal(j), locks(l), lock_wait(wait) {}
  JournalStore* journal = nullptr;  // Required.
  LockStore* locks = nullptr;       // Required.
  Millis lock_wait{0};              // How long to wait for a busy lock.
  std::optional<Millis> lease_ttl;  // Of the scope lock; default: the engine's.
  // Checked before every action on hosts and LBs (an agent's job lease);
  // empty: none. The scope lock fences them in any case (ScopeLease).
  Fence fence;
  // Each action reads the scope lock back from `locks` first; an agent,
  // whose store is the server, relies on its renewals (every TTL/3) instead.
  bool verify_lease_each_action = true;
  // Polled before each batch: true hands the rollout back (EngineOptions::hand_back).
  std::function<bool()> hand_back;
  std::function<void(const Event&)> on_event;  // May be empty.
  LoadBalancerDecorator decorate_lb;           // May be empty.
  // Reads the plan's secret references (the registry password, env values); empty:
  // ReadSecretRef. An agent asks the server for "credential:NAME".
  std::function<Result<std::string>(const std::string& ref)> read_secret;
  // Who runs the engine, before "user@machine pid N" in the scope lock's
  // holder ("server": a server's own rollout, which its next start finishes
  // when this process died holding the lock). Empty: a CLI's or an agent's.
  std::string holder_role;
  // A CLI's: it may reconcile and resume plans it or another CLI submitted
  // to a server (EngineOptions::act_on_submitted_plans).
  bool act_on_submitted_plans = false;
};

// Reads a secret reference ("file:/path" or "env:NAME"); the value never
// reaches logs or error text.
Result<std::string> ReadSecretRef(const std::string& ref);

// A build's check of its registry before a push (PipelineOptions::check_registry):
// RegistryClient::Ping with this machine's trust (RegistryTrust::FromEnvironment).
std::function<Status(const RegistrySpec&, const std::string&, const std::string&)> RegistryPushCheck();

// Whether a lease's holder, a process on this machine, still runs; nullopt
// for holders elsewhere (their lease's expiry says).
std::optional<bool> HolderAliveHere(const Lease& lease);

// SSH transport options from a deployment's bastion and `ssh:` settings (the
// rollout's frozen plan and `hosts trust` both use this).
SshOptions SshOptionsFor(const std::optional<BastionSpec>& bastion, const SshAccess& ssh);

// Everything a rollout needs for one plan. Keeps the adapters alive for as
// long as it lives; one engine at a time.
class EngineWiring {
 public:
  explicit EngineWiring(EngineSetup setup);
  ~EngineWiring();
  EngineWiring(const EngineWiring&) = delete;
  EngineWiring& operator=(const EngineWiring&) = delete;
  // An engine for `plan`'s runtime, transport and load balancers.
  std::unique_ptr<RolloutEngine> EngineFor(const RolloutPlan& plan);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The teardown of one release of a personal deployment (released or
// expired): the journal's last plan of (stack, release, deployment) says
// which runtime ran there and with what settings; hosts, load balancers and
// access come from the resolved target. Without any rollout recorded there,
// the process runtime is asked (it finds nothing) and only LB servers are
// handled. Fails unless every host was torn down.
std::function<Status(const ResolvedTarget&)> TeardownHook(EngineSetup setup);

}  // namespace sp
