#include "secrets/vault.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "core/digest.h"
#include "core/text.h"

namespace sp {
namespace {

constexpr int kIterations = 10'000;
constexpr size_t kSaltBytes = 32, kKeyBytes = 32, kIvBytes = 16, kBlock = 16;
constexpr size_t kLineWidth = 80;

using Bytes = std::string;  // Binary.

std::string Hexlify(std::string_view in) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (unsigned char c : in) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Bytes> Unhexlify(std::string_view in) {
  if (in.size() % 2) return std::nullopt;
  Bytes out(in.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexDigit(in[2 * i]), lo = HexDigit(in[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

struct Keys {
  unsigned char cipher[kKeyBytes], mac[kKeyBytes], iv[kIvBytes];
  ~Keys() { OPENSSL_cleanse(this, sizeof *this); }
};

Status Derive(const std::string& password, const Bytes& salt, Keys& k) {
  unsigned char out[kKeyBytes * 2 + kIvBytes];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        kIterations, EVP_sha256(), sizeof out, out) != 1) {
    return Err(ErrorCode::kInternal, "PBKDF2 failed");
  }
  std::memcpy(k.cipher, out, kKeyBytes);
  std::memcpy(k.mac, out + kKeyBytes, kKeyBytes);
  std::memcpy(k.iv, out + 2 * kKeyBytes, kIvBytes);
  OPENSSL_cleanse(out, sizeof out);
  return Ok();
}

Result<Bytes> Mac(const Keys& k, const Bytes& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, k.mac, kKeyBytes,
                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, sizeof md, &len)) {
    return Err(ErrorCode::kInternal, "HMAC-SHA256 failed");
  }
  return Bytes(reinterpret_cast<char*>(md), len);
}

// AES-256-CTR is its own inverse.
Result<Bytes> Ctr(const Keys& k, const Bytes& in) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  Bytes out(in.size() + kBlock, '\0');
  int n = 0, tail = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr, k.cipher, k.iv) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &n, reinterpret_cast<const unsigned char*>(in.data()),
                        static_cast<int>(in.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + n, &tail) != 1) {
    return Err(ErrorCode::kInternal, "AES-256-CTR failed");
  }
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

// The envelope's parts: header, salt, MAC, ciphertext.
struct Envelope {
  VaultHeader header;
  Bytes salt, mac, ciphertext;
};

Error Damaged(const std::string& why) { return {ErrorCode::kInvalidArgument, "the vault envelope is damaged: " + why}; }

Result<Envelope> Open(std::string_view text) {
  Envelope e;
  SP_ASSIGN_OR_RETURN(e.header, ParseVaultHeader(text));
  const auto lines = Split(std::string(text.substr(text.find_first_not_of(" \t\r\n"))), '\n');
  std::string body;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string line = Trim(lines[i]);
    if (line.empty()) continue;
    if (!std::all_of(line.begin(), line.end(), [](char c) { return HexDigit(c) >= 0; })) {
      return Err(Damaged("line " + std::to_string(i + 1) + " is not hexadecimal"));
    }
    body += line;
  }
  auto inner = Unhexlify(body);
  if (!inner) return Err(Damaged("its body has an odd number of digits"));
  const auto parts = Split(*inner, '\n');
  if (parts.size() != 3) return Err(Damaged("expected salt, MAC and ciphertext"));
  auto salt = Unhexlify(parts[0]);
  auto mac = Unhexlify(parts[1]);
  auto ct = Unhexlify(parts[2]);
  if (!salt || !mac || !ct || salt->empty() || mac->size() != 32) {
    return Err(Damaged("its salt, MAC or ciphertext is not well formed"));
  }
  if (ct->empty() || ct->size() % kBlock) return Err(Damaged("its ciphertext is not a whole number of blocks"));
  e.salt = std::move(*salt);
  e.mac = std::move(*mac);
  e.ciphertext = std::move(*ct);
  return e;
}

bool SameId(const std::string& a, const std::string& b) {
  auto norm = [](const std::string& s) { return s.empty() ? std::string("default") : s; };
  return norm(a) == norm(b);
}

// The plaintext when `secret` opens `e`; nullopt when the MAC does not match.
Result<std::optional<std::string>> TryOpen(const Envelope& e, const VaultSecret& secret) {
  Keys k;
  SP_TRY(Derive(secret.password, e.salt, k));
  SP_ASSIGN_OR_RETURN(Bytes mac, Mac(k, e.ciphertext));
  if (mac.size() != e.mac.size() || CRYPTO_memcmp(mac.data(), e.mac.data(), mac.size()) != 0) {
    return std::optional<std::string>();
  }
  SP_ASSIGN_OR_RETURN(Bytes padded, Ctr(k, e.ciphertext));
  const unsigned pad = static_cast<unsigned char>(padded.back());
  if (pad == 0 || pad > kBlock || pad > padded.size() ||
      padded.find_first_not_of(static_cast<char>(pad), padded.size() - pad) != std::string::npos) {
    return Err(Damaged("its padding is wrong"));
  }
  padded.resize(padded.size() - pad);
  return std::optional<std::string>(std::move(padded));
}

}  // namespace

