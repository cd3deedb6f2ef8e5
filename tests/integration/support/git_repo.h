// Git repositories for build tests: a bare remote and a working copy.
#pragma once

#include <string>
#include <vector>

namespace sp::test {

// `git -C dir args...`; fails the current test on a non-zero exit. Returns
// the output, trimmed.
std::string Git(const std::string& dir, const std::vector<std::string>& args);

// A bare repository at `bare` (default branch integration) and a working
// copy at `work` on integration, with a committer set and `bare` as its
// origin.
void InitRemoteAndWorkingCopy(const std::string& bare, const std::string& work);

}  // namespace sp::test
