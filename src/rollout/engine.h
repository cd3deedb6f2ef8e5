// The rolling-release engine. One rollout = one frozen plan shipped to every
// host of one (release, deployment), one batch at a time:
//   pull -> drain (every LB) -> sessions 0 -> maint -> stop old (kept) ->
//   start new -> health -> smoke -> ready (every LB) -> confirm UP.
// Every step is journaled before it is acted on and after it completes. A
// failed host is restored to its previous version and put back in rotation.
// Resume reconciles each host with what the runtime and LBs report, then
// finishes the rollout.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "health/health.h"
#include "hooks/hook_runner.h"
#include "hooks/silencer.h"
#include "lb/load_balancer.h"
#include "rollout/journal.h"
#include "rollout/lock.h"
#include "rollout/plan.h"
#include "rollout/scope_lease.h"
#include "rollout/states.h"
#include "runtime/runtime.h"
#include "transport/transport.h"

namespace sp {

// One progress event (also the --json output line).
struct Event {
  EventType type = EventType::kWarning;
  std::string rollout_id, host;
  Step step = Step::kNone;
  StepPhase phase = StepPhase::kNone;  // For kStep events.
  int64_t ts_ms = 0;       // Wall clock.
  int64_t elapsed_ms = 0;  // Since the host's procedure (or the rollout) began.
  nlohmann::json detail = nlohmann::json::object();
  std::string ToJsonLine() const;
};

struct HostOutcome {
  std::string host;
  HostState state = HostState::kPending;  // kDone | kFailed | kPending | kSkipped
  Step failed_step = Step::kNone;
  std::string error;
  int64_t out_of_rotation_ms = 0;
  int64_t elapsed_ms = 0;
};

struct RolloutSummary {
  std::string rollout_id;
  RolloutStatus status = RolloutStatus::kRunning;
  std::string error;
  std::vector<HostOutcome> hosts;
  int64_t elapsed_ms = 0;
  bool lock_lost = false;  // Stopped on losing the scope lock (status kFailed, not recorded).
  bool handed_back = false;  // Stopped by RequestHandBack with hosts left: still `running` in the journal.
};

using LoadBalancerFactory = std::function<Result<std::unique_ptr<LoadBalancer>>(const LoadBalancerSpec&)>;
using CredentialSource = std::function<Result<std::optional<RegistryAuth>>(const RegistrySpec&)>;

struct EngineDeps {
  Clock* clock = nullptr;
  JournalStore* journal = nullptr;
  LockStore* locks = nullptr;
  Runtime* runtime = nullptr;
  Transport* transport = nullptr;
  HealthChecker* health = nullptr;
  LoadBalancerFactory lb_factory;
  CredentialSource credentials;                         // May be empty: no registry login.
  // The value of one of the plan's env references (app.env_refs), read when
  // a host's app starts and once in preflight; may be empty when plans have none.
  std::function<Result<std::string>(const std::string& ref)> env_secret;
  std::function<Status(const RolloutPlan&)> check_pullable;  // Preflight; may be empty.
  std::function<void(const Event&)> on_event;          // Called serially; may be empty.
  // Runs the plan's hooks (plan.hooks); may be null only for plans without any.
  HookRunner* hooks = nullptr;
  // Makes the plan's alert silence (plan.hooks.silence); may be null only
  // for plans without one.
  Silencer* silencer = nullptr;
  // The scope lock's lease as the actions see it; shared with the fence of
  // the transport below the runtime. Null: the engine makes its own.
  std::shared_ptr<ScopeLease> scope_lease;
};

struct EngineOptions {
  std::string holder = "sallyport";  // Who holds the lock (user@machine pid N).
  std::string machine;               // This machine's name (dead-holder detection).
  int64_t pid = 0;                   // This process.
  Millis lease_ttl{30'000};
  Millis lock_wait{0};               // How long to wait for a busy lock.
  Millis poll_interval{5};           // LB polling while draining / confirming UP.
  int preflight_parallelism = 8;     // Hosts checked at once before a rollout.
  // While a batch rolls, the artifact is pulled in the background onto the
  // hosts of this many following batches (0: off). Only an optimisation: each
  // host's own pull step still checks, pulls what is missing and reports
  // failures in order.
  int prefetch_batches = 1;
  // A done host's cleanup (removing instances older than the kept previous
  // one) waits until after the last batch, where the done hosts are cleaned
  // a few at a time before the rollout reports finished, instead of holding
  // the next host back. False: in line, as the host's last step.
  bool deferred_cleanup = true;
  // The check that no stray holds a host's port before its start runs beside
  // the host's drain and session wait (off the time out of rotation) and is
  // joined before the stop. False: in line, right before the stop.
  bool port_check_beside_drain = true;
  bool renew_in_background = true;   // Off in unit tests (FakeClock).
  // Polled before each batch: true makes the rollout stop there and leave
  // the rest to another process (RequestHandBack). May be empty.
  std::function<bool()> hand_back;
  // Every action reads the lock back from the store first (ScopeLease); off
  // when the store is remote (an agent), where renewals confirm it.
  bool verify_lease_each_action = true;
  // Returns true if process `pid` on this machine is alive (dead holders' leases are taken over).
  std::function<bool(int64_t pid)> pid_alive;
  // Whether journaled plans a CLI submitted to a server (RolloutPlan::
  // submitted_by) may be reconciled and resumed: only by a CLI, which
  // reaches the hosts itself; a server's and an agent's engines refuse them.
  bool act_on_submitted_plans = false;
};

class RolloutEngine {
 public:
  RolloutEngine(EngineDeps deps, EngineOptions opts);
  ~RolloutEngine();

