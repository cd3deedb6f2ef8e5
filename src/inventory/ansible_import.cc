#include "inventory/ansible_import.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <regex>
#include <set>
#include <string_view>
#include <tuple>

#include "core/file.h"
#include "core/subprocess.h"
#include "core/text.h"

namespace sp::inventory {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Variables with where they were set.

// A variable's value and where it was set ("hosts.ini:12", "x.py --list:
// /_meta/hostvars/web1"), so that an error found after merging still points
// at the line that set the value.
struct Var {
  json value;
  std::string where;
};
using VarMap = std::map<std::string, Var>;

Error Invalid(const std::string& where, const std::string& what) {
  return Error{ErrorCode::kInvalidArgument, where + ": " + what};
}

std::string At(const std::string& file, int line) { return file + ":" + std::to_string(line); }

// Ansible merges variable sets key by key ("replace" hash behaviour): a later
// set's value wins whole, dictionaries are not merged.
void Merge(VarMap& into, const VarMap& from) {
  for (const auto& [k, v] : from) into[k] = v;
}

std::string JsonTypeName(const json& j) { return j.type_name(); }

// Python's str.strip() for ASCII whitespace.
std::string_view PyStrip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (extra < 0 || s.size() - i <= static_cast<size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

// Python's \w for one byte: ASCII letters, digits, '_', and (approximately)
// every byte of a multi-byte UTF-8 character.
bool IsWordByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || u >= 0x80;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit); }

// ---------------------------------------------------------------------------
// Python literals (INI values).

// Ansible types INI values with Python's ast.literal_eval and keeps the text
// when that fails: 5 is a number, '5' and "5" (quotes survive only in
// [group:vars]) are text, [1, 2] a list, True a boolean, while 01, 10.0.0.1
// and yes stay text. This parser accepts that subset of Python's literal
// grammar; what JSON cannot hold (complex numbers, sets, integers beyond 64
// bits, f-strings) is reported as "not a literal", so it stays text too.
class PyLiteral {
 public:
  static std::optional<json> Parse(std::string_view text) {
    PyLiteral p(text);
    return p.Top();
  }

 private:
  explicit PyLiteral(std::string_view s) : s_(s) {}

  static constexpr int kMaxDepth = 64;

  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek(size_t ahead = 0) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0'; }

  // Blanks and a trailing '#' comment, as Python's tokenizer skips them.
  void SkipSpace() {
    while (!AtEnd()) {
      const char c = Peek();
      if (c == ' ' || c == '\t' || c == '\f' || c == '\n' || c == '\r') {
        ++i_;
      } else if (c == '#') {
        i_ = s_.size();
      } else {
        break;
      }
    }
  }

  // An expression list: "1" is 1, "1, 2" and "1," are tuples (JSON lists).
  std::optional<json> Top() {
    std::vector<json> items;
    bool comma = false;
    if (!Items('\0', items, comma) || items.empty()) return std::nullopt;
    if (!comma) return items.front();
    return json(items);
  }

  // Comma-separated expressions up to `close` ('\0': the end of the text),
  // which is consumed. A trailing comma is allowed.
  bool Items(char close, std::vector<json>& out, bool& saw_comma) {
    for (;;) {
      SkipSpace();
      if (close == '\0' ? AtEnd() : Peek() == close) break;
      std::optional<json> v = Expr();
      if (!v) return false;
      out.push_back(std::move(*v));
      SkipSpace();
      if (Peek() == ',' && !AtEnd()) {
        ++i_;
        saw_comma = true;
        continue;
      }
      if (close == '\0' ? !AtEnd() : Peek() != close) return false;
      break;
    }
    if (close != '\0') ++i_;
    return true;
  }

  std::optional<json> Expr() {
    if (++depth_ > kMaxDepth) return std::nullopt;
    std::optional<json> v = Unary();
    --depth_;
    return v;
  }

  // literal_eval allows a sign only directly on a number: -5, + 1.5.
  std::optional<json> Unary() {
    SkipSpace();
    const char c = Peek();
    if (c != '-' && c != '+') return Atom();
    ++i_;
    SkipSpace();
    if (!IsDigit(Peek()) && !(Peek() == '.' && IsDigit(Peek(1)))) return std::nullopt;
    std::optional<json> n = Number();
    if (!n || c == '+') return n;
    if (n->is_number_float()) return json(-n->get<double>());
    if (n->is_number_unsigned()) {
      const uint64_t u = n->get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return std::nullopt;
      return json(static_cast<int64_t>(0 - u));
    }
    return json(-n->get<int64_t>());
  }

  std::optional<json> Atom() {
    SkipSpace();
    const char c = Peek();
    if (c == '[') return List();
    if (c == '(') return Tuple();
    if (c == '{') return Dict();
    if (c == '\'' || c == '"') return Strings();
    if (IsDigit(c) || (c == '.' && IsDigit(Peek(1)))) return Number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') return NameOrPrefixedString();
    return std::nullopt;
  }

  std::optional<json> List() {
    ++i_;
    std::vector<json> items;
    bool comma = false;
    if (!Items(']', items, comma)) return std::nullopt;
    return json(items);
  }

  // "()" is an empty tuple, "(x)" just x, "(x,)" and "(x, y)" tuples.
  std::optional<json> Tuple() {
    ++i_;
    std::vector<json> items;
    bool comma = false;
    if (!Items(')', items, comma)) return std::nullopt;
    if (items.size() == 1 && !comma) return items.front();
    return json(items);
  }

  // A dict; its keys as json.dumps writes them (True -> "true", 1 -> "1").
  // "{1, 2}" is a set, which JSON cannot hold.
  std::optional<json> Dict() {
    ++i_;
    json out = json::object();
    for (;;) {
      SkipSpace();
      if (Peek() == '}') break;
      std::optional<json> key = Expr();
      SkipSpace();
      if (!key || Peek() != ':') return std::nullopt;
      ++i_;
      std::optional<json> value = Expr();
      std::optional<std::string> name = KeyText(key);
      if (!value || !name) return std::nullopt;
      out[*name] = std::move(*value);
      SkipSpace();
      if (Peek() == ',') {
        ++i_;
        continue;
      }
      if (Peek() != '}') return std::nullopt;
      break;
    }
    ++i_;
    return out;
  }

  static std::optional<std::string> KeyText(const std::optional<json>& key) {
    if (!key) return std::nullopt;
    if (key->is_string()) return key->get<std::string>();
    if (key->is_boolean()) return key->get<bool>() ? "true" : "false";
    if (key->is_null()) return "null";
    if (key->is_number_integer()) return key->dump();
    return std::nullopt;
  }

