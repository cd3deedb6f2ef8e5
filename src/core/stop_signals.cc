#include "core/stop_signals.h"

#include <pthread.h>

#include <cerrno>
#include <ctime>

namespace sp {

StopSignals::StopSignals(std::function<void(int count, int signo)> on_signal) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, &old_);
  waiter_ = std::thread([this, on_signal = std::move(on_signal)] {
    int count = 0;
    const timespec tick{0, 100'000'000};  // How soon the destructor is noticed.
    while (!done_) {
      const int sig = sigtimedwait(&set_, nullptr, &tick);
      if (sig > 0) on_signal(++count, sig);
    }
  });
}

StopSignals::~StopSignals() {
  done_ = true;
  waiter_.join();
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace sp
