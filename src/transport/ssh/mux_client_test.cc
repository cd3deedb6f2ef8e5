// Unit tests of the mux client: the framing byte for byte, and the session
// logic against a scripted peer on a real unix socket. The real OpenSSH master
// is exercised by the lab tests (it_lab_ssh_transport_test).
#include "transport/ssh/mux_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "core/fd.h"

namespace sp::ssh {
namespace {

std::string U32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string Str(const std::string& s) { return U32(static_cast<uint32_t>(s.size())) + s; }

TEST(MuxFramingTest, HelloIsLengthTypeVersion) {
  EXPECT_EQ(MuxHelloMessage(), U32(8) + U32(1) + U32(4));
}

TEST(MuxFramingTest, NewSessionCarriesTheCommandWithoutTtyEscapeOrEnv) {
  const std::string body = U32(0x10000002) + U32(9) + Str("") + U32(0) + U32(0) + U32(0) + U32(0) +
                           U32(0xffffffff) + Str("") + Str("echo 'a b'");
  EXPECT_EQ(MuxNewSessionMessage(9, "echo 'a b'"), U32(static_cast<uint32_t>(body.size())) + body);
}

TEST(MuxFramingTest, RequestsAreTypeAndId) {
  EXPECT_EQ(MuxRequestMessage(kMuxAliveCheck, 3), U32(8) + U32(0x10000004) + U32(3));
  EXPECT_EQ(MuxRequestMessage(kMuxTerminate, 4), U32(8) + U32(0x10000005) + U32(4));
}

TEST(MuxFramingTest, ParsesEachReplyTheClientUses) {
  auto exit = ParseMuxMessage(U32(kMuxExitMessage) + U32(2) + U32(3));
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->ints, (std::vector<uint32_t>{2, 3}));
  auto alive = ParseMuxMessage(U32(kMuxAlive) + U32(1) + U32(4242));
  ASSERT_TRUE(alive);
  EXPECT_EQ(alive->ints[1], 4242u);
  auto hello = ParseMuxMessage(U32(kMuxHello) + U32(4) + Str("ext") + Str("val"));  // Extensions ignored.
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->ints, std::vector<uint32_t>{4});
  auto fail = ParseMuxMessage(U32(kMuxFailure) + U32(1) + Str("Multiple sessions not supported"));
  ASSERT_TRUE(fail);
  EXPECT_EQ(fail->reason, "Multiple sessions not supported");
}

TEST(MuxFramingTest, RefusesTruncatedAndUnknownMessages) {
  EXPECT_FALSE(ParseMuxMessage(U32(kMuxExitMessage).substr(0, 3)));
  EXPECT_FALSE(ParseMuxMessage(U32(kMuxExitMessage) + U32(2)));
  EXPECT_FALSE(ParseMuxMessage(U32(kMuxFailure) + U32(1) + U32(10) + "short"));
  auto unknown = ParseMuxMessage(U32(0x12345678));
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown mux message type"), std::string::npos);
}

// A scripted master: accepts one client, answers its hello, takes the
// new-session request and the three descriptors, then runs `script` with them.
class FakeMaster {
 public:
  using Script = std::function<void(int sock, int in, int out, int err)>;
  explicit FakeMaster(Script script) {
    char tmpl[] = "/tmp/sp-mux-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/ctl";
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    EXPECT_EQ(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_.get(), 1), 0);
    thread_ = std::thread([this, script] { Serve(script); });
  }
  ~FakeMaster() {
    thread_.join();
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  std::string command;  // As received.

  static void Send(int sock, const std::string& body) {
    const std::string m = U32(static_cast<uint32_t>(body.size())) + body;
    ASSERT_EQ(::send(sock, m.data(), m.size(), MSG_NOSIGNAL), static_cast<ssize_t>(m.size()));
  }

 private:
  static std::string ReadMessage(int sock) {
    std::string len = ReadN(sock, 4);
    if (len.size() < 4) return {};
    const uint32_t n = (static_cast<uint32_t>(static_cast<unsigned char>(len[0])) << 24) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(len[1])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(len[2])) << 8) |
                       static_cast<uint32_t>(static_cast<unsigned char>(len[3]));
    return ReadN(sock, n);
  }
  static std::string ReadN(int sock, size_t n) {
    std::string s(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(sock, s.data() + got, n - got, 0);
      if (r <= 0) return s.substr(0, got);
      got += static_cast<size_t>(r);
    }
    return s;
  }
  static int ReceiveFd(int sock) {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) return -1;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
  }
  void Serve(const Script& script) {
    UniqueFd sock(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(sock);
    Send(sock.get(), U32(kMuxHello) + U32(kMuxVersion));
    EXPECT_EQ(ReadMessage(sock.get()), U32(kMuxHello) + U32(kMuxVersion));
    std::string req = ReadMessage(sock.get());
    ASSERT_GE(req.size(), 4u);
    EXPECT_EQ(req.substr(0, 4), U32(kMuxNewSession));
    // The command is the last string of the request (no env follows).
    const size_t cmd_at = 4 + 4 + 4 + 16 + 4 + 4;
    command = req.substr(cmd_at + 4);
    UniqueFd in(ReceiveFd(sock.get())), out(ReceiveFd(sock.get())), err(ReceiveFd(sock.get()));
    ASSERT_TRUE(in && out && err);
    script(sock.get(), in.get(), out.get(), err.get());
  }

  std::string dir_, path_;
  UniqueFd listen_;
  std::thread thread_;
};

