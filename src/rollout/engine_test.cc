// The rolling procedure: order of steps, load balancers, batches, drains.
#include "rollout/engine.h"

#include <algorithm>

#include "rollout/plan_check.h"
#include "rollout/rollback.h"
#include "unit/engine_harness.h"

namespace sp::test {
namespace {

TEST_F(RolloutEngineTest, OneHostFollowsTheOrderedProcedure) {
  lb_->sessions_on_drain["app1"] = 3;
  auto r = Engine()->Run(Plan("v2", 1));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  EXPECT_THAT(world_.Log(), ElementsAre("pull app1 v2", "drain app1", "sessions app1=0", "maint app1", "stop app1 v1",
                                        "start app1 v2", "health app1 v2", "ready app1", "up app1"));
}

TEST_F(RolloutEngineTest, EnvReferencesAreReadWhenTheAppStartsAndNeverJournaled) {
  const std::string secret = "postgres://app:s3cret@db/app";
  std::vector<std::string> reads;
  env_secret_ = [&](const std::string& ref) -> Result<std::string> {
    reads.push_back(ref);
    if (ref == "credential:db") return secret;
    return Err(ErrorCode::kNotFound, "no such credential");
  };
  auto plan = Plan("v2", 2);
  plan.app.env_refs = {{"DB_URL", "credential:db"}};
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  for (const std::string host : {"app1", "app2"}) EXPECT_EQ(runtime_.started_env[host]["DB_URL"], secret) << host;
  EXPECT_EQ(reads.size(), 3u) << "once in preflight, then at each host's start";
  auto rec = journal_->GetRollout(plan.id);
  ASSERT_TRUE(rec);
  EXPECT_THAT(rec->plan_json, HasSubstr("credential:db"));
  EXPECT_EQ(rec->plan_json.find("s3cret"), std::string::npos) << "the journal holds the reference only";

  // A reference that cannot be read stops the rollout before any host is touched.
  world_.ClearLog();
  auto missing = Plan("v3", 2);
  missing.app.env_refs = {{"API_KEY", "credential:gone"}};
  auto failed = Engine()->Run(missing);
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().message, HasSubstr("preflight: env API_KEY: no such credential"));
  EXPECT_THAT(world_.Log(), IsEmpty()) << "nothing touched";
  EXPECT_THAT(runtime_.Running("app1"), ElementsAre("v2"));
}

TEST_F(RolloutEngineTest, EveryLoadBalancerOfTheReleaseIsDrainedAndConfirmed) {
  auto plan = Plan("v2", 1);
  LoadBalancerSpec second = plan.load_balancers[0];
  second.socket = "/fake2";
  plan.load_balancers.push_back(second);
  lb_->sessions_on_drain["app1"] = 2;
  lb2_->sessions_on_drain["app1"] = 5;  // The slower LB decides when maint may start.
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_THAT(world_.Log(), ElementsAre("pull app1 v2", "drain app1", "drain app1@lb2", "sessions app1=0",
                                        "sessions app1@lb2=0", "maint app1", "maint app1@lb2", "stop app1 v1",
                                        "start app1 v2", "health app1 v2", "ready app1", "ready app1@lb2",
                                        "up app1", "up app1@lb2"));
  EXPECT_TRUE(lb2_->State("app1").InRotation());
}

TEST_F(RolloutEngineTest, FailingSmokeCommandRestoresTheHost) {
  auto plan = Plan("v2", 1);
  plan.app.smoke = {"/usr/local/bin/smoke-test", "--quick"};
  world_.fail["run app1 /usr/local/bin/smoke-test"] = Error{ErrorCode::kUnavailable, "smoke failed"};
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("host app1 failed at smoke"));
  EXPECT_THAT(runtime_.Running("app1"), ElementsAre("v1"));
  EXPECT_TRUE(lb_->State("app1").InRotation());
  auto log = world_.Log();
  auto pos = [&](const std::string& op) { return std::find(log.begin(), log.end(), op) - log.begin(); };
  EXPECT_LT(pos("health app1 v2"), pos("run app1 /usr/local/bin/smoke-test"));
  EXPECT_EQ(std::count(log.begin(), log.end(), "ready app1"), 1) << "never in rotation with the failed version";
}

