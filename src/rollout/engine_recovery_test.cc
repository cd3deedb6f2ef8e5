// Locks, rollback, resume after a crash at every point, reconcile, teardown.
#include "rollout/engine.h"

#include <algorithm>
#include <map>

#include "rollout/rollback.h"
#include "unit/engine_harness.h"

namespace sp::test {
namespace {

using ::testing::Contains;

TEST_F(RolloutEngineTest, TeardownDrainsDeletesAddedServersAndRemovesEveryInstance) {
  auto plan = Plan("v2", 1);
  plan.load_balancers[0].add_servers = true;
  ASSERT_TRUE(Engine()->Run(plan));
  ASSERT_EQ(runtime_.Instances("app1").size(), 2u);
  lb_->sessions_on_drain["app1"] = 2;
  world_.ClearLog();
  plan.id = "t-1";
  plan.kind = PlanKind::kTeardown;
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
  plan.kind = PlanKind::kTeardown;
  world_.fail["stop app2 v1"] = Error{ErrorCode::kUnavailable, "host gone"};
  auto t = Engine()->Teardown(plan);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->status, RolloutStatus::kFailed);
  EXPECT_THAT(t->error, HasSubstr("host app2: host gone"));
  EXPECT_EQ(lb_->State("app1").status, "MAINT");
  EXPECT_TRUE(lb_->Has("app", "app1"));
  EXPECT_THAT(runtime_.Instances("app1"), IsEmpty());
  EXPECT_EQ(t->hosts[0].state, HostState::kDone);
  EXPECT_EQ(t->hosts[1].state, HostState::kFailed);
}

// A rollout a CLI planned itself and journaled on a server (its plan marked
// submitted_by), left running: a server's or an agent's engine neither
// reconciles nor resumes it, touching nothing and naming the CLI; a CLI's
// engine reconciles it before its own rollout.
TEST_F(RolloutEngineTest, ASubmittedPlanLeftRunningIsActedOnOnlyByACliEngine) {
  auto cli_plan = Plan("v2");
  cli_plan.submitted_by = "token:alice (CLI)";
  RolloutRecord rec;
  rec.id = cli_plan.id;
  rec.stack = cli_plan.stack;
  rec.release = cli_plan.release;
  rec.deployment = cli_plan.deployment;
  rec.plan_json = PlanToJson(cli_plan);
  ASSERT_TRUE(store_->CreateRollout(rec));
  world_.ClearLog();
  auto refused = Engine()->Run(Plan("v3"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_THAT(refused.error().message, HasSubstr("planned and run by a CLI (token:alice (CLI))"));
  auto resumed = Engine()->Resume(cli_plan.id);
  ASSERT_FALSE(resumed);
  EXPECT_THAT(resumed.error().message, HasSubstr("not acted on here"));
  EXPECT_THAT(world_.Log(), IsEmpty()) << "a submitted plan's hosts were touched";

  tune_ = [](EngineOptions& o) { o.act_on_submitted_plans = true; };
  auto cli = Engine()->Run(Plan("v3"));
  ASSERT_TRUE(cli) << cli.error().message;
  EXPECT_EQ(cli->status, RolloutStatus::kSucceeded) << cli->error;
  auto old = store_->GetRollout(cli_plan.id);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, RolloutStatus::kFailed);
  EXPECT_THAT(old->error, HasSubstr("reconciled by"));
  ExpectConverged("v3");
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
  const RolloutPlan plan = Plan("v2");
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
  // In the rollout's record (the notifications tell it from there).
  auto steps = store_->Steps(plan.id);
  ASSERT_TRUE(steps);
  EXPECT_TRUE(std::any_of(steps->begin(), steps->end(), [](const StepRecord& s) {
    return s.step == Step::kLock && s.detail.find("\"taken_over_from\":\"") != std::string::npos;
  }));
}

// `rollout undo --to`: any earlier successful rollout of the scope, by
// version label or rollout id; what runs now and unknown ones are refused,
// the latter naming the versions there are.
TEST_F(RolloutEngineTest, RollbackToAChosenVersionOrRolloutRunsThatRolloutsPlan) {
  std::map<std::string, std::string> ids;
  for (const std::string v : {"v1", "v2", "v3"}) {
    auto p = Plan(v);
    p.app.env["MODE"] = "mode-" + v;
    auto r = Engine()->Run(p);
    ASSERT_TRUE(r && r->status == RolloutStatus::kSucceeded);
    ids[v] = r->rollout_id;
  }
  auto to_v1 = RollbackPlanFor(*store_, "demo", "web", "integration", clock_.WallMs(), "v1");
  ASSERT_TRUE(to_v1) << to_v1.error().message;
  EXPECT_EQ(to_v1->kind, PlanKind::kRollback);
  EXPECT_EQ(to_v1->app.version, "v1");
  EXPECT_EQ(to_v1->app.env.at("MODE"), "mode-v1");
  EXPECT_EQ(to_v1->previous_rollout_id, ids["v3"]);
  auto by_id = RollbackPlanFor(*store_, "demo", "web", "integration", clock_.WallMs(), ids["v2"]);
  ASSERT_TRUE(by_id) << by_id.error().message;
  EXPECT_EQ(by_id->app.version, "v2");
  auto now = RollbackPlanFor(*store_, "demo", "web", "integration", clock_.WallMs(), "v3");
  ASSERT_FALSE(now);
  EXPECT_EQ(now.error().code, ErrorCode::kConflict);
  EXPECT_THAT(now.error().message, HasSubstr("is what web runs on integration now"));
  auto unknown = RollbackPlanFor(*store_, "demo", "web", "integration", clock_.WallMs(), "v9");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(unknown.error().message, HasSubstr("versions it ran: v3, v2, v1"));
  auto r = Engine()->Run(*to_v1);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
  ExpectConverged("v1");
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
  EXPECT_EQ(back->kind, PlanKind::kRollback);
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
// The fake operations of a clean 3-host rollout to v2, in order.
std::vector<std::string> OpsOfACleanRollout() {
  Harness probe;
  probe.Init();
  EXPECT_TRUE(probe.Engine()->Run(probe.Plan("v2")));
  return probe.world_.Log();
}

// A 3-host rollout to v2 by pid 100 of `t`'s machine, crashed (once) at
// fake operation `op`; its plan.
RolloutPlan RunCrashingAt(Harness& t, const std::string& op) {
  t.world_.crash_at = op;
  auto plan = t.Plan("v2");
  bool crashed = false;
  try {
    (void)t.Engine(100)->Run(plan);
  } catch (const Crash&) {
    crashed = true;
  }
  EXPECT_TRUE(crashed);
  return plan;
}

TEST_F(RolloutEngineTest, ResumeConvergesAfterACrashAtEveryOperation) {
  SweepOpCrashes([](Harness& t) { return t.Plan("v2"); }, nullptr);
}

// A rollout whose job ran out of attempts, reconciled after a crash at
// every fake operation: each host ends with exactly one version running,
// in rotation; no host gets the new version or a pull it did not have;
// the rollout is recorded failed with the reason, its lock free; a second
// reconcile touches nothing.
TEST_F(RolloutEngineTest, ReconcileAfterACrashAtEveryOperationLeavesEachHostOnOneVersionInRotation) {
  const std::string reason = "rollout job 7 ran out of attempts";
  int reconciled = 0;
  for (const auto& op : OpsOfACleanRollout()) {
    SCOPED_TRACE("crash at " + op);
    Harness t;
    t.Init();
    const RolloutPlan plan = RunCrashingAt(t, op);
    if (!t.store_->GetRollout(plan.id)) continue;  // Crashed before the plan was frozen.
    std::map<std::string, std::vector<std::string>> before;
    for (int i = 1; i <= 3; ++i) before["app" + std::to_string(i)] = t.runtime_.Running("app" + std::to_string(i));
    t.world_.ClearLog();
    auto r = t.Engine(200)->Reconcile(plan.id, reason);
    ASSERT_TRUE(r) << r.error().message;
    ++reconciled;
    EXPECT_EQ(r->status, RolloutStatus::kFailed);
    EXPECT_EQ(r->error, reason);
    for (int i = 1; i <= 3; ++i) {
      const std::string h = "app" + std::to_string(i);
      const auto running = t.runtime_.Running(h);
      ASSERT_EQ(running.size(), 1u) << h;
      EXPECT_TRUE(t.lb_->State(h).InRotation()) << h << " " << t.lb_->State(h).status;
      // v2 only where it already ran: nothing rolled further.
      if (running[0] == "v2") {
        EXPECT_THAT(before[h], Contains("v2")) << h;
      }
    }
    for (const auto& done : t.world_.Log()) {
      EXPECT_FALSE(done.rfind("pull ", 0) == 0 || (done.rfind("start ", 0) == 0 && done.size() > 3 && done.compare(done.size() - 3, 3, " v2") == 0))
          << "rolled further: " << done;
    }
    auto rec = t.store_->GetRollout(plan.id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, RolloutStatus::kFailed);
    EXPECT_EQ(rec->error, reason);
    auto lock = t.store_->Get(plan.ScopeKey());
    ASSERT_TRUE(lock);
    EXPECT_FALSE(lock->has_value()) << "the lock is held after the reconcile";
    t.world_.ClearLog();
    auto again = t.Engine(300)->Reconcile(plan.id, "again");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->error, reason) << "a finished rollout is left as it ended";
    EXPECT_THAT(t.world_.Log(), IsEmpty());
  }
  EXPECT_GT(reconciled, 20);
}

}  // namespace

void SweepOpCrashes(const std::function<RolloutPlan(Harness&)>& make_plan,
                    const std::function<void(Harness&, const RolloutPlan&)>& after_resume) {
  std::vector<std::string> ops;
  {
    Harness probe;
    probe.Init();
    ASSERT_TRUE(probe.Engine()->Run(make_plan(probe)));
    ops = probe.world_.Log();
  }
  ASSERT_GT(ops.size(), 20u);
  size_t resumed = 0;
  for (const auto& op : ops) {
    SCOPED_TRACE("crash at " + op);
    Harness t;
    t.Init();
    t.world_.crash_at = op;
    const RolloutPlan plan = make_plan(t);
    EXPECT_THROW((void)t.Engine(100)->Run(plan), Crash) << "did not crash";
    t.world_.crash_at.clear();
    if (!t.store_->GetRollout(plan.id)) continue;  // Crashed before the plan was frozen: nothing to resume.
    auto r = t.Engine(200)->Resume(plan.id);
    ASSERT_TRUE(r) << r.error().message;
    ++resumed;
    EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
    t.ExpectConverged("v2");
    if (after_resume) after_resume(t, plan);
  }
  EXPECT_GT(resumed, ops.size() / 2) << "only preflight's ops come before the plan is frozen";
}

void SweepJournalCrashes(const std::function<RolloutPlan(Harness&)>& make_plan,
                         const std::function<void(Harness&, const RolloutPlan&)>& after_resume) {
  int total = 0;
  {
    Harness probe;
    probe.Init();
    ASSERT_TRUE(probe.Engine()->Run(make_plan(probe)));
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
      const RolloutPlan plan = make_plan(t);
      EXPECT_THROW((void)t.Engine(100)->Run(plan), Crash) << "did not crash";
      t.journal_->crash_at = -1;
      auto r = t.Engine(200)->Resume(plan.id);
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
      t.ExpectConverged("v2");
      if (after_resume) after_resume(t, plan);
    }
  }
}

