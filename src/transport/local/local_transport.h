// LocalTransport: the host is this machine. Commands run by argv through
// sp::RunCommand; files are written in place. The HostRef's address and login
// are informational only (used in error messages).
#pragma once

#include <string>

#include "transport/transport.h"

namespace sp {

class LocalTransport final : public Transport {
 public:
  explicit LocalTransport(ProcessRunner& processes = SystemProcesses()) : processes_(processes) {}
  // Runs spec.argv here. Error only when the program could not be started.
  Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) override;
  // Writes a temp file in the same directory, fchmods it to `mode` (umask does
  // not apply), fsyncs and renames it over `path`. The parent directory must
  // exist (kNotFound otherwise); no temp file is left behind on failure.
  Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) override;
  // Same contract as WriteFile, with the content read from `local_path`
  // (kNotFound if it does not exist).
  Status CopyFile(const HostRef& host, const std::string& local_path, const std::string& remote_path,
                  int mode) override;
  // Always reachable.
  Status Check(const HostRef& host) override;
  // The path itself: this machine is the host.
  Result<std::string> UnixSocket(const HostRef& host, const std::string& remote_path) override;

 private:
  ProcessRunner& processes_;
};

}  // namespace sp
