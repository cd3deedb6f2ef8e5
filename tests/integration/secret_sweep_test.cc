// Nothing secret is readable (issue 14), swept from outside: a real
// `sallyport server` over TLS holding an API token, an agent's token, a
// project's webhook secret, a registry credential and an app env value bound
// to a deployment, both named by a server-made rollout's plan and fetched by
// an agent. Every GET route of the
// server's own table (`server --routes`), the job payloads, a dry run's
// plan, the server's and jobs' logs, and the bytes of the state database and
// its WAL are searched for each secret — as is, JSON-escaped, base64 (both
// alphabets) and URL-encoded: none is found.
#include <httplib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/route_paths.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;

// Distinctive values, with characters each encoding changes.
const std::string kCredential = "reg+Secret/\"42\"?&=zq";
const std::string kHookSecret = "hook+Secret/\"77\"?&=zq";
const std::string kDbUrl = "postgres://app:db+Secret/\"91\"?&=zq@db/app";

const char* kConfig =
    "version: 1\nservice: web\nstack: demo\n"
    "image: {repository: 127.0.0.1:5000/web}\n"
    "registry: {address: 127.0.0.1:5000, username: ci, password: {credential: registry}}\n"
    "releases:\n  web:\n    runtime: docker\n    port: 8080\n    health: {path: /health}\n"
    "    env: {DATABASE_URL: {credential: db_url}, API_KEY: {credential: prod_key}}\n";

const char* kInventory =
    "version: 1\nstacks:\n  demo:\n    deployments:\n      dev:\n        network: dev\n        releases:\n"
    "          web:\n            docker_host: unix:///run/sp-test-none.sock\n            load_balancers: none\n"
    "            hosts:\n              - {name: app1, address: 10.77.0.11}\n";

// The forms a secret may take in a body, a log or a database page.
std::vector<std::string> Forms(const std::string& secret) {
  const std::string escaped = json(secret).dump();
  return {secret, escaped.substr(1, escaped.size() - 2), Base64(secret), Base64(secret, /*url=*/true),
          UrlQuery(secret)};
}

