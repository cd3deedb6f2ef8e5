// bench_orchestrator: the cost of the orchestrator itself. The RolloutEngine
// runs a rollout of N hosts (batch 1) against instant recording fakes
// (runtime, load balancer, health, transport; FakeClock, no sessions to
// drain) and a FILE-backed SqliteStore (WAL, default options), so what is
// measured is the engine, its journal and the store — not the world.
//
//   bench_orchestrator [--dir PATH] [N ...]     (default N: 1000 10000)
//
// Each N runs in a forked child so that CPU time and peak RSS are its own.
// Prints figures and PASS/MISS against the targets; never fails on a miss.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "rollout/engine.h"
#include "store/sqlite/sqlite_store.h"
#include "unit/fakes.h"

namespace sp::bench {
namespace {

constexpr double kTargetCpuMsPerHost = 1.0;
constexpr int kLargeHosts = 10'000;
constexpr double kTargetLargeWallS = 20.0;
constexpr double kTargetLargeRssMb = 100.0;

using SteadyClock = std::chrono::steady_clock;

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Cpu {
  double user_s = 0, sys_s = 0;
  long max_rss_kb = 0;
  double total() const { return user_s + sys_s; }
};

Cpu ReadCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  Cpu c;
  c.user_s = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
  c.sys_s = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  c.max_rss_kb = ru.ru_maxrss;
  return c;
}

// Forwards to the SqliteStore, counting rows and the wall time spent in the store.
class CountingJournal final : public JournalStore {
 public:
  explicit CountingJournal(JournalStore* inner) : inner_(inner) {}
  int64_t step_rows = 0, host_writes = 0;
  SteadyClock::duration in_store{};

  Status CreateRollout(const RolloutRecord& r) override { return Timed([&] { return inner_->CreateRollout(r); }); }
  Status FinishRollout(const std::string& id, RolloutStatus s, const std::string& e) override {
    return Timed([&] { return inner_->FinishRollout(id, s, e); });
  }
  Result<RolloutRecord> GetRollout(const std::string& id) override { return inner_->GetRollout(id); }
  Result<std::optional<RolloutRecord>> Latest(const std::string& a, const std::string& b, const std::string& c,
                                              std::optional<RolloutStatus> s) override {
    return Timed([&] { return inner_->Latest(a, b, c, s); });
  }
  Result<std::vector<RolloutRecord>> ListRollouts(int n) override { return inner_->ListRollouts(n); }
  Status AppendStep(const StepRecord& s) override {
    ++step_rows;
    return Timed([&] { return inner_->AppendStep(s); });
  }
  Result<std::vector<StepRecord>> Steps(const std::string& id) override { return inner_->Steps(id); }
  Status PutHost(const HostRecord& h) override {
    ++host_writes;
    return Timed([&] { return inner_->PutHost(h); });
  }
  Result<std::vector<HostRecord>> Hosts(const std::string& id) override { return inner_->Hosts(id); }

 private:
  template <typename F>
  auto Timed(F&& f) -> decltype(f()) {
    auto t0 = SteadyClock::now();
    auto r = f();
    in_store += SteadyClock::now() - t0;
    return r;
  }
  JournalStore* inner_;
};

std::string HostName(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "h%05d", i);
  return buf;
}

