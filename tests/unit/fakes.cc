#include "unit/fakes.h"

namespace sp::test {

std::optional<Error> World::Op(const std::string& op) {
  if (on_op) on_op(op);
  std::lock_guard l(mu);
  if (!crash_at.empty() && op == crash_at) {
    crash_at.clear();
    throw Crash{op};
  }
  bool quiet = false;
  for (const auto& p : quiet_prefixes) quiet = quiet || op.rfind(p, 0) == 0;
  if (!quiet) log_.push_back(op);
  if (fail_once.erase(op)) return Error{ErrorCode::kUnavailable, "injected failure of " + op};
  auto it = fail.find(op);
  if (it != fail.end()) return it->second;
  return std::nullopt;
}

std::vector<std::string> World::Log() {
  std::lock_guard l(mu);
  return log_;
}

void World::ClearLog() {
  std::lock_guard l(mu);
  log_.clear();
}

// ---------------------------------------------------------------- runtime

// The engine runs a batch's hosts on threads: the fakes' state is guarded by
// mu_, never held across World::Op (its on_op hook may block, e.g. a barrier).

Status FakeRuntime::Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) {
  if (auto e = w_->Op("pull " + t.host.name + " " + app.version)) return Err(*e);
  std::lock_guard l(mu_);
  pulled.insert(t.host.name + " " + app.artifact);
  return Ok();
}

Result<bool> FakeRuntime::HasArtifact(const RuntimeTarget& t, const AppSpec& app) {
  if (auto e = w_->Op("has " + t.host.name)) return Err(*e);
  std::lock_guard l(mu_);
  return pulled.count(t.host.name + " " + app.artifact) > 0;
}

Status FakeRuntime::CheckPull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>&) {
  if (auto e = w_->Op("can-pull " + t.host.name + " " + app.artifact)) return Err(*e);
  return Ok();
}

Result<std::vector<Instance>> FakeRuntime::List(const RuntimeTarget& t) {
  ++list_calls;
  if (auto e = w_->Op("list " + t.host.name)) return Err(*e);
  std::lock_guard l(mu_);
  return hosts_[t.host.name];
}

Status FakeRuntime::SetRunning(const RuntimeTarget& t, const Instance& inst, const char* verb, bool running) {
  std::string version;
  {
    std::lock_guard l(mu_);
    for (const auto& i : hosts_[t.host.name]) {
      if (i.id == inst.id) version = i.version;
    }
  }
  if (version.empty()) return Err(ErrorCode::kNotFound, "no instance " + inst.id);
  if (auto e = w_->Op(std::string(verb) + " " + t.host.name + " " + version)) return Err(*e);
  std::lock_guard l(mu_);
  for (auto& i : hosts_[t.host.name]) {
    if (i.id == inst.id) i.running = running;
  }
  return Ok();
}

Status FakeRuntime::Stop(const RuntimeTarget& t, const Instance& inst, Millis) {
  return SetRunning(t, inst, "stop", false);
}

Result<Instance> FakeRuntime::Start(const RuntimeTarget& t, const AppSpec& app) {
  if (auto e = w_->Op("start " + t.host.name + " " + app.version)) return Err(*e);
  std::lock_guard l(mu_);
  started_env[t.host.name] = app.env;
  auto& v = hosts_[t.host.name];
  std::erase_if(v, [&](const Instance& i) { return i.rollout_id == app.rollout_id; });
  Instance inst{t.host.name + "-" + app.rollout_id, app.rollout_id, app.version, app.artifact, true, ++seq_};
  v.push_back(inst);
  // Its supervisor restarts it as soon as it started (the app crashes).
  if (auto it = crashes_after_start.find(t.host.name); it != crashes_after_start.end()) v.back().restarts = it->second;
  return inst;
}

Status FakeRuntime::Restart(const RuntimeTarget& t, const Instance& inst) {
  return SetRunning(t, inst, "restart", true);
}

Status FakeRuntime::Remove(const RuntimeTarget& t, const Instance& inst) {
  if (auto e = w_->Op("remove " + t.host.name + " " + inst.version)) return Err(*e);
  std::lock_guard l(mu_);
  std::erase_if(hosts_[t.host.name], [&](const Instance& i) { return i.id == inst.id; });
  return Ok();
}

Result<std::string> FakeRuntime::Logs(const RuntimeTarget& t, const Instance& inst, int) {
  return "log line of " + inst.version + " on " + t.host.name;
}

Result<std::optional<std::vector<PortListener>>> FakeRuntime::Listeners(const RuntimeTarget& t, int port) {
  if (auto e = w_->Op("listeners " + t.host.name)) return Err(*e);
  std::lock_guard l(mu_);
  std::vector<PortListener> out;
  for (const auto& inst : hosts_[t.host.name]) {
    if (inst.running) {
      out.push_back(PortListener{inst.id, "pid 1 (" + inst.version + ")", listeners_tell_restarts ? inst.restarts : -1});
    }
  }
  if (auto it = strays.find(t.host.name); it != strays.end()) out.push_back(PortListener{"", it->second});
  return std::optional(std::move(out));
}

