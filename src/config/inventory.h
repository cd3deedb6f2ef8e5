// The inventory file (version: 1): stacks -> resources, deployments ->
// bastion, network label, env overrides, releases -> load balancers, hosts.
// Schema: docs/inventory.md. The same schema is carried by the inventory
// service later; the rollout reads only the resolved form (ResolvedTarget).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace sp {

struct BastionSpec {
  std::string address;
  int port = 22;
  std::string user = "deploy";
  std::string key;        // Key reference (file path); never the key itself.
  std::string host_key;   // Known host key line, optional.
};

// How the rollout reaches the deployment's hosts. SSH is on when the
// deployment has a bastion or an `ssh:` mapping; else hosts are on this machine.
struct SshAccess {
  bool enabled = false;
  std::string known_hosts;   // Empty: ~/.ssh/known_hosts.
  std::string config;        // Empty: ~/.ssh/config; "none": no config file.
  std::string identity;      // Key file; empty: bastion.key, else ssh-agent / config.
  std::string user;          // Hosts' default login; empty: bastion.user.
  int64_t connect_timeout_ms = 10'000;
  int max_hosts = 16;        // Host connections open at once.
};

struct HostSpec {
  std::string name;
  std::string address;
  int port = 0;               // App port override; 0 = the release's port.
  std::string ssh_user;
  int ssh_port = 22;
  std::map<std::string, std::string> tags;
};

struct LoadBalancerSpec {
  std::string kind = "haproxy";
  std::string socket;         // Runtime API unix socket path, or
  std::string address;        // "host:port" of the runtime API over TCP.
  std::string backend;
  std::map<std::string, std::string> servers;  // host name -> server name (default: host name).
  std::string ServerFor(const std::string& host) const {
    auto it = servers.find(host);
    return it == servers.end() ? host : it->second;
  }
};

struct ReleaseInventory {
  std::string name;
  std::vector<LoadBalancerSpec> load_balancers;
  std::vector<HostSpec> hosts;
  std::map<std::string, std::string> env;   // Deployment overrides for this release.
  // Runtime settings for this environment.
  std::string docker_host;    // e.g. "unix:///run/sp-docker.sock"; empty = default.
  std::string base_dir;       // Process runtime root on the hosts.
};

struct DeploymentSpec {
  std::string name;
  std::string network;        // Network label (which agents may act there).
  std::optional<BastionSpec> bastion;
  SshAccess ssh;
  std::map<std::string, std::string> env;   // Deployment overrides for every release.
  std::map<std::string, ReleaseInventory> releases;
};

struct StackSpec {
  std::string name;
  // Resource name -> attributes; exported to apps as <RESOURCE>_<ATTR> (upper case).
  std::map<std::string, std::map<std::string, std::string>> resources;
  // Every deployment that has hosts must name a bastion.
  bool requires_bastion = false;
  std::map<std::string, DeploymentSpec> deployments;
};

struct Inventory {
  std::string file;
  std::map<std::string, StackSpec> stacks;
};

// What a rollout needs for one (stack, release, deployment).
struct ResolvedTarget {
  std::string stack, release, deployment, network;
  std::optional<BastionSpec> bastion;
  SshAccess ssh;
  std::vector<LoadBalancerSpec> load_balancers;
  std::vector<HostSpec> hosts;
  std::map<std::string, std::string> resource_env;    // From stack resources.
  std::map<std::string, std::string> deployment_env;  // Deployment + release overrides.
  std::string docker_host, base_dir;
};

// Errors name file, line and field; unknown and duplicate keys are errors; a
// host listed twice in a release, a release without load balancer, invalid
// names/addresses/ports are errors.
Result<Inventory> ParseInventory(const std::string& yaml_text, const std::string& file_name);
Result<Inventory> LoadInventory(const std::string& path);

// The env var a stack resource attribute is exported as: upper case, '-' ->
// '_': ("db", "url") -> "DB_URL", ("cache-1", "read-url") -> "CACHE_1_READ_URL".
std::string ResourceEnvName(const std::string& resource, const std::string& attribute);

// kNotFound naming the missing stack/deployment/release. `limit` (host names,
// comma separated) narrows the hosts; an unknown name in it is an error.
Result<ResolvedTarget> Resolve(const Inventory& inv, const std::string& stack, const std::string& release,
                               const std::string& deployment, const std::string& limit = "");

}  // namespace sp
