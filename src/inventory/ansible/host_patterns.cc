#include "inventory/ansible/internal.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/text.h"

namespace sp::inventory::ansible_internal {

// ---------------------------------------------------------------------------
// INI host lines: shlex and host patterns.

Result<std::vector<std::string>> ShlexSplit(std::string_view line) {
  std::vector<std::string> out;
  std::string token;
  bool in_token = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0; else token += c;
    } else if (quote == '"') {
      if (c == '"') {
        quote = 0;
      } else if (c == '\\') {
        if (++i >= line.size()) return Err(ErrorCode::kInvalidArgument, "no escaped character after '\\'");
        if (line[i] != '"' && line[i] != '\\') token += '\\';
        token += line[i];
      } else {
        token += c;
      }
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_token) out.push_back(std::move(token));
      token.clear();
      in_token = false;
    } else if (c == '#') {
      break;
    } else if (c == '\\') {
      if (++i >= line.size()) return Err(ErrorCode::kInvalidArgument, "no escaped character after '\\'");
      token += line[i];
      in_token = true;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_token = true;
    } else {
      token += c;
      in_token = true;
    }
  }
  if (quote) return Err(ErrorCode::kInvalidArgument, std::string("no closing quotation (") + quote + ")");
  if (in_token) out.push_back(std::move(token));
  return out;
}

namespace {

// A range inside a host label: [0:9], [a:f], [01:10:2] (letters or digits).
// Returns the length of the range at s[i] ('['), or 0 when there is none.
size_t RangeLength(std::string_view s, size_t i) {
  const size_t close = s.find(']', i);
  if (close == std::string_view::npos) return 0;
  const std::vector<std::string> parts = Split(s.substr(i + 1, close - i - 1), ':');
  if (parts.size() != 2 && parts.size() != 3) return 0;
  if (parts.size() == 3 && !AllDigits(parts[2])) return 0;
  const bool letters = parts[0].size() == 1 && parts[1].size() == 1 &&
                       std::isalpha(static_cast<unsigned char>(parts[0][0])) &&
                       std::isalpha(static_cast<unsigned char>(parts[1][0]));
  if (!letters && !(AllDigits(parts[0]) && AllDigits(parts[1]))) return 0;
  return close - i + 1;
}

// One DNS-like label as Ansible's parse_address accepts it: word characters,
// '-' and ranges, starting with a word character or range and not ending with
// '-' or '_'.
bool IsHostLabel(std::string_view label) {
  if (label.empty() || label.front() == '-') return false;
  for (size_t i = 0; i < label.size();) {
    if (label[i] == '[') {
      const size_t n = RangeLength(label, i);
      if (n == 0) return false;
      i += n;
    } else if (IsWordByte(label[i]) || label[i] == '-') {
      ++i;
    } else {
      return false;
    }
  }
  return label.back() != '-' && label.back() != '_';
}

bool IsHostNamePattern(std::string_view s) {
  for (const std::string& label : Split(s, '.')) {
    if (!IsHostLabel(label)) return false;
  }
  return true;
}

// Close enough to Ansible's IPv6 pattern for telling an address from a name.
bool LooksLikeIpv6(std::string_view s) {
  return std::count(s.begin(), s.end(), ':') >= 2 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; });
}

// "host:port" with a port of digits, where host has no ':' outside ranges.
bool SplitTrailingPort(std::string_view s, std::string* host, std::string* port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || !AllDigits(s.substr(colon + 1))) return false;
  const std::string_view head = s.substr(0, colon);
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '[') {
      const size_t close = head.find(']', i);
      if (close == std::string_view::npos) return false;
      i = close;
    } else if (head[i] == ':' || head[i] == ']') {
      return false;
    }
  }
  *host = std::string(head);
  *port = std::string(s.substr(colon + 1));
  return true;
}

struct HostPattern {
  std::string pattern;  // Still holding any [x:y] ranges.
  std::optional<int64_t> port;
};

// Ansible's parse_address: "name:22", "[name]:22", "10.0.0.[1:3]:22". When
// what is left is neither a host name pattern nor an IPv6 address, the whole
// text (port included) is the name, as in Ansible.
HostPattern SplitHostPort(const std::string& text) {
  if (text.empty()) return HostPattern{text, std::nullopt};
  std::string address = text, host, port;
  std::optional<int64_t> port_number;
  auto take_port = [&] {
    port_number = port.size() > 9 ? std::numeric_limits<int64_t>::max() : std::stoll(port);
  };
  // "[anything]:port": the brackets hold an IPv6 address or a pattern.
  const size_t colon = address.rfind(':');
  if (address.front() == '[' && colon != std::string::npos && colon >= 3 && address[colon - 1] == ']' &&
      AllDigits(std::string_view(address).substr(colon + 1))) {
    port = address.substr(colon + 1);
    address = address.substr(1, colon - 2);
    take_port();
  }
  if (SplitTrailingPort(address, &host, &port)) {
    address = host;
    take_port();
  }
  if (address.empty() || !(IsHostNamePattern(address) || LooksLikeIpv6(address))) return HostPattern{text, std::nullopt};
  return HostPattern{address, port_number};
}

