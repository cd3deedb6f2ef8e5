// The rollout engine wired to the recording fakes, an in-memory SQLite
// journal that can crash at its Nth write, and a FakeClock: the harness of
// the engine's unit tests (src/rollout/engine*_test.cc).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "rollout/engine.h"
#include "store/sqlite/sqlite_store.h"
#include "support/zero_sessions.h"
#include "unit/fakes.h"

namespace sp::test {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Journal decorator that dies (throws Crash) at the Nth AppendStep, before
// or after delegating — so tests can stop the engine between "acted" and
// "recorded".
class CrashingJournal final : public JournalStore {
 public:
  explicit CrashingJournal(JournalStore* inner) : inner_(inner) {}
  int crash_at = -1;          // 1-based AppendStep index; -1 = never.
  bool after_write = false;   // Crash after the record is written.
  int appends = 0;
  // A full disk: once a record matching this has been written, every later
  // write fails (AppendStep, PutHost, FinishRollout) with kUnavailable.
  std::function<bool(const StepRecord&)> fail_after;
  Status CreateRollout(const RolloutRecord& r) override { return inner_->CreateRollout(r); }
  Status FinishRollout(const std::string& id, RolloutStatus s, const std::string& e) override {
    if (full_) return Full();
    return inner_->FinishRollout(id, s, e);
  }
  Result<RolloutRecord> GetRollout(const std::string& id) override { return inner_->GetRollout(id); }
  Result<std::optional<RolloutRecord>> Latest(const std::string& a, const std::string& b, const std::string& c,
                                              std::optional<RolloutStatus> s) override {
    return inner_->Latest(a, b, c, s);
  }
  Result<std::vector<RolloutRecord>> ListRollouts(int n) override { return inner_->ListRollouts(n); }
  // Writes come from the engine's thread and its cleanup worker: each gets
  // its own index, so exactly one write crashes.
  Status AppendStep(const StepRecord& s) override {
    int n;
    {
      std::lock_guard l(mu_);
      n = ++appends;
    }
    if (n == crash_at && !after_write) throw Crash{"journal " + s.host + " " + Name(s.step) + " " + Name(s.phase)};
    if (full_) return Full();
    auto st = inner_->AppendStep(s);
    if (n == crash_at && after_write) throw Crash{"journal " + s.host + " " + Name(s.step) + " " + Name(s.phase)};
    if (fail_after && fail_after(s)) full_ = true;
    return st;
  }
  Result<std::vector<StepRecord>> Steps(const std::string& id) override { return inner_->Steps(id); }
  Status PutHost(const HostRecord& h) override {
    if (full_) return Full();
    return inner_->PutHost(h);
  }
  Result<std::vector<HostRecord>> Hosts(const std::string& id) override { return inner_->Hosts(id); }

 private:
  static Status Full() { return Err(ErrorCode::kUnavailable, "database or disk is full (injected)"); }
  JournalStore* inner_;
  std::mutex mu_;
  std::atomic<bool> full_{false};
};

// All the fakes wired to one engine; usable inside a test to run many
// independent worlds (crash sweeps).
struct Harness {
  void Init() {
    store_ = std::move(*SqliteStore::Open(":memory:"));
    journal_ = std::make_unique<CrashingJournal>(store_.get());
    lb_ = std::make_unique<test::FakeLoadBalancer>(&world_, "lb");
    lb2_ = std::make_unique<test::FakeLoadBalancer>(&world_, "lb2");
    std::map<int, std::string> ports;
    for (int i = 1; i <= 3; ++i) {
      std::string h = "app" + std::to_string(i);
      lb_->AddServer("app", h);
      lb2_->AddServer("app", h);
      runtime_.Seed(h, "v1");
      ports[8080 + i] = h;
    }
    health_ = std::make_unique<test::FakeHealth>(&world_, &runtime_, ports);
  }

  RolloutPlan Plan(const std::string& version, int hosts = 3) {
    RolloutPlan p;
    p.id = "r-" + version + "-" + std::to_string(++plan_seq_);
    p.service = "hello";
    p.stack = "demo";
    p.release = "web";
    p.deployment = "integration";
    p.app.runtime = "fake";
    p.app.artifact = "img:" + version;
    p.app.version = version;
    p.app.health.retries = 3;
    p.app.health.interval = Millis(100);
    for (int i = 1; i <= hosts; ++i) {
      HostSpec h;
      h.name = "app" + std::to_string(i);
      h.address = "127.0.0.1";
      h.port = 8080 + i;
      p.hosts.push_back(h);
    }
    LoadBalancerSpec lb;
    lb.backend = "app";
    lb.socket = "/fake";
    p.load_balancers.push_back(lb);
    return p;
  }

