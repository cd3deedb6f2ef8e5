#include "support/test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "core/subprocess.h"


namespace sp::test {

int FreePortOnce();

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int FreePort() {
  // A port handed out earlier may not be bound yet: never hand it out twice.
  static std::mutex mu;
  static std::set<int> given;
  std::lock_guard l(mu);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int port = FreePortOnce();
    if (given.insert(port).second) return port;
  }
  return FreePortOnce();
}

int FreePortOnce() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout, std::chrono::milliseconds every) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

int LineOf(const std::string& text, const std::string& needle, int nth) {
  size_t pos = std::string::npos;
  for (int i = 0; i < nth; ++i) {
    pos = text.find(needle, pos == std::string::npos ? 0 : pos + 1);
    EXPECT_NE(pos, std::string::npos) << needle;
    if (pos == std::string::npos) return -1;
  }
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int64_t ProcStatusKb(int pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 && line[field.size()] == ':') {
      return std::atoll(line.c_str() + field.size() + 1);
    }
  }
  return -1;
}

void WriteFile(const std::string& path, const std::string& content, int mode) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

namespace {

// A socket bound to src on a port below the kernel's ephemeral range
// (32768-60999 here): thousands of siege connections on ephemeral ports
// took a port FreePort had just handed to an app, whose bind then failed
// ("Address already in use"). -1 when none of 64 tries binds.
int BindBelowEphemeral(const std::string& src) {
  static std::atomic<int> next{0};
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, src.c_str(), &from.sin_addr);
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    from.sin_port = htons(static_cast<uint16_t>(10'000 + next++ % 22'000));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0) return fd;
    ::close(fd);
  }
  return -1;
}

}  // namespace

int DialFrom(const std::string& src, int port, int timeout_ms, bool nonblocking) {
  const int fd = BindBelowEphemeral(src);
  if (fd < 0) return -1;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (::poll(&p, 1, timeout_ms) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    ::close(fd);
    return -1;
  }
  if (!nonblocking) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

bool PortOpen(int port, const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

int Run(const std::vector<std::string>& argv, std::string* out, const std::string& stdin_data) {
  CommandSpec spec;
  spec.argv = argv;
  spec.stdin_data = stdin_data;
  spec.timeout = std::chrono::milliseconds(300'000);
  auto r = SystemProcesses().Run(spec);
  if (!r) {
    if (out) *out = r.error().message;
    return -1;
  }
  if (out) *out = r->out + r->err;
  return r->signal ? 128 + r->signal : r->exit_code;
}

std::string FindProgram(const std::string& name, const std::vector<std::string>& extra) {
  for (const auto& c : extra) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  p += ":/usr/sbin:/sbin";
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string c = dir + "/" + name;
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

Daemon::Daemon(const std::vector<std::string>& argv, const std::string& log_path,
               const std::map<std::string, std::string>& env)
    : log_path_(log_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  std::vector<std::string> env_store = MergedEnviron(env);
  std::vector<char*> envp;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = ::posix_spawnp(&pid_, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + argv[0]);
  }
}

Daemon::~Daemon() { Stop(); }

Daemon::Daemon(Daemon&& o) noexcept : pid_(o.pid_), reaped_(o.reaped_), log_path_(std::move(o.log_path_)) {
  o.pid_ = -1;
}
Daemon& Daemon::operator=(Daemon&& o) noexcept {
  if (this != &o) {
    Stop();
    pid_ = o.pid_;
    reaped_ = o.reaped_;
    log_path_ = std::move(o.log_path_);
    o.pid_ = -1;
  }
  return *this;
}

bool Daemon::Alive() const {
  if (pid_ <= 0 || reaped_) return false;
  int st;
  if (::waitpid(pid_, &st, WNOHANG) == 0) return true;
  reaped_ = true;
  exit_code_ = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
  return false;
}

void Daemon::Signal(int sig) const {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

void Daemon::SignalGroup(int sig) const {
  if (pid_ > 0 && !reaped_) ::kill(-pid_, sig);
}

void Daemon::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  if (reaped_) {  // Already exited and reaped; its pid (and group id) may belong to someone else now.
    pid_ = -1;
    return;
  }
  ::kill(-pid_, SIGCONT);
  ::kill(-pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int st;
  while (::waitpid(pid_, &st, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(-pid_, SIGKILL);  // Anything left in its group.
  pid_ = -1;
}

std::string BuildBinary(const std::string& name) { return std::string(SP_BUILD_BIN_DIR) + "/" + name; }

StartWait WaitForStart(const Daemon& daemon, const std::function<bool()>& ready, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds every) {
  bool died = false;
  const bool done = WaitFor(
      [&] {
        died = !daemon.Alive();
        return died || ready();
      },
      timeout, every);
  if (died) return StartWait::kDied;
  return done ? StartWait::kReady : StartWait::kTimeout;
}

}  // namespace sp::test
