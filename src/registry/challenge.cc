#include "registry/challenge.h"

#include <cctype>

#include "core/text.h"

namespace sp::registry {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
void SkipSpace(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

}  // namespace

std::optional<Challenge> ParseChallenge(std::string_view h) {
  size_t i = 0;
  SkipSpace(h, i);
  const size_t start = i;
  while (i < h.size() && IsTokenChar(h[i])) ++i;
  if (i == start) return std::nullopt;
  Challenge c;
  c.scheme = Lower(h.substr(start, i - start));
  while (i < h.size()) {
    SkipSpace(h, i);
    if (i < h.size() && h[i] == ',') { ++i; continue; }
    const size_t ks = i;
    while (i < h.size() && IsTokenChar(h[i])) ++i;
    if (i == ks) break;
    const std::string key = Lower(h.substr(ks, i - ks));
    SkipSpace(h, i);
    if (i >= h.size() || h[i] != '=') break;  // The next challenge's scheme: stop at the first.
    ++i;
    SkipSpace(h, i);
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        if (h[i] == '\\' && i + 1 < h.size()) { value += h[i + 1]; i += 2; continue; }
        if (h[i] == '"') { closed = true; ++i; break; }
        value += h[i++];
      }
      if (!closed) return std::nullopt;
    } else {
      const size_t vs = i;
      while (i < h.size() && IsTokenChar(h[i])) ++i;
      value = std::string(h.substr(vs, i - vs));
    }
    c.params.emplace(key, value);
  }
  return c;
}

std::string UrlParts::HostPort() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port ? h + ":" + std::to_string(port) : h;
}

std::optional<UrlParts> ParseHttpUrl(std::string_view url) {
  UrlParts u;
  size_t p = url.find("://");
  if (p == std::string_view::npos) return std::nullopt;
  u.scheme = Lower(url.substr(0, p));
  if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(p + 3);
  const size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  for (char c : authority) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '\\') return std::nullopt;
  }
  // With a port of its own, or without one (port 0: the scheme's).
  if (auto hp = ParseHostPort(authority)) {
    u.host = Lower(hp->host);
    u.port = hp->port;
  } else if (auto bare = ParseHostPort(authority, /*default_port=*/1)) {
    u.host = Lower(bare->host);
  } else {
    return std::nullopt;
  }
  return u;
}

bool RealmMayGetCredentials(const std::string& registry, const UrlParts& realm, const std::vector<std::string>& allowed) {
  if (realm.host == HostOnly(registry)) return true;
  if (registry == "registry-1.docker.io" && realm.host == "auth.docker.io") return true;
  for (const auto& h : allowed) {
    if (HostOnly(h) == realm.host) return true;
  }
  return false;
}

bool CredentialsTravelSafely(const std::string& registry, bool registry_https, const UrlParts& realm) {
  return (realm.scheme == "https" || IsLoopbackHost(realm.host)) &&
         (registry_https || IsLoopbackHost(HostOnly(registry)));
}

std::string HostOnly(std::string_view hp) {
  auto parsed = ParseHostPort(hp, /*default_port=*/1);
  return Lower(parsed ? std::string_view(parsed->host) : hp);
}

}  // namespace sp::registry
