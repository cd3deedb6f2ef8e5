// `sallyport server init-tls`: a private CA and the server's certificate for
// a quick start, in one directory (ca.crt, ca.key, server.crt, server.key;
// keys 0600). Serve with --tls-cert/--tls-key; give clients and agents the
// CA (--ca, $SALLYPORT_CA or the client configuration's `ca`) and compare
// its fingerprint out of band.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace sp {

struct TlsInitOptions {
  std::string dir;
  std::vector<std::string> names;  // DNS names beside "localhost" and this machine's name.
  std::vector<std::string> ips;    // IP addresses beside 127.0.0.1 and ::1.
  int days = 825;
  int64_t now_s = 0;  // The wall clock (Unix seconds): certificates start an hour before.
};

struct TlsInitResult {
  std::string ca_cert, ca_key, server_cert, server_key;  // Paths.
  std::string ca_fingerprint;                            // SHA256:…
  std::vector<std::string> names, ips;                   // In the server certificate (when made now).
  bool created = false;  // false: server.crt was there already and is kept.
};

Result<TlsInitResult> InitTls(const TlsInitOptions& options);

}  // namespace sp
