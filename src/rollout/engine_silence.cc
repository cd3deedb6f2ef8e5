// The rollout's alert silence (plan.hooks.silence, docs/rollout.md "Alert
// silences"): made before the first host is touched (before the
// pre_rollout hooks), extended while the scope lock is held, expired at the
// round's end whatever the outcome (after the post_rollout hooks). Its
// comment carries "[sallyport-rollout=<id>#<round>]": a resume, a reconcile
// or the next holder finds it by that marker, so no crash window makes a
// second silence or leaves one behind for longer than its duration.
#include <nlohmann/json.hpp>

#include "inventory/hooks.h"
#include "rollout/engine_internal.h"

namespace sp {

using nlohmann::json;

namespace {

std::string Marker(const RolloutPlan& plan, int round) {
  return "[sallyport-rollout=" + plan.id + "#" + std::to_string(round) + "]";
}

// RE2 (Alertmanager's regex syntax) with every metacharacter escaped.
std::string RegexQuote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\.+*?()|[]{}^$").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::vector<SilenceMatcher> ExpandMatchers(const RolloutPlan& plan) {
  const SilenceSpec& spec = *plan.hooks.silence;
  std::string hosts, addresses;
  for (const auto& h : plan.hosts) {
    hosts += (hosts.empty() ? "" : "|") + RegexQuote(h.name);
    addresses += (addresses.empty() ? "" : "|") + RegexQuote(h.address);
  }
  const std::map<std::string, std::string> vars = {
      {"release", plan.release}, {"deployment", plan.deployment}, {"stack", plan.stack}};
  std::vector<SilenceMatcher> out = spec.matchers.empty() ? DefaultSilenceMatchers() : spec.matchers;
  for (auto& m : out) {
    std::string v;
    for (size_t i = 0; i < m.value.size();) {
      const size_t close = m.value[i] == '{' ? m.value.find('}', i + 1) : std::string::npos;
      if (close != std::string::npos) {
        const std::string name = m.value.substr(i + 1, close - i - 1);
        if (name == "hosts" || name == "addresses") {
          v += name == "hosts" ? hosts : addresses;
          i = close + 1;
          continue;
        }
        if (auto it = vars.find(name); it != vars.end()) {
          v += m.regex ? RegexQuote(it->second) : it->second;
          i = close + 1;
          continue;
        }
      }
      v += m.value[i++];
    }
    m.value = std::move(v);
  }
  return out;
}

json MatchersJson(const std::vector<SilenceMatcher>& ms) {
  json out = json::array();
  for (const auto& m : ms) {
    out.push_back(m.name + (m.equal ? (m.regex ? "=~" : "=") : (m.regex ? "!~" : "!=")) + json(m.value).dump());
  }
  return out;
}

}  // namespace

RolloutEngine::SilenceKeeper::SilenceKeeper(RolloutEngine* e, const RolloutPlan& plan, Silence s)
    : e_(e), plan_(plan), s_(std::move(s)) {
  thread_ = std::thread([this] { Loop(); });
}

RolloutEngine::SilenceKeeper::~SilenceKeeper() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::string RolloutEngine::SilenceKeeper::id() {
  std::lock_guard l(mu_);
  return s_.id;
}

void RolloutEngine::SilenceKeeper::Loop() {
  const SilenceSpec& spec = *plan_.hooks.silence;
  const Millis every(spec.duration_ms / 3);
  std::unique_lock l(mu_);
  Millis wait = every;
  while (!stop_) {
    cv_.wait_for(l, wait, [this] { return stop_; });
    if (stop_) break;
    if (!e_->scope_->Check()) break;  // Not ours any more: it ends by itself.
    Silence next = s_;
    next.ends_at_ms = e_->d_.clock->WallMs() + spec.duration_ms;
    l.unlock();
    Result<std::string> id = e_->d_.silencer->Put(spec, next);
    l.lock();
    wait = every;
    if (id) {
      s_ = next;
      s_.id = *id;
    } else if (!e_->scope_->lost()) {
      wait = std::min<Millis>(every, Millis(2000));  // Retried well before it ends.
      e_->Emit(Event{EventType::kWarning, plan_.id, "", Step::kSilence, StepPhase::kNone, 0, 0,
                     {{"message", "the alert silence could not be extended: " + id.error().message}}});
    }
  }
}

