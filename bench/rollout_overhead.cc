// bench_rollout_overhead: how long a host is out of rotation beyond the work
// it has to wait for, measured end to end with the real `sallyport` CLI, a
// real HAProxy and three process-runtime instances of sp-sample-app on
// 127.0.0.1.
//
//   bench_rollout_overhead [ROLLOUTS]     (default 5: v2..v6 after deploying v1)
//
// Per host, from the CLI's --json step events (wall-clock ts_ms):
//   out_of_rotation = confirm_up end - drain begin
//   overhead        = out_of_rotation - (wait_sessions + start + health durations)
// Target: overhead <= 50 ms.
//
// Drain latency: before each rollout one slow request per server is put in
// flight through HAProxy's round robin, each lasting past the moment its host
// drains. For each host:
//   drain_lag = wait_sessions end ts - client-side completion of the last
//               request that host served
// Target: drain_lag <= 20 ms.
//
// Everything is bounded: each CLI run (120 s), each request (20 s socket
// timeouts), HAProxy start and UP waits (10 s). Only processes this program
// starts are ended, by PID (HAProxy) or through the process runtime's pid
// files (the app instances).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cli_runner.h"
#include "support/haproxy_fixture.h"
#include "support/rollout_scenario.h"
#include "support/test_util.h"

namespace sp::bench {
namespace {

using nlohmann::json;
using test::HaproxyFixture;
using test::TempDir;

constexpr int kHosts = 3;
constexpr double kTargetOverheadMs = 50;
constexpr double kTargetDrainLagMs = 20;
// Slow request on host i (rollout order) lasts kSlowBaseMs + i * kSlowStepMs,
// so it is still in flight when that host's drain begins.
constexpr int kSlowBaseMs = 1500;
constexpr int kSlowStepMs = 2500;
constexpr int kCliTimeoutS = 120;
constexpr int kSocketTimeoutS = 20;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------- HTTP client

struct Reply {
  bool ok = false;
  int port = 0;          // From the body's "port=N".
  int64_t done_ms = 0;   // Wall clock when the last byte of the body arrived.
  std::string error;
};

// GET `path` from 127.0.0.1:`port` on a fresh connection. If `sent` is given
// it is called once the request is written.
Reply HttpGet(int port, const std::string& path, const std::function<void()>& sent = {}) {
  Reply r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    r.error = "socket failed";
    if (sent) sent();
    return r;
  }
  timeval tv{kSocketTimeoutS, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  bool wrote = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
               ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  if (sent) sent();
  if (!wrote) {
    r.error = "connect/send failed";
    ::close(fd);
    return r;
  }
  std::string buf;
  char chunk[4096];
  size_t body_at = std::string::npos;
  long length = -1;
  while (true) {
    if (body_at != std::string::npos && length >= 0 && buf.size() >= body_at + static_cast<size_t>(length)) break;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;  // EOF, error or timeout.
    buf.append(chunk, static_cast<size_t>(n));
    if (body_at == std::string::npos) {
      auto e = buf.find("\r\n\r\n");
      if (e == std::string::npos) continue;
      body_at = e + 4;
      std::string head = buf.substr(0, e);
      for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto cl = head.find("content-length:");
      if (cl != std::string::npos) length = std::atol(head.c_str() + cl + 15);
    }
  }
  r.done_ms = WallMs();
  ::close(fd);
  if (buf.rfind("HTTP/1.1 200", 0) != 0 || body_at == std::string::npos) {
    r.error = "bad reply: " + buf.substr(0, 80);
    return r;
  }
  auto p = buf.find("port=", body_at);
  if (p != std::string::npos) r.port = std::atoi(buf.c_str() + p + 5);
  r.ok = r.port > 0;
  if (!r.ok) r.error = "no port= in body";
  return r;
}

// ---------------------------------------------------------------- statistics

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// ---------------------------------------------------------------- journal

struct StepTimes {
  int64_t begin = -1, end = -1;
  json detail;
  int64_t dur() const { return begin >= 0 && end >= 0 ? end - begin : 0; }
};

struct HostTimes {
  std::map<std::string, StepTimes> steps;  // step name -> times
  int64_t engine_out_of_rotation_ms = -1;  // host_done's own figure.
};

// host -> step times, from `sallyport rollout --json` output.
std::map<std::string, HostTimes> ParseEvents(const std::string& out, std::string* rollout_id) {
  std::map<std::string, HostTimes> hosts;
  std::istringstream ss(out);
  std::string line;
  while (std::getline(ss, line)) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    if (rollout_id && rollout_id->empty()) *rollout_id = j.value("rollout", "");
    const std::string ev = j.value("event", "");
    const std::string host = j.value("host", "");
    if (ev == "host_done" && j.contains("detail")) {
      hosts[host].engine_out_of_rotation_ms = j["detail"].value("out_of_rotation_ms", int64_t{-1});
    }
    if (ev != "step") continue;
    auto& st = hosts[host].steps[j.value("step", "")];
    const std::string phase = j.value("phase", "");
    if (phase == "begin") st.begin = j.value("ts_ms", int64_t{-1});
    if (phase == "end" || phase == "fail") {
      st.end = j.value("ts_ms", int64_t{-1});
      if (j.contains("detail")) st.detail = j["detail"];
    }
  }
  return hosts;
}

// ---------------------------------------------------------------- the bench

class Bench {
 public:
  Bench() : dir_("sp-bench-overhead") {}
  ~Bench() { StopApps(); }

