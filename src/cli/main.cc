// sallyport: the CLI. Subcommands wire adapters into the domain; no business
// logic lives here. Exit codes: 0 ok, 1 rollout failed, 2 bad input or
// preflight, 3 lock busy.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "cli/inventory_cmd.h"
#include "inventory/ansible_import.h"
#include "cli/wiring.h"
#include "runner/runner.h"
#include "inventory/inventory.h"
#include "config/service_config.h"
#include "core/text.h"
#include "rollout/plan.h"
#include "rollout/rollback.h"
#include "transport/ssh/host_keys.h"

namespace sp::cli {
namespace {

struct Common {
  std::string store_path;
  std::string config = "sallyport.yml";
  std::string inventory = "inventory.yml";
  std::string stack, release, deployment;
};

std::string DefaultStore() {
  if (const char* s = std::getenv("SALLYPORT_STORE"); s && *s) return s;
  return ".sallyport/state.db";
}

int Fail(const Error& e, int code = 2) {
  std::fprintf(stderr, "error: %s\n", e.message.c_str());
  return e.code == ErrorCode::kConflict ? 3 : code;
}

Result<std::unique_ptr<SqliteStore>> OpenStore(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  return SqliteStore::Open(path);
}

// Resolves config + inventory into (service config, target).
struct Loaded {
  ServiceConfig svc;
  ResolvedTarget target;
};

Result<Loaded> Load(const Common& c, const std::string& limit) {
  Loaded l;
  SP_ASSIGN_OR_RETURN(l.svc, LoadServiceConfig(c.config));
  std::string stack = c.stack.empty() ? l.svc.stack : c.stack;
  std::string release = c.release;
  if (release.empty()) {
    if (l.svc.releases.size() != 1) {
      return Err(ErrorCode::kInvalidArgument, c.config + " defines " + std::to_string(l.svc.releases.size()) +
                                                  " releases: choose one with --release");
    }
    release = l.svc.releases.begin()->first;
  }
  if (c.deployment.empty()) return Err(ErrorCode::kInvalidArgument, "--deployment is required");
  // `-i store`: the inventory in the state database; `-i http://...`: a
  // Sallyport server's; else a file.
  if (c.inventory == "store" || StartsWith(c.inventory, "http://")) {
    SP_ASSIGN_OR_RETURN(l.target, ResolveThrough(c.inventory, c.store_path, stack, release, c.deployment, limit));
    return l;
  }
  SP_ASSIGN_OR_RETURN(Inventory inv, LoadInventory(c.inventory));
  SP_ASSIGN_OR_RETURN(l.target, Resolve(inv, stack, release, c.deployment, limit, inventory::DynamicSourceRunner()));
  return l;
}

int Finish(const RolloutPlan& plan, const Result<RolloutSummary>& r, const Output& out) {
  if (!r) return Fail(r.error());
  PrintSummary(plan, *r, out);
  return r->status == RolloutStatus::kSucceeded ? 0 : 1;
}

void AddCommon(CLI::App* cmd, Common& c, bool scope) {
  cmd->add_option("--store", c.store_path, "State database (default $SALLYPORT_STORE or .sallyport/state.db)");
  if (!scope) return;
  cmd->add_option("-c,--config", c.config, "Service file")->capture_default_str();
  cmd->add_option("-i,--inventory", c.inventory,
                  "Inventory file, or 'store' (the state database's), or a server URL (http://host:port)")
      ->capture_default_str();
  cmd->add_option("--stack", c.stack, "Stack (default: the service file's)");
  cmd->add_option("-r,--release", c.release, "Release (default: the only one in the service file)");
  cmd->add_option("-d,--deployment", c.deployment, "Deployment (environment)");
}

// `hosts trust`: scan the bastion (from here) and every host of the
// deployment (from the bastion, whose key must be trusted first), print the
// fingerprints, append new keys; a changed key is refused, never replaced.
int HostsTrust(const Common& c, const std::string& known_hosts_override) {
  auto inv = LoadInventory(c.inventory);
  if (!inv) return Fail(inv.error());
  std::string stack = c.stack;
  if (stack.empty()) {
    auto svc = LoadServiceConfig(c.config);
    if (!svc) return Fail(Error{ErrorCode::kInvalidArgument, "--stack is required (" + svc.error().message + ")"});
    stack = svc->stack;
  }
  auto st = inv->stacks.find(stack);
  if (st == inv->stacks.end()) return Fail(Error{ErrorCode::kNotFound, "stack '" + stack + "' not in " + c.inventory});
  auto dep = st->second.deployments.find(c.deployment);
  if (dep == st->second.deployments.end()) {
    return Fail(Error{ErrorCode::kNotFound, "deployment '" + c.deployment + "' not in stack '" + stack + "'"});
  }
  const DeploymentSpec& d = dep->second;
  std::string kh = known_hosts_override.empty() ? d.ssh.known_hosts : known_hosts_override;
  if (kh.empty()) {
    const char* home = std::getenv("HOME");
    kh = std::string(home ? home : "/root") + "/.ssh/known_hosts";
  }
  int changed = 0, added = 0;
  auto handle = [&](const std::string& who, Result<std::vector<ssh::OfferedKey>> keys) -> bool {
    if (!keys) {
      std::fprintf(stderr, "error: %s: %s\n", who.c_str(), keys.error().message.c_str());
      return false;
    }
    ssh::CompareWithKnownHosts(kh, &*keys);
    std::vector<ssh::OfferedKey> fresh;
    for (const auto& k : *keys) {
      const char* state = k.state == ssh::OfferedKey::kKnown ? "known  " : k.state == ssh::OfferedKey::kNew ? "added  " : "CHANGED";
      std::printf("%s %-10s %-22s %s %s\n", state, who.c_str(), k.name.c_str(), k.type.c_str(), k.fingerprint.c_str());
      if (k.state == ssh::OfferedKey::kNew) fresh.push_back(k);
      if (k.state == ssh::OfferedKey::kChanged) ++changed;
    }
    if (auto s = ssh::AppendKnownHosts(kh, fresh); !s) {
      std::fprintf(stderr, "error: %s\n", s.error().message.c_str());
      return false;
    }
    added += static_cast<int>(fresh.size());
    return true;
  };
  bool ok = true;
  std::unique_ptr<SshTransport> via;
  if (d.bastion) {
    ok &= handle("bastion", ssh::ScanHostKeys(d.bastion->address, d.bastion->port, nullptr));
    SshOptions o = SshOptionsFor(d.bastion, d.ssh);
    o.known_hosts = kh;
    via = std::make_unique<SshTransport>(o);
  }
  std::set<std::string> seen;
  for (const auto& [rname, rel] : d.releases) {
    if (!c.release.empty() && rname != c.release) continue;
    for (const HostSpec& h : rel.hosts) {
      const std::string key = h.address + ":" + std::to_string(h.ssh_port);
      if (!seen.insert(key).second) continue;
      ok &= handle(h.name, ssh::ScanHostKeys(h.address, h.ssh_port, via.get()));
    }
  }
  std::printf("%d key(s) added to %s\n", added, kh.c_str());
  if (changed) {
    std::fprintf(stderr,
                 "error: %d host key(s) CHANGED: nothing was replaced. If the change is expected, remove the old "
                 "entries (ssh-keygen -R <name> -f %s) and run `sallyport hosts trust` again\n",
                 changed, kh.c_str());
    return 1;
  }
  return ok ? 0 : 1;
}

// `rollout --server`: the frozen plan becomes a job for the agents of its
// network (the plan's id is the idempotency key: queueing it twice is one job).
int EnqueueRollout(const std::string& server, const RolloutPlan& plan, bool wait) {
  nlohmann::ordered_json body{{"kind", "rollout"},
                      {"payload", PlanToJson(plan)},
                      {"labels", {{"network", plan.network}}},
                      {"idempotency_key", plan.id}};
  auto job = ServerCall(server, "POST", "/v1/jobs", body.dump());
  if (!job) return Fail(job.error());
  const int64_t id = (*job)["id"];
  std::printf("queued rollout %s as job %lld for network %s\n", plan.id.c_str(), static_cast<long long>(id),
              plan.network.c_str());
  std::fflush(stdout);
  if (!wait) return 0;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto j = ServerCall(server, "GET", "/v1/jobs/" + std::to_string(id));
    if (!j) return Fail(j.error());
    const std::string state = (*j)["state"];
    if (state == "queued" || state == "leased") continue;
    std::printf("job %lld %s by %s: %s\n", static_cast<long long>(id), state.c_str(),
                (*j)["owner"].get<std::string>().c_str(),
                (state == "succeeded" ? (*j)["result"] : (*j)["error"]).get<std::string>().c_str());
    return state == "succeeded" ? 0 : 1;
  }
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"Sallyport: rolling releases with zero failed requests"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sallyport 0.1.0");

