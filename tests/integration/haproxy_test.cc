// The HAProxy adapter and the load harness against a real haproxy and real
// sp-sample-app processes on 127.0.0.1.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lb/haproxy/haproxy_lb.h"
#include "support/haproxy_fixture.h"
#include "support/load_generator.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using std::chrono::milliseconds;

struct App {
  std::string name;
  int port = 0;
  Daemon daemon;
};

// Starts sp-sample-app on a free port and waits until it accepts connections.
::testing::AssertionResult StartApp(const TempDir& dir, const std::string& name, int port, App* app) {
  app->name = name;
  app->port = port;
  try {
    app->daemon = Daemon({BuildBinary("sp-sample-app")}, dir / (name + ".log"),
                         {{"PORT", std::to_string(port)}, {"APP_VERSION", "v1"}});
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "cannot start sp-sample-app: " << e.what();
  }
  if (!WaitFor([&] { return PortOpen(port) || !app->daemon.Alive(); }, milliseconds(10000)) ||
      !app->daemon.Alive()) {
    return ::testing::AssertionFailure() << name << " not listening on " << port << ": "
                                         << ReadFile(dir / (name + ".log"));
  }
  return ::testing::AssertionSuccess();
}

// A client connection to 127.0.0.1:port with a 10 s receive timeout.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& path) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    return ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }
  // Reads one response (Content-Length framed). Returns "" on error/timeout.
  std::string Receive() {
    std::string buf;
    char chunk[4096];
    while (true) {
      size_t head_end = buf.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = buf.find("content-length:");
        if (cl == std::string::npos) cl = buf.find("Content-Length:");
        if (cl != std::string::npos && cl < head_end) {
          size_t len = std::stoul(buf.substr(cl + 15));
          if (buf.size() >= head_end + 4 + len) return buf.substr(0, head_end + 4 + len);
        }
      }
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      buf.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Two sample apps (app1, app2) behind a real haproxy, all UP.
class HaproxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (FindProgram("haproxy", {"/usr/sbin/haproxy"}).empty()) GTEST_SKIP() << "haproxy not installed";
    apps_.resize(2);
    HaproxyOptions options;
    for (int i = 0; i < 2; ++i) {
      std::string name = "app" + std::to_string(i + 1);
      ASSERT_TRUE(StartApp(dir_, name, FreePort(), &apps_[i]));
      options.servers.push_back({name, apps_[i].port});
    }
    haproxy_ = std::make_unique<HaproxyFixture>(dir_.path(), options);
    auto started = haproxy_->Start();
    ASSERT_TRUE(started) << started.error().message;
    auto up = haproxy_->WaitAllUp();
    ASSERT_TRUE(up) << up.error().message << "\n" << haproxy_->LogTail();
  }

  void TearDown() override {
    if (HasFailure() && haproxy_) std::fprintf(stderr, "haproxy log tail:\n%s\n", haproxy_->LogTail().c_str());
  }

  std::unique_ptr<HaproxyLoadBalancer> Adapter(bool tcp) {
    auto lb = HaproxyLoadBalancer::Create(tcp ? haproxy_->TcpSpec() : haproxy_->UnixSpec());
    SP_CHECK(lb.has_value());
    return std::move(*lb);
  }

  // drain -> maint -> ready on app1, each reflected by GetServer; app2 untouched.
  void CheckStateCycle(LoadBalancer& lb) {
    ASSERT_TRUE(lb.SetState("app", "app1", AdminState::kDrain));
    auto s = lb.GetServer("app", "app1");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->status, "DRAIN");
    EXPECT_EQ(s->admin, AdminState::kDrain);
    EXPECT_FALSE(s->InRotation());

    ASSERT_TRUE(lb.SetState("app", "app1", AdminState::kMaint));
    s = lb.GetServer("app", "app1");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->status, "MAINT");
    EXPECT_EQ(s->admin, AdminState::kMaint);
    EXPECT_FALSE(s->InRotation());

    ASSERT_TRUE(lb.SetState("app", "app1", AdminState::kReady));
    s = lb.GetServer("app", "app1");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_TRUE(StartsWith(s->status, "UP")) << s->status;
    EXPECT_EQ(s->admin, AdminState::kReady);
    EXPECT_TRUE(s->InRotation());

    auto other = lb.GetServer("app", "app2");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, "UP");
  }

  static bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

  TempDir dir_{"sp-it-haproxy"};
  std::vector<App> apps_;
  std::unique_ptr<HaproxyFixture> haproxy_;
};

