// DockerRuntime against a real, private dockerd and a real registry with
// htpasswd auth (see support/docker_fixture.h). One engine and one registry
// serve the whole binary; each test is self-contained so ctest can run them
// one per process.
//
// A missing or unstartable engine FAILS these tests; SP_REQUIRE_DOCKER=0
// turns that into a skip with the reason.
#include "runtime/docker/docker_runtime.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/text.h"
#include "support/docker_fixture.h"
#include "support/http_get.h"
#include "support/test_util.h"
#include "transport/local/local_transport.h"

namespace sp::test {
namespace {

using std::chrono::milliseconds;
using Json = nlohmann::json;

constexpr char kUser[] = "deployer";
constexpr char kPassword[] = "Reg-Pw-7f3a9c1e-never-in-argv";

[[maybe_unused]] ::testing::Environment* const kDockerEnvironment =
    ::testing::AddGlobalTestEnvironment(new DockerEnvironment(kUser, kPassword));

int64_t ElapsedMs(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

// Forwards to LocalTransport and records every command, its stdin, and every
// directory `mktemp` created (to prove they are gone afterwards).
class RecordingTransport final : public Transport {
 public:
  struct Call {
    std::vector<std::string> argv;
    std::string stdin_data;
  };
  Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) override {
    auto r = inner_.Run(host, spec);
    std::lock_guard l(mu_);
    calls_.push_back({spec.argv, spec.stdin_data});
    if (r && r->ok() && !spec.argv.empty() && spec.argv[0] == "mktemp") temp_dirs_.push_back(Trim(r->out));
    return r;
  }
  Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) override {
    return inner_.WriteFile(host, path, content, mode);
  }
  Status CopyFile(const HostRef& host, const std::string& local_path, const std::string& remote_path,
                  int mode) override {
    return inner_.CopyFile(host, local_path, remote_path, mode);
  }
  Status Check(const HostRef& host) override { return inner_.Check(host); }
  // Hands out the engine's socket (the API path) unless told to refuse, as a
  // transport without forwarding or an sshd that forbids it would.
  Result<std::string> UnixSocket(const HostRef& host, const std::string& remote_path) override {
    std::lock_guard l(mu_);
    ++socket_requests_;
    if (!allow_socket_) return Err(ErrorCode::kUnavailable, "forwarding refused (test)");
    return inner_.UnixSocket(host, remote_path);
  }
  void set_allow_socket(bool allow) {
    std::lock_guard l(mu_);
    allow_socket_ = allow;
  }
  int socket_requests() const {
    std::lock_guard l(mu_);
    return socket_requests_;
  }
  // True if some command ran `docker ... <sub> ...` (the CLI path of an operation).
  bool RanDocker(const std::string& sub) const {
    for (const auto& c : calls()) {
      if (c.argv.empty() || c.argv[0].find("docker") == std::string::npos) continue;
      for (size_t i = 1; i < c.argv.size(); ++i) {
        if (c.argv[i] == sub) return true;
        if (c.argv[i] == "-H" || c.argv[i] == "--config") ++i;  // Skip the option's value.
        else break;
      }
    }
    return false;
  }

  std::vector<Call> calls() const {
    std::lock_guard l(mu_);
    return calls_;
  }
  std::vector<std::string> temp_dirs() const {
    std::lock_guard l(mu_);
    return temp_dirs_;
  }
  // True if any argv entry of any command contains `needle`.
  bool AnyArgvContains(const std::string& needle) const {
    for (const auto& c : calls()) {
      for (const auto& a : c.argv) {
        if (a.find(needle) != std::string::npos) return true;
      }
    }
    return false;
  }

