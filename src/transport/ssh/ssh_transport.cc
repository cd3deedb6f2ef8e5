#include "transport/ssh/ssh_transport.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/file.h"
#include "core/text.h"
#include "transport/ssh/mux_client.h"
#include "transport/ssh/ssh_command.h"

namespace sp {

using ssh::ShellQuote;

struct SshTransport::Conn {
  SshEndpoint endpoint;
  std::string name;  // Inventory name, for messages.
  std::string ctl;   // ControlPath.
  bool up = false;   // False while its master is being started.
  int busy = 0;      // Commands running on it.
  int64_t last_used = 0;
  std::map<std::string, std::string> sockets;  // Forwarded: remote path -> local path.
};

namespace {

std::string Key(const SshEndpoint& e) { return e.user + "@" + e.address + ":" + std::to_string(e.port); }

std::string Display(const SshEndpoint& e) {
  return (e.user.empty() ? "" : e.user + "@") + e.address + (e.port == 22 ? "" : ":" + std::to_string(e.port));
}

// Paths that end up inside ssh options or ProxyCommand: no spaces, quotes or
// '%' (ssh expands %-tokens), so nothing needs escaping there.
bool SafePath(const std::string& p) {
  if (p.empty()) return true;
  for (char c : p) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' || c == '-' || c == '~' ||
          c == '+' || c == ':' || c == '@')) {
      return false;
    }
  }
  return true;
}

CommandSpec SshSpec(std::vector<std::string> argv, std::optional<Millis> timeout) {
  CommandSpec s;
  s.argv = std::move(argv);
  s.timeout = timeout;
  s.env["SHELL"] = "/bin/sh";  // ProxyCommand runs under $SHELL.
  return s;
}

std::string OctalMode(int mode) {
  char m[8];
  std::snprintf(m, sizeof m, "%04o", mode & 07777);
  return m;
}

}  // namespace

SshTransport::SshTransport(SshOptions options) : options_(std::move(options)) {
  if (options_.max_hosts < 1) options_.max_hosts = 1;
}

SshTransport::~SshTransport() { Close(); }