TEST_F(HaproxyTest, StateChangesOverUnixSocketAreReflected) {
  auto lb = Adapter(/*tcp=*/false);
  CheckStateCycle(*lb);
}

TEST_F(HaproxyTest, StateChangesOverTcpAddressAreReflected) {
  auto lb = Adapter(/*tcp=*/true);
  EXPECT_EQ(lb->Describe(), "haproxy tcp:" + haproxy_->admin_tcp_address());
  CheckStateCycle(*lb);
}

TEST_F(HaproxyTest, ListBackendReportsEveryServerInOrder) {
  auto lb = MakeHaproxyLoadBalancer(haproxy_->UnixSpec());
  ASSERT_TRUE(lb);
  auto servers = (*lb)->ListBackend("app");
  ASSERT_TRUE(servers) << servers.error().message;
  ASSERT_EQ(servers->size(), 2u);
  EXPECT_EQ((*servers)[0].name, "app1");
  EXPECT_EQ((*servers)[1].name, "app2");
  for (const auto& s : *servers) EXPECT_TRUE(s.InRotation()) << s.name << " " << s.status;
  EXPECT_EQ(haproxy_->ServerStatus("app2"), "UP");
}

TEST_F(HaproxyTest, SessionsCountAnInFlightRequestWhileDrainingThenFallToZero) {
  auto lb = Adapter(/*tcp=*/false);
  ASSERT_TRUE(lb->SetState("app", "app2", AdminState::kMaint));  // Every request goes to app1.
  Client client(haproxy_->frontend_port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("/slow?ms=1500"));
  int seen = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = lb->GetServer("app", "app1");
        seen = s ? s->sessions : -1;
        return seen > 0;
      },
      milliseconds(1200), milliseconds(5)))
      << "sessions never > 0 (last " << seen << ")";

  // Drain while the request is in flight: it still completes on app1.
  ASSERT_TRUE(lb->SetState("app", "app1", AdminState::kDrain));
  auto draining = lb->GetServer("app", "app1");
  ASSERT_TRUE(draining);
  EXPECT_EQ(draining->admin, AdminState::kDrain);
  EXPECT_EQ(draining->sessions, 1);
  std::string response = client.Receive();
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  EXPECT_NE(response.find("port=" + std::to_string(apps_[0].port)), std::string::npos) << response;

  // The client keeps its keep-alive connection open; the server session still ends.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = lb->GetServer("app", "app1");
        return s && s->sessions == 0;
      },
      milliseconds(5000), milliseconds(5)));
}

TEST_F(HaproxyTest, UnknownBackendOrServerIsNotFound) {
  for (bool tcp : {false, true}) {
    auto lb = Adapter(tcp);
    auto set_backend = lb->SetState("nosuch", "app1", AdminState::kDrain);
    ASSERT_FALSE(set_backend);
    EXPECT_EQ(set_backend.error().code, ErrorCode::kNotFound);
    EXPECT_NE(set_backend.error().message.find("nosuch"), std::string::npos) << set_backend.error().message;

    auto set_server = lb->SetState("app", "app9", AdminState::kDrain);
    ASSERT_FALSE(set_server);
    EXPECT_EQ(set_server.error().code, ErrorCode::kNotFound);
    EXPECT_NE(set_server.error().message.find("app9"), std::string::npos) << set_server.error().message;

    auto get_backend = lb->GetServer("nosuch", "app1");
    ASSERT_FALSE(get_backend);
    EXPECT_EQ(get_backend.error().code, ErrorCode::kNotFound);
    auto get_server = lb->GetServer("app", "app9");
    ASSERT_FALSE(get_server);
    EXPECT_EQ(get_server.error().code, ErrorCode::kNotFound);
    auto list = lb->ListBackend("nosuch");
    ASSERT_FALSE(list);
    EXPECT_EQ(list.error().code, ErrorCode::kNotFound);
    // The frontend is a proxy too, but not a backend.
    auto frontend = lb->ListBackend("http");
    ASSERT_FALSE(frontend);
    EXPECT_EQ(frontend.error().code, ErrorCode::kNotFound);
  }
}

