// A `sallyport server` process for tests: on a free loopback port, on the
// given state database, its output in <dir>/<name>.log, serving HTTPS with
// the process's test CA (test_ca.h; $SALLYPORT_CA names it for the CLI and
// agents the test starts). Its store gets an admin token first (AdminToken),
// which the CLI processes the test starts present through $SALLYPORT_TOKEN.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "build/records.h"
#include "support/test_util.h"

namespace sp::test {

class ServerProcess {
 public:
  // Starts it and waits (up to 10 s) until it listens; ready() tells.
  enum class Transport { kTls, kPlain };
  // `binary`: another build's sallyport (a benchmark comparing two, or the
  // test tree's sallyport-test); "": this tree's. `env`: added to its environment.
  ServerProcess(const TempDir& dir, const std::string& store, const std::string& name,
                const std::vector<std::string>& extra_args = {}, Transport transport = Transport::kTls,
                const std::string& binary = "", const std::map<std::string, std::string>& env = {});
  bool ready() const { return port_ > 0; }
  std::string url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }
  // An HTTP client of it that trusts the test CA (no token set).
  httplib::Client Client() const;
  int port() const { return port_; }
  std::string Log() const { return ReadFile(log_); }
  Daemon& daemon() { return daemon_; }

 private:
  std::string log_;
  Daemon daemon_;
  int port_ = 0;
  bool tls_ = true;
};

// `sallyport token create --name <name> --label <label>` on `store`,
// the token written to <dir>/<name>.token (mode 0600); returns that path, or
// "" when the command failed.
// An admin token for `store`, made once with `sallyport token create --local`
// and kept in <store>.admin-token (0600); exported as $SALLYPORT_TOKEN. "" on failure.
std::string AdminToken(const std::string& store);
// "Bearer <$SALLYPORT_TOKEN>": the Authorization header of a test's own HTTP calls.
std::string Bearer();

std::string CreateAgentToken(const TempDir& dir, const std::string& store, const std::string& name,
                             const std::string& label);

// `sallyport token create --name <name> --scope <s>... --local` on `store`:
// the API token's secret, "" (after a test failure) when the command failed.
std::string CreateApiToken(const std::string& store, const std::string& name, const std::vector<std::string>& scopes);

// One line of `sallyport server --routes`: a route of the server's table.
struct RouteLine {
  std::string method, pattern, need;
};
// The server's route table as its binary prints it for `store`.
std::vector<RouteLine> PrintedRoutes(const std::string& store);

// A build of `project` recorded in `store` as a server's or agent's run would
// leave it: ended with `status`, having pushed `artifact` and (unless "")
// kept the sallyport.yml it read. Its id; 0 after a test failure.
int64_t RecordBuild(const std::string& store, const std::string& project, char sha_fill, BuildStatus status,
                    const std::string& artifact, const std::string& config);

// The first build `which` accepts once it has ended (any status but queued
// or running), as GET /v1/builds lists it; null after `timeout`.
nlohmann::json WaitForEndedBuild(const ServerProcess& server, const std::function<bool(const nlohmann::json&)>& which,
                                 std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace sp::test
