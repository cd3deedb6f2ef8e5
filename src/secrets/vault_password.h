// Where vault passwords come from, as `ansible-vault` takes them: a file (its
// content, blanks stripped), an executable (its standard output: a script
// that asks a password manager), a prompt on the terminal, and, Sallyport's
// addition, an environment variable. `--vault-id label@source` names the id.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "core/subprocess.h"
#include "secrets/vault.h"

namespace sp {

struct VaultSource {
  std::string id;      // "" : the default id.
  std::string source;  // A path, "prompt", or "env:NAME".
};

// "label@source" or "source" (a path, "prompt" or "env:NAME").
Result<VaultSource> ParseVaultId(const std::string& spec);

// The password `source` gives. An executable is run by argv (never a shell),
// with `--vault-id <id>` when its name ends in "-client" (Ansible's client
// scripts), for at most 30 s; its standard output's trailing line breaks are
// stripped. A file's content is stripped of leading and trailing blanks. An
// empty password is an error. No value appears in an error.
Result<VaultSecret> ReadVaultSecret(const VaultSource& source, ProcessRunner& processes = SystemProcesses());

// Every source's secret, in order.
Result<std::vector<VaultSecret>> ReadVaultSecrets(const std::vector<VaultSource>& sources,
                                                  ProcessRunner& processes = SystemProcesses());

}  // namespace sp
