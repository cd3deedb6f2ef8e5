#include "server/job_store_calls.h"

#include <algorithm>

#include "core/text.h"
#include "rollout/journal_wire.h"

namespace sp {

using json = nlohmann::json;

namespace {

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

namespace {

// One call of `caller_` against the server's journal and locks; see
// ServeStoreCall.
class JobStoreCall {
 public:
  JobStoreCall(JournalStore& journal, LockStore& locks, const StoreCaller& caller, const std::string& scope,
               int64_t now_ms)
      : journal_(journal), locks_(locks), caller_(caller), scope_(scope), now_ms_(now_ms), who_(caller.who) {}

  Result<json> Serve(const json& body) {
    using Handler = Result<json> (JobStoreCall::*)(const json&);
    static const std::pair<const char*, Handler> kCalls[] = {
        {"create_rollout", &JobStoreCall::CreateRollout}, {"finish_rollout", &JobStoreCall::FinishRollout},
        {"get_rollout", &JobStoreCall::GetRollout},       {"latest", &JobStoreCall::Latest},
        {"list_rollouts", &JobStoreCall::ListRollouts},   {"append_step", &JobStoreCall::AppendStep},
        {"steps", &JobStoreCall::Steps},                  {"put_host", &JobStoreCall::PutHost},
        {"hosts", &JobStoreCall::Hosts},                  {"lock_acquire", &JobStoreCall::LockAcquire},
        {"lock_renew", &JobStoreCall::LockRenew},         {"lock_release", &JobStoreCall::LockRelease},
        {"lock_get", &JobStoreCall::LockGet},             {"lock_force_release", &JobStoreCall::LockForceRelease},
    };
    return Decode([&]() -> Result<json> {
      const std::string call = body.at("call");
      for (const auto& [name, handler] : kCalls) {
        if (call == name) return (this->*handler)(body);
      }
      return Err(ErrorCode::kInvalidArgument, "unknown store call '" + call + "'");
    });
  }

