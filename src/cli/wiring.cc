#include "cli/wiring.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/file.h"
#include "core/text.h"
#include "health/http/http_health.h"
#include "health/http/registry_probe.h"
#include "lb/haproxy/haproxy_lb.h"
#include "runtime/docker/docker_runtime.h"
#include "runtime/process/process_runtime.h"
#include "rollout/fence.h"
#include "transport/local/local_transport.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::cli {

Result<std::string> ReadSecretRef(const std::string& ref) {
  if (StartsWith(ref, "file:")) {
    const std::string path = ref.substr(5);
    auto text = ReadTextFile(path);
    if (!text) return Err(ErrorCode::kNotFound, "secret file " + path + " cannot be read");
    std::string v = std::move(*text);
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    return v;
  }
  if (StartsWith(ref, "env:")) {
    const char* v = std::getenv(ref.substr(4).c_str());
    if (!v) return Err(ErrorCode::kNotFound, "secret environment variable " + ref.substr(4) + " is not set");
    return std::string(v);
  }
  return Err(ErrorCode::kInvalidArgument, "secret reference '" + ref + "' must start with file: or env:");
}

struct Wiring::Impl {
  SqliteStore* store;
  Output out;
  Millis lock_wait;
  LocalTransport local;
  std::unique_ptr<SshTransport> ssh;
  Transport* transport = &local;
  std::unique_ptr<CurlHealthChecker> health;
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<FencedTransport> fenced;
};

Wiring::Wiring(SqliteStore* store, Output out, Millis lock_wait) : impl_(std::make_unique<Impl>()) {
  impl_->store = store;
  impl_->out = out;
  impl_->lock_wait = lock_wait;
}
Wiring::~Wiring() = default;

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

}  // namespace

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

