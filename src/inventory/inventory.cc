#include "inventory/inventory.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "inventory/hooks.h"
#include "inventory/selector.h"
#include "config/yaml_util.h"
#include "core/file.h"
#include "core/text.h"

namespace sp {
namespace {

using yaml::Map;
using yaml::Reader;
using yaml::Val;

const std::vector<std::string> kTopKeys = {"version", "stacks"};
const std::vector<std::string> kStackKeys = {"resources", "requires_bastion", "deployments", "templates"};
const std::vector<std::string> kTemplateKeys = {"name", "ttl", "resources", "deployment"};
const std::vector<std::string> kDeploymentKeys = {"network", "bastion", "ssh", "env", "hosts", "source", "hooks",
                                                  "releases"};
const std::vector<std::string> kSourceKeys = {"command", "timeout"};
const std::vector<std::string> kSshKeys = {"known_hosts", "config", "identity", "user", "connect_timeout", "max_hosts"};
const std::vector<std::string> kBastionKeys = {"address", "port", "user", "key", "host_key"};
const std::vector<std::string> kReleaseKeys = {"load_balancers", "hosts", "select", "env", "docker_host", "base_dir"};
const std::vector<std::string> kLoadBalancerKeys = {"kind", "socket", "address", "backend", "servers", "add_servers"};
const std::vector<std::string> kHostKeys = {"name", "address", "port", "ssh_user", "ssh_port", "tags"};

constexpr size_t kMaxUnixSocketPath = 107;  // sizeof(sockaddr_un::sun_path) - 1.

// Unix login names: [a-z_][a-z0-9_-]{0,31}.
bool IsValidUserName(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  if (!(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
           c == '-';
  });
}

// HAProxy backend and server names: letters, digits, '-', '_', '.', ':'.
bool IsValidHaproxyName(const std::string& s) {
  if (s.empty() || s.size() > 255) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

Result<std::string> AsUserName(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::string s, r.AsString(v));
  if (!IsValidUserName(s)) {
    return Err(r.Fail(v, "invalid user name '" + s + "' (expected [a-z_][a-z0-9_-]*, at most 32 characters)"));
  }
  return s;
}

// "{user}" (templates fill it in at claim time; ParseStack rejects it
// elsewhere) stands for a user name.
Result<std::string> AsHaproxyName(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::string s, r.AsString(v));
  std::string probe = s;
  for (size_t at; (at = probe.find("{user}")) != std::string::npos;) probe.replace(at, 6, "u");
  if (!IsValidHaproxyName(probe)) {
    return Err(r.Fail(v, "invalid HAProxy name '" + s + "' (expected letters, digits, '-', '_', '.', ':')"));
  }
  return s;
}

Result<std::string> AsHostAddress(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::string s, r.AsString(v));
  if (!IsValidAddress(s)) return Err(r.Fail(v, "invalid address '" + s + "' (expected an IPv4 address or a DNS name)"));
  return s;
}

Result<std::map<std::string, std::map<std::string, std::string>>> ParseResources(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map res, r.AsMap(v));
  std::map<std::string, std::map<std::string, std::string>> out;
  std::map<std::string, std::string> exported_by;  // Env name -> field path.
  for (const auto& [name, rv] : res.entries) {
    SP_TRY(r.CheckName(rv, name));
    SP_ASSIGN_OR_RETURN(Map attrs, r.AsMap(rv));
    auto& dst = out[name];
    for (const auto& [attr, av] : attrs.entries) {
      const std::string env = ResourceEnvName(name, attr);
      if (attr.empty() || !IsValidEnvName(env)) {
        return Err(r.Fail(av, "invalid attribute name '" + attr + "' (it would be exported as '" + env +
                                  "'; use letters, digits, '-' and '_')"));
      }
      auto [it, inserted] = exported_by.emplace(env, av.path);
      if (!inserted) {
        return Err(r.Fail(av, "exported as " + env + ", which " + it->second + " is exported as too"));
      }
      SP_ASSIGN_OR_RETURN(dst[attr], r.AsSafeString(av));
    }
  }
  return out;
}