  // Python number literals: 10, 0x1f, 0o17, 0b101, 1_000, 1.5, .5, 5., 1e3.
  // 007 is a syntax error in Python 3 (so "007" stays text); 5j is complex.
  std::optional<json> Number() {
    const size_t start = i_;
    const char p = static_cast<char>(std::tolower(static_cast<unsigned char>(Peek(1))));
    if (Peek() == '0' && (p == 'x' || p == 'o' || p == 'b')) {
      const int base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
      i_ += 2;
      if (Peek() == '_') ++i_;
      if (!Digits(base)) return std::nullopt;
      return FinishInt(s_.substr(start + 2, i_ - start - 2), base);
    }
    bool is_float = false;
    if (IsDigit(Peek())) Digits(10);
    const size_t int_end = i_;
    if (Peek() == '.') {
      ++i_;
      is_float = true;
      if (IsDigit(Peek())) Digits(10);
    }
    if ((Peek() == 'e' || Peek() == 'E') &&
        (IsDigit(Peek(1)) || ((Peek(1) == '+' || Peek(1) == '-') && IsDigit(Peek(2))))) {
      i_ += IsDigit(Peek(1)) ? 1 : 2;
      Digits(10);
      is_float = true;
    }
    if (!is_float) {
      const std::string digits = WithoutUnderscores(s_.substr(start, int_end - start));
      if (digits.size() > 1 && digits[0] == '0' && digits.find_first_not_of('0') != std::string::npos) {
        return std::nullopt;
      }
      return FinishInt(s_.substr(start, int_end - start), 10);
    }
    if (!EndOfNumber()) return std::nullopt;
    const std::string text = WithoutUnderscores(s_.substr(start, i_ - start));
    double d = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), d);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
    return json(d);
  }

  // (_?digit)* after a first digit of `base`; false when none.
  bool Digits(int base) {
    auto is = [base](char c) {
      const int v = IsDigit(c) ? c - '0' : std::isxdigit(static_cast<unsigned char>(c)) ? 10 + (std::tolower(c) - 'a') : 99;
      return v < base;
    };
    if (!is(Peek())) return false;
    ++i_;
    for (;;) {
      if (is(Peek())) {
        ++i_;
      } else if (Peek() == '_' && is(Peek(1))) {
        i_ += 2;
      } else {
        return true;
      }
    }
  }

  // A number must not run into a letter or digit ("1abc", "0x1g", "5j").
  bool EndOfNumber() const { return AtEnd() || !(IsWordByte(Peek()) || Peek() == '.'); }

  std::optional<json> FinishInt(std::string_view digits_text, int base) {
    if (!AtEnd() && (IsWordByte(Peek()))) return std::nullopt;
    const std::string digits = WithoutUnderscores(digits_text);
    uint64_t v = 0;
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return json(static_cast<int64_t>(v));
    return json(v);
  }

  static std::string WithoutUnderscores(std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != '_') out += c;
    }
    return out;
  }

  // True, False, None, or a prefixed string (r'..', b"..", u'..').
  std::optional<json> NameOrPrefixedString() {
    size_t j = i_;
    while (j < s_.size() && IsWordByte(s_[j])) ++j;
    const std::string_view name = s_.substr(i_, j - i_);
    if (j < s_.size() && (s_[j] == '\'' || s_[j] == '"') && name.size() <= 2) return Strings();
    i_ = j;
    if (name == "True") return json(true);
    if (name == "False") return json(false);
    if (name == "None") return json(nullptr);
    return std::nullopt;
  }

  // One or more adjacent string literals, concatenated ('a' "b" -> "ab").
  std::optional<json> Strings() {
    std::string out;
    std::optional<bool> bytes;
    for (;;) {
      bool is_bytes = false;
      std::optional<std::string> s = OneString(is_bytes);
      if (!s || (bytes && *bytes != is_bytes)) return std::nullopt;
      bytes = is_bytes;
      out += *s;
      SkipSpace();
      size_t j = i_;
      while (j < s_.size() && j - i_ < 2 && std::isalpha(static_cast<unsigned char>(s_[j]))) ++j;
      if (j >= s_.size() || (s_[j] != '\'' && s_[j] != '"')) break;
    }
    return json(out);
  }

  std::optional<std::string> OneString(bool& is_bytes) {
    std::string prefix;
    while (!AtEnd() && std::isalpha(static_cast<unsigned char>(Peek()))) {
      prefix += static_cast<char>(std::tolower(static_cast<unsigned char>(Peek())));
      ++i_;
    }
    static const std::set<std::string> kPrefixes = {"", "r", "u", "b", "br", "rb"};
    if (!kPrefixes.count(prefix)) return std::nullopt;  // f-strings are not literals.
    const bool raw = prefix.find('r') != std::string::npos;
    is_bytes = prefix.find('b') != std::string::npos;
    const char q = Peek();
    if (q != '\'' && q != '"') return std::nullopt;
    const bool triple = Peek(1) == q && Peek(2) == q;
    i_ += triple ? 3 : 1;
    std::string out;
    for (;;) {
      if (AtEnd()) return std::nullopt;
      const char c = Peek();
      if (c == q && (!triple || (Peek(1) == q && Peek(2) == q))) {
        i_ += triple ? 3 : 1;
        return out;
      }
      if (c == '\n' && !triple) return std::nullopt;
      if (is_bytes && static_cast<unsigned char>(c) >= 0x80) return std::nullopt;
      ++i_;
      if (c != '\\') {
        out += c;
      } else if (raw) {
        // A raw string keeps the backslash; it still cannot end the string.
        out += c;
        if (!AtEnd()) out += s_[i_++];
      } else if (!Escape(is_bytes, out)) {
        return std::nullopt;
      }
    }
  }

  // The character after a backslash (already consumed) in a non-raw string.
  bool Escape(bool is_bytes, std::string& out) {
    if (AtEnd()) return false;
    const char c = s_[i_++];
    switch (c) {
      case '\n': return true;
      case '\\': case '\'': case '"': out += c; return true;
      case 'a': out += '\a'; return true;
      case 'b': out += '\b'; return true;
      case 'f': out += '\f'; return true;
      case 'n': out += '\n'; return true;
      case 'r': out += '\r'; return true;
      case 't': out += '\t'; return true;
      case 'v': out += '\v'; return true;
      case 'x': return HexEscape(2, is_bytes, out);
      case 'u': if (!is_bytes) return HexEscape(4, false, out); break;
      case 'U': if (!is_bytes) return HexEscape(8, false, out); break;
      case 'N': if (!is_bytes) return false; break;  // \N{name}: not supported.
      default:
        if (c >= '0' && c <= '7') {
          uint32_t v = c - '0';
          for (int k = 0; k < 2 && Peek() >= '0' && Peek() <= '7'; ++k) v = v * 8 + (s_[i_++] - '0');
          return AppendCodePoint(v, is_bytes, out);
        }
    }
    out += '\\';  // Unknown escapes keep their backslash.
    out += c;
    return true;
  }

  bool HexEscape(int n, bool is_bytes, std::string& out) {
    if (i_ + n > s_.size()) return false;
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      const char h = s_[i_ + k];
      if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
      v = v * 16 + (IsDigit(h) ? h - '0' : 10 + std::tolower(h) - 'a');
    }
    i_ += n;
    return AppendCodePoint(v, is_bytes, out);
  }

  // Bytes above 0x7f would be decoded by Ansible's to_text with surrogate
  // escapes: not representable, so such a literal stays text.
  static bool AppendCodePoint(uint32_t v, bool is_bytes, std::string& out) {
    if ((is_bytes && v > 0x7f) || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
    if (v < 0x80) {
      out += static_cast<char>(v);
    } else if (v < 0x800) {
      out += static_cast<char>(0xC0 | (v >> 6));
      out += static_cast<char>(0x80 | (v & 0x3F));
    } else if (v < 0x10000) {
      out += static_cast<char>(0xE0 | (v >> 12));
      out += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (v & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (v >> 18));
      out += static_cast<char>(0x80 | ((v >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (v & 0x3F));
    }
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
};

// An INI value as Ansible types it: a Python literal, else the text itself.
json IniValue(std::string_view text) {
  // literal_eval strips leading blanks (Python 3.10+); the rest of the text is
  // kept as written when it is not a literal.
  const size_t b = text.find_first_not_of(" \t");
  std::optional<json> v = PyLiteral::Parse(b == std::string_view::npos ? "" : text.substr(b));
  return v ? std::move(*v) : json(std::string(text));
}

// ---------------------------------------------------------------------------
// INI host lines: shlex and host patterns.

// Python's shlex.split(line, comments=True) (POSIX mode), which Ansible uses
// for INI host lines: quotes group words and are removed, '#' starts a
// comment even inside a word, a backslash escapes any character outside
// quotes but only \" and \\ inside double quotes, nothing in single quotes.
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

struct ExpandedHosts {
  std::vector<std::string> names;
  std::optional<int64_t> port;
};

// A host pattern of an INI line or a YAML `hosts` key: names and port.
Result<ExpandedHosts> ExpandHostPattern(const std::string& text) {
  const HostPattern hp = SplitHostPort(text);
  ExpandedHosts out{{}, hp.port};
  SP_TRY(ExpandRanges(hp.pattern, out.names));
  for (const std::string& n : out.names) {
    if (n.empty()) return Err(ErrorCode::kInvalidArgument, "empty host name");
  }
  return out;
}

// ---------------------------------------------------------------------------
// YAML values.

// How plain (unquoted) scalars are typed. Ansible reads YAML with PyYAML,
// which follows YAML 1.1: yes/no/on/off are booleans, 010 is octal, 1:30 is
// 90, 1e3 (no '.', no exponent sign) stays text. Ansible tries json.loads
// before YAML, so a file that is valid JSON follows JSON's rules.
enum class ScalarRules { kYaml11, kJson };

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Base-60 "1:30:05" as PyYAML computes it (digits most significant first).
double Sexagesimal(const std::string& s) {
  double v = 0;
  for (const std::string& part : Split(s, ':')) v = v * 60 + std::stod(part);
  return v;
}

// The value of a scalar matching PyYAML's int pattern; text when it does not
// fit in 64 bits.
json Yaml11Int(const std::string& text) {
  std::string s;
  for (char c : text) {
    if (c != '_') s += c;
  }
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  int base = 10;
  if (s.find(':') != std::string::npos) {
    const double v = Sexagesimal(s);
    return json(static_cast<int64_t>(negative ? -v : v));
  }
  if (StartsWith(s, "0b")) {
    base = 2;
    s.erase(0, 2);
  } else if (StartsWith(s, "0x")) {
    base = 16;
    s.erase(0, 2);
  } else if (s.size() > 1 && s[0] == '0') {
    base = 8;
  }
  if (s.empty()) return json(0);
  uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (r.ec != std::errc() || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return json(text);
  return json(negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v));
}

json Yaml11Float(const std::string& text) {
  std::string s;
  for (char c : text) {
    if (c != '_') s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  double sign = 1;
  if (s[0] == '-' || s[0] == '+') {
    sign = s[0] == '-' ? -1 : 1;
    s.erase(0, 1);
  }
  if (s == ".inf") return json(sign * std::numeric_limits<double>::infinity());
  if (s == ".nan") return json(std::numeric_limits<double>::quiet_NaN());
  if (s.find(':') != std::string::npos) return json(sign * Sexagesimal(s));
  double v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return json(sign * v);
}

// PyYAML's implicit resolvers for plain scalars (yaml/resolver.py).
json ResolveYaml11(const std::string& s) {
  static const std::set<std::string> kTrue = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  static const std::set<std::string> kFalse = {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"};
  static const std::regex kFloat(
      R"(^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)"
      R"(|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$)");
  static const std::regex kInt(
      R"(^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)"
      R"(|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return json(nullptr);
  if (kTrue.count(s)) return json(true);
  if (kFalse.count(s)) return json(false);
  if (s.size() > 64) return json(s);
  if (std::regex_match(s, kFloat)) return Yaml11Float(s);
  if (std::regex_match(s, kInt)) return Yaml11Int(s);
  return json(s);  // Timestamps stay text: Ansible prints a date as written.
}

json ResolvePlain(const std::string& s, ScalarRules rules) {
  if (rules == ScalarRules::kYaml11) return ResolveYaml11(s);
  json v = json::parse(s, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() || v.is_structured() ? json(s) : v;
}

int LineOf(const YAML::Node& n, int fallback) {
  const YAML::Mark m = n.Mark();
  return m.is_null() ? fallback : m.line + 1;
}

// Reads YAML (or JSON) values of one file into JSON, reporting
// "<file>:<line>: <what>".
class YamlReader {
 public:
  YamlReader(std::string file, ScalarRules rules) : file_(std::move(file)), rules_(rules) {}

  const std::string& file() const { return file_; }
  Error Fail(int line, const std::string& what) const { return Invalid(At(file_, line), what); }

  // One document; a null root for an empty file. Never throws.
  Result<YAML::Node> Load(const std::string& text) const {
    if (!IsValidUtf8(text)) return Err(Fail(1, "the file is not valid UTF-8"));
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      return Err(Fail(e.mark.is_null() ? 1 : e.mark.line + 1, "YAML syntax error: " + e.msg));
    }
    if (docs.size() > 1) return Err(Fail(LineOf(docs[1], 1), "expected one YAML document, found another one"));
    return docs.empty() ? YAML::Node() : docs[0];
  }

  // A scalar's value: quoted and !!str/!unsafe scalars are text, plain ones
  // typed by the rules.
  Result<json> Scalar(const YAML::Node& n, int line) const {
    if (n.IsNull()) return json(nullptr);
    const std::string& tag = n.Tag();
    if (tag == "?") return ResolvePlain(n.Scalar(), rules_);
    if (tag == "!" || tag == "tag:yaml.org,2002:str" || tag == "!unsafe") return json(n.Scalar());
    if (StartsWith(tag, "tag:yaml.org,2002:")) return ResolvePlain(n.Scalar(), ScalarRules::kYaml11);
    if (tag == "!vault" || tag == "!vault-encrypted") {
      return Err(Fail(line, "vault-encrypted values are not supported; decrypt them first"));
    }
    return Err(Fail(line, "unsupported YAML tag '" + tag + "'"));
  }

  // A mapping key as a string: a key like 8080 or yes becomes "8080" or
  // "true", as Ansible's JSON output writes it.
  Result<std::string> Key(const YAML::Node& k, int line) const {
    if (!k.IsScalar() && !k.IsNull()) return Err(Fail(line, "mapping keys must be scalars"));
    SP_ASSIGN_OR_RETURN(json v, Scalar(k, line));
    return v.is_string() ? v.get<std::string>() : v.dump();
  }

  // A key that names something (a host pattern, a group): must be text.
  Result<std::string> NameKey(const YAML::Node& k, int line, const std::string& what) const {
    if (k.IsScalar() || k.IsNull()) {
      SP_ASSIGN_OR_RETURN(json v, Scalar(k, line));
      if (v.is_string()) return v.get<std::string>();
    }
    return Err(Fail(line, what + " must be a string; quote '" + (k.IsScalar() ? k.Scalar() : std::string("~")) + "'"));
  }

  // Mapping entries in document order with their key lines; duplicate keys
  // are errors (Ansible warns and keeps the last one).
  struct Entry {
    std::string key;
    YAML::Node key_node, value;
    int line;
  };
  Result<std::vector<Entry>> Entries(const YAML::Node& map, int line) const {
    std::vector<Entry> out;
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const int key_line = LineOf(it->first, line);
      SP_ASSIGN_OR_RETURN(std::string key, Key(it->first, key_line));
      auto [pos, inserted] = seen.emplace(key, key_line);
      if (!inserted) {
        return Err(Fail(key_line, "duplicate key '" + key + "' (first on line " + std::to_string(pos->second) + ")"));
      }
      out.push_back(Entry{key, it->first, it->second, key_line});
    }
    return out;
  }

  // A mapping of variables, each with the line that set it ("<<" merged
  // ones: the line of the merge key).
  Result<VarMap> Vars(const YAML::Node& map, int line) const {
    SP_ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(map, line));
    VarMap vars, merged;
    for (const Entry& e : entries) {
      SP_ASSIGN_OR_RETURN(json v, ToJson(e.value, e.line, 1));
      if (!IsMergeKey(e)) {
        vars[e.key] = Var{std::move(v), At(file_, e.line)};
        continue;
      }
      json keys = json::object();
      SP_TRY(MergeInto(keys, v, e.line));
      for (auto& [k, val] : keys.items()) merged.try_emplace(k, Var{val, At(file_, e.line)});
    }
    for (auto& [k, v] : merged) vars.try_emplace(k, std::move(v));
    return vars;
  }

  Result<json> ToJson(const YAML::Node& n, int line, int depth = 0) const {
    if (depth > 64) return Err(Fail(line, "nested too deeply"));
    if (n.IsSequence()) {
      json out = json::array();
      for (const YAML::Node& item : n) {
        SP_ASSIGN_OR_RETURN(json v, ToJson(item, LineOf(item, line), depth + 1));
        out.push_back(std::move(v));
      }
      return out;
    }
    if (n.IsMap()) return MapToJson(n, line, depth);
    return Scalar(n, line);
  }

 private:
  // A mapping; "<<" merge keys (YAML 1.1, which PyYAML honours) add the keys
  // of the merged mappings that the mapping does not set itself, earlier
  // merged mappings winning over later ones.
  Result<json> MapToJson(const YAML::Node& n, int line, int depth) const {
    SP_ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(n, line));
    json out = json::object(), merged = json::object();
    for (const Entry& e : entries) {
      SP_ASSIGN_OR_RETURN(json v, ToJson(e.value, e.line, depth + 1));
      if (IsMergeKey(e)) {
        SP_TRY(MergeInto(merged, v, e.line));
      } else {
        out[e.key] = std::move(v);
      }
    }
    for (auto& [k, v] : merged.items()) {
      if (!out.contains(k)) out[k] = v;
    }
    return out;
  }

  bool IsMergeKey(const Entry& e) const {
    return e.key == "<<" && e.key_node.Tag() == "?" && rules_ == ScalarRules::kYaml11;
  }

  Status MergeInto(json& merged, const json& v, int line) const {
    const std::vector<json> maps = v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v};
    for (const json& m : maps) {
      if (!m.is_object()) return Err(Fail(line, "a '<<' merge key needs a mapping or a list of mappings"));
      for (auto& [k, val] : m.items()) {
        if (!merged.contains(k)) merged[k] = val;
      }
    }
    return Ok();
  }

  std::string file_;
  ScalarRules rules_;
};

ScalarRules RulesFor(const std::string& text) {
  return json::accept(text) ? ScalarRules::kJson : ScalarRules::kYaml11;
}

// ---------------------------------------------------------------------------
// group_vars/ and host_vars/ files.

// A vars file: a mapping of variables, or nothing (an empty file).
Result<VarMap> LoadVarsFile(const std::string& path) {
  SP_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  YamlReader reader(path, RulesFor(text));
  SP_ASSIGN_OR_RETURN(YAML::Node root, reader.Load(text));
  VarMap vars;
  if (!root.IsDefined() || root.IsNull()) return vars;
  if (!root.IsMap()) return Err(reader.Fail(LineOf(root, 1), "expected a mapping of variables"));
  try {
    SP_ASSIGN_OR_RETURN(vars, reader.Vars(root, 1));
  } catch (const YAML::Exception& e) {
    return Err(reader.Fail(1, std::string("YAML error: ") + e.what()));
  }
  return vars;
}

bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

bool IsVarsExtension(const std::string& ext) { return ext.empty() || ext == ".yml" || ext == ".yaml" || ext == ".json"; }

// Files of a vars directory as Ansible's DataLoader lists them: sorted by
// name, hidden files and backups (~) skipped, subdirectories without an
// extension searched recursively.
Status ListVarsDir(const fs::path& dir, std::vector<fs::path>& out) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return Err(ErrorCode::kUnavailable, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (name.empty() || name[0] == '.' || name.back() == '~') continue;
    const fs::path p = dir / name;
    const std::string ext = fs::path(name).extension().string();
    if (IsDir(p)) {
      if (ext.empty()) SP_TRY(ListVarsDir(p, out));
    } else if (IsVarsExtension(ext)) {
      out.push_back(p);
    }
  }
  return Ok();
}

// The variables of one group or host from <base>/<subdir>/: the first of
// <name> (a file, or a directory of files), <name>.yml, <name>.yaml,
// <name>.json that exists. Later files of a directory override earlier ones.
class VarsFiles {
 public:
  explicit VarsFiles(std::string base_dir) : base_(std::move(base_dir)) {}

  Result<VarMap> For(const std::string& subdir, const std::string& name) {
    const std::string key = subdir + "/" + name;
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    SP_ASSIGN_OR_RETURN(VarMap vars, Load(subdir, name));
    cache_[key] = vars;
    return vars;
  }

 private:
  Result<VarMap> Load(const std::string& subdir, const std::string& name) const {
    VarMap vars;
    // Like Ansible, skip names that are absolute paths ("chroot" hosts).
    if (base_.empty() || name.empty() || name[0] == '/' || !IsDir(fs::path(base_) / subdir)) return vars;
    std::vector<fs::path> files;
    for (const char* ext : {"", ".yml", ".yaml", ".json"}) {
      const fs::path p = fs::path(base_) / subdir / (name + ext);
      if (!Exists(p)) continue;
      if (IsDir(p)) {
        SP_TRY(ListVarsDir(p, files));
      } else {
        files.push_back(p);
      }
      break;
    }
    for (const fs::path& f : files) {
      SP_ASSIGN_OR_RETURN(VarMap file_vars, LoadVarsFile(f.string()));
      Merge(vars, file_vars);
    }
    return vars;
  }

  std::string base_;
  std::map<std::string, VarMap> cache_;
};

// ---------------------------------------------------------------------------
// The inventory model shared by the three formats.

// Groups and hosts as Ansible's InventoryData holds them, with its rules:
// "all" and "ungrouped" always exist, a group without parent becomes a child
// of "all", a host in no group but "all" is in "ungrouped", and group edges
// never form a loop.
class Model {
 public:
  // `source` names the inventory in errors that have no better place.
  explicit Model(std::string source) : source_(std::move(source)) {
    groups_["all"];
    groups_["ungrouped"];
    Link("all", "ungrouped");
  }

  bool HasGroup(const std::string& name) const { return groups_.count(name) > 0; }
  void AddGroup(const std::string& name) { groups_[name]; }

  // kInvalidArgument when the edge would make a loop; the caller adds where.
  Status AddChild(const std::string& parent, const std::string& child) {
    Group& p = groups_.at(parent);
    if (std::find(p.children.begin(), p.children.end(), child) != p.children.end()) return Ok();
    if (parent == child) return Err(ErrorCode::kInvalidArgument, "group '" + parent + "' cannot be its own child");
    if (IsDescendant(child, parent)) {
      return Err(ErrorCode::kInvalidArgument, "adding group '" + child + "' as a child of '" + parent +
                                                  "' makes a loop ('" + parent + "' is already inside '" + child + "')");
    }
    Link(parent, child);
    return Ok();
  }

  // Adds the host (a port sets ansible_port, only when the host is new, as
  // in Ansible) and puts it in `group`.
  void AddHost(const std::string& name, const std::string& group, std::optional<int64_t> port,
               const std::string& where) {
    auto [it, is_new] = hosts_.try_emplace(name);
    if (is_new && port) it->second.vars["ansible_port"] = Var{json(*port), where};
    std::vector<std::string>& in = it->second.groups;
    if (std::find(in.begin(), in.end(), group) == in.end()) in.push_back(group);
  }

  void SetHostVar(const std::string& host, const std::string& key, json value, const std::string& where) {
    hosts_.at(host).vars[key] = Var{std::move(value), where};
  }

  // ansible_group_priority set inline is the group's priority (its place
  // among groups of the same depth), not a variable; kInvalidArgument when it
  // is not an integer (the caller adds where).
  Status SetGroupVar(const std::string& group, const std::string& key, json value, const std::string& where) {
    if (key != "ansible_group_priority") {
      groups_.at(group).vars[key] = Var{std::move(value), where};
      return Ok();
    }
    std::optional<int64_t> p;
    if (value.is_number_integer()) p = value.get<int64_t>();
    if (value.is_string()) {
      const std::string s = Trim(value.get<std::string>());
      int64_t v = 0;
      const bool neg = !s.empty() && s[0] == '-';
      const auto r = std::from_chars(s.data() + (neg ? 1 : 0), s.data() + s.size(), v);
      if (!s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size()) p = neg ? -v : v;
    }
    if (!p) return Err(ErrorCode::kInvalidArgument, "ansible_group_priority of group '" + group + "' must be an integer");
    groups_.at(group).priority = *p;
    return Ok();
  }

  Result<ImportedInventory> Finish(const std::string& base_dir) {
    SP_TRY(Reconcile());
    ComputeDepths();
    VarsFiles files(base_dir);
    ImportedInventory inv;
    for (const auto& [name, host] : hosts_) {
      SP_ASSIGN_OR_RETURN(ImportedHost h, Resolve(name, host, files));
      inv.hosts.push_back(std::move(h));
    }
    return inv;  // hosts_ is ordered: sorted by name.
  }

 private:
  struct Group {
    std::vector<std::string> children, parents;
    VarMap vars;
    int64_t priority = 1;
    int depth = 0;
  };
  struct Host {
    std::vector<std::string> groups;  // Direct groups.
    VarMap vars;
  };

  void Link(const std::string& parent, const std::string& child) {
    groups_[parent].children.push_back(child);
    groups_[child].parents.push_back(parent);
  }

  bool IsDescendant(const std::string& from, const std::string& target) const {
    std::vector<std::string> stack{from};
    std::set<std::string> seen;
    while (!stack.empty()) {
      const std::string g = stack.back();
      stack.pop_back();
      if (g == target) return true;
      if (!seen.insert(g).second) continue;
      for (const auto& c : groups_.at(g).children) stack.push_back(c);
    }
    return false;
  }

  // Ansible's reconcile_inventory.
  Status Reconcile() {
    for (auto& [name, g] : groups_) {
      if (name == "all" || !g.parents.empty()) continue;
      if (Status s = AddChild("all", name); !s) return Err(Invalid(source_, s.error().message));
    }
    for (auto& [name, host] : hosts_) {
      const std::set<std::string> groups = GroupsOf(host);
      auto& direct = host.groups;
      const bool only_top = std::all_of(groups.begin(), groups.end(),
                                        [](const std::string& g) { return g == "all" || g == "ungrouped"; });
      if (groups.count("ungrouped") && !only_top) {
        direct.erase(std::remove(direct.begin(), direct.end(), "ungrouped"), direct.end());
      } else if (!groups.count("ungrouped") && only_top) {
        direct.push_back("ungrouped");
      }
    }
    return Ok();
  }

  // A group's depth is its longest distance from "all": a child is always
  // deeper than each of its parents, which is what makes child group vars
  // win over parent group vars.
  void ComputeDepths() {
    std::map<std::string, int> memo;
    std::function<int(const std::string&)> depth = [&](const std::string& name) -> int {
      if (auto it = memo.find(name); it != memo.end()) return it->second;
      int d = 0;
      for (const auto& p : groups_.at(name).parents) d = std::max(d, depth(p) + 1);
      return memo[name] = d;
    };
    for (auto& [name, g] : groups_) g.depth = depth(name);
  }

  // The host's groups: its direct groups and all their ancestors.
  std::set<std::string> GroupsOf(const Host& host) const {
    std::set<std::string> out;
    std::vector<std::string> stack(host.groups.begin(), host.groups.end());
    while (!stack.empty()) {
      const std::string g = stack.back();
      stack.pop_back();
      if (!out.insert(g).second) continue;
      for (const auto& p : groups_.at(g).parents) stack.push_back(p);
    }
    return out;
  }

  // Ansible's variable precedence for inventory variables (lowest first):
  // "all" group vars, other groups' vars by (depth, priority, name),
  // group_vars/all, group_vars/<group> in the same order, host vars,
  // host_vars/<host>.
  Result<ImportedHost> Resolve(const std::string& name, const Host& host, VarsFiles& files) const {
    std::vector<std::string> ordered;
    for (const std::string& g : GroupsOf(host)) {
      if (g != "all") ordered.push_back(g);
    }
    std::sort(ordered.begin(), ordered.end(), [this](const std::string& a, const std::string& b) {
      const Group &ga = groups_.at(a), &gb = groups_.at(b);
      return std::tie(ga.depth, ga.priority, a) < std::tie(gb.depth, gb.priority, b);
    });
    VarMap vars = groups_.at("all").vars;
    for (const auto& g : ordered) Merge(vars, groups_.at(g).vars);
    SP_ASSIGN_OR_RETURN(VarMap all_file, files.For("group_vars", "all"));
    Merge(vars, all_file);
    for (const auto& g : ordered) {
      SP_ASSIGN_OR_RETURN(VarMap group_file, files.For("group_vars", g));
      Merge(vars, group_file);
    }
    Merge(vars, host.vars);
    SP_ASSIGN_OR_RETURN(VarMap host_file, files.For("host_vars", name));
    Merge(vars, host_file);
    return MakeHost(name, ordered, vars);
  }

  static Result<ImportedHost> MakeHost(const std::string& name, const std::vector<std::string>& groups,
                                       const VarMap& vars);

  std::string source_;
  std::map<std::string, Group> groups_;
  std::map<std::string, Host> hosts_;
};

// The value of the connection variable Ansible would use: like its config
// manager, the last name of `names` that is set (not null) wins.
const Var* ConnectionVar(const VarMap& vars, std::initializer_list<const char*> names) {
  const Var* found = nullptr;
  for (const char* n : names) {
    auto it = vars.find(n);
    if (it != vars.end() && !it->second.value.is_null()) found = &it->second;
  }
  return found;
}

Result<ImportedHost> Model::MakeHost(const std::string& name, const std::vector<std::string>& groups,
                                     const VarMap& vars) {
  ImportedHost h;
  h.name = name;
  h.address = name;
  for (const auto& g : groups) {
    if (g != "ungrouped") h.tags[g] = "true";
  }
  for (const auto& [k, v] : vars) h.vars[k] = v.value;
  auto bad = [&](const Var& v, const std::string& key, const std::string& what) {
    return Err(Invalid(v.where, "host '" + name + "': " + key + " " + what + ", got " + v.value.dump()));
  };
  if (const Var* v = ConnectionVar(vars, {"ansible_host", "ansible_ssh_host"})) {
    if (!v->value.is_string()) return bad(*v, "ansible_host", "must be a string");
    h.address = v->value.get<std::string>();
  }
  if (const Var* v = ConnectionVar(vars, {"ansible_user", "ansible_ssh_user"})) {
    if (!v->value.is_string()) return bad(*v, "ansible_user", "must be a string");
    h.ssh_user = v->value.get<std::string>();
  }
  if (const Var* v = ConnectionVar(vars, {"ansible_port", "ansible_ssh_port"})) {
    std::optional<int64_t> port;
    if (v->value.is_number_integer()) port = v->value.get<int64_t>();
    if (v->value.is_string() && AllDigits(v->value.get<std::string>()) && v->value.get<std::string>().size() <= 5) {
      port = std::stoi(v->value.get<std::string>());
    }
    if (!port || *port < 1 || *port > 65535) return bad(*v, "ansible_port", "must be a port number (1-65535)");
    h.ssh_port = static_cast<int>(*port);
  }
  return h;
}

// ---------------------------------------------------------------------------
// INI.

// "[name]" or "[name:kind]", optionally followed by a comment.
struct SectionHeader {
  std::string name, kind;
};
std::optional<SectionHeader> ParseSectionHeader(std::string_view line) {
  if (line.empty() || line[0] != '[') return std::nullopt;
  size_t i = 1;
  while (i < line.size() && line[i] != ':' && line[i] != ']' && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  SectionHeader h{std::string(line.substr(1, i - 1)), ""};
  if (h.name.empty()) return std::nullopt;
  if (i < line.size() && line[i] == ':') {
    const size_t start = ++i;
    while (i < line.size() && IsWordByte(line[i])) ++i;
    h.kind = std::string(line.substr(start, i - start));
    if (h.kind.empty()) return std::nullopt;
  }
  if (i >= line.size() || line[i] != ']') return std::nullopt;
  const std::string_view rest = PyStrip(line.substr(i + 1));
  if (!rest.empty() && rest[0] != '#') return std::nullopt;
  return h;
}

// A group name on a [group:children] line, optionally followed by a comment.
std::optional<std::string> ParseChildName(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] != ':' && line[i] != ']' && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  const std::string_view rest = PyStrip(line.substr(i));
  if (i == 0 || (!rest.empty() && rest[0] != '#')) return std::nullopt;
  return std::string(line.substr(0, i));
}

// Ansible's INI inventory plugin, line by line. A [group:vars] or a child
// named before its group is declared is kept pending, and an error at the
// end if the group never is.
class IniParser {
 public:
  IniParser(std::string file, Model& model) : file_(std::move(file)), model_(model) {}

  Status Parse(const std::string& text) {
    int line_no = 0;
    for (const std::string& raw : Split(text, '\n')) {
      line_ = ++line_no;
      const std::string_view line = PyStrip(raw);
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      if (!IsValidUtf8(line)) return Err(Fail("the line is not valid UTF-8"));
      SP_TRY(Line(line));
    }
    return FinishPending();
  }

 private:
  struct Pending {
    int line = 0;
    std::string kind;  // "vars" or "children".
    std::vector<std::string> parents;
  };

  Error Fail(const std::string& what) const {
    return Invalid(At(file_, line_), section_.empty() ? what : section_ + " " + what);
  }
  std::string Where() const { return At(file_, line_); }
  Status Wrap(Status s) const { return s ? s : Err(Fail(s.error().message)); }

  Status Line(std::string_view line) {
    if (std::optional<SectionHeader> h = ParseSectionHeader(line)) return Section(*h);
    if (line.front() == '[' && line.back() == ']') {
      section_.clear();
      return Err(Fail("invalid section header '" + std::string(line) +
                      "' (expected [group], [group:vars] or [group:children], without spaces)"));
    }
    if (kind_ == "vars") return VarLine(line);
    if (kind_ == "children") return ChildLine(line);
    return HostLine(line);
  }

  Status Section(const SectionHeader& h) {
    const std::string kind = h.kind.empty() ? "hosts" : h.kind;
    section_ = "[" + h.name + (h.kind.empty() ? "" : ":" + h.kind) + "]";
    if (kind != "hosts" && kind != "vars" && kind != "children") {
      return Err(Fail("has unknown type '" + kind + "' (expected vars or children)"));
    }
    // Group names are kept as written: Ansible 2.14 transforms invalid
    // characters only when TRANSFORM_INVALID_GROUP_CHARS asks it to (default
    // "never"); ToHostSpecs checks that they make valid tags.
    group_ = h.name;
    kind_ = kind;
    if (!model_.HasGroup(group_)) {
      // [g] or [g:children] declares a group; [g:vars] alone does not.
      if (kind == "vars" && !pending_.count(group_)) pending_[group_] = Pending{line_, "vars", {}};
      model_.AddGroup(group_);
    }
    if (kind != "vars" && pending_.count(group_)) {
      if (pending_[group_].kind == "children") return AddPendingChildren(group_);
      pending_.erase(group_);
    }
    return Ok();
  }

  Status AddPendingChildren(const std::string& group) {
    const std::vector<std::string> parents = pending_[group].parents;
    for (const std::string& parent : parents) {
      SP_TRY(Wrap(model_.AddChild(parent, group)));
      auto it = pending_.find(parent);
      if (it != pending_.end() && it->second.kind == "children") SP_TRY(AddPendingChildren(parent));
    }
    pending_.erase(group);
    return Ok();
  }

  Status HostLine(std::string_view line) {
    auto tokens = ShlexSplit(line);
    if (!tokens) return Err(Fail("cannot parse host line: " + tokens.error().message));
    if (tokens->empty() || PyStrip((*tokens)[0]).empty()) return Err(Fail("empty host name"));
    const std::string& pattern = (*tokens)[0];
    auto hosts = ExpandHostPattern(pattern);
    if (!hosts) return Err(Fail(hosts.error().message));
    if (PyStrip(pattern).back() == ':' && !hosts->port) {
      return Err(Fail("invalid host pattern '" + pattern + "': a trailing ':' must be followed by a port"));
    }
    for (const std::string& name : hosts->names) {
      if (PyStrip(name) == "---") return Err(Fail("host name '---' is a sign that this file is YAML, not INI"));
    }
    std::vector<std::pair<std::string, json>> vars;
    for (size_t i = 1; i < tokens->size(); ++i) {
      const std::string& t = (*tokens)[i];
      const size_t eq = t.find('=');
      if (eq == std::string::npos) return Err(Fail("expected key=value host variable, got '" + t + "'"));
      vars.emplace_back(t.substr(0, eq), IniValue(std::string_view(t).substr(eq + 1)));
    }
    for (const std::string& name : hosts->names) {
      model_.AddHost(name, group_, hosts->port, Where());
      for (const auto& [k, v] : vars) model_.SetHostVar(name, k, v, Where());
    }
    return Ok();
  }

  Status VarLine(std::string_view line) {
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Err(Fail("expected key=value, got '" + std::string(line) + "'"));
    const std::string key(PyStrip(line.substr(0, eq)));
    return Wrap(model_.SetGroupVar(group_, key, IniValue(PyStrip(line.substr(eq + 1))), Where()));
  }

  Status ChildLine(std::string_view line) {
    std::optional<std::string> child = ParseChildName(line);
    if (!child) return Err(Fail("expected a group name, got '" + std::string(line) + "'"));
    if (model_.HasGroup(*child)) return Wrap(model_.AddChild(group_, *child));
    pending_.try_emplace(*child, Pending{line_, "children", {}}).first->second.parents.push_back(group_);
    return Ok();
  }

  // The first (by line) reference to a group that was never declared.
  Status FinishPending() const {
    const Pending* first = nullptr;
    std::string name;
    for (const auto& [g, p] : pending_) {
      if (!first || p.line < first->line) {
        first = &p;
        name = g;
      }
    }
    if (!first) return Ok();
    if (first->kind == "vars") {
      return Err(Invalid(At(file_, first->line), "[" + name + ":vars] is for group '" + name +
                                                     "', which is never declared (no [" + name + "] section)"));
    }
    return Err(Invalid(At(file_, first->line), "[" + first->parents.front() + ":children] names group '" + name +
                                                   "', which is never declared (no [" + name + "] section)"));
  }

  std::string file_;
  Model& model_;
  int line_ = 0;
  std::string section_;  // "[web:vars]" as written; empty before the first one.
  std::string group_ = "ungrouped";
  std::string kind_ = "hosts";
  std::map<std::string, Pending> pending_;
};

// ---------------------------------------------------------------------------
// YAML.

// Ansible's YAML inventory plugin: each top-level key a group, each group a
// mapping (or nothing) of `hosts`, `vars` and `children`. A section written
// as a single string ("hosts: web1") means that one name.
class YamlInventoryParser {
 public:
  YamlInventoryParser(const YamlReader& reader, Model& model) : r_(reader), model_(model) {}

  Status Parse(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) return Err(r_.Fail(1, "the inventory is empty"));
    if (!root.IsMap()) return Err(r_.Fail(LineOf(root, 1), "expected a mapping of groups (such as 'all:')"));
    SP_ASSIGN_OR_RETURN(auto entries, r_.Entries(root, 1));
    for (const auto& e : entries) {
      if (e.key == "plugin" && !e.value.IsNull()) {
        return Err(r_.Fail(e.line, "this is an inventory plugin configuration, not a YAML inventory"));
      }
    }
    for (const auto& e : entries) {
      SP_ASSIGN_OR_RETURN(std::string name, GroupName(e));
      SP_TRY(Group(name, e.value, name, e.line));
    }
    return Ok();
  }

 private:
  Error Fail(int line, const std::string& path, const std::string& what) const {
    return r_.Fail(line, path + ": " + what);
  }
  Status Wrap(Status s, int line, const std::string& path) const {
    return s ? s : Err(Fail(line, path, s.error().message));
  }

  Result<std::string> GroupName(const YamlReader::Entry& e) const {
    SP_ASSIGN_OR_RETURN(std::string name, r_.NameKey(e.key_node, e.line, "a group name"));
    if (name.empty()) return Err(r_.Fail(e.line, "empty group name"));
    return name;
  }

  Status Group(const std::string& name, const YAML::Node& data, const std::string& path, int line) {
    model_.AddGroup(name);
    if (!data.IsDefined() || data.IsNull()) return Ok();
    if (!data.IsMap()) {
      return Err(Fail(line, path, "a group must be a mapping of hosts, vars and children, got " + Kind(data)));
    }
    SP_ASSIGN_OR_RETURN(auto entries, r_.Entries(data, line));
    for (const auto& e : entries) {
      const std::string sub = path + "." + e.key;
      if (e.key != "hosts" && e.key != "vars" && e.key != "children") {
        return Err(Fail(e.line, sub, "unknown key '" + e.key + "' (expected hosts, vars or children)"));
      }
      if (e.value.IsNull()) continue;
      if (!e.value.IsMap() && !e.value.IsScalar()) {
        return Err(Fail(e.line, sub, "expected a mapping, got " + Kind(e.value)));
      }
      SP_TRY(Section(name, e, sub));
    }
    return Ok();
  }

  static std::string Kind(const YAML::Node& n) {
    return n.IsSequence() ? "a list" : n.IsScalar() ? "the scalar '" + n.Scalar() + "'" : "a mapping";
  }

  // One `hosts`, `vars` or `children` section; a scalar stands for {it: null}.
  Status Section(const std::string& group, const YamlReader::Entry& e, const std::string& path) {
    if (e.key == "vars" && e.value.IsMap()) {
      SP_ASSIGN_OR_RETURN(VarMap vars, r_.Vars(e.value, e.line));
      for (auto& [k, v] : vars) {
        Status st = model_.SetGroupVar(group, k, v.value, v.where);
        if (!st) return Err(Invalid(v.where, path + "." + k + ": " + st.error().message));
      }
      return Ok();
    }
    std::vector<YamlReader::Entry> items;
    if (e.value.IsScalar()) {
      items.push_back({e.value.Scalar(), e.value, YAML::Node(), LineOf(e.value, e.line)});
    } else {
      SP_ASSIGN_OR_RETURN(items, r_.Entries(e.value, e.line));
    }
    for (const auto& item : items) {
      const std::string sub = path + "." + item.key;
      if (e.key == "vars") {
        SP_ASSIGN_OR_RETURN(json v, r_.ToJson(item.value, item.line));
        SP_TRY(Wrap(model_.SetGroupVar(group, item.key, std::move(v), At(r_.file(), item.line)), item.line, sub));
      } else if (e.key == "children") {
        SP_ASSIGN_OR_RETURN(std::string child, GroupName(item));
        SP_TRY(Group(child, item.value, sub, item.line));
        SP_TRY(Wrap(model_.AddChild(group, child), item.line, sub));
      } else {
        SP_TRY(Hosts(group, item, sub));
      }
    }
    return Ok();
  }

  Status Hosts(const std::string& group, const YamlReader::Entry& item, const std::string& path) {
    SP_ASSIGN_OR_RETURN(std::string pattern, r_.NameKey(item.key_node, item.line, "a host pattern"));
    auto hosts = ExpandHostPattern(pattern);
    if (!hosts) return Err(Fail(item.line, path, hosts.error().message));
    VarMap vars;
    if (item.value.IsDefined() && !item.value.IsNull()) {
      if (!item.value.IsMap()) return Err(Fail(item.line, path, "host variables must be a mapping, got " + Kind(item.value)));
      SP_ASSIGN_OR_RETURN(vars, r_.Vars(item.value, item.line));
    }
    for (const std::string& name : hosts->names) {
      model_.AddHost(name, group, hosts->port, At(r_.file(), item.line));
      for (const auto& [k, v] : vars) model_.SetHostVar(name, k, v.value, v.where);
    }
    return Ok();
  }

  const YamlReader& r_;
  Model& model_;
};

