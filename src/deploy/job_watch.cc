#include "deploy/job_watch.h"

#include "build/build_log.h"
#include "core/text.h"

namespace sp {

namespace {

// Copies the job log's new complete lines to `log`.
class LogCopier {
 public:
  LogCopier(const JobWatch& w, const LineCallback& log) : w_(w), log_(log) {}
  void Copy() {
    if (!w_.read_log) return;
    auto bytes = w_.read_log(offset_);
    if (!bytes) return;
    offset_ += static_cast<int64_t>(bytes->size());
    pending_ += *bytes;
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (auto l = ParseLogLine(pending_.substr(start, nl - start))) log_(l->is_err, l->text);
    }
    pending_.erase(0, start);
  }

 private:
  const JobWatch& w_;
  const LineCallback& log_;
  int64_t offset_ = 0;
  std::string pending_;
};

}  // namespace

Status WaitForJob(const JobWatch& w, const LineCallback& log, const std::atomic<bool>& cancel, Millis claim_timeout,
                  Clock& clock) {
  int64_t queued_since = clock.MonotonicMs();  // Since it was last (re)queued.
  JobState last_state = JobState::kQueued;
  bool noted_cancel = false, took_over = false;
  LogCopier copier(w, log);
  for (;;) {
    auto p = w.poll();
    copier.Copy();
    if (!p) return Err(p.error().Wrap(w.what));
    if (p->state == JobState::kQueued && last_state != JobState::kQueued) queued_since = clock.MonotonicMs();
    last_state = p->state;
    const Millis queued_for(clock.MonotonicMs() - queued_since);
    switch (p->state) {
      case JobState::kSucceeded:
        log(false, w.what + " succeeded by " + p->owner + (p->result.empty() ? "" : ": " + p->result));
        return Ok();
      case JobState::kDead:
      case JobState::kCanceled:
        return Err(ErrorCode::kUnavailable,
                   w.what + " " + std::string(JobStateName(p->state)) + (p->error.empty() ? "" : ": " + p->error));
      case JobState::kQueued:
        if (cancel.load()) {
          (void)w.cancel();
          return Err(ErrorCode::kCancelled, "canceled (" + w.what + " canceled before an agent took it)");
        }
        if (w.take_over && !took_over && queued_for >= w.take_over_after) {
          took_over = true;
          w.take_over();
          continue;
        }
        if (queued_for > claim_timeout) {
          (void)w.cancel();
          return Err(ErrorCode::kTimeout, "no agent took " + w.what + " within " + FormatDuration(claim_timeout) +
                                              ": run `sallyport agent run` with a token bound to its labels");
        }
        break;
      case JobState::kLeased:
        if (cancel.load() && !noted_cancel) {
          noted_cancel = true;
          if (w.cancel_running) {
            log(true, "cancel requested: canceling " + w.what + " on " + p->owner);
            if (auto st = w.cancel(); !st) log(true, "canceling " + w.what + ": " + st.error().message);
          } else {
            log(true, "cancel requested: " + w.what + " is running on " + p->owner + " and is left to finish");
          }
        }
        break;
    }
    clock.Sleep(w.poll_every);
  }
}

}  // namespace sp
