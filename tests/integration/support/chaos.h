// The chaos run (issue 15), shared by ChaosTest (≤ 60 s) and bench_chaos
// (up to 5 minutes): a real `sallyport server`, two `sallyport agent run`
// processes of one network, three process-runtime hosts behind a real
// HAProxy and wrk load through it. Rollouts are queued one after another
// (each once the previous job ended) while an injector, one fault at a
// time at random moments, kill -9s and restarts an agent or the server,
// or SIGSTOPs an agent past its lease and then lets it go on. A monitor
// samples the backend every 25 ms. At the end the faults stop, every job
// is waited for, the hosts are read, and one last rollout must bring every
// host to one version.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "support/load_generator.h"

namespace sp::test {

struct ChaosOptions {
  std::chrono::seconds duration{40};  // Faults are injected this long.
  unsigned seed = 0;                  // 0: from the clock (printed, to replay).
  std::string dir;                    // Work directory; must outlive the run.
  std::function<void(const std::string&)> say;  // Progress lines; may be empty.
};

struct ChaosReport {
  std::string error;                  // The set-up failed: nothing else holds.
  unsigned seed = 0;
  std::vector<std::string> injected;  // One line per fault, in order.
  std::map<std::string, int> faults;  // Fault -> times.
  int rollouts_queued = 0;
  std::map<std::string, int> jobs;    // "<kind> <state>" -> count, at the end.
  std::vector<int64_t> retaken;       // Jobs claimed more than once (their agent killed, paused or cut off).
  std::vector<std::string> dead;      // "job N: <its last error>" for each dead job.
  int jobs_unfinished = 0;            // Queued or leased once everything settled: lost.
  int max_out_of_rotation = 0;        // Backend servers not UP at one sample (batch is 1).
  int samples = 0;
  std::vector<std::string> hosts_settled;  // "app1 c7 UP" after the last fault, before the last rollout.
  bool one_instance_each = false;     // Then: every host served one version, UP.
  std::string final_version;
  bool final_succeeded = false;       // The last rollout's job succeeded ...
  bool one_version = false;           // ... and every host serves its version, UP.
  LoadResult load;
  bool load_ok = false;
  std::string Summary() const;
};

ChaosReport RunChaos(const ChaosOptions& options);

}  // namespace sp::test
