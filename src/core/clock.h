// Time as a seam: the rollout engine reads time and waits only through Clock,
// so unit tests drive it with FakeClock (instant, deterministic).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace sp {

using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds; only differences are meaningful. The real clock
  // counts time the machine spent suspended (CLOCK_BOOTTIME): an agent's
  // lease, judged on it, has lapsed after a suspend longer than the lease,
  // as the server sees it, instead of seeming to hold.
  virtual int64_t MonotonicMs() = 0;
  // Wall-clock milliseconds since the Unix epoch (for the journal and leases).
  virtual int64_t WallMs() = 0;
  // Blocks the calling thread for `d` (FakeClock: advances time instead).
  virtual void Sleep(Millis d) = 0;
};

class RealClock final : public Clock {
 public:
  int64_t MonotonicMs() override;
  int64_t WallMs() override;
  void Sleep(Millis d) override;
  static RealClock& Instance();
};

// Deterministic clock: Sleep advances time at once. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_wall_ms = 1'700'000'000'000) : wall_(start_wall_ms) {}
  int64_t MonotonicMs() override { std::lock_guard l(mu_); return mono_; }
  int64_t WallMs() override { std::lock_guard l(mu_); return wall_; }
  void Sleep(Millis d) override { Advance(d); }
  void Advance(Millis d) {
    std::lock_guard l(mu_);
    mono_ += d.count();
    wall_ += d.count();
  }

 private:
  std::mutex mu_;
  int64_t mono_ = 0;
  int64_t wall_;
};

}  // namespace sp
