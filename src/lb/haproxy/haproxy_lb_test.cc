#include "lb/haproxy/haproxy_lb.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "support/test_util.h"

namespace sp {
namespace {

// Header and rows as HAProxy 2.6.12 printed them for `show stat` (captured).
constexpr char kHeader[] =
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,"
    "weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,"
    "rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,"
    "hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
    "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,"
    "agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,"
    "conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,"
    "srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,"
    "need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,"
    "ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,"
    "h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,"
    "h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,"
    "h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,"
    "h1_spliced_bytes_in,h1_spliced_bytes_out,\n";
constexpr char kFrontendRow[] =
    "http,FRONTEND,,,0,0,9984,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,"
    ",,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n";
constexpr char kApp1Down[] =
    "app,app1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,3,3,,1,3,1,,0,,2,0,,0,L4CON,,0,0,0,0,0,0,0,,,,0,0,0,,,,,"
    "-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,2,3,0,,,,127.0.0.1:19981,,http,,,,,,,,0,0,0,,,0,"
    ",0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n";
constexpr char kApp2Maint[] =
    "app,app2,0,0,3,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,1,1,4,4,,1,3,2,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,"
    "0,0,0,0,,,,,,,,,,,,127.0.0.1:19982,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,"
    ",,,\n";
constexpr char kAppBackend[] =
    "app,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,DOWN,0,0,0,,1,3,3,,1,3,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,"
    "0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,0,0,0,0,-,0,0,0,0,0,0,0,0,0,0,"
    "0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n";
constexpr char kOtherDrain[] =
    "other,x,0,0,7,0,,0,0,0,,0,,0,0,0,0,DRAIN,1,1,0,,,3,,,1,4,1,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,"
    "0,0,,,,,,,,,,,,127.0.0.1:19983,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n";

std::string FullStat() {
  return std::string(kHeader) + kFrontendRow + kApp1Down + kApp2Maint + kAppBackend + kOtherDrain + "\n";
}

TEST(HaproxyShowStatTest, ParsesServerRowsOfTheBackendOnly) {
  auto r = ParseShowStat(FullStat(), "app");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->backend_seen);
  ASSERT_EQ(r->servers.size(), 2u);
  EXPECT_EQ(r->servers[0].name, "app1");
  EXPECT_EQ(r->servers[0].status, "DOWN");
  EXPECT_EQ(r->servers[0].admin, AdminState::kReady);
  EXPECT_EQ(r->servers[0].sessions, 0);
  EXPECT_FALSE(r->servers[0].InRotation());
  EXPECT_EQ(r->servers[1].name, "app2");
  EXPECT_EQ(r->servers[1].status, "MAINT");
  EXPECT_EQ(r->servers[1].admin, AdminState::kMaint);
  EXPECT_EQ(r->servers[1].sessions, 3);

  auto other = ParseShowStat(FullStat(), "other");
  ASSERT_TRUE(other) << other.error().message;
  ASSERT_EQ(other->servers.size(), 1u);
  EXPECT_EQ(other->servers[0].admin, AdminState::kDrain);
  EXPECT_EQ(other->servers[0].sessions, 7);
}

TEST(HaproxyShowStatTest, FrontendOnlyOrAbsentProxyIsNotSeen) {
  auto front = ParseShowStat(FullStat(), "http");
  ASSERT_TRUE(front);
  EXPECT_TRUE(front->backend_seen);  // The FRONTEND row names it; the adapter asks for type 6 only.
  EXPECT_TRUE(front->servers.empty());
  auto none = ParseShowStat(FullStat(), "nosuch");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->backend_seen);
  // A backend whose name is a prefix of another one must not match it.
  auto prefix = ParseShowStat(FullStat(), "ap");
  ASSERT_TRUE(prefix);
  EXPECT_FALSE(prefix->backend_seen);
}

TEST(HaproxyShowStatTest, FindsColumnsByHeaderNameNotPosition) {
  std::string csv =
      "# status,extra,scur,svname,pxname,\n"
      "UP 1/2,\"quoted, with comma\",12,web1,api,\n"
      "\"DRAIN (agent)\",x,0,web2,api,\n"
      "UP,x,,BACKEND,api,\n";
  auto r = ParseShowStat(csv, "api");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->servers.size(), 2u);
  EXPECT_EQ(r->servers[0].name, "web1");
  EXPECT_EQ(r->servers[0].status, "UP 1/2");
  EXPECT_EQ(r->servers[0].sessions, 12);
  EXPECT_TRUE(r->servers[0].InRotation());
  EXPECT_EQ(r->servers[1].status, "DRAIN (agent)");
  EXPECT_EQ(r->servers[1].admin, AdminState::kDrain);
}

