// SQLite-backed store: one file (WAL) holding the rollout journal, the
// lease locks and the inventory. Thread-safe: one connection guarded by a mutex; every write is
// its own transaction, committed before the call returns.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "auth/auth.h"
#include "build/records.h"
#include "inventory/store.h"
#include "notify/notify.h"
#include "queue/job.h"
#include "rollout/journal.h"
#include "rollout/lock.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sp {

struct SqliteOptions {
  std::string synchronous = "NORMAL";  // NORMAL survives a process crash (WAL); FULL also power loss.
  int busy_timeout_ms = 5000;
};

class SqliteStore final : public JournalStore, public LockStore, public InventoryStore, public QueueStore,
                          public BuildStore, public auth::AuthStore, public NotifyStore {
 public:
  // Opens (creating if needed) the database file and applies the schema.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, SqliteOptions opts = {});
  ~SqliteStore() override;

  // The schema version this binary writes; a store records its own (PRAGMA
  // user_version). Open migrates an older store step by step, each in its
  // transaction, and refuses a newer one (kInvalidArgument naming both).
  static const int kSchemaVersion;
  int SchemaVersion();

  // Pragmas in force, e.g. "journal_mode=wal synchronous=1" (for benchmarks).
  std::string Pragmas();

  // JournalStore
  Status CreateRollout(const RolloutRecord& r) override;
  Status FinishRollout(const std::string& id, RolloutStatus status, const std::string& error) override;
  Result<RolloutRecord> GetRollout(const std::string& id) override;
  Result<std::optional<RolloutRecord>> Latest(const std::string& stack, const std::string& release,
                                              const std::string& deployment,
                                              std::optional<RolloutStatus> status) override;
  Result<std::vector<RolloutRecord>> ListRollouts(int limit) override;
  Status AppendStep(const StepRecord& s) override;
  Result<std::vector<StepRecord>> Steps(const std::string& rollout_id) override;
  Status PutHost(const HostRecord& h) override;
  Result<std::vector<HostRecord>> Hosts(const std::string& rollout_id) override;

  // LockStore
  Result<Lease> Acquire(const Lease& wanted, int64_t now_ms, int64_t ttl_ms) override;
  Status Renew(const std::string& key, const std::string& token, int64_t now_ms, int64_t ttl_ms) override;
  Status Release(const std::string& key, const std::string& token) override;
  Result<std::optional<Lease>> Get(const std::string& key) override;
  Result<std::vector<Lease>> List() override;
  Status ForceRelease(const std::string& key) override;

  // InventoryStore
  Result<int64_t> InventoryRevision() override;
  Result<std::vector<StackRecord>> InventoryStacks() override;
  Result<std::vector<ClaimRecord>> InventoryClaims() override;
  Status InventoryWrite(const std::function<Status(InventoryTxn&)>& fn) override;

  // QueueStore
  Result<Job> Enqueue(const JobSpec& spec, int64_t now_ms) override;
  Result<std::optional<Job>> Claim(const std::string& owner, const std::map<std::string, std::string>& worker_labels,
                                   int64_t now_ms, int64_t lease_ms, int64_t only_job = 0) override;
  Status Heartbeat(int64_t id, int64_t epoch, const std::string& owner, int64_t now_ms, int64_t lease_ms) override;
  Status Complete(int64_t id, int64_t epoch, const std::string& owner, const std::string& result,
                  int64_t now_ms) override;
  Status Fail(int64_t id, int64_t epoch, const std::string& owner, const std::string& error, int64_t now_ms) override;
  Status HandBack(int64_t id, int64_t epoch, const std::string& owner, const std::string& note,
                  int64_t now_ms) override;
  Result<Job> GetJob(int64_t id) override;
  Result<std::vector<Job>> ListJobs(int limit) override;
  Result<std::vector<Job>> DeadJobs(const std::string& kind, int64_t changed_since_ms, int limit) override;
  Result<std::vector<int64_t>> PruneJobs(int64_t ended_before_ms, int limit) override;
  Status Cancel(int64_t id, int64_t now_ms) override;
  Status Retry(int64_t id, int64_t now_ms) override;
  Status PutAgentToken(const std::string& token_sha256, const AgentToken& agent) override;
  Result<std::optional<AgentToken>> AgentTokenFor(const std::string& token_sha256) override;
  Status TouchAgent(const AgentToken& agent, int64_t now_ms, std::optional<int64_t> job) override;
  Result<std::vector<AgentSeen>> Agents() override;

  // BuildStore
  Status PutProject(const ProjectRecord& p) override;
  Result<std::vector<ProjectRecord>> Projects() override;
  Result<std::optional<ProjectRecord>> Project(const std::string& name) override;
  Result<std::optional<BuildRecord>> CreateBuild(const BuildRecord& b) override;
  Result<std::optional<BuildRecord>> StartNextBuild(int64_t now_ms) override;
  Status UpdateBuild(const BuildRecord& b) override;
  Result<BuildRecord> GetBuild(int64_t id) override;
  Result<std::vector<BuildRecord>> ListBuilds(int limit) override;
  Status PutBuildStep(const BuildStepRecord& s) override;
  Result<std::vector<BuildStepRecord>> BuildSteps(int64_t build_id) override;
  Status PutBuildConfig(int64_t build_id, const std::string& text) override;
  Result<std::string> BuildConfig(int64_t build_id) override;
  Result<std::optional<BuildRecord>> BuildOfArtifact(const std::string& artifact) override;
  Status PutCredential(const CredentialBinding& c) override;
  Result<std::optional<CredentialBinding>> Credential(const std::string& project, const std::string& name) override;
  Result<std::vector<CredentialBinding>> Credentials(const std::string& project) override;
  Status DeleteCredential(const std::string& project, const std::string& name) override;
  Result<int64_t> PutSecret(const StoredSecret& s) override;
  Result<std::vector<StoredSecret>> SecretVersions(const std::string& project, const std::string& name) override;
  Result<std::vector<StoredSecret>> Secrets(const std::string& project) override;
  Status DeleteSecret(const std::string& project, const std::string& name, const std::string& scope) override;
  Result<int> RecoverInterruptedBuilds(bool requeue, int64_t now_ms) override;
  Result<bool> FirstDelivery(const std::string& delivery_id, int64_t now_ms) override;

  // NotifyStore (sqlite_notify.cc; the scans beside their tables' code)
  Status PutChannel(const NotifyChannel& c) override;
  Result<std::vector<NotifyChannel>> Channels() override;
  Status DeleteChannel(const std::string& name) override;
  Result<bool> AddNotification(const NotificationRecord& n) override;
  Result<std::vector<NotificationRecord>> DueNotifications(int64_t now_ms, int limit) override;
  Status UpdateNotification(const NotificationRecord& n) override;
  Result<std::vector<NotificationRecord>> NotificationsOf(const std::string& subject) override;
  Result<std::vector<RolloutRecord>> RolloutsChangedSince(int64_t since_ms, int limit) override;
  Result<std::vector<StepRecord>> ToldStepsAfter(int64_t after_seq, int limit) override;
  Result<std::vector<BuildRecord>> BuildsChangedSince(int64_t since_ms, int limit) override;

  // AuthStore
  Status PutApiToken(const std::string& token_sha256, const auth::ApiToken& token) override;
  Result<std::optional<auth::ApiToken>> ApiTokenFor(const std::string& token_sha256) override;
  Result<std::vector<auth::ApiToken>> Tokens() override;
  Status RevokeToken(const std::string& name, int64_t now_ms) override;
  Status TouchApiToken(const std::string& name, int64_t now_ms) override;
  Status AppendAudit(const auth::AuditRecord& record) override;
  Result<std::vector<auth::AuditRecord>> AuditTrail(int limit) override;
  Status PutUser(const auth::User& user) override;
  Result<std::optional<auth::User>> UserNamed(const std::string& name) override;

 private:
  class Txn;
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Status Migrate(const std::string& path);
  int UserVersion();  // PRAGMA user_version. Caller holds mu_ (or owns the store alone).
  // Runs fn inside BEGIN IMMEDIATE ... COMMIT (rolled back on error). Caller holds mu_.
  Status Transaction(const std::function<Status()>& fn);
  Result<Job> ReadJob(int64_t id);
  struct ClaimCandidate;
  // What a claim chooses from (sqlite_queue.cc). Caller holds mu_.
  Result<std::vector<ClaimCandidate>> ClaimCandidates(const std::map<std::string, std::string>& worker_labels,
                                                      int64_t now_ms, int64_t only_job);
  // A prepared statement kept for the store's lifetime (hot paths). Key: the
  // SQL literal's address. Caller holds mu_.
  sqlite3_stmt* Cached(const char* sql);
  sqlite3* db_;
  std::map<const char*, sqlite3_stmt*> cache_;
  std::mutex mu_;
};

}  // namespace sp
