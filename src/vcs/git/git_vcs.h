// Version control through the real git client (argv only; URLs and refs
// validated) and, for git:// remotes, git's protocol spoken natively.
// Credentials reach git through its environment, never its argv.
#pragma once

#include "build/vcs.h"
#include "core/clock.h"
#include "core/subprocess.h"

namespace sp {

class GitVcs final : public Vcs {
 public:
  explicit GitVcs(ProcessRunner& processes = SystemProcesses(), Clock& clock = RealClock::Instance())
      : processes_(processes), clock_(clock) {}
  // git:// spoken natively (no credentials there), other remotes through
  // `git ls-remote --heads`.
  Result<std::vector<RemoteHead>> ListHeads(const std::string& url, Millis timeout,
                                            const GitAccess& access = {}) override;
  // `git init`, a fetch of the branch (its head; its history when the commit
  // is not the head), a detached checkout of the commit: kInvalidArgument
  // when the commit is not on the branch.
  Status Checkout(const std::string& url, const std::string& branch, const std::string& sha, const std::string& dir,
                  Millis timeout, const LineCallback& on_line, const GitAccess& access = {}) override;
  Result<CommitInfo> ReadCommit(const std::string& dir) override;

 private:
  ProcessRunner& processes_;
  Clock& clock_;
};

}  // namespace sp