  Status Setup() {
    haproxy_ = std::make_unique<HaproxyFixture>(dir_.path(), test::ScenarioHaproxy(kHosts, &ports_));
    SP_TRY(haproxy_->Start());
    test::WriteFile(dir_ / "sallyport.yml",
                    test::ProcessServiceYaml("{path: /health, interval: 20ms, timeout: 1s, retries: 250}"));
    test::WriteFile(dir_ / "inventory.yml",
                    test::InventoryYaml({haproxy_->socket_path(), ports_, dir_ / "apps", ""}));
    std::filesystem::create_directories(dir_ / "apps");
    // Two artifacts (distinct files), alternated between versions.
    for (const char* name : {"a", "b"}) {
      std::string d = dir_ / (std::string("artifacts/") + name);
      std::filesystem::create_directories(d);
      std::filesystem::copy_file(test::BuildBinary("sp-sample-app"), d + "/sp-sample-app");
      std::filesystem::permissions(d + "/sp-sample-app", std::filesystem::perms::owner_all);
    }
    return Ok();
  }

  Result<test::CliResult> Deploy(int version, bool json_out) {
    std::vector<std::string> args = {"rollout", "run", "-c", dir_ / "sallyport.yml", "-i", dir_ / "inventory.yml",
                                     "-d", "integration", "--store", dir_ / "state.db",
                                     "--artifact", dir_ / (std::string("artifacts/") + (version % 2 ? "a" : "b") +
                                                           "/sp-sample-app"),
                                     "--version", "v" + std::to_string(version)};
    if (json_out) args.insert(args.end(), {"--output", "json"});
    auto r = test::RunSallyport(args, {}, kCliTimeoutS);
    if (r.exit_code != 0) {
      return Err(ErrorCode::kInternal, "sallyport rollout v" + std::to_string(version) + " exited " +
                                           std::to_string(r.exit_code) + ":\n" + r.out + r.err);
    }
    return r;
  }

  // The order in which HAProxy's round robin will pick servers next (ports),
  // learned from three fast requests; empty on failure.
  std::vector<int> LearnOrder() {
    std::vector<int> order;
    for (int i = 0; i < kHosts; ++i) {
      Reply r = HttpGet(haproxy_->frontend_port(), "/");
      if (!r.ok) return {};
      order.push_back(r.port);
    }
    std::vector<int> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    if (std::unique(sorted.begin(), sorted.end()) != sorted.end()) return {};
    return order;
  }

  int HostIndexOfPort(int port) const {
    for (int i = 0; i < kHosts; ++i) {
      if (ports_[i] == port) return i;
    }
    return -1;
  }

  HaproxyFixture& haproxy() { return *haproxy_; }
  static std::string Host(int i) { return "app" + std::to_string(i); }

