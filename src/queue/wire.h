// Jobs and agents as JSON: the API's answers (a claim is a job), and the
// CLI's --output json.
#pragma once

#include <nlohmann/json.hpp>

#include "queue/job.h"

namespace sp {

nlohmann::ordered_json JobToJson(const Job& j);
// The body of POST /v1/jobs for `spec`.
nlohmann::ordered_json JobSpecToJson(const JobSpec& spec);
nlohmann::ordered_json AgentSeenToJson(const QueueStore::AgentSeen& a);
nlohmann::ordered_json LabelsToJson(const std::map<std::string, std::string>& labels);

}  // namespace sp
