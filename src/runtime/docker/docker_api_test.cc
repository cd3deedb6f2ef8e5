#include "runtime/docker/docker_api.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "support/test_util.h"

namespace sp {
namespace {

// One HTTP/1.1 exchange on a unix socket: reads the request head, answers
// with `status` and `body` (Connection: close, no length: read to the end).
class OneShotServer {
 public:
  OneShotServer(const std::string& path, std::string status, std::string body)
      : status_(std::move(status)), body_(std::move(body)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 1) == 0;
    if (ok_) thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotServer() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  std::string request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  void Serve() {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    char buf[4096];
    while (request_.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
    }
    std::string out = "HTTP/1.1 " + status_ + "\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body_;
    for (size_t off = 0; off < out.size();) {
      ssize_t n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);  // The client may stop reading.
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(c);
  }

  int fd_ = -1;
  bool ok_ = false;
  std::string status_, body_, request_;
  std::thread thread_;
};

// A pull's progress: ~9 MiB of lines, then the engine's error line.
std::string LongProgressThenError() {
  std::string body;
  const std::string line = R"({"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"0123456789ab"})"
                           "\n";
  while (body.size() < (9u << 20)) body += line;
  return body + R"({"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"})" + "\n";
}

TEST(DockerApiTest, AStreamedReplyIsReadLineByLineWithoutTheSizeLimit) {
  test::TempDir dir("sp-dapi");
  OneShotServer server(dir / "d.sock", "200 OK", LongProgressThenError());
  ASSERT_TRUE(server.ok());
  size_t lines = 0;
  std::string error_line;
  auto r = DockerApiCall(dir / "d.sock", "POST", "/images/create?fromImage=x&tag=latest", "",
                         {"X-Registry-Auth: e30="}, Millis(30'000), [&](std::string_view line) {
                           ++lines;
                           if (line.find("\"error\"") != std::string_view::npos) error_line = std::string(line);
                         });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_GT(lines, 90'000u);
  EXPECT_NE(error_line.find("unexpected EOF"), std::string::npos);
  EXPECT_LE(r->body.size(), 128u << 10) << "only the stream's tail is kept";
  const std::string req = server.request();
  EXPECT_EQ(req.rfind("POST /images/create?fromImage=x&tag=latest HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("X-Registry-Auth: e30=\r\n"), std::string::npos) << req;
}

TEST(DockerApiTest, AReplyOverTheLimitIsAnErrorWhenNotStreamed) {
  test::TempDir dir("sp-dapi");
  OneShotServer server(dir / "d.sock", "200 OK", LongProgressThenError());
  ASSERT_TRUE(server.ok());
  auto r = DockerApiCall(dir / "d.sock", "GET", "/containers/json", "", {}, Millis(30'000));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("over 8 MiB"), std::string::npos) << r.error().message;
}

TEST(DockerApiTest, TheEnginesErrorMessageIsReadFromItsJson) {
  test::TempDir dir("sp-dapi");
  OneShotServer server(dir / "d.sock", "404 Not Found", R"({"message":"No such container: sp-x"})" "\n");
  ASSERT_TRUE(server.ok());
  auto r = DockerApiCall(dir / "d.sock", "POST", "/containers/sp-x/stop?t=5", "", {}, Millis(10'000));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->Message(), "No such container: sp-x");
  EXPECT_EQ((ApiResponse{500, ""}).Message(), "HTTP 500");
}

TEST(DockerApiTest, NoServerIsUnavailableNotAResponse) {
  test::TempDir dir("sp-dapi");
  auto r = DockerApiCall(dir / "absent.sock", "GET", "/_ping", "", {}, Millis(2'000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

TEST(DockerApiTest, QueryValuesArePercentEncoded) {
  EXPECT_EQ(UrlEncode(R"({"label":["a=b"]})"), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
  EXPECT_EQ(UrlEncode("10.0.0.3:5000/app"), "10.0.0.3%3A5000%2Fapp");
  EXPECT_EQ(UrlEncode("sha256:ab-_.~"), "sha256%3Aab-_.~");
}

}  // namespace
}  // namespace sp
