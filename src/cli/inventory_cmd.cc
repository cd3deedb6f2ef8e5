#include "cli/inventory_cmd.h"

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <iostream>

#include "core/digest.h"
#include "core/file.h"
#include "core/text.h"
#include "inventory/ansible_import.h"
#include "inventory/service.h"
#include "cli/deploy_queue.h"
#include "cli/wiring.h"
#include "rollout/plan.h"
#include "server/api_server.h"
#include "server/job_store_rpc.h"
#include "build/build_service.h"
#include "build/vcs.h"
#include "rollout/plan.h"
#include "store/sqlite/sqlite_store.h"

namespace sp::cli {
namespace {

using inventory::Doc;

// Exit codes as in main.cc: 2 bad input or failure, 3 conflict (busy, exists, state).
int Fail(const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.message.c_str());
  return e.code == ErrorCode::kConflict ? 3 : 2;
}

Result<std::unique_ptr<SqliteStore>> OpenStoreAt(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  return SqliteStore::Open(path);
}

}  // namespace

Result<Doc> ServerCall(const std::string& server, const std::string& method, const std::string& path,
                       const std::string& body, const std::string& token) {
  const std::string type = "application/json";
  if (!StartsWith(server, "http://")) {
    return Err(ErrorCode::kInvalidArgument, "--server must be an http:// URL, got '" + server + "'");
  }
  httplib::Client client(server);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(60, 0);
  if (!token.empty()) client.set_default_headers({{"Authorization", "Bearer " + token}});
  httplib::Result res = method == "GET"      ? client.Get(path)
                        : method == "DELETE" ? client.Delete(path)
                        : method == "PUT"    ? client.Put(path, body, type)
                                             : client.Post(path, body, type);
  if (!res) return Err(ErrorCode::kUnavailable, "server " + server + ": " + httplib::to_string(res.error()));
  if (res->status == 204) return Doc();
  Doc doc = Doc::parse(res->body, nullptr, false);
  if (doc.is_discarded()) {
    return Err(ErrorCode::kInternal, "server " + server + " answered " + std::to_string(res->status) + " with non-JSON");
  }
  if (res->status >= 300) {
    const std::string code = doc.contains("error") ? doc["error"].value("code", "") : "";
    ErrorCode ec = code == "not_found"          ? ErrorCode::kNotFound
                   : code == "invalid_argument" ? ErrorCode::kInvalidArgument
                   : code == "conflict"         ? ErrorCode::kConflict
                   : code == "unauthenticated"  ? ErrorCode::kUnauthenticated
                   : code == "permission_denied" ? ErrorCode::kPermissionDenied
                                                : ErrorCode::kUnavailable;
    std::string msg = doc.contains("error") ? doc["error"].value("message", "") : res->body;
    return Err(ec, msg);
  }
  return doc;
}

namespace {

Result<Doc> Call(const std::string& server, const std::string& method, const std::string& path,
                 const std::string& body = "") {
  return ServerCall(server, method, path, body);
}

std::string Query(const std::string& stack, const std::string& release, const std::string& deployment,
                  const std::string& limit) {
  std::string q = "/v1/resolve?stack=" + httplib::detail::encode_query_param(stack) +
                  "&release=" + httplib::detail::encode_query_param(release) +
                  "&deployment=" + httplib::detail::encode_query_param(deployment);
  if (!limit.empty()) q += "&limit=" + httplib::detail::encode_query_param(limit);
  return q;
}

Result<ResolvedTarget> ResolvedFromJson(const Doc& j) {
  try {
    ResolvedTarget t;
    t.stack = j.at("stack");
    t.release = j.at("release");
    t.deployment = j.at("deployment");
    t.network = j.at("network");
    if (!j.at("bastion").is_null()) {
      const auto& b = j["bastion"];
      t.bastion = BastionSpec{b.at("address"), b.at("port"), b.at("user"), b.at("key"), b.at("host_key")};
    }
    const auto& s = j.at("ssh");
    t.ssh = SshAccess{s.at("enabled"), s.at("known_hosts"), s.at("config"), s.at("identity"), s.at("user"),
                      s.at("connect_timeout_ms"), s.at("max_hosts")};
    for (const auto& h : j.at("hosts")) {
      HostSpec hs{h.at("name"), h.at("address"), h.at("port"), h.at("ssh_user"), h.at("ssh_port"), {}};
      for (const auto& [k, v] : h.at("tags").items()) hs.tags[k] = v;
      t.hosts.push_back(std::move(hs));
    }
    for (const auto& lb : j.at("load_balancers")) {
      LoadBalancerSpec l{lb.at("kind"), lb.at("socket"), lb.at("address"), lb.at("backend"), {}};
      for (const auto& [k, v] : lb.at("servers").items()) {
        if (v.get<std::string>() != k) l.servers[k] = v;
      }
      l.add_servers = lb.value("add_servers", false);
      t.load_balancers.push_back(std::move(l));
    }
    for (const auto& [k, v] : j.at("env_layers").at("resources").items()) t.resource_env[k] = v;
    for (const auto& [k, v] : j.at("env_layers").at("deployment").items()) t.deployment_env[k] = v;
    t.docker_host = j.at("docker_host");
    t.base_dir = j.at("base_dir");
    return t;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal, std::string("server's resolve answer: ") + e.what());
  }
}

std::vector<std::string> PathParts(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& p : Split(path, '/')) {
    if (!p.empty()) out.push_back(p);
  }
  return out;
}