// "a, b, c", or "none".
std::string KnownNames(const std::vector<std::string>& names) {
  return names.empty() ? "none" : yaml::JoinNames(names);
}

std::vector<std::string> HostNames(const std::vector<HostSpec>& hosts) {
  std::vector<std::string> names;
  for (const HostSpec& h : hosts) names.push_back(h.name);
  return names;
}

bool HasHost(const std::vector<HostSpec>& hosts, const std::string& name) {
  return std::any_of(hosts.begin(), hosts.end(), [&](const HostSpec& h) { return h.name == name; });
}

Result<BastionSpec> ParseBastion(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kBastionKeys));
  BastionSpec b;
  const Val* address = m.Get("address");
  if (!address) return Err(r.Missing(m, "address"));
  SP_ASSIGN_OR_RETURN(b.address, AsHostAddress(r, *address));
  if (const Val* p = m.Get("port")) { SP_ASSIGN_OR_RETURN(b.port, r.AsPort(*p)); }
  if (const Val* u = m.Get("user")) { SP_ASSIGN_OR_RETURN(b.user, AsUserName(r, *u)); }
  if (const Val* k = m.Get("key")) { SP_ASSIGN_OR_RETURN(b.key, r.AsNonEmptyString(*k)); }
  if (const Val* h = m.Get("host_key")) { SP_ASSIGN_OR_RETURN(b.host_key, r.AsNonEmptyString(*h)); }
  return b;
}

Result<SshAccess> ParseSsh(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kSshKeys));
  SshAccess a;
  a.enabled = true;
  if (const Val* k = m.Get("known_hosts")) { SP_ASSIGN_OR_RETURN(a.known_hosts, r.AsAbsolutePath(*k)); }
  if (const Val* c = m.Get("config")) {
    SP_ASSIGN_OR_RETURN(a.config, r.AsNonEmptyString(*c));
    if (a.config != "none" && a.config.front() != '/') return Err(r.Fail(*c, "expected an absolute path or none"));
  }
  if (const Val* i = m.Get("identity")) { SP_ASSIGN_OR_RETURN(a.identity, r.AsAbsolutePath(*i)); }
  if (const Val* u = m.Get("user")) { SP_ASSIGN_OR_RETURN(a.user, AsUserName(r, *u)); }
  if (const Val* t = m.Get("connect_timeout")) {
    SP_ASSIGN_OR_RETURN(Millis ms, r.AsDuration(*t));
    a.connect_timeout_ms = ms.count();
  }
  if (const Val* n = m.Get("max_hosts")) { SP_ASSIGN_OR_RETURN(a.max_hosts, r.AsInt(*n, 1, 1000)); }
  return a;
}

// A host and the line of its name (for "listed twice" messages).
struct ParsedHost {
  HostSpec host;
  int line = 0;
};

Result<ParsedHost> ParseHost(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kHostKeys));
  ParsedHost out{HostSpec{}, v.line};
  HostSpec& h = out.host;
  const Val* name = m.Get("name");
  if (!name) return Err(r.Missing(m, "name"));
  SP_ASSIGN_OR_RETURN(h.name, r.AsString(*name));
  if (!IsValidHostName(h.name)) {
    return Err(r.Fail(*name, "invalid host name '" + h.name + "' (expected letters, digits, '-', '.', '_')"));
  }
  out.line = name->line;
  const Val* address = m.Get("address");
  if (!address) return Err(r.Missing(m, "address"));
  SP_ASSIGN_OR_RETURN(h.address, AsHostAddress(r, *address));
  if (const Val* p = m.Get("port")) { SP_ASSIGN_OR_RETURN(h.port, r.AsPort(*p)); }
  if (const Val* u = m.Get("ssh_user")) { SP_ASSIGN_OR_RETURN(h.ssh_user, AsUserName(r, *u)); }
  if (const Val* p = m.Get("ssh_port")) { SP_ASSIGN_OR_RETURN(h.ssh_port, r.AsPort(*p)); }
  if (const Val* t = m.Get("tags")) { SP_ASSIGN_OR_RETURN(h.tags, r.AsStringMap(*t)); }
  return out;
}

