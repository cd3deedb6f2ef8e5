// bench_chaos: the chaos run of issue 15 for longer than the test suite's
// 40 s (tests/integration/support/chaos.h says what it does):
//
//   build/bin/bench_chaos [seconds (default 240, at most 300)] [seed] [keep-dir]
//
// With keep-dir, every process's log is kept there (a new directory) for
// reading afterwards.
//
// Prints every fault injected, every rollout's outcome, and what converged;
// PASS/MISS per property. Bounded: faults stop after the duration, every
// wait after it is bounded, wrk stops by itself 5 minutes after that.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "support/chaos.h"
#include "support/test_util.h"

int main(int argc, char** argv) {
  using namespace sp::test;
  const long seconds = argc > 1 ? std::min(300L, std::max(10L, std::atol(argv[1]))) : 240;
  TempDir dir("sp-bench-chaos");
  ChaosOptions o;
  o.duration = std::chrono::seconds(seconds);
  o.seed = argc > 2 ? static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10)) : 0;
  o.dir = dir.path();
  if (argc > 3) {
    o.dir = argv[3];
    std::filesystem::create_directories(o.dir);
  }
  o.say = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  const ChaosReport r = RunChaos(o);
  if (!r.error.empty()) {
    std::fprintf(stderr, "bench_chaos: set-up failed: %s\n", r.error.c_str());
    return 2;
  }
  std::printf("%s", r.Summary().c_str());
  auto line = [](const char* what, bool ok) {
    std::printf("%-58s %s\n", what, ok ? "PASS" : "MISS");
    return ok;
  };
  bool ok = line("no job lost (every job ended)", r.jobs_unfinished == 0);
  ok &= line("never two servers out of rotation at once (batch 1)", r.max_out_of_rotation == 1);
  ok &= line("every host one version, in rotation, after the faults", r.one_instance_each);
  ok &= line("the last rollout brings every host to one version", r.final_succeeded && r.one_version);
  ok &= line("0 failed requests", r.load_ok && r.load.failures() == 0);
  return ok ? 0 : 1;
}
