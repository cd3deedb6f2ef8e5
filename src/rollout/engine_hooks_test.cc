// The deployment's hooks around a rollout: order, abort before any host,
// a host's failing hook restores it, and post_rollout exactly once per
// pre_rollout (by idempotency key) whatever crashes, interrupts or resumes.
#include <algorithm>
#include <set>

#include "inventory/hooks.h"
#include "unit/engine_harness.h"

namespace sp::test {
namespace {

using ::testing::Contains;
using ::testing::Not;

HookSpec Hook(const std::string& name) {
  HookSpec h;
  h.name = name;
  h.command = {"/bin/true"};
  return h;
}

// A plan whose deployment suspends autoscaling around it (pre/post), checks
// each host (pre/post host) and pages on failure.
RolloutPlan HookedPlan(Harness& t, const std::string& version) {
  RolloutPlan p = t.Plan(version);
  p.hooks.pre_rollout = {Hook("suspend")};
  p.hooks.post_rollout = {Hook("resume")};
  p.hooks.pre_host = {Hook("check")};
  p.hooks.post_host = {Hook("check")};
  p.hooks.on_failure = {Hook("page")};
  return p;
}

std::vector<std::string> Keys(Harness& t) {
  std::vector<std::string> out;
  for (const auto& c : t.hooks_.Calls()) out.push_back(c.key);
  return out;
}

// Each distinct pre_rollout key has exactly one distinct post_rollout key
// of the same round, and each post one pre: the receiver's view.
void ExpectOnePostPerPre(Harness& t, const std::string& id) {
  std::set<std::string> pre, post;
  for (const auto& k : Keys(t)) {
    if (k.rfind(id + "/pre_rollout/", 0) == 0) pre.insert(k.substr(k.find("/suspend") + 8));
    if (k.rfind(id + "/post_rollout/", 0) == 0) post.insert(k.substr(k.find("/resume") + 7));
  }
  EXPECT_EQ(pre, post) << "rounds with a pre and no post (or the reverse)";
}

TEST_F(RolloutEngineTest, HooksRunAroundTheRolloutAndEachHostWithStableKeys) {
  const RolloutPlan plan = HookedPlan(*this, "v2");
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
  const std::string id = plan.id;
  EXPECT_THAT(Keys(*this), ElementsAre(id + "/pre_rollout/suspend", id + "/pre_host/check/app1",
                                       id + "/post_host/check/app1", id + "/pre_host/check/app2",
                                       id + "/post_host/check/app2", id + "/pre_host/check/app3",
                                       id + "/post_host/check/app3", id + "/post_rollout/resume"));
  // A host's hook runs out of rotation after the drain, and after it is back.
  auto log = world_.Log();
  auto at = [&](const std::string& op) { return std::find(log.begin(), log.end(), op) - log.begin(); };
  EXPECT_LT(at("hook " + id + "/pre_rollout/suspend"), at("pull app1 v2"));
  EXPECT_LT(at("maint app1"), at("hook " + id + "/pre_host/check/app1"));
  EXPECT_LT(at("hook " + id + "/pre_host/check/app1"), at("stop app1 v1"));
  EXPECT_LT(at("ready app1"), at("hook " + id + "/post_host/check/app1"));
  const HookCall host_call = hooks_.Calls()[1];
  EXPECT_EQ(host_call.vars.at("host"), "app1");
  EXPECT_EQ(host_call.vars.at("port"), "8081");
  EXPECT_EQ(host_call.vars.at("version"), "v2");
  // Journaled like steps: the rollout's on host "", with the hook's name.
  auto steps = store_->Steps(id);
  ASSERT_TRUE(steps);
  EXPECT_TRUE(std::any_of(steps->begin(), steps->end(), [](const StepRecord& s) {
    return s.host.empty() && s.step == Step::kPostRollout && s.phase == StepPhase::kEnd &&
           s.detail.find("\"hook\":\"resume\"") != std::string::npos;
  }));
}

TEST_F(RolloutEngineTest, AFailingPreRolloutHookTouchesNoHostAndStillRunsItsUndoAndOnFailure) {
  const RolloutPlan plan = HookedPlan(*this, "v2");
  world_.fail["hook " + plan.id + "/pre_rollout/suspend"] =
      Error{ErrorCode::kUnavailable, "exit 1: AccessDenied: not authorized to SuspendProcesses"};
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("pre_rollout exit 1: AccessDenied: not authorized to SuspendProcesses"));
  EXPECT_THAT(r->error, HasSubstr("no host was touched"));
  for (const auto& op : world_.Log()) EXPECT_EQ(op.rfind("hook ", 0), 0u) << "touched: " << op;
  for (const auto& h : r->hosts) EXPECT_EQ(h.state, HostState::kSkipped) << h.host;
  EXPECT_THAT(Keys(*this), ElementsAre(plan.id + "/on_failure/page", plan.id + "/post_rollout/resume"));
  EXPECT_EQ(store_->GetRollout(plan.id)->status, RolloutStatus::kFailed);
  ExpectConverged("v1");
}

// The policy when the suspension cannot be made: "warn" goes on, said.
TEST_F(RolloutEngineTest, APreRolloutHookThatMayFailIsAWarningAndTheRolloutGoesOn) {
  RolloutPlan plan = HookedPlan(*this, "v2");
  plan.hooks.pre_rollout[0].on_error = "warn";
  world_.fail["hook " + plan.id + "/pre_rollout/suspend"] = Error{ErrorCode::kTimeout, "timed out after 10s"};
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
  ExpectConverged("v2");
  EXPECT_TRUE(std::any_of(events_.begin(), events_.end(), [](const Event& e) {
    return e.type == EventType::kWarning &&
           e.detail.value("message", "").find("pre_rollout timed out after 10s (on_error: warn") != std::string::npos;
  }));
  EXPECT_EQ(Keys(*this).back(), plan.id + "/post_rollout/resume") << "its undo still runs";
}

TEST_F(RolloutEngineTest, AHostsHookThatTimesOutRestoresThatHost) {
  const RolloutPlan plan = HookedPlan(*this, "v2");
  world_.fail["hook " + plan.id + "/pre_host/check/app2"] =
      Error{ErrorCode::kTimeout, "hook check (/usr/local/bin/check): timed out after 10s"};
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("host app2 failed at pre_host: pre_host hook check"));
  EXPECT_THAT(runtime_.Running("app1"), ElementsAre("v2"));
  EXPECT_THAT(runtime_.Running("app2"), ElementsAre("v1")) << "restored";
  EXPECT_THAT(runtime_.Running("app3"), ElementsAre("v1"));
  for (const char* h : {"app1", "app2", "app3"}) EXPECT_TRUE(lb_->State(h).InRotation()) << h;
  EXPECT_THAT(Keys(*this), Contains(plan.id + "/on_failure/page"));
  EXPECT_EQ(Keys(*this).back(), plan.id + "/post_rollout/resume");
}

