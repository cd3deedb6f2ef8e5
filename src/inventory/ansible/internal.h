// Internals of the Ansible inventory import (ansible_import.h), shared by the
// files of this folder and by nothing else: variables with where they were
// set, text helpers, Python literals, host patterns, YAML values,
// group_vars/ and host_vars/ files, and the inventory model that the INI,
// YAML and JSON parsers fill.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "inventory/ansible/ansible_import.h"

namespace sp::inventory::ansible_internal {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Variables with where they were set (common.cc).

// A variable's value and where it was set ("hosts.ini:12", "x.py --list:
// /_meta/hostvars/web1"), so that an error found after merging still points
// at the line that set the value.
struct Var {
  json value;
  std::string where;
};
using VarMap = std::map<std::string, Var>;

// kInvalidArgument "<where>: <what>".
Error Invalid(const std::string& where, const std::string& what);

// "<file>:<line>".
std::string At(const std::string& file, int line);

// Ansible merges variable sets key by key ("replace" hash behaviour): a later
// set's value wins whole, dictionaries are not merged.
void Merge(VarMap& into, const VarMap& from);

// ---------------------------------------------------------------------------
// Text (common.cc).

// Python's str.strip() for ASCII whitespace.
std::string_view PyStrip(std::string_view s);

// True when `s` is well-formed UTF-8 (lengths and continuation bytes only).
bool IsValidUtf8(std::string_view s);

// Python's \w for one byte: ASCII letters, digits, '_', and (approximately)
// every byte of a multi-byte UTF-8 character.
bool IsWordByte(char c);

// An ASCII digit.
bool IsDigit(char c);

// A non-empty run of ASCII digits.
bool AllDigits(std::string_view s);

// ---------------------------------------------------------------------------
// Python literals (python_literal.cc).

// An INI value as Ansible types it: a Python literal (ast.literal_eval's
// subset that JSON can hold), else the text itself.
json IniValue(std::string_view text);

// ---------------------------------------------------------------------------
// INI host lines: shlex and host patterns (host_patterns.cc).

// Python's shlex.split(line, comments=True) (POSIX mode), which Ansible uses
// for INI host lines: quotes group words and are removed, '#' starts a
// comment even inside a word, a backslash escapes any character outside
// quotes but only \" and \\ inside double quotes, nothing in single quotes.
Result<std::vector<std::string>> ShlexSplit(std::string_view line);

struct ExpandedHosts {
  std::vector<std::string> names;
  std::optional<int64_t> port;
};

// A host pattern of an INI line or a YAML `hosts` key: names and port.
// Ranges (web[01:10], db[a:c], n[1:9:2]) are expanded; an empty or too large
// range is kInvalidArgument.
Result<ExpandedHosts> ExpandHostPattern(const std::string& text);

// ---------------------------------------------------------------------------
// YAML values (yaml_values.cc).

// How plain (unquoted) scalars are typed. Ansible reads YAML with PyYAML,
// which follows YAML 1.1: yes/no/on/off are booleans, 010 is octal, 1:30 is
// 90, 1e3 (no '.', no exponent sign) stays text. Ansible tries json.loads
// before YAML, so a file that is valid JSON follows JSON's rules.
enum class ScalarRules { kYaml11, kJson };

// kJson when `text` is valid JSON, else kYaml11.
ScalarRules RulesFor(const std::string& text);

// The 1-based line of `n`, or `fallback` when the node has no mark.
int LineOf(const YAML::Node& n, int fallback);

// Reads YAML (or JSON) values of one file into JSON, reporting
// "<file>:<line>: <what>".
class YamlReader {
 public:
  YamlReader(std::string file, ScalarRules rules) : file_(std::move(file)), rules_(rules) {}

  const std::string& file() const { return file_; }
  Error Fail(int line, const std::string& what) const { return Invalid(At(file_, line), what); }

  // One document; a null root for an empty file. Never throws.
  Result<YAML::Node> Load(const std::string& text) const;

  // A scalar's value: quoted and !!str/!unsafe scalars are text, plain ones
  // typed by the rules.
  Result<json> Scalar(const YAML::Node& n, int line) const;

  // A mapping key as a string: a key like 8080 or yes becomes "8080" or
  // "true", as Ansible's JSON output writes it.
  Result<std::string> Key(const YAML::Node& k, int line) const;

  // A key that names something (a host pattern, a group): must be text.
  Result<std::string> NameKey(const YAML::Node& k, int line, const std::string& what) const;

