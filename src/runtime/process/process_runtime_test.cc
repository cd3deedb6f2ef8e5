#include "runtime/process/process_runtime.h"

#include <deque>

#include <gtest/gtest.h>

namespace sp {
namespace {

// Records every transport call; Run answers from a queue of scripted results
// (default: exit 0, no output).
class RecordingTransport final : public Transport {
 public:
  struct Call {
    std::string kind;  // "run", "write", "copy"
    std::vector<std::string> argv;
    std::string stdin_data;
    std::string src, path;
    int mode = 0;
    std::optional<Millis> timeout;
  };

  Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) override {
    calls.push_back({"run", spec.argv, spec.stdin_data, "", "", 0, spec.timeout});
    if (replies.empty()) return ExitStatus{0, 0, false, "", ""};
    auto r = replies.front();
    replies.pop_front();
    return r;
  }
  Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) override {
    calls.push_back({"write", {}, content, "", path, mode, std::nullopt});
    return Ok();
  }
  Status CopyFile(const HostRef& host, const std::string& local, const std::string& remote, int mode) override {
    calls.push_back({"copy", {}, "", local, remote, mode, std::nullopt});
    return Ok();
  }
  Status Check(const HostRef& host) override { return Ok(); }

  void Reply(int exit_code, std::string out = "", std::string err = "") {
    replies.push_back(ExitStatus{exit_code, 0, false, std::move(out), std::move(err)});
  }
  // Every argv entry of every call, for "never in argv" checks.
  bool AnyArgvContains(const std::string& needle) const {
    for (const auto& c : calls)
      for (const auto& a : c.argv)
        if (a.find(needle) != std::string::npos) return true;
    return false;
  }

  std::vector<Call> calls;
  std::deque<Result<ExitStatus>> replies;
};

class ProcessRuntimeTest : public ::testing::Test {
 protected:
  ProcessRuntimeTest() : runtime_(transport_, Options()) {
    target_.host = {"web-1", "10.0.0.5", "", 22};
    target_.release = "shop";
    target_.deployment = "prod";
    app_.release = "shop";
    app_.deployment = "prod";
    app_.rollout_id = "r42";
    app_.version = "v2 'quoted' $(touch /tmp/pwned)";
    app_.artifact = "/builds/my app;rm -rf ~/server";
    app_.port = 8080;
    app_.command = {"--listen", "0.0.0.0 $(id)"};
    app_.env = {{"SECRET_X", "s3cr3t-value"}, {"GREETING", "hello world; $HOME `id`"}};
  }
  ProcessOptions Options() {
    ProcessOptions o;
    o.base_dir = "/srv/apps";
    o.clock = &clock_;
    return o;
  }
  // Positional args of a `sh -c <script> sh ARGS...` call.
  static std::vector<std::string> Args(const RecordingTransport::Call& c) {
    EXPECT_GE(c.argv.size(), 4u);
    EXPECT_EQ(c.argv[0], "sh");
    EXPECT_EQ(c.argv[1], "-c");
    EXPECT_EQ(c.argv[3], "sh");
    size_t first = 4;
    if (c.argv[2].find("sp_lock \"$1\"") != std::string::npos) {  // Host lock: dir, wait, mode.
      EXPECT_GE(c.argv.size(), 7u);
      EXPECT_EQ(c.argv[4], "/srv/apps/shop/prod/web-1");
      first = 7;
    }
    return std::vector<std::string>(c.argv.begin() + first, c.argv.end());
  }
  // The script text must be one of our constants: no outside string in it.
  void ExpectFixedScript(const RecordingTransport::Call& c) {
    ASSERT_GE(c.argv.size(), 3u);
    for (const std::string& s : {target_.release, target_.deployment, target_.host.name, app_.rollout_id,
                                 std::string("/srv/apps"), std::string("8080"), std::string("s3cr3t")}) {
      EXPECT_EQ(c.argv[2].find(s), std::string::npos) << s << " leaked into the script text";
    }
  }

  FakeClock clock_{1'700'000'000'000};
  RecordingTransport transport_;
  ProcessRuntime runtime_;
  RuntimeTarget target_;
  AppSpec app_;
  const std::string dir_ = "/srv/apps/shop/prod/web-1/releases/r42";
  const std::string run_ = "/srv/apps/shop/prod/web-1/run";
};

