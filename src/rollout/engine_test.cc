#include "rollout/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "rollout/rollback.h"
#include "store/sqlite/sqlite_store.h"
#include "unit/fakes.h"

namespace sp {
namespace {

using test::Crash;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Journal decorator that dies (throws Crash) at the Nth AppendStep, before
// or after delegating — so tests can stop the engine between "acted" and
// "recorded".
class CrashingJournal final : public JournalStore {
 public:
  explicit CrashingJournal(JournalStore* inner) : inner_(inner) {}
  int crash_at = -1;          // 1-based AppendStep index; -1 = never.
  bool after_write = false;   // Crash after the record is written.
  int appends = 0;
  Status CreateRollout(const RolloutRecord& r) override { return inner_->CreateRollout(r); }
  Status FinishRollout(const std::string& id, RolloutStatus s, const std::string& e) override {
    return inner_->FinishRollout(id, s, e);
  }
  Result<RolloutRecord> GetRollout(const std::string& id) override { return inner_->GetRollout(id); }
  Result<std::optional<RolloutRecord>> Latest(const std::string& a, const std::string& b, const std::string& c,
                                              std::optional<RolloutStatus> s) override {
    return inner_->Latest(a, b, c, s);
  }
  Result<std::vector<RolloutRecord>> ListRollouts(int n) override { return inner_->ListRollouts(n); }
  // Writes come from the engine's thread and its cleanup worker: each gets
  // its own index, so exactly one write crashes.
  Status AppendStep(const StepRecord& s) override {
    int n;
    {
      std::lock_guard l(mu_);
      n = ++appends;
    }
    if (n == crash_at && !after_write) throw Crash{"journal " + s.host + " " + s.step + " " + s.phase};
    auto st = inner_->AppendStep(s);
    if (n == crash_at && after_write) throw Crash{"journal " + s.host + " " + s.step + " " + s.phase};
    return st;
  }
  Result<std::vector<StepRecord>> Steps(const std::string& id) override { return inner_->Steps(id); }
  Status PutHost(const HostRecord& h) override { return inner_->PutHost(h); }
  Result<std::vector<HostRecord>> Hosts(const std::string& id) override { return inner_->Hosts(id); }

 private:
  JournalStore* inner_;
  std::mutex mu_;
};

// All the fakes wired to one engine; usable inside a test to run many
// independent worlds (crash sweeps).
struct Harness {
  void Init() {
    store_ = std::move(*SqliteStore::Open(":memory:"));
    journal_ = std::make_unique<CrashingJournal>(store_.get());
    lb_ = std::make_unique<test::FakeLoadBalancer>(&world_, "lb");
    lb2_ = std::make_unique<test::FakeLoadBalancer>(&world_, "lb2");
    std::map<int, std::string> ports;
    for (int i = 1; i <= 3; ++i) {
      std::string h = "app" + std::to_string(i);
      lb_->AddServer("app", h);
      lb2_->AddServer("app", h);
      runtime_.Seed(h, "v1");
      ports[8080 + i] = h;
    }
    health_ = std::make_unique<test::FakeHealth>(&world_, &runtime_, ports);
  }

  RolloutPlan Plan(const std::string& version, int hosts = 3) {
    RolloutPlan p;
    p.id = "r-" + version + "-" + std::to_string(++plan_seq_);
    p.service = "hello";
    p.stack = "demo";
    p.release = "web";
    p.deployment = "integration";
    p.app.runtime = "fake";
    p.app.artifact = "img:" + version;
    p.app.version = version;
    p.app.health.retries = 3;
    p.app.health.interval = Millis(100);
    for (int i = 1; i <= hosts; ++i) {
      HostSpec h;
      h.name = "app" + std::to_string(i);
      h.address = "127.0.0.1";
      h.port = 8080 + i;
      p.hosts.push_back(h);
    }
    LoadBalancerSpec lb;
    lb.backend = "app";
    lb.socket = "/fake";
    p.load_balancers.push_back(lb);
    return p;
  }