// ---------------------------------------------------------------------------
// JSON (dynamic inventory).

// RFC 6901: "~" -> "~0", "/" -> "~1".
std::string PointerPart(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return "/" + out;
}

// Ansible's script inventory plugin over the parsed --list output.
class JsonInventoryParser {
 public:
  JsonInventoryParser(std::string source, Model& model) : source_(std::move(source)), model_(model) {}

  using HostVarsFn = std::function<Result<json>(const std::string&)>;

  Status Parse(const json& doc, const HostVarsFn& host_vars) {
    if (!doc.is_object()) return Err(Fail("", "expected a JSON object of groups, got " + JsonTypeName(doc)));
    const json* meta = nullptr;
    for (const auto& [name, data] : doc.items()) {
      if (name != "_meta") {
        SP_TRY(Group(name, data, PointerPart(name)));
      } else if (!data.is_object()) {
        return Err(Fail("/_meta", "expected an object, got " + JsonTypeName(data)));
      } else if (data.contains("hostvars")) {
        meta = &data["hostvars"];
        if (!meta->is_object()) return Err(Fail("/_meta/hostvars", "expected an object, got " + JsonTypeName(*meta)));
      }
    }
    for (const std::string& host : listed_) SP_TRY(HostVars(host, meta, host_vars));
    return Ok();
  }

