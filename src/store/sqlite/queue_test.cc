// The durable job queue on a real SQLite file: claims, leases and epochs,
// retries with backoff, dead letters, idempotency, labels, two connections.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(dir_ / "state.db");
    ASSERT_TRUE(s) << s.error().message;
    q_ = std::move(*s);
  }
  JobSpec Spec(const std::string& payload, std::map<std::string, std::string> labels = {}) {
    JobSpec j;
    j.kind = "rollout";
    j.payload = payload;
    j.labels = std::move(labels);
    return j;
  }
  test::TempDir dir_{"sp-queue-test"};
  std::unique_ptr<SqliteStore> q_;
};

TEST_F(QueueTest, AClaimOfOneJobTakesThatJobOrNothing) {
  JobSpec best = Spec("best", {{"network", "dc1"}});
  best.priority = 9;
  ASSERT_TRUE(q_->Enqueue(best, 0));
  auto wanted = q_->Enqueue(Spec("wanted", {{"network", "dc1"}}), 1);
  auto prod = q_->Enqueue(Spec("prod", {{"network", "prod"}}), 2);
  ASSERT_TRUE(wanted && prod);
  auto c = q_->Claim("agent-a", {{"network", "dc1"}}, 10, 1000, wanted->id);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->spec.payload, "wanted") << "that job, not the best one";
  auto again = q_->Claim("agent-b", {{"network", "dc1"}}, 20, 1000, wanted->id);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again) << "a live lease is not taken";
  auto labels = q_->Claim("agent-a", {{"network", "dc1"}}, 20, 1000, prod->id);
  ASSERT_TRUE(labels);
  EXPECT_FALSE(*labels) << "labels still apply";
  auto expired = q_->Claim("agent-b", {{"network", "dc1"}}, 2000, 1000, wanted->id);
  ASSERT_TRUE(expired && *expired) << "an expired lease is taken over";
  EXPECT_EQ((*expired)->epoch, 2);
}

TEST_F(QueueTest, ClaimLeasesTheBestJobAndCompleteNeedsTheCurrentLease) {
  ASSERT_TRUE(q_->Enqueue(Spec("low"), 0));
  JobSpec high = Spec("high");
  high.priority = 5;
  ASSERT_TRUE(q_->Enqueue(high, 1));
  auto c = q_->Claim("agent-a", {}, 10, 1000);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->spec.payload, "high");
  EXPECT_EQ((*c)->state, JobState::kLeased);
  EXPECT_EQ((*c)->epoch, 1);
  EXPECT_EQ((*c)->attempts, 1);
  EXPECT_EQ((*c)->lease_expires_ms, 1010);
  // Wrong owner or epoch: refused, nothing changes.
  EXPECT_EQ(q_->Complete((*c)->id, 1, "agent-b", "ok", 20).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q_->Complete((*c)->id, 2, "agent-a", "ok", 20).error().code, ErrorCode::kConflict);
  ASSERT_TRUE(q_->Heartbeat((*c)->id, 1, "agent-a", 900, 1000));
  ASSERT_TRUE(q_->Complete((*c)->id, 1, "agent-a", "done", 1500)) << "the heartbeat extended the lease";
  auto j = q_->GetJob((*c)->id);
  EXPECT_EQ(j->state, JobState::kSucceeded);
  EXPECT_EQ(j->result, "done");
  auto next = q_->Claim("agent-a", {}, 1600, 1000);
  ASSERT_TRUE(next && *next);
  EXPECT_EQ((*next)->spec.payload, "low");
  auto none = q_->Claim("agent-a", {}, 1700, 1000);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TEST_F(QueueTest, AnExpiredLeaseIsReclaimedWithANewEpochAndTheOldHolderIsFenced) {
  ASSERT_TRUE(q_->Enqueue(Spec("p"), 0));
  auto a = q_->Claim("agent-a", {}, 0, 1000);
  ASSERT_TRUE(a && *a);
  auto early = q_->Claim("agent-b", {}, 999, 1000);
  ASSERT_TRUE(early);
  EXPECT_FALSE(*early) << "not claimable while the lease holds";
  auto b = q_->Claim("agent-b", {}, 1000, 1000);
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((*b)->epoch, 2);
  EXPECT_EQ((*b)->lease_owner, "agent-b");
  // The paused holder wakes up: every write of its old epoch is refused.
  EXPECT_EQ(q_->Heartbeat((*a)->id, 1, "agent-a", 1001, 1000).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q_->Complete((*a)->id, 1, "agent-a", "late", 1001).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q_->Fail((*a)->id, 1, "agent-a", "late", 1001).error().code, ErrorCode::kConflict);
  ASSERT_TRUE(q_->Complete((*b)->id, 2, "agent-b", "ok", 1500));
  // A lease that expired is lost even before anyone reclaims it.
  ASSERT_TRUE(q_->Enqueue(Spec("q"), 2000));
  auto c = q_->Claim("agent-c", {}, 2000, 100);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ(q_->Complete((*c)->id, (*c)->epoch, "agent-c", "too late", 2100).error().code, ErrorCode::kConflict);
}

