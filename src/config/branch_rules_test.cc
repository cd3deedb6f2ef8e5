#include "config/branch_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sp {
namespace {

using ::testing::HasSubstr;

TEST(BranchRulesTest, DefaultsDeployIntegrationAndPersonalBranches) {
  const auto rules = DefaultBranchRules();
  auto integ = MatchBranch(rules, "integration");
  ASSERT_TRUE(integ && *integ);
  EXPECT_EQ((*integ)->deployment, "integration");
  auto ben = MatchBranch(rules, "remote-run/ben/feature-x");
  ASSERT_TRUE(ben && *ben) << (ben ? "" : ben.error().message);
  EXPECT_EQ((*ben)->deployment, "personal-ben");
  EXPECT_EQ((*ben)->user, "ben");
  auto main = MatchBranch(rules, "main");
  ASSERT_TRUE(main);
  EXPECT_FALSE(*main) << "a branch no rule matches is not built";
  auto deep = MatchBranch(rules, "remote-run/ben/a/b");
  ASSERT_TRUE(deep);
  EXPECT_FALSE(*deep) << "'*' is one segment";
}

TEST(BranchRulesTest, OutsideBranchNamesAreRejectedWithAReason) {
  const auto rules = DefaultBranchRules();
  for (const std::string bad : {"remote-run/$(reboot)/x", "remote-run/../x", "remote-run/Ben/x", "remote-run/-rf/x",
                                "remote-run/ben;rm/x"}) {
    auto r = MatchBranch(rules, bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(r.error().message, HasSubstr("not a valid user name")) << bad;
  }
  for (const std::string bad : {"a b", "x..y", "-x", "/x", "x/", "x.lock", "a//b", "a/.b", "evil\n", "$(id)"}) {
    auto r = MatchBranch(rules, bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error().message, HasSubstr("invalid branch name")) << bad;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "outside text is printed safely";
  }
}

TEST(BranchRulesTest, PatternsAndStepConditions) {
  EXPECT_TRUE(BranchMatches("release/**", "release/1.2/hotfix"));
  EXPECT_FALSE(BranchMatches("release/**", "release"));
  EXPECT_TRUE(BranchMatches("feature/*", "feature/x"));
  EXPECT_FALSE(BranchMatches("feature/*", "feature/x/y"));
  EXPECT_TRUE(CheckBranchPattern("remote-run/{user}/*"));
  EXPECT_FALSE(CheckBranchPattern("**/x"));
  EXPECT_FALSE(CheckBranchPattern("a/{user}/{user}"));
  EXPECT_FALSE(CheckBranchPattern("a b"));
  EXPECT_TRUE(StepRunsOn({}, "anything"));
  EXPECT_TRUE(StepRunsOn({"integration", "remote-run/**"}, "remote-run/ben/x"));
  EXPECT_FALSE(StepRunsOn({"integration"}, "remote-run/ben/x"));
  EXPECT_EQ(SanitizedTag("remote-run/ben/feature-x"), "remote-run-ben-feature-x");
  EXPECT_EQ(SanitizedTag(".hidden/x"), "hidden-x");
}

}  // namespace
}  // namespace sp
