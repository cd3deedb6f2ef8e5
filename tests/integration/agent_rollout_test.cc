// A real server and two `sallyport agent run` processes on loopback: a
// rollout queued for one network is run only by the agent whose token is
// bound to that network (process runtime, real HAProxy per network).
#include <signal.h>

#include <algorithm>
#include <regex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "support/alertmanager_fixture.h"
#include "support/hook_receiver.h"
#include "support/cli_runner.h"
#include "support/haproxy_fixture.h"
#include "support/rollout_scenario.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;

struct Network {
  std::string name;
  std::unique_ptr<HaproxyFixture> haproxy;
  std::vector<int> ports;
  std::string inventory;  // File.
};

class AgentRolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const std::string name : {"dev", "prod"}) {
      auto n = std::make_unique<Network>();
      n->name = name;
      std::filesystem::create_directories(dir_ / name);
      n->haproxy = std::make_unique<HaproxyFixture>(dir_ / name, ScenarioHaproxy(2, &n->ports));
      auto st = n->haproxy->Start();
      ASSERT_TRUE(st) << st.error().message;
      std::string inv = InventoryYaml({n->haproxy->socket_path(), n->ports, dir_ / (name + "/apps"), ""});
      inv.replace(inv.find("network: local"), 14, "network: " + name);
      n->inventory = dir_ / (name + "/inventory.yml");
      WriteFile(n->inventory, inv);
      networks_.push_back(std::move(n));
    }
    WriteFile(dir_ / "sallyport.yml", ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 20}"));
    SeedBuildWithASecretEnv();
    ASSERT_FALSE(AdminToken(dir_ / "server.db").empty());  // The CLI's calls present it ($SALLYPORT_TOKEN).
    // Two vault passwords, as during a rekey (docs/secrets.md).
    WriteFile(dir_ / "vault-old", "old vault pass\n", 0600);
    WriteFile(dir_ / "vault-new", "new vault pass\n", 0600);
    server_ = Daemon({BuildBinary("sallyport"), "server", "--store", dir_ / "server.db", "--listen", "127.0.0.1:0",
                      "--vault-password-file", dir_ / "vault-old", "--vault-id", "new@" + dir_ / "vault-new"},
                     dir_ / "server.log");
    ASSERT_EQ(WaitForStart(server_, [&] { return ReadFile(dir_ / "server.log").find("listening on") != std::string::npos; },
                           std::chrono::seconds(10)),
              StartWait::kReady);
    const std::string log = ReadFile(dir_ / "server.log");
    url_ = "http://127.0.0.1:" + std::to_string(std::atoi(log.c_str() + log.find("http://127.0.0.1:") + 17));
    for (const auto& n : networks_) {
      auto t = RunSallyport({"token", "create", "--name", n->name + "-agent", "--label", "network=" + n->name,
                             "--store", dir_ / "server.db"});
      ASSERT_EQ(t.exit_code, 0) << t.err;
      WriteFile(dir_ / (n->name + ".token"), t.out, 0600);
      agents_.emplace_back(std::vector<std::string>{BuildBinary("sallyport"), "agent", "run", "--server", url_,
                                                    "--token-file", dir_ / (n->name + ".token")},
                           dir_ / (n->name + "-agent.log"));
      const std::string agent_log = dir_ / (n->name + "-agent.log");
      ASSERT_EQ(WaitForStart(agents_.back(), [&] { return ReadFile(agent_log).find("claiming for") != std::string::npos; },
                             std::chrono::seconds(10)),
                StartWait::kReady)
          << ReadFile(agent_log);
    }
  }

  void TearDown() override {
    for (auto& a : agents_) a.Stop();
    for (const auto& n : networks_) StopScenarioApps(dir_ / (n->name + "/apps"), 2);
  }

  // The server's own records for a server-made rollout: dev's inventory, and
  // build 1 of project sample whose file takes APP_VERSION (the version the
  // sample app reports) from credential app_version, bound to `integration`.
  void SeedBuildWithASecretEnv() {
    const std::string db = dir_ / "server.db";
    for (std::vector<std::string> args :
         {std::vector<std::string>{"inventory", "apply", "-f", networks_[0]->inventory, "--yes"},
          std::vector<std::string>{"project", "add", "--name", "sample", "--git", "git://127.0.0.1:9/sample.git"},
          std::vector<std::string>{"credential", "set", "sample", "app_version", "--file", dir_ / "app-version",
                                   "--deployment", "integration"}}) {
      args.insert(args.end(), {"--store", db});
      auto r = RunSallyport(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    WriteFile(dir_ / "app-version", kSecretVersion, 0600);
    ASSERT_EQ(RecordBuild(db, "sample", 'a', BuildStatus::kSucceeded, BuildBinary("sp-sample-app"),
                          ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 20}",
                                             "      APP_VERSION: {credential: app_version}\n")),
              1);
  }

  static constexpr const char* kSecretVersion = "sekret-7f3a";

  // The server is named by --server, or configured by $SALLYPORT_SERVER.
  CliResult Queue(const Network& n, const std::string& version, bool by_env = false,
                  const std::vector<std::string>& extra = {"--wait"}) {
    std::vector<std::string> args{"rollout", "run", "-c", dir_ / "sallyport.yml", "-i", n.inventory, "-d", "integration",
                                  "--store", dir_ / "cli.db", "--artifact", BuildBinary("sp-sample-app"), "--version",
                                  version};
    if (!by_env) args.insert(args.end(), {"--server", url_});
    // A plan made by this CLI (its own inventory files), queued with the admin token.
    if (std::find(extra.begin(), extra.end(), "--local") == extra.end()) args.push_back("--plan-here");
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSallyport(args, by_env ? std::map<std::string, std::string>{{"SALLYPORT_SERVER", url_}}
                                     : std::map<std::string, std::string>{},
                        120);
  }

  TempDir dir_{"sp-agent-rollout"};
  std::vector<std::unique_ptr<Network>> networks_;
  Daemon server_;
  std::string url_;
  std::vector<Daemon> agents_;
};

