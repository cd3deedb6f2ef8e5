// Credentials belong to the server's admin, not to the commit (issue 14),
// attacked from a pushed commit: a real `git daemon`, a real `sallyport
// server` over TLS building what it polls (in itself, then on an agent).
// A commit's sallyport.yml that points the registry password at a file or
// an environment variable, or that names the real binding with a registry
// of its own, fails before any of its steps runs: the marker its first step
// would create stays absent and a listener on 127.0.0.2 receives nothing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/cli_runner.h"
#include "support/git_repo.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// A TCP listener on 127.0.0.2: whether anyone connected (a completed
// handshake waits in the backlog; a non-blocking accept finds it).
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0 && ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~Listener() { ::close(fd_); }
  int port() const { return port_; }
  bool Contacted() {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return false;
    ::close(c);
    return true;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class CredentialIT : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(listener_.port(), 0);
    std::filesystem::create_directories(dir_ / "git");
    work_ = dir_ / "work";
    InitRemoteAndWorkingCopy(dir_ / "git/svc.git", work_);
    const int git_port = FreePort();
    git_daemon_ = Daemon({"git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + (dir_ / "git"),
                          "--listen=127.0.0.1", "--port=" + std::to_string(git_port), dir_ / "git"},
                         dir_ / "git-daemon.log");
    ASSERT_TRUE(WaitFor([&] { return PortOpen(git_port); }, std::chrono::seconds(10)));
    auto added = RunSallyport({"project", "add", "--name", "svc", "--git",
                               "git://127.0.0.1:" + std::to_string(git_port) + "/svc.git", "--store", db_});
    ASSERT_EQ(added.exit_code, 0) << added.err;
    WriteFile(dir_ / "registry-password", "the-registry-secret", 0600);
    auto bound = RunSallyport({"credential", "set", "svc", "registry", "--file", dir_ / "registry-password", "--host",
                               "127.0.0.1:5999", "--store", db_});
    ASSERT_EQ(bound.exit_code, 0) << bound.err;
    auto listed = RunSallyport({"credential", "list", "svc", "--store", db_, "--local"});
    EXPECT_THAT(listed.out, HasSubstr("registry"));
    EXPECT_THAT(listed.out, HasSubstr("127.0.0.1:5999"));
    EXPECT_EQ(listed.out.find("the-registry-secret"), std::string::npos);
  }

  void StartServer(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--poll-every", "200ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(dir_, db_, "server", args);
    ASSERT_TRUE(server_->ready()) << server_->Log();
  }

  // Commits a sallyport.yml whose registry password is `password` (and its
  // registry `registry`), its first step creating the marker; pushes it.
  std::string Push(const std::string& password, const std::string& registry, const std::string& branch) {
    WriteFile(work_ + "/sallyport.yml",
              "version: 1\nservice: svc\nstack: demo\n"
              "image: {repository: " + registry + "/svc}\n"
              "registry: {address: " + registry + ", username: ci, password: " + password + "}\n"
              "releases: {web: {runtime: docker, port: 8080}}\n"
              "pipeline:\n"
              "  - {name: mark, run: [touch, " + marker_ + "]}\n"
              "  - {name: image, kind: image}\n"
              "  - {name: push, kind: push}\n");
    WriteFile(work_ + "/n", branch);
    Git(work_, {"add", "-A"});
    Git(work_, {"commit", "-q", "-m", "try " + branch});
    Git(work_, {"push", "-q", "-f", "origin", "HEAD:refs/heads/" + branch});
    return Git(work_, {"rev-parse", "HEAD"});
  }

  void ExpectRefused(const std::string& password, const std::string& registry, const std::string& branch,
                     const std::string& says) {
    const std::string sha = Push(password, registry, branch);
    const json b = WaitForEndedBuild(*server_, [&](const json& b) { return b.value("sha", "") == sha; });
    ASSERT_TRUE(b.is_object()) << "no finished build of " << branch << "\n" << server_->Log();
    EXPECT_EQ(b.value("status", ""), "failed") << b;
    EXPECT_THAT(b.value("error", ""), HasSubstr(says)) << b;
    EXPECT_EQ(b.value("error", "").find("the-registry-secret"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(marker_)) << "a step of " << branch << " ran";
    EXPECT_FALSE(listener_.Contacted()) << branch << " reached the commit's registry";
  }

  TempDir dir_{"sp-credential-it"};
  const std::string db_ = dir_ / "state.db";
  const std::string marker_ = dir_ / "step-ran";
  std::string work_;
  Daemon git_daemon_;
  Listener listener_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(CredentialIT, ACommitChoosesNoSecretFileNoVariableAndNoRegistryForABinding) {
  StartServer();
  const std::string own = "127.0.0.2:" + std::to_string(listener_.port());
  ExpectRefused("{file: " + (dir_ / "registry-password") + "}", "127.0.0.1:5999", "integration",
                "registry.password: {file} is for local runs only");
  ExpectRefused("{env: SALLYPORT_TOKEN}", "127.0.0.1:5999", "main", "registry.password: {env} is for local runs only");
  ExpectRefused("{credential: registry}", own, "remote-run/ben/x",
                "credential 'registry' of project svc may not be sent to " + own + " (bound to 127.0.0.1:5999)");
  ExpectRefused("{credential: nope}", "127.0.0.1:5999", "remote-run/ben/y", "project svc has no credential 'nope'");
}

// On an agent, the build asks the server for the credential by name; the
// server answers from the file the build recorded and refuses the same.
TEST_F(CredentialIT, AnAgentsBuildGetsNoBindingForTheCommitsOwnRegistry) {
  StartServer({"--builds-on", "agents"});
  const std::string token = CreateAgentToken(dir_, db_, "builder", "role=builder");
  ASSERT_FALSE(token.empty());
  Daemon agent({BuildBinary("sallyport"), "agent", "run", "--server", server_->url(), "--token-file", token,
                "--work-dir", dir_ / "agent-work"},
               dir_ / "agent.log");
  const std::string own = "127.0.0.2:" + std::to_string(listener_.port());
  ExpectRefused("{credential: registry}", own, "integration", "may not be sent to " + own);
  EXPECT_EQ(ReadFile(dir_ / "agent.log").find("the-registry-secret"), std::string::npos);
  agent.Stop();
}

// The admin names a token realm on another host beside the registry (as
// Docker Hub's auth.docker.io is to its registry); alone it means nothing.
TEST_F(CredentialIT, ATokenRealmHostIsBoundOnlyBesideItsRegistry) {
  auto alone = RunSallyport({"credential", "set", "svc", "hub", "--file", dir_ / "registry-password", "--realm-host",
                             "auth.example", "--store", db_});
  EXPECT_EQ(alone.exit_code, 2) << alone.out << alone.err;
  EXPECT_THAT(alone.err, HasSubstr("--realm-host goes with --host"));
  auto bad = RunSallyport({"credential", "set", "svc", "hub", "--file", dir_ / "registry-password", "--host",
                           "registry.example", "--realm-host", "evil host", "--store", db_});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  auto bound = RunSallyport({"credential", "set", "svc", "hub", "--file", dir_ / "registry-password", "--host",
                             "registry.example", "--realm-host", "auth.example", "--store", db_});
  ASSERT_EQ(bound.exit_code, 0) << bound.err;
  auto listed = RunSallyport({"credential", "list", "svc", "--store", db_, "--local"});
  EXPECT_THAT(listed.out, HasSubstr("realm:auth.example")) << listed.out;
  auto helper = RunSallyport({"credential", "set", "svc", "ecr", "--helper", "ecr-login", "--deployment", "staging",
                              "--store", db_});
  EXPECT_EQ(helper.exit_code, 2) << helper.out << helper.err;
  EXPECT_THAT(helper.err, HasSubstr("a credential helper gives registry credentials: --host only"));
}

}  // namespace
}  // namespace sp::test
