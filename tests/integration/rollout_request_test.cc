// Rollouts the server plans (issue 14, "plans are made by the server"): a
// real `sallyport server` over TLS. A caller names a build (or its artifact)
// and a target; the server plans from the sallyport.yml the build recorded
// and from its own inventory, and checks the caller's deploy scope on the
// stack that file names. Nothing in the request can supply a plan, a config
// or hosts.
#include <httplib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rollout/plan.h"
#include "store/sqlite/sqlite_store.h"
#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const std::string kArtifact = "127.0.0.1:5000/web@sha256:" + std::string(64, 'a');
const std::string kOlder = "127.0.0.1:5000/web@sha256:" + std::string(64, 'b');

const char* kConfig =
    "version: 1\n"
    "service: web\n"
    "stack: demo\n"
    "image: {repository: 127.0.0.1:5000/web}\n"
    "releases:\n"
    "  web:\n"
    "    runtime: docker\n"
    "    port: 8080\n"
    "    env: {GREETING: from the build}\n"
    "    health: {path: /health}\n";

const char* kInventory =
    "version: 1\n"
    "stacks:\n"
    "  demo:\n"
    "    deployments:\n"
    "      dev:\n"
    "        network: dev\n"
    "        releases:\n"
    "          web:\n"
    "            docker_host: unix:///run/sp-test-none.sock\n"
    "            load_balancers: none\n"
    "            hosts:\n"
    "              - {name: app1, address: 10.77.0.11}\n"
    "              - {name: app2, address: 10.77.0.12}\n"
    "      prod:\n"
    "        network: prod\n"
    "        releases:\n"
    "          web:\n"
    "            docker_host: unix:///run/sp-test-none.sock\n"
    "            load_balancers: none\n"
    "            hosts:\n"
    "              - {name: p1, address: 10.77.1.11}\n";

