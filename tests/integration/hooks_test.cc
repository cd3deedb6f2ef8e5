// Hooks against real parts: the adapter (SystemHookRunner) against a local
// HTTP receiver and real commands, and the real CLI's rollout with hooks
// in its inventory, killed (-9) at a few moments and resumed: the receiver
// sees exactly one post_rollout key per pre_rollout key.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <cstdlib>
#include <set>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/subprocess.h"
#include "hooks/system_hook_runner.h"
#include "support/hook_receiver.h"
#include "support/process_rollout_fixture.h"
#include "support/test_util.h"
#include "wiring/engine_wiring.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

HookCall Call(const std::string& key) {
  HookCall c;
  c.point = "pre_rollout";
  c.key = key;
  c.vars = {{"rollout", "r-1"}, {"release", "web"}, {"deployment", "production"}, {"host", "app1"}};
  return c;
}

SystemHookRunner Runner() { return SystemHookRunner(SystemProcesses(), RealClock::Instance(), ReadSecretRef); }

TEST(SystemHookRunnerIT, AnHttpHookCarriesItsKeyAndSecretHeaderWithAnEscapedBodyAndIsRetriedOn500) {
  HookReceiver receiver;
  receiver.fail_first = 2;
  ::setenv("SP_TEST_HOOK_TOKEN", "Bearer s3cr3t-hook-token", 1);
  HookSpec h;
  h.name = "suspend";
  h.url = receiver.Url("/asg/suspend");
  h.header_refs["Authorization"] = "env:SP_TEST_HOOK_TOKEN";
  h.body = R"({"group":"web-{deployment}","version":"{version}","key":"{key}"})";
  h.timeout_ms = 5000;
  HookCall call = Call("r-1/pre_rollout/suspend");
  call.vars["version"] = "v2\"},\"evil\":{\"x\":\"<!channel>\n";
  auto out = Runner().Run(h, call);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_THAT(*out, HasSubstr("HTTP 200"));
  EXPECT_THAT(*out, Not(HasSubstr("s3cr3t")));
  const auto calls = receiver.Calls();
  ASSERT_EQ(calls.size(), 3u) << "two 500s, then the retry that went through";
  for (const auto& c : calls) {
    EXPECT_EQ(c.method, "POST");
    EXPECT_EQ(c.path, "/asg/suspend");
    EXPECT_EQ(c.key, "r-1/pre_rollout/suspend") << "the same key on every retry";
    EXPECT_EQ(c.authorization, "Bearer s3cr3t-hook-token");
    EXPECT_EQ(c.content_type, "application/json");
  }
  const json body = json::parse(calls.back().body);
  EXPECT_EQ(body.size(), 3u) << "a value added no structure: " << calls.back().body;
  EXPECT_EQ(body.at("version"), call.vars["version"]) << "arrives as the text it was";
  EXPECT_EQ(body.at("group"), "web-production");
  EXPECT_EQ(body.at("key"), "r-1/pre_rollout/suspend");
  std::printf("http hook: %zu attempts, body %s\n", calls.size(), calls.back().body.c_str());
}

TEST(SystemHookRunnerIT, AReceiverThatIsDownOrTooSlowFailsTheHookWithinItsTimeout) {
  HookSpec down;
  down.name = "suspend";
  down.url = "http://127.0.0.1:" + std::to_string(FreePort()) + "/suspend";
  down.timeout_ms = 800;
  const int64_t t0 = RealClock::Instance().MonotonicMs();
  auto r = Runner().Run(down, Call("k1"));
  const int64_t took = RealClock::Instance().MonotonicMs() - t0;
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("hook suspend (POST " + down.url + ")"));
  EXPECT_THAT(r.error().message, HasSubstr("attempt"));
  EXPECT_LT(took, 1800) << "bounded by the hook's timeout";
  std::printf("receiver down: failed after %lld ms: %s\n", static_cast<long long>(took), r.error().message.c_str());

  HookReceiver slow;
  slow.delay_ms = 1500;
  HookSpec h = down;
  h.url = slow.Url("/suspend");
  h.timeout_ms = 500;
  auto t = Runner().Run(h, Call("k2"));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kTimeout) << t.error().message;
}

