#include "support/build_server_fixture.h"

#include <algorithm>
#include <filesystem>

#include "core/file.h"
#include "support/cli_runner.h"
#include "support/git_repo.h"

namespace sp::test {

bool Running(int pid) {
  auto stat = ReadTextFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  size_t close = stat->rfind(')');
  return close != std::string::npos && (*stat)[close + 2] != 'Z';
}

void BuildServerTest::SetUp() {
  db_ = dir_ / "state.db";
  // Steps run as nobody (the server runs as root): what they write for
  // the test goes to out_; the test's directory is only traversable.
  std::filesystem::permissions(dir_.path(), std::filesystem::perms(0711));
  std::filesystem::create_directories(out_);
  std::filesystem::permissions(out_, std::filesystem::perms(0777));
  std::filesystem::create_directories(dir_ / "git");
  work_ = dir_ / "work";
  InitRemoteAndWorkingCopy(dir_ / "git/svc.git", work_);
  git_port_ = FreePort();
  git_daemon_ = Daemon({"git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + (dir_ / "git"),
                        "--listen=127.0.0.1", "--port=" + std::to_string(git_port_), dir_ / "git"},
                       dir_ / "git-daemon.log");
  ASSERT_TRUE(WaitFor([&] { return PortOpen(git_port_); }, std::chrono::seconds(10)));
  auto added = RunSallyport({"project", "add", "--name", "svc", "--git",
                             "git://127.0.0.1:" + std::to_string(git_port_) + "/svc.git", "--store", db_});
  ASSERT_EQ(added.exit_code, 0) << added.err;
}

std::string BuildServerTest::Git(const std::vector<std::string>& args) { return ::sp::test::Git(work_, args); }

std::string BuildServerTest::Push(const std::string& pipeline, const std::string& branch) {
  WriteFile(work_ + "/sallyport.yml",
            "version: 1\nservice: svc\nstack: demo\nreleases: {web: {runtime: process}}\npipeline:\n" + pipeline);
  WriteFile(work_ + "/n", std::to_string(++commits_));
  Git({"add", "-A"});
  Git({"commit", "-q", "-m", "commit " + std::to_string(commits_)});
  Git({"push", "-q", "-f", "origin", "HEAD:refs/heads/" + branch});
  return Git({"rev-parse", "HEAD"});
}

void BuildServerTest::StartServer(const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--poll-every", "200ms"};
  args.insert(args.end(), extra.begin(), extra.end());
  server_ = std::make_unique<ServerProcess>(dir_, db_, "server-" + std::to_string(++servers_), args);
  ASSERT_TRUE(server_->ready()) << server_->Log();
}

BuildServerTest::json BuildServerTest::Builds() {
  httplib::Client c = server_->Client();
  c.set_default_headers({{"Authorization", Bearer()}});
  auto r = c.Get("/v1/builds");
  return r ? json::parse(r->body, nullptr, false)["builds"] : json::array();
}

BuildServerTest::json BuildServerTest::Build(int64_t id) {
  httplib::Client c = server_->Client();
  c.set_default_headers({{"Authorization", Bearer()}});
  auto r = c.Get("/v1/builds/" + std::to_string(id));
  return r ? json::parse(r->body, nullptr, false) : json();
}

BuildServerTest::json BuildServerTest::BuildOf(const std::string& sha, const std::string& branch) {
  for (const auto& b : Builds()) {
    if (b.value("sha", "") == sha && (branch.empty() || b.value("branch", "") == branch)) return b;
  }
  return json();
}

BuildServerTest::json BuildServerTest::WaitStatus(const std::string& sha, const std::vector<std::string>& states,
                                                  const std::string& branch, std::chrono::milliseconds limit) {
  json b;
  WaitFor(
      [&] {
        b = BuildOf(sha, branch);
        const std::string s = b.is_object() ? b.value("status", "") : "";
        return std::find(states.begin(), states.end(), s) != states.end();
      },
      limit, std::chrono::milliseconds(50));
  return b;
}

BuildServerTest::json BuildServerTest::StepNamed(const json& build, const std::string& name) {
  for (const auto& s : build["steps"]) {
    if (s.value("name", "") == name) return s;
  }
  return json();
}

}  // namespace sp::test
