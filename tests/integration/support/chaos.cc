#include "support/chaos.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "deploy/left_rollouts.h"
#include "store/sqlite/sqlite_store.h"
#include "support/cli_runner.h"
#include "support/haproxy_fixture.h"
#include "support/rollout_scenario.h"
#include "support/server_process.h"

namespace sp::test {

namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr int kHosts = 3;
constexpr char kLease[] = "3s";
constexpr milliseconds kPastLease{4'500};  // A SIGSTOP this long outlives the 3 s lease.

// The server and the two agents, each restarted in a new process (its own
// log) whenever the injector ends one.
class Cast {
 public:
  Cast(std::string dir, std::string db) : dir_(std::move(dir)), db_(std::move(db)), port_(FreePort()) {}
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  Status Setup() {
    for (const char* name : {"agent-a", "agent-b"}) {
      auto t = RunSallyport({"token", "create", "--name", name, "--label", "network=local", "--store", db_});
      if (t.exit_code != 0) return Err(ErrorCode::kInternal, "token create: " + t.err);
      WriteFile(dir_ + "/" + name + ".token", t.out, 0600);
    }
    SP_TRY(StartServer());
    for (int i = 0; i < 2; ++i) SP_TRY(StartAgent(i));
    return Ok();
  }
  Status StartServer() {
    const std::string log = dir_ + "/server-" + std::to_string(++incarnations_) + ".log";
    server_ = Daemon({BuildBinary("sallyport"), "server", "--store", db_, "--listen",
                      "127.0.0.1:" + std::to_string(port_), "--poll-every", "0"},
                     log);
    return Ready(server_, log, "listening on");
  }
  Status StartAgent(int i) {
    const std::string name = i == 0 ? "agent-a" : "agent-b";
    const std::string log = dir_ + "/" + name + "-" + std::to_string(++incarnations_) + ".log";
    agents_[i] = Daemon({BuildBinary("sallyport"), "agent", "run", "--server", url(), "--token-file",
                         dir_ + "/" + name + ".token", "--lease", kLease},
                        log);
    return Ready(agents_[i], log, "claiming for");
  }
  Daemon& server() { return server_; }
  Daemon& agent(int i) { return agents_[i]; }
  void StopAll() {
    for (auto& a : agents_) {
      a.Signal(SIGCONT);
      a.Stop();
    }
    server_.Stop();
  }

 private:
  static Status Ready(const Daemon& d, const std::string& log, const std::string& marker) {
    if (WaitForStart(d, [&] { return ReadFile(log).find(marker) != std::string::npos; }, milliseconds(15'000)) !=
        StartWait::kReady) {
      return Err(ErrorCode::kUnavailable, log + ": no '" + marker + "': " + ReadFile(log));
    }
    return Ok();
  }

  std::string dir_, db_;
  int port_;
  int incarnations_ = 0;
  Daemon server_;
  Daemon agents_[2];
};

// Kills `d` with SIGKILL and waits until it is reaped.
void KillNine(Daemon& d) {
  d.Signal(SIGCONT);
  d.Signal(SIGKILL);
  WaitFor([&] { return !d.Alive(); }, std::chrono::seconds(10));
}

// The agent (0: a, 1: b) holding a job now, or -1.
int Holder(SqliteStore& store) {
  auto jobs = store.ListJobs(20);
  if (!jobs) return -1;
  for (const Job& j : *jobs) {
    if (j.state == JobState::kLeased) return j.lease_owner == "agent-a" ? 0 : j.lease_owner == "agent-b" ? 1 : -1;
  }
  return -1;
}

// One fault at a time, a random 1.5-4 s apart, until `until`; an agent's
// fault hits the agent holding a job 4 times in 5.
void Inject(Cast& cast, SqliteStore& store, std::mt19937& rng, Steady::time_point until, ChaosReport& report,
            std::mutex& mu, const std::function<void(const std::string&)>& say) {
  const auto t0 = Steady::now();
  while (true) {
    const auto pause = milliseconds(1'500 + static_cast<int>(rng() % 2'500));
    if (Steady::now() + pause >= until) break;
    std::this_thread::sleep_for(pause);
    const int which = static_cast<int>(rng() % 5);
    const int holder = Holder(store);
    const int agent = holder >= 0 && rng() % 5 != 0 ? holder : static_cast<int>(rng() % 2);
    std::string fault, line;
    Status restarted = Ok();
    if (which <= 1) {
      fault = "kill -9 agent";
      KillNine(cast.agent(agent));
      restarted = cast.StartAgent(agent);
      line = fault + (agent == 0 ? " a" : " b") + ", started again";
    } else if (which <= 3) {
      fault = "SIGSTOP agent past its lease";
      cast.agent(agent).Signal(SIGSTOP);
      std::this_thread::sleep_for(kPastLease);
      cast.agent(agent).Signal(SIGCONT);
      line = std::string("SIGSTOP agent ") + (agent == 0 ? "a" : "b") + " for 4.5 s (lease 3 s), then SIGCONT";
    } else {
      fault = "kill -9 server";
      KillNine(cast.server());
      restarted = cast.StartServer();
      line = fault + ", started again";
    }
    const long at = static_cast<long>(std::chrono::duration_cast<milliseconds>(Steady::now() - t0).count());
    line = "t+" + std::to_string(at / 1000) + "." + std::to_string(at % 1000 / 100) + " s: " + line +
           (restarted ? "" : " — FAILED: " + restarted.error().message);
    {
      std::lock_guard l(mu);
      report.injected.push_back(line);
      ++report.faults[fault];
    }
    if (say) say("inject " + line);
  }
}

// Samples the backend every 25 ms until `stop`: the most servers not UP at once.
void Monitor(HaproxyFixture& haproxy, const std::atomic<bool>& stop, ChaosReport& report) {
  while (!stop) {
    int out = 0;
    for (int i = 1; i <= kHosts; ++i) out += !StartsWith(haproxy.ServerStatus("app" + std::to_string(i)), "UP");
    report.max_out_of_rotation = std::max(report.max_out_of_rotation, out);
    ++report.samples;
    std::this_thread::sleep_for(milliseconds(25));
  }
}

// `rollout run --server ... --plan-here` of `version` (retried while the
// server is being restarted): the job's id, 0 when it could not be queued.
int64_t Queue(const std::string& dir, const std::string& url, const std::string& version) {
  for (int attempt = 0; attempt < 60; ++attempt) {
    auto r = RunSallyport({"rollout", "run", "-c", dir + "/sallyport.yml", "-i", dir + "/inventory.yml", "-d",
                           "integration", "--store", dir + "/cli.db", "--artifact", BuildBinary("sp-sample-app"),
                           "--version", version, "--server", url, "--plan-here"},
                          {}, 30);
    const size_t at = r.out.find(" as job ");
    if (r.exit_code == 0 && at != std::string::npos) return std::atoll(r.out.c_str() + at + 8);
    std::this_thread::sleep_for(milliseconds(500));
  }
  return 0;
}

// Waits (up to `timeout`) for job `id` to end; its state then.
JobState WaitJob(SqliteStore& store, int64_t id, milliseconds timeout) {
  JobState state = JobState::kQueued;
  WaitFor(
      [&] {
        auto j = store.GetJob(id);
        if (j) state = j->state;
        return j && JobEnded(j->state);
      },
      timeout, milliseconds(100));
  return state;
}

// Every job ended (up to `timeout`: a reconcile queued for a dead job too).
int WaitAllJobsEnded(SqliteStore& store, milliseconds timeout) {
  int open = 0;
  WaitFor(
      [&] {
        auto jobs = store.ListJobs(10'000);
        if (!jobs) return false;
        open = static_cast<int>(std::count_if(jobs->begin(), jobs->end(), [](const Job& j) { return !JobEnded(j.state); }));
        return open == 0;
      },
      timeout, milliseconds(200));
  return open;
}

// "app1 c7 UP" for each host; true when each served a version and was UP.
bool ReadHosts(HaproxyFixture& haproxy, const std::vector<int>& ports, std::vector<std::string>& out,
               const std::string& want = "") {
  bool ok = true;
  out.clear();
  for (int i = 1; i <= kHosts; ++i) {
    const std::string version = VersionOn(ports[i - 1]);
    const std::string status = haproxy.ServerStatus("app" + std::to_string(i));
    out.push_back("app" + std::to_string(i) + " " + (version.empty() ? "(none)" : version) + " " + status);
    ok = ok && !version.empty() && (want.empty() || version == want) && StartsWith(status, "UP");
  }
  return ok;
}

}  // namespace

std::string ChaosReport::Summary() const {
  std::string s = "seed " + std::to_string(seed) + "\ninjected (" + std::to_string(injected.size()) + "):\n";
  for (const auto& l : injected) s += "  " + l + "\n";
  for (const auto& [f, n] : faults) s += "  " + f + ": " + std::to_string(n) + "\n";
  s += "rollouts queued: " + std::to_string(rollouts_queued) + "\njobs at the end:";
  for (const auto& [k, n] : jobs) s += " " + k + "=" + std::to_string(n);
  s += "\njobs taken again after their agent was lost:";
  for (int64_t id : retaken) s += " " + std::to_string(id);
  for (const auto& d : dead) s += "\n  dead " + d;
  s += "\njobs not ended (lost): " + std::to_string(jobs_unfinished) +
       "\nmost servers out of rotation at once: " + std::to_string(max_out_of_rotation) + " (batch 1; " +
       std::to_string(samples) + " samples)\nsettled:";
  for (const auto& h : hosts_settled) s += " [" + h + "]";
  s += std::string("\none instance serving, UP, on every host: ") + (one_instance_each ? "yes" : "NO") +
       "\nlast rollout " + final_version + ": " + (final_succeeded ? "succeeded" : "FAILED") +
       "; every host on it, UP: " + (one_version ? "yes" : "NO") + "\nload: " +
       (load_ok ? load.Summary() : std::string("(no result)")) + "\n";
  return s;
}

ChaosReport RunChaos(const ChaosOptions& o) {
  ChaosReport report;
  auto fail = [&report](const std::string& why) {
    report.error = why;
    return report;
  };
  report.seed = o.seed ? o.seed : static_cast<unsigned>(Steady::now().time_since_epoch().count());
  std::mt19937 rng(report.seed);
  auto say = [&o](const std::string& line) {
    if (o.say) o.say(line);
  };
  const std::string db = o.dir + "/server.db";
  std::vector<int> ports;
  HaproxyFixture haproxy(o.dir, ScenarioHaproxy(kHosts, &ports));
  if (auto st = haproxy.Start(); !st) return fail("haproxy: " + st.error().message);
  WriteFile(o.dir + "/inventory.yml", InventoryYaml({haproxy.socket_path(), ports, o.dir + "/apps", ""}));
  WriteFile(o.dir + "/sallyport.yml", ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 30}"));
  if (AdminToken(db).empty()) return fail("no admin token");
  Cast cast(o.dir, db);
  struct Cleanup {
    Cast& cast;
    std::string apps;
    ~Cleanup() {
      cast.StopAll();
      StopScenarioApps(apps, kHosts);
    }
  } cleanup{cast, o.dir + "/apps"};
  if (auto st = cast.Setup(); !st) return fail(st.error().message);
  auto store = SqliteStore::Open(db);
  if (!store) return fail(store.error().message);

  // Every host serving c0 before any load or fault.
  const int64_t first = Queue(o.dir, cast.url(), "c0");
  if (first == 0 || WaitJob(**store, first, milliseconds(60'000)) != JobState::kSucceeded ||
      !haproxy.WaitAllUp(milliseconds(10'000))) {
    return fail("the first rollout did not succeed");
  }
  LoadOptions lo;
  lo.port = haproxy.frontend_port();
  lo.slow_fraction = 0.3;
  lo.slow_max_ms = 500;
  lo.max_duration = o.duration + std::chrono::seconds(300);  // Bounded whatever happens.
  lo.work_dir = o.dir;
  LoadGenerator load(lo);
  if (auto st = load.Start(); !st) return fail("wrk: " + st.error().message);
  std::atomic<bool> stop_monitor{false};
  std::thread monitor([&] { Monitor(haproxy, stop_monitor, report); });

  const auto until = Steady::now() + o.duration;
  std::mutex mu;
  std::thread injector([&] { Inject(cast, **store, rng, until, report, mu, o.say); });
  for (int n = 1; Steady::now() < until; ++n) {
    const std::string version = "c" + std::to_string(n);
    const int64_t id = Queue(o.dir, cast.url(), version);
    if (id == 0) {
      say("could not queue " + version);
      continue;
    }
    ++report.rollouts_queued;
    const JobState s = WaitJob(**store, id, milliseconds(120'000));
    say("rollout " + version + " (job " + std::to_string(id) + "): " + std::string(JobStateName(s)));
  }
  injector.join();
  // Settled: every job (and any reconcile) ended, each host on one version, UP.
  report.jobs_unfinished = WaitAllJobsEnded(**store, milliseconds(120'000));
  WaitFor([&] { return ReadHosts(haproxy, ports, report.hosts_settled); }, std::chrono::seconds(15));
  report.one_instance_each = ReadHosts(haproxy, ports, report.hosts_settled);
  report.final_version = "final";
  const int64_t last = Queue(o.dir, cast.url(), report.final_version);
  report.final_succeeded = last != 0 && WaitJob(**store, last, milliseconds(120'000)) == JobState::kSucceeded;
  std::vector<std::string> final_hosts;
  report.one_version = WaitFor([&] { return ReadHosts(haproxy, ports, final_hosts, report.final_version); },
                               std::chrono::seconds(15));
  stop_monitor = true;
  monitor.join();
  if (auto r = load.Stop()) {
    report.load = *r;
    report.load_ok = true;
  }
  if (auto jobs = (*store)->ListJobs(10'000)) {
    for (const Job& j : *jobs) {
      ++report.jobs[j.spec.kind + " " + std::string(JobStateName(j.state))];
      if (j.attempts > 1) report.retaken.push_back(j.id);
      if (j.state != JobState::kDead) continue;
      // What its rollout's journal says: reconciled (failed), or ended before the job could report it.
      std::string rollout = "no rollout recorded";
      if (const auto plan = PlanTextOfJob(j.spec.kind, j.spec.payload)) {
        const auto id = nlohmann::json::parse(*plan, nullptr, false).value("id", "");
        if (auto rec = (*store)->GetRollout(id)) rollout = "rollout " + id + " " + std::string(RolloutStatusName(rec->status));
      }
      report.dead.push_back("job " + std::to_string(j.id) + ": " + j.error + "; " + rollout);
    }
  }
  return report;
}

}  // namespace sp::test