TEST(HaproxyShowStatTest, StatusMapsToAdminState) {
  EXPECT_EQ(AdminStateFromStatus("MAINT"), AdminState::kMaint);
  EXPECT_EQ(AdminStateFromStatus("MAINT (via app/app1)"), AdminState::kMaint);
  EXPECT_EQ(AdminStateFromStatus("MAINT (resolution)"), AdminState::kMaint);
  EXPECT_EQ(AdminStateFromStatus("DRAIN"), AdminState::kDrain);
  EXPECT_EQ(AdminStateFromStatus("UP"), AdminState::kReady);
  EXPECT_EQ(AdminStateFromStatus("UP 1/2"), AdminState::kReady);
  EXPECT_EQ(AdminStateFromStatus("DOWN"), AdminState::kReady);
  EXPECT_EQ(AdminStateFromStatus("no check"), AdminState::kReady);
}

TEST(HaproxyShowStatTest, MalformedAnswersAreErrorsNotEmptyResults) {
  auto no_proxy = ParseShowStat("No such proxy.\n\n", "app");
  ASSERT_FALSE(no_proxy);
  EXPECT_EQ(no_proxy.error().code, ErrorCode::kNotFound);

  auto no_header = ParseShowStat("Unknown command. Please enter one of the following commands only :\n", "app");
  ASSERT_FALSE(no_header);
  EXPECT_EQ(no_header.error().code, ErrorCode::kInternal);
  EXPECT_NE(no_header.error().message.find("Unknown command"), std::string::npos);

  auto missing = ParseShowStat("# pxname,svname,status,\napp,app1,UP,\n", "app");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("scur"), std::string::npos);

  auto short_row = ParseShowStat("# pxname,svname,scur,status,\napp,app1\n", "app");
  ASSERT_FALSE(short_row);
  EXPECT_EQ(short_row.error().code, ErrorCode::kInternal);

  auto bad_scur = ParseShowStat("# pxname,svname,scur,status,\napp,app1,x1,UP,\n", "app");
  ASSERT_FALSE(bad_scur);
  EXPECT_NE(bad_scur.error().message.find("app/app1"), std::string::npos);
}

TEST(HaproxyLoadBalancerTest, FactoryNeedsExactlyOneOfSocketOrAddress) {
  LoadBalancerSpec none;
  auto a = MakeHaproxyLoadBalancer(none);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ErrorCode::kInvalidArgument);

  LoadBalancerSpec both;
  both.socket = "/run/haproxy.sock";
  both.address = "127.0.0.1:9999";
  auto b = MakeHaproxyLoadBalancer(both);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kInvalidArgument);

  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":80", "h:0", "h:70000", "h:8x", "a b:80"}) {
    LoadBalancerSpec s;
    s.address = bad;
    auto r = MakeHaproxyLoadBalancer(s);
    EXPECT_FALSE(r) << bad;
  }

  LoadBalancerSpec unix_spec;
  unix_spec.socket = "/run/haproxy.sock";
  auto u = MakeHaproxyLoadBalancer(unix_spec);
  ASSERT_TRUE(u);
  EXPECT_EQ((*u)->Describe(), "haproxy unix:/run/haproxy.sock");
  LoadBalancerSpec tcp_spec;
  tcp_spec.address = "127.0.0.1:9999";
  auto t = MakeHaproxyLoadBalancer(tcp_spec);
  ASSERT_TRUE(t);
  EXPECT_EQ((*t)->Describe(), "haproxy tcp:127.0.0.1:9999");
}

TEST(HaproxyLoadBalancerTest, InvalidNamesNeverReachACommand) {
  EXPECT_TRUE(IsValidHaproxyName("app-1.blue_x:2"));
  for (const char* bad : {"", "a b", "a/b", "a;b", "a\nb", "a\tb", "a\"b"}) {
    EXPECT_FALSE(IsValidHaproxyName(bad)) << bad;
  }
  LoadBalancerSpec spec;
  spec.socket = "/nonexistent/for/sure.sock";  // Would be kUnavailable if contacted.
  auto lb = HaproxyLoadBalancer::Create(spec);
  ASSERT_TRUE(lb);
  auto s = (*lb)->SetState("app", "app1; disable frontend http", AdminState::kDrain);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  auto g = (*lb)->GetServer("my app", "app1");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kInvalidArgument);
  auto c = (*lb)->Command("show info\nshow stat");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
}

