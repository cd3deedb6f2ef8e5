#include "inventory/ansible/internal.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <initializer_list>
#include <tuple>

#include "core/text.h"

namespace sp::inventory::ansible_internal {

// ---------------------------------------------------------------------------
// The inventory model shared by the three formats.

namespace {

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

}  // namespace

Status Model::AddChild(const std::string& parent, const std::string& child) {
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

void Model::AddHost(const std::string& name, const std::string& group, std::optional<int64_t> port,
                    const std::string& where) {
  auto [it, is_new] = hosts_.try_emplace(name);
  if (is_new && port) it->second.vars["ansible_port"] = Var{json(*port), where};
  std::vector<std::string>& in = it->second.groups;
  if (std::find(in.begin(), in.end(), group) == in.end()) in.push_back(group);
}

void Model::SetHostVar(const std::string& host, const std::string& key, json value, const std::string& where) {
  hosts_.at(host).vars[key] = Var{std::move(value), where};
}

Status Model::SetGroupVar(const std::string& group, const std::string& key, json value, const std::string& where) {
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

Result<ImportedInventory> Model::Finish(const std::string& base_dir) {
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

bool Model::IsDescendant(const std::string& from, const std::string& target) const {
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

Status Model::Reconcile() {
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

void Model::ComputeDepths() {
  std::map<std::string, int> memo;
  std::function<int(const std::string&)> depth = [&](const std::string& name) -> int {
    if (auto it = memo.find(name); it != memo.end()) return it->second;
    int d = 0;
    for (const auto& p : groups_.at(name).parents) d = std::max(d, depth(p) + 1);
    return memo[name] = d;
  };
  for (auto& [name, g] : groups_) g.depth = depth(name);
}

std::set<std::string> Model::GroupsOf(const Host& host) const {
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

Result<ImportedHost> Model::Resolve(const std::string& name, const Host& host, VarsFiles& files) const {
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

}  // namespace sp::inventory::ansible_internal
