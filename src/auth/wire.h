// The JSON shape of tokens (never their hashes) and audit records, for the
// API and the CLI's --output json.
#pragma once

#include <nlohmann/json.hpp>

#include "auth/auth.h"

namespace sp::auth {

nlohmann::ordered_json TokenToJson(const ApiToken& t);
nlohmann::ordered_json AuditToJson(const AuditRecord& r);
// The readable form of tokens and audit rows (`token list`, `audit list`).
std::string TokensText(const std::vector<ApiToken>& tokens, int64_t now_ms);
std::string AuditText(const std::vector<AuditRecord>& records);

}  // namespace sp::auth
