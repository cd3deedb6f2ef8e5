#include "support/cli_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "core/subprocess.h"
#include "support/test_util.h"


namespace sp::test {

namespace {

CliResult RunArgv(std::vector<std::string> argv, const std::map<std::string, std::string>& env, int timeout_s) {
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.env = env;
  spec.timeout = std::chrono::seconds(timeout_s);
  CliResult r;
  auto st = SystemProcesses().Run(spec);
  if (!st) {
    r.err = st.error().message;
    return r;
  }
  r.exit_code = st->signal ? 128 + st->signal : st->exit_code;
  r.out = st->out;
  r.err = st->err;
  return r;
}

CliResult RunBinary(const std::string& binary, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env, int timeout_s) {
  std::vector<std::string> argv = {BuildBinary(binary)};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunArgv(std::move(argv), env, timeout_s);
}

}  // namespace

CliResult RunProgram(const std::vector<std::string>& argv, int timeout_s) {
  std::vector<std::string> resolved = argv;
  if (!resolved.empty() && resolved[0].find('/') == std::string::npos) resolved[0] = FindProgram(resolved[0]);
  return RunArgv(std::move(resolved), {}, timeout_s);
}

CliResult RunSallyport(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                       int timeout_s) {
  return RunBinary("sallyport", args, env, timeout_s);
}

CliResult RunSallyportTest(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                           int timeout_s) {
  return RunBinary("sallyport-test", args, env, timeout_s);
}

CliResult StreamSallyport(const std::vector<std::string>& args, const std::function<bool(const std::string&)>& on_line,
                          const std::map<std::string, std::string>& env, int timeout_s) {
  CliResult r;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::vector<std::string> argv_s = {BuildBinary("sallyport")};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = MergedEnviron(env);  // An override replaces the inherited value.
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    r.err = std::string("spawn: ") + std::strerror(rc);
    return r;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string pending;
  bool killed = false;
  int fds_open = 2;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  while (fds_open > 0) {
    if (std::chrono::steady_clock::now() > deadline && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (::poll(fds, 2, 200) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      char buf[8192];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --fds_open;
        continue;
      }
      if (i == 1) {
        r.err.append(buf, static_cast<size_t>(n));
        continue;
      }
      r.out.append(buf, static_cast<size_t>(n));
      pending.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!killed && on_line(line)) {
          ::kill(pid, SIGKILL);
          killed = true;
        }
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  return r;
}

}  // namespace sp::test
