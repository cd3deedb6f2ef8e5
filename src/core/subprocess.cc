#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/text.h"

extern char** environ;

namespace sp {

std::string ExitStatus::Describe() const {
  std::string tail = LastLines(err.empty() ? out : err, 5);
  std::string what;
  if (timed_out) what = "timed out";
  else if (canceled) what = "canceled";
  else if (signal != 0) what = "killed by signal " + std::to_string(signal);
  else what = "exit " + std::to_string(exit_code);
  return tail.empty() ? what : what + ": " + tail;
}

std::string FormatArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_not_of(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./:=@%+,") == std::string::npos;
    if (plain) { out += a; continue; }
    out += '\'';
    for (char c : a) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() { Close(0); Close(1); }
  void Close(int i) { if (fd[i] >= 0) { ::close(fd[i]); fd[i] = -1; } }
};

int64_t NowMs() { return RealClock::Instance().MonotonicMs(); }

}  // namespace

void EmitLines(std::string& pending, bool is_stderr, const LineCallback& on_line, bool flush) {
  if (!on_line) return;
  size_t start = 0;
  while (true) {
    const size_t nl = pending.find('\n', start);
    const size_t end = nl == std::string::npos ? pending.size() : nl;
    if (end - start > kMaxLineBytes) {  // A piece of a long line: bounded memory, whatever a step prints.
      size_t cut = start + kMaxLineBytes;
      for (int back = 0; back < 3 && (static_cast<unsigned char>(pending[cut]) & 0xC0) == 0x80; ++back) --cut;
      on_line(is_stderr, pending.substr(start, cut - start));
      start = cut;
      continue;
    }
    if (nl == std::string::npos) break;
    on_line(is_stderr, pending.substr(start, nl - start));
    start = nl + 1;
  }
  pending.erase(0, start);
  if (flush && !pending.empty()) {
    on_line(is_stderr, pending);
    pending.clear();
  }
}

std::vector<std::string> MergedEnviron(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && overrides.count(std::string(kv.substr(0, eq)))) continue;
    out.emplace_back(kv);
  }
  for (const auto& [k, v] : overrides) out.push_back(k + "=" + v);
  return out;
}

void IgnoreSigpipe() {
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
}

namespace {

// The spawn's file actions and attributes: stdin from the data pipe, a file
// or /dev/null; stdout and stderr to their pipes; no other descriptor; its own
// process group with default signal handling.
class SpawnSetup {
 public:
  SpawnSetup(const CommandSpec& spec, Pipe& in, Pipe& out, Pipe& err) {
    posix_spawn_file_actions_init(&fa_);
    posix_spawnattr_init(&attr_);
    sigset_t none, all_default;
    sigemptyset(&none);
    sigemptyset(&all_default);
    sigaddset(&all_default, SIGPIPE);
    sigaddset(&all_default, SIGTERM);
    sigaddset(&all_default, SIGINT);
    posix_spawnattr_setsigmask(&attr_, &none);
    posix_spawnattr_setsigdefault(&attr_, &all_default);
    if (spec.interactive) {  // The terminal's descriptors, our process group.
      posix_spawn_file_actions_addclosefrom_np(&fa_, 3);
      posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
      return;
    }
    if (spec.stdin_data.empty()) {
      posix_spawn_file_actions_addopen(&fa_, 0, spec.stdin_path.empty() ? "/dev/null" : spec.stdin_path.c_str(),
                                       O_RDONLY, 0);
    } else {
      posix_spawn_file_actions_adddup2(&fa_, in.fd[0], 0);
    }
    posix_spawn_file_actions_adddup2(&fa_, out.fd[1], 1);
    posix_spawn_file_actions_adddup2(&fa_, err.fd[1], 2);
    if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa_, spec.cwd.c_str());
    // Only the standard descriptors cross: whatever a library opened without
    // close-on-exec (the HTTP server's sockets, a log) stays ours.
    posix_spawn_file_actions_addclosefrom_np(&fa_, 3);
    posix_spawnattr_setpgroup(&attr_, 0);
    posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&fa_);
    posix_spawnattr_destroy(&attr_);
  }
  // posix_spawnp's error number (0: started, *pid set).
  int Spawn(const CommandSpec& spec, pid_t* pid) {
    std::vector<std::string> env_store;
    std::vector<char*> envp;
    const bool own = !spec.env.empty() || !spec.inherit_env;
    if (own) {
      if (spec.inherit_env) {
        env_store = MergedEnviron(spec.env);
      } else {
        for (const auto& [k, v] : spec.env) env_store.push_back(k + "=" + v);
      }
      for (auto& s : env_store) envp.push_back(s.data());
      envp.push_back(nullptr);
    }
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    return ::posix_spawnp(pid, argv[0], &fa_, &attr_, argv.data(), own ? envp.data() : environ);
  }

 private:
  posix_spawn_file_actions_t fa_;
  posix_spawnattr_t attr_;
};

