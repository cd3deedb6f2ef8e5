// A rollout that loses its scope lock (an operator's `lock release --force`,
// or a lease taken over) stops at once: after the moment its lease is gone it
// makes no load-balancer or runtime call at all, reports "lock lost", and
// leaves the record to the next holder, which reconciles and converges.
#include "unit/engine_harness.h"

namespace sp::test {

namespace {

// Everything on one thread (preflight's hosts, prefetches, cleanups run on
// several otherwise): an op that passed the fence just before the takeover
// would land after it, and "no call after" could not be told exactly.
void OneThread(Harness& w) {
  w.tune_ = [](EngineOptions& o) {
    o.preflight_parallelism = 1;
    o.prefetch_batches = 0;
    o.deferred_cleanup = false;
    o.port_check_beside_drain = false;
  };
}

// Every op a rollout of `make_plan` makes, in order (reads included).
std::vector<std::string> OpsOfOneRollout(const std::function<RolloutPlan(Harness&)>& make_plan) {
  Harness w;
  w.Init();
  OneThread(w);
  std::vector<std::string> ops;
  w.world_.on_op = [&](const std::string& op) { ops.push_back(op); };
  auto r = w.Engine()->Run(make_plan(w));
  EXPECT_TRUE(r && r->status == RolloutStatus::kSucceeded);
  return ops;
}

}  // namespace

void SweepLockTakeover(const std::function<RolloutPlan(Harness&)>& make_plan,
                       const std::function<void(Harness&, const RolloutPlan&)>& after_next) {
  const std::vector<std::string> ops = OpsOfOneRollout(make_plan);
  ASSERT_GT(ops.size(), 20u);
  for (size_t k = 0; k < ops.size(); ++k) {
    SCOPED_TRACE("lock taken over during op " + std::to_string(k) + " (" + ops[k] + ")");
    Harness w;
    w.Init();
    OneThread(w);
    const RolloutPlan plan = make_plan(w);
    size_t seen = 0;
    bool taken = false;
    std::vector<std::string> after;
    w.world_.on_op = [&](const std::string& op) {
      if (taken) {
        // "sessions X=0" and "up X" are what the fake LB's GetServer in flight
        // observed, not calls.
        if (op.rfind("sessions ", 0) != 0 && op.rfind("up ", 0) != 0) after.push_back(op);
        return;
      }
      if (seen++ != k) return;
      // An operator's forced release, then another rollout takes the lock,
      // while this op is in flight.
      ASSERT_TRUE(w.store_->ForceRelease(plan.ScopeKey()));
      Lease bob{plan.ScopeKey(), "bob@ops pid 9", "bob-token", "rollout r-bob v3", 0, 0, 9, "otherbox"};
      ASSERT_TRUE(w.store_->Acquire(bob, w.clock_.WallMs(), 30'000));
      taken = true;
    };
    auto r = w.Engine()->Run(plan);
    ASSERT_TRUE(taken);
    EXPECT_THAT(after, IsEmpty()) << "calls after the lease was gone";
    if (r) {
      EXPECT_EQ(r->status, RolloutStatus::kFailed);
      EXPECT_THAT(r->error, HasSubstr("lock lost"));
      auto rec = w.store_->GetRollout(plan.id);
      ASSERT_TRUE(rec);
      EXPECT_EQ(rec->status, RolloutStatus::kRunning) << "the record is left to the next holder";
    } else {
      EXPECT_THAT(r.error().message, HasSubstr("lock lost")) << "lost before the rollout started";
    }
    // The next holder reconciles what the loser left and converges.
    w.world_.on_op = nullptr;
    ASSERT_TRUE(w.store_->Release(plan.ScopeKey(), "bob-token"));
    auto next = w.Engine(200)->Run(w.Plan("v3"));
    ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(next->status, RolloutStatus::kSucceeded) << next->error;
    w.ExpectConverged("v3");
    if (after_next) after_next(w, plan);
  }
}

namespace {

TEST(ScopeLeaseTest, TheLoserMakesNoCallAfterItsLockIsTakenAtAnyOpAndTheNextHolderConverges) {
  SweepLockTakeover([](Harness& w) { return w.Plan("v2"); }, nullptr);
}

// A lock store whose reads fail (a busy database, a partition) until told.
class UnreadableLocks final : public LockStore {
 public:
  explicit UnreadableLocks(LockStore* inner) : inner_(inner) {}
  bool readable = false;
  Result<Lease> Acquire(const Lease& w, int64_t now, int64_t ttl) override { return inner_->Acquire(w, now, ttl); }
  Status Renew(const std::string& k, const std::string& t, int64_t now, int64_t ttl) override {
    return inner_->Renew(k, t, now, ttl);
  }
  Status Release(const std::string& k, const std::string& t) override { return inner_->Release(k, t); }
  Result<std::optional<Lease>> Get(const std::string& k) override {
    if (!readable) return Err(ErrorCode::kUnavailable, "database is locked");
    return inner_->Get(k);
  }
  Result<std::vector<Lease>> List() override { return inner_->List(); }
  Status ForceRelease(const std::string& k) override { return inner_->ForceRelease(k); }

 private:
  LockStore* inner_;
};

TEST(ScopeLeaseTest, AnUnreadableStoreFallsBackOnTheLastRenewalUntilThreeQuartersOfTheLease) {
  auto store = std::move(*SqliteStore::Open(":memory:"));
  UnreadableLocks locks(store.get());
  FakeClock clock;
  ScopeLease scope(&locks, &clock, /*verify_each_action=*/true);
  EXPECT_TRUE(scope.Check()) << "no lease held: nothing is fenced";
  Lease mine{"s/r/d", "me", "tok", "rollout r-1 v2", 0, 0, 1, "box"};
  ASSERT_TRUE(store->Acquire(mine, clock.WallMs(), 30'000));
  scope.Held(mine, 30'000);
  EXPECT_TRUE(scope.Check()) << "confirmed when acquired";
  clock.Advance(Millis(20'000));
  scope.Renewed(clock.MonotonicMs());  // The keeper's renewal went through.
  clock.Advance(Millis(22'000));
  EXPECT_TRUE(scope.Check()) << "22 s after a renewal of a 30 s lease";
  clock.Advance(Millis(1'000));
  Status late = scope.Check();
  ASSERT_FALSE(late);
  EXPECT_THAT(late.error().message, HasSubstr("lock lost"));
  EXPECT_THAT(late.error().message, HasSubstr("not renewed in time"));
  locks.readable = true;
  EXPECT_FALSE(scope.Check()) << "lost stays lost";
  EXPECT_TRUE(scope.lost());

  // Readable: a forced release is noticed at the next check, whatever the clock.
  ScopeLease fresh(&locks, &clock, true);
  fresh.Held(mine, 30'000);
  EXPECT_TRUE(fresh.Check());
  ASSERT_TRUE(store->ForceRelease("s/r/d"));
  Status gone = fresh.Check();
  ASSERT_FALSE(gone);
  EXPECT_THAT(gone.error().message, HasSubstr("lock s/r/d was released by someone else"));
}

}  // namespace
}  // namespace sp::test
