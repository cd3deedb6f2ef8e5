#include "core/clock.h"

#include <time.h>

#include <thread>

namespace sp {

int64_t RealClock::MonotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}
int64_t RealClock::WallMs() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
}
void RealClock::Sleep(Millis d) { std::this_thread::sleep_for(d); }
RealClock& RealClock::Instance() {
  static RealClock clock;
  return clock;
}

}  // namespace sp
