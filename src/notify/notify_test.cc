// Notifications' logic: which events a rollout's and a build's records
// make, which channel takes which, what a message says and how it is
// escaped, and the notifier's scan (one record per channel and event, a
// store's old history not told).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "notify/notifier.h"
#include "rollout/plan.h"
#include "store/sqlite/sqlite_store.h"

namespace sp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

RolloutRecord Rollout(const std::string& id, RolloutStatus status, const std::string& error = "",
                      int64_t created = 1'000'000, int64_t updated = 1'012'500) {
  RolloutPlan p;
  p.id = id;
  p.service = "hello";
  p.stack = "demo";
  p.release = "web";
  p.deployment = "production";
  p.app.version = "v2";
  p.app.artifact = "reg/hello@sha256:ab";
  RolloutRecord r;
  r.id = id;
  r.stack = p.stack;
  r.release = p.release;
  r.deployment = p.deployment;
  r.status = status;
  r.error = error;
  r.plan_json = PlanToJson(p);
  r.created_ms = created;
  r.updated_ms = updated;
  return r;
}

BuildRecord Build() {
  BuildRecord b;
  b.id = 7;
  b.project = "hello";
  b.branch = "main";
  b.sha = "0123456789abcdef0123";
  b.author = "Ada <ada@example.org>";
  b.message = "Say \"hi\" to <!channel> & all\nsecond line";
  return b;
}

std::vector<std::string> Names(const std::vector<NotifyEvent>& es) {
  std::vector<std::string> out;
  for (const auto& e : es) out.push_back(e.name + (e.urgent ? "!" : ""));
  return out;
}

TEST(NotifyEventsTest, ARolloutsRecordsMakeItsStartAndItsEnd) {
  EXPECT_THAT(Names(RolloutEvents(Rollout("r-1", RolloutStatus::kRunning), std::nullopt)), ElementsAre("rollout.started"));
  auto ok = RolloutEvents(Rollout("r-1", RolloutStatus::kSucceeded), Build());
  EXPECT_THAT(Names(ok), ElementsAre("rollout.started", "rollout.succeeded"));
  EXPECT_EQ(ok[1].key, "r-1/succeeded");
  EXPECT_EQ(ok[1].fields.at("duration"), "12.5s");
  EXPECT_EQ(ok[1].fields.at("version"), "v2");
  EXPECT_EQ(ok[1].fields.at("commit"), "0123456789ab");
  EXPECT_EQ(ok[1].project, "hello");
  auto failed = RolloutEvents(Rollout("r-2", RolloutStatus::kFailed, "host app2 failed at health: HTTP 500: unhealthy"),
                              std::nullopt);
  EXPECT_THAT(Names(failed), ElementsAre("rollout.started", "rollout.failed"));
  EXPECT_EQ(failed[1].fields.at("host"), "app2");
  EXPECT_EQ(failed[1].fields.at("step"), "health");
  EXPECT_EQ(failed[1].fields.at("cause"), "HTTP 500: unhealthy");
  // The server's automatic resume gave up: a human must look.
  auto gave_up = RolloutEvents(Rollout("r-3", RolloutStatus::kFailed,
                                       "rollout job 4 ran out of attempts (3 of 3): its hosts were reconciled"),
                               std::nullopt);
  EXPECT_THAT(Names(gave_up), ElementsAre("rollout.started", "rollout.failed!"));
  RolloutRecord back = Rollout("r-4", RolloutStatus::kSucceeded);
  back.kind = PlanKind::kRollback;
  EXPECT_THAT(Names(RolloutEvents(back, std::nullopt)), ElementsAre("rollout.started", "rollout.rolled_back"));
  EXPECT_THAT(Names(RolloutEvents(Rollout("r-5", RolloutStatus::kInterrupted), std::nullopt)),
              ElementsAre("rollout.started", "rollout.interrupted"));
}

