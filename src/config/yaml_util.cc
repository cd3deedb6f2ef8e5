#include "config/yaml_util.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <set>

namespace sp::yaml {
namespace {

std::string TypeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "null (no value)";
    case YAML::NodeType::Scalar: return "a scalar '" + n.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

int LineOf(const YAML::Node& n, int fallback) {
  const YAML::Mark m = n.Mark();
  return m.is_null() ? fallback : m.line + 1;
}

constexpr int kMaxDepth = 64;

// Walks the whole document once and rejects duplicate keys (yaml-cpp keeps
// both entries and returns the first on lookup) and non-string keys.
// Collections reached again through an alias are skipped.
Status CheckKeys(const Reader& r, const Val& v, std::set<std::pair<int, int>>& seen, int depth) {
  const YAML::Node& n = v.node;
  if (!n.IsMap() && !n.IsSequence()) return Ok();
  const YAML::Mark mark = n.Mark();
  if (!seen.insert({mark.line, mark.column}).second) return Ok();
  if (depth > kMaxDepth) return Err(r.Fail(v, "nested too deeply"));
  if (n.IsSequence()) {
    int i = 0;
    for (const YAML::Node& item : n) {
      SP_TRY(CheckKeys(r, Val{item, v.path + "[" + std::to_string(i) + "]", LineOf(item, v.line)}, seen, depth + 1));
      ++i;
    }
    return Ok();
  }
  std::map<std::string, int> first_line;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const int key_line = LineOf(it->first, v.line);
    if (!it->first.IsScalar()) {
      return Err(r.Fail(key_line, v.path, "keys must be strings, got " + TypeName(it->first)));
    }
    const std::string key = it->first.Scalar();
    const std::string child = Join(v.path, key);
    auto [pos, inserted] = first_line.emplace(key, key_line);
    if (!inserted) {
      return Err(r.Fail(key_line, child,
                        "duplicate key '" + key + "' (first on line " + std::to_string(pos->second) +
                            ", again on line " + std::to_string(key_line) + ")"));
    }
    SP_TRY(CheckKeys(r, Val{it->second, child, key_line}, seen, depth + 1));
  }
  return Ok();
}

}  // namespace

std::string Join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

const Val* Map::Get(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

Error Reader::Fail(int line, const std::string& path, const std::string& what) const {
  std::string msg = file_ + ":" + std::to_string(line) + ": ";
  if (!path.empty()) msg += path + ": ";
  return Error{ErrorCode::kInvalidArgument, msg + what};
}

Result<Val> Reader::Load(const std::string& text) const {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    // yaml-cpp marks are 0-based.
    // A mark just past the last line (e.g. an unclosed bracket) is reported on the last line.
    const int last_line = std::max<int>(
        1, static_cast<int>(std::count(text.begin(), text.end(), '\n')) + (text.empty() || text.back() == '\n' ? 0 : 1));
    const int line = e.mark.is_null() ? 1 : std::min(e.mark.line + 1, last_line);
    std::string what = "YAML syntax error: " + e.msg;
    if (!e.mark.is_null()) what += " (column " + std::to_string(e.mark.column + 1) + ")";
    return Err(Fail(line, "", what));
  } catch (const std::exception& e) {
    return Err(Fail(1, "", std::string("YAML error: ") + e.what()));
  }
  if (docs.empty() || docs[0].IsNull()) {
    return Err(Fail(1, "", "the file is empty (expected a mapping starting with 'version: 1')"));
  }
  if (docs.size() > 1) {
    return Err(Fail(LineOf(docs[1], 1), "", "only one YAML document is allowed per file (found another one)"));
  }
  Val root{docs[0], "", 1};
  std::set<std::pair<int, int>> seen;
  try {
    SP_TRY(CheckKeys(*this, root, seen, 0));
  } catch (const std::exception& e) {
    return Err(Fail(1, "", std::string("YAML error: ") + e.what()));
  }
  return root;
}

Result<Map> Reader::AsMap(const Val& v, const std::vector<std::string>& allowed) const {
  if (!v.node.IsMap()) return Err(Fail(v, "expected a mapping, got " + TypeName(v.node)));
  Map m{v, {}};
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const int key_line = LineOf(it->first, v.line);
    if (!it->first.IsScalar()) return Err(Fail(key_line, v.path, "keys must be strings, got " + TypeName(it->first)));
    std::string key = it->first.Scalar();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Err(Fail(key_line, v.path, "unknown key '" + key + "' (expected one of: " + JoinNames(allowed) + ")"));
    }
    Val child{it->second, Join(v.path, key), key_line};
    m.entries.emplace_back(std::move(key), std::move(child));
  }
  return m;
}

Result<std::vector<Val>> Reader::AsList(const Val& v) const {
  if (!v.node.IsSequence()) return Err(Fail(v, "expected a list, got " + TypeName(v.node)));
  std::vector<Val> out;
  int i = 0;
  for (const YAML::Node& item : v.node) {
    out.push_back(Val{item, v.path + "[" + std::to_string(i) + "]", LineOf(item, v.line)});
    ++i;
  }
  return out;
}

Result<std::string> Reader::AsString(const Val& v) const {
  if (v.node.IsNull()) return Err(Fail(v, "expected a string, got null (no value; write \"\" for an empty string)"));
  if (!v.node.IsScalar()) return Err(Fail(v, "expected a string, got " + TypeName(v.node)));
  return v.node.Scalar();
}

