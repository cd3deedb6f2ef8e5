// bench_agent_protocol: the agent protocol of a real `sallyport server` on
// loopback (issue 6), with 8 agents (HTTP clients with their own tokens).
//
//   build/bin/bench_agent_protocol [jobs=5000] [other-sallyport-binary]
//   (with another build's binary: its server measured first, the same way)
//
// 1. Throughput: `jobs` jobs queued, then 8 agents drain them, each loop a
//    claim + a complete (two requests, two transactions). Target >= 1,000 jobs/s.
// 2. Claim latency of a newly enqueued job: the 8 agents wait in long-poll
//    claims; 500 jobs are enqueued one every 10 ms; latency = the claim's
//    answer minus the moment the enqueue was sent. Target p99 < 20 ms.
// Both over plain HTTP, then over TLS (the server's certificate of a test
// CA), in the same run: TLS within 20 % of plain (issue 14).
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_util.h"

using namespace sp;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Figures {
  double rate = 0, p50 = 0, p99 = 0;
  bool ok = false;
};

// One run against a fresh server on `dir`'s store, over TLS or plain HTTP.
Figures RunOnce(const test::TempDir& dir, const std::vector<std::string>& tokens, int jobs, bool tls,
                const std::string& binary = "") {
  constexpr int kAgents = 8;
  Figures fig;
  test::ServerProcess server(dir, dir / "state.db", std::string(tls ? "server-tls" : "server-plain") + (binary.empty() ? "" : "-other"), {"--poll-every", "0"},
                             tls ? test::ServerProcess::Transport::kTls : test::ServerProcess::Transport::kPlain,
                             binary);
  if (!server.ready()) {
    std::fprintf(stderr, "server did not start:\n%s\n", server.Log().c_str());
    return fig;
  }
  const char* mode = tls ? "TLS  " : "plain";
  auto client = [&](const std::string& token) {
    auto c = std::make_unique<httplib::Client>(server.Client());
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    c->set_read_timeout(30, 0);
    c->set_default_headers({{"Authorization", token.empty() ? test::Bearer() : "Bearer " + token}});
    return c;
  };
  const std::string job_body = json{{"kind", "rollout"}, {"payload", std::string(2000, 'p')},
                                    {"labels", {{"network", "dc1"}}}}.dump();
  // 1. Throughput.
  {
    auto c = client("");
    for (int i = 0; i < jobs; ++i) {
      auto r = c->Post("/v1/jobs", job_body, "application/json");
      if (!r || r->status != 201) {
        std::fprintf(stderr, "enqueue failed: %s\n", r ? (std::to_string(r->status) + " " + r->body).c_str() : httplib::to_string(r.error()).c_str());
        return fig;
      }
    }
  }
  std::atomic<int> done{0}, errors{0};
  auto t0 = SteadyClock::now();
  std::vector<std::thread> agents;
  for (int a = 0; a < kAgents; ++a) {
    agents.emplace_back([&, a] {
      auto c = client(tokens[a]);
      while (true) {
        auto r = c->Post("/v1/agent/claim?wait_ms=0", "", "application/json");
        if (!r || (r->status != 200 && r->status != 204)) {
          ++errors;
          return;
        }
        if (r->status == 204) return;
        auto j = json::parse(r->body);
        auto d = c->Post("/v1/agent/jobs/" + std::to_string(j["id"].get<int64_t>()) + "/complete",
                         json{{"epoch", j["epoch"]}, {"result", "ok"}}.dump(), "application/json");
        if (!d || d->status != 200) ++errors;
        ++done;
      }
    });
  }
  for (auto& t : agents) t.join();
  const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const double rate = done / secs;
  std::printf("%s throughput: %d jobs claimed+completed by %d agents in %.2f s = %.0f jobs/s, %d errors  %s (target >= 1000)\n",
              mode, done.load(), kAgents, secs, rate, errors.load(), rate >= 1000 && errors == 0 ? "PASS" : "MISS");
  fig.rate = rate;

  // 2. Latency of a newly enqueued job to a waiting agent.
  constexpr int kLatencyJobs = 500;
  std::mutex mu;
  std::map<int64_t, SteadyClock::time_point> sent;   // job id -> enqueue sent
  std::map<int64_t, SteadyClock::time_point> got;    // job id -> claim answered
  std::atomic<bool> stop{false};
  std::vector<std::thread> waiters;
  for (int a = 0; a < kAgents; ++a) {
    waiters.emplace_back([&, a] {
      auto c = client(tokens[a]);
      while (!stop) {
        auto r = c->Post("/v1/agent/claim?wait_ms=500", "", "application/json");
        const auto at = SteadyClock::now();
        if (!r || r->status != 200) continue;
        auto j = json::parse(r->body);
        {
          std::lock_guard lk(mu);
          got[j["id"].get<int64_t>()] = at;
        }
        c->Post("/v1/agent/jobs/" + std::to_string(j["id"].get<int64_t>()) + "/complete",
                json{{"epoch", j["epoch"]}}.dump(), "application/json");
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Agents are waiting in their claims.
  {
    auto c = client("");
    for (int i = 0; i < kLatencyJobs; ++i) {
      const auto at = SteadyClock::now();
      auto r = c->Post("/v1/jobs", job_body, "application/json");
      if (r && r->status == 201) {
        std::lock_guard lk(mu);
        sent[json::parse(r->body)["id"].get<int64_t>()] = at;
      }
      std::this_thread::sleep_until(at + std::chrono::milliseconds(10));
    }
  }
  test::WaitFor([&] { std::lock_guard lk(mu); return got.size() >= sent.size(); }, std::chrono::seconds(10));
  stop = true;
  for (auto& t : waiters) t.join();
  std::vector<double> lat;
  for (const auto& [id, t] : sent) {
    auto it = got.find(id);
    if (it != got.end()) lat.push_back(std::chrono::duration<double, std::milli>(it->second - t).count());
  }
  std::sort(lat.begin(), lat.end());
  if (lat.empty()) return fig;
  auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))]; };
  std::printf("%s claim latency of a new job (%zu of %d claimed): p50 %.2f ms, p99 %.2f ms, max %.2f ms  %s (target p99 < 20 ms)\n",
              mode, lat.size(), kLatencyJobs, pct(0.5), pct(0.99), lat.back(),
              pct(0.99) < 20 && lat.size() == kLatencyJobs ? "PASS" : "MISS");
  fig.p50 = pct(0.5);
  fig.p99 = pct(0.99);
  fig.ok = errors == 0 && lat.size() == kLatencyJobs;
  return fig;
}

}  // namespace