std::unique_ptr<RolloutEngine> Wiring::EngineFor(const RolloutPlan& plan, const AgentJobHooks* job) {
  auto& i = *impl_;
  i.runtime.reset();
  i.fenced.reset();
  i.ssh.reset();
  i.transport = &i.local;
  CurlHealthChecker::Route route;
  if (plan.ssh.enabled) {
    SshOptions so = SshOptionsFor(plan.bastion, plan.ssh);
    if (job && job->fence) so.before_command = job->fence;  // Again right before each command is sent.
    i.ssh = std::make_unique<SshTransport>(so);
    i.transport = i.ssh.get();
    SshTransport* ssh = i.ssh.get();
    route = [ssh](const std::string& address, int port) { return ssh->Forward(address, port); };
  }
  i.health = std::make_unique<CurlHealthChecker>(route);
  if (job && job->fence) {
    i.fenced = std::make_unique<FencedTransport>(*i.transport, job->fence);
    i.transport = i.fenced.get();
  }
  if (plan.app.runtime == "docker") {
    DockerOptions o;
    o.docker_host = plan.docker_host;
    i.runtime = std::make_unique<DockerRuntime>(*i.transport, o);
  } else {
    ProcessOptions o;
    if (!plan.base_dir.empty()) o.base_dir = plan.base_dir;
    i.runtime = std::make_unique<ProcessRuntime>(*i.transport, o);
  }
  EngineDeps d;
  d.clock = &RealClock::Instance();
  d.journal = job && job->journal ? job->journal : static_cast<JournalStore*>(i.store);
  d.locks = job && job->locks ? job->locks : static_cast<LockStore*>(i.store);
  d.runtime = i.runtime.get();
  d.transport = i.transport;
  d.health = i.health.get();
  // Behind a bastion, the LB's runtime API (a TCP address in the private
  // network) is reached through a forward over the bastion connection.
  auto make_lb = [route](const LoadBalancerSpec& spec) -> Result<std::unique_ptr<LoadBalancer>> {
    if (!route || spec.address.empty()) return MakeHaproxyLoadBalancer(spec);
    auto hp = ParseHostPort(spec.address);
    if (!hp) return Err(ErrorCode::kInvalidArgument, "load balancer address '" + spec.address + "' is not host:port");
    SP_ASSIGN_OR_RETURN(std::string via, route(hp->host, hp->port));
    LoadBalancerSpec local = spec;
    local.address.clear();
    local.socket = via;
    return MakeHaproxyLoadBalancer(local);
  };
  if (job && job->fence) {
    d.lb_factory = [make_lb, fence = job->fence](const LoadBalancerSpec& spec) -> Result<std::unique_ptr<LoadBalancer>> {
      SP_ASSIGN_OR_RETURN(auto lb, make_lb(spec));
      return std::unique_ptr<LoadBalancer>(std::make_unique<FencedLoadBalancer>(std::move(lb), fence));
    };
  } else {
    d.lb_factory = make_lb;
  }
  // The registry password is read once per rollout (preflight and every
  // host's pull share it), and only when first needed.
  // Hosts of a batch pull in parallel: std::call_once.
  struct Secret {
    std::once_flag once;
    Result<std::string> value = std::string();
  };
  auto password = std::make_shared<Secret>();
  auto registry_password = [password, ref = plan.registry.password_ref]() -> Result<std::string> {
    std::call_once(password->once, [&] {
      if (!ref.empty()) password->value = ReadSecretRef(ref);
    });
    return password->value;
  };
  d.credentials = [registry_password](const RegistrySpec& reg) -> Result<std::optional<RegistryAuth>> {
    if (reg.address.empty() || reg.password_ref.empty()) return std::optional<RegistryAuth>();
    SP_ASSIGN_OR_RETURN(std::string pw, registry_password());
    return std::optional<RegistryAuth>(RegistryAuth{reg.address, reg.username, pw});
  };
  d.check_pullable = [route, registry_password](const RolloutPlan& p) -> Status {
    if (p.app.runtime != "docker") {
      if (::access(p.app.artifact.c_str(), R_OK) != 0) {
        return Err(ErrorCode::kNotFound, "artifact " + p.app.artifact + " cannot be read");
      }
      return Ok();
    }
    SP_ASSIGN_OR_RETURN(std::string pw, registry_password());
    std::string via;
    if (route) {
      // The probe speaks plain HTTP to the registry (port 80 unless named).
      SP_ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(p.app.artifact));
      auto hp = ParseHostPort(ref.registry, 80);
      if (!hp) return Err(ErrorCode::kInvalidArgument, "image '" + p.app.artifact + "' names no registry host");
      SP_ASSIGN_OR_RETURN(via, route(hp->host, hp->port));
    }
    return CheckManifest(p.app.artifact, p.registry.username, pw, Millis(5000), via);
  };
  Output out = i.out;
  std::function<void(const Event&)> extra = job ? job->on_event : nullptr;
  d.on_event = [out, extra](const Event& e) {
    PrintEvent(e, out);
    if (extra) extra(e);
  };
  EngineOptions o;
  o.machine = MachineName();
  o.pid = ::getpid();
  o.holder = UserName() + "@" + o.machine + " pid " + std::to_string(o.pid);
  o.lock_wait = i.lock_wait;
  if (job) o.lease_ttl = job->lease_ttl;
  o.pid_alive = [](int64_t pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); };
  if (const char* skip = std::getenv("SALLYPORT_TEST_SKIP_DRAIN_WAIT"); skip && std::string(skip) == "1") {
    std::fprintf(stderr, "WARNING: SALLYPORT_TEST_SKIP_DRAIN_WAIT=1 — not waiting for sessions to drain (test only)\n");
    o.test_skip_session_wait = true;
  }
  return std::make_unique<RolloutEngine>(std::move(d), std::move(o));
}

std::function<Status(const ResolvedTarget&)> TeardownHook(SqliteStore* store, Output out, Millis lock_wait) {
  return [store, out, lock_wait](const ResolvedTarget& t) -> Status {
    RolloutPlan plan;
    SP_ASSIGN_OR_RETURN(auto latest, store->Latest(t.stack, t.release, t.deployment, std::nullopt));
    if (latest) {
      SP_ASSIGN_OR_RETURN(plan, PlanFromJson(latest->plan_json));
    } else {
      plan.app.runtime = "process";
    }
    plan.id = "t-" + NewRolloutId().substr(2);
    plan.kind = "teardown";
    plan.stack = t.stack;
    plan.release = t.release;
    plan.deployment = t.deployment;
    plan.network = t.network;
    plan.hosts = t.hosts;
    plan.load_balancers = t.load_balancers;
    plan.bastion = t.bastion;
    plan.ssh = t.ssh;
    if (!t.docker_host.empty()) plan.docker_host = t.docker_host;
    if (!t.base_dir.empty()) plan.base_dir = t.base_dir;
    Wiring wiring(store, out, lock_wait);
    SP_ASSIGN_OR_RETURN(RolloutSummary sum, wiring.EngineFor(plan)->Teardown(plan));
    if (sum.status != RolloutStatus::kSucceeded) return Err(ErrorCode::kUnavailable, sum.error);
    return Ok();
  };
}

