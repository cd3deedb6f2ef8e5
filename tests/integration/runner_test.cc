// The step runner against real processes: nothing a step starts outlives it,
// not even a grandchild that called setsid and daemonised.
#include "runner/runner.h"

#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/file.h"
#include "core/text.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// True while `pid` exists and is not a zombie.
bool Running(int pid) {
  auto stat = ReadTextFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  size_t close = stat->rfind(')');
  return close != std::string::npos && (*stat)[close + 2] != 'Z';
}

int PidIn(const std::string& path) {
  auto text = ReadTextFile(path);
  return text ? std::atoi(Trim(*text).c_str()) : 0;
}

class RunnerTest : public ::testing::Test {
 protected:
  StepCommand Step(const std::string& script, Millis timeout) {
    StepCommand c;
    c.argv = {"/bin/sh", "-c", script};
    c.cwd = dir_.path();
    c.timeout = timeout;
    c.grace = Millis(500);
    c.on_line = [this](bool is_err, const std::string& line) { lines_.push_back((is_err ? "err: " : "out: ") + line); };
    return c;
  }
  SupervisedStepRunner runner_{SystemProcesses(), BuildBinary("sallyport")};
  TempDir dir_{"sp-runner"};
  std::vector<std::string> lines_;
};

TEST_F(RunnerTest, OutputArrivesLineByLineAndTheExitCodeIsTheCommands) {
  auto st = runner_.Run(Step("echo one; echo two >&2; echo three; exit 3", Millis(10'000)));
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->exit_code, 3);
  EXPECT_FALSE(st->timed_out);
  EXPECT_TRUE(st->out.empty()) << "nothing kept in memory";
  // stdout and stderr are separate pipes: only each one's order is defined.
  std::vector<std::string> out_lines;
  for (const auto& l : lines_) {
    if (l.rfind("out: ", 0) == 0) out_lines.push_back(l);
  }
  EXPECT_THAT(out_lines, ElementsAre("out: one", "out: three"));
  EXPECT_EQ(std::count(lines_.begin(), lines_.end(), "err: two"), 1);
}

TEST_F(RunnerTest, ATimeoutKillsADaemonisedGrandchildToo) {
  // The grandchild leaves the step's process group and session (setsid),
  // closes the step's pipes, and its parent exits: a daemon.
  const std::string pidfile = dir_ / "daemon.pid";
  auto st = runner_.Run(Step("setsid sh -c 'sleep 300 >/dev/null 2>&1 </dev/null & echo $! > " + pidfile +
                             "' >/dev/null 2>&1 </dev/null & echo started; sleep 300",
                         Millis(1'000)));
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_TRUE(st->timed_out);
  const int daemon = PidIn(pidfile);
  ASSERT_GT(daemon, 0);
  EXPECT_FALSE(Running(daemon)) << "the daemonised sleeper survived the step";
  EXPECT_THAT(lines_, ::testing::Contains(HasSubstr("timed out")));
}

TEST_F(RunnerTest, LeftoversOfAStepThatExitedAreEndedToo) {
  const std::string pidfile = dir_ / "left.pid";
  auto st = runner_.Run(Step("setsid sleep 300 >/dev/null 2>&1 </dev/null & echo $! > " + pidfile + "; exit 0", Millis(10'000)));
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->exit_code, 0);
  const int left = PidIn(pidfile);
  ASSERT_GT(left, 0);
  EXPECT_FALSE(Running(left));
}

TEST_F(RunnerTest, CancelEndsTheStepAndItsDescendants) {
  const std::string pidfile = dir_ / "child.pid";
  std::atomic<bool> cancel{false};
  auto cmd = Step("setsid sleep 300 >/dev/null 2>&1 </dev/null & echo $! > " + pidfile + "; echo ready; sleep 300",
                  Millis(60'000));
  cmd.cancel = &cancel;
  cmd.on_line = [&](bool, const std::string& line) {
    if (line == "ready") cancel = true;  // Cancel once the step is running.
  };
  const auto start = std::chrono::steady_clock::now();
  auto st = runner_.Run(cmd);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_TRUE(st->canceled);
  EXPECT_FALSE(st->ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30)) << "canceled, not timed out";
  const int child = PidIn(pidfile);
  ASSERT_GT(child, 0);
  EXPECT_FALSE(Running(child));
}

}  // namespace
}  // namespace sp::test
