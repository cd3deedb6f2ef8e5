#include "transport/ssh/mux_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/fd.h"

namespace sp::ssh {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxMessage = 256 * 1024;  // The master's own messages are tiny.

void PutU32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}

void PutString(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

uint32_t GetU32(std::string_view s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string Framed(const std::string& body) {
  std::string out;
  PutU32(out, static_cast<uint32_t>(body.size()));
  return out + body;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

int RemainingMs(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
  return left > 0 ? static_cast<int>(std::min<int64_t>(left, 1 << 30)) : 0;
}

// A connected control socket with a read buffer of whole messages.
class Channel {
 public:
  static Result<Channel> Connect(const std::string& ctl) {
    sockaddr_un addr{};
    if (ctl.size() >= sizeof addr.sun_path) {
      return Err(ErrorCode::kInvalidArgument, "control socket path too long: " + ctl);
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, ctl.c_str(), ctl.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return Err(ErrorCode::kInternal, Errno("socket"));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return Err(ErrorCode::kUnavailable, Errno("connect to control socket " + ctl));
    }
    return Channel(std::move(fd));
  }

  int fd() const { return fd_.get(); }

  Status Send(const std::string& bytes, SteadyClock::time_point deadline) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd_.get(), POLLOUT, 0};
        if (::poll(&p, 1, RemainingMs(deadline)) == 0) {
          return Err(ErrorCode::kUnavailable, "control socket: send timed out");
        }
        continue;
      }
      return Err(ErrorCode::kUnavailable, Errno("control socket: send"));
    }
    return Ok();
  }

  // One descriptor, as one byte with SCM_RIGHTS (what the master's
  // mm_receive_fd expects).
  Status SendFd(int passed) {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
    while (true) {
      ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
      if (n == 1) return Ok();
      if (n < 0 && errno == EINTR) continue;
      return Err(ErrorCode::kUnavailable, Errno("control socket: passing a descriptor"));
    }
  }

  // Reads what is available (the socket polled readable). False at EOF.
  Result<bool> Fill() {
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return Err(ErrorCode::kUnavailable, Errno("control socket: recv"));
    }
  }

  // The next whole message if one is buffered.
  Result<std::optional<MuxMessage>> Next() {
    if (in_.size() < 4) return std::optional<MuxMessage>();
    const uint32_t len = GetU32(in_, 0);
    if (len > kMaxMessage) return Err(ErrorCode::kUnavailable, "control socket: oversized message");
    if (in_.size() < 4 + static_cast<size_t>(len)) return std::optional<MuxMessage>();
    auto m = ParseMuxMessage(std::string_view(in_).substr(4, len));
    in_.erase(0, 4 + static_cast<size_t>(len));
    if (!m) return Err(ErrorCode::kUnavailable, "control socket: " + m.error().message);
    return std::optional<MuxMessage>(std::move(*m));
  }

  // Waits for the next whole message until the deadline.
  Result<MuxMessage> Read(SteadyClock::time_point deadline) {
    while (true) {
      SP_ASSIGN_OR_RETURN(std::optional<MuxMessage> m, Next());
      if (m) return std::move(*m);
      pollfd p{fd_.get(), POLLIN, 0};
      int rc = ::poll(&p, 1, RemainingMs(deadline));
      if (rc < 0 && errno == EINTR) continue;
      if (rc == 0) return Err(ErrorCode::kUnavailable, "control socket: no answer from the master in time");
      SP_ASSIGN_OR_RETURN(bool open, Fill());
      if (!open) return Err(ErrorCode::kUnavailable, "control socket: the master closed the connection");
    }
  }

 private:
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string in_;
};

// Connects and exchanges hellos.
Result<Channel> Open(const std::string& ctl, SteadyClock::time_point deadline) {
  SP_ASSIGN_OR_RETURN(Channel ch, Channel::Connect(ctl));
  SP_TRY(ch.Send(MuxHelloMessage(), deadline));
  SP_ASSIGN_OR_RETURN(MuxMessage hello, ch.Read(deadline));
  if (hello.type != kMuxHello || hello.ints.empty() || hello.ints[0] != kMuxVersion) {
    return Err(ErrorCode::kUnavailable, "control socket: the master does not speak mux protocol version 4");
  }
  return ch;
}

tl::unexpected<Error> Refused(const MuxMessage& m, const std::string& what) {
  if (m.type == kMuxPermissionDenied || m.type == kMuxFailure) {
    return Err(ErrorCode::kUnavailable, "the ssh master refused " + what + ": " + m.reason);
  }
  return Err(ErrorCode::kUnavailable, "the ssh master answered " + what + " with message type " +
                                          std::to_string(m.type));
}

struct PipePair {
  UniqueFd read, write;
};

