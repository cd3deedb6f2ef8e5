// Following a queued job to its end: its state polled, its log lines copied
// as they come, a cancel passed on, a job nobody claims given up on.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "build/pipeline.h"
#include "core/clock.h"
#include "core/error.h"
#include "queue/job.h"

namespace sp {

// What a waiter sees of a job.
struct JobProgress {
  JobState state = JobState::kQueued;
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
  Millis poll_every{200};
};

// Follows job `w` until it ends, reading time and sleeping through `clock`:
// its log lines go to `log` as they come (the job log's lines, text only).
// Succeeded: Ok. Dead or canceled: an error with the job's reason. Still
// queued after `claim_timeout`, or `cancel` while queued: the job is
// canceled and an error says why. Once an agent holds the job, a cancel
// cancels it only with `cancel_running`; else it is noted and left to finish.
Status WaitForJob(const JobWatch& w, const LineCallback& log, const std::atomic<bool>& cancel, Millis claim_timeout,
                  Clock& clock);

}  // namespace sp
