#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

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
    size_t nl = pending.find('\n', start);
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

Result<ExitStatus> RunCommand(const CommandSpec& spec) {
  if (spec.argv.empty()) return Err(ErrorCode::kInvalidArgument, "empty command");
  IgnoreSigpipe();  // Children get the default back (posix_spawnattr_setsigdefault below).
  Pipe in, out, err;
  if (::pipe2(in.fd, O_CLOEXEC) || ::pipe2(out.fd, O_CLOEXEC) || ::pipe2(err.fd, O_CLOEXEC)) {
    return Err(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));
  }

  if (!spec.stdin_path.empty() && ::access(spec.stdin_path.c_str(), R_OK) != 0) {
    return Err(ErrorCode::kNotFound, "cannot read " + spec.stdin_path + ": " + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (spec.stdin_data.empty()) {
    posix_spawn_file_actions_addopen(&fa, 0, spec.stdin_path.empty() ? "/dev/null" : spec.stdin_path.c_str(),
                                     O_RDONLY, 0);
  } else {
    posix_spawn_file_actions_adddup2(&fa, in.fd[0], 0);
  }
  posix_spawn_file_actions_adddup2(&fa, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err.fd[1], 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all_default;
  sigemptyset(&none);
  sigemptyset(&all_default);
  sigaddset(&all_default, SIGPIPE);
  sigaddset(&all_default, SIGTERM);
  sigaddset(&all_default, SIGINT);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all_default);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env_store;
  std::vector<char*> envp;
  if (!spec.env.empty()) {
    env_store = MergedEnviron(spec.env);
    for (auto& s : env_store) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), spec.env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Err(ErrorCode::kUnavailable, "cannot run " + spec.argv[0] + ": " + std::strerror(rc));
  }
  in.Close(0);
  out.Close(1);
  err.Close(1);

  ExitStatus st;
  std::string pend_out, pend_err;
  size_t written = 0;
  if (spec.stdin_data.empty()) in.Close(1);
  else ::fcntl(in.fd[1], F_SETFL, O_NONBLOCK);
  const int64_t deadline = spec.timeout ? NowMs() + spec.timeout->count() : -1;
  int64_t kill_at = -1;  // After SIGTERM on timeout, SIGKILL at this time.

  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    pollfd fds[3];
    int n = 0;
    if (out.fd[0] >= 0) fds[n++] = {out.fd[0], POLLIN, 0};
    if (err.fd[0] >= 0) fds[n++] = {err.fd[0], POLLIN, 0};
    if (in.fd[1] >= 0) fds[n++] = {in.fd[1], POLLOUT, 0};
    int wait_ms = -1;
    int64_t now = NowMs();
    if (deadline >= 0 && !st.timed_out) wait_ms = static_cast<int>(std::max<int64_t>(0, deadline - now));
    if (kill_at >= 0) wait_ms = static_cast<int>(std::max<int64_t>(0, kill_at - now));
    if (spec.cancel && !st.canceled && (wait_ms < 0 || wait_ms > 100)) wait_ms = 100;
    int pr = ::poll(fds, n, wait_ms);
    if (pr < 0 && errno != EINTR) break;
    now = NowMs();
    const bool cancel_now = spec.cancel && !st.canceled && !st.timed_out && spec.cancel->load();
    if (cancel_now || (deadline >= 0 && !st.timed_out && !st.canceled && now >= deadline)) {
      (cancel_now ? st.canceled : st.timed_out) = true;
      ::kill(-pid, SIGTERM);
      kill_at = now + 2000;
    } else if (kill_at >= 0 && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = -1;
    }
    for (int i = 0; i < n && pr > 0; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in.fd[1]) {
        ssize_t w = ::write(in.fd[1], spec.stdin_data.data() + written, spec.stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN) written = spec.stdin_data.size();
        if (written >= spec.stdin_data.size()) in.Close(1);
        continue;
      }
      bool is_err = fds[i].fd == err.fd[0];
      char buf[16384];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        if (spec.capture) (is_err ? st.err : st.out).append(buf, static_cast<size_t>(r));
        if (spec.on_line) {  // Only a line callback needs the partial-line buffer.
          std::string& pend = is_err ? pend_err : pend_out;
          pend.append(buf, static_cast<size_t>(r));
          EmitLines(pend, is_err, spec.on_line, false);
        }
      } else if (r == 0 || errno != EINTR) {
        (is_err ? err : out).Close(0);
      }
    }
  }
  EmitLines(pend_out, false, spec.on_line, true);
  EmitLines(pend_err, true, spec.on_line, true);
  in.Close(1);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {}
  if (st.timed_out || st.canceled) ::kill(-pid, SIGKILL);  // Grandchildren that kept no pipe open.
  if (WIFEXITED(wstatus)) st.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) st.signal = WTERMSIG(wstatus);
  return st;
}

}  // namespace sp