  std::unique_ptr<RolloutEngine> Engine(int64_t pid = 100, bool skip_wait = false, Millis lock_wait = Millis(0)) {
    EngineDeps d;
    d.clock = &clock_;
    d.journal = journal_.get();
    d.locks = store_.get();
    d.runtime = &runtime_;
    d.transport = &transport_;
    d.health = health_.get();
    d.lb_factory = [this](const LoadBalancerSpec& spec) -> Result<std::unique_ptr<LoadBalancer>> {
      LoadBalancer* which = spec.socket == "/fake2" ? static_cast<LoadBalancer*>(lb2_.get()) : lb_.get();
      return test::Borrow(which);
    };
    d.on_event = [this](const Event& e) { events_.push_back(e); };
    EngineOptions o;
    o.holder = "tester pid " + std::to_string(pid);
    o.machine = "testbox";
    o.pid = pid;
    o.renew_in_background = false;
    o.test_skip_session_wait = skip_wait;
    o.lock_wait = lock_wait;
    o.prefetch_batches = prefetch_batches_;
    o.pid_alive = [this](int64_t pid) { return alive_pids_.count(pid) > 0; };
    return std::make_unique<RolloutEngine>(d, o);
  }

  // Every host runs exactly `version` and is in rotation.
  void ExpectConverged(const std::string& version) {
    for (int i = 1; i <= 3; ++i) {
      std::string h = "app" + std::to_string(i);
      EXPECT_THAT(runtime_.Running(h), ElementsAre(version)) << h;
      EXPECT_TRUE(lb_->State(h).InRotation()) << h << " " << lb_->State(h).status;
    }
  }

