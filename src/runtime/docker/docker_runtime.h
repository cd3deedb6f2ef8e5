// DockerRuntime: runs one app as Docker containers on a host, through a
// Transport (local or SSH). Every call is an argv, never a shell string;
// values that come from outside are single argv entries.
//
// Two ways to reach the engine, same results:
// - the Engine API over its unix socket, forwarded by the transport
//   (Transport::UnixSocket: an SSH stream-local forward on the host's own
//   connection): pulls, image checks, listing, create/start, stop, remove;
//   one round trip each instead of a docker CLI start on the host (~15-20 ms
//   each).
//   With the API, pull credentials ride in the X-Registry-Auth header and the
//   app's env in the create request: neither is ever written on the host.
// - the `docker` CLI for logs, and for everything whenever the API socket
//   cannot be reached on a host (a transport without forwarding, an sshd that
//   forbids stream-local forwarding, an engine address that is not a unix
//   socket): that host then stays on the CLI for the runtime's lifetime.
//
// Secrets on the CLI path: the registry password travels only on `docker
// login`'s stdin into a per-call config directory that is removed after the
// pull; app env values travel only in a 0600 env file that is removed right
// after `docker create`. On either path neither ever appears in argv, in the
// environment of a command, or in an Error message.
//
// Containers: `docker create --init --network host --restart unless-stopped`,
// named by ContainerName() and labelled sallyport.* (List filters on them).
// --init puts docker-init (tini, part of the engine package) in as PID 1 so an
// app without a SIGTERM handler still stops at once on `docker stop`.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"
#include "runtime/docker/docker_api.h"
#include "runtime/runtime.h"
#include "transport/transport.h"

namespace sp {

struct DockerOptions {
  std::string docker_bin = "/usr/bin/docker";
  // Engine address passed as `-H`, e.g. "unix:///tmp/x/docker.sock"; empty = the CLI default.
  std::string docker_host;
  // Deadline of one docker command (a pull included). Stop waits longer when
  // its own timeout needs it.
  Millis command_timeout{120'000};
  // Use the Engine API where it can be reached (see the top of this file);
  // false: the CLI for everything.
  bool use_api = true;
};

// Label keys put on every container Sallyport creates.
inline constexpr const char* kLabelRelease = "sallyport.release";
inline constexpr const char* kLabelDeployment = "sallyport.deployment";
inline constexpr const char* kLabelHost = "sallyport.host";
inline constexpr const char* kLabelVersion = "sallyport.version";
inline constexpr const char* kLabelRollout = "sallyport.rollout";
inline constexpr const char* kLabelArtifact = "sallyport.artifact";
inline constexpr const char* kLabelCreatedMs = "sallyport.created_ms";

class DockerRuntime final : public Runtime {
 public:
  // `transport` and `clock` must outlive the runtime. The clock stamps
  // sallyport.created_ms (the order List returns). Thread-compatible: calls
  // for different hosts may run concurrently if the transport allows it.
  DockerRuntime(Transport& transport, DockerOptions options, Clock& clock = RealClock::Instance());

  Status Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) override;
  Result<bool> HasArtifact(const RuntimeTarget& t, const AppSpec& app) override;
  // GET /distribution/<image>/json through the host's engine (credentials in
  // X-Registry-Auth): the manifest, not the layers. Ok on a CLI-only host.
  Status CheckPull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) override;
  Result<std::vector<Instance>> List(const RuntimeTarget& t) override;
  Status Stop(const RuntimeTarget& t, const Instance& inst, Millis timeout) override;
  Result<Instance> Start(const RuntimeTarget& t, const AppSpec& app) override;
  Status Restart(const RuntimeTarget& t, const Instance& inst) override;
  Status Remove(const RuntimeTarget& t, const Instance& inst) override;
  Result<std::string> Logs(const RuntimeTarget& t, const Instance& inst, int lines) override;
  // Who holds `port` on the host (docker_listeners.cc): the host's listening
  // sockets and their processes, a socket attributed to the running container
  // of (release, deployment) whose ID its processes' cgroup names. nullopt
  // (cannot tell) on a host without the Engine API, or when a container of
  // ours runs and a holder's process is not visible to the deploy user.
  Result<std::optional<std::vector<PortListener>>> Listeners(const RuntimeTarget& t, int port) override;

