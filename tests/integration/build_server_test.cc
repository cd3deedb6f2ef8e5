// The build server's rules against real processes, without Docker: a
// `git daemon` remote, a `sallyport server` polling it, pipelines of command
// steps. Branch rules, outside branch names, timeouts that kill daemonised
// grandchildren, cancel, and a server restart mid-build.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/ssl.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "build/build_service.h"
#include "vcs/git/git_vcs.h"
#include "core/digest.h"
#include "core/file.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "support/cli_runner.h"
#include "support/build_server_fixture.h"
#include "support/git_repo.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// The status of the answer to `request` (headers only) on a fresh connection.
// The status line's code of `request` sent as is over TLS (headers only: the
// server must answer before any body).
int RawStatus(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  char buf[256] = {};
  int n = 0;
  if (SSL_connect(ssl) == 1) {
    SSL_write(ssl, request.data(), static_cast<int>(request.size()));
    n = SSL_read(ssl, buf, sizeof buf - 1);
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  const std::string head(buf, n > 0 ? static_cast<size_t>(n) : 0);
  return head.size() > 12 ? std::atoi(head.c_str() + 9) : -1;
}

TEST_F(BuildServerTest, BranchRulesPickTheDeploymentAndOutsideBranchNamesAreRejected) {
  StartServer();
  const std::string pipeline = "  - {name: hello, run: [sh, -c, \"echo hello from $SALLYPORT_BRANCH\"]}\n";
  const std::string c1 = Push(pipeline, "integration");
  json integ = WaitStatus(c1, {"succeeded", "failed"}, "integration");
  ASSERT_EQ(integ.value("status", ""), "succeeded") << integ.dump();
  EXPECT_EQ(integ.value("deployment", ""), "integration");
  auto log = RunSallyport({"build", "logs", std::to_string(integ.value("id", 0)), "--server", server_->url()});
  EXPECT_THAT(log.out, HasSubstr("hello from integration"));

  json ben = WaitStatus(Push(pipeline, "remote-run/ben/feature-x"), {"succeeded", "failed"}, "remote-run/ben/feature-x");
  ASSERT_EQ(ben.value("status", ""), "succeeded") << ben.dump();
  EXPECT_EQ(ben.value("deployment", ""), "personal-ben");

  // A valid git ref, not a valid branch for us: never built, the reason logged.
  const std::string evil = Push(pipeline, "remote-run/$(reboot)/x");
  ASSERT_TRUE(WaitFor([&] { return server_->Log().find("rejected branch 'remote-run/$(reboot)/x'") != std::string::npos; },
                      std::chrono::seconds(30)))
      << server_->Log();
  EXPECT_TRUE(BuildOf(evil, "remote-run/$(reboot)/x").is_null());
  // A user that is not a user name: rejected by the rule, with the reason.
  json upper = WaitStatus(Push(pipeline, "remote-run/Ben/x"), {"succeeded", "failed"}, "remote-run/Ben/x");
  EXPECT_EQ(upper.value("status", ""), "failed");
  EXPECT_THAT(upper.value("error", ""), HasSubstr("not a valid user name"));
  // Git itself refuses "remote-run/../x"; through the API it is a 400.
  httplib::Client c = server_->Client();
  c.set_default_headers({{"Authorization", Bearer()}});
  auto dots = c.Post("/v1/builds", json{{"project", "svc"}, {"branch", "remote-run/../x"}, {"sha", c1}}.dump(),
                     "application/json");
  EXPECT_EQ(dots->status, 400) << dots->body;
  // A branch no rule matches is not built at all.
  json other = WaitStatus(Push(pipeline, "main"), {"skipped", "succeeded", "failed"}, "main");
  EXPECT_EQ(other.value("status", ""), "skipped");
}

// A manual build names a branch: only a commit that branch holds is built
// under its name (an unreviewed commit pushed elsewhere is not "main"), and
// a project's build scope is enough to ask.
TEST_F(BuildServerTest, AManualBuildIsOnlyOfACommitOnItsBranch) {
  StartServer();
  const std::string marker = out_ + "/unreviewed-ran";
  const std::string pipeline = "  - {name: a, run: [\"true\"]}\n";
  const std::string old = Push(pipeline, "integration");
  const std::string head = Push(pipeline, "integration");
  const std::string unreviewed = Push("  - {name: a, run: [touch, " + marker + "]}\n", "side");
  ASSERT_EQ(WaitStatus(head, {"succeeded", "failed"}, "integration").value("status", ""), "succeeded");
  auto token = RunSallyport({"token", "create", "--name", "svc-builder", "--scope", "build:svc", "--store", db_, "--local"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  httplib::Client c = server_->Client();
  c.set_default_headers({{"Authorization", "Bearer " + Trim(token.out)}});
  auto refused = c.Post("/v1/builds", json{{"project", "svc"}, {"branch", "integration"}, {"sha", unreviewed}}.dump(),
                        "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_THAT(refused->body, HasSubstr("is not on branch integration"));
  EXPECT_TRUE(BuildOf(unreviewed, "integration").is_null()) << "a build of it was recorded";
  auto older = c.Post("/v1/builds", json{{"project", "svc"}, {"branch", "integration"}, {"sha", old}}.dump(),
                      "application/json");
  ASSERT_TRUE(older);
  EXPECT_TRUE(older->status == 200 || older->status == 201) << older->body;
  auto other = c.Post("/v1/builds", json{{"project", "elsewhere"}, {"branch", "integration"}}.dump(), "application/json");
  EXPECT_EQ(other->status, 403) << "build:svc does not reach another project";
  EXPECT_FALSE(FileExists(marker));
}

TEST_F(BuildServerTest, ATimedOutStepIsKilledWithItsDaemonisedChildAndTheRestIsSkipped) {
  StartServer();
  const std::string pidfile = out_ + "/sleeper.pid";
  const std::string sha = Push(
      "  - {name: sleepy, timeout: 1s, run: [sh, -c, \"setsid sleep 300 >/dev/null 2>&1 </dev/null & echo $! > " +
      pidfile + "; sleep 300\"]}\n  - {name: after, run: [\"true\"]}\n");
  json b = WaitStatus(sha, {"succeeded", "failed", "canceled"});
  ASSERT_EQ(b.value("status", ""), "failed") << b.dump();
  EXPECT_THAT(b.value("error", ""), HasSubstr("timed out"));
  json full = Build(b.value("id", 0));
  EXPECT_EQ(StepNamed(full, "sleepy").value("status", ""), "failed");
  EXPECT_TRUE(StepNamed(full, "after").is_null()) << "a failed step skips the rest: " << full.dump();
  const int sleeper = std::atoi(ReadFile(pidfile).c_str());
  ASSERT_GT(sleeper, 0);
  EXPECT_FALSE(Running(sleeper)) << "the setsid'd sleeper outlived its step";
}

// A step is the commit's code: it sees none of the server's environment (the
// server under test holds the admin token in $SALLYPORT_TOKEN, as a careless
// operator's would) and a HOME that is not the server's.
TEST_F(BuildServerTest, AStepSeesNoneOfTheServersEnvironment) {
  StartServer();
  ASSERT_NE(std::getenv("SALLYPORT_TOKEN"), nullptr) << "the server inherits the admin token";
  const std::string seen = out_ + "/seen-env";
  const std::string sha = Push("  - {name: peek, run: [sh, -c, \"env > " + seen + "\"]}\n");
  json b = WaitStatus(sha, {"succeeded", "failed"});
  ASSERT_EQ(b.value("status", ""), "succeeded") << b.dump();
  const std::string env = ReadFile(seen);
  EXPECT_THAT(env, HasSubstr("SALLYPORT_COMMIT=" + sha));
  EXPECT_EQ(env.find("SALLYPORT_TOKEN"), std::string::npos) << env;
  EXPECT_EQ(env.find("SALLYPORT_CA"), std::string::npos) << env;
  EXPECT_EQ(env.find(std::getenv("SALLYPORT_TOKEN")), std::string::npos) << "the admin token reached the step";
  const char* home = std::getenv("HOME");
  if (home && *home) {
    EXPECT_EQ(env.find("HOME=" + std::string(home) + "\n"), std::string::npos) << env;
  }
}

// Step secrets (`secrets:`) come from the admin's bindings, scoped to branch
// patterns the server checks on its own record of the build. The same commit
// on integration gets the value (its step prints the value's hash, its
// base64, and the value itself one byte at a time with pauses): the log has
// the hash and ***, never the value. On remote-run/ben/x it is refused with
// the reason, and the step never runs.
class StepSecretTest : public BuildServerTest {
 protected:
  void Check(bool on_agent) {
    const std::string value = "int-Pa55word!x";
    WriteFile(dir_ / "db-pass", value + "\n", 0600);
    auto bind = RunSallyport({"credential", "set", "svc", "DB_PASSWORD", "--file", dir_ / "db-pass", "--branch",
                              "integration", "--store", db_});
    ASSERT_EQ(bind.exit_code, 0) << bind.err;
    WriteFile(out_ + "/use.sh",
              "printf %s \"$DB_PASSWORD\" | sha256sum\n"
              "printf %s \"$DB_PASSWORD\" | base64\n"
              "for c in $(printf %s \"$DB_PASSWORD\" | fold -w1); do printf %s \"$c\"; sleep 0.02; done; echo\n"
              "echo used\n",
              0755);
    StartServer(on_agent ? std::vector<std::string>{"--builds-on", "agents"} : std::vector<std::string>{});
    std::unique_ptr<Daemon> agent;
    if (on_agent) {
      const std::string token = CreateAgentToken(dir_, db_, "builder", "role=builder");
      ASSERT_FALSE(token.empty());
      agent = std::make_unique<Daemon>(std::vector<std::string>{BuildBinary("sallyport"), "agent", "run", "--server",
                                                                server_->url(), "--token-file", token, "--work-dir",
                                                                dir_ / "agent-work"},
                                       dir_ / "builder.log");
      ASSERT_EQ(WaitForStart(*agent, [&] { return ReadFile(dir_ / "builder.log").find("claiming for") != std::string::npos; },
                             std::chrono::seconds(10)),
                StartWait::kReady);
    }
    const std::string step = "  - {name: use, secrets: [DB_PASSWORD], run: [sh, " + out_ + "/use.sh]}\n";
    const std::string sha = Push(step, "integration");
    json b = WaitStatus(sha, {"succeeded", "failed"}, "integration");
    ASSERT_EQ(b.value("status", ""), "succeeded") << b.dump();
    auto log = RunSallyport({"build", "logs", std::to_string(b.value("id", 0)), "--server", server_->url()});
    ASSERT_EQ(log.exit_code, 0) << log.err;
    EXPECT_THAT(log.out, HasSubstr(Sha256Hex(value))) << "the step had the value";
    EXPECT_THAT(log.out, HasSubstr("used"));
    EXPECT_EQ(log.out.find(value), std::string::npos) << log.out;
    EXPECT_EQ(log.out.find("aW50LVBhNTV3b3Jk"), std::string::npos) << "its base64: " << log.out;
    EXPECT_GE(Split(log.out, '*').size(), 7u) << "*** where the value and its base64 were: " << log.out;
    const std::string first_log = log.out;
    const std::string other = Push(step, "remote-run/ben/x");
    b = WaitStatus(other, {"succeeded", "failed"}, "remote-run/ben/x");
    EXPECT_EQ(b.value("status", ""), "failed") << b.dump();
    EXPECT_THAT(b.value("error", ""),
                HasSubstr("may not be given to the steps of builds of branch remote-run/ben/x (bound to branch:integration)"));
    log = RunSallyport({"build", "logs", std::to_string(b.value("id", 0)), "--server", server_->url()});
    EXPECT_EQ(log.out.find(Sha256Hex(value)), std::string::npos) << "the step did not run: " << log.out;
    for (const std::string& file : {db_, db_ + "-wal"}) {
      if (std::filesystem::exists(file)) {
        EXPECT_EQ(ReadFile(file).find(value), std::string::npos) << file;
      }
    }
    if (on_agent) {
      EXPECT_THAT(first_log, HasSubstr("claimed by agent builder")) << "the step ran on the agent";
      EXPECT_EQ(ReadFile(dir_ / "builder.log").find(value), std::string::npos);
    }
  }
};

TEST_F(StepSecretTest, OnTheServer) { Check(false); }
TEST_F(StepSecretTest, OnAnAgent) { Check(true); }

// A step is the commit's code, so it runs without the keys: as nobody (the
// server runs as root), without groups. The files only the server may read
// — an agent's token, a credential file, an SSH key, each 0600 in a
// readable directory — and a socket as dockerd makes it (0660) are out of
// its reach; its checkout is its own.
TEST_F(BuildServerTest, AStepRunsAsNobodyAndReadsNoKeyNoCredentialAndNoDockerSocket) {
  if (::geteuid() != 0) GTEST_SKIP() << "steps change user only when the server runs as root";
  const std::string keys = dir_ / "keys";
  std::filesystem::create_directories(keys);
  std::filesystem::permissions(keys, std::filesystem::perms(0755));
  for (const char* f : {"agent.token", "registry-password", "id_ed25519"}) WriteFile(keys + "/" + f, "secret", 0600);
  const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string sock_path = keys + "/docker.sock";
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(sock, 4), 0);
  std::filesystem::permissions(sock_path, std::filesystem::perms(0660));
  StartServer();
  const std::string probe =
      "id -u; for f in agent.token registry-password id_ed25519; do "
      "if cat " + keys + "/$f >/dev/null 2>&1; then echo READ $f; else echo DENIED $f; fi; done; "
      "if test -w " + sock_path + "; then echo SOCKET writable; else echo SOCKET denied; fi; "
      "touch built-here && echo WROTE the checkout";
  const std::string sha = Push("  - {name: probe, run: [sh, -c, \"" + probe + "\"]}\n");
  json b = WaitStatus(sha, {"succeeded", "failed"});
  ::close(sock);
  ASSERT_EQ(b.value("status", ""), "succeeded") << b.dump();
  auto log = RunSallyport({"build", "logs", std::to_string(b.value("id", 0)), "--server", server_->url()});
  const struct passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  EXPECT_THAT(log.out, HasSubstr(std::to_string(nobody->pw_uid) + "\n"));
  for (const char* f : {"agent.token", "registry-password", "id_ed25519"}) {
    EXPECT_THAT(log.out, HasSubstr(std::string("DENIED ") + f)) << log.out;
  }
  EXPECT_EQ(log.out.find("READ "), std::string::npos) << log.out;
  EXPECT_THAT(log.out, HasSubstr("SOCKET denied"));
  EXPECT_THAT(log.out, HasSubstr("WROTE the checkout"));
}

// Each remote is polled on its own: a dead one (it accepts the connection
// and never answers, so its poll waits for the 60 s git timeout) delays no
// other project. And a force-push (a rewritten commit) is a new commit: a
// new build.
TEST_F(BuildServerTest, ADeadRemoteDelaysNoOtherAndAForcePushIsANewBuild) {
  const int dead = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(dead, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(dead, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(dead, 64), 0);  // Never accepted: the kernel completes handshakes, nobody answers.
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(dead, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ASSERT_EQ(RunSallyport({"project", "add", "--name", "dead", "--git",
                          "git://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/dead.git", "--store", db_})
                .exit_code,
            0);
  StartServer();
  const auto t0 = std::chrono::steady_clock::now();
  const std::string c1 = Push("  - {name: a, run: [\"true\"]}\n");
  json b1 = WaitStatus(c1, {"succeeded", "failed"});
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(b1.value("status", ""), "succeeded") << b1.dump() << server_->Log();
  EXPECT_LT(took, std::chrono::seconds(20)) << "the dead remote held up another project's poll";
  // Its poll has not even ended yet (it ends at the 60 s git timeout): the
  // other project was built while it hung.
  EXPECT_EQ(server_->Log().find("poll dead:"), std::string::npos) << server_->Log();
  Git({"commit", "-q", "--amend", "-m", "rewritten"});
  Git({"push", "-q", "-f", "origin", "HEAD:refs/heads/integration"});
  const std::string c2 = Git({"rev-parse", "HEAD"});
  ASSERT_NE(c1, c2);
  json b2 = WaitStatus(c2, {"succeeded", "failed"});
  EXPECT_EQ(b2.value("status", ""), "succeeded") << b2.dump();
  EXPECT_NE(b2.value("id", 0), b1.value("id", 0));
  ::close(dead);
}

// Gitea signs like GitHub but sends the bare hex HMAC in X-Gitea-Signature;
// GitLab sends the secret itself in X-Gitlab-Token. Wrong or missing: 401,
// nothing started; a replayed delivery starts nothing.
TEST_F(BuildServerTest, GiteaAndGitLabPushEventsAreVerifiedTheirOwnWay) {
  WriteFile(dir_ / "hook-secret", "gl-and-gitea-secret", 0600);
  ASSERT_EQ(RunSallyport({"project", "add", "--name", "svc", "--git",
                          "git://127.0.0.1:" + std::to_string(git_port_) + "/svc.git", "--webhook-secret",
                          "file:" + (dir_ / "hook-secret"), "--store", db_})
                .exit_code,
            0);
  server_ = std::make_unique<ServerProcess>(dir_, db_, "server-hooks", std::vector<std::string>{"--poll-every", "0"});
  ASSERT_TRUE(server_->ready()) << server_->Log();
  httplib::Client c = server_->Client();
  auto post = [&](const std::string& kind, const httplib::Headers& h, const std::string& body) {
    auto r = c.Post("/hooks/" + kind + "/svc", h, body, "application/json");
    return r ? r->status : -1;
  };
  const std::string a = Push("  - {name: a, run: [\"true\"]}\n");
  const std::string gitea_body = json{{"ref", "refs/heads/integration"}, {"after", a}}.dump();
  const std::string gitea_sig = HubSignature("gl-and-gitea-secret", gitea_body).substr(7);
  EXPECT_EQ(post("gitea", {{"X-Gitea-Signature", HubSignature("wrong", gitea_body).substr(7)}, {"X-Gitea-Delivery", "g1"}},
                 gitea_body),
            401);
  EXPECT_EQ(post("gitea", {{"X-Gitea-Signature", "sha256=" + gitea_sig}, {"X-Gitea-Delivery", "g1"}}, gitea_body), 401)
      << "GitHub's prefixed form is not Gitea's";
  EXPECT_TRUE(Builds().empty());
  EXPECT_EQ(post("gitea", {{"X-Gitea-Signature", gitea_sig}, {"X-Gitea-Delivery", "g1"}}, gitea_body), 202);
  EXPECT_EQ(post("gitea", {{"X-Gitea-Signature", gitea_sig}, {"X-Gitea-Delivery", "g1"}}, gitea_body), 200) << "replay";
  json ba = WaitStatus(a, {"succeeded", "failed"});
  EXPECT_EQ(ba.value("status", ""), "succeeded") << ba.dump();
  EXPECT_EQ(ba.value("trigger", ""), "webhook");

  const std::string b = Push("  - {name: b, run: [\"true\"]}\n");
  const std::string gitlab_body =
      json{{"object_kind", "push"}, {"ref", "refs/heads/integration"}, {"after", b}, {"checkout_sha", b}}.dump();
  EXPECT_EQ(post("gitlab", {{"X-Gitlab-Token", "gl-and-gitea-secreT"}, {"X-Gitlab-Event-UUID", "u1"}}, gitlab_body), 401);
  EXPECT_EQ(post("gitlab", {{"X-Gitlab-Event-UUID", "u1"}}, gitlab_body), 401) << "no token";
  EXPECT_TRUE(BuildOf(b).is_null()) << "nothing started";
  EXPECT_EQ(post("gitlab", {{"X-Gitlab-Token", "gl-and-gitea-secret"}, {"X-Gitlab-Event-UUID", "u1"}}, gitlab_body), 202);
  EXPECT_EQ(post("gitlab", {{"X-Gitlab-Token", "gl-and-gitea-secret"}, {"X-Gitlab-Event-UUID", "u1"}}, gitlab_body), 200);
  json bb = WaitStatus(b, {"succeeded", "failed"});
  EXPECT_EQ(bb.value("status", ""), "succeeded") << bb.dump();
  EXPECT_EQ(Builds().size(), 2u);

  // A signed push replayed under a new delivery id once its commit is no
  // longer the branch's head starts nothing (c was never built; d is the head).
  const std::string c_sha = Push("  - {name: c, run: [\"true\"]}\n");
  Push("  - {name: d, run: [\"true\"]}\n");
  const std::string old_body = json{{"ref", "refs/heads/integration"}, {"after", c_sha}}.dump();
  const std::string old_sig = HubSignature("gl-and-gitea-secret", old_body).substr(7);
  EXPECT_EQ(post("gitea", {{"X-Gitea-Signature", old_sig}, {"X-Gitea-Delivery", "fresh-id"}}, old_body), 200);
  EXPECT_TRUE(BuildOf(c_sha).is_null()) << "a push that is no longer the head was built";
  // A body over the limit is refused from its length, before it is read.
  EXPECT_EQ(RawStatus(server_->port(), "POST /hooks/gitea/svc HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n"
                                       "Content-Type: application/json\r\n\r\n"),
            413);
  // The secret's file gone: 401 like a bad signature, naming no path; the
  // reason is in the server's output for its admin.
  std::filesystem::remove(dir_ / "hook-secret");
  auto missing = c.Post("/hooks/gitea/svc", {{"X-Gitea-Signature", gitea_sig}, {"X-Gitea-Delivery", "g9"}}, gitea_body,
                        "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(missing->body.find("hook-secret"), std::string::npos) << missing->body;
  EXPECT_EQ(missing->body.find(dir_.path()), std::string::npos) << missing->body;
  EXPECT_THAT(server_->Log(), HasSubstr("project svc: its webhook secret"));
}

TEST_F(BuildServerTest, CancelEndsARunningBuild) {
  StartServer();
  const std::string pidfile = out_ + "/cancel.pid";
  const std::string sha = Push("  - {name: long, run: [sh, -c, \"echo $$ > " + pidfile + "; sleep 300\"]}\n");
  json b = WaitStatus(sha, {"running"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(pidfile); }, std::chrono::seconds(30)));
  auto cancel = RunSallyport({"build", "cancel", std::to_string(b.value("id", 0)), "--server", server_->url()});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  json done = WaitStatus(sha, {"canceled", "failed", "succeeded"});
  EXPECT_EQ(done.value("status", ""), "canceled") << done.dump();
  EXPECT_FALSE(Running(std::atoi(ReadFile(pidfile).c_str())));
}

// With --builds-on agents the step runs on the agent; a cancel on the
// server cancels the job, the agent loses its lease at the next heartbeat
// and ends the step with its descendants.
TEST_F(BuildServerTest, ABuildRunningOnAnAgentIsCanceledThere) {
  StartServer({"--builds-on", "agents"});
  const std::string token = CreateAgentToken(dir_, db_, "builder", "role=builder");
  ASSERT_FALSE(token.empty());
  Daemon agent({BuildBinary("sallyport"), "agent", "run", "--server", server_->url(), "--token-file", token, "--lease", "2s",
                "--work-dir", dir_ / "agent-work"},
               dir_ / "builder.log");
  ASSERT_EQ(WaitForStart(agent, [&] { return ReadFile(dir_ / "builder.log").find("claiming for") != std::string::npos; },
                         std::chrono::seconds(10)),
            StartWait::kReady);
  const std::string pidfile = out_ + "/agent-step.pid";
  const std::string sha = Push("  - {name: long, run: [sh, -c, \"echo $$ > " + pidfile + "; sleep 300\"]}\n");
  json b = WaitStatus(sha, {"running"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(pidfile); }, std::chrono::seconds(30))) << ReadFile(dir_ / "builder.log");
  const int step_pid = std::atoi(ReadFile(pidfile).c_str());
  // The step's lines reach the server's build log while it runs.
  const std::string id = std::to_string(b.value("id", 0));
  EXPECT_TRUE(WaitFor([&] { return RunSallyport({"build", "logs", id, "--server", server_->url()}).out.find("--- step long") !=
                                   std::string::npos; },
                      std::chrono::seconds(10)));
  auto cancel = RunSallyport({"build", "cancel", std::to_string(b.value("id", 0)), "--server", server_->url()});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  json done = WaitStatus(sha, {"canceled", "failed", "succeeded"});
  EXPECT_EQ(done.value("status", ""), "canceled") << done.dump();
  EXPECT_TRUE(WaitFor([&] { return !Running(step_pid); }, std::chrono::seconds(10)))
      << "the agent must end the canceled build's step: " << ReadFile(dir_ / "builder.log");
  // The canceled job's agent still sends its last lines.
  EXPECT_TRUE(WaitFor([&] { return RunSallyport({"build", "logs", id, "--server", server_->url()}).out.find("build canceled") !=
                                   std::string::npos; },
                      std::chrono::seconds(10)));
  auto log = RunSallyport({"build", "logs", id, "--server", server_->url()});
  EXPECT_THAT(log.out, HasSubstr("claimed by agent builder")) << log.err << ReadFile(dir_ / "builder.log");
  auto jobs = RunSallyport({"job", "list", "--store", db_});
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("build +canceled")) << jobs.out;
  agent.Stop();
}

TEST_F(BuildServerTest, AServerRestartMidBuildMarksItInterruptedOrQueuesItAgain) {
  StartServer();
  const std::string pidfile = out_ + "/step.pid";
  const std::string sha = Push("  - {name: long, run: [sh, -c, \"echo $$ > " + pidfile + "; sleep 300\"]}\n");
  WaitStatus(sha, {"running"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(pidfile); }, std::chrono::seconds(30)));
  const int step_pid = std::atoi(ReadFile(pidfile).c_str());
  server_->daemon().Signal(SIGKILL);
  server_->daemon().Stop();
  EXPECT_TRUE(WaitFor([&] { return !Running(step_pid); }, std::chrono::seconds(10)))
      << "the step of a dead server must not run on unwatched";
  StartServer();
  json b = WaitStatus(sha, {"interrupted"});
  EXPECT_EQ(b.value("status", ""), "interrupted") << "never running forever: " << b.dump();

  // With --requeue-interrupted a build left running starts again.
  std::filesystem::remove(pidfile);
  const std::string sha2 = Push("  - {name: long, run: [sh, -c, \"echo $$ > " + pidfile + "; sleep 300\"]}\n");
  WaitStatus(sha2, {"running"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(pidfile); }, std::chrono::seconds(30)));
  server_->daemon().Signal(SIGKILL);
  server_->daemon().Stop();
  std::filesystem::remove(pidfile);
  StartServer({"--requeue-interrupted"});
  EXPECT_TRUE(WaitFor([&] { return FileExists(pidfile); }, std::chrono::seconds(30))) << "queued again and running";
  EXPECT_EQ(WaitStatus(sha2, {"running"}).value("status", ""), "running");
  auto cancel = RunSallyport({"build", "cancel", std::to_string(BuildOf(sha2).value("id", 0)), "--server", server_->url()});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(WaitStatus(sha2, {"canceled"}).value("status", ""), "canceled");
}

TEST_F(BuildServerTest, TheNativeGitProtocolListsTheSameHeadsAsGitLsRemote) {
  Push("  - {name: a, run: [\"true\"]}\n", "integration");
  Push("  - {name: a, run: [\"true\"]}\n", "remote-run/ben/x");
  Push("  - {name: a, run: [\"true\"]}\n", "main");
  const std::string url = "git://127.0.0.1:" + std::to_string(git_port_) + "/svc.git";
  auto native = GitVcs().ListHeads(url, Millis(10'000));
  ASSERT_TRUE(native) << native.error().message;
  std::string out;
  ASSERT_EQ(::sp::test::Run({"git", "ls-remote", "--heads", url}, &out), 0) << out;
  std::vector<std::string> want, got;
  for (const auto& line : Split(out, '\n')) {
    auto tab = line.find('\t');
    if (tab != std::string::npos) want.push_back(Trim(line.substr(tab + 1)).substr(11) + "@" + line.substr(0, tab));
  }
  for (const auto& h : *native) got.push_back(h.branch + "@" + h.sha);
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.size(), 3u);
  auto missing = GitVcs().ListHeads("git://127.0.0.1:" + std::to_string(git_port_) + "/nope.git", Millis(5'000));
  EXPECT_FALSE(missing) << "an unknown repository is an error, never an empty list";
  auto closed = GitVcs().ListHeads("git://127.0.0.1:" + std::to_string(FreePort()) + "/svc.git", Millis(2'000));
  EXPECT_FALSE(closed);
}

TEST_F(BuildServerTest, ANewerCommitSupersedesAQueuedBuildButNotARunningOne) {
  StartServer({"--builds", "1"});
  const std::string long_step = "  - {name: long, run: [sh, -c, \"sleep 300\"]}\n";
  const std::string a = Push(long_step);
  json running = WaitStatus(a, {"running"});
  ASSERT_EQ(running.value("status", ""), "running");
  // With the only slot busy, b is queued; c, newer on the same branch, replaces it.
  const std::string b = Push(long_step);
  ASSERT_EQ(WaitStatus(b, {"queued"}).value("status", ""), "queued");
  const std::string c = Push("  - {name: quick, run: [\"true\"]}\n");
  json superseded = WaitStatus(b, {"superseded"});
  EXPECT_EQ(superseded.value("status", ""), "superseded") << superseded.dump();
  EXPECT_EQ(BuildOf(a).value("status", ""), "running") << "a running build is never superseded";
  auto cancel = RunSallyport({"build", "cancel", std::to_string(running.value("id", 0)), "--server", server_->url()});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(WaitStatus(c, {"succeeded", "failed"}).value("status", ""), "succeeded");
  EXPECT_EQ(BuildOf(b).value("status", ""), "superseded");
}

}  // namespace
}  // namespace sp::test