 private:
  Error Fail(const std::string& pointer, const std::string& what) const {
    return Invalid(source_ + (pointer.empty() ? "" : ": " + pointer), what);
  }

  // A group: {hosts, vars, children}, a bare list of hosts, or (Ansible's
  // shorthand) an object without those keys: a host of the group's name
  // with those vars.
  Status Group(const std::string& name, const json& raw, const std::string& ptr) {
    if (name.empty()) return Err(Fail(ptr, "empty group name"));
    model_.AddGroup(name);
    json data = raw;
    if (!data.is_object()) {
      data = json{{"hosts", raw}};
    } else if (!data.contains("hosts") && !data.contains("vars") && !data.contains("children")) {
      data = json{{"hosts", json::array({name})}, {"vars", raw}};
    }
    if (data.contains("hosts")) SP_TRY(Hosts(name, data["hosts"], raw.is_object() ? ptr + "/hosts" : ptr));
    if (data.contains("vars")) SP_TRY(Vars(name, data["vars"], raw.contains("vars") ? ptr + "/vars" : ptr));
    if (data.contains("children")) SP_TRY(Children(name, data["children"], ptr + "/children"));
    return Ok();
  }

  Status Hosts(const std::string& group, const json& hosts, const std::string& ptr) {
    if (!hosts.is_array()) return Err(Fail(ptr, "expected a list of host names, got " + JsonTypeName(hosts)));
    for (size_t i = 0; i < hosts.size(); ++i) {
      const std::string at = ptr + "/" + std::to_string(i);
      if (!hosts[i].is_string() || hosts[i].get<std::string>().empty()) {
        return Err(Fail(at, "expected a host name, got " + hosts[i].dump()));
      }
      const std::string name = hosts[i].get<std::string>();
      model_.AddHost(name, group, std::nullopt, source_ + ": " + at);
      if (std::find(listed_.begin(), listed_.end(), name) == listed_.end()) listed_.push_back(name);
    }
    return Ok();
  }

