// End to end with the docker runtime: the real `sallyport` CLI, a private
// dockerd, Debian's docker-registry with htpasswd auth, images by digest, a
// strict HAProxy and wrk load. Proves zero failed requests, the /dev/log
// volume, no registry credentials left behind, rollback with the registry
// down, and kill -9 + resume.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/docker_fixture.h"
#include "support/haproxy_fixture.h"
#include "support/load_generator.h"
#include "support/rollout_scenario.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using nlohmann::json;

constexpr char kUser[] = "deployer";
constexpr char kPassword[] = "Sp-e2e-Pw-41c9d2-not-in-argv";

[[maybe_unused]] ::testing::Environment* const kDockerEnvironment =
    ::testing::AddGlobalTestEnvironment(new DockerEnvironment(kUser, kPassword));

class DockerRolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SP_REQUIRE_DOCKER_ENVIRONMENT();
    env_ = DockerEnvironment::Get();
    env_->docker().RemoveAllContainers();
    dir_ = std::make_unique<TempDir>("sp-dkr");
    WriteFile(*dir_ / "registry-password", kPassword, 0600);
    syslog_ = std::make_unique<SyslogListener>(*dir_ / "log.sock");
    ASSERT_TRUE(syslog_->ok());
    haproxy_ = std::make_unique<HaproxyFixture>(dir_->path(), ScenarioHaproxy(3, &ports_));
    auto st = haproxy_->Start();
    ASSERT_TRUE(st) << st.error().message;
    const auto& reg = env_->registry();
    WriteFile(*dir_ / "sallyport.yml",
              "version: 1\n"
              "service: sample\n"
              "stack: demo\n"
              "image: {repository: " + reg.address() + "/sample}\n"
              "registry:\n"
              "  address: " + reg.address() + "\n"
              "  username: " + kUser + "\n"
              "  password: {file: " + *dir_ / "registry-password" + "}\n"
              "releases:\n"
              "  web:\n"
              "    runtime: docker\n"
              "    port: 8080\n"
              "    volumes: [\"" + syslog_->path() + ":/dev/log\"]\n"
              "    health: {path: /health, interval: 100ms, timeout: 1s, retries: 30}\n"
              "    stop_timeout: 5s\n"
              "    strategy: {batch: 1, drain_timeout: 30s, ready_timeout: 10s}\n");
    WriteFile(*dir_ / "inventory.yml", InventoryYaml({haproxy_->socket_path(), ports_, "", env_->docker().host()}));
    for (const char* v : {"v1", "v2"}) {
      auto digest = BuildAndPushSampleImage(env_->docker(), reg, std::string("sample:") + v, v);
      ASSERT_TRUE(digest) << digest.error().message;
      images_[v] = *digest;
      // Rollouts must pull: start from an engine without the image.
      (void)RemoveImage(env_->docker(), *digest);
    }
  }

  void TearDown() override {
    if (env_ && env_->ready()) env_->docker().RemoveAllContainers();
  }

  std::vector<std::string> Args(const std::string& version) {
    return {"rollout", "run", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d", "integration",
            "--store", *dir_ / "state.db", "--artifact", images_[version], "--version", version};
  }
  std::vector<std::string> Scope(const std::string& verb) {
    return {"rollout", verb, "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d", "integration",
            "--store", *dir_ / "state.db"};
  }

  std::string VersionOn(int i) { return ::sp::test::VersionOn(ports_[i - 1]); }
  int RunningOn(int i) {
    std::string out = env_->docker().DockerOut(
        {"ps", "-q", "--filter", "label=sallyport.host=app" + std::to_string(i)});
    return out.empty() ? 0 : static_cast<int>(std::count(out.begin(), out.end(), '\n')) + 1;
  }
  void ExpectAllUp() { ::sp::test::ExpectAllUp(*haproxy_, 3); }

  DockerEnvironment* env_ = nullptr;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<SyslogListener> syslog_;
  std::vector<int> ports_;
  std::unique_ptr<HaproxyFixture> haproxy_;
  std::map<std::string, std::string> images_;
};

