// What the build server records: projects it watches, one build per
// (project, branch, commit), and each build's steps.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/enum_names.h"
#include "core/error.h"

namespace sp {

// Builds (issue 5): projects the server watches, one build per (project,
// branch, commit) — the dedupe key, kept across restarts — and its steps.
struct ProjectRecord {
  std::string name;
  std::string git_url;             // git://, http(s)://, ssh:// or file:// (tests use git daemon).
  std::string webhook_secret_ref;  // "file:/path" or "env:NAME"; empty: webhooks refused.
  int64_t created_ms = 0;
  // The remote's credential, a secret reference: http(s) a token
  // ("file:/path" or "env:NAME"); ssh a deploy key ("file:/path" to the
  // private key). Empty: none.
  std::string credential_ref;
  std::string known_hosts;         // ssh: the known_hosts file for the remote's host key.
};

// A secret the server's admin bound to a name for a project's commits to
// use (`registry.password: {credential: NAME}`), and where it may be sent.
struct CredentialBinding {
  static constexpr const char* kDeploymentPrefix = "deployment:";
  // A token realm host the credential may go to besides its registry's own
  // (the registry's challenge names it): "realm:auth.example".
  static constexpr const char* kRealmPrefix = "realm:";
  // A branch pattern (branch rules' syntax) whose builds' steps may be given
  // it as an environment variable (`secrets:`): "branch:integration".
  static constexpr const char* kBranchPrefix = "branch:";
  std::string project, name;
  std::string ref;                 // "file:/path" or "env:NAME" on the server; never the value.
  // Where it may be sent: registry addresses (host[:port]),
  // "deployment:D" for the app env of deployment D, "branch:PATTERN" for the
  // steps of builds of matching branches.
  std::vector<std::string> hosts;
  int64_t created_ms = 0;
};

// A secret value kept in the store for one scope, as an Ansible Vault
// envelope the server opens with its vault passwords (the value itself is
// never stored, listed or sent back). Scopes: "deployment:D" (the app env
// of deployment D) or "branch:PATTERN" (the steps of builds of matching
// branches). Each put of (project, name, scope) is a new version; a plan
// pins the version it was frozen with (credential:NAME@V).
struct StoredSecret {
  std::string project, name, scope;
  int64_t version = 0;
  std::string vault;  // The envelope; empty in listings.
  std::string created_by;
  int64_t created_ms = 0;
};

enum class BuildStatus { kQueued, kRunning, kSucceeded, kFailed, kCanceled, kInterrupted, kSuperseded, kSkipped };
inline constexpr std::array<EnumName<BuildStatus>, 8> kBuildStatusNames{{
    {BuildStatus::kQueued, "queued"},
    {BuildStatus::kRunning, "running"},
    {BuildStatus::kSucceeded, "succeeded"},
    {BuildStatus::kFailed, "failed"},
    {BuildStatus::kCanceled, "canceled"},
    {BuildStatus::kInterrupted, "interrupted"},
    {BuildStatus::kSuperseded, "superseded"},
    {BuildStatus::kSkipped, "skipped"},
}};
inline std::string_view BuildStatusName(BuildStatus s) { return NameIn(kBuildStatusNames, s); }
inline std::optional<BuildStatus> ParseBuildStatus(std::string_view s) { return ParseIn(kBuildStatusNames, s); }

struct BuildRecord {
  int64_t id = 0;
  std::string project, branch, sha;
  std::string trigger;             // poll | webhook | manual
  BuildStatus status = BuildStatus::kQueued;
  std::string author, message;     // Of the commit (after checkout).
  std::string artifact;            // repo@sha256:... once pushed.
  std::string deployment;          // Where a successful build deploys ("" = build only).
  std::string error;
  int64_t created_ms = 0, started_ms = 0, finished_ms = 0;
};

struct BuildStepRecord {
  int64_t build_id = 0;
  int index = 0;
  std::string name, kind, status;  // status: running | succeeded | failed | skipped | canceled
  int exit_code = 0;
  int64_t started_ms = 0, finished_ms = 0;
};

class BuildStore {
 public:
  virtual ~BuildStore() = default;
  virtual Status PutProject(const ProjectRecord& p) = 0;
  virtual Result<std::vector<ProjectRecord>> Projects() = 0;
  virtual Result<std::optional<ProjectRecord>> Project(const std::string& name) = 0;
  // A new queued build, or nullopt when (project, branch, sha) was built or
  // queued before (by any trigger). Queued builds of the same branch that
  // have not started are superseded by it.
  virtual Result<std::optional<BuildRecord>> CreateBuild(const BuildRecord& b) = 0;
  // The oldest queued build, now running (nullopt: none).
  virtual Result<std::optional<BuildRecord>> StartNextBuild(int64_t now_ms) = 0;
  virtual Status UpdateBuild(const BuildRecord& b) = 0;
  virtual Result<BuildRecord> GetBuild(int64_t id) = 0;
  virtual Result<std::vector<BuildRecord>> ListBuilds(int limit) = 0;
  virtual Status PutBuildStep(const BuildStepRecord& s) = 0;
  virtual Result<std::vector<BuildStepRecord>> BuildSteps(int64_t build_id) = 0;
  // The built commit's sallyport.yml, kept for the plans the server makes
  // of the build's artifact (POST /v1/rollouts); "" until it was read.
  virtual Status PutBuildConfig(int64_t build_id, const std::string& text) = 0;
  virtual Result<std::string> BuildConfig(int64_t build_id) = 0;
  // Credential bindings (admin only); Put replaces one of the same name.
  virtual Status PutCredential(const CredentialBinding& c) = 0;
  virtual Result<std::optional<CredentialBinding>> Credential(const std::string& project, const std::string& name) = 0;
  virtual Result<std::vector<CredentialBinding>> Credentials(const std::string& project) = 0;
  virtual Status DeleteCredential(const std::string& project, const std::string& name) = 0;
  // Stored secrets: Put adds the next version of (project, name, scope) and
  // returns it; SecretVersions has every version of every scope of a name,
  // envelopes included; Secrets the newest version of each (name, scope),
  // without envelopes; Delete removes every version of one scope (kNotFound
  // when none).
  virtual Result<int64_t> PutSecret(const StoredSecret& s) = 0;
  virtual Result<std::vector<StoredSecret>> SecretVersions(const std::string& project, const std::string& name) = 0;
  virtual Result<std::vector<StoredSecret>> Secrets(const std::string& project) = 0;
  virtual Status DeleteSecret(const std::string& project, const std::string& name, const std::string& scope) = 0;
  // The newest succeeded build that pushed `artifact` (nullopt: none).
  virtual Result<std::optional<BuildRecord>> BuildOfArtifact(const std::string& artifact) = 0;
  // After a restart: builds left running become interrupted (never
  // "running" forever); with `requeue` they are queued again instead.
  virtual Result<int> RecoverInterruptedBuilds(bool requeue, int64_t now_ms) = 0;
  // Remembers a webhook delivery id; false when it was seen before.
  virtual Result<bool> FirstDelivery(const std::string& delivery_id, int64_t now_ms) = 0;
};

}  // namespace sp