TEST_F(AgentRolloutTest, RolloutsForTwoNetworksRunOnlyOnTheAgentAllowedForEach) {
  auto prod = Queue(*networks_[1], "p1");
  ASSERT_EQ(prod.exit_code, 0) << prod.out << prod.err;
  EXPECT_THAT(prod.out, HasSubstr("for network prod"));
  EXPECT_THAT(prod.out, HasSubstr("succeeded by prod-agent"));
  // The agent's lines are in the server's log of the job.
  const size_t as_job = prod.out.find("as job ");
  ASSERT_NE(as_job, std::string::npos) << prod.out;
  const std::string job_id = std::to_string(std::atoll(prod.out.c_str() + as_job + 7));
  auto job_log = RunSallyport({"job", "logs", job_id, "--server", url_});
  ASSERT_EQ(job_log.exit_code, 0) << job_log.err;
  EXPECT_THAT(job_log.out, HasSubstr("claimed by agent prod-agent"));
  EXPECT_THAT(job_log.out, HasSubstr("to web/integration (2 hosts)"));
  EXPECT_THAT(job_log.out, HasSubstr("app2         done, out of rotation"));
  EXPECT_THAT(job_log.out, HasSubstr("job " + job_id + " succeeded"));
  auto dev = Queue(*networks_[0], "d1", /*by_env=*/true);
  ASSERT_EQ(dev.exit_code, 0) << dev.out << dev.err;
  EXPECT_THAT(dev.out, HasSubstr("succeeded by dev-agent"));
  for (int port : networks_[1]->ports) EXPECT_EQ(VersionOn(port), "p1");
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), "d1");
  ExpectAllUp(*networks_[0]->haproxy, 2);
  ExpectAllUp(*networks_[1]->haproxy, 2);
  // The journal is the server's: both rollouts, each run by its network's
  // agent (the lock holder names the job and the agent); nothing on the agents.
  auto history = RunSallyport({"rollout", "list", "--store", dir_ / "server.db"});
  EXPECT_THAT(history.out, HasSubstr("d1"));
  EXPECT_THAT(history.out, HasSubstr("p1"));
  auto queued_by = RunSallyport({"rollout", "list", "--local", "--store", dir_ / "cli.db"});
  EXPECT_EQ(queued_by.out, "") << "the CLI that queued them journals nothing itself";

  // --local runs in this process even with a server configured.
  auto local = Queue(*networks_[0], "d2", /*by_env=*/true, {"--local"});
  ASSERT_EQ(local.exit_code, 0) << local.out << local.err;
  EXPECT_EQ(local.out.find("queued"), std::string::npos) << local.out;
  EXPECT_THAT(local.out, HasSubstr("succeeded"));
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), "d2");
  auto both = Queue(*networks_[0], "d3", /*by_env=*/false, {"--local"});
  EXPECT_NE(both.exit_code, 0);
  EXPECT_THAT(both.err, HasSubstr("--local and --server"));
}

