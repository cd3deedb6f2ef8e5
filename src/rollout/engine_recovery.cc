// What the engine does around the batches: preflight before anything is
// touched, reconcile after a crash, teardown of a personal deployment.
#include <algorithm>

#include "core/text.h"
#include "rollout/engine_internal.h"

namespace sp {

using engine::ParallelFor;
using engine::RefOf;
using engine::TargetOf;
using nlohmann::json;

bool RolloutEngine::StartCutShort(const std::string& id, const std::string& host) {
  auto steps = d_.journal->Steps(id);
  if (!steps) return false;
  std::optional<StepPhase> last;
  for (const auto& s : *steps) {
    if (s.host == host && s.step == Step::kStart) last = s.phase;
  }
  return last == StepPhase::kBegin;
}

HostOutcome RolloutEngine::ReconcileHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host) {
  const RuntimeTarget target = TargetOf(plan, host);
  HostOutcome out{host.name, HostState::kPending, Step::kNone, "", 0, 0};
  json detail = json::object();
  auto fail = [&](const std::string& what) {
    out.state = HostState::kFailed;
    out.failed_step = Step::kReconcile;
    out.error = "host " + host.name + " failed at reconcile: " + what;
    PutHost(plan, host.name, HostState::kFailed, Step::kReconcile, 0, out.error);
    Emit(Event{EventType::kHostFailed, plan.id, host.name, Step::kReconcile, StepPhase::kNone, 0, 0,
               {{"error", out.error}}});
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
  (void)Journal(plan.id, host.name, Step::kReconcile, StepPhase::kBegin, detail);
  // A new instance whose start the crash cut short (its env may not have
  // reached it, its launch may be half done) is not judged by its health: it
  // is handled as a half-made one (the last branch), and the host rolled again.
  const bool cut_short = fresh && fresh->running && StartCutShort(plan.id, host.name);
  if (cut_short) detail["start_cut_short"] = true;
  if (fresh && fresh->running && !cut_short) {
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
      out.state = HostState::kDone;
      detail["decision"] = "new version healthy: kept";
    } else {
      if (auto s = RestoreHost(plan, lbs, host); !s) return fail(s.error().message);
      detail["decision"] = "new version unhealthy: restored previous";
      out.state = HostState::kFailed;
      out.failed_step = Step::kHealth;
      out.error = "host " + host.name + " failed at health (found after restart): " + ok.error().message;
    }
  } else if (!fresh && running == 1 && InRotation(lbs, plan, host)) {
    // Never reached by the rollout (or put back by it): one version runs and
    // takes traffic. Nothing to restore; said as such.
    detail["decision"] = "untouched: previous version serving";
  } else {
    // The new version is not serving: the previous one must be, in rotation.
    if (fresh && fresh->running) {
      if (auto s = d_.runtime->Stop(target, *fresh, plan.app.stop_timeout); !s) return fail(s.error().message);
    }
    if (fresh) {
      if (auto s = d_.runtime->Remove(target, *fresh); !s) return fail(s.error().message);
    }
    if (auto s = RestoreHost(plan, lbs, host); !s) return fail(s.error().message);
    detail["decision"] = cut_short ? "new instance's start cut short: removed; previous version serving, to roll again"
                                   : "previous version serving";
  }
  (void)Journal(plan.id, host.name, Step::kReconcile, StepPhase::kEnd, detail);
  PutHost(plan, host.name, out.state, Step::kReconcile, 0, out.error);
  Emit(Event{EventType::kReconcile, plan.id, host.name, Step::kNone, StepPhase::kNone, 0, 0, detail});
  return out;
}

Status RolloutEngine::ResolveEnvRefs(const RolloutPlan& plan, AppSpec& app) {
  for (const auto& [name, ref] : plan.app.env_refs) {
    if (!d_.env_secret) return Err(ErrorCode::kUnavailable, "env " + name + ": no reader for secret references");
    auto value = d_.env_secret(ref);
    if (!value) return Err(value.error().Wrap("env " + name));
    app.env[name] = std::move(*value);
  }
  return Ok();
}