  test::World world_;
  test::FakeRuntime runtime_{&world_};
  test::FakeTransport transport_{&world_};
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<CrashingJournal> journal_;
  std::unique_ptr<test::FakeLoadBalancer> lb_, lb2_;
  std::unique_ptr<test::FakeHealth> health_;
  std::vector<Event> events_;
  int prefetch_batches_ = 1;
  std::set<int64_t> alive_pids_;
  int plan_seq_ = 0;
};

class RolloutEngineTest : public ::testing::Test, public Harness {
 protected:
  void SetUp() override { Init(); }
};

TEST_F(RolloutEngineTest, OneHostFollowsTheOrderedProcedure) {
  lb_->sessions_on_drain["app1"] = 3;
  auto r = Engine()->Run(Plan("v2", 1));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  EXPECT_THAT(world_.Log(), ElementsAre("pull app1 v2", "drain app1", "sessions app1=0", "maint app1", "stop app1 v1",
                                        "start app1 v2", "health app1 v2", "ready app1", "up app1"));
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

TEST_F(RolloutEngineTest, TeardownDrainsDeletesAddedServersAndRemovesEveryInstance) {
  auto plan = Plan("v2", 1);
  plan.load_balancers[0].add_servers = true;
  ASSERT_TRUE(Engine()->Run(plan));
  ASSERT_EQ(runtime_.Instances("app1").size(), 2u);
  lb_->sessions_on_drain["app1"] = 2;
  world_.ClearLog();
  plan.id = "t-1";
  plan.kind = "teardown";
  auto t = Engine()->Teardown(plan);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->status, RolloutStatus::kSucceeded) << t->error;
  EXPECT_THAT(world_.Log(), ElementsAre("drain app1", "sessions app1=0", "del-server app1", "remove app1 v1",
                                        "stop app1 v2", "remove app1 v2"));
  EXPECT_FALSE(lb_->Has("app", "app1"));
  EXPECT_THAT(runtime_.Instances("app1"), IsEmpty());
  EXPECT_TRUE(lb_->Has("app", "app2")) << "other servers untouched";

  world_.ClearLog();
  auto again = Engine()->Teardown(plan);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, RolloutStatus::kSucceeded) << "idempotent: " << again->error;
  EXPECT_THAT(world_.Log(), IsEmpty());
}

TEST_F(RolloutEngineTest, TeardownLeavesAConfiguredServerInMaintAndReportsAFailedHost) {
  auto plan = Plan("v1", 2);  // add_servers unset: app1/app2 are configured servers.
  plan.id = "t-2";
  plan.kind = "teardown";
  world_.fail["stop app2 v1"] = Error{ErrorCode::kUnavailable, "host gone"};
  auto t = Engine()->Teardown(plan);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->status, RolloutStatus::kFailed);
  EXPECT_THAT(t->error, HasSubstr("host app2: host gone"));
  EXPECT_EQ(lb_->State("app1").status, "MAINT");
  EXPECT_TRUE(lb_->Has("app", "app1"));
  EXPECT_THAT(runtime_.Instances("app1"), IsEmpty());
  EXPECT_EQ(t->hosts[0].state, "done");
  EXPECT_EQ(t->hosts[1].state, "failed");
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
    if (events_[i].type == "rollout_finished") finished = at;
    if (events_[i].type == "host_done") last_host_done = at;
    if (events_[i].type == "step" && events_[i].step == "cleanup" && events_[i].phase == "end") last_cleanup_end = at;
  }
  EXPECT_GT(last_cleanup_end, last_host_done);
  EXPECT_LT(last_cleanup_end, finished);
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
    if (s.step == "wait_sessions" && s.phase == "end") {
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
  bool warned = std::any_of(events_.begin(), events_.end(), [](const Event& e) { return e.type == "warning"; });
  EXPECT_TRUE(warned);
  EXPECT_LT(clock_.MonotonicMs(), 10'000);
}

TEST_F(RolloutEngineTest, NegativeControlSkipsTheSessionWait) {
  lb_->sessions_on_drain["app1"] = 40;
  ASSERT_TRUE(Engine(100, /*skip_wait=*/true)->Run(Plan("v2", 1)));
  auto log = world_.Log();
  EXPECT_EQ(std::count(log.begin(), log.end(), "sessions app1=0"), 0);
}

struct StepFailure {
  std::string op;       // Injected failing op on app2.
  std::string step;     // Step named in the error.
};

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
  EXPECT_EQ(r->hosts[0].state, "done");
  EXPECT_EQ(r->hosts[1].state, "failed");
  EXPECT_EQ(r->hosts[2].state, "skipped");
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
    prefetched += e.type == "step" && e.step == "pull" && e.phase == "end" && e.detail.contains("prefetched");
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
  EXPECT_EQ(r->hosts[1].state, "failed");
  EXPECT_EQ(r->hosts[2].state, "done");
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

TEST_F(RolloutEngineTest, SecondRolloutFailsNamingTheHolderUntilTheLeaseExpires) {
  Lease other;
  other.key = "demo/web/integration";
  other.holder = "alice@ci pid 7";
  other.reason = "rollout r-x v9";
  other.token = "t";
  other.pid = 7;
  other.machine = "otherbox";
  ASSERT_TRUE(store_->Acquire(other, clock_.WallMs(), 30'000));
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_THAT(r.error().message, HasSubstr("alice@ci pid 7"));
  EXPECT_THAT(r.error().message, HasSubstr("rollout r-x v9"));
  clock_.Advance(Millis(30'001));  // The holder died without releasing.
  auto r2 = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ(r2->status, RolloutStatus::kSucceeded);
}

TEST_F(RolloutEngineTest, LockWaitWaitsForABusyLockToExpire) {
  Lease other;
  other.key = "demo/web/integration";
  other.holder = "bob@laptop pid 9";
  other.token = "t";
  other.machine = "otherbox";
  ASSERT_TRUE(store_->Acquire(other, clock_.WallMs(), 5'000));
  auto before = clock_.MonotonicMs();
  auto r = Engine(100, false, Millis(60'000))->Run(Plan("v2", 1));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GE(clock_.MonotonicMs() - before, 5'000);
  // Without waiting long enough, it fails naming the holder.
  ASSERT_TRUE(store_->Acquire(other, clock_.WallMs(), 5'000));
  auto r2 = Engine(100, false, Millis(1'000))->Run(Plan("v3", 1));
  ASSERT_FALSE(r2);
  EXPECT_THAT(r2.error().message, HasSubstr("bob@laptop pid 9"));
}

// The scope's lock held for 30 s by pid 4242 of this machine ("testbox").
void HoldLockAsLocalPid4242(SqliteStore& store, FakeClock& clock) {
  Lease lease;
  lease.key = "demo/web/integration";
  lease.holder = "sallyport pid 4242";
  lease.token = "t";
  lease.pid = 4242;
  lease.machine = "testbox";
  ASSERT_TRUE(store.Acquire(lease, clock.WallMs(), 30'000));
}

TEST_F(RolloutEngineTest, LiveLocalHolderKeepsTheLock) {
  HoldLockAsLocalPid4242(*store_, clock_);
  alive_pids_.insert(4242);
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_THAT(r.error().message, HasSubstr("sallyport pid 4242"));
  EXPECT_TRUE(world_.Log().empty()) << "nothing may be touched while another rollout holds the lock";
}

TEST_F(RolloutEngineTest, DeadLocalHolderIsTakenOverAtOnce) {
  HoldLockAsLocalPid4242(*store_, clock_);  // pid 4242 is not alive here.
  auto r = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
}

TEST_F(RolloutEngineTest, RollbackRunsThePreviousPlanFromTheKeptArtifactWithoutPulling) {
  EXPECT_EQ(RollbackPlanFor(*store_, "demo", "web", "integration", 0).error().code, ErrorCode::kNotFound);
  auto v1 = Plan("v1");
  v1.app.env["MODE"] = "old";
  ASSERT_TRUE(Engine()->Run(v1));
  auto v2 = Engine()->Run(Plan("v2"));
  ASSERT_TRUE(v2);
  auto back = RollbackPlanFor(*store_, "demo", "web", "integration", clock_.WallMs());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->kind, "rollback");
  EXPECT_EQ(back->app.version, "v1");
  EXPECT_EQ(back->app.env.at("MODE"), "old") << "the old configuration comes back with the old artifact";
  EXPECT_EQ(back->previous_rollout_id, v2->rollout_id);
  EXPECT_NE(back->id, v1.id);
  world_.ClearLog();
  for (int i = 1; i <= 3; ++i) world_.fail["pull app" + std::to_string(i) + " v1"] = Error{ErrorCode::kUnavailable, "registry down"};
  auto r = Engine()->Run(*back);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
  ExpectConverged("v1");
  auto log = world_.Log();
  EXPECT_EQ(std::count_if(log.begin(), log.end(), [](const std::string& op) { return op.rfind("pull ", 0) == 0; }), 0);
}

// Crash the engine at every fake operation of a 3-host rollout, then resume
// with a new engine: every host must end with exactly v2 running, in rotation.
TEST_F(RolloutEngineTest, ResumeConvergesAfterACrashAtEveryOperation) {
  // Learn the operations of a clean run.
  std::vector<std::string> ops;
  {
    Harness probe;
    probe.Init();
    ASSERT_TRUE(probe.Engine()->Run(probe.Plan("v2")));
    ops = probe.world_.Log();
  }
  ASSERT_GT(ops.size(), 20u);
  for (const auto& op : ops) {
    SCOPED_TRACE("crash at " + op);
    Harness t;
    t.Init();
    t.world_.crash_at = op;
    auto plan = t.Plan("v2");
    std::string id = plan.id;
    bool crashed = false;
    try {
      (void)t.Engine(100)->Run(plan);
    } catch (const Crash&) {
      crashed = true;
    }
    ASSERT_TRUE(crashed);
    auto rec = t.store_->GetRollout(id);
    if (!rec) continue;  // Crashed before the plan was frozen: nothing to resume.
    auto r = t.Engine(200)->Resume(id);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
    t.ExpectConverged("v2");
  }
}

// Same, crashing at every journal write, before and after it lands — e.g.
// "journal says stopping, app already stopped".
TEST_F(RolloutEngineTest, ResumeConvergesAfterACrashAtEveryJournalWrite) {
  int total = 0;
  {
    Harness probe;
    probe.Init();
    ASSERT_TRUE(probe.Engine()->Run(probe.Plan("v2")));
    total = probe.journal_->appends;
  }
  ASSERT_GT(total, 30);
  for (int n = 1; n <= total; ++n) {
    for (bool after : {false, true}) {
      SCOPED_TRACE("crash at journal write " + std::to_string(n) + (after ? " (after)" : " (before)"));
      Harness t;
      t.Init();
      t.journal_->crash_at = n;
      t.journal_->after_write = after;
      auto plan = t.Plan("v2");
      try {
        (void)t.Engine(100)->Run(plan);
        FAIL() << "did not crash";
      } catch (const Crash&) {
      }
      t.journal_->crash_at = -1;
      auto r = t.Engine(200)->Resume(plan.id);
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
      t.ExpectConverged("v2");
    }
  }
}

TEST_F(RolloutEngineTest, JournalSaysStoppingButAppAlreadyStopped) {
  // Crash right after the runtime stopped v1 on app2, before "stop end" is journaled.
  world_.crash_at = "start app2 v2";
  auto plan = Plan("v2");
  try {
    (void)Engine(100)->Run(plan);
  } catch (const Crash&) {
  }
  EXPECT_TRUE(runtime_.Running("app2").empty());
  EXPECT_EQ(lb_->State("app2").admin, AdminState::kMaint);
  auto r = Engine(200)->Resume(plan.id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  ExpectConverged("v2");
}

TEST_F(RolloutEngineTest, LaterRolloutReconcilesAnInterruptedOne) {
  world_.crash_at = "start app2 v2";
  const auto interrupted = Plan("v2");
  try {
    (void)Engine(100)->Run(interrupted);
  } catch (const Crash&) {
  }
  const auto next = Plan("v3");
  auto r = Engine(200)->Run(next);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  ExpectConverged("v3");
  // The interrupted rollout was reconciled and closed by the later one.
  auto old = store_->GetRollout(interrupted.id);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, RolloutStatus::kFailed);
  EXPECT_THAT(old->error, HasSubstr("reconciled by " + next.id));
}

}  // namespace
}  // namespace sp
