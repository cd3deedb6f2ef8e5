#include "rollout/scope_lease.h"

namespace sp {

void ScopeLease::Held(const Lease& lease, int64_t ttl_ms) {
  std::lock_guard l(mu_);
  lease_ = lease;
  ttl_ms_ = ttl_ms;
  confirmed_until_ = clock_->MonotonicMs() + ttl_ms - ttl_ms / 4;
  lost_ = false;
  why_.clear();
}

void ScopeLease::Renewed(int64_t sent_ms) {
  std::lock_guard l(mu_);
  if (lease_ && !lost_) confirmed_until_ = sent_ms + ttl_ms_ - ttl_ms_ / 4;
}

void ScopeLease::Lost(const std::string& why) {
  std::lock_guard l(mu_);
  if (!lease_ || lost_) return;
  lost_ = true;
  why_ = why;
}

void ScopeLease::Dropped() {
  std::lock_guard l(mu_);
  lease_.reset();
}

bool ScopeLease::lost() const {
  std::lock_guard l(mu_);
  return lost_;
}

Status ScopeLease::LostError() const {
  return Err(ErrorCode::kConflict, "lock lost: " + why_ + "; this rollout stops without touching anything more "
                                                          "(the lock's next holder reconciles its hosts)");
}

Status ScopeLease::Check() {
  std::string key, token;
  {
    std::lock_guard l(mu_);
    if (lost_) return LostError();
    if (!lease_) return Ok();
    key = lease_->key;
    token = lease_->token;
  }
  if (verify_) {
    auto held = locks_->Get(key);
    if (held) {
      if (*held && (*held)->token == token) return Ok();
      Lost(*held ? "lock " + key + " taken over by " + (*held)->holder + " (" + (*held)->reason + ")"
                 : "lock " + key + " was released by someone else");
      std::lock_guard l(mu_);
      return LostError();
    }
    // The store did not answer: the last confirmed renewal decides.
  }
  std::lock_guard l(mu_);
  if (clock_->MonotonicMs() < confirmed_until_) return Ok();
  if (!lost_) {
    lost_ = true;
    why_ = "lock " + key + " not renewed in time (its lease may have expired and been taken over)";
  }
  return LostError();
}

}  // namespace sp
