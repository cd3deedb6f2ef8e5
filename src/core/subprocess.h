// Runs a program by argv (never through a shell), in its own process group,
// feeding `stdin_data` and capturing stdout and stderr separately. A timeout
// or cancel kills the whole group (SIGTERM, then SIGKILL after a grace period).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace sp {

using LineCallback = std::function<void(bool is_stderr, const std::string& line)>;

struct CommandSpec {
  std::vector<std::string> argv;       // argv[0] is looked up in PATH when it has no '/'.
  std::string stdin_data;              // Written to the child's stdin, then closed (empty: /dev/null).
  std::string stdin_path;              // Else: this local file is the child's stdin (streamed, not loaded).
  std::map<std::string, std::string> env;  // Added to (or overriding) the inherited environment.
  bool inherit_env = true;                 // false: `env` is the whole environment (nothing of ours).
  std::optional<Millis> timeout;       // Whole-command deadline.
  std::string cwd;                     // Working directory; empty = inherit.
  // Called for every complete line of stdout/stderr as it arrives (is_stderr flag).
  LineCallback on_line;
  // False: output goes to on_line only, never accumulated (long build logs).
  bool capture = true;
  // When it becomes true the command is ended as on a timeout (checked at
  // least every 100 ms); the result says canceled.
  const std::atomic<bool>* cancel = nullptr;
  // An editor on the user's terminal: the child shares this process's
  // standard descriptors and process group (so it may read the terminal);
  // nothing is captured or fed, and no timeout applies.
  bool interactive = false;
};

// The longest line handed to a LineCallback: a longer one arrives in pieces of
// this size (cut before a UTF-8 continuation byte), so no step's output, with
// or without newlines, makes a buffer grow past it.
inline constexpr size_t kMaxLineBytes = 64 * 1024;

// Hands every complete line of `pending` to on_line (without the newline), and
// every kMaxLineBytes piece of a longer one, and keeps the unfinished rest;
// with `flush`, the rest too. No-op without a callback.
void EmitLines(std::string& pending, bool is_stderr, const LineCallback& on_line, bool flush);

// "KEY=value" entries of this process's environment with `overrides` applied
// (an override replaces the inherited entry of the same name).
std::vector<std::string> MergedEnviron(const std::map<std::string, std::string>& overrides);

// The outcome of a command that did run. A command that could not be started
// at all is an Error instead.
struct ExitStatus {
  int exit_code = -1;   // Valid when signal == 0 and !timed_out.
  int signal = 0;       // Terminating signal, 0 if it exited.
  bool timed_out = false;
  std::string out;
  std::string err;
  bool canceled = false;  // Ended by CommandSpec::cancel.
  bool ok() const { return !timed_out && !canceled && signal == 0 && exit_code == 0; }
  // "exit 3: <last stderr lines>" / "killed by signal 9" / "timed out after ..."
  std::string Describe() const;
};

// Runs commands: the seam between what starts a process and the machine.
// Tests give a recording fake; everything else receives SystemProcesses().
class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs spec.argv to its end, timeout or cancel. An Error only when the
  // command could not be started at all.
  virtual Result<ExitStatus> Run(const CommandSpec& spec) = 0;
};

// The real runner: spawns on this machine (its own process group, pipes,
// the timeout and cancel of CommandSpec). Thread-safe; never destroyed.
ProcessRunner& SystemProcesses();

// A reader that exits without reading must not kill this process with
// SIGPIPE: writes then fail with EPIPE instead. Called by everything here that
// writes to a pipe another process reads; idempotent.
void IgnoreSigpipe();

// Renders argv for humans/logs: each entry quoted when needed. Never executed.
std::string FormatArgv(const std::vector<std::string>& argv);

}  // namespace sp