  Status Vars(const std::string& group, const json& vars, const std::string& ptr) {
    if (!vars.is_object()) return Err(Fail(ptr, "expected an object of variables, got " + JsonTypeName(vars)));
    for (const auto& [k, v] : vars.items()) {
      const std::string at = ptr + PointerPart(k);
      if (Status s = model_.SetGroupVar(group, k, v, source_ + ": " + at); !s) return Err(Fail(at, s.error().message));
    }
    return Ok();
  }

  Status Children(const std::string& group, const json& children, const std::string& ptr) {
    if (!children.is_array()) return Err(Fail(ptr, "expected a list of group names, got " + JsonTypeName(children)));
    for (size_t i = 0; i < children.size(); ++i) {
      const std::string at = ptr + "/" + std::to_string(i);
      if (!children[i].is_string() || children[i].get<std::string>().empty()) {
        return Err(Fail(at, "expected a group name, got " + children[i].dump()));
      }
      const std::string child = children[i].get<std::string>();
      model_.AddGroup(child);
      if (Status s = model_.AddChild(group, child); !s) return Err(Fail(at, s.error().message));
    }
    return Ok();
  }

  // A listed host's own vars: from _meta.hostvars (none when it is not
  // there), else from the callback (the script's --host).
  Status HostVars(const std::string& host, const json* meta, const HostVarsFn& host_vars) {
    json vars = json::object();
    // Where they come from: a pointer into --list's output, or --host's output.
    std::string from = source_ + ": /_meta/hostvars" + PointerPart(host), sep;
    if (meta) {
      if (meta->contains(host)) vars = (*meta)[host];
    } else if (host_vars) {
      SP_ASSIGN_OR_RETURN(vars, host_vars(host));
      from = source_ + ": output of --host " + host;
      sep = " at ";
    }
    if (!vars.is_object()) {
      return Err(Invalid(from, "variables of host '" + host + "' must be a JSON object, got " + JsonTypeName(vars)));
    }
    for (const auto& [k, v] : vars.items()) model_.SetHostVar(host, k, v, from + sep + PointerPart(k));
    return Ok();
  }

