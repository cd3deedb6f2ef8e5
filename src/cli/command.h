// The CLI's one command table: every command is a noun and a verb
// (`rollout list`, `build logs 12`) with its kind, where it acts, its
// options and what it runs. main.cc builds the parser from the table; every
// later command is one more entry. docs/cli.md documents each, its exit
// codes and its --output json schema.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent_process.h"
#include "client/api_client.h"
#include "client/client_config.h"
#include "core/error.h"
#include "secrets/masker.h"
#include "server/server_process.h"
#include "store/sqlite/sqlite_store.h"
#include "wiring/engine_wiring.h"

namespace sp::cli {

using Doc = nlohmann::ordered_json;

// One exit-code policy for every command.
enum Exit : int {
  kExitOk = 0,
  kExitFailed = 1,       // The work ran and failed (a rollout's hosts restored).
  kExitUsage = 2,        // Bad usage or bad input (nothing done).
  kExitLockHeld = 3,     // A lock or another conflict.
  kExitUnavailable = 4,  // The server, a host or a daemon could not be reached; not available yet.
  kExitInterrupted = 5,  // Canceled or interrupted.
};
int ExitFor(const Error& e);

enum class Kind {
  kRead,      // Prints state; --output json prints one JSON document.
  kWrite,     // Changes state; prints what it did.
  kStream,    // Prints lines as they come (logs); --output json prints one JSON object a line.
  kRun,       // Runs until stopped (server, agent) or until its work ends (rollout run).
  kReserved,  // A verb kept for a coming feature: says so, exits 4.
};

// Where a command acts: through the configured server (--server,
// $SALLYPORT_SERVER, the client configuration) unless --local says the local
// state database (--store names it); some act only locally, some only
// through a server, some on neither.
enum class Where { kEither, kLocal, kServer, kNone };

// Extensions the test tree wires in (its own binary); the shipped binary
// passes none.
struct Extensions {
  LoadBalancerDecorator decorate_lb;                 // Every rollout's load balancers.
  std::function<void(const Event&)> observe_event;   // Every event a rollout emits (an agent's or run here).
};

// The options of every command, bound by the command's own options().
struct Args {
  // Where and how.
  std::string server, store, ca;
  bool local = false;
  std::string output = "text";
  // Service file and inventory.
  std::string config = "sallyport.yml", inventory = "inventory.yml";
  std::string stack, release, deployment, limit;
  // Rollouts.
  std::string artifact, version, batch, max_failures, lock_wait = "0s", id;
  std::string to;  // rollout undo --to: a version label or a rollout id.
  std::string status_inventory = "store";  // status -i: by default the state database's inventory.
  std::string wait_timeout = "30m";  // --wait gives up after this.
  bool dry_run = false, wait = false, force = false, plan_here = false, queue_anyway = false;
  int64_t build = 0;
  // Objects by id, name or path.
  int64_t number = 0;
  std::string key, path, name, user, template_name, project, branch, sha;
  bool follow = false;
  // Inventory files.
  std::string file, to_file, known_hosts;
  std::string env_name;             // credential set --env
  std::string helper;               // credential set --helper (docker-credential-<helper>)
  std::string vault_ref;            // credential set --vault PATH[#KEY]
  std::vector<std::string> realm_hosts;  // credential set --realm-host
  std::vector<std::string> hosts;   // credential set --host
  std::vector<std::string> deployments;  // credential set --deployment
  std::vector<std::string> branches;     // credential set --branch
  bool prune = false, yes = false;
  // Projects and tokens.
  std::string git_url, webhook_secret, credential;
  std::vector<std::string> labels, scopes;
  std::string expires;
  // Notification channels (notify add).
  std::string kind, url_file, url_env, secret_file, secret_env;
  std::vector<std::string> events, templates;
  // Vault files and passwords (secrets ...).
  std::vector<std::string> files, vault_ids, new_vault_ids;
  std::string vault_password_file, vault_password_env, new_vault_password_file, encrypt_vault_id;
  bool ask_vault_pass = false;
  // The apps: `server` and `agent run` bind their options here.
  ServerProcessOptions serve;
  TlsInitArgs tls_init;
  AgentProcessOptions agent;
};

struct Command;

// What a running command has: its arguments, where it acts, the local store
// or the server's client (opened on first use), and the output format.
class Context {
 public:
  Context(const Command& cmd, Args& args, const Extensions& ext);
  Args& a;
  const Extensions& ext;
  bool json() const { return a.output == "json"; }
  // True when this command acts through a server (decided once, by Where).
  bool remote() const { return remote_; }
  // Resolves where the command acts; an Error for a command that cannot act
  // there (e.g. a local-only command with --server).
  Status Decide();
  Result<SqliteStore*> Store();
  Result<ApiClient*> Api();
  const ClientConfig& client() const { return client_; }
  // Wall-clock ms, for records the command writes and ages it prints.
  int64_t Now() const { return clock_->WallMs(); }
  // Monotonic ms, for deadlines (--wait-timeout).
  int64_t Monotonic() const { return clock_->MonotonicMs(); }
  std::string StorePath() const;

 private:
  const Command& cmd_;
  Clock* clock_ = &RealClock::Instance();
  ClientConfig client_;
  bool remote_ = false;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<ApiClient> api_;
};

struct Command {
  std::vector<std::string> path;  // {"rollout", "list"}
  std::string summary;
  Kind kind;
  Where where;
  // Adds this command's own options and positionals (bound to Args).
  std::function<void(CLI::App& app, Args& a)> options;
  // Runs it; the exit code.
  std::function<int(Context& ctx)> run;
};

// The whole table, in help order.
const std::vector<Command>& Commands();
std::vector<Command> RolloutCommands();
std::vector<Command> LockCommands();
std::vector<Command> StatusCommands();
std::vector<Command> StoreCommands();
std::vector<Command> NotifyCommands();
std::vector<Command> JobCommands();
std::vector<Command> BuildCommands();
std::vector<Command> InventoryCommands();
std::vector<Command> ClaimCommands();
std::vector<Command> AgentCommands();
std::vector<Command> TokenCommands();
std::vector<Command> LoginCommands();
std::vector<Command> SecretsCommands();

// A read command's document: the server's answer at `api_path`, or built
// from the local store by `local`, as the context says.
Result<Doc> ReadDoc(Context& ctx, const std::string& api_path, const std::function<Result<Doc>(SqliteStore&)>& local);
// Prints a read command's document: JSON with --output json, else by `text`.
// The exit code (an error's when there is no document).
int PrintDoc(Context& ctx, const Result<Doc>& doc, const std::function<void(const Doc&)>& text);

// Output helpers.
int Fail(const Error& e);                      // "error: ..." on stderr; ExitFor(e).
void PrintJson(const Doc& doc);                // One document on stdout.
void PrintJsonLine(const Doc& doc);            // One compact line on stdout.
std::string Ago(int64_t then_ms, int64_t now_ms);  // "3s ago", "-" for 0.
// A rollout event: its human line (none for some), or with `json` its JSON line.
// With `mask`, the values it holds are masked in the line (a rollout's secrets).
void PrintEvent(const Event& e, bool json, const Masker* mask = nullptr);
// Adds -c, -i, --stack, -r, -d: a command that resolves (release, deployment).
void ScopeOptions(CLI::App& app, Args& a);

}  // namespace sp::cli