  Common c;
  // rollout
  auto* rollout = app.add_subcommand("rollout", "Ship an artifact to every host of a (release, deployment)");
  AddCommon(rollout, c, true);
  std::string artifact, version, batch, max_failures, limit, lock_wait = "0s", resume_id;
  bool json = false, dry_run = false, resume = false;
  rollout->add_option("-a,--artifact,--image", artifact, "Image (repo@sha256:...) or executable/tarball path");
  rollout->add_option("--label", version, "Version label shown to people (default: the artifact)");
  rollout->add_option("--batch", batch, "Hosts per batch: N or N% (default from the service file, 1)");
  rollout->add_option("--max-failures", max_failures, "Failed hosts tolerated: N or N% (default 0)");
  rollout->add_option("--limit", limit, "Only these hosts (comma separated)");
  rollout->add_option("--lock-wait", lock_wait, "Wait this long for a busy lock (e.g. 30s)");
  rollout->add_flag("--json", json, "One JSON event per line");
  rollout->add_flag("--dry-run", dry_run, "Print the frozen plan and exit");
  rollout->add_flag("--resume", resume, "Resume an interrupted rollout (reconcile first)");
  rollout->add_option("--id", resume_id, "Rollout id to resume (default: the scope's unfinished one)");
  std::string server_url;
  bool wait_for_job = false;
  bool run_local = false;
  rollout->add_option("--server", server_url,
                      "Queue the frozen plan on this Sallyport server: an agent of the deployment's network runs it "
                      "(default $SALLYPORT_SERVER)");
  rollout->add_flag("--wait", wait_for_job, "With --server: wait for the job's outcome (exit 0 if it succeeded)");
  rollout->add_flag("--local", run_local, "Run the rollout in this process even when a server is configured");

