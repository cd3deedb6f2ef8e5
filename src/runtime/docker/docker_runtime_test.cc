#include "runtime/docker/docker_runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/subprocess.h"
#include "core/text.h"

namespace sp {
namespace {

using Argv = std::vector<std::string>;

// Records every call in order and answers Run() from a script (default: exit 0,
// no output). WriteFile is recorded as a pseudo-call "WRITE <path> <mode>".
class RecordingTransport final : public Transport {
 public:
  struct Call {
    Argv argv;
    std::string stdin_data;
    std::map<std::string, std::string> env;
  };
  struct Written {
    std::string path, content;
    int mode;
  };

  std::function<ExitStatus(const Argv&)> respond = [](const Argv& argv) {
    ExitStatus st;
    st.exit_code = 0;
    if (!argv.empty() && argv[0] == "mktemp") st.out = "/tmp/sp-docker.AAAA" + std::to_string(0) + "\n";
    return st;
  };

  Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) override {
    calls.push_back({spec.argv, spec.stdin_data, spec.env});
    log.push_back(FormatArgv(spec.argv));
    return respond(spec.argv);
  }
  Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) override {
    written.push_back({path, content, mode});
    char m[8];
    std::snprintf(m, sizeof m, "%04o", mode);
    log.push_back("WRITE " + path + " " + m);
    return Ok();
  }
  Status CopyFile(const HostRef&, const std::string&, const std::string&, int) override { return Ok(); }
  Status Check(const HostRef&) override { return Ok(); }

  std::vector<Call> calls;
  std::vector<Written> written;
  std::vector<std::string> log;  // Human-readable, ordered.
};

ExitStatus Exit(int code, std::string out = "", std::string err = "") {
  ExitStatus st;
  st.exit_code = code;
  st.out = std::move(out);
  st.err = std::move(err);
  return st;
}

