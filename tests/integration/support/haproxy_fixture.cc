#include "support/haproxy_fixture.h"

#include <sstream>

#include "core/text.h"

namespace sp::test {

HaproxyFixture::HaproxyFixture(std::string dir, HaproxyOptions options)
    : dir_(std::move(dir)), options_(std::move(options)), socket_path_(dir_ + "/admin.sock") {}

HaproxyFixture::~HaproxyFixture() { Stop(); }

std::string HaproxyFixture::LogTail(int lines) const { return LastLines(ReadFile(log_path()), lines); }

LoadBalancerSpec HaproxyFixture::UnixSpec() const {
  LoadBalancerSpec spec;
  spec.socket = socket_path_;
  spec.backend = options_.backend;
  return spec;
}

LoadBalancerSpec HaproxyFixture::TcpSpec() const {
  LoadBalancerSpec spec;
  spec.address = admin_tcp_address();
  spec.backend = options_.backend;
  return spec;
}

Status HaproxyFixture::Start() {
  if (daemon_.pid() > 0) return Err(ErrorCode::kConflict, "haproxy fixture already started");
  std::string haproxy = FindProgram("haproxy", {"/usr/sbin/haproxy"});
  if (haproxy.empty()) return Err(ErrorCode::kUnavailable, "haproxy not installed");
  frontend_port_ = FreePort();
  admin_port_ = FreePort();  // FreePort never repeats a port.

  std::ostringstream cfg;
  cfg << "global\n"
      << "  stats socket " << socket_path_ << " level admin\n"
      << "  stats socket 127.0.0.1:" << admin_port_ << " level admin\n"
      << "  log stdout format raw local0\n"
      << "\n"
      << "defaults\n"
      << "  mode http\n"
      << "  log global\n"
      << "  option httplog\n"
      << "  option dontlog-normal\n"  // Only failed or abnormal requests reach the log.
      << "  option http-keep-alive\n"
      << "  retries 0\n"  // Strict: no retry and no redispatch may hide a failure.
      << "  timeout connect 2s\n"
      << "  timeout client 30s\n"
      << "  timeout server 30s\n"
      << "\n"
      << "frontend http\n"
      << "  bind 127.0.0.1:" << frontend_port_ << "\n"
      << "  default_backend " << options_.backend << "\n"
      << "\n"
      << "backend " << options_.backend << "\n"
      << "  balance roundrobin\n";
  if (!options_.http_check_path.empty()) {
    cfg << "  option httpchk GET " << options_.http_check_path << "\n"
        << "  http-check expect status 200\n";
  }
  for (const auto& s : options_.servers) {
    cfg << "  server " << s.name << " 127.0.0.1:" << s.port << " check inter 500ms\n";
  }
  WriteFile(config_path(), cfg.str());

  try {
    daemon_ = Daemon({haproxy, "-f", config_path(), "-db"}, log_path());
  } catch (const std::exception& e) {
    return Err(ErrorCode::kUnavailable, std::string("starting haproxy: ") + e.what());
  }
  lb_ = std::move(*HaproxyLoadBalancer::Create(UnixSpec(), std::chrono::milliseconds(2000)));
  auto tcp = HaproxyLoadBalancer::Create(TcpSpec(), std::chrono::milliseconds(2000));
  // The frontend is bound before the CLI answers; probing it would log a <BADREQ>.
  const StartWait w = WaitForStart(
      daemon_, [&] { return lb_->Command("show info").has_value() && (*tcp)->Command("show info").has_value(); },
      std::chrono::milliseconds(10000));
  if (w != StartWait::kReady) {
    Stop();
    return Err(ErrorCode::kUnavailable,
               std::string(w == StartWait::kDied ? "haproxy exited at start" : "haproxy not ready in 10s") +
                   "; log:\n" + LogTail());
  }
  return Ok();
}

void HaproxyFixture::Stop() { daemon_.Stop(); }

Status HaproxyFixture::WaitAllUp(std::chrono::milliseconds timeout) {
  std::string last;
  bool up = WaitFor(
      [&] {
        auto servers = lb_->ListBackend(options_.backend);
        if (!servers) {
          last = servers.error().message;
          return false;
        }
        last.clear();
        for (const auto& s : *servers) {
          last += s.name + "=" + s.status + " ";
          // "UP 1/3" right after start means one failed check would take it DOWN;
          // plain "UP" means its checks have passed.
          if (s.status != "UP") return false;
        }
        return true;
      },
      timeout, std::chrono::milliseconds(20));
  if (up) return Ok();
  return Err(ErrorCode::kTimeout, "haproxy servers not all UP within " + FormatDuration(timeout) + ": " + last);
}

std::string HaproxyFixture::ServerStatus(const std::string& backend, const std::string& server) {
  if (!lb_) return "error: haproxy not started";
  auto s = lb_->GetServer(backend, server);
  if (!s) return "error: " + s.error().message;
  return s->status;
}

}  // namespace sp::test