  // Mapping entries in document order with their key lines; duplicate keys
  // are errors (Ansible warns and keeps the last one).
  struct Entry {
    std::string key;
    YAML::Node key_node, value;
    int line;
  };
  Result<std::vector<Entry>> Entries(const YAML::Node& map, int line) const;

  // A mapping of variables, each with the line that set it ("<<" merged
  // ones: the line of the merge key).
  Result<VarMap> Vars(const YAML::Node& map, int line) const;

  // Any node as JSON; nesting deeper than 64 levels is an error.
  Result<json> ToJson(const YAML::Node& n, int line, int depth = 0) const;

 private:
  // A mapping; "<<" merge keys (YAML 1.1, which PyYAML honours) add the keys
  // of the merged mappings that the mapping does not set itself, earlier
  // merged mappings winning over later ones.
  Result<json> MapToJson(const YAML::Node& n, int line, int depth) const;

  bool IsMergeKey(const Entry& e) const {
    return e.key == "<<" && e.key_node.Tag() == "?" && rules_ == ScalarRules::kYaml11;
  }

  // Adds to `merged` the keys of the mapping (or list of mappings) `v` that
  // it does not hold yet.
  Status MergeInto(json& merged, const json& v, int line) const;

  std::string file_;
  ScalarRules rules_;
};

// ---------------------------------------------------------------------------
// group_vars/ and host_vars/ files (vars_files.cc).

// The variables of one group or host from <base>/<subdir>/: the first of
// <name> (a file, or a directory of files), <name>.yml, <name>.yaml,
// <name>.json that exists. Later files of a directory override earlier ones.
class VarsFiles {
 public:
  explicit VarsFiles(std::string base_dir) : base_(std::move(base_dir)) {}

  // The variables of <subdir>/<name>, read once and then cached.
  Result<VarMap> For(const std::string& subdir, const std::string& name);

 private:
  Result<VarMap> Load(const std::string& subdir, const std::string& name) const;

  std::string base_;
  std::map<std::string, VarMap> cache_;
};

// ---------------------------------------------------------------------------
// The inventory model shared by the three formats (model.cc).

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
  Status AddChild(const std::string& parent, const std::string& child);

  // Adds the host (a port sets ansible_port, only when the host is new, as
  // in Ansible) and puts it in `group`.
  void AddHost(const std::string& name, const std::string& group, std::optional<int64_t> port,
               const std::string& where);

  void SetHostVar(const std::string& host, const std::string& key, json value, const std::string& where);

  // ansible_group_priority set inline is the group's priority (its place
  // among groups of the same depth), not a variable; kInvalidArgument when it
  // is not an integer (the caller adds where).
  Status SetGroupVar(const std::string& group, const std::string& key, json value, const std::string& where);

  // The hosts, sorted by name, with their effective variables; group_vars/
  // and host_vars/ are read from `base_dir` (none when it is empty).
  Result<ImportedInventory> Finish(const std::string& base_dir);

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

  bool IsDescendant(const std::string& from, const std::string& target) const;

  // Ansible's reconcile_inventory.
  Status Reconcile();

  // A group's depth is its longest distance from "all": a child is always
  // deeper than each of its parents, which is what makes child group vars
  // win over parent group vars.
  void ComputeDepths();

  // The host's groups: its direct groups and all their ancestors.
  std::set<std::string> GroupsOf(const Host& host) const;

  // Ansible's variable precedence for inventory variables (lowest first):
  // "all" group vars, other groups' vars by (depth, priority, name),
  // group_vars/all, group_vars/<group> in the same order, host vars,
  // host_vars/<host>.
  Result<ImportedHost> Resolve(const std::string& name, const Host& host, VarsFiles& files) const;

  // The imported host: `groups` as tags, `vars` with the connection
  // variables checked and copied to address, ssh_port and ssh_user.
  static Result<ImportedHost> MakeHost(const std::string& name, const std::vector<std::string>& groups,
                                       const VarMap& vars);

  std::string source_;
  std::map<std::string, Group> groups_;
  std::map<std::string, Host> hosts_;
};

// ---------------------------------------------------------------------------
// JSON (json_parser.cc).

// JSON text, or kInvalidArgument naming `source` and the byte offset.
Result<json> ParseJsonText(const std::string& text, const std::string& source);

}  // namespace sp::inventory::ansible_internal
