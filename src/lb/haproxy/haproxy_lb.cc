#include "lb/haproxy/haproxy_lb.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/fd.h"
#include "core/text.h"

namespace sp {
namespace {

constexpr size_t kMaxAnswerBytes = 64u << 20;  // A runaway answer is an error, not an OOM.

std::string Errno(int err) { return std::strerror(err); }

// Milliseconds left until `deadline_ms` on `clock`, at least 0.
int RemainingMs(Clock& clock, int64_t deadline_ms) {
  const int64_t left = deadline_ms - clock.MonotonicMs();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd until the deadline. Returns false on timeout.
Result<bool> PollUntil(Clock& clock, int fd, short events, int64_t deadline_ms) {
  while (true) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, RemainingMs(clock, deadline_ms));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return Err(ErrorCode::kInternal, "poll: " + Errno(errno));
  }
}

// Splits one CSV line into fields, stopping after `max_fields` fields.
// Understands "quoted, fields" with "" as an escaped quote.
bool SplitCsv(std::string_view line, size_t max_fields, std::vector<std::string>* out) {
  out->clear();
  size_t i = 0;
  while (out->size() < max_fields) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) return false;  // Unterminated quote.
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != ',') return false;
    } else {
      size_t end = line.find(',', i);
      if (end == std::string_view::npos) end = line.size();
      field.assign(line.substr(i, end - i));
      i = end;
    }
    out->push_back(std::move(field));
    if (i >= line.size()) break;
    ++i;  // Skip the comma.
    if (i == line.size()) {  // Trailing comma: one more, empty field.
      if (out->size() < max_fields) out->push_back("");
      break;
    }
  }
  return true;
}

std::string Excerpt(std::string_view text) {
  std::string t = Trim(text.substr(0, 200));
  for (char& c : t) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return t.empty() ? "(empty answer)" : "\"" + t + "\"";
}

Status CheckNames(const std::string& backend, const std::string& server) {
  if (!IsValidHaproxyName(backend)) {
    return Err(ErrorCode::kInvalidArgument, "invalid haproxy backend name \"" + backend + "\"");
  }
  if (!IsValidHaproxyName(server)) {
    return Err(ErrorCode::kInvalidArgument, "invalid haproxy server name \"" + server + "\"");
  }
  return Ok();
}

}  // namespace

bool IsValidHaproxyName(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-' || c == ':';
    if (!ok) return false;
  }
  return true;
}

AdminState AdminStateFromStatus(std::string_view status) {
  if (StartsWith(status, "MAINT")) return AdminState::kMaint;
  if (StartsWith(status, "DRAIN")) return AdminState::kDrain;
  return AdminState::kReady;
}

Result<BackendStat> ParseShowStat(std::string_view csv, std::string_view backend) {
  std::string_view rest = csv;
  auto next_line = [&rest]() {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  std::string_view header = next_line();
  if (!StartsWith(header, "# ")) {
    if (Trim(csv) == "No such proxy.") {
      return Err(ErrorCode::kNotFound, "haproxy backend \"" + std::string(backend) + "\" not found");
    }
    return Err(ErrorCode::kInternal, "show stat: no CSV header in answer " + Excerpt(csv));
  }
  std::vector<std::string> names;
  SplitCsv(header.substr(2), SIZE_MAX, &names);
  constexpr size_t kMissing = SIZE_MAX;
  size_t px = kMissing, sv = kMissing, scur = kMissing, status = kMissing;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (n == "pxname") px = i;
    else if (n == "svname") sv = i;
    else if (n == "scur") scur = i;
    else if (n == "status") status = i;
  }
  for (auto [idx, name] : {std::pair{px, "pxname"}, {sv, "svname"}, {scur, "scur"}, {status, "status"}}) {
    if (idx == kMissing) {
      return Err(ErrorCode::kInternal, std::string("show stat: no \"") + name + "\" column in header");
    }
  }
  const size_t needed = std::max({px, sv, scur, status}) + 1;

  BackendStat out;
  std::vector<std::string> fields;
  while (!rest.empty()) {
    std::string_view line = next_line();
    if (line.empty()) continue;
    // Cheap pre-filter: most rows of a full `show stat` belong to other proxies.
    if (px == 0 && !(StartsWith(line, backend) && line.size() > backend.size() &&
                     line[backend.size()] == ',') && line[0] != '"') {
      continue;
    }
    if (!SplitCsv(line, needed, &fields) || fields.size() < needed) {
      return Err(ErrorCode::kInternal, "show stat: malformed row " + Excerpt(line));
    }
    if (fields[px] != backend) continue;
    out.backend_seen = true;
    if (fields[sv] == "FRONTEND" || fields[sv] == "BACKEND") continue;
    ServerState s;
    s.name = fields[sv];
    s.status = fields[status];
    s.admin = AdminStateFromStatus(s.status);
    const std::string& cur = fields[scur];
    if (!cur.empty()) {
      auto [p, ec] = std::from_chars(cur.data(), cur.data() + cur.size(), s.sessions);
      if (ec != std::errc() || p != cur.data() + cur.size() || s.sessions < 0) {
        return Err(ErrorCode::kInternal, "show stat: bad scur \"" + cur + "\" for " + std::string(backend) +
                                             "/" + s.name);
      }
    }
    out.servers.push_back(std::move(s));
  }
  return out;
}

