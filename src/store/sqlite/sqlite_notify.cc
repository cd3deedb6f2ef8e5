// SqliteStore: the NotifyStore's channels and outbox.
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "store/sqlite/sqlite_internal.h"
#include "store/sqlite/sqlite_store.h"

namespace sp {

using nlohmann::json;
using sqlite_internal::DbError;
using sqlite_internal::Done;
using sqlite_internal::Stmt;

namespace {

constexpr const char* kNotificationCols =
    "id, channel, event_key, event, subject, urgent, body, state, attempts, next_ms, created_ms, updated_ms, "
    "delivered_ms, last_error";

NotificationRecord ReadNotification(Stmt& st) {
  NotificationRecord n;
  n.id = st.Int(0);
  n.channel = st.Text(1);
  n.event_key = st.Text(2);
  n.event = st.Text(3);
  n.subject = st.Text(4);
  n.urgent = st.Int(5) != 0;
  n.body = st.Text(6);
  n.state = ParseIn(kDeliveryStateNames, st.Text(7)).value_or(DeliveryState::kGaveUp);
  n.attempts = static_cast<int>(st.Int(8));
  n.next_ms = st.Int(9);
  n.created_ms = st.Int(10);
  n.updated_ms = st.Int(11);
  n.delivered_ms = st.Int(12);
  n.last_error = st.Text(13);
  return n;
}

}  // namespace

Status SqliteStore::PutChannel(const NotifyChannel& c) {
  std::lock_guard l(mu_);
  Stmt st(db_, "INSERT INTO notify_channels(name, kind, url_ref, secret_ref, project, deployment, events, templates, "
               "created_ms) VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, "
               "url_ref=excluded.url_ref, secret_ref=excluded.secret_ref, project=excluded.project, "
               "deployment=excluded.deployment, events=excluded.events, templates=excluded.templates");
  st.Bind(1, c.name).Bind(2, c.kind).Bind(3, c.url_ref).Bind(4, c.secret_ref).Bind(5, c.project).Bind(6, c.deployment);
  st.Bind(7, json(c.events).dump()).Bind(8, json(c.templates).dump()).Bind(9, c.created_ms);
  return Done(st, db_, "put notification channel");
}

Result<std::vector<NotifyChannel>> SqliteStore::Channels() {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("SELECT name, kind, url_ref, secret_ref, project, deployment, events, templates, created_ms "
                      "FROM notify_channels ORDER BY name"));
  std::vector<NotifyChannel> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    NotifyChannel c;
    c.name = st.Text(0);
    c.kind = st.Text(1);
    c.url_ref = st.Text(2);
    c.secret_ref = st.Text(3);
    c.project = st.Text(4);
    c.deployment = st.Text(5);
    const json events = json::parse(st.Text(6), nullptr, false);
    if (events.is_array()) c.events = events.get<std::vector<std::string>>();
    const json templates = json::parse(st.Text(7), nullptr, false);
    if (templates.is_object()) c.templates = templates.get<std::map<std::string, std::string>>();
    c.created_ms = st.Int(8);
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list notification channels"));
  return out;
}

Status SqliteStore::DeleteChannel(const std::string& name) {
  std::lock_guard l(mu_);
  Stmt st(db_, "DELETE FROM notify_channels WHERE name=?");
  st.Bind(1, name);
  SP_TRY(Done(st, db_, "remove notification channel"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kNotFound, "no notification channel '" + name + "'");
  return Ok();
}

Result<bool> SqliteStore::AddNotification(const NotificationRecord& n) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("INSERT OR IGNORE INTO notifications(channel, event_key, event, subject, urgent, body, state, "
                      "attempts, next_ms, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?)"));
  st.Bind(1, n.channel).Bind(2, n.event_key).Bind(3, n.event).Bind(4, n.subject).Bind(5, int64_t{n.urgent});
  st.Bind(6, n.body).Bind(7, std::string(NameIn(kDeliveryStateNames, n.state))).Bind(8, int64_t{n.attempts});
  st.Bind(9, n.next_ms).Bind(10, n.created_ms).Bind(11, n.updated_ms);
  SP_TRY(Done(st, db_, "add notification"));
  return sqlite3_changes(db_) > 0;
}

Result<std::vector<NotificationRecord>> SqliteStore::DueNotifications(int64_t now_ms, int limit) {
  std::lock_guard l(mu_);
  static const std::string sql = std::string("SELECT ") + kNotificationCols +
                                 " FROM notifications WHERE state IN ('pending','retrying') AND next_ms<=? "
                                 "ORDER BY urgent DESC, id LIMIT ?";
  Stmt st(db_, Cached(sql.c_str()));
  st.Bind(1, now_ms).Bind(2, int64_t{limit});
  std::vector<NotificationRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadNotification(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list due notifications"));
  return out;
}

Status SqliteStore::UpdateNotification(const NotificationRecord& n) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE notifications SET state=?, attempts=?, next_ms=?, updated_ms=?, delivered_ms=?, "
                      "last_error=? WHERE id=?"));
  st.Bind(1, std::string(NameIn(kDeliveryStateNames, n.state))).Bind(2, int64_t{n.attempts}).Bind(3, n.next_ms);
  st.Bind(4, n.updated_ms).Bind(5, n.delivered_ms).Bind(6, n.last_error).Bind(7, n.id);
  return Done(st, db_, "update notification");
}

Result<std::vector<NotificationRecord>> SqliteStore::NotificationsOf(const std::string& subject) {
  std::lock_guard l(mu_);
  static const std::string sql =
      std::string("SELECT ") + kNotificationCols + " FROM notifications WHERE subject=? ORDER BY id";
  Stmt st(db_, Cached(sql.c_str()));
  st.Bind(1, subject);
  std::vector<NotificationRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadNotification(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list notifications"));
  return out;
}

}  // namespace sp
