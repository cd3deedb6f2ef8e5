// The step supervisor's runner without processes: the command line it
// starts and how the supervisor's exit status reads back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runner/runner.h"
#include "unit/seams.h"

namespace sp {
namespace {

using ::testing::ElementsAre;

class StepRunnerTest : public ::testing::Test {
 protected:
  StepCommand Step() {
    StepCommand c;
    c.argv = {"make", "test"};
    c.timeout = Millis(5000);
    c.grace = Millis(500);
    return c;
  }
  ExitStatus& Answer(int code) {
    ExitStatus st;
    st.exit_code = code;
    return processes_.answers["sallyport __supervise"] = st;
  }
  test::FakeProcessRunner processes_;
  SupervisedStepRunner runner_{processes_, "/usr/bin/sallyport"};
};

TEST_F(StepRunnerTest, TheStepRunsUnderTheSupervisorWithItsDeadlineAndGrace) {
  Answer(0);
  auto st = runner_.Run(Step());
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok());
  ASSERT_EQ(processes_.calls.size(), 1u);
  EXPECT_THAT(processes_.calls[0], ElementsAre("/usr/bin/sallyport", "__supervise", "--timeout-ms", "5000", "--grace-ms",
                                               "500", "--", "make", "test"));
}

TEST_F(StepRunnerTest, AStepUserIsPassedToTheSupervisorWhichDropsToIt) {
  Answer(0);
  StepCommand c = Step();
  c.run_as = StepUser{65534, 65533, "nobody"};
  ASSERT_TRUE(runner_.Run(c));
  EXPECT_THAT(processes_.calls[0], ElementsAre("/usr/bin/sallyport", "__supervise", "--timeout-ms", "5000", "--grace-ms",
                                               "500", "--uid", "65534", "--gid", "65533", "--", "make", "test"));
}

TEST_F(StepRunnerTest, TheSupervisorsExitStatusTellsTimeoutCancelSignalAndExit) {
  Answer(124);
  EXPECT_TRUE(runner_.Run(Step())->timed_out);
  Answer(125);
  EXPECT_TRUE(runner_.Run(Step())->canceled);
  Answer(137);
  EXPECT_EQ(runner_.Run(Step())->signal, 9);
  Answer(3);
  auto st = runner_.Run(Step());
  EXPECT_EQ(st->exit_code, 3);
  EXPECT_FALSE(st->timed_out || st->canceled);
}

TEST_F(StepRunnerTest, AStepThatCannotStartIsAnError) {
  processes_.cannot_start["sallyport __supervise"] = Error{ErrorCode::kUnavailable, "cannot run sallyport"};
  EXPECT_FALSE(runner_.Run(Step()));
  StepCommand empty;
  EXPECT_EQ(runner_.Run(empty).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace sp