TEST_F(RolloutEngineTest, PostRunsOncePerPreAfterACrashAtEveryOperationThenResume) {
  SweepOpCrashes([](Harness& t) { return HookedPlan(t, "v2"); },
                 [](Harness& t, const RolloutPlan& plan) {
                   ExpectOnePostPerPre(t, plan.id);
                   EXPECT_THAT(Keys(t), Contains(plan.id + "/post_rollout/resume"));
                 });
}

TEST_F(RolloutEngineTest, PostRunsOncePerPreAfterACrashAtEveryJournalWriteThenResume) {
  SweepJournalCrashes([](Harness& t) { return HookedPlan(t, "v2"); },
                      [](Harness& t, const RolloutPlan& plan) { ExpectOnePostPerPre(t, plan.id); });
}

// Hooks at the end only (no pre_rollout): a crash as its post_rollout call
// is about to be journaled, every host done; the resume still makes it.
TEST_F(RolloutEngineTest, APostRolloutHookWithoutAPreRunsAfterAResumeOfARolloutWhoseHostsAllFinished) {
  auto post_only = [](Harness& h) {
    RolloutPlan p = h.Plan("v2");
    p.hooks.post_rollout = {Hook("resume")};
    return p;
  };
  int total = 0;
  {
    Harness probe;
    probe.Init();
    ASSERT_TRUE(probe.Engine()->Run(post_only(probe)));
    total = probe.journal_->appends;  // ..., post_rollout begin, post_rollout end.
  }
  const RolloutPlan plan = post_only(*this);
  journal_->crash_at = total - 1;
  EXPECT_THROW((void)Engine(100)->Run(plan), Crash);
  journal_->crash_at = -1;
  EXPECT_THAT(Keys(*this), IsEmpty());
  auto r = Engine(200)->Resume(plan.id);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
  ExpectConverged("v2");
  EXPECT_THAT(Keys(*this), ElementsAre(plan.id + "/post_rollout/resume"));
}

// Crashed, then ended by a dead-letter reconcile or by the scope's next
// rollout instead of a resume: the open round's undo runs there.
TEST_F(RolloutEngineTest, AReconcileOrTheNextRolloutRunsTheUndoOfACrashedRollout) {
  for (bool by_next_rollout : {false, true}) {
    SCOPED_TRACE(by_next_rollout ? "next rollout" : "reconcile");
    Harness t;
    t.Init();
    const RolloutPlan plan = HookedPlan(t, "v2");
    t.world_.crash_at = "stop app2 v1";
    EXPECT_THROW((void)t.Engine(100)->Run(plan), Crash);
    if (by_next_rollout) {
      auto r = t.Engine(200)->Run(t.Plan("v3"));
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
    } else {
      auto r = t.Engine(200)->Reconcile(plan.id, "ran out of attempts");
      ASSERT_TRUE(r) << r.error().message;
    }
    ExpectOnePostPerPre(t, plan.id);
    EXPECT_THAT(Keys(t), Contains(plan.id + "/post_rollout/resume"));
    EXPECT_THAT(Keys(t), Contains(plan.id + "/on_failure/page")) << "recorded failed";
  }
}

