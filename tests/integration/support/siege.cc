#include "support/siege.h"

#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "support/test_util.h"

namespace sp::test {

namespace {

std::string Address(int n) { return "127.0.0." + std::to_string(n); }

// Whether the server closed `fd` (or sent something: an answer before closing).
bool ServerSpoke(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && p.revents != 0;
}

struct Tls {
  int fd = -1;
  SSL* ssl = nullptr;
  void Close() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
    ssl = nullptr;
    fd = -1;
  }
};

SSL_CTX* ClientContext() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);  // An attacker does not care who answers.
    return c;
  }();
  return ctx;
}

Tls ConnectTls(const std::string& src, int port) {
  Tls t;
  t.fd = DialFrom(src, port, 2000);
  if (t.fd < 0) return t;
  timeval tv{5, 0};
  ::setsockopt(t.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(t.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  t.ssl = SSL_new(ClientContext());
  SSL_set_fd(t.ssl, t.fd);
  if (SSL_connect(t.ssl) != 1) t.Close();
  return t;
}

bool WriteAll(Tls& t, const std::string& s) { return SSL_write(t.ssl, s.data(), static_cast<int>(s.size())) > 0; }

}  // namespace

std::string SiegeCounts::Summary() const {
  return "followers attached " + std::to_string(followers_attached) + " (refused " +
         std::to_string(followers_refused) + "), slow-loris open " + std::to_string(slowloris_open) +
         " (closed by the server " + std::to_string(slowloris_closed) + "), stalled handshakes open " +
         std::to_string(handshakes_open) + " (closed by the server " + std::to_string(handshakes_closed) +
         "), hold open " + std::to_string(hold_open) + " of " + std::to_string(hold_opened) + " made (failed " +
         std::to_string(hold_failed) + ", closed by the server " + std::to_string(hold_closed) + ")";
}

Siege::Siege(SiegeOptions options) : o_(std::move(options)) {}

bool Siege::Running() const { return !stop_ && std::chrono::steady_clock::now() < deadline_; }

void Siege::Start() {
  ::signal(SIGPIPE, SIG_IGN);
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  deadline_ = std::chrono::steady_clock::now() + o_.max_duration;
  for (int i = 0; i < o_.followers; ++i) threads_.emplace_back([this, i] { Follower(i); });
  threads_.emplace_back([this] { SlowLoris(); });
  threads_.emplace_back([this] { Handshakes(); });
  threads_.emplace_back([this] { Hold(); });
}

void Siege::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

bool Siege::WaitEstablished(std::chrono::seconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (counts_.followers_attached == o_.followers && counts_.hold_opened >= o_.hold &&
        counts_.slowloris_open + counts_.slowloris_closed >= o_.slowloris) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void Siege::Follower(int i) {
  const std::string src = Address(o_.first_address + i % o_.addresses);
  while (Running()) {
    Tls t = ConnectTls(src, o_.port);
    std::string head;
    if (t.ssl && WriteAll(t, "GET " + o_.follow_path + " HTTP/1.1\r\nHost: siege\r\nAuthorization: " + o_.bearer +
                                 "\r\n\r\n")) {
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        const int n = SSL_read(t.ssl, buf, sizeof buf);
        if (n <= 0) break;
        head.append(buf, n);
      }
    }
    if (head.rfind("HTTP/1.1 200", 0) != 0) {
      ++counts_.followers_refused;
      t.Close();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    ++counts_.followers_attached;
    while (Running()) {
      pollfd p{t.fd, POLLIN, 0};
      if (SSL_pending(t.ssl) == 0 && ::poll(&p, 1, 200) == 0) continue;
      char buf[16384];
      if (SSL_read(t.ssl, buf, sizeof buf) <= 0) break;
    }
    --counts_.followers_attached;
    t.Close();
  }
}

void Siege::SlowLoris() {
  std::vector<Tls> conns(o_.slowloris);
  const int base = o_.first_address + o_.addresses;
  while (Running()) {
    for (size_t i = 0; i < conns.size() && Running(); ++i) {
      Tls& t = conns[i];
      if (t.ssl && (ServerSpoke(t.fd) || !WriteAll(t, "a"))) {
        t.Close();
        --counts_.slowloris_open;
        ++counts_.slowloris_closed;
      }
      if (!t.ssl) {
        t = ConnectTls(Address(base + static_cast<int>(i) % o_.addresses), o_.port);
        if (t.ssl && WriteAll(t, "GET /v1/health HTTP/1.1\r\nHost: siege\r\nX-Slow: ")) {
          ++counts_.slowloris_open;
        } else {
          t.Close();
        }
      }
    }
    for (int k = 0; k < 5 && Running(); ++k) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : conns) t.Close();
}

void Siege::Handshakes() {
  // A TLS record header announcing 512 bytes of handshake, and the start of a ClientHello.
  static const unsigned char kPartialHello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};
  std::vector<int> conns(o_.stalled_handshakes, -1);
  const int base = o_.first_address + 2 * o_.addresses;
  while (Running()) {
    for (size_t i = 0; i < conns.size() && Running(); ++i) {
      int& fd = conns[i];
      if (fd >= 0 && ServerSpoke(fd)) {
        ::close(std::exchange(fd, -1));
        --counts_.handshakes_open;
        ++counts_.handshakes_closed;
      }
      if (fd < 0) {
        fd = DialFrom(Address(base + static_cast<int>(i) % o_.addresses), o_.port, 2000);
        if (fd >= 0 && ::send(fd, kPartialHello, sizeof kPartialHello, MSG_NOSIGNAL) > 0) {
          ++counts_.handshakes_open;
        } else if (fd >= 0) {
          ::close(std::exchange(fd, -1));
        }
      }
    }
    for (int k = 0; k < 5 && Running(); ++k) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int fd : conns) {
    if (fd >= 0) ::close(fd);
  }
}

void Siege::Hold() {
  constexpr int kPerAddress = 100;
  std::vector<int> fds(o_.hold, -1);
  const int base = o_.first_address + 3 * o_.addresses;
  while (Running()) {
    // Closed by the server since the last round: counted, then made again.
    for (int& fd : fds) {
      if (fd >= 0 && ServerSpoke(fd)) {
        ::close(std::exchange(fd, -1));
        --counts_.hold_open;
        ++counts_.hold_closed;
      }
    }
    for (size_t i = 0; i < fds.size() && Running(); ++i) {
      if (fds[i] >= 0) continue;
      fds[i] = DialFrom(Address(base + static_cast<int>(i) / kPerAddress), o_.port, 2000, /*nonblocking=*/true);
      ++counts_.hold_opened;
      if (fds[i] < 0) {
        ++counts_.hold_failed;
      } else {
        ++counts_.hold_open;
      }
    }
    for (int k = 0; k < 10 && Running(); ++k) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace sp::test
