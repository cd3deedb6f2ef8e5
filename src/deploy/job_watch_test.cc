// Following a job to its end, on a FakeClock (no real waiting).
#include "deploy/job_watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "build/build_log.h"

namespace sp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

JobProgress P(JobState state, std::string owner = "", std::string result = "", std::string error = "") {
  return JobProgress{state, std::move(owner), std::move(result), std::move(error)};
}

// A job whose states come from a script, one per poll (the last repeats).
struct ScriptedJob {
  std::deque<JobProgress> states;
  std::string log;
  int cancels = 0;
  JobWatch Watch() {
    JobWatch w;
    w.what = "rollout job 7";
    w.poll = [this]() -> Result<JobProgress> {
      JobProgress p = states.front();
      if (states.size() > 1) states.pop_front();
      return p;
    };
    w.read_log = [this](int64_t offset) -> Result<std::string> { return log.substr(static_cast<size_t>(offset)); };
    w.cancel = [this] {
      ++cancels;
      return Status(Ok());
    };
    return w;
  }
};

class JobWatchTest : public ::testing::Test {
 protected:
  Status Wait(const JobWatch& w, Millis claim_timeout = Millis(600'000)) {
    return WaitForJob(w, [this](bool, const std::string& l) { lines_.push_back(l); }, cancel_, claim_timeout, clock_);
  }
  FakeClock clock_;
  std::atomic<bool> cancel_{false};
  std::vector<std::string> lines_;
};

TEST_F(JobWatchTest, ASucceededJobIsOkAndItsLogLinesArriveInOrder) {
  ScriptedJob job;
  job.states = {P(JobState::kQueued), P(JobState::kLeased, "dc1"), P(JobState::kSucceeded, "dc1", "succeeded")};
  job.log = FormatLogLine(1, "rollout", false, "app1 done") + FormatLogLine(2, "rollout", false, "app2 done");
  EXPECT_TRUE(Wait(job.Watch()));
  EXPECT_THAT(lines_, ElementsAre("app1 done", "app2 done", "rollout job 7 succeeded by dc1: succeeded"));
}

TEST_F(JobWatchTest, ADeadJobIsAnErrorWithItsReason) {
  ScriptedJob job;
  job.states = {P(JobState::kLeased, "dc1"), P(JobState::kDead, "dc1", "", "host app2 failed at health")};
  auto st = Wait(job.Watch());
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("rollout job 7 dead: host app2 failed at health"));
}

TEST_F(JobWatchTest, AJobNobodyClaimsIsCanceledAfterTheClaimTimeout) {
  ScriptedJob job;
  job.states = {P(JobState::kQueued)};
  auto st = Wait(job.Watch(), Millis(10'000));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kTimeout);
  EXPECT_THAT(st.error().message, HasSubstr("no agent took rollout job 7 within 10.0s"));
  EXPECT_EQ(job.cancels, 1);
  EXPECT_GE(clock_.MonotonicMs(), 10'000);
}

TEST_F(JobWatchTest, ACancelWhileQueuedCancelsTheJob) {
  ScriptedJob job;
  job.states = {P(JobState::kQueued)};
  cancel_ = true;
  auto st = Wait(job.Watch());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(job.cancels, 1);
}

TEST_F(JobWatchTest, ACancelWhileRunningLeavesARolloutToFinish) {
  ScriptedJob job;
  job.states = {P(JobState::kLeased, "dc1"), P(JobState::kLeased, "dc1"), P(JobState::kSucceeded, "dc1")};
  cancel_ = true;
  EXPECT_TRUE(Wait(job.Watch()));
  EXPECT_EQ(job.cancels, 0);
  EXPECT_THAT(lines_, ::testing::Contains(HasSubstr("is left to finish")));
}

TEST_F(JobWatchTest, AQueuedJobIsTakenOverOnceAfterTheDelay) {
  ScriptedJob job;
  job.states = {P(JobState::kQueued), P(JobState::kQueued), P(JobState::kQueued), P(JobState::kQueued),
                P(JobState::kQueued), P(JobState::kQueued), P(JobState::kQueued), P(JobState::kSucceeded, "me")};
  int takes = 0;
  JobWatch w = job.Watch();
  w.take_over = [&] { ++takes; };
  EXPECT_TRUE(Wait(w));
  EXPECT_EQ(takes, 1);
}

}  // namespace
}  // namespace sp
