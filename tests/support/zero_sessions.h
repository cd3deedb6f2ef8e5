// A load balancer decorator that reports every server with no session: the
// engine then stops a host while it still serves. The negative control of
// the zero-failed-requests tests (unit tests and the test binary); never in
// the shipped binary.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lb/load_balancer.h"

namespace sp::test {

class ZeroSessions final : public LoadBalancer {
 public:
  // `hid`: told each time sessions were hidden (server, how many).
  using Hid = std::function<void(const std::string& server, int sessions)>;
  explicit ZeroSessions(std::unique_ptr<LoadBalancer> inner, Hid hid = nullptr)
      : inner_(std::move(inner)), hid_(std::move(hid)) {}
  std::string Describe() const override { return inner_->Describe(); }
  Status SetState(const std::string& b, const std::string& s, AdminState st) override {
    return inner_->SetState(b, s, st);
  }
  Result<ServerState> GetServer(const std::string& b, const std::string& s) override {
    auto r = inner_->GetServer(b, s);
    if (r && r->sessions > 0 && hid_) hid_(s, r->sessions);
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
  Hid hid_;
};

}  // namespace sp::test