Result<PipePair> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Err(ErrorCode::kInternal, Errno("pipe"));
  return PipePair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

std::string MuxHelloMessage() {
  std::string b;
  PutU32(b, kMuxHello);
  PutU32(b, kMuxVersion);
  return Framed(b);
}

std::string MuxNewSessionMessage(uint32_t request_id, const std::string& command) {
  std::string b;
  PutU32(b, kMuxNewSession);
  PutU32(b, request_id);
  PutString(b, "");         // reserved
  PutU32(b, 0);             // want tty
  PutU32(b, 0);             // want X11 forwarding
  PutU32(b, 0);             // want agent forwarding
  PutU32(b, 0);             // subsystem
  PutU32(b, 0xffffffffu);   // no escape character
  PutString(b, "");         // terminal type
  PutString(b, command);    // no environment strings follow
  return Framed(b);
}

std::string MuxRequestMessage(uint32_t type, uint32_t request_id) {
  std::string b;
  PutU32(b, type);
  PutU32(b, request_id);
  return Framed(b);
}

Result<MuxMessage> ParseMuxMessage(std::string_view body) {
  if (body.size() < 4) return Err(ErrorCode::kInvalidArgument, "mux message shorter than its type");
  MuxMessage m;
  m.type = GetU32(body, 0);
  size_t ints = 0;
  bool reason = false;
  switch (m.type) {
    case kMuxHello: ints = 1; break;                          // version (extensions ignored)
    case kMuxOk: ints = 1; break;                             // request id
    case kMuxPermissionDenied: case kMuxFailure: ints = 1; reason = true; break;
    case kMuxExitMessage: ints = 2; break;                    // session id, exit value
    case kMuxAlive: ints = 2; break;                          // request id, pid
    case kMuxSessionOpened: ints = 2; break;                  // request id, session id
    case kMuxTtyAllocFail: ints = 1; break;                   // session id
    default:
      return Err(ErrorCode::kInvalidArgument, "unknown mux message type " + std::to_string(m.type));
  }
  size_t at = 4;
  for (size_t i = 0; i < ints; ++i, at += 4) {
    if (body.size() < at + 4) return Err(ErrorCode::kInvalidArgument, "truncated mux message");
    m.ints.push_back(GetU32(body, at));
  }
  if (reason) {
    if (body.size() < at + 4) return Err(ErrorCode::kInvalidArgument, "truncated mux message");
    const uint32_t n = GetU32(body, at);
    if (body.size() - at - 4 < n) return Err(ErrorCode::kInvalidArgument, "truncated mux message");
    m.reason = std::string(body.substr(at + 4, n));
  }
  return m;
}

namespace {

// One remote command's session on the master: the control channel, our end
// of its stdin (when we feed data) and our ends of its stdout and stderr.
struct Session {
  Channel ch;
  UniqueFd in_ours;
  PipePair out, err;
};

// Asks the master for a session running `command`, handing it the
// session's stdin, stdout and stderr.
Result<Session> OpenSession(const std::string& ctl, const std::string& command, const CommandSpec& spec,
                            SteadyClock::time_point setup_deadline) {
  SP_ASSIGN_OR_RETURN(Channel ch, Open(ctl, setup_deadline));
  UniqueFd in_theirs;
  UniqueFd in_ours;  // Our end when we feed stdin_data.
  if (!spec.stdin_data.empty()) {
    SP_ASSIGN_OR_RETURN(PipePair p, MakePipe());
    in_theirs = std::move(p.read);
    in_ours = std::move(p.write);
    ::fcntl(in_ours.get(), F_SETFL, O_NONBLOCK);
  } else {
    const std::string path = spec.stdin_path.empty() ? "/dev/null" : spec.stdin_path;
    in_theirs.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in_theirs) return Err(ErrorCode::kInvalidArgument, Errno("open " + path));
  }
  SP_ASSIGN_OR_RETURN(PipePair out, MakePipe());
  SP_ASSIGN_OR_RETURN(PipePair err, MakePipe());
  constexpr uint32_t kRequest = 1;
  SP_TRY(ch.Send(MuxNewSessionMessage(kRequest, command), setup_deadline));
  SP_TRY(ch.SendFd(in_theirs.get()));
  SP_TRY(ch.SendFd(out.write.get()));
  SP_TRY(ch.SendFd(err.write.get()));
  // Only the master holds the session's ends now: EOF on our read ends means
  // it closed them.
  in_theirs.reset();
  out.write.reset();
  err.write.reset();
  SP_ASSIGN_OR_RETURN(MuxMessage opened, ch.Read(setup_deadline));
  if (opened.type != kMuxSessionOpened) return Refused(opened, "the session");
  return Session{std::move(ch), std::move(in_ours), std::move(out), std::move(err)};
}