// `hosts`: the names a server entry may name; `any_host`: hosts are only
// known at resolve time (a selector over a dynamic source), so any valid name.
Result<LoadBalancerSpec> ParseLoadBalancer(const Reader& r, const Val& v, const std::vector<HostSpec>& hosts,
                                           bool any_host) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kLoadBalancerKeys));
  LoadBalancerSpec lb;
  if (const Val* k = m.Get("kind")) {
    SP_ASSIGN_OR_RETURN(lb.kind, r.AsString(*k));
    if (lb.kind != "haproxy") return Err(r.Fail(*k, "unsupported load balancer kind '" + lb.kind + "' (supported: haproxy)"));
  }
  const Val* socket = m.Get("socket");
  const Val* address = m.Get("address");
  if (socket && address) {
    return Err(r.Fail(v, "both 'socket' and 'address' are set; set exactly one (unix socket path or host:port)"));
  }
  if (!socket && !address) {
    return Err(r.Fail(v, "set exactly one of 'socket' (runtime API unix socket path) or 'address' (host:port)"));
  }
  if (socket) {
    SP_ASSIGN_OR_RETURN(lb.socket, r.AsAbsolutePath(*socket));
    if (lb.socket.size() > kMaxUnixSocketPath) {
      return Err(r.Fail(*socket, "socket path is " + std::to_string(lb.socket.size()) + " bytes; unix socket paths are limited to " +
                                     std::to_string(kMaxUnixSocketPath)));
    }
  } else {
    SP_ASSIGN_OR_RETURN(lb.address, r.AsHostPort(*address, /*port_required=*/true));
  }
  const Val* backend = m.Get("backend");
  if (!backend) return Err(r.Missing(m, "backend", " (the HAProxy backend holding this release's servers)"));
  SP_ASSIGN_OR_RETURN(lb.backend, AsHaproxyName(r, *backend));
  if (const Val* s = m.Get("servers")) {
    SP_ASSIGN_OR_RETURN(Map servers, r.AsMap(*s));
    for (const auto& [host, sv] : servers.entries) {
      if (any_host ? !IsValidHostName(host) : !HasHost(hosts, host)) {
        return Err(r.Fail(sv, "no host '" + host + "' in this release's hosts (hosts: " + KnownNames(HostNames(hosts)) +
                                  ")"));
      }
      SP_ASSIGN_OR_RETURN(lb.servers[host], AsHaproxyName(r, sv));
    }
  }
  if (const Val* a = m.Get("add_servers")) { SP_ASSIGN_OR_RETURN(lb.add_servers, r.AsBool(*a)); }
  return lb;
}

// A list of hosts with no name twice (both lines named).
Result<std::vector<HostSpec>> ParseHostList(const Reader& r, const Val& v, const char* where) {
  SP_ASSIGN_OR_RETURN(std::vector<Val> items, r.AsList(v));
  std::vector<HostSpec> out;
  std::map<std::string, int> first_line;
  for (const Val& item : items) {
    SP_ASSIGN_OR_RETURN(ParsedHost ph, ParseHost(r, item));
    auto [it, inserted] = first_line.emplace(ph.host.name, ph.line);
    if (!inserted) {
      return Err(r.Fail(ph.line, item.path + ".name",
                        "host '" + ph.host.name + "' listed twice in " + where + " (lines " +
                            std::to_string(it->second) + " and " + std::to_string(ph.line) + ")"));
    }
    out.push_back(std::move(ph.host));
  }
  return out;
}

