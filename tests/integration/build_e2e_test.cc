// A pushed commit goes live (issue 5), against real parts: a `git daemon`
// remote made by the test, a `sallyport server` that polls it (or gets a
// signed webhook), runs the repository's pipeline, builds the image FROM
// scratch on a private dockerd, pushes it to the authenticated
// docker-registry and rolls the digest out behind a strict HAProxy under
// load.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "build/build_service.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "support/cli_runner.h"
#include "support/docker_fixture.h"
#include "support/git_repo.h"
#include "support/haproxy_fixture.h"
#include "support/load_generator.h"
#include "support/rollout_scenario.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr char kUser[] = "builder";
constexpr char kPassword[] = "Sp-build-Pw-7f3e1a-not-in-argv";
constexpr char kHookSecret[] = "hook-secret-5d1c";

[[maybe_unused]] ::testing::Environment* const kDockerEnvironment =
    ::testing::AddGlobalTestEnvironment(new DockerEnvironment(kUser, kPassword));

class BuildE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SP_REQUIRE_DOCKER_ENVIRONMENT();
    env_ = DockerEnvironment::Get();
    env_->docker().RemoveAllContainers();
    dir_ = std::make_unique<TempDir>("sp-build-e2e");
    db_ = *dir_ / "state.db";
    WriteFile(*dir_ / "registry-password", kPassword, 0600);
    WriteFile(*dir_ / "hook-secret", kHookSecret, 0600);
    haproxy_ = std::make_unique<HaproxyFixture>(dir_->path(), ScenarioHaproxy(3, &ports_));
    auto st = haproxy_->Start();
    ASSERT_TRUE(st) << st.error().message;
    WriteFile(*dir_ / "inventory.yml", InventoryYaml({haproxy_->socket_path(), ports_, "", env_->docker().host()}));
    ASSERT_EQ(RunSallyport({"inventory", "apply", "-f", *dir_ / "inventory.yml", "--store", db_, "--yes"}).exit_code, 0);

    // The remote: a bare repository served by git daemon on loopback.
    std::filesystem::create_directories(*dir_ / "git");
    work_ = *dir_ / "work";
    InitRemoteAndWorkingCopy(*dir_ / "git/sample.git", work_);
    git_port_ = FreePort();
    git_daemon_ = Daemon({"git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + (*dir_ / "git"),
                          "--listen=127.0.0.1", "--port=" + std::to_string(git_port_), *dir_ / "git"},
                         *dir_ / "git-daemon.log");
    ASSERT_TRUE(WaitFor([&] { return PortOpen(git_port_); }, std::chrono::seconds(10))) << ReadFile(*dir_ / "git-daemon.log");
    url_ = "git://127.0.0.1:" + std::to_string(git_port_) + "/sample.git";
    auto added = RunSallyport({"project", "add", "--name", "sample", "--git", url_, "--webhook-secret",
                               "file:" + (*dir_ / "hook-secret"), "--store", db_});
    ASSERT_EQ(added.exit_code, 0) << added.err;
    // The admin binds the registry password the commits name, for that registry only.
    auto bound = RunSallyport({"credential", "set", "sample", "registry", "--file", *dir_ / "registry-password",
                               "--host", env_->registry().address(), "--store", db_});
    ASSERT_EQ(bound.exit_code, 0) << bound.err;

    // The service's working copy.
    std::filesystem::copy_file(BuildBinary("sp-sample-app"), work_ + "/sp-sample-app");
    const auto& reg = env_->registry();
    WriteFile(work_ + "/sallyport.yml",
              "version: 1\n"
              "service: sample\n"
              "stack: demo\n"
              "image: {repository: " + reg.address() + "/sample}\n"
              "registry:\n"
              "  address: " + reg.address() + "\n"
              "  username: " + kUser + "\n"
              "  password: {credential: registry}\n"
              "releases:\n"
              "  web:\n"
              "    runtime: docker\n"
              "    port: 8080\n"
              "    health: {path: /health, interval: 100ms, timeout: 1s, retries: 30}\n"
              "    stop_timeout: 5s\n"
              "    strategy: {batch: 1, drain_timeout: 30s, ready_timeout: 10s}\n"
              "pipeline:\n"
              "  - {name: unit-tests, run: [sh, -c, \"test -x sp-sample-app && echo tests passed\"], timeout: 1m}\n"
              "  - {name: image, kind: image, timeout: 5m}\n"
              "  - {name: push, kind: push, timeout: 5m}\n"
              "  - {name: deploy, kind: deploy, timeout: 10m}\n");
  }

  void TearDown() override {
    for (auto& a : agents_) a.Stop();
    if (env_ && env_->ready()) env_->docker().RemoveAllContainers();
  }

  void StartServer(const std::string& poll_every, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--poll-every", poll_every, "--builds", "1", "--docker-host", env_->docker().host()};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(*dir_, db_, "server", args);
    ASSERT_TRUE(server_->ready()) << server_->Log();
  }
  // `sallyport agent run` with a token bound to `label`, once it claims.
  void StartAgent(const std::string& name, const std::string& label, const std::vector<std::string>& extra = {}) {
    const std::string token = CreateAgentToken(*dir_, db_, name, label);
    ASSERT_FALSE(token.empty());
    std::vector<std::string> argv{BuildBinary("sallyport"), "agent", "run", "--server", server_->url(), "--token-file", token};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const std::string log = *dir_ / (name + ".log");
    agents_.emplace_back(argv, log);
    ASSERT_EQ(WaitForStart(agents_.back(), [&] { return ReadFile(log).find("claiming for") != std::string::npos; },
                           std::chrono::seconds(10)),
              StartWait::kReady)
        << ReadFile(log);
  }

  // Commits the service at `version` (its Dockerfile's APP_VERSION) on the
  // current branch and pushes it; returns the commit.
  std::string CommitAndPush(const std::string& version, const std::string& branch = "integration") {
    WriteFile(work_ + "/Dockerfile",
              "FROM scratch\n"
              "COPY sp-sample-app /sp-sample-app\n"
              "ENV APP_VERSION=" + version + "\n"
              "ENTRYPOINT [\"/sp-sample-app\"]\n");
    Git(work_, {"add", "-A"});
    Git(work_, {"commit", "-q", "-m", "release " + version});
    Git(work_, {"push", "-q", "origin", "HEAD:refs/heads/" + branch});
    return Git(work_, {"rev-parse", "HEAD"});
  }

  json Builds() {
    httplib::Client c = server_->Client();
    c.set_default_headers({{"Authorization", Bearer()}});
    auto r = c.Get("/v1/builds");
    return r ? json::parse(r->body, nullptr, false)["builds"] : json::array();
  }
  json BuildOf(const std::string& sha) {
    for (const auto& b : Builds()) {
      if (b.value("sha", "") == sha) return b;
    }
    return json();
  }
  // Polls until the build of `sha` has finished (or 5 min); returns it.
  json WaitBuilt(const std::string& sha) {
    json b;
    WaitFor(
        [&] {
          b = BuildOf(sha);
          const std::string s = b.is_object() ? b.value("status", "") : "";
          return !s.empty() && s != "queued" && s != "running";
        },
        std::chrono::minutes(5), std::chrono::milliseconds(100));
    return b;
  }
  std::string Log(int64_t id) {
    return RunSallyport({"build", "logs", std::to_string(id), "--server", server_->url()}).out;
  }
  // Keep-alive load through HAProxy's frontend, half of it slow (bounded: 10 min).
  auto LoadThroughHaproxy() {
    LoadOptions lo;
    lo.port = haproxy_->frontend_port();
    lo.slow_fraction = 0.5;
    lo.max_duration = std::chrono::seconds(600);
    lo.work_dir = dir_->path();
    return StartLoad(lo);
  }
  void ExpectServing(const std::string& version) {
    for (int p : ports_) EXPECT_EQ(VersionOn(p), version) << "port " << p;
    ExpectAllUp(*haproxy_, 3);
  }

  DockerEnvironment* env_ = nullptr;
  std::unique_ptr<TempDir> dir_;
  std::string db_, work_, url_;
  int git_port_ = 0;
  Daemon git_daemon_;
  std::vector<int> ports_;
  std::unique_ptr<HaproxyFixture> haproxy_;
  std::unique_ptr<ServerProcess> server_;
  std::vector<Daemon> agents_;
};

