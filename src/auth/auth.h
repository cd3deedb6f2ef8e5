// Who may call what: API tokens with scopes, the needs a route declares,
// the check of one against the other, and the append-only audit trail.
//
// Scopes (docs/security.md):
//   read                     everything readable (inventory, jobs, builds, rollouts, locks)
//   read:<project>           that project's builds only (teams that must not see each other)
//   build:<project>          start and cancel that project's builds (implies read:<project>)
//   deploy:<stack>/<deployment>  run, resume, roll back, release a lock there
//   inventory:write          edit stacks, deployments, releases, hosts, load balancers
//   secrets:<project>        store and delete that project's secrets (vault envelopes; never read back)
//   admin                    everything, also what runs commands (dynamic sources, raw jobs, tokens)
// A name may be `*` (any one name): build:*, deploy:demo/*.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sp::auth {

// What a route needs of its caller.
enum class Need {
  kPublic,          // Anyone: health, and the webhooks (their own HMAC).
  kAgent,           // An agent's token.
  kRead,            // read, or read:<project> when the object is a project.
  kBuild,           // build:<project>.
  kDeploy,          // deploy:<stack>/<deployment>.
  kInventoryWrite,  // inventory:write.
  kSecrets,         // secrets:<project>.
  kAdmin,           // admin.
};
std::string_view NeedName(Need n);

// A scope as written, checked: "read", "read:web", "deploy:demo/*", ...;
// the error names the scope and the forms allowed.
Status ValidateScope(std::string_view scope);

// Whether `scopes` grant `need` on `object` (a project for kRead/kBuild, or
// "" for everything; "stack/deployment" for kDeploy). admin grants all;
// build:<p> grants kRead of p; no scope grants kPublic or kAgent (those
// are decided before scopes).
bool Allows(const std::vector<std::string>& scopes, Need need, const std::string& object);

// A person's or a program's token. Only its SHA-256 is stored; the secret
// is shown once, when created.
struct ApiToken {
  std::string name;  // Unique among API and agent tokens.
  std::vector<std::string> scopes;
  std::string creator;  // Who created it ("local" from the machine's own store).
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0: never.
  int64_t last_used_ms = 0;
  int64_t revoked_ms = 0;  // 0: live.
  std::string kind = "api";  // "api", or "agent" in listings (agent tokens carry labels, not scopes).
  std::map<std::string, std::string> labels;
};

// Live at `now_ms`: not revoked, not expired.
bool Live(const ApiToken& t, int64_t now_ms);

// One mutating request (or a refused one): who, what, on what, from where, result.
struct AuditRecord {
  int64_t id = 0;
  int64_t at_ms = 0;
  std::string who;     // "token:<name>", "agent:<name>", "anonymous", "webhook".
  std::string method;  // POST, PUT, DELETE.
  std::string path;
  std::string target;  // The object the scope was checked on ("" none).
  std::string from;    // The peer's address.
  int status = 0;
  std::string result;  // "ok", or the error's message.
};

// A person who logs in with a password (`sallyport login`): a login makes an
// API token with the user's scopes.
struct User {
  std::string name;
  std::string password_hash;  // auth/password.h's encoding; never a password.
  std::vector<std::string> scopes;
  int64_t created_ms = 0;
};

// Where tokens, users and the audit trail live (the state database).
class AuthStore {
 public:
  virtual ~AuthStore() = default;
  // Fails with kConflict when an API or agent token of that name exists.
  virtual Status PutApiToken(const std::string& token_sha256, const ApiToken& token) = 0;
  virtual Result<std::optional<ApiToken>> ApiTokenFor(const std::string& token_sha256) = 0;
  // API and agent tokens, oldest first (agent tokens with kind "agent").
  virtual Result<std::vector<ApiToken>> Tokens() = 0;
  // Revokes the API or agent token of that name at once; kNotFound if none.
  virtual Status RevokeToken(const std::string& name, int64_t now_ms) = 0;
  // Records a use (callers throttle: at most once a minute per token).
  virtual Status TouchApiToken(const std::string& name, int64_t now_ms) = 0;
  // Append-only: the store refuses updates and deletes of audit rows.
  virtual Status AppendAudit(const AuditRecord& record) = 0;
  virtual Result<std::vector<AuditRecord>> AuditTrail(int limit) = 0;  // Newest first.
  // Creates the user, or replaces its password and scopes.
  virtual Status PutUser(const User& user) = 0;
  virtual Result<std::optional<User>> UserNamed(const std::string& name) = 0;
};

// A new token's secret: "spt_" and 64 hex digits (32 random bytes).
Result<std::string> NewTokenSecret();

}  // namespace sp::auth
