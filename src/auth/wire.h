// The JSON shape of tokens (never their hashes) and audit records, for the
// API and the CLI's --output json.
#pragma once

#include <nlohmann/json.hpp>

#include "auth/auth.h"

namespace sp::auth {

nlohmann::ordered_json TokenToJson(const ApiToken& t);
nlohmann::ordered_json AuditToJson(const AuditRecord& r);

}  // namespace sp::auth
