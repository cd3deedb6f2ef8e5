#include <algorithm>

#include "rollout/engine_internal.h"

namespace sp {

RolloutEngine::Prefetcher::Prefetcher(RolloutEngine* e, const RolloutPlan& plan, std::vector<size_t> order,
                                      int workers, size_t skip)
    : e_(e), plan_(plan), order_(std::move(order)), state_(order_.size(), kIdle), next_(skip) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
}

RolloutEngine::Prefetcher::~Prefetcher() { Join(); }

void RolloutEngine::Prefetcher::Finish() {
  Join();
  RethrowOnce();
}

void RolloutEngine::Prefetcher::Allow(size_t limit) {
  {
    std::lock_guard lk(mu_);
    limit_ = std::max(limit_, std::min(limit, order_.size()));
  }
  cv_.notify_all();
}

bool RolloutEngine::Prefetcher::Claim(size_t index) {
  std::unique_lock lk(mu_);
  auto it = std::find(order_.begin(), order_.end(), index);
  if (it == order_.end()) return false;
  const size_t pos = static_cast<size_t>(it - order_.begin());
  if (state_[pos] == kIdle) state_[pos] = kClaimed;
  cv_.wait(lk, [&] { return state_[pos] != kRunning; });
  lk.unlock();
  RethrowOnce();
  return state_[pos] == kPulled;
}

void RolloutEngine::Prefetcher::Join() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void RolloutEngine::Prefetcher::RethrowOnce() {
  std::exception_ptr e;
  {
    std::lock_guard lk(mu_);
    e = std::exchange(error_, nullptr);
  }
  if (e) std::rethrow_exception(e);
}

void RolloutEngine::Prefetcher::Work() {
  std::unique_lock lk(mu_);
  while (true) {
    cv_.wait(lk, [&] { return stop_ || next_ < limit_; });
    if (stop_) return;
    const size_t pos = next_++;
    if (state_[pos] != kIdle) continue;
    state_[pos] = kRunning;
    lk.unlock();
    std::exception_ptr thrown;
    bool pulled = false;
    try {
      if (e_->CheckLease()) {  // Fenced: a process that lost the lock touches no host.
        bool cached = false;
        pulled = e_->PullArtifact(plan_, plan_.hosts[order_[pos]], &cached).has_value();
      }
    } catch (...) {
      thrown = std::current_exception();
    }
    lk.lock();
    if (thrown && !error_) error_ = thrown;
    state_[pos] = pulled ? kPulled : kFailed;
    cv_.notify_all();
  }
}

}  // namespace sp
