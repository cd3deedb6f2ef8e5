// Vault values as the server's credentials: an admin binds a credential to
// `vault:/path/file` (a whole vault file: its plaintext) or
// `vault:/path/file#key` (the value of top-level `key`: an inline `!vault`
// value of a YAML file, or a key of a whole-vault YAML file such as Ansible's
// group_vars/*/vault.yml). The server opens it with its vault passwords
// (`server --vault-password-file / --vault-id`) when a job needs it; the
// store and the plans hold only the reference.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "secrets/vault.h"

namespace sp {

// "vault:/absolute/path" or "vault:/absolute/path#key" (key: letters,
// digits, '_', '.', '-').
bool IsValidVaultRef(std::string_view ref);

// The value at `path` (a whole vault file: its plaintext, trailing line
// breaks stripped) or `path`#`key` (a top-level key's inline !vault value,
// or a key of a whole-vault YAML file), opened with `secrets`. Errors name
// the file, line and key, never the value.
Result<std::string> OpenVaultValue(const std::string& path, const std::string& key,
                                   const std::vector<VaultSecret>& secrets);

// A stored secret's envelope handed to a RefReader: this prefix, then the
// whole "$ANSIBLE_VAULT;..." text.
inline constexpr const char* kVaultTextRef = "vault-text:";

using RefReader = std::function<Result<std::string>(const std::string& ref)>;

// Reads "vault:" and "vault-text:" references itself (the file re-read when it changes: a
// rekey or an edit is seen at once; trailing line breaks stripped, as for
// "file:"), every other through `inner`. Without `secrets`, a vault
// reference fails saying the server has no vault password. No value appears
// in an error.
RefReader WithVaultRefs(RefReader inner, std::vector<VaultSecret> secrets);

}  // namespace sp
