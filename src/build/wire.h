// Build records as JSON: the API's answers, an agent's reports of a build
// job, and the CLI's --output json. One serializer per record.
#pragma once

#include <nlohmann/json.hpp>

#include "build/records.h"

namespace sp {

nlohmann::ordered_json BuildToJson(const BuildRecord& b);
nlohmann::ordered_json BuildStepToJson(const BuildStepRecord& s);
// The project without its secrets' values (it holds only references).
nlohmann::ordered_json ProjectToJson(const ProjectRecord& p);
// A binding's name, reference and hosts; it holds no value to leave out.
nlohmann::ordered_json CredentialToJson(const CredentialBinding& c);
// A stored secret as listed: name, scope, version, who and when (never the
// value or its envelope).
nlohmann::ordered_json StoredSecretToJson(const StoredSecret& s);

}  // namespace sp
