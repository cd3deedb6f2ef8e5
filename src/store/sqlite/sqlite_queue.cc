// SqliteStore: the QueueStore methods (jobs, agent tokens, agents).
#include "store/sqlite/sqlite_store.h"

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <string>

#include "store/sqlite/sqlite_internal.h"

namespace sp {

using sqlite_internal::DbError;
using sqlite_internal::Done;
using sqlite_internal::LabelsFrom;
using sqlite_internal::Stmt;

namespace {

constexpr const char* kJobCols =
    "id, kind, payload, labels, priority, COALESCE(idem, ''), max_attempts, backoff_ms, state, attempts, owner, epoch, "
    "lease_expires_ms, not_before_ms, result, error, created_ms, updated_ms";

Job ReadJobRow(Stmt& st) {
  Job j;
  j.id = st.Int(0);
  j.spec.kind = st.Text(1);
  j.spec.payload = st.Text(2);
  j.spec.labels = LabelsFrom(st.Text(3));
  j.spec.priority = static_cast<int>(st.Int(4));
  j.spec.idempotency_key = st.Text(5);
  j.spec.max_attempts = static_cast<int>(st.Int(6));
  j.spec.backoff_ms = st.Int(7);
  j.state = ParseJobState(st.Text(8)).value_or(JobState::kDead);
  j.attempts = static_cast<int>(st.Int(9));
  j.lease_owner = st.Text(10);
  j.epoch = st.Int(11);
  j.lease_expires_ms = st.Int(12);
  j.not_before_ms = st.Int(13);
  j.result = st.Text(14);
  j.error = st.Text(15);
  j.created_ms = st.Int(16);
  j.updated_ms = st.Int(17);
  return j;
}

int64_t BackoffMs(int64_t base, int attempts) {
  int64_t d = std::max<int64_t>(0, base);
  for (int i = 1; i < attempts && d < 300'000; ++i) d *= 2;
  return std::min<int64_t>(d, 300'000);
}

}  // namespace

Result<Job> SqliteStore::ReadJob(int64_t id) {
  static const std::string sql = std::string("SELECT ") + kJobCols + " FROM jobs WHERE id=?";
  Stmt st(db_, Cached(sql.c_str()));
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return ReadJobRow(st);
  if (rc == SQLITE_DONE) return Err(ErrorCode::kNotFound, "job " + std::to_string(id) + " not found");
  return Err(DbError(db_, "read job"));
}

Result<Job> SqliteStore::Enqueue(const JobSpec& spec, int64_t now_ms) {
  std::lock_guard l(mu_);
  Job out;
  SP_TRY(Transaction([&]() -> Status {
    if (!spec.idempotency_key.empty()) {
      Stmt find(db_, Cached("SELECT id FROM jobs WHERE idem=?"));
      find.Bind(1, spec.idempotency_key);
      int rc = find.Step();
      if (rc == SQLITE_ROW) {
        SP_ASSIGN_OR_RETURN(out, ReadJob(find.Int(0)));
        return Ok();
      }
      if (rc != SQLITE_DONE) return Err(DbError(db_, "find job"));
    }
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : spec.labels) labels[k] = v;
    Stmt ins(db_, Cached("INSERT INTO jobs(kind, payload, labels, priority, idem, max_attempts, backoff_ms, state, "
                         "not_before_ms, created_ms, updated_ms) VALUES(?,?,?,?,NULLIF(?,''),?,?,'queued',?,?,?)"));
    ins.Bind(1, spec.kind).Bind(2, spec.payload).Bind(3, labels.dump()).Bind(4, int64_t{spec.priority});
    ins.Bind(5, spec.idempotency_key).Bind(6, int64_t{std::max(1, spec.max_attempts)}).Bind(7, spec.backoff_ms);
    ins.Bind(8, now_ms).Bind(9, now_ms).Bind(10, now_ms);
    SP_TRY(Done(ins, db_, "enqueue job"));
    SP_ASSIGN_OR_RETURN(out, ReadJob(sqlite3_last_insert_rowid(db_)));
    return Ok();
  }));
  return out;
}

struct SqliteStore::ClaimCandidate {
  int64_t priority, id;
  std::string labels;
  bool out_of_attempts;  // An expired lease of a job with no attempt left.
};

// Best first (priority, then age), labels checked here. Queued: see below.
// Leased: every expired lease (as many as jobs were running). Range scans
// rather than one OR, which SQLite would answer by scanning every job ever run.
Result<std::vector<SqliteStore::ClaimCandidate>> SqliteStore::ClaimCandidates(
    const std::map<std::string, std::string>& worker_labels, int64_t now_ms, int64_t only_job) {
  std::vector<ClaimCandidate> out;
  auto collect = [&](Stmt& pick) -> Status {
    int rc;
    while ((rc = pick.Step()) == SQLITE_ROW) out.push_back({pick.Int(0), pick.Int(1), pick.Text(2), pick.Int(3) != 0});
    return rc == SQLITE_DONE ? Ok() : Err(DbError(db_, "pick job"));
  };
  if (only_job) {
    Stmt queued(db_, Cached("SELECT priority, id, labels, 0 FROM jobs WHERE state='queued' AND not_before_ms<=? "
                            "AND id=?"));
    queued.Bind(1, now_ms).Bind(2, only_job);
    SP_TRY(collect(queued));
  } else {
    // The best 256 due jobs (one range scan of the claimable index), and only
    // when none of them is this worker's while more are queued, the best due
    // job of every label set (a scan of every queued job, with no index to
    // keep up on every write): no number of jobs this worker cannot take
    // hides one it can.
    Stmt top(db_, Cached("SELECT priority, id, labels, 0 FROM jobs WHERE state='queued' AND not_before_ms<=? "
                         "ORDER BY priority DESC, id LIMIT 256"));
    top.Bind(1, now_ms);
    SP_TRY(collect(top));
    const bool mine = std::any_of(out.begin(), out.end(), [&](const ClaimCandidate& c) {
      return LabelsSatisfy(worker_labels, LabelsFrom(c.labels));
    });
    if (!mine && out.size() == 256) {
      out.clear();
      Stmt each(db_, Cached("SELECT priority, id, labels, 0 FROM (SELECT priority, id, labels, ROW_NUMBER() OVER "
                            "(PARTITION BY labels ORDER BY priority DESC, id) AS rank FROM jobs WHERE state='queued' "
                            "AND not_before_ms<=?) WHERE rank=1"));
      each.Bind(1, now_ms);
      SP_TRY(collect(each));
    }
  }
  Stmt leased(db_, Cached("SELECT priority, id, labels, attempts>=max_attempts FROM jobs WHERE state='leased' AND "
                          "lease_expires_ms<=? AND (?=0 OR id=?)"));
  leased.Bind(1, now_ms).Bind(2, only_job).Bind(3, only_job);
  SP_TRY(collect(leased));
  std::sort(out.begin(), out.end(), [](const ClaimCandidate& a, const ClaimCandidate& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
  });
  return out;
}

Result<std::optional<Job>> SqliteStore::Claim(const std::string& owner,
                                              const std::map<std::string, std::string>& worker_labels,
                                              int64_t now_ms, int64_t lease_ms, int64_t only_job) {
  std::lock_guard l(mu_);
  std::optional<Job> out;
  SP_TRY(Transaction([&]() -> Status {
    SP_ASSIGN_OR_RETURN(auto candidates, ClaimCandidates(worker_labels, now_ms, only_job));
    int64_t chosen = 0;
    for (const auto& c : candidates) {
      if (c.out_of_attempts) {  // Dead-lettered, not reclaimed.
        Stmt dead(db_, Cached("UPDATE jobs SET state='dead', error='lease expired ' || attempts || ' time(s); last "
                              "owner ' || owner, owner='', updated_ms=? WHERE id=?"));
        dead.Bind(1, now_ms).Bind(2, c.id);
        SP_TRY(Done(dead, db_, "dead-letter job"));
        continue;
      }
      if (LabelsSatisfy(worker_labels, LabelsFrom(c.labels))) {
        chosen = c.id;
        break;
      }
    }
    if (!chosen) return Ok();
    Stmt take(db_, Cached("UPDATE jobs SET state='leased', owner=?, epoch=epoch+1, attempts=attempts+1, "
                          "lease_expires_ms=?, updated_ms=? WHERE id=?"));
    take.Bind(1, owner).Bind(2, now_ms + lease_ms).Bind(3, now_ms).Bind(4, chosen);
    SP_TRY(Done(take, db_, "claim job"));
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(chosen));
    out = std::move(j);
    return Ok();
  }));
  return out;
}

Status SqliteStore::Heartbeat(int64_t id, int64_t epoch, const std::string& owner, int64_t now_ms, int64_t lease_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE jobs SET lease_expires_ms=?, updated_ms=? WHERE id=? AND epoch=? AND owner=? AND "
                      "state='leased' AND lease_expires_ms>?"));
  st.Bind(1, now_ms + lease_ms).Bind(2, now_ms).Bind(3, id).Bind(4, epoch).Bind(5, owner).Bind(6, now_ms);
  SP_TRY(Done(st, db_, "heartbeat"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
  return Ok();
}

Status SqliteStore::Complete(int64_t id, int64_t epoch, const std::string& owner, const std::string& result,
                             int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE jobs SET state='succeeded', result=?, updated_ms=? WHERE id=? AND epoch=? AND "
                      "owner=? AND state='leased' AND lease_expires_ms>?"));
  st.Bind(1, result).Bind(2, now_ms).Bind(3, id).Bind(4, epoch).Bind(5, owner).Bind(6, now_ms);
  SP_TRY(Done(st, db_, "complete job"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
  return Ok();
}

Status SqliteStore::Fail(int64_t id, int64_t epoch, const std::string& owner, const std::string& error,
                         int64_t now_ms) {
  std::lock_guard l(mu_);
  return Transaction([&]() -> Status {
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(id));
    if (j.state != JobState::kLeased || j.epoch != epoch || j.lease_owner != owner || j.lease_expires_ms <= now_ms) {
      return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
    }
    const bool dead = j.attempts >= j.spec.max_attempts;
    Stmt st(db_, Cached("UPDATE jobs SET state=?, error=?, owner='', not_before_ms=?, updated_ms=? WHERE id=?"));
    st.Bind(1, std::string(dead ? "dead" : "queued"))
        .Bind(2, dead ? "attempt " + std::to_string(j.attempts) + " of " + std::to_string(j.spec.max_attempts) +
                            " failed: " + error
                      : error);
    st.Bind(3, now_ms + (dead ? 0 : BackoffMs(j.spec.backoff_ms, j.attempts))).Bind(4, now_ms).Bind(5, id);
    return Done(st, db_, "fail job");
  });
}