// The whole decoupled chain: the server only polls and queues; a builder
// agent runs the pipeline (checkout, image, push) and asks for the deploy;
// the network's agent runs the rollout. Neither agent's lines are lost.
TEST_F(BuildE2eTest, APushedCommitGoesLiveByPollingWithZeroFailedRequests) {
  StartServer("300ms", {"--builds-on", "agents"});
  StartAgent("builder", "role=builder", {"--docker-host", env_->docker().host(), "--work-dir", *dir_ / "builder-work"});
  StartAgent("net-agent", "network=local");
  env_->tokens().Clear();
  const std::string c1 = CommitAndPush("c1");
  json b1 = WaitBuilt(c1);
  ASSERT_EQ(b1.value("status", ""), "succeeded") << b1.dump() << Log(b1.value("id", int64_t{0})) << server_->Log();
  // The registry is HTTPS with token auth: the build's push asked its token
  // server for push access to the repository (the hosts share the builder's
  // engine here, so the rollout's preflight finds the image on them and asks nothing).
  bool push_scope = false;
  for (const auto& asked : env_->tokens().requests()) {
    for (const auto& scope : asked.scopes) {
      push_scope = push_scope || (asked.user == kUser && scope.rfind("repository:sample:", 0) == 0 &&
                                  scope.find("push") != std::string::npos);
    }
  }
  EXPECT_TRUE(push_scope) << "no token for pushing repository sample was asked";
  EXPECT_EQ(b1.value("trigger", ""), "poll");
  EXPECT_EQ(b1.value("deployment", ""), "integration");
  EXPECT_THAT(b1.value("artifact", ""), HasSubstr("/sample@sha256:")) << "the artifact is the digest";
  ExpectServing("c1");
  const std::string log1 = Log(b1.value("id", int64_t{0}));
  EXPECT_THAT(log1, HasSubstr("claimed by agent builder"));
  EXPECT_THAT(log1, HasSubstr("tests passed"));
  EXPECT_THAT(log1, HasSubstr("registry " + env_->registry().address() + ": TLS verified, credentials accepted"));
  EXPECT_THAT(log1, HasSubstr("the server queued the deploy as rollout job"));
  EXPECT_THAT(log1, HasSubstr("done, out of rotation")) << "the network agent's lines, copied into the build's log";
  EXPECT_THAT(log1, HasSubstr("succeeded by net-agent"));
  auto jobs = RunSallyport({"job", "list", "--store", db_});
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("build +succeeded +1/3 builder"));
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("rollout +succeeded +1/3 net-agent"));
  EXPECT_FALSE(std::filesystem::exists(*dir_ / ("builder-work/build-" + std::to_string(b1.value("id", 0)))))
      << "the workspace is removed";

  auto load = LoadThroughHaproxy();
  ASSERT_TRUE(load);
  const auto pushed = std::chrono::steady_clock::now();
  const int64_t pushed_wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const std::string c2 = CommitAndPush("c2");
  json b2 = WaitBuilt(c2);
  const auto live = std::chrono::steady_clock::now();
  // Where the time went (bench/push_to_live.sh collects these lines): from
  // the push to the build's creation (polling), to its start on the builder
  // agent, then each step as the build records it.
  {
    httplib::Client c = server_->Client();
    c.set_default_headers({{"Authorization", Bearer()}});
    auto r = c.Get("/v1/builds/" + std::to_string(b2.value("id", int64_t{0})));
    json rec = r ? json::parse(r->body, nullptr, false) : json();
    std::string phases = "phases (ms): detect " + std::to_string(rec.value("created_ms", int64_t{0}) - pushed_wall) +
                         ", queued " + std::to_string(rec.value("started_ms", int64_t{0}) - rec.value("created_ms", int64_t{0}));
    int64_t prev_end = rec.value("started_ms", int64_t{0});
    for (const auto& st : rec.value("steps", json::array())) {
      const int64_t s0 = st.value("started_ms", int64_t{0}), s1 = st.value("finished_ms", int64_t{0});
      phases += ", gap " + std::to_string(s0 - prev_end) + ", " + st.value("name", "") + " " + std::to_string(s1 - s0);
      prev_end = s1;
    }
    std::printf("%s\n", phases.c_str());
  }
  auto result = load->Stop();
  ASSERT_EQ(b2.value("status", ""), "succeeded") << b2.dump() << Log(b2.value("id", int64_t{0}));
  ASSERT_TRUE(result) << result.error().message;
  std::printf("push -> c2 live through HAProxy in %lld ms; load: %s\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(live - pushed).count()),
              result->Summary().c_str());
  EXPECT_GT(result->requests, 100);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  ExpectServing("c2");
  const std::string log = Log(b2.value("id", int64_t{0}));
  EXPECT_THAT(log, HasSubstr("tests passed"));
  EXPECT_THAT(log, HasSubstr("build succeeded"));
  EXPECT_EQ(log.find(kPassword), std::string::npos) << "the registry password is in the log";

  // The same commit again (another poll, a manual start): nothing new.
  auto again = RunSallyport({"build", "start", "sample", "integration", "--server", server_->url()});
  EXPECT_THAT(again.out, HasSubstr("built before")) << again.out << again.err;
  // A webhook for the commit the poller already saw starts nothing new.
  const std::string body = json{{"ref", "refs/heads/integration"}, {"after", c2}}.dump();
  httplib::Client hook = server_->Client();
  auto late = hook.Post("/hooks/github/sample",
                        httplib::Headers{{"X-Hub-Signature-256", HubSignature(kHookSecret, body)},
                                         {"X-GitHub-Delivery", "after-poll"}},
                        body, "application/json");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 200) << late->body;
  EXPECT_THAT(late->body, HasSubstr("nothing started"));
  EXPECT_EQ(Builds().size(), 2u);
}

