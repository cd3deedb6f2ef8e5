// The rollout's alert silence: made before any host (and any hook) with
// its matchers, expired at the end whatever the outcome, adopted — never
// made twice — after a crash anywhere, left to the next holder when the
// lock is taken, and the policy when the Alertmanager cannot be reached.
#include <algorithm>

#include "inventory/hooks.h"
#include "unit/engine_harness.h"

namespace sp::test {
namespace {

using ::testing::Contains;
using ::testing::Not;

RolloutPlan SilencedPlan(Harness& t, const std::string& version) {
  RolloutPlan p = t.Plan(version);
  SilenceSpec s;
  s.url = "http://alertmanager.example:9093";
  p.hooks.silence = s;
  HookSpec suspend;
  suspend.name = "suspend";
  suspend.command = {"/bin/true"};
  p.hooks.pre_rollout = {suspend};
  HookSpec resume = suspend;
  resume.name = "resume";
  p.hooks.post_rollout = {resume};
  return p;
}

std::vector<Silence> Of(Harness& t, const std::string& rollout) {
  std::vector<Silence> out;
  for (const auto& s : t.silencer_.All()) {
    if (s.comment.find("[sallyport-rollout=" + rollout + "#") != std::string::npos) out.push_back(s);
  }
  return out;
}

// One silence per round of `rollout`, and none left active.
void ExpectOneSilencePerRoundNoneActive(Harness& t, const std::string& rollout) {
  std::map<std::string, int> per_round;
  for (const auto& s : Of(t, rollout)) {
    ++per_round[s.comment.substr(s.comment.find("#"))];
    EXPECT_EQ(s.state, "expired") << s.id << ": " << s.comment;
  }
  EXPECT_FALSE(per_round.empty()) << "no silence at all";
  for (const auto& [round, n] : per_round) EXPECT_EQ(n, 1) << "round " << round << " made " << n << " silences";
}

TEST_F(RolloutEngineTest, ASilenceIsMadeBeforeAnyHookOrHostWithItsMatchersAndExpiredAtTheEnd) {
  RolloutPlan plan = SilencedPlan(*this, "v2");
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kSucceeded) << r->error;
  const auto log = world_.Log();
  const std::string marker = "[sallyport-rollout=" + plan.id + "#1]";
  ASSERT_GE(log.size(), 3u);
  EXPECT_EQ(log[0], "silence find");
  EXPECT_EQ(log[1], "silence put " + marker) << "made before anything else acts";
  EXPECT_EQ(log[3], "hook " + plan.id + "/pre_rollout/suspend");
  EXPECT_EQ(log.back(), "silence expire s1") << "expired last, after the hooks' undo";
  const auto made = Of(*this, plan.id);
  ASSERT_EQ(made.size(), 1u);
  std::vector<std::string> ms;
  for (const auto& m : made[0].matchers) ms.push_back(m.name + (m.regex ? "=~" : "=") + m.value);
  EXPECT_THAT(ms, ElementsAre("release=web", "deployment=integration", "host=~app1|app2|app3"));
  EXPECT_EQ(made[0].ends_at_ms - clock_.WallMs(), 10 * 60'000) << "10 minutes ahead, at most";
  EXPECT_EQ(made[0].state, "expired");
  // Journaled like a step, with its id.
  auto steps = store_->Steps(plan.id);
  ASSERT_TRUE(steps);
  EXPECT_TRUE(std::any_of(steps->begin(), steps->end(), [](const StepRecord& s) {
    return s.step == Step::kSilence && s.phase == StepPhase::kEnd && s.detail.find("\"silence\":\"s1\"") != std::string::npos;
  }));
}

// A matcher's values: the plan's names and addresses, regex-escaped in a regex matcher.
TEST_F(RolloutEngineTest, ASilencesMatchersNameThePlansHostsAndAddressesEscaped) {
  RolloutPlan plan = SilencedPlan(*this, "v2");
  plan.hooks.silence->matchers = {{"instance", "({addresses}):9100", true}, {"job", "{release}.{deployment}"},
                                  {"svc", "{release}.{stack}", true, false}};
  ASSERT_EQ(Engine()->Run(plan)->status, RolloutStatus::kSucceeded);
  const auto made = Of(*this, plan.id);
  ASSERT_EQ(made.size(), 1u);
  std::vector<std::string> ms;
  for (const auto& m : made[0].matchers) {
    ms.push_back(m.name + (m.equal ? "=" : "!") + (m.regex ? "~" : "") + m.value);
  }
  EXPECT_THAT(ms, ElementsAre("instance=~(127\\.0\\.0\\.1|127\\.0\\.0\\.1|127\\.0\\.0\\.1):9100",
                              "job=web.integration", "svc!~web.demo"));
}

TEST_F(RolloutEngineTest, TheSilenceIsExpiredWhateverTheOutcome) {
  for (const std::string outcome : {"failed host", "failing pre_rollout", "interrupt"}) {
    SCOPED_TRACE(outcome);
    Harness t;
    t.Init();
    const RolloutPlan plan = SilencedPlan(t, "v2");
    auto engine = t.Engine();
    if (outcome == "failed host") t.world_.fail["health app2 v2"] = Error{ErrorCode::kUnavailable, "HTTP 500"};
    if (outcome == "failing pre_rollout") {
      t.world_.fail["hook " + plan.id + "/pre_rollout/suspend"] = Error{ErrorCode::kUnavailable, "denied"};
    }
    if (outcome == "interrupt") {
      t.world_.on_op = [&](const std::string& op) {
        if (op == "ready app1") engine->RequestStop();
      };
    }
    auto r = engine->Run(plan);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_NE(r->status, RolloutStatus::kSucceeded);
    ExpectOneSilencePerRoundNoneActive(t, plan.id);
  }
}

// The default policy: no silence, no rollout — before any hook or host.
TEST_F(RolloutEngineTest, AnAlertmanagerThatCannotBeReachedStopsTheRolloutBeforeAnyHostUnlessItsPolicyIsWarn) {
  RolloutPlan plan = SilencedPlan(*this, "v2");
  world_.fail["silence find"] = Error{ErrorCode::kUnavailable, "alertmanager GET …: Couldn't connect to server"};
  auto r = Engine()->Run(plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, RolloutStatus::kFailed);
  EXPECT_THAT(r->error, HasSubstr("silence: alertmanager GET"));
  EXPECT_THAT(r->error, HasSubstr("no host was touched"));
  EXPECT_THAT(world_.Log(), ElementsAre("silence find")) << "nothing else acted, nor asked again at the end";
  ExpectConverged("v1");

  Harness t;
  t.Init();
  RolloutPlan warn = SilencedPlan(t, "v2");
  warn.hooks.silence->on_error = "warn";
  t.world_.fail["silence find"] = Error{ErrorCode::kUnavailable, "Couldn't connect to server"};
  auto w = t.Engine()->Run(warn);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->status, RolloutStatus::kSucceeded) << w->error;
  t.ExpectConverged("v2");
  EXPECT_TRUE(std::any_of(t.events_.begin(), t.events_.end(), [](const Event& e) {
    return e.type == EventType::kWarning &&
           e.detail.value("message", "").find("rolling without a silence") != std::string::npos;
  }));
}

TEST_F(RolloutEngineTest, OneSilencePerRoundAfterACrashAtEveryOperationThenResume) {
  SweepOpCrashes([](Harness& t) { return SilencedPlan(t, "v2"); },
                 [](Harness& t, const RolloutPlan& plan) { ExpectOneSilencePerRoundNoneActive(t, plan.id); });
}

TEST_F(RolloutEngineTest, OneSilencePerRoundAfterACrashAtEveryJournalWriteThenResume) {
  SweepJournalCrashes([](Harness& t) { return SilencedPlan(t, "v2"); },
                      [](Harness& t, const RolloutPlan& plan) { ExpectOneSilencePerRoundNoneActive(t, plan.id); });
}

// Crashed, then ended by the dead-letter reconcile or the scope's next
// rollout: the crashed rollout's silence is expired there.
TEST_F(RolloutEngineTest, AReconcileOrTheNextRolloutExpiresTheSilenceOfACrashedRollout) {
  for (bool by_next_rollout : {false, true}) {
    SCOPED_TRACE(by_next_rollout ? "next rollout" : "reconcile");
    Harness t;
    t.Init();
    const RolloutPlan plan = SilencedPlan(t, "v2");
    t.world_.crash_at = "stop app2 v1";
    EXPECT_THROW((void)t.Engine(100)->Run(plan), Crash);
    ASSERT_EQ(Of(t, plan.id).size(), 1u);
    EXPECT_EQ(Of(t, plan.id)[0].state, "active");
    if (by_next_rollout) {
      auto r = t.Engine(200)->Run(SilencedPlan(t, "v3"));
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->status, RolloutStatus::kSucceeded);
    } else {
      ASSERT_TRUE(t.Engine(200)->Reconcile(plan.id, "ran out of attempts"));
    }
    ExpectOneSilencePerRoundNoneActive(t, plan.id);
  }
}

