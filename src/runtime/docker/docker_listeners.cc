// DockerRuntime::Listeners (issue 20: a rollout's success is proven on the
// container it started, and a stray on the app's port is named before
// anything moves). Containers run with --network host, so their sockets are
// the host's: the same script as the process runtime's (listeners.h) finds
// the processes holding the port, starting from the running containers' main
// processes and their descendants; a socket is a container's when every
// process holding it is in that container's cgroup (its path names the
// container's full ID, with either cgroup driver).
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "runtime/docker/docker_runtime.h"
#include "runtime/listeners.h"

namespace sp {

namespace {

// $1: the port (4 hex digits); then the containers' main PIDs, whose
// descendants join them as candidates.
constexpr const char kContainerPids[] = R"SH(
sp_cands=
sp_port=$1
shift
for sp_p in "$@"; do
  sp_cands="$sp_cands $sp_p"
  sp_kids "$sp_p"
done
set -- "$sp_port"
)SH";

struct Running {
  std::string name, id;
  int64_t pid = 0;
};

}  // namespace

Result<std::optional<std::vector<PortListener>>> DockerRuntime::Listeners(const RuntimeTarget& t, int port) {
  const std::string what = "running containers of " + t.release + "/" + t.deployment + " on " + t.host.name;
  SP_ASSIGN_OR_RETURN(auto api, Api(t.host, "GET", "/containers/json?filters=" + OwnFilters(t),
                                    options_.command_timeout));
  if (!api) return std::optional<std::vector<PortListener>>();  // The CLI path cannot tell.
  SP_TRY(Expect(*api, {200}, what));
  auto list = nlohmann::json::parse(api->body, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array()) return Err(ErrorCode::kInternal, what + ": the engine's answer is not a JSON array");
  std::vector<Running> running;
  std::vector<std::string> args{PortHex(port)};
  for (const auto& c : list) {
    if (!c.is_object() || !c.contains("Id") || !c["Id"].is_string()) continue;
    Running r;
    r.id = c["Id"].get<std::string>();
    if (r.id.empty()) continue;  // An empty id would match every cgroup path below.
    r.name = ContainerNameIn(c);
    SP_ASSIGN_OR_RETURN(auto inspect, Api(t.host, "GET", "/containers/" + UrlEncode(r.id) + "/json",
                                          options_.command_timeout));
    if (!inspect) return std::optional<std::vector<PortListener>>();
    if (inspect->status == 404) continue;  // Gone meanwhile.
    SP_TRY(Expect(*inspect, {200}, "inspect container " + r.name + " on " + t.host.name));
    auto j = nlohmann::json::parse(inspect->body, nullptr, false);
    if (j.is_object() && j.contains("State") && j["State"].is_object()) r.pid = j["State"].value("Pid", int64_t{0});
    if (r.pid > 0) args.push_back(std::to_string(r.pid));
    running.push_back(std::move(r));
  }
  static const std::string script = std::string(kKidsFn) + kContainerPids + kListenersScript;
  std::vector<std::string> argv{"sh", "-c", script, "sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  SP_ASSIGN_OR_RETURN(ExitStatus st, Exec(t.host, std::move(argv)));
  if (!st.ok()) {
    return Err(ErrorCode::kUnavailable, "listeners on port " + std::to_string(port) + " of " + t.host.name + ": " +
                                            st.Describe());
  }
  const auto held = ParseListeners(st.out);
  for (const auto& h : held) {
    // Whose is a socket we cannot see the holder of? With none of ours
    // running, a stray's, whoever it is; else we cannot tell.
    if (h.pid == 0 && !running.empty()) return std::optional<std::vector<PortListener>>();
  }
  return std::optional(Attribute(held, [&](const SocketHolder& h) {
    for (const auto& r : running) {
      if (h.cgroups.find(r.id) != std::string::npos) return r.name;  // Never empty (above).
    }
    return std::string();
  }));
}

}  // namespace sp
