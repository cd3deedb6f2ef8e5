#include "inventory/ansible/internal.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/text.h"

namespace sp::inventory::ansible_internal {

// ---------------------------------------------------------------------------
// YAML values.

namespace {

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

}  // namespace

ScalarRules RulesFor(const std::string& text) {
  return json::accept(text) ? ScalarRules::kJson : ScalarRules::kYaml11;
}

int LineOf(const YAML::Node& n, int fallback) {
  const YAML::Mark m = n.Mark();
  return m.is_null() ? fallback : m.line + 1;
}

Result<YAML::Node> YamlReader::Load(const std::string& text) const {
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

Result<json> YamlReader::Scalar(const YAML::Node& n, int line) const {
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

Result<std::string> YamlReader::Key(const YAML::Node& k, int line) const {
  if (!k.IsScalar() && !k.IsNull()) return Err(Fail(line, "mapping keys must be scalars"));
  SP_ASSIGN_OR_RETURN(json v, Scalar(k, line));
  return v.is_string() ? v.get<std::string>() : v.dump();
}

Result<std::string> YamlReader::NameKey(const YAML::Node& k, int line, const std::string& what) const {
  if (k.IsScalar() || k.IsNull()) {
    SP_ASSIGN_OR_RETURN(json v, Scalar(k, line));
    if (v.is_string()) return v.get<std::string>();
  }
  return Err(Fail(line, what + " must be a string; quote '" + (k.IsScalar() ? k.Scalar() : std::string("~")) + "'"));
}

Result<std::vector<YamlReader::Entry>> YamlReader::Entries(const YAML::Node& map, int line) const {
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

Result<VarMap> YamlReader::Vars(const YAML::Node& map, int line) const {
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

Result<json> YamlReader::ToJson(const YAML::Node& n, int line, int depth) const {
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

Result<json> YamlReader::MapToJson(const YAML::Node& n, int line, int depth) const {
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

Status YamlReader::MergeInto(json& merged, const json& v, int line) const {
  const std::vector<json> maps = v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v};
  for (const json& m : maps) {
    if (!m.is_object()) return Err(Fail(line, "a '<<' merge key needs a mapping or a list of mappings"));
    for (auto& [k, val] : m.items()) {
      if (!merged.contains(k)) merged[k] = val;
    }
  }
  return Ok();
}

}  // namespace sp::inventory::ansible_internal