class DockerRuntimeTest : public ::testing::Test {
 protected:
  DockerRuntimeTest() : runtime_(transport_, DockerOptions{}, clock_) {
    target_.host = HostRef{"app1", "10.0.0.1", "", 22};
    target_.release = "shop";
    target_.deployment = "web";
    app_.release = "shop";
    app_.deployment = "web";
    app_.rollout_id = "r7";
    app_.version = "v2";
    app_.artifact = "127.0.0.1:5000/shop@sha256:" + std::string(64, 'a');
    app_.port = 8080;
    app_.env = {{"DB_PASSWORD", "hunter2-secret"}, {"MODE", "prod"}};
    app_.volumes = {"/run/sp/log.sock:/dev/log"};
    app_.stop_timeout = Millis(2'500);
  }

  static bool AnyArgContains(const std::vector<RecordingTransport::Call>& calls, const std::string& needle) {
    for (const auto& c : calls) {
      for (const auto& a : c.argv) {
        if (a.find(needle) != std::string::npos) return true;
      }
      for (const auto& [k, v] : c.env) {
        if (v.find(needle) != std::string::npos) return true;
      }
    }
    return false;
  }

  FakeClock clock_{1'700'000'000'123};
  RecordingTransport transport_;
  DockerRuntime runtime_;
  RuntimeTarget target_;
  AppSpec app_;
  const std::string kDir = "/tmp/sp-docker.AAAA0";
};

TEST_F(DockerRuntimeTest, PullWithAuthLogsInOnStdinPullsLogsOutAndRemovesCredsDir) {
  RegistryAuth auth{"127.0.0.1:5000", "deploy", "s3cret-pw"};
  ASSERT_TRUE(runtime_.Pull(target_, app_, auth));
  EXPECT_EQ(transport_.log,
            (std::vector<std::string>{
                "mktemp -d -t sp-docker.XXXXXXXXXX",
                "/usr/bin/docker --config " + kDir + " login --username deploy --password-stdin 127.0.0.1:5000",
                "/usr/bin/docker --config " + kDir + " pull " + app_.artifact,
                "/usr/bin/docker --config " + kDir + " logout 127.0.0.1:5000",
                "rm -rf -- " + kDir,
            }));
  // The password travels on login's stdin and nowhere else.
  ASSERT_EQ(transport_.calls.size(), 5u);
  EXPECT_EQ(transport_.calls[1].stdin_data, "s3cret-pw");
  EXPECT_FALSE(AnyArgContains(transport_.calls, "s3cret-pw"));
  for (size_t i = 0; i < transport_.calls.size(); ++i) {
    if (i != 1) {
      EXPECT_EQ(transport_.calls[i].stdin_data, "") << i;
    }
  }
  EXPECT_TRUE(transport_.written.empty());
}

TEST_F(DockerRuntimeTest, PullWithoutAuthIsAPlainPull) {
  ASSERT_TRUE(runtime_.Pull(target_, app_, std::nullopt));
  EXPECT_EQ(transport_.log, (std::vector<std::string>{"/usr/bin/docker pull " + app_.artifact}));
}

TEST_F(DockerRuntimeTest, PullDerivesRegistryFromArtifactWhenAuthHasNoAddress) {
  RegistryAuth auth{"", "deploy", "s3cret-pw"};
  ASSERT_TRUE(runtime_.Pull(target_, app_, auth));
  EXPECT_EQ(transport_.log[1],
            "/usr/bin/docker --config " + kDir + " login --username deploy --password-stdin 127.0.0.1:5000");
}

TEST_F(DockerRuntimeTest, PullFailureStillRemovesCredsDirAndScrubsPassword) {
  transport_.respond = [](const Argv& argv) {
    if (argv[0] == "mktemp") return Exit(0, "/tmp/sp-docker.AAAA0\n");
    if (std::find(argv.begin(), argv.end(), "pull") != argv.end()) {
      return Exit(1, "", "Error response from daemon: manifest unknown (auth was s3cret-pw)\n");
    }
    return Exit(0);
  };
  RegistryAuth auth{"127.0.0.1:5000", "deploy", "s3cret-pw"};
  auto st = runtime_.Pull(target_, app_, auth);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(StartsWith(st.error().message, "pull " + app_.artifact + ": exit 1: ")) << st.error().message;
  EXPECT_NE(st.error().message.find("manifest unknown"), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().message.find("s3cret-pw"), std::string::npos) << st.error().message;
  EXPECT_EQ(transport_.log.back(), "rm -rf -- " + kDir);
}

TEST_F(DockerRuntimeTest, LoginFailureSkipsPullAndStillRemovesCredsDir) {
  transport_.respond = [](const Argv& argv) {
    if (argv[0] == "mktemp") return Exit(0, "/tmp/sp-docker.AAAA0\n");
    if (std::find(argv.begin(), argv.end(), "login") != argv.end()) {
      return Exit(1, "", "Error response from daemon: login attempt failed: unauthorized\n");
    }
    return Exit(0);
  };
  auto st = runtime_.Pull(target_, app_, RegistryAuth{"127.0.0.1:5000", "deploy", "wrong-pw"});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("login to 127.0.0.1:5000 as deploy"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("unauthorized"), std::string::npos);
  EXPECT_EQ(st.error().message.find("wrong-pw"), std::string::npos);
  ASSERT_EQ(transport_.log.size(), 3u);
  EXPECT_EQ(transport_.log[2], "rm -rf -- " + kDir);
}

TEST_F(DockerRuntimeTest, PullReportsCredsDirThatCouldNotBeRemoved) {
  transport_.respond = [](const Argv& argv) {
    if (argv[0] == "mktemp") return Exit(0, "/tmp/sp-docker.AAAA0\n");
    if (argv[0] == "rm") return Exit(1, "", "rm: cannot remove: Device or resource busy\n");
    return Exit(0);
  };
  auto st = runtime_.Pull(target_, app_, RegistryAuth{"127.0.0.1:5000", "deploy", "pw-1234"});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInternal);
  EXPECT_NE(st.error().message.find("credentials directory not removed"), std::string::npos);
}

