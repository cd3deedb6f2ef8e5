#include "build/credentials.h"

#include "config/branch_rules.h"
#include "config/service_config.h"
#include "core/text.h"

namespace sp {

namespace {

// "NAME@V" -> {NAME, V}; {NAME, 0} when not pinned.
std::pair<std::string, int64_t> SplitVersion(const std::string& name) {
  const size_t at = name.find('@');
  if (at == std::string::npos) return {name, 0};
  int64_t v = 0;
  for (char c : name.substr(at + 1)) {
    if (c < '0' || c > '9' || v > (INT64_MAX - 9) / 10) return {name, -1};
    v = v * 10 + (c - '0');
  }
  return {name.substr(0, at), v};
}

// How well `scope` allows `to`: 0 not at all; the exact destination beats
// any branch pattern, a longer pattern a shorter one.
size_t ScopeFit(const std::string& scope, const std::string& to) {
  if (scope == to) return SIZE_MAX;
  const std::string_view prefix = CredentialBinding::kBranchPrefix;
  if (StartsWith(scope, prefix) && StartsWith(to, prefix) &&
      BranchMatches(std::string_view(scope).substr(prefix.size()), std::string_view(to).substr(prefix.size()))) {
    return scope.size();
  }
  return 0;
}

std::string Where(const std::string& to) {
  const std::string_view branch = CredentialBinding::kBranchPrefix;
  return StartsWith(to, branch) ? "given to the steps of builds of branch " + Printable(to.substr(branch.size()))
                                : "sent to " + Printable(to);
}

}  // namespace

Status CheckSecretScope(const std::string& scope) {
  const std::string deployment = CredentialBinding::kDeploymentPrefix, branch = CredentialBinding::kBranchPrefix;
  if (StartsWith(scope, deployment) && IsValidName(scope.substr(deployment.size()))) return Ok();
  if (StartsWith(scope, branch)) {
    if (auto st = CheckBranchPattern(scope.substr(branch.size())); !st) return Err(st.error().Wrap("scope"));
    return Ok();
  }
  return Err(ErrorCode::kInvalidArgument,
             "scope '" + Printable(scope) + "': deployment:NAME (an app env) or branch:PATTERN (builds' steps)");
}

Result<std::optional<StoredSecret>> StoredSecretFor(BuildStore& store, const std::string& project,
                                                    const std::string& name, const std::string& to) {
  const auto [base, version] = SplitVersion(name);
  if (version < 0) return std::optional<StoredSecret>();
  SP_ASSIGN_OR_RETURN(auto all, store.SecretVersions(project, base));
  std::optional<StoredSecret> best;
  size_t best_fit = 0;
  for (auto& s : all) {
    const size_t fit = ScopeFit(s.scope, to);
    if (fit == 0 || (version > 0 && s.version != version)) continue;
    if (fit > best_fit || (fit == best_fit && best && s.version > best->version)) {
      best_fit = fit;
      best = std::move(s);
    }
  }
  return best;
}

Result<std::string> ResolveCredential(BuildStore& store, const std::string& project, const std::string& name,
                                      const std::string& host, const SecretReader& read) {
  SP_ASSIGN_OR_RETURN(auto stored, StoredSecretFor(store, project, name, host));
  if (stored) {
    if (!read) return Err(ErrorCode::kUnavailable, "no secret reader for secret '" + name + "'");
    auto value = read(kVaultTextRef + stored->vault);
    if (!value) {
      return Err(value.error().Wrap("secret '" + stored->name + "' version " + std::to_string(stored->version) +
                                    " (" + stored->scope + ") of project " + project));
    }
    return value;
  }
  const auto [base, version] = SplitVersion(name);
  if (version != 0) {
    return Err(ErrorCode::kNotFound, "project " + project + " has no version " + Printable(name.substr(base.size() + 1)) +
                                         " of secret '" + Printable(base) + "' that may be " + Where(host) +
                                         " (deleted since the plan was made? a new rollout uses the current one)");
  }
  SP_ASSIGN_OR_RETURN(auto binding, store.Credential(project, name));
  if (!binding) {
    SP_ASSIGN_OR_RETURN(auto others, store.SecretVersions(project, name));
    if (!others.empty()) {
      std::string scopes;
      for (const auto& s : others) {
        if (scopes.find(s.scope) == std::string::npos) scopes += (scopes.empty() ? "" : ", ") + s.scope;
      }
      return Err(ErrorCode::kPermissionDenied, "secret '" + name + "' of project " + project + " may not be " +
                                                   Where(host) + " (stored for " + scopes + ")");
    }
    return Err(ErrorCode::kNotFound, "project " + project + " has no credential '" + Printable(name) +
                                         "' (store it: sallyport secrets put " + project + " " + Printable(name) +
                                         " --deployment D | --branch PATTERN; or an admin binds it: sallyport "
                                         "credential set " + project + " " + Printable(name) + " ...)");
  }
  const std::string_view branch_prefix = CredentialBinding::kBranchPrefix;
  const bool to_branch = StartsWith(host, branch_prefix);
  bool allowed = false;
  std::string bound;
  for (const auto& h : binding->hosts) {
    allowed = allowed || h == host ||
              (to_branch && StartsWith(h, branch_prefix) &&
               BranchMatches(std::string_view(h).substr(branch_prefix.size()),
                             std::string_view(host).substr(branch_prefix.size())));
    bound += (bound.empty() ? "" : ", ") + h;
  }
  if (!allowed) {
    return Err(ErrorCode::kPermissionDenied, "credential '" + name + "' of project " + project + " may not be " +
                                                 Where(host) + " (bound to " + bound + ")");
  }
  if (!read) return Err(ErrorCode::kUnavailable, "no secret reader for credential '" + name + "'");
  // A credential helper is asked for the registry the value goes to.
  auto value = read(StartsWith(binding->ref, "helper:") ? HelperRefFor(binding->ref, host) : binding->ref);
  if (!value) return Err(value.error().Wrap("credential '" + name + "' of project " + project));
  return value;
}

CredentialReader BoundCredentials(BuildStore& store, SecretReader read) {
  return [&store, read = std::move(read)](const std::string& project, const std::string& name,
                                          const std::string& host) {
    return ResolveCredential(store, project, name, host, read);
  };
}

std::string CredentialNameOf(const std::string& ref) {
  return StartsWith(ref, "credential:") ? ref.substr(11) : std::string();
}

}  // namespace sp
