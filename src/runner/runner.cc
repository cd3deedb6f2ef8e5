#include "runner/runner.h"

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <set>

#include "core/file.h"

namespace sp {

namespace {

constexpr int kTimedOutExit = 124;
constexpr int kCanceledExit = 125;

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "sallyport";
}

int64_t MonoMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Reaps every exited child; returns the main child's wait status when it
// is among them (else -1).
int ReapAll(pid_t main_child, int* main_status) {
  int reaped_main = -1;
  for (;;) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, WNOHANG);
    if (p <= 0) break;
    if (p == main_child) {
      *main_status = st;
      reaped_main = 0;
    }
  }
  return reaped_main;
}

}  // namespace

std::vector<int> ChildrenOf(int ppid) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    auto stat = ReadTextFile(std::string("/proc/") + e->d_name + "/stat");
    if (!stat) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and ')'.
    size_t close = stat->rfind(')');
    if (close == std::string::npos) continue;
    int parent = 0;
    char state = 0;
    if (std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &parent) == 2 && parent == ppid) {
      out.push_back(std::atoi(e->d_name));
    }
  }
  ::closedir(d);
  return out;
}

namespace {

struct SuperviseArgs {
  int64_t timeout_ms = 600'000, grace_ms = 2'000;
  int64_t uid = -1, gid = -1;  // Set: the command drops to them.
  int command = 0;  // Index of argv[0] of the command.
};

// "--timeout-ms N --grace-ms G -- argv...": nullopt (after a message) when malformed.
std::optional<SuperviseArgs> ParseSuperviseArgs(int argc, char** argv) {
  SuperviseArgs a;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--timeout-ms" && i + 1 < argc) a.timeout_ms = std::atoll(argv[++i]);
    else if (arg == "--grace-ms" && i + 1 < argc) a.grace_ms = std::atoll(argv[++i]);
    else if (arg == "--uid" && i + 1 < argc) a.uid = std::atoll(argv[++i]);
    else if (arg == "--gid" && i + 1 < argc) a.gid = std::atoll(argv[++i]);
    else {
      std::fprintf(stderr, "sallyport __supervise: unknown argument '%s'\n", arg.c_str());
      return std::nullopt;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "sallyport __supervise: no command\n");
    return std::nullopt;
  }
  a.command = i;
  return a;
}

// The command in its own process group, with the signal mask it had before
// `waited` was blocked. -1 after a message when fork fails.
pid_t StartCommand(char** argv, const sigset_t& old_mask, int64_t uid, int64_t gid) {
  const pid_t child = ::fork();  // Single-threaded here: fork is safe.
  if (child < 0) {
    std::fprintf(stderr, "sallyport __supervise: fork: %s\n", std::strerror(errno));
    return -1;
  }
  if (child == 0) {
    ::setpgid(0, 0);
    ::signal(SIGPIPE, SIG_DFL);  // Ignored in the supervisor only (an ignored signal survives exec).
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    // The commit's code as the step user: no supplementary groups (no
    // docker group), and no way back up through a setuid program.
    if (uid >= 0 && (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
                     ::setresuid(uid, uid, uid) != 0 || ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)) {
      std::fprintf(stderr, "sallyport: cannot run the step as uid %lld: %s\n", static_cast<long long>(uid),
                   std::strerror(errno));
      ::_exit(126);
    }
    ::close_range(3, ~0U, 0);  // The step sees only its standard descriptors.
    ::execvp(argv[0], argv);
    std::fprintf(stderr, "sallyport: cannot run '%s': %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(child, child);  // Also here: no race with the child's own call.
  return child;
}

struct Waited {
  bool done = false, timed_out = false, canceled = false;
  int status = 0;
};

// Until the command exits, its deadline passes, or SIGTERM/SIGINT arrives.
Waited WaitForCommand(pid_t child, const sigset_t& waited, int64_t timeout_ms) {
  Waited w;
  const int64_t deadline = MonoMs() + timeout_ms;
  while (!w.done && !w.timed_out && !w.canceled) {
    const int64_t left = deadline - MonoMs();
    if (left <= 0) {
      w.timed_out = true;
      break;
    }
    timespec ts{static_cast<time_t>(left / 1000), static_cast<long>((left % 1000) * 1'000'000)};
    int sig = ::sigtimedwait(&waited, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) w.canceled = true;
    if (ReapAll(child, &w.status) == 0) w.done = true;
  }
  return w;
}

// Ends the group, then every descendant that was reparented to us; again
// until none is left (a dying process may hand us its own children).
void EndDescendants(pid_t child, const sigset_t& waited, int64_t grace_ms, Waited& w) {
  ::kill(-child, SIGTERM);
  const int64_t kill_at = MonoMs() + grace_ms;
  bool killing = false;
  for (;;) {
    if (!w.done && ReapAll(child, &w.status) == 0) w.done = true;
    else (void)ReapAll(child, &w.status);
    auto kids = ChildrenOf(static_cast<int>(::getpid()));
    if (kids.empty()) break;
    if (!killing && MonoMs() >= kill_at) killing = true;
    const int sig = killing ? SIGKILL : SIGTERM;
    if (killing) ::kill(-child, SIGKILL);
    for (int k : kids) ::kill(k, sig);
    timespec nap{0, 20'000'000};
    ::sigtimedwait(&waited, nullptr, &nap);
  }
}

}  // namespace

int SuperviseMain(int argc, char** argv) {
  auto args = ParseSuperviseArgs(argc, argv);
  if (!args) return 2;
  // If the runner dies (a server killed mid-build), end the step like a
  // cancel rather than let it run on unwatched.
  // Our stderr is a pipe the runner read: once it died, a write there must
  // fail (EPIPE), not kill us before we end the step (SIGPIPE's default).
  // Seen: a server killed with -9 whose spawning thread exited last (its
  // descriptors already closed when our SIGTERM came) left the step running.
  ::signal(SIGPIPE, SIG_IGN);
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::raise(SIGTERM);  // Died before we asked.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    std::fprintf(stderr, "sallyport __supervise: PR_SET_CHILD_SUBREAPER: %s\n", std::strerror(errno));
    return 2;
  }
  sigset_t waited, old;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  sigaddset(&waited, SIGTERM);
  sigaddset(&waited, SIGINT);
  sigprocmask(SIG_BLOCK, &waited, &old);
  const pid_t child = StartCommand(argv + args->command, old, args->uid, args->gid);
  if (child < 0) return 2;
  Waited w = WaitForCommand(child, waited, args->timeout_ms);
  if (w.timed_out) {
    std::fprintf(stderr, "sallyport: step timed out after %lld ms; ending it\n", static_cast<long long>(args->timeout_ms));
  }
  if (w.canceled) std::fprintf(stderr, "sallyport: step canceled; ending it\n");
  std::fflush(stderr);
  EndDescendants(child, waited, args->grace_ms, w);
  if (w.timed_out) return kTimedOutExit;
  if (w.canceled) return kCanceledExit;
  if (WIFEXITED(w.status)) return WEXITSTATUS(w.status);
  if (WIFSIGNALED(w.status)) return 128 + WTERMSIG(w.status);
  return 1;
}