// Feeds stdin and drains stdout/stderr of a started child until both pipes
// close, ending its group on timeout or cancel (SIGTERM, SIGKILL 2 s later).
class ChildIo {
 public:
  ChildIo(const CommandSpec& spec, pid_t pid, Pipe& in, Pipe& out, Pipe& err)
      : spec_(spec), pid_(pid), in_(in), out_(out), err_(err) {
    if (spec.stdin_data.empty()) in_.Close(1);
    else ::fcntl(in_.fd[1], F_SETFL, O_NONBLOCK);
    deadline_ = spec.timeout ? NowMs() + spec.timeout->count() : -1;
  }
  void Pump(ExitStatus& st) {
    while (out_.fd[0] >= 0 || err_.fd[0] >= 0) {
      pollfd fds[3];
      int n = 0;
      if (out_.fd[0] >= 0) fds[n++] = {out_.fd[0], POLLIN, 0};
      if (err_.fd[0] >= 0) fds[n++] = {err_.fd[0], POLLIN, 0};
      if (in_.fd[1] >= 0) fds[n++] = {in_.fd[1], POLLOUT, 0};
      int pr = ::poll(fds, n, WaitMs(st));
      if (pr < 0 && errno != EINTR) break;
      Police(st);
      for (int i = 0; i < n && pr > 0; ++i) {
        if (fds[i].revents) Serve(fds[i].fd, st);
      }
    }
    EmitLines(pend_out_, false, spec_.on_line, true);
    EmitLines(pend_err_, true, spec_.on_line, true);
    in_.Close(1);
  }

 private:
  int WaitMs(const ExitStatus& st) const {
    int wait_ms = -1;
    const int64_t now = NowMs();
    if (deadline_ >= 0 && !st.timed_out) wait_ms = static_cast<int>(std::max<int64_t>(0, deadline_ - now));
    if (kill_at_ >= 0) wait_ms = static_cast<int>(std::max<int64_t>(0, kill_at_ - now));
    if (spec_.cancel && !st.canceled && (wait_ms < 0 || wait_ms > 100)) wait_ms = 100;
    return wait_ms;
  }
  // Timeout or cancel: SIGTERM to the group now, SIGKILL when it lingers.
  void Police(ExitStatus& st) {
    const int64_t now = NowMs();
    const bool cancel_now = spec_.cancel && !st.canceled && !st.timed_out && spec_.cancel->load();
    if (cancel_now || (deadline_ >= 0 && !st.timed_out && !st.canceled && now >= deadline_)) {
      (cancel_now ? st.canceled : st.timed_out) = true;
      ::kill(-pid_, SIGTERM);
      kill_at_ = now + 2000;
    } else if (kill_at_ >= 0 && now >= kill_at_) {
      ::kill(-pid_, SIGKILL);
      kill_at_ = -1;
    }
  }
  void Serve(int fd, ExitStatus& st) {
    if (fd == in_.fd[1]) {
      const std::string& data = spec_.stdin_data;
      ssize_t w = ::write(fd, data.data() + written_, data.size() - written_);
      if (w > 0) written_ += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN) written_ = data.size();
      if (written_ >= data.size()) in_.Close(1);
      return;
    }
    const bool is_err = fd == err_.fd[0];
    char buf[16384];
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r > 0) {
      if (spec_.capture) (is_err ? st.err : st.out).append(buf, static_cast<size_t>(r));
      if (spec_.on_line) {  // Only a line callback needs the partial-line buffer.
        std::string& pend = is_err ? pend_err_ : pend_out_;
        pend.append(buf, static_cast<size_t>(r));
        EmitLines(pend, is_err, spec_.on_line, false);
      }
    } else if (r == 0 || errno != EINTR) {
      (is_err ? err_ : out_).Close(0);
    }
  }

  const CommandSpec& spec_;
  pid_t pid_;
  Pipe &in_, &out_, &err_;
  std::string pend_out_, pend_err_;
  size_t written_ = 0;
  int64_t deadline_ = -1;
  int64_t kill_at_ = -1;  // After SIGTERM on timeout, SIGKILL at this time.
};

// Runs one command on this machine: the only place that starts processes
// (everything else goes through a ProcessRunner).
Result<ExitStatus> RunCommand(const CommandSpec& spec) {
  if (spec.argv.empty()) return Err(ErrorCode::kInvalidArgument, "empty command");
  IgnoreSigpipe();  // Children get the default back (posix_spawnattr_setsigdefault).
  Pipe in, out, err;
  if (::pipe2(in.fd, O_CLOEXEC) || ::pipe2(out.fd, O_CLOEXEC) || ::pipe2(err.fd, O_CLOEXEC)) {
    return Err(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));
  }
  if (!spec.stdin_path.empty() && ::access(spec.stdin_path.c_str(), R_OK) != 0) {
    return Err(ErrorCode::kNotFound, "cannot read " + spec.stdin_path + ": " + std::strerror(errno));
  }
  pid_t pid = -1;
  if (int rc = SpawnSetup(spec, in, out, err).Spawn(spec, &pid); rc != 0) {
    return Err(ErrorCode::kUnavailable, "cannot run " + spec.argv[0] + ": " + std::strerror(rc));
  }
  ExitStatus st;
  int wstatus = 0;
  if (spec.interactive) {
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(wstatus)) st.exit_code = WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) st.signal = WTERMSIG(wstatus);
    return st;
  }
  in.Close(0);
  out.Close(1);
  err.Close(1);
  ChildIo(spec, pid, in, out, err).Pump(st);
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (st.timed_out || st.canceled) ::kill(-pid, SIGKILL);  // Grandchildren that kept no pipe open.
  if (WIFEXITED(wstatus)) st.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) st.signal = WTERMSIG(wstatus);
  return st;
}

class SystemProcessRunner final : public ProcessRunner {
 public:
  Result<ExitStatus> Run(const CommandSpec& spec) override { return RunCommand(spec); }
};

}  // namespace

ProcessRunner& SystemProcesses() {
  static SystemProcessRunner runner;
  return runner;
}

}  // namespace sp