TEST(HaproxyLoadBalancerTest, MissingSocketIsUnavailableNamingThePath) {
  test::TempDir dir("sp-lb");
  LoadBalancerSpec spec;
  spec.socket = dir / "absent.sock";
  auto lb = HaproxyLoadBalancer::Create(spec);
  ASSERT_TRUE(lb);
  auto r = (*lb)->GetServer("app", "app1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find(spec.socket), std::string::npos) << r.error().message;
}

// A stand-in for HAProxy's CLI on a unix socket: per connection it reads one
// line, records it, and answers with `reply(line)`; when `hold` is set it
// answers nothing and keeps the connection open until destroyed.
class FakeCli {
 public:
  FakeCli(const std::string& path, std::function<std::string(const std::string&)> reply, bool hold = false)
      : reply_(std::move(reply)), hold_(hold) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    SP_CHECK(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    SP_CHECK(::listen(fd_, 16) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeCli() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::vector<std::string> lines() {
    std::lock_guard l(mu_);
    return lines_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;  // shutdown() in the destructor.
      std::string in;
      char ch;
      while (::read(c, &ch, 1) == 1 && ch != '\n') in.push_back(ch);
      {
        std::lock_guard l(mu_);
        lines_.push_back(in);
      }
      if (hold_) {
        while (!stop_ && ::read(c, &ch, 1) > 0) {
        }  // The client gives up (closes) on its timeout.
      } else {
        std::string out = reply_(in);
        (void)!::write(c, out.data(), out.size());
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  std::function<std::string(const std::string&)> reply_;
  bool hold_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

TEST(HaproxyLoadBalancerTest, SetStateSendsTheCommandAndMapsAnswers) {
  test::TempDir dir("sp-lb");
  LoadBalancerSpec spec;
  spec.socket = dir / "cli.sock";
  FakeCli cli(spec.socket, [](const std::string& cmd) -> std::string {
    if (cmd.find("set server nob/") == 0) return "No such backend.\n\n";
    if (cmd.find("/nos ") != std::string::npos) return "No such server.\n\n";
    if (cmd.find("/ro ") != std::string::npos) return "Permission denied\n\n";
    if (cmd.find("/odd ") != std::string::npos) return "Something else.\n\n";
    return "\n";
  });
  auto lb = HaproxyLoadBalancer::Create(spec);
  ASSERT_TRUE(lb);
  EXPECT_TRUE((*lb)->SetState("app", "app1", AdminState::kDrain));
  EXPECT_TRUE((*lb)->SetState("app", "app1", AdminState::kMaint));
  EXPECT_TRUE((*lb)->SetState("app", "app1", AdminState::kReady));

  auto nob = (*lb)->SetState("nob", "app1", AdminState::kDrain);
  ASSERT_FALSE(nob);
  EXPECT_EQ(nob.error().code, ErrorCode::kNotFound);
  EXPECT_NE(nob.error().message.find("\"nob\""), std::string::npos) << nob.error().message;
  auto nos = (*lb)->SetState("app", "nos", AdminState::kDrain);
  ASSERT_FALSE(nos);
  EXPECT_EQ(nos.error().code, ErrorCode::kNotFound);
  EXPECT_NE(nos.error().message.find("\"nos\""), std::string::npos) << nos.error().message;
  auto ro = (*lb)->SetState("app", "ro", AdminState::kDrain);
  ASSERT_FALSE(ro);
  EXPECT_EQ(ro.error().code, ErrorCode::kUnavailable);
  auto odd = (*lb)->SetState("app", "odd", AdminState::kDrain);
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code, ErrorCode::kInternal);
  EXPECT_NE(odd.error().message.find("Something else."), std::string::npos);

  auto lines = cli.lines();
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "set server app/app1 state drain");
  EXPECT_EQ(lines[1], "set server app/app1 state maint");
  EXPECT_EQ(lines[2], "set server app/app1 state ready");
}

TEST(HaproxyLoadBalancerTest, GetServerAsksForOneBackendAndFindsTheServer) {
  test::TempDir dir("sp-lb");
  LoadBalancerSpec spec;
  spec.socket = dir / "cli.sock";
  FakeCli cli(spec.socket, [](const std::string& cmd) -> std::string {
    if (cmd == "show stat app 6 -1") return std::string(kHeader) + kApp1Down + kApp2Maint + kAppBackend + "\n";
    if (cmd == "show stat -1 6 -1") return std::string(kHeader) + kOtherDrain + "\n";
    return "No such proxy.\n\n";
  });
  auto lb = HaproxyLoadBalancer::Create(spec);
  ASSERT_TRUE(lb);
  auto s = (*lb)->GetServer("app", "app2");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->admin, AdminState::kMaint);
  EXPECT_EQ(s->sessions, 3);
  auto missing_server = (*lb)->GetServer("app", "app9");
  ASSERT_FALSE(missing_server);
  EXPECT_EQ(missing_server.error().code, ErrorCode::kNotFound);
  auto missing_backend = (*lb)->ListBackend("zzz");
  ASSERT_FALSE(missing_backend);
  EXPECT_EQ(missing_backend.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing_backend.error().message.find("\"zzz\""), std::string::npos);
  // A name starting with a digit would be read as a numeric proxy id by
  // HAProxy: all backends are asked for and filtered here.
  auto numeric = (*lb)->ListBackend("1app");
  ASSERT_FALSE(numeric);
  EXPECT_EQ(numeric.error().code, ErrorCode::kNotFound);
  auto lines = cli.lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "show stat app 6 -1");
  EXPECT_EQ(lines[3], "show stat -1 6 -1");
}

TEST(HaproxyLoadBalancerTest, SilentPeerTimesOutWithinTheIoTimeout) {
  test::TempDir dir("sp-lb");
  LoadBalancerSpec spec;
  spec.socket = dir / "cli.sock";
  FakeCli cli(spec.socket, nullptr, /*hold=*/true);
  auto lb = HaproxyLoadBalancer::Create(spec, Millis(150));
  ASSERT_TRUE(lb);
  auto start = std::chrono::steady_clock::now();
  auto r = (*lb)->Command("show info");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("show info"), std::string::npos);
  EXPECT_LT(took, std::chrono::milliseconds(2000));
}

}  // namespace
}  // namespace sp
