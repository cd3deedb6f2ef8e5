// Shared by the engine's files (engine*.cc); not part of its interface.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rollout/engine.h"

namespace sp {

// The plan's load balancers, connected once per rollout: lbs[i] is
// plan.load_balancers[i] of the plan it was connected for.
struct RolloutEngine::LbSet {
  std::vector<std::unique_ptr<LoadBalancer>> lbs;
};

// Journal + timing for one host's procedure.
struct RolloutEngine::HostRun {
  int64_t start_ms = 0;
  int64_t out_since_ms = -1;   // When the host left rotation (drain began).
  int64_t out_total_ms = 0;
  Step step = Step::kNone;     // Current/last step.
  std::optional<Instance> started;  // The new instance, once started.
};

// What the hosts of a rollout came to so far.
struct RolloutEngine::Tally {
  int batch = 1;
  int max_failures = 0;
  int failures = 0;
  std::string first_error;
  std::string abort_error;  // Set when a pre_rollout hook failed: no host touched.
};

// The rollout's hook records in the journal, for its current round.
struct RolloutEngine::HookLedger {
  int round = 1;
  bool pre_began = false;         // A pre_rollout hook began in `round`.
  bool post_began = false;        // The round's end began (a post_rollout hook, or the unsilence).
  bool closed = false;            // This engine closed `round`.
  bool skip_hooks = false;        // Nothing rolled and nothing to undo: no end hooks.
  std::set<std::string> ended{};  // "<point>/<hook>" ended in `round`.
  bool silence_began = false;     // The round's silence was (maybe) made.
  bool silence_made = false;      // ... and its call to make it was (maybe) sent.
  bool silence_ended = false;     // ... and expired.
  std::string silence_id{};       // As journaled when it was made.
};

// Extends the rollout's silence while the scope lock is held: every third
// of its duration, to `duration` ahead. Stops when destroyed, or on its own
// when the lock is gone (the silence then ends by itself within `duration`).
class RolloutEngine::SilenceKeeper {
 public:
  SilenceKeeper(RolloutEngine* e, const RolloutPlan& plan, Silence s);
  ~SilenceKeeper();
  std::string id();  // The silence's id now (an update may change it).

 private:
  void Loop();
  RolloutEngine* e_;
  const RolloutPlan& plan_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Silence s_;
  std::thread thread_;
};

// Pulls the artifact onto the hosts of the next batches in the background
// while the current batch rolls, so a host's pull step usually finds the
// artifact there already (one check instead of a transfer). Positions are
// indexes into the rollout's pending order. A host whose pull step comes
// before its prefetch started is left to that step; one whose prefetch is
// running is waited for, never pulled twice at once. Prefetch errors are
// dropped: the host's own pull step meets (and reports) them in order. An
// exception in a worker (a simulated crash in the unit tests) is rethrown on
// the engine's thread, at the next Claim or at Finish.
class RolloutEngine::Prefetcher {
 public:
  // The first `skip` positions (the first batch) pull in line: prefetching
  // hosts that are about to start anyway gains nothing.
  Prefetcher(RolloutEngine* e, const RolloutPlan& plan, std::vector<size_t> order, int workers, size_t skip);
  ~Prefetcher();
  // Waits for pulls in progress; rethrows a worker's exception.
  void Finish();
  // Hosts at positions below `limit` may now be prefetched.
  void Allow(size_t limit);
  // Called by the pull step of plan host `index`: returns once no prefetch of
  // it is running (and none will start); true if one put (or found) the
  // artifact there.
  bool Claim(size_t index);

 private:
  enum State { kIdle, kRunning, kPulled, kFailed, kClaimed };
  void Join();
  void RethrowOnce();
  void Work();

  RolloutEngine* e_;
  const RolloutPlan& plan_;
  const std::vector<size_t> order_;
  std::vector<State> state_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t limit_ = 0;
  size_t next_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

// Renews the lease every ttl/3 on a real-time thread, telling `scope` of
// each renewal; a renewal that fails for another reason than a lost lease is
// retried every second (the scope's fence stops the actions once the last
// confirmation is older than 3/4 of the TTL); a refused one marks it lost.
class RolloutEngine::LeaseKeeper {
 public:
  LeaseKeeper(LockStore* locks, Clock* clock, Lease lease, Millis ttl, ScopeLease* scope);
  ~LeaseKeeper();

 private:
  void Loop();
  LockStore* locks_;
  Clock* clock_;
  Lease lease_;
  Millis ttl_;
  ScopeLease* scope_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The scope's lock, held (and renewed in the background) for as long as this lives.
class RolloutEngine::Hold {
 public:
  Hold(RolloutEngine* e, Lease lease);
  ~Hold();

 private:
  RolloutEngine* e_;
  Lease lease_;
  std::unique_ptr<LeaseKeeper> keeper_;
};

namespace engine {

inline HostRef RefOf(const HostSpec& h) { return HostRef{h.name, h.address, h.ssh_user, h.ssh_port}; }
inline RuntimeTarget TargetOf(const RolloutPlan& p, const HostSpec& h) {
  return RuntimeTarget{RefOf(h), p.release, p.deployment};
}

// fn(i) for every i in [0, n), on up to `workers` threads (this one among
// them). An exception stops the handing out of indexes and is rethrown here
// once every thread has stopped (simulated crashes in the unit tests).
void ParallelFor(size_t n, size_t workers, const std::function<void(size_t)>& fn);

}  // namespace engine
}  // namespace sp
