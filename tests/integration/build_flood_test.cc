// What a build step prints cannot take the server or an agent down: a step
// sees only its standard descriptors, a flood with or without newlines keeps
// the server's and the agent's memory bounded (VmHWM), and the build's log
// stops at its cap with one marker line while the build ends as its steps do.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "build/build_log.h"
#include "core/file.h"
#include "support/build_server_fixture.h"
#include "support/cli_runner.h"

namespace sp::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Peak resident memory of a process, in MiB.
int64_t PeakRssMib(int pid) { return ProcStatusKb(pid, "VmHWM") / 1024; }

// 2 GiB without a newline, then 1 GiB of short lines; first, what the step's
// shell holds open.
constexpr const char* kFlood =
    "  - {name: fds, run: [sh, -c, \"ls /proc/$$/fd\"]}\n"
    "  - {name: no-newline, run: [sh, -c, \"head -c 2147483648 /dev/zero | tr '\\\\0' x\"]}\n"
    "  - {name: lines, run: [sh, -c, \"yes 'a line of a chatty step' | head -c 1073741824\"]}\n";

class BuildFloodTest : public BuildServerTest {
 protected:
  // The build's log as the server keeps it.
  std::vector<LogLine> LogOf(int64_t build_id, int64_t* bytes) {
    const std::string path = dir_ / ("builds/logs/" + std::to_string(build_id) + ".log");
    std::ifstream in(path);
    std::vector<LogLine> out;
    std::string line;
    *bytes = 0;
    while (std::getline(in, line)) {
      *bytes += static_cast<int64_t>(line.size()) + 1;
      if (auto l = ParseLogLine(line)) out.push_back(std::move(*l));
    }
    return out;
  }

  // Every step succeeded; the fds step listed 0, 1, 2; the log holds at most
  // `cap` bytes of lines and ends with the one marker.
  void ExpectBoundedLog(const json& listed, int64_t cap) {
    ASSERT_EQ(listed.value("status", ""), "succeeded") << listed.dump();
    const json b = Build(listed.value("id", int64_t{0}));
    for (const char* step : {"fds", "no-newline", "lines"}) {
      EXPECT_EQ(StepNamed(b, step).value("status", ""), "succeeded") << step << ": " << b.dump();
    }
    int64_t bytes = 0;
    const auto lines = LogOf(b.value("id", int64_t{0}), &bytes);
    std::vector<std::string> fds;
    int markers = 0;
    size_t longest = 0;
    for (const auto& l : lines) {
      if (l.step == "fds" && !l.is_err && l.text.rfind("--- ", 0) != 0) fds.push_back(l.text);  // Not its header.
      markers += l.text.rfind("log truncated:", 0) == 0;
      longest = std::max(longest, l.text.size());
    }
    EXPECT_THAT(fds, ElementsAre("0", "1", "2")) << "a step sees only its standard descriptors";
    EXPECT_EQ(markers, 1);
    ASSERT_FALSE(lines.empty());
    EXPECT_THAT(lines.back().text, HasSubstr("log truncated: it reached its cap of " + std::to_string(cap)));
    EXPECT_LE(bytes, cap + 200) << "the cap and one marker line";
    EXPECT_GT(bytes, cap - (64 << 10) - 200) << "filled up to the cap";
    EXPECT_LE(longest, 64u << 10) << "a line without end arrives in 64 KiB pieces";
  }
};

TEST_F(BuildFloodTest, AStepsFloodKeepsTheServerSmallAndItsLogStopsAtTheCap) {
  StartServer();  // The default cap: 100 MiB.
  const std::string sha = Push(kFlood);
  const json b = WaitStatus(sha, {"succeeded", "failed", "canceled"}, "", std::chrono::seconds(180));
  ExpectBoundedLog(b, kDefaultLogCapBytes);
  const int64_t rss = PeakRssMib(server_->daemon().pid());
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, 200) << "the server's peak RSS (MiB) after 3 GiB of output";
  std::printf("server peak RSS after 2 GiB without newline + 1 GiB of lines: %lld MiB\n",
              static_cast<long long>(rss));
}

TEST_F(BuildFloodTest, OnAnAgentTheFloodKeepsAgentAndServerSmallAndTheJobLogStopsAtTheCap) {
  StartServer({"--builds-on", "agents", "--log-cap-mib", "4"});
  const std::string token = CreateAgentToken(dir_, db_, "builder", "role=builder");
  ASSERT_FALSE(token.empty());
  Daemon agent({BuildBinary("sallyport"), "agent", "run", "--server", server_->url(), "--token-file", token,
                "--work-dir", dir_ / "agent-work"},
               dir_ / "builder.log");
  const std::string sha = Push(kFlood);
  const json b = WaitStatus(sha, {"succeeded", "failed", "canceled"}, "", std::chrono::seconds(180));
  ExpectBoundedLog(b, int64_t{4} << 20);
  const int64_t agent_rss = PeakRssMib(agent.pid()), server_rss = PeakRssMib(server_->daemon().pid());
  EXPECT_GT(agent_rss, 0);
  EXPECT_LT(agent_rss, 200) << "the agent's peak RSS (MiB)";
  EXPECT_LT(server_rss, 200) << "the server's peak RSS (MiB)";
  std::printf("peak RSS after 3 GiB of output on an agent: agent %lld MiB, server %lld MiB\n",
              static_cast<long long>(agent_rss), static_cast<long long>(server_rss));
  agent.Stop();
}

}  // namespace
}  // namespace sp::test