TEST_F(ProcessRuntimeTest, PullExecutableIsPrepareCopyFinishWithOutsideStringsAsSingleEntries) {
  transport_.Reply(0);  // prepare
  transport_.Reply(1);  // no kept release of this artifact on the host
  ASSERT_TRUE(runtime_.Pull(target_, app_, std::nullopt).has_value());
  ASSERT_EQ(transport_.calls.size(), 4u);
  const auto& prepare = transport_.calls[0];
  ExpectFixedScript(prepare);
  EXPECT_EQ(Args(prepare), (std::vector<std::string>{dir_, run_, run_ + "/r42.pid", run_ + "/r42.id"}));
  EXPECT_EQ(prepare.stdin_data, ProcessRuntime::LauncherScript());

  const auto& kept = transport_.calls[1];
  ExpectFixedScript(kept);
  EXPECT_EQ(Args(kept).back(), "copy");

  const auto& copy = transport_.calls[2];
  EXPECT_EQ(copy.kind, "copy");
  EXPECT_EQ(copy.src, app_.artifact);
  EXPECT_EQ(copy.path, dir_ + "/app");
  EXPECT_EQ(copy.mode, 0755);

  const auto& finish = transport_.calls[3];
  ExpectFixedScript(finish);
  EXPECT_EQ(Args(finish), (std::vector<std::string>{dir_, "exe"}));
  EXPECT_EQ(finish.stdin_data, "3\n" + dir_ + "/app\n--listen\n0.0.0.0 $(id)\n" + "version=" + app_.version +
                                   "\nartifact=" + app_.artifact + "\nrollout_id=r42\ncreated_ms=1700000000000\n");
  EXPECT_FALSE(transport_.AnyArgvContains(app_.version));
  EXPECT_FALSE(transport_.AnyArgvContains("$(id)"));
}

TEST_F(ProcessRuntimeTest, PullReusesAKeptReleaseOfTheSameArtifactWithoutCopying) {
  transport_.Reply(0);  // prepare
  transport_.Reply(0);  // a kept release was copied on the host
  ASSERT_TRUE(runtime_.Pull(target_, app_, std::nullopt).has_value());
  ASSERT_EQ(transport_.calls.size(), 3u);
  for (const auto& c : transport_.calls) EXPECT_NE(c.kind, "copy") << "no transfer from the source";
  EXPECT_EQ(Args(transport_.calls[2]), (std::vector<std::string>{dir_, "kept"}));
}

TEST_F(ProcessRuntimeTest, PullTarballCopiesArchiveAndPointsCommandInsideIt) {
  app_.artifact = "/builds/app-1.2.tgz";
  app_.command = {"bin/server", "--port-from-env"};
  transport_.Reply(0);
  transport_.Reply(1);
  ASSERT_TRUE(runtime_.Pull(target_, app_, std::nullopt).has_value());
  ASSERT_EQ(transport_.calls.size(), 4u);
  EXPECT_EQ(transport_.calls[2].path, dir_ + "/artifact.tar.gz");
  EXPECT_EQ(transport_.calls[2].mode, 0600);
  EXPECT_EQ(Args(transport_.calls[3]), (std::vector<std::string>{dir_, "tar"}));
  EXPECT_EQ(transport_.calls[3].stdin_data.substr(0, transport_.calls[3].stdin_data.find("version=")),
            "2\n" + dir_ + "/app/bin/server\n--port-from-env\n");
}