HaproxyLoadBalancer::HaproxyLoadBalancer(std::string socket_path, std::string host, int port, Millis io_timeout)
    : socket_path_(std::move(socket_path)), host_(std::move(host)), port_(port), io_timeout_(io_timeout) {}

Result<std::unique_ptr<HaproxyLoadBalancer>> HaproxyLoadBalancer::Create(const LoadBalancerSpec& spec,
                                                                         Millis io_timeout) {
  if (spec.socket.empty() == spec.address.empty()) {
    return Err(ErrorCode::kInvalidArgument,
               "haproxy load balancer needs exactly one of socket or address (got " +
                   std::string(spec.socket.empty() ? "neither" : "both") + ")");
  }
  if (io_timeout <= Millis(0)) {
    return Err(ErrorCode::kInvalidArgument, "haproxy I/O timeout must be positive");
  }
  if (!spec.socket.empty()) {
    if (spec.socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Err(ErrorCode::kInvalidArgument, "haproxy socket path too long: " + spec.socket);
    }
    return std::unique_ptr<HaproxyLoadBalancer>(new HaproxyLoadBalancer(spec.socket, "", 0, io_timeout));
  }
  // "host:port", "[v6]:port".
  const std::string& a = spec.address;
  auto hp = ParseHostPort(a);
  if (!hp || !IsSafeValue(hp->host) || hp->host.find(' ') != std::string::npos) {
    return Err(ErrorCode::kInvalidArgument, "haproxy address \"" + a + "\" is not host:port");
  }
  return std::unique_ptr<HaproxyLoadBalancer>(new HaproxyLoadBalancer("", hp->host, hp->port, io_timeout));
}

std::string HaproxyLoadBalancer::Describe() const {
  if (!socket_path_.empty()) return "haproxy unix:" + socket_path_;
  bool v6 = host_.find(':') != std::string::npos;
  return "haproxy tcp:" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

namespace {

// The address of the runtime API: its unix socket, or host:port over TCP.
struct Peer {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_UNIX;
};

Result<Peer> ResolvePeer(const std::string& socket_path, const std::string& host, int port) {
  Peer p;
  if (!socket_path.empty()) {
    auto* un = reinterpret_cast<sockaddr_un*>(&p.addr);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, socket_path.c_str(), socket_path.size() + 1);
    p.len = sizeof(sockaddr_un);
    return p;
  }
  auto* in4 = reinterpret_cast<sockaddr_in*>(&p.addr);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&p.addr);
  if (::inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
    p.family = in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(port));
    p.len = sizeof(sockaddr_in);
    return p;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    p.family = in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    p.len = sizeof(sockaddr_in6);
    return p;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) return Err(ErrorCode::kUnavailable, std::string("resolve: ") + ::gai_strerror(rc));
  std::memcpy(&p.addr, res->ai_addr, res->ai_addrlen);
  p.len = res->ai_addrlen;
  p.family = res->ai_family;
  ::freeaddrinfo(res);
  if (p.family == AF_INET) reinterpret_cast<sockaddr_in*>(&p.addr)->sin_port = htons(static_cast<uint16_t>(port));
  if (p.family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&p.addr)->sin6_port = htons(static_cast<uint16_t>(port));
  return p;
}

}  // namespace

