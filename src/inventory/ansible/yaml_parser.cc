#include "inventory/ansible/ansible_import.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "inventory/ansible/internal.h"

namespace sp::inventory {
namespace ansible_internal {
namespace {

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

}  // namespace
}  // namespace ansible_internal

using ansible_internal::Model;
using ansible_internal::RulesFor;
using ansible_internal::YamlInventoryParser;
using ansible_internal::YamlReader;

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

}  // namespace sp::inventory
