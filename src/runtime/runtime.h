// Runtime: pull, start, stop and inspect one app on one host, through a
// Transport. Docker (containers on --network host) and process (an executable
// or tarball under start-stop-daemon with a pid file) implement it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "transport/transport.h"

namespace sp {

// Everything needed to run one instance; comes from the frozen plan.
struct AppSpec {
  std::string release, deployment, rollout_id;
  std::string version;    // Human label: "v2", a tag or a short digest.
  std::string artifact;   // docker: "repo@sha256:..." (or repo:tag); process: path of executable or .tar.gz
  int port = 0;           // Exported as PORT.
  std::vector<std::string> command;
  std::map<std::string, std::string> env;   // Effective env (already merged).
  std::vector<std::string> volumes;         // docker: "src:dst[:ro]"
  Millis stop_timeout{10'000};
};

// Registry credentials for one pull; the password is the value itself and
// must never reach argv, logs or a file that outlives the pull.
struct RegistryAuth {
  std::string address, username, password;
};

// One instance of the app on a host (running or kept stopped).
struct Instance {
  std::string id;          // Container name / release directory name.
  std::string rollout_id;  // Rollout that started it.
  std::string version;
  std::string artifact;
  bool running = false;
  int64_t created_ms = 0;  // For ordering.
  // Times its supervisor restarted the app since this instance was (re)started
  // (the process runtime's; docker's restart policy is its own).
  int restarts = 0;
};

// One socket listening on an app's port, as a runtime attributes it.
struct PortListener {
  std::string instance;  // The instance (of this release and deployment) holding it; "" if none.
  std::string holder;    // What holds it, for messages: "pid 123 (python3)", "a process not visible to the deploy user".
  // The holding instance's restarts by its supervisor (Instance::restarts),
  // when the runtime reads them with the listeners (the process runtime
  // does: the health step then needs no List); -1: not told.
  int instance_restarts = -1;
};

struct RuntimeTarget {
  HostRef host;
  std::string release, deployment;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Makes `app.artifact` available on the host (docker: login with a
  // per-call credentials directory, pull, remove the directory; process: copy
  // or unpack into a new release directory). The old version keeps running.
  virtual Status Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) = 0;
  // True if Start can run without Pull (the artifact is in place for this rollout).
  virtual Result<bool> HasArtifact(const RuntimeTarget& t, const AppSpec& app) = 0;
  // True if Pull needs no source (registry or file): the artifact is on the
  // host already, e.g. kept from an earlier release for a rollback.
  virtual Result<bool> Available(const RuntimeTarget& t, const AppSpec& app) { return HasArtifact(t, app); }
  // Whether the host could pull `app.artifact` with `auth`, without pulling
  // it: its engine resolves the manifest (so it reaches the registry, trusts
  // its CA and is let in). Ok when it can, or when this runtime cannot tell
  // without pulling (the default; docker through its CLI).
  virtual Status CheckPull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) {
    return Ok();
  }
  // Instances of (release, deployment) on the host, oldest first.
  virtual Result<std::vector<Instance>> List(const RuntimeTarget& t) = 0;
  // SIGTERM, then SIGKILL after `timeout`; the instance is kept for restore.
  virtual Status Stop(const RuntimeTarget& t, const Instance& inst, Millis timeout) = 0;
  // Starts a new instance of `app` (replacing a stopped instance of the same
  // rollout if one exists). Returns it.
  virtual Result<Instance> Start(const RuntimeTarget& t, const AppSpec& app) = 0;
  // Starts a kept (stopped) instance again, without the registry.
  virtual Status Restart(const RuntimeTarget& t, const Instance& inst) = 0;
  // Deletes a stopped instance.
  virtual Status Remove(const RuntimeTarget& t, const Instance& inst) = 0;
  // Last `lines` lines of the instance's output (for error messages).
  virtual Result<std::string> Logs(const RuntimeTarget& t, const Instance& inst, int lines) = 0;
  // What listens on TCP `port` of the host: one entry per listening socket,
  // attributed to the running instance of (release, deployment) whose
  // processes hold it (process: its process group; docker: its container's
  // cgroup), else to none. Empty: the port is free. nullopt: this runtime
  // cannot tell (docker_runtime.h says when).
  virtual Result<std::optional<std::vector<PortListener>>> Listeners(const RuntimeTarget& t, int port) {
    return std::optional<std::vector<PortListener>>();
  }
};

}  // namespace sp