  // "sp-<release>-<deployment>-<host>-<rollout_id>", every character outside
  // [a-zA-Z0-9_.-] replaced by '_'.
  static std::string ContainerName(const RuntimeTarget& t, const std::string& rollout_id);

 private:
  // The Engine API's `filters` (URL-encoded) for the containers of
  // (release, deployment) on t's host, by their sallyport.* labels.
  static std::string OwnFilters(const RuntimeTarget& t);
  // docker_bin [--config <config_dir>] [-H <docker_host>] args...
  std::vector<std::string> DockerArgv(const std::vector<std::string>& args, const std::string& config_dir = "") const;
  // Runs argv on the host with the command timeout (or `timeout` if longer).
  Result<ExitStatus> Exec(const HostRef& host, std::vector<std::string> argv, std::string stdin_data = "",
                          std::optional<Millis> timeout = std::nullopt);
  // Creates a private (0700) temporary directory on the host.
  Result<std::string> MakeTempDir(const HostRef& host);
  // Removes `dir` on the host (rm -rf).
  Status RemoveDir(const HostRef& host, const std::string& dir);
  // Runs a docker command that must succeed; failure -> Error "<what>: <describe>".
  Result<ExitStatus> MustRun(const HostRef& host, const std::vector<std::string>& args, const std::string& what);
  // The engine's API socket path on hosts ("" when docker_host is not a unix
  // socket or use_api is off).
  static std::string ApiSocketPath(const DockerOptions& options);
  // One Engine API request on the host. nullopt: no API for this host (the
  // caller uses the CLI); the host is then remembered as CLI-only. An Error is
  // a request that got no answer in time (kTimeout): not retried on the CLI.
  Result<std::optional<ApiResponse>> Api(const HostRef& host, const std::string& method, const std::string& target,
                                         Millis timeout, const std::string& body = "",
                                         const std::vector<std::string>& headers = {},
                                         const std::function<void(std::string_view)>& on_line = nullptr);
  // `docker create` with a 0600 env file in a private temp dir on the host,
  // removed right after (the CLI path of Start).
  Status CreateWithCli(const RuntimeTarget& t, const AppSpec& app, const std::string& name,
                       const std::string& env_file, const std::vector<std::pair<const char*, std::string>>& labels,
                       const std::vector<std::string>& secrets);
  // Pull through the Engine API (credentials in X-Registry-Auth, nothing
  // written on the host); nullopt when the host has no API (use the CLI).
  Result<std::optional<Status>> PullWithApi(const RuntimeTarget& t, const AppSpec& app,
                                            const std::optional<RegistryAuth>& auth, const std::string& registry,
                                            const std::vector<std::string>& secrets);
  // Pull through the CLI: with credentials, a login into a private config
  // directory on the host, removed afterwards whatever happened.
  Status PullWithCli(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth,
                     const std::string& registry, const std::vector<std::string>& secrets);
  // Starts the existing container `name` (running already is fine).
  Status StartContainer(const HostRef& host, const std::string& name, const std::string& what);
  // Removes container `name` if it exists (rm -f); a missing one is fine.
  Status ForceRemove(const HostRef& host, const std::string& name, const std::string& what);
  // Removes `image` from the host's engine unless a container (another
  // release's, or one kept) still uses it: the engine refuses that, and so
  // nothing in use is ever removed. Best effort: an image left behind is
  // only disk.
  void RemoveImageIfUnused(const HostRef& host, const std::string& image);

  Transport& transport_;
  DockerOptions options_;
  Clock& clock_;
  const std::string api_socket_;  // ApiSocketPath(options_).
  std::mutex mu_;
  std::set<std::string> cli_only_;  // Hosts (by address) whose API socket could not be reached.
};

}  // namespace sp
