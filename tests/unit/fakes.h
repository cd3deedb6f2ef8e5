// Recording fakes for unit tests of the rollout engine. All fakes share one
// ordered log ("pull app1 v2", "drain app1", ...) and one fault injector
// consulted before every operation.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "health/health.h"
#include "hooks/hook_runner.h"
#include "hooks/silencer.h"
#include "lb/load_balancer.h"
#include "runtime/runtime.h"
#include "transport/transport.h"

namespace sp::test {

// Thrown by a fake to simulate the orchestrator dying at that exact point.
struct Crash {
  std::string at;
};

class World {
 public:
  // Appends to the log after consulting the injector; returns the injected error, if any.
  std::optional<Error> Op(const std::string& op);
  std::vector<std::string> Log();
  void ClearLog();
  // Ops the injector fails: exact op text -> error (always), or crash on op.
  std::map<std::string, Error> fail;
  std::set<std::string> fail_once;  // Ops that fail the first time only.
  std::string crash_at;             // Throw Crash before acting on this op (once).
  // Called with every op before it is acted on, outside the world's lock
  // (lets a test block one host while another proceeds).
  std::function<void(const std::string&)> on_op;
  std::set<std::string> quiet_prefixes = {"list ", "list-backend ", "get ", "has ", "check ", "listeners ",
                                                "can-pull "};  // Not logged (reads).
  std::mutex mu;

 private:
  std::vector<std::string> log_;
};

// Per host: instances; a health probe is ok when the running instance's
// version is not in `bad_versions`.
class FakeRuntime final : public Runtime {
 public:
  explicit FakeRuntime(World* w) : w_(w) {}
  Status Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) override;
  Result<bool> HasArtifact(const RuntimeTarget& t, const AppSpec& app) override;
  Status CheckPull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) override;
  Result<std::vector<Instance>> List(const RuntimeTarget& t) override;
  Status Stop(const RuntimeTarget& t, const Instance& inst, Millis timeout) override;
  Result<Instance> Start(const RuntimeTarget& t, const AppSpec& app) override;
  Status Restart(const RuntimeTarget& t, const Instance& inst) override;
  Status Remove(const RuntimeTarget& t, const Instance& inst) override;
  Result<std::string> Logs(const RuntimeTarget& t, const Instance& inst, int lines) override;
  // One listener per running instance, plus the host's strays.
  Result<std::optional<std::vector<PortListener>>> Listeners(const RuntimeTarget& t, int port) override;
  std::map<std::string, std::string> strays;  // Host -> a process holding its port that no instance started.
  std::map<std::string, int> crashes_after_start;  // Host -> restarts its new instances count at once.
  // Listeners tell each instance's restarts (as the process runtime does).
  bool listeners_tell_restarts = false;
  std::atomic<int> list_calls{0};  // List calls so far.

  // Seeds a running instance (the version before the rollout).
  void Seed(const std::string& host, const std::string& version, const std::string& rollout_id = "r-seed");
  std::vector<Instance> Instances(const std::string& host);
  std::vector<std::string> Running(const std::string& host);  // Versions running.
  std::set<std::string> pulled;                                 // "host artifact"
  std::map<std::string, std::map<std::string, std::string>> started_env;  // Host -> env of its last start.

 private:
  Status SetRunning(const RuntimeTarget& t, const Instance& inst, const char* verb, bool running);
  World* w_;
  std::mutex mu_;  // The engine drives a batch's hosts from several threads.
  std::map<std::string, std::vector<Instance>> hosts_;
  int64_t seq_ = 0;
};

class FakeLoadBalancer final : public LoadBalancer {
 public:
  FakeLoadBalancer(World* w, std::string name) : w_(w), name_(std::move(name)) {}
  std::string Describe() const override { return name_; }
  Status SetState(const std::string& backend, const std::string& server, AdminState state) override;
  Result<ServerState> GetServer(const std::string& backend, const std::string& server) override;
  Result<std::vector<ServerState>> ListBackend(const std::string& backend) override;

  Status AddServer(const std::string& backend, const std::string& server, const std::string& address,
                   int port) override;
  Status RemoveServer(const std::string& backend, const std::string& server) override;

  // Test set-up: a server in rotation (no operation recorded).
  void AddServer(const std::string& backend, const std::string& server);
  bool Has(const std::string& backend, const std::string& server);
  // Sessions the server has when it is drained; each GetServer poll closes one.
  std::map<std::string, int> sessions_on_drain;
  ServerState State(const std::string& server);

 private:
  World* w_;
  std::string name_;
  std::mutex mu_;
  std::map<std::string, std::map<std::string, ServerState>> backends_;
  std::set<std::string> confirm_pending_;
  std::set<std::string> zero_logged_;
};

// A LoadBalancer that forwards to `lb` without owning it (the engine owns
// what its factory returns; a test's fake outlives the engine).
std::unique_ptr<LoadBalancer> Borrow(LoadBalancer* lb);

class FakeHealth final : public HealthChecker {
 public:
  FakeHealth(World* w, FakeRuntime* rt, std::map<int, std::string> port_to_host)
      : w_(w), rt_(rt), port_to_host_(std::move(port_to_host)) {}
  HealthProbe Probe(const std::string& address, int port, const HealthCheckSpec& spec) override;
  std::set<std::string> bad_versions;

 private:
  World* w_;
  FakeRuntime* rt_;
  std::map<int, std::string> port_to_host_;
};

// Hooks: each call is the op "hook <key>" (so it can fail or crash like any
// op); the calls that got through (the receiver's view) are kept in order.
class FakeHookRunner final : public HookRunner {
 public:
  explicit FakeHookRunner(World* w) : w_(w) {}
  Result<std::string> Run(const HookSpec& hook, const HookCall& call) override;
  std::vector<HookCall> Calls();

 private:
  World* w_;
  std::mutex mu_;
  std::vector<HookCall> calls_;
};

// An Alertmanager's silences in memory. Ops: "silence find", "silence put
// <marker>" and "silence expire <id>" (failed or crashed like any op). A
// put with the id and start of a live silence updates it in place; any
// other put makes a new one (and expires the one it replaces), as
// Alertmanager 0.25 does.
class FakeSilencer final : public Silencer {
 public:
  explicit FakeSilencer(World* w) : w_(w) {}
  Result<std::vector<Silence>> Find(const SilenceSpec& spec, const std::string& marker) override;
  Result<std::string> Put(const SilenceSpec& spec, const Silence& s) override;
  Status Expire(const SilenceSpec& spec, const std::string& id) override;
  // Every silence ever made, expired ones included (state "active"/"expired").
  std::vector<Silence> All();
  int64_t now_ms = 1'000'000;  // The Alertmanager's clock.

 private:
  World* w_;
  std::mutex mu_;
  std::vector<Silence> all_;
};

class FakeTransport final : public Transport {
 public:
  explicit FakeTransport(World* w) : w_(w) {}
  Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) override;
  Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) override;
  Status CopyFile(const HostRef& host, const std::string& local, const std::string& remote, int mode) override;
  Status Check(const HostRef& host) override;
  std::set<std::string> unreachable;

 private:
  World* w_;
};

}  // namespace sp::test