  std::unique_ptr<RolloutEngine> Engine(int64_t pid = 100, bool skip_wait = false, Millis lock_wait = Millis(0)) {
    EngineDeps d;
    d.clock = &clock_;
    d.journal = journal_.get();
    d.locks = store_.get();
    d.runtime = &runtime_;
    d.transport = &transport_;
    d.health = health_.get();
    d.lb_factory = [this, skip_wait](const LoadBalancerSpec& spec) -> Result<std::unique_ptr<LoadBalancer>> {
      LoadBalancer* which = spec.socket == "/fake2" ? static_cast<LoadBalancer*>(lb2_.get()) : lb_.get();
      if (skip_wait) return std::unique_ptr<LoadBalancer>(std::make_unique<test::ZeroSessions>(test::Borrow(which)));
      return test::Borrow(which);
    };
    d.on_event = [this](const Event& e) { events_.push_back(e); };
    d.env_secret = env_secret_;
    d.hooks = &hooks_;
    d.silencer = &silencer_;
    EngineOptions o;
    o.holder = "tester pid " + std::to_string(pid);
    o.machine = "testbox";
    o.pid = pid;
    o.renew_in_background = false;
    o.lock_wait = lock_wait;
    o.prefetch_batches = prefetch_batches_;
    o.pid_alive = [this](int64_t pid) { return alive_pids_.count(pid) > 0; };
    if (tune_) tune_(o);
    return std::make_unique<RolloutEngine>(d, o);
  }

  // Every host runs exactly `version` and is in rotation.
  void ExpectConverged(const std::string& version) {
    for (int i = 1; i <= 3; ++i) {
      std::string h = "app" + std::to_string(i);
      EXPECT_THAT(runtime_.Running(h), ElementsAre(version)) << h;
      EXPECT_TRUE(lb_->State(h).InRotation()) << h << " " << lb_->State(h).status;
    }
  }

  test::World world_;
  test::FakeRuntime runtime_{&world_};
  test::FakeTransport transport_{&world_};
  test::FakeHookRunner hooks_{&world_};
  test::FakeSilencer silencer_{&world_};
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<CrashingJournal> journal_;
  std::unique_ptr<test::FakeLoadBalancer> lb_, lb2_;
  std::unique_ptr<test::FakeHealth> health_;
  std::vector<Event> events_;
  int prefetch_batches_ = 1;
  std::function<void(EngineOptions&)> tune_;  // Last word on the engine's options.
  std::function<Result<std::string>(const std::string& ref)> env_secret_;
  std::set<int64_t> alive_pids_;
  int plan_seq_ = 0;
};

// For each op of a rollout of `make_plan(w)`: the scope lock is forced away
// and taken by another holder while that op is in flight; the loser must
// make no call after it and report "lock lost"; the next holder's rollout
// (v3) converges; then `after_next` (may be empty) checks more
// (engine_lease_test.cc).
void SweepLockTakeover(const std::function<RolloutPlan(Harness&)>& make_plan,
                       const std::function<void(Harness&, const RolloutPlan&)>& after_next);

// For each fake op of a rollout of `make_plan(t)`: a crash before it acts;
// then, when the plan was frozen, a resume by another process must
// converge on v2, and `after_resume` (may be empty) checks more
// (engine_recovery_test.cc).
void SweepOpCrashes(const std::function<RolloutPlan(Harness&)>& make_plan,
                    const std::function<void(Harness&, const RolloutPlan&)>& after_resume);

// For each journal write of a rollout of `make_plan(t)`: a crash before it,
// and one after it lands; then a resume must converge on v2, and
// `after_resume` (may be empty) checks more (engine_recovery_test.cc).
void SweepJournalCrashes(const std::function<RolloutPlan(Harness&)>& make_plan,
                         const std::function<void(Harness&, const RolloutPlan&)>& after_resume);

class RolloutEngineTest : public ::testing::Test, public Harness {
 protected:
  void SetUp() override { Init(); }
};

}  // namespace sp::test