TEST_F(HaproxyTest, AddedServerStartsInMaintAndRemovedServerIsGone) {
  App app3;
  ASSERT_TRUE(StartApp(dir_, "app3", FreePort(), &app3));
  for (bool tcp : {false, true}) {
    auto lb = Adapter(tcp);
    ASSERT_TRUE(lb->AddServer("app", "app3", "127.0.0.1", app3.port));
    auto s = lb->GetServer("app", "app3");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->status, "MAINT") << "a new server takes no traffic until set ready";
    auto twice = lb->AddServer("app", "app3", "127.0.0.1", app3.port);
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().code, ErrorCode::kConflict) << twice.error().message;
    auto no_backend = lb->AddServer("nosuch", "app3", "127.0.0.1", app3.port);
    ASSERT_FALSE(no_backend);
    EXPECT_EQ(no_backend.error().code, ErrorCode::kNotFound) << no_backend.error().message;
    auto injected = lb->AddServer("app", "app4", "127.0.0.1:1 ; del server app/app1", app3.port);
    ASSERT_FALSE(injected);
    EXPECT_EQ(injected.error().code, ErrorCode::kInvalidArgument);

    ASSERT_TRUE(lb->SetState("app", "app3", AdminState::kReady));
    s = lb->GetServer("app", "app3");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_TRUE(s->InRotation()) << s->status;
    ASSERT_EQ(lb->ListBackend("app")->size(), 3u);

    auto removed = lb->RemoveServer("app", "app3");
    ASSERT_TRUE(removed) << removed.error().message;
    auto servers = lb->ListBackend("app");
    ASSERT_TRUE(servers);
    ASSERT_EQ(servers->size(), 2u);
    EXPECT_EQ((*servers)[0].name, "app1");
    EXPECT_EQ((*servers)[1].name, "app2");
    auto again = lb->RemoveServer("app", "app3");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::kNotFound) << again.error().message;
  }
  EXPECT_EQ(haproxy_->ServerStatus("app1"), "UP");
}

TEST(HaproxyUnreachableTest, MissingSocketOrClosedPortIsUnavailable) {
  TempDir dir("sp-it-haproxy");
  LoadBalancerSpec unix_spec;
  unix_spec.socket = dir / "does-not-exist.sock";
  auto unix_lb = MakeHaproxyLoadBalancer(unix_spec);
  ASSERT_TRUE(unix_lb);
  auto r = (*unix_lb)->SetState("app", "app1", AdminState::kDrain);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find(unix_spec.socket), std::string::npos) << r.error().message;

  LoadBalancerSpec tcp_spec;
  tcp_spec.address = "127.0.0.1:" + std::to_string(FreePort());  // Nothing listens there.
  auto tcp_lb = MakeHaproxyLoadBalancer(tcp_spec);
  ASSERT_TRUE(tcp_lb);
  auto g = (*tcp_lb)->GetServer("app", "app1");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(g.error().message.find(tcp_spec.address), std::string::npos) << g.error().message;
}

TEST_F(HaproxyTest, StoppedHaproxyIsUnavailable) {
  auto lb = Adapter(/*tcp=*/false);
  haproxy_->Stop();
  auto r = lb->GetServer("app", "app1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().message;
}

TEST(HaproxyLoadParseTest, ParsesWrkSummaryAndRefusesGarbage) {
  auto ok = ParseWrkOutput(
      "Running 2s test @ http://127.0.0.1:1/\n  2 threads and 16 connections\n"
      "  1501 requests in 2.00s, 127.53KB read\n"
      "  Socket errors: connect 1, read 2, write 3, timeout 4\n"
      "  Non-2xx or 3xx responses: 5\nRequests/sec:    749.73\n");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->requests, 1501);
  EXPECT_EQ(ok->failures(), 15);
  EXPECT_EQ(ok->Summary(), "requests=1501 non2xx=5 connect=1 read=2 write=3 timeout=4");
  auto clean = ParseWrkOutput("  12 requests in 1.00m, 1.00KB read\n");
  ASSERT_TRUE(clean);
  EXPECT_EQ(clean->failures(), 0);
  EXPECT_FALSE(ParseWrkOutput("unable to connect to 127.0.0.1:1 Connection refused\n"));
  EXPECT_FALSE(ParseWrkOutput("  1 requests in 1.00s, 1KB read\n  Socket errors: connect x\n"));
}

