// SqliteStore: the JournalStore methods (rollouts, their steps and hosts).
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <string>

#include "store/sqlite/sqlite_internal.h"

namespace sp {

using sqlite_internal::DbError;
using sqlite_internal::Done;
using sqlite_internal::Stmt;

namespace {

RolloutRecord ReadRollout(Stmt& st) {
  // Column order: id, stack, release, deployment, kind, status, plan, error, created_ms, updated_ms
  RolloutRecord r;
  r.id = st.Text(0);
  r.stack = st.Text(1);
  r.release = st.Text(2);
  r.deployment = st.Text(3);
  r.kind = ParsePlanKind(st.Text(4)).value_or(PlanKind::kRollout);
  r.status = ParseRolloutStatus(st.Text(5)).value_or(RolloutStatus::kFailed);
  r.plan_json = st.Text(6);
  r.error = st.Text(7);
  r.created_ms = st.Int(8);
  r.updated_ms = st.Int(9);
  return r;
}

constexpr const char* kRolloutCols =
    "id, stack, release, deployment, kind, status, plan, error, created_ms, updated_ms";

}  // namespace

Status SqliteStore::CreateRollout(const RolloutRecord& r) {
  std::lock_guard l(mu_);
  Stmt st(db_,
          "INSERT INTO rollouts(id, stack, release, deployment, kind, status, plan, error, created_ms, updated_ms) "
          "VALUES(?,?,?,?,?,?,?,?,?,?)");
  st.Bind(1, r.id).Bind(2, r.stack).Bind(3, r.release).Bind(4, r.deployment).Bind(5, Name(r.kind));
  st.Bind(6, std::string(RolloutStatusName(r.status))).Bind(7, r.plan_json).Bind(8, r.error);
  st.Bind(9, r.created_ms).Bind(10, r.updated_ms ? r.updated_ms : r.created_ms);
  return Done(st, db_, "create rollout");
}

Status SqliteStore::FinishRollout(const std::string& id, RolloutStatus status, const std::string& error) {
  std::lock_guard l(mu_);
  Stmt st(db_,
          "UPDATE rollouts SET status=?, error=?, updated_ms=CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) WHERE id=?");  // ms, as steps' ts_ms
  st.Bind(1, std::string(RolloutStatusName(status))).Bind(2, error).Bind(3, id);
  SP_TRY(Done(st, db_, "finish rollout"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kNotFound, "rollout " + id + " not found");
  return Ok();
}

Result<RolloutRecord> SqliteStore::GetRollout(const std::string& id) {
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kRolloutCols + " FROM rollouts WHERE id=?").c_str());
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return ReadRollout(st);
  if (rc == SQLITE_DONE) return Err(ErrorCode::kNotFound, "rollout " + id + " not found");
  return Err(DbError(db_, "get rollout"));
}

Result<std::optional<RolloutRecord>> SqliteStore::Latest(const std::string& stack, const std::string& release,
                                                         const std::string& deployment,
                                                         std::optional<RolloutStatus> status) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kRolloutCols +
                    " FROM rollouts WHERE stack=? AND release=? AND deployment=? AND (?='' OR status=?)"
                    " ORDER BY created_ms DESC, rowid DESC LIMIT 1";
  Stmt st(db_, sql.c_str());
  std::string s = status ? std::string(RolloutStatusName(*status)) : "";
  st.Bind(1, stack).Bind(2, release).Bind(3, deployment).Bind(4, s).Bind(5, s);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return std::optional<RolloutRecord>(ReadRollout(st));
  if (rc == SQLITE_DONE) return std::optional<RolloutRecord>();
  return Err(DbError(db_, "latest rollout"));
}

Result<std::vector<RolloutRecord>> SqliteStore::ListRollouts(int limit) {
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kRolloutCols + " FROM rollouts ORDER BY created_ms DESC, rowid DESC LIMIT ?")
                   .c_str());
  st.Bind(1, static_cast<int64_t>(limit));
  std::vector<RolloutRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadRollout(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list rollouts"));
  return out;
}