// One agent whose token may run both the build and the network's rollout:
// it runs the build, and the build's rollout itself (a job at a time, it
// must not wait for another agent that does not exist).
TEST_F(BuildE2eTest, OneAgentForBothRunsTheBuildAndItsOwnRollout) {
  // Here the admin binds the registry password as a docker credential helper
  // the server runs (as ECR or GCR users have it), for that registry only.
  const std::string helper_bin = *dir_ / "helper-bin", asked = *dir_ / "helper-asked";
  std::filesystem::create_directories(helper_bin);
  WriteFile(helper_bin + "/docker-credential-test",
            "#!/bin/sh\n"
            "[ \"$1\" = get ] || exit 2\n"
            "read -r server\n"
            "printf '%s\\n' \"$server\" >>'" + asked + "'\n"
            "printf '{\"Username\":\"x\",\"Secret\":\"%s\"}\\n' \"$(cat '" + *dir_ / "registry-password" + "')\"\n",
            0755);
  auto rebound = RunSallyport({"credential", "set", "sample", "registry", "--helper", "test", "--host",
                               env_->registry().address(), "--store", db_});
  ASSERT_EQ(rebound.exit_code, 0) << rebound.err;
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  ::setenv("PATH", (helper_bin + ":" + path).c_str(), 1);  // The server's, inherited.
  StartServer("300ms", {"--builds-on", "agents"});
  ::setenv("PATH", path.c_str(), 1);
  auto t = RunSallyport({"token", "create", "--name", "solo", "--label", "role=builder", "--label",
                         "network=local", "--store", db_});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  WriteFile(*dir_ / "solo.token", t.out, 0600);
  const std::string log = *dir_ / "solo.log";
  agents_.emplace_back(std::vector<std::string>{BuildBinary("sallyport"), "agent", "run", "--server", server_->url(),
                                                "--token-file", *dir_ / "solo.token", "--docker-host",
                                                env_->docker().host(), "--work-dir", *dir_ / "solo-work"},
                       log);
  ASSERT_EQ(WaitForStart(agents_.back(), [&] { return ReadFile(log).find("claiming for") != std::string::npos; },
                         std::chrono::seconds(10)),
            StartWait::kReady);
  const auto pushed = std::chrono::steady_clock::now();
  const std::string c1 = CommitAndPush("s1");
  json b = WaitBuilt(c1);
  ASSERT_EQ(b.value("status", ""), "succeeded") << b.dump() << Log(b.value("id", int64_t{0})) << ReadFile(log);
  EXPECT_LT(std::chrono::steady_clock::now() - pushed, std::chrono::minutes(2)) << "waited for another agent";
  ExpectServing("s1");
  const std::string build_log = Log(b.value("id", int64_t{0}));
  EXPECT_THAT(build_log, HasSubstr("running it here"));
  EXPECT_THAT(build_log, HasSubstr("succeeded by solo"));
  // The server asked the helper for this registry (for the build's push and
  // the rollout's pulls), and the value never reached the build's log.
  const std::string helper_log = ReadFile(asked);
  EXPECT_THAT(helper_log, HasSubstr(env_->registry().address() + "\n"));
  EXPECT_EQ(build_log.find(kPassword), std::string::npos);
  auto jobs = RunSallyport({"job", "list", "--store", db_});
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("build +succeeded +1/3 solo"));
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("rollout +succeeded +1/3 solo"));
}