// Moves one ready fd's bytes: the master's messages (the exit status), our
// stdin data, the session's output (to `st` and the line callback).
Status ServeFd(Session& s, int fd, const CommandSpec& spec, ExitStatus& st, size_t& written,
               std::optional<uint32_t>& exit_value, bool& socket_open, std::string (&pend)[2]) {
  if (fd == s.ch.fd()) {
    SP_ASSIGN_OR_RETURN(bool open, s.ch.Fill());
    while (true) {
      SP_ASSIGN_OR_RETURN(std::optional<MuxMessage> m, s.ch.Next());
      if (!m) break;
      if (m->type == kMuxExitMessage) exit_value = m->ints[1];
    }
    if (!open) socket_open = false;
  } else if (fd == s.in_ours.get()) {
    ssize_t w = ::write(fd, spec.stdin_data.data() + written, spec.stdin_data.size() - written);
    if (w > 0) written += static_cast<size_t>(w);
    if ((w < 0 && errno != EAGAIN && errno != EINTR) || written >= spec.stdin_data.size()) s.in_ours.reset();
  } else {
    const bool is_err = fd == s.err.read.get();
    char buf[16384];
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r > 0) {
      (is_err ? st.err : st.out).append(buf, static_cast<size_t>(r));
      if (spec.on_line) {  // Only a line callback needs the partial-line buffer.
        pend[is_err].append(buf, static_cast<size_t>(r));
        EmitLines(pend[is_err], is_err, spec.on_line, false);
      }
    } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
      (is_err ? s.err : s.out).read.reset();
    }
  }
  return Ok();
}

}  // namespace

Result<ExitStatus> MuxRun(const std::string& ctl, const std::string& command, const CommandSpec& spec,
                          std::optional<Millis> timeout) {
  IgnoreSigpipe();
  const auto start = SteadyClock::now();
  // Setting up the session is bounded even without a command timeout.
  const auto setup_deadline = start + (timeout ? std::min(*timeout, Millis(30'000)) : Millis(30'000));
  SP_ASSIGN_OR_RETURN(Session s, OpenSession(ctl, command, spec, setup_deadline));
  ExitStatus st;
  std::optional<uint32_t> exit_value;
  bool socket_open = true;
  size_t written = 0;
  std::string pend[2];
  const auto deadline = timeout ? start + *timeout : SteadyClock::time_point::max();
  while (s.out.read || s.err.read || (socket_open && !exit_value)) {
    pollfd fds[4];
    int n = 0;
    if (socket_open) fds[n++] = {s.ch.fd(), POLLIN, 0};
    if (s.out.read) fds[n++] = {s.out.read.get(), POLLIN, 0};
    if (s.err.read) fds[n++] = {s.err.read.get(), POLLIN, 0};
    if (s.in_ours) fds[n++] = {s.in_ours.get(), POLLOUT, 0};
    int pr = ::poll(fds, static_cast<nfds_t>(n), timeout ? RemainingMs(deadline) : -1);
    if (pr < 0) {
      if (errno == EINTR) continue;
      return Err(ErrorCode::kInternal, Errno("poll"));
    }
    if (pr == 0 && timeout && SteadyClock::now() >= deadline) {
      // Closing the control connection makes the master close the session;
      // the remote `timeout` ends the remote process.
      st.timed_out = true;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents) SP_TRY(ServeFd(s, fds[i].fd, spec, st, written, exit_value, socket_open, pend));
    }
  }
  EmitLines(pend[0], false, spec.on_line, true);
  EmitLines(pend[1], true, spec.on_line, true);
  if (st.timed_out) return st;
  if (exit_value) {
    st.exit_code = static_cast<int>(*exit_value);
  } else {
    st.exit_code = 255;  // As ssh reports a session that ended without an exit status.
    st.err += "ssh: the session ended without an exit status\n";
  }
  return st;
}

Result<int> MuxAliveCheck(const std::string& ctl, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  SP_ASSIGN_OR_RETURN(Channel ch, Open(ctl, deadline));
  SP_TRY(ch.Send(MuxRequestMessage(kMuxAliveCheck, 1), deadline));
  SP_ASSIGN_OR_RETURN(MuxMessage m, ch.Read(deadline));
  if (m.type != kMuxAlive) return Refused(m, "an alive check");
  return static_cast<int>(m.ints[1]);
}

Status MuxTerminate(const std::string& ctl, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  SP_ASSIGN_OR_RETURN(Channel ch, Open(ctl, deadline));
  SP_TRY(ch.Send(MuxRequestMessage(kMuxTerminate, 1), deadline));
  // The master may exit before its answer arrives: EOF is success too.
  auto m = ch.Read(deadline);
  if (m && m->type != kMuxOk) return Refused(*m, "to exit");
  return Ok();
}

}  // namespace sp::ssh
