// CurlHealthChecker: one plain-HTTP GET per probe with libcurl.
#pragma once

#include <functional>
#include <string>

#include "health/health.h"

namespace sp {

// Thread-safe: each Probe uses its own easy handle; curl_global_init runs once.
class CurlHealthChecker final : public HealthChecker {
 public:
  // Maps (address, port) to a local unix socket that reaches it (e.g. an SSH
  // forward through a bastion); an empty path means connect directly.
  using Route = std::function<Result<std::string>(const std::string& address, int port)>;
  CurlHealthChecker();
  explicit CurlHealthChecker(Route route);
  // GET http://<address>:<port><path> with spec.timeout as both connect and
  // total deadline, no proxy (whatever the environment says), no redirects,
  // HTTP only. ok == (status == spec.expected_status). body holds at most the
  // first 512 bytes; the rest of the body is not read. A probe that got no
  // response has status 0 and the curl error text in `error`.
  HealthProbe Probe(const std::string& address, int port, const HealthCheckSpec& spec) override;

 private:
  Route route_;
};

}  // namespace sp