 private:
  LocalTransport inner_;
  mutable std::mutex mu_;
  std::vector<Call> calls_;
  std::vector<std::string> temp_dirs_;
  bool allow_socket_ = true;
  int socket_requests_ = 0;
};

// v1 and v2 of the sample app, pushed once per process and then removed from
// the engine so that a Pull really pulls.
struct SampleImages {
  std::string v1, v2, error;
};
const SampleImages& Images() {
  static const SampleImages images = [] {
    SampleImages out;
    auto* env = DockerEnvironment::Get();
    const auto t0 = std::chrono::steady_clock::now();
    auto v1 = BuildAndPushSampleImage(env->docker(), env->registry(), "sp-sample:v1", "v1");
    auto v2 = v1 ? BuildAndPushSampleImage(env->docker(), env->registry(), "sp-sample:v2", "v2") : v1;
    if (!v1 || !v2) {
      out.error = (!v1 ? v1 : v2).error().message;
      return out;
    }
    out.v1 = *v1;
    out.v2 = *v2;
    std::fprintf(stderr, "[timing] build+push v1,v2: %lld ms (%s, %s)\n", static_cast<long long>(ElapsedMs(t0)),
                 out.v1.c_str(), out.v2.c_str());
    for (const auto& ref : {out.v1, out.v2}) {
      if (auto st = RemoveImage(env->docker(), ref); !st) out.error = st.error().message;
    }
    return out;
  }();
  return images;
}

// Every test runs twice: through the Engine API (the socket handed out by the
// transport) and through the docker CLI (the socket refused: the fallback).
class DockerRuntimeIT : public ::testing::TestWithParam<bool> {
 protected:
  bool api() const { return GetParam(); }
  void SetUp() override {
    transport_.set_allow_socket(api());
    SP_REQUIRE_DOCKER_ENVIRONMENT();
    env_ = DockerEnvironment::Get();
    ASSERT_TRUE(env_->registry().Resume());
    ASSERT_EQ(Images().error, "") << "could not prepare the sample images";
    runtime_ = std::make_unique<DockerRuntime>(transport_, env_->docker().Options());
    target_.host = HostRef{"local", "127.0.0.1", "", 22};
    target_.release = "shop";
    target_.deployment = "web";
  }
  void TearDown() override {
    if (env_ == nullptr) return;
    env_->docker().RemoveAllContainers();
    (void)env_->registry().Resume();
  }