// An env value from a credential: the server plans build 1 with a reference
// only; dev's agent fetches the value when the app starts, so the app has it
// (it reports it as its version) while the plan, the job and the journal in
// the server's store never held it.
TEST_F(AgentRolloutTest, AnEnvValueFromACredentialReachesTheAppButNeverThePlanOrTheStore) {
  auto run = RunSallyport({"rollout", "run", "--server", url_, "--build", "1", "-d", "integration", "--wait"}, {}, 120);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("succeeded by dev-agent"));
  EXPECT_THAT(run.out, ::testing::ContainsRegex("app1 +drain +ok")) << "--wait follows the job's log";
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), kSecretVersion);
  ExpectAllUp(*networks_[0]->haproxy, 2);
  EXPECT_EQ(run.out.find(kSecretVersion), std::string::npos) << run.out;
  for (const std::string file : {"server.db", "server.db-wal", "server.log", "dev-agent.log"}) {
    if (!std::filesystem::exists(dir_ / file)) continue;
    EXPECT_EQ(ReadFile(dir_ / file).find(kSecretVersion), std::string::npos) << file;
  }
}

// Masking: build 2's app fails its health check on app2 answering with its
// version, which is credential app_version's value. The error travels from
// dev's agent to the job's log, the server's journal and the agent's own
// output as ***: the value is in none of them, nor in the server's store.
TEST_F(AgentRolloutTest, ACredentialValueInAnErrorIsMaskedInEverythingTheAgentSends) {
  const int bad = networks_[0]->ports[1];
  ASSERT_EQ(RecordBuild(dir_ / "server.db", "sample", 'b', BuildStatus::kSucceeded, BuildBinary("sp-sample-app"),
                        ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 3}",
                                           "      APP_VERSION: {credential: app_version}\n"
                                           "      SAMPLE_HEALTH_FAIL_PORTS: \"" + std::to_string(bad) + "\"\n")),
            2);
  auto run = RunSallyport({"rollout", "run", "--server", url_, "--build", "2", "-d", "integration", "--wait"}, {}, 120);
  EXPECT_NE(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out + run.err, HasSubstr("unhealthy (version ***)"));
  auto listed = RunSallyport({"rollout", "list", "--server", url_, "--output", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const auto rollouts = nlohmann::json::parse(listed.out);
  ASSERT_FALSE(rollouts["rollouts"].empty()) << listed.out;
  auto show = RunSallyport({"rollout", "show", rollouts["rollouts"][0]["id"].get<std::string>(), "--server", url_,
                            "--output", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("unhealthy (version ***)")) << "the journal's error, masked by the agent";
  EXPECT_EQ((run.out + run.err + show.out).find(kSecretVersion), std::string::npos);
  for (const std::string file : {"server.db", "server.db-wal", "server.log", "dev-agent.log"}) {
    if (!std::filesystem::exists(dir_ / file)) continue;
    EXPECT_EQ(ReadFile(dir_ / file).find(kSecretVersion), std::string::npos) << file;
  }
}

// An env value from an Ansible Vault value made by ansible-vault itself: the
// admin binds the credential to the inline `!vault` value of a vars file; the
// server opens it with its vault password when dev's agent asks, so the app
// has it while the store, the logs and the CLI's output never hold it. The
// file rekeyed to the server's other password between two rollouts: the next
// deploy still gets the value (no window where deploys fail).
TEST_F(AgentRolloutTest, AnEnvValueFromAVaultValueReachesTheAppAndARekeyHasNoWindow) {
  constexpr const char* kVaultValue = "vault-7e2c-91";
  auto made = RunProgram({"sh", "-c", "printf %s '" + std::string(kVaultValue) +
                                          "' | ansible-vault encrypt_string --vault-password-file '" +
                                          dir_ / "vault-old" + "' --stdin-name app_version > '" + dir_ / "vault.yml" +
                                          "'"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto bind = RunSallyport({"credential", "set", "sample", "app_version", "--vault", dir_ / "vault.yml#app_version",
                            "--deployment", "integration", "--store", dir_ / "server.db"});
  ASSERT_EQ(bind.exit_code, 0) << bind.err;
  auto run = RunSallyport({"rollout", "run", "--server", url_, "--build", "1", "-d", "integration", "--wait"}, {}, 120);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), kVaultValue);
  auto rekey = RunSallyport({"secrets", "rekey", dir_ / "vault.yml", "--vault-password-file", dir_ / "vault-old",
                             "--new-vault-id", "new@" + dir_ / "vault-new"});
  ASSERT_EQ(rekey.exit_code, 0) << rekey.err;
  ASSERT_THAT(ReadFile(dir_ / "vault.yml"), HasSubstr("$ANSIBLE_VAULT;1.2;AES256;new"));
  auto again = RunSallyport({"rollout", "run", "--server", url_, "--build", "1", "-d", "integration", "--wait"}, {}, 120);
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), kVaultValue);
  EXPECT_EQ((run.out + again.out + run.err + again.err).find(kVaultValue), std::string::npos);
  for (const std::string file : {"server.db", "server.db-wal", "server.log", "dev-agent.log"}) {
    if (!std::filesystem::exists(dir_ / file)) continue;
    EXPECT_EQ(ReadFile(dir_ / file).find(kVaultValue), std::string::npos) << file;
  }
}

