#include "core/digest.h"

#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace sp {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

Result<std::string> RandomBytes(size_t bytes) {
  std::string buf(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(buf.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(ErrorCode::kInternal, std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<size_t>(n);
  }
  return buf;
}

Result<std::string> RandomHex(size_t bytes) {
  SP_ASSIGN_OR_RETURN(std::string buf, RandomBytes(bytes));
  return Hex(reinterpret_cast<const unsigned char*>(buf.data()), bytes);
}

}  // namespace sp