TEST_F(RolloutEngineTest, AMissingServerIsAddedOutOfRotationOnlyWhenTheLoadBalancerSaysSo) {
  ASSERT_TRUE(lb_->RemoveServer("app", "app1"));
  world_.ClearLog();
  auto strict = Engine()->Run(Plan("v2", 1));
  ASSERT_FALSE(strict);
  EXPECT_THAT(strict.error().message, HasSubstr("backend app has no server 'app1' for host app1"));
  EXPECT_THAT(world_.Log(), IsEmpty()) << "nothing touched";

  auto plan = Plan("v2", 1);
  plan.load_balancers[0].add_servers = true;
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  EXPECT_THAT(world_.Log(), ElementsAre("add-server app1 127.0.0.1:8081", "pull app1 v2", "drain app1",
                                        "sessions app1=0", "maint app1", "stop app1 v1", "start app1 v2",
                                        "health app1 v2", "ready app1", "up app1"));
  EXPECT_TRUE(lb_->State("app1").InRotation());
}

TEST_F(RolloutEngineTest, NoLoadBalancerStopsAndStartsInPlace) {
  auto plan = Plan("v2", 1);
  plan.load_balancers.clear();  // The inventory said `load_balancers: none`.
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  EXPECT_THAT(world_.Log(), ElementsAre("pull app1 v2", "stop app1 v1", "start app1 v2", "health app1 v2"));
}

TEST_F(RolloutEngineTest, HostsGoOneAtATimeAndEachEndsUpBeforeTheNextDrains) {
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  auto log = world_.Log();
  auto pos = [&](const std::string& op) { return std::find(log.begin(), log.end(), op) - log.begin(); };
  // (The next host's artifact may be pulled ahead: only its drain must wait.)
  EXPECT_LT(pos("up app1"), pos("drain app2"));
  EXPECT_LT(pos("up app2"), pos("drain app3"));
  ExpectConverged("v2");
  // The previous version is kept (stopped) for restore and rollback.
  EXPECT_EQ(runtime_.Instances("app1").size(), 2u);
}

