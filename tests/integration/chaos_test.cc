// The chaos run (issue 15) at 40 s: rollouts through two agents under wrk
// load while agents and the server are killed -9 and restarted and an agent
// is paused past its lease (tests/integration/support/chaos.h). At the end
// no job is lost, the backend never had two servers out at once (batch 1:
// no job ran twice at once), every host serves one version in rotation, a
// last rollout brings them all to it, and no request failed. bench_chaos
// runs the same for up to 5 minutes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "support/chaos.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

TEST(ChaosTest, AgentsAndTheServerKilledAndPausedAtRandomLeaveEveryHostInRotationOnOneVersion) {
  TempDir dir("sp-chaos");
  ChaosOptions o;
  o.duration = std::chrono::seconds(40);
  o.dir = dir.path();
  o.say = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  const ChaosReport r = RunChaos(o);
  std::printf("%s", r.Summary().c_str());
  ASSERT_EQ(r.error, "");
  EXPECT_GE(r.injected.size(), 5u) << "too few faults to call it chaos";
  EXPECT_GE(r.rollouts_queued, 3);
  EXPECT_FALSE(r.retaken.empty()) << "no fault hit a job in flight";
  EXPECT_EQ(r.jobs_unfinished, 0) << "a job never ended";
  EXPECT_EQ(r.max_out_of_rotation, 1) << "batch 1, yet more than one server was out at once (or none ever was)";
  EXPECT_GT(r.samples, 100);
  EXPECT_TRUE(r.one_instance_each) << "a host did not serve one version in rotation once the faults stopped";
  EXPECT_TRUE(r.final_succeeded);
  EXPECT_TRUE(r.one_version);
  ASSERT_TRUE(r.load_ok);
  EXPECT_GT(r.load.requests, 1000);
  EXPECT_EQ(r.load.failures(), 0) << r.load.raw;
}

}  // namespace
}  // namespace sp::test
