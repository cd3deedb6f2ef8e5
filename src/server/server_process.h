// `sallyport server` as a process: the state database opened, the inventory
// service, the build service (builds here or on agents), deploys (queued for
// the agents of a deployment's network, or run here), the HTTP API; until
// SIGTERM or SIGINT.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "wiring/engine_wiring.h"

namespace sp {

struct ServerProcessOptions {
  std::string listen = "127.0.0.1:8700";  // host:port (port 0: any free port).
  // HTTPS (PEM files; `server init-tls` makes them). Without them the server
  // listens only on a loopback address.
  std::string tls_cert, tls_key;
  std::string store_path;
  std::string expire_every = "30s";       // Personal deployments past their TTL (0: never).
  std::string retain = "30d";             // Ended jobs, job and build logs older than this are removed (0: never).
  std::string poll_every = "10s";         // Every project's branches (0: never).
  std::string docker_host;                // DOCKER_HOST of image and push steps run here.
  std::string step_user;                  // Who commit steps run as ("": nobody when root).
  int build_slots = 2;
  int64_t log_cap_mib = 100;              // Each build's and job's log stops there, with a marker.
  int max_connections = 4096;             // HttpServerOptions: held at once (the file limit allowing).
  int max_connections_per_client = 256;   // HttpServerOptions: per client address.
  bool requeue_interrupted = false;
  std::string deploy_on = "agents";       // agents | server
  std::string builds_on = "server";       // server | agents
  std::vector<std::string> build_labels;  // key=value a build job requires (default role=builder).
  bool print_routes = false;              // Print every route and what it needs, then exit.
  // Notifications (notify/notifier.h): the server's URL for their links
  // ("": none), and how often a delivery is tried, from the first retry's wait.
  std::string public_url;
  int notify_attempts = 6;
  std::string notify_backoff = "1s";
  // The passwords of credentials bound to Ansible Vault values
  // (secrets/vault_ref.h): [ID@]SOURCE each, and a password file.
  std::vector<std::string> vault_ids;
  std::string vault_password_file;
  // Every event of a rollout run in this process (the test tree's binary
  // observes them); may be empty.
  std::function<void(const Event&)> observe_event;
};

// `server init-tls`'s options (tls_init.h).
struct TlsInitArgs {
  std::string dir;
  std::vector<std::string> names, ips;
};

// Serves until a stop signal; an Error when it cannot start.
Status RunServerProcess(const ServerProcessOptions& options);

// `key=value` command-line labels (--label, --build-label).
Result<std::map<std::string, std::string>> ParseLabelArgs(const char* flag, const std::vector<std::string>& args);

// A server's directory `name` next to its store: "builds" (build logs and
// workspaces), "jobs" (the agents' job logs).
std::string DirNextToStore(const std::string& store_path, const char* name);

}  // namespace sp