Status SshTransport::EnsureDir() {
  // Called with mu_ held.
  if (!dir_.empty()) return Ok();
  for (const std::string* p : {&options_.known_hosts, &options_.identity_file, &options_.config_file}) {
    if (!SafePath(*p)) {
      return Err(ErrorCode::kInvalidArgument, "ssh: path '" + *p + "' may use only letters, digits and / . _ - ~ + : @");
    }
  }
  char tmpl[] = "/tmp/sp-ssh-XXXXXX";  // Short: unix socket paths are limited to 108 bytes.
  if (!::mkdtemp(tmpl)) return Err(ErrorCode::kInternal, std::string("ssh: mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  std::vector<std::string> files;
  if (!options_.known_hosts.empty()) files.push_back(options_.known_hosts);
  if (!options_.bastion_host_key.empty() && options_.bastion) {
    // The inventory's known-hosts line for the bastion, as a second file.
    std::string line = options_.bastion_host_key;
    std::ofstream(dir_ + "/bastion_known_hosts") << line << "\n";
    if (options_.known_hosts.empty()) files.push_back("~/.ssh/known_hosts");
    files.push_back(dir_ + "/bastion_known_hosts");
  }
  for (const auto& f : files) known_hosts_arg_ += (known_hosts_arg_.empty() ? "" : " ") + f;
  return Ok();
}

std::vector<std::string> SshTransport::Common() const {
  std::vector<std::string> a{options_.ssh_bin};
  if (options_.config_file == "none") {
    a.insert(a.end(), {"-F", "/dev/null"});
  } else if (!options_.config_file.empty()) {
    a.insert(a.end(), {"-F", options_.config_file});
  }
  const long ct = std::max<long>(1, static_cast<long>((options_.connect_timeout.count() + 999) / 1000));
  a.insert(a.end(), {"-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "CheckHostIP=no", "-o",
                     "UpdateHostKeys=no", "-o", "ConnectTimeout=" + std::to_string(ct), "-o", "ServerAliveInterval=5",
                     "-o", "ServerAliveCountMax=3", "-o", "ForwardAgent=no", "-o", "PermitLocalCommand=no", "-o",
                     "RequestTTY=no"});
  if (!known_hosts_arg_.empty()) a.insert(a.end(), {"-o", "UserKnownHostsFile=" + known_hosts_arg_});
  if (!options_.identity_file.empty()) {
    a.insert(a.end(), {"-o", "IdentitiesOnly=yes", "-i", options_.identity_file});
  }
  return a;
}

std::vector<std::string> SshTransport::Target(const SshEndpoint& e) const {
  std::vector<std::string> a{"-p", std::to_string(e.port)};
  if (!e.user.empty()) a.insert(a.end(), {"-l", e.user});
  return a;
}

std::vector<std::string> SshTransport::Mux(const std::string& ctl, const SshEndpoint& e,
                                           const std::vector<std::string>& opts) const {
  std::vector<std::string> a = Common();
  a.insert(a.end(), opts.begin(), opts.end());
  a.insert(a.end(), {"-S", ctl});
  auto t = Target(e);
  a.insert(a.end(), t.begin(), t.end());
  a.push_back(e.address);
  return a;
}

Result<ExitStatus> SshTransport::RunMuxed(const std::string& ctl, const SshEndpoint& e, const CommandSpec& spec) {
  // No ProxyCommand here: should the master be gone, this client must fail
  // (and Run report the connection lost), not quietly open a new connection.
  std::optional<Millis> timeout;
  if (spec.timeout) timeout = *spec.timeout + ssh::kRemoteKillGrace + ssh::kLocalBackstop;
  if (options_.native_mux) return ssh::MuxRun(ctl, ssh::RemoteCommandLine(spec), spec, timeout);
  std::vector<std::string> a = Mux(ctl, e, {"-o", "ControlMaster=no", "-o", "LogLevel=ERROR"});
  if (spec.stdin_data.empty() && spec.stdin_path.empty()) a.insert(a.end() - 1, "-n");
  a.push_back(ssh::RemoteCommandLine(spec));
  CommandSpec local = SshSpec(std::move(a), timeout);
  local.stdin_data = spec.stdin_data;
  local.stdin_path = spec.stdin_path;
  local.on_line = spec.on_line;
  return options_.processes->Run(local);
}

std::string SshTransport::ProxyCommand(const std::string& log) const {
  // Every host master jumps through the bastion's own master (ssh -W over its
  // mux): one TCP connection and one authentication to the bastion in all.
  std::string s;
  for (const auto& arg : Common()) s += (s.empty() ? "" : " ") + ShellQuote(arg);
  s += " -o ControlMaster=no -S " + ShellQuote(dir_ + "/b") + " -o LogLevel=ERROR";
  for (const auto& arg : Target(*options_.bastion)) s += " " + ShellQuote(arg);
  s += " -W '[%h]:%p' " + ShellQuote(options_.bastion->address);
  // Its stderr must not be the caller's pipe: the master (and so this
  // process) outlives the command that started it.
  s += " 2>>" + ShellQuote(log);
  return s;
}

SshEndpoint SshTransport::EndpointOf(const HostRef& host) const {
  SshEndpoint e;
  e.address = host.address;
  e.port = host.ssh_port ? host.ssh_port : 22;
  e.user = host.ssh_user.empty() ? options_.default_user : host.ssh_user;
  return e;
}

Status SshTransport::StartMaster(const std::string& who, const SshEndpoint& e, const std::string& ctl, bool jump) {
  const long persist = std::max<long>(1, static_cast<long>(options_.persist.count() / 1000));
  // -v writes the server's key fingerprint to the log, so a key problem can
  // name it; -E keeps all of it out of our pipes (the master lives on after -f).
  const std::string log = ctl + ".log";
  std::vector<std::string> opts{"-v", "-E", log, "-M", "-N", "-f", "-o", "ControlPersist=" + std::to_string(persist)};
  if (jump) opts.insert(opts.end(), {"-o", "ProxyCommand=" + ProxyCommand(log)});
  std::vector<std::string> a = Mux(ctl, e, opts);
  // The master outlives this call, and so may a ProxyJump child of it: their
  // stdout and stderr go to the log, never to our pipes.
  a.insert(a.begin(), {"/bin/sh", "-c", "exec \"$@\" >/dev/null 2>>\"$0\"", log});
  auto r = options_.processes->Run(SshSpec(a, options_.connect_timeout + Millis(5000)));
  if (!r) return Err(r.error().Wrap("ssh to " + who));
  // The log is read only on failure; a live master keeps writing debug
  // lines to the unlinked file, i.e. to nothing.
  const std::string text = r->ok() ? std::string() : ReadTextFile(log).value_or("");
  ::unlink(log.c_str());
  if (r->ok()) return Ok();
  if (auto k = ssh::ParseHostKeyProblem(text)) {
    return Err(ErrorCode::kInvalidArgument, k->Describe(who));
  }
  std::string why = ssh::SshErrorText(text);
  if (why.empty()) why = r->Describe();
  return Err(ErrorCode::kUnavailable, "cannot connect to " + who + " (" + Display(e) + "): " + why);
}

void SshTransport::ExitMaster(const std::string& ctl, const SshEndpoint& e) {
  if (options_.native_mux) {
    (void)ssh::MuxTerminate(ctl, Millis(5000));
    return;
  }
  (void)options_.processes->Run(SshSpec(Mux(ctl, e, {"-o", "LogLevel=QUIET", "-O", "exit"}), Millis(5000)));
}

void SshTransport::ExitConn(const Conn& c) {
  ExitMaster(c.ctl, c.endpoint);
  for (const auto& [remote, local] : c.sockets) ::unlink(local.c_str());
}

bool SshTransport::MasterAlive(const std::string& ctl, const SshEndpoint& e) {
  if (options_.native_mux) return ssh::MuxAliveCheck(ctl, Millis(5000)).has_value();
  auto r = options_.processes->Run(SshSpec(Mux(ctl, e, {"-o", "LogLevel=QUIET", "-O", "check"}), Millis(5000)));
  return r && r->ok();
}

Status SshTransport::EnsureBastion() {
  std::unique_lock lk(mu_);
  SP_TRY(EnsureDir());
  if (!options_.bastion) return Ok();
  cv_.wait(lk, [&] { return !bastion_connecting_; });
  if (bastion_up_) return Ok();
  bastion_connecting_ = true;
  lk.unlock();
  const SshEndpoint& b = *options_.bastion;
  Status s = StartMaster("bastion " + b.address, b, dir_ + "/b", false);
  if (s) {
    // sshd sets TCP_NODELAY on a connection only once a session runs a
    // command there; a bastion connection carrying only forwards would then
    // stall ~40 ms per exchange (Nagle against the office's delayed ACK; see
    // docs/benchmarks.md). One `true` turns it on for everything after.
    CommandSpec nodelay;
    nodelay.argv = {"true"};
    nodelay.timeout = Millis(5000);
    (void)RunMuxed(dir_ + "/b", b, nodelay);
  }
  lk.lock();
  bastion_connecting_ = false;
  if (s) {
    bastion_up_ = true;
    ++stats_.bastion_connects;
  }
  cv_.notify_all();
  return s;
}

Result<SshTransport::Conn*> SshTransport::Acquire(const HostRef& host) {
  SP_TRY(EnsureBastion());
  const SshEndpoint e = EndpointOf(host);
  const std::string key = Key(e);
  std::unique_lock lk(mu_);
  for (;;) {
    auto it = conns_.find(key);
    if (it != conns_.end()) {
      Conn* c = it->second.get();
      if (!c->up) {  // Another thread is connecting it.
        cv_.wait(lk);
        continue;
      }
      ++c->busy;
      c->last_used = ++tick_;
      return c;
    }
    if (static_cast<int>(conns_.size()) < options_.max_hosts) break;
    // Full: evict the least recently used idle host, else wait for one.
    Conn* lru = nullptr;
    for (const auto& [k, c] : conns_) {
      if (c->up && c->busy == 0 && (!lru || c->last_used < lru->last_used)) lru = c.get();
    }
    if (!lru) {
      cv_.wait(lk);
      continue;
    }
    std::unique_ptr<Conn> victim = std::move(conns_[Key(lru->endpoint)]);
    conns_.erase(Key(victim->endpoint));
    lk.unlock();
    ExitConn(*victim);
    lk.lock();
    cv_.notify_all();
  }
  auto c = std::make_unique<Conn>();
  c->endpoint = e;
  c->name = host.name.empty() ? host.address : host.name;
  c->ctl = dir_ + "/h" + std::to_string(++next_id_);
  Conn* raw = c.get();
  conns_[key] = std::move(c);
  stats_.max_connected = std::max(stats_.max_connected, static_cast<int>(conns_.size()));
  lk.unlock();
  Status s = StartMaster("host " + raw->name, e, raw->ctl, options_.bastion.has_value());
  lk.lock();
  if (!s) {
    conns_.erase(key);
    cv_.notify_all();
    if (options_.bastion) return Err(s.error().Wrap("through bastion " + options_.bastion->address));
    return Err(s.error());
  }
  raw->up = true;
  raw->busy = 1;
  raw->last_used = ++tick_;
  ++stats_.host_connects;
  cv_.notify_all();
  return raw;
}

void SshTransport::Done(Conn* c, bool broken) {
  std::unique_ptr<Conn> dead;
  {
    std::lock_guard lk(mu_);
    --c->busy;
    if (broken && c->busy == 0) {
      auto it = conns_.find(Key(c->endpoint));
      if (it != conns_.end() && it->second.get() == c) {
        dead = std::move(it->second);
        conns_.erase(it);
      }
    }
    cv_.notify_all();
  }
  if (dead) ExitConn(*dead);
}

Result<SshTransport::Conn*> SshTransport::AcquireFenced(const HostRef& host) {
  SP_ASSIGN_OR_RETURN(Conn * c, Acquire(host));
  if (options_.before_command) {
    if (auto ok = options_.before_command(); !ok) {
      Done(c, false);
      return Err(ok.error().Wrap("host " + c->name));
    }
  }
  return c;
}

Result<ExitStatus> SshTransport::Run(const HostRef& host, const CommandSpec& spec) {
  if (spec.argv.empty()) return Err(ErrorCode::kInvalidArgument, "empty command");
  SP_ASSIGN_OR_RETURN(Conn * c, AcquireFenced(host));
  const int64_t start = options_.clock->MonotonicMs();
  auto r = RunMuxed(c->ctl, c->endpoint, spec);
  {
    std::lock_guard lk(mu_);
    ++stats_.commands;
  }
  // A master that is gone shows as exit 255 from an ssh client, or as a
  // control socket that does not answer the native client.
  const bool maybe_lost = r ? (r->exit_code == 255 && r->signal == 0 && !r->timed_out)
                            : r.error().code == ErrorCode::kUnavailable;
  if (maybe_lost && !MasterAlive(c->ctl, c->endpoint)) {
    std::string why = r ? ssh::SshErrorText(r->err) : r.error().message;
    const std::string name = c->name;
    Done(c, true);
    return Err(ErrorCode::kUnavailable, "connection to host " + name + " lost" + (why.empty() ? "" : ": " + why));
  }
  if (!r) {
    Done(c, false);
    return Err(r.error().Wrap("ssh to host " + c->name));
  }
  Done(c, false);
  const Millis elapsed(options_.clock->MonotonicMs() - start);
  if (spec.timeout && (r->timed_out || (r->exit_code == ssh::kRemoteTimeoutExit && elapsed >= *spec.timeout))) {
    r->timed_out = true;
  }
  return r;
}

Status SshTransport::Upload(const HostRef& host, const std::string& path, int mode, CommandSpec input,
                            const std::string& what) {
  // mktemp creates the temporary file 0600, so the content is never readable
  // by others, even for a moment; then chmod and an atomic rename.
  static const char* kScript =
      "set -e; d=$(dirname \"$1\"); t=$(mktemp \"$d/.sp-upload.XXXXXX\"); trap 'rm -f \"$t\"' EXIT; "
      "cat >\"$t\"; chmod \"$2\" \"$t\"; mv -f \"$t\" \"$1\"; trap - EXIT";
  input.argv = {"/bin/sh", "-c", kScript, "sp-upload", path, OctalMode(mode)};
  SP_ASSIGN_OR_RETURN(ExitStatus st, Run(host, input));
  if (!st.ok()) return Err(ErrorCode::kInternal, what + ": " + st.Describe());
  return Ok();
}

Status SshTransport::WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) {
  CommandSpec in;
  in.stdin_data = content;
  if (content.empty()) in.stdin_path = "/dev/null";
  in.timeout = Millis(60'000);
  return Upload(host, path, mode, std::move(in), "write " + path + " on " + host.name);
}

Status SshTransport::CopyFile(const HostRef& host, const std::string& local_path, const std::string& remote_path,
                              int mode) {
  CommandSpec in;
  in.stdin_path = local_path;  // Streamed by ssh, never loaded whole.
  in.timeout = Millis(600'000);
  return Upload(host, remote_path, mode, std::move(in),
                "copy " + local_path + " to " + host.name + ":" + remote_path);
}

Status SshTransport::Check(const HostRef& host) {
  CommandSpec s;
  s.argv = {"true"};
  s.timeout = options_.connect_timeout;
  SP_ASSIGN_OR_RETURN(ExitStatus st, Run(host, s));
  if (!st.ok()) return Err(ErrorCode::kUnavailable, "host " + host.name + " answered `true` with " + st.Describe());
  return Ok();
}

void SshTransport::Release(const HostRef& host) {
  std::unique_ptr<Conn> c;
  {
    std::lock_guard lk(mu_);
    auto it = conns_.find(Key(EndpointOf(host)));
    if (it == conns_.end() || !it->second->up || it->second->busy > 0) return;
    c = std::move(it->second);
    conns_.erase(it);
    cv_.notify_all();
  }
  ExitConn(*c);
}

Result<std::string> SshTransport::UnixSocket(const HostRef& host, const std::string& remote_path) {
  if (remote_path.empty() || remote_path[0] != '/' || !SafePath(remote_path)) {
    return Err(ErrorCode::kInvalidArgument, "cannot forward to socket '" + remote_path + "'");
  }
  SP_ASSIGN_OR_RETURN(Conn * c, AcquireFenced(host));
  std::string path;
  {
    std::lock_guard lk(mu_);
    if (auto it = c->sockets.find(remote_path); it != c->sockets.end()) path = it->second;
  }
  if (!path.empty()) {
    Done(c, false);
    return path;
  }
  // Two threads asking at once for the same host each add a forward; the
  // second is harmless (the map keeps one, the master drops both on exit).
  {
    std::lock_guard lk(mu_);
    path = dir_ + "/u" + std::to_string(++next_id_) + ".sock";
  }
  if (Status st = AddForward(c->ctl, c->endpoint, path, remote_path, "host " + c->name); !st) {
    Done(c, false);
    return Err(st.error());
  }
  {
    std::lock_guard lk(mu_);
    c->sockets.emplace(remote_path, path);
  }
  Done(c, false);
  return path;
}

Result<ExitStatus> SshTransport::RunOnBastion(const CommandSpec& spec) {
  if (!options_.bastion) return Err(ErrorCode::kInvalidArgument, "no bastion configured");
  SP_TRY(EnsureBastion());
  return RunMuxed(dir_ + "/b", *options_.bastion, spec);
}

Status SshTransport::AddForward(const std::string& ctl, const SshEndpoint& e, const std::string& local,
                                const std::string& target, const std::string& who) {
  auto r = options_.processes->Run(
      SshSpec(Mux(ctl, e, {"-o", "LogLevel=ERROR", "-O", "forward", "-L", local + ":" + target}), Millis(10'000)));
  if (!r) return Err(r.error().Wrap("forward to " + target + " through " + who));
  if (!r->ok()) return Err(ErrorCode::kUnavailable, who + " refused a forward to " + target + ": " + ssh::SshErrorText(r->err));
  return Ok();
}

Result<std::string> SshTransport::Forward(const std::string& address, int port) {
  if (!options_.bastion) return std::string();
  const std::string key = address + ":" + std::to_string(port);
  if (!IsValidAddress(address) || port < 1 || port > 65535) {
    return Err(ErrorCode::kInvalidArgument, "cannot forward to '" + key + "'");
  }
  SP_TRY(EnsureBastion());
  // One forward per target even when threads ask at once (they are few).
  std::lock_guard forward_lock(forward_mu_);
  std::string path;
  {
    std::lock_guard lk(mu_);
    auto it = forwards_.find(key);
    if (it != forwards_.end()) return it->second;
    path = dir_ + "/f" + std::to_string(++next_id_) + ".sock";
  }
  SP_TRY(AddForward(dir_ + "/b", *options_.bastion, path, key, "bastion " + options_.bastion->address));
  std::lock_guard lk(mu_);
  forwards_[key] = path;
  return path;
}

void SshTransport::Close() {
  std::map<std::string, std::unique_ptr<Conn>> conns;
  bool bastion;
  std::string dir;
  {
    std::lock_guard lk(mu_);
    conns.swap(conns_);
    bastion = bastion_up_;
    bastion_up_ = false;
    forwards_.clear();
    dir.swap(dir_);
    known_hosts_arg_.clear();
  }
  for (auto& [k, c] : conns) {
    if (c->up) ExitConn(*c);
  }
  if (bastion) ExitMaster(dir + "/b", *options_.bastion);
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
}

SshTransport::Stats SshTransport::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

}  // namespace sp