 private:
  Status OwnRollout(const std::string& id) {
    SP_ASSIGN_OR_RETURN(RolloutRecord r, journal_.GetRollout(id));
    if (r.ScopeKey() != scope_) {
      return Err(ErrorCode::kPermissionDenied, "rollout " + id + " is not of this job's scope " + scope_);
    }
    return Ok();
  }
  Status OwnKey(const std::string& key) {
    if (key != scope_) return Err(ErrorCode::kPermissionDenied, who_ + "may lock only " + scope_);
    return Ok();
  }
  Result<json> CreateRollout(const json& body) {
    SP_ASSIGN_OR_RETURN(RolloutRecord r, RolloutRecordFromJson(body.at("rollout")));
    if (r.ScopeKey() != scope_) return Err(ErrorCode::kPermissionDenied, "rollout scope " + r.ScopeKey() + " is not " + scope_);
    if (!caller_.submitted_by.empty()) SP_TRY(MarkSubmitted(r));
    SP_TRY(journal_.CreateRollout(r));
    return json::object();
  }
  // A CLI's own plan: kept as its record, marked so that neither this server
  // nor its agents ever act on it (a rollback, a reconcile, a teardown).
  Status MarkSubmitted(RolloutRecord& r) {
    json plan = json::parse(r.plan_json, nullptr, false);
    if (!plan.is_object() || plan.value("id", "") != r.id || plan.value("stack", "") != r.stack ||
        plan.value("release", "") != r.release || plan.value("deployment", "") != r.deployment) {
      return Err(ErrorCode::kInvalidArgument, "/rollout/plan_json: not the plan of rollout " + Printable(r.id));
    }
    plan["submitted_by"] = caller_.submitted_by;
    r.plan_json = plan.dump();
    return Ok();
  }
  Result<json> FinishRollout(const json& body) {
    const std::string id = body.at("id");
    SP_TRY(OwnRollout(id));
    auto st = ParseRolloutStatus(body.at("status").get<std::string>());
    if (!st) return Err(ErrorCode::kInvalidArgument, "unknown rollout status");
    SP_TRY(journal_.FinishRollout(id, *st, body.value("error", std::string())));
    return json::object();
  }
  Result<json> GetRollout(const json& body) {
    const std::string id = body.at("id");
    SP_TRY(OwnRollout(id));
    SP_ASSIGN_OR_RETURN(RolloutRecord r, journal_.GetRollout(id));
    return json{{"rollout", RolloutRecordToJson(r)}};
  }
  Result<json> Latest(const json& body) {
    const std::string key = body.at("stack").get<std::string>() + "/" + body.at("release").get<std::string>() + "/" +
                            body.at("deployment").get<std::string>();
    if (key != scope_) return Err(ErrorCode::kPermissionDenied, who_ + "reads only " + scope_);
    std::optional<RolloutStatus> status;
    if (body.contains("status")) {
      status = ParseRolloutStatus(body["status"].get<std::string>());
      if (!status) return Err(ErrorCode::kInvalidArgument, "unknown rollout status");
    }
    SP_ASSIGN_OR_RETURN(auto r, journal_.Latest(body["stack"], body["release"], body["deployment"], status));
    return json{{"rollout", r ? RolloutRecordToJson(*r) : json(nullptr)}};
  }
  Result<json> ListRollouts(const json& body) {
    SP_ASSIGN_OR_RETURN(auto all, journal_.ListRollouts(body.value("limit", 50)));
    json out = json::array();
    for (const auto& r : all) {
      if (r.ScopeKey() == scope_) out.push_back(RolloutRecordToJson(r));
    }
    return json{{"rollouts", out}};
  }
  Result<json> AppendStep(const json& body) {
    StepRecord s = StepRecordFromJson(body.at("step"));
    SP_TRY(OwnRollout(s.rollout_id));
    SP_TRY(journal_.AppendStep(s));
    return json::object();
  }
  Result<json> Steps(const json& body) {
    const std::string id = body.at("id");
    SP_TRY(OwnRollout(id));
    SP_ASSIGN_OR_RETURN(auto steps, journal_.Steps(id));
    json out = json::array();
    for (const auto& s : steps) out.push_back(StepRecordToJson(s));
    return json{{"steps", out}};
  }
  Result<json> PutHost(const json& body) {
    HostRecord h = HostRecordFromJson(body.at("host"));
    SP_TRY(OwnRollout(h.rollout_id));
    SP_TRY(journal_.PutHost(h));
    return json::object();
  }
  Result<json> Hosts(const json& body) {
    const std::string id = body.at("id");
    SP_TRY(OwnRollout(id));
    SP_ASSIGN_OR_RETURN(auto hosts, journal_.Hosts(id));
    json out = json::array();
    for (const auto& h : hosts) out.push_back(HostRecordToJson(h));
    return json{{"hosts", out}};
  }
  // The TTL an agent asks for, bounded: a lock that outlived its dead holder
  // by days would keep every later rollout of its scope out.
  static int64_t LockTtl(const json& body) {
    return std::clamp<int64_t>(body.at("ttl_ms").get<int64_t>(), kMinLockTtlMs, kMaxLockTtlMs);
  }
  Result<json> LockAcquire(const json& body) {
    Lease want = LeaseFromJson(body.at("lease"));
    SP_TRY(OwnKey(want.key));
    want.holder = who_ + "(" + caller_.owner + ", " + want.holder + ")";
    SP_ASSIGN_OR_RETURN(auto held, locks_.Get(want.key));
    if (caller_.take_over_own && held && held->token != want.token && held->holder.rfind(who_, 0) == 0) {
      SP_TRY(locks_.ForceRelease(want.key));  // This job's earlier lease: its agent is fenced out.
    }
    SP_ASSIGN_OR_RETURN(Lease got, locks_.Acquire(want, now_ms_, LockTtl(body)));
    return json{{"lease", LeaseToJson(got)}};
  }
  Result<json> LockRenew(const json& body) {
    SP_TRY(OwnKey(body.at("key")));
    SP_TRY(locks_.Renew(body["key"], body.at("token"), now_ms_, LockTtl(body)));
    return json::object();
  }
  Result<json> LockRelease(const json& body) {
    SP_TRY(OwnKey(body.at("key")));
    SP_TRY(locks_.Release(body["key"], body.at("token")));
    return json::object();
  }
  Result<json> LockGet(const json& body) {
    SP_TRY(OwnKey(body.at("key")));
    SP_ASSIGN_OR_RETURN(auto held, locks_.Get(body["key"]));
    return json{{"lease", held ? LeaseToJson(*held) : json(nullptr)}};
  }
  // Only this job's own earlier leases (an agent): never another job's lock.
  Result<json> LockForceRelease(const json& body) {
    SP_TRY(OwnKey(body.at("key")));
    SP_ASSIGN_OR_RETURN(auto held, locks_.Get(body["key"]));
    if (!caller_.force_release_any && held && held->holder.rfind(who_, 0) != 0) {
      return Err(ErrorCode::kPermissionDenied, "the lock of " + scope_ + " is held by another job: " + held->holder);
    }
    SP_TRY(locks_.ForceRelease(body["key"]));
    return json::object();
  }

  JournalStore& journal_;
  LockStore& locks_;
  const StoreCaller& caller_;
  const std::string& scope_;
  const int64_t now_ms_;
  const std::string who_;
};

}  // namespace

Result<json> ServeStoreCall(JournalStore& journal, LockStore& locks, const StoreCaller& caller,
                            const std::string& scope, int64_t now_ms, const json& body) {
  return JobStoreCall(journal, locks, caller, scope, now_ms).Serve(body);
}

Result<json> ServeJobStoreCall(JournalStore& journal, LockStore& locks, const Job& job, const std::string& scope,
                               int64_t now_ms, const json& body) {
  StoreCaller caller;
  caller.who = "job " + std::to_string(job.id) + " ";
  caller.owner = job.lease_owner;
  return ServeStoreCall(journal, locks, caller, scope, now_ms, body);
}

}  // namespace sp