Result<ReleaseInventory> ParseReleaseInventory(const Reader& r, const std::string& name, const Val& v,
                                               const DeploymentSpec& dep) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kReleaseKeys));
  ReleaseInventory rel;
  rel.name = name;
  // Hosts first: load balancers refer to them. An entry is a host mapping, or
  // the name of a host of the deployment's pool.
  if (const Val* hv = m.Get("hosts")) {
    SP_ASSIGN_OR_RETURN(std::vector<Val> items, r.AsList(*hv));
    std::map<std::string, int> first_line;
    for (const Val& item : items) {
      ParsedHost ph;
      if (item.node.IsScalar()) {
        SP_ASSIGN_OR_RETURN(std::string ref, r.AsString(item));
        auto pooled = std::find_if(dep.hosts.begin(), dep.hosts.end(), [&](const HostSpec& h) { return h.name == ref; });
        if (pooled == dep.hosts.end()) {
          return Err(r.Fail(item, "no host '" + ref + "' in this deployment's hosts (hosts: " +
                                      KnownNames(HostNames(dep.hosts)) + ")"));
        }
        ph = ParsedHost{*pooled, item.line};
        rel.pool_refs.insert(ref);
      } else {
        SP_ASSIGN_OR_RETURN(ph, ParseHost(r, item));
      }
      auto [it, inserted] = first_line.emplace(ph.host.name, ph.line);
      if (!inserted) {
        return Err(r.Fail(ph.line, item.path + ".name",
                          "host '" + ph.host.name + "' listed twice in this release (lines " +
                              std::to_string(it->second) + " and " + std::to_string(ph.line) + ")"));
      }
      rel.hosts.push_back(std::move(ph.host));
    }
  }
  if (const Val* sv = m.Get("select")) {
    SP_ASSIGN_OR_RETURN(rel.select, r.AsNonEmptyString(*sv));
    if (auto sel = ParseSelector(rel.select); !sel) return Err(r.Fail(*sv, sel.error().message));
    if (dep.hosts.empty() && !dep.source) {
      return Err(r.Fail(*sv, "selects from this deployment's hosts, but the deployment has neither hosts nor source"));
    }
  }
  // Server entries may name the release's hosts and every host it may select.
  std::vector<HostSpec> nameable = rel.hosts;
  if (!rel.select.empty()) nameable.insert(nameable.end(), dep.hosts.begin(), dep.hosts.end());
  const bool any_host = !rel.select.empty() && dep.source.has_value();
  const Val* lbs = m.Get("load_balancers");
  if (!lbs) {
    return Err(r.Missing(m, "load_balancers", " (every release needs at least one load balancer, or 'none' said explicitly)"));
  }
  std::vector<Val> lb_items;
  if (auto none = r.AsString(*lbs); !(none && *none == "none")) {
    SP_ASSIGN_OR_RETURN(lb_items, r.AsList(*lbs));
    if (lb_items.empty()) return Err(r.Fail(*lbs, "at least one load balancer is required (or 'none', said explicitly)"));
  }
  for (const Val& item : lb_items) {
    SP_ASSIGN_OR_RETURN(LoadBalancerSpec lb, ParseLoadBalancer(r, item, nameable, any_host));
    rel.load_balancers.push_back(std::move(lb));
  }
  if (const Val* e = m.Get("env")) { SP_ASSIGN_OR_RETURN(rel.env, r.AsEnv(*e)); }
  if (const Val* d = m.Get("docker_host")) {
    SP_ASSIGN_OR_RETURN(rel.docker_host, r.AsNonEmptyString(*d));
    if (!StartsWith(rel.docker_host, "unix:///") && !StartsWith(rel.docker_host, "tcp://")) {
      return Err(r.Fail(*d, "expected unix:///path/to/docker.sock or tcp://host:port, got '" + rel.docker_host + "'"));
    }
  }
  if (const Val* b = m.Get("base_dir")) { SP_ASSIGN_OR_RETURN(rel.base_dir, r.AsAbsolutePath(*b)); }
  return rel;
}

