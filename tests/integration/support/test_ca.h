// A private CA for tests (core/x509.h): one per test process, with a server
// certificate for 127.0.0.1, ::1, localhost and any lab addresses asked for;
// and certificates that must be refused (expired, for another name, of
// another CA). The servers the tests start serve HTTPS with it; $SALLYPORT_CA
// names its certificate for the CLI and agents they start.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/x509.h"

namespace sp::test {

struct TlsFiles {
  std::string ca;    // The CA's certificate (what clients trust).
  std::string cert;  // The server's certificate chain.
  std::string key;   // Its key (0600).
};

class TestCa {
 public:
  // A new CA with its files under `dir`.
  explicit TestCa(std::string dir, const std::string& name = "Sallyport test CA");
  bool ok() const { return ok_; }
  const std::string& ca_file() const { return ca_file_; }
  // A server certificate `name`.crt/.key under dir for these addresses,
  // valid from `not_before` to `not_after` (Unix seconds; 0: an hour ago / in a year).
  TlsFiles Issue(const std::string& name, const std::vector<std::string>& dns, const std::vector<std::string>& ips,
                 int64_t not_before = 0, int64_t not_after = 0) const;

 private:
  std::string dir_;
  x509::KeyCert ca_;
  std::string ca_file_;
  bool ok_ = false;
};

// The process's CA (what SharedTls issues with).
const TestCa& SharedCa();
// The process's CA and its certificate for loopback (and `extra_ips`, on first
// use); exports $SALLYPORT_CA.
const TlsFiles& SharedTls(const std::vector<std::string>& extra_ips = {});

}  // namespace sp::test
