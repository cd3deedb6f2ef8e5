// The build pipeline's paths, with every side effect faked: version
// control, the step runner, docker's login and inspect, the clock, the sink.
#include "build/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_util.h"
#include "unit/seams.h"

namespace sp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const char* kConfig = R"(version: 1
service: hello
stack: demo
image: {repository: 127.0.0.1:5000/hello}
registry:
  address: 127.0.0.1:5000
  username: ci
  password: {credential: hub}
releases:
  web: {port: 8080}
pipeline:
  - {name: test, run: [make, test]}
  - {name: image, kind: image}
  - {name: push, kind: push}
  - {name: deploy, kind: deploy}
)";

// Records what the pipeline reports: the build's updates, its steps, its lines.
class RecordingSink final : public BuildSink {
 public:
  Status Update(const BuildRecord& b) override {
    updates.push_back(b);
    return Ok();
  }
  Status PutStep(const BuildStepRecord& s) override {
    steps.push_back(s.name + " " + s.status);
    return Ok();
  }
  Status PutConfig(const std::string& text) override {
    config = text;
    return Ok();
  }
  void Line(int64_t, const std::string& step, bool is_err, const std::string& text) override {
    lines.push_back(step + (is_err ? " ! " : " | ") + text);
  }
  void Flush() override { ++flushes; }
  std::vector<BuildRecord> updates;
  std::vector<std::string> steps, lines;
  std::string config;
  int flushes = 0;
};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vcs_.files["sallyport.yml"] = kConfig;
    o_.clock = &clock_;
    o_.processes = &processes_;
    o_.steps = &steps_;
    o_.vcs = &vcs_;
    o_.docker_bin = "/usr/bin/docker";
    o_.read_credential = [this](const std::string& project, const std::string& name,
                                const std::string& host) -> Result<std::string> {
      credentials_asked_.push_back(project + "/" + name + "@" + host);
      if (name == "hub" && host == "127.0.0.1:5000") return std::string("s3cret");
      return Err(ErrorCode::kPermissionDenied, "credential '" + name + "' may not be sent to " + host);
    };
    o_.deploy = [this](const DeployRequest& r, const LineCallback& log, const std::atomic<bool>&) -> Status {
      deployed_.push_back(r.deployment + " " + r.artifact);
      log(false, "deployed");
      return deploy_result_;
    };
    ExitStatus digests;
    digests.exit_code = 0;
    digests.out = R"(["127.0.0.1:5000/hello@sha256:)" + std::string(64, 'a') + R"("])";
    processes_.answers["docker image"] = digests;
    b_.id = 7;
    b_.project = "hello";
    b_.branch = "integration";
    b_.sha = std::string(40, 'c');
    project_.name = "hello";
    project_.git_url = "git://127.0.0.1/hello.git";
  }

  BuildRecord Run() { return RunPipeline(b_, project_, dir_ / "ws", o_, sink_, cancel_); }
  std::vector<std::string> StepArgv0() {
    std::vector<std::string> out;
    for (const auto& c : steps_.calls) out.push_back(c.argv.size() > 1 && c.argv[0] == "/usr/bin/docker" ? "docker " + c.argv[1] : c.argv[0]);
    return out;
  }
  static ExitStatus Exit(int code, std::string err = "") {
    ExitStatus st;
    st.exit_code = code;
    st.err = std::move(err);
    return st;
  }

  test::TempDir dir_{"sp-pipeline"};
  FakeClock clock_;
  test::FakeProcessRunner processes_;
  test::FakeStepRunner steps_;
  test::FakeVcs vcs_;
  PipelineOptions o_;
  RecordingSink sink_;
  std::atomic<bool> cancel_{false};
  BuildRecord b_;
  ProjectRecord project_;
  std::vector<std::string> deployed_;
  std::vector<std::string> credentials_asked_;
  Status deploy_result_ = Ok();
};

TEST(RemoteCredentialTest, ATokenTravelsOnlyOverHttpsOrToLoopback) {
  auto project = [](const std::string& url, const std::string& cred) {
    return ProjectRecord{"svc", url, "", 0, cred, ""};
  };
  EXPECT_TRUE(CheckRemoteCredential(project("https://git.example/svc.git", "file:/etc/t")));
  EXPECT_TRUE(CheckRemoteCredential(project("http://127.0.0.1:3000/svc.git", "file:/etc/t")));
  EXPECT_TRUE(CheckRemoteCredential(project("http://git.example/svc.git", "")));
  EXPECT_TRUE(CheckRemoteCredential(project("ssh://git@git.example/svc.git", "file:/etc/key")));
  auto clear = CheckRemoteCredential(project("http://git.example/svc.git", "file:/etc/t"));
  ASSERT_FALSE(clear);
  EXPECT_NE(clear.error().message.find("in clear to git.example"), std::string::npos);
  auto via = GitAccessFor(project("http://10.1.2.3/svc.git", "env:T"), [](const std::string&) -> Result<std::string> {
    ADD_FAILURE() << "the token was read for a plain-HTTP remote";
    return std::string("t");
  });
  EXPECT_FALSE(via);
  EXPECT_FALSE(CheckRemoteCredential(project("git://git.example/svc.git", "file:/etc/t")));
}