Result<ExitStatus> SupervisedStepRunner::Run(const StepCommand& cmd) {
  if (cmd.argv.empty()) return Err(ErrorCode::kInvalidArgument, "empty step command");
  CommandSpec spec;
  spec.argv = {supervisor_.empty() ? SelfExe() : supervisor_, "__supervise", "--timeout-ms",
               std::to_string(cmd.timeout.count()), "--grace-ms", std::to_string(cmd.grace.count())};
  if (cmd.run_as) {
    spec.argv.insert(spec.argv.end(), {"--uid", std::to_string(cmd.run_as->uid), "--gid",
                                       std::to_string(cmd.run_as->gid)});
  }
  spec.argv.push_back("--");
  spec.argv.insert(spec.argv.end(), cmd.argv.begin(), cmd.argv.end());
  spec.cwd = cmd.cwd;
  spec.env = cmd.env;
  spec.inherit_env = cmd.inherit_env;
  spec.on_line = cmd.on_line;
  spec.capture = false;
  spec.cancel = cmd.cancel;  // SIGTERM to the supervisor's group: it cleans up and exits 125.
  // A backstop only: the supervisor keeps the step's own deadline.
  spec.timeout = cmd.timeout + cmd.grace + Millis(30'000);
  SP_ASSIGN_OR_RETURN(ExitStatus st, processes_.Run(spec));
  if (st.canceled || st.timed_out) return st;  // Ended from here.
  if (st.signal == 0 && st.exit_code == kTimedOutExit) {
    st.timed_out = true;
  } else if (st.signal == 0 && st.exit_code == kCanceledExit) {
    st.canceled = true;
  } else if (st.signal == 0 && st.exit_code > 128 && st.exit_code < 160) {
    st.signal = st.exit_code - 128;
  }
  return st;
}

Result<std::optional<StepUser>> StepUserNamed(const std::string& name) {
  const bool root = ::geteuid() == 0;
  if (name.empty() && !root) return std::optional<StepUser>();
  const std::string who = name.empty() ? "nobody" : name;
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(who.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    return Err(ErrorCode::kInvalidArgument, "step user '" + who + "': no such user");
  }
  if (found->pw_uid == ::geteuid()) return std::optional<StepUser>();  // Already who steps run as.
  if (!root) {
    return Err(ErrorCode::kInvalidArgument, "--step-user " + who + ": running steps as another user needs root");
  }
  return std::optional<StepUser>(StepUser{found->pw_uid, found->pw_gid, who});
}

}  // namespace sp
