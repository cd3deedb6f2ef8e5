// Notifications (docs/notifications.md): what happened to builds and
// rollouts, told to a team's chat (a Slack-compatible incoming webhook:
// Slack, Mattermost, Rocket.Chat) or to any receiver (a generic JSON
// webhook signed with HMAC-SHA256). Channels are the server admin's
// configuration; the events are read from the server's own records (the
// rollout journal and the builds), so nothing on a rollout's path waits for
// a notification; each event a channel takes becomes one record in the
// outbox, delivered asynchronously with retries and kept with its outcome.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "build/records.h"
#include "core/error.h"
#include "rollout/journal.h"

namespace sp {

// Where notifications go. Its URL (and a webhook's signing secret) are
// credentials: stored as references ("file:/path", "env:NAME") read on the
// server when a message is sent, never in a record, a log or an answer.
struct NotifyChannel {
  std::string name;                    // [a-z0-9-]
  std::string kind = "slack";          // "slack" | "webhook"
  std::string url_ref, secret_ref;     // secret_ref: webhooks only (required there).
  std::string project, deployment;     // Filters ("": any).
  std::vector<std::string> events;     // "rollout.failed", "rollout.*", ... (empty: every event).
  std::map<std::string, std::string> templates;  // Event -> text template ({field}), over the default.
  int64_t created_ms = 0;
};

// One thing that happened, with what a message may say about it.
struct NotifyEvent {
  std::string key;       // Unique per occurrence: one record per channel and key.
  std::string name;      // "rollout.started", "build.failed", ... (NotifyEventNames)
  std::string subject;   // The rollout's id, or "build/<id>".
  bool urgent = false;   // Needs a human: sent at once, marked.
  std::string project, deployment;
  std::map<std::string, std::string> fields;  // service, release, deployment, version, commit, author, ...
  int64_t at_ms = 0;
};

enum class DeliveryState { kPending, kRetrying, kDelivered, kGaveUp };
inline constexpr std::array<EnumName<DeliveryState>, 4> kDeliveryStateNames{{
    {DeliveryState::kPending, "pending"},
    {DeliveryState::kRetrying, "retrying"},
    {DeliveryState::kDelivered, "delivered"},
    {DeliveryState::kGaveUp, "gave_up"},
}};

// One message for one channel, in the outbox.
struct NotificationRecord {
  int64_t id = 0;
  std::string channel, event_key, event, subject;
  bool urgent = false;
  std::string body;   // The rendered JSON, as sent (no credential in it).
  DeliveryState state = DeliveryState::kPending;
  int attempts = 0;
  int64_t next_ms = 0, created_ms = 0, updated_ms = 0, delivered_ms = 0;
  std::string last_error;
};

// The notifier's store: channels, the outbox, and the records it reads
// events from.
class NotifyStore {
 public:
  virtual ~NotifyStore() = default;
  virtual Status PutChannel(const NotifyChannel& c) = 0;
  virtual Result<std::vector<NotifyChannel>> Channels() = 0;
  virtual Status DeleteChannel(const std::string& name) = 0;
  // Adds the record unless one with its (channel, event_key) exists: true if added.
  virtual Result<bool> AddNotification(const NotificationRecord& n) = 0;
  // Pending or retrying records due at `now_ms`, urgent first, oldest first.
  virtual Result<std::vector<NotificationRecord>> DueNotifications(int64_t now_ms, int limit) = 0;
  virtual Status UpdateNotification(const NotificationRecord& n) = 0;
  virtual Result<std::vector<NotificationRecord>> NotificationsOf(const std::string& subject) = 0;
  // What events are read from: rollouts changed at or after `since_ms`;
  // the journal lines after `after_seq` an event is told of (restore,
  // silence and lock, ended or failed); builds started or finished at or
  // after `since_ms`.
  virtual Result<std::vector<RolloutRecord>> RolloutsChangedSince(int64_t since_ms, int limit) = 0;
  virtual Result<std::vector<StepRecord>> ToldStepsAfter(int64_t after_seq, int limit) = 0;
  virtual Result<std::vector<BuildRecord>> BuildsChangedSince(int64_t since_ms, int limit) = 0;
};

// The events every channel may name.
extern const std::vector<std::string> kNotifyEventNames;

// A channel's fields as the CLI and the API take them: name, kind, the
// references, event names or patterns ("rollout.*"), templates' events.
Status CheckChannel(const NotifyChannel& c);

// The events of a rollout record: started (at its creation), and its end
// (succeeded, failed, rolled back, interrupted); a failure whose reason is
// an automatic resume that gave up is urgent. `build` (of its artifact,
// when known) gives commit, author and message.
std::vector<NotifyEvent> RolloutEvents(const RolloutRecord& r, const std::optional<BuildRecord>& build);
// A journal line's event: a host restored, or (urgent) one that could not
// be (left out of rotation); the lock taken over from a dead holder; the
// alert silence or a hook that could not be made (its policy went on, or
// stopped the rollout).
std::optional<NotifyEvent> StepEvent(const StepRecord& s, const RolloutRecord& r);
// A build's events: started, succeeded, failed.
std::vector<NotifyEvent> BuildEvents(const BuildRecord& b);

// Whether `c` takes `e` (its project, deployment and event filters).
bool ChannelTakes(const NotifyChannel& c, const NotifyEvent& e);

// The message's text: the channel's template for the event, else the
// default one, with {field} replaced ({link} is `link`; unknown fields stay).
std::string NotificationText(const NotifyChannel& c, const NotifyEvent& e, const std::string& link);
// Slack's escaping of message text: &, < and > as entities (so "<!channel>"
// in a commit message is text, never a mention or a link).
std::string SlackEscape(const std::string& text);
// The body sent to `c` for `e`: Slack {"text": ...}; a webhook's
// {"event", "urgent", "subject", "text", "fields", "delivery"}.
std::string NotificationBody(const NotifyChannel& c, const NotifyEvent& e, const std::string& link);

// The channels for an answer: {"channels": [{name, kind, url, secret (the
// references), project, deployment, events, templates}]}.
nlohmann::ordered_json ChannelsJson(const std::vector<NotifyChannel>& channels);

// A subject's records for an answer: channel, event, state, attempts,
// times, last error (never the body's credentials: it has none).
nlohmann::ordered_json NotificationsJson(const std::vector<NotificationRecord>& records);

}  // namespace sp
