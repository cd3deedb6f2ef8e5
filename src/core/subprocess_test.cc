#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/subprocess.h"

namespace sp {
namespace {

// Regression: a child that exits before reading its stdin used to kill the
// caller with SIGPIPE (found by the process-runtime work).
TEST(SubprocessTest, ChildIgnoringStdinDoesNotKillTheCaller) {
  CommandSpec spec;
  spec.argv = {"sh", "-c", "exit 4"};
  spec.stdin_data = std::string(1 << 20, 'x');
  auto r = SystemProcesses().Run(spec);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 4);
}

// A descriptor this process holds without close-on-exec (as the HTTP
// library's sockets are) does not reach a child: it sees 0, 1 and 2 only.
TEST(SubprocessTest, AChildSeesOnlyItsStandardDescriptors) {
  const int leaky = ::open("/dev/null", O_RDONLY);  // No O_CLOEXEC, on purpose.
  ASSERT_GE(leaky, 3);
  CommandSpec spec;
  spec.argv = {"sh", "-c", "ls /proc/$$/fd"};
  auto r = SystemProcesses().Run(spec);
  ::close(leaky);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(r->out, "0\n1\n2\n");
}

TEST(SubprocessTest, ALineLongerThanTheLimitArrivesInPiecesCutBeforeAUtf8Character) {
  std::vector<std::string> got;
  const LineCallback keep = [&](bool, const std::string& l) { got.push_back(l); };
  // "é" is two bytes: put one across the limit.
  std::string pending(kMaxLineBytes - 1, 'a');
  pending += "\xc3\xa9";
  pending += std::string(10, 'b') + "\nshort\n" + std::string(kMaxLineBytes + 5, 'c');
  EmitLines(pending, false, keep, false);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], std::string(kMaxLineBytes - 1, 'a')) << "cut before the two-byte character";
  EXPECT_EQ(got[1], "\xc3\xa9" + std::string(10, 'b'));
  EXPECT_EQ(got[2], "short");
  EXPECT_EQ(got[3], std::string(kMaxLineBytes, 'c'));
  EXPECT_EQ(pending, std::string(5, 'c')) << "only the unfinished rest waits";
}

// Output without any newline is handed on as it comes, never kept whole.
TEST(SubprocessTest, OutputWithoutNewlinesIsBoundedByTheLineLimit) {
  size_t pieces = 0, longest = 0, total = 0;
  CommandSpec spec;
  spec.argv = {"sh", "-c", "head -c 8388608 /dev/zero | tr '\\0' x"};
  spec.capture = false;
  spec.on_line = [&](bool, const std::string& l) {
    ++pieces;
    longest = std::max(longest, l.size());
    total += l.size();
  };
  auto r = SystemProcesses().Run(spec);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(total, size_t{8} << 20);
  EXPECT_EQ(longest, kMaxLineBytes);
  EXPECT_EQ(pieces, (size_t{8} << 20) / kMaxLineBytes);
}

}  // namespace
}  // namespace sp