// Secrets kept on the server and written through its API: only a
// secrets:<project> (or admin) token stores one; the CLI opens an
// ansible-vault value with the writer's password and the server seals it
// under its own (the store holds that envelope, never the value); a name has
// its own value per deployment; a rollout
// queued before a newer version is stored still starts its instances with the
// version its plan pinned, and the next rollout takes the new one. Neither
// value is in any listing, log or store file.
TEST_F(AgentRolloutTest, AStoredSecretIsWrittenOnlyWithItsScopeAndARolloutKeepsTheVersionItsPlanPinned) {
  constexpr const char* kV1 = "stored-v1-5d1e";
  constexpr const char* kV2 = "stored-v2-a40c";
  constexpr const char* kProd = "stored-prod-77b2";
  WriteFile(dir_ / "vault-stranger", "a password the server lacks\n", 0600);
  auto encrypt = [&](const std::string& value, const std::string& vault_id, const std::string& file) {
    auto made = RunProgram({"sh", "-c", "printf %s '" + value + "' | ansible-vault encrypt_string --vault-id '" +
                                            vault_id + "' --stdin-name app_version > '" + dir_ / file + "'"});
    EXPECT_EQ(made.exit_code, 0) << made.err;
    return dir_ / file + "#app_version";
  };
  const std::string v1 = encrypt(kV1, dir_ / "vault-old", "v1.yml");
  const std::string v2 = encrypt(kV2, "new@" + dir_ / "vault-new", "v2.yml");
  const std::string prod = encrypt(kProd, dir_ / "vault-old", "prod.yml");
  const std::string stranger = encrypt("stranger-3c9d", dir_ / "vault-stranger", "stranger.yml");
  const std::string db = dir_ / "server.db";
  const std::string writer = CreateApiToken(db, "writer", {"secrets:sample"});
  auto put = [&](const std::string& token, const std::string& from, const std::string& deployment) {
    return RunSallyport({"secrets", "put", "sample", "app_version", "--deployment", deployment, "--from", from,
                         "--vault-password-file", dir_ / "vault-old", "--vault-id", "new@" + dir_ / "vault-new",
                         "--server", url_},
                        {{"SALLYPORT_TOKEN", token}});
  };
  for (const auto& [name, scopes] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"reader", {"read", "build:sample", "inventory:write", "deploy:*/*"}}, {"other", {"secrets:other"}}}) {
    auto refused = put(CreateApiToken(db, name, scopes), v1, "integration");
    EXPECT_NE(refused.exit_code, 0) << name;
    EXPECT_THAT(refused.err, HasSubstr("token:" + name + " lacks the scope secrets on sample")) << refused.err;
  }
  // A value the writer cannot open is refused before anything is sent.
  auto unopenable = put(writer, stranger, "integration");
  EXPECT_NE(unopenable.exit_code, 0);
  EXPECT_THAT(unopenable.err, HasSubstr("stranger.yml:1: app_version")) << unopenable.err;
  auto listed = RunSallyport({"secrets", "list", "sample", "--server", url_, "--output", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out.find("app_version"), std::string::npos) << "refused writes stored something: " << listed.out;

  auto prod_put = put(writer, prod, "production");
  ASSERT_EQ(prod_put.exit_code, 0) << prod_put.err;
  auto first = put(writer, v1, "integration");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("secret app_version of project sample for deployment:integration: version 1"));
  // The stored value comes before the admin's file binding of the same name.
  auto run = RunSallyport({"rollout", "run", "--server", url_, "--build", "1", "-d", "integration", "--wait"}, {}, 120);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), kV1);

  // Queued while the network's agent is away; a newer version is stored before any agent takes it.
  agents_[0].Stop();
  auto queued = RunSallyport({"rollout", "run", "--server", url_, "--build", "1", "-d", "integration"}, {}, 60);
  ASSERT_EQ(queued.exit_code, 0) << queued.out << queued.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(queued.out, m, std::regex("as job (\\d+)"))) << queued.out;
  const std::string job = m[1];
  auto second = put(writer, v2, "integration");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("version 2"));
  auto shown = RunSallyport({"job", "show", job, "--server", url_});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("credential:app_version@1")) << shown.out;
  // Its value goes to no one but the agent that will hold the job: not another network's agent, not a user.
  for (const auto& [who, bearer] : std::vector<std::pair<std::string, std::string>>{
           {"prod's agent", Trim(ReadFile(dir_ / "prod.token"))}, {"the admin", Trim(Bearer().substr(7))}}) {
    httplib::Client c("127.0.0.1", std::atoi(url_.c_str() + url_.rfind(':') + 1));
    c.set_default_headers({{"Authorization", "Bearer " + bearer}});
    auto asked = c.Post("/v1/agent/jobs/" + job + "/credential",
                        nlohmann::json{{"epoch", 1}, {"name", "app_version@1"}}.dump(), "application/json");
    ASSERT_TRUE(asked) << who;
    EXPECT_EQ(asked->status, 403) << who << ": " << asked->body;
    EXPECT_EQ(asked->body.find(kV1), std::string::npos) << who;
  }
  const std::string log = dir_ / "dev-back.log";
  Daemon back({BuildBinary("sallyport"), "agent", "run", "--server", url_, "--token-file", dir_ / "dev.token"}, log);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("agent: job " + job + " succeeded") != std::string::npos; },
                      std::chrono::seconds(90)))
      << ReadFile(log);
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), kV1) << "the queued plan's pinned version";
  auto next = RunSallyport({"rollout", "run", "--server", url_, "--build", "1", "-d", "integration", "--wait"}, {}, 120);
  ASSERT_EQ(next.exit_code, 0) << next.out << next.err;
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), kV2);
  back.Stop();

  listed = RunSallyport({"secrets", "list", "sample", "--server", url_, "--output", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("\"scope\": \"deployment:integration\""));
  EXPECT_THAT(listed.out, HasSubstr("\"created_by\": \"token:writer\""));
  EXPECT_EQ(listed.out.find("ANSIBLE_VAULT"), std::string::npos) << "a listing has no envelope";
  // What the store holds is an Ansible Vault envelope sealed by the server under its own password.
  auto sealed = RunProgram({"sqlite3", db, "SELECT vault FROM secrets WHERE scope='deployment:integration' AND version=2"});
  ASSERT_EQ(sealed.exit_code, 0) << sealed.err;
  // Under the server's first --vault-id (here the new password of a rekey in progress).
  EXPECT_THAT(sealed.out, ::testing::StartsWith("$ANSIBLE_VAULT;1.2;AES256;new\n"));
  WriteFile(dir_ / "sealed.vault", sealed.out, 0600);
  auto viewed = RunProgram({"ansible-vault", "view", "--vault-id", "new@" + dir_ / "vault-new", dir_ / "sealed.vault"});
  EXPECT_EQ(viewed.exit_code, 0) << viewed.err;
  EXPECT_EQ(viewed.out, std::string(kV2) + "\n") << "ansible-vault opens the store's envelope (`view` ends with a newline)";
  const std::string seen = run.out + run.err + next.out + next.err + queued.out + shown.out + listed.out;
  for (const char* value : {kV1, kV2, kProd}) {
    EXPECT_EQ(seen.find(value), std::string::npos) << value;
    for (const std::string file : {"server.db", "server.db-wal", "server.log", "dev-agent.log", "dev-back.log"}) {
      if (!std::filesystem::exists(dir_ / file)) continue;
      EXPECT_EQ(ReadFile(dir_ / file).find(value), std::string::npos) << value << " in " << file;
    }
  }
}

