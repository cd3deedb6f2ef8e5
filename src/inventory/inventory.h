// The inventory file (version: 1): stacks -> resources, deployments ->
// bastion, network label, env overrides, releases -> load balancers, hosts.
// Schema: docs/inventory.md. The same schema is carried by the inventory
// service later; the rollout reads only the resolved form (ResolvedTarget).
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
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
  // When the backend lacks a host's server, the rollout adds it (and a
  // personal deployment's teardown deletes it). Unset: false in deployments,
  // true in templates.
  std::optional<bool> add_servers;
  std::string ServerFor(const std::string& host) const {
    auto it = servers.find(host);
    return it == servers.end() ? host : it->second;
  }
};

struct ReleaseInventory {
  std::string name;
  // Empty only when the file says `load_balancers: none` (no traffic
  // switching: hosts are stopped and started in place).
  std::vector<LoadBalancerSpec> load_balancers;
  // Static hosts in rollout order: inline entries, and entries naming a host
  // of the deployment's pool (copied here; their names are in `pool_refs`).
  std::vector<HostSpec> hosts;
  std::set<std::string> pool_refs;
  // Tag selector over the deployment's pool and dynamic source ("role=api,az=b");
  // the hosts it picks follow the static ones. Empty: none.
  std::string select;
  std::map<std::string, std::string> env;   // Deployment overrides for this release.
  // Runtime settings for this environment.
  std::string docker_host;    // e.g. "unix:///run/sp-docker.sock"; empty = default.
  std::string base_dir;       // Process runtime root on the hosts.
};

// A command printing Ansible dynamic-inventory JSON (--list, --host), run at
// resolve time: hosts that autoscaling added are found when a rollout starts.
struct HostSourceSpec {
  std::vector<std::string> command;  // argv; never through a shell.
  int64_t timeout_ms = 10'000;
};

// One hook: an argv command run by whoever runs the rollout (the agent
// inside the network, or the CLI), or an HTTP call made from there. Only an
// admin configures hooks (a write that sets one needs the admin scope); a
// repository's file cannot add one. Docs: docs/inventory.md "Hooks".
struct HookSpec {
  std::string name;                      // [a-z0-9-]: the idempotency key's last part.
  std::vector<std::string> command;      // argv (never a shell), or
  std::string method = "POST", url;      // an HTTP(S) call,
  // with these headers: a value, or a secret reference ("env:NAME",
  // "file:/abs/path") read on the acting machine when the call is made.
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> header_refs;
  std::string body;                      // Template: {rollout} {key} {hook} {point} {release} ... (JSON-escaped).
  int64_t timeout_ms = 10'000;           // The whole hook, retries included.
  // A pre_rollout or a host's hook that fails: "abort" (the rollout before
  // any host; the host, restored) or "warn" (said, and the rollout goes on:
  // e.g. autoscaling could not be suspended in time). Ignored at the end.
  std::string on_error = "abort";
};

// Hooks by where they run in a rollout (docs/rollout.md "Hooks"):
// pre_rollout before the first host; post_rollout after the last, whatever
// the outcome (the undo of pre_rollout: always run once a rollout started);
// pre_host after a host is drained, post_host after it is back in rotation;
// on_failure when a rollout ends failed.
// One matcher of an alert silence (Alertmanager's API v2). `value` may name
// {release}, {deployment}, {stack} and, for a regex matcher, {hosts} and
// {addresses}: the plan's hosts as an alternation, each regex-escaped.
struct SilenceMatcher {
  std::string name;          // A label name: [a-zA-Z_][a-zA-Z0-9_]*.
  std::string value;
  bool regex = false;
  bool equal = true;         // false: != or !~.
};

// The alert silence a rollout holds while it touches hosts (docs/rollout.md
// "Alert silences"): made by whoever runs the rollout (the agent inside the
// network, where Alertmanager lives) before the first host, ending at most
// `duration` ahead and extended while the scope lock is held, expired when
// the rollout ends whatever the outcome (after a crash, by the resume or
// the reconcile). Its comment carries the rollout's id, so a resume adopts
// the silence it finds instead of making a second one.
struct SilenceSpec {
  std::string url;           // Alertmanager's base URL: http(s)://host:port[/prefix].
  std::vector<SilenceMatcher> matchers;  // Empty: the defaults (DefaultSilenceMatchers).
  int64_t duration_ms = 10 * 60'000;     // How far ahead it ends: 10s .. 10m.
  int64_t timeout_ms = 5'000;            // Each call to Alertmanager.
  // Alertmanager cannot be reached or refuses: "abort" (the rollout, before
  // any host) or "warn" (said, and the rollout goes on unsilenced).
  std::string on_error = "abort";
};

