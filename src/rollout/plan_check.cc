#include "rollout/plan_check.h"

#include <regex>

#include "config/service_config.h"
#include "core/text.h"
#include "inventory/hooks.h"

namespace sp {
namespace {

Error Bad(const std::string& field, const std::string& why) {
  return Error{ErrorCode::kInvalidArgument, "plan " + field + ": " + why};
}

bool Port(int p, bool zero_ok) { return (zero_ok && p == 0) || (p >= 1 && p <= 65535); }

// An absolute path of one line, no ".." part.
bool AbsolutePath(const std::string& p) {
  if (p.empty() || p.front() != '/' || !IsSafeValue(p)) return false;
  for (const auto& part : Split(p, '/')) {
    if (part == "..") return false;
  }
  return true;
}

bool SafeId(const std::string& s) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  return std::regex_match(s, re);
}

// A known_hosts line for exactly the bastion: its first field is the
// bastion's address (or [address]:port), with no pattern or marker.
Status CheckHostKey(const BastionSpec& b) {
  if (b.host_key.empty()) return Ok();
  if (!IsSafeValue(b.host_key)) return Err(Bad("/bastion/host_key", "contains a newline or NUL"));
  const std::string first = b.host_key.substr(0, b.host_key.find(' '));
  const std::string bracketed = "[" + b.address + "]:" + std::to_string(b.port);
  if (first != b.address && first != bracketed) {
    return Err(Bad("/bastion/host_key", "names '" + Printable(first) + "', not the bastion " + b.address +
                                            " (a wildcard, a list or a @cert-authority line is refused)"));
  }
  return Ok();
}

Status CheckHosts(const RolloutPlan& p) {
  if (p.hosts.empty()) return Err(Bad("/hosts", "no host"));
  for (size_t i = 0; i < p.hosts.size(); ++i) {
    const HostSpec& h = p.hosts[i];
    const std::string at = "/hosts/" + std::to_string(i);
    if (!IsValidHostName(h.name)) return Err(Bad(at + "/name", "invalid host name '" + Printable(h.name) + "'"));
    if (!IsValidAddress(h.address)) return Err(Bad(at + "/address", "invalid address '" + Printable(h.address) + "'"));
    if (!Port(h.port, true)) return Err(Bad(at + "/port", "out of range"));
    if (!Port(h.ssh_port, false)) return Err(Bad(at + "/ssh_port", "out of range"));
    if (!h.ssh_user.empty() && !IsValidUser(h.ssh_user)) return Err(Bad(at + "/ssh_user", "invalid user"));
  }
  return Ok();
}

Status CheckLoadBalancers(const RolloutPlan& p) {
  for (size_t i = 0; i < p.load_balancers.size(); ++i) {
    const LoadBalancerSpec& lb = p.load_balancers[i];
    const std::string at = "/load_balancers/" + std::to_string(i);
    if (lb.socket.empty() == lb.address.empty()) return Err(Bad(at, "exactly one of socket and address"));
    if (!lb.socket.empty() && !AbsolutePath(lb.socket)) return Err(Bad(at + "/socket", "not an absolute path"));
    if (!SafeId(lb.backend)) return Err(Bad(at + "/backend", "invalid backend name"));
    for (const auto& [host, server] : lb.servers) {
      if (!SafeId(server)) return Err(Bad(at + "/servers/" + host, "invalid server name"));
    }
  }
  return Ok();
}

Status CheckApp(const RolloutPlan& p) {
  const PlanApp& a = p.app;
  if (a.artifact.empty() || !IsSafeValue(a.artifact)) return Err(Bad("/app/artifact", "empty or more than one line"));
  if (a.runtime == "docker" && !IsValidImageRef(a.artifact)) return Err(Bad("/app/artifact", "not an image reference"));
  if (!IsSafeValue(a.version)) return Err(Bad("/app/version", "more than one line"));
  if (!Port(a.port, true)) return Err(Bad("/app/port", "out of range"));
  for (const auto& arg : a.command) {
    if (!IsSafeValue(arg)) return Err(Bad("/app/command", "an argument with a newline or NUL"));
  }
  for (const auto& [k, v] : a.env) {
    if (!IsValidEnvName(k)) return Err(Bad("/app/env", "invalid name '" + Printable(k) + "'"));
    if (!IsSafeValue(v)) return Err(Bad("/app/env/" + k, "a newline or NUL"));  // The value is not echoed.
  }
  for (const auto& [k, ref] : a.env_refs) {
    if (!IsValidEnvName(k)) return Err(Bad("/app/env_refs", "invalid name '" + Printable(k) + "'"));
    if (!IsValidSecretRef(ref)) {
      return Err(Bad("/app/env_refs/" + k, "not credential:NAME, file:/absolute/path or env:NAME"));
    }
  }
  for (const auto& v : a.volumes) {
    if (!IsValidVolume(v)) return Err(Bad("/app/volumes", "'" + Printable(v) + "' is not /host/path:/container/path"));
  }
  if (!a.health.path.empty() && !IsValidHealthPath(a.health.path)) return Err(Bad("/app/health/path", "not a URL path"));
  for (const auto& arg : a.smoke) {
    if (!IsSafeValue(arg)) return Err(Bad("/app/smoke", "an argument with a newline or NUL"));
  }
  return Ok();
}

// The registry a pull logs in to, and where its password is read (a
// reference, never the value).
Status CheckRegistry(const RegistrySpec& r) {
  if (!r.address.empty() && !IsValidHostPort(r.address, false)) {
    return Err(Bad("/registry/address", "invalid address '" + Printable(r.address) + "'"));
  }
  if (!IsSafeValue(r.username)) return Err(Bad("/registry/username", "a newline or NUL"));
  for (const auto& h : r.realm_hosts) {
    if (!IsValidHostPort(h, false)) return Err(Bad("/registry/realm_hosts", "invalid host '" + Printable(h) + "'"));
  }
  if (!r.password_ref.empty() && !IsValidSecretRef(r.password_ref)) {
    return Err(Bad("/registry/password_ref", "not file:/absolute/path, env:NAME or helper:NAME"));
  }
  return Ok();
}

Status CheckAccess(const RolloutPlan& p) {
  if (!p.docker_host.empty() && !(StartsWith(p.docker_host, "unix://") && AbsolutePath(p.docker_host.substr(7)))) {
    return Err(Bad("/docker_host", "'" + Printable(p.docker_host) + "' is not unix:///absolute/path (an engine on TCP is refused)"));
  }
  if (!p.base_dir.empty() && !AbsolutePath(p.base_dir)) return Err(Bad("/base_dir", "not an absolute path"));
  if (p.bastion) {
    const BastionSpec& b = *p.bastion;
    if (!IsValidAddress(b.address)) return Err(Bad("/bastion/address", "invalid address '" + Printable(b.address) + "'"));
    if (!Port(b.port, false)) return Err(Bad("/bastion/port", "out of range"));
    if (!IsValidUser(b.user)) return Err(Bad("/bastion/user", "invalid user"));
    if (!b.key.empty() && !AbsolutePath(b.key)) return Err(Bad("/bastion/key", "not an absolute path"));
    SP_TRY(CheckHostKey(b));
  }
  for (const auto& [field, path] : {std::pair{"known_hosts", &p.ssh.known_hosts}, std::pair{"identity", &p.ssh.identity}}) {
    if (!path->empty() && !AbsolutePath(*path)) return Err(Bad(std::string("/ssh/") + field, "not an absolute path"));
  }
  if (!p.ssh.config.empty() && p.ssh.config != "none" && !AbsolutePath(p.ssh.config)) {
    return Err(Bad("/ssh/config", "not an absolute path or none"));
  }
  if (!p.ssh.user.empty() && !IsValidUser(p.ssh.user)) return Err(Bad("/ssh/user", "invalid user"));
  return Ok();
}

}  // namespace

