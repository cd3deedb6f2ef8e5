// The parts of a registry's answers the client reads: the WWW-Authenticate
// challenge (RFC 7235 auth-params, as the distribution spec uses them) and
// the URL of a token realm.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sp::registry {

struct Challenge {
  std::string scheme;                         // "bearer" or "basic" (lowercased)
  std::map<std::string, std::string> params;  // keys lowercased: realm, service, scope, error
  std::string Param(const std::string& k) const {
    auto it = params.find(k);
    return it == params.end() ? std::string() : it->second;
  }
};

// The first challenge of a WWW-Authenticate value: `Bearer realm="…",service="…"`.
// nullopt when it does not parse.
std::optional<Challenge> ParseChallenge(std::string_view header);

struct UrlParts {
  std::string scheme;  // "http" or "https"
  std::string host;    // without port; an IPv6 address without brackets
  int port = 0;        // 0: the scheme's default
  std::string HostPort() const;
};
// http(s)://host[:port][/path…]; nullopt for anything else (no userinfo).
std::optional<UrlParts> ParseHttpUrl(std::string_view url);

// The host of "host[:port]" / "[v6]:port" without the port.
std::string HostOnly(std::string_view host_port);

// Whether a token realm may be sent the credentials meant for `registry`
// (its API host, "registry-1.docker.io" for Docker Hub): the realm is on
// the registry's own host, on one of `allowed` (host[:port]; the port is
// not compared), or is Docker Hub's auth.docker.io.
bool RealmMayGetCredentials(const std::string& registry, const UrlParts& realm, const std::vector<std::string>& allowed);
// Whether credentials reach the realm only over TLS or on loopback, and the
// registry itself is spoken to over TLS or on loopback.
bool CredentialsTravelSafely(const std::string& registry, bool registry_https, const UrlParts& realm);

}  // namespace sp::registry
