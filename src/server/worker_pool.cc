#include "server/worker_pool.h"

namespace sp::http {

bool WorkerPool::Submit(std::function<void()> task) {
  std::lock_guard lk(mu_);
  if (stopping_) return false;
  const int waiting = static_cast<int>(tasks_.size());
  if (idle_ <= waiting) {
    if (static_cast<int>(threads_.size()) < max_threads_) {
      threads_.emplace_back([this] { Run(); });
    } else if (waiting >= max_queue_) {
      return false;
    }
  }
  tasks_.push_back(std::move(task));
  cv_.notify_one();
  return true;
}

void WorkerPool::Run() {
  std::unique_lock lk(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lk, [this] { return stopping_ || !tasks_.empty(); });
    --idle_;
    if (tasks_.empty()) return;  // Stopping, nothing left.
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lk.unlock();
    task();
    task = nullptr;  // Its captures go before the lock is taken again.
    lk.lock();
  }
}

void WorkerPool::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
}

}  // namespace sp::http
