// bench_queue_cycles: the durable queue alone (issue 6). One cycle = enqueue
// + claim + complete, each its own transaction on a SQLite file (WAL,
// synchronous=NORMAL, the store's defaults), on the disk /tmp is on.
//
//   build/bin/bench_queue_cycles [cycles=20000]
//
// Target: >= 5,000 cycles/s on 2 cores.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

using namespace sp;

int main(int argc, char** argv) {
  const int cycles = argc > 1 ? std::atoi(argv[1]) : 20000;
  test::TempDir dir("sp-bench-queue");
  auto store = SqliteStore::Open(dir / "state.db");
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 2;
  }
  SqliteStore& q = **store;
  std::printf("store: %s\n", q.Pragmas().c_str());
  JobSpec spec;
  spec.kind = "rollout";
  spec.payload = std::string(2000, 'p');  // About a frozen plan's size.
  spec.labels = {{"network", "dc1"}};
  const std::map<std::string, std::string> agent = {{"network", "dc1"}, {"zone", "a"}};
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < cycles; ++i) {
    spec.idempotency_key = "job-" + std::to_string(i);
    auto job = q.Enqueue(spec, i);
    auto c = q.Claim("agent-1", agent, i, 30'000);
    if (!job || !c || !*c) {
      std::fprintf(stderr, "cycle %d failed\n", i);
      return 1;
    }
    if (!q.Complete((*c)->id, (*c)->epoch, "agent-1", "ok", i)) {
      std::fprintf(stderr, "complete %d failed\n", i);
      return 1;
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = cycles / s;
  std::printf("queue: %d enqueue+claim+complete cycles in %.2f s = %.0f cycles/s  %s (target >= 5000)\n", cycles, s,
              rate, rate >= 5000 ? "PASS" : "MISS");
  return 0;
}
