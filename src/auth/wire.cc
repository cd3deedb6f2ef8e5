#include "auth/wire.h"

#include <cstdio>

namespace sp::auth {

nlohmann::ordered_json TokenToJson(const ApiToken& t) {
  nlohmann::ordered_json j{{"name", t.name}, {"kind", t.kind}};
  if (t.kind == "agent") {
    j["labels"] = t.labels;
  } else {
    j["scopes"] = t.scopes;
    j["creator"] = t.creator;
  }
  j["created_ms"] = t.created_ms;
  j["expires_ms"] = t.expires_ms;
  j["last_used_ms"] = t.last_used_ms;
  j["revoked_ms"] = t.revoked_ms;
  return j;
}

nlohmann::ordered_json AuditToJson(const AuditRecord& r) {
  return {{"id", r.id},         {"at_ms", r.at_ms},   {"who", r.who},       {"method", r.method},
          {"path", r.path},     {"target", r.target}, {"from", r.from},     {"status", r.status},
          {"result", r.result}};
}

std::string TokensText(const std::vector<ApiToken>& tokens, int64_t now_ms) {
  std::string out;
  char line[512];
  for (const auto& t : tokens) {
    std::string grants;
    if (t.kind == "agent") {
      for (const auto& [k, v] : t.labels) grants += (grants.empty() ? "" : ",") + k + "=" + v;
    } else {
      for (const auto& s : t.scopes) grants += (grants.empty() ? "" : " ") + s;
    }
    const char* state = t.revoked_ms ? "revoked" : (t.expires_ms && now_ms >= t.expires_ms) ? "expired" : "live";
    std::snprintf(line, sizeof line, "%-20s %-6s %-8s %s\n", t.name.c_str(), t.kind.c_str(), state, grants.c_str());
    out += line;
  }
  return out.empty() ? "no tokens\n" : out;
}

std::string AuditText(const std::vector<AuditRecord>& records) {
  std::string out;
  char line[1024];
  for (const auto& r : records) {
    std::snprintf(line, sizeof line, "%-6lld %-14lld %-24s %-6s %-40s %3d %s\n", static_cast<long long>(r.id),
                  static_cast<long long>(r.at_ms), r.who.c_str(), r.method.c_str(), r.path.c_str(), r.status,
                  r.result.c_str());
    out += line;
  }
  return out.empty() ? "no audit records\n" : out;
}

}  // namespace sp::auth