TEST_F(DockerRuntimeTest, PullRejectsInvalidReferenceWithoutRunningAnything) {
  app_.artifact = "Bad Ref; rm -rf /";
  auto st = runtime_.Pull(target_, app_, std::nullopt);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(transport_.calls.empty());
}

TEST_F(DockerRuntimeTest, DockerHostOptionAddsDashHToEveryDockerCall) {
  DockerRuntime rt(transport_, DockerOptions{"/opt/docker", "unix:///tmp/d/docker.sock", Millis(5000)}, clock_);
  ASSERT_TRUE(rt.Pull(target_, app_, RegistryAuth{"127.0.0.1:5000", "u", "pw-1234"}));
  EXPECT_EQ(transport_.log[1], "/opt/docker --config " + kDir +
                                   " -H unix:///tmp/d/docker.sock login --username u --password-stdin 127.0.0.1:5000");
  EXPECT_EQ(transport_.log[2], "/opt/docker --config " + kDir + " -H unix:///tmp/d/docker.sock pull " + app_.artifact);
}

TEST_F(DockerRuntimeTest, HasArtifactInspectsTheImage) {
  transport_.respond = [](const Argv&) { return Exit(1, "", "Error: No such image: x\n"); };
  auto r = runtime_.HasArtifact(target_, app_);
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(transport_.log[0], "/usr/bin/docker image inspect --format '{{.Id}}' " + app_.artifact);
  transport_.respond = [](const Argv&) { return Exit(0, "sha256:abc\n"); };
  EXPECT_TRUE(*runtime_.HasArtifact(target_, app_));
  transport_.respond = [](const Argv&) { return Exit(1, "", "Cannot connect to the Docker daemon\n"); };
  EXPECT_FALSE(runtime_.HasArtifact(target_, app_));
}

TEST_F(DockerRuntimeTest, StartWritesPrivateEnvFileCreatesThenStarts) {
  auto inst = runtime_.Start(target_, app_);
  ASSERT_TRUE(inst) << inst.error().message;
  const std::string name = "sp-shop-web-app1-r7";
  EXPECT_EQ(transport_.log, (std::vector<std::string>{
                                "/usr/bin/docker rm -f " + name,
                                "mktemp -d -t sp-docker.XXXXXXXXXX",
                                "WRITE " + kDir + "/env 0600",
                                "/usr/bin/docker create --name " + name +
                                    " --label sallyport.release=shop --label sallyport.deployment=web"
                                    " --label sallyport.host=app1 --label sallyport.version=v2"
                                    " --label sallyport.rollout=r7 --label sallyport.artifact=" +
                                    app_.artifact + " --label sallyport.created_ms=1700000000123" +
                                    " --init --network host --restart unless-stopped --env-file " + kDir +
                                    "/env -v /run/sp/log.sock:/dev/log --stop-timeout 3 " + app_.artifact,
                                "rm -rf -- " + kDir,
                                "/usr/bin/docker start " + name,
                            }));
  ASSERT_EQ(transport_.written.size(), 1u);
  EXPECT_EQ(transport_.written[0].content, "DB_PASSWORD=hunter2-secret\nMODE=prod\nPORT=8080\n");
  EXPECT_EQ(transport_.written[0].mode, 0600);
  EXPECT_FALSE(AnyArgContains(transport_.calls, "hunter2-secret"));
  EXPECT_EQ(inst->id, name);
  EXPECT_EQ(inst->rollout_id, "r7");
  EXPECT_EQ(inst->version, "v2");
  EXPECT_TRUE(inst->running);
  EXPECT_EQ(inst->created_ms, 1'700'000'000'123);
}

