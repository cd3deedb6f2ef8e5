// A build server's test bench, shared by the build server's tests: a `git
// daemon` remote of one project (svc) with a working copy to push from, and
// a `sallyport server` polling it (started by the test, with its flags).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {

// Whether `pid` is alive (a zombie is not).
bool Running(int pid);

class BuildServerTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;
  void SetUp() override;

  std::string Git(const std::vector<std::string>& args);
  // Commits a sallyport.yml with these pipeline lines and pushes it to `branch`.
  std::string Push(const std::string& pipeline, const std::string& branch = "integration");
  void StartServer(const std::vector<std::string>& extra = {});

  json Builds();
  json Build(int64_t id);
  json BuildOf(const std::string& sha, const std::string& branch = "");
  // The build of `sha` once its status is one of `states` (up to `limit`).
  json WaitStatus(const std::string& sha, const std::vector<std::string>& states, const std::string& branch = "",
                  std::chrono::milliseconds limit = std::chrono::seconds(60));
  static json StepNamed(const json& build, const std::string& name);

  TempDir dir_{"sp-build-server"};
  const std::string out_ = dir_ / "out";
  std::string db_, work_;
  int git_port_ = 0, commits_ = 0, servers_ = 0;
  Daemon git_daemon_;
  std::unique_ptr<ServerProcess> server_;
};

}  // namespace sp::test
