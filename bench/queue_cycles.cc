// bench_queue_cycles: the durable queue alone (issue 6). One cycle = enqueue
// + claim + complete, each its own transaction on a SQLite file (WAL,
// synchronous=NORMAL, the store's defaults), on the disk /tmp is on.
//
//   build/bin/bench_queue_cycles [cycles=20000]
//
// Target: >= 5,000 cycles/s on 2 cores. Then claims of a job behind 10,000
// jobs no agent here can take: within 1 s (issue 15).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

using namespace sp;

namespace {

// Issue 15: 10,000 high-priority jobs no agent here can take, then cycles of
// one it can (the claim once looked at the best 256 jobs only: starved).
int Starved(SqliteStore& q, const std::map<std::string, std::string>& agent) {
  constexpr int kBlockers = 10'000, kCycles = 500;
  JobSpec other;
  other.kind = "rollout";
  other.payload = std::string(2000, 'p');
  other.labels = {{"network", "elsewhere"}};
  other.priority = 100;
  for (int i = 0; i < kBlockers; ++i) {
    if (!q.Enqueue(other, 1'000'000)) return 1;
  }
  JobSpec mine = other;
  mine.labels = {{"network", "dc1"}};
  mine.priority = 0;
  std::vector<double> ms;
  for (int i = 0; i < kCycles; ++i) {
    if (!q.Enqueue(mine, 1'000'000 + i)) return 1;
    const auto t0 = std::chrono::steady_clock::now();
    auto c = q.Claim("agent-1", agent, 1'000'000 + i, 30'000);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!c || !*c || (*c)->spec.labels != mine.labels) {
      std::fprintf(stderr, "claim %d behind %d unclaimable jobs: starved\n", i, kBlockers);
      return 1;
    }
    if (!q.Complete((*c)->id, (*c)->epoch, "agent-1", "ok", 1'000'000 + i)) return 1;
  }
  std::sort(ms.begin(), ms.end());
  const double p99 = ms[ms.size() * 99 / 100];
  std::printf("claim behind %d high-priority jobs no agent here can take, %d claims: p50 %.2f ms, p99 %.2f ms, "
              "max %.2f ms  %s (target: claimed within 1 s)\n",
              kBlockers, kCycles, ms[ms.size() / 2], p99, ms.back(), ms.back() < 1000 ? "PASS" : "MISS");
  return 0;
}

}  // namespace

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
  return Starved(q, agent);
}
