#include "lb/load_balancer.h"

namespace sp {

std::string_view AdminStateName(AdminState s) {
  switch (s) {
    case AdminState::kReady: return "ready";
    case AdminState::kDrain: return "drain";
    case AdminState::kMaint: return "maint";
  }
  return "ready";
}

bool ServerState::InRotation() const {
  return admin == AdminState::kReady && (status.rfind("UP", 0) == 0 || status == "no check");
}

}  // namespace sp
