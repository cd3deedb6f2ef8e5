// bench_ssh_command: what Sallyport's SshTransport costs through the lab's
// bastion. Prints, for N commands of `true` on one host:
//   - cold: first command on a host (bastion master + host master + command),
//   - warm: one command on the reused connection (median, p95) -- target < 10 ms,
//     with the native mux client and with an `ssh -S` client process per command,
//   - parallel: the same over 3 hosts at once.
// Needs a lab: tests/lab/lab up --dir /tmp/sp-bench-lab --prefix spbn --net 10.213.12 --hosts 3
//   SP_LAB_ENV=/tmp/sp-bench-lab/lab.env build/bin/bench_ssh_command [iterations]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "support/lab.h"
#include "transport/ssh/ssh_transport.h"

using namespace sp;
using SteadyClock = std::chrono::steady_clock;

static double ElapsedMs(SteadyClock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  auto lab = test::Lab::Load();
  if (!lab) {
    std::fprintf(stderr, "%s\n", lab.error().message.c_str());
    return 2;
  }
  CommandSpec t;
  t.argv = {"true"};
  std::vector<double> cold;
  for (int k = 0; k < 5; ++k) {
    SshTransport ssh(lab->Ssh());
    auto s = SteadyClock::now();
    auto r = ssh.Run(lab->Host(0), t);
    if (!r || !r->ok()) return 1;
    cold.push_back(ElapsedMs(SteadyClock::now() - s));
  }
  std::sort(cold.begin(), cold.end());
  std::printf("ssh cold first command (bastion + host connect): median %.1f ms over %zu\n", cold[cold.size() / 2],
              cold.size());
  // Warm: the same connection, each client kind in turn, a bare command and
  // one with a deadline (the remote `timeout` wrapper every rollout step has).
  CommandSpec timed = t;
  timed.timeout = Millis(30'000);
  for (bool native : {false, true}) {
    SshOptions o = lab->Ssh();
    o.native_mux = native;
    SshTransport client(o);
    (void)client.Run(lab->Host(0), t);
    for (const CommandSpec* spec : {&t, &timed}) {
      std::vector<double> warm;
      for (int i = 0; i < n; ++i) {
        auto s = SteadyClock::now();
        auto r = client.Run(lab->Host(0), *spec);
        if (!r || !r->ok()) return 1;
        warm.push_back(ElapsedMs(SteadyClock::now() - s));
      }
      std::sort(warm.begin(), warm.end());
      const double median = warm[warm.size() / 2], p95 = warm[warm.size() * 95 / 100];
      std::printf("ssh warm command on reused connection through bastion, %s, %s: median %.2f ms, p95 %.2f ms over %d%s\n",
                  native ? "native mux client (default)" : "ssh -S client process",
                  spec->timeout ? "`timeout 30 true`" : "`true`", median, p95, n,
                  native ? (median < 10.0 ? "  PASS (target < 10 ms)" : "  MISS (target < 10 ms)") : "");
    }
  }
  SshTransport ssh(lab->Ssh());
  // Three hosts at once, each with its own connection, one shared bastion.
  for (size_t h = 0; h < 3 && h < lab->hosts.size(); ++h) (void)ssh.Run(lab->Host(h), t);
  std::vector<std::vector<double>> per(3);
  std::vector<std::thread> th;
  for (size_t h = 0; h < 3 && h < lab->hosts.size(); ++h) {
    th.emplace_back([&, h] {
      for (int i = 0; i < n / 2; ++i) {
        auto s = SteadyClock::now();
        (void)ssh.Run(lab->Host(h), t);
        per[h].push_back(ElapsedMs(SteadyClock::now() - s));
      }
    });
  }
  for (auto& x : th) x.join();
  std::vector<double> all;
  for (auto& v : per) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  if (!all.empty()) {
    std::printf("ssh warm, 3 hosts in parallel: median %.2f ms, p95 %.2f ms over %zu\n", all[all.size() / 2],
                all[all.size() * 95 / 100], all.size());
  }
  std::printf("connections: %d host masters, %d bastion master(s)\n", ssh.stats().host_connects,
              ssh.stats().bastion_connects);
  return 0;
}
