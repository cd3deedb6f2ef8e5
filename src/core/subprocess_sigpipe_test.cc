#include <gtest/gtest.h>

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

}  // namespace
}  // namespace sp
