#include "agent/log_shipper.h"

#include <chrono>

namespace sp {

using Doc = nlohmann::ordered_json;

namespace {
constexpr size_t kMaxWaiting = 20'000;
constexpr size_t kMaxWaitingBytes = 8u << 20;  // Of text: lines are at most 64 KiB (kMaxLineBytes).
}  // namespace

LogShipper::LogShipper(Send send, Clock& clock) : send_(std::move(send)), clock_(clock), thread_([this] { Loop(); }) {}

LogShipper::~LogShipper() { Close(); }

void LogShipper::Line(const std::string& step, bool is_err, const std::string& text) {
  std::lock_guard lk(mu_);
  if (pending_.size() >= kMaxWaiting || waiting_bytes_ + text.size() > kMaxWaitingBytes) {
    ++dropped_;
    return;
  }
  waiting_bytes_ += text.size();
  pending_.push_back({{"ts", clock_.WallMs()}, {"step", step}, {"err", is_err}, {"text", text}});
}

void LogShipper::Flush() { SendPending(); }

void LogShipper::Close() {
  {
    std::lock_guard lk(mu_);
    if (closing_) return;
    closing_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LogShipper::Loop() {
  for (;;) {
    bool last;
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(200), [this] { return closing_; });
      last = closing_;
    }
    SendPending();
    if (last) return;
  }
}

void LogShipper::SendPending() {
  std::lock_guard send_lock(send_mu_);
  Doc batch = Doc::array();
  {
    std::lock_guard lk(mu_);
    if (dropped_ > 0) {
      pending_.push_back({{"ts", clock_.WallMs()}, {"step", "agent"}, {"err", true},
                          {"text", std::to_string(dropped_) + " line(s) dropped: the server could not keep up"}});
      dropped_ = 0;
    }
    batch.get_ref<Doc::array_t&>().swap(pending_);
    waiting_bytes_ = 0;
  }
  if (batch.empty() || lost_) return;
  Status st = send_(batch);
  if (!st && st.error().code == ErrorCode::kConflict) lost_ = true;
}

}  // namespace sp