class RolloutRequestIT : public ::testing::Test {
 protected:
  void SetUp() override {
    // Build 1 pushed kArtifact and kept its file; 2 failed after reading it; 3 kept none.
    ASSERT_EQ(RecordBuild(db_, "web", '1', BuildStatus::kSucceeded, kArtifact, kConfig), 1);
    ASSERT_EQ(RecordBuild(db_, "web", '2', BuildStatus::kFailed, "", kConfig), 2);
    ASSERT_EQ(RecordBuild(db_, "web", '3', BuildStatus::kSucceeded, kOlder, ""), 3);
    WriteFile(dir_ / "inventory.yml", kInventory);
    auto applied = RunSallyport({"inventory", "apply", "-f", dir_ / "inventory.yml", "--store", db_, "--yes"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    server_ = std::make_unique<ServerProcess>(dir_, db_, "server", std::vector<std::string>{"--poll-every", "0"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
  }
  std::string Token(const std::string& name, const std::vector<std::string>& scopes) {
    return CreateApiToken(db_, name, scopes);
  }
  httplib::Result Post(const std::string& path, const json& body, const std::string& token) {
    httplib::Client c = server_->Client();
    if (!token.empty()) c.set_default_headers({{"Authorization", "Bearer " + token}});
    return c.Post(path, body.dump(), "application/json");
  }
  json Jobs() {
    httplib::Client c = server_->Client();
    c.set_default_headers({{"Authorization", Bearer()}});
    auto r = c.Get("/v1/jobs?limit=100");
    return r ? json::parse(r->body, nullptr, false)["jobs"] : json();
  }
  json PlanOfJob(int64_t id) {
    httplib::Client c = server_->Client();
    c.set_default_headers({{"Authorization", Bearer()}});
    auto r = c.Get("/v1/jobs/" + std::to_string(id));
    if (!r) return json();
    return json::parse(json::parse(r->body, nullptr, false).value("payload", "{}"), nullptr, false);
  }
  // An agent of `network` says hello to the server (as `sallyport agent run` does first).
  void SeeAgent(const std::string& network) {
    const std::string file = CreateAgentToken(dir_, db_, "agent-" + network, "network=" + network);
    ASSERT_FALSE(file.empty());
    auto r = Post("/v1/agent/register", json::object(), Trim(ReadFile(file)));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  TempDir dir_{"sp-rollout-request"};
  const std::string db_ = dir_ / "state.db";
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(RolloutRequestIT, TheServerPlansFromTheBuildsOwnFileAndItsInventory) {
  SeeAgent("dev");
  const std::string deployer = Token("deployer", {"deploy:demo/dev"});
  auto r = Post("/v1/rollouts", {{"build", 1}, {"deployment", "dev"}, {"batch", "50%"}}, deployer);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const json answer = json::parse(r->body);
  EXPECT_EQ(answer["network"], "dev");
  EXPECT_EQ(answer["kind"], "rollout");
  const json plan = PlanOfJob(answer["job"]);
  ASSERT_TRUE(plan.is_object()) << plan;
  EXPECT_EQ(plan["id"], answer["rollout"]);
  EXPECT_EQ(plan["app"]["artifact"], kArtifact);
  EXPECT_EQ(plan["app"]["env"]["GREETING"], "from the build");
  EXPECT_EQ(plan["build_id"], 1);
  ASSERT_EQ(plan["hosts"].size(), 2u);
  EXPECT_EQ(plan["hosts"][0]["address"], "10.77.0.11");
  EXPECT_EQ(plan["strategy"]["batch"], "50%");

  // By the artifact, a dry run: the plan answered, nothing queued.
  const size_t jobs = Jobs().size();
  auto dry = Post("/v1/rollouts", {{"artifact", kArtifact}, {"deployment", "dev"}, {"dry_run", true}}, deployer);
  ASSERT_TRUE(dry);
  ASSERT_EQ(dry->status, 200) << dry->body;
  EXPECT_EQ(json::parse(dry->body)["plan"]["hosts"][1]["name"], "app2");
  EXPECT_EQ(Jobs().size(), jobs);

  // The CLI asks the same way (--build), with the deployer's token.
  auto cli = RunSallyport({"rollout", "run", "--server", server_->url(), "--build", "1", "-d", "dev"},
                          {{"SALLYPORT_TOKEN", deployer}});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_THAT(cli.out, HasSubstr("for network dev"));
  EXPECT_EQ(Jobs().size(), jobs + 1);
}

TEST_F(RolloutRequestIT, TheDeployScopeIsCheckedOnTheStackTheBuildsFileNames) {
  const json ask = {{"build", 1}, {"deployment", "dev"}};
  EXPECT_EQ(Post("/v1/rollouts", ask, "")->status, 401);
  for (const char* scope : {"read", "deploy:demo/prod", "deploy:other/dev", "build:web", "inventory:write"}) {
    EXPECT_EQ(Post("/v1/rollouts", ask, Token(std::string("t-") + scope[0] + scope[7], {scope}))->status, 403)
        << scope;
  }
  // Naming another stack in the body changes nothing: the build's file says demo.
  const std::string other = Token("other", {"deploy:other/dev"});
  auto named = Post("/v1/rollouts", {{"build", 1}, {"deployment", "dev"}, {"stack", "other"}}, other);
  EXPECT_EQ(named->status, 403) << named->body;
  // A submitted plan is an admin's job only.
  const std::string deployer = Token("deployer", {"deploy:demo/dev", "read"});
  auto submitted = Post("/v1/jobs", {{"kind", "rollout"}, {"payload", "{}"}, {"labels", {{"network", "dev"}}}}, deployer);
  EXPECT_EQ(submitted->status, 403);
  EXPECT_EQ(Jobs().size(), 0u);
}

TEST_F(RolloutRequestIT, ARequestCarriesNoPlanOrConfigAndNamesAShippableBuild) {
  const std::string deployer = Token("deployer", {"deploy:demo/*"});
  auto expect = [&](const json& body, int status, const std::string& says) {
    auto r = Post("/v1/rollouts", body, deployer);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << body << ": " << r->body;
    EXPECT_THAT(r->body, HasSubstr(says)) << body;
  };
  expect({{"build", 1}, {"deployment", "dev"}, {"config", "stack: evil"}}, 400, "/config: unknown field");
  expect({{"build", 1}, {"deployment", "dev"}, {"hosts", json::array()}}, 400, "/hosts: unknown field");
  expect({{"build", 1}}, 400, "/deployment: required");
  expect({{"build", 1}, {"deployment", "dev"}, {"stack", "other"}}, 400, "build 1 deploys stack demo, not other");
  expect({{"deployment", "dev"}}, 400, "/build or /artifact");
  expect({{"build", 2}, {"deployment", "dev"}}, 409, "build 2 is failed");
  expect({{"build", 3}, {"deployment", "dev"}}, 409, "kept no sallyport.yml");
  expect({{"build", 9}, {"deployment", "dev"}}, 404, "no build 9");
  expect({{"artifact", kArtifact + "0"}, {"deployment", "dev"}}, 404, "no succeeded build pushed");
  expect({{"build", 1}, {"deployment", "staging"}}, 404, "staging");
  EXPECT_EQ(Jobs().size(), 0u);
}

// A rollout queued for a network no agent serves would wait silently: the
// server refuses it naming the labels (503; the CLI exits 4), unless the
// caller queues it anyway; an agent of the network seen lately lets it in.
TEST_F(RolloutRequestIT, ARolloutForANetworkWithNoAgentSeenLatelyIsRefusedNamingItsLabelsUnlessQueuedAnyway) {
  const std::string deployer = Token("deployer", {"deploy:demo/dev", "read"});  // read: --wait reads the job.
  const json ask = {{"build", 1}, {"deployment", "dev"}};
  const std::string says = "no agent with labels network=dev was seen in the last 2 min";
  auto refused = Post("/v1/rollouts", ask, deployer);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_THAT(refused->body, HasSubstr(says));
  auto cli = RunSallyport({"rollout", "run", "--server", server_->url(), "--build", "1", "-d", "dev"},
                          {{"SALLYPORT_TOKEN", deployer}});
  EXPECT_EQ(cli.exit_code, 4) << cli.out << cli.err;
  EXPECT_THAT(cli.err, HasSubstr(says));
  SeeAgent("prod");  // Another network's agent takes nothing of dev's.
  EXPECT_EQ(Post("/v1/rollouts", ask, deployer)->status, 503);
  EXPECT_EQ(Jobs().size(), 0u) << "nothing queued";

  auto anyway = RunSallyport({"rollout", "run", "--server", server_->url(), "--build", "1", "-d", "dev",
                              "--queue-anyway"},
                             {{"SALLYPORT_TOKEN", deployer}});
  EXPECT_EQ(anyway.exit_code, 0) << anyway.err;
  EXPECT_EQ(Jobs().size(), 1u);
  // --wait gives up after its timeout, saying why; the job goes on.
  auto waited = RunSallyport({"rollout", "run", "--server", server_->url(), "--build", "1", "-d", "dev",
                              "--queue-anyway", "--wait", "--wait-timeout", "1s"},
                             {{"SALLYPORT_TOKEN", deployer}});
  EXPECT_EQ(waited.exit_code, 4) << waited.out << waited.err;
  EXPECT_THAT(waited.err, HasSubstr("still queued: no agent with labels network=dev took it after --wait-timeout 1s"));
  EXPECT_EQ(Jobs().size(), 2u);
  SeeAgent("dev");
  auto served = Post("/v1/rollouts", ask, deployer);
  EXPECT_EQ(served->status, 201) << served->body;
}

TEST_F(RolloutRequestIT, ARollbackIsThePreviousPlanAgainPlannedByTheServer) {
  SeeAgent("dev");
  const std::string deployer = Token("deployer", {"deploy:demo/dev"});
  const json scope = {{"stack", "demo"}, {"release", "web"}, {"deployment", "dev"}};
  auto none = Post("/v1/rollbacks", scope, deployer);
  EXPECT_EQ(none->status, 404) << none->body;
  EXPECT_EQ(Post("/v1/rollbacks", {{"stack", "demo"}, {"release", "web"}, {"deployment", "prod"}}, deployer)->status,
            403);
  // Two successful rollouts in the journal: the older artifact, then the current.
  auto dry = Post("/v1/rollouts", {{"build", 1}, {"deployment", "dev"}, {"dry_run", true}}, deployer);
  ASSERT_EQ(dry->status, 200) << dry->body;
  auto first = PlanFromJson(json::parse(dry->body)["plan"].dump());
  ASSERT_TRUE(first);
  RolloutPlan older = *first, current = *first;
  older.id = "r-000000000001";
  older.app.artifact = kOlder;
  current.id = "r-000000000002";
  current.previous_rollout_id = older.id;
  {
    auto store = SqliteStore::Open(db_);
    ASSERT_TRUE(store);
    for (const RolloutPlan* p : {&older, &current}) {
      RolloutRecord rec{p->id, "web", "dev", "demo", PlanKind::kRollout, RolloutStatus::kRunning, PlanToJson(*p), "",
                        1, 1};
      ASSERT_TRUE((*store)->CreateRollout(rec));
      ASSERT_TRUE((*store)->FinishRollout(p->id, RolloutStatus::kSucceeded, ""));
    }
  }
  auto back = RunSallyport({"rollout", "undo", "--server", server_->url(), "--stack", "demo", "--release", "web", "-d",
                            "dev"},
                           {{"SALLYPORT_TOKEN", deployer}});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  const size_t at = back.out.find(" as job ");
  ASSERT_NE(at, std::string::npos) << back.out;
  const json plan = PlanOfJob(std::atoll(back.out.c_str() + at + 8));
  EXPECT_EQ(plan["kind"], "rollback");
  EXPECT_EQ(plan["app"]["artifact"], kOlder);
  EXPECT_EQ(plan["previous_rollout_id"], current.id);
  // `--to` a chosen rollout (or version): planned by the server the same way,
  // the older one although a newer rollout is now the previous; an unknown
  // one is refused naming the versions the scope ran.
  {
    RolloutPlan newest = current;
    newest.id = "r-000000000003";
    newest.previous_rollout_id = current.id;
    auto store = SqliteStore::Open(db_);
    ASSERT_TRUE(store);
    RolloutRecord rec{newest.id, "web", "dev", "demo", PlanKind::kRollout, RolloutStatus::kRunning,
                      PlanToJson(newest), "", 2, 2};
    ASSERT_TRUE((*store)->CreateRollout(rec));
    ASSERT_TRUE((*store)->FinishRollout(newest.id, RolloutStatus::kSucceeded, ""));
  }
  auto to = RunSallyport({"rollout", "undo", "--server", server_->url(), "--stack", "demo", "--release", "web", "-d",
                          "dev", "--to", older.id},
                         {{"SALLYPORT_TOKEN", deployer}});
  ASSERT_EQ(to.exit_code, 0) << to.err;
  const size_t to_at = to.out.find(" as job ");
  ASSERT_NE(to_at, std::string::npos) << to.out;
  EXPECT_EQ(PlanOfJob(std::atoll(to.out.c_str() + to_at + 8))["app"]["artifact"], kOlder);
  auto unknown = Post("/v1/rollbacks", {{"stack", "demo"}, {"release", "web"}, {"deployment", "dev"}, {"to", "v9"}},
                      deployer);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  EXPECT_THAT(unknown->body, HasSubstr("versions it ran:")) << unknown->body;
}

}  // namespace
}  // namespace sp::test
