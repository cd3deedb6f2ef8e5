#include "server/tls_init.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/file.h"
#include "core/text.h"
#include "core/x509.h"

namespace sp {

namespace {

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

void AddUnique(std::vector<std::string>& to, const std::string& v) {
  for (const auto& x : to) {
    if (x == v) return;
  }
  to.push_back(v);
}

}  // namespace

Result<TlsInitResult> InitTls(const TlsInitOptions& o) {
  if (o.dir.empty()) return Err(ErrorCode::kInvalidArgument, "init-tls: --dir is required");
  TlsInitResult r;
  r.ca_cert = o.dir + "/ca.crt";
  r.ca_key = o.dir + "/ca.key";
  r.server_cert = o.dir + "/server.crt";
  r.server_key = o.dir + "/server.key";
  const int64_t now_s = o.now_s;
  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) return Err(ErrorCode::kUnavailable, "init-tls: cannot create " + o.dir + ": " + ec.message());
  ::chmod(o.dir.c_str(), 0700);
  x509::KeyCert ca;
  if (Exists(r.ca_cert)) {
    SP_ASSIGN_OR_RETURN(ca.cert_pem, ReadTextFile(r.ca_cert));
    if (!Exists(r.server_cert)) {
      SP_ASSIGN_OR_RETURN(ca.key_pem, ReadTextFile(r.ca_key));
    }
  } else {
    if (Exists(r.server_cert)) {
      return Err(ErrorCode::kConflict, "init-tls: " + r.server_cert + " exists without " + r.ca_cert);
    }
    SP_ASSIGN_OR_RETURN(ca, x509::MakeCa("Sallyport private CA", now_s, 3650));
    SP_TRY(WriteNewFile(r.ca_key, ca.key_pem, 0600));
    SP_TRY(WriteNewFile(r.ca_cert, ca.cert_pem, 0644));
  }
  SP_ASSIGN_OR_RETURN(r.ca_fingerprint, x509::Fingerprint(ca.cert_pem));
  if (Exists(r.server_cert)) return r;  // Kept: a second init changes nothing.
  r.names = {"localhost"};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && IsValidHostName(host)) AddUnique(r.names, host);
  for (const auto& n : o.names) AddUnique(r.names, n);
  r.ips = {"127.0.0.1", "::1"};
  for (const auto& ip : o.ips) AddUnique(r.ips, ip);
  x509::CertSpec spec;
  spec.common_name = "sallyport server";
  spec.dns_names = r.names;
  spec.ips = r.ips;
  spec.days = o.days;
  auto cert = x509::Issue(ca, spec, now_s);
  if (!cert) return Err(cert.error().code, "init-tls: " + cert.error().message);
  SP_TRY(WriteNewFile(r.server_key, cert->key_pem, 0600));
  SP_TRY(WriteNewFile(r.server_cert, cert->cert_pem + ca.cert_pem, 0644));  // The chain.
  r.created = true;
  return r;
}

}  // namespace sp
