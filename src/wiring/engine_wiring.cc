#include "wiring/engine_wiring.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>

#include "core/file.h"
#include "core/text.h"
#include "health/http/http_health.h"
#include "hooks/alertmanager_silencer.h"
#include "hooks/system_hook_runner.h"
#include "lb/haproxy/haproxy_lb.h"
#include "registry/registry_client.h"
#include "runtime/docker/docker_runtime.h"
#include "runtime/process/process_runtime.h"
#include "secrets/vault_ref.h"
#include "transport/local/local_transport.h"

namespace sp {

Result<std::string> ReadSecretRef(const std::string& ref) {
  if (StartsWith(ref, "file:")) {
    const std::string path = ref.substr(5);
    auto text = ReadTextFile(path);
    if (!text) return Err(ErrorCode::kNotFound, "secret file " + path + " cannot be read");
    return StripLineBreaks(std::move(*text));
  }
  if (StartsWith(ref, "credential:")) {
    return Err(ErrorCode::kUnavailable, "credential '" + ref.substr(11) +
                                            "' is bound on the server: run this rollout through it (--server)");
  }
  if (StartsWith(ref, "helper:")) {
    const size_t at = ref.find('@');
    const std::string name = ref.substr(7, at == std::string::npos ? std::string::npos : at - 7);
    if (at == std::string::npos || !IsValidHostPort(ref.substr(at + 1), false)) {
      return Err(ErrorCode::kInvalidArgument, "credential helper " + Printable(name) + ": no registry to ask for");
    }
    SP_ASSIGN_OR_RETURN(RegistryCredential c, CredentialFromHelper(name, ref.substr(at + 1)));
    return c.secret;
  }
  if (StartsWith(ref, "env:")) {
    const char* v = std::getenv(ref.substr(4).c_str());
    if (!v) return Err(ErrorCode::kNotFound, "secret environment variable " + ref.substr(4) + " is not set");
    return std::string(v);
  }
  if (StartsWith(ref, "vault:") || StartsWith(ref, kVaultTextRef)) {
    return Err(ErrorCode::kUnavailable, "a vault value is read by the server, with its vault password");
  }
  return Err(ErrorCode::kInvalidArgument, "secret reference '" + ref + "' must start with file: or env:");
}

std::function<Status(const RegistrySpec&, const std::string&, const std::string&)> RegistryPushCheck() {
  return [](const RegistrySpec& reg, const std::string& address, const std::string& password) -> Status {
    std::optional<RegistryCredential> cred;
    if (!password.empty()) cred = RegistryCredential{reg.username, password, reg.realm_hosts};
    RegistryClientOptions o;
    o.trust = RegistryTrust::FromEnvironment();
    o.timeout = Millis(15'000);
    return RegistryClient(o).Ping(address, cred, reg.insecure);
  };
}

SshOptions SshOptionsFor(const std::optional<BastionSpec>& bastion, const SshAccess& ssh) {
  SshOptions o;
  if (bastion) {
    o.bastion = SshEndpoint{bastion->address, bastion->port, bastion->user};
    o.bastion_host_key = bastion->host_key;
    o.identity_file = bastion->key;
    o.default_user = bastion->user;
  }
  if (!ssh.identity.empty()) o.identity_file = ssh.identity;
  if (!ssh.user.empty()) o.default_user = ssh.user;
  o.known_hosts = ssh.known_hosts;
  o.config_file = ssh.config;
  o.connect_timeout = Millis(ssh.connect_timeout_ms);
  o.max_hosts = ssh.max_hosts;
  return o;
}

namespace {

std::string MachineName() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string UserName() {
  const char* u = std::getenv("USER");
  return u && *u ? u : (::geteuid() == 0 ? "root" : "user");
}

using Route = CurlHealthChecker::Route;

bool PidAlive(int64_t pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

// Behind a bastion, the LB's runtime API (a TCP address in the private
// network) is reached through a forward over the bastion connection.
LoadBalancerFactory LbFactory(Route route, Fence fence, LoadBalancerDecorator decorate) {
  return [route, fence, decorate](const LoadBalancerSpec& spec) -> Result<std::unique_ptr<LoadBalancer>> {
    LoadBalancerSpec local = spec;
    if (route && !spec.address.empty()) {
      auto hp = ParseHostPort(spec.address);
      if (!hp) return Err(ErrorCode::kInvalidArgument, "load balancer address '" + spec.address + "' is not host:port");
      SP_ASSIGN_OR_RETURN(local.socket, route(hp->host, hp->port));
      local.address.clear();
    }
    SP_ASSIGN_OR_RETURN(std::unique_ptr<LoadBalancer> lb, MakeHaproxyLoadBalancer(local));
    if (fence) lb = std::make_unique<FencedLoadBalancer>(std::move(lb), fence);
    if (decorate) lb = decorate(std::move(lb));
    return lb;
  };
}

// The plan's secret references (the registry password, env values), each
// read once per rollout and only when first needed: preflight and every
// host's pull and start share it; hosts of a batch act in parallel.
using SecretSource = std::function<Result<std::string>(const std::string& ref)>;
SecretSource OncePerRollout(SecretSource read) {
  if (!read) read = ReadSecretRef;
  struct Cache {
    std::mutex mu;
    std::map<std::string, Result<std::string>> values;
  };
  auto cache = std::make_shared<Cache>();
  return [cache, read](const std::string& ref) -> Result<std::string> {
    std::lock_guard l(cache->mu);
    auto it = cache->values.find(ref);
    if (it == cache->values.end()) it = cache->values.emplace(ref, read(ref)).first;
    return it->second;
  };
}

// Preflight's check that the artifact exists: a readable file for the
// process runtime, the image's manifest in its registry for docker (HTTPS,
// the registry's CA from this machine's certs.d, Basic or token auth).
std::function<Status(const RolloutPlan&)> CheckPullable(Route route, std::function<Result<std::string>()> password) {
  return [route, password](const RolloutPlan& p) -> Status {
    if (p.app.runtime != "docker") {
      if (::access(p.app.artifact.c_str(), R_OK) != 0) {
        return Err(ErrorCode::kNotFound, "artifact " + p.app.artifact + " cannot be read");
      }
      return Ok();
    }
    SP_ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(p.app.artifact));
    std::optional<RegistryCredential> cred;
    if (!p.registry.password_ref.empty()) {
      SP_ASSIGN_OR_RETURN(std::string pw, password());
      cred = RegistryCredential{p.registry.username, pw, p.registry.realm_hosts};
    }
    RegistryClientOptions o;
    o.trust = RegistryTrust::FromEnvironment();
    o.route = route;
    RegistryClient client(o);
    SP_ASSIGN_OR_RETURN(std::string digest, client.ManifestDigest(ref, cred, p.registry.insecure));
    (void)digest;
    return Ok();
  };
}

}  // namespace

struct EngineWiring::Impl {
  EngineSetup setup;
  LocalTransport local;
  std::unique_ptr<SshTransport> ssh;
  Transport* transport = &local;
  std::unique_ptr<CurlHealthChecker> health;
  // Hooks' secret headers are read here, on the acting machine ({env}, {file}
  // of the admin's hook; never a commit's reference).
  SystemHookRunner hooks{SystemProcesses(), RealClock::Instance(), ReadSecretRef};
  AlertmanagerSilencer silencer{RealClock::Instance()};
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<FencedTransport> fenced;

  // The transport of `plan`'s hosts, every command fenced on `fence`; the
  // route to its private network, if any.
  Route Connect(const RolloutPlan& plan, const Fence& fence) {
    runtime.reset();
    fenced.reset();
    ssh.reset();
    transport = &local;
    Route route;
    if (plan.ssh.enabled) {
      SshOptions so = SshOptionsFor(plan.bastion, plan.ssh);
      so.before_command = fence;  // Again right before each command is sent.
      ssh = std::make_unique<SshTransport>(so);
      transport = ssh.get();
      SshTransport* s = ssh.get();
      route = [s](const std::string& address, int port) { return s->Forward(address, port); };
    }
    fenced = std::make_unique<FencedTransport>(*transport, fence);
    transport = fenced.get();
    health = std::make_unique<CurlHealthChecker>(route);
    return route;
  }

  void MakeRuntime(const RolloutPlan& plan) {
    if (plan.app.runtime == "docker") {
      DockerOptions o;
      o.docker_host = plan.docker_host;
      runtime = std::make_unique<DockerRuntime>(*transport, o);
    } else {
      ProcessOptions o;
      if (!plan.base_dir.empty()) o.base_dir = plan.base_dir;
      runtime = std::make_unique<ProcessRuntime>(*transport, o);
    }
  }

  EngineOptions Options() const {
    EngineOptions o;
    o.machine = MachineName();
    o.pid = ::getpid();
    o.holder = (setup.holder_role.empty() ? "" : setup.holder_role + " ") + UserName() + "@" + o.machine + " pid " +
               std::to_string(o.pid);
    o.lock_wait = setup.lock_wait;
    if (setup.lease_ttl) o.lease_ttl = *setup.lease_ttl;
    o.pid_alive = PidAlive;
    o.verify_lease_each_action = setup.verify_lease_each_action;
    o.hand_back = setup.hand_back;
    o.act_on_submitted_plans = setup.act_on_submitted_plans;
    return o;
  }
};

std::optional<bool> HolderAliveHere(const Lease& lease) {
  if (lease.machine != MachineName()) return std::nullopt;
  return PidAlive(lease.pid);
}

EngineWiring::EngineWiring(EngineSetup setup) : impl_(std::make_unique<Impl>()) {
  SP_CHECK(setup.journal && setup.locks);
  impl_->setup = std::move(setup);
}
EngineWiring::~EngineWiring() = default;

std::unique_ptr<RolloutEngine> EngineWiring::EngineFor(const RolloutPlan& plan) {
  Impl& i = *impl_;
  // The scope lock's lease fences every command below the runtime too (a
  // runtime's start is several commands), after the caller's own fence.
  auto scope = std::make_shared<ScopeLease>(i.setup.locks, &RealClock::Instance(), i.setup.verify_lease_each_action);
  Fence fence = [outer = i.setup.fence, scope]() -> Status {
    if (outer) SP_TRY(outer());
    return scope->Check();
  };
  Route route = i.Connect(plan, fence);
  i.MakeRuntime(plan);
  EngineDeps d;
  d.clock = &RealClock::Instance();
  d.journal = i.setup.journal;
  d.locks = i.setup.locks;
  d.runtime = i.runtime.get();
  d.transport = i.transport;
  d.health = i.health.get();
  d.lb_factory = LbFactory(route, i.setup.fence, i.setup.decorate_lb);
  SecretSource secrets = OncePerRollout(i.setup.read_secret);
  // A credential helper is asked for the registry of this plan.
  const std::string& ref = plan.registry.password_ref;
  const std::string read_ref =
      !StartsWith(ref, "helper:") ? ref
                                  : HelperRefFor(ref, plan.registry.address.empty() ? ImageRegistry(plan.app.artifact)
                                                                                    : plan.registry.address);
  auto password = [secrets, read_ref]() -> Result<std::string> {
    return read_ref.empty() ? Result<std::string>(std::string()) : secrets(read_ref);
  };
  d.credentials = [password](const RegistrySpec& reg) -> Result<std::optional<RegistryAuth>> {
    if (reg.address.empty() || reg.password_ref.empty()) return std::optional<RegistryAuth>();
    SP_ASSIGN_OR_RETURN(std::string pw, password());
    return std::optional<RegistryAuth>(RegistryAuth{reg.address, reg.username, pw});
  };
  d.check_pullable = CheckPullable(route, password);
  d.env_secret = secrets;
  d.on_event = i.setup.on_event;
  d.hooks = &i.hooks;
  d.silencer = &i.silencer;
  d.scope_lease = scope;
  return std::make_unique<RolloutEngine>(std::move(d), i.Options());
}

std::function<Status(const ResolvedTarget&)> TeardownHook(EngineSetup setup) {
  return [setup](const ResolvedTarget& t) -> Status {
    RolloutPlan plan;
    SP_ASSIGN_OR_RETURN(auto latest, setup.journal->Latest(t.stack, t.release, t.deployment, std::nullopt));
    if (latest) {
      SP_ASSIGN_OR_RETURN(plan, PlanFromJson(latest->plan_json));
      if (!plan.submitted_by.empty() && !setup.act_on_submitted_plans) {
        // A plan a CLI made (rollout -i URL): only its runtime's kind is
        // taken (one of the two adapters); the settings come from the target
        // alone, as when no rollout is recorded.
        RolloutPlan bare;
        bare.app.runtime = plan.app.runtime == "docker" ? "docker" : "process";
        plan = std::move(bare);
      }
    } else {
      plan.app.runtime = "process";
    }
    plan.id = "t-" + NewRolloutId().substr(2);
    plan.kind = PlanKind::kTeardown;
    // The runtime settings the app last ran with, unless the target names its own.
    const std::string docker_host = plan.docker_host, base_dir = plan.base_dir;
    TargetInto(t, plan);
    if (plan.docker_host.empty()) plan.docker_host = docker_host;
    if (plan.base_dir.empty()) plan.base_dir = base_dir;
    EngineWiring wiring(setup);
    SP_ASSIGN_OR_RETURN(RolloutSummary sum, wiring.EngineFor(plan)->Teardown(plan));
    if (sum.status != RolloutStatus::kSucceeded) return Err(ErrorCode::kUnavailable, sum.error);
    return Ok();
  };
}

}  // namespace sp
