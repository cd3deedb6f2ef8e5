// Everything Sallyport itself says to an image registry (the preflight's
// manifest check, digest lookup): the distribution spec's API over HTTPS,
// with Basic auth or the token flow (401 + `WWW-Authenticate: Bearer
// realm=…,service=…,scope=…`, a token from the realm, the request again with
// `Authorization: Bearer`). Tokens are cached per realm, service, scope and
// user until their `expires_in`; the challenge is remembered per registry so
// that a new repository costs a token request and the request itself.
//
// Where credentials go: only over HTTPS (plain HTTP only to loopback), and
// to a token realm only on the registry's own host, on a host the
// credential allows (`realm_hosts`) or, for Docker Hub, auth.docker.io. A
// realm anywhere else is asked anonymously. Plain HTTP at all only when the
// service file says `insecure: true` and the registry is on loopback or on
// the acting machine's list (RegistryTrust::insecure). Redirects are not
// followed.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/image_ref.h"

namespace sp {

// What the machine that acts (an agent, the server, an operator's CLI)
// trusts; an admin's setting there, never a repository's.
struct RegistryTrust {
  // Directories in docker's certs.d layout: <dir>/<host[:port]>/ca.crt is
  // the CA of that registry or token realm (a realm without one of its own:
  // its registry's, as docker does). Empty: /etc/sallyport/certs.d
  // and /etc/docker/certs.d. The system's CAs otherwise.
  std::vector<std::string> certs_dirs;
  // Registries (host[:port]) allowed over plain HTTP beyond loopback.
  std::vector<std::string> insecure;
  // From $SALLYPORT_REGISTRY_CERTS_D (':'-separated) and
  // $SALLYPORT_INSECURE_REGISTRIES (','-separated).
  static RegistryTrust FromEnvironment();
};

struct RegistryCredential {
  std::string username;
  std::string secret;  // Password or token; never in an error or log.
  std::vector<std::string> realm_hosts;  // Token realm hosts allowed beyond the registry's own.
};

// The local unix socket that reaches host:port (an SSH forward through a
// bastion), or "" to connect directly.
using RegistryRoute = std::function<Result<std::string>(const std::string& host, int port)>;

struct RegistryClientOptions {
  Millis timeout{5000};
  RegistryTrust trust;
  RegistryRoute route;  // Unset: direct.
};

class RegistryClient {
 public:
  explicit RegistryClient(RegistryClientOptions o, Clock& clock = RealClock::Instance());

  // The digest of `image`'s manifest (Docker-Content-Digest). kUnavailable
  // when the registry cannot be reached or its certificate is not trusted,
  // kPermissionDenied when it refuses the credentials (naming registry,
  // realm and status), kNotFound when the image is missing,
  // kInvalidArgument for an unusable setting (plain HTTP refused).
  // `insecure`: the service file allows plain HTTP for this registry.
  Result<std::string> ManifestDigest(const ImageRef& image, const std::optional<RegistryCredential>& cred,
                                     bool insecure = false);

  // The registry at `address` (host[:port]; "docker.io" for Docker Hub)
  // answers its API base (/v2/) over HTTPS with a certificate this machine
  // trusts and takes `cred` (what `docker login` checks): before a build's
  // push hands the password to docker.
  Status Ping(const std::string& address, const std::optional<RegistryCredential>& cred, bool insecure = false);

  // HTTP requests sent so far (registry and realms), for benchmarks.
  int64_t requests() const;

 private:
  struct Response;
  struct Token {
    std::string value;
    int64_t expires_mono_ms = 0;
  };
  // `ca_of`: whose CA to trust when the URL's host has none of its own.
  // HEAD `path` on `registry` (the API host of `domain`) with Basic or a
  // token for `scope`, answering a challenge once. 401/403: *why_denied
  // says so, naming the registry, user and realm.
  Result<Response> Authorized(const std::string& domain, const std::string& registry, const std::string& path,
                              const std::string& scope, const std::optional<RegistryCredential>& cred, bool insecure,
                              std::string* why_denied);
  Result<Response> Send(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                        const RegistryCredential* basic, const std::string& ca_of = "");
  Result<std::string> FetchToken(const std::string& registry, const std::map<std::string, std::string>& challenge,
                                 const std::string& scope, const std::optional<RegistryCredential>& cred,
                                 bool registry_https, std::string* note);
  std::string CaFileFor(const std::string& host_port) const;

  RegistryClientOptions o_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Token> tokens_;                                 // realm|service|scope|user
  std::map<std::string, std::map<std::string, std::string>> challenges_;  // registry -> bearer params
  std::map<std::string, bool> basic_;                                   // registry answered Basic
  int64_t requests_ = 0;
};

// Credentials from a docker credential helper: runs
// `docker-credential-<helper> get` with `server` on stdin (as docker does)
// and reads {"Username","Secret"}. `helper` must match [a-z0-9-]+. The
// helper's output never appears in an error.
Result<RegistryCredential> CredentialFromHelper(const std::string& helper, const std::string& server,
                                                Millis timeout = Millis(30'000));

}  // namespace sp
