// sp-sample-app: the HTTP service that tests and the demo deploy.
//
// A deliberately plain HTTP/1.1 server: one thread per connection,
// keep-alive with Content-Length responses, statically linked so it runs in
// a Docker image built FROM scratch (no getaddrinfo, no NSS).
//
//   PORT / --port N        port to bind on 0.0.0.0 (0 = any free port)
//   APP_VERSION            version label (default "dev")
//   SAMPLE_HEALTH_FAIL_PORTS  comma list; /health answers 500 on these ports
//   SAMPLE_SYSLOG_LINE     replaces the start-up syslog message
//   SAMPLE_SECRET          a value the app only tells the hash of (secrets tests)
//
//   GET /            200 "version=<v> port=<p>\n"
//   GET /health      200 "ok\n" (or 500 "unhealthy (version V)\n", see above)
//   GET /slow?ms=N   sleeps N ms (at most 10000), then answers like "/"
//   GET /secret-hash 200 FNV-1a 64 of SAMPLE_SECRET as 16 hex digits (404 without it)
//
// There is intentionally no SIGTERM handler: the process dies at once on
// SIGTERM, so any request served without error during a rollout proves the
// load balancer drained it, not that the app shut down gracefully.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

namespace {

constexpr size_t kMaxHeaderBytes = 64u * 1024u;
constexpr int kMaxSlowMs = 10000;
// Idle keep-alive connections are closed after this long. It is far above
// any proxy timeout on purpose: a server closing an idle connection races
// with a proxy reusing it, which would show up as a failed request.
constexpr int kIdleTimeoutSeconds = 600;

struct Config {
  int port = 0;
  std::string version = "dev";
  bool health_fails = false;
  std::string secret_hash;  // Of SAMPLE_SECRET; empty without it.
};

Config g_config;

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string(fallback);
}

bool ParseInt(std::string_view s, int* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool PortListed(const std::string& list, int port) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string_view item(list.data() + start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int p = 0;
    if (ParseInt(item, &p) && p == port) return true;
    start = end + 1;
  }
  return false;
}

// Writes all of `data`, retrying on EINTR and partial writes.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool ContainsTokenIgnoreCase(std::string_view value, std::string_view token) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string_view::npos) end = value.size();
    std::string_view item = value.substr(start, end - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    start = end + 1;
  }
  return false;
}

struct Request {
  std::string method, target, version;
  long content_length = 0;
  bool chunked = false;
  bool keep_alive = true;
};

// Parses the request head (without the final blank line). False if malformed.
bool ParseHead(std::string_view head, Request* req) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  req->method = std::string(line.substr(0, sp1));
  req->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  req->version = std::string(line.substr(sp2 + 1));
  if (req->version != "HTTP/1.1" && req->version != "HTTP/1.0") return false;
  bool http11 = req->version == "HTTP/1.1";
  bool conn_close = false, conn_keep = false;
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view name = h.substr(0, colon);
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (EqualsIgnoreCase(name, "content-length")) {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), req->content_length);
      if (ec != std::errc() || p != value.data() + value.size() || req->content_length < 0) return false;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      req->chunked = true;
    } else if (EqualsIgnoreCase(name, "connection")) {
      conn_close |= ContainsTokenIgnoreCase(value, "close");
      conn_keep |= ContainsTokenIgnoreCase(value, "keep-alive");
    }
  }
  req->keep_alive = http11 ? !conn_close : conn_keep;
  return true;
}

std::string MainBody() {
  return "version=" + g_config.version + " port=" + std::to_string(g_config.port) + "\n";
}

// Returns status code and body for a request.
std::pair<int, std::string> Route(const Request& req) {
  std::string_view target = req.target;
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
  if (path == "/") return {200, MainBody()};
  if (path == "/secret-hash") {
    if (g_config.secret_hash.empty()) return {404, "no secret\n"};
    return {200, g_config.secret_hash + "\n"};
  }
  if (path == "/health") {
    // Says its version: a secret-valued APP_VERSION then reaches an error text (masking tests).
    if (g_config.health_fails) return {500, "unhealthy (version " + g_config.version + ")\n"};
    return {200, "ok\n"};
  }
  if (path == "/slow") {
    int ms = 0;
    bool found = false;
    size_t start = 0;
    while (start <= query.size()) {
      size_t end = query.find('&', start);
      if (end == std::string_view::npos) end = query.size();
      std::string_view kv = query.substr(start, end - start);
      if (kv.substr(0, 3) == "ms=") found = ParseInt(kv.substr(3), &ms);
      start = end + 1;
    }
    if (!found || ms < 0) return {400, "bad ms\n"};
    if (ms > kMaxSlowMs) ms = kMaxSlowMs;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return {200, MainBody()};
  }
  return {404, "not found\n"};
}

