#include "agent/agent_process.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "client/http_client.h"
#include "core/file.h"
#include "core/stop_signals.h"
#include "core/text.h"
#include "runner/runner.h"
#include "vcs/git/git_vcs.h"

namespace sp {

Status RunAgentProcess(const AgentProcessOptions& po) {
  SP_ASSIGN_OR_RETURN(std::string token_text, ReadTextFile(po.token_file));
  auto lease = ParseDuration(po.lease);
  if (!lease || lease->count() < 1000) {
    return Err(ErrorCode::kInvalidArgument, "--lease: expected a duration of at least 1s, got '" + po.lease + "'");
  }
  HttpClientOptions client{po.server, Trim(token_text), po.ca};
  // A server restarting refuses connections for a moment: a journal call
  // waits it out (half a lease, at most 10 s; the server still fences the
  // call by the job's lease) instead of failing the host in hand.
  client.retry_refused = Millis(std::min<int64_t>(lease->count() / 2, 10'000));
  SP_ASSIGN_OR_RETURN(auto api, HttpApiClient::Create(client));
  // Stop signals: blocked before any thread starts, then waited for.
  static std::atomic<bool> stopping{false};
  StopSignals signals([](int, int) { stopping = true; });

  static GitVcs vcs;
  static SupervisedStepRunner steps;
  AgentOptions o;
  o.clock = &RealClock::Instance();
  o.lease_ms = lease->count();
  o.work_dir = po.work_dir;
  if (o.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    o.work_dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/sallyport-agent-" + std::to_string(::getpid());
  }
  o.pipeline.processes = &SystemProcesses();
  o.pipeline.steps = &steps;
  o.pipeline.vcs = &vcs;
  o.pipeline.docker_host = po.docker_host;
  SP_ASSIGN_OR_RETURN(o.pipeline.step_user, StepUserNamed(po.step_user));
  o.pipeline.read_secret = ReadSecretRef;
  o.pipeline.check_registry = RegistryPushCheck();
  o.decorate_lb = po.decorate_lb;
  o.observe_event = po.observe_event;
  Agent agent(*api, o);
  SP_ASSIGN_OR_RETURN(auto me, agent.Register());
  std::printf("agent %s: claiming for %s at %s\n", me.value("name", "").c_str(), me["labels"].dump().c_str(),
              po.server.c_str());
  std::fflush(stdout);
  agent.Run(stopping);
  std::printf("agent: stopped\n");
  return Ok();
}

}  // namespace sp