TEST_F(RolloutEngineTest, DoneHostsAreCleanedUpAfterTheLastHostAndBeforeTheRolloutFinishes) {
  ASSERT_TRUE(Engine()->Run(Plan("v2")));  // v1 is kept, stopped.
  world_.ClearLog();
  // In the v3 rollout each host's cleanup removes its v1.
  auto r = Engine()->Run(Plan("v3"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  ExpectConverged("v3");
  auto log = world_.Log();
  auto pos = [&](const std::string& op) { return std::find(log.begin(), log.end(), op) - log.begin(); };
  // No host waited for an earlier host's cleanup: app1's v1 went only after
  // the last host was back in rotation.
  ASSERT_LT(pos("remove app1 v1"), static_cast<long>(log.size()));
  EXPECT_GT(pos("remove app1 v1"), pos("up app3"));
  // Every cleanup ended before the rollout reported finished: v3 runs, v2 is
  // kept, v1 is gone on every host.
  for (const std::string h : {"app1", "app2", "app3"}) {
    std::vector<std::string> versions;
    for (const auto& inst : runtime_.Instances(h)) versions.push_back(inst.version);
    EXPECT_THAT(versions, ::testing::UnorderedElementsAre("v2", "v3")) << h;
  }
  long finished = -1, last_cleanup_end = -1, last_host_done = -1;
  for (size_t i = 0; i < events_.size(); ++i) {
    const long at = static_cast<long>(i);
    if (events_[i].type == EventType::kRolloutFinished) finished = at;
    if (events_[i].type == EventType::kHostDone) last_host_done = at;
    if (events_[i].type == EventType::kStep && events_[i].step == Step::kCleanup && events_[i].phase == StepPhase::kEnd) last_cleanup_end = at;
  }
  EXPECT_GT(last_cleanup_end, last_host_done);
  EXPECT_LT(last_cleanup_end, finished);
}

// strategy.keep_previous: each host keeps that many stopped releases,
// newest first, and the frozen plan carries it (a resume keeps as many).
TEST_F(RolloutEngineTest, EachHostKeepsTheConfiguredNumberOfPreviousReleases) {
  for (const std::string v : {"v2", "v3", "v4", "v5"}) {
    auto plan = Plan(v);
    plan.strategy.keep_previous = 2;
    auto r = Engine()->Run(plan);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
    auto back = PlanFromJson(PlanToJson(plan));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->strategy.keep_previous, 2);
  }
  ExpectConverged("v5");
  for (const std::string h : {"app1", "app2", "app3"}) {
    std::vector<std::string> versions;
    for (const auto& inst : runtime_.Instances(h)) versions.push_back(inst.version);
    EXPECT_THAT(versions, ::testing::UnorderedElementsAre("v3", "v4", "v5")) << h;
  }
  // A plan off the wire with a count out of range is refused.
  auto plan = Plan("v6");
  plan.strategy.keep_previous = 0;
  EXPECT_THAT(CheckPlan(plan).error().message, HasSubstr("/strategy/keep_previous"));
}

TEST_F(RolloutEngineTest, BatchOfTwoRunsHostsTogether) {
  // app1's drain waits until app2 has started draining too: only possible if
  // both hosts of the batch are in flight at once (bounded wait, no sleep).
  std::mutex mu;
  std::condition_variable cv;
  bool app2_draining = false, met = false;
  world_.on_op = [&](const std::string& op) {
    std::unique_lock l(mu);
    if (op == "drain app2") {
      app2_draining = true;
      cv.notify_all();
    } else if (op == "drain app1") {
      met = cv.wait_for(l, std::chrono::seconds(5), [&] { return app2_draining; });
    }
  };
  auto plan = Plan("v2");
  plan.strategy.batch = *ParseCountOrPercent("2");
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r);
  EXPECT_TRUE(met) << "app2 did not start while app1 was in flight";
  auto log = world_.Log();
  auto pos = [&](const std::string& op) { return std::find(log.begin(), log.end(), op) - log.begin(); };
  EXPECT_LT(pos("up app1"), pos("drain app3"));
  EXPECT_LT(pos("up app2"), pos("drain app3"));
  ExpectConverged("v2");
}

TEST_F(RolloutEngineTest, DrainWaitsForSessionsThenGoesToMaint) {
  lb_->sessions_on_drain["app1"] = 40;
  auto before = clock_.MonotonicMs();
  ASSERT_TRUE(Engine()->Run(Plan("v2", 1)));
  EXPECT_GE(clock_.MonotonicMs() - before, 39 * 5);  // Polled every 5 ms until the 40 sessions closed.
  auto steps = *store_->Steps(events_.front().rollout_id);
  bool saw = false;
  for (const auto& s : steps) {
    if (s.step == Step::kWaitSessions && s.phase == StepPhase::kEnd) {
      EXPECT_THAT(s.detail, HasSubstr("\"sessions_at_drain\":40"));
      EXPECT_THAT(s.detail, HasSubstr("\"sessions_left\":0"));
      saw = true;
    }
  }
  EXPECT_TRUE(saw);
}

TEST_F(RolloutEngineTest, DrainIsBoundedByDrainTimeout) {
  lb_->sessions_on_drain["app1"] = 1'000'000;
  auto plan = Plan("v2", 1);
  plan.strategy.drain_timeout = Millis(100);
  ASSERT_TRUE(Engine()->Run(plan));
  bool warned = std::any_of(events_.begin(), events_.end(), [](const Event& e) { return e.type == EventType::kWarning; });
  EXPECT_TRUE(warned);
  EXPECT_LT(clock_.MonotonicMs(), 10'000);
}

TEST_F(RolloutEngineTest, NegativeControlSkipsTheSessionWait) {
  lb_->sessions_on_drain["app1"] = 40;
  ASSERT_TRUE(Engine(100, /*skip_wait=*/true)->Run(Plan("v2", 1)));
  auto log = world_.Log();
  EXPECT_EQ(std::count(log.begin(), log.end(), "sessions app1=0"), 0);
}

}  // namespace
}  // namespace sp::test
