// Ansible Vault envelopes (`$ANSIBLE_VAULT;1.1;AES256` and `1.2` with a vault
// id), byte-compatible with `ansible-vault` both ways: PBKDF2-HMAC-SHA256
// (10,000 iterations, a fresh 32-byte salt per envelope) gives the AES-256
// key, the HMAC-SHA256 key and the CTR counter; the PKCS#7-padded text is
// encrypted with AES-256-CTR, the ciphertext authenticated with HMAC-SHA256,
// and salt, MAC and ciphertext hexlified twice in 80-column lines. All
// crypto is OpenSSL's (docs/secrets.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sp {

inline constexpr char kVaultMagic[] = "$ANSIBLE_VAULT;";

// One password and the vault id it stands for ("" or "default": no id).
struct VaultSecret {
  std::string id;
  std::string password;
};

// The header line's fields.
struct VaultHeader {
  std::string version;  // "1.1" | "1.2"
  std::string cipher;   // "AES256"
  std::string id;       // Only with 1.2.
};

// True when `text` (after leading blanks) starts with the vault header.
bool IsVaultText(std::string_view text);

// The header of an envelope; kInvalidArgument when it is not one.
Result<VaultHeader> ParseVaultHeader(std::string_view envelope);

// A new envelope of `plaintext` under `secret` (1.2 when it names an id other
// than "default", else 1.1), with a fresh random salt; ends with a newline.
Result<std::string> VaultEncrypt(std::string_view plaintext, const VaultSecret& secret);

// The plaintext of `envelope`, trying the secrets whose id matches the
// envelope's first, then the others. A malformed envelope names what is
// wrong; a MAC that no secret matches says so (a wrong password, or an
// altered envelope: the two cannot be told apart). `used`, when given,
// receives the secret that opened it.
Result<std::string> VaultDecrypt(std::string_view envelope, const std::vector<VaultSecret>& secrets,
                                 VaultSecret* used = nullptr);

// Many envelopes at once, their key derivations spread over `threads`
// threads (0: the machine's cores). Same order as `envelopes`; the first
// failure fails the lot, naming its index.
Result<std::vector<std::string>> VaultDecryptMany(const std::vector<std::string>& envelopes,
                                                  const std::vector<VaultSecret>& secrets, unsigned threads = 0);

}  // namespace sp