// An operator's interrupt ends the round (its undo runs); resuming the
// interrupted rollout opens a new round under new keys.
TEST_F(RolloutEngineTest, AnInterruptRunsTheUndoAndItsResumeOpensANewRound) {
  const RolloutPlan plan = HookedPlan(*this, "v2");
  auto engine = Engine();
  world_.on_op = [&](const std::string& op) {
    if (op == "ready app1") engine->RequestStop();
  };
  auto r = engine->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kInterrupted);
  EXPECT_EQ(Keys(*this).back(), plan.id + "/post_rollout/resume");
  world_.on_op = nullptr;
  auto resumed = Engine(200)->Resume(plan.id);
  ASSERT_TRUE(resumed) << resumed.error().message;
  EXPECT_EQ(resumed->status, RolloutStatus::kSucceeded) << resumed->error;
  ExpectConverged("v2");
  const auto keys = Keys(*this);
  EXPECT_THAT(keys, Contains(plan.id + "/pre_rollout/suspend#2"));
  EXPECT_EQ(keys.back(), plan.id + "/post_rollout/resume#2");
  EXPECT_THAT(keys, Not(Contains(plan.id + "/pre_host/check/app1#2"))) << "app1 was done";
  ExpectOnePostPerPre(*this, plan.id);
}

// An agent that stops hands its rollout back: no undo there (the rollout
// goes on elsewhere); the next holder's resume continues the same round.
TEST_F(RolloutEngineTest, AHandedBackRolloutKeepsItsRoundOpenForTheNextHolder) {
  const RolloutPlan plan = HookedPlan(*this, "v2");
  auto engine = Engine();
  world_.on_op = [&](const std::string& op) {
    if (op == "ready app1") engine->RequestHandBack();
  };
  auto r = engine->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->handed_back);
  EXPECT_THAT(Keys(*this), Not(Contains(plan.id + "/post_rollout/resume")));
  world_.on_op = nullptr;
  auto resumed = Engine(200)->Resume(plan.id);
  ASSERT_TRUE(resumed) << resumed.error().message;
  EXPECT_EQ(resumed->status, RolloutStatus::kSucceeded) << resumed->error;
  ExpectConverged("v2");
  const auto keys = Keys(*this);
  EXPECT_EQ(std::count(keys.begin(), keys.end(), plan.id + "/pre_rollout/suspend"), 1);
  EXPECT_EQ(keys.back(), plan.id + "/post_rollout/resume");
  ExpectOnePostPerPre(*this, plan.id);
}

// A forced release at every op of a hooked rollout: the loser runs no hook
// after its lease is gone (fenced like every action), and the scope's next
// rollout, reconciling the loser's, runs its undo once.
TEST(ScopeLeaseTest, AfterItsLockIsTakenAtAnyOpTheLoserRunsNoHookAndTheNextHolderUndoesItsRound) {
  SweepLockTakeover([](Harness& w) { return HookedPlan(w, "v2"); },
                    [](Harness& w, const RolloutPlan& lost) { ExpectOnePostPerPre(w, lost.id); });
}

TEST(HooksSpecTest, ChecksRefuseWhatCouldLeakOrRunAnything) {
  HookSpec h = Hook("asg");
  EXPECT_TRUE(CheckHook(h));
  HookSpec both = h;
  both.url = "https://asg.example/";
  EXPECT_FALSE(CheckHook(both));
  HookSpec http;
  http.name = "asg";
  http.url = "http://10.0.0.5/suspend";
  EXPECT_TRUE(CheckHook(http));
  http.header_refs["Authorization"] = "env:ASG_TOKEN";
  EXPECT_THAT(CheckHook(http).error().message, HasSubstr("secret headers go over HTTPS only"));
  http.url = "http://127.0.0.1:9000/suspend";
  EXPECT_TRUE(CheckHook(http));
  http.headers["X-Evil"] = "a\r\nHost: other";
  EXPECT_FALSE(CheckHook(http));
  http.headers.clear();
  http.method = "CONNECT";
  EXPECT_FALSE(CheckHook(http));
  http.method = "POST";
  http.url = "file:///etc/passwd";
  EXPECT_FALSE(CheckHook(http));
  HookSpec slow = Hook("slow");
  slow.timeout_ms = 11 * 60'000;
  EXPECT_FALSE(CheckHook(slow));
  HooksSpec twice;
  twice.pre_rollout = {Hook("a"), Hook("a")};
  EXPECT_THAT(CheckHooks(twice).error().message, HasSubstr("named twice"));
}

}  // namespace
}  // namespace sp::test
