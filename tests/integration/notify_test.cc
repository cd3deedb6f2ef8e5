// Notifications end to end: a real `sallyport server` on the store the CLI's
// rollouts journal into, channels added with `notify add`, a local receiver
// standing for a chat's incoming webhook and a team's signed webhook: the
// right events in order with their fields, a valid HMAC (a forged one told
// apart), retries with backoff, a give-up in the rollout's record, and no
// credential in any answer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/hmac.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/hook_receiver.h"
#include "support/process_rollout_fixture.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

// What a receiver computes to check a delivery: "sha256=" + hex HMAC-SHA256.
std::string Signature(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

class NotifyTest : public ProcessRolloutTest {
 protected:
  void AddChannel(const std::vector<std::string>& args) {
    std::vector<std::string> all{"notify", "add"};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"--store", store_});
    auto r = RunSallyport(all);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  void StartServer() {
    server_ = std::make_unique<ServerProcess>(*dir_, store_, "server",
                                              std::vector<std::string>{"--notify-attempts", "3", "--notify-backoff",
                                                                       "200ms", "--public-url", "https://sp.example"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
  }
  std::vector<ReceivedCall> On(const std::string& path) {
    std::vector<ReceivedCall> out;
    for (const auto& c : receiver_.Calls()) {
      if (c.path == path) out.push_back(c);
    }
    return out;
  }
  std::string LastRollout() {
    auto list = RunSallyport({"rollout", "list", "--store", store_, "--output", "json"});
    const json j = json::parse(list.out, nullptr, false);
    return j.is_object() && !j["rollouts"].empty() ? j["rollouts"][0].value("id", "") : "";
  }
  HookReceiver receiver_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(NotifyTest, EventsReachAChatAndASignedWebhookInOrderWithTheirFields) {
  WriteFile(*dir_ / "chat-url", receiver_.Url("/chat/T000/B000/s3cret-chat-token") + "\n", 0600);
  WriteFile(*dir_ / "hook-url", receiver_.Url("/hook"), 0600);
  WriteFile(*dir_ / "hook-secret", "k3y-for-hmac", 0600);
  AddChannel({"chat", "--kind", "slack", "--url-file", *dir_ / "chat-url", "--deployment", "integration"});
  AddChannel({"team", "--kind", "webhook", "--url-file", *dir_ / "hook-url", "--secret-file", *dir_ / "hook-secret",
              "--events", "rollout.*"});
  StartServer();
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  const std::string ok_id = LastRollout();
  WriteConfig("bad.yml", "      SAMPLE_HEALTH_FAIL_PORTS: \"" + std::to_string(ports_[1]) + "\"\n");
  auto bad = RunSallyport(Args("v2", "bad.yml"));
  ASSERT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  const std::string bad_id = LastRollout();
  ASSERT_TRUE(WaitFor([&] { return On("/hook").size() >= 5; }, std::chrono::seconds(20)))
      << receiver_.Calls().size() << " calls\n" << server_->Log();
  std::vector<std::string> chat, events;
  for (const auto& c : On("/chat/T000/B000/s3cret-chat-token")) chat.push_back(json::parse(c.body).at("text"));
  for (const auto& c : On("/hook")) events.push_back(c.event);
  EXPECT_THAT(events, ::testing::ElementsAre("rollout.started", "rollout.succeeded", "rollout.started",
                                             "rollout.host_restored", "rollout.failed"));
  ASSERT_EQ(chat.size(), 5u);
  EXPECT_THAT(chat[0], HasSubstr("Rollout " + ok_id + ": sample v1 to web/integration started https://sp.example/v1/rollouts/" + ok_id));
  EXPECT_THAT(chat[1], HasSubstr("is live on web/integration in "));
  EXPECT_THAT(chat[3], HasSubstr("host app2 of web/integration failed and was restored"));
  EXPECT_THAT(chat[4], HasSubstr("Rollout " + bad_id + " of sample v2 to web/integration FAILED after"));
  EXPECT_THAT(chat[4], HasSubstr("https://sp.example/v1/rollouts/" + bad_id));
  // The signed webhook: its fields, and a signature only the key's holder could make.
  const auto failed = On("/hook").back();
  const json body = json::parse(failed.body);
  EXPECT_EQ(body.at("fields").at("host"), "app2");
  EXPECT_EQ(body.at("fields").at("step"), "health");
  EXPECT_THAT(body.at("fields").at("cause").get<std::string>(), HasSubstr("HTTP 500"));
  EXPECT_EQ(body.at("fields").at("version"), "v2");
  EXPECT_EQ(body.at("fields").at("link"), "https://sp.example/v1/rollouts/" + bad_id);
  EXPECT_EQ(failed.delivery, "team:" + bad_id + "/failed");
  for (const auto& c : On("/hook")) EXPECT_EQ(c.signature, Signature("k3y-for-hmac", c.body)) << c.body;
  std::string forged = failed.body;
  forged.replace(forged.find("\"v2\""), 4, "\"v9\"");
  EXPECT_NE(failed.signature, Signature("k3y-for-hmac", forged)) << "a forged body fails the receiver's check";
  EXPECT_NE(failed.signature, Signature("another-key", failed.body));
  // The records: each delivered, in the rollout's record; no credential anywhere.
  auto show = RunSallyport({"rollout", "show", bad_id, "--store", store_});
  EXPECT_THAT(show.out, HasSubstr("notifications:"));
  EXPECT_THAT(show.out, ::testing::ContainsRegex("chat +rollout.failed +delivered +1 attempt"));
  EXPECT_THAT(show.out, ::testing::ContainsRegex("team +rollout.host_restored +delivered"));
  auto list = RunSallyport({"notify", "list", "--store", store_});
  EXPECT_THAT(list.out + show.out + server_->Log(), Not(HasSubstr("s3cret-chat-token")));
  EXPECT_THAT(list.out + show.out + server_->Log(), Not(HasSubstr("k3y-for-hmac")));
  std::printf("chat: %zu messages; webhook: %zu signed deliveries; last: %s\n", chat.size(), On("/hook").size(),
              chat.back().c_str());
}

TEST_F(NotifyTest, AFailingReceiverIsRetriedWithBackoffAndAGiveUpIsInTheRolloutsRecord) {
  receiver_.fail_first = 1;  // The first delivery (of all) gets a 500.
  WriteFile(*dir_ / "flaky-url", receiver_.Url("/flaky"), 0600);
  WriteFile(*dir_ / "dead-url", "http://127.0.0.1:" + std::to_string(FreePort()) + "/dead-s3cret-path", 0600);
  AddChannel({"flaky", "--kind", "slack", "--url-file", *dir_ / "flaky-url", "--events", "rollout.succeeded"});
  AddChannel({"dead", "--kind", "slack", "--url-file", *dir_ / "dead-url", "--events", "rollout.succeeded"});
  StartServer();
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  const std::string id = LastRollout();
  CliResult show;
  ASSERT_TRUE(WaitFor(
      [&] {
        show = RunSallyport({"rollout", "show", id, "--store", store_});
        return show.out.find("gave_up") != std::string::npos && show.out.find("flaky") != std::string::npos &&
               show.out.find("delivered") != std::string::npos;
      },
      std::chrono::seconds(20)))
      << show.out << server_->Log();
  EXPECT_THAT(show.out, ::testing::ContainsRegex("flaky +rollout.succeeded +delivered +2 attempt"));
  EXPECT_THAT(show.out, ::testing::ContainsRegex("dead +rollout.succeeded +gave_up +3 attempt"));
  EXPECT_THAT(show.out, HasSubstr("Couldn't connect") ) << show.out;
  EXPECT_THAT(show.out + server_->Log(), Not(HasSubstr("dead-s3cret-path")));
  ASSERT_EQ(On("/flaky").size(), 2u) << "one 500, then delivered";
  auto j = RunSallyport({"rollout", "show", id, "--store", store_, "--output", "json"});
  const json doc = json::parse(j.out);
  for (const auto& n : doc.at("notifications")) {
    if (n.at("channel") == "dead") {
      EXPECT_EQ(n.at("state"), "gave_up");
      EXPECT_GE(n.at("updated_ms").get<int64_t>() - n.at("created_ms").get<int64_t>(), 200 + 400)
          << "backed off between its attempts";
    }
  }
  std::printf("%s", show.out.substr(show.out.find("notifications:")).c_str());
}

// A pre_rollout hook that fails (autoscaling could not be suspended): no
// host touched, and the chat is told with the hook's output.
TEST_F(NotifyTest, AFailingPreRolloutHookIsToldWithItsOutput) {
  std::string inv = ReadFile(*dir_ / "inventory.yml");
  const std::string at = "        network: local\n";
  inv.insert(inv.find(at) + at.size(),
             "        hooks:\n          pre_rollout:\n"
             "            - {name: suspend, command: [sh, -c, 'echo AccessDenied: not authorized to SuspendProcesses >&2; "
             "exit 1']}\n");
  WriteFile(*dir_ / "inventory.yml", inv);
  WriteFile(*dir_ / "chat-url", receiver_.Url("/chat"), 0600);
  AddChannel({"chat", "--kind", "slack", "--url-file", *dir_ / "chat-url", "--events", "rollout.failed"});
  StartServer();
  auto r = RunSallyport(Args("v1"));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(RunningOn(i), 0) << "app" << i << " touched";
  ASSERT_TRUE(WaitFor([&] { return !On("/chat").empty(); }, std::chrono::seconds(20))) << server_->Log();
  const std::string text = json::parse(On("/chat").front().body).at("text");
  EXPECT_THAT(text, HasSubstr("FAILED"));
  EXPECT_THAT(text, HasSubstr("AccessDenied: not authorized to SuspendProcesses"));
  EXPECT_THAT(text, HasSubstr("no host was touched"));
  std::printf("told: %s\n", text.c_str());
}

// A secret value a rollout was handed never reaches a notification: the
// failing host's health answer carries it (the sample app says its
// APP_VERSION, here read from a secret file), and the chat, the signed
// webhook, the rollout's record and the CLI's output show *** instead. The
// value is in none of the server's log or the store.
TEST_F(NotifyTest, ASecretInAFailedHostsCauseIsMaskedInEveryNotification) {
  constexpr const char* kSecret = "n0tify-s3cret-91c";
  WriteFile(*dir_ / "app-secret", kSecret, 0600);
  WriteFile(*dir_ / "chat-url", receiver_.Url("/chat"), 0600);
  WriteFile(*dir_ / "hook-url", receiver_.Url("/hook"), 0600);
  WriteFile(*dir_ / "hook-secret", "k3y-for-hmac", 0600);
  AddChannel({"chat", "--kind", "slack", "--url-file", *dir_ / "chat-url"});
  AddChannel({"team", "--kind", "webhook", "--url-file", *dir_ / "hook-url", "--secret-file", *dir_ / "hook-secret",
              "--events", "rollout.*"});
  StartServer();
  WriteConfig("secret.yml", "      APP_VERSION: {file: " + *dir_ / "app-secret" + "}\n      SAMPLE_HEALTH_FAIL_PORTS: \"" +
                                std::to_string(ports_[0]) + "\"\n");
  auto bad = RunSallyport(Args("v2", "secret.yml"));
  ASSERT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  const std::string id = LastRollout();
  // The failure's delivery (deliveries of one rollout may arrive in any order).
  json failed;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& c : On("/hook")) {
          if (c.event == "rollout.failed") failed = json::parse(c.body, nullptr, false);
        }
        return failed.is_object() && On("/chat").size() >= 3;
      },
      std::chrono::seconds(20)))
      << receiver_.Calls().size() << " calls\n" << server_->Log();
  std::string told;
  for (const auto& c : receiver_.Calls()) told += c.body + "\n";
  EXPECT_EQ(told.find(kSecret), std::string::npos) << told;
  EXPECT_THAT(failed.at("fields").at("cause").get<std::string>(), HasSubstr("unhealthy (version ***)"));
  auto show = RunSallyport({"rollout", "show", id, "--store", store_, "--output", "json"});
  EXPECT_THAT(show.out, HasSubstr("unhealthy (version ***)"));
  EXPECT_THAT(bad.out, HasSubstr("***"));
  const std::string seen = bad.out + bad.err + show.out + server_->Log() + ReadFile(store_) +
                           (std::filesystem::exists(store_ + "-wal") ? ReadFile(store_ + "-wal") : "");
  EXPECT_EQ(seen.find(kSecret), std::string::npos);
  std::printf("the webhook's cause: %s\n", failed.at("fields").at("cause").get<std::string>().c_str());
}

}  // namespace
}  // namespace sp::test
