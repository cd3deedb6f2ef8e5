#include "core/x509.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <ctime>

namespace sp::x509 {
namespace {

X509* Read(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return x;
}

// OpenSSL's verdict on `leaf` against the one trusted `ca`, for `host` (empty: no name check).
int Verify(const std::string& ca_pem, const std::string& leaf_pem, const std::string& ip = "") {
  X509_STORE* store = X509_STORE_new();
  X509* ca = Read(ca_pem);
  X509* leaf = Read(leaf_pem);
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  if (!ip.empty()) X509_VERIFY_PARAM_set1_ip_asc(X509_STORE_CTX_get0_param(ctx), ip.c_str());
  X509_verify_cert(ctx);
  const int err = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_free(leaf);
  X509_free(ca);
  X509_STORE_free(store);
  return err;
}

CertSpec Spec(std::vector<std::string> dns, std::vector<std::string> ips, int64_t before = 0, int64_t after = 0) {
  CertSpec s;
  s.dns_names = std::move(dns);
  s.ips = std::move(ips);
  s.not_before_s = before;
  s.not_after_s = after;
  return s;
}

TEST(X509Test, ACertificateOfTheCaVerifiesForItsAddressesOnly) {
  auto ca = MakeCa("test CA", std::time(nullptr));
  ASSERT_TRUE(ca) << ca.error().message;
  auto cert = Issue(*ca, Spec({"localhost"}, {"127.0.0.1", "::1", "10.1.2.3"}), std::time(nullptr));
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_NE(cert->key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(Verify(ca->cert_pem, cert->cert_pem, "10.1.2.3"), X509_V_OK);
  EXPECT_EQ(Verify(ca->cert_pem, cert->cert_pem, "127.0.0.1"), X509_V_OK);
  EXPECT_EQ(Verify(ca->cert_pem, cert->cert_pem, "10.1.2.4"), X509_V_ERR_IP_ADDRESS_MISMATCH);
  auto other = MakeCa("another CA", std::time(nullptr));
  ASSERT_TRUE(other);
  EXPECT_EQ(Verify(other->cert_pem, cert->cert_pem), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(X509Test, AnExpiredCertificateIsRefused) {
  auto ca = MakeCa("test CA", std::time(nullptr));
  ASSERT_TRUE(ca);
  const int64_t now = std::time(nullptr);
  auto old = Issue(*ca, Spec({}, {"127.0.0.1"}, now - 2 * 86400, now - 86400), std::time(nullptr));
  ASSERT_TRUE(old);
  EXPECT_EQ(Verify(ca->cert_pem, old->cert_pem), X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST(X509Test, NamesThatAreNotNamesAreRefused) {
  auto ca = MakeCa("test CA", std::time(nullptr));
  ASSERT_TRUE(ca);
  EXPECT_EQ(Issue(*ca, Spec({}, {"127.0.0.1,DNS:evil"}), 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Issue(*ca, Spec({"a,IP:1.2.3.4"}, {}), 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Issue(*ca, Spec({}, {}), 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Issue(KeyCert{"x", "y"}, Spec({}, {"127.0.0.1"}), 0).error().code, ErrorCode::kInvalidArgument);
}

TEST(X509Test, TheFingerprintIsTheSha256OfTheDer) {
  auto ca = MakeCa("test CA", std::time(nullptr));
  ASSERT_TRUE(ca);
  auto fp = Fingerprint(ca->cert_pem);
  ASSERT_TRUE(fp);
  EXPECT_EQ(fp->rfind("SHA256:", 0), 0u);
  EXPECT_EQ(fp->size(), 7u + 32 * 3 - 1);
  EXPECT_EQ(*fp, *Fingerprint(ca->cert_pem));
  EXPECT_FALSE(Fingerprint("not a certificate"));
}

}  // namespace
}  // namespace sp::x509
