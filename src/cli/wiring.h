// Wires the real adapters into the rollout engine for the CLI. Holds no
// business logic: choosing adapters, reading secrets, printing progress.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "inventory/inventory.h"
#include "rollout/engine.h"
#include "store/sqlite/sqlite_store.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::cli {

struct Output {
  bool json = false;   // One event per line on stdout.
};

// Reads a secret reference ("file:/path" or "env:NAME"); the value never
// reaches logs or error text.
Result<std::string> ReadSecretRef(const std::string& ref);

// SSH transport options from a deployment's bastion and `ssh:` settings (the
// rollout's frozen plan and `hosts trust` both use this).
SshOptions SshOptionsFor(const std::optional<BastionSpec>& bastion, const SshAccess& ssh);

// How an agent runs a job's rollout: journal and lock on the server, and
// every action on hosts and LBs fenced by the job's lease.
struct AgentJobHooks {
  JournalStore* journal = nullptr;
  LockStore* locks = nullptr;
  std::function<Status()> fence;                // Checked before every action.
  Millis lease_ttl{30'000};                     // Of the scope lock.
  std::function<void(const Event&)> on_event;   // After printing; may be empty.
};

// Everything a rollout needs for one plan: transport, runtime, health, LBs.
class Wiring {
 public:
  // `store`: journal and locks (unless an agent's hooks say otherwise).
  Wiring(SqliteStore* store, Output out, Millis lock_wait);
  ~Wiring();
  // Builds an engine for plans of `runtime_kind` with these runtime settings.
  std::unique_ptr<RolloutEngine> EngineFor(const RolloutPlan& plan, const AgentJobHooks* job = nullptr);

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
std::function<Status(const ResolvedTarget&)> TeardownHook(SqliteStore* store, Output out, Millis lock_wait);

// Human or JSON rendering of events and of the summary. FormatEvent: the
// human line of an event ("" for those shown only in JSON).
std::string FormatEvent(const Event& e);
void PrintEvent(const Event& e, const Output& out);
void PrintSummary(const RolloutPlan& plan, const RolloutSummary& s, const Output& out);

}  // namespace sp::cli