  // New rollout: lock, reconcile an unfinished rollout of the scope, preflight
  // (nothing touched on failure), freeze the plan, run the batches.
  // An Error means nothing was started; a failed host is a summary with
  // status kFailed.
  Result<RolloutSummary> Run(RolloutPlan plan);
  // Continues a rollout recorded in the store after a crash, or one an
  // operator interrupted.
  Result<RolloutSummary> Resume(const std::string& rollout_id);
  // Ends a rollout that will not be continued (its job ran out of
  // attempts): under the scope's lock, each host of its plan reconciled
  // with what the runtime and the LBs report — the new version kept in
  // rotation where it runs healthy, else the previous one restored there —
  // and the rollout recorded failed with `reason`. Rolls nothing further.
  // A host that cannot be reconciled leaves the rollout running (status
  // kRunning, its error in the summary) for another try. A rollout no
  // longer running is left as it is (its summary says how it ended).
  Result<RolloutSummary> Reconcile(const std::string& rollout_id, const std::string& reason);
  // Asks a running Run/Resume to stop before its next batch (the hosts in
  // hand finish their procedure, or are restored); it then reports and
  // records kInterrupted, its lock released. Safe from any thread.
  void RequestStop() { stop_requested_ = true; }
  // The same stop, for another process to continue (an agent that is
  // stopping): the rollout is left `running` in the journal, its lock
  // released; the summary says handed_back.
  void RequestHandBack() {
    hand_back_ = true;
    stop_requested_ = true;
  }
  // Tears (release, deployment) down on the plan's hosts, under the scope's
  // lock: on every LB the host's server is drained (sessions 0, bounded by
  // drain_timeout), then deleted when the LB spec adds servers, else left in
  // MAINT; then every instance of (release, deployment) on the host is
  // stopped and removed. Idempotent: what is already gone is skipped, so a
  // teardown that failed half-way is finished by running it again. An
  // Error: the lock or an LB could not be taken; otherwise per-host outcomes.
  Result<RolloutSummary> Teardown(const RolloutPlan& plan);
  // A dry run's preflight: every read-only check of Run's, each failure
  // named (one a line), without the lock and without touching anything (a
  // server Run would add is reported, not added).
  Status Check(const RolloutPlan& plan);

 private:
  struct HostRun;
  struct LbSet;
  struct Tally;
  class LeaseKeeper;
  class Hold;
  class Prefetcher;
  class SilenceKeeper;

