// Credentials the server's admin bound for a project's commits: a commit's
// sallyport.yml names one (`registry.password: {credential: NAME}`); the
// binding says where its value is read on the server and the registry
// hosts it may be sent to.
#pragma once

#include <functional>
#include <string>

#include "build/records.h"
#include "core/error.h"
#include "secrets/vault_ref.h"

namespace sp {

using SecretReader = std::function<Result<std::string>(const std::string& ref)>;

// The value of credential `name` of `project`, to be sent to `host`.
// A stored secret (StoredSecret) of that name whose scope allows `host`
// comes first ("NAME@V": that version only; of several branch patterns, the
// longest); then the admin's binding. 404 without either, 403 when `host`
// is not allowed. The value never appears in the error.
Result<std::string> ResolveCredential(BuildStore& store, const std::string& project, const std::string& name,
                                      const std::string& host, const SecretReader& read);

// A credential named by a commit, for sending to `host`, by project:
// the server's bindings (BoundCredentials), or an agent asking the server.
using CredentialReader =
    std::function<Result<std::string>(const std::string& project, const std::string& name, const std::string& host)>;

// ResolveCredential over `store`'s bindings, their references read by `read`.
CredentialReader BoundCredentials(BuildStore& store, SecretReader read);

// The stored secret ResolveCredential would open for `name` ("NAME" or
// "NAME@V") sent to `to`, with its envelope; nullopt when none allows it.
Result<std::optional<StoredSecret>> StoredSecretFor(BuildStore& store, const std::string& project,
                                                    const std::string& name, const std::string& to);

// A stored secret's scope as written: "deployment:NAME" or "branch:PATTERN".
Status CheckSecretScope(const std::string& scope);

// "credential:NAME" -> NAME; "" for any other reference.
std::string CredentialNameOf(const std::string& ref);

}  // namespace sp
