#include "rollout/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <future>
#include <optional>
#include <thread>

#include "core/text.h"

namespace sp {

using nlohmann::json;

std::string Event::ToJsonLine() const {
  json j = {{"event", type}, {"rollout", rollout_id}, {"ts_ms", ts_ms}};
  if (!host.empty()) j["host"] = host;
  if (!step.empty()) j["step"] = step;
  if (!phase.empty()) j["phase"] = phase;
  if (elapsed_ms) j["elapsed_ms"] = elapsed_ms;
  if (!detail.empty()) j["detail"] = detail;
  return j.dump();
}

// The plan's load balancers, connected once per rollout: lbs[i] is
// plan.load_balancers[i] of the plan it was connected for.
struct RolloutEngine::LbSet {
  std::vector<std::unique_ptr<LoadBalancer>> lbs;
};

// Journal + timing for one host's procedure.
struct RolloutEngine::HostRun {
  int64_t start_ms = 0;
  int64_t out_since_ms = -1;   // When the host left rotation (drain began).
  int64_t out_total_ms = 0;
  std::string step;            // Current/last step.
};

// Renews the lease every ttl/3 on a real-time thread; flags loss.
class RolloutEngine::LeaseKeeper {
 public:
  LeaseKeeper(LockStore* locks, Clock* clock, Lease lease, Millis ttl, std::atomic<bool>* lost)
      : locks_(locks), clock_(clock), lease_(std::move(lease)), ttl_(ttl), lost_(lost) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~LeaseKeeper() {
    {
      std::lock_guard l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock l(mu_);
    while (!stop_) {
      cv_.wait_for(l, ttl_ / 3, [this] { return stop_; });
      if (stop_) break;
      if (!locks_->Renew(lease_.key, lease_.token, clock_->WallMs(), ttl_.count())) *lost_ = true;
    }
  }
  LockStore* locks_;
  Clock* clock_;
  Lease lease_;
  Millis ttl_;
  std::atomic<bool>* lost_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

RolloutEngine::RolloutEngine(EngineDeps deps, EngineOptions opts) : d_(std::move(deps)), o_(std::move(opts)) {
  SP_CHECK(d_.clock && d_.journal && d_.locks && d_.runtime && d_.transport && d_.health && d_.lb_factory);
}
RolloutEngine::~RolloutEngine() = default;

void RolloutEngine::Emit(Event e) {
  if (!d_.on_event) return;
  if (!e.ts_ms) e.ts_ms = d_.clock->WallMs();
  std::lock_guard l(emit_mu_);
  d_.on_event(e);
}

Status RolloutEngine::Journal(const std::string& rollout_id, const std::string& host, const std::string& step,
                              const std::string& phase, const json& detail) {
  StepRecord s;
  s.rollout_id = rollout_id;
  s.host = host;
  s.step = step;
  s.phase = phase;
  s.ts_ms = d_.clock->WallMs();
  s.detail = detail.empty() ? "" : detail.dump();
  return d_.journal->AppendStep(s);
}

Status RolloutEngine::CheckLease() {
  if (lease_lost_) return Err(ErrorCode::kConflict, "lost the rollout lock (lease taken over); stopping");
  return Ok();
}

namespace {

HostRef RefOf(const HostSpec& h) { return HostRef{h.name, h.address, h.ssh_user, h.ssh_port}; }
RuntimeTarget TargetOf(const RolloutPlan& p, const HostSpec& h) { return RuntimeTarget{RefOf(h), p.release, p.deployment}; }

int MaxFailures(const CountOrPercent& c, int total) {
  return c.percent ? c.value * total / 100 : c.value;
}

// fn(i) for every i in [0, n), on up to `workers` threads (this one among
// them). An exception stops the handing out of indexes and is rethrown here
// once every thread has stopped (simulated crashes in the unit tests).
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

}  // namespace

// ---------------------------------------------------------------- locking

Result<Lease> RolloutEngine::TakeLock(const RolloutPlan& plan) {
  Lease want;
  want.key = plan.ScopeKey();
  want.holder = o_.holder;
  want.reason = plan.kind + " " + plan.id + " " + plan.app.version;
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
      Emit(Event{"warning", plan.id, "", "lock", "", 0, 0,
                 {{"message", "taking over lock from dead holder " + (*held)->holder}}});
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

// The scope's lock, held (and renewed in the background) for as long as this lives.
class RolloutEngine::Hold {
 public:
  Hold(RolloutEngine* e, Lease lease) : e_(e), lease_(std::move(lease)) {
    e_->lease_lost_ = false;
    if (e_->o_.renew_in_background) {
      keeper_ = std::make_unique<LeaseKeeper>(e_->d_.locks, e_->d_.clock, lease_, e_->o_.lease_ttl, &e_->lease_lost_);
    }
  }
  ~Hold() {
    keeper_.reset();  // Stop renewing before releasing.
    (void)e_->d_.locks->Release(lease_.key, lease_.token);
  }

 private:
  RolloutEngine* e_;
  Lease lease_;
  std::unique_ptr<LeaseKeeper> keeper_;
};

// ---------------------------------------------------------------- LB helpers

Status RolloutEngine::SetAll(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host, AdminState st) {
  for (size_t i = 0; i < lbs.lbs.size(); ++i) {
    const auto& spec = plan.load_balancers[i];
    auto r = lbs.lbs[i]->SetState(spec.backend, spec.ServerFor(host.name), st);
    if (!r) return Err(r.error());
  }
  return Ok();
}

Status RolloutEngine::WaitSessionsZero(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host, json& detail) {
  const int64_t deadline = d_.clock->MonotonicMs() + plan.strategy.drain_timeout.count();
  bool first = true;
  while (true) {
    int total = 0;
    for (size_t i = 0; i < lbs.lbs.size(); ++i) {
      const auto& spec = plan.load_balancers[i];
      auto s = lbs.lbs[i]->GetServer(spec.backend, spec.ServerFor(host.name));
      if (!s) return Err(s.error());
      total += s->sessions;
    }
    if (first) {
      detail["sessions_at_drain"] = total;
      first = false;
    }
    if (total == 0 || o_.test_skip_session_wait) {
      detail["sessions_left"] = total;
      return Ok();
    }
    if (d_.clock->MonotonicMs() >= deadline) {
      // Bounded: after drain_timeout the remaining sessions are cut.
      detail["sessions_left"] = total;
      detail["drain_timed_out"] = true;
      Emit(Event{"warning", plan.id, host.name, "wait_sessions", "", 0, 0,
                 {{"message", std::to_string(total) + " sessions still open after drain_timeout " +
                                  FormatDuration(plan.strategy.drain_timeout) + "; continuing"}}});
      return Ok();
    }
    d_.clock->Sleep(o_.poll_interval);
  }
}

Status RolloutEngine::WaitUp(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host) {
  const int64_t deadline = d_.clock->MonotonicMs() + plan.strategy.ready_timeout.count();
  while (true) {
    std::string not_up;
    for (size_t i = 0; i < lbs.lbs.size(); ++i) {
      const auto& spec = plan.load_balancers[i];
      auto s = lbs.lbs[i]->GetServer(spec.backend, spec.ServerFor(host.name));
      if (!s) return Err(s.error());
      if (!s->InRotation()) not_up = lbs.lbs[i]->Describe() + " reports " + s->status;
    }
    if (not_up.empty()) return Ok();
    if (d_.clock->MonotonicMs() >= deadline) {
      return Err(ErrorCode::kTimeout, "not UP after " + FormatDuration(plan.strategy.ready_timeout) + ": " + not_up);
    }
    d_.clock->Sleep(o_.poll_interval);
  }
}

Status RolloutEngine::WaitHealthy(const RolloutPlan& plan, const HostSpec& host, HealthProbe* last) {
  const auto& h = plan.app.health;
  for (int attempt = 0; attempt < std::max(1, h.retries); ++attempt) {
    if (attempt > 0) d_.clock->Sleep(h.interval);
    *last = d_.health->Probe(host.address, plan.PortFor(host), h);
    if (last->ok) return Ok();
  }
  return Err(ErrorCode::kUnavailable, "health check " + h.path + " failed " + std::to_string(h.retries) +
                                          " times; last: " + last->Describe());
}

// ---------------------------------------------------------------- one host

// Pulls the artifact onto the hosts of the next batches in the background
// while the current batch rolls, so a host's pull step usually finds the
// artifact there already (one check instead of a transfer). Positions are
// indexes into the rollout's pending order. A host whose pull step comes
// before its prefetch started is left to that step; one whose prefetch is
// running is waited for, never pulled twice at once. Prefetch errors are
// dropped: the host's own pull step meets (and reports) them in order. An
// exception in a worker (a simulated crash in the unit tests) is rethrown on
// the engine's thread, at the next Claim or at Finish.
class RolloutEngine::Prefetcher {
 public:
  // The first `skip` positions (the first batch) pull in line: prefetching
  // hosts that are about to start anyway gains nothing.
  Prefetcher(RolloutEngine* e, const RolloutPlan& plan, std::vector<size_t> order, int workers, size_t skip)
      : e_(e), plan_(plan), order_(std::move(order)), state_(order_.size(), kIdle), next_(skip) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~Prefetcher() { Join(); }
  // Waits for pulls in progress; rethrows a worker's exception.
  void Finish() {
    Join();
    RethrowOnce();
  }
  // Hosts at positions below `limit` may now be prefetched.
  void Allow(size_t limit) {
    {
      std::lock_guard lk(mu_);
      limit_ = std::max(limit_, std::min(limit, order_.size()));
    }
    cv_.notify_all();
  }
  // Called by the pull step of plan host `index`: returns once no prefetch of
  // it is running (and none will start); true if one put (or found) the
  // artifact there.
  bool Claim(size_t index) {
    std::unique_lock lk(mu_);
    auto it = std::find(order_.begin(), order_.end(), index);
    if (it == order_.end()) return false;
    const size_t pos = static_cast<size_t>(it - order_.begin());
    if (state_[pos] == kIdle) state_[pos] = kClaimed;
    cv_.wait(lk, [&] { return state_[pos] != kRunning; });
    lk.unlock();
    RethrowOnce();
    return state_[pos] == kPulled;
  }

 private:
  enum State { kIdle, kRunning, kPulled, kFailed, kClaimed };
  void Join() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  void RethrowOnce() {
    std::exception_ptr e;
    {
      std::lock_guard lk(mu_);
      e = std::exchange(error_, nullptr);
    }
    if (e) std::rethrow_exception(e);
  }
  void Work() {
    std::unique_lock lk(mu_);
    while (true) {
      cv_.wait(lk, [&] { return stop_ || next_ < limit_; });
      if (stop_) return;
      const size_t pos = next_++;
      if (state_[pos] != kIdle) continue;
      state_[pos] = kRunning;
      lk.unlock();
      std::exception_ptr thrown;
      bool pulled = false;
      try {
        if (e_->CheckLease()) {  // Fenced: a process that lost the lock touches no host.
          bool cached = false;
          pulled = e_->PullArtifact(plan_, plan_.hosts[order_[pos]], &cached).has_value();
        }
      } catch (...) {
        thrown = std::current_exception();
      }
      lk.lock();
      if (thrown && !error_) error_ = thrown;
      state_[pos] = pulled ? kPulled : kFailed;
      cv_.notify_all();
    }
  }

  RolloutEngine* e_;
  const RolloutPlan& plan_;
  const std::vector<size_t> order_;
  std::vector<State> state_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t limit_ = 0;
  size_t next_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

Status RolloutEngine::PullArtifact(const RolloutPlan& plan, const HostSpec& host, bool* cached) {
  const RuntimeTarget target = TargetOf(plan, host);
  const AppSpec app = plan.AppFor(host);
  SP_ASSIGN_OR_RETURN(bool have, d_.runtime->HasArtifact(target, app));
  *cached = have;
  if (have) return Ok();
  std::optional<RegistryAuth> auth;
  if (d_.credentials) {
    SP_ASSIGN_OR_RETURN(auth, d_.credentials(plan.registry));
  }
  return d_.runtime->Pull(target, app, auth);
}

Status RolloutEngine::RunStep(const RolloutPlan& plan, const std::string& host, const std::string& name,
                              int64_t host_start_ms, const std::function<Status(json&)>& fn) {
  json detail = json::object();
  SP_TRY(Journal(plan.id, host, name, "begin", detail));
  Emit(Event{"step", plan.id, host, name, "begin", 0, d_.clock->MonotonicMs() - host_start_ms, {}});
  Status st = fn(detail);
  if (!st) detail["error"] = st.error().message;
  SP_TRY(Journal(plan.id, host, name, st ? "end" : "fail", detail));
  Emit(Event{"step", plan.id, host, name, st ? "end" : "fail", 0, d_.clock->MonotonicMs() - host_start_ms, detail});
  return st;
}

void RolloutEngine::CleanupHost(const RolloutPlan& plan, const HostSpec& host, int64_t host_start_ms) {
  const RuntimeTarget target = TargetOf(plan, host);
  // Fenced like every step: a process that lost the lock touches no host. A
  // failure leaves leftovers only: the next rollout's cleanup tries again.
  if (CheckLease()) {
    (void)RunStep(plan, host.name, "cleanup", host_start_ms, [&](json& detail) -> Status {
      // Keep the previous instance for restore/rollback; remove older ones.
      SP_ASSIGN_OR_RETURN(auto instances, d_.runtime->List(target));
      json removed = json::array();
      int keep_stopped = 1;
      for (auto it = instances.rbegin(); it != instances.rend(); ++it) {
        if (it->running || it->rollout_id == plan.id) continue;
        if (keep_stopped > 0) {
          --keep_stopped;
          continue;
        }
        SP_TRY(d_.runtime->Remove(target, *it));
        removed.push_back(it->id);
      }
      detail["removed"] = removed;
      return Ok();
    });
  }
  d_.transport->Release(RefOf(host));
}

HostOutcome RolloutEngine::RunHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, Prefetcher* prefetch) {
  HostRun run;
  run.start_ms = d_.clock->MonotonicMs();
  const RuntimeTarget target = TargetOf(plan, host);
  const AppSpec app = plan.AppFor(host);
  std::optional<Instance> started;

  auto put_host = [&](const std::string& state, const std::string& detail) {
    (void)d_.journal->PutHost(HostRecord{plan.id, host.name, state, run.step, run.out_total_ms, detail});
  };
  // Journals and announces `name`, runs `fn`, journals the outcome.
  auto step = [&](const std::string& name, const std::function<Status(json&)>& fn) -> Status {
    SP_TRY(CheckLease());
    run.step = name;
    return RunStep(plan, host.name, name, run.start_ms, fn);
  };

  put_host("in_progress", "");
  Status st = step("pull", [&](json& detail) -> Status {
    // `host` is an element of plan.hosts (Execute passes them so).
    if (prefetch && prefetch->Claim(static_cast<size_t>(&host - plan.hosts.data()))) {
      detail["prefetched"] = true;  // Verified there moments ago: no second check.
      return Ok();
    }
    bool cached = false;
    SP_TRY(PullArtifact(plan, host, &cached));
    if (cached) detail["cached"] = true;
    return Ok();
  });
  if (st) {
    st = step("drain", [&](json&) {
      run.out_since_ms = d_.clock->MonotonicMs();
      return SetAll(lbs, plan, host, AdminState::kDrain);
    });
  }
  if (st) st = step("wait_sessions", [&](json& detail) { return WaitSessionsZero(lbs, plan, host, detail); });
  if (st) st = step("maint", [&](json&) { return SetAll(lbs, plan, host, AdminState::kMaint); });
  if (st) {
    st = step("stop", [&](json& detail) -> Status {
      SP_ASSIGN_OR_RETURN(auto instances, d_.runtime->List(target));
      json stopped = json::array();
      for (const auto& inst : instances) {
        if (!inst.running) continue;
        SP_TRY(d_.runtime->Stop(target, inst, plan.app.stop_timeout));
        stopped.push_back(inst.id);
      }
      detail["stopped"] = stopped;
      return Ok();
    });
  }
  if (st) {
    st = step("start", [&](json& detail) -> Status {
      SP_ASSIGN_OR_RETURN(auto inst, d_.runtime->Start(target, app));
      detail["instance"] = inst.id;
      started = inst;
      return Ok();
    });
  }
  HealthProbe last;
  if (st) {
    st = step("health", [&](json& detail) {
      Status h = WaitHealthy(plan, host, &last);
      detail["last"] = last.Describe();
      return h;
    });
  }
  if (st && !plan.app.smoke.empty()) {
    st = step("smoke", [&](json& detail) -> Status {
      CommandSpec c;
      c.argv = plan.app.smoke;
      c.env = {{"SALLYPORT_HOST", host.name},
               {"SALLYPORT_ADDRESS", host.address},
               {"SALLYPORT_PORT", std::to_string(plan.PortFor(host))},
               {"SALLYPORT_VERSION", plan.app.version}};
      c.timeout = plan.app.health.timeout * std::max(1, plan.app.health.retries);
      SP_ASSIGN_OR_RETURN(auto r, d_.transport->Run(RefOf(host), c));
      if (!r.ok()) return Err(ErrorCode::kUnavailable, "smoke command " + FormatArgv(c.argv) + ": " + r.Describe());
      return Ok();
    });
  }
  if (st) st = step("ready", [&](json&) { return SetAll(lbs, plan, host, AdminState::kReady); });
  if (st) {
    st = step("confirm_up", [&](json&) {
      Status up = WaitUp(lbs, plan, host);
      if (up) run.out_total_ms = d_.clock->MonotonicMs() - run.out_since_ms;
      return up;
    });
  }
  if (st) {
    // Deferred: Execute cleans (and releases) the done hosts after the last batch.
    if (!o_.deferred_cleanup) CleanupHost(plan, host, run.start_ms);
    HostOutcome out{host.name, "done", "", "", run.out_total_ms, d_.clock->MonotonicMs() - run.start_ms};
    put_host("done", "");
    Emit(Event{"host_done", plan.id, host.name, "", "", 0, out.elapsed_ms, {{"out_of_rotation_ms", out.out_of_rotation_ms}}});
    return out;
  }

  // Failure: explain, then restore this host's previous version.
  std::string failed_step = run.step;
  std::string why = st.error().message;
  if (started) {
    auto logs = d_.runtime->Logs(target, *started, 10);
    if (logs && !logs->empty()) why += "; last log lines:\n" + *logs;
  }
  std::string error = "host " + host.name + " failed at " + failed_step + ": " + why;
  if (failed_step != "pull") {
    Status r = RestoreHost(plan, lbs, host);
    if (!r) error += "; RESTORE FAILED: " + r.error().message;
    if (run.out_since_ms >= 0) run.out_total_ms = d_.clock->MonotonicMs() - run.out_since_ms;
  }
  HostOutcome out{host.name, "failed", failed_step, error, run.out_total_ms, d_.clock->MonotonicMs() - run.start_ms};
  put_host("failed", error);
  Emit(Event{"host_failed", plan.id, host.name, failed_step, "", 0, out.elapsed_ms, {{"error", error}}});
  d_.transport->Release(RefOf(host));
  return out;
}

Status RolloutEngine::RestoreHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host) {
  const RuntimeTarget target = TargetOf(plan, host);
  SP_TRY(Journal(plan.id, host.name, "restore", "begin", json::object()));
  Emit(Event{"step", plan.id, host.name, "restore", "begin", 0, 0, {}});
  auto body = [&]() -> Status {
    SP_ASSIGN_OR_RETURN(auto instances, d_.runtime->List(target));
    // The previous version: one still running, else the newest kept (List is oldest first).
    const Instance* previous = nullptr;
    for (const auto& inst : instances) {
      if (inst.rollout_id == plan.id) {
        if (inst.running) SP_TRY(d_.runtime->Stop(target, inst, plan.app.stop_timeout));
      } else if (!previous || !previous->running) {
        previous = &inst;
      }
    }
    if (!previous) {
      // First deployment to this host: nothing to restore; keep it out of rotation.
      return SetAll(lbs, plan, host, AdminState::kMaint);
    }
    if (!previous->running) SP_TRY(d_.runtime->Restart(target, *previous));
    HealthProbe last;
    SP_TRY(WaitHealthy(plan, host, &last));
    SP_TRY(SetAll(lbs, plan, host, AdminState::kReady));
    return WaitUp(lbs, plan, host);
  };
  Status st = body();
  json detail = json::object();
  if (!st) detail["error"] = st.error().message;
  SP_TRY(Journal(plan.id, host.name, "restore", st ? "end" : "fail", detail));
  Emit(Event{"step", plan.id, host.name, "restore", st ? "end" : "fail", 0, 0, detail});
  return st;
}

HostOutcome RolloutEngine::ReconcileHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host) {
  const RuntimeTarget target = TargetOf(plan, host);
  HostOutcome out{host.name, "pending", "", "", 0, 0};
  json detail = json::object();
  auto fail = [&](const std::string& what) {
    out.state = "failed";
    out.failed_step = "reconcile";
    out.error = "host " + host.name + " failed at reconcile: " + what;
    (void)d_.journal->PutHost(HostRecord{plan.id, host.name, "failed", "reconcile", 0, out.error});
    Emit(Event{"host_failed", plan.id, host.name, "reconcile", "", 0, 0, {{"error", out.error}}});
    return out;
  };
  auto instances = d_.runtime->List(target);
  if (!instances) return fail(instances.error().message);
  const Instance* fresh = nullptr;
  int running = 0;
  for (const auto& inst : *instances) {
    if (inst.rollout_id == plan.id) fresh = &inst;
    if (inst.running) ++running;
  }
  detail["instances"] = instances->size();
  detail["running"] = running;
  (void)Journal(plan.id, host.name, "reconcile", "begin", detail);
  if (fresh && fresh->running) {
    // The new version runs: keep it if healthy, stop anything else, put it in rotation.
    HealthProbe last;
    Status ok = WaitHealthy(plan, host, &last);
    if (ok) {
      for (const auto& inst : *instances) {
        if (inst.running && inst.id != fresh->id) {
          if (auto s = d_.runtime->Stop(target, inst, plan.app.stop_timeout); !s) return fail(s.error().message);
        }
      }
      if (auto s = SetAll(lbs, plan, host, AdminState::kReady); !s) return fail(s.error().message);
      if (auto s = WaitUp(lbs, plan, host); !s) return fail(s.error().message);
      out.state = "done";
      detail["decision"] = "new version healthy: kept";
    } else {
      if (auto s = RestoreHost(plan, lbs, host); !s) return fail(s.error().message);
      detail["decision"] = "new version unhealthy: restored previous";
      out.state = "failed";
      out.failed_step = "health";
      out.error = "host " + host.name + " failed at health (found after restart): " + ok.error().message;
    }
  } else {
    // The new version is not serving: the previous one must be, in rotation.
    if (fresh) {
      if (auto s = d_.runtime->Remove(target, *fresh); !s) return fail(s.error().message);
    }
    if (auto s = RestoreHost(plan, lbs, host); !s) return fail(s.error().message);
    detail["decision"] = "previous version serving";
  }
  (void)Journal(plan.id, host.name, "reconcile", "end", detail);
  (void)d_.journal->PutHost(HostRecord{plan.id, host.name, out.state, "reconcile", 0, out.error});
  Emit(Event{"reconcile", plan.id, host.name, "", "", 0, 0, detail});
  return out;
}

// ---------------------------------------------------------------- preflight

Status RolloutEngine::Preflight(const RolloutPlan& plan, LbSet& lbs) {
  // No load balancer only when the inventory says `load_balancers: none`.
  for (size_t i = 0; i < lbs.lbs.size(); ++i) {
    const auto& spec = plan.load_balancers[i];
    LoadBalancer* lb = lbs.lbs[i].get();
    auto servers = lb->ListBackend(spec.backend);
    if (!servers) return Err(servers.error().Wrap("preflight"));
    for (const auto& h : plan.hosts) {
      std::string name = spec.ServerFor(h.name);
      bool found = std::any_of(servers->begin(), servers->end(), [&](const ServerState& s) { return s.name == name; });
      if (found) continue;
      if (!spec.add_servers.value_or(false)) {
        return Err(ErrorCode::kNotFound, "preflight: " + lb->Describe() + " backend " + spec.backend +
                                             " has no server '" + name + "' for host " + h.name);
      }
      // Added out of rotation (MAINT): the host's procedure puts it in.
      auto added = lb->AddServer(spec.backend, name, h.address, plan.PortFor(h));
      if (!added && added.error().code != ErrorCode::kConflict) {
        return Err(added.error().Wrap("preflight: adding server '" + name + "' for host " + h.name));
      }
      Emit(Event{"server_added", plan.id, h.name, "", "", 0, 0,
                 {{"lb", lb->Describe()}, {"backend", spec.backend}, {"server", name},
                  {"address", h.address + ":" + std::to_string(plan.PortFor(h))}}});
    }
  }
  // Hosts are checked several at once (connecting is most of the time);
  // the error reported is the first host's in plan order, as if serial.
  std::vector<Result<bool>> have(plan.hosts.size(), false);
  ParallelFor(plan.hosts.size(), static_cast<size_t>(std::max(1, o_.preflight_parallelism)), [&](size_t i) {
    const HostSpec& h = plan.hosts[i];
    if (auto s = d_.transport->Check(RefOf(h)); !s) {
      have[i] = Err(s.error());
      return;
    }
    have[i] = d_.runtime->Available(TargetOf(plan, h), plan.AppFor(h));
  });
  bool all_have = true;
  for (size_t i = 0; i < plan.hosts.size(); ++i) {
    if (!have[i]) return Err(have[i].error().Wrap("preflight: host " + plan.hosts[i].name));
    all_have = all_have && *have[i];
  }
  if (!all_have && d_.check_pullable) {
    if (auto s = d_.check_pullable(plan); !s) return Err(s.error().Wrap("preflight: artifact " + plan.app.artifact));
  }
  return Ok();
}

// ---------------------------------------------------------------- teardown

Result<RolloutSummary> RolloutEngine::Teardown(const RolloutPlan& plan) {
  SP_ASSIGN_OR_RETURN(Lease lease, TakeLock(plan));
  Hold hold(this, lease);
  SP_ASSIGN_OR_RETURN(LbSet lbs, Connect(plan.load_balancers));
  RolloutSummary sum;
  sum.rollout_id = plan.id;
  const int64_t start = d_.clock->MonotonicMs();
  Emit(Event{"teardown_started", plan.id, "", "", "", 0, 0,
             {{"release", plan.release}, {"deployment", plan.deployment}, {"hosts", plan.hosts.size()}}});
  for (const auto& host : plan.hosts) {
    HostOutcome out;
    out.host = host.name;
    const int64_t host_start = d_.clock->MonotonicMs();
    json detail = json::object();
    Emit(Event{"step", plan.id, host.name, "teardown", "begin", 0, 0, {}});
    auto body = [&]() -> Status {
      SP_TRY(CheckLease());
      json servers = json::array();
      for (size_t i = 0; i < lbs.lbs.size(); ++i) {
        const auto& spec = plan.load_balancers[i];
        LoadBalancer* lb = lbs.lbs[i].get();
        const std::string name = spec.ServerFor(host.name);
        auto state = lb->GetServer(spec.backend, name);
        if (!state && state.error().code == ErrorCode::kNotFound) continue;  // Already gone.
        if (!state) return Err(state.error());
        SP_TRY(lb->SetState(spec.backend, name, AdminState::kDrain));
        const int64_t deadline = d_.clock->MonotonicMs() + plan.strategy.drain_timeout.count();
        while (true) {
          SP_ASSIGN_OR_RETURN(ServerState now, lb->GetServer(spec.backend, name));
          if (now.sessions == 0 || d_.clock->MonotonicMs() >= deadline) break;  // Bounded: the rest are cut.
          d_.clock->Sleep(o_.poll_interval);
        }
        if (spec.add_servers.value_or(false)) {
          auto removed = lb->RemoveServer(spec.backend, name);
          if (!removed && removed.error().code != ErrorCode::kNotFound) return Err(removed.error());
          servers.push_back({{"backend", spec.backend}, {"server", name}, {"action", "deleted"}});
        } else {
          SP_TRY(lb->SetState(spec.backend, name, AdminState::kMaint));
          servers.push_back({{"backend", spec.backend}, {"server", name}, {"action", "maint"}});
        }
      }
      detail["servers"] = servers;
      SP_TRY(CheckLease());
      const RuntimeTarget target = TargetOf(plan, host);
      SP_ASSIGN_OR_RETURN(auto instances, d_.runtime->List(target));
      json removed = json::array();
      for (const auto& inst : instances) {
        if (inst.running) SP_TRY(d_.runtime->Stop(target, inst, plan.app.stop_timeout));
        SP_TRY(d_.runtime->Remove(target, inst));
        removed.push_back(inst.id);
      }
      detail["removed"] = removed;
      return Ok();
    };
    Status st = body();
    out.elapsed_ms = d_.clock->MonotonicMs() - host_start;
    if (st) {
      out.state = "done";
    } else {
      out.state = "failed";
      out.failed_step = "teardown";
      out.error = st.error().message;
      detail["error"] = out.error;
      if (sum.error.empty()) sum.error = "host " + host.name + ": " + out.error;
    }
    Emit(Event{"step", plan.id, host.name, "teardown", st ? "end" : "fail", 0, out.elapsed_ms, detail});
    sum.hosts.push_back(std::move(out));
  }
  sum.status = sum.error.empty() ? RolloutStatus::kSucceeded : RolloutStatus::kFailed;
  sum.elapsed_ms = d_.clock->MonotonicMs() - start;
  Emit(Event{"teardown_finished", plan.id, "", "", "", 0, sum.elapsed_ms,
             {{"status", RolloutStatusName(sum.status)}, {"error", sum.error}}});
  return sum;
}

// ---------------------------------------------------------------- rollouts

Result<RolloutSummary> RolloutEngine::Run(RolloutPlan plan) {
  SP_ASSIGN_OR_RETURN(Lease lease, TakeLock(plan));
  Hold hold(this, lease);
  SP_ASSIGN_OR_RETURN(LbSet lbs, Connect(plan.load_balancers));

  // An unfinished rollout of this scope (its process died): converge its hosts first.
  SP_ASSIGN_OR_RETURN(auto unfinished, d_.journal->Latest(plan.stack, plan.release, plan.deployment,
                                                          RolloutStatus::kRunning));
  if (unfinished) {
    SP_ASSIGN_OR_RETURN(auto old_plan, PlanFromJson(unfinished->plan_json));
    Emit(Event{"warning", plan.id, "", "", "", 0, 0,
               {{"message", "rollout " + old_plan.id + " was interrupted; reconciling its hosts first"}}});
    SP_ASSIGN_OR_RETURN(LbSet old_lbs, Connect(old_plan.load_balancers));
    for (const auto& h : old_plan.hosts) (void)ReconcileHost(old_plan, old_lbs, h);
    SP_TRY(d_.journal->FinishRollout(old_plan.id, RolloutStatus::kFailed, "interrupted; reconciled by " + plan.id));
  }

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
  Emit(Event{"rollout_started", plan.id, "", "", "", 0, 0,
             {{"release", plan.release}, {"deployment", plan.deployment}, {"artifact", plan.app.artifact},
              {"version", plan.app.version}, {"hosts", plan.hosts.size()}, {"kind", plan.kind}}});
  std::vector<HostOutcome> outcomes;
  for (const auto& h : plan.hosts) {
    outcomes.push_back(HostOutcome{h.name, "pending", "", "", 0, 0});
    SP_TRY(d_.journal->PutHost(HostRecord{plan.id, h.name, "pending", "", 0, ""}));
  }
  return Execute(plan, lbs, std::move(outcomes));
}

Result<RolloutSummary> RolloutEngine::Resume(const std::string& rollout_id) {
  SP_ASSIGN_OR_RETURN(auto rec, d_.journal->GetRollout(rollout_id));
  SP_ASSIGN_OR_RETURN(auto plan, PlanFromJson(rec.plan_json));
  if (rec.status != RolloutStatus::kRunning) {
    return Err(ErrorCode::kConflict, "rollout " + rollout_id + " already " + std::string(RolloutStatusName(rec.status)));
  }
  SP_ASSIGN_OR_RETURN(Lease lease, TakeLock(plan));
  Hold hold(this, lease);
  SP_ASSIGN_OR_RETURN(LbSet lbs, Connect(plan.load_balancers));
  Emit(Event{"rollout_started", plan.id, "", "", "", 0, 0,
             {{"resumed", true}, {"release", plan.release}, {"deployment", plan.deployment},
              {"version", plan.app.version}, {"hosts", plan.hosts.size()}}});
  // Reality first: ask the runtime and the LBs, not the journal.
  std::vector<HostOutcome> outcomes;
  for (const auto& h : plan.hosts) outcomes.push_back(ReconcileHost(plan, lbs, h));
  return Execute(plan, lbs, std::move(outcomes));
}

Result<RolloutSummary> RolloutEngine::Execute(const RolloutPlan& plan, LbSet& lbs, std::vector<HostOutcome> outcomes) {
  const int64_t start = d_.clock->MonotonicMs();
  const int total = static_cast<int>(plan.hosts.size());
  const int batch = plan.strategy.batch.Resolve(total);
  const int max_failures = MaxFailures(plan.strategy.max_failures, total);
  int failures = 0;
  std::string first_error;
  std::vector<size_t> pending;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    failures += o.state == "failed";
    if (first_error.empty() && !o.error.empty()) first_error = o.error;
    if (o.state == "pending") pending.push_back(i);
  }
  std::optional<Prefetcher> prefetch;
  if (o_.prefetch_batches > 0 && pending.size() > static_cast<size_t>(batch)) {
    prefetch.emplace(this, plan, pending, std::min(batch, 4), static_cast<size_t>(batch));
  }
  Prefetcher* pf = prefetch ? &*prefetch : nullptr;
  // When each host's procedure began (for its deferred cleanup's events).
  std::vector<int64_t> started(plan.hosts.size(), 0);
  auto run_host = [&](size_t i) {
    started[i] = d_.clock->MonotonicMs();
    return RunHost(plan, lbs, plan.hosts[i], pf);
  };
  // Batches run until the hosts run out, failures exceed max_failures, or the
  // lock is lost (fenced: the summary below says so).
  for (size_t b = 0; b < pending.size() && failures <= max_failures && CheckLease(); b += static_cast<size_t>(batch)) {
    size_t end = std::min(pending.size(), b + static_cast<size_t>(batch));
    if (pf) pf->Allow(end + static_cast<size_t>(batch) * static_cast<size_t>(o_.prefetch_batches));
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
      if (o.state == "failed") {
        ++failures;
        if (first_error.empty()) first_error = o.error;
      }
    }
  }
  if (prefetch) prefetch->Finish();  // No pull still running once the rollout is reported finished.
  if (o_.deferred_cleanup) {
    // The done hosts' cleanups, a few at a time, after the last batch (so no
    // host waits for an earlier host's leftovers, and an agent paused at a
    // step has nothing else in flight) and before the rollout is reported
    // finished. A crash above skips them: the next rollout's remove what is left.
    std::vector<size_t> done;
    for (size_t i : pending) {
      if (outcomes[i].state == "done") done.push_back(i);
    }
    ParallelFor(done.size(), 4, [&](size_t k) { CleanupHost(plan, plan.hosts[done[k]], started[done[k]]); });
  }
  for (auto& o : outcomes) {
    if (o.state == "pending") o.state = "skipped";
  }

