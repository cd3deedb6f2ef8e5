// bench_notify_overhead: what notifications add to a rollout's wall time.
// The real `sallyport rollout run` (process runtime, real HAProxy, three
// sample-app hosts on 127.0.0.1) journals into the store of a running
// `sallyport server`; rollouts alternate between the server having two
// channels (a Slack-compatible one and a signed webhook, every event) to a
// receiver that answers after 2 s, and having none. Target: the median
// wall with notifications is < 20 ms above the one without.
//
//   bench_notify_overhead [ROLLOUTS]   (default 10: 5 with, 5 without)
//
// Bounded: each CLI run 120 s; HAProxy and the server are ended by PID, the
// apps through the process runtime's pid files.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/cli_runner.h"
#include "support/haproxy_fixture.h"
#include "support/hook_receiver.h"
#include "support/rollout_scenario.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::bench {
namespace {

using test::TempDir;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int Main(int argc, char** argv) {
  const int rollouts = argc > 1 ? std::max(2, std::atoi(argv[1])) : 10;
  TempDir dir("sp-bench-notify");
  const std::string store = dir / "state.db";
  std::vector<int> ports;
  test::HaproxyFixture haproxy(dir.path(), test::ScenarioHaproxy(3, &ports));
  if (auto st = haproxy.Start(); !st) {
    std::fprintf(stderr, "haproxy: %s\n", st.error().message.c_str());
    return 1;
  }
  test::WriteFile(dir / "sallyport.yml", test::ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 20}"));
  test::WriteFile(dir / "inventory.yml", test::InventoryYaml({haproxy.socket_path(), ports, dir / "apps", ""}));
  std::filesystem::create_directories(dir / "apps");
  test::HookReceiver receiver;
  receiver.delay_ms = 2000;
  test::WriteFile(dir / "chat-url", receiver.Url("/chat"), 0600);
  test::WriteFile(dir / "hook-url", receiver.Url("/hook"), 0600);
  test::WriteFile(dir / "hook-secret", "bench-key", 0600);
  test::ServerProcess server(dir, store, "server");
  if (!server.ready()) {
    std::fprintf(stderr, "server did not start:\n%s\n", server.Log().c_str());
    return 1;
  }
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--store", store});
    auto r = test::RunSallyport(args, {}, 120);
    if (r.exit_code != 0) std::fprintf(stderr, "sallyport %s: %s%s\n", args[0].c_str(), r.out.c_str(), r.err.c_str());
    return r.exit_code == 0;
  };
  std::vector<double> with, without;
  for (int i = 0; i <= rollouts; ++i) {
    const bool on = i % 2 == 1;
    if (on) {
      if (!cli({"notify", "add", "chat", "--kind", "slack", "--url-file", dir / "chat-url"}) ||
          !cli({"notify", "add", "team", "--kind", "webhook", "--url-file", dir / "hook-url", "--secret-file",
                dir / "hook-secret"})) {
        return 1;
      }
    } else if (i > 0) {
      if (!cli({"notify", "remove", "chat"}) || !cli({"notify", "remove", "team"})) return 1;
    }
    const std::string version = "n" + std::to_string(i);
    const std::string artifact_dir = dir / ("artifacts/" + version);
    std::filesystem::create_directories(artifact_dir);
    std::filesystem::copy_file(test::BuildBinary("sp-sample-app"), artifact_dir + "/sp-sample-app");
    const auto t0 = std::chrono::steady_clock::now();
    if (!cli({"rollout", "run", "-c", dir / "sallyport.yml", "-i", dir / "inventory.yml", "-d", "integration",
              "--artifact", artifact_dir + "/sp-sample-app", "--version", version})) {
      return 1;
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i == 0) continue;  // The first deploy starts every host from nothing.
    (on ? with : without).push_back(ms);
    std::printf("rollout %-3s notifications %-3s %.0f ms\n", version.c_str(), on ? "on" : "off", ms);
  }
  const double delta = Median(with) - Median(without);
  std::printf("median rollout wall: without %.0f ms, with %.0f ms (receiver answering after 2 s): +%.0f ms; "
              "target < 20 ms: %s\n",
              Median(without), Median(with), delta, delta < 20 ? "PASS" : "MISS");
  std::printf("receiver got %zu deliveries so far (they go on after the rollouts, on the server's thread)\n",
              receiver.Calls().size());
  test::StopScenarioApps(dir / "apps", 3);
  return 0;
}

}  // namespace
}  // namespace sp::bench

int main(int argc, char** argv) { return sp::bench::Main(argc, argv); }