// SIGTERM: the agent takes no new job, finishes the host in hand, hands the
// rollout back (left running in the server's journal, its lock released)
// and exits 0; another agent of the network claims it at once, resumes it
// from the journal and finishes it. The agent stops itself right after
// app1's drain (test hook) and gets SIGTERM while stopped.
TEST_F(AgentRolloutTest, ATerminatedAgentHandsItsRolloutBackAfterTheHostInHandAndAnotherFinishesIt) {
  agents_[0].Stop();  // dev's agent, replaced by one that halts mid-rollout.
  const std::string log = dir_ / "dev-halting.log";
  // The test tree's binary: it stops itself at that step (SP_TESTBIN_HALT_AFTER).
  Daemon halting({BuildBinary("sallyport-test"), "agent", "run", "--server", url_, "--token-file", dir_ / "dev.token"},
                 log, {{"SP_TESTBIN_HALT_AFTER", "app1:drain"}});
  ASSERT_EQ(WaitForStart(halting, [&] { return ReadFile(log).find("claiming for") != std::string::npos; },
                         std::chrono::seconds(10)),
            StartWait::kReady);
  auto queued = Queue(*networks_[0], "g1", /*by_env=*/false, {});
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("TEST halting after app1:drain") != std::string::npos; },
                      std::chrono::seconds(30)))
      << ReadFile(log);
  // Another agent of the network, idle while the job is leased.
  const std::string other_log = dir_ / "dev-other.log";
  Daemon other({BuildBinary("sallyport"), "agent", "run", "--server", url_, "--token-file", dir_ / "dev.token"},
               other_log);
  ASSERT_EQ(WaitForStart(other, [&] { return ReadFile(other_log).find("claiming for") != std::string::npos; },
                         std::chrono::seconds(10)),
            StartWait::kReady);
  halting.Signal(SIGTERM);
  halting.Signal(SIGCONT);
  EXPECT_TRUE(WaitFor([&] { return !halting.Alive(); }, std::chrono::seconds(60))) << ReadFile(log);
  const std::string out = ReadFile(log);
  EXPECT_EQ(halting.exit_code(), 0) << out;
  EXPECT_THAT(out, HasSubstr("agent: job 1 handed back: interrupted: handed back: 1 of 2 host(s) left"));
  EXPECT_THAT(out, HasSubstr("agent: stopped"));
  EXPECT_EQ(out.find("app2         drain"), std::string::npos) << "the stopping agent took the next host:\n" << out;
  ASSERT_TRUE(WaitFor([&] { return ReadFile(other_log).find("agent: job 1 succeeded") != std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(other_log);
  EXPECT_THAT(ReadFile(other_log), HasSubstr("resuming rollout"));
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), "g1");
  ExpectAllUp(*networks_[0]->haproxy, 2);
  auto jobs = RunSallyport({"job", "list", "--store", dir_ / "server.db"});
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("rollout +succeeded +1/3 dev-agent")) << "the hand-back is no attempt: "
                                                                                     << jobs.out;
  other.Stop();
}

