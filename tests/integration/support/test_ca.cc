#include "support/test_ca.h"

#include <cstdlib>
#include <ctime>
#include <memory>

#include "support/test_util.h"

namespace sp::test {

TestCa::TestCa(std::string dir, const std::string& name) : dir_(std::move(dir)) {
  auto ca = x509::MakeCa(name, std::time(nullptr), 30);
  if (!ca) return;
  ca_ = *ca;
  static int made = 0;  // Several CAs may share a directory.
  ca_file_ = dir_ + "/ca-" + std::to_string(++made) + ".crt";
  WriteFile(ca_file_, ca_.cert_pem);
  ok_ = true;
}

TlsFiles TestCa::Issue(const std::string& name, const std::vector<std::string>& dns, const std::vector<std::string>& ips,
                       int64_t not_before, int64_t not_after) const {
  x509::CertSpec spec;
  spec.dns_names = dns;
  spec.ips = ips;
  spec.not_before_s = not_before;
  spec.not_after_s = not_after;
  spec.days = 365;
  auto cert = x509::Issue(ca_, spec, std::time(nullptr));
  if (!cert) return {};
  TlsFiles f{ca_file_, dir_ + "/" + name + ".crt", dir_ + "/" + name + ".key"};
  WriteFile(f.cert, cert->cert_pem + ca_.cert_pem);
  WriteFile(f.key, cert->key_pem, 0600);
  return f;
}

const TestCa& SharedCa() {
  static TempDir dir("sp-test-pki");
  static TestCa ca(dir.path());
  return ca;
}

const TlsFiles& SharedTls(const std::vector<std::string>& extra_ips) {
  static const TlsFiles files = [&] {
    const TestCa& ca = SharedCa();
    std::vector<std::string> ips{"127.0.0.1", "::1"};
    ips.insert(ips.end(), extra_ips.begin(), extra_ips.end());
    TlsFiles f = ca.Issue("server", {"localhost"}, ips);
    ::setenv("SALLYPORT_CA", f.ca.c_str(), 1);
    return f;
  }();
  return files;
}

}  // namespace sp::test
