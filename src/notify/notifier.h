// The server's notifier: reads what happened from the store (rollouts,
// restore steps, builds), puts one outbox record per event and channel that
// takes it, and delivers the outbox with retries and backoff — on its own
// thread, so a slow or dead receiver never slows a rollout or a build. Each
// record keeps its outcome (delivered, retrying, gave up) for the API and
// `sallyport rollout show`.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.h"
#include "notify/notify.h"

namespace sp {

struct NotifierOptions {
  Clock* clock = nullptr;
  // Reads a channel's URL and secret references ("file:/path", "env:NAME").
  std::function<Result<std::string>(const std::string& ref)> read_ref;
  // The build of a rollout's artifact (commit, author, message); may be empty.
  std::function<std::optional<BuildRecord>(const std::string& artifact)> build_of;
  std::string public_url;        // For {link}: <public_url>/v1/rollouts/<id> ("": no link).
  int max_attempts = 6;          // Then it gave up (recorded).
  Millis backoff{1000};          // After the first failure; doubling, at most 60 s.
  Millis timeout{5000};          // One delivery.
  Millis every{500};             // How often it looks for events and due deliveries.
  // Events older than this when the notifier first looks (it starts) are
  // not told: a restarted server tells what happened while it was down,
  // not a store's whole history.
  Millis catch_up{600'000};
};

class Notifier {
 public:
  Notifier(NotifyStore& store, JournalStore& journal, NotifierOptions o);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void Start();  // Its thread: Scan and Deliver every `every`.
  void Stop();   // Joins; what is not delivered stays in the outbox for the next start.
  void Wake();   // Look now (an urgent event, a test).

  // One pass over what changed since the last one (with a minute's overlap:
  // a record is added once per channel and event key): records added.
  Result<int> Scan();
  // Sends each due record once: those tried.
  int Deliver();

 private:
  void Queue(const std::vector<NotifyChannel>& channels, const NotifyEvent& e, int& added);
  void Send(const NotifyChannel* channel, NotificationRecord& n);

  NotifyStore& store_;
  JournalStore& journal_;
  NotifierOptions o_;
  int64_t since_ms_ = -1;  // Rollouts and builds changed at or after this.
  int64_t after_seq_ = 0;  // Told steps after this journal line.
  // "<channel>\n<event key>" queued by this process -> when: a record seen
  // again by the scan's overlap is neither rendered nor written again.
  std::map<std::string, int64_t> queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, woken_ = false;
  std::thread thread_;
};

}  // namespace sp
