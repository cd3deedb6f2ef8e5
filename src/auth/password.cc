#include "auth/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <vector>

#include "core/text.h"

namespace sp::auth {

namespace {

constexpr int kLogN = 15, kR = 8, kP = 1;
constexpr size_t kSaltBytes = 16, kKeyBytes = 32;
constexpr uint64_t kMaxMem = 64ull << 20;

bool Derive(const std::string& password, const std::string& salt, int log_n, int r, int p, unsigned char* out,
            size_t n) {
  return EVP_PBE_scrypt(password.data(), password.size(), reinterpret_cast<const unsigned char*>(salt.data()),
                        salt.size(), uint64_t{1} << log_n, static_cast<uint64_t>(r), static_cast<uint64_t>(p), kMaxMem,
                        out, n) == 1;
}

std::string Unbase64(const std::string& in) {
  std::vector<unsigned char> out(in.size());
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return "";
  size_t len = static_cast<size_t>(n);
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) --len;  // DecodeBlock counts the padding.
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

}  // namespace

Result<std::string> HashPassword(const std::string& password) {
  if (password.size() < 12 || password.size() > 1024) {
    return Err(ErrorCode::kInvalidArgument, "a password has 12 to 1,024 characters");
  }
  unsigned char salt[kSaltBytes];
  if (RAND_bytes(salt, sizeof salt) != 1) return Err(ErrorCode::kInternal, "no random bytes for a salt");
  const std::string salt_s(reinterpret_cast<const char*>(salt), sizeof salt);
  unsigned char key[kKeyBytes];
  if (!Derive(password, salt_s, kLogN, kR, kP, key, sizeof key)) return Err(ErrorCode::kInternal, "scrypt failed");
  return "scrypt$" + std::to_string(kLogN) + "$" + std::to_string(kR) + "$" + std::to_string(kP) + "$" + Base64(salt_s) +
         "$" + Base64(std::string(reinterpret_cast<const char*>(key), sizeof key));
}

bool VerifyPassword(const std::string& password, const std::string& encoded) {
  const auto f = Split(encoded, '$');
  if (f.size() != 6 || f[0] != "scrypt") return false;
  const int log_n = std::atoi(f[1].c_str()), r = std::atoi(f[2].c_str()), p = std::atoi(f[3].c_str());
  if (log_n < 10 || log_n > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const std::string salt = Unbase64(f[4]), want = Unbase64(f[5]);
  if (salt.empty() || want.size() != kKeyBytes) return false;
  unsigned char key[kKeyBytes];
  if (!Derive(password, salt, log_n, r, p, key, sizeof key)) return false;
  return CRYPTO_memcmp(key, want.data(), kKeyBytes) == 0;
}

const std::string& DecoyPasswordHash() {
  static const std::string decoy = HashPassword("no user has this password").value_or("");
  return decoy;
}

LoginLimiter::LoginLimiter(int per_user, int per_peer, int64_t window_ms)
    : per_user_(per_user), per_peer_(per_peer), window_ms_(window_ms) {}

int64_t LoginLimiter::Wait(std::deque<int64_t>& failures, int limit, int64_t now_ms) const {
  while (!failures.empty() && now_ms - failures.front() >= window_ms_) failures.pop_front();
  if (static_cast<int>(failures.size()) < limit) return 0;
  return failures.front() + window_ms_ - now_ms;
}

int64_t LoginLimiter::RetryAfter(const std::string& user, const std::string& peer, int64_t now_ms) {
  std::lock_guard lk(mu_);
  int64_t wait = 0;
  if (auto it = users_.find(user); it != users_.end()) wait = Wait(it->second, per_user_, now_ms);
  if (auto it = peers_.find(peer); it != peers_.end()) wait = std::max(wait, Wait(it->second, per_peer_, now_ms));
  return wait;
}

void LoginLimiter::Failed(const std::string& user, const std::string& peer, int64_t now_ms) {
  std::lock_guard lk(mu_);
  if (users_.size() > 100'000) users_.clear();  // Bounded: names an attacker makes up cannot grow it forever.
  if (peers_.size() > 100'000) peers_.clear();
  users_[user].push_back(now_ms);
  peers_[peer].push_back(now_ms);
}

}  // namespace sp::auth