Status SqliteStore::HandBack(int64_t id, int64_t epoch, const std::string& owner, const std::string& note,
                             int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("UPDATE jobs SET state='queued', error=?, owner='', attempts=MAX(0, attempts-1), "
                      "not_before_ms=?, lease_expires_ms=0, updated_ms=? WHERE id=? AND epoch=? AND owner=? AND "
                      "state='leased' AND lease_expires_ms>?"));
  st.Bind(1, note).Bind(2, now_ms).Bind(3, now_ms).Bind(4, id).Bind(5, epoch).Bind(6, owner).Bind(7, now_ms);
  SP_TRY(Done(st, db_, "hand back job"));
  if (sqlite3_changes(db_) == 0) return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
  return Ok();
}

Result<Job> SqliteStore::GetJob(int64_t id) {
  std::lock_guard l(mu_);
  return ReadJob(id);
}

Result<std::vector<Job>> SqliteStore::ListJobs(int limit) {
  std::lock_guard l(mu_);
  Stmt st(db_, (std::string("SELECT ") + kJobCols + " FROM jobs ORDER BY id DESC LIMIT ?").c_str());
  st.Bind(1, int64_t{limit});
  std::vector<Job> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadJobRow(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list jobs"));
  return out;
}

Result<std::vector<Job>> SqliteStore::DeadJobs(const std::string& kind, int64_t changed_since_ms, int limit) {
  // The server asks every 2 s (its reconcile sweep): prepared once.
  static const std::string sql =
      std::string("SELECT ") + kJobCols +
      " FROM jobs WHERE state IN ('dead','canceled') AND kind=? AND updated_ms>=? ORDER BY id LIMIT ?";
  std::lock_guard l(mu_);
  Stmt st(db_, Cached(sql.c_str()));
  st.Bind(1, kind).Bind(2, changed_since_ms).Bind(3, int64_t{limit});
  std::vector<Job> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadJobRow(st));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list dead jobs"));
  return out;
}

