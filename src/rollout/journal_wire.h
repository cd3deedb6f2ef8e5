// The journal's and the lock's records as JSON: the agent's journal calls to
// the server (agent/remote_job_store.h, server/job_store_calls.h) and the
// API's rollout and lock answers. One serializer per record, beside
// journal.h and lock.h. The readers throw nlohmann::json::exception on a
// document of another shape (callers catch at their boundary), except
// RolloutRecordFromJson, which returns an Error.
#pragma once

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "rollout/journal.h"
#include "rollout/lock.h"

namespace sp {

nlohmann::json RolloutRecordToJson(const RolloutRecord& r);
Result<RolloutRecord> RolloutRecordFromJson(const nlohmann::json& j);

nlohmann::json StepRecordToJson(const StepRecord& s);
StepRecord StepRecordFromJson(const nlohmann::json& j);

nlohmann::json HostRecordToJson(const HostRecord& h);
HostRecord HostRecordFromJson(const nlohmann::json& j);

nlohmann::json LeaseToJson(const Lease& l);
Lease LeaseFromJson(const nlohmann::json& j);

}  // namespace sp

namespace sp {

// The answers of the rollout and lock routes, and the CLI's --output json
// for them (the same whether read locally or through a server):
//   RolloutListJson:  {"rollouts": [record without the plan, plus version and artifact]}
//   RolloutShowJson:  {"rollout": {...}, "plan": {...}, "hosts": [...], "steps": [...]}
//   LockListJson:     {"locks": [lease without its token, plus expired]}
Result<nlohmann::ordered_json> RolloutListJson(JournalStore& journal, int limit);
Result<nlohmann::ordered_json> RolloutShowJson(JournalStore& journal, const std::string& id);
Result<nlohmann::ordered_json> LockListJson(LockStore& locks, int64_t now_ms);

}  // namespace sp