TEST(NotifyEventsTest, ARestoreIsToldAndOneThatFailedIsUrgent) {
  const RolloutRecord r = Rollout("r-1", RolloutStatus::kRunning);
  StepRecord s{41, "r-1", "app2", Step::kRestore, StepPhase::kEnd, 1'005'000, "{}"};
  auto restored = StepEvent(s, r);
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->name, "rollout.host_restored");
  EXPECT_EQ(restored->key, "r-1/restore/app2/41");
  EXPECT_FALSE(restored->urgent);
  s.phase = StepPhase::kFail;
  s.detail = R"({"error":"start v1: exit 1"})";
  auto left_out = StepEvent(s, r);
  ASSERT_TRUE(left_out);
  EXPECT_EQ(left_out->name, "rollout.restore_failed");
  EXPECT_TRUE(left_out->urgent);
  EXPECT_EQ(left_out->fields.at("cause"), "start v1: exit 1");
  s.phase = StepPhase::kBegin;
  EXPECT_FALSE(StepEvent(s, r));
  // A lock taken over from a dead holder, and a silence that could not be made.
  StepRecord lock{42, "r-1", "", Step::kLock, StepPhase::kEnd, 1'000'001, R"({"taken_over_from":"ada@box pid 7"})"};
  auto taken = StepEvent(lock, r);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->name, "rollout.lock_taken_over");
  EXPECT_EQ(taken->fields.at("holder"), "ada@box pid 7");
  StepRecord silence{43, "r-1", "", Step::kSilence, StepPhase::kFail, 1'000'002, R"({"error":"alertmanager down"})"};
  auto unsilenced = StepEvent(silence, r);
  ASSERT_TRUE(unsilenced);
  EXPECT_EQ(unsilenced->name, "rollout.silence_failed");
  NotifyChannel c;
  c.name = "x";
  EXPECT_THAT(NotificationText(c, *unsilenced, ""), HasSubstr("could not be silenced: alertmanager down"));
  StepRecord hook{44, "r-1", "", Step::kPreRollout, StepPhase::kFail, 1'000'003,
                  R"({"hook":"suspend","error":"timed out after 10s"})"};
  auto failed_hook = StepEvent(hook, r);
  ASSERT_TRUE(failed_hook);
  EXPECT_EQ(failed_hook->name, "rollout.hook_failed");
  EXPECT_THAT(NotificationText(c, *failed_hook, ""), HasSubstr("its pre_rollout hook suspend failed: timed out after 10s"));
}

TEST(NotifyEventsTest, ABuildsStartAndEnd) {
  BuildRecord b = Build();
  EXPECT_TRUE(BuildEvents(b).empty()) << "not started";
  b.started_ms = 5;
  b.status = BuildStatus::kRunning;
  EXPECT_THAT(Names(BuildEvents(b)), ElementsAre("build.started"));
  b.status = BuildStatus::kFailed;
  b.finished_ms = 65'005;
  auto es = BuildEvents(b);
  EXPECT_THAT(Names(es), ElementsAre("build.started", "build.failed"));
  EXPECT_EQ(es[1].subject, "build/7");
  EXPECT_EQ(es[1].fields.at("duration"), "65.0s");
}

TEST(NotifyChannelTest, FiltersByProjectDeploymentAndEvents) {
  NotifyChannel c;
  c.name = "ops";
  c.url_ref = "env:SLACK_URL";
  auto e = RolloutEvents(Rollout("r-1", RolloutStatus::kFailed, "x"), Build())[1];
  EXPECT_TRUE(ChannelTakes(c, e));
  c.events = {"rollout.*"};
  EXPECT_TRUE(ChannelTakes(c, e));
  c.events = {"build.*", "rollout.succeeded"};
  EXPECT_FALSE(ChannelTakes(c, e));
  c.events = {};
  c.deployment = "staging";
  EXPECT_FALSE(ChannelTakes(c, e));
  c.deployment = "production";
  c.project = "other";
  EXPECT_FALSE(ChannelTakes(c, e));
  c.project = "hello";
  EXPECT_TRUE(ChannelTakes(c, e));
  EXPECT_TRUE(CheckChannel(c));
  NotifyChannel bad = c;
  bad.url_ref = "https://hooks.slack.com/services/T/B/secret";
  EXPECT_THAT(CheckChannel(bad).error().message, HasSubstr("a credential"));
  bad = c;
  bad.kind = "webhook";
  EXPECT_THAT(CheckChannel(bad).error().message, HasSubstr("signing secret"));
  bad = c;
  bad.events = {"rollout.exploded"};
  EXPECT_FALSE(CheckChannel(bad));
}

