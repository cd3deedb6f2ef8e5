// Remotes that want credentials (issue 5): a smart-HTTP remote (git
// http-backend behind a server that demands HTTP basic auth) reached with a
// token, and an ssh:// remote (a real sshd on loopback) reached with a deploy
// key whose host key must be in the project's known_hosts. The server polls
// each, builds the commit, and the credential's value appears nowhere.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/subprocess.h"
#include "core/text.h"
#include "support/cli_runner.h"
#include "support/git_repo.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr char kToken[] = "tok-7f3a9c";
// base64("x-access-token:tok-7f3a9c"), computed outside the code under test.
constexpr char kExpectedAuth[] = "Basic eC1hY2Nlc3MtdG9rZW46dG9rLTdmM2E5Yw==";

// Git's smart HTTP protocol: `git http-backend` as a CGI program, behind
// basic auth. Counts the requests it answered and those it refused.
class GitHttpServer {
 public:
  explicit GitHttpServer(std::string root) : root_(std::move(root)) {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != kExpectedAuth) {
        ++refused_;
        res.status = 401;
        res.set_header("WWW-Authenticate", "Basic realm=\"git\"");
        return;
      }
      ++served_;
      CommandSpec c;
      c.argv = {"git", "http-backend"};
      c.env = {{"GIT_PROJECT_ROOT", root_}, {"GIT_HTTP_EXPORT_ALL", "1"}, {"PATH_INFO", req.path},
               {"REQUEST_METHOD", req.method}, {"QUERY_STRING", QueryOf(req)},
               {"CONTENT_TYPE", req.get_header_value("Content-Type")},
               {"CONTENT_LENGTH", std::to_string(req.body.size())}, {"REMOTE_USER", "x-access-token"},
               {"REMOTE_ADDR", "127.0.0.1"}, {"GIT_PROTOCOL", req.get_header_value("Git-Protocol")},
               {"HTTP_CONTENT_ENCODING", req.get_header_value("Content-Encoding")}};
      c.stdin_data = req.body;
      c.timeout = std::chrono::milliseconds(30'000);
      auto st = SystemProcesses().Run(c);
      if (!st || !st->ok()) {
        res.status = 500;
        return;
      }
      // CGI output: headers, a blank line, the body.
      const std::string& out = st->out;
      size_t end = out.find("\r\n\r\n"), skip = 4;
      if (end == std::string::npos) end = out.find("\n\n"), skip = 2;
      if (end == std::string::npos) {
        res.status = 500;
        return;
      }
      std::string type = "application/octet-stream";
      res.status = 200;
      for (const auto& line : Split(out.substr(0, end), '\n')) {
        const std::string l = Trim(line);
        const size_t colon = l.find(':');
        if (colon == std::string::npos) continue;
        const std::string name = l.substr(0, colon), value = Trim(l.substr(colon + 1));
        if (name == "Status") res.status = std::atoi(value.c_str());
        else if (name == "Content-Type") type = value;
        else res.set_header(name, value);
      }
      res.set_content(out.substr(end + skip), type);
    };
    server_.Get(R"(/.*)", handler);
    server_.Post(R"(/.*)", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~GitHttpServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  int served() const { return served_; }
  int refused() const { return refused_; }

 private:
  static std::string QueryOf(const httplib::Request& req) {
    std::string q;
    for (const auto& [k, v] : req.params) q += (q.empty() ? "" : "&") + k + "=" + v;
    return q;
  }
  std::string root_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  std::atomic<int> served_{0}, refused_{0};
};

class GitCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_ / "state.db";
    std::filesystem::create_directories(dir_ / "git");
    work_ = dir_ / "work";
    InitRemoteAndWorkingCopy(dir_ / "git/svc.git", work_);
    WriteFile(work_ + "/sallyport.yml",
              "version: 1\nservice: svc\nstack: demo\nreleases: {web: {runtime: process}}\n"
              "pipeline:\n  - {name: unit, run: [sh, -c, \"echo built from the remote\"]}\n");
    Git({"add", "-A"});
    Git({"commit", "-q", "-m", "first"});
    Git({"push", "-q", "origin", "HEAD:refs/heads/integration"});
    sha_ = Git({"rev-parse", "HEAD"});
  }

  std::string Git(const std::vector<std::string>& args) { return ::sp::test::Git(work_, args); }
  CliResult AddProject(const std::string& name, const std::string& url, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"project", "add", "--name", name, "--git", url, "--store", db_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSallyport(args);
  }
  void StartServer() {
    server_ = std::make_unique<ServerProcess>(dir_, db_, "server", std::vector<std::string>{"--poll-every", "200ms"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
  }
  // The build of `project` (any status once it has ended), or null after 60 s.
  json WaitBuilt(const std::string& project) {
    const json found =
        WaitForEndedBuild(*server_, [&](const json& b) { return b.value("project", "") == project; });
    return found.is_object() ? found : json::object();
  }
  std::string BuildLog(const json& b) {
    return RunSallyport({"build", "logs", std::to_string(b.value("id", 0)), "--server", server_->url()}).out;
  }

  TempDir dir_{"sp-git-credentials"};
  std::string db_, work_, sha_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(GitCredentialsTest, AnHttpRemoteIsPolledAndCheckedOutWithItsTokenAndRefusedWithoutIt) {
  GitHttpServer http(dir_ / "git");
  const std::string url = "http://127.0.0.1:" + std::to_string(http.port()) + "/svc.git";
  WriteFile(dir_ / "token", std::string(kToken) + "\n", 0600);
  WriteFile(dir_ / "wrong-token", "not-the-token\n", 0600);
  ASSERT_EQ(AddProject("svc", url, {"--credential", "file:" + (dir_ / "token")}).exit_code, 0);
  ASSERT_EQ(AddProject("anon", url).exit_code, 0);
  ASSERT_EQ(AddProject("wrong", url, {"--credential", "file:" + (dir_ / "wrong-token")}).exit_code, 0);
  auto value = AddProject("leaky", url, {"--credential", kToken});
  EXPECT_NE(value.exit_code, 0) << "a credential value instead of a reference is refused";
  EXPECT_THAT(value.err, HasSubstr("file:/path or env:NAME"));
  EXPECT_EQ(value.err.find(kToken), std::string::npos) << "the refusal repeats the value: " << value.err;
  StartServer();
  json b = WaitBuilt("svc");
  ASSERT_EQ(b.value("status", ""), "succeeded") << b.dump() << BuildLog(b) << server_->Log();
  EXPECT_EQ(b.value("sha", ""), sha_);
  const std::string log = BuildLog(b);
  EXPECT_THAT(log, HasSubstr("built from the remote"));
  EXPECT_GT(http.served(), 2) << "polled and fetched with the token";
  // Without the token, or with a wrong one: refused by the remote, nothing built.
  ASSERT_TRUE(WaitFor([&] { return server_->Log().find("poll wrong:") != std::string::npos &&
                                   server_->Log().find("poll anon:") != std::string::npos; },
                      std::chrono::seconds(10)))
      << server_->Log();
  EXPECT_GT(http.refused(), 0);
  auto list = RunSallyport({"build", "list", "--server", server_->url()});
  EXPECT_EQ(list.out.find("anon"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("wrong"), std::string::npos) << list.out;
  for (const std::string& text : {log, server_->Log(), list.out}) {
    EXPECT_EQ(text.find(kToken), std::string::npos) << "the token leaked: " << text;
    EXPECT_EQ(text.find("eC1hY2Nlc3MtdG9rZW46"), std::string::npos) << "the auth header leaked: " << text;
  }
}

TEST_F(GitCredentialsTest, AnSshRemoteIsReachedWithItsDeployKeyOnlyWhenItsHostKeyIsKnown) {
  if (::geteuid() != 0) GTEST_SKIP() << "sshd on loopback needs root";
  const std::string sshd = "/usr/sbin/sshd";
  ASSERT_TRUE(FileExists(sshd)) << "openssh-server";
  const std::string s = dir_ / "ssh";
  std::filesystem::create_directories(s);
  std::filesystem::create_directories("/run/sshd");
  for (const std::string key : {"host_key", "deploy_key"}) {
    ASSERT_EQ(::sp::test::Run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", s + "/" + key}), 0);
  }
  std::filesystem::copy_file(s + "/deploy_key.pub", s + "/authorized_keys");
  const int port = FreePort();
  WriteFile(s + "/sshd_config",
            "Port " + std::to_string(port) + "\nListenAddress 127.0.0.1\nHostKey " + s + "/host_key\nPidFile " + s +
                "/sshd.pid\nAuthorizedKeysFile " + s + "/authorized_keys\nStrictModes no\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nAllowUsers root\n",
            0600);
  Daemon daemon({sshd, "-D", "-e", "-f", s + "/sshd_config"}, s + "/sshd.log");
  ASSERT_TRUE(WaitFor([&] { return PortOpen(port); }, std::chrono::seconds(10))) << ReadFile(s + "/sshd.log");
  const std::string host_pub = Trim(ReadFile(s + "/host_key.pub"));
  WriteFile(s + "/known_hosts", "[127.0.0.1]:" + std::to_string(port) + " " + host_pub + "\n", 0600);
  WriteFile(s + "/empty_known_hosts", "", 0600);
  const std::string url = "ssh://root@127.0.0.1:" + std::to_string(port) + (dir_ / "git/svc.git");
  ASSERT_EQ(AddProject("svc", url, {"--credential", "file:" + s + "/deploy_key", "--known-hosts", s + "/known_hosts"}).exit_code,
            0);
  ASSERT_EQ(AddProject("unknown", url, {"--credential", "file:" + s + "/deploy_key", "--known-hosts", s + "/empty_known_hosts"})
                .exit_code,
            0);
  StartServer();
  json b = WaitBuilt("svc");
  ASSERT_EQ(b.value("status", ""), "succeeded") << b.dump() << BuildLog(b) << server_->Log() << ReadFile(s + "/sshd.log");
  EXPECT_EQ(b.value("sha", ""), sha_);
  EXPECT_THAT(BuildLog(b), HasSubstr("built from the remote"));
  // The host key is not in that project's known_hosts: no connection is trusted, nothing built.
  ASSERT_TRUE(WaitFor([&] { return server_->Log().find("poll unknown:") != std::string::npos; }, std::chrono::seconds(10)))
      << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("Host key verification failed"));
  auto list = RunSallyport({"build", "list", "--server", server_->url()});
  EXPECT_EQ(list.out.find("unknown"), std::string::npos) << list.out;
  const std::string key = ReadFile(s + "/deploy_key");
  EXPECT_EQ(server_->Log().find(key.substr(40, 40)), std::string::npos) << "the key's content leaked";
  daemon.Stop();
}

}  // namespace
}  // namespace sp::test