Result<std::string> Reader::AsSafeString(const Val& v) const {
  SP_ASSIGN_OR_RETURN(std::string s, AsString(v));
  if (!IsSafeValue(s)) return Err(Fail(v, "must be a single line (no newline or NUL character)"));
  return s;
}

Result<std::string> Reader::AsNonEmptyString(const Val& v) const {
  SP_ASSIGN_OR_RETURN(std::string s, AsSafeString(v));
  if (s.empty()) return Err(Fail(v, "must not be empty"));
  return s;
}

Result<int> Reader::AsInt(const Val& v, int min, int max) const {
  const std::string expected =
      "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", got ";
  if (!v.node.IsScalar()) return Err(Fail(v, expected + TypeName(v.node)));
  const std::string s = Trim(v.node.Scalar());
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || n < min || n > max) {
    return Err(Fail(v, expected + "'" + v.node.Scalar() + "'"));
  }
  return static_cast<int>(n);
}

Result<bool> Reader::AsBool(const Val& v) const {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    return Err(Fail(v, "expected true or false, got '" + s + "'"));
  }
  return Err(Fail(v, "expected true or false, got " + TypeName(v.node)));
}

Result<Millis> Reader::AsDuration(const Val& v) const {
  if (!v.node.IsScalar()) {
    return Err(Fail(v, "expected a duration (e.g. 500ms, 10s, 2m), got " + TypeName(v.node)));
  }
  auto d = ParseDuration(v.node.Scalar());
  if (!d) return Err(Fail(v, d.error().message));
  return *d;
}

Result<CountOrPercent> Reader::AsCountOrPercent(const Val& v) const {
  if (!v.node.IsScalar()) {
    return Err(Fail(v, "expected a count or percentage (e.g. 1, 3 or 25%), got " + TypeName(v.node)));
  }
  auto c = ParseCountOrPercent(v.node.Scalar());
  if (!c) return Err(Fail(v, c.error().message));
  return *c;
}

Status Reader::CheckName(const Val& at, const std::string& name) const {
  if (!IsValidName(name)) {
    return Err(Fail(at, "invalid name '" + name +
                            "' (expected lower-case letters, digits and '-', starting with a letter or digit, "
                            "at most 63 characters)"));
  }
  return Ok();
}

Result<std::string> Reader::AsName(const Val& v) const {
  SP_ASSIGN_OR_RETURN(std::string s, AsString(v));
  SP_TRY(CheckName(v, s));
  return s;
}

Result<std::string> Reader::AsAbsolutePath(const Val& v) const {
  SP_ASSIGN_OR_RETURN(std::string s, AsSafeString(v));
  if (s.empty() || s[0] != '/') return Err(Fail(v, "expected an absolute path, got '" + s + "'"));
  return s;
}

Result<std::vector<std::string>> Reader::AsStringList(const Val& v) const {
  SP_ASSIGN_OR_RETURN(std::vector<Val> items, AsList(v));
  std::vector<std::string> out;
  for (const Val& item : items) {
    SP_ASSIGN_OR_RETURN(std::string s, AsSafeString(item));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::map<std::string, std::string>> Reader::AsStringMap(const Val& v) const {
  SP_ASSIGN_OR_RETURN(Map m, AsMap(v));
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : m.entries) {
    if (k.empty() || !IsSafeValue(k)) return Err(Fail(val, "keys must be non-empty single-line strings"));
    SP_ASSIGN_OR_RETURN(out[k], AsSafeString(val));
  }
  return out;
}

Result<std::map<std::string, std::string>> Reader::AsEnv(const Val& v) const {
  SP_ASSIGN_OR_RETURN(Map m, AsMap(v));
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : m.entries) {
    if (!IsValidEnvName(k)) {
      return Err(Fail(val, "invalid environment variable name '" + k +
                               "' (expected letters, digits and '_', not starting with a digit)"));
    }
    SP_ASSIGN_OR_RETURN(out[k], AsSafeString(val));
  }
  return out;
}

Result<std::string> Reader::AsHostPort(const Val& v, bool port_required) const {
  SP_ASSIGN_OR_RETURN(std::string s, AsSafeString(v));
  if (IsValidHostPort(s, port_required)) return s;
  return Err(Fail(v, "invalid address '" + s + "' (expected " + (port_required ? "host:port" : "host or host:port") +
                         " with a valid host and a port of 1..65535, e.g. 127.0.0.1:9999)"));
}

Error Reader::Missing(const Map& m, const std::string& key, const std::string& hint) const {
  return Fail(m.self.line, Join(m.self.path, key), "missing required field" + hint);
}

Result<Map> Reader::LoadTop(const std::string& text, const std::vector<std::string>& allowed) const {
  SP_ASSIGN_OR_RETURN(Val root, Load(text));
  SP_TRY(CheckVersion(root));
  return AsMap(root, allowed);
}

Status Reader::CheckVersion(const Val& root) const {
  if (!root.node.IsMap()) {
    return Err(Fail(root, "expected a mapping at the top of the file, got " + TypeName(root.node)));
  }
  for (auto it = root.node.begin(); it != root.node.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar() != "version") continue;
    Val v{it->second, "version", LineOf(it->first, 1)};
    if (!v.node.IsScalar() || v.node.Scalar() != "1") {
      return Err(Fail(v, "unsupported version " + (v.node.IsScalar() ? "'" + v.node.Scalar() + "'" : TypeName(v.node)) +
                             " (this Sallyport reads version: 1)"));
    }
    return Ok();
  }
  return Err(Fail(1, "version", "missing required field (put 'version: 1' at the top of the file)"));
}

}  // namespace sp::yaml
