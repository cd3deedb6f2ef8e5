// Credentials the server's admin bound for a project's commits: a commit's
// sallyport.yml names one (`registry.password: {credential: NAME}`); the
// binding says where its value is read on the server and the registry
// hosts it may be sent to.
#pragma once

#include <functional>
#include <string>

#include "build/records.h"
#include "core/error.h"

namespace sp {

using SecretReader = std::function<Result<std::string>(const std::string& ref)>;

// The value of credential `name` of `project`, to be sent to `host`: 404
// without a binding, 403 when `host` is not one of the binding's. The value
// never appears in the error.
Result<std::string> ResolveCredential(BuildStore& store, const std::string& project, const std::string& name,
                                      const std::string& host, const SecretReader& read);

// A credential named by a commit, for sending to `host`, by project:
// the server's bindings (BoundCredentials), or an agent asking the server.
using CredentialReader =
    std::function<Result<std::string>(const std::string& project, const std::string& name, const std::string& host)>;

// ResolveCredential over `store`'s bindings, their references read by `read`.
CredentialReader BoundCredentials(BuildStore& store, SecretReader read);

// "credential:NAME" -> NAME; "" for any other reference.
std::string CredentialNameOf(const std::string& ref);

}  // namespace sp