void FakeRuntime::Seed(const std::string& host, const std::string& version, const std::string& rollout_id) {
  std::lock_guard l(mu_);
  hosts_[host].push_back(Instance{host + "-" + rollout_id, rollout_id, version, "img:" + version, true, ++seq_});
}

std::vector<Instance> FakeRuntime::Instances(const std::string& host) {
  std::lock_guard l(mu_);
  return hosts_[host];
}

std::vector<std::string> FakeRuntime::Running(const std::string& host) {
  std::lock_guard l(mu_);
  std::vector<std::string> out;
  for (const auto& i : hosts_[host]) {
    if (i.running) out.push_back(i.version);
  }
  return out;
}

// ---------------------------------------------------------------- load balancer

Status FakeLoadBalancer::SetState(const std::string& backend, const std::string& server, AdminState state) {
  if (auto e = w_->Op(std::string(AdminStateName(state)) + " " + server + (name_ == "lb" ? "" : "@" + name_))) {
    return Err(*e);
  }
  std::lock_guard l(mu_);
  auto& s = backends_[backend][server];
  s.admin = state;
  if (state == AdminState::kReady) {
    s.status = "UP";
    confirm_pending_.insert(server);
  }
  if (state == AdminState::kMaint) s.status = "MAINT";
  if (state == AdminState::kDrain) {
    zero_logged_.erase(server);
    s.status = "DRAIN";
    s.sessions = sessions_on_drain.count(server) ? sessions_on_drain[server] : 0;
  }
  return Ok();
}

Result<ServerState> FakeLoadBalancer::GetServer(const std::string& backend, const std::string& server) {
  if (auto e = w_->Op("get " + server)) return Err(*e);
  const std::string at = name_ == "lb" ? "" : "@" + name_;
  bool zero = false, up = false;
  {
    std::lock_guard l(mu_);
    if (!backends_.count(backend) || !backends_[backend].count(server)) {
      return Err(ErrorCode::kNotFound, "server " + server + " not found in backend " + backend);
    }
    const ServerState& s = backends_[backend][server];
    zero = s.admin == AdminState::kDrain && s.sessions == 0 && zero_logged_.insert(server).second;
    up = s.admin == AdminState::kReady && confirm_pending_.erase(server) > 0;
  }
  if (zero) w_->Op("sessions " + server + at + "=0");
  if (up) w_->Op("up " + server + at);
  std::lock_guard l(mu_);
  auto& s = backends_[backend][server];
  ServerState copy = s;
  if (s.sessions > 0) --s.sessions;  // Sessions close over time.
  return copy;
}

Result<std::vector<ServerState>> FakeLoadBalancer::ListBackend(const std::string& backend) {
  if (auto e = w_->Op("list-backend " + name_)) return Err(*e);
  std::lock_guard l(mu_);
  if (!backends_.count(backend)) return Err(ErrorCode::kNotFound, "no backend " + backend);
  std::vector<ServerState> out;
  for (const auto& [name, s] : backends_[backend]) out.push_back(s);
  return out;
}

void FakeLoadBalancer::AddServer(const std::string& backend, const std::string& server) {
  std::lock_guard l(mu_);
  ServerState s;
  s.name = server;
  s.status = "UP";
  backends_[backend][server] = s;
}

Status FakeLoadBalancer::AddServer(const std::string& backend, const std::string& server, const std::string& address,
                                   int port) {
  if (auto e = w_->Op("add-server " + server + " " + address + ":" + std::to_string(port))) return Err(*e);
  std::lock_guard l(mu_);
  if (!backends_.count(backend)) return Err(ErrorCode::kNotFound, "no backend " + backend);
  if (backends_[backend].count(server)) return Err(ErrorCode::kConflict, "server " + server + " exists");
  ServerState s;
  s.name = server;
  s.status = "MAINT";
  s.admin = AdminState::kMaint;
  backends_[backend][server] = s;
  return Ok();
}

Status FakeLoadBalancer::RemoveServer(const std::string& backend, const std::string& server) {
  if (auto e = w_->Op("del-server " + server)) return Err(*e);
  std::lock_guard l(mu_);
  if (!backends_.count(backend) || !backends_[backend].erase(server)) {
    return Err(ErrorCode::kNotFound, "server " + server + " not found in backend " + backend);
  }
  return Ok();
}

bool FakeLoadBalancer::Has(const std::string& backend, const std::string& server) {
  std::lock_guard l(mu_);
  return backends_.count(backend) && backends_[backend].count(server);
}