  RolloutSummary sum;
  sum.rollout_id = plan.id;
  sum.hosts = outcomes;
  sum.elapsed_ms = d_.clock->MonotonicMs() - start;
  bool all_done = std::all_of(outcomes.begin(), outcomes.end(), [](const HostOutcome& o) { return o.state == "done"; });
  if (all_done) {
    sum.status = RolloutStatus::kSucceeded;
  } else if (failures <= max_failures) {
    sum.status = RolloutStatus::kSucceeded;  // Failures within max_failures.
    sum.error = std::to_string(failures) + " host(s) failed within max_failures " + plan.strategy.max_failures.ToString();
  } else {
    sum.status = RolloutStatus::kFailed;
    sum.error = first_error.empty() ? "rollout stopped" : first_error;
  }
  if (lease_lost_) {
    // Fenced: another holder owns the scope now; leave the record to it.
    sum.status = RolloutStatus::kFailed;
    sum.error = "lost the rollout lock; another process continues this rollout";
  } else {
    SP_TRY(d_.journal->FinishRollout(plan.id, sum.status, sum.error));
  }
  Emit(Event{"rollout_finished", plan.id, "", "", "", 0, sum.elapsed_ms,
             {{"status", std::string(RolloutStatusName(sum.status))}, {"error", sum.error}}});
  return sum;
}

}  // namespace sp