TEST_F(PipelineTest, ACommitsStepGetsItsOwnEnvironmentOnly) {
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kSucceeded) << out.error;
  ASSERT_FALSE(steps_.calls.empty());
  const StepCommand& make = steps_.calls[0];
  ASSERT_EQ(make.argv[0], "make");
  EXPECT_FALSE(make.inherit_env);
  EXPECT_EQ(make.env.count("SALLYPORT_COMMIT"), 1u);
  EXPECT_EQ(make.env.count("PATH"), 1u);
  ASSERT_EQ(make.env.count("HOME"), 1u);
  EXPECT_NE(make.env.at("HOME").find(".home"), std::string::npos);
  // Sallyport's own steps (image, push) keep the engine's environment.
  EXPECT_TRUE(steps_.calls.back().inherit_env);
}

TEST_F(PipelineTest, ASucceedingBuildRunsEveryStepInOrderAndDeploysTheDigest) {
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kSucceeded) << out.error;
  EXPECT_THAT(StepArgv0(), ElementsAre("make", "docker build", "docker push"));
  EXPECT_EQ(out.artifact, "127.0.0.1:5000/hello@sha256:" + std::string(64, 'a'));
  EXPECT_THAT(deployed_, ElementsAre("integration " + out.artifact));
  EXPECT_EQ(out.author, "Ada");
  // The login's password goes on stdin, never argv.
  ASSERT_EQ(processes_.calls.size(), 2u);
  EXPECT_THAT(processes_.calls[0], ::testing::Not(::testing::Contains("s3cret")));
  EXPECT_EQ(processes_.stdin_seen[0], "s3cret\n");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ws")) << "the workspace is removed";
  EXPECT_EQ(sink_.updates.back().status, BuildStatus::kSucceeded);
  EXPECT_GE(sink_.flushes, 1) << "every line written before the build reads as finished";
  EXPECT_EQ(sink_.config, kConfig) << "the commit's sallyport.yml is kept with the build";
}

// A commit's sallyport.yml may not choose what is read as the registry
// password ({file} or {env}), nor send a bound credential to a registry its
// binding does not list: the build fails before any of its steps runs.
TEST_F(PipelineTest, ACommitNamingASecretFileOrAnotherRegistryFailsBeforeAnyStep) {
  const std::string config = kConfig;
  const size_t at = config.find("password: {credential: hub}");
  for (const std::string& password : {std::string("password: {file: /var/lib/sallyport/agent.token}"),
                                      std::string("password: {env: SALLYPORT_TOKEN}")}) {
    vcs_.files["sallyport.yml"] = std::string(config).replace(at, 27, password);
    BuildRecord out = Run();
    EXPECT_EQ(out.status, BuildStatus::kFailed) << password;
    EXPECT_THAT(out.error, HasSubstr("is for local runs only")) << password;
    EXPECT_THAT(out.error, HasSubstr("{credential: NAME}"));
    EXPECT_TRUE(StepArgv0().empty()) << password;
    EXPECT_TRUE(processes_.calls.empty()) << "no docker login";
  }
  EXPECT_TRUE(credentials_asked_.empty());
  // The real binding, with the commit's own registry.
  std::string other = config;
  for (size_t p; (p = other.find("127.0.0.1:5000")) != std::string::npos;) other.replace(p, 14, "127.0.0.2:5000");
  vcs_.files["sallyport.yml"] = other;
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("registry.password: credential 'hub' may not be sent to 127.0.0.2:5000"));
  EXPECT_THAT(credentials_asked_, ElementsAre("hello/hub@127.0.0.2:5000"));
  EXPECT_TRUE(StepArgv0().empty());
  EXPECT_TRUE(processes_.calls.empty());
}

TEST_F(PipelineTest, AFailedCheckoutFailsTheBuildAndRunsNoStep) {
  vcs_.checkout_error = Error{ErrorCode::kUnavailable, "git fetch: connection refused"};
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("connection refused"));
  EXPECT_TRUE(steps_.calls.empty());
  EXPECT_THAT(sink_.steps, ElementsAre("checkout running", "checkout failed"));
}

TEST_F(PipelineTest, AFailedStepFailsTheBuildAndSkipsTheRest) {
  steps_.answers["make"] = Exit(2, "test_x failed");
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("exit 2"));
  EXPECT_THAT(StepArgv0(), ElementsAre("make"));
  EXPECT_TRUE(deployed_.empty());
  EXPECT_THAT(sink_.lines, ::testing::Contains(HasSubstr("step test failed")));
}

