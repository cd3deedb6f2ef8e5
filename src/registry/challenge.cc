#include "registry/challenge.h"

#include <cctype>
#include <charconv>

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
  std::string_view port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  if (!port.empty()) {
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), u.port);
    if (ec != std::errc() || ptr != port.data() + port.size() || u.port < 1 || u.port > 65535) return std::nullopt;
  }
  u.host = Lower(u.host);
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
  auto loopback = [](const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
  };
  return (realm.scheme == "https" || loopback(realm.host)) && (registry_https || loopback(HostOnly(registry)));
}

std::string HostOnly(std::string_view hp) {
  if (!hp.empty() && hp.front() == '[') {
    const size_t close = hp.find(']');
    return std::string(hp.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  const size_t colon = hp.rfind(':');
  return Lower(hp.substr(0, colon));
}

}  // namespace sp::registry