  std::string source_;
  Model& model_;
  std::vector<std::string> listed_;  // Hosts named by groups, in order.
};

// JSON text, or kInvalidArgument naming `source` and the byte offset.
Result<json> ParseJsonText(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> the part after the prefix.
    if (const size_t p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Err(Invalid(source, "not valid JSON at byte " + std::to_string(e.byte) + ": " + what));
  }
}

// ---------------------------------------------------------------------------
// Dynamic sources and files.

// The output of `argv extra...`, or kUnavailable naming the command.
Result<std::string> RunInventoryCommand(const std::vector<std::string>& argv, Millis timeout) {
  CommandSpec spec;
  spec.argv = argv;
  spec.timeout = timeout;
  auto status = RunCommand(spec);
  if (!status) {
    return Err(ErrorCode::kUnavailable, "inventory command '" + FormatArgv(argv) + "' could not run: " + status.error().message);
  }
  if (!status->ok()) {
    return Err(ErrorCode::kUnavailable, "inventory command '" + FormatArgv(argv) + "' failed: " + status->Describe());
  }
  if (Trim(status->out).empty()) {
    return Err(ErrorCode::kInvalidArgument, "inventory command '" + FormatArgv(argv) + "' printed nothing (expected a JSON object)");
  }
  return status->out;
}

