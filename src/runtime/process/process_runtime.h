// ProcessRuntime: runs an app as a plain process under Debian's
// start-stop-daemon, entirely through a Transport (so it behaves the same
// locally and over SSH). Every command is an argv; where a shell is needed the
// script text is a fixed constant and outside values are positional arguments
// or stdin, never script text. Env values (secrets) travel only on stdin and
// live only in a mode-0600 file on the host.
//
// Layout on the host, per (release, deployment, host):
//   <base_dir>/<release>/<deployment>/<host>/releases/<rollout_id>/
//       app       the executable (mode 0755), or the unpacked tarball (a dir)
//       cmd       argv of the app, one entry per line (entry 0: absolute exe)
//       env       KEY=VALUE lines incl. PORT (mode 0600)
//       meta      version=, artifact=, rollout_id=, created_ms= lines; written
//                 last by Pull, so its presence means "pulled completely"
//       launch    fixed sh launcher: records its identity, exports env, execs cmd
//       out.log   stdout+stderr of every start of this release (appended)
//   <base_dir>/<release>/<deployment>/<host>/run/<rollout_id>.pid   (start-stop-daemon)
//   <base_dir>/<release>/<deployment>/<host>/run/<rollout_id>.id    ("<starttime> <boot_id>")
//
// An instance counts as running only when the pid file names a live,
// non-zombie process whose start time and boot id match the .id file the
// launcher wrote; a stale pid file (reboot, PID reuse) is never signalled.
//
// Command: for an executable artifact, `app.command` is the argument list of
// `app`; for a .tar.gz/.tgz artifact, command[0] is a relative path inside the
// tarball (no "..") and the rest are its arguments; the working directory is
// the unpacked root (the release directory for an executable).
//
// Transport commands per operation: Pull 4 (prepare, reuse a kept copy, else
// copy the artifact, finish), HasArtifact 1, Available 1-2, List 1, Start 1,
// Restart 1, Stop 1, Remove 1, Logs 1. Not thread-safe for
// concurrent operations on the same instance; distinct instances are
// independent.
#pragma once

#include <string>

#include "core/clock.h"
#include "runtime/runtime.h"

namespace sp {

struct ProcessOptions {
  std::string base_dir = "/var/lib/sallyport/apps";  // Absolute path on the hosts.
  Millis command_timeout{60000};                      // Per transport command (Stop adds its own budget).
  Clock* clock = &RealClock::Instance();              // created_ms of new releases.
};

class ProcessRuntime final : public Runtime {
 public:
  // `transport` must outlive this object.
  ProcessRuntime(Transport& transport, ProcessOptions options);

  // Replaces the release directory of app.rollout_id (kConflict if that
  // instance is running) with the artifact from the local path app.artifact.
  // `auth` is unused.
  Status Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) override;
  // True when the release directory of app.rollout_id is complete, its
  // executable exists and its meta names the same artifact and version.
  Result<bool> HasArtifact(const RuntimeTarget& t, const AppSpec& app) override;
  // Also true when a kept release of the same artifact is on the host.
  Result<bool> Available(const RuntimeTarget& t, const AppSpec& app) override;
  Result<std::vector<Instance>> List(const RuntimeTarget& t) override;
  // SIGTERM to the process; SIGKILL to its process group after `timeout`
  // (rounded up to 50 ms); stray group members are SIGKILLed once it exits.
  // A process that is gone or a zombie counts as stopped. Keeps the release
  // directory; removes the pid and id files.
  Status Stop(const RuntimeTarget& t, const Instance& inst, Millis timeout) override;
  // Writes the env file (app.env + PORT) and starts the pulled release of
  // app.rollout_id in the background. kNotFound if not pulled, kConflict if
  // already running, kInvalidArgument for an env name/value that cannot be
  // a line of the env file. Returns once the launcher is running.
  Result<Instance> Start(const RuntimeTarget& t, const AppSpec& app) override;
  // Starts the kept release `inst.id` again with its kept env file.
  Status Restart(const RuntimeTarget& t, const Instance& inst) override;
  // Deletes the release directory (kConflict if running). Missing is fine.
  Status Remove(const RuntimeTarget& t, const Instance& inst) override;
  // Last `lines` lines of out.log ("" if never started; kNotFound if no release).
  Result<std::string> Logs(const RuntimeTarget& t, const Instance& inst, int lines) override;
  // A socket is an instance's when its process group holds it. One command.
  Result<std::optional<std::vector<PortListener>>> Listeners(const RuntimeTarget& t, int port) override;

  // The fixed launcher script written into every release directory.
  static const char* LauncherScript();

 private:
  // Runs one of the fixed scripts on the host with positional `args` (never
  // pasted into the script), `in` on stdin, command_timeout unless given.
  // With a `lock_dir` (the host directory) the script runs holding its lock.
  Result<ExitStatus> RunScript(const HostRef& host, const char* script, const std::string& lock_dir,
                               std::vector<std::string> args, std::string in = {},
                               std::optional<Millis> timeout = {});

  Transport& transport_;
  ProcessOptions options_;
};

}  // namespace sp
