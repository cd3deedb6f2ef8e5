// Runs one pipeline step's command so that nothing it started outlives it.
//
// The step runs under a small supervisor (this binary, `sallyport
// __supervise`), which makes itself the child subreaper
// (PR_SET_CHILD_SUBREAPER) and starts the command in its own process group.
// Whatever the command leaves behind — even a grandchild that called setsid
// and daemonised — is reparented to the supervisor when its parent dies, so
// on exit, timeout or cancel the supervisor ends the group and then every
// descendant it inherits (SIGTERM, SIGKILL after a grace period), and exits
// only when it has no child left.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"
#include "build/step_runner.h"

namespace sp {

// The real StepRunner: each step under `sallyport __supervise` (see above),
// started through `processes`.
class SupervisedStepRunner final : public StepRunner {
 public:
  // `supervisor`: the sallyport binary; empty: this process's own.
  explicit SupervisedStepRunner(ProcessRunner& processes = SystemProcesses(), std::string supervisor = "")
      : processes_(processes), supervisor_(std::move(supervisor)) {}
  Result<ExitStatus> Run(const StepCommand& cmd) override;

 private:
  ProcessRunner& processes_;
  std::string supervisor_;
};

// Who commit steps run as: `name`, or "nobody" when this process runs as
// root and no name is given; nullopt when steps run as this process's own
// user (not root, or the name is this user). A name other than our own
// needs root.
Result<std::optional<StepUser>> StepUserNamed(const std::string& name);

// `sallyport __supervise --timeout-ms N --grace-ms G [--uid U --gid G] -- argv...`: see above.
// Exit status: the command's (128+signal when killed by one), 124 on
// timeout, 125 when canceled (SIGTERM/SIGINT to the supervisor).
int SuperviseMain(int argc, char** argv);

// The pids whose parent is `ppid` (from /proc).
std::vector<int> ChildrenOf(int ppid);

}  // namespace sp
