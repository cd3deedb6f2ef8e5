// Alert silences in a Prometheus Alertmanager, through its API v2:
// GET /api/v2/silences, POST /api/v2/silences (make, or update by id),
// DELETE /api/v2/silence/{id} (expire). Each call bounded by the spec's
// timeout; a refused connection, 429 and 5xx retried with backoff within it.
#pragma once

#include <cstdint>
#include <string>

#include "core/clock.h"
#include "hooks/silencer.h"

namespace sp {

// RFC 3339 in UTC with milliseconds ("2026-12-07T15:04:05.123Z"), and back
// (fractions of any length, "Z" or a "+hh:mm" offset); nullopt-like -1 on
// a malformed time.
std::string FormatRfc3339Ms(int64_t unix_ms);
int64_t ParseRfc3339Ms(const std::string& s);

class AlertmanagerSilencer final : public Silencer {
 public:
  explicit AlertmanagerSilencer(Clock& clock) : clock_(clock) {}
  Result<std::vector<Silence>> Find(const SilenceSpec& spec, const std::string& marker) override;
  Result<std::string> Put(const SilenceSpec& spec, const Silence& s) override;
  Status Expire(const SilenceSpec& spec, const std::string& id) override;

 private:
  Result<std::string> Call(const SilenceSpec& spec, const std::string& method, const std::string& path,
                           const std::string& body, bool expiring);
  Clock& clock_;
};

}  // namespace sp
