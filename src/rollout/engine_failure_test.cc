// Failures: a failed step restores its host, prefetch, max_failures, preflight.
#include "rollout/engine.h"

#include <algorithm>

#include "rollout/rollback.h"
#include "unit/engine_harness.h"

namespace sp::test {
namespace {

struct StepFailure {
  std::string op;       // Injected failing op on app2.
  std::string step;     // Step named in the error.
};
void PrintTo(const StepFailure& f, std::ostream* os) { *os << f.op << " fails: " << f.step; }

class RolloutStepFailureTest : public RolloutEngineTest, public ::testing::WithParamInterface<StepFailure> {};

TEST_P(RolloutStepFailureTest, FailedHostIsRestoredAndLaterHostsUntouched) {
  if (GetParam().step == "pull") {
    // Persistent: a pull that fails once is only dropped by the prefetch and
    // retried by the host's own pull step.
    world_.fail[GetParam().op] = Error{ErrorCode::kUnavailable, "registry down"};
  } else {
    world_.fail_once.insert(GetParam().op);
  }
  auto plan = Plan("v2");
  if (GetParam().step == "health") {
    // Only app2 answers badly (a version bad everywhere would fail app1 first).
    world_.fail["health app2 v2"] = Error{ErrorCode::kUnavailable, "HTTP 500: unhealthy"};
  }
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("host app2 failed at " + GetParam().step));
  EXPECT_EQ(r->hosts[0].state, HostState::kDone);
  EXPECT_EQ(r->hosts[1].state, HostState::kFailed);
  EXPECT_EQ(r->hosts[2].state, HostState::kSkipped);
  EXPECT_THAT(runtime_.Running("app1"), ElementsAre("v2"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v1"));  // Restored.
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1"));
  for (const char* h : {"app1", "app2", "app3"}) EXPECT_TRUE(lb_->State(h).InRotation()) << h;
  // app3 may have been given the artifact ahead of its turn (prefetch), but
  // nothing that serves traffic was touched.
  auto log = world_.Log();
  EXPECT_EQ(std::count_if(log.begin(), log.end(),
                          [](const std::string& s) {
                            return s.find("app3") != std::string::npos && s.rfind("pull app3 ", 0) != 0;
                          }),
            0)
      << "app3 must not be touched";
}

// A full disk (or a busy database) from the moment app2's stop is recorded:
// the stop happens, nothing more can be written, and app2 still ends on its
// old version, in rotation; the error says the journal failed.
TEST_F(RolloutEngineTest, AJournalThatFailsEveryWriteAfterStopBeginStillRestoresTheHost) {
  journal_->fail_after = [](const StepRecord& s) {
    return s.host == "app2" && s.step == Step::kStop && s.phase == StepPhase::kBegin;
  };
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_FALSE(r) << "the rollout's end could not be recorded either";
  const std::string& error = r.error().message;
  EXPECT_THAT(error, HasSubstr("rollout failed: host app2 failed at stop: database or disk is full"));
  EXPECT_THAT(error, HasSubstr("the journal could not record the restore"));
  EXPECT_THAT(error, HasSubstr("the journal could not record its end"));
  EXPECT_THAT(error, ::testing::Not(HasSubstr("RESTORE FAILED")));
  EXPECT_THAT(runtime_.Running("app1"), ElementsAre("v2"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v1")) << "restored";
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1"));
  for (const char* h : {"app1", "app2", "app3"}) EXPECT_TRUE(lb_->State(h).InRotation()) << h;
  auto log = world_.Log();
  EXPECT_NE(std::find(log.begin(), log.end(), "stop app2 v1"), log.end()) << "the stop did happen";
}

TEST_F(RolloutEngineTest, NextHostsArtifactIsPulledAheadAndItsPullStepOnlyChecks) {
  // app1 is not put back until app2's artifact has arrived (bounded: without
  // a prefetch it never does, and the order check below fails).
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> seen;
  world_.on_op = [&](const std::string& op) {
    std::unique_lock lk(mu);
    seen.insert(op);
    cv.notify_all();
    if (op == "ready app1") cv.wait_for(lk, std::chrono::seconds(5), [&] { return seen.count("pull app2 v2") > 0; });
    if (op == "ready app2") cv.wait_for(lk, std::chrono::seconds(5), [&] { return seen.count("pull app3 v2") > 0; });
  };
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  auto log = world_.Log();
  // Each host pulled exactly once, and app2's pull happened before app1 was back in rotation.
  for (const char* h : {"app1", "app2", "app3"}) {
    EXPECT_EQ(std::count(log.begin(), log.end(), std::string("pull ") + h + " v2"), 1) << h;
  }
  auto at = [&](const std::string& op) { return std::find(log.begin(), log.end(), op) - log.begin(); };
  EXPECT_LT(at("pull app2 v2"), at("ready app1"));
  EXPECT_LT(at("pull app3 v2"), at("ready app2"));
  ExpectConverged("v2");
  // The pull steps of app2 and app3 found the artifact there.
  int prefetched = 0;
  for (const auto& e : events_) {
    prefetched += e.type == EventType::kStep && e.step == Step::kPull && e.phase == StepPhase::kEnd && e.detail.contains("prefetched");
  }
  EXPECT_EQ(prefetched, 2);
}

TEST_F(RolloutEngineTest, WithoutPrefetchEachHostPullsInItsOwnTurn) {
  prefetch_batches_ = 0;
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r);
  auto log = world_.Log();
  auto at = [&](const std::string& op) { return std::find(log.begin(), log.end(), op) - log.begin(); };
  EXPECT_GT(at("pull app2 v2"), at("ready app1"));
  EXPECT_GT(at("pull app3 v2"), at("ready app2"));
}

INSTANTIATE_TEST_SUITE_P(EveryStep, RolloutStepFailureTest,
                         ::testing::Values(StepFailure{"pull app2 v2", "pull"}, StepFailure{"drain app2", "drain"},
                                           StepFailure{"maint app2", "maint"}, StepFailure{"stop app2 v1", "stop"},
                                           StepFailure{"start app2 v2", "start"},
                                           StepFailure{"health app2 v2", "health"},
                                           StepFailure{"ready app2", "ready"}),
                         [](const auto& info) { return info.param.step; });

TEST_F(RolloutEngineTest, HealthFailureMessageNamesHostStepResponseAndLogs) {
  health_->bad_versions.insert("v2");
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r);
  EXPECT_THAT(r->error, HasSubstr("host app1 failed at health"));
  EXPECT_THAT(r->error, HasSubstr("HTTP 500"));
  EXPECT_THAT(r->error, HasSubstr("log line of v2 on app1"));
  ExpectConverged("v1");
}

TEST_F(RolloutEngineTest, MaxFailuresLetsTheRolloutContinue) {
  world_.fail["start app2 v2"] = Error{ErrorCode::kUnavailable, "boom"};
  auto plan = Plan("v2");
  plan.strategy.max_failures = *ParseCountOrPercent("1");
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  EXPECT_THAT(r->error, HasSubstr("1 host(s) failed within max_failures 1"));
  EXPECT_EQ(r->hosts[1].state, HostState::kFailed);
  EXPECT_EQ(r->hosts[2].state, HostState::kDone);
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v2"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v1"));
}

TEST_F(RolloutEngineTest, PreflightFailureTouchesNothing) {
  auto plan = Plan("v2");
  plan.load_balancers[0].servers["app3"] = "missing";
  auto r = Engine()->Run(plan);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("no server 'missing' for host app3"));
  EXPECT_TRUE(world_.Log().empty());