std::string DirOf(const std::string& path) {
  const fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? "." : dir.string();
}

// A "key:" mapping entry (nothing or a space after the colon), which no INI
// line is: INI host lines put a port right after the colon.
bool IsYamlMappingLine(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  if (colon + 1 < line.size() && line[colon + 1] != ' ' && line[colon + 1] != '\t') return false;
  const std::string_view key = line.substr(0, colon);
  return key.find_first_of(" \t=[") == std::string_view::npos || key.front() == '"' || key.front() == '\'';
}

// The first line that is neither blank nor a comment decides.
bool LooksLikeYaml(const std::string& text) {
  for (const std::string& raw : Split(text, '\n')) {
    const std::string_view line = PyStrip(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    return line == "---" || line[0] == '{' || IsYamlMappingLine(line);
  }
  return false;
}

// The YAML inventory format written as JSON (groups whose `hosts` or
// `children` are objects), rather than a --list output (lists).
bool IsYamlFormatJson(const std::string& text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return false;
  for (const auto& [name, group] : doc.items()) {
    if (name == "_meta" || !group.is_object()) continue;
    for (const char* key : {"hosts", "children"}) {
      if (group.contains(key) && group[key].is_object()) return true;
    }
  }
  return false;
}

// Unix login names as the inventory file accepts them: [a-z_][a-z0-9_-]{0,31}.
bool IsUserName(const std::string& s) {
  if (s.empty() || s.size() > 32 || !(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || IsDigit(c) || c == '_' || c == '-';
  });
}

// Tag keys as selectors accept them: letters, digits and - _ . / :.
bool IsTagKey(const std::string& s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':';
  });
}

}  // namespace

