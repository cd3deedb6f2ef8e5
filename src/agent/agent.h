// `sallyport agent run`: claims build and rollout jobs for its token's
// labels from a server, over outbound connections only, and runs each here.
// A rollout's journal and lock are on the server (every step journaled
// there before it acts, refused without the current lease); every action on
// hosts and LBs is fenced by the job's lease as this agent last confirmed
// it (lease.h). A job claimed again (its agent died or stalled) is resumed
// from the server's journal: each host reconciled, then the rest rolled.
// Build jobs run the pipeline here; their deploy is asked of the server,
// which queues the rollout for the deployment's network.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "build/pipeline.h"
#include "client/api_client.h"
#include "core/clock.h"
#include "rollout/engine.h"
#include "wiring/engine_wiring.h"

namespace sp {

// Runs (or, with `resume`, resumes) one plan's rollout with `setup`'s
// journal, lock, fence and event sink. The real one wires the adapters
// (RunRolloutWithAdapters); unit tests give an engine with fakes.
using RolloutRunner =
    std::function<Result<RolloutSummary>(const RolloutPlan& plan, const EngineSetup& setup, bool resume)>;
Result<RolloutSummary> RunRolloutWithAdapters(const RolloutPlan& plan, const EngineSetup& setup, bool resume);

struct AgentOptions {
  Clock* clock = nullptr;              // Required: leases, timestamps, waits.
  int64_t lease_ms = 60'000;           // Renewed every quarter of it.
  Millis claim_wait{1000};             // A claim's long poll.
  std::string work_dir;                // Build workspaces: <work_dir>/build-<id>, removed after each build.
  // Build jobs' pipeline: clock, processes, steps, vcs, docker_host,
  // read_secret (its deploy is this agent's).
  PipelineOptions pipeline;
  RolloutRunner run_rollout = RunRolloutWithAdapters;
  LoadBalancerDecorator decorate_lb;   // Passed to every rollout (the test tree's negative control).
  // Called with every rollout event after it is logged (extensions of the
  // test tree stop an agent at an exact step); may be empty.
  std::function<void(const Event&)> observe_event;
};

class Agent {
 public:
  Agent(ApiClient& api, AgentOptions options);
  // Registers with the server: the token's name and labels, or why not.
  Result<nlohmann::ordered_json> Register();
  // Claims and runs jobs until `stopping`: a build in hand is finished
  // first; a rollout in hand stops after the host(s) in hand and is handed
  // back to the server, which gives it to another agent at once.
  void Run(const std::atomic<bool>& stopping);
  // Runs one claimed job here to its end and reports it (complete or fail):
  // heartbeats every quarter of the lease, the job's lines to the server.
  // `claim_sent`: when the claim was sent (clock.MonotonicMs()).
  void RunClaimedJob(const nlohmann::ordered_json& claim, int64_t claim_sent);

 private:
  struct Job;
  // The rollout of `job`; *ok when it succeeded, *handed_back when this
  // agent began stopping and left the rest of it to another.
  std::string RunRolloutJob(Job& job, bool* ok, bool* handed_back);
  std::string RunBuildJob(Job& job);
  // A secret reference of the job's plan or build: "credential:NAME" is
  // asked of the server (which checks the job uses it and the host it goes
  // to); other references are read here (ReadSecretRef).
  // `purpose` "branch:B": for a build step's `secrets:` (the server checks it).
  static Result<std::string> CredentialOrSecret(Job& job, const std::string& ref, const std::string& purpose = "");
  Status RequestDeploy(Job& job, const DeployRequest& r, const LineCallback& log, const std::atomic<bool>& stop);

  ApiClient& api_;
  AgentOptions o_;
  std::string name_;
  const std::atomic<bool>* stopping_ = nullptr;  // Run's: set once it is asked to stop.
};

}  // namespace sp
