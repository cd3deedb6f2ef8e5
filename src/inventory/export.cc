// The inventory back as data (JSON for the service, YAML for `export`), in
// the file's schema, writing only fields that differ from their defaults so
// that an exported file reads like a hand-written one.
#include <yaml-cpp/yaml.h>

#include <cctype>

#include "inventory/inventory.h"
#include "inventory/hooks.h"
#include "inventory/wire.h"

namespace sp {
namespace {

using Doc = nlohmann::ordered_json;

Doc StringMap(const std::map<std::string, std::string>& m) {
  Doc out = Doc::object();
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}

Doc ReleaseToJson(const ReleaseInventory& r) {
  Doc out;
  Doc lbs = Doc::array();
  for (const auto& lb : r.load_balancers) lbs.push_back(LoadBalancerToJson(lb));
  out["load_balancers"] = lbs.empty() ? Doc("none") : lbs;
  if (!r.hosts.empty()) {
    Doc hosts = Doc::array();
    for (const auto& h : r.hosts) hosts.push_back(r.pool_refs.count(h.name) ? Doc(h.name) : HostToJson(h));
    out["hosts"] = hosts;
  }
  if (!r.select.empty()) out["select"] = r.select;
  if (!r.env.empty()) out["env"] = StringMap(r.env);
  if (!r.docker_host.empty()) out["docker_host"] = r.docker_host;
  if (!r.base_dir.empty()) out["base_dir"] = r.base_dir;
  return out;
}

Doc DeploymentToJson(const DeploymentSpec& d) {
  Doc out;
  out["network"] = d.network;
  if (d.bastion) out["bastion"] = BastionToJson(*d.bastion);
  // An `ssh:` mapping is written when it says more than the bastion implies.
  const Doc sj = SshAccessToJson(d.ssh);
  if (d.ssh.enabled && (!sj.empty() || !d.bastion)) out["ssh"] = sj;
  if (!d.env.empty()) out["env"] = StringMap(d.env);
  if (!d.hosts.empty()) {
    Doc hosts = Doc::array();
    for (const auto& h : d.hosts) hosts.push_back(HostToJson(h));
    out["hosts"] = hosts;
  }
  if (d.source) {
    Doc src;
    src["command"] = d.source->command;
    if (d.source->timeout_ms != HostSourceSpec{}.timeout_ms) src["timeout"] = WireDuration(d.source->timeout_ms);
    out["source"] = src;
  }
  if (!d.hooks.empty()) out["hooks"] = HooksToJson(d.hooks);
  Doc rels = Doc::object();
  for (const auto& [name, r] : d.releases) rels[name] = ReleaseToJson(r);
  out["releases"] = rels;
  return out;
}

bool LooksLikeNonString(const std::string& s) {
  if (s.empty()) return true;
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}) {
    if (lower == word) return true;
  }
  return s.find_first_not_of("0123456789+-.eE_xXoabcdefABCDEF:") == std::string::npos &&
         std::isdigit(static_cast<unsigned char>(s.back()));
}

void Emit(YAML::Emitter& e, const Doc& d) {
  switch (d.type()) {
    case Doc::value_t::object:
      e << YAML::BeginMap;
      for (const auto& [k, v] : d.items()) {
        e << YAML::Key << k << YAML::Value;
        Emit(e, v);
      }
      e << YAML::EndMap;
      break;
    case Doc::value_t::array:
      e << YAML::BeginSeq;
      for (const auto& v : d) Emit(e, v);
      e << YAML::EndSeq;
      break;
    case Doc::value_t::string: {
      // The emitter quotes text that would not parse back as a plain scalar
      // ("a: b"); text a reader would take for a number, boolean or null is
      // quoted here.
      const std::string& s = d.get_ref<const std::string&>();
      if (LooksLikeNonString(s)) e << YAML::DoubleQuoted;
      e << s;
      break;
    }
    case Doc::value_t::boolean:
      e << d.get<bool>();
      break;
    case Doc::value_t::number_integer:
    case Doc::value_t::number_unsigned:
      e << d.get<int64_t>();
      break;
    case Doc::value_t::number_float:
      e << d.get<double>();
      break;
    default:
      e << YAML::Null;
  }
}

}  // namespace