// A rollout job that kills every agent that takes it (each stopped at the
// same step, then killed -9) runs out of attempts: the server queues its
// reconcile, another agent of the network runs it, and every host ends on
// one version in rotation — the host in hand restored — with the rollout
// recorded failed saying why and its lock free.
TEST_F(AgentRolloutTest, AJobThatDeadLettersIsReconciledAndItsHostsEndInRotation) {
  auto first = Queue(*networks_[0], "d1");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  agents_[0].Stop();
  auto queued = Queue(*networks_[0], "d2", /*by_env=*/false, {});
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    const std::string log = dir_ / ("dev-dying-" + std::to_string(attempt) + ".log");
    Daemon dying({BuildBinary("sallyport-test"), "agent", "run", "--server", url_, "--token-file", dir_ / "dev.token",
                  "--lease", "2s"},
                 log, {{"SP_TESTBIN_HALT_AFTER", "app1:stop"}});
    ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("TEST halting after app1:stop") != std::string::npos; },
                        std::chrono::seconds(60)))
        << ReadFile(log);
    dying.Signal(SIGKILL);
    ASSERT_TRUE(WaitFor([&] { return !dying.Alive(); }, std::chrono::seconds(10)));
  }
  // app1 is out of rotation with its old version stopped; a healthy agent
  // of the network comes.
  const std::string log = dir_ / "dev-healthy.log";
  Daemon healthy({BuildBinary("sallyport"), "agent", "run", "--server", url_, "--token-file", dir_ / "dev.token"}, log);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("agent: job 3 succeeded") != std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(log) << ReadFile(dir_ / "server.log");
  const std::string out = ReadFile(log);
  EXPECT_THAT(out, HasSubstr("reconciling every host, rolling nothing further: rollout job 2 ran out of attempts (3 of 3"));
  EXPECT_THAT(out, HasSubstr("app1         reconciled: previous version serving"));
  EXPECT_THAT(ReadFile(dir_ / "server.log"), HasSubstr("reconcile job 3 queued: rollout job 2 ran out of attempts"));
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), "d1") << "port " << port;
  ExpectAllUp(*networks_[0]->haproxy, 2);
  auto jobs = RunSallyport({"job", "list", "--store", dir_ / "server.db"});
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("rollout +dead +3/3")) << jobs.out;
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("reconcile +succeeded +1/10")) << jobs.out;
  auto rollouts = RunSallyport({"rollout", "list", "--store", dir_ / "server.db", "--output", "json"});
  EXPECT_THAT(rollouts.out, ::testing::ContainsRegex("\"status\": ?\"failed\"")) << rollouts.out << rollouts.err;
  auto job_log = RunSallyport({"job", "logs", "3", "--server", url_});
  EXPECT_THAT(job_log.out, HasSubstr("job 3 succeeded: reconciled: rollout failed: rollout job 2 ran out of attempts"))
      << job_log.out << job_log.err;
  auto locks = RunSallyport({"lock", "list", "--store", dir_ / "server.db"});
  EXPECT_THAT(locks.out, HasSubstr("no locks")) << locks.out;
  healthy.Stop();
}

