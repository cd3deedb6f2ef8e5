#include "queue/wire.h"

namespace sp {

nlohmann::ordered_json LabelsToJson(const std::map<std::string, std::string>& labels) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

nlohmann::ordered_json JobToJson(const Job& j) {
  return {{"id", j.id},
          {"kind", j.spec.kind},
          {"payload", j.spec.payload},
          {"labels", LabelsToJson(j.spec.labels)},
          {"priority", j.spec.priority},
          {"idempotency_key", j.spec.idempotency_key},
          {"state", std::string(JobStateName(j.state))},
          {"attempts", j.attempts},
          {"max_attempts", j.spec.max_attempts},
          {"owner", j.lease_owner},
          {"epoch", j.epoch},
          {"lease_expires_ms", j.lease_expires_ms},
          {"result", j.result},
          {"error", j.error},
          {"created_ms", j.created_ms},
          {"updated_ms", j.updated_ms}};
}

nlohmann::ordered_json JobSpecToJson(const JobSpec& s) {
  return {{"kind", s.kind},
          {"payload", s.payload},
          {"labels", LabelsToJson(s.labels)},
          {"priority", s.priority},
          {"idempotency_key", s.idempotency_key},
          {"max_attempts", s.max_attempts}};
}

nlohmann::ordered_json AgentSeenToJson(const QueueStore::AgentSeen& a) {
  return {{"name", a.name},
          {"labels", LabelsToJson(a.labels)},
          {"last_seen_ms", a.last_seen_ms},
          {"current_job", a.current_job}};
}

}  // namespace sp
