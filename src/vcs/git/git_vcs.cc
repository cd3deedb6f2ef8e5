#include "vcs/git/git_vcs.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>

#include "config/branch_rules.h"
#include "core/text.h"

namespace sp {

namespace {

// A path safe to put, single-quoted, into GIT_SSH_COMMAND (which git runs
// through a shell): absolute, of a conservative alphabet.
bool IsPlainPath(const std::string& p) {
  if (p.empty() || p[0] != '/' || p.size() > 1000) return false;
  for (char c : p) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("._/+@-", c))) return false;
  }
  return true;
}

Result<ExitStatus> Git(ProcessRunner& processes, const std::vector<std::string>& args, Millis timeout,
                       const LineCallback& on_line = nullptr, const GitAccess& access = {}) {
  CommandSpec c;
  c.argv = {"git"};
  c.argv.insert(c.argv.end(), args.begin(), args.end());
  c.timeout = timeout;
  c.on_line = on_line;
  // Never prompt for credentials, never read the user's config hooks.
  c.env = {{"GIT_TERMINAL_PROMPT", "0"}, {"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_ASKPASS", "/bin/false"},
           {"SSH_ASKPASS", "/bin/false"}};
  if (!access.token.empty()) {
    if (access.token.find_first_of("\r\n") != std::string::npos) {
      return Err(ErrorCode::kInvalidArgument, "the remote's token has a line break");
    }
    const std::string cred = access.token.find(':') == std::string::npos ? "x-access-token:" + access.token : access.token;
    c.env["GIT_CONFIG_COUNT"] = "1";
    c.env["GIT_CONFIG_KEY_0"] = "http.extraHeader";
    c.env["GIT_CONFIG_VALUE_0"] = "Authorization: Basic " + Base64(cred);
  }
  if (!access.ssh_key_file.empty() || !access.known_hosts.empty()) {
    for (const std::string* p : {&access.ssh_key_file, &access.known_hosts}) {
      if (!p->empty() && !IsPlainPath(*p)) {
        return Err(ErrorCode::kInvalidArgument, "ssh key and known_hosts must be plain absolute paths, got '" +
                                                    Printable(*p) + "'");
      }
    }
    std::string ssh = "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10";
    if (!access.ssh_key_file.empty()) ssh += " -o IdentitiesOnly=yes -i '" + access.ssh_key_file + "'";
    if (!access.known_hosts.empty()) ssh += " -o UserKnownHostsFile='" + access.known_hosts + "'";
    c.env["GIT_SSH_COMMAND"] = ssh;
  }
  SP_ASSIGN_OR_RETURN(ExitStatus st, processes.Run(c));
  return st;
}

}  // namespace

namespace {

// One conversation with a git daemon over a non-blocking socket, every wait
// bounded by the same deadline (read from `clock`).
class GitSocket {
 public:
  GitSocket(std::string url, Millis timeout, Clock& clock)
      : url_(std::move(url)), clock_(clock), deadline_ms_(clock.MonotonicMs() + timeout.count()) {}
  ~GitSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Connect(const HostPort& hp) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* ai = nullptr;
    if (int rc = ::getaddrinfo(hp.host.c_str(), std::to_string(hp.port).c_str(), &hints, &ai); rc != 0) {
      return Fail(::gai_strerror(rc));
    }
    fd_ = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int rc = fd_ < 0 ? -1 : ::connect(fd_, ai->ai_addr, ai->ai_addrlen);
    ::freeaddrinfo(ai);
    if (fd_ < 0) return Fail(std::string("socket: ") + std::strerror(errno));
    if (rc != 0) {
      if (errno != EINPROGRESS || !Wait(POLLOUT)) return Fail("cannot connect");
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return Fail(std::strerror(err));
    }
    return Ok();
  }
  bool SendAll(const std::string& data) {
    for (size_t off = 0; off < data.size();) {
      if (!Wait(POLLOUT)) return false;
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until buf() holds at least n bytes; false on end, error or deadline.
  bool Need(size_t n) {
    while (buf_.size() < n) {
      if (!Wait(POLLIN)) return false;
      char chunk[16384];
      ssize_t r = ::recv(fd_, chunk, sizeof chunk, 0);
      if (r <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(r));
    }
    return true;
  }
  const std::string& buf() const { return buf_; }
  tl::unexpected<Error> Fail(const std::string& what) const {
    return Err(ErrorCode::kUnavailable, "git " + url_ + ": " + what);
  }

 private:
  bool Wait(short ev) {
    pollfd p{fd_, ev, 0};
    const int64_t left = std::max<int64_t>(0, deadline_ms_ - clock_.MonotonicMs());
    return ::poll(&p, 1, static_cast<int>(left)) == 1;
  }
  std::string url_;
  Clock& clock_;
  int64_t deadline_ms_;
  int fd_ = -1;
  std::string buf_;
};

// One advertised ref line ("<sha> <ref>[\0caps]") as a branch head, if it is one.
std::optional<RemoteHead> HeadOf(std::string line) {
  if (auto nul = line.find('\0'); nul != std::string::npos) line.resize(nul);  // Capabilities.
  line = Trim(line);
  const size_t sp = line.find(' ');
  if (sp == std::string::npos) return std::nullopt;
  const std::string sha = line.substr(0, sp), ref = line.substr(sp + 1);
  if (!IsCommitSha(sha) || !StartsWith(ref, "refs/heads/") || sha == std::string(40, '0')) return std::nullopt;
  return RemoteHead{ref.substr(11), sha};
}

// git:// without a `git` process (polling many remotes is then a socket and
// a few reads each): protocol v0's reference advertisement, pkt-lines until
// the flush, then a flush back to end the conversation.
Result<std::vector<RemoteHead>> ListHeadsGitProtocol(const std::string& url, Millis timeout, Clock& clock) {
  const std::string rest = url.substr(6);  // After "git://".
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) return Err(ErrorCode::kInvalidArgument, "git URL without a path: " + url);
  const std::string authority = rest.substr(0, slash), path = rest.substr(slash);
  auto hp = ParseHostPort(authority, 9418);
  if (!hp) return Err(ErrorCode::kInvalidArgument, "git URL with a bad host: " + url);
  GitSocket sock(url, timeout, clock);
  SP_TRY(sock.Connect(*hp));
  const std::string body = "git-upload-pack " + path + std::string(1, '\0') + "host=" + authority + std::string(1, '\0');
  char len[5];
  std::snprintf(len, sizeof len, "%04zx", body.size() + 4);
  if (!sock.SendAll(std::string(len) + body)) return sock.Fail("send failed");
  std::vector<RemoteHead> out;
  for (size_t pos = 0;;) {
    if (!sock.Need(pos + 4)) return sock.Fail("connection ended or timed out");
    const unsigned long n = std::strtoul(sock.buf().substr(pos, 4).c_str(), nullptr, 16);
    if (n == 0) break;  // Flush: the advertisement is complete.
    if (n < 4 || n > 65520) return sock.Fail("bad pkt-line");
    if (!sock.Need(pos + n)) return sock.Fail("connection ended or timed out");
    std::string line = sock.buf().substr(pos + 4, n - 4);
    pos += n;
    if (StartsWith(line, "ERR ")) return sock.Fail(Printable(Trim(line.substr(4))));
    if (auto head = HeadOf(std::move(line))) out.push_back(std::move(*head));
  }
  (void)sock.SendAll("0000");  // We want nothing: end politely.
  return out;
}

}  // namespace