bool IsVaultText(std::string_view text) {
  const size_t at = text.find_first_not_of(" \t\r\n");
  return at != std::string_view::npos && text.substr(at).starts_with(kVaultMagic);
}

Result<VaultHeader> ParseVaultHeader(std::string_view envelope) {
  if (!IsVaultText(envelope)) {
    return Err(ErrorCode::kInvalidArgument, "not an Ansible Vault envelope (no $ANSIBLE_VAULT header)");
  }
  envelope.remove_prefix(envelope.find_first_not_of(" \t\r\n"));
  const auto fields = Split(Trim(std::string(envelope.substr(0, envelope.find('\n')))), ';');
  VaultHeader h;
  if (fields.size() < 3) return Err(ErrorCode::kInvalidArgument, "the vault header has no version or cipher");
  h.version = Trim(fields[1]);
  h.cipher = Trim(fields[2]);
  if (h.version != "1.1" && h.version != "1.2") {
    return Err(ErrorCode::kInvalidArgument, "vault format " + h.version + " is not supported (1.1 and 1.2 are)");
  }
  if (h.cipher != "AES256") {
    return Err(ErrorCode::kInvalidArgument, "vault cipher " + h.cipher + " is not supported (AES256 is)");
  }
  if (h.version == "1.2" && fields.size() >= 4) h.id = Trim(fields[3]);
  return h;
}

Result<std::string> VaultEncrypt(std::string_view plaintext, const VaultSecret& secret) {
  if (secret.password.empty()) return Err(ErrorCode::kInvalidArgument, "the vault password is empty");
  if (secret.id.find_first_of(";\r\n") != std::string::npos) {
    return Err(ErrorCode::kInvalidArgument, "a vault id cannot hold ';' or a line break");
  }
  SP_ASSIGN_OR_RETURN(Bytes salt, RandomBytes(kSaltBytes));
  Keys k;
  SP_TRY(Derive(secret.password, salt, k));
  const size_t pad = kBlock - plaintext.size() % kBlock;
  Bytes padded(plaintext);
  padded.append(pad, static_cast<char>(pad));
  SP_ASSIGN_OR_RETURN(Bytes ct, Ctr(k, padded));
  OPENSSL_cleanse(padded.data(), padded.size());
  SP_ASSIGN_OR_RETURN(Bytes mac, Mac(k, ct));
  const std::string body = Hexlify(Hexlify(salt) + "\n" + Hexlify(mac) + "\n" + Hexlify(ct));
  const bool with_id = !secret.id.empty() && secret.id != "default";
  std::string out = std::string(kVaultMagic) + (with_id ? "1.2;AES256;" + secret.id : "1.1;AES256") + "\n";
  for (size_t at = 0; at < body.size(); at += kLineWidth) out += body.substr(at, kLineWidth) + "\n";
  return out;
}

Result<std::string> VaultDecrypt(std::string_view envelope, const std::vector<VaultSecret>& secrets,
                                 VaultSecret* used) {
  if (secrets.empty()) return Err(ErrorCode::kInvalidArgument, "no vault password was given");
  SP_ASSIGN_OR_RETURN(Envelope e, Open(envelope));
  std::vector<const VaultSecret*> order;
  for (const auto& s : secrets) {
    if (SameId(s.id, e.header.id)) order.push_back(&s);
  }
  for (const auto& s : secrets) {
    if (!SameId(s.id, e.header.id)) order.push_back(&s);
  }
  std::string tried;
  for (const VaultSecret* s : order) {
    SP_ASSIGN_OR_RETURN(auto plain, TryOpen(e, *s));
    if (plain) {
      if (used) *used = *s;
      return std::move(*plain);
    }
    tried += (tried.empty() ? "" : ", ") + (s->id.empty() ? std::string("default") : s->id);
  }
  return Err(ErrorCode::kPermissionDenied,
             "HMAC mismatch: no vault password given opens it (tried vault id" +
                 std::string(order.size() == 1 ? " " : "s ") + tried +
                 "); the password is wrong or the envelope was altered");
}

Result<std::vector<std::string>> VaultDecryptMany(const std::vector<std::string>& envelopes,
                                                  const std::vector<VaultSecret>& secrets, unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, static_cast<unsigned>(std::max<size_t>(1, envelopes.size())));
  std::vector<std::string> out(envelopes.size());
  std::vector<std::optional<Error>> errors(envelopes.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < envelopes.size(); i = next++) {
      auto plain = VaultDecrypt(envelopes[i], secrets);
      if (plain) {
        out[i] = std::move(*plain);
      } else {
        errors[i] = plain.error();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (size_t i = 0; i < errors.size(); ++i) {
    if (errors[i]) return Err(errors[i]->Wrap("value " + std::to_string(i + 1)));
  }
  return out;
}

}  // namespace sp
