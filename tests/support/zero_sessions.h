// A load balancer decorator that reports every server with no session: the
// engine then stops a host while it still serves. The negative control of
// the zero-failed-requests tests (unit tests and the test binary); never in
// the shipped binary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lb/load_balancer.h"

namespace sp::test {

class ZeroSessions final : public LoadBalancer {
 public:
  explicit ZeroSessions(std::unique_ptr<LoadBalancer> inner) : inner_(std::move(inner)) {}
  std::string Describe() const override { return inner_->Describe(); }
  Status SetState(const std::string& b, const std::string& s, AdminState st) override {
    return inner_->SetState(b, s, st);
  }
  Result<ServerState> GetServer(const std::string& b, const std::string& s) override {
    auto r = inner_->GetServer(b, s);
    if (r) r->sessions = 0;
    return r;
  }
  Result<std::vector<ServerState>> ListBackend(const std::string& b) override { return inner_->ListBackend(b); }
  Status AddServer(const std::string& b, const std::string& s, const std::string& a, int p) override {
    return inner_->AddServer(b, s, a, p);
  }
  Status RemoveServer(const std::string& b, const std::string& s) override { return inner_->RemoveServer(b, s); }

 private:
  std::unique_ptr<LoadBalancer> inner_;
};

}  // namespace sp::test