Result<UniqueFd> HaproxyLoadBalancer::Connect(int64_t deadline_ms) {
  auto unavailable = [&](const std::string& why) {
    return Err(ErrorCode::kUnavailable, Describe() + ": cannot connect: " + why);
  };
  auto peer = ResolvePeer(socket_path_, host_, port_);
  if (!peer) return unavailable(peer.error().message);
  UniqueFd fd(::socket(peer->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return unavailable("socket: " + Errno(errno));
  // A full unix listen backlog answers EAGAIN: retry until the deadline.
  while (true) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&peer->addr), peer->len) == 0) return fd;
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN && peer->family == AF_UNIX) {
      if (RemainingMs(clock_, deadline_ms) == 0) return unavailable("listen backlog full until timeout");
      clock_.Sleep(Millis(1));
      continue;
    }
    if (err != EINPROGRESS) return unavailable(Errno(err));
    SP_ASSIGN_OR_RETURN(bool ready, PollUntil(clock_, fd.get(), POLLOUT, deadline_ms));
    if (!ready) return unavailable("timed out after " + FormatDuration(io_timeout_));
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) return unavailable(Errno(so_error));
    return fd;
  }
}

Result<std::string> HaproxyLoadBalancer::Command(const std::string& cmd) {
  if (cmd.empty() || cmd.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) {
    return Err(ErrorCode::kInvalidArgument, "haproxy command must be one non-empty line");
  }
  const int64_t deadline = clock_.MonotonicMs() + io_timeout_.count();
  const std::string where = Describe();
  SP_ASSIGN_OR_RETURN(UniqueFd fd, Connect(deadline));
  auto timed_out = [&](const char* phase) {
    return Err(ErrorCode::kTimeout, where + ": no complete answer to \"" + cmd + "\" within " +
                                        FormatDuration(io_timeout_) + " (" + phase + ")");
  };
  // Send "cmd\n", coping with partial writes.
  const std::string line = cmd + "\n";
  for (size_t sent = 0; sent < line.size();) {
    ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      SP_ASSIGN_OR_RETURN(bool ready, PollUntil(clock_, fd.get(), POLLOUT, deadline));
      if (!ready) return timed_out("writing");
    } else if (!(n < 0 && errno == EINTR)) {
      return Err(ErrorCode::kUnavailable, where + ": sending \"" + cmd + "\": " + Errno(errno));
    }
  }
  // Read until HAProxy closes the connection.
  std::string answer;
  char buf[16384];
  while (true) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      if (answer.size() > kMaxAnswerBytes) {
        return Err(ErrorCode::kInternal, where + ": answer to \"" + cmd + "\" larger than 64 MiB");
      }
    } else if (n == 0) {
      return answer;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      SP_ASSIGN_OR_RETURN(bool ready, PollUntil(clock_, fd.get(), POLLIN, deadline));
      if (!ready) return timed_out("reading");
    } else if (errno != EINTR) {
      return Err(ErrorCode::kUnavailable, where + ": reading answer to \"" + cmd + "\": " + Errno(errno));
    }
  }
}

Status HaproxyLoadBalancer::SetState(const std::string& backend, const std::string& server, AdminState state) {
  SP_TRY(CheckNames(backend, server));
  const std::string cmd =
      "set server " + backend + "/" + server + " state " + std::string(AdminStateName(state));
  SP_ASSIGN_OR_RETURN(std::string answer, Command(cmd));
  std::string text = Trim(answer);
  if (text.empty()) return Ok();
  if (text == "No such backend.") {
    return Err(ErrorCode::kNotFound, Describe() + ": backend \"" + backend + "\" not found");
  }
  if (text == "No such server.") {
    return Err(ErrorCode::kNotFound, Describe() + ": server \"" + server + "\" not found in backend \"" +
                                         backend + "\"");
  }
  if (text.find("Permission denied") != std::string::npos) {
    return Err(ErrorCode::kUnavailable,
               Describe() + ": permission denied for \"" + cmd + "\" (the socket needs \"level admin\")");
  }
  return Err(ErrorCode::kInternal, Describe() + ": unexpected answer to \"" + cmd + "\": " + Excerpt(text));
}

