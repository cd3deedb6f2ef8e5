// docs/process-runtime.md, run as a user would: every ```sh block, verbatim
// and in order, in one bash (set -euo pipefail) with the built `sallyport`
// first on PATH, in a directory and on ports of this test's own. What the
// blocks print must show each version served through HAProxy and the
// supervisor's restart. Whatever a failed run left (HAProxy, apps) is ended
// by its pid files.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/text.h"
#include "support/rollout_scenario.h"
#include "support/cli_runner.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

// The ```sh blocks of a markdown file, in order.
std::vector<std::string> ShellBlocks(const std::string& markdown) {
  std::vector<std::string> blocks;
  bool in = false;
  for (const auto& line : Split(markdown, '\n')) {
    if (!in && line == "```sh") {
      in = true;
      blocks.emplace_back();
    } else if (in && line == "```") {
      in = false;
    } else if (in) {
      blocks.back() += line + "\n";
    }
  }
  return blocks;
}

class ProcessRuntimeGuide : public ::testing::Test {
 protected:
  void TearDown() override {
    StopScenarioApps(dir_ / "apps", 2, "local");
    const std::string pid = Trim(ReadFile(dir_ / "haproxy.pid"));
    if (!pid.empty() && std::atoi(pid.c_str()) > 1) ::kill(std::atoi(pid.c_str()), SIGTERM);
  }
  TempDir dir_{"sp-guide"};
};

TEST_F(ProcessRuntimeGuide, EveryShellBlockOfTheGuideRunsAndShipsBothVersions) {
  if (FindProgram("haproxy", {"/usr/sbin"}).empty()) GTEST_SKIP() << "haproxy not installed";
  const auto blocks = ShellBlocks(ReadFile(std::string(SP_SOURCE_DIR) + "/docs/process-runtime.md"));
  ASSERT_GE(blocks.size(), 5u);
  std::string script = "set -euo pipefail\n";
  for (const auto& b : blocks) script += b;
  WriteFile(dir_ / "guide.sh", script);
  const std::string bin_dir = std::filesystem::path(BuildBinary("sallyport")).parent_path();
  const std::string path = bin_dir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const int p1 = FreePort(), p2 = FreePort(), front = FreePort();
  auto r = RunProgram({"env", "PATH=" + path, "HOME=" + std::string(dir_.path()), "GUIDE_DIR=" + std::string(dir_ / "work"),
                       "P1=" + std::to_string(p1), "P2=" + std::to_string(p2), "FRONT=" + std::to_string(front),
                       "bash", dir_ / "guide.sh"},
                      240);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The first curl answered v1, the second v2; then the restarted app, v2.
  const auto v1 = r.out.find("v1\n"), v2 = r.out.find("v2\n");
  ASSERT_NE(v1, std::string::npos) << r.out;
  ASSERT_NE(v2, std::string::npos) << r.out;
  EXPECT_LT(v1, v2);
  EXPECT_THAT(r.out, ::testing::HasSubstr("succeeded"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("serving v2 with GREETING=hello on port " + std::to_string(p1)));
  // After the logs' first lines, the app killed by hand answered v2 again:
  // its supervisor restarted it, and said so in its log.
  EXPECT_NE(r.out.find("v2\n", r.out.find("serving v1")), std::string::npos) << r.out;
  std::string logs;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "work/apps/web/local/app1/releases")) {
    logs += ReadFile(e.path() / "out.log");
  }
  EXPECT_THAT(logs, ::testing::HasSubstr("sallyport supervisor: the app exited (status"));
  EXPECT_THAT(logs, ::testing::HasSubstr("restart 1 in 1s"));
}

}  // namespace
}  // namespace sp::test