void Write(int fd, const std::string& s) { ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size())); }

TEST(MuxRunTest, ExitValueOutputStdinAndLinesComeThrough) {
  FakeMaster master([](int sock, int in, int out, int err) {
    FakeMaster::Send(sock, U32(kMuxSessionOpened) + U32(1) + U32(5));
    std::string input;
    char buf[256];
    ssize_t n;
    while ((n = ::read(in, buf, sizeof buf)) > 0) input.append(buf, static_cast<size_t>(n));
    Write(out, "got:" + input + "\nno newline");
    Write(err, "warn\n");
    FakeMaster::Send(sock, U32(kMuxExitMessage) + U32(5) + U32(7));
  });
  CommandSpec spec;
  spec.stdin_data = "secret-input";
  std::vector<std::string> lines;
  spec.on_line = [&](bool is_err, const std::string& l) { lines.push_back((is_err ? "E:" : "O:") + l); };
  auto r = MuxRun(master.path(), "the command", spec, Millis(10'000));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->out, "got:secret-input\nno newline");
  EXPECT_EQ(r->err, "warn\n");
  EXPECT_EQ(master.command, "the command");
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"E:warn", "O:got:secret-input", "O:no newline"}));
}

TEST(MuxRunTest, SessionWithoutExitStatusIs255) {
  FakeMaster master([](int sock, int, int, int) {
    FakeMaster::Send(sock, U32(kMuxSessionOpened) + U32(1) + U32(5));
  });
  auto r = MuxRun(master.path(), "x", CommandSpec{}, Millis(10'000));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 255);
  EXPECT_NE(r->err.find("without an exit status"), std::string::npos);
}

TEST(MuxRunTest, RefusedSessionIsUnavailableWithTheMastersReason) {
  FakeMaster master([](int sock, int, int, int) {
    FakeMaster::Send(sock, U32(kMuxFailure) + U32(1) + Str("Multiple sessions not supported"));
  });
  auto r = MuxRun(master.path(), "x", CommandSpec{}, Millis(10'000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("Multiple sessions not supported"), std::string::npos);
}

TEST(MuxRunTest, ASessionPastItsDeadlineIsAbandonedAsTimedOut) {
  FakeMaster master([](int sock, int, int out, int) {
    FakeMaster::Send(sock, U32(kMuxSessionOpened) + U32(1) + U32(5));
    Write(out, "started\n");
    // Holds the session open until the client gives up and closes the socket.
    char b;
    while (::recv(sock, &b, 1, 0) > 0) {
    }
  });
  auto r = MuxRun(master.path(), "sleep", CommandSpec{}, Millis(300));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->out, "started\n");
}

TEST(MuxRunTest, MissingControlSocketIsUnavailable) {
  auto r = MuxRun("/nonexistent/sp-ctl", "x", CommandSpec{}, Millis(1000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_FALSE(MuxAliveCheck("/nonexistent/sp-ctl", Millis(1000)));
}

}  // namespace
}  // namespace sp::ssh
