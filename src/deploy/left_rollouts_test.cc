// Which rollouts a server's start finishes forward: only those a dead
// server process of this machine left running under its own lock.
#include "deploy/left_rollouts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::UnorderedElementsAre;

class LeftRolloutsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(dir_ / "state.db");
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  // Rollout `id` of scope demo/<release>/integration with `status`, and
  // (unless `role` is nullopt) its scope locked by a holder of that role
  // ("": a CLI's) on `machine`, pid `pid`, for the rollout `locked_id`
  // (default: `id`).
  void Add(const std::string& id, const std::string& release, RolloutStatus status,
           const std::optional<std::string>& role, const std::string& machine, int64_t pid,
           const std::string& locked_id = "") {
    RolloutRecord r;
    r.id = id;
    r.stack = "demo";
    r.release = release;
    r.deployment = "integration";
    r.plan_json = "{}";
    ASSERT_TRUE(store_->CreateRollout(r));
    if (status != RolloutStatus::kRunning) {
      ASSERT_TRUE(store_->FinishRollout(id, status, ""));
    }
    if (!role) return;
    Lease l;
    l.key = "demo/" + release + "/integration";
    l.holder = (role->empty() ? "" : *role + " ") + "root@" + machine + " pid " + std::to_string(pid);
    l.reason = LockReason("rollout", locked_id.empty() ? id : locked_id, "v2");
    l.token = "t-" + id;
    l.pid = pid;
    l.machine = machine;
    ASSERT_TRUE(store_->Acquire(l, 1'000, 30'000));
  }

  test::TempDir dir_{"sp-left-rollouts"};
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(LeftRolloutsTest, OnlyRunningRolloutsWhoseLockADeadServerProcessHereHolds) {
  // Pids 100.. are dead, 200.. alive; machine "there" is another one.
  Add("r-dead-server", "a", RolloutStatus::kRunning, "server", "here", 101);
  Add("r-dead-server-2", "b", RolloutStatus::kRunning, "server", "here", 102);
  Add("r-live-server", "c", RolloutStatus::kRunning, "server", "here", 201);
  Add("r-other-machine", "d", RolloutStatus::kRunning, "server", "there", 103);
  Add("r-cli", "e", RolloutStatus::kRunning, "", "here", 104);  // A CLI's rollout killed -9.
  Add("r-interrupted", "f", RolloutStatus::kInterrupted, std::nullopt, "here", 0);  // Ctrl-C: lock released.
  Add("r-succeeded", "g", RolloutStatus::kSucceeded, "server", "here", 105);
  Add("r-failed", "h", RolloutStatus::kFailed, "server", "here", 106);
  Add("r-released", "i", RolloutStatus::kRunning, std::nullopt, "here", 0);  // `lock release --force`.
  Add("r-elsewhere", "j", RolloutStatus::kRunning, "server", "here", 107, "r-dead-server");  // Another scope's id.
  Add("r-unrecorded", "k", RolloutStatus::kSucceeded, "server", "here", 108, "r-never-created");
  auto alive = [](const Lease& l) -> std::optional<bool> {
    if (l.machine != "here") return std::nullopt;
    return l.pid >= 200;
  };
  auto left = RolloutsLeftByServer(*store_, *store_, alive);
  ASSERT_TRUE(left) << left.error().message;
  EXPECT_THAT(*left, UnorderedElementsAre("r-dead-server", "r-dead-server-2"));
}

TEST_F(LeftRolloutsTest, NoneWithoutLocks) {
  Add("r-1", "a", RolloutStatus::kRunning, std::nullopt, "here", 0);
  auto left = RolloutsLeftByServer(*store_, *store_, [](const Lease&) { return std::optional<bool>(false); });
  ASSERT_TRUE(left) << left.error().message;
  EXPECT_TRUE(left->empty());
}

