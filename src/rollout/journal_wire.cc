#include "rollout/journal_wire.h"

#include <algorithm>

namespace sp {

using json = nlohmann::json;

namespace {

// A wire name of a typed state; a name not in its table is a malformed document.
template <typename T, typename Parse>
T Typed(const json& j, const char* key, Parse parse, T fallback) {
  if (!j.contains(key)) return fallback;
  auto v = parse(j.at(key).get<std::string>());
  if (!v) throw json::other_error::create(501, std::string("unknown ") + key + " " + j.at(key).dump(), &j);
  return *v;
}

}  // namespace

json RolloutRecordToJson(const RolloutRecord& r) {
  return {{"id", r.id},
          {"stack", r.stack},
          {"release", r.release},
          {"deployment", r.deployment},
          {"kind", Name(r.kind)},
          {"status", std::string(RolloutStatusName(r.status))},
          {"plan_json", r.plan_json},
          {"error", r.error},
          {"created_ms", r.created_ms},
          {"updated_ms", r.updated_ms}};
}

Result<RolloutRecord> RolloutRecordFromJson(const json& j) {
  try {
    RolloutRecord r;
    r.id = j.at("id");
    r.stack = j.at("stack");
    r.release = j.at("release");
    r.deployment = j.at("deployment");
    r.kind = Typed(j, "kind", ParsePlanKind, PlanKind::kRollout);
    r.status = Typed(j, "status", ParseRolloutStatus, RolloutStatus::kRunning);
    if (!j.contains("status")) return Err(ErrorCode::kInvalidArgument, "rollout record without a status");
    r.plan_json = j.value("plan_json", std::string());
    r.error = j.value("error", std::string());
    r.created_ms = j.value("created_ms", int64_t{0});
    r.updated_ms = j.value("updated_ms", int64_t{0});
    return r;
  } catch (const json::exception& e) {
    return Err(ErrorCode::kInvalidArgument, std::string("malformed rollout record: ") + e.what());
  }
}

json StepRecordToJson(const StepRecord& s) {
  return {{"seq", s.seq},       {"rollout_id", s.rollout_id}, {"host", s.host},     {"step", Name(s.step)},
          {"phase", Name(s.phase)}, {"ts_ms", s.ts_ms},          {"detail", s.detail}};
}

StepRecord StepRecordFromJson(const json& j) {
  StepRecord s;
  s.seq = j.value("seq", int64_t{0});
  s.rollout_id = j.at("rollout_id");
  s.host = j.at("host");
  s.step = Typed(j, "step", ParseStep, Step::kNone);
  s.phase = Typed(j, "phase", ParseStepPhase, StepPhase::kNone);
  s.ts_ms = j.value("ts_ms", int64_t{0});
  s.detail = j.value("detail", std::string());
  return s;
}

json HostRecordToJson(const HostRecord& h) {
  return {{"rollout_id", h.rollout_id}, {"host", h.host},
          {"state", Name(h.state)},     {"last_step", Name(h.last_step)},
          {"out_of_rotation_ms", h.out_of_rotation_ms}, {"detail", h.detail}};
}

HostRecord HostRecordFromJson(const json& j) {
  HostRecord h;
  h.rollout_id = j.at("rollout_id");
  h.host = j.at("host");
  h.state = Typed(j, "state", ParseHostState, HostState::kPending);
  h.last_step = Typed(j, "last_step", ParseStep, Step::kNone);
  h.out_of_rotation_ms = j.value("out_of_rotation_ms", int64_t{0});
  h.detail = j.value("detail", std::string());
  return h;
}

json LeaseToJson(const Lease& l) {
  return {{"key", l.key},         {"holder", l.holder},         {"token", l.token},
          {"reason", l.reason},   {"acquired_ms", l.acquired_ms}, {"expires_ms", l.expires_ms},
          {"pid", l.pid},         {"machine", l.machine}};
}

Lease LeaseFromJson(const json& j) {
  Lease l;
  l.key = j.at("key");
  l.holder = j.value("holder", std::string());
  l.token = j.value("token", std::string());
  l.reason = j.value("reason", std::string());
  l.acquired_ms = j.value("acquired_ms", int64_t{0});
  l.expires_ms = j.value("expires_ms", int64_t{0});
  l.pid = j.value("pid", int64_t{0});
  l.machine = j.value("machine", std::string());
  return l;
}

}  // namespace sp

namespace sp {

namespace {

using Ordered = nlohmann::ordered_json;

Ordered RolloutEntry(const RolloutRecord& r) {
  Ordered out = Ordered::parse(RolloutRecordToJson(r).dump());
  out.erase("plan_json");
  json plan = json::parse(r.plan_json, nullptr, false);
  const json app = plan.is_object() && plan.contains("app") ? plan["app"] : json::object();
  out["version"] = app.value("version", "");
  out["artifact"] = app.value("artifact", "");
  out["requested_by"] = plan.is_object() ? plan.value("requested_by", "") : "";
  out["started_ms"] = r.created_ms;
  // Finished: when the record last changed (its end), and how long it ran.
  const bool finished = r.status != RolloutStatus::kRunning;
  out["finished_ms"] = finished ? Ordered(r.updated_ms) : Ordered(nullptr);
  out["duration_ms"] = finished ? Ordered(std::max<int64_t>(0, r.updated_ms - r.created_ms)) : Ordered(nullptr);
  return out;
}

// The frozen plan as people may read it: env values are the app's
// configuration, often secret (issue 17): only their names are shown.
Ordered RedactedPlan(const std::string& plan_json) {
  Ordered plan = Ordered::parse(plan_json, nullptr, false);
  if (plan.is_object() && plan.contains("app") && plan["app"].contains("env") && plan["app"]["env"].is_object()) {
    for (auto& [name, value] : plan["app"]["env"].items()) value = "(redacted)";
  }
  return plan;
}

}  // namespace

Result<Ordered> RolloutListJson(JournalStore& journal, int limit) {
  SP_ASSIGN_OR_RETURN(auto list, journal.ListRollouts(limit));
  Ordered out = Ordered::array();
  for (const auto& r : list) out.push_back(RolloutEntry(r));
  return Ordered{{"rollouts", out}};
}

Result<Ordered> RolloutShowJson(JournalStore& journal, const std::string& id) {
  SP_ASSIGN_OR_RETURN(RolloutRecord r, journal.GetRollout(id));
  Ordered out;
  out["rollout"] = RolloutEntry(r);
  out["plan"] = RedactedPlan(r.plan_json);
  Ordered hosts = Ordered::array();
  SP_ASSIGN_OR_RETURN(auto host_records, journal.Hosts(id));
  for (const auto& h : host_records) hosts.push_back(Ordered::parse(HostRecordToJson(h).dump()));
  out["hosts"] = hosts;
  Ordered steps = Ordered::array();
  SP_ASSIGN_OR_RETURN(auto step_records, journal.Steps(id));
  for (const auto& s : step_records) steps.push_back(Ordered::parse(StepRecordToJson(s).dump()));
  out["steps"] = steps;
  return out;
}

Result<Ordered> LockListJson(LockStore& locks, int64_t now_ms) {
  SP_ASSIGN_OR_RETURN(auto list, locks.List());
  Ordered out = Ordered::array();
  for (const auto& l : list) {
    Ordered e = Ordered::parse(LeaseToJson(l).dump());
    e.erase("token");  // Proves ownership: never shown.
    e["expired"] = l.expires_ms <= now_ms;
    out.push_back(std::move(e));
  }
  return Ordered{{"locks", out}};
}

}  // namespace sp