// An operator cancels a rollout job while its agent holds it (stalled at
// app1's stop, then gone): the server's sweep queues the rollout's
// reconcile at once — not at the scope's next rollout — and the agent that
// runs it restores app1, calls the deployment's post_rollout hook for its
// pre_rollout (one key each) and expires its alert silence.
TEST_F(AgentRolloutTest, ACanceledRolloutJobIsReconciledAtOnceItsHooksUndoneAndItsSilenceExpired) {
  HookReceiver receiver;
  AlertmanagerFixture am(dir_ / "am");
  ASSERT_TRUE(am.Start()) << am.LogTail();
  std::string inv = ReadFile(networks_[0]->inventory);
  const std::string at = "        network: dev\n";
  ASSERT_NE(inv.find(at), std::string::npos) << inv;
  inv.insert(inv.find(at) + at.size(),
             "        hooks:\n"
             "          silence: {alertmanager: '" + am.url() + "', duration: 30s}\n"
             "          pre_rollout:\n"
             "            - {name: suspend, http: {url: '" + receiver.Url("/suspend") + "'}}\n"
             "          post_rollout:\n"
             "            - {name: resume, http: {url: '" + receiver.Url("/resume") + "'}}\n");
  WriteFile(networks_[0]->inventory, inv);
  auto first = Queue(*networks_[0], "c1");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  agents_[0].Stop();
  const std::string log = dir_ / "dev-halting.log";
  Daemon halting({BuildBinary("sallyport-test"), "agent", "run", "--server", url_, "--token-file", dir_ / "dev.token",
                  "--lease", "2s"},
                 log, {{"SP_TESTBIN_HALT_AFTER", "app1:stop"}});
  auto queued = Queue(*networks_[0], "c2", /*by_env=*/false, {});
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("TEST halting after app1:stop") != std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(log);
  ASSERT_EQ(am.SilencesWith(" to c2:", "active").size(), 1u) << am.Silences().dump(1);
  auto canceled = RunSallyport({"job", "cancel", "2", "--server", url_});
  ASSERT_EQ(canceled.exit_code, 0) << canceled.out << canceled.err;
  halting.Signal(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return !halting.Alive(); }, std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return ReadFile(dir_ / "server.log").find("reconcile job 3 queued") != std::string::npos; },
                      std::chrono::seconds(30)))
      << ReadFile(dir_ / "server.log");
  EXPECT_THAT(ReadFile(dir_ / "server.log"), HasSubstr("reconcile job 3 queued: rollout job 2 was canceled"));
  const std::string healthy_log = dir_ / "dev-healthy.log";
  Daemon healthy({BuildBinary("sallyport"), "agent", "run", "--server", url_, "--token-file", dir_ / "dev.token"},
                 healthy_log);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(healthy_log).find("agent: job 3 succeeded") != std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(healthy_log) << ReadFile(dir_ / "server.log");
  for (int port : networks_[0]->ports) EXPECT_EQ(VersionOn(port), "c1") << "port " << port;
  ExpectAllUp(*networks_[0]->haproxy, 2);
  std::set<std::string> pre, post;
  for (const auto& c : receiver.Calls()) (c.path == "/suspend" ? pre : post).insert(c.key);
  EXPECT_EQ(pre.size(), 2u) << "c1's and c2's";
  EXPECT_EQ(post.size(), 2u) << "each pre has its post";
  const auto silences = am.SilencesWith(" to c2:");
  ASSERT_EQ(silences.size(), 1u) << am.Silences().dump(1);
  EXPECT_EQ(silences[0]["status"]["state"], "expired");
  std::printf("canceled rollout: reconciled by job 3; %zu pre and %zu post keys; its silence %s\n", pre.size(),
              post.size(), silences[0]["status"]["state"].get<std::string>().c_str());
  healthy.Stop();
}

}  // namespace
}  // namespace sp::test
