#include "core/clock.h"

#include <thread>

namespace sp {

int64_t RealClock::MonotonicMs() {
  return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now().time_since_epoch()).count();
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