std::string FormatEvent(const Event& e) {
  char buf[1024];
  buf[0] = 0;
  auto s = [&e](const char* k) { return e.detail.value(k, std::string()); };
  if (e.type == "step") {
    if (e.phase == "begin") return "";
    std::snprintf(buf, sizeof buf, "  %-12s %-14s %-5s %8s", e.host.c_str(), e.step.c_str(), e.phase == "end" ? "ok" : "FAIL",
                  FormatDuration(Millis(e.elapsed_ms)).c_str());
  } else if (e.type == "rollout_started") {
    std::snprintf(buf, sizeof buf, "rollout %s: %s to %s/%s (%d hosts)%s", e.rollout_id.c_str(), s("version").c_str(),
                  s("release").c_str(), s("deployment").c_str(), e.detail.value("hosts", 0),
                  e.detail.value("resumed", false) ? " [resumed]" : "");
  } else if (e.type == "host_done") {
    std::snprintf(buf, sizeof buf, "  %-12s done, out of rotation %s", e.host.c_str(),
                  FormatDuration(Millis(e.detail.value("out_of_rotation_ms", int64_t{0}))).c_str());
  } else if (e.type == "host_failed") {
    std::snprintf(buf, sizeof buf, "  %-12s FAILED: %s", e.host.c_str(), s("error").c_str());
  } else if (e.type == "reconcile") {
    std::snprintf(buf, sizeof buf, "  %-12s reconciled: %s", e.host.c_str(), s("decision").c_str());
  } else if (e.type == "server_added") {
    std::snprintf(buf, sizeof buf, "  %-12s added to %s backend %s as %s (%s)", e.host.c_str(), s("lb").c_str(),
                  s("backend").c_str(), s("server").c_str(), s("address").c_str());
  } else if (e.type == "teardown_started") {
    std::snprintf(buf, sizeof buf, "teardown %s: %s/%s (%d hosts)", e.rollout_id.c_str(), s("release").c_str(),
                  s("deployment").c_str(), e.detail.value("hosts", 0));
  } else if (e.type == "teardown_finished") {
    std::snprintf(buf, sizeof buf, "teardown %s %s in %s", e.rollout_id.c_str(), s("status").c_str(),
                  FormatDuration(Millis(e.elapsed_ms)).c_str());
  } else if (e.type == "warning") {
    std::snprintf(buf, sizeof buf, "  warning: %s", s("message").c_str());
  }
  return buf;
}

void PrintEvent(const Event& e, const Output& out) {
  if (out.json) {
    std::string line = e.ToJsonLine() + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    return;
  }
  const std::string line = FormatEvent(e);
  if (line.empty()) return;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void PrintSummary(const RolloutPlan& plan, const RolloutSummary& s, const Output& out) {
  if (out.json) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& h : s.hosts) {
      hosts.push_back({{"host", h.host}, {"state", h.state}, {"out_of_rotation_ms", h.out_of_rotation_ms},
                       {"elapsed_ms", h.elapsed_ms}, {"failed_step", h.failed_step}, {"error", h.error}});
    }
    nlohmann::json j = {{"event", "summary"}, {"rollout", s.rollout_id},
                        {"status", std::string(RolloutStatusName(s.status))}, {"elapsed_ms", s.elapsed_ms},
                        {"hosts", hosts}, {"error", s.error}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return;
  }
  std::printf("\n%-12s %-8s %-16s %-9s %s\n", "HOST", "STATE", "OUT OF ROTATION", "TOTAL", "DETAIL");
  for (const auto& h : s.hosts) {
    std::string detail = h.state == "failed" ? "failed at " + h.failed_step : "";
    std::printf("%-12s %-8s %-16s %-9s %s\n", h.host.c_str(), h.state.c_str(),
                FormatDuration(Millis(h.out_of_rotation_ms)).c_str(), FormatDuration(Millis(h.elapsed_ms)).c_str(),
                detail.c_str());
  }
  std::printf("\nrollout %s %s: %s -> %s/%s in %s\n", s.rollout_id.c_str(), std::string(RolloutStatusName(s.status)).c_str(),
              plan.app.version.c_str(), plan.release.c_str(), plan.deployment.c_str(),
              FormatDuration(Millis(s.elapsed_ms)).c_str());
  if (!s.error.empty()) std::printf("error: %s\n", s.error.c_str());
  std::fflush(stdout);
}

}  // namespace sp::cli
