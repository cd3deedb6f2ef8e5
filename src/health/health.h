// HealthChecker: one HTTP probe of an app instance. The rollout engine owns
// the retry loop (interval, retries) so it runs on the engine's Clock.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "config/service_config.h"

namespace sp {

struct HealthProbe {
  bool ok = false;
  int status = 0;          // HTTP status, 0 when no response.
  std::string body;        // First bytes of the body (for error messages).
  std::string error;       // Connection/timeout error text when status == 0.
  std::string Describe() const;  // "HTTP 500: <body>" / "connection refused"
};

class HealthChecker {
 public:
  virtual ~HealthChecker() = default;
  virtual HealthProbe Probe(const std::string& address, int port, const HealthCheckSpec& spec) = 0;
};

}  // namespace sp