TEST_F(ProcessRuntimeTest, PullRejectsTarballCommandOutsideTheArchive) {
  app_.artifact = "/builds/app.tar.gz";
  for (auto cmd0 : {"../../bin/sh", "/bin/sh", "bin/../../x", ""}) {
    app_.command = {cmd0};
    auto s = runtime_.Pull(target_, app_, std::nullopt);
    ASSERT_FALSE(s.has_value()) << cmd0;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(transport_.calls.empty());
}

TEST_F(ProcessRuntimeTest, PathComponentsAreValidatedBeforeAnyCommand) {
  app_.rollout_id = "../../etc";
  EXPECT_EQ(runtime_.Pull(target_, app_, std::nullopt).error().code, ErrorCode::kInvalidArgument);
  app_.rollout_id = "-rf";
  EXPECT_EQ(runtime_.Start(target_, app_).error().code, ErrorCode::kInvalidArgument);
  app_.rollout_id = "r1";
  target_.host.name = "../x";
  EXPECT_EQ(runtime_.List(target_).error().code, ErrorCode::kInvalidArgument);
  target_.host.name = "web-1";
  Instance inst;
  inst.id = "a/b";
  EXPECT_EQ(runtime_.Stop(target_, inst, Millis(1000)).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(transport_.calls.empty());
}

TEST_F(ProcessRuntimeTest, StartIsOneCommandWithEnvOnStdinOnly) {
  transport_.Reply(0, "version=v2\nartifact=/a\nrollout_id=r42\ncreated_ms=77\n");
  auto inst = runtime_.Start(target_, app_);
  ASSERT_TRUE(inst.has_value()) << inst.error().message;
  ASSERT_EQ(transport_.calls.size(), 1u);
  const auto& c = transport_.calls[0];
  ExpectFixedScript(c);
  EXPECT_EQ(Args(c), (std::vector<std::string>{dir_, run_ + "/r42.pid", run_ + "/r42.id", "new"}));
  EXPECT_EQ(c.stdin_data, "GREETING=hello world; $HOME `id`\nSECRET_X=s3cr3t-value\nPORT=8080\n");
  EXPECT_FALSE(transport_.AnyArgvContains("s3cr3t-value"));
  EXPECT_FALSE(transport_.AnyArgvContains("hello world"));
  EXPECT_EQ(inst->id, "r42");
  EXPECT_EQ(inst->version, "v2");
  EXPECT_EQ(inst->created_ms, 77);
  EXPECT_TRUE(inst->running);
}

TEST_F(ProcessRuntimeTest, PortOverridesEnvPort) {
  app_.env = {{"PORT", "1"}};
  ASSERT_TRUE(runtime_.Start(target_, app_).has_value());
  EXPECT_EQ(transport_.calls[0].stdin_data, "PORT=8080\n");
}

TEST_F(ProcessRuntimeTest, StartRejectsEnvThatCannotBeALineWithoutLeakingTheValue) {
  app_.env = {{"SECRET_X", "line1\nline2-secret"}};
  auto r = runtime_.Start(target_, app_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message.find("line2-secret"), std::string::npos);
  app_.env = {{"BAD-NAME", "x"}};
  EXPECT_EQ(runtime_.Start(target_, app_).error().code, ErrorCode::kInvalidArgument);
  app_.env = {{"SALLYPORT_LAUNCHER_LINE", "x"}};
  EXPECT_EQ(runtime_.Start(target_, app_).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(transport_.calls.empty());
}

TEST_F(ProcessRuntimeTest, ScriptExitCodesMapToErrorCodes) {
  transport_.Reply(3, "", "release is not pulled");
  EXPECT_EQ(runtime_.Start(target_, app_).error().code, ErrorCode::kNotFound);
  transport_.Reply(4, "", "already running (pid 12)");
  auto r = runtime_.Start(target_, app_);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_NE(r.error().message.find("already running"), std::string::npos);
  transport_.replies.push_back(ExitStatus{-1, 0, true, "", ""});
  EXPECT_EQ(runtime_.Start(target_, app_).error().code, ErrorCode::kTimeout);
  transport_.replies.push_back(Err(ErrorCode::kUnavailable, "ssh: connection refused"));
  EXPECT_EQ(runtime_.Start(target_, app_).error().code, ErrorCode::kUnavailable);
}

TEST_F(ProcessRuntimeTest, ListIsOneCommandAndReturnsOldestFirst) {
  transport_.Reply(0,
                   "@instance=r9\nversion=v3\nartifact=/b/app\nrollout_id=r9\ncreated_ms=300\n@running=1\n"
                   "@instance=r10\nversion=v1\nartifact=/a/app\nrollout_id=r10\ncreated_ms=100\n@running=0\n"
                   "@instance=r11\nversion=v2=x\nartifact=/c\nrollout_id=r11\ncreated_ms=200\n@running=0\n");
  auto list = runtime_.List(target_);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(transport_.calls.size(), 1u);
  ExpectFixedScript(transport_.calls[0]);
  EXPECT_EQ(Args(transport_.calls[0]), (std::vector<std::string>{"/srv/apps/shop/prod/web-1"}));
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, "r10");
  EXPECT_FALSE((*list)[0].running);
  EXPECT_EQ((*list)[1].version, "v2=x");
  EXPECT_EQ((*list)[2].id, "r9");
  EXPECT_TRUE((*list)[2].running);
  EXPECT_EQ((*list)[2].artifact, "/b/app");
}

TEST_F(ProcessRuntimeTest, StopPassesGraceInTicksAndAllowsForItInTheCommandTimeout) {
  // A short command timeout, so only the allowance for the grace can make
  // the stop command's deadline longer than the grace itself.
  ProcessOptions o = Options();
  o.command_timeout = Millis(1'000);
  ProcessRuntime runtime(transport_, o);
  Instance inst;
  inst.id = "r42";
  ASSERT_TRUE(runtime.Stop(target_, inst, Millis(2'010)).has_value());
  ASSERT_EQ(transport_.calls.size(), 1u);
  ExpectFixedScript(transport_.calls[0]);
  EXPECT_EQ(Args(transport_.calls[0]), (std::vector<std::string>{run_ + "/r42.pid", run_ + "/r42.id", "402", dir_}));
  ASSERT_TRUE(transport_.calls[0].timeout.has_value());
  EXPECT_GE(*transport_.calls[0].timeout, Millis(2'010 + 5'000));
}

TEST_F(ProcessRuntimeTest, RestartRemoveLogsAreOneCommandEach) {
  Instance inst;
  inst.id = "r42";
  ASSERT_TRUE(runtime_.Restart(target_, inst).has_value());
  EXPECT_EQ(Args(transport_.calls.back()), (std::vector<std::string>{dir_, run_ + "/r42.pid", run_ + "/r42.id", "again"}));
  EXPECT_TRUE(transport_.calls.back().stdin_data.empty());
  ASSERT_TRUE(runtime_.Remove(target_, inst).has_value());
  EXPECT_EQ(Args(transport_.calls.back()), (std::vector<std::string>{dir_, run_ + "/r42.pid", run_ + "/r42.id"}));
  transport_.Reply(0, "a\nb\n");
  auto logs = runtime_.Logs(target_, inst, 20);
  ASSERT_TRUE(logs.has_value());
  EXPECT_EQ(*logs, "a\nb\n");
  EXPECT_EQ(Args(transport_.calls.back()), (std::vector<std::string>{dir_, "20"}));
  EXPECT_EQ(transport_.calls.size(), 3u);
  for (const auto& c : transport_.calls) ExpectFixedScript(c);
}

TEST_F(ProcessRuntimeTest, HasArtifactComparesMeta) {
  transport_.Reply(1);
  EXPECT_FALSE(*runtime_.HasArtifact(target_, app_));
  transport_.Reply(0, "version=" + app_.version + "\nartifact=" + app_.artifact + "\nrollout_id=r42\n");
  EXPECT_TRUE(*runtime_.HasArtifact(target_, app_));
  transport_.Reply(0, "version=other\nartifact=" + app_.artifact + "\n");
  EXPECT_FALSE(*runtime_.HasArtifact(target_, app_));
  EXPECT_EQ(Args(transport_.calls.back()), (std::vector<std::string>{dir_}));
}

TEST_F(ProcessRuntimeTest, AvailableCountsAKeptReleaseOfTheSameArtifact) {
  transport_.Reply(1);  // not pulled for this rollout
  transport_.Reply(1);  // and nothing kept
  EXPECT_FALSE(*runtime_.Available(target_, app_));
  transport_.Reply(1);
  transport_.Reply(0);  // a kept release (e.g. for a rollback)
  EXPECT_TRUE(*runtime_.Available(target_, app_));
  EXPECT_EQ(Args(transport_.calls.back()).back(), "find");
}

}  // namespace
}  // namespace sp