TEST_F(DockerRuntimeTest, StartPassesCommandAfterImageAndPortWinsOverEnv) {
  app_.command = {"serve", "--verbose"};
  app_.env["PORT"] = "1";
  app_.volumes.clear();
  ASSERT_TRUE(runtime_.Start(target_, app_));
  EXPECT_TRUE(transport_.log[3].ends_with(" --stop-timeout 3 " + app_.artifact + " serve --verbose"))
      << transport_.log[3];
  EXPECT_EQ(transport_.written[0].content, "DB_PASSWORD=hunter2-secret\nMODE=prod\nPORT=8080\n");
}

TEST_F(DockerRuntimeTest, CreateFailureStillRemovesEnvDirAndHidesEnvValues) {
  transport_.respond = [](const Argv& argv) {
    if (argv[0] == "mktemp") return Exit(0, "/tmp/sp-docker.AAAA0\n");
    if (argv.size() > 1 && argv[1] == "create") return Exit(125, "", "invalid env hunter2-secret\n");
    return Exit(0);
  };
  auto inst = runtime_.Start(target_, app_);
  ASSERT_FALSE(inst);
  EXPECT_EQ(inst.error().message.find("hunter2-secret"), std::string::npos) << inst.error().message;
  EXPECT_NE(inst.error().message.find("docker create: exit 125"), std::string::npos) << inst.error().message;
  EXPECT_EQ(transport_.log.back(), "rm -rf -- " + kDir);
}

TEST_F(DockerRuntimeTest, StartToleratesNoLeftoverContainerButFailsOnOtherRmErrors) {
  transport_.respond = [](const Argv& argv) {
    if (argv[0] == "mktemp") return Exit(0, "/tmp/sp-docker.AAAA0\n");
    if (argv.size() > 1 && argv[1] == "rm") return Exit(1, "", "Error: No such container: sp-shop-web-app1-r7\n");
    return Exit(0);
  };
  ASSERT_TRUE(runtime_.Start(target_, app_));
  transport_.respond = [](const Argv&) { return Exit(1, "", "Cannot connect to the Docker daemon\n"); };
  auto r = runtime_.Start(target_, app_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("remove leftover container"), std::string::npos);
}

TEST_F(DockerRuntimeTest, StartRejectsEnvValueWithNewlineWithoutEchoingIt) {
  app_.env["TOKEN"] = "line1-secret\nline2";
  auto inst = runtime_.Start(target_, app_);
  ASSERT_FALSE(inst);
  EXPECT_EQ(inst.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(inst.error().message.find("TOKEN"), std::string::npos);
  EXPECT_EQ(inst.error().message.find("line1-secret"), std::string::npos);
  EXPECT_TRUE(transport_.calls.empty());
}

TEST_F(DockerRuntimeTest, ContainerNameIsSanitized) {
  RuntimeTarget t = target_;
  t.host.name = "app 1/x";
  EXPECT_EQ(DockerRuntime::ContainerName(t, "r:9"), "sp-shop-web-app_1_x-r_9");
}

TEST_F(DockerRuntimeTest, ListFiltersByLabelsInOnePsAndSortsOldestFirst) {
  transport_.respond = [](const Argv&) {
    return Exit(
        0,
        R"({"name":"sp-shop-web-app1-r2","state":"running","created":"2024-01-01 00:00:02 +0000 UTC","sallyport.rollout":"r2","sallyport.version":"v2,b=c","sallyport.artifact":"img:2","sallyport.created_ms":"2000"})"
        "\n"
        R"({"name":"sp-shop-web-app1-r1","state":"exited","created":"2024-01-01 00:00:01 +0000 UTC","sallyport.rollout":"r1","sallyport.version":"v1","sallyport.artifact":"img:1","sallyport.created_ms":"1000"})"
        "\n"
        R"({"name":"sp-shop-web-app1-r0","state":"restarting","created":"2024-01-01 00:00:00 +0000 UTC","sallyport.rollout":"r0","sallyport.version":"v0","sallyport.artifact":"img:0","sallyport.created_ms":"500"})"
        "\n");
  };
  auto list = runtime_.List(target_);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, "sp-shop-web-app1-r0");
  EXPECT_TRUE((*list)[0].running) << "a restarting container still runs";
  EXPECT_EQ((*list)[1].id, "sp-shop-web-app1-r1");
  EXPECT_EQ((*list)[1].rollout_id, "r1");
  EXPECT_EQ((*list)[1].version, "v1");
  EXPECT_EQ((*list)[1].artifact, "img:1");
  EXPECT_FALSE((*list)[1].running);
  EXPECT_EQ((*list)[1].created_ms, 1000);
  EXPECT_EQ((*list)[2].id, "sp-shop-web-app1-r2");
  EXPECT_EQ((*list)[2].version, "v2,b=c");
  EXPECT_TRUE((*list)[2].running);
  ASSERT_EQ(transport_.calls.size(), 1u);
  const Argv& ps = transport_.calls[0].argv;
  ASSERT_EQ(ps.size(), 12u);
  EXPECT_EQ(Argv(ps.begin(), ps.end() - 1),
            (Argv{"/usr/bin/docker", "ps", "-a", "--no-trunc", "--filter", "label=sallyport.release=shop", "--filter",
                  "label=sallyport.deployment=web", "--filter", "label=sallyport.host=app1", "--format"}));
  EXPECT_NE(ps.back().find(R"({{json (.Label "sallyport.rollout")}})"), std::string::npos) << ps.back();
}