Result<DeploymentSpec> ParseDeployment(const Reader& r, const std::string& stack, bool requires_bastion,
                                       const std::string& name, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kDeploymentKeys));
  DeploymentSpec dep;
  dep.name = name;
  const Val* network = m.Get("network");
  if (!network) return Err(r.Missing(m, "network", " (the network label of the agents that may act here, e.g. network: local)"));
  SP_ASSIGN_OR_RETURN(dep.network, r.AsName(*network));
  if (const Val* b = m.Get("bastion")) { SP_ASSIGN_OR_RETURN(dep.bastion, ParseBastion(r, *b)); }
  if (const Val* sv = m.Get("ssh")) { SP_ASSIGN_OR_RETURN(dep.ssh, ParseSsh(r, *sv)); }
  if (dep.bastion) dep.ssh.enabled = true;
  if (const Val* e = m.Get("env")) { SP_ASSIGN_OR_RETURN(dep.env, r.AsEnv(*e)); }
  if (const Val* hv = m.Get("hosts")) { SP_ASSIGN_OR_RETURN(dep.hosts, ParseHostList(r, *hv, "this deployment")); }
  if (const Val* sv = m.Get("source")) {
    SP_ASSIGN_OR_RETURN(Map sm, r.AsMap(*sv, kSourceKeys));
    HostSourceSpec src;
    const Val* cmd = sm.Get("command");
    if (!cmd) return Err(r.Missing(sm, "command", " (argv of a program printing Ansible dynamic-inventory JSON)"));
    SP_ASSIGN_OR_RETURN(src.command, r.AsStringList(*cmd));
    if (src.command.empty() || src.command[0].empty()) return Err(r.Fail(*cmd, "the command needs a program"));
    if (const Val* t = sm.Get("timeout")) {
      SP_ASSIGN_OR_RETURN(Millis ms, r.AsDuration(*t));
      src.timeout_ms = ms.count();
    }
    dep.source = std::move(src);
  }
  if (const Val* hv = m.Get("hooks")) { SP_ASSIGN_OR_RETURN(dep.hooks, ParseHooks(r, *hv)); }
  const Val* releases = m.Get("releases");
  if (!releases) return Err(r.Missing(m, "releases"));
  SP_ASSIGN_OR_RETURN(Map rels, r.AsMap(*releases));
  bool has_hosts = !dep.hosts.empty() || dep.source.has_value();
  for (const auto& [rel_name, rv] : rels.entries) {
    SP_TRY(r.CheckName(rv, rel_name));
    SP_ASSIGN_OR_RETURN(ReleaseInventory rel, ParseReleaseInventory(r, rel_name, rv, dep));
    has_hosts |= !rel.hosts.empty();
    dep.releases.emplace(rel_name, std::move(rel));
  }
  if (requires_bastion && has_hosts && !dep.bastion) {
    return Err(r.Fail(v, "stack '" + stack + "' has requires_bastion: true, but this deployment has hosts and no bastion"));
  }
  return dep;
}

Result<StackSpec> ParseStack(const Reader& r, const std::string& name, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kStackKeys));
  StackSpec stack;
  stack.name = name;
  if (const Val* res = m.Get("resources")) { SP_ASSIGN_OR_RETURN(stack.resources, ParseResources(r, *res)); }
  if (const Val* rb = m.Get("requires_bastion")) { SP_ASSIGN_OR_RETURN(stack.requires_bastion, r.AsBool(*rb)); }
  if (const Val* deps = m.Get("deployments")) {
    SP_ASSIGN_OR_RETURN(Map dm, r.AsMap(*deps));
    for (const auto& [dep_name, dv] : dm.entries) {
      SP_TRY(r.CheckName(dv, dep_name));
      SP_ASSIGN_OR_RETURN(DeploymentSpec dep, ParseDeployment(r, name, stack.requires_bastion, dep_name, dv));
      for (const auto& [rel_name, rel] : dep.releases) {
        for (const auto& lb : rel.load_balancers) {
          if (lb.backend.find("{user}") != std::string::npos) {
            return Err(r.Fail(dv, "release '" + rel_name + "': backend '" + lb.backend +
                                      "': {user} is only filled in by templates"));
          }
        }
      }
      stack.deployments.emplace(dep_name, std::move(dep));
    }
  }
  if (const Val* ts = m.Get("templates")) {
    SP_ASSIGN_OR_RETURN(Map tm, r.AsMap(*ts));
    for (const auto& [tname, tv] : tm.entries) {
      SP_TRY(r.CheckName(tv, tname));
      SP_ASSIGN_OR_RETURN(Map t, r.AsMap(tv, kTemplateKeys));
      TemplateSpec spec;
      if (const Val* n = t.Get("name")) {
        SP_ASSIGN_OR_RETURN(spec.name_pattern, r.AsNonEmptyString(*n));
        std::string probe = spec.name_pattern;
        if (size_t at = probe.find("{user}"); at != std::string::npos) probe.replace(at, 6, "u");
        if (spec.name_pattern.find("{user}") == std::string::npos || !IsValidName(probe)) {
          return Err(r.Fail(*n, "expected a deployment name containing {user}, e.g. personal-{user}"));
        }
      }
      if (const Val* ttl = t.Get("ttl")) {
        SP_ASSIGN_OR_RETURN(Millis ms, r.AsDuration(*ttl));
        spec.ttl_ms = ms.count();
      }
      if (const Val* res = t.Get("resources")) {
        SP_ASSIGN_OR_RETURN(std::string mode, r.AsString(*res));
        if (mode != "shared" && mode != "per-user") return Err(r.Fail(*res, "expected shared or per-user"));
        spec.per_user_resources = mode == "per-user";
      }
      const Val* dv = t.Get("deployment");
      if (!dv) return Err(r.Missing(t, "deployment", " (network, hosts = the pool, releases of the personal deployment)"));
      SP_ASSIGN_OR_RETURN(spec.deployment, ParseDeployment(r, name, stack.requires_bastion, tname, *dv));
      for (const auto& [rel_name, rel] : spec.deployment.releases) {
        if (!rel.hosts.empty() || !rel.select.empty()) {
          return Err(r.Fail(*dv, "release '" + rel_name + "' of a template names no hosts: a claim gets one pool host"));
        }
      }
      if (spec.deployment.hosts.empty()) return Err(r.Fail(*dv, "a template needs a pool: its deployment's hosts"));
      stack.templates.emplace(tname, std::move(spec));
    }
  }
  return stack;
}


