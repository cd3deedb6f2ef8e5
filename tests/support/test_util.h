// Helpers shared by unit and integration tests: temp dirs, free ports,
// polling with a deadline (never sleeping as synchronisation), and
// background daemons that are always ended by PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sp::test {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sp-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free when asked (bound then released).
int FreePort();

// Polls `cond` every `every` until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
             std::chrono::milliseconds every = std::chrono::milliseconds(20));

// 1-based line of the `nth` occurrence of `needle` in `text` (-1 and a test
// failure if there is none): where a parser's error should point.
int LineOf(const std::string& text, const std::string& needle, int nth = 1);

std::string ReadFile(const std::string& path);
// The value at fraction p (0.5, 0.99, 1 for the largest) of samples: the
// one at index p * n of the sorted samples, the last when that is past it; 0 for none.
double Percentile(std::vector<double> samples, double p);
// A "<field>: N kB" line of /proc/PID/status (VmRSS, VmHWM...), in KiB; -1 if absent.
int64_t ProcStatusKb(int pid, const std::string& field);
void WriteFile(const std::string& path, const std::string& content, int mode = 0644);
bool FileExists(const std::string& path);
// A TCP connection from local address `src` (e.g. "127.0.0.7": a client of
// its own) to 127.0.0.1:port, made within timeout_ms, left non-blocking when
// asked; -1 when it could not be made. Its local port is below the
// ephemeral range, so it never takes a port FreePort hands out.
int DialFrom(const std::string& src, int port, int timeout_ms = 2000, bool nonblocking = false);
// True if something accepts TCP connections on 127.0.0.1:port.
bool PortOpen(int port, const std::string& host = "127.0.0.1");
// Runs argv to completion; returns exit code (-1 if it could not start); output in *out.
int Run(const std::vector<std::string>& argv, std::string* out = nullptr, const std::string& stdin_data = "");
// Finds a program in PATH or the given absolute candidates; empty if missing.
std::string FindProgram(const std::string& name, const std::vector<std::string>& extra = {});

// A background process started by the test, in its own process group, with
// stdout+stderr appended to `log_path`. The destructor SIGTERMs the group,
// waits up to 5 s, then SIGKILLs it. Only this PID's group is ever signalled.
class Daemon {
 public:
  Daemon() = default;
  Daemon(const std::vector<std::string>& argv, const std::string& log_path,
         const std::map<std::string, std::string>& env = {});
  ~Daemon();
  Daemon(Daemon&& o) noexcept;
  Daemon& operator=(Daemon&& o) noexcept;
  pid_t pid() const { return pid_; }
  bool Alive() const;
  // Once !Alive(): its exit code (128 + N when killed by signal N).
  int exit_code() const { return exit_code_; }
  void Signal(int sig) const;
  void SignalGroup(int sig) const;  // Its whole process group, as a terminal's Ctrl-C.
  // SIGTERM, wait (up to grace), SIGKILL; returns after the process is reaped.
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  mutable bool reaped_ = false;  // Once reaped, the pid may be reused: never signal it again.
  mutable int exit_code_ = -1;
  std::string log_path_;
};

// Waits for a daemon just started: until `ready()` is true, the daemon exits,
// or `timeout` passes (polling every `every`).
enum class StartWait { kReady, kDied, kTimeout };
StartWait WaitForStart(const Daemon& daemon, const std::function<bool()>& ready, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds every = std::chrono::milliseconds(10));

// Path of a binary built by this CMake tree (bin dir comes from SP_BUILD_BIN_DIR
// compiled in); e.g. BuildBinary("sallyport").
std::string BuildBinary(const std::string& name);

}  // namespace sp::test