  transport_.unreachable.insert("app2");
  r = Engine()->Run(Plan("v2"));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("host app2"));
  EXPECT_TRUE(world_.Log().empty());
  EXPECT_FALSE(*store_->Get("demo/web/integration")) << "lock released after preflight failure";
}

// A host whose engine cannot pull the artifact (it does not trust the
// registry's CA, say) is named by the preflight; nothing moves. A host that
// has the artifact already is not asked.
TEST_F(RolloutEngineTest, PreflightAsksEachHostsEngineThatMustPull) {
  world_.fail["can-pull app2 img:v2"] =
      Error{ErrorCode::kUnavailable, "its engine resolving img:v2: x509: certificate signed by unknown authority"};
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("preflight: host app2: its engine resolving img:v2: x509"));
  EXPECT_TRUE(world_.Log().empty());

  runtime_.pulled.insert("app2 img:v2");  // Already there: nothing to ask its engine.
  auto again = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(again) << again.error().message;
}

TEST_F(RolloutEngineTest, PreflightChecksHostsAtOnceAndReportsTheFirstInPlanOrder) {
  // Every host's check waits until all three have begun: only concurrent
  // checks get past it (bounded wait, then the count below fails).
  std::mutex mu;
  std::condition_variable cv;
  int begun = 0, met = 0;
  world_.on_op = [&](const std::string& op) {
    if (op.rfind("check ", 0) != 0) return;
    std::unique_lock lk(mu);
    ++begun;
    cv.notify_all();
    if (cv.wait_for(lk, std::chrono::seconds(5), [&] { return begun >= 3; })) ++met;
  };
  world_.fail["check app3"] = Error{ErrorCode::kUnavailable, "app3 down"};
  world_.fail["check app2"] = Error{ErrorCode::kUnavailable, "app2 down"};
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_FALSE(r);
  EXPECT_EQ(met, 3) << "the hosts were not checked at once";
  EXPECT_THAT(r.error().message, HasSubstr("host app2"));
  EXPECT_THAT(r.error().message, HasSubstr("app2 down"));
  EXPECT_TRUE(world_.Log().empty());
}

}  // namespace
}  // namespace sp::test
