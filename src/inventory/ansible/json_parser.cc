#include "inventory/ansible/ansible_import.h"

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "inventory/ansible/internal.h"

namespace sp::inventory {
namespace ansible_internal {

// ---------------------------------------------------------------------------
// JSON (dynamic inventory).

namespace {

std::string JsonTypeName(const json& j) { return j.type_name(); }

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

}  // namespace

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

}  // namespace ansible_internal

using ansible_internal::JsonInventoryParser;
using ansible_internal::Model;
using ansible_internal::ParseJsonText;
using json = nlohmann::json;

Result<ImportedInventory> ParseAnsibleJson(const std::string& text, const std::string& source_name,
                                           const std::function<Result<json>(const std::string& host)>& host_vars,
                                           const std::string& base_dir) {
  SP_ASSIGN_OR_RETURN(json doc, ParseJsonText(text, source_name));
  Model model(source_name);
  SP_TRY(JsonInventoryParser(source_name, model).Parse(doc, host_vars));
  return model.Finish(base_dir);
}

}  // namespace sp::inventory
