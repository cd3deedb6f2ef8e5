// Every typed state's table names each value exactly once, and its names
// parse back to the same value.
#include <gtest/gtest.h>

#include <set>

#include "build/records.h"
#include "queue/job.h"
#include "rollout/journal.h"
#include "rollout/states.h"

namespace sp {
namespace {

template <typename E, size_t N>
void ExpectRoundTrip(const std::array<EnumName<E>, N>& table, size_t values) {
  EXPECT_EQ(N, values) << "a value is missing from its table";
  std::set<std::string_view> names;
  std::set<int> seen;
  for (const auto& e : table) {
    EXPECT_TRUE(names.insert(e.name).second) << "duplicate name " << e.name;
    EXPECT_TRUE(seen.insert(static_cast<int>(e.value)).second) << "duplicate value of " << e.name;
    EXPECT_EQ(NameIn(table, e.value), e.name);
    EXPECT_EQ(ParseIn(table, e.name), e.value);
  }
  EXPECT_FALSE(ParseIn(table, std::string_view("no-such-name")).has_value());
}

TEST(EnumNamesTest, EveryTableRoundTrips) {
  ExpectRoundTrip(kPlanKindNames, 3);
  ExpectRoundTrip(kHostStateNames, 6);
  ExpectRoundTrip(kStepNames, static_cast<size_t>(Step::kUnsilence) + 1);
  ExpectRoundTrip(kStepPhaseNames, 4);
  ExpectRoundTrip(kEventTypeNames, static_cast<size_t>(EventType::kTeardownFinished) + 1);
  ExpectRoundTrip(kRolloutStatusNames, 5);
  ExpectRoundTrip(kJobStateNames, 5);
  ExpectRoundTrip(kBuildStatusNames, static_cast<size_t>(BuildStatus::kSkipped) + 1);
}

}  // namespace
}  // namespace sp
