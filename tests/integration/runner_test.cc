// The step runner against real processes: nothing a step starts outlives it,
// not even a grandchild that called setsid and daemonised.
#include "runner/runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

// The runner (a server) died: nobody reads the supervisor's output any
// more when its death signal arrives. The supervisor must still end the
// step — a write to its broken stderr pipe must not kill it first (SIGPIPE).
TEST_F(RunnerTest, ASupervisorWhoseRunnerDiedStillEndsTheStep) {
  const std::string pidfile = dir_ / "step.pid";
  const std::string exe = BuildBinary("sallyport");
  const std::string script = "echo $$ > " + pidfile + "; sleep 300";
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t supervisor = ::fork();
  ASSERT_GE(supervisor, 0);
  if (supervisor == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(exe.c_str(), "sallyport", "__supervise", "--timeout-ms", "60000", "--grace-ms", "500", "--", "/bin/sh",
            "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  ASSERT_TRUE(WaitFor([&] { return PidIn(pidfile) > 0; }, std::chrono::seconds(10)));
  const int step = PidIn(pidfile);
  ::close(fds[0]);                 // The runner is gone: its end of the pipe with it.
  ::kill(supervisor, SIGTERM);     // What PR_SET_PDEATHSIG sends then.
  EXPECT_TRUE(WaitFor([&] { return !Running(step); }, std::chrono::seconds(5))) << "the step outlived its runner";
  int status = 0;
  ::waitpid(supervisor, &status, 0);
  EXPECT_FALSE(WIFSIGNALED(status)) << "the supervisor was killed by signal " << WTERMSIG(status);
  if (Running(step)) ::kill(step, SIGKILL);
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
