// How a pipeline's command steps run: one command, its lines streamed, ended
// with everything it started on timeout or cancel. The real runner is the
// step supervisor (src/runner); unit tests record the steps instead.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"

namespace sp {

// Who a commit's command step runs as: an unprivileged user (the server or
// agent runs as root), so that files only the server or agent may read —
// its token, credential files, SSH keys, the Docker socket — stay out of
// the step's reach.
struct StepUser {
  uint32_t uid = 0, gid = 0;
  std::string name;
};

struct StepCommand {
  std::vector<std::string> argv;            // Never through a shell.
  std::string cwd;                          // The workspace.
  std::map<std::string, std::string> env;   // Added to the runner's environment.
  bool inherit_env = true;                  // false: `env` is all the step sees (commit code: none of ours).
  Millis timeout{600'000};
  Millis grace{2'000};                      // SIGTERM -> SIGKILL.
  const std::atomic<bool>* cancel = nullptr;
  LineCallback on_line;                     // Every stdout/stderr line as it comes; nothing kept in memory.
  std::optional<StepUser> run_as;           // Set: the command drops to this user (no groups) before it starts.
};

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // exit_code/signal: the command's own; timed_out/canceled: ended by us.
  // An Error only when the step could not be started.
  virtual Result<ExitStatus> Run(const StepCommand& cmd) = 0;
};

}  // namespace sp