ServerState FakeLoadBalancer::State(const std::string& server) {
  std::lock_guard l(mu_);
  for (auto& [b, servers] : backends_) {
    if (servers.count(server)) return servers[server];
  }
  return {};
}

std::unique_ptr<LoadBalancer> Borrow(LoadBalancer* lb) {
  struct Borrowed final : LoadBalancer {
    explicit Borrowed(LoadBalancer* l) : lb(l) {}
    std::string Describe() const override { return lb->Describe(); }
    Status SetState(const std::string& b, const std::string& s, AdminState st) override { return lb->SetState(b, s, st); }
    Result<ServerState> GetServer(const std::string& b, const std::string& s) override { return lb->GetServer(b, s); }
    Result<std::vector<ServerState>> ListBackend(const std::string& b) override { return lb->ListBackend(b); }
    Status AddServer(const std::string& b, const std::string& s, const std::string& a, int p) override {
      return lb->AddServer(b, s, a, p);
    }
    Status RemoveServer(const std::string& b, const std::string& s) override { return lb->RemoveServer(b, s); }
    LoadBalancer* lb;
  };
  return std::make_unique<Borrowed>(lb);
}

// ---------------------------------------------------------------- health

HealthProbe FakeHealth::Probe(const std::string&, int port, const HealthCheckSpec&) {
  HealthProbe p;
  const std::string host = port_to_host_[port];
  auto running = rt_->Running(host);
  std::string version = running.empty() ? "" : running.back();
  if (auto e = w_->Op("health " + host + " " + version)) {
    p.error = e->message;
    return p;
  }
  if (running.empty()) {
    p.error = "connection refused";
  } else if (bad_versions.count(version)) {
    p.status = 500;
    p.body = "unhealthy";
  } else {
    p.status = 200;
    p.ok = true;
  }
  return p;
}

// ---------------------------------------------------------------- transport

Result<ExitStatus> FakeTransport::Run(const HostRef& host, const CommandSpec& spec) {
  if (auto e = w_->Op("run " + host.name + " " + (spec.argv.empty() ? "" : spec.argv[0]))) return Err(*e);
  ExitStatus st;
  st.exit_code = 0;
  return st;
}
Status FakeTransport::WriteFile(const HostRef&, const std::string&, const std::string&, int) { return Ok(); }
Status FakeTransport::CopyFile(const HostRef&, const std::string&, const std::string&, int) { return Ok(); }
Status FakeTransport::Check(const HostRef& host) {
  if (unreachable.count(host.name)) return Err(ErrorCode::kUnavailable, "connection refused");
  if (auto e = w_->Op("check " + host.name)) return Err(*e);
  return Ok();
}

Result<std::string> FakeHookRunner::Run(const HookSpec& hook, const HookCall& call) {
  if (auto e = w_->Op("hook " + call.key)) return Err(*e);
  std::lock_guard l(mu_);
  calls_.push_back(call);
  return "ran " + hook.name;
}

std::vector<HookCall> FakeHookRunner::Calls() {
  std::lock_guard l(mu_);
  return calls_;
}

namespace {
std::string MarkerIn(const std::string& comment) {
  const size_t at = comment.find("[sallyport-rollout=");
  return at == std::string::npos ? comment : comment.substr(at);
}
}  // namespace

Result<std::vector<Silence>> FakeSilencer::Find(const SilenceSpec&, const std::string& marker) {
  if (auto e = w_->Op("silence find")) return Err(*e);
  std::lock_guard l(mu_);
  std::vector<Silence> out;
  for (const auto& s : all_) {
    if (s.state != "expired" && s.comment.find(marker) != std::string::npos) out.push_back(s);
  }
  return out;
}

Result<std::string> FakeSilencer::Put(const SilenceSpec&, const Silence& s) {
  if (auto e = w_->Op("silence put " + MarkerIn(s.comment))) return Err(*e);
  std::lock_guard l(mu_);
  for (auto& old : all_) {
    if (s.id.empty() || old.id != s.id) continue;
    if (old.state != "expired" && old.starts_at == s.starts_at && old.matchers.size() == s.matchers.size()) {
      old.ends_at_ms = s.ends_at_ms;
      return old.id;
    }
    old.state = "expired";
  }
  Silence made = s;
  made.id = "s" + std::to_string(all_.size() + 1);
  made.state = "active";
  made.starts_at = "t" + std::to_string(now_ms);  // As an Alertmanager writes its own start.
  all_.push_back(made);
  return made.id;
}

Status FakeSilencer::Expire(const SilenceSpec&, const std::string& id) {
  if (auto e = w_->Op("silence expire " + id)) return Err(*e);
  std::lock_guard l(mu_);
  for (auto& s : all_) {
    if (s.id == id) s.state = "expired";
  }
  return Ok();
}

std::vector<Silence> FakeSilencer::All() {
  std::lock_guard l(mu_);
  return all_;
}

}  // namespace sp::test
