// The agent protocol's first part over real HTTP on loopback: a `sallyport
// server` process, tokens made with the CLI, agents as HTTP clients.
#include <httplib.h>
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/clock.h"
#include "core/text.h"
#include "store/sqlite/sqlite_store.h"
#include "support/cli_runner.h"
#include "support/git_repo.h"
#include "support/server_process.h"
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
    StartServer("server");
  }
  // A server process on the test's store (again after a restart).
  void StartServer(const std::string& name, const std::vector<std::string>& extra = {}) {
    server_.reset();
    server_ = std::make_unique<ServerProcess>(dir_, dir_ / "state.db", name, extra);
    ASSERT_TRUE(server_->ready()) << server_->Log();
    port_ = server_->port();
  }
  std::string Token(const std::string& name, const std::vector<std::string>& labels) {
    std::vector<std::string> args{"token", "create", "--name", name, "--store", dir_ / "state.db", "--local"};
    for (const auto& l : labels) args.insert(args.end(), {"--label", l});
    auto r = RunSallyport(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Trim(r.out);
  }
  // With an agent's `token`, else with the test's admin token.
  httplib::Client Client(const std::string& token = "") {
    httplib::Client c = Anonymous();
    c.set_default_headers({{"Authorization", token.empty() ? Bearer() : "Bearer " + token}});
    return c;
  }
  httplib::Client Anonymous() {
    httplib::Client c = server_->Client();
    c.set_read_timeout(15, 0);
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
  std::unique_ptr<ServerProcess> server_;
  int port_ = 0;
  std::string dev_token_, prod_token_;
};

TEST_F(AgentApiTest, WrongTokenIs401AndLabelsATokenIsNotBoundToAre403) {
  EXPECT_EQ(dev_token_.size(), 64u) << "32 random bytes, hex";
  for (const char* f : {"state.db", "state.db-wal"}) {
    EXPECT_EQ(ReadFile(dir_ / f).find(dev_token_), std::string::npos) << "only the token's hash is stored (" << f << ")";
  }
  auto none = Anonymous().Post("/v1/agent/claim", "", "application/json");
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

// Claims once looked at the best 256 jobs only, then filtered by labels:
// 10,000 high-priority jobs for another network starved this one's agent.
// (How long the claim takes: bench_queue_cycles.)
TEST_F(AgentApiTest, TenThousandJobsNoAgentHereCanTakeHideNoneItCan) {
  {
    auto store = SqliteStore::Open(dir_ / "state.db");  // A second connection, as a busy server would see.
    ASSERT_TRUE(store) << store.error().message;
    JobSpec other;
    other.kind = "rollout";
    other.payload = "for another network";
    other.labels = {{"network", "elsewhere"}};
    other.priority = 100;
    const int64_t now = RealClock::Instance().WallMs() - 1000;
    for (int i = 0; i < 10'000; ++i) ASSERT_TRUE((*store)->Enqueue(other, now));
  }
  Enqueue("dev rollout", "dev");
  auto dev = Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json");
  ASSERT_EQ(dev->status, 200) << dev->body;
  EXPECT_EQ(Body(dev)["payload"], "dev rollout");
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

TEST_F(AgentApiTest, LogLinesAreKeptOnlyFromTheLeaseHolderAndAMalformedBatchWritesNothing) {
  Enqueue("job", "dev");
  auto claimed = Body(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0&lease_ms=30000", "", "application/json"));
  const int64_t id = claimed["id"], epoch = claimed["epoch"];
  const std::string base = "/v1/agent/jobs/" + std::to_string(id);
  const std::string log_url = "/v1/jobs/" + std::to_string(id) + "/log";
  auto c = Client(dev_token_);
  auto lines = [](const std::string& text) {
    return json::array({{{"ts", 1}, {"step", "rollout"}, {"err", false}, {"text", text}},
                        {{"ts", 2}, {"step", "agent"}, {"err", true}, {"text", "multi\nline\ttext"}}});
  };
  auto sent = c.Post(base + "/log", json{{"epoch", epoch}, {"lines", lines("first batch")}}.dump(), "application/json");
  ASSERT_EQ(sent->status, 204) << sent->body;
  EXPECT_EQ(Client().Get(log_url)->body, "1\trollout\tout\tfirst batch\n2\tagent\terr\tmulti line text\n")
      << "one line per line, tabs and newlines inside a line flattened";
  EXPECT_EQ(c.Post(base + "/log", json{{"epoch", epoch + 1}, {"lines", lines("stale")}}.dump(), "application/json")->status,
            409);
  EXPECT_EQ(Client(prod_token_).Post(base + "/log", json{{"epoch", epoch}, {"lines", lines("other")}}.dump(),
                                      "application/json")->status,
            409);
  EXPECT_EQ(Anonymous().Post(base + "/log", json{{"epoch", epoch}, {"lines", lines("anon")}}.dump(), "application/json")->status,
            401);
  for (const json& bad : {json{{"epoch", epoch}},
                          json{{"epoch", epoch}, {"lines", "x"}},
                          json{{"epoch", epoch}, {"lines", json::array({{{"text", "ok"}}, {{"text", 3}}})}},
                          json{{"epoch", epoch}, {"lines", json::array({{{"text", "ok"}}, {{"text", "x"}, {"err", "yes"}}})}}}) {
    auto r = c.Post(base + "/log", bad.dump(), "application/json");
    EXPECT_EQ(r->status, 400) << bad.dump() << ": " << r->body;
  }
  auto log = Client().Get(log_url)->body;
  EXPECT_THAT(log, HasSubstr("first batch"));
  for (const std::string refused : {"stale", "other", "anon", "ok"}) {
    EXPECT_EQ(log.find(refused), std::string::npos) << refused << " was written: " << log;
  }
  // A follower gets the lines as server-sent events, then the job's end.
  ASSERT_EQ(c.Post(base + "/complete", json{{"epoch", epoch}, {"result", "ok"}}.dump(), "application/json")->status, 200);
  EXPECT_EQ(c.Post(base + "/log", json{{"epoch", epoch}, {"lines", lines("late")}}.dump(), "application/json")->status, 409)
      << "a finished job's log takes no more lines";
  auto followed = Client().Get(log_url + "?follow=1");
  ASSERT_EQ(followed->status, 200);
  EXPECT_THAT(followed->body, HasSubstr("data: 1\trollout\tout\tfirst batch\n\n"));
  EXPECT_THAT(followed->body, HasSubstr("event: end\ndata: succeeded\n\n"));
  auto cli = RunSallyport({"job", "logs", std::to_string(id), "--server", server_->url()});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_THAT(cli.out, HasSubstr("first batch"));
  EXPECT_EQ(Client().Get("/v1/jobs/999999/log")->status, 404);
}

// --builds-on agents: the server queues the build as a job; its records
// and its deploy are taken only from the job's lease holder, for that build.
TEST_F(AgentApiTest, ABuildJobsRecordsAndDeployAreTakenOnlyFromItsLeaseHolder) {
  StartServer("builds-on-agents", {"--builds-on", "agents", "--poll-every", "0"});
  const std::string builder = Token("builder", {"role=builder"});
  const std::string url = server_->url();
  // A remote with one commit on integration (a manual build names a commit its branch holds).
  const std::string remote = dir_ / "svc.git";
  InitRemoteAndWorkingCopy(remote, dir_ / "work");
  WriteFile(dir_ / "work/README", "svc\n");
  Git(dir_ / "work", {"add", "-A"});
  Git(dir_ / "work", {"commit", "-q", "-m", "first"});
  Git(dir_ / "work", {"push", "-q", "origin", "HEAD:refs/heads/integration"});
  const std::string sha = Git(dir_ / "work", {"rev-parse", "HEAD"});
  ASSERT_EQ(RunSallyport({"project", "add", "--name", "svc", "--git", remote, "--store", dir_ / "state.db"}).exit_code, 0);
  auto started = RunSallyport({"build", "start", "svc", "integration", "--sha", sha, "--server", url});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  auto claimed = Body(Client(builder).Post("/v1/agent/claim?wait_ms=10000&lease_ms=30000", "", "application/json"));
  ASSERT_EQ(claimed.value("kind", ""), "build") << claimed.dump();
  const json payload = json::parse(claimed["payload"].get<std::string>());
  const int64_t id = claimed["id"], epoch = claimed["epoch"], build = payload["build_id"];
  EXPECT_EQ(payload["build"]["sha"], sha);
  EXPECT_EQ(payload["git_url"], remote);
  const std::string base = "/v1/agent/jobs/" + std::to_string(id);
  auto c = Client(builder);
  auto post = [&](const json& body) { return c.Post(base + "/build", body.dump(), "application/json")->status; };
  EXPECT_EQ(post({{"epoch", epoch}, {"step", {{"index", 0}, {"name", "checkout"}, {"kind", "checkout"}, {"status", "running"}}}}),
            204);
  EXPECT_EQ(post({{"epoch", epoch}, {"build", {{"author", "Dev"}, {"status", "running"}}}}), 204);
  EXPECT_EQ(post({{"epoch", epoch + 1}, {"build", {{"author", "Stale"}}}}), 409);
  EXPECT_EQ(Client(dev_token_).Post(base + "/build", json{{"epoch", epoch}, {"build", {{"author", "Dev2"}}}}.dump(),
                                    "application/json")->status,
            409);
  for (const json& bad : {json{{"epoch", epoch}}, json{{"epoch", epoch}, {"build", {{"status", "bogus"}, {"author", "X"}}}},
                          json{{"epoch", epoch}, {"build", {{"author", 3}}}}, json{{"epoch", epoch}, {"step", {{"name", "x"}}}}}) {
    EXPECT_EQ(post(bad), 400) << bad.dump();
  }
  auto rec = Body(Client().Get("/v1/builds/" + std::to_string(build)));
  EXPECT_EQ(rec.value("author", ""), "Dev") << rec.dump();
  ASSERT_EQ(rec["steps"].size(), 1u) << rec.dump();
  EXPECT_EQ(rec["steps"][0]["name"], "checkout");
  // The deploy: malformed requests and service files are refused by name.
  auto deploy = [&](const json& body) { return c.Post(base + "/deploy", body.dump(), "application/json"); };
  auto missing = deploy({{"epoch", epoch}, {"release", "web"}, {"deployment", "integration"}, {"artifact", "x@sha256:1"}});
  EXPECT_EQ(missing->status, 400);
  EXPECT_THAT(missing->body, HasSubstr("/config"));
  auto garbage = deploy({{"epoch", epoch}, {"config", "version: [1"}, {"release", "web"}, {"deployment", "integration"},
                         {"artifact", "x@sha256:1"}});
  EXPECT_EQ(garbage->status, 400);
  EXPECT_THAT(garbage->body, HasSubstr("sallyport.yml of build " + std::to_string(build)));
  EXPECT_EQ(deploy({{"epoch", epoch + 1}, {"config", "x"}, {"release", "web"}, {"deployment", "integration"},
                    {"artifact", "x@sha256:1"}})->status,
            409);
  // A rollout job is not a build.
  Enqueue("plan", "dev");
  auto rollout = Body(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json"));
  auto not_build = Client(dev_token_).Post("/v1/agent/jobs/" + std::to_string(rollout.value("id", 0)) + "/build",
                                           json{{"epoch", rollout["epoch"]}, {"build", {{"author", "X"}}}}.dump(), "application/json");
  EXPECT_EQ(not_build->status, 400);
  EXPECT_THAT(not_build->body, HasSubstr("is not a build"));
}

TEST_F(AgentApiTest, QueueCliListsCancelsAndRetriesJobs) {
  const int64_t id = Enqueue("job", "dev")["id"];
  auto list = RunSallyport({"job", "list", "--store", dir_ / "state.db"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("rollout  queued"));
  ASSERT_EQ(RunSallyport({"job", "cancel", std::to_string(id), "--store", dir_ / "state.db"}).exit_code, 0);
  EXPECT_EQ(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json")->status, 204)
      << "a canceled job was claimed";
  auto again = RunSallyport({"job", "cancel", std::to_string(id), "--store", dir_ / "state.db"});
  EXPECT_EQ(again.exit_code, 3);  // Conflict: already canceled.
  EXPECT_THAT(again.err, HasSubstr("is canceled"));
  ASSERT_EQ(RunSallyport({"job", "retry", std::to_string(id), "--store", dir_ / "state.db"}).exit_code, 0);
  auto show = RunSallyport({"job", "show", std::to_string(id), "--store", dir_ / "state.db"});
  EXPECT_THAT(show.out, HasSubstr("\"state\": \"queued\""));
  EXPECT_EQ(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0", "", "application/json")->status, 200);
}


TEST_F(AgentApiTest, AServerRestartLosesNothingCompletesNothingTwiceAndReclaimsDeadAgentsJobs) {
  const int64_t dead_job = Enqueue("claimed by an agent that dies", "dev")["id"];
  const int64_t live_job = Enqueue("claimed by an agent that lives", "dev")["id"];
  const int64_t queued_job = Enqueue("still queued", "dev")["id"];
  auto claim = [&](int64_t lease_ms, int64_t wait_ms) {
    return Body(Client(dev_token_).Post("/v1/agent/claim?wait_ms=" + std::to_string(wait_ms) +
                                            "&lease_ms=" + std::to_string(lease_ms),
                                        "", "application/json"));
  };
  json dying = claim(1000, 0);
  ASSERT_EQ(dying["id"], dead_job);
  json living = claim(60'000, 0);
  ASSERT_EQ(living["id"], live_job);

  server_->daemon().Signal(SIGKILL);  // The server dies with one job queued and two leased.
  server_->daemon().Stop();
  StartServer("server-2");

  auto c = Client(dev_token_);
  const std::string live = "/v1/agent/jobs/" + std::to_string(live_job);
  EXPECT_EQ(c.Post(live + "/heartbeat", json{{"epoch", living["epoch"]}, {"lease_ms", 60'000}}.dump(), "application/json")->status,
            200)
      << "the lease survived the restart";
  EXPECT_EQ(c.Post(live + "/complete", json{{"epoch", living["epoch"]}, {"result", "ok"}}.dump(), "application/json")->status,
            200);
  auto twice = c.Post(live + "/complete", json{{"epoch", living["epoch"]}, {"result", "again"}}.dump(), "application/json");
  EXPECT_EQ(twice->status, 409) << "completed twice";

  // The queued job is still there; the dead agent's job comes back once its
  // lease expires (long poll: the server re-checks expired leases while it
  // waits), with a new epoch.
  json queued = claim(60'000, 0);
  ASSERT_EQ(queued["id"], queued_job) << queued.dump();
  json reclaimed = claim(60'000, 10'000);
  ASSERT_EQ(reclaimed["id"], dead_job) << reclaimed.dump();
  EXPECT_GT(reclaimed["epoch"].get<int64_t>(), dying["epoch"].get<int64_t>()) << "a new epoch";
  const std::string dead = "/v1/agent/jobs/" + std::to_string(dead_job);
  auto late = c.Post(dead + "/complete", json{{"epoch", dying["epoch"]}, {"result", "late"}}.dump(), "application/json");
  EXPECT_EQ(late->status, 409) << "the dead agent's old lease is fenced out";
  EXPECT_EQ(c.Post(dead + "/complete", json{{"epoch", reclaimed["epoch"]}, {"result", "ok"}}.dump(), "application/json")->status,
            200);
  EXPECT_EQ(c.Post("/v1/agent/jobs/" + std::to_string(queued_job) + "/complete",
                   json{{"epoch", queued["epoch"]}, {"result", "ok"}}.dump(), "application/json")
                ->status,
            200);

  auto jobs = Body(Client().Get("/v1/jobs"));
  ASSERT_EQ(jobs["jobs"].size(), 3u) << jobs.dump();
  for (const auto& j : jobs["jobs"]) {
    EXPECT_EQ(j["state"], "succeeded") << j.dump();
    EXPECT_EQ(j["result"], "ok") << j.dump() << ": nothing completed twice, no late result";
  }
  EXPECT_EQ(Body(Client().Get("/v1/jobs/" + std::to_string(dead_job)))["attempts"], 2);
}

TEST_F(AgentApiTest, TheJournalOnTheServerTakesOnlyTheLeaseHoldersWellFormedCallsForItsScope) {
  const json plan = {{"id", "r-1"}, {"stack", "demo"}, {"release", "web"}, {"deployment", "dev"}};
  auto made = Client().Post("/v1/jobs", json{{"kind", "rollout"}, {"payload", plan.dump()}, {"labels", {{"network", "dev"}}}}.dump(),
                            "application/json");
  ASSERT_EQ(made->status, 201);
  json job = Body(Client(dev_token_).Post("/v1/agent/claim?wait_ms=0&lease_ms=30000", "", "application/json"));
  const std::string store = "/v1/agent/jobs/" + job["id"].dump() + "/store";
  const int64_t epoch = job["epoch"];
  auto c = Client(dev_token_);
  auto call = [&](json body, int64_t e) {
    body["epoch"] = e;
    return c.Post(store, body.dump(), "application/json");
  };
  json rollout = {{"id", "r-1"}, {"stack", "demo"}, {"release", "web"}, {"deployment", "dev"}, {"status", "running"}};
  json step = {{"rollout_id", "r-1"}, {"host", "h1"}, {"step", "drain"}, {"phase", "begin"}};
  EXPECT_EQ(call({{"call", "create_rollout"}, {"rollout", rollout}}, epoch)->status, 200);
  EXPECT_EQ(call({{"call", "append_step"}, {"step", step}}, epoch)->status, 200);

  auto stale = call({{"call", "append_step"}, {"step", step}}, epoch + 1);
  EXPECT_EQ(stale->status, 409) << stale->body;
  auto other = Client(prod_token_).Post(store, json{{"epoch", epoch}, {"call", "append_step"}, {"step", step}}.dump(),
                                        "application/json");
  EXPECT_EQ(other->status, 409) << "not the lease holder";
  json foreign = rollout;
  foreign["deployment"] = "prod";
  EXPECT_EQ(call({{"call", "create_rollout"}, {"rollout", foreign}}, epoch)->status, 403) << "another scope";
  EXPECT_EQ(call({{"call", "lock_acquire"}, {"lease", {{"key", "demo/web/prod"}}}, {"ttl_ms", 1000}}, epoch)->status, 403);
  for (const json& bad : {json{{"call", "append_step"}, {"step", {{"host", "h1"}}}}, json{{"call", "no_such_call"}},
                          json{{"step", step}}}) {
    auto r = call(bad, epoch);
    EXPECT_EQ(r->status, 400) << bad.dump() << ": " << r->body;
  }
  auto steps = Body(call({{"call", "steps"}, {"id", "r-1"}}, epoch));
  ASSERT_EQ(steps["steps"].size(), 1u) << "only the accepted step is journaled: " << steps.dump();
  EXPECT_EQ(steps["steps"][0]["step"], "drain");
}

}  // namespace
}  // namespace sp::test