nlohmann::ordered_json StackToJson(const StackSpec& s) {
  Doc out;
  if (s.requires_bastion) out["requires_bastion"] = true;
  if (!s.resources.empty()) {
    Doc res = Doc::object();
    for (const auto& [name, attrs] : s.resources) res[name] = StringMap(attrs);
    out["resources"] = res;
  }
  Doc deps = Doc::object();
  for (const auto& [name, d] : s.deployments) deps[name] = DeploymentToJson(d);
  out["deployments"] = deps;
  if (!s.templates.empty()) {
    Doc ts = Doc::object();
    for (const auto& [name, t] : s.templates) {
      Doc tj;
      tj["name"] = t.name_pattern;
      if (t.ttl_ms) tj["ttl"] = WireDuration(t.ttl_ms);
      if (t.per_user_resources) tj["resources"] = "per-user";
      tj["deployment"] = DeploymentToJson(t.deployment);
      ts[name] = tj;
    }
    out["templates"] = ts;
  }
  return out;
}

namespace {

using J = nlohmann::json;

std::map<std::string, std::string> StringMapFrom(const J& j, const char* key) {
  std::map<std::string, std::string> out;
  if (j.contains(key)) {
    for (const auto& [k, v] : j[key].items()) out[k] = v.get<std::string>();
  }
  return out;
}

DeploymentSpec DeploymentFrom(const std::string& name, const J& d) {
  DeploymentSpec out;
  out.name = name;
  out.network = d.at("network");
  if (d.contains("bastion")) out.bastion = BastionFromJson(d["bastion"]);
  if (d.contains("ssh") || out.bastion) out.ssh = SshAccessFromJson(d.contains("ssh") ? d["ssh"] : J::object());
  out.env = StringMapFrom(d, "env");
  if (d.contains("hosts")) {
    for (const auto& h : d["hosts"]) out.hosts.push_back(HostFromJson(h));
  }
  if (d.contains("source")) {
    HostSourceSpec src;
    src.command = d["source"].at("command").get<std::vector<std::string>>();
    if (d["source"].contains("timeout")) src.timeout_ms = WireDurationMs(d["source"]["timeout"]);
    out.source = std::move(src);
  }
  if (d.contains("hooks")) out.hooks = HooksFromJson(d["hooks"]);
  for (const auto& [rname, r] : d.at("releases").items()) {
    ReleaseInventory rel;
    rel.name = rname;
    const Doc& lbs = r.at("load_balancers");
    for (const auto& lb : lbs.is_array() ? lbs : Doc::array()) {  // "none": no load balancer.
      rel.load_balancers.push_back(LoadBalancerFromJson(lb));
    }
    if (r.contains("hosts")) {
      for (const auto& h : r["hosts"]) {
        if (h.is_string()) {
          const std::string ref = h;
          for (const auto& p : out.hosts) {
            if (p.name == ref) rel.hosts.push_back(p);
          }
          rel.pool_refs.insert(ref);
        } else {
          rel.hosts.push_back(HostFromJson(h));
        }
      }
    }
    rel.select = r.value("select", "");
    rel.env = StringMapFrom(r, "env");
    rel.docker_host = r.value("docker_host", "");
    rel.base_dir = r.value("base_dir", "");
    out.releases.emplace(rname, std::move(rel));
  }
  return out;
}

}  // namespace

Result<StackSpec> StackFromJson(const std::string& name, const nlohmann::json& doc) {
  try {
    StackSpec s;
    s.name = name;
    s.requires_bastion = doc.value("requires_bastion", false);
    if (doc.contains("resources")) {
      for (const auto& [res, attrs] : doc["resources"].items()) s.resources[res] = StringMapFrom(doc["resources"], res.c_str());
    }
    for (const auto& [dname, d] : doc.at("deployments").items()) s.deployments.emplace(dname, DeploymentFrom(dname, d));
    if (doc.contains("templates")) {
      for (const auto& [tname, t] : doc["templates"].items()) {
        TemplateSpec spec;
        spec.name_pattern = t.value("name", spec.name_pattern);
        if (t.contains("ttl")) spec.ttl_ms = WireDurationMs(t["ttl"]);
        spec.per_user_resources = t.value("resources", "shared") == "per-user";
        spec.deployment = DeploymentFrom(tname, t.at("deployment"));
        s.templates.emplace(tname, std::move(spec));
      }
    }
    return s;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal, "stored stack '" + name + "' is not a valid document: " + e.what());
  }
}

nlohmann::ordered_json InventoryToJson(const Inventory& inv) {
  Doc out;
  out["version"] = 1;
  Doc stacks = Doc::object();
  for (const auto& [name, s] : inv.stacks) stacks[name] = StackToJson(s);
  out["stacks"] = stacks;
  return out;
}

std::string JsonToYaml(const nlohmann::ordered_json& doc) {
  YAML::Emitter e;
  Emit(e, doc);
  return std::string(e.c_str()) + "\n";
}

}  // namespace sp
