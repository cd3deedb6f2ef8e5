// The deployment's hooks around a rollout (plan.hooks): pre_rollout before
// the first host, pre_host/post_host around each host, on_failure and
// post_rollout at the end whatever the outcome. Each is fenced on the
// scope lock like any action, journaled like a step (host "" for the
// rollout's), and called with an idempotency key that a retry or a resume
// repeats: "<rollout>/<point>/<hook>[/<host>][#<round>]".
#include <nlohmann/json.hpp>

#include "inventory/hooks.h"
#include "rollout/engine_internal.h"

namespace sp {

using nlohmann::json;

namespace {

bool IsRolloutHook(Step s) {
  return s == Step::kPreRollout || s == Step::kOnFailure || s == Step::kPostRollout || s == Step::kSilence ||
         s == Step::kUnsilence;
}

const std::vector<HookSpec>& HooksOf(const RolloutPlan& plan, Step point) {
  return HooksAt(plan.hooks, Name(point));
}

}  // namespace

Result<RolloutEngine::HookLedger> RolloutEngine::ReadHookLedger(const RolloutPlan& plan) {
  SP_ASSIGN_OR_RETURN(auto steps, d_.journal->Steps(plan.id));
  HookLedger ledger;
  for (const auto& s : steps) {
    if (!s.host.empty() || !IsRolloutHook(s.step)) continue;
    const json detail = json::parse(s.detail.empty() ? "{}" : s.detail, nullptr, false);
    if (!detail.is_object()) continue;
    const int round = detail.value("round", 1);
    if (round > ledger.round) ledger = HookLedger{round};
    if (round != ledger.round) continue;
    if (s.step == Step::kSilence) {
      ledger.silence_began = ledger.silence_made = true;  // Made, for all it knows.
      if (s.phase == StepPhase::kEnd) ledger.silence_id = detail.value("silence", std::string());
    } else if (s.step == Step::kUnsilence) {
      ledger.post_began = true;
      ledger.silence_ended |= s.phase == StepPhase::kEnd;
    } else if (s.phase == StepPhase::kBegin) {
      ledger.pre_began |= s.step == Step::kPreRollout;
      ledger.post_began |= s.step == Step::kPostRollout;
    } else if (s.phase == StepPhase::kEnd) {
      ledger.ended.insert(Name(s.step) + "/" + detail.value("hook", std::string()));
    }
  }
  return ledger;
}

Status RolloutEngine::RunHook(const RolloutPlan& plan, Step point, const HookSpec& hook, const HostSpec* host,
                              int64_t start_ms) {
  if (!d_.hooks) return Err(ErrorCode::kUnavailable, "this process cannot run hooks (hook " + hook.name + ")");
  HookCall call;
  call.point = Name(point);
  call.key = plan.id + "/" + call.point + "/" + hook.name + (host ? "/" + host->name : "") +
             (hook_round_ > 1 ? "#" + std::to_string(hook_round_) : "");
  call.vars = {{"rollout", plan.id},          {"stack", plan.stack},           {"release", plan.release},
               {"deployment", plan.deployment}, {"version", plan.app.version}, {"artifact", plan.app.artifact}};
  if (host) {
    call.vars["host"] = host->name;
    call.vars["address"] = host->address;
    call.vars["port"] = std::to_string(plan.PortFor(*host));
  }
  const std::string where = host ? host->name : "";
  json detail = {{"hook", hook.name}, {"round", hook_round_}, {"key", call.key}};
  SP_TRY(CheckLease());
  SP_TRY(Journal(plan.id, where, point, StepPhase::kBegin, detail));
  const int64_t begin_ms = d_.clock->MonotonicMs();
  Emit(Event{EventType::kStep, plan.id, where, point, StepPhase::kBegin, 0, begin_ms - start_ms, detail});
  Result<std::string> out = d_.hooks->Run(hook, call);
  if (out) {
    detail["output"] = *out;
  } else {
    detail["error"] = out.error().message;
  }
  detail["step_ms"] = d_.clock->MonotonicMs() - begin_ms;
  const StepPhase phase = out ? StepPhase::kEnd : StepPhase::kFail;
  Status journaled = Journal(plan.id, where, point, phase, detail);
  Emit(Event{EventType::kStep, plan.id, where, point, phase, 0, d_.clock->MonotonicMs() - start_ms, detail});
  if (!out) return Err(out.error().code, Name(point) + " " + out.error().message);
  return journaled;
}

Status RolloutEngine::RunHostHooks(const RolloutPlan& plan, Step point, const HostSpec& host, HostRun& run) {
  for (const auto& hook : HooksOf(plan, point)) {
    run.step = point;
    SP_TRY(Tolerated(plan, hook, RunHook(plan, point, hook, &host, run.start_ms)));
  }
  return Ok();
}

Status RolloutEngine::Tolerated(const RolloutPlan& plan, const HookSpec& hook, Status st) {
  // A lost lock is never tolerated: nothing more may be done.
  if (st || hook.on_error != "warn" || scope_->lost()) return st;
  Emit(Event{EventType::kWarning, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
             {{"message", st.error().message + " (on_error: warn; going on)"}}});
  return Ok();
}

Status RolloutEngine::OpenHookRound(const RolloutPlan& plan, HookLedger& ledger, bool hosts_left) {
  hook_round_ = ledger.round;
  if (ledger.post_began) {
    // The round ended (an interrupt, or a crash at its very end): its undo
    // finishes first, under its own keys.
    (void)CloseHookRound(plan, ledger, /*failed=*/false);
    if (!hosts_left) return Ok();
    ledger = HookLedger{ledger.round + 1};
    hook_round_ = ledger.round;
  }
  if (!hosts_left) {
    // Nothing left to roll: no silence, and no end hooks when nothing is to undo.
    ledger.skip_hooks = !ledger.pre_began && !plan.hooks.pre_rollout.empty();
    if (ledger.skip_hooks) return Ok();
  } else if (plan.hooks.silence && !ledger.silence_ended) {
    // Before any hook or host: alerts are silenced first (the policy for an
    // Alertmanager that cannot be reached is the silence's on_error).
    if (Status st = OpenSilence(plan, ledger); !st) {
      if (plan.hooks.silence->on_error != "warn" || scope_->lost()) return st;
      Emit(Event{EventType::kWarning, plan.id, "", Step::kSilence, StepPhase::kNone, 0, 0,
                 {{"message", st.error().message + " (on_error: warn; rolling without a silence)"}}});
    }
  }
  const int64_t start = d_.clock->MonotonicMs();
  for (const auto& hook : plan.hooks.pre_rollout) {
    if (ledger.ended.count("pre_rollout/" + hook.name)) continue;
    ledger.pre_began = true;
    SP_TRY(Tolerated(plan, hook, RunHook(plan, Step::kPreRollout, hook, nullptr, start)));
  }
  return Ok();
}

std::string RolloutEngine::CloseHookRound(const RolloutPlan& plan, HookLedger& ledger, bool failed) {
  if (ledger.closed) return "";
  ledger.closed = true;
  hook_round_ = ledger.round;
  const int64_t start = d_.clock->MonotonicMs();
  std::string problems;
  // post_rollout is pre_rollout's undo: not run for a round whose pre never began.
  const bool run_hooks = !ledger.skip_hooks && (plan.hooks.pre_rollout.empty() || ledger.pre_began);
  for (Step point : {Step::kOnFailure, Step::kPostRollout}) {
    if (!run_hooks) break;
    if (point == Step::kOnFailure && !failed) continue;
    for (const auto& hook : HooksOf(plan, point)) {
      if (ledger.ended.count(Name(point) + "/" + hook.name)) continue;
      if (point == Step::kPostRollout) ledger.post_began = true;
      if (Status st = RunHook(plan, point, hook, nullptr, start); !st) {
        problems += (problems.empty() ? "" : "; ") + st.error().message;
      }
    }
  }
  if (!problems.empty()) {
    Emit(Event{EventType::kWarning, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
               {{"message", "hooks failed at the rollout's end: " + problems}}});
  }
  // Last: alerts stay silenced until the hooks' undo is done.
  if (std::string unsilenced = CloseSilence(plan, ledger); !unsilenced.empty()) {
    Emit(Event{EventType::kWarning, plan.id, "", Step::kUnsilence, StepPhase::kNone, 0, 0,
               {{"message", unsilenced}}});
    problems += (problems.empty() ? "" : "; ") + unsilenced;
  }
  return problems;
}

void RolloutEngine::CloseHooksOf(const RolloutPlan& plan) {
  if (plan.hooks.empty()) return;
  auto ledger = ReadHookLedger(plan);
  if (!ledger) {
    Emit(Event{EventType::kWarning, plan.id, "", Step::kNone, StepPhase::kNone, 0, 0,
               {{"message", "its hooks' records could not be read: " + ledger.error().message}}});
    return;
  }
  hook_round_ = ledger->round;
  (void)CloseHookRound(plan, *ledger, /*failed=*/true);
}

}  // namespace sp