TEST_F(PipelineTest, ATimedOutStepSaysSo) {
  ExitStatus st;
  st.timed_out = true;
  steps_.answers["make"] = st;
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("timed out after"));
}

TEST_F(PipelineTest, ACancelDuringAStepCancelsTheBuild) {
  steps_.on_run = [this](const StepCommand&) { cancel_ = true; };
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kCanceled);
  EXPECT_THAT(StepArgv0(), ElementsAre("make"));
}

TEST_F(PipelineTest, ARejectedRegistryLoginFailsThePushWithoutPushing) {
  processes_.answers["docker login"] = Exit(1, "unauthorized");
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("docker login 127.0.0.1:5000 failed"));
  EXPECT_THAT(StepArgv0(), ElementsAre("make", "docker build"));
}

TEST_F(PipelineTest, APushWithoutADigestFails) {
  processes_.answers["docker image"] = Exit(0);
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("no digest of 127.0.0.1:5000/hello"));
  EXPECT_TRUE(deployed_.empty());
}

TEST_F(PipelineTest, AFailedDeployFailsTheBuild) {
  deploy_result_ = Err(ErrorCode::kUnavailable, "rollout failed: host app2 failed at health");
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("app2 failed at health"));
}

TEST_F(PipelineTest, ABranchNoRuleMatchesIsSkipped) {
  b_.branch = "feature/x";
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kSkipped);
  EXPECT_TRUE(steps_.calls.empty());
}

// A step's `secrets:` are asked for with the build's own branch as their
// destination; the step gets them as env (the step's own env cannot shadow
// them), and its output shows them, and their base64, as ***.
TEST_F(PipelineTest, AStepGetsItsSecretsForItsBranchAsEnvAndTheLogMasksThem) {
  vcs_.files["sallyport.yml"] = std::string(kConfig).replace(std::string(kConfig).find("run: [make, test]"), 17,
                                                             "run: [make, test], secrets: [DB], env: {DB: mine}");
  o_.read_credential = [this](const std::string& project, const std::string& name,
                              const std::string& host) -> Result<std::string> {
    credentials_asked_.push_back(project + "/" + name + "@" + host);
    if (name == "hub") return std::string("s3cret");
    if (name == "DB" && host == "branch:integration") return std::string("db-Value-42");
    return Err(ErrorCode::kPermissionDenied, "may not be given to the steps of builds of branch " + host.substr(7));
  };
  steps_.lines["make"] = {"connecting with db-Value-42", "as base64: ZGItVmFsdWUtNDI="};
  BuildRecord out = Run();
  ASSERT_EQ(out.status, BuildStatus::kSucceeded) << out.error;
  EXPECT_THAT(credentials_asked_, ::testing::Contains("hello/DB@branch:integration"));
  ASSERT_FALSE(steps_.calls.empty());
  EXPECT_EQ(steps_.calls[0].env.at("DB"), "db-Value-42");
  EXPECT_THAT(sink_.lines, ::testing::Contains("test | connecting with ***"));
  EXPECT_THAT(sink_.lines, ::testing::Contains("test | as base64: ***I="));
  for (const auto& l : sink_.lines) EXPECT_EQ(l.find("db-Value"), std::string::npos) << l;
  // Another branch's build: refused with the reason, nothing run.
  steps_.calls.clear();
  b_.branch = "remote-run/ben/x";
  out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("secret DB: may not be given to the steps of builds of branch remote-run/ben/x"));
  EXPECT_TRUE(steps_.calls.empty() || steps_.calls[0].argv[0] != "make");
}

TEST_F(PipelineTest, ABadServiceFileFailsNamingItsLine) {
  vcs_.files["sallyport.yml"] = "version: 1\nservice: hello\nstack: demo\nreleases:\n  web: {prot: 1}\n";
  BuildRecord out = Run();
  EXPECT_EQ(out.status, BuildStatus::kFailed);
  EXPECT_THAT(out.error, HasSubstr("sallyport.yml:5"));
}

TEST_F(PipelineTest, StepsSeeTheBranchCommitAndBuildButNoSecret) {
  Run();
  ASSERT_FALSE(steps_.calls.empty());
  const auto& env = steps_.calls[0].env;
  EXPECT_EQ(env.at("SALLYPORT_BRANCH"), "integration");
  EXPECT_EQ(env.at("SALLYPORT_COMMIT"), std::string(40, 'c'));
  EXPECT_EQ(env.at("SALLYPORT_BUILD"), "7");
  for (const auto& [k, v] : env) EXPECT_NE(v, "s3cret") << k;
}

}  // namespace
}  // namespace sp