class SecretSweepIT : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(RecordBuild(db_, "web", 'c', BuildStatus::kSucceeded,
                          "127.0.0.1:5000/web@sha256:" + std::string(64, 'c'), kConfig),
              1);
    WriteFile(dir_ / "hook-secret", kHookSecret, 0600);
    WriteFile(dir_ / "registry-password", kCredential, 0600);
    WriteFile(dir_ / "db-url", kDbUrl, 0600);
    WriteFile(dir_ / "inventory.yml", kInventory);
    for (std::vector<std::string> args :
         {std::vector<std::string>{"inventory", "apply", "-f", dir_ / "inventory.yml", "--yes"},
          std::vector<std::string>{"project", "add", "--name", "web", "--git", "git://127.0.0.1:9/web.git",
                                   "--webhook-secret", "file:" + (dir_ / "hook-secret")},
          std::vector<std::string>{"credential", "set", "web", "registry", "--file", dir_ / "registry-password",
                                   "--host", "127.0.0.1:5000"},
          std::vector<std::string>{"credential", "set", "web", "db_url", "--file", dir_ / "db-url", "--deployment",
                                   "dev"},
          std::vector<std::string>{"credential", "set", "web", "prod_key", "--file", dir_ / "db-url", "--deployment",
                                   "prod"}}) {
      args.insert(args.end(), {"--store", db_});
      auto r = RunSallyport(args);
      ASSERT_EQ(r.exit_code, 0) << Join(args) << ": " << r.err;
    }
    agent_token_ = ReadFile(CreateAgentToken(dir_, db_, "dev-agent", "network=dev"));
    ASSERT_FALSE(agent_token_.empty());
    server_ = std::make_unique<ServerProcess>(dir_, db_, "server", std::vector<std::string>{"--poll-every", "0"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
    admin_token_ = Bearer().substr(7);
  }

  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
    return out;
  }

  // Where `text` shows a secret, or "".
  std::string SecretIn(const std::string& text) const {
    for (const auto& [name, secret] : std::vector<std::pair<std::string, std::string>>{
             {"the credential", kCredential}, {"the webhook secret", kHookSecret}, {"the env credential", kDbUrl},
             {"the admin token", admin_token_}, {"the agent token", Trim(agent_token_)}}) {
      for (const auto& form : Forms(secret)) {
        if (!form.empty() && text.find(form) != std::string::npos) return name + " as '" + form + "'";
      }
    }
    return "";
  }

  TempDir dir_{"sp-secret-sweep"};
  const std::string db_ = dir_ / "state.db";
  std::string admin_token_, agent_token_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(SecretSweepIT, NoTokenCredentialOrWebhookSecretInAnyAnswerLogOrTheDatabase) {
  httplib::Client admin = server_->Client();
  admin.set_default_headers({{"Authorization", "Bearer " + admin_token_}});
  // A server-made rollout whose plan names the credential; a dry run's plan.
  auto queued = admin.Post("/v1/rollouts", R"({"build": 1, "deployment": "dev", "queue_anyway": true})", "application/json");
  ASSERT_TRUE(queued);
  ASSERT_EQ(queued->status, 201) << queued->body;
  auto dry = RunSallyport({"rollout", "run", "--server", server_->url(), "--build", "1", "-d", "dev", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_THAT(dry.out, ::testing::HasSubstr("credential:registry"));
  // The network's agent claims it and fetches the credential (the one
  // place its value is answered: to the agent holding the job).
  httplib::Client agent = server_->Client();
  agent.set_default_headers({{"Authorization", "Bearer " + Trim(agent_token_)}});
  auto claimed = agent.Post("/v1/agent/claim?wait_ms=0&lease_ms=30000", "", "application/json");
  ASSERT_TRUE(claimed);
  ASSERT_EQ(claimed->status, 200) << claimed->body;
  const json job = json::parse(claimed->body);
  const std::string base = "/v1/agent/jobs/" + std::to_string(job.value("id", 0));
  auto fetched = agent.Post(base + "/credential", json{{"epoch", job["epoch"]}, {"name", "registry"}}.dump(),
                            "application/json");
  ASSERT_TRUE(fetched);
  ASSERT_EQ(fetched->status, 200) << fetched->body;
  EXPECT_EQ(json::parse(fetched->body)["value"], kCredential);
  // The app's env value, bound to this deployment; one bound only to prod is
  // refused although the plan names it; one the plan does not name, too.
  auto env_value = agent.Post(base + "/credential", json{{"epoch", job["epoch"]}, {"name", "db_url"}}.dump(),
                              "application/json");
  ASSERT_TRUE(env_value);
  ASSERT_EQ(env_value->status, 200) << env_value->body;
  EXPECT_EQ(json::parse(env_value->body)["value"], kDbUrl);
  auto prod_only = agent.Post(base + "/credential", json{{"epoch", job["epoch"]}, {"name", "prod_key"}}.dump(),
                              "application/json");
  ASSERT_TRUE(prod_only);
  EXPECT_EQ(prod_only->status, 403) << prod_only->body;
  EXPECT_THAT(prod_only->body, ::testing::HasSubstr("may not be sent to deployment:dev"));
  auto other = agent.Post(base + "/credential", json{{"epoch", job["epoch"]}, {"name", "other"}}.dump(),
                          "application/json");
  EXPECT_EQ(other->status, 403) << "a job gets only the credential its plan names";
  (void)agent.Post(base + "/log", json{{"epoch", job["epoch"]}, {"lines", {{{"text", "pulled"}}}}}.dump(),
                   "application/json");

  // Every GET route of the server's table, as an admin sees it.
  int walked = 0;
  for (const RouteLine& route : PrintedRoutes(db_)) {
    if (route.method != "GET") continue;
    const std::string path = PathFor(route.pattern);
    for (const std::string& p : {path, path + "?limit=1000"}) {
      auto r = admin.Get(p);
      ASSERT_TRUE(r) << p;
      EXPECT_EQ(SecretIn(r->body), "") << "GET " << p << " answered " << r->body.substr(0, 400);
    }
    ++walked;
  }
  EXPECT_GE(walked, 15);
  auto jobs = admin.Get("/v1/jobs?limit=1000");
  ASSERT_TRUE(jobs);
  EXPECT_THAT(jobs->body, ::testing::HasSubstr("credential:registry")) << "the plan holds the reference";
  EXPECT_THAT(jobs->body, ::testing::HasSubstr("credential:db_url")) << "the plan holds the env's reference";
  EXPECT_EQ(SecretIn(dry.out + dry.err), "");

  // The files: the server's log, the jobs' logs, the database and its WAL.
  std::vector<std::string> files = {dir_ / "server.log", db_, db_ + "-wal"};
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path())) {
    if (e.is_regular_file() && e.path().extension() == ".log") files.push_back(e.path());
  }
  for (const auto& file : files) {
    if (!std::filesystem::exists(file)) continue;
    EXPECT_EQ(SecretIn(ReadFile(file)), "") << file;
  }
}

}  // namespace
}  // namespace sp::test