  RegistryAuth Auth(const std::string& password = kPassword) const {
    return RegistryAuth{env_->registry().address(), kUser, password};
  }
  AppSpec App(const std::string& artifact, const std::string& version, const std::string& rollout, int port) const {
    AppSpec app;
    app.release = target_.release;
    app.deployment = target_.deployment;
    app.rollout_id = rollout;
    app.version = version;
    app.artifact = artifact;
    app.port = port;
    app.stop_timeout = milliseconds(10'000);
    return app;
  }
  // Polls GET <path> until it answers 200; returns the body (empty on timeout).
  static std::string WaitForHttp(int port, const std::string& path, milliseconds timeout = milliseconds(15'000)) {
    std::string body;
    WaitFor(
        [&] {
          auto r = HttpGet(port, path);
          if (!r || r->status != 200) return false;
          body = r->body;
          return true;
        },
        timeout);
    return body;
  }
  Json Inspect(const std::string& name) const {
    std::string out = env_->docker().DockerOut({"inspect", "--type", "container", "--format", "{{json .}}", name});
    return out.empty() ? Json() : Json::parse(out, nullptr, false);
  }
  void ExpectTempDirsGone() const {
    for (const auto& d : transport_.temp_dirs()) EXPECT_FALSE(FileExists(d)) << d << " was left on the host";
  }

  DockerEnvironment* env_ = nullptr;
  RecordingTransport transport_;
  std::unique_ptr<DockerRuntime> runtime_;
  RuntimeTarget target_;
};

TEST_P(DockerRuntimeIT, PullByDigestWithAuthLeavesNoCredentialsOnTheHost) {
  AppSpec app = App(Images().v1, "v1", "r1", 0);
  ASSERT_TRUE(RemoveImage(env_->docker(), app.artifact));  // Whatever an earlier test pulled.
  auto before = runtime_->HasArtifact(target_, app);
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_FALSE(*before);

  const auto t0 = std::chrono::steady_clock::now();
  auto st = runtime_->Pull(target_, app, Auth());
  std::fprintf(stderr, "[timing] Pull with auth: %lld ms\n", static_cast<long long>(ElapsedMs(t0)));
  ASSERT_TRUE(st) << st.error().message;
  auto after = runtime_->HasArtifact(target_, app);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_TRUE(*after);

  EXPECT_FALSE(transport_.AnyArgvContains(kPassword));
  int on_stdin = 0;
  for (const auto& c : transport_.calls()) on_stdin += c.stdin_data == kPassword ? 1 : 0;
  if (api()) {
    // Through the API the credentials rode in the request header: no command
    // ran on the host at all, so nothing was written there.
    EXPECT_TRUE(transport_.calls().empty()) << transport_.calls().size() << " commands ran";
    EXPECT_EQ(on_stdin, 0);
  } else {
    // The per-call --config dir existed during the pull and is gone now.
    ASSERT_EQ(transport_.temp_dirs().size(), 1u);
    ExpectTempDirsGone();
    bool used_config_dir = false;
    for (const auto& c : transport_.calls()) {
      for (size_t i = 0; i + 1 < c.argv.size(); ++i) {
        if (c.argv[i] == "--config" && c.argv[i + 1] == transport_.temp_dirs()[0]) used_config_dir = true;
      }
    }
    EXPECT_TRUE(used_config_dir);
    EXPECT_EQ(on_stdin, 1) << "the password went over stdin only";
  }
  // Nothing was stored in the user's own Docker config.
  const char* home = std::getenv("HOME");
  const std::string user_config = std::string(home ? home : "/root") + "/.docker/config.json";
  if (FileExists(user_config)) {
    EXPECT_EQ(ReadFile(user_config).find(env_->registry().address()), std::string::npos)
        << user_config << " mentions the registry";
  }
}

TEST_P(DockerRuntimeIT, PullWithWrongPasswordFailsClearlyWithoutLeakingIt) {
  AppSpec app = App(Images().v2, "v2", "r1", 0);
  const std::string wrong = "Wrong-Pw-0d5e2b-should-not-leak";
  auto st = runtime_->Pull(target_, app, Auth(wrong));
  ASSERT_FALSE(st);
  std::fprintf(stderr, "[message] %s\n", st.error().message.c_str());
  // The CLI fails at its login; the API at the pull itself.
  EXPECT_TRUE(StartsWith(st.error().message, "pull " + app.artifact + ": " +
                                                 (api() ? "" : "login to " + env_->registry().address())))
      << st.error().message;
  std::string lower = st.error().message;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  EXPECT_NE(lower.find("unauthorized"), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().message.find(wrong), std::string::npos);
  EXPECT_FALSE(transport_.AnyArgvContains(wrong));
  ExpectTempDirsGone();

  // Without credentials the registry refuses too: auth really is enforced.
  ASSERT_TRUE(RemoveImage(env_->docker(), app.artifact));
  auto anon = runtime_->Pull(target_, app, std::nullopt);
  ASSERT_FALSE(anon);
  EXPECT_TRUE(StartsWith(anon.error().message, "pull " + app.artifact + ": " + (api() ? "" : "exit 1: ")))
      << anon.error().message;
  std::string anon_lower = anon.error().message;
  std::transform(anon_lower.begin(), anon_lower.end(), anon_lower.begin(), ::tolower);
  // A token registry gives an anonymous caller a token without access: "denied".
  EXPECT_TRUE(anon_lower.find("unauthorized") != std::string::npos ||
              anon_lower.find("no basic auth credentials") != std::string::npos ||
              anon_lower.find("denied") != std::string::npos)
      << anon.error().message;
  auto has = runtime_->HasArtifact(target_, app);
  ASSERT_TRUE(has);
  EXPECT_FALSE(*has) << "a refused pull leaves no image";
  std::fprintf(stderr, "[message] %s\n", anon.error().message.c_str());
}

TEST_P(DockerRuntimeIT, StartRunsOnHostNetworkWithLabelsEnvFileAndSyslog) {
  TempDir dir("sp-dlog");
  SyslogListener syslog(dir / "log");
  ASSERT_TRUE(syslog.ok()) << "cannot bind " << syslog.path();
  const std::string secret = "tok-" + std::to_string(FreePort()) + "-c0ffee-secret";
  const int port = FreePort();
  AppSpec app = App(Images().v1, "v1", "r1", port);
  app.env = {{"SP_SECRET_TOKEN", secret}, {"MODE", "it"}};
  app.volumes = {syslog.path() + ":/dev/log"};
  ASSERT_TRUE(runtime_->Pull(target_, app, Auth()));

  auto t0 = std::chrono::steady_clock::now();
  auto inst = runtime_->Start(target_, app);
  const int64_t start_ms = ElapsedMs(t0);
  ASSERT_TRUE(inst) << inst.error().message;
  EXPECT_EQ(WaitForHttp(port, "/health"), "ok\n");
  std::fprintf(stderr, "[timing] Start: %lld ms; serving /health after %lld ms\n", static_cast<long long>(start_ms),
               static_cast<long long>(ElapsedMs(t0)));
  EXPECT_EQ(WaitForHttp(port, "/"), "version=v1 port=" + std::to_string(port) + "\n");
  EXPECT_EQ(inst->id, "sp-shop-web-local-r1");

  // The app's syslog(3) line arrives through the socket mounted as /dev/log.
  auto line = syslog.WaitForLine("sp-sample-app v1 started on port " + std::to_string(port), milliseconds(10'000));
  EXPECT_TRUE(line) << "syslog lines received: " << syslog.Lines().size();

  Json j = Inspect(inst->id);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["HostConfig"]["NetworkMode"], "host");
  EXPECT_EQ(j["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
  EXPECT_EQ(j["HostConfig"]["Init"], true);
  EXPECT_EQ(j["Config"]["StopTimeout"], 10);
  EXPECT_EQ(j["State"]["Running"], true);
  // Through the API the env went in the create request: no env file, no
  // docker CLI at all; through the CLI a 0600 env file in a private temp dir.
  EXPECT_EQ(transport_.RanDocker("create"), !api());
  if (api()) EXPECT_TRUE(transport_.temp_dirs().empty());
  else EXPECT_EQ(transport_.temp_dirs().size(), 2u) << "the pull's config dir and the env file's dir";
  const Json& labels = j["Config"]["Labels"];
  EXPECT_EQ(labels["sallyport.release"], "shop");
  EXPECT_EQ(labels["sallyport.deployment"], "web");
  EXPECT_EQ(labels["sallyport.host"], "local");
  EXPECT_EQ(labels["sallyport.version"], "v1");
  EXPECT_EQ(labels["sallyport.rollout"], "r1");
  EXPECT_EQ(labels["sallyport.artifact"], app.artifact);
  EXPECT_EQ(labels["sallyport.created_ms"], std::to_string(inst->created_ms));
  const std::string env_json = j["Config"]["Env"].dump();
  EXPECT_NE(env_json.find("\"PORT=" + std::to_string(port) + "\""), std::string::npos) << env_json;
  EXPECT_NE(env_json.find("\"SP_SECRET_TOKEN=" + secret + "\""), std::string::npos);
  EXPECT_NE(env_json.find("\"MODE=it\""), std::string::npos);

  // The value is only in the environment: not in docker's view of the
  // command, not in any process's argv, not in any docker CLI argv.
  for (const char* key : {"Path", "Args"}) EXPECT_EQ(j[key].dump().find(secret), std::string::npos) << key;
  EXPECT_EQ(j["Config"]["Cmd"].dump().find(secret), std::string::npos);
  EXPECT_EQ(j["Config"]["Entrypoint"].dump().find(secret), std::string::npos);
  const int pid = j["State"]["Pid"].get<int>();
  ASSERT_GT(pid, 0);
  std::vector<int> pids{pid};
  std::string children = ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  for (const auto& c : Split(Trim(children), ' ')) {
    if (!c.empty()) pids.push_back(std::atoi(c.c_str()));
  }
  EXPECT_GE(pids.size(), 2u) << "docker-init and the app";
  for (int p : pids) {
    std::string cmdline = ReadFile("/proc/" + std::to_string(p) + "/cmdline");
    EXPECT_FALSE(cmdline.empty()) << p;
    EXPECT_EQ(cmdline.find(secret), std::string::npos) << "argv of pid " << p;
  }
  EXPECT_FALSE(transport_.AnyArgvContains(secret));
  ExpectTempDirsGone();  // The env file's directory included.

  // The engine's mounts stay in its own mount namespace.
  EXPECT_EQ(ReadFile("/proc/self/mountinfo").find(env_->docker().root()), std::string::npos);

  auto logs = runtime_->Logs(target_, *inst, 20);
  ASSERT_TRUE(logs) << logs.error().message;
  EXPECT_NE(logs->find("listening on " + std::to_string(port) + " version v1"), std::string::npos) << *logs;
}

TEST_P(DockerRuntimeIT, StopKeepsContainerAndRestartBringsOldVersionBackWithoutRegistry) {
  const int port = FreePort();
  AppSpec v1 = App(Images().v1, "v1", "r1", port);
  AppSpec v2 = App(Images().v2, "v2", "r2", port);
  ASSERT_TRUE(runtime_->Pull(target_, v1, Auth()));
  ASSERT_TRUE(runtime_->Pull(target_, v2, Auth()));

  auto old_inst = runtime_->Start(target_, v1);
  ASSERT_TRUE(old_inst) << old_inst.error().message;
  ASSERT_EQ(WaitForHttp(port, "/"), "version=v1 port=" + std::to_string(port) + "\n");

  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(runtime_->Stop(target_, *old_inst, milliseconds(10'000)));
  std::fprintf(stderr, "[timing] Stop (timeout 10 s): %lld ms\n", static_cast<long long>(ElapsedMs(t0)));
  EXPECT_LT(ElapsedMs(t0), 8'000) << "SIGTERM did not stop the app; docker stop waited for SIGKILL";
  Json stopped = Inspect(old_inst->id);
  ASSERT_TRUE(stopped.is_object()) << "the stopped container must be kept";
  EXPECT_EQ(stopped["State"]["Running"], false);
  ASSERT_TRUE(WaitFor([&] { return !PortOpen(port); }, milliseconds(5'000)));

  auto new_inst = runtime_->Start(target_, v2);
  ASSERT_TRUE(new_inst) << new_inst.error().message;
  ASSERT_EQ(WaitForHttp(port, "/"), "version=v2 port=" + std::to_string(port) + "\n");

  auto list = runtime_->List(target_);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, old_inst->id);
  EXPECT_EQ((*list)[0].rollout_id, "r1");
  EXPECT_EQ((*list)[0].version, "v1");
  EXPECT_EQ((*list)[0].artifact, v1.artifact);
  EXPECT_FALSE((*list)[0].running);
  EXPECT_EQ((*list)[1].id, new_inst->id);
  EXPECT_EQ((*list)[1].version, "v2");
  EXPECT_TRUE((*list)[1].running);
  EXPECT_LE((*list)[0].created_ms, (*list)[1].created_ms);

  // Roll back with the registry gone.
  env_->registry().Stop();
  ASSERT_FALSE(PortOpen(env_->registry().port()));
  ASSERT_TRUE(runtime_->Stop(target_, *new_inst, milliseconds(10'000)));
  ASSERT_TRUE(WaitFor([&] { return !PortOpen(port); }, milliseconds(5'000)));
  auto has_v1 = runtime_->HasArtifact(target_, v1);
  ASSERT_TRUE(has_v1);
  EXPECT_TRUE(*has_v1);
  t0 = std::chrono::steady_clock::now();
  auto restarted = runtime_->Restart(target_, *old_inst);
  ASSERT_TRUE(restarted) << restarted.error().message;
  EXPECT_EQ(WaitForHttp(port, "/"), "version=v1 port=" + std::to_string(port) + "\n");
  std::fprintf(stderr, "[timing] Restart to serving: %lld ms\n", static_cast<long long>(ElapsedMs(t0)));

  list = runtime_->List(target_);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_TRUE((*list)[0].running);
  EXPECT_FALSE((*list)[1].running);

  ASSERT_TRUE(runtime_->Remove(target_, *new_inst));
  list = runtime_->List(target_);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, old_inst->id);
  // The removed release's image went with it; the image a container uses stays.
  auto v2_left = runtime_->HasArtifact(target_, v2);
  ASSERT_TRUE(v2_left) << v2_left.error().message;
  EXPECT_FALSE(*v2_left) << "the removed release's image is still on the host";
  auto v1_kept = runtime_->HasArtifact(target_, v1);
  ASSERT_TRUE(v1_kept) << v1_kept.error().message;
  EXPECT_TRUE(*v1_kept) << "an image a container uses was removed";
  EXPECT_TRUE(runtime_->Remove(target_, *new_inst)) << "removing what is gone is not an error";

  // Which way the work went: through the API no docker CLI ran for listing,
  // stopping, starting, removing or image checks; without the socket every
  // one of them ran on the CLI, and the refused socket was asked for once.
  for (const char* sub : {"ps", "stop", "start", "rm", "image"}) {
    EXPECT_EQ(transport_.RanDocker(sub), !api()) << "docker " << sub;
  }
  if (api()) {
    EXPECT_GT(transport_.socket_requests(), 5);
  } else {
    EXPECT_EQ(transport_.socket_requests(), 1) << "a host without the API stays on the CLI";
  }
}

TEST_P(DockerRuntimeIT, StartReplacesTheLeftoverContainerOfAResumedRollout) {
  const int port = FreePort();
  AppSpec app = App(Images().v2, "v2", "r9", port);
  ASSERT_TRUE(runtime_->Pull(target_, app, Auth()));
  auto first = runtime_->Start(target_, app);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_FALSE(WaitForHttp(port, "/health").empty());
  ASSERT_TRUE(runtime_->Stop(target_, *first, milliseconds(5'000)));

  auto again = runtime_->Start(target_, app);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->id, first->id);
  EXPECT_FALSE(WaitForHttp(port, "/health").empty());
  auto list = runtime_->List(target_);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].running);
}

TEST_P(DockerRuntimeIT, OtherDeploymentsAreNotListed) {
  const int port = FreePort();
  AppSpec app = App(Images().v1, "v1", "r1", port);
  ASSERT_TRUE(runtime_->Pull(target_, app, Auth()));
  RuntimeTarget other = target_;
  other.deployment = "worker";
  app.deployment = "worker";
  ASSERT_TRUE(runtime_->Start(other, app));
  auto list = runtime_->List(target_);
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_TRUE(list->empty());
  auto mine = runtime_->List(other);
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Engine, DockerRuntimeIT, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Api" : "Cli"; });

// The fixture's own promise: its dockerd supervises a containerd whose socket
// is under the fixture's exec root and cannot see a system containerd.
TEST(DockerdFixtureTest, EngineUsesItsOwnPrivateContainerd) {
  SP_REQUIRE_DOCKER_ENVIRONMENT();
  auto& docker = DockerEnvironment::Get()->docker();
  EXPECT_TRUE(FileExists(docker.containerd_socket()));
  EXPECT_TRUE(StartsWith(docker.containerd_socket(), docker.root() + "/x/"));
  EXPECT_LT(docker.host().size() - 7, 100u) << "unix socket path too long";
  const std::string ns_view = "/proc/" + std::to_string(docker.pid()) + "/root/run/containerd";
  EXPECT_FALSE(FileExists(ns_view + "/containerd.sock"));
  // Our containerd is a child of our dockerd, started with our exec root's config.
  // A Go program forks from whichever thread runs the goroutine, and each
  // task's "children" file lists only the children that thread forked: read
  // every thread's list, not just the main thread's.
  bool found = false;
  const std::string tasks = "/proc/" + std::to_string(docker.pid()) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    for (const auto& c : Split(Trim(ReadFile(task.path().string() + "/children")), ' ')) {
      if (c.empty()) continue;
      std::string cmd = ReadFile("/proc/" + c + "/cmdline");
      if (cmd.find("containerd") != std::string::npos &&
          cmd.find(docker.root() + "/x/containerd") != std::string::npos) {
        found = true;
      }
    }
  }
  EXPECT_FALSE(ec) << tasks << ": " << ec.message();
  EXPECT_TRUE(found) << "no containerd child of dockerd using " << docker.root() << "/x/containerd";
}

}  // namespace
}  // namespace sp::test