Result<std::vector<RemoteHead>> GitVcs::ListHeads(const std::string& url, Millis timeout, const GitAccess& access) {
  if (!IsValidGitUrl(url)) return Err(ErrorCode::kInvalidArgument, "invalid git URL '" + Printable(url) + "'");
  if (StartsWith(url, "git://")) return ListHeadsGitProtocol(url, timeout, clock_);
  SP_ASSIGN_OR_RETURN(ExitStatus st, Git(processes_, {"ls-remote", "--heads", "--", url}, timeout, nullptr, access));
  if (!st.ok()) return Err(ErrorCode::kUnavailable, "git ls-remote " + url + ": " + st.Describe());
  std::vector<RemoteHead> out;
  for (const auto& line : Split(st.out, '\n')) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string sha = line.substr(0, tab), ref = Trim(line.substr(tab + 1));
    if (!IsCommitSha(sha) || !StartsWith(ref, "refs/heads/")) continue;
    out.push_back(RemoteHead{ref.substr(11), sha});
  }
  return out;
}

Status GitVcs::Checkout(const std::string& url, const std::string& branch, const std::string& sha,
                        const std::string& dir, Millis timeout, const LineCallback& on_line, const GitAccess& access) {
  if (!IsValidGitUrl(url)) return Err(ErrorCode::kInvalidArgument, "invalid git URL '" + Printable(url) + "'");
  if (!IsCommitSha(sha)) return Err(ErrorCode::kInvalidArgument, "invalid commit '" + Printable(sha) + "'");
  if (!IsValidBranchName(branch)) return Err(ErrorCode::kInvalidArgument, "invalid branch '" + Printable(branch) + "'");
  auto run = [&](const std::vector<std::string>& args) -> Status {
    SP_ASSIGN_OR_RETURN(ExitStatus st, Git(processes_, args, timeout, on_line, access));
    if (!st.ok()) return Err(ErrorCode::kUnavailable, "git " + args[0] + ": " + st.Describe());
    return Ok();
  };
  SP_TRY(run({"init", "-q", "--", dir}));
  // Only a commit of the branch is built under its name: never one fetched
  // by its id alone (an unreviewed commit built as `main`). The branch's
  // head first (the usual case: the commit is the head); else its history,
  // which must contain the commit.
  SP_TRY(run({"-C", dir, "fetch", "-q", "--no-tags", "--depth", "1", "--", url, "refs/heads/" + branch}));
  SP_ASSIGN_OR_RETURN(ExitStatus head, Git(processes_, {"-C", dir, "rev-parse", "FETCH_HEAD"}, timeout, on_line, access));
  if (!head.ok()) return Err(ErrorCode::kUnavailable, "git rev-parse: " + head.Describe());
  if (Trim(head.out) != sha) {
    SP_TRY(run({"-C", dir, "fetch", "-q", "--no-tags", "--unshallow", "--", url, "refs/heads/" + branch}));
    SP_ASSIGN_OR_RETURN(ExitStatus on, Git(processes_, {"-C", dir, "merge-base", "--is-ancestor", sha, "FETCH_HEAD"},
                                            timeout, on_line, access));
    if (!on.ok()) {
      return Err(ErrorCode::kInvalidArgument, "commit " + sha + " is not on branch " + branch + " of " + url);
    }
  }
  SP_TRY(run({"-C", dir, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", sha}));
  return Ok();
}

Result<CommitInfo> GitVcs::ReadCommit(const std::string& dir) {
  SP_ASSIGN_OR_RETURN(ExitStatus st, Git(processes_, {"-C", dir, "log", "-1", "--format=%an%n%s"}, Millis(10'000)));
  if (!st.ok()) return Err(ErrorCode::kUnavailable, "git log: " + st.Describe());
  auto lines = Split(st.out, '\n');
  CommitInfo c;
  if (!lines.empty()) c.author = lines[0];
  if (lines.size() > 1) c.subject = lines[1];
  return c;
}

}  // namespace sp
