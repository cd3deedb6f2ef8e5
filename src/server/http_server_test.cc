// The socket side (http_server.h) over real loopback connections, with
// limits made small: heads that arrive too slowly, bodies over a route's
// limit, connection caps, and lanes that a flood of streams cannot take
// from the quick answers.
#include "server/http_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "support/test_util.h"

namespace sp::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

void Send(int fd, const std::string& s) { ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }

// What arrives until the server closes or `until` is in it (within `timeout`).
std::string Receive(int fd, const std::string& until = "", std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::string got;
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end && (until.empty() || got.find(until) == std::string::npos)) {
    pollfd p{fd, POLLIN, 50};
    if (::poll(&p, 1, 50) != 1) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, n);
  }
  return got;
}

// Whether the server closed fd within `timeout` (reading and dropping what it sent).
bool ClosedWithin(int fd, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) != 1) continue;
    char buf[4096];
    if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
  return false;
}

std::string Get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"; }

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions o) {
    router_.Add({
        {Method::kGet, "/ping", Access::Public(),
         [](const Request& req, Response& res) { res.Json(200, {{"q", req.Param("q")}, {"path", req.path}}); }},
        {Method::kPost, "/echo", Access::Public(),
         [this](const Request& req, Response& res) {
           ++echoed_;
           res.Json(200, {{"bytes", req.body.size()}});
         },
         Lane::kQuick, 1000},
        {Method::kGet, "/stream", Access::Public(),
         [this](const Request&, Response& res) {
           res.stream = [this](StreamSink& sink) {
             ++streaming_;
             while (sink.is_writable() && !release_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
             --streaming_;
             sink.write("end\n", 4);
             sink.done();
             return true;
           };
         },
         Lane::kStream},
    });
    server_ = std::make_unique<HttpServer>(router_, o);
    auto st = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(st) << st.error().message;
  }
  void TearDown() override {
    release_ = true;
    if (server_) server_->Stop();
    for (int fd : fds_) ::close(fd);
  }
  int Open(int src = 1) {
    const int fd = test::DialFrom("127.0.0." + std::to_string(src), server_->port());
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  Router router_{[](const std::string&) -> Result<Caller> { return Err(ErrorCode::kUnauthenticated, "no"); }};
  std::unique_ptr<HttpServer> server_;
  std::vector<int> fds_;
  std::atomic<int> echoed_{0}, streaming_{0};
  std::atomic<bool> release_{false};
};

TEST_F(HttpServerTest, AnswersKeepAliveRequestsWithTheQueryAndPathDecoded) {
  StartServer({});
  const int fd = Open();
  Send(fd, Get("/pi%6eg?q=a%20b+c&x"));
  EXPECT_THAT(Receive(fd, "}"), HasSubstr(R"({"q":"a b c","path":"/ping"})"));
  Send(fd, Get("/nowhere"));  // The same connection, kept alive.
  const std::string missing = Receive(fd, "}");
  EXPECT_THAT(missing, StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(missing, HasSubstr("no route for GET /nowhere"));
  Send(fd, "PATCH /ping HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_THAT(Receive(fd, "}"), StartsWith("HTTP/1.1 405"));
}

// A name as --listen takes it (resolved from /etc/hosts: no query leaves the machine).
TEST_F(HttpServerTest, ListensOnANameAsOnAnAddress) {
  router_.Add({{Method::kGet, "/ping", Access::Public(), [](const Request&, Response& res) { res.Json(200, {{"ok", true}}); }}});
  server_ = std::make_unique<HttpServer>(router_, HttpServerOptions{});
  ASSERT_TRUE(server_->Start("localhost", 0));
  const int fd = Open();
  ASSERT_GE(fd, 0);
  Send(fd, Get("/ping"));
  EXPECT_THAT(Receive(fd, "}"), StartsWith("HTTP/1.1 200"));
}

TEST_F(HttpServerTest, AHeadThatArrivesTooSlowlyIsClosedWhateverItsPace) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(300);
  StartServer(o);
  const int slow = Open();
  Send(slow, "GET /ping HTTP/1.1\r\n");
  // One byte every 50 ms: each arrives well within any per-read timeout.
  bool closed = false;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 40 && !closed; ++i) {
    if (::send(slow, "X", 1, MSG_NOSIGNAL) != 1) break;
    closed = ClosedWithin(slow, std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(closed) << "a head sent byte by byte for 2 s";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
  // An idle kept-alive connection is not a slow head: it waits for its idle timeout.
  const int idle = Open();
  EXPECT_FALSE(ClosedWithin(idle, std::chrono::milliseconds(600)));
  Send(idle, Get("/ping"));
  EXPECT_THAT(Receive(idle, "}"), StartsWith("HTTP/1.1 200"));
}

TEST_F(HttpServerTest, ABodyOverItsRoutesLimitIsRefusedFromItsLengthBeforeItIsRead) {
  StartServer({});
  const int fd = Open();
  Send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n");  // No body sent at all.
  const std::string answer = Receive(fd, "}");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(answer, HasSubstr("takes at most 1000"));
  EXPECT_EQ(echoed_, 0);
  // Within the limit, with Expect: 100-continue: told to go on, then answered.
  const int ok = Open();
  Send(ok, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_THAT(Receive(ok, "\r\n\r\n"), StartsWith("HTTP/1.1 100 Continue"));
  Send(ok, std::string(1000, 'x'));
  EXPECT_THAT(Receive(ok, "}"), HasSubstr(R"({"bytes":1000})"));
  // A chunked body that grows past the limit is cut off with 413.
  const int chunked = Open();
  Send(chunked, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + std::string(1000, 'y') +
                    "\r\n10\r\n" + std::string(16, 'z') + "\r\n0\r\n\r\n");
  EXPECT_THAT(Receive(chunked, "}"), StartsWith("HTTP/1.1 413"));
  EXPECT_EQ(echoed_, 1);
}

TEST_F(HttpServerTest, EachClientAddressHoldsAtMostItsCapAndOthersStillConnect) {
  HttpServerOptions o;
  o.max_connections_per_client = 3;
  StartServer(o);
  for (int i = 0; i < 3; ++i) Open(7);
  const int fourth = Open(7);
  const std::string refused = Receive(fourth);
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 429"));
  EXPECT_THAT(refused, HasSubstr("Retry-After: 1"));
  const int other = Open(8);  // Another client.
  Send(other, Get("/ping"));
  EXPECT_THAT(Receive(other, "}"), StartsWith("HTTP/1.1 200"));
}

TEST_F(HttpServerTest, AtTheConnectionCapTheLongestWaitingIsClosedForANewcomer) {
  HttpServerOptions o;
  o.max_connections = 4;
  StartServer(o);
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(Open(10 + i));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Distinct waiting times.
  }
  const int late = Open(20);
  Send(late, Get("/ping"));
  EXPECT_THAT(Receive(late, "}"), StartsWith("HTTP/1.1 200"));
  EXPECT_TRUE(ClosedWithin(held[0], std::chrono::seconds(2))) << "the one that waited longest";
  for (size_t i = 1; i < held.size(); ++i) EXPECT_FALSE(ClosedWithin(held[i], std::chrono::milliseconds(50))) << i;
  // Nobody waiting (every connection busy with a stream): 503.
  for (size_t i = 1; i < held.size(); ++i) Send(held[i], Get("/stream"));
  Send(late, Get("/stream"));
  for (int i = 0; i < 200 && streaming_ < 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(streaming_, 4);
  const int refused = Open(21);
  EXPECT_THAT(Receive(refused), StartsWith("HTTP/1.1 503"));
}

TEST_F(HttpServerTest, StreamsFillTheirOwnLaneNeverTheQuickOne) {
  HttpServerOptions o;
  o.threads = 2;
  o.stream_threads = 4;
  StartServer(o);
  for (int i = 0; i < 4; ++i) Send(Open(), Get("/stream"));
  for (int i = 0; i < 200 && streaming_ < 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(streaming_, 4);
  const int fifth = Open();
  Send(fifth, Get("/stream"));
  const std::string busy = Receive(fifth, "}");
  EXPECT_THAT(busy, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(busy, HasSubstr("log streams"));
  // The quick lane (2 workers) answers 20 requests while 4 streams hold their lane.
  const int quick = Open();
  for (int i = 0; i < 20; ++i) {
    Send(quick, Get("/ping"));
    ASSERT_THAT(Receive(quick, "}"), StartsWith("HTTP/1.1 200")) << i;
  }
  release_ = true;
  for (int i = 0; i < 200 && streaming_ > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(streaming_, 0);
}

TEST_F(HttpServerTest, AStreamWhoseClientLeftEndsWithoutAWrite) {
  StartServer({});
  const int fd = Open();
  Send(fd, Get("/stream"));
  for (int i = 0; i < 200 && streaming_ < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(streaming_, 1);
  ::close(fd);
  fds_.clear();
  for (int i = 0; i < 200 && streaming_ > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(streaming_, 0) << "is_writable told the stream its client is gone";
}

}  // namespace
}  // namespace sp::http
