// SshTransport: reaches hosts with OpenSSH, through a bastion when there is one.
//
// Chosen by measurement (docs/benchmarks.md, "SSH transport"): OpenSSH with
// one ControlMaster per host, the host masters jumping through one shared
// bastion master (`ssh -W` over the bastion's mux), so a command on a
// connected host costs one mux round trip (~3 ms median in the lab, over the
// control socket without an ssh client process: mux_client.h), host
// keys, ~/.ssh/config, ssh-agent and every key type behave exactly as the
// user's own `ssh`, and no key material passes through Sallyport.
//
// - Host keys are always verified (StrictHostKeyChecking=yes) against the
//   known_hosts file(s); an unknown or changed key is an error naming the host
//   and the fingerprint it offered. There is no accept-anything mode.
// - A host is connected on first use and kept for the batch; Release() closes
//   it. At most max_hosts host connections are open at once: a new host waits
//   for (or evicts) an idle one.
// - Commands run with stdin from /dev/null (or the given data/file), a fixed
//   PATH, optional `cd`, and a remote `timeout` so a deadline kills the remote
//   process too, not only the local client. The remote login shell must be a
//   POSIX shell; its start-up files are not relied on.
// - Forward() gives a local unix socket (in a private 0700 directory) that
//   reaches address:port from the bastion: the HAProxy runtime API, health
//   checks and the registry probe use it.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace sp {

struct SshEndpoint {
  std::string address;
  int port = 22;
  std::string user;  // Empty: ssh's own default (config, then local user).
};

struct SshOptions {
  std::string ssh_bin = "ssh";
  std::optional<SshEndpoint> bastion;  // None: hosts are reached directly.
  std::string bastion_host_key;        // Optional known_hosts line for the bastion (inventory).
  std::string identity_file;           // Empty: ssh-agent / the config's IdentityFile.
  std::string known_hosts;             // Empty: ssh's default (~/.ssh/known_hosts).
  std::string config_file;             // Empty: ~/.ssh/config; "none": no config file.
  std::string default_user;            // For hosts without ssh_user.
  Millis connect_timeout{10'000};
  int max_hosts = 16;                  // Host connections open at once.
  Millis persist{300'000};             // A master orphaned by a crash exits after this idle time.
  // Commands, alive checks and exits speak the master's mux protocol over its
  // control socket (mux_client.h) instead of starting an `ssh -S` client per
  // command; false keeps the client processes (bench comparison, fallback).
  bool native_mux = true;
  // Checked after the host's connection is up and right before each remote
  // command is sent; an error refuses the command (an agent's lease fence:
  // connecting can take long, and the lease may lapse meanwhile).
  std::function<Status()> before_command;
  // The seams: ssh client processes, and the clock that times commands.
  ProcessRunner* processes = &SystemProcesses();
  Clock* clock = &RealClock::Instance();
};

class SshTransport final : public Transport {
 public:
  explicit SshTransport(SshOptions options);
  ~SshTransport() override;
  SshTransport(const SshTransport&) = delete;
  SshTransport& operator=(const SshTransport&) = delete;

  Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) override;
  Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) override;
  Status CopyFile(const HostRef& host, const std::string& local_path, const std::string& remote_path,
                  int mode) override;
  Status Check(const HostRef& host) override;
  void Release(const HostRef& host) override;
  // A forward (`-O forward -L local:remote`) on the host's own master, in the
  // private control directory; it lives as long as the host's connection.
  // Needs the host's sshd to allow stream-local forwarding (OpenSSH's default,
  // separate from AllowTcpForwarding).
  Result<std::string> UnixSocket(const HostRef& host, const std::string& remote_path) override;

  // Runs a command on the bastion itself (its shared connection).
  Result<ExitStatus> RunOnBastion(const CommandSpec& spec);

  // A local unix socket reaching address:port as the bastion sees it. Empty
  // string when there is no bastion (connect directly).
  Result<std::string> Forward(const std::string& address, int port);
  // Closes every connection (the bastion last) and removes the control directory.
  void Close();

  struct Stats {
    int host_connects = 0;     // Host masters started.
    int bastion_connects = 0;  // Bastion masters started.
    int max_connected = 0;     // Most host masters open at once.
    int commands = 0;
  };
  Stats stats() const;

 private:
  struct Conn;
  std::vector<std::string> Common() const;
  std::vector<std::string> Target(const SshEndpoint& e) const;
  // ssh + common options + `opts` + -S ctl + the endpoint: a client of a master.
  std::vector<std::string> Mux(const std::string& ctl, const SshEndpoint& e,
                               const std::vector<std::string>& opts) const;
  Result<ExitStatus> RunMuxed(const std::string& ctl, const SshEndpoint& e, const CommandSpec& spec);
  Status Upload(const HostRef& host, const std::string& path, int mode, CommandSpec input, const std::string& what);
  std::string ProxyCommand(const std::string& log) const;
  SshEndpoint EndpointOf(const HostRef& host) const;
  Status EnsureDir();
  Status EnsureBastion();
  Result<Conn*> Acquire(const HostRef& host);
  // Acquire, then the before_command fence (the connection is let go if it refuses).
  Result<Conn*> AcquireFenced(const HostRef& host);
  // `-O forward -L local:target` on the master at `ctl`; `who` names it in errors.
  Status AddForward(const std::string& ctl, const SshEndpoint& e, const std::string& local, const std::string& target,
                    const std::string& who);
  void Done(Conn* c, bool broken);
  Status StartMaster(const std::string& who, const SshEndpoint& e, const std::string& ctl, bool jump);
  void ExitMaster(const std::string& ctl, const SshEndpoint& e);
  // Ends a host's master and removes its forwards' socket files.
  void ExitConn(const Conn& c);
  bool MasterAlive(const std::string& ctl, const SshEndpoint& e);

  SshOptions options_;
  mutable std::mutex mu_;
  std::mutex forward_mu_;  // Serialises Forward() (taken before mu_).
  std::condition_variable cv_;
  std::string dir_;
  std::string known_hosts_arg_;
  bool bastion_up_ = false;
  bool bastion_connecting_ = false;
  std::map<std::string, std::unique_ptr<Conn>> conns_;  // by user@address:port
  std::map<std::string, std::string> forwards_;         // "address:port" -> socket path
  int next_id_ = 0;
  int64_t tick_ = 0;
  Stats stats_;
};

}  // namespace sp
