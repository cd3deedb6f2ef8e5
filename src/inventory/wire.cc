#include "inventory/wire.h"

#include "inventory/hooks.h"

namespace sp {

using J = nlohmann::json;

namespace {

WireDoc StringMap(const std::map<std::string, std::string>& m) {
  WireDoc out = WireDoc::object();
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}

std::map<std::string, std::string> StringMapFrom(const J& j, const char* key) {
  std::map<std::string, std::string> out;
  if (j.contains(key)) {
    for (const auto& [k, v] : j[key].items()) out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

std::string WireDuration(int64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

int64_t WireDurationMs(const std::string& s) {
  // Only what WireDuration() writes: "<n>s" or "<n>ms".
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "ms") == 0) return std::stoll(s.substr(0, s.size() - 2));
  return std::stoll(s.substr(0, s.size() - 1)) * 1000;
}

WireDoc HostToJson(const HostSpec& h) {
  WireDoc out;
  out["name"] = h.name;
  out["address"] = h.address;
  if (h.port != 0) out["port"] = h.port;
  if (!h.ssh_user.empty()) out["ssh_user"] = h.ssh_user;
  if (h.ssh_port != 22) out["ssh_port"] = h.ssh_port;
  if (!h.tags.empty()) out["tags"] = StringMap(h.tags);
  return out;
}

HostSpec HostFromJson(const J& h) {
  HostSpec out;
  out.name = h.at("name");
  out.address = h.at("address");
  out.port = h.value("port", 0);
  out.ssh_user = h.value("ssh_user", "");
  out.ssh_port = h.value("ssh_port", 22);
  out.tags = StringMapFrom(h, "tags");
  return out;
}

WireDoc LoadBalancerToJson(const LoadBalancerSpec& lb) {
  WireDoc out;
  out["kind"] = lb.kind;
  if (!lb.socket.empty()) out["socket"] = lb.socket;
  if (!lb.address.empty()) out["address"] = lb.address;
  out["backend"] = lb.backend;
  if (!lb.servers.empty()) out["servers"] = StringMap(lb.servers);
  if (lb.add_servers) out["add_servers"] = *lb.add_servers;
  return out;
}

LoadBalancerSpec LoadBalancerFromJson(const J& lb) {
  LoadBalancerSpec out;
  out.kind = lb.value("kind", "haproxy");
  out.socket = lb.value("socket", "");
  out.address = lb.value("address", "");
  out.backend = lb.at("backend");
  // Identity entries (a resolve answer names every host's server) are the default.
  for (const auto& [k, v] : StringMapFrom(lb, "servers")) {
    if (v != k) out.servers[k] = v;
  }
  if (lb.contains("add_servers")) out.add_servers = lb["add_servers"].get<bool>();
  return out;
}

WireDoc BastionToJson(const BastionSpec& b) {
  const BastionSpec defaults;
  WireDoc out;
  out["address"] = b.address;
  if (b.port != defaults.port) out["port"] = b.port;
  if (b.user != defaults.user) out["user"] = b.user;
  if (!b.key.empty()) out["key"] = b.key;
  if (!b.host_key.empty()) out["host_key"] = b.host_key;
  return out;
}

BastionSpec BastionFromJson(const J& b) {
  return BastionSpec{b.at("address"), b.value("port", 22), b.value("user", "deploy"), b.value("key", ""),
                     b.value("host_key", "")};
}

WireDoc SshAccessToJson(const SshAccess& a) {
  const SshAccess defaults;
  WireDoc out = WireDoc::object();
  if (!a.known_hosts.empty()) out["known_hosts"] = a.known_hosts;
  if (!a.config.empty()) out["config"] = a.config;
  if (!a.identity.empty()) out["identity"] = a.identity;
  if (!a.user.empty()) out["user"] = a.user;
  if (a.connect_timeout_ms != defaults.connect_timeout_ms) out["connect_timeout"] = WireDuration(a.connect_timeout_ms);
  if (a.max_hosts != defaults.max_hosts) out["max_hosts"] = a.max_hosts;
  return out;
}

SshAccess SshAccessFromJson(const J& sj) {
  SshAccess out;
  out.enabled = true;
  out.known_hosts = sj.value("known_hosts", "");
  out.config = sj.value("config", "");
  out.identity = sj.value("identity", "");
  out.user = sj.value("user", "");
  if (sj.contains("connect_timeout")) out.connect_timeout_ms = WireDurationMs(sj["connect_timeout"]);
  out.max_hosts = sj.value("max_hosts", out.max_hosts);
  return out;
}

WireDoc ResolvedTargetToJson(const ResolvedTarget& t) {
  WireDoc out;
  out["stack"] = t.stack;
  out["release"] = t.release;
  out["deployment"] = t.deployment;
  out["network"] = t.network;
  out["bastion"] = t.bastion ? BastionToJson(*t.bastion) : WireDoc(nullptr);
  out["ssh"] = t.ssh.enabled ? SshAccessToJson(t.ssh) : WireDoc(nullptr);
  WireDoc lbs = WireDoc::array();
  for (const auto& lb : t.load_balancers) {
    WireDoc l = LoadBalancerToJson(lb);
    WireDoc servers = WireDoc::object();
    for (const auto& h : t.hosts) servers[h.name] = lb.ServerFor(h.name);
    l["servers"] = servers;
    lbs.push_back(std::move(l));
  }
  out["load_balancers"] = lbs;
  WireDoc hosts = WireDoc::array();
  for (const auto& h : t.hosts) hosts.push_back(HostToJson(h));
  out["hosts"] = hosts;
  out["env_layers"] = {{"resources", StringMap(t.resource_env)}, {"deployment", StringMap(t.deployment_env)}};
  out["docker_host"] = t.docker_host;
  out["base_dir"] = t.base_dir;
  if (!t.hooks.empty()) out["hooks"] = HooksToJson(t.hooks);
  return out;
}

ResolvedTarget ResolvedTargetFromJson(const J& j) {
  ResolvedTarget t;
  t.stack = j.at("stack");
  t.release = j.at("release");
  t.deployment = j.at("deployment");
  t.network = j.at("network");
  if (j.contains("bastion") && !j["bastion"].is_null()) t.bastion = BastionFromJson(j["bastion"]);
  if (j.contains("ssh") && !j["ssh"].is_null()) t.ssh = SshAccessFromJson(j["ssh"]);
  for (const auto& h : j.at("hosts")) t.hosts.push_back(HostFromJson(h));
  for (const auto& lb : j.at("load_balancers")) t.load_balancers.push_back(LoadBalancerFromJson(lb));
  const J& layers = j.at("env_layers");
  t.resource_env = StringMapFrom(layers, "resources");
  t.deployment_env = StringMapFrom(layers, "deployment");
  t.docker_host = j.value("docker_host", "");
  t.base_dir = j.value("base_dir", "");
  if (j.contains("hooks")) t.hooks = HooksFromJson(j["hooks"]);
  return t;
}

WireDoc ClaimToJson(const ClaimRecord& c) {
  return {{"stack", c.stack},           {"template", c.template_name}, {"user", c.user},
          {"deployment", c.deployment}, {"host", c.host},              {"claimed_ms", c.claimed_ms},
          {"expires_ms", c.expires_ms}};
}

}  // namespace sp
