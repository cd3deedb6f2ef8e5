#include "auth/auth.h"

#include "core/digest.h"
#include "core/text.h"

namespace sp::auth {

std::string_view NeedName(Need n) {
  switch (n) {
    case Need::kPublic: return "public";
    case Need::kAgent: return "agent";
    case Need::kRead: return "read";
    case Need::kBuild: return "build";
    case Need::kDeploy: return "deploy";
    case Need::kInventoryWrite: return "inventory:write";
    case Need::kSecrets: return "secrets";
    case Need::kAdmin: return "admin";
  }
  return "admin";
}

namespace {

constexpr const char kForms[] =
    "expected read, read:<project>, build:<project>, deploy:<stack>/<deployment>, inventory:write, "
    "secrets:<project> or admin "
    "(a name may be *)";

bool NameOrStar(std::string_view s) { return s == "*" || IsValidName(s); }

// `pattern` (names or *) matches `value` part by part ('/'-separated).
bool Matches(std::string_view pattern, std::string_view value) {
  auto p = Split(pattern, '/');
  auto v = Split(value, '/');
  if (p.size() != v.size()) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != "*" && p[i] != v[i]) return false;
  }
  return true;
}

}  // namespace

Status ValidateScope(std::string_view scope) {
  if (scope == "read" || scope == "inventory:write" || scope == "admin") return Ok();
  const auto colon = scope.find(':');
  const std::string_view kind = scope.substr(0, colon), object = colon == scope.npos ? "" : scope.substr(colon + 1);
  if ((kind == "read" || kind == "build" || kind == "secrets") && colon != scope.npos && NameOrStar(object)) return Ok();
  if (kind == "deploy" && colon != scope.npos) {
    auto parts = Split(object, '/');
    if (parts.size() == 2 && NameOrStar(parts[0]) && NameOrStar(parts[1])) return Ok();
  }
  return Err(ErrorCode::kInvalidArgument, "scope '" + std::string(scope) + "': " + kForms);
}

bool Allows(const std::vector<std::string>& scopes, Need need, const std::string& object) {
  for (const auto& s : scopes) {
    if (s == "admin") return true;
    switch (need) {
      case Need::kPublic:
      case Need::kAgent:
      case Need::kAdmin: break;
      case Need::kRead:
        if (s == "read") return true;
        if (!object.empty() && (StartsWith(s, "read:") || StartsWith(s, "build:")) &&
            Matches(s.substr(s.find(':') + 1), object)) {
          return true;
        }
        break;
      case Need::kBuild:
        if (StartsWith(s, "build:") && Matches(s.substr(6), object)) return true;
        break;
      case Need::kDeploy:
        if (StartsWith(s, "deploy:") && Matches(s.substr(7), object)) return true;
        break;
      case Need::kInventoryWrite:
        if (s == "inventory:write") return true;
        break;
      case Need::kSecrets:
        if (StartsWith(s, "secrets:") && Matches(s.substr(8), object)) return true;
        break;
    }
  }
  return false;
}

bool Live(const ApiToken& t, int64_t now_ms) { return t.revoked_ms == 0 && (t.expires_ms == 0 || now_ms < t.expires_ms); }

Result<std::string> NewTokenSecret() {
  SP_ASSIGN_OR_RETURN(std::string hex, RandomHex(32));
  return "spt_" + hex;
}

}  // namespace sp::auth
