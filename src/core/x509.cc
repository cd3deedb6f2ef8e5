#include "core/x509.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <functional>
#include <memory>

#include "core/text.h"

namespace sp::x509 {

namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

tl::unexpected<Error> Fail(const std::string& what) { return Err(ErrorCode::kInternal, "x509: " + what); }

std::string ToPem(const std::function<int(BIO*)>& write) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return "";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Owned<X509> ReadCert(const std::string& pem) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Owned<X509>(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

Owned<EVP_PKEY> ReadKey(const std::string& pem) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Owned<EVP_PKEY>(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// The certificate's fields, signed by (issuer, issuer_key); issuer null: self-signed.
Result<KeyCert> Make(const std::string& cn, int64_t not_before, int64_t not_after, X509* issuer, EVP_PKEY* issuer_key,
                     const std::vector<std::pair<int, std::string>>& extensions) {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  Owned<X509> cert(X509_new());
  Owned<BIGNUM> serial(BN_new());
  if (!key || !cert || !serial) return Fail("out of memory");
  X509_set_version(cert.get(), 2);
  if (BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return Fail("serial number");
  }
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(not_after));
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer ? issuer : cert.get();
  for (const auto& [nid, value] : extensions) {
    if (!AddExt(cert.get(), signer, nid, value)) return Fail("extension " + value);
  }
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key.get(), EVP_sha256()) <= 0) return Fail("signing");
  KeyCert out;
  out.key_pem = ToPem([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
  out.cert_pem = ToPem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  if (out.key_pem.empty() || out.cert_pem.empty()) return Fail("PEM encoding");
  return out;
}

}  // namespace

Result<KeyCert> MakeCa(const std::string& common_name, int64_t now, int days) {
  return Make(common_name, now - 3600, now + int64_t{days} * 86400, nullptr, nullptr,
              {{NID_basic_constraints, "critical,CA:TRUE"},
               {NID_key_usage, "critical,keyCertSign,cRLSign"},
               {NID_subject_key_identifier, "hash"}});
}

Result<KeyCert> Issue(const KeyCert& ca, const CertSpec& spec, int64_t now) {
  std::string san;
  for (const auto& d : spec.dns_names) {
    if (!IsValidHostName(d)) return Err(ErrorCode::kInvalidArgument, "not a DNS name: '" + d + "'");
    san += (san.empty() ? "DNS:" : ",DNS:") + d;
  }
  for (const auto& ip : spec.ips) {
    if (!IsIp(ip)) return Err(ErrorCode::kInvalidArgument, "not an IP address: '" + ip + "'");
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  if (san.empty()) return Err(ErrorCode::kInvalidArgument, "a certificate needs at least one DNS name or IP address");
  Owned<X509> ca_cert = ReadCert(ca.cert_pem);
  Owned<EVP_PKEY> ca_key = ReadKey(ca.key_pem);
  if (!ca_cert || !ca_key) return Err(ErrorCode::kInvalidArgument, "the CA's certificate or key is not PEM");
  const int64_t before = spec.not_before_s ? spec.not_before_s : now - 3600;
  const int64_t after = spec.not_after_s ? spec.not_after_s : now + int64_t{spec.days} * 86400;
  const std::string cn = spec.common_name.empty() ? (spec.dns_names.empty() ? spec.ips[0] : spec.dns_names[0])
                                                  : spec.common_name;
  return Make(cn, before, after, ca_cert.get(), ca_key.get(),
              {{NID_basic_constraints, "critical,CA:FALSE"},
               {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
               {NID_ext_key_usage, "serverAuth,clientAuth"},
               {NID_subject_key_identifier, "hash"},
               {NID_authority_key_identifier, "keyid:always"},
               {NID_subject_alt_name, san}});
}

Result<std::string> Fingerprint(const std::string& cert_pem) {
  Owned<X509> cert = ReadCert(cert_pem);
  if (!cert) return Err(ErrorCode::kInvalidArgument, "not a PEM certificate");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &n) != 1) return Fail("digest");
  static const char* kHex = "0123456789ABCDEF";
  std::string out = "SHA256:";
  for (unsigned int i = 0; i < n; ++i) {
    if (i) out += ':';
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace sp::x509
