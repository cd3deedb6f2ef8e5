#include "server/job_store_rpc.h"

namespace sp {

using json = nlohmann::json;

namespace {

json StepToJson(const StepRecord& s) {
  return {{"seq", s.seq}, {"rollout_id", s.rollout_id}, {"host", s.host}, {"step", s.step},
          {"phase", s.phase}, {"ts_ms", s.ts_ms}, {"detail", s.detail}};
}
StepRecord StepFromJson(const json& j) {
  return StepRecord{j.value("seq", int64_t{0}), j.at("rollout_id"), j.at("host"), j.at("step"), j.at("phase"),
                    j.value("ts_ms", int64_t{0}), j.value("detail", std::string())};
}
json HostToJson(const HostRecord& h) {
  return {{"rollout_id", h.rollout_id}, {"host", h.host}, {"state", h.state}, {"last_step", h.last_step},
          {"out_of_rotation_ms", h.out_of_rotation_ms}, {"detail", h.detail}};
}
HostRecord HostFromJson(const json& j) {
  return HostRecord{j.at("rollout_id"), j.at("host"), j.at("state"), j.value("last_step", std::string()),
                    j.value("out_of_rotation_ms", int64_t{0}), j.value("detail", std::string())};
}
json LeaseToJson(const Lease& l) {
  return {{"key", l.key}, {"holder", l.holder}, {"token", l.token}, {"reason", l.reason},
          {"acquired_ms", l.acquired_ms}, {"expires_ms", l.expires_ms}, {"pid", l.pid}, {"machine", l.machine}};
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

std::string ScopeOf(const RolloutRecord& r) { return r.stack + "/" + r.release + "/" + r.deployment; }

// Malformed bodies are the agent's fault: kInvalidArgument, nothing done.
template <typename F>
auto Decode(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const json::exception& e) {
    return Err(ErrorCode::kInvalidArgument, std::string("malformed store call: ") + e.what());
  }
}

}  // namespace

json RolloutRecordToJson(const RolloutRecord& r) {
  return {{"id", r.id},         {"stack", r.stack},     {"release", r.release},
          {"deployment", r.deployment}, {"kind", r.kind}, {"status", std::string(RolloutStatusName(r.status))},
          {"plan_json", r.plan_json}, {"error", r.error}, {"created_ms", r.created_ms}, {"updated_ms", r.updated_ms}};
}

Result<RolloutRecord> RolloutRecordFromJson(const json& j) {
  return Decode([&]() -> Result<RolloutRecord> {
    RolloutRecord r;
    r.id = j.at("id");
    r.stack = j.at("stack");
    r.release = j.at("release");
    r.deployment = j.at("deployment");
    r.kind = j.value("kind", std::string("rollout"));
    auto st = ParseRolloutStatus(j.at("status").get<std::string>());
    if (!st) return Err(ErrorCode::kInvalidArgument, "unknown rollout status " + j.at("status").dump());
    r.status = *st;
    r.plan_json = j.value("plan_json", std::string());
    r.error = j.value("error", std::string());
    r.created_ms = j.value("created_ms", int64_t{0});
    r.updated_ms = j.value("updated_ms", int64_t{0});
    return r;
  });
}

// ---------------------------------------------------------------- agent side

Status RemoteJobStore::CreateRollout(const RolloutRecord& r) {
  return call_({{"call", "create_rollout"}, {"rollout", RolloutRecordToJson(r)}}).map([](const json&) {});
}
Status RemoteJobStore::FinishRollout(const std::string& id, RolloutStatus status, const std::string& error) {
  return call_({{"call", "finish_rollout"}, {"id", id}, {"status", std::string(RolloutStatusName(status))}, {"error", error}})
      .map([](const json&) {});
}
Result<RolloutRecord> RemoteJobStore::GetRollout(const std::string& id) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "get_rollout"}, {"id", id}}));
  return RolloutRecordFromJson(a.at("rollout"));
}
Result<std::optional<RolloutRecord>> RemoteJobStore::Latest(const std::string& stack, const std::string& release,
                                                            const std::string& deployment,
                                                            std::optional<RolloutStatus> status) {
  json body = {{"call", "latest"}, {"stack", stack}, {"release", release}, {"deployment", deployment}};
  if (status) body["status"] = std::string(RolloutStatusName(*status));
  SP_ASSIGN_OR_RETURN(json a, call_(body));
  if (a.at("rollout").is_null()) return std::optional<RolloutRecord>();
  SP_ASSIGN_OR_RETURN(RolloutRecord r, RolloutRecordFromJson(a.at("rollout")));
  return std::optional<RolloutRecord>(std::move(r));
}
Result<std::vector<RolloutRecord>> RemoteJobStore::ListRollouts(int limit) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "list_rollouts"}, {"limit", limit}}));
  std::vector<RolloutRecord> out;
  for (const auto& j : a.at("rollouts")) {
    SP_ASSIGN_OR_RETURN(RolloutRecord r, RolloutRecordFromJson(j));
    out.push_back(std::move(r));
  }
  return out;
}
Status RemoteJobStore::AppendStep(const StepRecord& s) {
  return call_({{"call", "append_step"}, {"step", StepToJson(s)}}).map([](const json&) {});
}
Result<std::vector<StepRecord>> RemoteJobStore::Steps(const std::string& rollout_id) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "steps"}, {"id", rollout_id}}));
  return Decode([&]() -> Result<std::vector<StepRecord>> {
    std::vector<StepRecord> out;
    for (const auto& j : a.at("steps")) out.push_back(StepFromJson(j));
    return out;
  });
}
Status RemoteJobStore::PutHost(const HostRecord& h) {
  return call_({{"call", "put_host"}, {"host", HostToJson(h)}}).map([](const json&) {});
}
Result<std::vector<HostRecord>> RemoteJobStore::Hosts(const std::string& rollout_id) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "hosts"}, {"id", rollout_id}}));
  return Decode([&]() -> Result<std::vector<HostRecord>> {
    std::vector<HostRecord> out;
    for (const auto& j : a.at("hosts")) out.push_back(HostFromJson(j));
    return out;
  });
}
Result<Lease> RemoteJobStore::Acquire(const Lease& wanted, int64_t, int64_t ttl_ms) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "lock_acquire"}, {"lease", LeaseToJson(wanted)}, {"ttl_ms", ttl_ms}}));
  return Decode([&]() -> Result<Lease> { return LeaseFromJson(a.at("lease")); });
}
Status RemoteJobStore::Renew(const std::string& key, const std::string& token, int64_t, int64_t ttl_ms) {
  return call_({{"call", "lock_renew"}, {"key", key}, {"token", token}, {"ttl_ms", ttl_ms}}).map([](const json&) {});
}
Status RemoteJobStore::Release(const std::string& key, const std::string& token) {
  return call_({{"call", "lock_release"}, {"key", key}, {"token", token}}).map([](const json&) {});
}
Result<std::optional<Lease>> RemoteJobStore::Get(const std::string& key) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "lock_get"}, {"key", key}}));
  if (a.at("lease").is_null()) return std::optional<Lease>();
  return Decode([&]() -> Result<std::optional<Lease>> { return std::optional<Lease>(LeaseFromJson(a.at("lease"))); });
}
Result<std::vector<Lease>> RemoteJobStore::List() {
  return Err(ErrorCode::kPermissionDenied, "an agent cannot list the server's locks");
}
Status RemoteJobStore::ForceRelease(const std::string& key) {
  return call_({{"call", "lock_force_release"}, {"key", key}}).map([](const json&) {});
}

