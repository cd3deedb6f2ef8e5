// Git through the real git client (argv only; URLs and refs validated).
#pragma once

#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"

namespace sp {

struct RemoteHead {
  std::string branch;  // "integration" (refs/heads/ stripped)
  std::string sha;     // 40 hex
};

// git://, http(s)://, ssh://, file:// URLs or an absolute path; never
// starting with '-'; single line.
bool IsValidGitUrl(const std::string& url);
bool IsCommitSha(const std::string& s);

// `git ls-remote --heads -- <url>`, bounded by `timeout`.
Result<std::vector<RemoteHead>> ListHeads(const std::string& url, Millis timeout);

// The exact commit `sha` of `branch` into the fresh directory `dir`.
Status CheckoutCommit(const std::string& url, const std::string& branch, const std::string& sha, const std::string& dir,
                      Millis timeout, const LineCallback& on_line);

struct CommitInfo {
  std::string author, subject;
};
Result<CommitInfo> ReadCommit(const std::string& dir);

}  // namespace sp
