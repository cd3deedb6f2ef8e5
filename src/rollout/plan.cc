#include "rollout/plan.h"

#include <nlohmann/json.hpp>

#include <random>

#include "inventory/hooks.h"
#include "inventory/wire.h"
#include "rollout/effective_env.h"
#include "core/text.h"

namespace sp {

using nlohmann::json;

AppSpec RolloutPlan::AppFor(const HostSpec& host) const {
  AppSpec a;
  a.release = release;
  a.deployment = deployment;
  a.rollout_id = id;
  a.version = app.version;
  a.artifact = app.artifact;
  a.port = PortFor(host);
  a.command = app.command;
  a.env = app.env;
  // What the app may want to know about itself (e.g. to report its version).
  a.env["SALLYPORT_VERSION"] = app.version;
  a.env["SALLYPORT_RELEASE"] = release;
  a.env["SALLYPORT_DEPLOYMENT"] = deployment;
  a.env["SALLYPORT_ROLLOUT"] = id;
  a.volumes = app.volumes;
  a.stop_timeout = app.stop_timeout;
  return a;
}

std::string NewRolloutId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof buf, "r-%012llx", static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return buf;
}

namespace {

json CountJson(const CountOrPercent& c) { return c.ToString(); }

}  // namespace

namespace {

// Plans frozen before version 2 kept bastion and ssh settings under
// "access" ({"ssh": enabled, ...fields, "bastion": {...}}): read them so a
// rollout interrupted across an upgrade still resumes.
void LegacyAccessFromJson(const json& a, RolloutPlan* p) {
  p->ssh.enabled = a.at("ssh");
  p->ssh.known_hosts = a.at("known_hosts");
  p->ssh.config = a.at("config");
  p->ssh.identity = a.at("identity");
  p->ssh.user = a.at("user");
  p->ssh.connect_timeout_ms = a.at("connect_timeout_ms");
  p->ssh.max_hosts = a.at("max_hosts");
  if (a.contains("bastion")) p->bastion = BastionFromJson(a.at("bastion"));
}

}  // namespace

std::string PlanToJson(const RolloutPlan& p, int indent) {
  WireDoc hosts = WireDoc::array();
  for (const auto& h : p.hosts) hosts.push_back(HostToJson(h));
  WireDoc lbs = WireDoc::array();
  for (const auto& lb : p.load_balancers) lbs.push_back(LoadBalancerToJson(lb));
  const auto& a = p.app;
  WireDoc j = {
      {"version", 2},
      {"id", p.id},
      {"kind", Name(p.kind)},
      {"service", p.service},
      {"stack", p.stack},
      {"release", p.release},
      {"deployment", p.deployment},
      {"network", p.network},
      {"app",
       {{"runtime", a.runtime},
        {"artifact", a.artifact},
        {"version", a.version},
        {"port", a.port},
        {"command", a.command},
        {"env", a.env},
        {"env_refs", a.env_refs},
        {"volumes", a.volumes},
        {"health",
         {{"path", a.health.path},
          {"expected_status", a.health.expected_status},
          {"interval_ms", a.health.interval.count()},
          {"timeout_ms", a.health.timeout.count()},
          {"retries", a.health.retries}}},
        {"smoke", a.smoke},
        {"stop_timeout_ms", a.stop_timeout.count()}}},
      {"hosts", hosts},
      {"load_balancers", lbs},
      {"strategy",
       {{"batch", CountJson(p.strategy.batch)},
        {"max_failures", CountJson(p.strategy.max_failures)},
        {"drain_timeout_ms", p.strategy.drain_timeout.count()},
        {"ready_timeout_ms", p.strategy.ready_timeout.count()},
        {"keep_previous", p.strategy.keep_previous}}},
      {"registry", {{"address", p.registry.address}, {"username", p.registry.username},
                    {"password_ref", p.registry.password_ref}, {"insecure", p.registry.insecure},
                    {"realm_hosts", p.registry.realm_hosts}}},
      {"docker_host", p.docker_host},
      {"base_dir", p.base_dir},
      {"bastion", p.bastion ? BastionToJson(*p.bastion) : WireDoc(nullptr)},
      {"ssh", p.ssh.enabled ? SshAccessToJson(p.ssh) : WireDoc(nullptr)},
      {"hooks", HooksToJson(p.hooks)},
      {"previous_rollout_id", p.previous_rollout_id},
      {"build_id", p.build_id},
      {"created_ms", p.created_ms},
      {"requested_by", p.requested_by},
  };
  if (!p.submitted_by.empty()) j["submitted_by"] = p.submitted_by;
  return j.dump(indent);
}

