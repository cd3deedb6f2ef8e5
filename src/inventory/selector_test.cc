#include "inventory/selector.h"

#include <gtest/gtest.h>

namespace sp {
namespace {

TEST(SelectorTest, EveryTermMustHold) {
  auto s = ParseSelector("role=api,az=b");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->Matches({{"role", "api"}, {"az", "b"}, {"x", "y"}}));
  EXPECT_FALSE(s->Matches({{"role", "api"}, {"az", "a"}}));
  EXPECT_FALSE(s->Matches({{"role", "api"}}));
  EXPECT_EQ(s->ToString(), "role=api,az=b");
}

TEST(SelectorTest, PresenceAndNegation) {
  auto s = ParseSelector("web, role!=batch");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Matches({{"web", "true"}}));
  EXPECT_TRUE(s->Matches({{"web", ""}, {"role", "api"}}));
  EXPECT_FALSE(s->Matches({{"web", "true"}, {"role", "batch"}}));
  EXPECT_FALSE(s->Matches({{"role", "api"}}));
}

TEST(SelectorTest, EmptyMatchesAll) {
  auto s = ParseSelector("  ");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Matches({}));
}

TEST(SelectorTest, BadTermsAreNamed) {
  for (const char* bad : {"role=", "=api", "role=a b", "a,,b", "role=$(x)"}) {
    auto s = ParseSelector(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().message.find("selector '"), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace sp