TEST_F(DockerRolloutTest, RollingReleaseByDigestUnderLoadHasZeroFailedRequests) {
  auto v1 = RunSallyport(Args("v1"));
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  ExpectAllUp();
  // Marker: any credentials directory created from now on must be gone afterwards.
  const auto start = std::filesystem::file_time_type::clock::now();

  LoadOptions lo;
  lo.port = haproxy_->frontend_port();
  lo.slow_fraction = 0.5;
  lo.work_dir = dir_->path();
  auto load = StartLoad(lo);
  ASSERT_TRUE(load);
  auto args = Args("v2");
  args.insert(args.end(), {"--output", "json"});
  auto r = RunSallyport(args);
  auto result = load->Stop();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load during docker rollout: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 50);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  int in_flight = 0;
  for (const auto& [host, n] : SessionsAtDrain(r.out)) in_flight += n;
  EXPECT_GT(in_flight, 0) << "no session was in flight when a drain began";
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(VersionOn(i), "v2") << "app" << i;
    EXPECT_EQ(RunningOn(i), 1) << "app" << i;
  }
  ExpectAllUp();
  // The app's syslog line crossed the /dev/log volume to the host's listener.
  EXPECT_TRUE(syslog_->WaitForLine("sp-sample-app v2 started", std::chrono::seconds(5)))
      << "syslog lines received: " << syslog_->Lines().size();
  // The password never reached argv or output.
  EXPECT_EQ(r.out.find(kPassword), std::string::npos);
  EXPECT_EQ(r.err.find(kPassword), std::string::npos);
  // No registry credentials remain on the host: the runtime's per-pull
  // credentials directories (mktemp -t sp-docker.*) made since the rollout
  // began are all gone, and HOME's docker config has no entry for the registry.
  const std::string reg = env_->registry().address();
  std::error_code ec;
  for (std::filesystem::directory_iterator it(std::filesystem::temp_directory_path(), ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ec2;
    if (it->path().filename().string().rfind("sp-docker.", 0) != 0 || it->last_write_time(ec2) < start) continue;
    ADD_FAILURE() << "credentials directory left behind: " << it->path();
  }
  const char* home = std::getenv("HOME");
  if (home) {
    EXPECT_EQ(ReadFile(std::string(home) + "/.docker/config.json").find(reg), std::string::npos);
  }
}

