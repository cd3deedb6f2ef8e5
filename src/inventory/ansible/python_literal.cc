#include "inventory/ansible/internal.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sp::inventory::ansible_internal {
namespace {

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

}  // namespace

json IniValue(std::string_view text) {
  // literal_eval strips leading blanks (Python 3.10+); the rest of the text is
  // kept as written when it is not a literal.
  const size_t b = text.find_first_not_of(" \t");
  std::optional<json> v = PyLiteral::Parse(b == std::string_view::npos ? "" : text.substr(b));
  return v ? std::move(*v) : json(std::string(text));
}

}  // namespace sp::inventory::ansible_internal
