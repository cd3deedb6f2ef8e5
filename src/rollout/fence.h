// Fencing at the action (issues 6 and 20): wrappers that refuse every
// action on a host, a runtime or a load balancer unless `fence()` says we
// may still act — for an agent, unless its job's lease is confirmed for a
// while yet; for every rollout, unless its scope lock is still its own
// (ScopeLease). LB reads (state, listing) are not actions and pass through;
// a runtime's reads go through the (fenced) transport.
#pragma once

#include <functional>
#include <memory>

#include "hooks/hook_runner.h"
#include "hooks/silencer.h"
#include "lb/load_balancer.h"
#include "runtime/runtime.h"
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
  // `reads_too`: state reads are refused as well (the engine's own fence: a
  // rollout that lost its lock makes no load-balancer call at all).
  FencedLoadBalancer(std::unique_ptr<LoadBalancer> inner, Fence fence, bool reads_too = false)
      : inner_(std::move(inner)), fence_(std::move(fence)), reads_too_(reads_too) {}
  std::string Describe() const override { return inner_->Describe(); }
  Status SetState(const std::string& backend, const std::string& server, AdminState state) override {
    SP_TRY(fence_());
    return inner_->SetState(backend, server, state);
  }
  Result<ServerState> GetServer(const std::string& backend, const std::string& server) override {
    if (reads_too_) SP_TRY(fence_());
    return inner_->GetServer(backend, server);
  }
  Result<std::vector<ServerState>> ListBackend(const std::string& backend) override {
    if (reads_too_) SP_TRY(fence_());
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
  bool reads_too_;
};

class FencedHookRunner final : public HookRunner {
 public:
  FencedHookRunner(HookRunner& inner, Fence fence) : inner_(inner), fence_(std::move(fence)) {}
  Result<std::string> Run(const HookSpec& hook, const HookCall& call) override {
    SP_TRY(fence_());
    return inner_.Run(hook, call);
  }

 private:
  HookRunner& inner_;
  Fence fence_;
};

class FencedSilencer final : public Silencer {
 public:
  FencedSilencer(Silencer& inner, Fence fence) : inner_(inner), fence_(std::move(fence)) {}
  Result<std::vector<Silence>> Find(const SilenceSpec& spec, const std::string& marker) override {
    SP_TRY(fence_());
    return inner_.Find(spec, marker);
  }
  Result<std::string> Put(const SilenceSpec& spec, const Silence& s) override {
    SP_TRY(fence_());
    return inner_.Put(spec, s);
  }
  // Fenced too: a rollout that lost its lock leaves the silence to the
  // holder that resumes it (which adopts it) or to its end time.
  Status Expire(const SilenceSpec& spec, const std::string& id) override {
    SP_TRY(fence_());
    return inner_.Expire(spec, id);
  }

 private:
  Silencer& inner_;
  Fence fence_;
};

class FencedRuntime final : public Runtime {
 public:
  FencedRuntime(Runtime& inner, Fence fence) : inner_(inner), fence_(std::move(fence)) {}
  Status Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) override {
    SP_TRY(fence_());
    return inner_.Pull(t, app, auth);
  }
  Result<bool> HasArtifact(const RuntimeTarget& t, const AppSpec& app) override {
    SP_TRY(fence_());
    return inner_.HasArtifact(t, app);
  }
  Status CheckPull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) override {
    SP_TRY(fence_());
    return inner_.CheckPull(t, app, auth);
  }
  Result<bool> Available(const RuntimeTarget& t, const AppSpec& app) override {
    SP_TRY(fence_());
    return inner_.Available(t, app);
  }
  Result<std::vector<Instance>> List(const RuntimeTarget& t) override {
    SP_TRY(fence_());
    return inner_.List(t);
  }
  Status Stop(const RuntimeTarget& t, const Instance& inst, Millis timeout) override {
    SP_TRY(fence_());
    return inner_.Stop(t, inst, timeout);
  }
  Result<Instance> Start(const RuntimeTarget& t, const AppSpec& app) override {
    SP_TRY(fence_());
    return inner_.Start(t, app);
  }
  Status Restart(const RuntimeTarget& t, const Instance& inst) override {
    SP_TRY(fence_());
    return inner_.Restart(t, inst);
  }
  Status Remove(const RuntimeTarget& t, const Instance& inst) override {
    SP_TRY(fence_());
    return inner_.Remove(t, inst);
  }
  Result<std::string> Logs(const RuntimeTarget& t, const Instance& inst, int lines) override {
    SP_TRY(fence_());
    return inner_.Logs(t, inst, lines);
  }
  Result<std::optional<std::vector<PortListener>>> Listeners(const RuntimeTarget& t, int port) override {
    SP_TRY(fence_());
    return inner_.Listeners(t, port);
  }

 private:
  Runtime& inner_;
  Fence fence_;
};

}  // namespace sp