TEST_F(HaproxyTest, LoadWithAllServersUpHasNoFailures) {
  LoadOptions options;
  options.port = haproxy_->frontend_port();
  options.max_duration = std::chrono::seconds(2);
  options.work_dir = dir_.path();
  auto load = StartLoad(options);
  ASSERT_TRUE(load);
  auto result = load->Wait(milliseconds(15000));
  ASSERT_TRUE(result) << result.error().message;
  std::fprintf(stderr, "load: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 0);
  EXPECT_EQ(result->failures(), 0) << result->raw;
}

TEST_F(HaproxyTest, LoadCountsFailuresWhenAllServersAreKilled) {
  LoadOptions options;
  options.port = haproxy_->frontend_port();
  options.work_dir = dir_.path();
  auto load = StartLoad(options);
  ASSERT_TRUE(load);
  auto lb = Adapter(/*tcp=*/false);
  // Traffic is flowing once a slow request holds a session.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto servers = lb->ListBackend("app");
        if (!servers) return false;
        for (const auto& s : *servers) {
          if (s.sessions > 0) return true;
        }
        return false;
      },
      milliseconds(5000), milliseconds(5)));
  for (auto& app : apps_) app.daemon.Signal(SIGKILL);
  // Load continues until haproxy has seen both servers go DOWN.
  EXPECT_TRUE(WaitFor(
      [&] {
        return StartsWith(haproxy_->ServerStatus("app1"), "DOWN") && StartsWith(haproxy_->ServerStatus("app2"), "DOWN");
      },
      milliseconds(10000)));
  auto result = load->Stop();
  ASSERT_TRUE(result) << result.error().message;
  std::fprintf(stderr, "load: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 0);
  EXPECT_GT(result->failures(), 0) << result->raw;
}

// The whole point of drain: take app1 out (drain, sessions reach 0, maint),
// kill it without any graceful shutdown, start it again, put it back
// (ready) — all under load, with zero failed requests.
TEST_F(HaproxyTest, DrainKillRestartReadyUnderLoadHasNoFailures) {
  LoadOptions options;
  options.port = haproxy_->frontend_port();
  options.work_dir = dir_.path();
  auto load = StartLoad(options);
  ASSERT_TRUE(load);
  auto lb = Adapter(/*tcp=*/false);
  auto app1_busy = [&] {
    auto s = lb->GetServer("app", "app1");
    return s && s->sessions > 0;
  };
  // Drain while app1 holds sessions, so there is something to wait for.
  ASSERT_TRUE(WaitFor(app1_busy, milliseconds(10000), milliseconds(5)));
  ASSERT_TRUE(lb->SetState("app", "app1", AdminState::kDrain));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = lb->GetServer("app", "app1");
        return s && s->sessions == 0;
      },
      milliseconds(15000), milliseconds(5)));
  ASSERT_TRUE(lb->SetState("app", "app1", AdminState::kMaint));
  apps_[0].daemon.Signal(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return !apps_[0].daemon.Alive(); }, milliseconds(5000)));
  App restarted;
  ASSERT_TRUE(StartApp(dir_, "app1-v2", apps_[0].port, &restarted));
  ASSERT_TRUE(lb->SetState("app", "app1", AdminState::kReady));
  // Load reaches the restarted app1 before stopping.
  ASSERT_TRUE(WaitFor(app1_busy, milliseconds(10000), milliseconds(5)));

  auto result = load->Stop();
  ASSERT_TRUE(result) << result.error().message;
  std::fprintf(stderr, "load: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 0);
  EXPECT_EQ(result->failures(), 0) << result->raw;
}

}  // namespace
}  // namespace sp::test
