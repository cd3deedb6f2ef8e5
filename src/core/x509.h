// Certificates for a private CA (OpenSSL 3): `sallyport server init-tls`
// makes a CA and the server's certificate with it; the tests make expired
// ones, ones for other names, and ones of another CA with the same calls.
// Keys are EC P-256 (fast handshakes); certificates are PEM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace sp::x509 {

struct KeyCert {
  std::string key_pem;   // PKCS#8 private key (keep it 0600).
  std::string cert_pem;
};

struct CertSpec {
  std::string common_name;
  std::vector<std::string> dns_names;  // subjectAltName DNS entries.
  std::vector<std::string> ips;        // subjectAltName IP entries (IPv4 or IPv6 text).
  int64_t not_before_s = 0;            // Unix seconds; 0: an hour before `now_s` (clock skew).
  int64_t not_after_s = 0;             // Unix seconds; 0: `days` after `now_s`.
  int days = 825;
};

// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign).
// `now_s`: the wall clock in Unix seconds (validity starts an hour before).
Result<KeyCert> MakeCa(const std::string& common_name, int64_t now_s, int days = 3650);
// A server certificate (serverAuth) signed by `ca`; kInvalidArgument for an
// IP that does not parse or a spec without any name.
Result<KeyCert> Issue(const KeyCert& ca, const CertSpec& spec, int64_t now_s);
// "SHA256:AB:CD:…" of the certificate's DER, as `openssl x509 -fingerprint -sha256` prints it.
Result<std::string> Fingerprint(const std::string& cert_pem);

}  // namespace sp::x509