// Runs one rollout of `n` hosts in this process and prints its figures.
// Returns 0 if the rollout succeeded (targets do not affect it).
int RunOnce(int n, const std::string& parent_dir) {
  std::string tmpl = parent_dir + "/sp-bench-orch-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 2;
  }
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};

  auto opened = SqliteStore::Open(dir + "/state.db");
  if (!opened) {
    std::fprintf(stderr, "open store: %s\n", opened.error().message.c_str());
    return 2;
  }
  std::unique_ptr<SqliteStore> store = std::move(*opened);
  std::printf("store: %s/state.db  pragmas: %s\n", dir.c_str(), store->Pragmas().c_str());
  CountingJournal journal(store.get());

  test::World world;
  test::FakeRuntime runtime(&world);
  test::FakeTransport transport(&world);
  test::FakeLoadBalancer lb(&world, "lb");
  FakeClock clock;

  RolloutPlan plan;
  plan.id = NewRolloutId();
  plan.service = "bench";
  plan.stack = "bench";
  plan.release = "web";
  plan.deployment = "bench";
  plan.app.runtime = "fake";
  plan.app.artifact = "img:v2";
  plan.app.version = "v2";
  plan.app.health.retries = 3;
  plan.app.health.interval = Millis(100);
  plan.strategy.batch = CountOrPercent{1, false};
  LoadBalancerSpec lb_spec;
  lb_spec.backend = "app";
  lb_spec.socket = "/fake";
  plan.load_balancers.push_back(lb_spec);
  std::map<int, std::string> port_to_host;
  for (int i = 0; i < n; ++i) {
    HostSpec h;
    h.name = HostName(i);
    h.address = "127.0.0.1";
    h.port = 10'000 + i;  // Distinct per host: FakeHealth maps port -> host.
    plan.hosts.push_back(h);
    lb.AddServer("app", h.name);
    runtime.Seed(h.name, "v1");
    port_to_host[h.port] = h.name;
  }
  test::FakeHealth health(&world, &runtime, std::move(port_to_host));

  int64_t events = 0, event_bytes = 0;
  EngineDeps d;
  d.clock = &clock;
  d.journal = &journal;
  d.locks = store.get();
  d.runtime = &runtime;
  d.transport = &transport;
  d.health = &health;
  d.lb_factory = [&lb](const LoadBalancerSpec&) -> Result<std::unique_ptr<LoadBalancer>> {
    return test::Borrow(&lb);  // The engine owns what the factory returns; the fake outlives it.
  };
  // As `sallyport rollout --json` does: every event rendered as a JSON line (discarded here).
  d.on_event = [&](const Event& e) {
    ++events;
    event_bytes += static_cast<int64_t>(e.ToJsonLine().size()) + 1;
  };
  EngineOptions o;
  o.holder = "bench pid " + std::to_string(getpid());
  o.machine = "bench";
  o.pid = getpid();
  o.pid_alive = [](int64_t) { return true; };
  RolloutEngine engine(d, o);

  const Cpu cpu0 = ReadCpu();
  const auto t0 = SteadyClock::now();
  auto summary = engine.Run(std::move(plan));
  const double wall_s = Seconds(SteadyClock::now() - t0);
  const Cpu cpu1 = ReadCpu();

  if (!summary) {
    std::printf("hosts=%d  ERROR: %s\n", n, summary.error().message.c_str());
    return 1;
  }
  int done = 0;
  for (const auto& h : summary->hosts) done += h.state == HostState::kDone;
  const double cpu_s = cpu1.total() - cpu0.total();
  const double cpu_ms_per_host = cpu_s * 1000.0 / n;
  const double rss_mb = static_cast<double>(cpu1.max_rss_kb) / 1024.0;
  const double store_s = Seconds(journal.in_store);
  std::error_code ec;
  const auto db_bytes = std::filesystem::file_size(dir + "/state.db", ec);
  const auto wal_bytes = std::filesystem::file_size(dir + "/state.db-wal", ec);

  std::printf("hosts                 %d (%d done, status %s)\n", n, done,
              std::string(RolloutStatusName(summary->status)).c_str());
  std::printf("wall                  %.3f s\n", wall_s);
  std::printf("cpu (user+sys)        %.3f s  (user %.3f, sys %.3f)\n", cpu_s, cpu1.user_s - cpu0.user_s,
              cpu1.sys_s - cpu0.sys_s);
  std::printf("cpu per host          %.3f ms\n", cpu_ms_per_host);
  std::printf("journal rows written  %lld steps (%.1f/host), %lld host-state writes\n",
              static_cast<long long>(journal.step_rows), static_cast<double>(journal.step_rows) / n,
              static_cast<long long>(journal.host_writes));
  std::printf("wall in store         %.3f s (%.0f%% of wall)\n", store_s, wall_s > 0 ? 100.0 * store_s / wall_s : 0.0);
  std::printf("events (--json)       %lld (%.1f MB)\n", static_cast<long long>(events), event_bytes / 1e6);
  std::printf("db file               %.1f MB (+ wal %.1f MB)\n", static_cast<double>(db_bytes) / 1e6,
              static_cast<double>(wal_bytes) / 1e6);
  std::printf("fake log entries      %zu\n", world.Log().size());
  std::printf("peak RSS              %.1f MB\n", rss_mb);
  std::printf("target cpu <= %.0f ms/host            %s (%.3f ms)\n", kTargetCpuMsPerHost,
              cpu_ms_per_host <= kTargetCpuMsPerHost ? "PASS" : "MISS", cpu_ms_per_host);
  if (n >= kLargeHosts) {
    std::printf("target %d hosts wall < %.0f s      %s (%.3f s)\n", kLargeHosts, kTargetLargeWallS,
                wall_s < kTargetLargeWallS ? "PASS" : "MISS", wall_s);
    std::printf("target %d hosts peak RSS < %.0f MB %s (%.1f MB)\n", kLargeHosts, kTargetLargeRssMb,
                rss_mb < kTargetLargeRssMb ? "PASS" : "MISS", rss_mb);
  }
  return summary->status == RolloutStatus::kSucceeded ? 0 : 1;
}

int Main(int argc, char** argv) {
  std::vector<int> sizes;
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp && *tmp ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--dir PATH] [N ...]  (default N: 1000 10000)\n", argv[0]);
      return 0;
    } else {
      int n = std::atoi(a.c_str());
      if (n <= 0) {
        std::fprintf(stderr, "bad host count '%s'\n", a.c_str());
        return 2;
      }
      sizes.push_back(n);
    }
  }
  if (sizes.empty()) sizes = {1000, kLargeHosts};

  std::printf("bench_orchestrator: RolloutEngine + instant fakes + file SqliteStore, batch 1\n");
  int rc = 0;
  for (int n : sizes) {
    std::printf("\n== %d hosts ==\n", n);
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 2;
    }
    if (pid == 0) {
      int r = RunOnce(n, dir);
      std::fflush(stdout);
      _exit(r);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  return rc;
}

}  // namespace
}  // namespace sp::bench

int main(int argc, char** argv) { return sp::bench::Main(argc, argv); }
