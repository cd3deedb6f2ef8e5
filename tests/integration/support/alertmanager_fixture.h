// AlertmanagerFixture: a real Prometheus Alertmanager (Debian's
// prometheus-alertmanager) on 127.0.0.1 with its own config, data dir and
// port, clustering off. Its silences as the API v2 lists them, read with a
// plain HTTP GET (not with the adapter under test).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "inventory/inventory.h"
#include "support/test_util.h"

namespace sp::test {

class AlertmanagerFixture {
 public:
  // Config, data and log live in `dir`, which must outlive the fixture.
  explicit AlertmanagerFixture(std::string dir) : dir_(std::move(dir)) {}
  ~AlertmanagerFixture() { Stop(); }
  AlertmanagerFixture(const AlertmanagerFixture&) = delete;
  AlertmanagerFixture& operator=(const AlertmanagerFixture&) = delete;

  // Starts it and returns once /-/ready answers 200 (polled, at most 20 s);
  // on failure the error carries its log's tail. Again after Stop: the same
  // port and data (its silences survive, as across a restart).
  Status Start();
  void Stop() { daemon_.Stop(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Every silence it holds (GET /api/v2/silences), expired ones included.
  nlohmann::json Silences() const;
  // Those whose comment contains `text`, by state ("active", "expired", ...).
  std::vector<nlohmann::json> SilencesWith(const std::string& text, const std::string& state = "") const;
  std::string LogTail(int lines = 30) const;

 private:
  std::string dir_;
  int port_ = 0;
  Daemon daemon_;
};

}  // namespace sp::test
