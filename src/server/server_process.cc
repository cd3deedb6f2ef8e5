#include "server/server_process.h"

#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "build/wire.h"
#include "core/file.h"
#include "core/text.h"
#include "deploy/deploy_plan.h"
#include "deploy/job_watch.h"
#include "deploy/left_rollouts.h"
#include "inventory/ansible/ansible_import.h"
#include "notify/notifier.h"
#include "rollout/event_format.h"
#include "rollout/masked_journal.h"
#include "runner/runner.h"
#include "secrets/vault_password.h"
#include "secrets/vault_ref.h"
#include "server/api_server.h"
#include "store/sqlite/store_file.h"
#include "vcs/git/git_vcs.h"

namespace sp {

std::string DirNextToStore(const std::string& store_path, const char* name) {
  auto parent = std::filesystem::path(store_path).parent_path();
  return (parent.empty() ? std::filesystem::path(".") : parent).string() + "/" + name;
}

Result<std::map<std::string, std::string>> ParseLabelArgs(const char* flag, const std::vector<std::string>& args) {
  std::map<std::string, std::string> out;
  for (const auto& kv : args) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Err(ErrorCode::kInvalidArgument, std::string(flag) + ": expected key=value, got '" + Printable(kv) + "'");
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

namespace {

// What a job looks like to a waiter in the server process: the store and
// the job's log file.
JobWatch LocalJobWatch(QueueStore& q, Clock& clock, int64_t id, const std::string& log_path, const std::string& what) {
  JobWatch w;
  w.what = what;
  w.poll = [&q, id]() -> Result<JobProgress> {
    SP_ASSIGN_OR_RETURN(Job j, q.GetJob(id));
    return JobProgress{j.state, j.lease_owner, j.result, j.error};
  };
  w.read_log = [log_path](int64_t offset) -> Result<std::string> {
    std::string out;
    if (log_path.empty()) return out;
    if (std::FILE* f = std::fopen(log_path.c_str(), "re")) {
      std::fseek(f, offset, SEEK_SET);
      char buf[65536];
      for (size_t n; out.size() < (1u << 20) && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
      std::fclose(f);
    }
    return out;
  };
  w.cancel = [&q, &clock, id] { return q.Cancel(id, clock.WallMs()); };
  return w;
}

struct Deploys {
  SqliteStore* store = nullptr;
  DeployQueue queue;
  bool via_agents = true;  // false: the engine runs in the server process.
  std::string job_log_dir;
  CredentialReader read_credential;  // The admin's bindings.
  std::function<void(const Event&)> observe_event;  // May be empty.
};

// The credential values a rollout run here was handed, masked in its journal
// and its lines (as an agent masks what it sends).
struct MaskedRun {
  explicit MaskedRun(JournalStore& store) : journal(store, masker) {}
  Masker masker;
  MaskedJournal journal;
};

// Seals stored secrets under this server's first vault password (its first
// --vault-id, else --vault-password-file: ServerVaultSecrets' order); none
// without a password.
std::function<Result<std::string>(const std::string&)> SecretSealer(const std::vector<VaultSecret>& secrets) {
  if (secrets.empty()) return nullptr;
  return [with = secrets.front()](const std::string& value) { return VaultEncrypt(value, with); };
}

// A rollout the server runs in its own process: its lock held as the
// server's (a later start finishes it if this process dies), the plan's
// credentials read as an agent would get them (PlanCredential), its events
// to `log`; what it was handed masked in both.
EngineSetup ServerEngineSetup(const Deploys& d, const RolloutPlan& plan, const LineCallback& log, MaskedRun& m) {
  EngineSetup setup(&m.journal, d.store, Millis(60'000));
  setup.holder_role = kServerHolderRole;
  setup.read_secret = [d, plan, &m](const std::string& ref) -> Result<std::string> {
    const std::string name = CredentialNameOf(ref);
    auto value = name.empty() ? ReadSecretRef(ref) : PlanCredential(*d.store, d.read_credential, plan, name);
    if (value) m.masker.Add(*value);
    return value;
  };
  setup.on_event = [log, observe = d.observe_event, &m](const Event& e) {
    if (std::string line = m.masker.Mask(FormatEvent(e)); !line.empty()) log(e.type == EventType::kHostFailed, line);
    if (observe) observe(e);
  };
  return setup;
}

// The deploy step of a build run by the server: queued as a rollout job for
// an agent of the deployment's network (default: the server needs no shell
// in that network) and followed until it ends, its agent's lines copied into
// the build's log; or (--deploy-on server) run by the engine in this
// process, its events in the build's log.
PipelineOptions::Deploy DeployHook(Deploys d) {
  return [d](const DeployRequest& r, const LineCallback& log, const std::atomic<bool>& cancel) -> Status {
    Clock& clock = *d.queue.clock;
    if (d.via_agents) {
      SP_ASSIGN_OR_RETURN(Job job, QueueDeploy(d.queue, r, log));
      const std::string what = "rollout job " + std::to_string(job.id);
      return WaitForJob(LocalJobWatch(*d.store, clock, job.id, JobLogPath(d.job_log_dir, job.id), what), log, cancel,
                        Millis(600'000), clock);
    }
    SP_ASSIGN_OR_RETURN(RolloutPlan plan, DeployPlan(*d.queue.inventory, r, log, clock.WallMs(), d.store));
    MaskedRun masked(*d.store);
    EngineWiring wiring(ServerEngineSetup(d, plan, log, masked));
    SP_ASSIGN_OR_RETURN(RolloutSummary sum, wiring.EngineFor(plan)->Run(plan));
    log(false, "rollout " + sum.rollout_id + " " + std::string(RolloutStatusName(sum.status)) + " in " +
                   FormatDuration(Millis(sum.elapsed_ms)));
    if (sum.status != RolloutStatus::kSucceeded) {
      return Err(ErrorCode::kUnavailable, "rollout failed: " + masked.masker.Mask(sum.error));
    }
    return Ok();
  };
}

// The rollouts a previous server process ran here and left running when it
// died (RolloutsLeftByServer), each finished forward in its own thread as
// `rollout resume` would: its hosts reconciled with what the runtime and
// the load balancers report, the rest rolled. A stop waits for them, as it
// waits for builds' deploys.
class LeftRollouts {
 public:
  explicit LeftRollouts(const Deploys& d) {
    auto ids = RolloutsLeftByServer(*d.store, *d.store, HolderAliveHere);
    if (!ids) {
      std::fprintf(stderr, "sallyport server: rollouts left running: %s\n", ids.error().message.c_str());
      return;
    }
    for (const std::string& id : *ids) threads_.emplace_back([d, id] { Finish(d, id); });
  }
  ~LeftRollouts() { Join(); }
  // Waits for them to end.
  void Join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  static void Finish(const Deploys& d, const std::string& id) {
    auto say = [&id](bool, const std::string& line) {
      std::printf("sallyport server: rollout %s: %s\n", id.c_str(), line.c_str());
      std::fflush(stdout);
    };
    say(false, "left running by a server process that died; finishing it forward (as `rollout resume`)");
    auto rec = d.store->GetRollout(id);
    auto plan = rec ? PlanFromJson(rec->plan_json) : Result<RolloutPlan>(Err(rec.error()));
    if (!plan) return say(true, "cannot resume: " + plan.error().message);
    MaskedRun masked(*d.store);
    EngineWiring wiring(ServerEngineSetup(d, *plan, say, masked));
    auto sum = wiring.EngineFor(*plan)->Resume(id);
    if (!sum) return say(true, "resume failed: " + masked.masker.Mask(sum.error().message));
    say(sum->status != RolloutStatus::kSucceeded,
        "resumed: " + std::string(RolloutStatusName(sum->status)) +
            (sum->error.empty() ? "" : ": " + masked.masker.Mask(sum->error)));
  }

  std::vector<std::thread> threads_;
};

// Builds on agents: each build becomes a build job for the agents with the
// build labels, followed until it ends (its agent records steps, lines and
// the outcome through the agent protocol).
BuildOptions::RunElsewhere BuildsOnAgents(SqliteStore* q, Clock& clock, std::map<std::string, std::string> labels,
                                          std::function<void()> jobs_enqueued) {
  return [q, &clock, labels, jobs_enqueued](const BuildRecord& b, const ProjectRecord& project,
                                            const std::atomic<bool>& cancel) -> Status {
    JobSpec spec;
    spec.kind = "build";
    // The remote's credential travels as its reference: read where the build runs.
    spec.payload = nlohmann::ordered_json{{"build_id", b.id},
                                          {"build", BuildToJson(b)},
                                          {"git_url", project.git_url},
                                          {"credential_ref", project.credential_ref},
                                          {"known_hosts", project.known_hosts}}
                       .dump();
    spec.labels = labels;
    spec.idempotency_key = "build-" + std::to_string(b.id) + "-" + std::to_string(b.started_ms);
    SP_ASSIGN_OR_RETURN(Job job, q->Enqueue(spec, clock.WallMs()));
    jobs_enqueued();
    std::string text;
    for (const auto& [k, v] : labels) text += (text.empty() ? "" : ",") + k + "=" + v;
    // The agent's lines reach the build's log directly; only the outcome matters here.
    JobWatch w = LocalJobWatch(*q, clock, job.id, "", "build job " + std::to_string(job.id) + " (" + text + ")");
    w.cancel_running = true;
    return WaitForJob(w, [](bool, const std::string&) {}, cancel, Millis(600'000), clock);
  };
}

// host:port with port 0 allowed (any free port).
Result<std::pair<std::string, int>> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  const std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  const std::string port_text = colon == std::string::npos ? "" : listen.substr(colon + 1);
  int port = -1;
  if (!port_text.empty() && port_text.size() <= 5 && port_text.find_first_not_of("0123456789") == std::string::npos) {
    port = std::stoi(port_text);
  }
  if (!IsValidAddress(host) || port < 0 || port > 65535) {
    return Err(ErrorCode::kInvalidArgument, "--listen: expected host:port, got '" + listen + "'");
  }
  return std::make_pair(host, port);
}

// Both files or neither, readable; without them, loopback only: tokens,
// plans and env never cross a network in clear.
Status CheckTls(const ServerProcessOptions& so, const std::string& host) {
  if (so.tls_cert.empty() != so.tls_key.empty()) {
    return Err(ErrorCode::kInvalidArgument, "--tls-cert and --tls-key go together");
  }
  if (so.tls_cert.empty()) {
    if (IsLoopbackHost(host)) return Ok();
    return Err(ErrorCode::kInvalidArgument,
               "--listen " + so.listen +
                   ": plain HTTP is served only on a loopback address; give --tls-cert and --tls-key (`sallyport "
                   "server init-tls --dir DIR` makes a private CA and a certificate)");
  }
  for (const auto& [flag, path] : {std::pair{"--tls-cert", so.tls_cert}, std::pair{"--tls-key", so.tls_key}}) {
    if (auto text = ReadTextFile(path); !text) return Err(text.error().code, std::string(flag) + ": " + text.error().message);
  }
  return Ok();
}

// Descriptors kept for the store, logs, builds' pipes and outgoing calls
// beside the connections the server holds.
constexpr int64_t kReservedFiles = 512;

// The soft limit on open files raised to the hard one (1,024 by default is
// fewer than the connections a server holds); what it is now.
int64_t RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur == RLIM_INFINITY ? int64_t{1} << 20 : static_cast<int64_t>(lim.rlim_cur);
}

// Serves and builds until SIGINT or SIGTERM.
Status ServeUntilStopped(const ServerProcessOptions& so, const std::pair<std::string, int>& listen, ApiServer& server,
                         BuildService& builds, const Deploys& deploys, Notifier& notifier) {
  // Block the stop signals before any thread starts, then wait for one.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  SP_TRY(server.Start(listen.first, listen.second));
  builds.Start();
  notifier.Start();
  const std::string host = listen.first.find(':') == std::string::npos ? listen.first : "[" + listen.first + "]";
  std::printf("sallyport server: listening on %s://%s:%d (store %s)\n", so.tls_cert.empty() ? "http" : "https",
              host.c_str(), server.port(), so.store_path.c_str());
  std::fflush(stdout);
  LeftRollouts left(deploys);
  int sig = 0;
  sigwait(&stop, &sig);
  server.Stop();
  builds.Stop();
  notifier.Stop();
  left.Join();
  std::printf("sallyport server: stopped (signal %d)\n", sig);
  return Ok();
}

// `server --routes`: every route and what it needs.
Status PrintRoutes(const ApiServer& server) {
  for (const auto& r : server.router().routes()) {
    std::printf("%-6s %-60s %s\n", std::string(http::MethodName(r.method)).c_str(), r.pattern.c_str(),
                std::string(auth::NeedName(r.access.need())).c_str());
  }
  return Ok();
}

// The notifier's options from the server's flags (docs/notifications.md).
// The vault passwords the options name, read once at start (a rekey keeps
// working with the old and the new one given: docs/secrets.md).
Result<std::vector<VaultSecret>> ServerVaultSecrets(const ServerProcessOptions& so) {
  std::vector<VaultSource> sources;
  for (const auto& spec : so.vault_ids) {
    SP_ASSIGN_OR_RETURN(auto s, ParseVaultId(spec));
    sources.push_back(std::move(s));
  }
  if (!so.vault_password_file.empty()) sources.push_back({"", so.vault_password_file});
  auto secrets = ReadVaultSecrets(sources);
  if (!secrets) return Err(secrets.error().Wrap("server vault passwords"));
  return secrets;
}

Result<NotifierOptions> NotifierSetup(const ServerProcessOptions& so, SqliteStore& store, Clock& clock) {
  auto backoff = ParseDuration(so.notify_backoff);
  if (!backoff) return Err(ErrorCode::kInvalidArgument, "--notify-backoff: " + backoff.error().message);
  NotifierOptions no;
  no.clock = &clock;
  no.read_ref = ReadSecretRef;
  no.public_url = so.public_url;
  no.max_attempts = so.notify_attempts;
  no.backoff = *backoff;
  no.build_of = [&store](const std::string& artifact) -> std::optional<BuildRecord> {
    if (artifact.empty()) return std::nullopt;
    auto b = store.BuildOfArtifact(artifact);
    return b && *b ? std::optional<BuildRecord>(**b) : std::nullopt;
  };
  return no;
}

}  // namespace

Status RunServerProcess(const ServerProcessOptions& so) {
  auto every = ParseDuration(so.expire_every);
  if (!every) return Err(ErrorCode::kInvalidArgument, "--expire-every: " + every.error().message);
  auto poll = ParseDuration(so.poll_every);
  if (!poll) return Err(ErrorCode::kInvalidArgument, "--poll-every: " + poll.error().message);
  auto retain = ParseDuration(so.retain);
  if (!retain) return Err(ErrorCode::kInvalidArgument, "--retain: " + retain.error().message);
  SP_ASSIGN_OR_RETURN(auto listen, ParseListen(so.listen));
  SP_TRY(CheckTls(so, listen.first));
  SP_ASSIGN_OR_RETURN(auto labels, ParseLabelArgs("--build-label", so.build_labels.empty()
                                                                       ? std::vector<std::string>{"role=builder"}
                                                                       : so.build_labels));
  SP_ASSIGN_OR_RETURN(auto store, OpenStoreFile(so.store_path));
  Clock& clock = RealClock::Instance();
  inventory::Service service(*store, inventory::ServiceOptions{inventory::DynamicSourceRunner()});
  ApiServerOptions options;
  options.clock = &clock;
  options.http.tls_cert_file = so.tls_cert;
  options.http.tls_key_file = so.tls_key;
  options.http.max_connections =
      static_cast<int>(std::clamp<int64_t>(RaiseFileLimit() - kReservedFiles, 16, so.max_connections));
  options.http.max_connections_per_client = so.max_connections_per_client;
  options.queue = store.get();
  options.auth = store.get();
  options.journal = store.get();
  options.locks = store.get();
  options.notify = store.get();
  // Personal deployments are torn down from here (the server must then reach
  // their network; through agents is not built yet).
  options.teardown = TeardownHook(EngineSetup(store.get(), store.get(), Millis(30'000)));
  options.expire_every = *every;
  options.job_log_dir = DirNextToStore(so.store_path, "jobs");
  options.retain = *retain;
  options.log_cap_bytes = so.log_cap_mib << 20;
  static GitVcs vcs;
  static SupervisedStepRunner steps;
  BuildOptions bo;
  bo.pipeline.clock = &clock;
  bo.pipeline.processes = &SystemProcesses();
  bo.pipeline.steps = &steps;
  bo.pipeline.vcs = &vcs;
  bo.pipeline.docker_host = so.docker_host;
  SP_ASSIGN_OR_RETURN(bo.pipeline.step_user, StepUserNamed(so.step_user));
  bo.pipeline.read_secret = ReadSecretRef;
  bo.pipeline.check_registry = RegistryPushCheck();
  SP_ASSIGN_OR_RETURN(auto vault_secrets, ServerVaultSecrets(so));
  options.seal_secret = SecretSealer(vault_secrets);
  bo.pipeline.read_credential = BoundCredentials(*store, WithVaultRefs(ReadSecretRef, std::move(vault_secrets)));
  options.read_credential = bo.pipeline.read_credential;
  bo.data_dir = DirNextToStore(so.store_path, "builds");
  options.build_log_dir = bo.data_dir + "/logs";  // BuildService::LogPath.
  bo.concurrency = std::max(1, so.build_slots);
  bo.log_cap_bytes = options.log_cap_bytes;
  bo.poll_every = *poll;
  bo.requeue_interrupted = so.requeue_interrupted;
  ApiServer* api = nullptr;  // Set below; the hooks run only once it serves.
  auto jobs_enqueued = [&api] {
    if (api) api->JobsEnqueued();
  };
  Deploys deploys{store.get(), DeployQueue{store.get(), &service, &clock, jobs_enqueued, store.get()}, so.deploy_on == "agents",
                  options.job_log_dir, options.read_credential, so.observe_event};
  bo.pipeline.deploy = DeployHook(deploys);
  // A build on an agent asks the server to deploy: always through the queue.
  options.deploy_start = [queue = deploys.queue](const DeployRequest& r) -> Result<int64_t> {
    SP_ASSIGN_OR_RETURN(Job job, QueueDeploy(queue, r, [](bool, const std::string&) {}));
    return job.id;
  };
  if (so.builds_on == "agents") bo.run_elsewhere = BuildsOnAgents(store.get(), clock, labels, jobs_enqueued);
  BuildService builds(*store, bo);
  options.builds = &builds;
  options.build_store = store.get();
  ApiServer server(service, options);
  api = &server;
  if (so.print_routes) return PrintRoutes(server);
  SP_ASSIGN_OR_RETURN(NotifierOptions no, NotifierSetup(so, *store, clock));
  Notifier notifier(*store, *store, no);
  return ServeUntilStopped(so, listen, server, builds, deploys, notifier);
}

}  // namespace sp
