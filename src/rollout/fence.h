// Fencing at the action (issue 6): wrappers that refuse every action on a
// host or a load balancer unless `fence()` says we may still act — for an
// agent, unless its job's lease is confirmed for a while yet. Reads (LB
// state, listing) are not actions and pass through.
#pragma once

#include <functional>
#include <memory>

#include "lb/load_balancer.h"
#include "transport/transport.h"

namespace sp {

using Fence = std::function<Status()>;

class FencedTransport final : public Transport {
 public:
  FencedTransport(Transport& inner, Fence fence) : inner_(inner), fence_(std::move(fence)) {}
  Result<ExitStatus> Run(const HostRef& host, const CommandSpec& spec) override {
    SP_TRY(fence_());
    return inner_.Run(host, spec);
  }
  Status WriteFile(const HostRef& host, const std::string& path, const std::string& content, int mode) override {
    SP_TRY(fence_());
    return inner_.WriteFile(host, path, content, mode);
  }
  Status CopyFile(const HostRef& host, const std::string& local_path, const std::string& remote_path,
                  int mode) override {
    SP_TRY(fence_());
    return inner_.CopyFile(host, local_path, remote_path, mode);
  }
  Status Check(const HostRef& host) override {
    SP_TRY(fence_());
    return inner_.Check(host);
  }
  Result<std::string> UnixSocket(const HostRef& host, const std::string& remote_path) override {
    SP_TRY(fence_());  // Each API request asks for its socket right before it is sent.
    return inner_.UnixSocket(host, remote_path);
  }
  void Release(const HostRef& host) override { inner_.Release(host); }

 private:
  Transport& inner_;
  Fence fence_;
};

class FencedLoadBalancer final : public LoadBalancer {
 public:
  FencedLoadBalancer(std::unique_ptr<LoadBalancer> inner, Fence fence)
      : inner_(std::move(inner)), fence_(std::move(fence)) {}
  std::string Describe() const override { return inner_->Describe(); }
  Status SetState(const std::string& backend, const std::string& server, AdminState state) override {
    SP_TRY(fence_());
    return inner_->SetState(backend, server, state);
  }
  Result<ServerState> GetServer(const std::string& backend, const std::string& server) override {
    return inner_->GetServer(backend, server);
  }
  Result<std::vector<ServerState>> ListBackend(const std::string& backend) override {
    return inner_->ListBackend(backend);
  }
  Status AddServer(const std::string& backend, const std::string& server, const std::string& address,
                   int port) override {
    SP_TRY(fence_());
    return inner_->AddServer(backend, server, address, port);
  }
  Status RemoveServer(const std::string& backend, const std::string& server) override {
    SP_TRY(fence_());
    return inner_->RemoveServer(backend, server);
  }

 private:
  std::unique_ptr<LoadBalancer> inner_;
  Fence fence_;
};

}  // namespace sp