// A server that deploys builds itself (--deploy-on server), killed -9 in
// the middle of a rollout under load: started again, it finishes that
// rollout forward with no command typed (as `rollout resume` would) — every
// host in rotation on the new version, the lock free, 0 failed requests.
// Two points: after a host's old version stopped (nothing serves there),
// and after its new one started (not yet health-checked); the unit tier
// sweeps every step of the resume (EngineRecoveryTest).
TEST_F(BuildE2eTest, AServerKilledMidRolloutFinishesItForwardWhenItStartsAgain) {
  StartServer("300ms", {"--deploy-on", "server"});
  const std::string c1 = CommitAndPush("k1");
  json b1 = WaitBuilt(c1);
  ASSERT_EQ(b1.value("status", ""), "succeeded") << b1.dump() << Log(b1.value("id", int64_t{0})) << server_->Log();
  ExpectServing("k1");
  server_->daemon().Stop();

  auto load = LoadThroughHaproxy();
  ASSERT_TRUE(load);
  int round = 0;
  for (const auto& [point, version] : {std::pair{"app2:stop", "k2"}, std::pair{"app3:start", "k3"}}) {
    SCOPED_TRACE(point);
    ++round;
    // The test tree's binary stops itself (SIGSTOP) once that step ended.
    ServerProcess halting(*dir_, db_, "server-halting-" + std::to_string(round),
                          {"--poll-every", "300ms", "--builds", "1", "--deploy-on", "server", "--docker-host",
                           env_->docker().host()},
                          ServerProcess::Transport::kTls, BuildBinary("sallyport-test"),
                          {{"SP_TESTBIN_HALT_AFTER", point}});
    ASSERT_TRUE(halting.ready()) << halting.Log();
    CommitAndPush(version);
    ASSERT_TRUE(WaitFor([&] { return halting.Log().find("TEST halting after") != std::string::npos; },
                        std::chrono::seconds(120)))
        << halting.Log();
    halting.daemon().Signal(SIGKILL);
    ASSERT_TRUE(WaitFor([&] { return !halting.daemon().Alive(); }, std::chrono::seconds(10)));
    auto held = RunSallyport({"lock", "list", "--store", db_});
    EXPECT_THAT(held.out, ::testing::ContainsRegex("demo/web/integration +server [^ ]+@[^ ]+ pid [0-9]+"))
        << "the dead server's lock: " << held.out;

    // Started again (the shipped binary, no polling): nothing is typed.
    const auto restarted = std::chrono::steady_clock::now();
    ServerProcess again(*dir_, db_, "server-again-" + std::to_string(round),
                        {"--poll-every", "0", "--deploy-on", "server", "--docker-host", env_->docker().host()});
    ASSERT_TRUE(again.ready()) << again.Log();
    ASSERT_TRUE(WaitFor([&] { return again.Log().find("resumed: ") != std::string::npos; }, std::chrono::seconds(60),
                        std::chrono::milliseconds(100)))
        << again.Log();
    const auto took = std::chrono::steady_clock::now() - restarted;
    const std::string log = again.Log();
    EXPECT_THAT(log, HasSubstr("left running by a server process that died; finishing it forward"));
    EXPECT_THAT(log, HasSubstr("resumed: succeeded")) << log;
    std::printf("killed at %s; started again: rollout finished forward in %lld ms\n", point,
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
    ExpectServing(version);
    auto locks = RunSallyport({"lock", "list", "--store", db_});
    EXPECT_EQ(locks.out.find("demo/web/integration"), std::string::npos) << "the lock is not free: " << locks.out;
    again.daemon().Stop();
  }
  auto result = load->Stop();
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load across both kills and resumes: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 100);
  EXPECT_EQ(result->failures(), 0) << result->raw;
}

