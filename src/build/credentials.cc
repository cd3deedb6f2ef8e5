#include "build/credentials.h"

#include "config/branch_rules.h"
#include "config/service_config.h"
#include "core/text.h"

namespace sp {

Result<std::string> ResolveCredential(BuildStore& store, const std::string& project, const std::string& name,
                                      const std::string& host, const SecretReader& read) {
  SP_ASSIGN_OR_RETURN(auto binding, store.Credential(project, name));
  if (!binding) {
    return Err(ErrorCode::kNotFound, "project " + project + " has no credential '" + Printable(name) +
                                         "' (an admin binds it: sallyport credential set " + project + " " +
                                         Printable(name) + " --file PATH --host REGISTRY)");
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
    const std::string where = to_branch ? "given to the steps of builds of branch " + Printable(host.substr(7))
                                        : "sent to " + Printable(host);
    return Err(ErrorCode::kPermissionDenied, "credential '" + name + "' of project " + project + " may not be " +
                                                 where + " (bound to " + bound + ")");
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
