// bench_build_triggers: the build server's triggers (issue 5), on loopback
// with a real `git daemon` and a real `sallyport server`.
//
//   build/bin/bench_build_triggers [webhooks=50] [repos=200] [poll_seconds=60]
//
// 1. Webhook received -> first step's process started: `webhooks` commits on
//    their own branches; for each, a signed push event is sent and the first
//    step writes the wall clock (ns) the moment its process runs. Reported:
//    the whole latency, the checkout step's share, and the latency minus the
//    checkout. Target (minus checkout): p50 < 100 ms, p99 < 300 ms.
// 2. Polling `repos` repositories every 10 s: after the first wave of builds
//    (one per repository) has finished, the server's CPU time (its own and
//    its reaped children's: the `git ls-remote` processes) over
//    `poll_seconds` of steady polling, as a share of one core. Target < 5 %.
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "build/build_service.h"
#include "core/file.h"
#include "core/text.h"
#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_util.h"

using namespace sp;
using test::Percentile;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Sh(const std::string& script) { return test::Run({"sh", "-c", script}) == 0; }

// utime+stime+cutime+cstime of `pid`, in clock ticks.
int64_t CpuTicks(int pid) {
  std::string stat = test::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  auto fields = Split(stat.substr(close + 2), ' ');
  // After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
  if (fields.size() < 15) return -1;
  return std::atoll(fields[11].c_str()) + std::atoll(fields[12].c_str()) + std::atoll(fields[13].c_str()) +
         std::atoll(fields[14].c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const int webhooks = argc > 1 ? std::atoi(argv[1]) : 50;
  const int repos = argc > 2 ? std::atoi(argv[2]) : 200;
  const int poll_seconds = argc > 3 ? std::atoi(argv[3]) : 60;
  test::TempDir dir("sp-bench-builds");
  const std::string git_root = dir / "git";
  fs::create_directories(git_root);
  const int git_port = test::FreePort();
  test::Daemon git_daemon({"git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + git_root,
                           "--listen=127.0.0.1", "--port=" + std::to_string(git_port), git_root},
                          dir / "git-daemon.log");
  if (!test::WaitFor([&] { return test::PortOpen(git_port); }, std::chrono::seconds(10))) {
    std::fprintf(stderr, "git daemon did not start\n");
    return 2;
  }
  const std::string url_base = "git://127.0.0.1:" + std::to_string(git_port) + "/";

  // ---- 1. webhook -> first step started
  {
    const std::string work = dir / "hooks-work", marks = dir / "marks";
    fs::create_directories(marks);
    test::WriteFile(dir / "hook-secret", "bench-secret", 0600);
    const std::string setup =
        "set -e; git init -q --bare -b main " + git_root + "/hooks.git; git init -q -b main " + work + "; cd " + work +
        "; git config user.email b@example.test; git config user.name B; "
        "printf 'version: 1\\nservice: svc\\nstack: demo\\nreleases: {web: {runtime: process}}\\n"
        "branches: [{match: \"**\"}]\\npipeline:\\n  - {name: first, run: [sh, -c, \"date +%%s%%N > " + marks +
        "/$SALLYPORT_BRANCH\"]}\\n' > sallyport.yml; "
        "for i in $(seq " + std::to_string(webhooks) + "); do echo $i > n; git add -A; git commit -q -m c$i; "
        "git push -q " + git_root + "/hooks.git HEAD:refs/heads/b$i; done";
    if (!Sh(setup)) {
      std::fprintf(stderr, "repository setup failed\n");
      return 2;
    }
    const std::string db = dir / "hooks.db";
    if (test::RunSallyport({"project", "add", "--name", "hooks", "--git", url_base + "hooks.git", "--webhook-secret",
                            "file:" + (dir / "hook-secret"), "--store", db})
            .exit_code != 0) {
      return 2;
    }
    test::ServerProcess server(dir, db, "hooks-server", {"--poll-every", "0", "--builds", "2"});
    if (!server.ready()) {
      std::fprintf(stderr, "server: %s\n", server.Log().c_str());
      return 2;
    }
    httplib::Client c("127.0.0.1", server.port());
    c.set_default_headers({{"Authorization", test::Bearer()}});
    c.set_read_timeout(30, 0);
    std::vector<double> total, checkout, rest;
    for (int i = 1; i <= webhooks; ++i) {
      const std::string branch = "b" + std::to_string(i);
      std::string out;
      test::Run({"git", "--git-dir", git_root + "/hooks.git", "rev-parse", "refs/heads/" + branch}, &out);
      const std::string sha = Trim(out);
      const std::string body = json{{"ref", "refs/heads/" + branch}, {"after", sha}}.dump();
      const int64_t sent = WallNs();
      auto r = c.Post("/hooks/github/hooks",
                      httplib::Headers{{"X-Hub-Signature-256", HubSignature("bench-secret", body)},
                                       {"X-GitHub-Delivery", "bench-" + std::to_string(i)}},
                      body, "application/json");
      if (!r || r->status != 202) {
        std::fprintf(stderr, "webhook %d: %s\n", i, r ? r->body.c_str() : "no answer");
        return 1;
      }
      const int64_t id = json::parse(r->body)["build"];
      const std::string mark = marks + "/" + branch;
      if (!test::WaitFor([&] { return !Trim(test::ReadFile(mark)).empty(); }, std::chrono::seconds(30),
                         std::chrono::milliseconds(1))) {
        std::fprintf(stderr, "build %lld: first step never started\n", static_cast<long long>(id));
        return 1;
      }
      const double ms = static_cast<double>(std::atoll(Trim(test::ReadFile(mark)).c_str()) - sent) / 1e6;
      // The checkout step's duration, from the build's record.
      double co = 0;
      test::WaitFor(
          [&] {
            auto b = c.Get("/v1/builds/" + std::to_string(id));
            if (!b) return false;
            const json build = json::parse(b->body, nullptr, false);
            if (!build.is_object() || !build.contains("steps")) return false;
            for (const auto& s : build["steps"]) {
              if (s.value("name", "") == "checkout" && s.value("finished_ms", int64_t{0}) > 0) {
                co = static_cast<double>(s["finished_ms"].get<int64_t>() - s["started_ms"].get<int64_t>());
                return true;
              }
            }
            return false;
          },
          std::chrono::seconds(10));
      total.push_back(ms);
      checkout.push_back(co);
      rest.push_back(ms - co);
    }
    std::printf("webhook -> first step's process started (%d webhooks):\n", webhooks);
    std::printf("  total:            p50 %.1f ms, p99 %.1f ms\n", Percentile(total, 0.5), Percentile(total, 0.99));
    std::printf("  checkout step:    p50 %.1f ms, p99 %.1f ms\n", Percentile(checkout, 0.5), Percentile(checkout, 0.99));
    const double p50 = Percentile(rest, 0.5), p99 = Percentile(rest, 0.99);
    std::printf("  minus checkout:   p50 %.1f ms, p99 %.1f ms  %s (target p50 < 100 ms, p99 < 300 ms)\n", p50, p99,
                p50 < 100 && p99 < 300 ? "PASS" : "MISS");
  }

  // ---- 2. polling `repos` repositories every 10 s
  {
    const std::string tmpl = dir / "tmpl";
    if (!Sh("set -e; git init -q -b integration " + tmpl + "; cd " + tmpl +
            "; git config user.email b@example.test; git config user.name B; "
            "printf 'version: 1\\nservice: svc\\nstack: demo\\nreleases: {web: {runtime: process}}\\n' > sallyport.yml; "
            "git add -A; git commit -q -m one; git clone -q --bare " + tmpl + " " + git_root + "/r0.git")) {
      return 2;
    }
    const std::string db = dir / "poll.db";
    for (int i = 0; i < repos; ++i) {
      const std::string name = "r" + std::to_string(i);
      if (i > 0) fs::copy(git_root + "/r0.git", git_root + "/" + name + ".git", fs::copy_options::recursive);
      if (test::RunSallyport({"project", "add", "--name", name, "--git", url_base + name + ".git", "--store", db})
              .exit_code != 0) {
        return 2;
      }
    }
    std::fprintf(stderr, "%d repositories and projects made; starting the server\n", repos);
    test::ServerProcess server(dir, db, "poll-server", {"--poll-every", "10s", "--builds", "2"});
    if (!server.ready()) return 2;
    httplib::Client c("127.0.0.1", server.port());
    c.set_default_headers({{"Authorization", test::Bearer()}});
    // The first wave: one build per repository (no pipeline: checkout only).
    const bool settled = test::WaitFor(
        [&] {
          auto r = c.Get("/v1/builds?limit=1000");
          if (!r) return false;
          const json all = json::parse(r->body, nullptr, false);
          if (!all.is_object()) return false;
          const json& builds = all["builds"];
          static int last = -1;
          if (static_cast<int>(builds.size()) != last) {
            last = static_cast<int>(builds.size());
            std::fprintf(stderr, "  first wave: %d builds\n", last);
          }
          if (static_cast<int>(builds.size()) < repos) return false;
          for (const auto& b : builds) {
            const std::string s = b.value("status", "");
            if (s == "queued" || s == "running") return false;
          }
          return true;
        },
        std::chrono::minutes(5), std::chrono::milliseconds(500));
    if (!settled) {
      std::fprintf(stderr, "the first wave of builds did not finish\n");
      return 1;
    }
    const long hz = ::sysconf(_SC_CLK_TCK);
    const int64_t t0 = CpuTicks(server.daemon().pid());
    const auto w0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(poll_seconds));  // The measurement window itself.
    const int64_t t1 = CpuTicks(server.daemon().pid());
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    const double cpu = static_cast<double>(t1 - t0) / static_cast<double>(hz);
    const double share = 100.0 * cpu / wall;
    std::printf("polling %d repositories every 10 s for %.0f s: server CPU %.2f s (incl. git ls-remote) = %.2f %% of "
                "one core  %s (target < 5 %%)\n",
                repos, wall, cpu, share, share < 5.0 ? "PASS" : "MISS");
  }
  return 0;
}
