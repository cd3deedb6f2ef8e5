#include "core/text.h"

#include "core/image_ref.h"

#include <ctime>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <regex>

namespace sp {

Result<Millis> ParseDuration(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  if (digits == 0) return Err(ErrorCode::kInvalidArgument, "invalid duration '" + std::string(text) + "' (expected e.g. 500ms, 10s, 2m)");
  int64_t n = 0;
  std::from_chars(t.data(), t.data() + digits, n);
  std::string_view unit = t.substr(digits);
  int64_t mult;
  if (unit.empty() || unit == "s") mult = 1000;
  else if (unit == "ms") mult = 1;
  else if (unit == "m") mult = 60'000;
  else if (unit == "h") mult = 3'600'000;
  else if (unit == "d") mult = 86'400'000;
  else return Err(ErrorCode::kInvalidArgument, "invalid duration unit in '" + std::string(text) + "' (use ms, s, m, h or d)");
  return Millis(n * mult);
}

std::string FormatUtc(int64_t wall_ms) {
  if (wall_ms <= 0) return "";
  const std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string FormatDuration(Millis d) {
  int64_t ms = d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

int CountOrPercent::Resolve(int total) const {
  if (total <= 0) return 0;
  int n = percent ? (value * total + 99) / 100 : value;
  if (n < 1) n = 1;
  return n > total ? total : n;
}

std::string CountOrPercent::ToString() const { return std::to_string(value) + (percent ? "%" : ""); }

Result<CountOrPercent> ParseCountOrPercent(std::string_view text) {
  std::string t = Trim(text);
  CountOrPercent out;
  if (!t.empty() && t.back() == '%') {
    out.percent = true;
    t.pop_back();
  }
  int v = -1;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || v < 0 || (out.percent && v > 100)) {
    return Err(ErrorCode::kInvalidArgument, "invalid count '" + std::string(text) + "' (expected e.g. 1, 3 or 25%)");
  }
  out.value = v;
  return out;
}

static bool Matches(std::string_view s, const std::regex& re) {
  return std::regex_match(s.begin(), s.end(), re);
}

bool IsValidName(std::string_view s) {
  static const std::regex re("[a-z0-9][a-z0-9-]{0,62}");
  return Matches(s, re);
}
bool IsValidHostName(std::string_view s) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,252}");
  return Matches(s, re);
}
bool IsValidAddress(std::string_view s) {
  static const std::regex ipv4("(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}");
  static const std::regex dns("[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*");
  static const std::regex numeric("[0-9.]+");
  if (Matches(s, numeric)) return Matches(s, ipv4);  // Looks like an IP: must be one.
  return s.size() <= 253 && Matches(s, dns);
}
bool IsValidHostPort(std::string_view s, bool port_required) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return !port_required && IsValidAddress(s);
  const std::string_view port = s.substr(colon + 1);
  int n = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  return IsValidAddress(s.substr(0, colon)) && !port.empty() && ec == std::errc() && ptr == port.data() + port.size() &&
         n >= 1 && n <= 65535;
}
bool IsValidEnvName(std::string_view s) {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_]*");
  return Matches(s, re);
}
bool IsValidImageRef(std::string_view s) { return ParseImageRef(s).has_value(); }
std::string Base64(std::string_view in, bool url) {
  const char* k = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto byte = [&](size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(in[i])); };
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = byte(i) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

std::string ImageRegistry(std::string_view image_ref) {
  auto r = ParseImageRef(image_ref);
  return r ? r->domain : std::string();
}

bool IsSafeValue(std::string_view s) {
  return s.find('\0') == std::string_view::npos && s.find('\n') == std::string_view::npos &&
         s.find('\r') == std::string_view::npos;
}

std::optional<HostPort> ParseHostPort(std::string_view s, int default_port) {
  const size_t colon = s.rfind(':');
  const bool bracketed = !s.empty() && s.front() == '[';
  const size_t close = s.find(']');
  HostPort hp;
  std::string_view port_text;
  if (bracketed) {
    if (close == std::string_view::npos) return std::nullopt;
    hp.host = std::string(s.substr(1, close - 1));
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return std::nullopt;
      port_text = s.substr(close + 2);
      if (port_text.empty()) return std::nullopt;
    }
  } else if (colon != std::string_view::npos) {
    hp.host = std::string(s.substr(0, colon));
    port_text = s.substr(colon + 1);
    if (port_text.empty()) return std::nullopt;
  } else {
    hp.host = std::string(s);
  }
  if (hp.host.empty()) return std::nullopt;
  if (port_text.empty()) {
    if (default_port <= 0) return std::nullopt;
    hp.port = default_port;
    return hp;
  }
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), hp.port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || hp.port < 1 || hp.port > 65535) {
    return std::nullopt;
  }
  return hp;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string StripLineBreaks(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string LastLines(std::string_view text, int n) {
  if (n <= 0) return {};
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  size_t pos = end;
  int lines = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++lines == n) break;
    --pos;
  }
  return std::string(text.substr(pos, end - pos));
}

std::string Printable(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < 120; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > 120) out += "...";
  return out;
}

bool IsValidUser(std::string_view user) {
  if (user.empty() || user.size() > 32) return false;
  if (!(std::islower(static_cast<unsigned char>(user[0])) || std::isdigit(static_cast<unsigned char>(user[0])))) {
    return false;
  }
  return std::all_of(user.begin(), user.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

std::string UrlQuery(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string UrlHost(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));  // The authority.
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  if (StartsWith(rest, "[")) {
    const size_t close = rest.find(']');
    return close == std::string_view::npos ? "" : std::string(rest.substr(1, close - 1));
  }
  return std::string(rest.substr(0, rest.find(':')));
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  return inet_pton(AF_INET, std::string(host).c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace sp

namespace sp {

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string UrlDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

}  // namespace sp