// An interrupt ends the round (the silence expired); its resume makes the
// silence of round 2.
TEST_F(RolloutEngineTest, AnInterruptedRolloutsResumeSilencesItsHostsAgain) {
  const RolloutPlan plan = SilencedPlan(*this, "v2");
  auto engine = Engine();
  world_.on_op = [&](const std::string& op) {
    if (op == "ready app1") engine->RequestStop();
  };
  ASSERT_EQ(engine->Run(plan)->status, RolloutStatus::kInterrupted);
  world_.on_op = nullptr;
  auto resumed = Engine(200)->Resume(plan.id);
  ASSERT_TRUE(resumed) << resumed.error().message;
  EXPECT_EQ(resumed->status, RolloutStatus::kSucceeded) << resumed->error;
  ExpectConverged("v2");
  const auto made = Of(*this, plan.id);
  ASSERT_EQ(made.size(), 2u);
  EXPECT_THAT(made[1].comment, HasSubstr("#2]"));
  ExpectOneSilencePerRoundNoneActive(*this, plan.id);
}

// The lock forced away at every op: the loser makes no Alertmanager call
// after it (fenced), and the scope's next rollout expires its silence.
TEST(ScopeLeaseTest, AfterItsLockIsTakenAtAnyOpTheLoserLeavesItsSilenceToTheNextHolder) {
  SweepLockTakeover([](Harness& w) { return SilencedPlan(w, "v2"); },
                    [](Harness& w, const RolloutPlan& lost) {
                      for (const auto& s : Of(w, lost.id)) EXPECT_EQ(s.state, "expired") << s.comment;
                    });
}

