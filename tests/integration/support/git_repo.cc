#include "support/git_repo.h"

#include <gtest/gtest.h>

#include "core/subprocess.h"
#include "core/text.h"
#include "support/test_util.h"

namespace sp::test {

std::string Git(const std::string& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"git", "-C", dir};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  EXPECT_EQ(Run(argv, &out), 0) << FormatArgv(argv) << ": " << out;
  return Trim(out);
}

void InitRemoteAndWorkingCopy(const std::string& bare, const std::string& work) {
  EXPECT_EQ(Run({"git", "init", "-q", "--bare", "-b", "integration", bare}), 0);
  EXPECT_EQ(Run({"git", "init", "-q", "-b", "integration", work}), 0);
  Git(work, {"config", "user.email", "dev@example.test"});
  Git(work, {"config", "user.name", "Dev"});
  Git(work, {"remote", "add", "origin", bare});
}

}  // namespace sp::test
