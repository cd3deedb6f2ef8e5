// bench_port_owner: what proving a host's success on the instance that was
// started costs (issue 20): the process runtime's Listeners (one command
// reading /proc/net/tcp{,6} and finding the socket's holders) against a
// running sp-sample-app, beside List (the one-command operation every
// rollout already makes per host), through the local transport.
//
//   bench_port_owner [CALLS]     (default 50 of each, alternating)
//
// Target: the check adds <= 5 ms per host: the health step runs Listeners
// where it ran List before the check existed (their medians' difference);
// the check before a host's start runs beside its drain and session wait. The app instance it
// starts is stopped through the runtime's pid file; its directory removed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "runtime/process/process_runtime.h"
#include "support/test_util.h"
#include "transport/local/local_transport.h"

namespace sp::bench {
namespace {

double Ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double At(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

int Main(int calls) {
  test::TempDir dir("sp-bench-port");
  LocalTransport transport;
  ProcessOptions po;
  po.base_dir = dir / "apps";
  ProcessRuntime runtime(transport, po);
  RuntimeTarget t{HostRef{"app1", "127.0.0.1", "", 22}, "web", "bench"};
  AppSpec app;
  app.release = "web";
  app.deployment = "bench";
  app.rollout_id = "r-bench";
  app.version = "v1";
  app.artifact = test::BuildBinary("sp-sample-app");
  app.port = test::FreePort();
  app.env = {{"APP_VERSION", "v1"}};
  if (!runtime.Pull(t, app, std::nullopt) || !runtime.Start(t, app)) {
    std::fprintf(stderr, "cannot start the app\n");
    return 2;
  }
  if (!test::WaitFor([&] { return test::PortOpen(app.port); }, std::chrono::milliseconds(5000))) return 2;
  std::vector<double> listeners, list;
  bool owned = true;
  for (int i = 0; i < calls; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto l = runtime.Listeners(t, app.port);
    listeners.push_back(Ms(std::chrono::steady_clock::now() - t0));
    owned = owned && l && *l && (*l)->size() == 1 && (*l)->front().instance == "r-bench" &&
            (*l)->front().instance_restarts == 0;
    t0 = std::chrono::steady_clock::now();
    (void)runtime.List(t);
    list.push_back(Ms(std::chrono::steady_clock::now() - t0));
  }
  Instance inst;
  inst.id = "r-bench";
  (void)runtime.Stop(t, inst, Millis(2000));
  std::printf("Listeners (the ownership check): median %.1f ms, p90 %.1f ms, max %.1f ms over %d calls\n",
              At(listeners, 0.5), At(listeners, 0.9), At(listeners, 1.0), calls);
  std::printf("List (for scale; the health step's restart check no longer runs it): median %.1f ms, p90 %.1f ms\n",
              At(list, 0.5), At(list, 0.9));
  const double added = At(listeners, 0.5) - At(list, 0.5);
  std::printf("the health step's command per host: before the check, List = %.1f ms; now Listeners (the restarts "
              "come with it) = %.1f ms: the check adds %.1f ms (medians); the check before the start runs beside "
              "the drain and the session wait (bench_rollout_overhead: the start step)\n",
              At(list, 0.5), At(listeners, 0.5), added);
  std::printf("attributed to the instance (restarts 0) every time: %s\n", owned ? "yes" : "NO");
  const bool pass = owned && added <= 5.0;
  std::printf("target: the ownership check adds <= 5 ms per host (median): %s\n", pass ? "PASS" : "MISS");
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace sp::bench

int main(int argc, char** argv) { return sp::bench::Main(argc > 1 ? std::atoi(argv[1]) : 50); }
