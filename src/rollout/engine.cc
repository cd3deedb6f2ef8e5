#include "rollout/engine.h"

#include <algorithm>
#include <atomic>
#include <future>

#include "core/text.h"
#include "rollout/fence.h"
#include "rollout/engine_internal.h"

namespace sp {

using nlohmann::json;

std::string Event::ToJsonLine() const {
  json j = {{"event", Name(type)}, {"rollout", rollout_id}, {"ts_ms", ts_ms}};
  if (!host.empty()) j["host"] = host;
  if (step != Step::kNone) j["step"] = Name(step);
  if (phase != StepPhase::kNone) j["phase"] = Name(phase);
  if (elapsed_ms) j["elapsed_ms"] = elapsed_ms;
  if (!detail.empty()) j["detail"] = detail;
  return j.dump();
}

namespace engine {

void ParallelFor(size_t n, size_t workers, const std::function<void(size_t)>& fn) {
  workers = std::max<size_t>(1, std::min(n, workers));
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> thrown(workers);
  auto work = [&](size_t w) {
    try {
      for (size_t i; (i = next++) < n;) fn(i);
    } catch (...) {
      thrown[w] = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work, w);
  work(0);
  for (auto& t : threads) t.join();
  for (auto& e : thrown) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace engine

using engine::ParallelFor;

RolloutEngine::LeaseKeeper::LeaseKeeper(LockStore* locks, Clock* clock, Lease lease, Millis ttl, ScopeLease* scope)
    : locks_(locks), clock_(clock), lease_(std::move(lease)), ttl_(ttl), scope_(scope) {
  thread_ = std::thread([this] { Loop(); });
}

RolloutEngine::LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RolloutEngine::LeaseKeeper::Loop() {
  std::unique_lock l(mu_);
  Millis wait = ttl_ / 3;
  while (!stop_) {
    cv_.wait_for(l, wait, [this] { return stop_; });
    if (stop_) break;
    const int64_t sent = clock_->MonotonicMs();
    Status renewed = locks_->Renew(lease_.key, lease_.token, clock_->WallMs(), ttl_.count());
    wait = ttl_ / 3;
    if (renewed) {
      scope_->Renewed(sent);
    } else if (renewed.error().code == ErrorCode::kConflict) {
      scope_->Lost("lock " + lease_.key + " released or taken over (renewal refused)");
      break;
    } else {
      wait = std::min<Millis>(wait, Millis(1000));  // Retried within the lease.
    }
  }
}

RolloutEngine::Hold::Hold(RolloutEngine* e, Lease lease) : e_(e), lease_(std::move(lease)) {
  e_->scope_->Held(lease_, e_->o_.lease_ttl.count());
  if (e_->o_.renew_in_background) {
    keeper_ = std::make_unique<LeaseKeeper>(e_->d_.locks, e_->d_.clock, lease_, e_->o_.lease_ttl, e_->scope_.get());
  }
}

RolloutEngine::Hold::~Hold() {
  keeper_.reset();  // Stop renewing before releasing.
  e_->scope_->Dropped();
  (void)e_->d_.locks->Release(lease_.key, lease_.token);  // Only while it is still ours (the token says).
}

RolloutEngine::RolloutEngine(EngineDeps deps, EngineOptions opts) : d_(std::move(deps)), o_(std::move(opts)) {
  SP_CHECK(d_.clock && d_.journal && d_.locks && d_.runtime && d_.transport && d_.health && d_.lb_factory);
  scope_ = d_.scope_lease ? d_.scope_lease
                          : std::make_shared<ScopeLease>(d_.locks, d_.clock, o_.verify_lease_each_action);
  // Every action below is fenced on the scope lock, whatever the caller wired.
  Fence fence = [scope = scope_] { return scope->Check(); };
  fenced_runtime_ = std::make_unique<FencedRuntime>(*d_.runtime, fence);
  d_.runtime = fenced_runtime_.get();
  fenced_transport_ = std::make_unique<FencedTransport>(*d_.transport, fence);
  d_.transport = fenced_transport_.get();
  if (d_.hooks) {
    fenced_hooks_ = std::make_unique<FencedHookRunner>(*d_.hooks, fence);
    d_.hooks = fenced_hooks_.get();
  }
  if (d_.silencer) {
    fenced_silencer_ = std::make_unique<FencedSilencer>(*d_.silencer, fence);
    d_.silencer = fenced_silencer_.get();
  }
  d_.lb_factory = [inner = std::move(d_.lb_factory), fence](const LoadBalancerSpec& spec)
      -> Result<std::unique_ptr<LoadBalancer>> {
    SP_ASSIGN_OR_RETURN(std::unique_ptr<LoadBalancer> lb, inner(spec));
    return std::unique_ptr<LoadBalancer>(std::make_unique<FencedLoadBalancer>(std::move(lb), fence, /*reads_too=*/true));
  };
}
RolloutEngine::~RolloutEngine() = default;

void RolloutEngine::Emit(Event e) {
  if (!d_.on_event) return;
  if (!e.ts_ms) e.ts_ms = d_.clock->WallMs();
  std::lock_guard l(emit_mu_);
  d_.on_event(e);
}

Status RolloutEngine::Journal(const std::string& rollout_id, const std::string& host, Step step, StepPhase phase,
                              const json& detail) {
  StepRecord s;
  s.rollout_id = rollout_id;
  s.host = host;
  s.step = step;
  s.phase = phase;
  s.ts_ms = d_.clock->WallMs();
  s.detail = detail.empty() ? "" : detail.dump();
  return d_.journal->AppendStep(s);
}

void RolloutEngine::PutHost(const RolloutPlan& plan, const std::string& host, HostState state, Step step,
                            int64_t out_ms, const std::string& detail) {
  (void)d_.journal->PutHost(HostRecord{plan.id, host, state, step, out_ms, detail});
}

Status RolloutEngine::CheckLease() { return scope_->Check(); }

Result<Lease> RolloutEngine::TakeLock(const RolloutPlan& plan) {
  took_over_from_.clear();
  Lease want;
  want.key = plan.ScopeKey();
  want.holder = o_.holder;
  want.reason = LockReason(Name(plan.kind), plan.id, plan.app.version);
  want.pid = o_.pid;
  want.machine = o_.machine;
  want.token = NewRolloutId().substr(2) + NewRolloutId().substr(2);
  const int64_t give_up = d_.clock->MonotonicMs() + o_.lock_wait.count();
  while (true) {
    auto got = d_.locks->Acquire(want, d_.clock->WallMs(), o_.lease_ttl.count());
    if (got) return got;
    if (got.error().code != ErrorCode::kConflict) return Err(got.error());
    // A holder on this machine whose process is gone cannot renew: take over.
    auto held = d_.locks->Get(want.key);
    if (held && *held && !o_.machine.empty() && (*held)->machine == o_.machine && o_.pid_alive &&
        !o_.pid_alive((*held)->pid)) {
      Emit(Event{EventType::kWarning, plan.id, "", Step::kLock, StepPhase::kNone, 0, 0,
                 {{"message", "taking over lock from dead holder " + (*held)->holder}}});
      took_over_from_ = (*held)->holder;
      SP_TRY(d_.locks->ForceRelease(want.key));
      continue;
    }
    if (d_.clock->MonotonicMs() >= give_up) return Err(got.error());
    d_.clock->Sleep(Millis(200));
  }
}

Result<RolloutEngine::LbSet> RolloutEngine::Connect(const std::vector<LoadBalancerSpec>& specs) {
  LbSet set;
  for (const auto& spec : specs) {
    SP_ASSIGN_OR_RETURN(auto lb, d_.lb_factory(spec));
    set.lbs.push_back(std::move(lb));
  }
  return set;
}

Result<RolloutPlan> RolloutEngine::JournaledPlan(const RolloutRecord& rec) {
  SP_ASSIGN_OR_RETURN(RolloutPlan plan, PlanFromJson(rec.plan_json));
  if (!plan.submitted_by.empty() && !o_.act_on_submitted_plans) {
    return Err(ErrorCode::kConflict,
               "rollout " + rec.id + " was planned and run by a CLI (" + plan.submitted_by +
                   "), not by the server: its plan is not acted on here. Finish it with the CLI "
                   "(sallyport rollout resume " + rec.id + " -i <server URL>)");
  }
  return plan;
}

Status RolloutEngine::ReconcileUnfinished(const RolloutPlan& plan) {
  SP_ASSIGN_OR_RETURN(auto unfinished, d_.journal->Latest(plan.stack, plan.release, plan.deployment,
                                                          RolloutStatus::kRunning));
  if (!unfinished) return Ok();
  SP_ASSIGN_OR_RETURN(auto old_plan, JournaledPlan(*unfinished));
  Emit(Event{EventType::kWarning, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
             {{"message", "rollout " + old_plan.id + " was interrupted; reconciling its hosts first"}}});
  SP_ASSIGN_OR_RETURN(LbSet old_lbs, Connect(old_plan.load_balancers));
  for (const auto& h : old_plan.hosts) (void)ReconcileHost(old_plan, old_lbs, h);
  CloseHooksOf(old_plan);
  return d_.journal->FinishRollout(old_plan.id, RolloutStatus::kFailed, "interrupted; reconciled by " + plan.id);
}

Result<RolloutSummary> RolloutEngine::Reconcile(const std::string& rollout_id, const std::string& reason) {
  SP_ASSIGN_OR_RETURN(auto rec, d_.journal->GetRollout(rollout_id));
  RolloutSummary sum;
  sum.rollout_id = rollout_id;
  sum.status = rec.status;
  sum.error = rec.error;
  if (rec.status != RolloutStatus::kRunning) return sum;
  SP_ASSIGN_OR_RETURN(auto plan, JournaledPlan(rec));
  const int64_t start = d_.clock->MonotonicMs();
  SP_ASSIGN_OR_RETURN(Lease lease, TakeLock(plan));
  Hold hold(this, lease);
  Emit(Event{EventType::kWarning, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
             {{"message", "reconciling every host, rolling nothing further: " + reason}}});
  SP_ASSIGN_OR_RETURN(LbSet lbs, Connect(plan.load_balancers));
  for (const auto& h : plan.hosts) sum.hosts.push_back(ReconcileHost(plan, lbs, h));
  sum.elapsed_ms = d_.clock->MonotonicMs() - start;
  for (const auto& o : sum.hosts) {
    // A host that could not be reconciled: left running, for the next try.
    if (o.failed_step == Step::kReconcile) {
      sum.error = o.error;
      return sum;
    }
  }
  CloseHooksOf(plan);
  SP_TRY(d_.journal->FinishRollout(plan.id, RolloutStatus::kFailed, reason));
  sum.status = RolloutStatus::kFailed;
  sum.error = reason;
  Emit(Event{EventType::kRolloutFinished, plan.id, "", Step::kNone, StepPhase::kNone, 0, sum.elapsed_ms,
             {{"status", std::string(RolloutStatusName(sum.status))}, {"error", sum.error}}});
  return sum;
}

Result<RolloutSummary> RolloutEngine::Run(RolloutPlan plan) {
  SP_ASSIGN_OR_RETURN(Lease lease, TakeLock(plan));
  Hold hold(this, lease);
  SP_ASSIGN_OR_RETURN(LbSet lbs, Connect(plan.load_balancers));
  SP_TRY(ReconcileUnfinished(plan));
  SP_ASSIGN_OR_RETURN(auto prev, d_.journal->Latest(plan.stack, plan.release, plan.deployment,
                                                    RolloutStatus::kSucceeded));
  if (prev && plan.previous_rollout_id.empty()) plan.previous_rollout_id = prev->id;
  SP_TRY(Preflight(plan, lbs));

  RolloutRecord rec;
  rec.id = plan.id;
  rec.stack = plan.stack;
  rec.release = plan.release;
  rec.deployment = plan.deployment;
  rec.kind = plan.kind;
  rec.plan_json = PlanToJson(plan);
  rec.created_ms = plan.created_ms ? plan.created_ms : d_.clock->WallMs();
  SP_TRY(d_.journal->CreateRollout(rec));
  if (!took_over_from_.empty()) {  // Told (a notification), and in its record.
    SP_TRY(Journal(plan.id, "", Step::kLock, StepPhase::kEnd, {{"taken_over_from", took_over_from_}}));
  }
  Emit(Event{EventType::kRolloutStarted, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
             {{"release", plan.release}, {"deployment", plan.deployment}, {"artifact", plan.app.artifact},
              {"version", plan.app.version}, {"hosts", plan.hosts.size()}, {"kind", Name(plan.kind)}}});
  std::vector<HostOutcome> outcomes;
  for (const auto& h : plan.hosts) {
    outcomes.push_back(HostOutcome{h.name, HostState::kPending, Step::kNone, "", 0, 0});
    SP_TRY(d_.journal->PutHost(HostRecord{plan.id, h.name, HostState::kPending, Step::kNone, 0, ""}));
  }
  return Execute(plan, lbs, std::move(outcomes));
}

Result<RolloutSummary> RolloutEngine::Resume(const std::string& rollout_id) {
  SP_ASSIGN_OR_RETURN(auto rec, d_.journal->GetRollout(rollout_id));
  SP_ASSIGN_OR_RETURN(auto plan, JournaledPlan(rec));
  if (rec.status != RolloutStatus::kRunning && rec.status != RolloutStatus::kInterrupted) {
    return Err(ErrorCode::kConflict, "rollout " + rollout_id + " already " + std::string(RolloutStatusName(rec.status)));
  }
  if (rec.status == RolloutStatus::kInterrupted) {
    // Only the scope's last rollout: continuing an older one would undo a newer one.
    SP_ASSIGN_OR_RETURN(auto last, d_.journal->Latest(plan.stack, plan.release, plan.deployment, std::nullopt));
    if (last && last->id != rollout_id) {
      return Err(ErrorCode::kConflict, "rollout " + rollout_id + " was interrupted, and rollout " + last->id +
                                           " ran since: start a new rollout instead");
    }
  }
  SP_ASSIGN_OR_RETURN(Lease lease, TakeLock(plan));
  Hold hold(this, lease);
  SP_ASSIGN_OR_RETURN(LbSet lbs, Connect(plan.load_balancers));
  Emit(Event{EventType::kRolloutStarted, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
             {{"resumed", true}, {"release", plan.release}, {"deployment", plan.deployment},
              {"version", plan.app.version}, {"hosts", plan.hosts.size()}}});
  // Reality first: ask the runtime and the LBs, not the journal.
  std::vector<HostOutcome> outcomes;
  for (const auto& h : plan.hosts) outcomes.push_back(ReconcileHost(plan, lbs, h));
  return Execute(plan, lbs, std::move(outcomes));
}

void RolloutEngine::RunBatches(const RolloutPlan& plan, LbSet& lbs, std::vector<HostOutcome>& outcomes,
                               const std::vector<size_t>& pending, Tally& tally, Prefetcher* pf,
                               std::vector<int64_t>& started) {
  const size_t batch = static_cast<size_t>(tally.batch);
  auto run_host = [&](size_t i) {
    started[i] = d_.clock->MonotonicMs();
    return RunHost(plan, lbs, plan.hosts[i], pf);
  };
  for (size_t b = 0; b < pending.size() && tally.failures <= tally.max_failures && CheckLease(); b += batch) {
    if (o_.hand_back && o_.hand_back()) RequestHandBack();
    if (stop_requested_) break;
    const size_t end = std::min(pending.size(), b + batch);
    if (pf) pf->Allow(end + batch * static_cast<size_t>(o_.prefetch_batches));
    if (end - b == 1) {
      outcomes[pending[b]] = run_host(pending[b]);
    } else {
      std::vector<std::future<HostOutcome>> futs;
      for (size_t k = b; k < end; ++k) {
        futs.push_back(std::async(std::launch::async, [&, k] { return run_host(pending[k]); }));
      }
      for (size_t k = b; k < end; ++k) outcomes[pending[k]] = futs[k - b].get();
    }
    for (size_t k = b; k < end; ++k) {
      const auto& o = outcomes[pending[k]];
      if (o.state != HostState::kFailed) continue;
      ++tally.failures;
      if (tally.first_error.empty()) tally.first_error = o.error;
    }
  }
}

Result<RolloutSummary> RolloutEngine::Execute(const RolloutPlan& plan, LbSet& lbs, std::vector<HostOutcome> outcomes) {
  const int64_t start = d_.clock->MonotonicMs();
  const int total = static_cast<int>(plan.hosts.size());
  Tally tally;
  tally.batch = plan.strategy.batch.Resolve(total);
  const CountOrPercent& mf = plan.strategy.max_failures;
  tally.max_failures = mf.percent ? mf.value * total / 100 : mf.value;
  std::vector<size_t> pending;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    tally.failures += o.state == HostState::kFailed;
    if (tally.first_error.empty() && !o.error.empty()) tally.first_error = o.error;
    if (o.state == HostState::kPending) pending.push_back(i);
  }
  HookLedger ledger;
  if (!plan.hooks.empty()) {
    SP_ASSIGN_OR_RETURN(ledger, ReadHookLedger(plan));
    if (Status pre = OpenHookRound(plan, ledger, !pending.empty()); !pre) {
      tally.abort_error = pre.error().message + "; no host was touched";
      pending.clear();
    }
  }
  std::optional<Prefetcher> prefetch;
  if (o_.prefetch_batches > 0 && pending.size() > static_cast<size_t>(tally.batch)) {
    prefetch.emplace(this, plan, pending, std::min(tally.batch, 4), static_cast<size_t>(tally.batch));
  }
  // When each host's procedure began (for its deferred cleanup's events).
  std::vector<int64_t> started(plan.hosts.size(), 0);
  RunBatches(plan, lbs, outcomes, pending, tally, prefetch ? &*prefetch : nullptr, started);
  if (prefetch) prefetch->Finish();  // No pull still running once the rollout is reported finished.
  if (o_.deferred_cleanup) {
    // The done hosts' cleanups, a few at a time, after the last batch (so no
    // host waits for an earlier host's leftovers, and an agent paused at a
    // step has nothing else in flight) and before the rollout is reported
    // finished. A crash above skips them: the next rollout's remove what is left.
    std::vector<size_t> done;
    for (size_t i : pending) {
      if (outcomes[i].state == HostState::kDone) done.push_back(i);
    }
    ParallelFor(done.size(), 4, [&](size_t k) { CleanupHost(plan, plan.hosts[done[k]], started[done[k]]); });
  }
  RolloutSummary sum = Summarize(plan, std::move(outcomes), tally, start);
  if (!plan.hooks.empty() && !scope_->lost() && !sum.handed_back) {
    // Whatever the outcome; a hook that failed here is said, the hosts stay as they are.
    const std::string failed = CloseHookRound(plan, ledger, sum.status == RolloutStatus::kFailed);
    if (!failed.empty()) sum.error += (sum.error.empty() ? "" : "; ") + failed;
    if (Status held = scope_->Check(); !held && !sum.lock_lost) {  // Lost while its hooks ran.
      sum.status = RolloutStatus::kFailed;
      sum.error = held.error().message;
      sum.lock_lost = true;
    }
  }
  silence_keeper_.reset();  // Handed back or lock lost: the silence is left to the next holder (or its end).
  // Handed back: left running for the next holder, which resumes it.
  Status recorded = Ok();
  if (!scope_->lost() && !sum.handed_back) recorded = d_.journal->FinishRollout(plan.id, sum.status, sum.error);
  Emit(Event{EventType::kRolloutFinished, plan.id, "", Step::kNone, StepPhase::kNone, 0, sum.elapsed_ms,
             {{"status", std::string(RolloutStatusName(sum.status))}, {"error", sum.error}}});
  if (!recorded) {  // The hosts are as reported; only the record is missing (a resume reconciles).
    return Err(recorded.error().code, "rollout " + std::string(RolloutStatusName(sum.status)) +
                                          (sum.error.empty() ? "" : ": " + sum.error) +
                                          "; the journal could not record its end: " + recorded.error().message);
  }
  return sum;
}

RolloutSummary RolloutEngine::Summarize(const RolloutPlan& plan, std::vector<HostOutcome> outcomes, const Tally& tally,
                                        int64_t start_ms) {
  for (auto& o : outcomes) {
    if (o.state == HostState::kPending) o.state = HostState::kSkipped;
  }
  const auto untouched = std::count_if(outcomes.begin(), outcomes.end(),
                                      [](const HostOutcome& o) { return o.state == HostState::kSkipped; });
  RolloutSummary sum;
  sum.rollout_id = plan.id;
  sum.elapsed_ms = d_.clock->MonotonicMs() - start_ms;
  const bool all_done =
      std::all_of(outcomes.begin(), outcomes.end(), [](const HostOutcome& o) { return o.state == HostState::kDone; });
  sum.hosts = std::move(outcomes);
  if (all_done) {
    sum.status = RolloutStatus::kSucceeded;
  } else if (tally.failures <= tally.max_failures) {
    sum.status = RolloutStatus::kSucceeded;  // Failures within max_failures.
    sum.error = std::to_string(tally.failures) + " host(s) failed within max_failures " +
                plan.strategy.max_failures.ToString();
  } else {
    sum.status = RolloutStatus::kFailed;
    sum.error = tally.first_error.empty() ? "rollout stopped" : tally.first_error;
  }
  // Hosts left untouched within max_failures: the batches stopped on a stop
  // request (or a lost lease, reported below) — never a success.
  if (untouched > 0 && sum.status == RolloutStatus::kSucceeded) {
    sum.status = RolloutStatus::kInterrupted;
    sum.error = "interrupted: " + std::to_string(untouched) + " of " + std::to_string(sum.hosts.size()) +
                " host(s) untouched (old version kept)";
    if (hand_back_) {
      sum.handed_back = true;
      sum.error = "handed back: " + std::to_string(untouched) + " of " + std::to_string(sum.hosts.size()) +
                  " host(s) left for the next holder, which resumes the rollout";
    }
  }
  if (!tally.abort_error.empty() && !hand_back_) {
    sum.status = RolloutStatus::kFailed;
    sum.error = tally.abort_error;
  }
  if (Status held = scope_->Check(); !held) {
    // Fenced: another holder owns the scope now; the record is left to it.
    sum.status = RolloutStatus::kFailed;
    sum.error = held.error().message;
    sum.lock_lost = true;
  }
  return sum;
}

}  // namespace sp
