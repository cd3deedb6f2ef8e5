// The agent as a process: its token read from a file, the real adapters
// wired (git, the step supervisor, the engine's adapters), SIGTERM/SIGINT
// stop the claiming (the job in hand is finished first).
#pragma once

#include <string>

#include "agent/agent.h"

namespace sp {

struct AgentProcessOptions {
  std::string server;      // https://host:port (http:// to loopback only)
  std::string ca;          // CA certificate file to verify the server; empty: the system's.
  std::string token_file;  // This agent's token.
  std::string lease = "60s";
  std::string work_dir;    // Empty: $TMPDIR/sallyport-agent-<pid>.
  std::string docker_host; // DOCKER_HOST of build jobs' image and push steps.
  std::string step_user;   // Who build jobs' commit steps run as ("": nobody when root).
  LoadBalancerDecorator decorate_lb;              // Test tree only.
  std::function<void(const Event&)> observe_event;  // Test tree only.
};

// Runs until a stop signal; an Error when it cannot start (token, lease,
// server refusing the token).
Status RunAgentProcess(const AgentProcessOptions& options);

}  // namespace sp