Status RolloutEngine::OpenSilence(const RolloutPlan& plan, HookLedger& ledger) {
  const SilenceSpec& spec = *plan.hooks.silence;
  if (!d_.silencer) return Err(ErrorCode::kUnavailable, "this process cannot make alert silences");
  const std::string marker = Marker(plan, ledger.round);
  json detail = {{"round", ledger.round}, {"marker", marker}};
  SP_TRY(CheckLease());
  SP_TRY(Journal(plan.id, "", Step::kSilence, StepPhase::kBegin, detail));
  ledger.silence_began = true;
  const int64_t begin_ms = d_.clock->MonotonicMs();
  Emit(Event{EventType::kStep, plan.id, "", Step::kSilence, StepPhase::kBegin, 0, 0, detail});
  Silence s;
  s.matchers = ExpandMatchers(plan);
  s.created_by = "sallyport " + o_.holder;
  s.comment = "Sallyport rollout " + plan.id + " of " + plan.release + "/" + plan.deployment + " to " +
              plan.app.version + ": its hosts' alerts are silenced while they roll, until it ends " + marker;
  s.ends_at_ms = d_.clock->WallMs() + spec.duration_ms;
  auto made = [&]() -> Result<std::string> {
    // A resume (or a crash between the call and its record) finds the round's own.
    SP_ASSIGN_OR_RETURN(std::vector<Silence> found, d_.silencer->Find(spec, marker));
    if (!found.empty()) {
      detail["adopted"] = true;
      const int64_t ends = s.ends_at_ms;
      s = found.front();
      s.ends_at_ms = ends;
      for (size_t i = 1; i < found.size(); ++i) (void)d_.silencer->Expire(spec, found[i].id);
    }
    ledger.silence_made = true;
    SP_ASSIGN_OR_RETURN(std::string id, d_.silencer->Put(spec, s));
    if (s.starts_at.empty()) {
      // Read back the start the Alertmanager wrote (it moves a start in the
      // past to its now): an extension must send it unchanged to update the
      // silence in place instead of replacing it with another.
      if (auto back = d_.silencer->Find(spec, marker); back) {
        for (const auto& b : *back) {
          if (b.id == id) s.starts_at = b.starts_at;
        }
      }
    }
    return id;
  }();
  detail["step_ms"] = d_.clock->MonotonicMs() - begin_ms;
  if (!made) {
    detail["error"] = made.error().message;
    (void)Journal(plan.id, "", Step::kSilence, StepPhase::kFail, detail);
    Emit(Event{EventType::kStep, plan.id, "", Step::kSilence, StepPhase::kFail, 0, 0, detail});
    return Err(made.error().code, "silence: " + made.error().message);
  }
  s.id = *made;
  ledger.silence_id = s.id;
  detail["silence"] = s.id;
  detail["ends_at_ms"] = s.ends_at_ms;
  detail["matchers"] = MatchersJson(s.matchers);
  SP_TRY(Journal(plan.id, "", Step::kSilence, StepPhase::kEnd, detail));
  Emit(Event{EventType::kStep, plan.id, "", Step::kSilence, StepPhase::kEnd, 0, 0, detail});
  if (o_.renew_in_background) silence_keeper_ = std::make_unique<SilenceKeeper>(this, plan, std::move(s));
  return Ok();
}

std::string RolloutEngine::CloseSilence(const RolloutPlan& plan, HookLedger& ledger) {
  if (!plan.hooks.silence || !ledger.silence_began || ledger.silence_ended) return "";
  std::set<std::string> ids;
  if (silence_keeper_) {
    ids.insert(silence_keeper_->id());
    silence_keeper_.reset();  // No extension after this.
  }
  if (!ledger.silence_id.empty()) ids.insert(ledger.silence_id);
  const SilenceSpec& spec = *plan.hooks.silence;
  const std::string marker = Marker(plan, ledger.round);
  json detail = {{"round", ledger.round}, {"marker", marker}};
  if (!d_.silencer) return "this process cannot expire alert silences";
  ledger.post_began = true;
  if (!ledger.silence_made && ids.empty()) {
    // Its making failed before any call that could have made it (this very
    // process saw it): nothing to ask the Alertmanager.
    ledger.silence_ended = true;
    (void)Journal(plan.id, "", Step::kUnsilence, StepPhase::kEnd, detail);
    return "";
  }
  if (Status st = Journal(plan.id, "", Step::kUnsilence, StepPhase::kBegin, detail); !st) return st.error().message;
  const int64_t begin_ms = d_.clock->MonotonicMs();
  Emit(Event{EventType::kStep, plan.id, "", Step::kUnsilence, StepPhase::kBegin, 0, 0, detail});
  std::string problem;
  if (auto found = d_.silencer->Find(spec, marker); found) {
    for (const auto& s : *found) ids.insert(s.id);
  } else {
    problem = found.error().message;
  }
  std::string expired;
  for (const auto& id : ids) {
    if (Status st = d_.silencer->Expire(spec, id); !st) {
      problem += (problem.empty() ? "" : "; ") + st.error().message;
    } else {
      expired += (expired.empty() ? "" : ",") + id;
    }
  }
  detail["silence"] = expired;
  detail["step_ms"] = d_.clock->MonotonicMs() - begin_ms;
  StepPhase phase = StepPhase::kEnd;
  if (!problem.empty()) {
    detail["error"] = problem;
    phase = StepPhase::kFail;
  } else {
    ledger.silence_ended = true;
  }
  (void)Journal(plan.id, "", Step::kUnsilence, phase, detail);
  Emit(Event{EventType::kStep, plan.id, "", Step::kUnsilence, phase, 0, 0, detail});
  return problem.empty() ? "" : "the alert silence could not be expired (it ends by itself within " +
                                    FormatDuration(Millis(spec.duration_ms)) + "): " + problem;
}

}  // namespace sp
