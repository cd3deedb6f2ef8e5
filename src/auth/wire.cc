#include "auth/wire.h"

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

}  // namespace sp::auth
