// Digests and random tokens (OpenSSL's libcrypto).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace sp {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// `bytes` random bytes from the kernel.
Result<std::string> RandomBytes(size_t bytes);

// `bytes` random bytes from the kernel, as lower-case hex.
Result<std::string> RandomHex(size_t bytes);

}  // namespace sp