// A server that runs its builds' rollouts itself (--deploy-on server)
// masks what it was handed: the app's env value from a credential reaches
// the failing host's health answer ("unhealthy (version …)"), and the
// build's log and error, the rollout's record and the server's log show ***;
// neither the store nor the log holds the value.
TEST_F(BuildE2eTest, AServerRunRolloutMasksTheSecretsItWasHanded) {
  constexpr const char* kSecret = "srv-run-s3cret-5b7";
  WriteFile(*dir_ / "app-secret", kSecret, 0600);
  auto bound = RunSallyport({"credential", "set", "sample", "app_secret", "--file", *dir_ / "app-secret",
                             "--deployment", "integration", "--store", db_});
  ASSERT_EQ(bound.exit_code, 0) << bound.err;
  std::string yml = ReadFile(work_ + "/sallyport.yml");
  const std::string at = "    stop_timeout: 5s\n";
  yml.insert(yml.find(at), "    env:\n      APP_VERSION: {credential: app_secret}\n      SAMPLE_HEALTH_FAIL_PORTS: \"" +
                               std::to_string(ports_[0]) + "\"\n");
  WriteFile(work_ + "/sallyport.yml", yml);
  StartServer("300ms", {"--deploy-on", "server"});
  const std::string c1 = CommitAndPush("m1");
  json b = WaitBuilt(c1);
  ASSERT_EQ(b.value("status", ""), "failed") << b.dump() << server_->Log();
  const std::string log = Log(b.value("id", int64_t{0}));
  EXPECT_THAT(log, HasSubstr("unhealthy (version ***)")) << log;
  auto rollouts = RunSallyport({"rollout", "list", "--server", server_->url(), "--output", "json"});
  const json list = json::parse(rollouts.out, nullptr, false);
  ASSERT_TRUE(list.is_object() && !list["rollouts"].empty()) << rollouts.out << rollouts.err;
  auto show = RunSallyport({"rollout", "show", list["rollouts"][0].value("id", ""), "--server", server_->url(),
                            "--output", "json"});
  EXPECT_THAT(show.out, HasSubstr("unhealthy (version ***)")) << show.out;
  const std::string seen = b.dump() + log + rollouts.out + show.out + server_->Log() + ReadFile(db_) +
                           (std::filesystem::exists(db_ + "-wal") ? ReadFile(db_ + "-wal") : "");
  EXPECT_EQ(seen.find(kSecret), std::string::npos);
  std::printf("the failed host, as the build's log says it: %s\n",
              log.substr(log.find("unhealthy"), log.find('\n', log.find("unhealthy")) - log.find("unhealthy")).c_str());
}

