// The journal and the lock of a rollout that an agent runs, kept on the
// server. The agent's engine talks to a RemoteJobStore; each call is one
// POST /v1/agent/jobs/ID/store {epoch, call, ...}, which the server answers
// only while the agent holds the job's lease with that epoch (409 "lease
// lost" otherwise), so a step is journaled on the server before it is acted
// on, and an agent that lost its job cannot journal anything. The server's
// side: server/job_store_calls.h.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "rollout/journal.h"
#include "rollout/lock.h"

namespace sp {

// `call` POSTs one body to the job's store endpoint and returns
// the answer's JSON (or the error the server answered).
class RemoteJobStore final : public JournalStore, public LockStore {
 public:
  using Call = std::function<Result<nlohmann::json>(const nlohmann::json& body)>;
  explicit RemoteJobStore(Call call) : call_(std::move(call)) {}

  Status CreateRollout(const RolloutRecord& r) override;
  Status FinishRollout(const std::string& id, RolloutStatus status, const std::string& error) override;
  Result<RolloutRecord> GetRollout(const std::string& id) override;
  Result<std::optional<RolloutRecord>> Latest(const std::string& stack, const std::string& release,
                                              const std::string& deployment,
                                              std::optional<RolloutStatus> status) override;
  Result<std::vector<RolloutRecord>> ListRollouts(int limit) override;
  Status AppendStep(const StepRecord& s) override;
  Result<std::vector<StepRecord>> Steps(const std::string& rollout_id) override;
  Status PutHost(const HostRecord& h) override;
  Result<std::vector<HostRecord>> Hosts(const std::string& rollout_id) override;

  // The lock of the job's scope, held on the server (its clock, not ours).
  Result<Lease> Acquire(const Lease& wanted, int64_t now_ms, int64_t ttl_ms) override;
  Status Renew(const std::string& key, const std::string& token, int64_t now_ms, int64_t ttl_ms) override;
  Status Release(const std::string& key, const std::string& token) override;
  Result<std::optional<Lease>> Get(const std::string& key) override;
  Result<std::vector<Lease>> List() override;
  Status ForceRelease(const std::string& key) override;

 private:
  Call call_;
};

}  // namespace sp
