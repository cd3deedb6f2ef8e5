// The text lines an operator reads while a rollout runs.
#include "rollout/event_format.h"

#include <gtest/gtest.h>

namespace sp {
namespace {

TEST(EventFormatTest, AStepLineShowsTheStepsOwnDurationNotTheHostsTimeSoFar) {
  Event e{EventType::kStep, "r-1", "app1", Step::kHealth, StepPhase::kEnd, 0, 9'500, {{"step_ms", 1'200}}};
  const std::string line = FormatEvent(e);
  EXPECT_NE(line.find("health"), std::string::npos) << line;
  EXPECT_NE(line.find("1.2s"), std::string::npos) << line;
  EXPECT_EQ(line.find("9.5s"), std::string::npos) << line;
  e.phase = StepPhase::kBegin;
  EXPECT_EQ(FormatEvent(e), "") << "a step is printed once, when it ends";
}

TEST(EventFormatTest, AHookLineNamesTheHookAndTheRolloutForItsHost) {
  Event e{EventType::kStep, "r-1", "", Step::kPreRollout, StepPhase::kEnd, 0, 30, {{"step_ms", 30}, {"hook", "suspend-asg"}}};
  const std::string line = FormatEvent(e);
  EXPECT_NE(line.find("(rollout)"), std::string::npos) << line;
  EXPECT_NE(line.find("pre_rollout"), std::string::npos) << line;
  EXPECT_NE(line.find("hook suspend-asg"), std::string::npos) << line;
}

}  // namespace
}  // namespace sp