Result<RolloutPlan> PlanFromJson(const std::string& text) {
  try {
    json j = json::parse(text);
    RolloutPlan p;
    p.id = j.at("id");
    auto kind = ParsePlanKind(j.at("kind").get<std::string>());
    if (!kind) return Err(ErrorCode::kInternal, "stored plan has an unknown kind " + j.at("kind").dump());
    p.kind = *kind;
    p.service = j.at("service");
    p.stack = j.at("stack");
    p.release = j.at("release");
    p.deployment = j.at("deployment");
    p.network = j.at("network");
    const json& a = j.at("app");
    p.app.runtime = a.at("runtime");
    p.app.artifact = a.at("artifact");
    p.app.version = a.at("version");
    p.app.port = a.at("port");
    p.app.command = a.at("command").get<std::vector<std::string>>();
    p.app.env = a.at("env").get<std::map<std::string, std::string>>();
    if (a.contains("env_refs")) p.app.env_refs = a.at("env_refs").get<std::map<std::string, std::string>>();
    p.app.volumes = a.at("volumes").get<std::vector<std::string>>();
    const json& h = a.at("health");
    p.app.health.path = h.at("path");
    p.app.health.expected_status = h.at("expected_status");
    p.app.health.interval = Millis(h.at("interval_ms").get<int64_t>());
    p.app.health.timeout = Millis(h.at("timeout_ms").get<int64_t>());
    p.app.health.retries = h.at("retries");
    p.app.smoke = a.at("smoke").get<std::vector<std::string>>();
    p.app.stop_timeout = Millis(a.at("stop_timeout_ms").get<int64_t>());
    for (const auto& hj : j.at("hosts")) p.hosts.push_back(HostFromJson(hj));
    for (const auto& lj : j.at("load_balancers")) p.load_balancers.push_back(LoadBalancerFromJson(lj));
    const json& s = j.at("strategy");
    auto batch = ParseCountOrPercent(s.at("batch").get<std::string>());
    auto maxf = ParseCountOrPercent(s.at("max_failures").get<std::string>());
    if (!batch || !maxf) return Err(ErrorCode::kInvalidArgument, "plan: bad strategy");
    p.strategy.batch = *batch;
    p.strategy.max_failures = *maxf;
    p.strategy.drain_timeout = Millis(s.at("drain_timeout_ms").get<int64_t>());
    p.strategy.ready_timeout = Millis(s.at("ready_timeout_ms").get<int64_t>());
    p.strategy.keep_previous = s.value("keep_previous", 1);  // Plans frozen before it kept one.
    const json& r = j.at("registry");
    p.registry.address = r.at("address");
    p.registry.username = r.at("username");
    p.registry.password_ref = r.at("password_ref");
    p.registry.insecure = r.value("insecure", false);
    if (r.contains("realm_hosts")) p.registry.realm_hosts = r.at("realm_hosts").get<std::vector<std::string>>();
    p.docker_host = j.at("docker_host");
    p.base_dir = j.at("base_dir");
    if (j.contains("access")) LegacyAccessFromJson(j.at("access"), &p);
    if (j.contains("bastion") && !j["bastion"].is_null()) p.bastion = BastionFromJson(j["bastion"]);
    if (j.contains("ssh") && !j["ssh"].is_null()) p.ssh = SshAccessFromJson(j["ssh"]);
    if (j.contains("hooks")) p.hooks = HooksFromJson(j["hooks"]);  // Plans frozen before hooks have none.
    p.previous_rollout_id = j.at("previous_rollout_id");
    p.build_id = j.value("build_id", int64_t{0});
    p.created_ms = j.at("created_ms");
    p.requested_by = j.value("requested_by", std::string());
    p.submitted_by = j.value("submitted_by", std::string());
    return p;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal, std::string("stored plan is unreadable: ") + e.what());
  }
}

Result<RolloutPlan> BuildPlan(const ServiceConfig& svc, const ResolvedTarget& target, const PlanInput& in) {
  auto rel = svc.releases.find(target.release);
  if (rel == svc.releases.end()) {
    return Err(ErrorCode::kNotFound, svc.file + ": release '" + target.release + "' is not defined under releases");
  }
  const ReleaseSpec& spec = rel->second;
  if (in.artifact.empty()) return Err(ErrorCode::kInvalidArgument, "no artifact given");
  if (spec.runtime == "docker" && !IsValidImageRef(in.artifact)) {
    return Err(ErrorCode::kInvalidArgument, "invalid image reference '" + in.artifact + "'");
  }
  if (!IsSafeValue(in.artifact) || !IsSafeValue(in.version)) {
    return Err(ErrorCode::kInvalidArgument, "artifact and version must be single-line text");
  }
  if (target.hosts.empty()) {
    return Err(ErrorCode::kInvalidArgument, "release '" + target.release + "' in deployment '" +
                                                target.deployment + "' has no hosts");
  }
  RolloutPlan p;
  p.id = in.id.empty() ? NewRolloutId() : in.id;
  p.service = svc.service;
  p.app.runtime = spec.runtime;
  p.app.artifact = in.artifact;
  p.app.version = in.version.empty() ? in.artifact : in.version;
  p.app.port = spec.port;
  p.app.command = spec.command;
  EffectiveEnvironment env = EffectiveEnv(target, spec, in.secrets);
  p.app.env = std::move(env.env);
  p.app.env_refs = std::move(env.refs);
  p.app.volumes = spec.volumes;
  p.app.health = spec.health;
  p.app.smoke = spec.smoke;
  p.app.stop_timeout = spec.stop_timeout;
  p.strategy = spec.strategy;
  if (in.batch_override) p.strategy.batch = *in.batch_override;
  if (in.max_failures_override) p.strategy.max_failures = *in.max_failures_override;
  p.registry = svc.registry;
  TargetInto(target, p);
  p.created_ms = in.now_ms;
  return p;
}

void TargetInto(const ResolvedTarget& t, RolloutPlan& p) {
  p.stack = t.stack;
  p.release = t.release;
  p.deployment = t.deployment;
  p.network = t.network;
  p.hosts = t.hosts;
  p.load_balancers = t.load_balancers;
  p.docker_host = t.docker_host;
  p.base_dir = t.base_dir;
  p.bastion = t.bastion;
  p.ssh = t.ssh;
  p.hooks = t.hooks;
}

}  // namespace sp