Status CheckPlan(const RolloutPlan& p) {
  if (!SafeId(p.id)) return Err(Bad("/id", "invalid rollout id"));
  for (const auto& [field, value] : {std::pair{"stack", &p.stack}, std::pair{"release", &p.release},
                                     std::pair{"deployment", &p.deployment}}) {
    if (!IsValidName(*value)) return Err(Bad(std::string("/") + field, "invalid name '" + Printable(*value) + "'"));
  }
  if (!p.network.empty() && !IsValidName(p.network)) return Err(Bad("/network", "invalid network label"));
  if (!IsSafeValue(p.service)) return Err(Bad("/service", "a newline or NUL"));
  if (p.requested_by.size() > 200 || !IsSafeValue(p.requested_by)) {
    return Err(Bad("/requested_by", "longer than 200 characters, or contains a newline or NUL"));
  }
  if (!p.previous_rollout_id.empty() && !SafeId(p.previous_rollout_id)) {
    return Err(Bad("/previous_rollout_id", "invalid rollout id"));
  }
  if (p.strategy.keep_previous < 1 || p.strategy.keep_previous > kMaxKeepPrevious) {
    return Err(Bad("/strategy/keep_previous", "out of range (1-" + std::to_string(kMaxKeepPrevious) + ")"));
  }
  SP_TRY(CheckRegistry(p.registry));
  SP_TRY(CheckHosts(p));
  SP_TRY(CheckLoadBalancers(p));
  SP_TRY(CheckApp(p));
  if (Status hooks = CheckHooks(p.hooks); !hooks) return Err(Bad("/hooks", hooks.error().message));
  return CheckAccess(p);
}

}  // namespace sp
