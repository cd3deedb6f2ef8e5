// CurlHealthChecker against real sockets on 127.0.0.1: a tiny HTTP server
// thread, a closed port, and a listener that never answers.
#include "health/http/http_health.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace sp {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A listening socket on 127.0.0.1 with an OS-chosen port.
int Listen(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// One connection per request; answers by path:
//   /health -> 200 "ok"; /big -> 200 with 10 kB; /moved -> 302 to /health;
//   anything else -> 404 "not found: <path>".
class TinyHttpServer {
 public:
  TinyHttpServer() {
    fd_ = Listen(&port_);
    if (fd_ >= 0) thread_ = std::thread([this] { Loop(); });
  }
  ~TinyHttpServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }
  bool ok() const { return fd_ >= 0; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Serve(c);
      ::close(c);
    }
  }
  static void Serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    auto sp1 = req.find(' ');
    auto sp2 = req.find(' ', sp1 + 1);
    std::string path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string status = "404 Not Found", body = "not found: " + path, extra;
    if (path == "/health") {
      status = "200 OK";
      body = "ok";
    } else if (path == "/big") {
      status = "200 OK";
      body = std::string(10'000, 'b');
    } else if (path == "/moved") {
      status = "302 Found";
      body = "moved";
      extra = "Location: /health\r\n";
    }
    std::string resp = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n" + extra + "\r\n" + body;
    size_t off = 0;
    while (off < resp.size()) {
      ssize_t w = ::send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return;
      off += static_cast<size_t>(w);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(CurlHealthCheckerIT, HealthyEndpointIsOk) {
  TinyHttpServer server;
  ASSERT_TRUE(server.ok());
  CurlHealthChecker checker;
  HealthProbe p = checker.Probe("127.0.0.1", server.port(), HealthCheckSpec{});
  EXPECT_TRUE(p.ok) << p.Describe();
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.body, "ok");
  EXPECT_EQ(p.Describe(), "HTTP 200: ok");
}

TEST(CurlHealthCheckerIT, NotFoundIsNotOkAndReportsStatusAndBody) {
  TinyHttpServer server;
  ASSERT_TRUE(server.ok());
  CurlHealthChecker checker;
  HealthCheckSpec spec;
  spec.path = "/nope";
  HealthProbe p = checker.Probe("127.0.0.1", server.port(), spec);
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.status, 404);
  EXPECT_EQ(p.body, "not found: /nope");
  EXPECT_EQ(p.Describe(), "HTTP 404: not found: /nope");
  // The expected status is configurable.
  spec.expected_status = 404;
  EXPECT_TRUE(checker.Probe("127.0.0.1", server.port(), spec).ok);
}

TEST(CurlHealthCheckerIT, RedirectsAreNotFollowed) {
  TinyHttpServer server;
  ASSERT_TRUE(server.ok());
  CurlHealthChecker checker;
  HealthCheckSpec spec;
  spec.path = "/moved";
  HealthProbe p = checker.Probe("127.0.0.1", server.port(), spec);
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.status, 302);
}

TEST(CurlHealthCheckerIT, BodyIsCappedAt512Bytes) {
  TinyHttpServer server;
  ASSERT_TRUE(server.ok());
  CurlHealthChecker checker;
  HealthCheckSpec spec;
  spec.path = "/big";
  HealthProbe p = checker.Probe("127.0.0.1", server.port(), spec);
  EXPECT_TRUE(p.ok) << p.Describe();
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.body, std::string(512, 'b'));
  EXPECT_LT(p.Describe().size(), 300u);
}

TEST(CurlHealthCheckerIT, ProxyEnvironmentIsIgnored) {
  TinyHttpServer server;
  ASSERT_TRUE(server.ok());
  const int dead = test::FreePort();
  const std::string proxy = "http://127.0.0.1:" + std::to_string(dead);
  ::setenv("http_proxy", proxy.c_str(), 1);
  ::setenv("HTTP_PROXY", proxy.c_str(), 1);
  CurlHealthChecker checker;
  HealthProbe p = checker.Probe("127.0.0.1", server.port(), HealthCheckSpec{});
  ::unsetenv("http_proxy");
  ::unsetenv("HTTP_PROXY");
  EXPECT_TRUE(p.ok) << p.Describe();
}

TEST(CurlHealthCheckerIT, ClosedPortHasStatusZeroAndErrorText) {
  CurlHealthChecker checker;
  HealthProbe p = checker.Probe("127.0.0.1", test::FreePort(), HealthCheckSpec{});
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.status, 0);
  EXPECT_FALSE(p.error.empty());
  EXPECT_EQ(p.Describe(), p.error);
}

TEST(CurlHealthCheckerIT, SilentServerTimesOutWithinSpecTimeout) {
  int port = 0;
  int fd = Listen(&port);  // Accepted by the kernel backlog, never answered.
  ASSERT_GE(fd, 0);
  CurlHealthChecker checker;
  HealthCheckSpec spec;
  spec.timeout = milliseconds(400);
  const auto t0 = steady_clock::now();
  HealthProbe p = checker.Probe("127.0.0.1", port, spec);
  const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0).count();
  ::close(fd);
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.status, 0);
  EXPECT_NE(p.error.find("timed out"), std::string::npos) << p.error;
  EXPECT_GE(took, 390);
  EXPECT_LT(took, 1400);
}

TEST(HealthProbeTest, DescribeIsOneLine) {
  HealthProbe p;
  EXPECT_EQ(p.Describe(), "no response");
  p.error = "Connection refused";
  EXPECT_EQ(p.Describe(), "Connection refused");
  p.status = 500;
  p.body = "boom\nstack\n";
  EXPECT_EQ(p.Describe(), "HTTP 500: boom stack");
  p.body = "";
  EXPECT_EQ(p.Describe(), "HTTP 500");
}

}  // namespace
}  // namespace sp