struct HooksSpec {
  std::vector<HookSpec> pre_rollout, post_rollout, pre_host, post_host, on_failure;
  std::optional<SilenceSpec> silence;
  bool empty() const {
    return pre_rollout.empty() && post_rollout.empty() && pre_host.empty() && post_host.empty() && on_failure.empty() &&
           !silence;
  }
};

struct DeploymentSpec {
  std::string name;
  std::vector<HostSpec> hosts;               // The deployment's host pool (for references and selectors).
  std::optional<HostSourceSpec> source;      // Dynamic hosts, added to the pool at resolve time.
  std::string network;        // Network label (which agents may act there).
  std::optional<BastionSpec> bastion;
  SshAccess ssh;
  std::map<std::string, std::string> env;   // Deployment overrides for every release.
  HooksSpec hooks;                           // Run around every rollout of this deployment.
  std::map<std::string, ReleaseInventory> releases;
};

// A personal deployment template: `sallyport inventory claim <template>
// --user ben` makes deployment `name` with {user} replaced ("personal-ben")
// from `deployment`, whose hosts are the pool: the claim gets one free pool
// host, alone, in every release. `per_user_resources`: the stack's resource
// attributes with {user} replaced become that deployment's env overrides
// (else the stack's resources are shared as they are).
struct TemplateSpec {
  std::string name_pattern = "personal-{user}";
  int64_t ttl_ms = 0;            // 0: a claim lasts until released.
  bool per_user_resources = false;
  DeploymentSpec deployment;     // Its hosts are the pool; its releases name no hosts.
};

struct StackSpec {
  std::string name;
  // Resource name -> attributes; exported to apps as <RESOURCE>_<ATTR> (upper case).
  std::map<std::string, std::map<std::string, std::string>> resources;
  // Every deployment that has hosts must name a bastion.
  bool requires_bastion = false;
  std::map<std::string, DeploymentSpec> deployments;
  std::map<std::string, TemplateSpec> templates;
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
  HooksSpec hooks;
};

// Errors name file, line and field; unknown and duplicate keys are errors; a
// host listed twice in a release, a release without load balancer, invalid
// names/addresses/ports are errors.
Result<Inventory> ParseInventory(const std::string& yaml_text, const std::string& file_name);
Result<Inventory> LoadInventory(const std::string& path);

// The deployment a claim of `t` by `user` creates on `host` (one of the
// pool's); kInvalidArgument for a bad user or resulting name.
Result<DeploymentSpec> MaterializeTemplate(const StackSpec& stack, const TemplateSpec& t, const std::string& user,
                                           const HostSpec& host);

// The env var a stack resource attribute is exported as: upper case, '-' ->
// '_': ("db", "url") -> "DB_URL", ("cache-1", "read-url") -> "CACHE_1_READ_URL".
std::string ResourceEnvName(const std::string& resource, const std::string& attribute);

// Runs a deployment's dynamic source; hosts or a clear error (never an empty
// fleet by accident). Provided by the inventory service (sp_inventory).
using HostSourceRunner = std::function<Result<std::vector<HostSpec>>(const HostSourceSpec&)>;

// kNotFound naming the missing stack/deployment/release. `limit` (host names,
// comma separated) narrows the hosts; an unknown name in it is an error. A
// release with `select` over a deployment with a `source` needs `run_source`.
Result<ResolvedTarget> Resolve(const Inventory& inv, const std::string& stack, const std::string& release,
                               const std::string& deployment, const std::string& limit = "",
                               const HostSourceRunner& run_source = nullptr);

// The inventory as data in the file's schema (only fields that differ from
// their defaults): the inventory service's JSON, and `export` (as YAML).
// Parsing the result with ParseInventory gives back the same inventory.
nlohmann::ordered_json InventoryToJson(const Inventory& inv);
nlohmann::ordered_json StackToJson(const StackSpec& stack);
// The inverse of StackToJson for documents that were validated when written
// (the inventory store's): no checks beyond types, far cheaper than
// ParseInventory. kInternal if the document is not what StackToJson makes.
Result<StackSpec> StackFromJson(const std::string& name, const nlohmann::json& doc);

// Block-style YAML of a JSON document (keys in the document's order).
std::string JsonToYaml(const nlohmann::ordered_json& doc);

}  // namespace sp
