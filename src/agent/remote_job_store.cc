#include "agent/remote_job_store.h"

#include "rollout/journal_wire.h"

namespace sp {

using json = nlohmann::json;

namespace {

// Malformed answers are the server's fault: kInternal, nothing done.
template <typename F>
auto Decode(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const json::exception& e) {
    return Err(ErrorCode::kInternal, std::string("malformed store answer: ") + e.what());
  }
}

}  // namespace

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
  return call_({{"call", "append_step"}, {"step", StepRecordToJson(s)}}).map([](const json&) {});
}
Result<std::vector<StepRecord>> RemoteJobStore::Steps(const std::string& rollout_id) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "steps"}, {"id", rollout_id}}));
  return Decode([&]() -> Result<std::vector<StepRecord>> {
    std::vector<StepRecord> out;
    for (const auto& j : a.at("steps")) out.push_back(StepRecordFromJson(j));
    return out;
  });
}
Status RemoteJobStore::PutHost(const HostRecord& h) {
  return call_({{"call", "put_host"}, {"host", HostRecordToJson(h)}}).map([](const json&) {});
}
Result<std::vector<HostRecord>> RemoteJobStore::Hosts(const std::string& rollout_id) {
  SP_ASSIGN_OR_RETURN(json a, call_({{"call", "hosts"}, {"id", rollout_id}}));
  return Decode([&]() -> Result<std::vector<HostRecord>> {
    std::vector<HostRecord> out;
    for (const auto& j : a.at("hosts")) out.push_back(HostRecordFromJson(j));
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

}  // namespace sp
