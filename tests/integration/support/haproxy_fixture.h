// HaproxyFixture: a real `haproxy -db` for integration tests, configured
// strictly so that nothing masks a failed request: no retries, no
// redispatch, keep-alive on both sides, one frontend on 127.0.0.1 and one
// backend whose servers are health-checked every 500 ms.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "inventory/inventory.h"
#include "core/error.h"
#include "lb/haproxy/haproxy_lb.h"
#include "support/test_util.h"

namespace sp::test {

struct HaproxyServer {
  std::string name;
  int port = 0;  // On 127.0.0.1.
};

struct HaproxyOptions {
  std::string backend = "app";
  std::vector<HaproxyServer> servers;
  // Health check: "GET <path>" expecting 200 (empty: plain TCP connect check).
  std::string http_check_path = "/health";
};

class HaproxyFixture {
 public:
  // Config, sockets and the log live in `dir`, which must outlive the fixture.
  HaproxyFixture(std::string dir, HaproxyOptions options);
  ~HaproxyFixture();  // Stops haproxy.
  HaproxyFixture(const HaproxyFixture&) = delete;
  HaproxyFixture& operator=(const HaproxyFixture&) = delete;

  // Writes <dir>/haproxy.cfg, starts haproxy and returns once both admin
  // sockets answer (polled, at most 10 s). On failure the error carries the
  // tail of haproxy's log.
  Status Start();
  // Ends haproxy (by PID; SIGTERM, then SIGKILL). Idempotent.
  void Stop();

  // Polls until every server is reported exactly "UP" (checks passed; not
  // "UP 1/3", MAINT, DRAIN or DOWN), at most `timeout`.
  Status WaitAllUp(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

  int frontend_port() const { return frontend_port_; }
  const std::string& socket_path() const { return socket_path_; }
  // "127.0.0.1:<port>" of the TCP admin socket.
  std::string admin_tcp_address() const { return "127.0.0.1:" + std::to_string(admin_port_); }
  const std::string& backend() const { return options_.backend; }
  std::string config_path() const { return dir_ + "/haproxy.cfg"; }
  std::string log_path() const { return dir_ + "/haproxy.log"; }
  std::string LogTail(int lines = 30) const;

  // Inventory-shaped specs for the adapter, over the unix or the TCP socket.
  LoadBalancerSpec UnixSpec() const;
  LoadBalancerSpec TcpSpec() const;
  // An adapter over the unix socket (created at Start()).
  HaproxyLoadBalancer& lb() { return *lb_; }

  // The `status` HAProxy reports for backend/server, or "error: <message>".
  std::string ServerStatus(const std::string& backend, const std::string& server);
  std::string ServerStatus(const std::string& server) { return ServerStatus(options_.backend, server); }

 private:
  std::string dir_;
  HaproxyOptions options_;
  std::string socket_path_;
  int frontend_port_ = 0;
  int admin_port_ = 0;
  Daemon daemon_;
  std::unique_ptr<HaproxyLoadBalancer> lb_;
};

}  // namespace sp::test
