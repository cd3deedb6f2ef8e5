// A bounded pool of worker threads: threads start as tasks need them, up to
// max_threads; past that, tasks wait in a queue of at most max_queue; past
// that, Submit refuses (the caller answers 503). Stop runs what is queued
// and joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sp::http {

class WorkerPool {
 public:
  WorkerPool(int max_threads, int max_queue) : max_threads_(max_threads), max_queue_(max_queue) {}
  ~WorkerPool() { Stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // false: every worker is busy and the queue is full, or the pool stopped.
  bool Submit(std::function<void()> task);
  void Stop();

 private:
  void Run();
  const int max_threads_;
  const int max_queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  int idle_ = 0;
  bool stopping_ = false;
};

}  // namespace sp::http