  // rollback
  auto* rollback = app.add_subcommand("rollback", "Return to the previous successful version (from kept artifacts)");
  AddCommon(rollback, c, true);
  rollback->add_flag("--json", json, "One JSON event per line");
  rollback->add_option("--lock-wait", lock_wait, "Wait this long for a busy lock");

  // lock
  auto* lock = app.add_subcommand("lock", "Show or release rollout locks");
  lock->require_subcommand(1);
  auto* lock_show = lock->add_subcommand("show", "List locks with holder, reason and expiry");
  AddCommon(lock_show, c, false);
  auto* lock_release = lock->add_subcommand("release", "Release a lock (operator action)");
  AddCommon(lock_release, c, false);
  std::string lock_key;
  lock_release->add_option("key", lock_key, "stack/release/deployment")->required();

  // history / show
  auto* history = app.add_subcommand("history", "Recent rollouts");
  AddCommon(history, c, false);
  auto* show = app.add_subcommand("show", "One rollout: plan, hosts and journal");
  AddCommon(show, c, false);
  std::string show_id;
  show->add_option("id", show_id, "Rollout id")->required();

  // hosts trust
  auto* hosts = app.add_subcommand("hosts", "Host keys of a deployment's bastion and hosts");
  hosts->require_subcommand(1);
  auto* trust = hosts->add_subcommand("trust", "Record the host keys of a deployment's bastion and hosts in known_hosts");
  AddCommon(trust, c, true);
  std::string trust_known_hosts;
  trust->add_option("--known-hosts", trust_known_hosts,
                    "known_hosts file (default: the deployment's ssh.known_hosts, else ~/.ssh/known_hosts)");

  InventoryCommands inventory_cmds;
  AddInventoryCommands(app, inventory_cmds);
  CLI11_PARSE(app, argc, argv);
  if (trust->parsed()) return HostsTrust(c, trust_known_hosts);  // Needs no state database.
  if (c.store_path.empty()) c.store_path = DefaultStore();
  if (int rc = RunInventoryCommands(inventory_cmds, c.store_path); rc >= 0) return rc;
  Output out{json};

  auto store_or = OpenStore(c.store_path);
  if (!store_or) return Fail(store_or.error());
  SqliteStore* store = store_or->get();
  auto wait = ParseDuration(lock_wait);
  if (!wait) return Fail(wait.error());

