#include "notify/notifier.h"

#include <algorithm>

#include "build/build_service.h"
#include "core/text.h"
#include "hooks/http_call.h"

namespace sp {

namespace {

constexpr int kScanLimit = 500;
constexpr int64_t kOverlapMs = 60'000;

// A delivery's error without the URL (a credential: Slack's carries its token in the path).
std::string Scrubbed(std::string text, const std::string& url) {
  if (url.empty()) return text;
  for (size_t at; (at = text.find(url)) != std::string::npos;) text.replace(at, url.size(), "<url>");
  return text;
}

}  // namespace

Notifier::Notifier(NotifyStore& store, JournalStore& journal, NotifierOptions o)
    : store_(store), journal_(journal), o_(std::move(o)) {}

Notifier::~Notifier() { Stop(); }

void Notifier::Start() {
  thread_ = std::thread([this] {
    std::unique_lock l(mu_);
    while (!stop_) {
      l.unlock();
      if (auto added = Scan(); !added) {
        std::fprintf(stderr, "sallyport server: notifications: %s\n", added.error().message.c_str());
      }
      Deliver();
      l.lock();
      cv_.wait_for(l, o_.every, [this] { return stop_ || woken_; });
      woken_ = false;
    }
  });
}

void Notifier::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::Wake() {
  {
    std::lock_guard l(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Notifier::Queue(const std::vector<NotifyChannel>& channels, const NotifyEvent& e, int& added) {
  const int64_t now = o_.clock->WallMs();
  if (e.at_ms < now - o_.catch_up.count()) return;  // Long past (a record, if any, was added then).
  std::string link;
  if (!o_.public_url.empty()) {
    link = o_.public_url + (StartsWith(e.subject, "build/") ? "/v1/builds/" + e.subject.substr(6)
                                                            : "/v1/rollouts/" + e.subject);
  }
  for (const auto& c : channels) {
    if (!ChannelTakes(c, e)) continue;
    const std::string seen = c.name + "\n" + e.key;
    if (queued_.count(seen)) continue;
    NotificationRecord n;
    n.channel = c.name;
    n.event_key = e.key;
    n.event = e.name;
    n.subject = e.subject;
    n.urgent = e.urgent;
    n.body = NotificationBody(c, e, link);
    n.next_ms = now;
    n.created_ms = n.updated_ms = now;
    auto ok = store_.AddNotification(n);
    if (!ok) continue;  // Tried again at the next look.
    queued_[seen] = now;
    added += *ok;
  }
}

Result<int> Notifier::Scan() {
  const int64_t now = o_.clock->WallMs();
  if (since_ms_ < 0) since_ms_ = now - o_.catch_up.count();
  SP_ASSIGN_OR_RETURN(std::vector<NotifyChannel> channels, store_.Channels());
  if (channels.empty()) {
    since_ms_ = now;
    return 0;
  }
  std::vector<NotifyEvent> events;  // Queued in the order they happened.
  const int64_t from = since_ms_ - kOverlapMs;
  SP_ASSIGN_OR_RETURN(auto rollouts, store_.RolloutsChangedSince(from, kScanLimit));
  for (const auto& r : rollouts) {
    std::optional<BuildRecord> build;
    if (o_.build_of) {
      if (auto plan = nlohmann::json::parse(r.plan_json, nullptr, false); plan.is_object() && plan.contains("app")) {
        build = o_.build_of(plan["app"].value("artifact", std::string()));
      }
    }
    for (auto& e : RolloutEvents(r, build)) events.push_back(std::move(e));
  }
  SP_ASSIGN_OR_RETURN(auto steps, store_.ToldStepsAfter(after_seq_, kScanLimit));
  for (const auto& s : steps) {
    after_seq_ = std::max(after_seq_, s.seq);
    auto r = journal_.GetRollout(s.rollout_id);
    if (!r) continue;
    if (auto e = StepEvent(s, *r)) events.push_back(std::move(*e));
  }
  SP_ASSIGN_OR_RETURN(auto builds, store_.BuildsChangedSince(from, kScanLimit));
  for (const auto& b : builds) {
    for (auto& e : BuildEvents(b)) events.push_back(std::move(e));
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const NotifyEvent& a, const NotifyEvent& b) { return a.at_ms < b.at_ms; });
  int added = 0;
  for (const auto& e : events) Queue(channels, e, added);
  since_ms_ = now;
  // An event comes back only within the overlap: older entries are not needed.
  std::erase_if(queued_, [&](const auto& kv) { return kv.second < now - 2 * kOverlapMs; });
  return added;
}

void Notifier::Send(const NotifyChannel* c, NotificationRecord& n) {
  const int64_t now = o_.clock->WallMs();
  ++n.attempts;
  n.updated_ms = now;
  std::string error;
  std::string url;
  if (!c) {
    error = "its channel was removed";
    n.attempts = o_.max_attempts;
  } else if (auto u = o_.read_ref(c->url_ref); !u) {
    error = "reading the channel's URL (" + c->url_ref + "): " + u.error().message;
  } else {
    url = Trim(*u);
    HttpRequest req;
    req.method = "POST";
    req.url = url;
    req.body = n.body;
    req.timeout_ms = o_.timeout.count();
    req.user_agent = "sallyport-notify";
    req.headers = {"Content-Type: application/json"};
    bool ready = StartsWith(url, "https://") || StartsWith(url, "http://");
    if (!ready) error = "the channel's URL is not http(s)";
    if (ready && c->kind == "webhook") {
      auto secret = o_.read_ref(c->secret_ref);
      if (!secret) {
        error = "reading the channel's secret (" + c->secret_ref + "): " + secret.error().message;
        ready = false;
      } else {
        req.headers.push_back("X-Sallyport-Event: " + n.event);
        req.headers.push_back("X-Sallyport-Delivery: " + c->name + ":" + n.event_key);
        req.headers.push_back("X-Sallyport-Signature: " + HubSignature(Trim(*secret), n.body));
      }
    }
    if (ready) {
      const HttpAnswer a = SendHttp(req);
      if (a.ok()) {
        n.state = DeliveryState::kDelivered;
        n.delivered_ms = o_.clock->WallMs();
        n.last_error.clear();
        (void)store_.UpdateNotification(n);
        return;
      }
      error = a.status ? "HTTP " + std::to_string(a.status) + (a.body.empty() ? "" : ": " + a.body.substr(0, 200))
                       : a.error;
      if (a.status >= 400 && a.status < 500 && a.status != 429 && a.status != 408) n.attempts = o_.max_attempts;
    }
  }
  n.last_error = Scrubbed(error, url);
  if (n.attempts >= o_.max_attempts) {
    n.state = DeliveryState::kGaveUp;
  } else {
    n.state = DeliveryState::kRetrying;
    const int64_t wait = std::min<int64_t>(o_.backoff.count() << std::min(n.attempts - 1, 16), 60'000);
    n.next_ms = now + wait;
  }
  (void)store_.UpdateNotification(n);
}

int Notifier::Deliver() {
  auto due = store_.DueNotifications(o_.clock->WallMs(), 50);
  if (!due || due->empty()) return 0;
  auto channels = store_.Channels();
  for (auto& n : *due) {
    const NotifyChannel* c = nullptr;
    if (channels) {
      for (const auto& ch : *channels) {
        if (ch.name == n.channel) c = &ch;
      }
    }
    Send(c, n);
  }
  return static_cast<int>(due->size());
}

}  // namespace sp
