// Transport: how Sallyport reaches a host to run commands and copy files.
// Local (this issue) runs on this machine; SSH (next issue) reaches hosts
// through a bastion. Runtimes and the smoke step use only this interface, so
// they behave the same over either.
#pragma once

#include <string>

#include "core/error.h"
#include "core/subprocess.h"

namespace sp {

// Where a host is and how to log in to it.
struct HostRef {
  std::string name;      // Inventory name (used in messages).
  std::string address;   // IP or DNS name.
  std::string ssh_user;  // Empty: transport default.
  int ssh_port = 22;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Runs argv on `host` (stdin from spec.stdin_data, else /dev/null). An Error
  // means the command could not be run at all (host unreachable); a command
  // that ran and failed is an ExitStatus with !ok().
  virtual Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) = 0;
  // Writes `content` to `path` on the host atomically with `mode` (e.g. 0600).
  virtual Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) = 0;
  // Copies a local file to `remote_path` on the host with `mode`.
  virtual Status CopyFile(const HostRef& host, const std::string& local_path, const std::string& remote_path,
                          int mode) = 0;
  // Succeeds when the host can be reached (preflight).
  virtual Status Check(const HostRef& host) = 0;
  // A local unix socket that reaches the unix socket `remote_path` on the host
  // (e.g. the Docker Engine API), valid until Release(host). Call it right
  // before each use: it re-opens what a Release or an eviction closed, and it
  // is where a lease fence refuses work (as before a command).
  // kUnavailable where the transport cannot do it.
  virtual Result<std::string> UnixSocket(const HostRef& host, const std::string& remote_path) {
    return Err(ErrorCode::kUnavailable, "this transport cannot reach " + remote_path + " on " + host.name);
  }
  // The caller is done with this host for now (end of batch): close what is open.
  virtual void Release(const HostRef& host) {}
};

}  // namespace sp