std::vector<Error> RolloutEngine::PreflightProblems(const RolloutPlan& plan, LbSet& lbs, bool add, bool first_only) {
  std::vector<Error> out;
  auto done = [&] { return first_only && !out.empty(); };
  // Every secret the app needs is readable before any host is touched.
  AppSpec probe;
  if (auto s = ResolveEnvRefs(plan, probe); !s) out.push_back(s.error());
  // No load balancer only when the inventory says `load_balancers: none`.
  for (size_t i = 0; i < lbs.lbs.size() && !done(); ++i) {
    const auto& spec = plan.load_balancers[i];
    LoadBalancer* lb = lbs.lbs[i].get();
    auto servers = lb->ListBackend(spec.backend);
    if (!servers) {
      out.push_back(servers.error().Wrap("load balancer of backend " + spec.backend));
      continue;
    }
    for (const auto& h : plan.hosts) {
      if (done()) break;
      const std::string name = spec.ServerFor(h.name);
      if (std::any_of(servers->begin(), servers->end(), [&](const ServerState& s) { return s.name == name; })) continue;
      if (!spec.add_servers.value_or(false)) {
        out.push_back(Error{ErrorCode::kNotFound, lb->Describe() + " backend " + spec.backend + " has no server '" +
                                                      name + "' for host " + h.name});
        continue;
      }
      if (!add) continue;  // A dry run: Run adds it.
      // Added out of rotation (MAINT): the host's procedure puts it in.
      auto added = lb->AddServer(spec.backend, name, h.address, plan.PortFor(h));
      if (!added && added.error().code != ErrorCode::kConflict) {
        out.push_back(added.error().Wrap("adding server '" + name + "' for host " + h.name));
        continue;
      }
      Emit(Event{EventType::kServerAdded, plan.id, h.name, Step::kNone, StepPhase::kNone, 0, 0,
                 {{"lb", lb->Describe()}, {"backend", spec.backend}, {"server", name},
                  {"address", h.address + ":" + std::to_string(plan.PortFor(h))}}});
    }
  }
  if (done()) return out;
  // Hosts are checked several at once (connecting is most of the time);
  // problems are listed in plan order, as if serial.
  std::vector<Result<bool>> have(plan.hosts.size(), false);
  ParallelFor(plan.hosts.size(), static_cast<size_t>(std::max(1, o_.preflight_parallelism)), [&](size_t i) {
    const HostSpec& h = plan.hosts[i];
    if (auto s = d_.transport->Check(RefOf(h)); !s) {
      have[i] = Err(s.error());
      return;
    }
    have[i] = d_.runtime->Available(TargetOf(plan, h), plan.AppFor(h));
    if (!have[i]) return;
    if (auto s = CheckPortFree(plan, h); !s) have[i] = Err(s.error());  // A stray is named before anything moves.
  });
  bool all_have = true;
  for (size_t i = 0; i < plan.hosts.size() && !done(); ++i) {
    if (!have[i]) out.push_back(have[i].error().Wrap("host " + plan.hosts[i].name));
    all_have = all_have && have[i] && *have[i];
  }
  if (!done() && !all_have && d_.check_pullable) {
    if (auto s = d_.check_pullable(plan); !s) {
      out.push_back(s.error().Wrap("artifact " + plan.app.artifact));
      return out;
    }
  }
  if (done() || all_have) return out;
  EngineProblems(plan, have, out);
  return out;
}

// Each host that must pull asks its own engine for the manifest: one that
// does not trust the registry's CA (or is not let in) is named now, before
// anything moves, not at its pull in the middle of the rollout.
void RolloutEngine::EngineProblems(const RolloutPlan& plan, const std::vector<Result<bool>>& have,
                                   std::vector<Error>& out) {
  std::optional<RegistryAuth> auth;
  if (d_.credentials) {
    auto a = d_.credentials(plan.registry);
    if (!a) {
      out.push_back(a.error().Wrap("registry credentials"));
      return;
    }
    auth = *a;
  }
  std::vector<Status> can(plan.hosts.size());
  ParallelFor(plan.hosts.size(), static_cast<size_t>(std::max(1, o_.preflight_parallelism)), [&](size_t i) {
    const HostSpec& h = plan.hosts[i];
    if (have[i] && !*have[i]) can[i] = d_.runtime->CheckPull(TargetOf(plan, h), plan.AppFor(h), auth);
  });
  for (size_t i = 0; i < plan.hosts.size(); ++i) {
    if (!can[i]) out.push_back(can[i].error().Wrap("host " + plan.hosts[i].name));
  }
}