Result<std::string> ReadInput(const std::string& file) {
  if (file == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  return ReadTextFile(file);
}

// Asks on the terminal; never when stdin is not one.
bool Confirm(size_t n) {
  if (!::isatty(STDIN_FILENO)) return false;
  std::fprintf(stderr, "apply %zu change(s)? [y/N] ", n);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "yes";
}

void PrintChanges(const std::vector<std::string>& changes) {
  for (const auto& c : changes) std::printf("%s\n", c.c_str());
}

// What an agent knows of its job's lease: until when (steady clock) it is
// confirmed. Set from the claim and each heartbeat (sent at t, lease L:
// confirmed until t + L - L/4, so the margin covers the request's flight and
// a slow clock); zero once the server says it is lost. The fence of every
// action on hosts and LBs: a paused or partitioned agent stops acting by
// itself, before the server gives the job to another agent.
class JobLease {
 public:
  explicit JobLease(int64_t lease_ms) : lease_ms_(lease_ms) {}
  static int64_t SteadyMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void ConfirmedAt(int64_t sent_ms) { until_ = sent_ms + lease_ms_ - lease_ms_ / 4; }
  void Lost() { until_ = 0; }
  Status Fence() const {
    if (SteadyMs() < until_.load()) return Ok();
    return Err(ErrorCode::kConflict, "job lease not confirmed (lost, or not renewed in time): not acting");
  }

 private:
  int64_t lease_ms_;
  std::atomic<int64_t> until_{0};
};

// Where an agent runs build jobs.
struct AgentBuildOptions {
  std::string work_dir;     // Workspaces: <work_dir>/build-<id>, removed after each build.
  std::string docker_host;  // DOCKER_HOST for image and push steps; empty: the default.
};

// What every job an agent runs needs to know.
struct AgentContext {
  std::string server, token, name;
  int64_t lease_ms = 60'000;
  std::string halt_after;  // TEST ONLY (SALLYPORT_TEST_HALT_AFTER).
  AgentBuildOptions build;
};

void RunClaimedJob(const AgentContext& ctx, const Doc& claim, int64_t claim_sent);

// An agent's log lines of one job, shipped to the server in batches (every
// 200 ms, or at Close) through `send`. The lines wait in memory only while a
// batch is in flight; past 20,000 waiting lines the newest are counted and
// dropped (a line says how many). A send refused as 409 (lease lost) stops
// the shipping: a stale agent's lines never land in the job's log.
class LogShipper {
 public:
  using Send = std::function<Status(const Doc& lines)>;
  explicit LogShipper(Send send) : send_(std::move(send)), thread_([this] { Loop(); }) {}
  ~LogShipper() { Close(); }
  void Line(const std::string& step, bool is_err, const std::string& text) {
    std::lock_guard lk(mu_);
    if (pending_.size() >= 20'000) {
      ++dropped_;
      return;
    }
    pending_.push_back({{"ts", RealClock::Instance().WallMs()}, {"step", step}, {"err", is_err}, {"text", text}});
  }
  // Sends what is waiting now (in order with the background sends).
  void Flush() { SendPending(); }
  // Sends what is left, then stops.
  void Close() {
    {
      std::lock_guard lk(mu_);
      if (closing_) return;
      closing_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    for (;;) {
      bool last;
      {
        std::unique_lock lk(mu_);
        cv_.wait_for(lk, std::chrono::milliseconds(200), [this] { return closing_; });
        last = closing_;
      }
      SendPending();
      if (last) return;
    }
  }
  void SendPending() {
    std::lock_guard send_lock(send_mu_);
    Doc batch = Doc::array();
    {
      std::lock_guard lk(mu_);
      if (dropped_ > 0) {
        pending_.push_back({{"ts", RealClock::Instance().WallMs()}, {"step", "agent"}, {"err", true},
                            {"text", std::to_string(dropped_) + " line(s) dropped: the server could not keep up"}});
        dropped_ = 0;
      }
      batch.get_ref<Doc::array_t&>().swap(pending_);
    }
    if (batch.empty() || lost_) return;
    Status st = send_(batch);
    if (!st && st.error().code == ErrorCode::kConflict) lost_ = true;
  }
  Send send_;
  std::mutex mu_, send_mu_;
  std::condition_variable cv_;
  std::vector<Doc> pending_;
  int64_t dropped_ = 0;
  bool closing_ = false;
  bool lost_ = false;  // Under send_mu_.
  std::thread thread_;
};

// A build job's records go to the server (the build's steps and outcome,
// through POST /v1/agent/jobs/ID/build) and its lines to the job's log,
// which the server keeps as the build's log.
class RemoteBuildSink : public BuildSink {
 public:
  RemoteBuildSink(std::function<Status(const Doc&)> post, LogShipper& shipper) : post_(std::move(post)), shipper_(shipper) {}
  Status Update(const BuildRecord& b) override {
    return post_({{"build",
                   {{"status", std::string(BuildStatusName(b.status))}, {"author", b.author}, {"message", b.message},
                    {"artifact", b.artifact}, {"deployment", b.deployment}, {"error", b.error},
                    {"finished_ms", b.finished_ms}}}});
  }
  Status PutStep(const BuildStepRecord& x) override {
    return post_({{"step",
                   {{"index", x.index}, {"name", x.name}, {"kind", x.kind}, {"status", x.status}, {"exit_code", x.exit_code},
                    {"started_ms", x.started_ms}, {"finished_ms", x.finished_ms}}}});
  }
  void Line(int64_t, const std::string& step, bool is_err, const std::string& text) override {
    shipper_.Line(step, is_err, text);
  }
  void Flush() override { shipper_.Flush(); }

 private:
  std::function<Status(const Doc&)> post_;
  LogShipper& shipper_;
};

// A job's log over HTTP from `offset` (raw lines).
Result<std::string> ServerLogBytes(const std::string& server, int64_t job, int64_t offset) {
  httplib::Client client(server);
  client.set_read_timeout(30, 0);
  auto r = client.Get("/v1/jobs/" + std::to_string(job) + "/log?offset=" + std::to_string(offset));
  if (!r) return Err(ErrorCode::kUnavailable, "server " + server + ": " + httplib::to_string(r.error()));
  if (r->status != 200) return Err(ErrorCode::kUnavailable, "job " + std::to_string(job) + " log: HTTP " + std::to_string(r->status));
  return r->body;
}

// Runs a build job here: the pipeline in a fresh workspace under the
// agent's work directory (checkout, steps, image, push with the registry
// password read here); its deploy is asked of the server, which queues the
// rollout for the deployment's network; this agent follows that job to its
// end. Returns the build's outcome, for the job's result.
std::string RunBuildJob(const AgentContext& ctx, const std::string& base, int64_t epoch, const std::string& payload,
                        LogShipper& shipper, const std::atomic<bool>& cancel) {
  const std::string& server = ctx.server;
  const std::string& token = ctx.token;
  const AgentBuildOptions& ao = ctx.build;
  Doc p = Doc::parse(payload, nullptr, false);
  if (!p.is_object() || !p.contains("build") || !p["build"].is_object() || !p.contains("git_url") ||
      !p["git_url"].is_string()) {
    shipper.Line("agent", true, "malformed build job");
    return "malformed build job";
  }
  const Doc& j = p["build"];
  BuildRecord b;
  b.id = p.value("build_id", int64_t{0});
  b.project = j.value("project", "");
  b.branch = j.value("branch", "");
  b.sha = j.value("sha", "");
  b.trigger = j.value("trigger", "");
  b.status = BuildStatus::kRunning;
  b.created_ms = j.value("created_ms", int64_t{0});
  b.started_ms = j.value("started_ms", int64_t{0});
  RemoteBuildSink sink(
      [&](const Doc& body) -> Status {
        Doc with = body;
        with["epoch"] = epoch;
        auto r = ServerCall(server, "POST", base + "/build", with.dump(), token);
        if (!r) return Err(r.error());
        return Ok();
      },
      shipper);
  BuildOptions o;
  o.docker_host = ao.docker_host;
  o.read_secret = ReadSecretRef;
  o.deploy = [&](const DeployRequest& r, const LineCallback& log, const std::atomic<bool>& stop) -> Status {
    SP_ASSIGN_OR_RETURN(Doc answer, ServerCall(server, "POST", base + "/deploy",
                                               Doc{{"epoch", epoch}, {"config", r.config_text}, {"release", r.release},
                                                   {"deployment", r.deployment}, {"artifact", r.artifact}}
                                                   .dump(),
                                               token));
    const int64_t job = answer.value("job", int64_t{0});
    const std::string what = "rollout job " + std::to_string(job);
    log(false, "the server queued the deploy as " + what);
    JobWatch w;
    w.what = what;
    w.poll = [&server, job]() -> Result<JobProgress> {
      SP_ASSIGN_OR_RETURN(Doc d, ServerCall(server, "GET", "/v1/jobs/" + std::to_string(job)));
      return JobProgress{d.value("state", ""), d.value("owner", ""), d.value("result", ""), d.value("error", "")};
    };
    w.read_log = [&server, job](int64_t offset) { return ServerLogBytes(server, job, offset); };
    w.cancel = [] { return Status(Ok()); };  // Agents cannot cancel jobs; the server's claim timeout applies.
    // The network's agent takes it at once when there is one. If nobody has
    // within a second and this agent's token may run it too (one agent for
    // both), it runs it here: a build never waits on its own agent.
    w.take_over = [&] {
      const int64_t sent = JobLease::SteadyMs();
      auto mine = ServerCall(server, "POST",
                             "/v1/agent/claim?wait_ms=0&lease_ms=" + std::to_string(ctx.lease_ms) +
                                 "&job=" + std::to_string(job),
                             "", token);
      if (!mine || mine->is_null()) return;  // Not ours to run: wait for the network's agent.
      log(false, "no other agent took " + what + ": running it here");
      RunClaimedJob(ctx, *mine, sent);
    };
    return WaitForJob(w, log, stop, Millis(600'000));
  };
  const std::string ws = ao.work_dir + "/build-" + std::to_string(b.id);
  ProjectRecord project;
  project.name = b.project;
  project.git_url = p["git_url"].get<std::string>();
  project.credential_ref = p.value("credential_ref", "");
  project.known_hosts = p.value("known_hosts", "");
  BuildRecord out = RunPipeline(b, project, ws, o, sink, cancel);
  return "build " + std::string(BuildStatusName(out.status)) + (out.error.empty() ? "" : ": " + out.error);
}

// Runs one claimed job here to its end and reports it (complete or fail):
// heartbeats every quarter of the lease, the job's lines to the server.
// `claim_sent`: when the claim was sent (steady clock), the lease's start.
void RunClaimedJob(const AgentContext& ctx, const Doc& claim, int64_t claim_sent) {
  const int64_t id = claim["id"];
  const int64_t epoch = claim["epoch"];
  JobLease lease(ctx.lease_ms);
  lease.ConfirmedAt(claim_sent);
  const std::string base = "/v1/agent/jobs/" + std::to_string(id);
  std::printf("agent: job %lld (epoch %lld)\n", static_cast<long long>(id), static_cast<long long>(epoch));
  std::fflush(stdout);
  const std::string kind = claim["kind"];
  const std::string payload = claim["payload"];
  Result<RolloutPlan> plan = Err(ErrorCode::kInvalidArgument, "agents run build and rollout jobs, not '" + kind + "'");
  if (kind == "rollout") plan = PlanFromJson(payload);
  if (!plan && kind != "build") {
    (void)ServerCall(ctx.server, "POST", base + "/fail", Doc{{"epoch", epoch}, {"error", plan.error().message}}.dump(), ctx.token);
    return;
  }
  std::atomic<bool> lease_lost{false};  // Ends a build's running step.
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool running = true;
  std::thread heartbeat([&] {
    std::unique_lock lk(hb_mu);
    while (!hb_cv.wait_for(lk, std::chrono::milliseconds(ctx.lease_ms / 4), [&] { return !running; })) {
      lk.unlock();
      const int64_t sent = JobLease::SteadyMs();
      auto hb = ServerCall(ctx.server, "POST", base + "/heartbeat", Doc{{"epoch", epoch}, {"lease_ms", ctx.lease_ms}}.dump(), ctx.token);
      if (hb) {
        lease.ConfirmedAt(sent);
      } else {
        if (hb.error().code == ErrorCode::kConflict) {
          lease.Lost();
          lease_lost = true;
        }
        std::fprintf(stderr, "agent: job %lld: heartbeat: %s\n", static_cast<long long>(id), hb.error().message.c_str());
      }
      lk.lock();
    }
  });
  // This job's lines (the rollout's events, this agent's notes) go to the
  // server's job log as well as to stdout.
  LogShipper shipper([&](const Doc& lines) -> Status {
    auto r = ServerCall(ctx.server, "POST", base + "/log", Doc{{"epoch", epoch}, {"lines", lines}}.dump(), ctx.token);
    if (!r) return Err(r.error());
    return Ok();
  });
  shipper.Line("agent", false, "job " + std::to_string(id) + " (epoch " + std::to_string(epoch) + ") claimed by agent " +
                                   ctx.name);
  bool ok = false;
  std::string outcome;
  if (kind == "build") {
    outcome = RunBuildJob(ctx, base, epoch, payload, shipper, lease_lost);
    ok = true;  // The build ran to its outcome: the job is done, whatever the build's status.
  } else {
    RemoteJobStore remote([&](const nlohmann::json& body) -> Result<nlohmann::json> {
      nlohmann::json b = body;
      b["epoch"] = epoch;
      SP_ASSIGN_OR_RETURN(Doc answer, ServerCall(ctx.server, "POST", base + "/store", b.dump(), ctx.token));
      if (answer.is_null()) return nlohmann::json::object();
      return nlohmann::json::parse(answer.dump());
    });
    AgentJobHooks hooks;
    hooks.journal = &remote;
    hooks.locks = &remote;
    hooks.fence = [&lease] { return lease.Fence(); };
    hooks.lease_ttl = Millis(ctx.lease_ms);
    hooks.on_event = [halt_after = ctx.halt_after, &shipper](const Event& e) {
      if (std::string line = FormatEvent(e); !line.empty()) shipper.Line("rollout", e.type == "host_failed", line);
      if (halt_after.empty()) return;
      const std::string at = e.host + ":" + e.step;
      if (e.type == "step" && ((e.phase == "end" && at == halt_after) || (e.phase == "begin" && at + ":begin" == halt_after))) {
        std::printf("agent: TEST halting after %s\n", halt_after.c_str());
        std::fflush(stdout);
        ::raise(SIGSTOP);
      }
    };
    Wiring wiring(nullptr, Output{}, Millis(0));
    Result<RolloutSummary> r = Err(ErrorCode::kInternal, "not run");
    auto recorded = remote.GetRollout(plan->id);
    if (recorded && recorded->status == RolloutStatus::kRunning) {
      std::printf("agent: job %lld: resuming rollout %s from the server's journal\n", static_cast<long long>(id),
                  plan->id.c_str());
      shipper.Line("agent", false, "resuming rollout " + plan->id + " from the server's journal");
      std::fflush(stdout);
      r = wiring.EngineFor(*plan, &hooks)->Resume(plan->id);
    } else if (recorded) {
      // Finished under an earlier lease whose agent could not report it.
      RolloutSummary done;
      done.rollout_id = plan->id;
      done.status = recorded->status;
      done.error = recorded->error;
      r = done;
    } else if (recorded.error().code == ErrorCode::kNotFound) {
      r = wiring.EngineFor(*plan, &hooks)->Run(*plan);
    } else {
      r = Err(recorded.error());
    }
    ok = r && r->status == RolloutStatus::kSucceeded;
    outcome = r ? std::string(RolloutStatusName(r->status)) + (r->error.empty() ? "" : ": " + r->error)
                : r.error().message;
  }
  {
    std::lock_guard lk(hb_mu);
    running = false;
  }
  hb_cv.notify_all();
  heartbeat.join();
  shipper.Line("agent", !ok, "job " + std::to_string(id) + (ok ? " succeeded: " : " failed: ") + outcome);
  shipper.Close();  // The whole log is on the server before the job reads as finished.
  auto reported = ok ? ServerCall(ctx.server, "POST", base + "/complete", Doc{{"epoch", epoch}, {"result", outcome}}.dump(), ctx.token)
                     : ServerCall(ctx.server, "POST", base + "/fail", Doc{{"epoch", epoch}, {"error", outcome}}.dump(), ctx.token);
  std::printf("agent: job %lld %s%s\n", static_cast<long long>(id), ok ? "succeeded" : "failed: ",
              ok ? "" : outcome.c_str());
  if (!reported) std::fprintf(stderr, "agent: job %lld: report: %s\n", static_cast<long long>(id), reported.error().message.c_str());
  std::fflush(stdout);
}

// `sallyport agent run`: claims build and rollout jobs for its token's labels and runs
// each with the engine here. The rollout's journal and lock are on the
// server (every step journaled there before it is acted on, refused without
// the current lease); every action is fenced by the lease as this agent last
// confirmed it. A job claimed again (its agent died or stalled) is resumed
// from the server's journal: each host reconciled, then the rest rolled.
// SIGTERM/SIGINT: stops claiming, finishes the job in hand, exits.
int RunAgent(const std::string& server, const std::string& token_file, const std::string& lease_text,
             const AgentBuildOptions& build_options) {
  auto token_text = ReadTextFile(token_file);
  if (!token_text) return Fail(token_text.error());
  const std::string token = Trim(*token_text);
  auto lease_len = ParseDuration(lease_text);
  if (!lease_len || lease_len->count() < 1000) {
    return Fail(Error{ErrorCode::kInvalidArgument, "--lease: expected a duration of at least 1s, got '" + lease_text + "'"});
  }
  const int64_t lease_ms = lease_len->count();
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::atomic<bool> stopping{false};
  std::thread([&stop_signals, &stopping] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stopping = true;
  }).detach();
  auto me = ServerCall(server, "POST", "/v1/agent/register", Doc{{"labels", Doc::object()}}.dump(), token);
  if (!me) return Fail(me.error());
  std::printf("agent %s: claiming for %s at %s\n", (*me)["name"].get<std::string>().c_str(), (*me)["labels"].dump().c_str(),
              server.c_str());
  std::fflush(stdout);
  // TEST ONLY: "host:step[:begin]" -> this process stops itself (SIGSTOP)
  // when that step ends (or has been journaled and is about to act), so a
  // test can kill or pause it at an exact point.
  const char* halt_env = std::getenv("SALLYPORT_TEST_HALT_AFTER");
  const std::string halt_after = halt_env ? halt_env : "";
  const std::string claim_path = "/v1/agent/claim?wait_ms=1000&lease_ms=" + std::to_string(lease_ms);
  const AgentContext ctx{server, token, (*me)["name"].get<std::string>(), lease_ms, halt_after, build_options};
  while (!stopping) {
    const int64_t claim_sent = JobLease::SteadyMs();
    auto claim = ServerCall(server, "POST", claim_path, "", token);
    if (!claim) {
      std::fprintf(stderr, "agent: claim: %s\n", claim.error().message.c_str());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (claim->is_null()) continue;  // Nothing for us yet.
    RunClaimedJob(ctx, *claim, claim_sent);
  }
  std::printf("agent: stopped\n");
  return 0;
}

// A server's directory `name` next to its store: "builds" (build logs and
// workspaces), "jobs" (the agents' job logs).
std::string DirNextToStore(const std::string& store_path, const char* name) {
  auto parent = std::filesystem::path(store_path).parent_path();
  return (parent.empty() ? std::filesystem::path(".") : parent).string() + "/" + name;
}

// `key=value` command-line labels (--label, --build-label).
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

// What a job looks like to a waiter in the server process: the store and
// the job's log file.
JobWatch LocalJobWatch(QueueStore& q, int64_t id, const std::string& log_path, const std::string& what) {
  JobWatch w;
  w.what = what;
  w.poll = [&q, id]() -> Result<JobProgress> {
    SP_ASSIGN_OR_RETURN(Job j, q.GetJob(id));
    return JobProgress{std::string(JobStateName(j.state)), j.lease_owner, j.result, j.error};
  };
  w.read_log = [log_path](int64_t offset) -> Result<std::string> {
    std::string out;
    if (log_path.empty()) return out;
    if (std::FILE* f = std::fopen(log_path.c_str(), "r")) {
      std::fseek(f, offset, SEEK_SET);
      char buf[65536];
      for (size_t n; out.size() < (1u << 20) && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
      std::fclose(f);
    }
    return out;
  };
  w.cancel = [&q, id] { return q.Cancel(id, RealClock::Instance().WallMs()); };
  return w;
}

struct DeployWiring {
  SqliteStore* store = nullptr;
  inventory::Service* inventory = nullptr;
  bool via_agents = true;                 // false: the engine runs in the server process.
  std::string job_log_dir;
  std::function<void()> jobs_enqueued;    // Wakes agents' long polls.
  Millis claim_timeout{600'000};
};

// A build's deploy behind the queue: the target resolved (a personal
// deployment claimed when missing), the plan frozen, queued as a rollout
// job for the agents of its network, and those agents' long polls woken.
Result<Job> QueueDeploy(const DeployWiring& w, const DeployRequest& r, const LineCallback& log) {
  SP_ASSIGN_OR_RETURN(RolloutPlan plan, DeployPlan(*w.inventory, r, log));
  SP_ASSIGN_OR_RETURN(Job job, w.store->Enqueue(RolloutJobSpec(plan), RealClock::Instance().WallMs()));
  if (w.jobs_enqueued) w.jobs_enqueued();
  log(false, "queued rollout " + plan.id + " as rollout job " + std::to_string(job.id) + " (network " + plan.network + ")");
  return job;
}

// The deploy step of a build run by the server: the target resolved
// through the inventory and the plan frozen here; then either queued as a
// rollout job for an agent of the deployment's network (default: the server
// needs no shell in that network) and followed until it ends, its agent's
// lines copied into the build's log; or (--deploy-on server) run by the
// engine in this process, its events in the build's log.
BuildOptions::Deploy DeployHook(DeployWiring w) {
  return [w](const DeployRequest& r, const LineCallback& log, const std::atomic<bool>& cancel) -> Status {
    if (w.via_agents) {
      SP_ASSIGN_OR_RETURN(Job job, QueueDeploy(w, r, log));
      const std::string what = "rollout job " + std::to_string(job.id);
      return WaitForJob(LocalJobWatch(*w.store, job.id, JobLogPath(w.job_log_dir, job.id), what), log, cancel,
                        w.claim_timeout);
    }
    SP_ASSIGN_OR_RETURN(RolloutPlan plan, DeployPlan(*w.inventory, r, log));
    AgentJobHooks hooks;
    hooks.on_event = [log](const Event& e) {
      if (std::string line = FormatEvent(e); !line.empty()) log(e.type == "host_failed", line);
    };
    Wiring wiring(w.store, Output{}, Millis(60'000));
    SP_ASSIGN_OR_RETURN(RolloutSummary sum, wiring.EngineFor(plan, &hooks)->Run(plan));
    log(false, "rollout " + sum.rollout_id + " " + std::string(RolloutStatusName(sum.status)) + " in " +
                   FormatDuration(Millis(sum.elapsed_ms)));
    if (sum.status != RolloutStatus::kSucceeded) return Err(ErrorCode::kUnavailable, "rollout failed: " + sum.error);
    return Ok();
  };
}

struct ServeOptions {
  std::string listen, store_path, expire_every, poll_every, docker_host;
  int build_slots = 2;
  bool requeue_interrupted = false;
  std::string deploy_on = "agents", builds_on = "server";
  std::vector<std::string> build_labels;
};

int Serve(const ServeOptions& so) {
  const std::string& listen = so.listen;
  const std::string& store_path = so.store_path;
  auto every = ParseDuration(so.expire_every);
  if (!every) return Fail(Error{ErrorCode::kInvalidArgument, "--expire-every: " + every.error().message});
  auto poll = ParseDuration(so.poll_every);
  if (!poll) return Fail(Error{ErrorCode::kInvalidArgument, "--poll-every: " + poll.error().message});
  // Port 0 (any free port) is allowed here, so not ParseHostPort.
  const size_t colon = listen.rfind(':');
  const std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  const std::string port_text = colon == std::string::npos ? "" : listen.substr(colon + 1);
  int port = -1;
  if (!port_text.empty() && port_text.size() <= 5 && port_text.find_first_not_of("0123456789") == std::string::npos) {
    port = std::stoi(port_text);
  }
  if (!IsValidAddress(host) || port < 0 || port > 65535) {
    return Fail(Error{ErrorCode::kInvalidArgument, "--listen: expected host:port, got '" + listen + "'"});
  }
  auto store = OpenStoreAt(store_path);
  if (!store) return Fail(store.error());
  inventory::Service service(**store, inventory::ServiceOptions{inventory::DynamicSourceRunner()});
  ApiServerOptions options;
  options.queue = store->get();
  options.journal = store->get();
  options.locks = store->get();
  // Personal deployments are torn down from here (the server must then reach
  // their network; through agents is not built yet).
  options.teardown = TeardownHook(store->get(), Output{}, Millis(30'000));
  options.expire_every = *every;
  options.job_log_dir = DirNextToStore(store_path, "jobs");
  BuildOptions bo;
  bo.data_dir = DirNextToStore(store_path, "builds");
  bo.concurrency = std::max(1, so.build_slots);
  bo.poll_every = *poll;
  bo.docker_host = so.docker_host;
  bo.requeue_interrupted = so.requeue_interrupted;
  bo.read_secret = ReadSecretRef;
  auto labels = ParseLabelArgs("--build-label", so.build_labels.empty() ? std::vector<std::string>{"role=builder"}
                                                                          : so.build_labels);
  if (!labels) return Fail(labels.error());
  const std::map<std::string, std::string> build_labels = *labels;
  ApiServer* api = nullptr;  // Set below; the hooks run only once it serves.
  auto jobs_enqueued = [&api] {
    if (api) api->JobsEnqueued();
  };
  DeployWiring dw;
  dw.store = store->get();
  dw.inventory = &service;
  dw.via_agents = so.deploy_on == "agents";
  dw.job_log_dir = options.job_log_dir;
  dw.jobs_enqueued = jobs_enqueued;
  bo.deploy = DeployHook(dw);
  // A build on an agent asks the server to deploy: always through the queue.
  options.deploy_start = [dw](const DeployRequest& r) -> Result<int64_t> {
    SP_ASSIGN_OR_RETURN(Job job, QueueDeploy(dw, r, [](bool, const std::string&) {}));
    return job.id;
  };
  if (so.builds_on == "agents") {
    SqliteStore* q = store->get();
    bo.run_elsewhere = [q, build_labels, jobs_enqueued](const BuildRecord& b, const ProjectRecord& project,
                                                        const std::atomic<bool>& cancel) -> Status {
      JobSpec spec;
      spec.kind = "build";
      // The remote's credential travels as its reference: read where the build runs.
      spec.payload = Doc{{"build_id", b.id},
                         {"build", BuildToJson(b)},
                         {"git_url", project.git_url},
                         {"credential_ref", project.credential_ref},
                         {"known_hosts", project.known_hosts}}
                         .dump();
      spec.labels = build_labels;
      spec.idempotency_key = "build-" + std::to_string(b.id) + "-" + std::to_string(b.started_ms);
      SP_ASSIGN_OR_RETURN(Job job, q->Enqueue(spec, RealClock::Instance().WallMs()));
      jobs_enqueued();
      std::string labels;
      for (const auto& [k, v] : build_labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
      // The agent's lines reach the build's log directly; only the outcome matters here.
      JobWatch w = LocalJobWatch(*q, job.id, "", "build job " + std::to_string(job.id) + " (" + labels + ")");
      w.cancel_running = true;
      return WaitForJob(w, [](bool, const std::string&) {}, cancel, Millis(600'000));
    };
  }
  BuildService builds(**store, bo);
  options.builds = &builds;
  options.build_store = store->get();
  ApiServer server(service, options);
  api = &server;
  // Block the stop signals before any thread starts, then wait for one.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  if (auto s = server.Start(host, port); !s) return Fail(s.error());
  builds.Start();
  std::printf("sallyport server: listening on http://%s:%d (store %s)\n", host.c_str(), server.port(),
              store_path.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server.Stop();
  builds.Stop();
  std::printf("sallyport server: stopped (signal %d)\n", sig);
  return 0;
}

}  // namespace

void AddInventoryCommands(CLI::App& app, InventoryCommands& c) {
  c.server = app.add_subcommand("server", "Serve the HTTP API (inventory) on the state database");
  c.server->add_option("--listen", c.listen, "host:port (port 0: any free port)")->capture_default_str();
  c.server->add_option("--expire-every", c.expire_every,
                       "How often personal deployments past their TTL are torn down and released (0: never)")
      ->capture_default_str();
  c.server->add_option("--poll-every", c.poll_every, "How often every project's branches are polled (0: never)")
      ->capture_default_str();
  c.server->add_option("--builds", c.build_slots, "Builds run at once")->capture_default_str();
  c.server->add_option("--docker-host", c.docker_host, "DOCKER_HOST for image and push steps");
  c.server->add_option("--deploy-on", c.deploy_on,
                       "Where builds' deploys run: agents (queued for an agent of the deployment's network) or server "
                       "(this process)")
      ->check(CLI::IsMember({"agents", "server"}))
      ->capture_default_str();
  c.server->add_option("--builds-on", c.builds_on,
                       "Where builds run: server (this process) or agents (queued for agents with the build labels)")
      ->check(CLI::IsMember({"agents", "server"}))
      ->capture_default_str();
  c.server->add_option("--build-label", c.build_labels, "key=value a build job requires of its agent (default role=builder)");
  c.server->add_flag("--requeue-interrupted", c.requeue_interrupted,
                     "Queue builds a stopped server left running again (default: mark them interrupted)");

  auto* project = app.add_subcommand("project", "Repositories the build server watches");
  project->require_subcommand(1);
  c.project_add = project->add_subcommand("add", "Add (or update) a project");
  c.project_add->add_option("--name", c.a.user, "Project name")->required();
  c.project_add->add_option("--git", c.git_url, "Git remote (git://, http(s)://, ssh://, file://)")->required();
  c.project_add->add_option("--webhook-secret", c.webhook_secret,
                            "Secret reference for webhook signatures: file:/path or env:NAME (never the value)");
  c.project_add->add_option("--credential", c.git_credential,
                            "The remote's credential as a reference: an http(s) token (file:/path or env:NAME), or "
                            "an ssh deploy key (file:/path to the private key)");
  c.project_add->add_option("--known-hosts", c.known_hosts, "ssh remotes: the known_hosts file with the remote's host key");
  c.project_list = project->add_subcommand("list", "List projects");
  auto* build = app.add_subcommand("build", "Builds: a pipeline run for one commit");
  build->require_subcommand(1);
  c.build_list = build->add_subcommand("list", "Recent builds");
  c.build_show = build->add_subcommand("show", "One build and its steps");
  c.build_show->add_option("id", c.build_id)->required();
  c.build_start = build->add_subcommand("start", "Build a branch's head (or --sha) now");
  c.build_start->add_option("project", c.a.user)->required();
  c.build_start->add_option("branch", c.branch)->required();
  c.build_start->add_option("--sha", c.sha, "The commit (default: the branch's head)");
  c.build_cancel = build->add_subcommand("cancel", "Cancel a queued or running build");
  c.build_cancel->add_option("id", c.build_id)->required();
  c.logs = app.add_subcommand("logs", "A build's log");
  c.logs->add_option("build", c.build_id)->required();
  c.logs->add_flag("-f,--follow", c.follow, "Follow until the build ends");
  for (CLI::App* cmd : {c.project_add, c.project_list, c.build_list, c.build_show, c.build_start, c.build_cancel, c.logs}) {
    cmd->add_option("--store", c.store, "State database (default $SALLYPORT_STORE or .sallyport/state.db)");
  }
  for (CLI::App* cmd : {c.build_list, c.build_show, c.build_start, c.build_cancel, c.logs}) {
    cmd->add_option("--server", c.a.server, "Sallyport server URL (default: the local store)");
  }

  auto* agent = app.add_subcommand("agent", "Agents that run jobs inside their network");
  agent->require_subcommand(1);
  auto* token = agent->add_subcommand("token", "Agent tokens");
  token->require_subcommand(1);
  c.token_create = token->add_subcommand("create", "Create a token bound to labels; prints it once (only its hash is kept)");
  c.token_create->add_option("--name", c.a.user, "Agent name")->required();
  c.token_create->add_option("--label", c.token_labels, "key=value the agent may claim work for (repeatable)");
  c.token_create->add_option("--store", c.store, "State database (default $SALLYPORT_STORE or .sallyport/state.db)");
  c.agent_list = agent->add_subcommand("list", "Agents the server has seen: labels, last seen, current job");
  c.agent_list->add_option("--store", c.store, "State database (default $SALLYPORT_STORE or .sallyport/state.db)");
  c.agent_run = agent->add_subcommand("run", "Claim jobs from a server and run them here (rollouts)");
  c.agent_run->add_option("--server", c.a.server, "Sallyport server URL")->required();
  c.agent_run->add_option("--token-file", c.token_file, "File holding this agent's token")->required();
  c.agent_run->add_option("--store", c.store, "Ignored: the journal and locks of an agent's rollouts are on the server");
  c.agent_run->add_option("--work-dir", c.agent_work_dir,
                          "Where build jobs check out and build (default $TMPDIR/sallyport-agent-<pid>)");
  c.agent_run->add_option("--docker-host", c.docker_host, "DOCKER_HOST for build jobs' image and push steps");
  c.agent_run->add_option("--lease", c.agent_lease,
                          "Job lease: renewed every quarter of it; when it lapses the job goes to another agent")
      ->capture_default_str();

  auto* queue = app.add_subcommand("queue", "Jobs in the durable queue (local store)");
  queue->require_subcommand(1);
  c.queue_list = queue->add_subcommand("list", "Recent jobs: id, kind, state, attempts, owner");
  c.queue_show = queue->add_subcommand("show", "One job as JSON");
  c.queue_retry = queue->add_subcommand("retry", "Queue a dead or canceled job again");
  c.queue_cancel = queue->add_subcommand("cancel", "Cancel a queued or leased job");
  c.queue_logs = queue->add_subcommand("logs", "A job's log lines, as its agent sent them (from a server)");
  c.queue_logs->add_option("id", c.job_id)->required();
  c.queue_logs->add_flag("-f,--follow", c.follow, "Follow until the job ends");
  c.queue_logs->add_option("--server", c.a.server, "Sallyport server URL (default $SALLYPORT_SERVER)");
  for (CLI::App* cmd : {c.queue_show, c.queue_retry, c.queue_cancel}) cmd->add_option("id", c.job_id)->required();
  for (CLI::App* cmd : {c.queue_list, c.queue_show, c.queue_retry, c.queue_cancel}) {
    cmd->add_option("--store", c.store, "State database (default $SALLYPORT_STORE or .sallyport/state.db)");
  }

  auto* inv = app.add_subcommand("inventory", "Stacks, deployments, releases and hosts in the store or on a server");
  inv->require_subcommand(1);
  auto server_opt = [&](CLI::App* cmd) {
    cmd->add_option("--server", c.a.server, "Sallyport server URL (default: the local state database)");
  };
  c.apply = inv->add_subcommand("apply", "Make the inventory match a file (prints the changes)");
  c.apply->add_option("-f,--file", c.a.file, "Inventory file (YAML or JSON; - for stdin)")->required();
  c.apply->add_flag("--prune", c.a.prune, "Delete what the file omits");
  c.apply->add_flag("--yes", c.a.yes, "Apply without asking");
  c.apply->add_flag("--dry-run", c.a.dry_run, "Only print the changes");
  c.exporter = inv->add_subcommand("export", "Write the inventory in the file format");
  c.exporter->add_option("-o,--output", c.a.output, "File (default: stdout)");
  c.resolve = inv->add_subcommand("resolve", "Bastion, load balancers, hosts and env of (stack, release, deployment)");
  c.resolve->add_option("--stack", c.a.stack)->required();
  c.resolve->add_option("-r,--release", c.a.release)->required();
  c.resolve->add_option("-d,--deployment", c.a.deployment)->required();
  c.resolve->add_option("--limit", c.a.limit, "Only these hosts (comma separated)");
  c.get = inv->add_subcommand("get", "One object as JSON, e.g. stacks/shop/deployments/prod");
  c.get->add_option("path", c.a.path)->required();
  c.set = inv->add_subcommand("set", "Create or replace one object from JSON");
  c.set->add_option("path", c.a.path)->required();
  c.set->add_option("-f,--file", c.a.file, "JSON file (- for stdin)")->required();
  c.del = inv->add_subcommand("delete", "Delete one object");
  c.del->add_option("path", c.a.path)->required();
  c.import = inv->add_subcommand("import", "Add an Ansible inventory's hosts to a deployment's pool (groups become tags)");
  c.import->add_option("-f,--file", c.a.file, "Ansible inventory: INI, YAML or dynamic-inventory JSON")->required();
  c.import->add_option("--stack", c.a.stack)->required();
  c.import->add_option("-d,--deployment", c.a.deployment)->required();
  c.claim = inv->add_subcommand("claim", "Claim a personal deployment from a template (one free pool host)");
  c.claim->add_option("template", c.a.template_name, "Template name, e.g. personal")->required();
  c.claim->add_option("--stack", c.a.stack)->required();
  c.claim->add_option("--user", c.a.user, "User name ([a-z0-9][a-z0-9-]{0,31})")->required();
  c.release = inv->add_subcommand("release", "Release a claimed personal deployment (tears it down, frees its host)");
  c.release->add_option("deployment", c.a.deployment, "e.g. personal-ben")->required();
  c.release->add_option("--stack", c.a.stack)->required();
  c.expire = inv->add_subcommand("expire", "Tear down and release every personal deployment past its TTL (local store)");
  for (CLI::App* cmd : {c.apply, c.exporter, c.resolve, c.get, c.set, c.del, c.claim, c.release, c.import}) server_opt(cmd);
  for (CLI::App* cmd : {c.server, c.apply, c.exporter, c.resolve, c.get, c.set, c.del, c.claim, c.release, c.import, c.expire}) {
    cmd->add_option("--store", c.store, "State database (default $SALLYPORT_STORE or .sallyport/state.db)");
  }
}

namespace {

void PrintBuild(const Doc& b) {
  std::printf("build %lld  %s  %s@%s  %s (%s)\n", static_cast<long long>(b.value("id", int64_t{0})),
              b.value("project", "").c_str(), b.value("branch", "").c_str(), b.value("sha", "").substr(0, 12).c_str(),
              b.value("status", "").c_str(), b.value("trigger", "").c_str());
  if (!b.value("message", "").empty()) std::printf("  commit: %s (%s)\n", b.value("message", "").c_str(), b.value("author", "").c_str());
  if (!b.value("artifact", "").empty()) std::printf("  artifact: %s\n", b.value("artifact", "").c_str());
  if (!b.value("deployment", "").empty()) std::printf("  deploys to: %s\n", b.value("deployment", "").c_str());
  if (!b.value("error", "").empty()) std::printf("  error: %s\n", b.value("error", "").c_str());
  if (b.contains("steps")) {
    for (const auto& st : b["steps"]) {
      const int64_t ms = st.value("finished_ms", int64_t{0}) - st.value("started_ms", int64_t{0});
      std::printf("  %-14s %-8s %-10s %s\n", st.value("name", "").c_str(), st.value("kind", "").c_str(),
                  st.value("status", "").c_str(), ms > 0 ? FormatDuration(Millis(ms)).c_str() : "");
    }
  }
}

// Prints the log lines ("ts\tstep\tstream\ttext") of `text` as "step | text".
void PrintLogText(const std::string& text) {
  for (const auto& line : Split(text, '\n')) {
    if (auto l = ParseLogLine(line)) std::printf("%-12s | %s\n", l->step.c_str(), l->text.c_str());
  }
  std::fflush(stdout);
}

// A build's or job's log from the server: whole, or followed as server-sent
// events until it ends.
int StreamServerLog(const std::string& server, const std::string& path, bool follow, const std::string& what) {
  httplib::Client client(server);
  client.set_read_timeout(3600, 0);
  std::string pending;
  auto r = client.Get(path + (follow ? "?follow=1" : ""), [&](const char* data, size_t n) {
    pending.append(data, n);
    size_t start = 0;
    std::string lines;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string l = pending.substr(start, nl - start);
      if (!follow) lines += l + "\n";
      else if (StartsWith(l, "data: ")) lines += l.substr(6) + "\n";
    }
    pending.erase(0, start);
    PrintLogText(lines);
    return true;
  });
  if (!r) return Fail(Error{ErrorCode::kUnavailable, "server " + server + ": " + httplib::to_string(r.error())});
  if (r->status != 200) return Fail(Error{ErrorCode::kNotFound, what + ": HTTP " + std::to_string(r->status)});
  return 0;
}

}  // namespace

int RunBuildCommands(InventoryCommands& c, const std::string& store_path) {
  const bool remote = !c.a.server.empty();
  if (c.project_add && c.project_add->parsed()) {
    if (!IsValidName(c.a.user)) return Fail(Error{ErrorCode::kInvalidArgument, "--name: expected [a-z0-9][a-z0-9-]{0,62}"});
    if (!IsValidGitUrl(c.git_url)) return Fail(Error{ErrorCode::kInvalidArgument, "--git: invalid git URL '" + Printable(c.git_url) + "'"});
    if (!c.webhook_secret.empty() && !StartsWith(c.webhook_secret, "file:") && !StartsWith(c.webhook_secret, "env:")) {
      return Fail(Error{ErrorCode::kInvalidArgument, "--webhook-secret: a reference (file:/path or env:NAME), never the secret"});
    }
    auto store = OpenStoreAt(store_path);
    if (!store) return Fail(store.error());
    if (!c.git_credential.empty() && !StartsWith(c.git_credential, "file:/") && !StartsWith(c.git_credential, "env:")) {
      return Fail(Error{ErrorCode::kInvalidArgument, "--credential: expected a reference, file:/path or env:NAME (never the value)"});
    }
    if (auto st = (*store)->PutProject(ProjectRecord{c.a.user, c.git_url, c.webhook_secret, RealClock::Instance().WallMs(),
                                                     c.git_credential, c.known_hosts});
        !st) {
      return Fail(st.error());
    }
    std::printf("project %s: %s\n", c.a.user.c_str(), c.git_url.c_str());
    return 0;
  }
  if (c.project_list && c.project_list->parsed()) {
    auto store = OpenStoreAt(store_path);
    if (!store) return Fail(store.error());
    auto list = (*store)->Projects();
    if (!list) return Fail(list.error());
    for (const auto& p : *list) {
      std::printf("%-20s %s%s%s\n", p.name.c_str(), p.git_url.c_str(), p.webhook_secret_ref.empty() ? "" : "  (webhooks)",
                  p.credential_ref.empty() ? "" : ("  (credential " + p.credential_ref + ")").c_str());
    }
    return 0;
  }
  const bool any = (c.build_list && c.build_list->parsed()) || (c.build_show && c.build_show->parsed()) ||
                   (c.build_start && c.build_start->parsed()) || (c.build_cancel && c.build_cancel->parsed()) ||
                   (c.logs && c.logs->parsed());
  if (!any) return -1;
  if (remote) {
    if (c.build_list->parsed()) {
      auto d = ServerCall(c.a.server, "GET", "/v1/builds", "");
      if (!d) return Fail(d.error());
      for (const auto& b : (*d)["builds"]) PrintBuild(b);
      return 0;
    }
    if (c.build_show->parsed()) {
      auto d = ServerCall(c.a.server, "GET", "/v1/builds/" + std::to_string(c.build_id), "");
      if (!d) return Fail(d.error());
      PrintBuild(*d);
      return 0;
    }
    if (c.build_start->parsed()) {
      auto d = ServerCall(c.a.server, "POST", "/v1/builds",
                          Doc{{"project", c.a.user}, {"branch", c.branch}, {"sha", c.sha}}.dump());
      if (!d) return Fail(d.error());
      std::printf("%s\n", (*d)["build"].is_null() ? "this commit was built before: nothing started"
                                                  : ("build " + (*d)["build"].dump() + " queued").c_str());
      return 0;
    }
    if (c.build_cancel->parsed()) {
      auto d = ServerCall(c.a.server, "POST", "/v1/builds/" + std::to_string(c.build_id) + "/cancel", "{}");
      if (!d) return Fail(d.error());
      std::printf("build %lld: cancel requested\n", static_cast<long long>(c.build_id));
      return 0;
    }
    // logs via the server: whole, or followed as server-sent events.
    return StreamServerLog(c.a.server, "/v1/builds/" + std::to_string(c.build_id) + "/log", c.follow,
                           "build " + std::to_string(c.build_id));
  }
  auto store = OpenStoreAt(store_path);
  if (!store) return Fail(store.error());
  BuildOptions bo;
  bo.data_dir = DirNextToStore(store_path, "builds");
  BuildService local(**store, bo);  // Not started: triggers land in the store; the server's workers run them.
  if (c.build_list->parsed()) {
    auto list = (*store)->ListBuilds(50);
    if (!list) return Fail(list.error());
    for (const auto& b : *list) PrintBuild(BuildToJson(b));
    return 0;
  }
  if (c.build_show->parsed()) {
    auto b = (*store)->GetBuild(c.build_id);
    if (!b) return Fail(b.error());
    Doc d = BuildToJson(*b);
    Doc steps = Doc::array();
    if (auto st = (*store)->BuildSteps(b->id)) {
      for (const auto& x : *st) {
        steps.push_back({{"name", x.name}, {"kind", x.kind}, {"status", x.status}, {"started_ms", x.started_ms},
                         {"finished_ms", x.finished_ms}});
      }
    }
    d["steps"] = steps;
    PrintBuild(d);
    return 0;
  }
  if (c.build_start->parsed()) {
    auto made = local.Manual(c.a.user, c.branch, c.sha);
    if (!made) return Fail(made.error());
    if (!*made) std::printf("this commit was built before: nothing started\n");
    else std::printf("build %lld queued\n", static_cast<long long>((*made)->id));
    return 0;
  }
  if (c.build_cancel->parsed()) {
    if (auto st = local.Cancel(c.build_id); !st) return Fail(st.error());
    std::printf("build %lld canceled\n", static_cast<long long>(c.build_id));
    return 0;
  }
  // logs, local: read the file from where we stopped; with -f until the build ends.
  if (auto b = (*store)->GetBuild(c.build_id); !b) return Fail(b.error());
  long offset = 0;
  std::string pending;
  for (;;) {
    bool finished = true;
    if (c.follow) {
      auto b = (*store)->GetBuild(c.build_id);
      finished = !b || (b->status != BuildStatus::kQueued && b->status != BuildStatus::kRunning);
    }
    if (std::FILE* f = std::fopen(local.LogPath(c.build_id).c_str(), "r")) {
      std::fseek(f, offset, SEEK_SET);
      char buf[65536];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        offset += static_cast<long>(n);
        pending.append(buf, n);
        size_t cut = pending.rfind('\n');
        if (cut != std::string::npos) {
          PrintLogText(pending.substr(0, cut + 1));
          pending.erase(0, cut + 1);
        }
      }
      std::fclose(f);
    }
    if (finished) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return 0;
}

std::string ServerOrConfigured(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* configured = std::getenv("SALLYPORT_SERVER");
  return configured ? configured : "";
}

int RunInventoryCommands(InventoryCommands& c, const std::string& default_store) {
  const std::string store_path = c.store.empty() ? default_store : c.store;
  if (c.server->parsed()) {
    return Serve(ServeOptions{c.listen, store_path, c.expire_every, c.poll_every, c.docker_host, c.build_slots,
                              c.requeue_interrupted, c.deploy_on, c.builds_on, c.build_labels});
  }
  if (int rc = RunBuildCommands(c, store_path); rc >= 0) return rc;
  if (c.queue_logs->parsed()) {
    const std::string server = ServerOrConfigured(c.a.server);
    if (server.empty()) return Fail(Error{ErrorCode::kInvalidArgument, "queue logs: --server or $SALLYPORT_SERVER is required"});
    return StreamServerLog(server, "/v1/jobs/" + std::to_string(c.job_id) + "/log", c.follow,
                           "job " + std::to_string(c.job_id));
  }
  for (CLI::App* cmd : {c.queue_list, c.queue_show, c.queue_retry, c.queue_cancel}) {
    if (!cmd->parsed()) continue;
    auto store = OpenStoreAt(store_path);
    if (!store) return Fail(store.error());
    QueueStore& q = **store;
    const int64_t now = RealClock::Instance().WallMs();
    if (cmd == c.queue_list) {
      auto jobs = q.ListJobs(50);
      if (!jobs) return Fail(jobs.error());
      if (jobs->empty()) std::printf("no jobs\n");
      for (const auto& j : *jobs) {
        std::printf("%-8lld %-8s %-10s %d/%d %-14s %s\n", static_cast<long long>(j.id), j.spec.kind.c_str(),
                    std::string(JobStateName(j.state)).c_str(), j.attempts, j.spec.max_attempts,
                    j.lease_owner.empty() ? "-" : j.lease_owner.c_str(), j.error.c_str());
      }
      return 0;
    }
    if (cmd == c.queue_show) {
      auto j = q.GetJob(c.job_id);
      if (!j) return Fail(j.error());
      std::printf("%s\n", JobToJson(*j).dump(2).c_str());
      return 0;
    }
    Status st = cmd == c.queue_retry ? q.Retry(c.job_id, now) : q.Cancel(c.job_id, now);
    if (!st) return Fail(st.error());
    std::printf("%s %lld\n", cmd == c.queue_retry ? "queued" : "canceled", static_cast<long long>(c.job_id));
    return 0;
  }
  if (c.agent_run->parsed()) {
    AgentBuildOptions ao{c.agent_work_dir, c.docker_host};
    if (ao.work_dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      ao.work_dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/sallyport-agent-" + std::to_string(::getpid());
    }
    return RunAgent(c.a.server, c.token_file, c.agent_lease, ao);
  }
  if (c.agent_list->parsed()) {
    auto store = OpenStoreAt(store_path);
    if (!store) return Fail(store.error());
    auto agents = (*store)->Agents();
    if (!agents) return Fail(agents.error());
    const int64_t now = RealClock::Instance().WallMs();
    if (agents->empty()) std::printf("no agents seen\n");
    for (const auto& a : *agents) {
      std::string labels;
      for (const auto& [k, v] : a.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
      std::printf("%-20s %-24s seen %s ago  job %s\n", a.name.c_str(), labels.c_str(),
                  FormatDuration(Millis(std::max<int64_t>(0, now - a.last_seen_ms))).c_str(),
                  a.current_job ? std::to_string(a.current_job).c_str() : "-");
    }
    return 0;
  }
  if (c.token_create->parsed()) {
    QueueStore::AgentToken t;
    t.name = c.a.user;
    if (!IsValidName(t.name)) return Fail(Error{ErrorCode::kInvalidArgument, "--name: invalid agent name '" + t.name + "'"});
    auto labels = ParseLabelArgs("--label", c.token_labels);
    if (!labels) return Fail(labels.error());
    t.labels = *labels;
    auto secret = RandomHex(32);
    if (!secret) return Fail(secret.error());
    auto store = OpenStoreAt(store_path);
    if (!store) return Fail(store.error());
    if (auto st = (*store)->PutAgentToken(Sha256Hex(*secret), t); !st) return Fail(st.error());
    std::printf("%s\n", secret->c_str());  // The only time it is shown.
    return 0;
  }
  const InventoryArgs& a = c.a;
  const bool remote = !a.server.empty();
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<inventory::Service> service;
  auto local = [&]() -> Status {
    if (service) return Ok();
    SP_ASSIGN_OR_RETURN(store, OpenStoreAt(store_path));
    service = std::make_unique<inventory::Service>(*store, inventory::ServiceOptions{inventory::DynamicSourceRunner()});
    return Ok();
  };
  if (!remote) {
    for (CLI::App* cmd : {c.apply, c.exporter, c.resolve, c.get, c.set, c.del, c.claim, c.release, c.import, c.expire}) {
      if (cmd->parsed()) {
        if (auto s = local(); !s) return Fail(s.error());
      }
    }
  }

  if (c.apply->parsed()) {
    auto text = ReadInput(a.file);
    if (!text) return Fail(text.error());
    const std::string name = a.file == "-" ? "stdin" : a.file;
    auto file = ParseInventory(*text, name);  // File, line and field named here, before anything is sent.
    if (!file) return Fail(file.error());
    auto changes = [&](bool dry) -> Result<std::vector<std::string>> {
      if (remote) {
        std::string q = std::string("/v1/inventory/apply?prune=") + (a.prune ? "1" : "0") + "&dry_run=" + (dry ? "1" : "0");
        SP_ASSIGN_OR_RETURN(Doc d, Call(a.server, "POST", q, InventoryToJson(*file).dump()));
        return d.at("changes").get<std::vector<std::string>>();
      }
      SP_ASSIGN_OR_RETURN(inventory::ApplyResult r, service->Apply(*file, a.prune, dry));
      return r.changes;
    };
    auto planned = changes(true);
    if (!planned) return Fail(planned.error());
    PrintChanges(*planned);
    if (planned->empty()) {
      std::printf("inventory: no changes\n");
      return 0;
    }
    if (a.dry_run) return 0;
    if (!a.yes && !Confirm(planned->size())) {
      return Fail(Error{ErrorCode::kInvalidArgument, "not applied (answer y, or pass --yes)"});
    }
    auto done = changes(false);
    if (!done) return Fail(done.error());
    std::printf("inventory: applied %zu change(s)\n", done->size());
    return 0;
  }
  if (c.exporter->parsed()) {
    Doc doc;
    if (remote) {
      auto d = Call(a.server, "GET", "/v1/inventory");
      if (!d) return Fail(d.error());
      doc = *d;
    } else {
      auto inv = service->Current();
      if (!inv) return Fail(inv.error());
      doc = InventoryToJson(**inv);
    }
    const std::string yaml = JsonToYaml(doc);
    if (a.output.empty()) {
      std::fwrite(yaml.data(), 1, yaml.size(), stdout);
    } else if (FILE* f = std::fopen(a.output.c_str(), "w")) {
      std::fwrite(yaml.data(), 1, yaml.size(), f);
      std::fclose(f);
    } else {
      return Fail(Error{ErrorCode::kUnavailable, "cannot write " + a.output});
    }
    return 0;
  }
  if (c.resolve->parsed()) {
    auto t = ResolveThrough(remote ? a.server : "store", store_path, a.stack, a.release, a.deployment, a.limit);
    if (!t) return Fail(t.error());
    std::printf("%s\n", ResolvedToJson(*t).dump(2).c_str());
    return 0;
  }
  const std::string api_path = "/v1/" + a.path;
  if (c.get->parsed()) {
    auto d = remote ? Call(a.server, "GET", api_path) : service->Get(PathParts(a.path));
    if (!d) return Fail(d.error());
    std::printf("%s\n", d->dump(2).c_str());
    return 0;
  }
  if (c.set->parsed()) {
    auto text = ReadInput(a.file);
    if (!text) return Fail(text.error());
    Doc body = Doc::parse(*text, nullptr, false);
    if (body.is_discarded()) return Fail(Error{ErrorCode::kInvalidArgument, a.file + ": not valid JSON"});
    if (remote) {
      auto d = Call(a.server, "PUT", api_path, body.dump());
      if (!d) return Fail(d.error());
    } else if (auto r = service->Put(PathParts(a.path), body); !r) {
      return Fail(r.error());
    }
    std::printf("set %s\n", a.path.c_str());
    return 0;
  }
  if (c.del->parsed()) {
    if (remote) {
      auto d = Call(a.server, "DELETE", api_path);
      if (!d) return Fail(d.error());
    } else if (auto s = service->Delete(PathParts(a.path)); !s) {
      return Fail(s.error());
    }
    std::printf("deleted %s\n", a.path.c_str());
    return 0;
  }
  if (c.import->parsed()) {
    auto imported = inventory::LoadAnsibleInventory(a.file);
    if (!imported) return Fail(imported.error());
    auto hosts = inventory::ToHostSpecs(*imported);
    if (!hosts) return Fail(hosts.error());
    // One host per write: each is validated with the whole stack.
    for (const auto& h : *hosts) {
      const std::string path = "stacks/" + a.stack + "/deployments/" + a.deployment + "/hosts/" + h.name;
      DeploymentSpec one;
      one.hosts = {h};
      const Doc body = StackToJson(StackSpec{"", {}, false, {{"x", one}}, {}})["deployments"]["x"]["hosts"][0];
      if (remote) {
        auto d = Call(a.server, "PUT", "/v1/" + path, body.dump());
        if (!d) return Fail(d.error().Wrap("host " + h.name));
      } else if (auto r = service->Put(PathParts(path), body); !r) {
        return Fail(r.error().Wrap("host " + h.name));
      }
      std::string tags;
      for (const auto& [k, v] : h.tags) tags += (tags.empty() ? "" : ",") + k;
      std::printf("%-20s %-16s %s\n", h.name.c_str(), h.address.c_str(), tags.c_str());
    }
    std::printf("imported %zu host(s) into %s/%s\n", hosts->size(), a.stack.c_str(), a.deployment.c_str());
    return 0;
  }
  if (c.claim->parsed()) {
    Doc claim;
    if (remote) {
      auto d = Call(a.server, "POST", "/v1/stacks/" + a.stack + "/templates/" + a.template_name + "/claims",
                    Doc{{"user", a.user}}.dump());
      if (!d) return Fail(d.error());
      claim = *d;
    } else {
      auto r = service->Claim(a.stack, a.template_name, a.user, RealClock::Instance().WallMs());
      if (!r) return Fail(r.error());
      claim = ClaimToJson(*r);
    }
    std::printf("%s\n", claim.dump(2).c_str());
    return 0;
  }
  if (c.release->parsed()) {
    if (remote) {
      auto d = Call(a.server, "DELETE", "/v1/stacks/" + a.stack + "/claims/" + a.deployment);
      if (!d) return Fail(d.error());
    } else if (auto st = service->Release(a.stack, a.deployment, TeardownHook(store.get(), Output{}, Millis(30'000)));
               !st) {
      return Fail(st.error());
    }
    std::printf("released %s\n", a.deployment.c_str());
    return 0;
  }
  if (c.expire->parsed()) {
    auto released = service->Expire(RealClock::Instance().WallMs(), TeardownHook(store.get(), Output{}, Millis(30'000)));
    if (!released) return Fail(released.error());
    for (const auto& r : *released) std::printf("expired %s/%s (host %s)\n", r.stack.c_str(), r.deployment.c_str(), r.host.c_str());
    std::printf("%zu expired claim(s) released\n", released->size());
    return 0;
  }
  return -1;
}

Result<ResolvedTarget> ResolveThrough(const std::string& source, const std::string& store_path,
                                      const std::string& stack, const std::string& release,
                                      const std::string& deployment, const std::string& limit) {
  if (source == "store") {
    SP_ASSIGN_OR_RETURN(auto store, OpenStoreAt(store_path));
    inventory::Service service(*store, inventory::ServiceOptions{inventory::DynamicSourceRunner()});
    return service.Resolve(stack, release, deployment, limit);
  }
  SP_ASSIGN_OR_RETURN(Doc d, Call(source, "GET", Query(stack, release, deployment, limit)));
  return ResolvedFromJson(d);
}

}  // namespace sp::cli
