// A hook receiver on loopback (cpp-httplib): records every request it gets
// and answers 200, or 500 to the first `fail_first` requests, after
// `delay_ms` if set. Stands for an autoscaling API or a team's endpoint.
#pragma once

#include <httplib.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sp::test {

struct ReceivedCall {
  std::string method, path, key, authorization, content_type, body;
  std::string signature, event, delivery;  // X-Sallyport-Signature, -Event, -Delivery (notifications).
};

class HookReceiver {
 public:
  HookReceiver();
  ~HookReceiver();
  int port() const { return port_; }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<ReceivedCall> Calls();
  std::atomic<int> fail_first{0};
  std::atomic<int> delay_ms{0};

 private:
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<ReceivedCall> calls_;
  int port_ = -1;
};

}  // namespace sp::test
