// A build's deploy behind the queue (issue 6): the server resolves the
// target and freezes the plan, the plan becomes a rollout job for the agents
// of the deployment's network, and the build's deploy step follows the job
// (state and log lines) until it ends. The same wait serves a build that
// runs on an agent: it follows the job through the server's API.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "build/build_service.h"
#include "core/error.h"
#include "inventory/service.h"
#include "rollout/plan.h"
#include "store/store.h"

namespace sp::cli {

// The target of a build's deploy resolved through the inventory (a missing
// personal deployment is claimed from the stack's template whose name
// pattern gives it), and the frozen plan of its rollout.
Result<RolloutPlan> DeployPlan(inventory::Service& inventory, const DeployRequest& r, const LineCallback& log);

// The rollout job of a plan: for the agents of the plan's network; the
// plan's id is the idempotency key.
JobSpec RolloutJobSpec(const RolloutPlan& plan);

// What a waiter sees of a job.
struct JobProgress {
  std::string state;  // queued | leased | succeeded | dead | canceled
  std::string owner, result, error;
};

struct JobWatch {
  std::function<Result<JobProgress>()> poll;
  std::function<Result<std::string>(int64_t offset)> read_log;  // The job log's bytes from offset.
  std::function<Status()> cancel;
  std::string what;  // e.g. "rollout job 7 (network dev)", for messages.
  // A cancel also cancels the job while an agent runs it (a build: the agent
  // loses the lease and ends its step); otherwise a running job is left to
  // finish (a rollout is never cut mid-host).
  bool cancel_running = false;
  // Set: called once if the job is still queued `take_over_after` after it
  // was queued (an agent that may run the job itself takes it over).
  std::function<void()> take_over;
  Millis take_over_after{1000};
};

// Follows job `w` until it ends: its log lines go to `log` as they come
// (the job log's "<ts>\t<step>\t<out|err>\t<text>" lines, text only).
// Succeeded: Ok. Dead or canceled: an error with the job's reason. Still
// queued after `claim_timeout`, or `cancel` while queued: the job is
// canceled and an error says why. Once an agent holds the job, a cancel
// cancels it only with `cancel_running`; else it is noted and left to finish.
Status WaitForJob(const JobWatch& w, const LineCallback& log, const std::atomic<bool>& cancel, Millis claim_timeout);

}  // namespace sp::cli