TEST_F(DockerRuntimeTest, ListRefusesOutputThatIsNotOneJsonObjectPerLine) {
  transport_.respond = [](const Argv&) { return Exit(0, "sp-shop-web-app1-r1\n"); };
  auto list = runtime_.List(target_);
  ASSERT_FALSE(list);
  EXPECT_NE(list.error().message.find("unexpected output line"), std::string::npos);
}

TEST_F(DockerRuntimeTest, ListWithNoContainersRunsOnlyPs) {
  auto list = runtime_.List(target_);
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(transport_.calls.size(), 1u);
}

TEST_F(DockerRuntimeTest, StopKeepsTheContainerAndRoundsTimeoutUp) {
  Instance inst;
  inst.id = "sp-shop-web-app1-r1";
  ASSERT_TRUE(runtime_.Stop(target_, inst, Millis(1'001)));
  ASSERT_TRUE(runtime_.Restart(target_, inst));
  ASSERT_TRUE(runtime_.Remove(target_, inst));
  auto logs = runtime_.Logs(target_, inst, 20);
  ASSERT_TRUE(logs);
  EXPECT_EQ(transport_.log, (std::vector<std::string>{
                                "/usr/bin/docker stop -t 2 sp-shop-web-app1-r1",
                                "/usr/bin/docker start sp-shop-web-app1-r1",
                                "/usr/bin/docker rm -f sp-shop-web-app1-r1",
                                "/usr/bin/docker logs --tail 20 sp-shop-web-app1-r1",
                            }));
}

TEST_F(DockerRuntimeTest, LogsReturnsStdoutAndStderrOfTheContainer) {
  transport_.respond = [](const Argv&) { return Exit(0, "listening on 8080\n", "warn: x\n"); };
  Instance inst;
  inst.id = "c";
  auto logs = runtime_.Logs(target_, inst, 5);
  ASSERT_TRUE(logs);
  EXPECT_EQ(*logs, "listening on 8080\nwarn: x\n");
}

TEST_F(DockerRuntimeTest, RestartFailureIsAClearError) {
  transport_.respond = [](const Argv&) { return Exit(1, "", "Error: No such container: c\n"); };
  Instance inst;
  inst.id = "c";
  auto st = runtime_.Restart(target_, inst);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "restart c on app1: exit 1: Error: No such container: c");
}

}  // namespace
}  // namespace sp
