// The service file `sallyport.yml` (version: 1). Schema: docs/config.md.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/text.h"
#include "core/clock.h"

namespace sp {

// The `health:` of a release: one HTTP probe, repeated until it passes.
struct HealthCheckSpec {
  std::string path = "/health";
  int expected_status = 200;
  Millis interval{200};
  Millis timeout{1000};   // Per probe.
  int retries = 50;       // Probes before giving up.
};


// Shapes the service file's parser accepts, for whoever checks such a value
// again (an agent checking a plan that came over the network).
bool IsValidVolume(std::string_view s);      // /host/path:/container/path[:ro|:rw]
bool IsValidHealthPath(std::string_view s);  // a URL path: "/...", one line, no blank
// "credential:NAME" (in a plan also "credential:NAME@V", a stored secret's
// pinned version), "file:/absolute/path", "env:NAME" or "helper:NAME" (a
// docker credential helper, registry credentials only).
bool IsValidSecretRef(std::string_view s);
bool IsValidHelperName(std::string_view s);  // [a-z0-9-]{1,64}: docker-credential-<name>
// A helper reference ("helper:NAME") asked for registry `server`:
// "helper:NAME@server", what a secret reader reads by running
// `docker-credential-NAME get` with `server` on stdin.
std::string HelperRefFor(const std::string& ref, const std::string& server);
bool IsValidCredentialName(std::string_view s);  // [A-Za-z0-9._-]{1,64}

struct RegistrySpec {
  std::string address;        // "127.0.0.1:5000"; empty = no login.
  std::string username;
  // Secret reference for the password: "credential:NAME" (a binding the
  // server's admin made), or, in an operator's own local runs, "file:/path"
  // or "env:NAME". Never the value.
  std::string password_ref;
  // Plain HTTP instead of HTTPS: honoured for a loopback registry, or one the
  // acting machine's admin lists (SALLYPORT_INSECURE_REGISTRIES); never sent
  // credentials beyond loopback.
  bool insecure = false;
  // Token realms beyond the registry's own host that may receive the
  // credential: the admin's binding (credential set --realm-host), copied
  // into the plan by the server. Never read from a service file.
  std::vector<std::string> realm_hosts;
};

struct StrategySpec {
  CountOrPercent batch{1, false};
  CountOrPercent max_failures{0, false};
  Millis drain_timeout{30'000};
  Millis ready_timeout{10'000};   // LB must report UP within this.
  // Stopped earlier releases each host keeps after a rollout (for restore
  // and rollback); older ones are removed by the rollout's cleanup.
  int keep_previous = 1;
};
inline constexpr int kMaxKeepPrevious = 20;

// How one release of this service runs on its hosts.
struct ReleaseSpec {
  std::string name;
  std::string runtime = "docker";  // "docker" | "process"
  int port = 8080;                 // Default app port (hosts may override).
  std::vector<std::string> command;            // Args after the image/executable.
  std::map<std::string, std::string> env;
  // NAME: {credential: C} entries: "credential:C" (or "file:"/"env:" for
  // local runs), resolved by whoever starts the app, never in a plan's env.
  std::map<std::string, std::string> env_refs;
  std::vector<std::string> volumes;            // "host_path:container_path[:ro]"
  HealthCheckSpec health;
  std::vector<std::string> smoke;              // Optional argv run on the host after health.
  Millis stop_timeout{10'000};
  StrategySpec strategy;
};

// One step of the repository's pipeline, run at the built commit in a fresh
// workspace. kind command: `run` (an argv, never a shell string; a step that
// wants a shell says [sh, -c, "..."] itself). kind image: builds the
// Dockerfile, tagged with the sanitised branch and the commit. kind push:
// pushes it and records the digest. kind deploy: rolls that digest out to
// the deployment the branch rule picks.
struct PipelineStep {
  std::string name;
  std::string kind = "command";            // command | image | push | deploy
  std::vector<std::string> run;            // kind command: argv.
  std::map<std::string, std::string> env;
  Millis timeout{600'000};
  std::vector<std::string> when;           // Branch patterns; empty: every built branch.
  std::vector<std::string> secrets;        // Secret names the step needs (supplied by the secrets store).
  std::string release;                     // kind deploy: the release (default: the only one).
};

// Which branches build and where a successful build deploys. Patterns are
// '/'-separated segments: a literal, `*` (one segment), `**` (the rest) or
// `{user}` (one segment that must be a user name, [a-z0-9][a-z0-9-]{0,31}).
struct BranchRule {
  std::string match;     // "integration", "remote-run/{user}/*"
  std::string deploy;    // "integration", "personal-{user}"; empty: build only.
};

// The rules when the file has no `branches:` (the seed's flow).
std::vector<BranchRule> DefaultBranchRules();

struct ServiceConfig {
  std::string file;        // Path it was read from (for messages).
  std::string service;
  std::string stack;
  std::string image_repository;  // "127.0.0.1:5000/hello" (no tag); empty when no release uses docker.
  std::string image_dockerfile = "Dockerfile";  // Relative to the repository root.
  std::string image_context = ".";              // Build context, relative to the repository root.
  RegistrySpec registry;
  std::map<std::string, ReleaseSpec> releases;
  std::vector<PipelineStep> pipeline;   // In order; empty: nothing to build.
  std::vector<BranchRule> branches = DefaultBranchRules();
};

// Parses and validates. Errors name file, line and field path, e.g.
// "sallyport.yml:12: releases.web.health.interval: invalid duration 'x'".
// Unknown and duplicate keys are errors.
Result<ServiceConfig> ParseServiceConfig(const std::string& yaml_text, const std::string& file_name);
Result<ServiceConfig> LoadServiceConfig(const std::string& path);

// A commit's file (built by the server or an agent, planned by the server)
// names secrets only as credentials the server's admin bound: {file} and
// {env} would let the commit choose what is read on the agent. kPermissionDenied.
Status CheckCommitSecrets(const ServiceConfig& cfg);

}  // namespace sp