Result<std::vector<int64_t>> SqliteStore::PruneJobs(int64_t ended_before_ms, int limit) {
  std::lock_guard l(mu_);
  Stmt st(db_,
          "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('succeeded','dead','canceled') AND "
          "updated_ms<? ORDER BY id LIMIT ?) RETURNING id");
  st.Bind(1, ended_before_ms).Bind(2, int64_t{limit});
  std::vector<int64_t> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(st.Int(0));
  if (rc != SQLITE_DONE) return Err(DbError(db_, "prune jobs"));
  return out;
}

Status SqliteStore::Cancel(int64_t id, int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, "UPDATE jobs SET state='canceled', updated_ms=? WHERE id=? AND state IN ('queued','leased')");
  st.Bind(1, now_ms).Bind(2, id);
  SP_TRY(Done(st, db_, "cancel job"));
  if (sqlite3_changes(db_) == 0) {
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(id));
    return Err(ErrorCode::kConflict, "job " + std::to_string(id) + " is " + std::string(JobStateName(j.state)));
  }
  return Ok();
}

Status SqliteStore::Retry(int64_t id, int64_t now_ms) {
  std::lock_guard l(mu_);
  Stmt st(db_, "UPDATE jobs SET state='queued', attempts=0, error='', not_before_ms=?, updated_ms=? WHERE id=? AND "
               "state IN ('dead','canceled')");
  st.Bind(1, now_ms).Bind(2, now_ms).Bind(3, id);
  SP_TRY(Done(st, db_, "retry job"));
  if (sqlite3_changes(db_) == 0) {
    SP_ASSIGN_OR_RETURN(Job j, ReadJob(id));
    return Err(ErrorCode::kConflict, "job " + std::to_string(id) + " is " + std::string(JobStateName(j.state)));
  }
  return Ok();
}

