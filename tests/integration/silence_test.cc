// Alert silences against a real Alertmanager (Debian's 0.25, on loopback):
// the adapter's calls (make, find by marker, extend in place, expire), and
// the real CLI's rollout with a silence in its inventory — made before the
// first host with the expected matchers, extended while the rollout runs,
// expired whatever the outcome, adopted (never made twice) by a resume
// after kill -9, and an Alertmanager that is down stops the rollout before
// any host (the default policy) or only warns (on_error: warn).
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <set>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "hooks/alertmanager_silencer.h"
#include "support/alertmanager_fixture.h"
#include "support/process_rollout_fixture.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

class AlertmanagerSilencerIT : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    am_ = std::make_unique<AlertmanagerFixture>(*dir_ / "am");
    ASSERT_TRUE(am_->Start()) << am_->LogTail();
    spec_.url = am_->url();
    spec_.timeout_ms = 3000;
  }
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<AlertmanagerFixture> am_;
  SilenceSpec spec_;
  AlertmanagerSilencer silencer_{RealClock::Instance()};
};

TEST_F(AlertmanagerSilencerIT, MakesFindsExtendsInPlaceAndExpiresASilence) {
  const int64_t now = RealClock::Instance().WallMs();
  Silence s;
  s.matchers = {{"release", "web"}, {"host", "app1|app2\\.x", true}, {"severity", "info", false, false}};
  s.created_by = "sallyport test";
  s.comment = "rollout r-1 [sallyport-rollout=r-1#1]";
  s.ends_at_ms = now + 60'000;
  auto id = silencer_.Put(spec_, s);
  ASSERT_TRUE(id) << id.error().message;

  auto found = silencer_.Find(spec_, "[sallyport-rollout=r-1#1]");
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  const Silence& got = found->front();
  EXPECT_EQ(got.id, *id);
  EXPECT_EQ(got.state, "active");
  ASSERT_EQ(got.matchers.size(), 3u);
  std::set<std::string> ms;
  for (const auto& m : got.matchers) ms.insert(m.name + (m.equal ? "=" : "!") + (m.regex ? "~" : "") + m.value);
  EXPECT_EQ(ms, (std::set<std::string>{"release=web", "host=~app1|app2\\.x", "severity!info"}));
  EXPECT_NEAR(static_cast<double>(got.ends_at_ms), static_cast<double>(now + 60'000), 1000.0);
  EXPECT_TRUE(silencer_.Find(spec_, "[sallyport-rollout=r-1#2]")->empty()) << "another round's marker";

  // Extended: the same silence (its id kept), ending later.
  Silence longer = got;
  longer.ends_at_ms = now + 120'000;
  auto id2 = silencer_.Put(spec_, longer);
  ASSERT_TRUE(id2) << id2.error().message;
  EXPECT_EQ(*id2, *id) << "updated in place";
  found = silencer_.Find(spec_, "[sallyport-rollout=r-1#1]");
  ASSERT_EQ(found->size(), 1u);
  EXPECT_NEAR(static_cast<double>(found->front().ends_at_ms), static_cast<double>(now + 120'000), 1000.0);

  ASSERT_TRUE(silencer_.Expire(spec_, *id));
  EXPECT_TRUE(silencer_.Find(spec_, "[sallyport-rollout=r-1#1]")->empty());
  EXPECT_TRUE(silencer_.Expire(spec_, *id)) << "expiring it again is no error";
  EXPECT_EQ(am_->SilencesWith("r-1#1]", "expired").size(), 1u);
  EXPECT_EQ(am_->Silences().size(), 1u) << "no other silence was made:\n" << am_->Silences().dump(1);
}

TEST_F(AlertmanagerSilencerIT, AnAlertmanagerThatIsDownFailsWithinTheTimeout) {
  am_->Stop();
  spec_.timeout_ms = 700;
  const int64_t t0 = RealClock::Instance().MonotonicMs();
  auto found = silencer_.Find(spec_, "x");
  const int64_t took = RealClock::Instance().MonotonicMs() - t0;
  ASSERT_FALSE(found);
  EXPECT_THAT(found.error().message, HasSubstr("alertmanager GET " + am_->url() + "/api/v2/silences"));
  EXPECT_LT(took, 1700);
  std::printf("alertmanager down: failed after %lld ms: %s\n", static_cast<long long>(took),
              found.error().message.c_str());
}

// The real CLI with a silence (and a slow first host, so that it outlives
// one extension period) in its inventory.
class SilencedRolloutTest : public ProcessRolloutTest {
 protected:
  void SetUp() override {
    ProcessRolloutTest::SetUp();
    am_ = std::make_unique<AlertmanagerFixture>(*dir_ / "am");
    ASSERT_TRUE(am_->Start()) << am_->LogTail();
    WriteHooks("abort");
  }
  void WriteHooks(const std::string& on_error) {
    const std::string hooks =
        "        hooks:\n"
        "          silence: {alertmanager: '" + am_->url() + "', duration: 10s, timeout: 2s, on_error: " + on_error +
        "}\n"
        "          pre_host:\n"
        "            - {name: slow-first, command: [sh, -c, '[ \"$SALLYPORT_HOST\" != app1 ] || sleep 4']}\n";
    std::string inv = ReadFile(*dir_ / "inventory.yml");
    if (const size_t old = inv.find("        hooks:\n"); old != std::string::npos) {
      inv.erase(old, inv.find("']}\n", old) + 4 - old);
    }
    const std::string at = "        network: local\n";
    inv.insert(inv.find(at) + at.size(), hooks);
    WriteFile(*dir_ / "inventory.yml", inv);
  }
  static std::string RolloutIdOf(const std::string& out) {
    for (size_t at = 0; (at = out.find("\"rollout\":\"", at)) != std::string::npos;) {
      at += 11;
      return out.substr(at, out.find('"', at) - at);
    }
    return "";
  }
  std::vector<json> Of(const std::string& rollout, const std::string& state = "") {
    return am_->SilencesWith("[sallyport-rollout=" + rollout + "#", state);
  }
  std::unique_ptr<AlertmanagerFixture> am_;
};

TEST_F(SilencedRolloutTest, ASilenceWithItsMatchersCoversTheRolloutIsExtendedAndExpiresWhateverTheOutcome) {
  auto args = Args("v1");
  args.insert(args.end(), {"--output", "json"});
  std::string rollout;
  std::vector<json> during;
  int64_t seen_at = 0;
  auto r = StreamSallyport(args, [&](const std::string& line) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return false;
    if (rollout.empty()) rollout = j.value("rollout", "");
    if (j.value("event", "") == "step" && j.value("host", "") == "app2" && j.value("step", "") == "drain" &&
        j.value("phase", "") == "begin") {
      during = Of(rollout);
      seen_at = RealClock::Instance().WallMs();
    }
    return false;
  });
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(during.size(), 1u) << "one silence while app2 rolls: " << am_->Silences().dump(1);
  const json& s = during.front();
  EXPECT_EQ(s["status"]["state"], "active");
  std::set<std::string> ms;
  for (const auto& m : s["matchers"]) {
    ms.insert(m["name"].get<std::string>() + (m["isRegex"].get<bool>() ? "=~" : "=") + m["value"].get<std::string>());
  }
  EXPECT_EQ(ms, (std::set<std::string>{"release=web", "deployment=integration", "host=~app1|app2|app3"}));
  const int64_t starts = ParseRfc3339Ms(s["startsAt"]), ends = ParseRfc3339Ms(s["endsAt"]);
  EXPECT_GT(ends - starts, 10'500) << "extended past its first 10 s while app1's 4 s hook ran";
  EXPECT_LE(ends - seen_at, 10'500) << "never more than its duration ahead";
  const auto after = Of(rollout);
  ASSERT_EQ(after.size(), 1u) << "no other silence was made";
  EXPECT_EQ(after.front()["status"]["state"], "expired") << "expired at its end";
  EXPECT_THAT(r.out, HasSubstr("\"step\":\"unsilence\""));
  std::printf("silence %s: %s, extended to %lld ms after its start, expired at the end\n",
              after.front()["id"].get<std::string>().c_str(), ms.begin()->c_str(),
              static_cast<long long>(ends - starts));

  // A failed host (app2's health): restored, and the silence expired all the same.
  WriteConfig("bad.yml", "      SAMPLE_HEALTH_FAIL_PORTS: \"" + std::to_string(ports_[1]) + "\"\n");
  auto bad = RunSallyport(Args("v2", "bad.yml"));
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  const std::string failed = RolloutIdOf(RunSallyport({"rollout", "history", "--store", store_, "-d", "integration",
                                                       "--output", "json"}).out);
  EXPECT_EQ(VersionOn(2), "v1") << "restored";
  size_t active = 0;
  for (const auto& x : am_->SilencesWith("[sallyport-rollout=")) active += x["status"]["state"] != "expired";
  EXPECT_EQ(active, 0u) << am_->Silences().dump(1);
  EXPECT_EQ(am_->Silences().size(), 2u) << "one silence per rollout";
}

TEST_F(SilencedRolloutTest, KilledWithItsSilenceMadeThenResumedTheResumeAdoptsItAndExpiresIt) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  int n = 0;
  for (const auto& [host, step, phase] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"", "silence", "end"}, {"app2", "stop", "begin"}}) {
    SCOPED_TRACE(host + " " + step + " " + phase);
    const std::string version = "v" + std::to_string(2 + n++);
    auto args = Args(version);
    args.insert(args.end(), {"--output", "json"});
    std::string rollout;
    auto r = StreamSallyport(args, [&](const std::string& line) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_discarded()) return false;
      if (rollout.empty()) rollout = j.value("rollout", "");
      return j.value("event", "") == "step" && j.value("host", "") == host && j.value("step", "") == step &&
             j.value("phase", "") == phase;
    });
    ASSERT_EQ(r.exit_code, 137) << "not killed:\n" << r.out;
    ASSERT_EQ(Of(rollout, "active").size(), 1u) << "the dead rollout's silence is still there";
    auto resumed = RunSallyport({"rollout", "resume", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml",
                                 "-d", "integration", "--store", store_});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
    EXPECT_THAT(resumed.out, HasSubstr("(adopted)"));
    ExpectAllUp();
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), version) << "app" << i;
    const auto all = Of(rollout);
    ASSERT_EQ(all.size(), 1u) << "adopted, never made twice: " << am_->Silences().dump(1);
    EXPECT_EQ(all.front()["status"]["state"], "expired");
  }
  EXPECT_EQ(am_->Silences().size(), 3u) << "one silence per rollout, expired";
  std::printf("3 rollouts (2 killed with -9 and resumed): %zu silences, none active\n", am_->Silences().size());
}

TEST_F(SilencedRolloutTest, AnAlertmanagerThatIsDownStopsTheRolloutBeforeAnyHostUnlessItsPolicyIsWarn) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  am_->Stop();
  auto r = RunSallyport(Args("v2"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out + r.err, HasSubstr("silence: alertmanager"));
  EXPECT_THAT(r.out + r.err, HasSubstr("no host was touched"));
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v1") << "app" << i;

  WriteHooks("warn");
  auto w = RunSallyport(Args("v2"));
  EXPECT_EQ(w.exit_code, 0) << w.out << w.err;
  EXPECT_THAT(w.out + w.err, HasSubstr("rolling without a silence"));
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v2") << "app" << i;
  ExpectAllUp();
}

}  // namespace
}  // namespace sp::test