TEST(SystemHookRunnerIT, ACommandHookSeesItsValuesAndNothingOfOurEnvironment) {
  ::setenv("SALLYPORT_TOKEN", "agent-token-must-not-leak", 1);
  HookSpec h;
  h.name = "check";
  h.command = {"sh", "-c", "env | sort"};
  auto out = Runner().Run(h, Call("r-1/pre_host/check/app1"));
  ::unsetenv("SALLYPORT_TOKEN");
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_THAT(*out, HasSubstr("SALLYPORT_IDEMPOTENCY_KEY=r-1/pre_host/check/app1"));
  EXPECT_THAT(*out, HasSubstr("SALLYPORT_HOST=app1"));
  EXPECT_THAT(*out, HasSubstr("SALLYPORT_HOOK=check"));
  EXPECT_THAT(*out, Not(HasSubstr("agent-token-must-not-leak")));

  HookSpec slow;
  slow.name = "slow";
  slow.command = {"sh", "-c", "echo started; sleep 30"};
  slow.timeout_ms = 300;
  const int64_t t0 = RealClock::Instance().MonotonicMs();
  auto t = Runner().Run(slow, Call("k"));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kTimeout);
  EXPECT_THAT(t.error().message, HasSubstr("started")) << "its output is in the error";
  EXPECT_LT(RealClock::Instance().MonotonicMs() - t0, 5000);
}

// The real CLI, with the deployment's hooks in its inventory: an HTTP pair
// around the rollout and a command on each host.
class HookedRolloutTest : public ProcessRolloutTest {
 protected:
  void SetUp() override {
    ProcessRolloutTest::SetUp();
    const std::string hooks =
        "        hooks:\n"
        "          pre_rollout:\n"
        "            - {name: suspend, http: {url: '" + receiver_.Url("/suspend") + "', body: '{\"key\":\"{key}\"}'}}\n"
        "          post_rollout:\n"
        "            - {name: resume, http: {url: '" + receiver_.Url("/resume") + "'}, timeout: 5s}\n"
        "          pre_host:\n"
        "            - {name: mark, command: [sh, -c, 'echo \"$SALLYPORT_HOST $SALLYPORT_IDEMPOTENCY_KEY\" >> " +
        *dir_ / "host-hooks.log" + "']}\n";
    std::string inv = ReadFile(*dir_ / "inventory.yml");
    const std::string at = "        network: local\n";
    inv.insert(inv.find(at) + at.size(), hooks);
    WriteFile(*dir_ / "inventory.yml", inv);
  }
  // Distinct keys the receiver got on `path`.
  std::set<std::string> Keys(const std::string& path) {
    std::set<std::string> out;
    for (const auto& c : receiver_.Calls()) {
      if (c.path == path) out.insert(c.key);
    }
    return out;
  }
  HookReceiver receiver_;
};

TEST_F(HookedRolloutTest, KilledAtAFewMomentsThenResumedTheReceiverSeesOnePostPerPre) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  ASSERT_EQ(Keys("/suspend").size(), 1u);
  ASSERT_EQ(Keys("/resume").size(), 1u);
  EXPECT_EQ(json::parse(receiver_.Calls().front().body).at("key"), *Keys("/suspend").begin());
  EXPECT_EQ(ReadFile(*dir_ / "host-hooks.log").find("app1 r-"), 0u);
  struct Moment {
    std::string host, step, phase;
  };
  int n = 0;
  for (const Moment& m : {Moment{"", "pre_rollout", "end"}, Moment{"app2", "stop", "begin"},
                          Moment{"", "post_rollout", "begin"}}) {
    SCOPED_TRACE(m.host + " " + m.step + " " + m.phase);
    const std::string version = "v" + std::to_string(2 + n++);
    auto args = Args(version);
    args.insert(args.end(), {"--output", "json"});
    auto r = StreamSallyport(args, [&](const std::string& line) {
      auto j = json::parse(line, nullptr, false);
      return !j.is_discarded() && j.value("event", "") == "step" && j.value("host", "") == m.host &&
             j.value("step", "") == m.step && j.value("phase", "") == m.phase;
    });
    ASSERT_EQ(r.exit_code, 137) << "not killed:\n" << r.out;
    auto resumed = RunSallyport({"rollout", "resume", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml",
                                 "-d", "integration", "--store", store_});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
    ExpectAllUp();
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), version) << "app" << i;
  }
  std::set<std::string> pre, post;
  for (const auto& k : Keys("/suspend")) pre.insert(k.substr(0, k.find('/')));
  for (const auto& k : Keys("/resume")) post.insert(k.substr(0, k.find('/')));
  EXPECT_EQ(Keys("/suspend").size(), 4u);
  EXPECT_EQ(Keys("/resume").size(), 4u);
  EXPECT_EQ(pre, post) << "every rollout's pre has its post, and no more";
  std::printf("4 rollouts (3 killed with -9 and resumed): %zu requests to the receiver, %zu distinct pre keys, "
              "%zu distinct post keys\n", receiver_.Calls().size(), Keys("/suspend").size(), Keys("/resume").size());
}

}  // namespace
}  // namespace sp::test
