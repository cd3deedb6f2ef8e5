// The real clock's monotonic time counts a suspend. A suspend is simulated
// with a time namespace (Linux 5.6): a child whose CLOCK_BOOTTIME runs 1,000 s
// ahead of its CLOCK_MONOTONIC, as after a 1,000 s suspend.
#include "core/clock.h"

#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace sp {
namespace {

int64_t Ms(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

TEST(RealClockTest, MonotonicTimeCountsTheTimeTheMachineWasSuspended) {
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The namespace applies to this process's children: the offsets are set
    // before any of them exists.
    int64_t ahead = -1;
    if (::unshare(CLONE_NEWTIME) == 0) {
      if (std::FILE* f = std::fopen("/proc/self/timens_offsets", "w")) {
        const bool set = std::fprintf(f, "boottime 1000 0\n") > 0;
        if (std::fclose(f) == 0 && set) {
          const pid_t grandchild = ::fork();
          if (grandchild == 0) {
            const int64_t got = RealClock::Instance().MonotonicMs() - Ms(CLOCK_MONOTONIC);
            (void)!::write(out[1], &got, sizeof got);
            ::_exit(0);
          }
          int st = 0;
          ::waitpid(grandchild, &st, 0);
          ::_exit(0);
        }
      }
    }
    (void)!::write(out[1], &ahead, sizeof ahead);
    ::_exit(0);
  }
  ::close(out[1]);
  int64_t ahead = -1;
  const bool got = ::read(out[0], &ahead, sizeof ahead) == sizeof ahead;
  ::close(out[0]);
  int st = 0;
  ::waitpid(child, &st, 0);
  ASSERT_TRUE(got);
  if (ahead == -1) GTEST_SKIP() << "no time namespace here (needs root and Linux 5.6)";
  // 1,000 s ahead of CLOCK_MONOTONIC (and of std::chrono::steady_clock), as CLOCK_BOOTTIME is.
  EXPECT_GE(ahead, 999'000);
  EXPECT_LE(ahead, 1'001'000);
}

}  // namespace
}  // namespace sp
