// An agent's log lines of one job, shipped to the server in batches (every
// 200 ms, or at Flush and Close) through `send`. The lines wait in memory
// only while a batch is in flight; past 20,000 waiting lines or 8 MiB of
// waiting text the newest are counted and dropped (a line says how many). A send refused as 409 (lease
// lost) stops the shipping: a stale agent's lines never land in the job's log.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"

namespace sp {

class LogShipper {
 public:
  using Send = std::function<Status(const nlohmann::ordered_json& lines)>;
  LogShipper(Send send, Clock& clock);
  ~LogShipper();
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;
  void Line(const std::string& step, bool is_err, const std::string& text);
  // Sends what is waiting now (in order with the background sends).
  void Flush();
  // Sends what is left, then stops.
  void Close();

 private:
  void Loop();
  void SendPending();

  Send send_;
  Clock& clock_;
  std::mutex mu_, send_mu_;
  std::condition_variable cv_;
  std::vector<nlohmann::ordered_json> pending_;
  size_t waiting_bytes_ = 0;  // Text of pending_.
  int64_t dropped_ = 0;
  bool closing_ = false;
  bool lost_ = false;  // Under send_mu_.
  std::thread thread_;
};

}  // namespace sp