Result<ImportedInventory> ParseAnsibleIni(const std::string& text, const std::string& file_name,
                                          const std::string& base_dir) {
  Model model(file_name);
  IniParser parser(file_name, model);
  SP_TRY(parser.Parse(text));
  return model.Finish(base_dir);
}

Result<ImportedInventory> ParseAnsibleYaml(const std::string& text, const std::string& file_name,
                                           const std::string& base_dir) {
  YamlReader reader(file_name, RulesFor(text));
  SP_ASSIGN_OR_RETURN(YAML::Node root, reader.Load(text));
  Model model(file_name);
  try {
    SP_TRY(YamlInventoryParser(reader, model).Parse(root));
  } catch (const YAML::Exception& e) {
    return Err(reader.Fail(e.mark.is_null() ? 1 : e.mark.line + 1, std::string("YAML error: ") + e.what()));
  }
  return model.Finish(base_dir);
}

Result<ImportedInventory> ParseAnsibleJson(const std::string& text, const std::string& source_name,
                                           const std::function<Result<json>(const std::string& host)>& host_vars,
                                           const std::string& base_dir) {
  SP_ASSIGN_OR_RETURN(json doc, ParseJsonText(text, source_name));
  Model model(source_name);
  SP_TRY(JsonInventoryParser(source_name, model).Parse(doc, host_vars));
  return model.Finish(base_dir);
}

Result<ImportedInventory> RunDynamicSource(const std::vector<std::string>& argv, Millis timeout) {
  if (argv.empty() || argv[0].empty()) return Err(ErrorCode::kInvalidArgument, "dynamic inventory: empty command");
  std::vector<std::string> list = argv;
  list.push_back("--list");
  SP_ASSIGN_OR_RETURN(std::string out, RunInventoryCommand(list, timeout));
  auto host_vars = [&](const std::string& host) -> Result<json> {
    std::vector<std::string> cmd = argv;
    cmd.insert(cmd.end(), {"--host", host});
    SP_ASSIGN_OR_RETURN(std::string vars, RunInventoryCommand(cmd, timeout));
    return ParseJsonText(vars, "inventory command '" + FormatArgv(cmd) + "'");
  };
  const std::string base_dir = argv[0].find('/') == std::string::npos ? "" : DirOf(argv[0]);
  SP_ASSIGN_OR_RETURN(ImportedInventory inv,
                      ParseAnsibleJson(out, "inventory command '" + FormatArgv(list) + "'", host_vars, base_dir));
  if (inv.hosts.empty()) {
    return Err(ErrorCode::kUnavailable, "inventory command '" + FormatArgv(list) + "' listed no hosts");
  }
  return inv;
}

Result<ImportedInventory> LoadAnsibleInventory(const std::string& path) {
  SP_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  const std::string base_dir = DirOf(path);
  const std::string ext = Lower(fs::path(path).extension().string());
  if (ext == ".yml" || ext == ".yaml") return ParseAnsibleYaml(text, path, base_dir);
  if (ext == ".json") {
    if (IsYamlFormatJson(text)) return ParseAnsibleYaml(text, path, base_dir);
    return ParseAnsibleJson(text, path, nullptr, base_dir);
  }
  if (LooksLikeYaml(text)) return ParseAnsibleYaml(text, path, base_dir);
  return ParseAnsibleIni(text, path, base_dir);
}

Result<std::vector<HostSpec>> ToHostSpecs(const ImportedInventory& inv) {
  std::vector<HostSpec> out;
  for (const ImportedHost& h : inv.hosts) {
    auto bad = [&](const std::string& what) {
      return Err(ErrorCode::kInvalidArgument, "host '" + h.name + "': " + what);
    };
    if (!IsValidHostName(h.name)) return bad("invalid host name (expected letters, digits, '-', '.', '_')");
    if (!IsValidAddress(h.address)) {
      return bad("address '" + h.address + "' (ansible_host) is not an IPv4 address or DNS name");
    }
    if (h.ssh_port < 1 || h.ssh_port > 65535) return bad("ssh port " + std::to_string(h.ssh_port) + " is out of range");
    if (!h.ssh_user.empty() && !IsUserName(h.ssh_user)) {
      return bad("ansible_user '" + h.ssh_user + "' is not a login name ([a-z_][a-z0-9_-]*, at most 32 characters)");
    }
    HostSpec spec;
    spec.name = h.name;
    spec.address = h.address;
    spec.ssh_port = h.ssh_port;
    spec.ssh_user = h.ssh_user;
    for (const auto& [group, value] : h.tags) {
      if (!IsTagKey(group)) return bad("group '" + group + "' cannot be a tag (letters, digits and - _ . / : only)");
      spec.tags[group] = value;
    }
    out.push_back(std::move(spec));
  }
  return out;
}

HostSourceRunner DynamicSourceRunner() {
  return [](const HostSourceSpec& src) -> Result<std::vector<HostSpec>> {
    SP_ASSIGN_OR_RETURN(ImportedInventory inv, RunDynamicSource(src.command, Millis(src.timeout_ms)));
    return ToHostSpecs(inv);
  };
}

}  // namespace sp::inventory