namespace {

// Same, crashing at every journal write, before and after it lands — e.g.
// "journal says stopping, app already stopped".
TEST_F(RolloutEngineTest, ResumeConvergesAfterACrashAtEveryJournalWrite) {
  SweepJournalCrashes([](Harness& t) { return t.Plan("v2"); }, nullptr);
}

// A crash between the runtime's start of the new version on app2 and the
// journal's "start end": the resume does not judge that instance by its
// health (its env or launch may be half done: here it answers unhealthy until
// it is stopped), it removes it and rolls app2 again, and converges.
TEST_F(RolloutEngineTest, AStartCutShortByACrashIsRolledAgainNotJudgedUnhealthy) {
  auto plan = Plan("v2");
  int start_end = 0;  // The AppendStep index of app2's "start end" in this rollout.
  {
    Harness probe;
    probe.Init();
    auto copy = plan;
    ASSERT_TRUE(probe.Engine()->Run(copy));
    auto steps = probe.store_->Steps(plan.id);
    ASSERT_TRUE(steps);
    for (size_t i = 0; i < steps->size(); ++i) {
      const auto& s = (*steps)[i];
      if (s.host == "app2" && s.step == Step::kStart && s.phase == StepPhase::kEnd) start_end = static_cast<int>(i) + 1;
    }
  }
  ASSERT_GT(start_end, 0);
  journal_->crash_at = start_end;
  try {
    (void)Engine(100)->Run(plan);
  } catch (const Crash&) {
  }
  ASSERT_THAT(runtime_.Running("app2"), Contains("v2")) << "the crash came after the runtime started it";
  // Half-started on app2: unhealthy, until it is stopped (app1, reconciled
  // first, is healthy).
  world_.on_op = [&](const std::string& op) {
    if (op == "up app1") health_->bad_versions = {"v2"};
    if (op == "stop app2 v2") health_->bad_versions.clear();
  };
  auto r = Engine(200)->Resume(plan.id);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
  ExpectConverged("v2");
  bool cut_short = false;
  for (const auto& e : events_) {
    if (e.type == EventType::kReconcile && e.host == "app2") cut_short = e.detail.value("start_cut_short", false);
  }
  EXPECT_TRUE(cut_short);
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

// An operator's stop (SIGINT/SIGTERM in the CLI) while the middle host is
// being drained: that host finishes, the last is never touched, the lock is
// free, the rollout is recorded interrupted — and resume finishes it. It
// is never resumed on its own, and never once a newer rollout ran.
TEST_F(RolloutEngineTest, AStopRequestFinishesTheHostInHandAndLeavesTheRestForResume) {
  // Runs `plan`, the operator's stop requested as `op` is about to act.
  auto run_stopped_at = [&](const std::string& op, const RolloutPlan& plan) {
    auto engine = Engine();
    world_.on_op = [&](const std::string& now) {
      if (now == op) engine->RequestStop();
    };
    auto r = engine->Run(plan);
    world_.on_op = nullptr;
    return r;
  };
  auto plan = Plan("v2");
  auto r = run_stopped_at("drain app2", plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kInterrupted);
  EXPECT_THAT(r->error, HasSubstr("1 of 3 host(s) untouched"));
  EXPECT_THAT(runtime_.Running("app1"), ElementsAre("v2"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v2")) << "the host in hand finished";
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1"));
  for (const std::string h : {"app1", "app2", "app3"}) EXPECT_TRUE(lb_->State(h).InRotation()) << h;
  auto rec = journal_->GetRollout(plan.id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, RolloutStatus::kInterrupted);
  Lease other;
  other.key = plan.ScopeKey();
  other.holder = "bob@ops pid 9";
  other.token = "t";
  other.pid = 9;
  other.machine = "otherbox";
  ASSERT_TRUE(store_->Acquire(other, clock_.WallMs(), 30'000)) << "the lock was released";
  ASSERT_TRUE(store_->Release(other.key, other.token));

  events_.clear();
  auto resumed = Engine()->Resume(plan.id);
  ASSERT_TRUE(resumed) << resumed.error().message;
  EXPECT_EQ(resumed->status, RolloutStatus::kSucceeded);
  ExpectConverged("v2");
  // The host it never reached is said untouched, not "restored".
  bool untouched = false;
  for (const auto& e : events_) {
    if (e.host != "app3") continue;
    EXPECT_NE(e.step, Step::kRestore) << "app3 was never touched: nothing to restore";
    if (e.type == EventType::kReconcile) untouched = e.detail.value("decision", "") == "untouched: previous version serving";
  }
  EXPECT_TRUE(untouched);

  // Interrupted again, then overtaken by a newer rollout: no resume.
  auto third = Plan("v3");
  auto stopped = run_stopped_at("drain app1", third);
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->status, RolloutStatus::kInterrupted);
  ASSERT_TRUE(Engine()->Run(Plan("v4")));
  auto refused = Engine()->Resume(third.id);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("ran since: start a new rollout instead"));
  ExpectConverged("v4");
}

// An agent that is stopping hands its rollout back: the host in hand
// finishes, the rest is left, the rollout stays `running` in the journal
// with its lock free, and the next holder's resume converges.
TEST_F(RolloutEngineTest, AHandBackFinishesTheHostInHandAndLeavesTheRolloutRunningForTheNextHolder) {
  bool stopping = false;
  tune_ = [&](EngineOptions& o) { o.hand_back = [&] { return stopping; }; };
  world_.on_op = [&](const std::string& op) {
    if (op == "drain app2") stopping = true;
  };
  auto plan = Plan("v2");
  auto r = Engine()->Run(plan);
  world_.on_op = nullptr;
  tune_ = nullptr;
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->handed_back);
  EXPECT_THAT(r->error, HasSubstr("handed back: 1 of 3 host(s) left for the next holder"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v2")) << "the host in hand finished";
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1"));
  auto rec = journal_->GetRollout(plan.id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, RolloutStatus::kRunning) << "left for the next holder";
  auto held = store_->Get(plan.ScopeKey());
  ASSERT_TRUE(held);
  EXPECT_FALSE(*held) << "the lock was released";
  auto resumed = Engine(200)->Resume(plan.id);
  ASSERT_TRUE(resumed) << resumed.error().message;
  EXPECT_EQ(resumed->status, RolloutStatus::kSucceeded);
  ExpectConverged("v2");
}

}  // namespace
}  // namespace sp::test