int main(int argc, char** argv) {
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 5000;
  constexpr int kAgents = 8;
  test::TempDir dir("sp-bench-agents");
  std::vector<std::string> tokens;
  for (int i = 0; i < kAgents; ++i) {
    auto r = test::RunSallyport({"token", "create", "--name", "agent-" + std::to_string(i), "--label",
                                 "network=dc1", "--store", dir / "state.db", "--local"});
    if (r.exit_code != 0) {
      std::fprintf(stderr, "token: %s\n", r.err.c_str());
      return 2;
    }
    tokens.push_back(r.out.substr(0, r.out.find('\n')));
  }
  if (argc > 2) {
    std::printf("-- %s --\n", argv[2]);
    RunOnce(dir, tokens, jobs, false, argv[2]);
    RunOnce(dir, tokens, jobs, true, argv[2]);
    std::printf("-- this tree --\n");
  }
  // The same store and load, plain HTTP then TLS, each with kept-alive connections.
  const Figures plain = RunOnce(dir, tokens, jobs, false);
  const Figures tls = RunOnce(dir, tokens, jobs, true);
  if (!plain.ok || !tls.ok) return 1;
  const double rate_ratio = tls.rate / plain.rate, p99_ratio = tls.p99 / plain.p99;
  // p99 of a few ms: a difference under 1 ms is noise, not TLS.
  const bool within = rate_ratio >= 0.8 && (p99_ratio <= 1.2 || tls.p99 - plain.p99 < 1.0);
  std::printf("TLS / plain: throughput %.0f%%, claim p99 %.2f ms vs %.2f ms (%.0f%%)  %s (target within 20%%)\n",
              100 * rate_ratio, tls.p99, plain.p99, 100 * p99_ratio, within ? "PASS" : "MISS");
  return 0;
}