// A builder that does not trust the registry's certificate stops the push
// before docker is handed the password: the build fails naming the
// registry, and its token realm was never asked (no credentials went out).
TEST_F(BuildE2eTest, APushToARegistryTheBuilderDoesNotTrustFailsBeforeAnyCredentialIsSent) {
  TempDir empty("sp-no-certs");
  const char* certs = std::getenv("SALLYPORT_REGISTRY_CERTS_D");
  const std::string saved = certs ? certs : "";
  ::setenv("SALLYPORT_REGISTRY_CERTS_D", empty.path().c_str(), 1);  // The server's, inherited.
  StartServer("300ms");
  ::setenv("SALLYPORT_REGISTRY_CERTS_D", saved.c_str(), 1);
  env_->tokens().Clear();
  const std::string c1 = CommitAndPush("t1");
  json b = WaitBuilt(c1);
  EXPECT_EQ(b.value("status", ""), "failed") << b.dump();
  const std::string error = b.value("error", "");
  EXPECT_THAT(error, HasSubstr("push: " + env_->registry().address() + ": its TLS certificate is not trusted")) << error;
  EXPECT_THAT(Log(b.value("id", int64_t{0})), ::testing::Not(HasSubstr("TLS verified")));
  EXPECT_TRUE(env_->tokens().requests().empty()) << "the registry's token realm was asked";
}