// A commit message with quotes, a newline and a mention arrives as text:
// never JSON structure, never a mention.
TEST(NotifyMessageTest, TextIsEscapedForSlackAndJsonAndTemplatesFillFields) {
  NotifyChannel slack;
  slack.name = "chat";
  const auto e = RolloutEvents(Rollout("r-1", RolloutStatus::kSucceeded), Build())[1];
  const json body = json::parse(NotificationBody(slack, e, "https://sp.example/v1/rollouts/r-1"));
  ASSERT_EQ(body.size(), 1u) << body.dump();
  const std::string text = body.at("text");
  EXPECT_THAT(text, HasSubstr("Rollout r-1: hello v2 is live on web/production in 12.5s"));
  EXPECT_THAT(text, HasSubstr("Say \"hi\" to &lt;!channel&gt; &amp; all"));
  EXPECT_THAT(text, Not(HasSubstr("<!channel>")));
  EXPECT_THAT(text, Not(HasSubstr("second line"))) << "the message's first line";
  EXPECT_THAT(text, HasSubstr("(0123456789ab by Ada &lt;ada@example.org&gt;: Say"));
  EXPECT_THAT(text, HasSubstr("https://sp.example/v1/rollouts/r-1"));
  NotifyChannel hook = slack;
  hook.kind = "webhook";
  hook.templates["rollout.succeeded"] = "{release} {version} by {author} ({nope}) {link}";
  const json wb = json::parse(NotificationBody(hook, e, "L"));
  EXPECT_EQ(wb.at("event"), "rollout.succeeded");
  EXPECT_EQ(wb.at("text"), "web v2 by Ada <ada@example.org> () L") << "a webhook's text is not Slack-escaped";
  EXPECT_EQ(wb.at("fields").at("message"), "Say \"hi\" to <!channel> & all");
  EXPECT_EQ(wb.at("delivery"), "chat:r-1/succeeded");
  EXPECT_EQ(SlackEscape("a<b>&c"), "a&lt;b&gt;&amp;c");
}

TEST(NotifierTest, AScanAddsOneRecordPerChannelAndEventAndTellsNoOldHistory) {
  auto store = std::move(*SqliteStore::Open(":memory:"));
  FakeClock clock(10'000'000);
  NotifyChannel all, failures;
  all.name = "all";
  all.url_ref = "env:A";
  failures.name = "failures";
  failures.url_ref = "env:B";
  failures.events = {"rollout.failed"};
  ASSERT_TRUE(store->PutChannel(all));
  ASSERT_TRUE(store->PutChannel(failures));
  // Long before the notifier started: not told.
  ASSERT_TRUE(store->CreateRollout(Rollout("r-old", RolloutStatus::kFailed, "old", 1'000, 2'000)));
  NotifierOptions o;
  o.clock = &clock;
  o.catch_up = Millis(600'000);
  Notifier n(*store, *store, o);
  RolloutRecord r = Rollout("r-new", RolloutStatus::kRunning, "", clock.WallMs(), clock.WallMs());
  ASSERT_TRUE(store->CreateRollout(r));
  auto added = n.Scan();
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_EQ(*added, 1) << "r-new started, to `all`";
  clock.Advance(Millis(5000));
  // (FinishRollout stamps the store's own time; a record as it would read then.)
  r.status = RolloutStatus::kFailed;
  r.error = "host app1 failed at start: exit 1";
  r.id = "r-new";
  ASSERT_TRUE(store->FinishRollout("r-new", r.status, r.error));
  added = n.Scan();
  ASSERT_TRUE(added);
  EXPECT_EQ(*added, 2) << "r-new failed, to both";
  EXPECT_EQ(*n.Scan(), 0) << "a second look adds nothing";
  Notifier restarted(*store, *store, o);
  EXPECT_EQ(*restarted.Scan(), 0) << "a restarted server's first look adds nothing either (one record per key in the store)";
  auto records = store->NotificationsOf("r-new");
  ASSERT_TRUE(records);
  std::vector<std::string> got;
  for (const auto& x : *records) got.push_back(x.channel + " " + x.event);
  EXPECT_THAT(got, ElementsAre("all rollout.started", "all rollout.failed", "failures rollout.failed"));
  EXPECT_TRUE(store->NotificationsOf("r-old")->empty());
}

}  // namespace
}  // namespace sp