TEST_F(DockerRolloutTest, PreflightRefusesAMissingImageBadCredentialsOrAnUntrustedRegistryAndTouchesNothing) {
  auto v1 = RunSallyport(Args("v1"));
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  images_["missing"] = env_->registry().address() + "/sample@sha256:" + std::string(64, '0');
  auto r = RunSallyport(Args("missing"));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("preflight"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
  WriteFile(*dir_ / "registry-password", "wrong-password", 0600);
  r = RunSallyport(Args("v2"));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("rejected the credentials"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("wrong-password"), std::string::npos);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(VersionOn(i), "v1") << "app" << i;
    EXPECT_EQ(RunningOn(i), 1);
  }
  ExpectAllUp();
  // A registry whose certificate this machine does not trust (no CA for it
  // in certs.d): a clear message naming it, nothing touched, no plain HTTP.
  WriteFile(*dir_ / "registry-password", kPassword, 0600);
  TempDir no_certs("sp-no-certs");
  env_->tokens().Clear();
  r = RunSallyport(Args("v2"), {{"SALLYPORT_REGISTRY_CERTS_D", no_certs.path()}});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("preflight: artifact " + images_["v2"] + ": " + env_->registry().address() +
                       ": its TLS certificate is not trusted"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(env_->tokens().requests().empty());
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v1") << "app" << i;
  ExpectAllUp();
}

// The registry password from a docker credential helper (as ECR or GCR users
// have it): asked for this registry, used by the preflight and every pull,
// never printed.
TEST_F(DockerRolloutTest, ACredentialHelperSuppliesTheRegistryPassword) {
  const std::string bin = *dir_ / "helper-bin";
  std::filesystem::create_directories(bin);
  const std::string asked = *dir_ / "helper-asked";
  WriteFile(bin + "/docker-credential-test",
            "#!/bin/sh\n"
            "[ \"$1\" = get ] || exit 2\n"
            "read -r server\n"
            "printf '%s\\n' \"$server\" >>'" + asked + "'\n"
            "printf '{\"Username\":\"" + std::string(kUser) + "\",\"Secret\":\"%s\"}\\n' \"$(cat '" +
                *dir_ / "registry-password" + "')\"\n",
            0755);
  std::string yml = ReadFile(*dir_ / "sallyport.yml");
  const std::string file_ref = "password: {file: " + *dir_ / "registry-password" + "}";
  ASSERT_NE(yml.find(file_ref), std::string::npos);
  yml.replace(yml.find(file_ref), file_ref.size(), "password: {helper: test}");
  WriteFile(*dir_ / "sallyport.yml", yml);
  const char* path = std::getenv("PATH");
  const std::map<std::string, std::string> env{{"PATH", bin + ":" + (path ? path : "/usr/bin:/bin")}};
  auto r = RunSallyport(Args("v1"), env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v1") << "app" << i;
  // Asked for this registry (preflight and pulls share one answer per rollout).
  EXPECT_EQ(ReadFile(asked), env_->registry().address() + "\n");
  EXPECT_EQ(r.out.find(kPassword), std::string::npos);
  EXPECT_EQ(r.err.find(kPassword), std::string::npos);
  // A wrong secret from the helper fails the preflight, naming the registry.
  WriteFile(*dir_ / "registry-password", "wrong-from-helper", 0600);
  auto bad = RunSallyport(Args("v2"), env);
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("registry " + env_->registry().address() + " rejected the credentials"), std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.err.find("wrong-from-helper"), std::string::npos);
}

// The health check is proven on the container that was started (its
// process holds the port: port_owner), and a stray process on a host's port
// (here the sample app started by hand, outside any container) fails the
// preflight naming its pid, before anything moves.
TEST_F(DockerRolloutTest, AStrayOnAHostsPortFailsPreflightNamingItAndTouchesNothing) {
  auto v1 = Args("v1");
  v1.insert(v1.end(), {"--output", "json"});
  auto first = RunSallyport(v1);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  int owners = 0;
  for (const auto& line : Split(first.out, '\n')) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("step", "") != "health" || j.value("phase", "") != "end") continue;
    const std::string owner = j["detail"].value("port_owner", "");
    EXPECT_THAT(owner, ::testing::MatchesRegex("pid [0-9]+ \\(sp-sample-app\\)")) << line;
    owners += !owner.empty();
  }
  EXPECT_EQ(owners, 3) << "each host's port attributed to its new container: " << first.out;
  // app2's container is stopped by hand, then a stray takes its port.
  const std::string app2 = Trim(env_->docker().DockerOut({"ps", "-q", "--filter", "label=sallyport.host=app2"}));
  ASSERT_FALSE(app2.empty());
  env_->docker().DockerOut({"stop", app2});
  Daemon stray({BuildBinary("sp-sample-app")}, *dir_ / "stray.log",
               {{"PORT", std::to_string(ports_[1])}, {"APP_VERSION", "stray"}});
  ASSERT_TRUE(WaitFor([&] { return VersionOn(2) == "stray"; }, std::chrono::seconds(5)));
  auto r = RunSallyport(Args("v2"));
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("port " + std::to_string(ports_[1]) + " on app2 is held by pid " +
                                          std::to_string(stray.pid()) + " (sp-sample-app), which no instance of "
                                          "web/integration started"));
  EXPECT_EQ(VersionOn(1), "v1");
  EXPECT_EQ(VersionOn(2), "stray");
  EXPECT_EQ(VersionOn(3), "v1");
}

TEST_F(DockerRolloutTest, RollbackWorksWithTheRegistryDown) {
  ASSERT_EQ(RunSallyport(Args("v1")).exit_code, 0);
  ASSERT_EQ(RunSallyport(Args("v2")).exit_code, 0);
  env_->registry().Stop();
  auto r = RunSallyport(Scope("undo"));
  auto resumed = env_->registry().Resume();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(resumed) << resumed.error().message;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v1") << "app" << i;
  ExpectAllUp();
}

TEST_F(DockerRolloutTest, KillDashNineAfterStopThenResumeConverges) {
  ASSERT_EQ(RunSallyport(Args("v1")).exit_code, 0);
  auto args = Args("v2");
  args.insert(args.end(), {"--output", "json"});
  auto r = StreamSallyport(args, [](const std::string& line) {
    auto j = json::parse(line, nullptr, false);
    return !j.is_discarded() && j.value("host", "") == "app2" && j.value("step", "") == "stop" &&
           j.value("phase", "") == "end";
  });
  ASSERT_EQ(r.exit_code, 137) << r.out;
  auto resumed = RunSallyport({"rollout", "resume", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml",
                               "-d", "integration", "--store", *dir_ / "state.db"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  ExpectAllUp();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(RunningOn(i), 1) << "app" << i;
    EXPECT_EQ(VersionOn(i), "v2") << "app" << i;
  }
}

}  // namespace
}  // namespace sp::test