template <typename M>
std::vector<std::string> Keys(const M& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

}  // namespace

Result<DeploymentSpec> MaterializeTemplate(const StackSpec& stack, const TemplateSpec& t, const std::string& user,
                                           const HostSpec& host) {
  if (!IsValidUser(user)) {
    return Err(ErrorCode::kInvalidArgument, "invalid user name '" + user + "' (expected [a-z0-9][a-z0-9-]{0,31})");
  }
  auto with_user = [&](std::string text) {
    for (size_t at; (at = text.find("{user}")) != std::string::npos;) text.replace(at, 6, user);
    return text;
  };
  DeploymentSpec d = t.deployment;
  d.name = with_user(t.name_pattern);
  if (!IsValidName(d.name)) {
    return Err(ErrorCode::kInvalidArgument, "deployment name '" + d.name + "' for user '" + user + "' is not a valid name");
  }
  d.hosts = {host};
  for (auto& [name, rel] : d.releases) {
    rel.hosts = {host};
    rel.pool_refs = {host.name};
    for (auto& lb : rel.load_balancers) {
      lb.backend = with_user(lb.backend);
      lb.add_servers = lb.add_servers.value_or(true);  // A pool host joins and leaves the backend.
    }
  }
  if (t.per_user_resources) {
    for (const auto& [res, attrs] : stack.resources) {
      for (const auto& [attr, value] : attrs) {
        const std::string env = ResourceEnvName(res, attr);
        if (!d.env.count(env)) d.env[env] = with_user(value);
      }
    }
  }
  return d;
}

