// `sallyport server` and `sallyport inventory ...`: thin wiring of the
// inventory service (local store) or its HTTP API (--server URL).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "inventory/inventory.h"

namespace sp::cli {

struct InventoryArgs {
  std::string server;  // http://host:port; empty: the local store.
  std::string file, output, path, stack, release, deployment, limit, user, template_name;
  bool prune = false, yes = false, dry_run = false;
};

struct InventoryCommands {
  CLI::App* server = nullptr;
  CLI::App* apply = nullptr;
  CLI::App* exporter = nullptr;
  CLI::App* resolve = nullptr;
  CLI::App* get = nullptr;
  CLI::App* set = nullptr;
  CLI::App* del = nullptr;
  CLI::App* claim = nullptr;
  CLI::App* release = nullptr;
  CLI::App* expire = nullptr;
  std::string expire_every = "30s";  // server: how often expired claims are released (0: never).
  CLI::App* import = nullptr;
  CLI::App* token_create = nullptr;
  CLI::App* agent_run = nullptr;
  CLI::App* agent_list = nullptr;
  std::string token_file;
  std::string agent_lease = "60s";
  std::string agent_work_dir;
  std::string git_credential, known_hosts;
  CLI::App* queue_list = nullptr;
  CLI::App* queue_show = nullptr;
  CLI::App* queue_retry = nullptr;
  CLI::App* queue_cancel = nullptr;
  CLI::App* queue_logs = nullptr;
  int64_t job_id = 0;
  std::vector<std::string> token_labels;  // k=v
  std::string listen = "127.0.0.1:8700";
  // Builds (issue 5).
  CLI::App* project_add = nullptr;
  CLI::App* project_list = nullptr;
  CLI::App* build_list = nullptr;
  CLI::App* build_show = nullptr;
  CLI::App* build_start = nullptr;
  CLI::App* build_cancel = nullptr;
  CLI::App* logs = nullptr;
  std::string git_url, webhook_secret, branch, sha;
  int64_t build_id = 0;
  bool follow = false;
  std::string poll_every = "10s";
  int build_slots = 2;
  std::string docker_host;
  bool requeue_interrupted = false;
  std::string deploy_on = "agents", builds_on = "server";
  std::vector<std::string> build_labels;
  std::string store;  // --store; empty: the default state database.
  InventoryArgs a;
};

// Adds `server` and `inventory <verb>` to the app.
void AddInventoryCommands(CLI::App& app, InventoryCommands& c);
// Runs whichever of them was parsed; -1 if none was. `default_store`: the
// state database when --store is not given.
int RunInventoryCommands(InventoryCommands& c, const std::string& default_store);
// `project`, `build` and `logs`; -1 if none was parsed.
int RunBuildCommands(InventoryCommands& c, const std::string& store_path);

// One request to a Sallyport server (JSON body; `token`: an agent's bearer
// token). An API error becomes an Error with its code; 204 gives null.
// The server a command talks to: `flag` (--server), else $SALLYPORT_SERVER,
// else "" (none).
std::string ServerOrConfigured(const std::string& flag);

Result<nlohmann::ordered_json> ServerCall(const std::string& server, const std::string& method, const std::string& path,
                                          const std::string& body = "", const std::string& token = "");

// Resolves through the inventory: `source` "store" (the state database at
// store_path) or an http:// URL of a Sallyport server.
Result<ResolvedTarget> ResolveThrough(const std::string& source, const std::string& store_path,
                                      const std::string& stack, const std::string& release,
                                      const std::string& deployment, const std::string& limit);

}  // namespace sp::cli
