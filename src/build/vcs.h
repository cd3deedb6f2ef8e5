// What a build needs of version control: the heads of a remote, one commit
// checked out, and its author and subject. The real one is git (src/vcs/git).
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

// How to reach a remote that wants credentials. Values reach git through
// its environment (GIT_CONFIG_* and GIT_SSH_COMMAND), never its argv, and
// never appear in errors.
struct GitAccess {
  // http(s): a token sent as HTTP basic auth ("user:token", or a bare token
  // with the user "x-access-token", as GitHub and Gitea accept).
  std::string token;
  // ssh: the private key file (a deploy key) and the known_hosts file its
  // host key must be in (StrictHostKeyChecking=yes; empty: ssh's default).
  // Absolute paths of [A-Za-z0-9._/+@-] only.
  std::string ssh_key_file, known_hosts;
};

struct CommitInfo {
  std::string author, subject;
};

class Vcs {
 public:
  virtual ~Vcs() = default;
  // The heads of a remote, bounded by `timeout`.
  virtual Result<std::vector<RemoteHead>> ListHeads(const std::string& url, Millis timeout,
                                                    const GitAccess& access = {}) = 0;
  // The exact commit `sha` of `branch` into the fresh directory `dir`;
  // kInvalidArgument when `sha` is not on `branch` (never built under it).
  virtual Status Checkout(const std::string& url, const std::string& branch, const std::string& sha,
                          const std::string& dir, Millis timeout, const LineCallback& on_line,
                          const GitAccess& access = {}) = 0;
  virtual Result<CommitInfo> ReadCommit(const std::string& dir) = 0;
};

}  // namespace sp