  // Creates one adapter per load balancer spec.
  Result<LbSet> Connect(const std::vector<LoadBalancerSpec>& specs);
  // The first problem PreflightProblems finds (adding the servers the spec
  // allows), as "preflight: ...".
  Status Preflight(const RolloutPlan& plan, LbSet& lbs);
  // `app` with the plan's env references resolved (the values exist only here
  // and in the runtime's start).
  Status ResolveEnvRefs(const RolloutPlan& plan, AppSpec& app);
  // Preflight's checks, in order: env references readable, every LB's
  // servers (one the spec allows is added out of rotation when `add`),
  // hosts reachable with the artifact there, else the artifact pullable.
  // Every problem found, or only the first (`first_only`).
  std::vector<Error> PreflightProblems(const RolloutPlan& plan, LbSet& lbs, bool add, bool first_only);
  // Hosts whose artifact is not there (`have` false): can their engines pull it?
  void EngineProblems(const RolloutPlan& plan, const std::vector<Result<bool>>& have, std::vector<Error>& out);
  Result<Lease> TakeLock(const RolloutPlan& plan);
  // Converges the hosts of the scope's unfinished rollout (its process died).
  Status ReconcileUnfinished(const RolloutPlan& plan);
  // A journaled rollout's plan, unless it is a submitted one this engine may not act on.
  Result<RolloutPlan> JournaledPlan(const RolloutRecord& rec);
  Result<RolloutSummary> Execute(const RolloutPlan& plan, LbSet& lbs, std::vector<HostOutcome> outcomes);
  // The batches of `pending`, until they run out, failures exceed the
  // plan's max, or the lock is lost. `started`: when each host began.
  void RunBatches(const RolloutPlan& plan, LbSet& lbs, std::vector<HostOutcome>& outcomes,
                  const std::vector<size_t>& pending, Tally& tally, Prefetcher* prefetch,
                  std::vector<int64_t>& started);
  RolloutSummary Summarize(const RolloutPlan& plan, std::vector<HostOutcome> outcomes, const Tally& tally,
                           int64_t start_ms);
  HostOutcome RunHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, Prefetcher* prefetch);
  // The steps pull .. confirm_up of one host; the first failure ends them.
  Status RollHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, Prefetcher* prefetch, HostRun& run);
  HostOutcome HostFailed(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, HostRun& run, const Error& error);
  Status StopRunning(const RolloutPlan& plan, const HostSpec& host, nlohmann::json& detail);
  Status Smoke(const RolloutPlan& plan, const HostSpec& host);
  // One step of a host: journaled (kBegin) and announced before `fn` acts,
  // journaled and announced again with its outcome.
  Status RunStep(const RolloutPlan& plan, const std::string& host, Step step, int64_t host_start_ms,
                 const std::function<Status(nlohmann::json&)>& fn);
  // The "cleanup" step of a done host, then the host's connection is released.
  void CleanupHost(const RolloutPlan& plan, const HostSpec& host, int64_t host_start_ms);
  // Pulls the plan's artifact onto a host unless it has it; *cached tells which.
  Status PullArtifact(const RolloutPlan& plan, const HostSpec& host, bool* cached);
  // Brings a host to "in rotation, exactly one version running". Returns the
  // host state: done (new version serving) or pending (old version serving).
  HostOutcome ReconcileHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host);
  // Whether the journal's last start of `host` in rollout `id` began and never
  // ended: the process that ran it died in the middle of it.
  bool StartCutShort(const std::string& id, const std::string& host);
  // Puts the host's previous version back and in rotation, even when the
  // journal cannot record it (then *journal_error says why).
  Status RestoreHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, std::string* journal_error = nullptr);
  Status RestorePrevious(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host);
  // One host's teardown: out of every LB (drained), then every instance removed.
  HostOutcome TeardownHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, nlohmann::json& detail);
  Status TeardownLbs(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, nlohmann::json& detail);
  Status WaitHealthy(const RolloutPlan& plan, const HostSpec& host, HealthProbe* last);
  // Before a host's new instance starts (and in preflight): the app's port
  // is free, or held only by instances of this (release, deployment).
  Status CheckPortFree(const RolloutPlan& plan, const HostSpec& host);
  // The runtime's listeners on the host's app port (nullopt: it cannot tell).
  Result<std::optional<std::vector<PortListener>>> PortListeners(const RolloutPlan& plan, const HostSpec& host);
  // After its health check: the port is held by `started` and nothing else
  // (the check was answered by the new instance, not by a stray). Sets
  // detail["port_owner"], and `restarts` when the runtime told the
  // instance's restarts with its listeners.
  // After its health check: the new instance's app was not restarted (it
  // crashed during the health window): from those restarts, else from List.
  Status CheckNotRestarted(int restarts);
  Status CheckNotRestarted(const RolloutPlan& plan, const HostSpec& host, const Instance& started);
  Status CheckPortOwner(const RolloutPlan& plan, const HostSpec& host, const Instance& started,
                        nlohmann::json& detail, std::optional<int>* restarts = nullptr);
  Status SetAll(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host, AdminState st);
  Status WaitSessionsZero(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host, nlohmann::json& detail);
  Status WaitUp(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host);
  // Every LB reports the host's server in rotation (a read).
  bool InRotation(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host);
  Status CheckLease();
  // Hooks (engine_hooks.cc). A round is one pre_rollout .. post_rollout
  // pair: a resume continues the round a crash left open, and opens a new
  // one (new keys) when a closed round's rollout still has hosts to roll
  // (an interrupted rollout resumed).
  struct HookLedger;
  Result<HookLedger> ReadHookLedger(const RolloutPlan& plan);
  // One hook, fenced, journaled (begin, then end or fail) and announced.
  Status RunHook(const RolloutPlan& plan, Step point, const HookSpec& hook, const HostSpec* host, int64_t start_ms);
  // `st`, or Ok with a warning for a hook whose on_error is "warn".
  Status Tolerated(const RolloutPlan& plan, const HookSpec& hook, Status st);
  // A host's hooks at `point` (pre_host, post_host), in order, to the first failure.
  Status RunHostHooks(const RolloutPlan& plan, Step point, const HostSpec& host, HostRun& run);
  // Before the first host: the round's pre_rollout hooks not yet ended (after
  // closing a round a crash left open mid-way through its end).
  Status OpenHookRound(const RolloutPlan& plan, HookLedger& ledger, bool hosts_left);
  // At the end of a round: on_failure (when `failed`) and post_rollout hooks
  // not yet ended, each tried even when another failed. What failed, or "".
  std::string CloseHookRound(const RolloutPlan& plan, HookLedger& ledger, bool failed);
  // The round's alert silence (engine_silence.cc): made, or adopted when one
  // with the round's marker exists (a resume), journaled, then extended in
  // the background while the lock is held (renew_in_background).
  Status OpenSilence(const RolloutPlan& plan, HookLedger& ledger);
  // Stops extending it and expires every silence with the round's marker.
  // What failed, or "".
  std::string CloseSilence(const RolloutPlan& plan, HookLedger& ledger);
  // The hooks of an unfinished rollout that will not continue (its hosts
  // reconciled): its open round closed as failed.
  void CloseHooksOf(const RolloutPlan& plan);
  void Emit(Event e);
  Status Journal(const std::string& rollout_id, const std::string& host, Step step, StepPhase phase,
                 const nlohmann::json& detail);
  void PutHost(const RolloutPlan& plan, const std::string& host, HostState state, Step step, int64_t out_ms,
               const std::string& detail);

  EngineDeps d_;
  EngineOptions o_;
  std::mutex emit_mu_;
  std::shared_ptr<ScopeLease> scope_;
  // d_.runtime, d_.transport and the load balancers, each fenced on scope_.
  std::unique_ptr<Runtime> fenced_runtime_;
  std::unique_ptr<Transport> fenced_transport_;
  std::unique_ptr<HookRunner> fenced_hooks_;
  std::unique_ptr<Silencer> fenced_silencer_;
  std::unique_ptr<SilenceKeeper> silence_keeper_;  // While a silence is held.
  int hook_round_ = 1;  // The round host hooks' keys belong to.
  std::string took_over_from_;  // TakeLock took the lock from this dead holder.
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> hand_back_{false};
};

}  // namespace sp
