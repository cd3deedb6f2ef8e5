// A registry token server for tests (the distribution spec's token flow, as
// Docker Hub's auth.docker.io and every hosted registry run one): HTTPS with
// the test CA's certificate; Basic credentials of one user; ES256 JWTs whose
// header carries an x5c chain (a signing certificate of the test CA, which
// the registry trusts through its rootcertbundle) and whose `aud` is the
// registry's service. It records every request, so tests can see which
// scopes were asked and whether credentials were sent at all.
#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "support/test_ca.h"

namespace sp::test {

class TokenServer {
 public:
  struct Request {
    bool had_credentials = false;  // An Authorization header at all.
    std::string user;              // The Basic user, if any.
    std::string service;
    std::vector<std::string> scopes;
    int status = 0;
  };
  struct Options {
    std::string host = "127.0.0.1";
    int port = 0;  // 0: a free one.
    std::string issuer = "sp-test-issuer";
    std::string user, password;
    int expires_in = 300;
    bool log = false;  // One line per request on stderr.
  };

  // Serves https://<host>:<free port>/token with `tls`, signing with a key
  // and certificate issued by `ca`.
  static Result<std::unique_ptr<TokenServer>> Start(const TestCa& ca, const TlsFiles& tls, Options o);
  // The same with a signing key and certificate from files (the lab's
  // sp-token-server, whose CA openssl made).
  static Result<std::unique_ptr<TokenServer>> Start(const TlsFiles& tls, const std::string& signer_key_file,
                                                    const std::string& signer_cert_file, Options o);
  // Blocks until Stop() (the standalone server's main).
  void Wait();
  void Stop() {
    if (server_) server_->stop();
  }
  ~TokenServer();
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;

  std::string realm() const;
  const std::string& host() const { return o_.host; }
  int port() const { return port_; }
  std::vector<Request> requests() const;
  void Clear();

 private:
  TokenServer() = default;
  void Handle(const httplib::Request& req, httplib::Response& res);
  Result<std::string> Sign(const std::string& service, const std::string& subject,
                           const std::vector<std::string>& scopes) const;

  Options o_;
  std::string signer_key_pem_, signer_cert_der_b64_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::atomic<int> issued_{0};
  mutable std::mutex mu_;
  std::vector<Request> requests_;
};

}  // namespace sp::test