Status RolloutEngine::Preflight(const RolloutPlan& plan, LbSet& lbs) {
  auto problems = PreflightProblems(plan, lbs, /*add=*/true, /*first_only=*/true);
  if (problems.empty()) return Ok();
  return Err(problems.front().Wrap("preflight"));
}

Status RolloutEngine::Check(const RolloutPlan& plan) {
  std::vector<Error> problems;
  auto lbs = Connect(plan.load_balancers);
  if (!lbs) problems.push_back(lbs.error().Wrap("load balancers"));
  LbSet none;
  for (auto& e : PreflightProblems(plan, lbs ? *lbs : none, /*add=*/false, /*first_only=*/false)) {
    problems.push_back(std::move(e));
  }
  if (problems.empty()) return Ok();
  std::string text = "preflight found " + std::to_string(problems.size()) + " problem(s):";
  for (const auto& e : problems) text += "\n  " + e.message;
  return Err(problems.front().code, text);
}

Status RolloutEngine::TeardownLbs(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, json& detail) {
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
  return Ok();
}

HostOutcome RolloutEngine::TeardownHost(const RolloutPlan& plan, LbSet& lbs, const HostSpec& host, json& detail) {
  HostOutcome out;
  out.host = host.name;
  const int64_t host_start = d_.clock->MonotonicMs();
  auto body = [&]() -> Status {
    SP_TRY(CheckLease());
    SP_TRY(TeardownLbs(plan, lbs, host, detail));
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
    out.state = HostState::kDone;
  } else {
    out.state = HostState::kFailed;
    out.failed_step = Step::kTeardown;
    out.error = st.error().message;
    detail["error"] = out.error;
  }
  return out;
}

Result<RolloutSummary> RolloutEngine::Teardown(const RolloutPlan& plan) {
  SP_ASSIGN_OR_RETURN(Lease lease, TakeLock(plan));
  Hold hold(this, lease);
  SP_ASSIGN_OR_RETURN(LbSet lbs, Connect(plan.load_balancers));
  RolloutSummary sum;
  sum.rollout_id = plan.id;
  const int64_t start = d_.clock->MonotonicMs();
  Emit(Event{EventType::kTeardownStarted, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
             {{"release", plan.release}, {"deployment", plan.deployment}, {"hosts", plan.hosts.size()}}});
  for (const auto& host : plan.hosts) {
    json detail = json::object();
    Emit(Event{EventType::kStep, plan.id, host.name, Step::kTeardown, StepPhase::kBegin, 0, 0, {}});
    HostOutcome out = TeardownHost(plan, lbs, host, detail);
    if (out.state == HostState::kFailed && sum.error.empty()) sum.error = "host " + host.name + ": " + out.error;
    Emit(Event{EventType::kStep, plan.id, host.name, Step::kTeardown,
               out.state == HostState::kDone ? StepPhase::kEnd : StepPhase::kFail, 0, out.elapsed_ms, detail});
    sum.hosts.push_back(std::move(out));
  }
  sum.status = sum.error.empty() ? RolloutStatus::kSucceeded : RolloutStatus::kFailed;
  sum.elapsed_ms = d_.clock->MonotonicMs() - start;
  Emit(Event{EventType::kTeardownFinished, plan.id, "", Step::kNone, StepPhase::kNone, 0, sum.elapsed_ms,
             {{"status", RolloutStatusName(sum.status)}, {"error", sum.error}}});
  return sum;
}

}  // namespace sp
