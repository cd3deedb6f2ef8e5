// The agent protocol's first part over real HTTP on loopback: a `sallyport
// server` process, tokens made with the CLI, agents as HTTP clients.
#include <httplib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

class AgentApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dev_token_ = Token("dev-agent", {"network=dev"});
    prod_token_ = Token("prod-agent", {"network=prod"});
    daemon_ = Daemon({BuildBinary("sallyport"), "server", "--store", dir_ / "state.db", "--listen", "127.0.0.1:0"},
                     dir_ / "server.log");
    auto ready = WaitForStart(daemon_, [&] { return ReadFile(dir_ / "server.log").find("listening on") != std::string::npos; },
                              std::chrono::seconds(10));
    ASSERT_EQ(ready, StartWait::kReady) << ReadFile(dir_ / "server.log");
    const std::string log = ReadFile(dir_ / "server.log");
    port_ = std::atoi(log.c_str() + log.find("http://127.0.0.1:") + 17);
  }
  std::string Token(const std::string& name, const std::vector<std::string>& labels) {
    std::vector<std::string> args{"agent", "token", "create", "--name", name, "--store", dir_ / "state.db"};
    for (const auto& l : labels) args.insert(args.end(), {"--label", l});
    auto r = RunSallyport(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Trim(r.out);
  }
  httplib::Client Client(const std::string& token = "") {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(15, 0);
    if (!token.empty()) c.set_default_headers({{"Authorization", "Bearer " + token}});
    return c;
  }
  json Enqueue(const std::string& payload, const std::string& network) {
    auto r = Client().Post("/v1/jobs", json{{"kind", "rollout"}, {"payload", payload}, {"labels", {{"network", network}}}}.dump(),
                           "application/json");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    return r ? json::parse(r->body) : json();
  }
  static json Body(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

  TempDir dir_{"sp-agent-api"};
  Daemon daemon_;
  int port_ = 0;
  std::string dev_token_, prod_token_;
};

TEST_F(AgentApiTest, WrongTokenIs401AndLabelsATokenIsNotBoundToAre403) {
  EXPECT_EQ(dev_token_.size(), 64u) << "32 random bytes, hex";
  for (const char* f : {"state.db", "state.db-wal"}) {
    EXPECT_EQ(ReadFile(dir_ / f).find(dev_token_), std::string::npos) << "only the token's hash is stored (" << f << ")";
  }
  auto none = Client().Post("/v1/agent/claim", "", "application/json");
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(Body(none)["error"]["code"], "unauthenticated");
  auto bogus = Client(std::string(64, 'a')).Post("/v1/agent/claim", "", "application/json");
  EXPECT_EQ(bogus->status, 401);

  auto overreach = Client(dev_token_).Post("/v1/agent/register",
                                           json{{"name", "x"}, {"labels", {{"network", "prod"}}}}.dump(), "application/json");
  EXPECT_EQ(overreach->status, 403);
  EXPECT_THAT(Body(overreach)["error"]["message"].get<std::string>(), HasSubstr("not bound to label network=prod"));
  auto ok = Client(dev_token_).Post("/v1/agent/register", json{{"name", "x"}, {"labels", {{"network", "dev"}}}}.dump(),
                                    "application/json");
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(Body(ok)["name"], "dev-agent");
}

TEST_F(AgentApiTest, EachAgentClaimsOnlyWorkForItsTokensLabels) {
  Enqueue("prod rollout", "prod");
  Enqueue("dev rollout", "dev");
  auto dev = Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json");
  ASSERT_EQ(dev->status, 200) << dev->body;
  EXPECT_EQ(Body(dev)["payload"], "dev rollout");
  auto dev_again = Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json");
  EXPECT_EQ(dev_again->status, 204) << "the prod job is not the dev agent's";
  auto prod = Client(prod_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json");
  ASSERT_EQ(prod->status, 200) << prod->body;
  EXPECT_EQ(Body(prod)["payload"], "prod rollout");
  EXPECT_EQ(Body(prod)["owner"], "prod-agent");
}

TEST_F(AgentApiTest, ALongPollingClaimReturnsWhenAJobArrives) {
  json got;
  std::chrono::steady_clock::time_point answered;
  std::thread poller([&] {
    auto r = Client(dev_token_).Post("/v1/agent/claim?wait_ms=10000", "", "application/json");
    answered = std::chrono::steady_clock::now();
    if (r && r->status == 200) got = json::parse(r->body);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Let the claim start waiting (then it must wait).
  const auto enqueued = std::chrono::steady_clock::now();
  Enqueue("late job", "dev");
  poller.join();
  EXPECT_EQ(got.value("payload", ""), "late job");
  EXPECT_LT(answered - enqueued, std::chrono::seconds(5)) << "answered only when the long poll ran out";
}

TEST_F(AgentApiTest, LeaseEventsAreFencedAndMalformedOnesChangeNothing) {
  Enqueue("job", "dev");
  auto claimed = Body(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0&lease_ms=30000", "", "application/json"));
  const int64_t id = claimed["id"], epoch = claimed["epoch"];
  const std::string base = "/v1/agent/jobs/" + std::to_string(id);
  auto c = Client(dev_token_);
  EXPECT_EQ(c.Post(base + "/heartbeat", json{{"epoch", epoch}}.dump(), "application/json")->status, 200);
  auto stale = c.Post(base + "/complete", json{{"epoch", epoch + 1}, {"result", "x"}}.dump(), "application/json");
  EXPECT_EQ(stale->status, 409);
  EXPECT_THAT(stale->body, HasSubstr("lease lost"));
  auto other = Client(prod_token_).Post(base + "/complete", json{{"epoch", epoch}}.dump(), "application/json");
  EXPECT_EQ(other->status, 409) << "another agent's lease";
  for (const std::string bad : {"{not json", R"({"result":"x"})", R"({"epoch":"1"})"}) {
    auto r = c.Post(base + "/complete", bad, "application/json");
    EXPECT_EQ(r->status, 400) << bad << ": " << r->body;
  }
  EXPECT_EQ(c.Post(base + "/fail", json{{"epoch", epoch}}.dump(), "application/json")->status, 400) << "no error text";
  auto job = Body(Client().Get("/v1/jobs/" + std::to_string(id)));
  EXPECT_EQ(job["state"], "leased") << "malformed events changed the job";
  auto listed = RunSallyport({"agent", "list", "--store", dir_ / "state.db"});
  EXPECT_THAT(listed.out, HasSubstr("dev-agent")) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr("network=dev")) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr("job " + std::to_string(id))) << listed.out;
  auto done = c.Post(base + "/complete", json{{"epoch", epoch}, {"result", "ok"}}.dump(), "application/json");
  ASSERT_EQ(done->status, 200) << done->body;
  EXPECT_EQ(Body(done)["state"], "succeeded");
  auto after = RunSallyport({"agent", "list", "--store", dir_ / "state.db"});
  EXPECT_THAT(after.out, HasSubstr("job -")) << after.out;
  auto api = Body(Client().Get("/v1/agents"));
  ASSERT_EQ(api["agents"].size(), 1u) << api.dump();
  EXPECT_EQ(api["agents"][0]["name"], "dev-agent");
  EXPECT_EQ(api["agents"][0]["labels"]["network"], "dev");
  EXPECT_EQ(api["agents"][0]["current_job"], 0);
}

TEST_F(AgentApiTest, QueueCliListsCancelsAndRetriesJobs) {
  const int64_t id = Enqueue("job", "dev")["id"];
  auto list = RunSallyport({"queue", "list", "--store", dir_ / "state.db"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("rollout  queued"));
  ASSERT_EQ(RunSallyport({"queue", "cancel", std::to_string(id), "--store", dir_ / "state.db"}).exit_code, 0);
  EXPECT_EQ(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json")->status, 204)
      << "a canceled job was claimed";
  auto again = RunSallyport({"queue", "cancel", std::to_string(id), "--store", dir_ / "state.db"});
  EXPECT_EQ(again.exit_code, 3);  // Conflict: already canceled.
  EXPECT_THAT(again.err, HasSubstr("is canceled"));
  ASSERT_EQ(RunSallyport({"queue", "retry", std::to_string(id), "--store", dir_ / "state.db"}).exit_code, 0);
  auto show = RunSallyport({"queue", "show", std::to_string(id), "--store", dir_ / "state.db"});
  EXPECT_THAT(show.out, HasSubstr("\"state\": \"queued\""));
  EXPECT_EQ(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json")->status, 200);
}

}  // namespace
}  // namespace sp::test
