// One claimed job while an agent runs it (agent.cc, build_job.cc).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "agent/agent.h"
#include "agent/lease.h"
#include "agent/log_shipper.h"
#include "secrets/masker.h"

namespace sp {

// One claimed job while it runs here.
struct Agent::Job {
  Job(int64_t id, int64_t epoch, int64_t lease_ms, Clock& clock) : id(id), epoch(epoch), lease(lease_ms, clock) {}
  const int64_t id;
  const int64_t epoch;
  std::string base;  // "/v1/agent/jobs/<id>"
  std::string kind, payload;
  JobLease lease;
  std::atomic<bool> lease_lost{false};  // Ends a build's running step.
  LogShipper* shipper = nullptr;
  // The secret values this job was handed (its credentials): masked in
  // everything it sends to the server (log lines, journal, reports) and prints.
  Masker masker;
  // POST base+path with the epoch added.
  std::function<Result<nlohmann::ordered_json>(const std::string& path, nlohmann::ordered_json body)> post;
};

}  // namespace sp