TEST(HooksSpecTest, ASilenceIsCheckedAndKeepsItsShapeThroughJson) {
  SilenceSpec s;
  s.url = "https://am.internal:9093";
  s.matchers = {{"instance", "({hosts}):9100", true}, {"severity", "page", false, false}};
  s.duration_ms = 5 * 60'000;
  HooksSpec h;
  h.silence = s;
  ASSERT_TRUE(CheckHooks(h));
  const HooksSpec back = HooksFromJson(nlohmann::json::parse(HooksToJson(h).dump()));
  ASSERT_TRUE(back.silence);
  EXPECT_EQ(back.silence->url, s.url);
  EXPECT_EQ(back.silence->duration_ms, s.duration_ms);
  ASSERT_EQ(back.silence->matchers.size(), 2u);
  EXPECT_TRUE(back.silence->matchers[0].regex);
  EXPECT_FALSE(back.silence->matchers[1].equal);
  SilenceSpec bad = s;
  bad.duration_ms = 11 * 60'000;
  EXPECT_THAT(CheckSilence(bad).error().message, HasSubstr("between 10s and 10m"));
  bad = s;
  bad.url = "file:///etc/passwd";
  EXPECT_FALSE(CheckSilence(bad));
  bad = s;
  bad.matchers[0].name = "9bad";
  EXPECT_FALSE(CheckSilence(bad));
  bad = s;
  bad.matchers[0].value = "a\nb";
  EXPECT_FALSE(CheckSilence(bad));
}

}  // namespace
}  // namespace sp::test