const char* Reason(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
  }
  return "Unknown";
}

bool Respond(int fd, int code, const std::string& body, bool keep_alive, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + Reason(code) +
                    "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                    (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
  if (!head_only) out += body;
  return WriteAll(fd, out);
}

void ServeConnection(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{kIdleTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string buf;
  char chunk[8192];
  while (true) {
    // Read until a complete head is buffered.
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > kMaxHeaderBytes) {
        Respond(fd, 431, "headers too large\n", false, false);
        ::close(fd);
        return;
      }
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // Peer closed, error, or idle timeout.
        ::close(fd);
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    Request req;
    if (!ParseHead(std::string_view(buf).substr(0, head_end), &req)) {
      Respond(fd, 400, "bad request\n", false, false);
      break;
    }
    if (req.chunked) {
      Respond(fd, 501, "chunked request bodies are not supported\n", false, false);
      break;
    }
    // Discard the request body.
    size_t need = head_end + 4 + static_cast<size_t>(req.content_length);
    while (buf.size() < need) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    buf.erase(0, need);
    auto [code, body] = Route(req);
    if (!Respond(fd, code, body, req.keep_alive, req.method == "HEAD") || !req.keep_alive) break;
  }
  ::close(fd);
}

int Usage(const char* why) {
  std::fprintf(stderr, "sp-sample-app: %s\nusage: sp-sample-app [--port N]  (or env PORT)\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  std::string port_text = EnvOr("PORT", "");
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port" && i + 1 < argc) {
      port_text = argv[++i];
    } else if (a.substr(0, 7) == "--port=") {
      port_text = std::string(a.substr(7));
    } else {
      return Usage("unknown argument");
    }
  }
  int port = -1;
  if (!ParseInt(port_text, &port) || port < 0 || port > 65535) return Usage("PORT or --port N is required");
  g_config.version = EnvOr("APP_VERSION", EnvOr("SALLYPORT_VERSION", "dev").c_str());
  if (const char* secret = std::getenv("SAMPLE_SECRET"); secret && *secret) {
    // FNV-1a 64: a test's check that the value arrived, not a protection.
    uint64_t h = 14695981039346656037ull;
    for (const char* c = secret; *c; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 1099511628211ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    g_config.secret_hash = buf;
  }

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) {
    std::perror("socket");
    return 1;
  }
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "sp-sample-app: bind 0.0.0.0:%d: %s\n", port, std::strerror(errno));
    return 1;
  }
  if (::listen(lfd, 1024) != 0) {
    std::perror("listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  g_config.port = ntohs(addr.sin_port);
  g_config.health_fails = PortListed(EnvOr("SAMPLE_HEALTH_FAIL_PORTS", ""), g_config.port);

  std::printf("listening on %d version %s\n", g_config.port, g_config.version.c_str());
  std::fflush(stdout);
  ::openlog("sp-sample-app", LOG_PID | LOG_NDELAY, LOG_USER);
  if (const char* line = std::getenv("SAMPLE_SYSLOG_LINE")) {
    ::syslog(LOG_INFO, "%s", line);
  } else {
    ::syslog(LOG_INFO, "sp-sample-app %s started on port %d", g_config.version.c_str(), g_config.port);
  }

  while (true) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EMFILE and friends: back off briefly instead of spinning.
      std::fprintf(stderr, "sp-sample-app: accept: %s\n", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    try {
      std::thread(ServeConnection, c).detach();
    } catch (const std::system_error& e) {  // Out of threads: refuse this one.
      std::fprintf(stderr, "sp-sample-app: thread: %s\n", e.what());
      ::close(c);
    }
  }
}