// A rollout job that dies (out of attempts) while its rollout runs gets one
// reconcile job, for the same agents, ahead of other work; none for a
// finished or never-recorded rollout, another kind, or an older death.
TEST_F(LeftRolloutsTest, ADeadRolloutJobWhoseRolloutRunsGetsOneReconcileJob) {
  auto die = [&](const std::string& kind, const std::string& payload, int64_t now) -> int64_t {
    JobSpec spec;
    spec.kind = kind;
    spec.payload = payload;
    spec.labels = {{"network", "dev"}};
    spec.max_attempts = 1;
    auto job = store_->Enqueue(spec, now);
    EXPECT_TRUE(job);
    auto claimed = store_->Claim("agent-1", {{"network", "dev"}}, now, 1'000);
    EXPECT_TRUE(claimed && *claimed);
    EXPECT_TRUE(store_->Fail(job->id, (*claimed)->epoch, "agent-1", "agent died", now));
    EXPECT_EQ(store_->GetJob(job->id)->state, JobState::kDead);
    return job->id;
  };
  Add("r-running", "a", RolloutStatus::kRunning, std::nullopt, "here", 0);
  Add("r-done", "b", RolloutStatus::kSucceeded, std::nullopt, "here", 0);
  const int64_t dead = die("rollout", R"({"id":"r-running","stack":"demo"})", 5'000);
  die("rollout", R"({"id":"r-done","stack":"demo"})", 5'000);
  die("rollout", R"({"id":"r-never","stack":"demo"})", 5'000);
  die("build", R"({"id":"r-running"})", 5'000);

  auto queued = QueueReconciles(*store_, *store_, 0, 6'000);
  ASSERT_TRUE(queued) << queued.error().message;
  ASSERT_EQ(queued->size(), 1u);
  const Job& r = (*queued)[0];
  EXPECT_EQ(r.spec.kind, "reconcile");
  EXPECT_EQ(r.spec.labels, (std::map<std::string, std::string>{{"network", "dev"}}));
  EXPECT_GT(r.spec.priority, 0);
  EXPECT_EQ(PlanTextOfJob(r.spec.kind, r.spec.payload), R"({"id":"r-running","stack":"demo"})");
  EXPECT_THAT(ReconcileReasonOf(r.spec.payload),
              ::testing::HasSubstr("rollout job " + std::to_string(dead) + " ran out of attempts (1 of 1; "));
  EXPECT_THAT(ReconcileReasonOf(r.spec.payload), ::testing::HasSubstr("agent died"));

  auto again = QueueReconciles(*store_, *store_, 0, 7'000);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].id, r.id) << "a second pass queues no second reconcile";
  auto later = QueueReconciles(*store_, *store_, 5'001, 8'000);
  ASSERT_TRUE(later);
  EXPECT_TRUE(later->empty()) << "a death before the pass's window";
  // Plans of other kinds of job are not a rollout's.
  EXPECT_EQ(PlanTextOfJob("build", "{}"), std::nullopt);
  EXPECT_EQ(PlanTextOfJob("reconcile", R"({"reason":"x"})"), std::nullopt);
}

// A canceled rollout job (an operator's cancel, leased or not) whose
// rollout runs gets its reconcile job too, so its hosts, hooks' undo and
// alert silence are settled at once instead of at the scope's next rollout.
TEST_F(LeftRolloutsTest, ACanceledRolloutJobWhoseRolloutRunsGetsOneReconcileJob) {
  Add("r-canceled", "a", RolloutStatus::kRunning, std::nullopt, "here", 0);
  JobSpec spec;
  spec.kind = "rollout";
  spec.payload = R"({"id":"r-canceled","stack":"demo"})";
  spec.labels = {{"network", "dev"}};
  auto job = store_->Enqueue(spec, 5'000);
  ASSERT_TRUE(job);
  auto claimed = store_->Claim("agent-1", {{"network", "dev"}}, 5'000, 10'000);
  ASSERT_TRUE(claimed && *claimed);
  ASSERT_TRUE(store_->Cancel(job->id, 5'500));
  auto queued = QueueReconciles(*store_, *store_, 0, 6'000);
  ASSERT_TRUE(queued) << queued.error().message;
  ASSERT_EQ(queued->size(), 1u);
  EXPECT_EQ(PlanTextOfJob((*queued)[0].spec.kind, (*queued)[0].spec.payload), spec.payload);
  EXPECT_THAT(ReconcileReasonOf((*queued)[0].spec.payload),
              ::testing::HasSubstr("rollout job " + std::to_string(job->id) + " was canceled: its hosts were reconciled"));
  auto again = QueueReconciles(*store_, *store_, 0, 7'000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 1u) << "one reconcile job, not one per pass";
  EXPECT_EQ((*again)[0].id, (*queued)[0].id);
}

}  // namespace
}  // namespace sp
