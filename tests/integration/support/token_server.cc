#include "support/token_server.h"

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

std::string B64Url(std::string_view in) {
  std::string s = Base64(in, /*url=*/true);
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

Result<std::string> CertDer(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) return Err(ErrorCode::kInternal, "token server: cannot read the signing certificate");
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  X509_free(cert);
  if (n <= 0) return Err(ErrorCode::kInternal, "token server: cannot encode the signing certificate");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

// ES256: ECDSA P-256 over SHA-256, the signature as r||s (32 bytes each).
Result<std::string> Es256(const std::string& key_pem, const std::string& input) {
  BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return Err(ErrorCode::kInternal, "token server: cannot read the signing key");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (!ok) return Err(ErrorCode::kInternal, "token server: signing failed");
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) return Err(ErrorCode::kInternal, "token server: bad signature encoding");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

}  // namespace

Result<std::unique_ptr<TokenServer>> TokenServer::Start(const TestCa& ca, const TlsFiles& tls, Options o) {
  const TlsFiles signer = ca.Issue("token-signer", {"token-signer"}, {});
  return Start(tls, signer.key, signer.cert, std::move(o));
}

void TokenServer::Wait() {
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<TokenServer>> TokenServer::Start(const TlsFiles& tls, const std::string& signer_key_file,
                                                        const std::string& signer_cert_file, Options o) {
  std::unique_ptr<TokenServer> t(new TokenServer());
  t->o_ = std::move(o);
  t->signer_key_pem_ = ReadFile(signer_key_file);
  SP_ASSIGN_OR_RETURN(std::string der, CertDer(ReadFile(signer_cert_file)));
  t->signer_cert_der_b64_ = Base64(der);
  t->server_ = std::make_unique<httplib::SSLServer>(tls.cert.c_str(), tls.key.c_str());
  if (!t->server_->is_valid()) return Err(ErrorCode::kInternal, "token server: TLS set-up failed");
  TokenServer* self = t.get();
  t->server_->set_tcp_nodelay(true);  // As real token services answer: no Nagle delay on the reply.
  t->server_->Get("/token", [self](const httplib::Request& req, httplib::Response& res) { self->Handle(req, res); });
  if (t->o_.port > 0) {
    t->port_ = t->server_->bind_to_port(t->o_.host.c_str(), t->o_.port) ? t->o_.port : -1;
  } else {
    t->port_ = t->server_->bind_to_any_port(t->o_.host);
  }
  if (t->port_ <= 0) return Err(ErrorCode::kUnavailable, "token server: cannot bind " + t->o_.host);
  t->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  for (int i = 0; i < 200 && !t->server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return t;
}

TokenServer::~TokenServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string TokenServer::realm() const { return "https://" + o_.host + ":" + std::to_string(port_) + "/token"; }

std::vector<TokenServer::Request> TokenServer::requests() const {
  std::lock_guard l(mu_);
  return requests_;
}

void TokenServer::Clear() {
  std::lock_guard l(mu_);
  requests_.clear();
}

void TokenServer::Handle(const httplib::Request& req, httplib::Response& res) {
  Request r;
  r.service = req.get_param_value("service");
  for (size_t i = 0; i < req.get_param_value_count("scope"); ++i) r.scopes.push_back(req.get_param_value("scope", i));
  const std::string auth = req.get_header_value("Authorization");
  r.had_credentials = !auth.empty();
  bool authorized = false;
  if (StartsWith(auth, "Basic ")) {
    const std::string expected = Base64(o_.user + ":" + o_.password);
    const std::string given = auth.substr(6);
    // Decode only the user for the record: compare the whole pair encoded.
    authorized = given == expected;
    r.user = authorized ? o_.user : "(wrong)";
  }
  if (r.had_credentials && !authorized) {
    r.status = 401;
    res.status = 401;
    res.set_content("{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}", "application/json");
  } else {
    // Anonymous callers get a token without access, as hosted registries do.
    auto jwt = Sign(r.service, authorized ? o_.user : "", authorized ? r.scopes : std::vector<std::string>{});
    if (!jwt) {
      r.status = 500;
      res.status = 500;
    } else {
      r.status = 200;
      nlohmann::json body = {{"token", *jwt}, {"expires_in", o_.expires_in}};
      res.set_content(body.dump(), "application/json");
    }
  }
  if (o_.log) {
    std::string scopes;
    for (const auto& s : r.scopes) scopes += " " + s;
    std::fprintf(stderr, "token: %d for '%s' (credentials: %s) service %s scopes%s\n", r.status, r.user.c_str(),
                 r.had_credentials ? "yes" : "no", r.service.c_str(), scopes.c_str());
  }
  std::lock_guard l(mu_);
  requests_.push_back(std::move(r));
}

Result<std::string> TokenServer::Sign(const std::string& service, const std::string& subject,
                                      const std::vector<std::string>& scopes) const {
  nlohmann::json access = nlohmann::json::array();
  for (const auto& s : scopes) {
    // repository:NAME:ACTIONS (NAME may hold ':' for a port-qualified name? no: paths only).
    const size_t first = s.find(':'), last = s.rfind(':');
    if (first == std::string::npos || first == last) continue;
    nlohmann::json actions = nlohmann::json::array();
    for (const auto& a : Split(s.substr(last + 1), ',')) actions.push_back(a);
    access.push_back({{"type", s.substr(0, first)}, {"name", s.substr(first + 1, last - first - 1)}, {"actions", actions}});
  }
  const int64_t now = static_cast<int64_t>(::time(nullptr));
  nlohmann::json header = {{"typ", "JWT"}, {"alg", "ES256"}, {"x5c", {signer_cert_der_b64_}}};
  nlohmann::json claims = {{"iss", o_.issuer}, {"sub", subject},       {"aud", service},
                           {"exp", now + o_.expires_in}, {"nbf", now - 60}, {"iat", now},
                           {"jti", std::to_string(now) + "-" + std::to_string(++issued_)},
                           {"access", access}};
  const std::string input = B64Url(header.dump()) + "." + B64Url(claims.dump());
  SP_ASSIGN_OR_RETURN(std::string sig, Es256(signer_key_pem_, input));
  return input + "." + B64Url(sig);
}

}  // namespace sp::test
