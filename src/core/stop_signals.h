// SIGINT and SIGTERM as events instead of deaths: blocked in the calling
// thread (and so in every thread it starts afterwards) and waited for by a
// thread of their own, which calls `on_signal` for each arrival with how many
// have arrived so far. Children started through Subprocess reset their mask.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

namespace sp {

class StopSignals {
 public:
  explicit StopSignals(std::function<void(int count, int signo)> on_signal);
  // Stops waiting and restores the mask (a signal still pending is then
  // delivered with its default action).
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  sigset_t set_{}, old_{};
  std::atomic<bool> done_{false};
  std::thread waiter_;
};

}  // namespace sp