constexpr size_t kMaxHostsPerPattern = 65536;
constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

// The values of one range "beg:end[:step]": zero-padded when `beg` has a
// leading zero (then `end` must be as long), letters from Ansible's alphabet
// a..zA..Z. An empty range is an error (Ansible would add no host at all).
Result<std::vector<std::string>> RangeValues(const std::string& range) {
  const std::vector<std::string> bounds = Split(range, ':');
  if (bounds.size() != 2 && bounds.size() != 3) {
    return Err(ErrorCode::kInvalidArgument, "host range [" + range + "] must be begin:end or begin:end:step");
  }
  const std::string beg = bounds[0].empty() ? "0" : bounds[0], end = bounds[1];
  if (end.empty()) return Err(ErrorCode::kInvalidArgument, "host range [" + range + "] must specify an end value");
  const std::string step_text = bounds.size() == 3 ? bounds[2] : "1";
  if (!AllDigits(step_text) || step_text.size() > 6 || std::stoi(step_text) == 0) {
    return Err(ErrorCode::kInvalidArgument, "host range [" + range + "] needs a positive step");
  }
  const size_t step = std::stoul(step_text);
  std::vector<std::string> values;
  const size_t ib = kLetters.find(beg), ie = kLetters.find(end);
  if (beg.size() == 1 && end.size() == 1 && ib != std::string_view::npos && ie != std::string_view::npos) {
    if (ib > ie) return Err(ErrorCode::kInvalidArgument, "host range [" + range + "] must have begin <= end");
    for (size_t i = ib; i <= ie; i += step) values.emplace_back(1, kLetters[i]);
    return values;
  }
  if (!AllDigits(beg) || !AllDigits(end) || beg.size() > 9 || end.size() > 9) {
    return Err(ErrorCode::kInvalidArgument, "host range [" + range + "] must be numbers or single letters");
  }
  const size_t width = beg.size() > 1 && beg[0] == '0' ? beg.size() : 0;
  if (width && end.size() != width) {
    return Err(ErrorCode::kInvalidArgument,
               "host range [" + range + "] must have begin and end of equal length (leading zeros set the width)");
  }
  const long b = std::stol(beg), e = std::stol(end);
  if (b > e) return Err(ErrorCode::kInvalidArgument, "host range [" + range + "] is empty (begin > end)");
  if (static_cast<size_t>(e - b) / step >= kMaxHostsPerPattern) {
    return Err(ErrorCode::kInvalidArgument, "host range [" + range + "] has too many hosts");
  }
  for (long v = b; v <= e; v += static_cast<long>(step)) {
    std::string s = std::to_string(v);
    if (s.size() < width) s.insert(0, width - s.size(), '0');
    values.push_back(std::move(s));
  }
  return values;
}

// Ansible's expand_hostname_range: the first [..] is expanded, then the
// results again until none is left ("r[1:2]-n[a:b]" -> 4 names).
Status ExpandRanges(const std::string& pattern, std::vector<std::string>& out) {
  const size_t open = pattern.find('[');
  if (open == std::string::npos) {
    out.push_back(pattern);
    return Ok();
  }
  const size_t close = pattern.find(']');
  if (close == std::string::npos || close < open) {
    return Err(ErrorCode::kInvalidArgument, "unbalanced '[' in host pattern '" + pattern + "'");
  }
  SP_ASSIGN_OR_RETURN(std::vector<std::string> values, RangeValues(pattern.substr(open + 1, close - open - 1)));
  for (const std::string& v : values) {
    SP_TRY(ExpandRanges(pattern.substr(0, open) + v + pattern.substr(close + 1), out));
    if (out.size() > kMaxHostsPerPattern) {
      return Err(ErrorCode::kInvalidArgument, "host pattern '" + pattern + "' expands to too many hosts");
    }
  }
  return Ok();
}

}  // namespace

Result<ExpandedHosts> ExpandHostPattern(const std::string& text) {
  const HostPattern hp = SplitHostPort(text);
  ExpandedHosts out{{}, hp.port};
  SP_TRY(ExpandRanges(hp.pattern, out.names));
  for (const std::string& n : out.names) {
    if (n.empty()) return Err(ErrorCode::kInvalidArgument, "empty host name");
  }
  return out;
}

}  // namespace sp::inventory::ansible_internal