  // Stops every app instance through the process runtime (its pid files).
  void StopApps() {
    test::StopScenarioApps(dir_ / "apps", kHosts);
    if (haproxy_) haproxy_->Stop();
  }

 private:
  TempDir dir_;
  std::vector<int> ports_;
  std::unique_ptr<HaproxyFixture> haproxy_;
};

struct SlowRequest {
  int expected_port = 0;
  int ms = 0;
  Reply reply;
  std::thread thread;
};

int Main(int argc, char** argv) {
  int rollouts = argc > 1 ? std::atoi(argv[1]) : 5;
  if (rollouts <= 0) rollouts = 5;
  Bench b;
  if (auto st = b.Setup(); !st) {
    std::fprintf(stderr, "setup: %s\n", st.error().message.c_str());
    return 2;
  }
  std::printf("bench_rollout_overhead: sallyport CLI + HAProxy (check inter 500ms) + %d process-runtime apps\n",
              kHosts);
  std::printf("config: batch 1, health interval 20ms, stop_timeout 5s; %d rollouts after v1\n\n", rollouts);
  if (auto r = b.Deploy(1, false); !r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 2;
  }

  std::vector<double> overheads, lags;
  std::map<std::string, std::vector<double>> other_steps;  // Where the overhead goes.
  int invalid_lag_samples = 0;
  for (int v = 2; v <= rollouts + 1; ++v) {
    if (auto st = b.haproxy().WaitAllUp(std::chrono::milliseconds(10'000)); !st) {
      std::fprintf(stderr, "before v%d: %s\n", v, st.error().message.c_str());
      return 2;
    }
    // One slow request per server, each outlasting the moment its host drains.
    std::vector<int> order = b.LearnOrder();
    if (order.empty()) {
      std::fprintf(stderr, "before v%d: could not learn the round-robin order\n", v);
      return 2;
    }
    std::vector<SlowRequest> slow(kHosts);
    for (int k = 0; k < kHosts; ++k) {
      auto& s = slow[k];
      s.expected_port = order[k];
      s.ms = kSlowBaseMs + b.HostIndexOfPort(order[k]) * kSlowStepMs;
      std::promise<void> sent;
      auto sent_f = sent.get_future();
      s.thread = std::thread([&s, &sent, port = b.haproxy().frontend_port()] {
        s.reply = HttpGet(port, "/slow?ms=" + std::to_string(s.ms), [&] { sent.set_value(); });
      });
      sent_f.wait();
      // Let HAProxy pick this request's server before the next one arrives.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }

    auto r = b.Deploy(v, true);
    for (auto& s : slow) s.thread.join();
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 2;
    }
    std::string id;
    auto hosts = ParseEvents(r->out, &id);
    std::printf("rollout v%d (%s)\n", v, id.c_str());
    std::printf("  %-5s %8s %8s %8s %8s %8s %9s | %8s %8s %8s %8s %8s %8s\n", "host", "out_rot", "sessions", "start",
                "health", "overhead", "engine_oor", "drain", "maint", "stop", "ready", "confirm", "gaps");
    for (int i = 1; i <= kHosts; ++i) {
      const std::string h = Bench::Host(i);
      auto& s = hosts[h].steps;
      if (s["drain"].begin < 0 || s["confirm_up"].end < 0) {
        std::printf("  %-5s missing drain/confirm_up events\n", h.c_str());
        continue;
      }
      const int64_t oor = s["confirm_up"].end - s["drain"].begin;
      const int64_t waited = s["wait_sessions"].dur() + s["start"].dur() + s["health"].dur();
      const int64_t overhead = oor - waited;
      int64_t stepped = 0;
      for (const char* n : {"drain", "wait_sessions", "maint", "stop", "start", "health", "ready", "confirm_up"}) {
        stepped += s[n].dur();
      }
      const int64_t gaps = oor - stepped;  // Between steps: journal "begin" writes and event output.
      overheads.push_back(static_cast<double>(overhead));
      other_steps["overhead without stop"].push_back(static_cast<double>(overhead - s["stop"].dur()));
      for (const char* n : {"drain", "maint", "stop", "ready", "confirm_up"}) {
        other_steps[n].push_back(static_cast<double>(s[n].dur()));
      }
      other_steps["gaps"].push_back(static_cast<double>(gaps));
      std::printf("  %-5s %8lld %8lld %8lld %8lld %8lld %9lld | %8lld %8lld %8lld %8lld %8lld %8lld\n", h.c_str(),
                  static_cast<long long>(oor), static_cast<long long>(s["wait_sessions"].dur()),
                  static_cast<long long>(s["start"].dur()), static_cast<long long>(s["health"].dur()),
                  static_cast<long long>(overhead), static_cast<long long>(hosts[h].engine_out_of_rotation_ms),
                  static_cast<long long>(s["drain"].dur()), static_cast<long long>(s["maint"].dur()),
                  static_cast<long long>(s["stop"].dur()), static_cast<long long>(s["ready"].dur()),
                  static_cast<long long>(s["confirm_up"].dur()), static_cast<long long>(gaps));
    }
    // Drain latency: wait_sessions end vs. the client seeing its last reply from that host.
    for (int i = 1; i <= kHosts; ++i) {
      const std::string h = Bench::Host(i);
      const auto& ws = hosts[h].steps["wait_sessions"];
      int64_t last_done = -1;
      int served = 0;
      std::string errors;
      for (const auto& s : slow) {
        if (!s.reply.ok) {
          errors += " [" + s.reply.error + "]";
          continue;
        }
        if (b.HostIndexOfPort(s.reply.port) != i - 1) continue;
        ++served;
        last_done = std::max(last_done, s.reply.done_ms);
      }
      const int at_drain = ws.detail.is_object() ? ws.detail.value("sessions_at_drain", -1) : -1;
      if (served == 0 || ws.end < 0) {
        ++invalid_lag_samples;
        std::printf("  drain lag %-5s n/a (no slow request served by it%s)\n", h.c_str(), errors.c_str());
        continue;
      }
      const int64_t lag = ws.end - last_done;
      const bool valid = at_drain > 0 && last_done >= ws.begin;
      if (!valid) {
        ++invalid_lag_samples;
        std::printf("  drain lag %-5s n/a (sessions_at_drain=%d; request done %lld ms before wait began)\n",
                    h.c_str(), at_drain, static_cast<long long>(ws.begin - last_done));
        continue;
      }
      lags.push_back(static_cast<double>(lag));
      std::printf("  drain lag %-5s %4lld ms  (sessions_at_drain=%d, waited %lld ms)\n", h.c_str(),
                  static_cast<long long>(lag), at_drain, static_cast<long long>(ws.dur()));
    }
    std::printf("\n");
  }

  auto line = [](const char* what, const std::vector<double>& v) {
    std::printf("%-22s n=%-3zu median %6.0f  p90 %6.0f  max %6.0f ms\n", what, v.size(), Percentile(v, 0.5),
                Percentile(v, 0.9), v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
  };
  std::printf("== summary ==\n");
  line("overhead", overheads);
  for (const char* n : {"drain", "maint", "stop", "ready", "confirm_up", "gaps"}) {
    line((std::string("  of which ") + n).c_str(), other_steps[n]);
  }
  line("overhead without stop", other_steps["overhead without stop"]);
  line("drain lag", lags);
  if (invalid_lag_samples) std::printf("(drain lag: %d host samples not usable)\n", invalid_lag_samples);
  const double over_max = overheads.empty() ? 1e9 : *std::max_element(overheads.begin(), overheads.end());
  const double over_p90 = Percentile(overheads, 0.9);
  const double lag_max = lags.empty() ? 1e9 : *std::max_element(lags.begin(), lags.end());
  std::printf("target overhead <= %.0f ms (every host)      %s (max %.0f ms, p90 %.0f ms)\n", kTargetOverheadMs,
              over_max <= kTargetOverheadMs ? "PASS" : "MISS", over_max, over_p90);
  std::printf("target drain ends <= %.0f ms after last session closes  %s (max %.0f ms)\n", kTargetDrainLagMs,
              lag_max <= kTargetDrainLagMs ? "PASS" : "MISS", lag_max);
  return 0;
}

}  // namespace
}  // namespace sp::bench

int main(int argc, char** argv) { return sp::bench::Main(argc, argv); }