// ---------------------------------------------------------------- server side

Result<json> ServeJobStoreCall(JournalStore& journal, LockStore& locks, const Job& job, const std::string& scope,
                               int64_t now_ms, const json& body) {
  const std::string who = "job " + std::to_string(job.id) + " ";
  auto own_rollout = [&](const std::string& id) -> Status {
    SP_ASSIGN_OR_RETURN(RolloutRecord r, journal.GetRollout(id));
    if (ScopeOf(r) != scope) {
      return Err(ErrorCode::kPermissionDenied, "rollout " + id + " is not of this job's scope " + scope);
    }
    return Ok();
  };
  auto own_key = [&](const std::string& key) -> Status {
    if (key != scope) return Err(ErrorCode::kPermissionDenied, "job " + std::to_string(job.id) + " may lock only " + scope);
    return Ok();
  };
  return Decode([&]() -> Result<json> {
    const std::string call = body.at("call");
    if (call == "create_rollout") {
      SP_ASSIGN_OR_RETURN(RolloutRecord r, RolloutRecordFromJson(body.at("rollout")));
      if (ScopeOf(r) != scope) return Err(ErrorCode::kPermissionDenied, "rollout scope " + ScopeOf(r) + " is not " + scope);
      SP_TRY(journal.CreateRollout(r));
      return json::object();
    }
    if (call == "finish_rollout") {
      const std::string id = body.at("id");
      SP_TRY(own_rollout(id));
      auto st = ParseRolloutStatus(body.at("status").get<std::string>());
      if (!st) return Err(ErrorCode::kInvalidArgument, "unknown rollout status");
      SP_TRY(journal.FinishRollout(id, *st, body.value("error", std::string())));
      return json::object();
    }
    if (call == "get_rollout") {
      const std::string id = body.at("id");
      SP_TRY(own_rollout(id));
      SP_ASSIGN_OR_RETURN(RolloutRecord r, journal.GetRollout(id));
      return json{{"rollout", RolloutRecordToJson(r)}};
    }
    if (call == "latest") {
      const std::string key = body.at("stack").get<std::string>() + "/" + body.at("release").get<std::string>() + "/" +
                              body.at("deployment").get<std::string>();
      if (key != scope) return Err(ErrorCode::kPermissionDenied, "job " + std::to_string(job.id) + " reads only " + scope);
      std::optional<RolloutStatus> status;
      if (body.contains("status")) {
        status = ParseRolloutStatus(body["status"].get<std::string>());
        if (!status) return Err(ErrorCode::kInvalidArgument, "unknown rollout status");
      }
      SP_ASSIGN_OR_RETURN(auto r, journal.Latest(body["stack"], body["release"], body["deployment"], status));
      return json{{"rollout", r ? RolloutRecordToJson(*r) : json(nullptr)}};
    }
    if (call == "list_rollouts") {
      SP_ASSIGN_OR_RETURN(auto all, journal.ListRollouts(body.value("limit", 50)));
      json out = json::array();
      for (const auto& r : all) {
        if (ScopeOf(r) == scope) out.push_back(RolloutRecordToJson(r));
      }
      return json{{"rollouts", out}};
    }
    if (call == "append_step") {
      StepRecord s = StepFromJson(body.at("step"));
      SP_TRY(own_rollout(s.rollout_id));
      SP_TRY(journal.AppendStep(s));
      return json::object();
    }
    if (call == "steps") {
      const std::string id = body.at("id");
      SP_TRY(own_rollout(id));
      SP_ASSIGN_OR_RETURN(auto steps, journal.Steps(id));
      json out = json::array();
      for (const auto& s : steps) out.push_back(StepToJson(s));
      return json{{"steps", out}};
    }
    if (call == "put_host") {
      HostRecord h = HostFromJson(body.at("host"));
      SP_TRY(own_rollout(h.rollout_id));
      SP_TRY(journal.PutHost(h));
      return json::object();
    }
    if (call == "hosts") {
      const std::string id = body.at("id");
      SP_TRY(own_rollout(id));
      SP_ASSIGN_OR_RETURN(auto hosts, journal.Hosts(id));
      json out = json::array();
      for (const auto& h : hosts) out.push_back(HostToJson(h));
      return json{{"hosts", out}};
    }
    if (call == "lock_acquire") {
      Lease want = LeaseFromJson(body.at("lease"));
      SP_TRY(own_key(want.key));
      want.holder = who + "(" + job.lease_owner + ", " + want.holder + ")";
      SP_ASSIGN_OR_RETURN(auto held, locks.Get(want.key));
      if (held && held->token != want.token && held->holder.rfind(who, 0) == 0) {
        SP_TRY(locks.ForceRelease(want.key));  // This job's earlier lease: its agent is fenced out.
      }
      SP_ASSIGN_OR_RETURN(Lease got, locks.Acquire(want, now_ms, body.at("ttl_ms").get<int64_t>()));
      return json{{"lease", LeaseToJson(got)}};
    }
    if (call == "lock_renew") {
      SP_TRY(own_key(body.at("key")));
      SP_TRY(locks.Renew(body["key"], body.at("token"), now_ms, body.at("ttl_ms").get<int64_t>()));
      return json::object();
    }
    if (call == "lock_release") {
      SP_TRY(own_key(body.at("key")));
      SP_TRY(locks.Release(body["key"], body.at("token")));
      return json::object();
    }
    if (call == "lock_get") {
      SP_TRY(own_key(body.at("key")));
      SP_ASSIGN_OR_RETURN(auto held, locks.Get(body["key"]));
      return json{{"lease", held ? LeaseToJson(*held) : json(nullptr)}};
    }
    if (call == "lock_force_release") {
      // Only this job's own earlier leases: never another job's lock.
      SP_TRY(own_key(body.at("key")));
      SP_ASSIGN_OR_RETURN(auto held, locks.Get(body["key"]));
      if (held && held->holder.rfind(who, 0) != 0) {
        return Err(ErrorCode::kPermissionDenied, "the lock of " + scope + " is held by another job: " + held->holder);
      }
      SP_TRY(locks.ForceRelease(body["key"]));
      return json::object();
    }
    return Err(ErrorCode::kInvalidArgument, "unknown store call '" + call + "'");
  });
}

}  // namespace sp
