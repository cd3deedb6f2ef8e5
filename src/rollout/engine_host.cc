// One host's procedure: pull, drain (every LB), sessions 0, maint, stop the
// old version (kept), start the new one, health, smoke, ready, confirm UP;
// on failure, the previous version restored and put back in rotation.
#include <algorithm>
#include <future>

#include "core/text.h"
#include "rollout/engine_internal.h"

namespace sp {

using engine::RefOf;
using engine::TargetOf;
using nlohmann::json;

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
    if (total == 0) {
      detail["sessions_left"] = total;
      return Ok();
    }
    if (d_.clock->MonotonicMs() >= deadline) {
      // Bounded: after drain_timeout the remaining sessions are cut.
      detail["sessions_left"] = total;
      detail["drain_timed_out"] = true;
      Emit(Event{EventType::kWarning, plan.id, host.name, Step::kWaitSessions, StepPhase::kNone, 0, 0,
                 {{"message", std::to_string(total) + " sessions still open after drain_timeout " +
                                  FormatDuration(plan.strategy.drain_timeout) + "; continuing"}}});
      return Ok();
    }
    d_.clock->Sleep(o_.poll_interval);
  }
}

bool RolloutEngine::InRotation(LbSet& lbs, const RolloutPlan& plan, const HostSpec& host) {
  for (size_t i = 0; i < lbs.lbs.size(); ++i) {
    const auto& spec = plan.load_balancers[i];
    auto s = lbs.lbs[i]->GetServer(spec.backend, spec.ServerFor(host.name));
    if (!s || !s->InRotation()) return false;
  }
  return true;
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

namespace {

std::string Holders(const std::vector<PortListener>& listeners, const std::string& skip_instance) {
  std::string out;
  for (const auto& l : listeners) {
    if (!skip_instance.empty() && l.instance == skip_instance) continue;
    if (!out.empty()) out += "; ";
    out += l.holder + (l.instance.empty() ? "" : ", instance " + l.instance);
  }
  return out;
}

}  // namespace

Result<std::optional<std::vector<PortListener>>> RolloutEngine::PortListeners(const RolloutPlan& plan,
                                                                              const HostSpec& host) {
  const int port = plan.PortFor(host);
  auto listeners = d_.runtime->Listeners(TargetOf(plan, host), port);
  if (!listeners) return Err(listeners.error().Wrap("who holds port " + std::to_string(port)));
  return listeners;
}

Status RolloutEngine::CheckPortFree(const RolloutPlan& plan, const HostSpec& host) {
  SP_ASSIGN_OR_RETURN(auto listeners, PortListeners(plan, host));
  if (!listeners) return Ok();  // A runtime that cannot tell (docker_listeners.cc) checks nothing.
  const int port = plan.PortFor(host);
  std::vector<PortListener> strays;
  for (const auto& l : *listeners) {
    if (l.instance.empty()) strays.push_back(l);
  }
  if (strays.empty()) return Ok();
  return Err(ErrorCode::kConflict, "port " + std::to_string(port) + " on " + host.name + " is held by " +
                                       Holders(strays, "") + ", which no instance of " + plan.release + "/" +
                                       plan.deployment + " started: the new version could not bind it, and its "
                                       "health check would be answered by that process. Stop it or free the port");
}

Status RolloutEngine::CheckPortOwner(const RolloutPlan& plan, const HostSpec& host, const Instance& started,
                                     json& detail, std::optional<int>* restarts) {
  SP_ASSIGN_OR_RETURN(auto listeners, PortListeners(plan, host));
  if (!listeners) return Ok();
  const std::string where = "port " + std::to_string(plan.PortFor(host)) + " on " + host.name;
  const std::vector<PortListener>& held = *listeners;
  if (held.empty()) {
    return Err(ErrorCode::kUnavailable, "nothing listens on " + where + " although the health check passed");
  }
  const std::string others = Holders(held, started.id);
  if (!others.empty()) {
    const bool own = std::any_of(held.begin(), held.end(),
                                 [&](const PortListener& l) { return l.instance == started.id; });
    return Err(ErrorCode::kConflict,
               where + " is held by " + others +
                   (own ? " as well as by the new instance (SO_REUSEPORT): requests would reach both"
                        : ", not by the new instance " + started.id +
                              ": the health check was answered by that process (the new one could not bind)"));
  }
  detail["port_owner"] = held.front().holder;
  if (restarts && held.front().instance_restarts >= 0) *restarts = held.front().instance_restarts;
  return Ok();
}

Status RolloutEngine::CheckNotRestarted(int restarts) {
  if (restarts == 0) return Ok();
  return Err(ErrorCode::kUnavailable, "the app exited and was restarted by its supervisor " +
                                          std::to_string(restarts) + " time(s) during its health window");
}

Status RolloutEngine::CheckNotRestarted(const RolloutPlan& plan, const HostSpec& host, const Instance& started) {
  SP_ASSIGN_OR_RETURN(auto instances, d_.runtime->List(TargetOf(plan, host)));
  for (const auto& inst : instances) {
    if (inst.id == started.id) return CheckNotRestarted(inst.restarts);
  }
  return Ok();
}

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

Status RolloutEngine::RunStep(const RolloutPlan& plan, const std::string& host, Step step, int64_t host_start_ms,
                              const std::function<Status(json&)>& fn) {
  json detail = json::object();
  SP_TRY(Journal(plan.id, host, step, StepPhase::kBegin, detail));
  const int64_t step_start_ms = d_.clock->MonotonicMs();
  Emit(Event{EventType::kStep, plan.id, host, step, StepPhase::kBegin, 0, step_start_ms - host_start_ms, {}});
  Status st = fn(detail);
  if (!st) detail["error"] = st.error().message;
  detail["step_ms"] = d_.clock->MonotonicMs() - step_start_ms;  // elapsed_ms counts from the host's start.
  const StepPhase phase = st ? StepPhase::kEnd : StepPhase::kFail;
  SP_TRY(Journal(plan.id, host, step, phase, detail));
  Emit(Event{EventType::kStep, plan.id, host, step, phase, 0, d_.clock->MonotonicMs() - host_start_ms, detail});
  return st;
}

void RolloutEngine::CleanupHost(const RolloutPlan& plan, const HostSpec& host, int64_t host_start_ms) {
  const RuntimeTarget target = TargetOf(plan, host);
  // Fenced like every step: a process that lost the lock touches no host. A
  // failure leaves leftovers only: the next rollout's cleanup tries again.
  if (CheckLease()) {
    (void)RunStep(plan, host.name, Step::kCleanup, host_start_ms, [&](json& detail) -> Status {
      // Keep the previous instances for restore/rollback
      // (strategy.keep_previous, newest first); remove older ones.
      SP_ASSIGN_OR_RETURN(auto instances, d_.runtime->List(target));
      json removed = json::array();
      int keep_stopped = plan.strategy.keep_previous;
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

Status RolloutEngine::StopRunning(const RolloutPlan& plan, const HostSpec& host, json& detail) {
  const RuntimeTarget target = TargetOf(plan, host);
  SP_ASSIGN_OR_RETURN(auto instances, d_.runtime->List(target));
  json stopped = json::array();
  for (const auto& inst : instances) {
    if (!inst.running) continue;
    SP_TRY(d_.runtime->Stop(target, inst, plan.app.stop_timeout));
    stopped.push_back(inst.id);
  }
  detail["stopped"] = stopped;
  return Ok();
}

Status RolloutEngine::Smoke(const RolloutPlan& plan, const HostSpec& host) {
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
}

Status RolloutEngine::RollHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, Prefetcher* prefetch,
                               HostRun& run) {
  // Journals and announces `step`, runs `fn`, journals the outcome.
  auto step = [&](Step s, const std::function<Status(json&)>& fn) -> Status {
    SP_TRY(CheckLease());
    run.step = s;
    return RunStep(plan, host.name, s, run.start_ms, fn);
  };
  SP_TRY(step(Step::kPull, [&](json& detail) -> Status {
    // `host` is an element of plan.hosts (Execute passes them so).
    if (prefetch && prefetch->Claim(static_cast<size_t>(&host - plan.hosts.data()))) {
      detail["prefetched"] = true;  // Verified there moments ago: no second check.
      return Ok();
    }
    bool cached = false;
    SP_TRY(PullArtifact(plan, host, &cached));
    if (cached) detail["cached"] = true;
    return Ok();
  }));
  // Who holds the port, asked beside the drain and the session wait (mostly
  // off the time out of rotation) while the old instance still runs: a
  // holder that is no instance of this release fails the host before its
  // old version is stopped. (Asked during the stop, a socket still closing
  // would have no holder to name.) A stray that comes after it still fails
  // the health step's ownership check, and the host is restored.
  std::future<Status> port_free =
      std::async(o_.port_check_beside_drain ? std::launch::async : std::launch::deferred,
                 [&] { return CheckPortFree(plan, host); });
  SP_TRY(step(Step::kDrain, [&](json&) {
    run.out_since_ms = d_.clock->MonotonicMs();
    return SetAll(lbs, plan, host, AdminState::kDrain);
  }));
  SP_TRY(step(Step::kWaitSessions, [&](json& detail) { return WaitSessionsZero(lbs, plan, host, detail); }));
  SP_TRY(step(Step::kMaint, [&](json&) { return SetAll(lbs, plan, host, AdminState::kMaint); }));
  SP_TRY(RunHostHooks(plan, Step::kPreHost, host, run));
  SP_TRY(step(Step::kStop, [&](json& detail) -> Status {
    SP_TRY(port_free.get());
    return StopRunning(plan, host, detail);
  }));
  SP_TRY(step(Step::kStart, [&](json& detail) -> Status {
    AppSpec app = plan.AppFor(host);
    SP_TRY(ResolveEnvRefs(plan, app));
    SP_ASSIGN_OR_RETURN(auto inst, d_.runtime->Start(TargetOf(plan, host), app));
    detail["instance"] = inst.id;
    run.started = inst;
    return Ok();
  }));
  SP_TRY(step(Step::kHealth, [&](json& detail) -> Status {
    HealthProbe last;
    Status h = WaitHealthy(plan, host, &last);
    detail["last"] = last.Describe();
    if (!h) return h;
    // Proven on the instance that was started, not on whatever answered,
    // and on an app that did not crash meanwhile.
    std::optional<int> restarts;
    SP_TRY(CheckPortOwner(plan, host, *run.started, detail, &restarts));
    // The restarts came with the listeners when the runtime tells them: no second command.
    return restarts ? CheckNotRestarted(*restarts) : CheckNotRestarted(plan, host, *run.started);
  }));
  if (!plan.app.smoke.empty()) SP_TRY(step(Step::kSmoke, [&](json&) { return Smoke(plan, host); }));
  SP_TRY(step(Step::kReady, [&](json&) { return SetAll(lbs, plan, host, AdminState::kReady); }));
  SP_TRY(step(Step::kConfirmUp, [&](json&) {
    Status up = WaitUp(lbs, plan, host);
    if (up) run.out_total_ms = d_.clock->MonotonicMs() - run.out_since_ms;
    return up;
  }));
  return RunHostHooks(plan, Step::kPostHost, host, run);
}

HostOutcome RolloutEngine::RunHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, Prefetcher* prefetch) {
  HostRun run;
  run.start_ms = d_.clock->MonotonicMs();
  PutHost(plan, host.name, HostState::kInProgress, run.step, run.out_total_ms, "");
  Status st = RollHost(plan, lbs, host, prefetch, run);
  if (!st) return HostFailed(plan, lbs, host, run, st.error());
  // Deferred: Execute cleans (and releases) the done hosts after the last batch.
  if (!o_.deferred_cleanup) CleanupHost(plan, host, run.start_ms);
  HostOutcome out{host.name, HostState::kDone, Step::kNone, "", run.out_total_ms, d_.clock->MonotonicMs() - run.start_ms};
  PutHost(plan, host.name, HostState::kDone, run.step, run.out_total_ms, "");
  Emit(Event{EventType::kHostDone, plan.id, host.name, Step::kNone, StepPhase::kNone, 0, out.elapsed_ms,
             {{"out_of_rotation_ms", out.out_of_rotation_ms}}});
  return out;
}

// Explains the failure, then restores this host's previous version.
HostOutcome RolloutEngine::HostFailed(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, HostRun& run,
                                      const Error& failure) {
  const Step failed_step = run.step;
  std::string why = failure.message;
  const bool lost = scope_->lost();  // Then nothing more is touched: the next holder reconciles.
  if (run.started && !lost) {
    auto logs = d_.runtime->Logs(TargetOf(plan, host), *run.started, 10);
    if (logs && !logs->empty()) why += "; last log lines:\n" + *logs;
  }
  std::string error = "host " + host.name + " failed at " + Name(failed_step) + ": " + why;
  if (lost) {
    if (failed_step != Step::kPull) error += "; left as it is for the lock's next holder";
  } else if (failed_step != Step::kPull) {
    std::string journal_error;
    Status r = RestoreHost(plan, lbs, host, &journal_error);
    if (!r) error += "; RESTORE FAILED: " + r.error().message;
    if (!journal_error.empty()) error += "; the journal could not record the restore: " + journal_error;
    if (run.out_since_ms >= 0) run.out_total_ms = d_.clock->MonotonicMs() - run.out_since_ms;
  }
  HostOutcome out{host.name, HostState::kFailed, failed_step, error, run.out_total_ms,
                  d_.clock->MonotonicMs() - run.start_ms};
  PutHost(plan, host.name, HostState::kFailed, run.step, run.out_total_ms, error);
  Emit(Event{EventType::kHostFailed, plan.id, host.name, failed_step, StepPhase::kNone, 0, out.elapsed_ms,
             {{"error", error}}});
  d_.transport->Release(RefOf(host));
  return out;
}

Status RolloutEngine::RestorePrevious(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host) {
  const RuntimeTarget target = TargetOf(plan, host);
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
}

// The host goes back before anything is recorded: a journal that cannot be
// written (a full disk, a busy database) never keeps a host out of rotation.
// Records that failed are tried once more afterwards; what still failed is
// said in *journal_error.
Status RolloutEngine::RestoreHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host,
                                  std::string* journal_error) {
  Status begin = Journal(plan.id, host.name, Step::kRestore, StepPhase::kBegin, json::object());
  Emit(Event{EventType::kStep, plan.id, host.name, Step::kRestore, StepPhase::kBegin, 0, 0, {}});
  Status st = RestorePrevious(plan, lbs, host);
  json detail = json::object();
  if (!st) detail["error"] = st.error().message;
  const StepPhase phase = st ? StepPhase::kEnd : StepPhase::kFail;
  if (!begin) begin = Journal(plan.id, host.name, Step::kRestore, StepPhase::kBegin, json::object());
  Status end = Journal(plan.id, host.name, Step::kRestore, phase, detail);
  if (!end) end = Journal(plan.id, host.name, Step::kRestore, phase, detail);
  Emit(Event{EventType::kStep, plan.id, host.name, Step::kRestore, phase, 0, 0, detail});
  if (journal_error && (!begin || !end)) *journal_error = (!begin ? begin : end).error().message;
  return st;
}

}  // namespace sp