std::string ResourceEnvName(const std::string& resource, const std::string& attribute) {
  std::string out = resource + "_" + attribute;
  for (char& c : out) {
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

Result<Inventory> ParseInventory(const std::string& yaml_text, const std::string& file_name) {
  const Reader r(file_name);
  try {
    SP_ASSIGN_OR_RETURN(Map top, r.LoadTop(yaml_text, kTopKeys));
    Inventory inv;
    inv.file = file_name;
    const Val* stacks = top.Get("stacks");
    if (!stacks) return Err(r.Missing(top, "stacks"));
    SP_ASSIGN_OR_RETURN(Map sm, r.AsMap(*stacks));
    for (const auto& [name, sv] : sm.entries) {
      SP_TRY(r.CheckName(sv, name));
      SP_ASSIGN_OR_RETURN(StackSpec stack, ParseStack(r, name, sv));
      inv.stacks.emplace(name, std::move(stack));
    }
    return inv;
  } catch (const std::exception& e) {  // yaml-cpp throws on misuse; never let it escape.
    return Err(ErrorCode::kInternal, file_name + ": unexpected error reading inventory: " + e.what());
  }
}

Result<Inventory> LoadInventory(const std::string& path) {
  SP_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return ParseInventory(text, path);
}

Result<ResolvedTarget> Resolve(const Inventory& inv, const std::string& stack, const std::string& release,
                               const std::string& deployment, const std::string& limit,
                               const HostSourceRunner& run_source) {
  const std::string where = inv.file.empty() ? "the inventory" : inv.file;
  auto s = inv.stacks.find(stack);
  if (s == inv.stacks.end()) {
    return Err(ErrorCode::kNotFound,
               "stack '" + stack + "' not found in " + where + " (stacks: " + KnownNames(Keys(inv.stacks)) + ")");
  }
  auto d = s->second.deployments.find(deployment);
  if (d == s->second.deployments.end()) {
    return Err(ErrorCode::kNotFound, "deployment '" + deployment + "' not found in stack '" + stack +
                                         "' (deployments: " + KnownNames(Keys(s->second.deployments)) + ")");
  }
  const DeploymentSpec& dep = d->second;
  auto rel = dep.releases.find(release);
  if (rel == dep.releases.end()) {
    return Err(ErrorCode::kNotFound, "release '" + release + "' not in deployment '" + deployment + "' of stack '" +
                                         stack + "' (releases: " + KnownNames(Keys(dep.releases)) + ")");
  }
  const ReleaseInventory& ri = rel->second;

  ResolvedTarget t;
  t.stack = stack;
  t.release = release;
  t.deployment = deployment;
  t.network = dep.network;
  t.hooks = dep.hooks;
  t.bastion = dep.bastion;
  t.ssh = dep.ssh;
  t.load_balancers = ri.load_balancers;
  t.docker_host = ri.docker_host;
  t.base_dir = ri.base_dir;
  for (const auto& [res, attrs] : s->second.resources) {
    for (const auto& [attr, value] : attrs) t.resource_env[ResourceEnvName(res, attr)] = value;
  }
  t.deployment_env = dep.env;
  for (const auto& [k, v] : ri.env) t.deployment_env[k] = v;

  // The release's hosts: static ones, then what its selector picks from the
  // pool and the dynamic source (discovered now, at rollout time).
  std::vector<HostSpec> hosts = ri.hosts;
  if (!ri.select.empty()) {
    SP_ASSIGN_OR_RETURN(Selector sel, ParseSelector(ri.select));
    std::vector<HostSpec> candidates = dep.hosts;
    if (dep.source) {
      if (!run_source) {
        return Err(ErrorCode::kInvalidArgument, "deployment '" + deployment + "' of stack '" + stack +
                                                    "' has a dynamic host source; resolve it through the inventory service");
      }
      auto found = run_source(*dep.source);
      if (!found) return Err(found.error().Wrap("deployment '" + deployment + "' of stack '" + stack + "': host source"));
      for (auto& h : *found) {
        if (!HasHost(candidates, h.name)) candidates.push_back(std::move(h));
      }
    }
    for (const HostSpec& h : candidates) {
      if (sel.Matches(h.tags) && !HasHost(hosts, h.name)) hosts.push_back(h);
    }
  }

  std::set<std::string> wanted;
  for (const std::string& part : Split(limit, ',')) {
    std::string name = Trim(part);
    if (name.empty()) continue;
    if (!HasHost(hosts, name)) {
      return Err(ErrorCode::kNotFound, "--limit: host '" + name + "' is not in release '" + release +
                                           "' of deployment '" + deployment + "' of stack '" + stack +
                                           "' (hosts: " + KnownNames(HostNames(hosts)) + ")");
    }
    wanted.insert(std::move(name));
  }
  if (!Trim(limit).empty() && wanted.empty()) {
    return Err(ErrorCode::kInvalidArgument, "--limit '" + limit + "' names no host");
  }
  for (HostSpec& h : hosts) {
    if (wanted.empty() || wanted.count(h.name)) t.hosts.push_back(std::move(h));
  }
  return t;
}

}  // namespace sp