Status SqliteStore::AppendStep(const StepRecord& s) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("INSERT INTO steps(rollout_id, host, step, phase, ts_ms, detail) VALUES(?,?,?,?,?,?)"));
  st.Bind(1, s.rollout_id).Bind(2, s.host).Bind(3, Name(s.step)).Bind(4, Name(s.phase)).Bind(5, s.ts_ms).Bind(6, s.detail);
  return Done(st, db_, "append step");
}

Result<std::vector<StepRecord>> SqliteStore::Steps(const std::string& rollout_id) {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT seq, rollout_id, host, step, phase, ts_ms, detail FROM steps WHERE rollout_id=? ORDER BY seq");
  st.Bind(1, rollout_id);
  std::vector<StepRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(StepRecord{st.Int(0), st.Text(1), st.Text(2), ParseStep(st.Text(3)).value_or(Step::kNone),
                             ParseStepPhase(st.Text(4)).value_or(StepPhase::kNone), st.Int(5), st.Text(6)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read steps"));
  return out;
}

Status SqliteStore::PutHost(const HostRecord& h) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("INSERT INTO rollout_hosts(rollout_id, host, state, last_step, out_of_rotation_ms, detail) "
                      "VALUES(?,?,?,?,?,?) ON CONFLICT(rollout_id, host) DO UPDATE SET state=excluded.state, "
                      "last_step=excluded.last_step, out_of_rotation_ms=excluded.out_of_rotation_ms, "
                      "detail=excluded.detail"));
  st.Bind(1, h.rollout_id).Bind(2, h.host).Bind(3, Name(h.state)).Bind(4, Name(h.last_step)).Bind(5, h.out_of_rotation_ms);
  st.Bind(6, h.detail);
  return Done(st, db_, "put host");
}

Result<std::vector<HostRecord>> SqliteStore::Hosts(const std::string& rollout_id) {
  std::lock_guard l(mu_);
  Stmt st(db_,
          "SELECT rollout_id, host, state, last_step, out_of_rotation_ms, detail FROM rollout_hosts "
          "WHERE rollout_id=? ORDER BY rowid");
  st.Bind(1, rollout_id);
  std::vector<HostRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(HostRecord{st.Text(0), st.Text(1), ParseHostState(st.Text(2)).value_or(HostState::kPending),
                             ParseStep(st.Text(3)).value_or(Step::kNone), st.Int(4), st.Text(5)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read hosts"));
  return out;
}

// NotifyStore: what the notifier reads events from.
Result<std::vector<RolloutRecord>> SqliteStore::RolloutsChangedSince(int64_t since_ms, int limit) {
  std::lock_guard l(mu_);
  static const std::string sql =
      std::string("SELECT ") + kRolloutCols + " FROM rollouts WHERE updated_ms>=? ORDER BY updated_ms, rowid LIMIT ?";
  Stmt st(db_, Cached(sql.c_str()));  // Cached by address: a static string.
  st.Bind(1, since_ms).Bind(2, int64_t{limit});
  std::vector<RolloutRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadRollout(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list changed rollouts"));
  return out;
}

Result<std::vector<StepRecord>> SqliteStore::ToldStepsAfter(int64_t after_seq, int limit) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("SELECT seq, rollout_id, host, step, phase, ts_ms, detail FROM steps WHERE seq>? AND "
                      "((step IN ('restore','silence','lock') AND phase IN ('end','fail')) OR (phase='fail' AND step IN "
                      "('pre_rollout','pre_host','post_host','on_failure','post_rollout'))) ORDER BY seq LIMIT ?"));
  st.Bind(1, after_seq).Bind(2, int64_t{limit});
  std::vector<StepRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(StepRecord{st.Int(0), st.Text(1), st.Text(2), ParseStep(st.Text(3)).value_or(Step::kNone),
                             ParseStepPhase(st.Text(4)).value_or(StepPhase::kNone), st.Int(5), st.Text(6)});
  }
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list told steps"));
  return out;
}

}  // namespace sp
