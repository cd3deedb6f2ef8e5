// What an agent knows of its job's lease: until when (on its monotonic
// clock) it is confirmed. Set from the claim and each heartbeat (sent at t,
// lease L: confirmed until t + L - L/4, so the margin covers the request's
// flight and a slow clock); zero once the server says it is lost. The fence
// of every action on hosts and LBs: a paused or partitioned agent stops
// acting by itself, before the server gives the job to another agent.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/clock.h"
#include "core/error.h"

namespace sp {

class JobLease {
 public:
  JobLease(int64_t lease_ms, Clock& clock) : lease_ms_(lease_ms), clock_(clock) {}
  // A claim or heartbeat sent at `sent_ms` (clock.MonotonicMs()) was accepted.
  void ConfirmedAt(int64_t sent_ms) { until_ = sent_ms + lease_ms_ - lease_ms_ / 4; }
  void Lost() { until_ = 0; }
  // Ok while the lease is confirmed; kConflict after it lapsed or was lost.
  Status Fence() const {
    if (clock_.MonotonicMs() < until_.load()) return Ok();
    return Err(ErrorCode::kConflict, "job lease not confirmed (lost, or not renewed in time): not acting");
  }

 private:
  const int64_t lease_ms_;
  Clock& clock_;
  std::atomic<int64_t> until_{0};
};

}  // namespace sp