Status HaproxyLoadBalancer::AddServer(const std::string& backend, const std::string& server,
                                     const std::string& address, int port) {
  SP_TRY(CheckNames(backend, server));
  // An IP literal or a DNS name: nothing HAProxy's CLI would read as another
  // word or command.
  const bool address_ok = !address.empty() && address.size() <= 253 &&
                          std::all_of(address.begin(), address.end(), [](char c) {
                            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
                          });
  if (!address_ok) return Err(ErrorCode::kInvalidArgument, "invalid server address \"" + address + "\"");
  if (port < 1 || port > 65535) return Err(ErrorCode::kInvalidArgument, "invalid server port " + std::to_string(port));
  const std::string cmd = "add server " + backend + "/" + server + " " + address + ":" + std::to_string(port);
  SP_ASSIGN_OR_RETURN(std::string answer, Command(cmd));
  std::string text = Trim(answer);
  if (text == "New server registered.") return Ok();
  if (text == "No such backend.") {
    return Err(ErrorCode::kNotFound, Describe() + ": backend \"" + backend + "\" not found");
  }
  if (text.find("lready exists") != std::string::npos) {
    return Err(ErrorCode::kConflict, Describe() + ": backend \"" + backend + "\" already has a server \"" +
                                              server + "\"");
  }
  if (text.find("Permission denied") != std::string::npos) {
    return Err(ErrorCode::kUnavailable,
               Describe() + ": permission denied for \"" + cmd + "\" (the socket needs \"level admin\")");
  }
  return Err(ErrorCode::kInternal, Describe() + ": \"" + cmd + "\" refused: " + Excerpt(text));
}

Status HaproxyLoadBalancer::RemoveServer(const std::string& backend, const std::string& server) {
  SP_TRY(SetState(backend, server, AdminState::kMaint));  // kNotFound when absent.
  const std::string target = backend + "/" + server;
  SP_ASSIGN_OR_RETURN(std::string cut, Command("shutdown sessions server " + target));
  if (!Trim(cut).empty()) {
    return Err(ErrorCode::kInternal, Describe() + ": \"shutdown sessions server " + target + "\" refused: " +
                                         Excerpt(Trim(cut)));
  }
  const std::string cmd = "del server " + target;
  SP_ASSIGN_OR_RETURN(std::string answer, Command(cmd));
  std::string text = Trim(answer);
  if (text == "Server deleted.") return Ok();
  if (text == "No such server.") {
    return Err(ErrorCode::kNotFound, Describe() + ": server \"" + server + "\" not found in backend \"" + backend + "\"");
  }
  // E.g. "Server still has connections attached to it, cannot remove it."
  return Err(ErrorCode::kUnavailable, Describe() + ": \"" + cmd + "\" refused: " + Excerpt(text));
}

Result<BackendStat> HaproxyLoadBalancer::ShowBackend(const std::string& backend) {
  if (!IsValidHaproxyName(backend)) {
    return Err(ErrorCode::kInvalidArgument, "invalid haproxy backend name \"" + backend + "\"");
  }
  // `show stat <proxy> <type> <sid>` (type 6 = backend + servers) asks for this
  // backend only. HAProxy reads a leading digit as a numeric proxy id (atoi),
  // so such names take all backends ("-1") and are filtered here.
  bool by_name = !(backend[0] >= '0' && backend[0] <= '9');
  const std::string cmd = "show stat " + (by_name ? backend : std::string("-1")) + " 6 -1";
  SP_ASSIGN_OR_RETURN(std::string answer, Command(cmd));
  auto stat = ParseShowStat(answer, backend);
  if (!stat) {
    if (stat.error().code == ErrorCode::kNotFound) {
      return Err(ErrorCode::kNotFound, Describe() + ": backend \"" + backend + "\" not found");
    }
    return Err(stat.error().Wrap(Describe()));
  }
  if (!stat->backend_seen) {
    return Err(ErrorCode::kNotFound, Describe() + ": backend \"" + backend + "\" not found");
  }
  return stat;
}

Result<ServerState> HaproxyLoadBalancer::GetServer(const std::string& backend, const std::string& server) {
  SP_TRY(CheckNames(backend, server));
  SP_ASSIGN_OR_RETURN(BackendStat stat, ShowBackend(backend));
  for (auto& s : stat.servers) {
    if (s.name == server) return std::move(s);
  }
  return Err(ErrorCode::kNotFound,
             Describe() + ": server \"" + server + "\" not found in backend \"" + backend + "\"");
}

Result<std::vector<ServerState>> HaproxyLoadBalancer::ListBackend(const std::string& backend) {
  SP_ASSIGN_OR_RETURN(BackendStat stat, ShowBackend(backend));
  return std::move(stat.servers);
}

Result<std::unique_ptr<LoadBalancer>> MakeHaproxyLoadBalancer(const LoadBalancerSpec& spec, Millis io_timeout) {
  SP_ASSIGN_OR_RETURN(std::unique_ptr<HaproxyLoadBalancer> lb, HaproxyLoadBalancer::Create(spec, io_timeout));
  return std::unique_ptr<LoadBalancer>(std::move(lb));
}

}  // namespace sp