TEST_F(QueueTest, FailuresRetryWithBackoffThenDeadLetterWithTheReason) {
  JobSpec s = Spec("p");
  s.max_attempts = 3;
  s.backoff_ms = 100;
  auto job = q_->Enqueue(s, 0);
  ASSERT_TRUE(job);
  int64_t now = 0;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto c = q_->Claim("a", {}, now, 1000);
    ASSERT_TRUE(c && *c) << "attempt " << attempt;
    ASSERT_TRUE(q_->Fail(job->id, (*c)->epoch, "a", "boom " + std::to_string(attempt), now + 1));
    auto j = q_->GetJob(job->id);
    if (attempt < 3) {
      EXPECT_EQ(j->state, JobState::kQueued);
      const int64_t backoff = 100 << (attempt - 1);  // 100, 200
      EXPECT_EQ(j->not_before_ms, now + 1 + backoff);
      auto too_soon = q_->Claim("a", {}, now + backoff, 1000);
      EXPECT_FALSE(*too_soon) << "claimable before its backoff";
      now = j->not_before_ms;
    } else {
      EXPECT_EQ(j->state, JobState::kDead);
      EXPECT_THAT(j->error, HasSubstr("attempt 3 of 3 failed: boom 3"));
    }
  }
  EXPECT_FALSE(*q_->Claim("a", {}, now + 10'000, 1000));
  ASSERT_TRUE(q_->Retry(job->id, now + 10'000));
  EXPECT_TRUE(*q_->Claim("a", {}, now + 10'000, 1000));
}

TEST_F(QueueTest, LeasesThatKeepExpiringDeadLetterTheJob) {
  JobSpec s = Spec("p");
  s.max_attempts = 2;
  auto job = q_->Enqueue(s, 0);
  ASSERT_TRUE(*q_->Claim("a", {}, 0, 10));
  ASSERT_TRUE(*q_->Claim("b", {}, 10, 10));
  EXPECT_FALSE(*q_->Claim("c", {}, 20, 10));
  auto j = q_->GetJob(job->id);
  EXPECT_EQ(j->state, JobState::kDead);
  EXPECT_THAT(j->error, HasSubstr("lease expired 2 time(s); last owner b"));
}

TEST_F(QueueTest, TheSameIdempotencyKeyGivesOneJob) {
  JobSpec s = Spec("p");
  s.idempotency_key = "rollout/demo/web/prod/sha256:abc";
  auto a = q_->Enqueue(s, 0);
  auto b = q_->Enqueue(s, 5);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(q_->ListJobs(10)->size(), 1u);
}

TEST_F(QueueTest, OnlyWorkersWithEveryRequiredLabelClaim) {
  ASSERT_TRUE(q_->Enqueue(Spec("prod job", {{"network", "prod"}}), 0));
  ASSERT_TRUE(q_->Enqueue(Spec("dev job", {{"network", "dev"}}), 1));
  auto dev = q_->Claim("dev-agent", {{"network", "dev"}, {"zone", "a"}}, 2, 1000);
  ASSERT_TRUE(dev && *dev);
  EXPECT_EQ((*dev)->spec.payload, "dev job");
  EXPECT_FALSE(*q_->Claim("dev-agent", {{"network", "dev"}}, 3, 1000));
  EXPECT_FALSE(*q_->Claim("bare-agent", {}, 3, 1000));
  auto prod = q_->Claim("prod-agent", {{"network", "prod"}}, 4, 1000);
  ASSERT_TRUE(prod && *prod);
  EXPECT_EQ((*prod)->spec.payload, "prod job");
}

// Claims used to look at the best 256 jobs only, then filter by labels: more
// jobs than that which nobody here can take starved every worker.
TEST_F(QueueTest, NoNumberOfJobsAWorkerCannotTakeHidesOneItCan) {
  constexpr int kUnclaimable = 1'000;
  for (int i = 0; i < kUnclaimable; ++i) {
    JobSpec j = Spec("elsewhere " + std::to_string(i), {{"network", i % 2 ? "prod" : "dc9"}});
    j.priority = 100;
    ASSERT_TRUE(q_->Enqueue(j, 0));
  }
  JobSpec low = Spec("mine, low", {{"network", "dev"}});
  low.priority = 1;
  JobSpec high = Spec("mine, high", {{"network", "dev"}, {"zone", "a"}});
  high.priority = 7;
  ASSERT_TRUE(q_->Enqueue(low, 1) && q_->Enqueue(high, 2));
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    auto c = q_->Claim("dev-agent", {{"network", "dev"}, {"zone", "a"}}, 10, 1000);
    ASSERT_TRUE(c) << c.error().message;
    if (*c) got.push_back((*c)->spec.payload);
  }
  EXPECT_THAT(got, ::testing::ElementsAre("mine, high", "mine, low")) << "priorities kept across label sets";
  auto prod = q_->Claim("prod-agent", {{"network", "prod"}}, 10, 1000);
  ASSERT_TRUE(prod && *prod);
  EXPECT_EQ((*prod)->spec.payload, "elsewhere 1") << "the best (oldest) of its own set";
}

TEST_F(QueueTest, CancelAndRetryAreStateChecked) {
  auto job = q_->Enqueue(Spec("p"), 0);
  ASSERT_TRUE(q_->Cancel(job->id, 1));
  EXPECT_EQ(q_->Cancel(job->id, 2).error().code, ErrorCode::kConflict);
  EXPECT_FALSE(*q_->Claim("a", {}, 3, 1000));
  ASSERT_TRUE(q_->Retry(job->id, 4));
  EXPECT_EQ(q_->Retry(job->id, 5).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q_->GetJob(999).error().code, ErrorCode::kNotFound);
}

TEST_F(QueueTest, TwoConnectionsClaimingAtOnceNeverShareAJob) {
  auto other = SqliteStore::Open(dir_ / "state.db");
  ASSERT_TRUE(other);
  constexpr int kJobs = 200;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(q_->Enqueue(Spec(std::to_string(i)), 0));
  std::vector<int64_t> got_a, got_b;
  auto drain = [](SqliteStore* s, const std::string& who, std::vector<int64_t>* got) {
    while (true) {
      auto c = s->Claim(who, {}, 1, 60'000);
      if (!c || !*c) return;
      got->push_back((*c)->id);
    }
  };
  std::thread ta(drain, q_.get(), "a", &got_a);
  std::thread tb(drain, other->get(), "b", &got_b);
  ta.join();
  tb.join();
  std::set<int64_t> all(got_a.begin(), got_a.end());
  all.insert(got_b.begin(), got_b.end());
  EXPECT_EQ(got_a.size() + got_b.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(all.size(), static_cast<size_t>(kJobs)) << "a job was claimed twice";
}

// Retention: ended jobs last changed before the cut go, with their ids;
// queued and leased ones stay, however old.
TEST_F(QueueTest, PruneJobsRemovesOnlyEndedJobsOlderThanTheCut) {
  auto done = q_->Enqueue(Spec("a", {{"n", "x"}}), 1'000);
  auto claimed = q_->Claim("w", {{"n", "x"}}, 1'000, 60'000);
  ASSERT_TRUE(claimed && *claimed);
  ASSERT_TRUE(q_->Complete(done->id, (*claimed)->epoch, "w", "ok", 2'000));
  auto canceled = q_->Enqueue(Spec("b"), 1'000);
  ASSERT_TRUE(q_->Cancel(canceled->id, 3'000));
  auto recent = q_->Enqueue(Spec("c"), 1'000);
  ASSERT_TRUE(q_->Cancel(recent->id, 9'000));
  auto queued = q_->Enqueue(Spec("d"), 1'000);
  auto leased_job = q_->Enqueue(Spec("e", {{"n", "y"}}), 1'000);
  ASSERT_TRUE(q_->Claim("w", {{"n", "y"}}, 1'000, 1'000));  // Its lease long expired.
  auto pruned = q_->PruneJobs(5'000, 100);
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_THAT(*pruned, ::testing::UnorderedElementsAre(done->id, canceled->id));
  EXPECT_FALSE(q_->GetJob(done->id));
  EXPECT_TRUE(q_->GetJob(recent->id));
  EXPECT_TRUE(q_->GetJob(queued->id));
  EXPECT_TRUE(q_->GetJob(leased_job->id));
  EXPECT_TRUE(q_->PruneJobs(5'000, 100)->empty());
}

}  // namespace
}  // namespace sp
