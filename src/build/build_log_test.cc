// The log cap (issue 15): whole lines up to the cap, then one marker and
// nothing after it, also across a reopen of the file.
#include "build/build_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

TEST(BuildLogTest, AnAppendKeepsTheWholeLinesThatFitThenTheMarker) {
  const std::string lines = FormatLogLine(1, "s", false, "aaaa") + FormatLogLine(2, "s", false, "bbbb");
  EXPECT_EQ(CappedLogAppend(lines, 0, 1000, 9), lines);
  const size_t first = FormatLogLine(1, "s", false, "aaaa").size();
  const std::string cut = CappedLogAppend(lines, 100, static_cast<int64_t>(100 + first + 3), 9);
  EXPECT_EQ(cut, FormatLogLine(1, "s", false, "aaaa") + LogCapMarker(9, static_cast<int64_t>(100 + first + 3)));
  EXPECT_EQ(CappedLogAppend(lines, 500, 400, 9), LogCapMarker(9, 400)) << "no room: the marker alone";
}

TEST(BuildLogTest, AWriterStopsAtItsCapWithOneMarkerAndAReopenAddsNothing) {
  test::TempDir dir("sp-build-log");
  const std::string path = dir / "1.log";
  {
    LogFileWriter w(path, 100);
    for (int i = 0; i < 20; ++i) w.Line(i, "step", false, "line " + std::to_string(i));
  }
  EXPECT_TRUE(LogEndsCapped(path));
  const std::string once = *ReadTextFile(path);
  EXPECT_LE(once.size(), 100u + LogCapMarker(19, 100).size());
  EXPECT_THAT(once, HasSubstr("log truncated: it reached its cap of 100 bytes"));
  {
    LogFileWriter again(path, 100);
    again.Line(99, "step", false, "after a restart");
  }
  EXPECT_EQ(*ReadTextFile(path), once);
}

TEST(BuildLogTest, AStepsTextThatMimicsTheMarkerDoesNotCapItsLog) {
  test::TempDir dir("sp-build-log");
  const std::string path = dir / "1.log";
  test::WriteFile(path, FormatLogLine(1, "build", true, "x\tsallyport\terr\tlog truncated: fake"));
  EXPECT_FALSE(LogEndsCapped(path));
  test::WriteFile(path, LogCapMarker(1, 10));
  EXPECT_TRUE(LogEndsCapped(path));
}

}  // namespace
}  // namespace sp