// Builds in the server (the default), the deploy through the queue (the
// default) to the network's agent.
TEST_F(BuildE2eTest, ASignedWebhookStartsTheBuildAndBadOrReplayedOnesStartNothing) {
  StartServer("0");  // No polling: only the webhook can start it.
  StartAgent("net-agent", "network=local");
  const std::string c1 = CommitAndPush("w1");
  const std::string body = json{{"ref", "refs/heads/integration"}, {"after", c1}}.dump();
  httplib::Client c = server_->Client();
  auto bad = c.Post("/hooks/github/sample",
                    httplib::Headers{{"X-Hub-Signature-256", HubSignature("wrong", body)}, {"X-GitHub-Delivery", "d-1"}},
                    body, "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto none = c.Post("/hooks/github/sample", httplib::Headers{{"X-GitHub-Delivery", "d-1"}}, body, "application/json");
  EXPECT_EQ(none->status, 401) << "no signature";
  EXPECT_TRUE(Builds().empty()) << "nothing started";

  const auto sent = std::chrono::steady_clock::now();
  auto good = c.Post("/hooks/github/sample",
                     httplib::Headers{{"X-Hub-Signature-256", HubSignature(kHookSecret, body)}, {"X-GitHub-Delivery", "d-2"}},
                     body, "application/json");
  ASSERT_TRUE(good);
  ASSERT_EQ(good->status, 202) << good->body;
  auto replay = c.Post("/hooks/github/sample",
                       httplib::Headers{{"X-Hub-Signature-256", HubSignature(kHookSecret, body)}, {"X-GitHub-Delivery", "d-2"}},
                       body, "application/json");
  EXPECT_EQ(replay->status, 200) << "a replayed delivery starts nothing";
  json b = WaitBuilt(c1);
  ASSERT_EQ(b.value("status", ""), "succeeded") << b.dump() << Log(b.value("id", int64_t{0}));
  std::printf("webhook -> w1 live in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - sent)
                                         .count()));
  EXPECT_EQ(b.value("trigger", ""), "webhook");
  ExpectServing("w1");
  const std::string log = Log(b.value("id", int64_t{0}));
  EXPECT_THAT(log, HasSubstr("queued rollout"));
  EXPECT_THAT(log, HasSubstr("succeeded by net-agent"));
  EXPECT_EQ(Builds().size(), 1u);
}

}  // namespace
}  // namespace sp::test
