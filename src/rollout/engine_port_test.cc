// A rollout's success is proven on the instance it started: a stray process
// holding a host's port is named in preflight (nothing touched), and a
// health check answered while another process holds the port fails the host,
// which is restored.
#include "unit/engine_harness.h"

namespace sp::test {
namespace {

TEST_F(RolloutEngineTest, AStrayOnAHostsPortFailsPreflightNamingItAndTouchesNothing) {
  runtime_.strays["app2"] = "pid 4242 (python3)";
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("preflight: host app2: port 8082 on app2 is held by pid 4242 (python3), "
                                           "which no instance of web/integration started"));
  EXPECT_THAT(world_.Log(), IsEmpty()) << "nothing touched";
  ExpectConverged("v1");
}

TEST_F(RolloutEngineTest, AHealthCheckAnsweredWhileAStrayHoldsThePortFailsTheHostAndRestoresIt) {
  world_.on_op = [&](const std::string& op) {
    if (op == "start app2 v2") runtime_.strays["app2"] = "pid 4242 (sp-sample-app)";
  };
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("host app2 failed at health: port 8082 on app2 is held by pid 4242 (sp-sample-app)"));
  EXPECT_THAT(runtime_.Running("app1"), ElementsAre("v2"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v1")) << "restored";
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1")) << "untouched";
  for (const std::string h : {"app1", "app2", "app3"}) EXPECT_TRUE(lb_->State(h).InRotation()) << h;
}

// The check before a host's start runs beside its drain and session wait (off
// most of the time out of rotation); a stray there by then fails the host
// before its old version is stopped.
TEST_F(RolloutEngineTest, AStrayThatAppearsBeforeAHostStartsFailsItBeforeItsOldVersionStops) {
  world_.on_op = [&](const std::string& op) {
    if (op == "start app2 v2") runtime_.strays["app3"] = "pid 99 (nc)";
  };
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("host app3 failed at stop: port 8083 on app3 is held by pid 99 (nc)"));
  for (const auto& op : world_.Log()) {
    EXPECT_NE(op, "stop app3 v1") << "stopped despite the stray";
    EXPECT_NE(op, "start app3 v2") << "started despite the stray";
  }
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1"));
  EXPECT_TRUE(lb_->State("app3").InRotation()) << "restored";
}

TEST_F(RolloutEngineTest, AnAppRestartedByItsSupervisorDuringTheHealthWindowFailsTheHost) {
  runtime_.crashes_after_start["app2"] = 2;
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("host app2 failed at health: the app exited and was restarted by its supervisor 2 "
                                  "time(s) during its health window"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v1")) << "restored";
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1")) << "untouched";
}

// A runtime that tells each instance's restarts with its listeners (the
// process runtime) spares the health step its List: one command less per
// host, and a crash in the health window still fails the host.
TEST_F(RolloutEngineTest, RestartsToldWithTheListenersSpareTheHealthStepItsList) {
  const int before = runtime_.list_calls;
  auto plain = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(plain && plain->status == RolloutStatus::kSucceeded);
  const int with_list = runtime_.list_calls - before;
  runtime_.listeners_tell_restarts = true;
  const int told_before = runtime_.list_calls;
  auto told = Engine()->Run(Plan("v3"));
  ASSERT_TRUE(told && told->status == RolloutStatus::kSucceeded);
  EXPECT_EQ(runtime_.list_calls - told_before, with_list - 3) << "one List fewer on each of the 3 hosts";
  ExpectConverged("v3");

  runtime_.crashes_after_start["app2"] = 1;
  auto r = Engine()->Run(Plan("v4"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("host app2 failed at health: the app exited and was restarted by its supervisor 1 "
                                  "time(s) during its health window"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v3")) << "restored";
}

}  // namespace
}  // namespace sp::test
