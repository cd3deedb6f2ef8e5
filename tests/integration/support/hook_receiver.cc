#include "support/hook_receiver.h"

#include <chrono>

namespace sp::test {

HookReceiver::HookReceiver() {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
    bool fail = false;
    {
      std::lock_guard l(mu_);
      ReceivedCall c;
      c.method = req.method;
      c.path = req.path;
      c.key = req.get_header_value("Idempotency-Key");
      c.authorization = req.get_header_value("Authorization");
      c.content_type = req.get_header_value("Content-Type");
      c.body = req.body;
      c.signature = req.get_header_value("X-Sallyport-Signature");
      c.event = req.get_header_value("X-Sallyport-Event");
      c.delivery = req.get_header_value("X-Sallyport-Delivery");
      calls_.push_back(std::move(c));
      fail = static_cast<int>(calls_.size()) <= fail_first.load();
    }
    res.status = fail ? 500 : 200;
    res.set_content(fail ? "busy, try again" : "{\"ok\":true}", "application/json");
  };
  server_.Post(R"(/.*)", handler);
  server_.Put(R"(/.*)", handler);
  server_.Get(R"(/.*)", handler);
  port_ = server_.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
}

HookReceiver::~HookReceiver() {
  server_.stop();
  thread_.join();
}

std::vector<ReceivedCall> HookReceiver::Calls() {
  std::lock_guard l(mu_);
  return calls_;
}

}  // namespace sp::test