Status SqliteStore::PutAgentToken(const std::string& token_sha256, const AgentToken& agent) {
  std::lock_guard l(mu_);
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : agent.labels) labels[k] = v;
  Stmt st(db_, "INSERT INTO agent_tokens(token_sha256, name, labels, expires_ms) VALUES(?,?,?,?) "
               "ON CONFLICT(token_sha256) DO UPDATE SET name=excluded.name, labels=excluded.labels, "
               "expires_ms=excluded.expires_ms");
  st.Bind(1, token_sha256).Bind(2, agent.name).Bind(3, labels.dump()).Bind(4, agent.expires_ms);
  return Done(st, db_, "write agent token");
}

Result<std::optional<QueueStore::AgentToken>> SqliteStore::AgentTokenFor(const std::string& token_sha256) {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("SELECT name, labels, expires_ms FROM agent_tokens WHERE token_sha256=? AND revoked_ms=0"));
  st.Bind(1, token_sha256);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return std::optional<AgentToken>(AgentToken{st.Text(0), LabelsFrom(st.Text(1)), st.Int(2)});
  if (rc != SQLITE_DONE) return Err(DbError(db_, "read agent token"));
  return std::optional<AgentToken>();
}

Status SqliteStore::TouchAgent(const AgentToken& agent, int64_t now_ms, std::optional<int64_t> job) {
  std::lock_guard l(mu_);
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : agent.labels) labels[k] = v;
  Stmt st(db_, Cached("INSERT INTO agents(name, labels, last_seen_ms, current_job) VALUES(?1,?2,?3,COALESCE(?4,0)) "
                      "ON CONFLICT(name) DO UPDATE SET labels=excluded.labels, last_seen_ms=excluded.last_seen_ms, "
                      "current_job=COALESCE(?4, agents.current_job)"));
  st.Bind(1, agent.name).Bind(2, labels.dump()).Bind(3, now_ms);
  if (job) st.Bind(4, *job);  // Unbound: NULL, i.e. keep.
  return Done(st, db_, "record agent");
}

Result<std::vector<QueueStore::AgentSeen>> SqliteStore::Agents() {
  std::lock_guard l(mu_);
  Stmt st(db_, "SELECT name, labels, last_seen_ms, current_job FROM agents ORDER BY name");
  std::vector<AgentSeen> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(AgentSeen{st.Text(0), LabelsFrom(st.Text(1)), st.Int(2), st.Int(3)});
  if (rc != SQLITE_DONE) return Err(DbError(db_, "list agents"));
  return out;
}

}  // namespace sp
