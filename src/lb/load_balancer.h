// LoadBalancer: put a server in or out of rotation and read what the load
// balancer reports. HAProxy (runtime API) is the first implementation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace sp {

enum class AdminState { kReady, kDrain, kMaint };
std::string_view AdminStateName(AdminState s);

// What the load balancer reports for one server of one backend.
struct ServerState {
  std::string name;
  std::string status;  // As reported: "UP", "UP 1/2", "DOWN", "MAINT", "DRAIN", "no check", ...
  AdminState admin = AdminState::kReady;
  int sessions = 0;    // Current sessions (HAProxy scur).
  // True when the server takes traffic: ready and reported UP (or "no check").
  bool InRotation() const;
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // Human description for messages: "haproxy unix:/run/haproxy.sock".
  virtual std::string Describe() const = 0;
  virtual Status SetState(const std::string& backend, const std::string& server, AdminState state) = 0;
  virtual Result<ServerState> GetServer(const std::string& backend, const std::string& server) = 0;
  // Every server of `backend` (kNotFound if the backend does not exist).
  virtual Result<std::vector<ServerState>> ListBackend(const std::string& backend) = 0;
  // Adds a server to `backend`, out of rotation (MAINT) until set ready.
  // kConflict when the backend has a server of that name.
  virtual Status AddServer(const std::string& backend, const std::string& server, const std::string& address,
                           int port) = 0;
  // Takes the server out of rotation, closes its sessions and deletes it.
  // kNotFound when the backend has no such server (already removed).
  virtual Status RemoveServer(const std::string& backend, const std::string& server) = 0;
};

}  // namespace sp