  if (rollout->parsed()) {
    Wiring wiring(store, out, *wait);
    if (resume) {
      std::string id = resume_id;
      if (id.empty()) {
        auto l = Load(c, "");
        if (!l) return Fail(l.error());
        auto rec = store->Latest(l->target.stack, l->target.release, l->target.deployment, RolloutStatus::kRunning);
        if (!rec) return Fail(rec.error());
        if (!*rec) {
          std::printf("nothing to resume for %s/%s/%s\n", l->target.stack.c_str(), l->target.release.c_str(),
                      l->target.deployment.c_str());
          return 0;
        }
        id = (*rec)->id;
      }
      auto rec = store->GetRollout(id);
      if (!rec) return Fail(rec.error());
      auto plan = PlanFromJson(rec->plan_json);
      if (!plan) return Fail(plan.error());
      return Finish(*plan, wiring.EngineFor(*plan)->Resume(id), out);
    }
    if (artifact.empty()) return Fail(Error{ErrorCode::kInvalidArgument, "--artifact is required"});
    auto l = Load(c, limit);
    if (!l) return Fail(l.error());
    PlanInput in;
    in.artifact = artifact;
    in.version = version;
    in.now_ms = RealClock::Instance().WallMs();
    if (!batch.empty()) {
      auto b = ParseCountOrPercent(batch);
      if (!b) return Fail(b.error().Wrap("--batch"));
      in.batch_override = *b;
    }
    if (!max_failures.empty()) {
      auto m = ParseCountOrPercent(max_failures);
      if (!m) return Fail(m.error().Wrap("--max-failures"));
      in.max_failures_override = *m;
    }
    auto plan = BuildPlan(l->svc, l->target, in);
    if (!plan) return Fail(plan.error());
    if (dry_run) {
      std::printf("%s\n", PlanToJson(*plan, 2).c_str());
      return 0;
    }
    if (!run_local) server_url = ServerOrConfigured(server_url);
    if (!server_url.empty() && run_local) {
      return Fail(Error{ErrorCode::kInvalidArgument, "--local and --server: choose one"});
    }
    if (!server_url.empty()) return EnqueueRollout(server_url, *plan, wait_for_job);
    return Finish(*plan, wiring.EngineFor(*plan)->Run(*plan), out);
  }

  if (rollback->parsed()) {
    auto l = Load(c, "");
    if (!l) return Fail(l.error());
    const auto& t = l->target;
    auto plan = RollbackPlanFor(*store, t.stack, t.release, t.deployment, RealClock::Instance().WallMs());
    if (!plan) return Fail(plan.error());
    Wiring wiring(store, out, *wait);
    return Finish(*plan, wiring.EngineFor(*plan)->Run(*plan), out);
  }

  if (lock_show->parsed()) {
    auto locks = store->List();
    if (!locks) return Fail(locks.error());
    int64_t now = RealClock::Instance().WallMs();
    if (locks->empty()) std::printf("no locks\n");
    for (const auto& l : *locks) {
      std::printf("%-40s %s  %s  %s\n", l.key.c_str(), l.holder.c_str(), l.reason.c_str(),
                  l.expires_ms > now ? ("expires in " + FormatDuration(Millis(l.expires_ms - now))).c_str()
                                     : "EXPIRED");
    }
    return 0;
  }
  if (lock_release->parsed()) {
    auto s = store->ForceRelease(lock_key);
    if (!s) return Fail(s.error());
    std::printf("released %s\n", lock_key.c_str());
    return 0;
  }
  if (history->parsed()) {
    auto rs = store->ListRollouts(20);
    if (!rs) return Fail(rs.error());
    for (const auto& r : *rs) {
      auto p = PlanFromJson(r.plan_json);
      std::printf("%s  %-9s %-11s %s/%s/%s  %s\n", r.id.c_str(), r.kind.c_str(),
                  std::string(RolloutStatusName(r.status)).c_str(), r.stack.c_str(), r.release.c_str(),
                  r.deployment.c_str(), p ? p->app.version.c_str() : "?");
    }
    return 0;
  }
  if (show->parsed()) {
    auto r = store->GetRollout(show_id);
    if (!r) return Fail(r.error());
    std::printf("%s %s %s\n%s\n", r->id.c_str(), r->kind.c_str(), std::string(RolloutStatusName(r->status)).c_str(),
                r->error.c_str());
    auto hosts = store->Hosts(show_id);
    if (hosts) {
      for (const auto& h : *hosts) {
        std::printf("  %-12s %-10s %-14s out %s\n", h.host.c_str(), h.state.c_str(), h.last_step.c_str(),
                    FormatDuration(Millis(h.out_of_rotation_ms)).c_str());
      }
    }
    auto steps = store->Steps(show_id);
    if (steps) {
      for (const auto& s : *steps) {
        std::printf("  %lld %-12s %-14s %-5s %s\n", static_cast<long long>(s.ts_ms), s.host.c_str(), s.step.c_str(),
                    s.phase.c_str(), s.detail.c_str());
      }
    }
    return 0;
  }
  return 0;
}

}  // namespace sp::cli

int main(int argc, char** argv) {
  // The step supervisor (runner/runner.h): not a user command.
  if (argc > 1 && std::string(argv[1]) == "__supervise") return sp::SuperviseMain(argc - 1, argv + 1);
  return sp::cli::Main(argc, argv);
}
