// bench_build_logs: build log throughput of a real `sallyport server`
// (issue 5). A step prints `mb` MB of 100-byte lines as fast as it can.
//
//   build/bin/bench_build_logs [mb=200]
//
// 1. Stored with one live follower (GET /v1/builds/ID/log?follow=1, server-
//    sent events): the step's MB / the step's duration. Target >= 100 MB/s.
// 2. Delivered to each of 10 followers: every follower's bytes / the time
//    from its first byte to the end of its stream. Target >= 20 MB/s each.
// 3. The server's peak RSS growth over both runs (VmHWM). Target < 50 MB.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_util.h"

using namespace sp;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Follower {
  std::atomic<int64_t> bytes{0};
  SteadyClock::time_point first, last;
  bool ended = false;
};

}  // namespace

int main(int argc, char** argv) {
  const int mb = argc > 1 ? std::atoi(argv[1]) : 200;
  const int64_t lines = static_cast<int64_t>(mb) * 1'000'000 / 100;
  test::TempDir dir("sp-bench-logs");
  const std::string git_root = dir / "git";
  std::filesystem::create_directories(git_root);
  const int git_port = test::FreePort();
  test::Daemon git_daemon({"git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + git_root,
                           "--listen=127.0.0.1", "--port=" + std::to_string(git_port), git_root},
                          dir / "git-daemon.log");
  if (!test::WaitFor([&] { return test::PortOpen(git_port); }, std::chrono::seconds(10))) return 2;
  const std::string work = dir / "work";
  // 99 characters + newline: the step's line; two commits = two runs.
  const std::string setup =
      "set -e; git init -q --bare -b integration " + git_root + "/logs.git; git init -q -b integration " + work +
      "; cd " + work + "; git config user.email b@example.test; git config user.name B; "
      "printf 'version: 1\\nservice: svc\\nstack: demo\\nreleases: {web: {runtime: process}}\\npipeline:\\n"
      "  - {name: chatty, run: [sh, -c, \"yes %099d | head -n " + std::to_string(lines) + "\"]}\\n' 0 > sallyport.yml; "
      "git add -A; git commit -q -m one";
  if (test::Run({"sh", "-c", setup}) != 0) return 2;
  const std::string db = dir / "state.db";
  if (test::RunSallyport({"project", "add", "--name", "logs", "--git",
                          "git://127.0.0.1:" + std::to_string(git_port) + "/logs.git", "--store", db})
          .exit_code != 0) {
    return 2;
  }
  test::ServerProcess server(dir, db, "server", {"--poll-every", "0", "--builds", "1"});
  if (!server.ready()) return 2;
  const int pid = server.daemon().pid();
  const int64_t rss_before = test::ProcStatusKb(pid, "VmRSS");
  httplib::Client api("127.0.0.1", server.port());
  api.set_default_headers({{"Authorization", test::Bearer()}});

  auto run = [&](int followers, const std::string& commit_msg) -> bool {
    if (test::Run({"sh", "-c", "cd " + work + " && echo " + commit_msg + " > n && git add -A && git commit -q -m " +
                                   commit_msg + " && git push -q " + git_root + "/logs.git HEAD:refs/heads/integration"}) != 0) {
      return false;
    }
    auto r = api.Post("/v1/builds", json{{"project", "logs"}, {"branch", "integration"}}.dump(), "application/json");
    if (!r || r->status != 201) {
      std::fprintf(stderr, "start: %s\n", r ? r->body.c_str() : "no answer");
      return false;
    }
    const int64_t id = json::parse(r->body)["build"];
    std::vector<std::unique_ptr<Follower>> fs;
    std::vector<std::thread> threads;
    for (int i = 0; i < followers; ++i) {
      fs.push_back(std::make_unique<Follower>());
      threads.emplace_back([&, f = fs.back().get()] {
        httplib::Client c("127.0.0.1", server.port());
        c.set_default_headers({{"Authorization", test::Bearer()}});
        c.set_read_timeout(600, 0);
        bool first = true;
        c.Get("/v1/builds/" + std::to_string(id) + "/log?follow=1", [&](const char*, size_t n) {
          if (first) {
            f->first = SteadyClock::now();
            first = false;
          }
          f->bytes += static_cast<int64_t>(n);
          f->last = SteadyClock::now();
          return true;
        });
        f->ended = true;
      });
    }
    for (auto& t : threads) t.join();
    auto b = api.Get("/v1/builds/" + std::to_string(id));
    if (!b) return false;
    json build = json::parse(b->body);
    double step_s = 0;
    for (const auto& s : build["steps"]) {
      if (s.value("name", "") == "chatty") step_s = (s["finished_ms"].get<int64_t>() - s["started_ms"].get<int64_t>()) / 1000.0;
    }
    const double stored = static_cast<double>(mb) / std::max(step_s, 1e-3);
    std::printf("%d follower(s): build %s; step printed %d MB in %.2f s: stored %.1f MB/s%s\n", followers,
                build.value("status", "").c_str(), mb, step_s, stored,
                followers == 1 ? (stored >= 100 ? "  PASS (target >= 100 MB/s)" : "  MISS (target >= 100 MB/s)") : "");
    if (followers > 1) {
      double worst = 1e9;
      for (const auto& f : fs) {
        const double secs = std::chrono::duration<double>(f->last - f->first).count();
        worst = std::min(worst, static_cast<double>(f->bytes) / 1e6 / std::max(secs, 1e-3));
      }
      std::printf("  slowest of %d followers received %.1f MB/s  %s (target >= 20 MB/s each)\n", followers, worst,
                  worst >= 20 ? "PASS" : "MISS");
    }
    return build.value("status", "") == "succeeded";
  };
  if (!run(1, "two")) return 1;
  if (!run(10, "three")) return 1;
  const int64_t peak = test::ProcStatusKb(pid, "VmHWM");
  std::printf("server RSS: %.1f MB before, peak %.1f MB: growth %.1f MB  %s (target < 50 MB)\n", rss_before / 1024.0,
              peak / 1024.0, (peak - rss_before) / 1024.0, (peak - rss_before) < 50 * 1024 ? "PASS" : "MISS");
  return 0;
}
