#include "build/credentials.h"

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
  bool allowed = false;
  std::string bound;
  for (const auto& h : binding->hosts) {
    allowed = allowed || h == host;
    bound += (bound.empty() ? "" : ", ") + h;
  }
  if (!allowed) {
    return Err(ErrorCode::kPermissionDenied, "credential '" + name + "' of project " + project +
                                                 " may not be sent to " + Printable(host) + " (bound to " +
                                                 bound + ")");
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
