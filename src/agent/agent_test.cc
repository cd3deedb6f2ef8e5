// The agent against a server's routes in this process (no sockets), with
// faults injected into its calls: leases, fences, heartbeats lost or
// refused, reports refused, a rollout resumed from the server's journal.
#include "agent/agent.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/lease.h"
#include "agent/log_shipper.h"
#include "rollout/fence.h"
#include "rollout/plan.h"
#include "unit/fakes.h"
#include "unit/server_harness.h"

namespace sp {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(JobLeaseTest, AConfirmedLeaseFencesOnceThreeQuartersOfItPassedWithoutRenewal) {
  FakeClock clock;
  JobLease lease(1000, clock);
  EXPECT_FALSE(lease.Fence()) << "nothing confirmed yet";
  lease.ConfirmedAt(clock.MonotonicMs());
  EXPECT_TRUE(lease.Fence());
  clock.Advance(Millis(749));
  EXPECT_TRUE(lease.Fence());
  clock.Advance(Millis(1));
  EXPECT_EQ(lease.Fence().error().code, ErrorCode::kConflict);
  lease.ConfirmedAt(clock.MonotonicMs());  // A heartbeat sent now was accepted.
  EXPECT_TRUE(lease.Fence());
  lease.Lost();
  EXPECT_FALSE(lease.Fence()) << "lost at once, whatever the clock says";
}

TEST(LogShipperTest, ALeaseLostAnswerStopsTheShippingForGood) {
  FakeClock clock;
  std::vector<size_t> sent;
  LogShipper shipper(
      [&](const nlohmann::ordered_json& lines) -> Status {
        sent.push_back(lines.size());
        return Err(ErrorCode::kConflict, "job 1: lease lost");
      },
      clock);
  shipper.Line("rollout", false, "one");
  shipper.Flush();
  shipper.Line("rollout", false, "two");
  shipper.Flush();
  shipper.Close();
  EXPECT_EQ(sent, std::vector<size_t>{1}) << "nothing is sent after a 409";
}

TEST(LogShipperTest, AServerThatCannotKeepUpLosesTheNewestLinesAndIsToldHowMany) {
  FakeClock clock;
  std::vector<std::string> texts;
  std::mutex mu;
  std::condition_variable cv;
  bool sending = false, release = false;
  LogShipper shipper(
      [&](const nlohmann::ordered_json& lines) -> Status {
        std::unique_lock lk(mu);
        sending = true;
        cv.notify_all();
        cv.wait(lk, [&] { return release; });  // The server is slow with the first batch.
        for (const auto& l : lines) texts.push_back(l["text"]);
        return Ok();
      },
      clock);
  shipper.Line("build", false, "first");
  std::thread flush([&] { shipper.Flush(); });
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return sending; });
  }
  for (int i = 0; i < 20'005; ++i) shipper.Line("build", false, std::to_string(i));
  {
    std::lock_guard lk(mu);
    release = true;
  }
  cv.notify_all();
  flush.join();
  shipper.Close();
  ASSERT_EQ(texts.size(), 1u + 20'000u + 1u);
  EXPECT_EQ(texts[20'000], "19999");
  EXPECT_EQ(texts.back(), "5 line(s) dropped: the server could not keep up");
}

// An agent on a server harness; its rollouts run the real engine on the
// unit fakes, with the agent's journal, lock and fence.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = h_.AgentToken("dc1", {{"network", "dev"}});
    client_ = h_.Client(token_);
    lb_ = std::make_unique<test::FakeLoadBalancer>(&world_, "lb");
    std::map<int, std::string> ports;
    for (int i = 1; i <= 3; ++i) {
      const std::string host = "app" + std::to_string(i);
      lb_->AddServer("app", host);
      runtime_.Seed(host, "v1");
      ports[8080 + i] = host;
    }
    health_ = std::make_unique<test::FakeHealth>(&world_, &runtime_, ports);
  }

  RolloutPlan Plan() {
    RolloutPlan p;
    p.id = "r-agent-1";
    p.stack = "demo";
    p.release = "web";
    p.deployment = "dev";
    p.network = "dev";
    p.app.runtime = "fake";
    p.app.artifact = "img:v2";
    p.app.version = "v2";
    p.app.health.retries = 2;
    for (int i = 1; i <= 3; ++i) p.hosts.push_back(HostSpec{"app" + std::to_string(i), "127.0.0.1", 8080 + i, "", 22, {}});
    LoadBalancerSpec lb;
    lb.backend = "app";
    lb.socket = "/fake";
    p.load_balancers.push_back(lb);
    return p;
  }

  int64_t Enqueue(const std::string& kind, const std::string& payload) {
    JobSpec spec;
    spec.kind = kind;
    spec.payload = payload;
    spec.labels = {{"network", "dev"}};
    spec.max_attempts = 1;
    return h_.store->Enqueue(spec, h_.clock.WallMs())->id;
  }

  // The engine as the real wiring builds it: every action fenced.
  Result<RolloutSummary> RunEngine(const RolloutPlan& plan, const EngineSetup& setup, bool resume) {
    ++runs_;
    resumed_ = resume;
    test::FakeTransport transport(&world_);
    FencedTransport fenced(transport, setup.fence);
    EngineDeps d;
    d.clock = &engine_clock_;
    d.journal = setup.journal;
    d.locks = setup.locks;
    d.runtime = &runtime_;
    d.transport = &fenced;
    d.health = health_.get();
    d.lb_factory = [this, fence = setup.fence](const LoadBalancerSpec&) -> Result<std::unique_ptr<LoadBalancer>> {
      return std::unique_ptr<LoadBalancer>(std::make_unique<FencedLoadBalancer>(test::Borrow(lb_.get()), fence));
    };
    d.on_event = setup.on_event;
    EngineOptions o;
    o.renew_in_background = false;
    o.prefetch_batches = 0;
    RolloutEngine engine(d, o);
    return resume ? engine.Resume(plan.id) : engine.Run(plan);
  }

  Agent MakeAgent(int64_t lease_ms = 60'000) {
    AgentOptions o;
    o.clock = &h_.clock;
    o.lease_ms = lease_ms;
    o.claim_wait = Millis(0);
    o.run_rollout = [this](const RolloutPlan& p, const EngineSetup& s, bool resume) { return RunEngine(p, s, resume); };
    return Agent(*client_, o);
  }

  // Claims job `id` the way the agent's loop does and runs it to its report.
  void ClaimAndRun(Agent& agent) {
    const int64_t sent = h_.clock.MonotonicMs();
    auto claim = client_->Call("POST", "/v1/agent/claim?wait_ms=0");
    ASSERT_TRUE(claim && !claim->is_null()) << (claim ? "no job" : claim.error().message);
    agent.RunClaimedJob(*claim, sent);
  }

  test::ServerHarness h_;
  std::string token_;
  std::unique_ptr<test::RouterClient> client_;
  test::World world_;
  test::FakeRuntime runtime_{&world_};
  std::unique_ptr<test::FakeLoadBalancer> lb_;
  std::unique_ptr<test::FakeHealth> health_;
  FakeClock engine_clock_;
  int runs_ = 0;
  bool resumed_ = false;
};

TEST_F(AgentTest, ARolloutJobRunsAgainstTheServersJournalAndCompletes) {
  const int64_t id = Enqueue("rollout", PlanToJson(Plan()));
  Agent agent = MakeAgent();
  ASSERT_TRUE(agent.Register());
  ClaimAndRun(agent);
  EXPECT_EQ(h_.store->GetJob(id)->state, JobState::kSucceeded);
  auto rec = h_.store->GetRollout("r-agent-1");
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_EQ(rec->status, RolloutStatus::kSucceeded);
  for (int i = 1; i <= 3; ++i) EXPECT_THAT(runtime_.Running("app" + std::to_string(i)), ::testing::ElementsAre("v2"));
  EXPECT_FALSE(*h_.store->Get("demo/web/dev")) << "the scope's lock is released on the server";
}

TEST_F(AgentTest, AHeartbeatRefusedAsLeaseLostFencesEveryLaterAction) {
  Enqueue("rollout", PlanToJson(Plan()));
  Agent agent = MakeAgent(/*lease_ms=*/40);  // Heartbeats every 10 ms of real time.
  // app1 rolls; then the server says the lease is gone; app2 waits at its
  // pull until the agent has heard so.
  std::atomic<bool> refused{false};
  world_.on_op = [&](const std::string& op) {
    if (op == "up app1") {
      client_->Fail("POST /v1/agent/jobs/1/heartbeat", Error{ErrorCode::kConflict, "job 1: lease lost"});
      refused = true;
    }
    if (op.rfind("has app2", 0) == 0) {
      const int seen = client_->Count("POST /v1/agent/jobs/1/heartbeat");
      for (int i = 0; i < 500 && client_->Count("POST /v1/agent/jobs/1/heartbeat") < seen + 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  };
  ClaimAndRun(agent);
  ASSERT_TRUE(refused);
  auto log = world_.Log();
  EXPECT_THAT(log, Not(::testing::Contains(HasSubstr("drain app2")))) << "no action after the lease was lost";
  EXPECT_THAT(log, Not(::testing::Contains(HasSubstr("app3"))));
  EXPECT_THAT(runtime_.Running("app2"), ::testing::ElementsAre("v1"));
  EXPECT_TRUE(lb_->State("app2").InRotation());
}

TEST_F(AgentTest, HeartbeatsThatGetNoAnswerLetTheLeaseLapseAndTheFenceClose) {
  Enqueue("rollout", PlanToJson(Plan()));
  Agent agent = MakeAgent(/*lease_ms=*/40);
  client_->Fail("POST /v1/agent/jobs/1/heartbeat", Error{ErrorCode::kUnavailable, "server down"});
  world_.on_op = [&](const std::string& op) {
    if (op == "up app1") h_.clock.Advance(Millis(31));  // Past 3/4 of the lease, never renewed.
  };
  ClaimAndRun(agent);
  auto log = world_.Log();
  EXPECT_THAT(log, Not(::testing::Contains(HasSubstr("drain app2"))));
  EXPECT_THAT(runtime_.Running("app1"), ::testing::ElementsAre("v2"));
  EXPECT_THAT(runtime_.Running("app2"), ::testing::ElementsAre("v1"));
}

TEST_F(AgentTest, ARefusedCompleteIsReportedAndTheAgentCarriesOn) {
  const int64_t id = Enqueue("rollout", PlanToJson(Plan()));
  client_->Fail("POST /v1/agent/jobs/1/complete", Error{ErrorCode::kInternal, "database is locked"});
  Agent agent = MakeAgent();
  ClaimAndRun(agent);
  EXPECT_EQ(client_->Count("POST /v1/agent/jobs/1/complete"), 1);
  EXPECT_EQ(h_.store->GetJob(id)->state, JobState::kLeased) << "the server reclaims it when its lease expires";
  EXPECT_EQ(h_.store->GetRollout("r-agent-1")->status, RolloutStatus::kSucceeded);
}

TEST_F(AgentTest, ARolloutFinishedUnderAnEarlierLeaseIsReportedNotRunAgain) {
  const RolloutPlan plan = Plan();
  RolloutRecord rec{plan.id, plan.release, plan.deployment, plan.stack, PlanKind::kRollout, RolloutStatus::kSucceeded,
                    PlanToJson(plan), "", 1, 1};
  ASSERT_TRUE(h_.store->CreateRollout(rec));
  ASSERT_TRUE(h_.store->FinishRollout(plan.id, RolloutStatus::kSucceeded, ""));
  const int64_t id = Enqueue("rollout", PlanToJson(plan));
  Agent agent = MakeAgent();
  ClaimAndRun(agent);
  EXPECT_EQ(runs_, 0);
  EXPECT_EQ(h_.store->GetJob(id)->state, JobState::kSucceeded);
}

TEST_F(AgentTest, ARolloutLeftRunningIsResumedFromTheServersJournal) {
  const RolloutPlan plan = Plan();
  RolloutRecord rec{plan.id, plan.release, plan.deployment, plan.stack, PlanKind::kRollout, RolloutStatus::kRunning,
                    PlanToJson(plan), "", 1, 1};
  ASSERT_TRUE(h_.store->CreateRollout(rec));
  Enqueue("rollout", PlanToJson(plan));
  Agent agent = MakeAgent();
  ClaimAndRun(agent);
  EXPECT_EQ(runs_, 1);
  EXPECT_TRUE(resumed_);
  EXPECT_EQ(h_.store->GetRollout(plan.id)->status, RolloutStatus::kSucceeded);
}

TEST_F(AgentTest, AJobOfAnotherKindOrAMalformedPlanFailsWithTheReason) {
  const int64_t odd = Enqueue("hook", "{}");
  Agent agent = MakeAgent();
  ClaimAndRun(agent);
  auto j = h_.store->GetJob(odd);
  EXPECT_EQ(j->state, JobState::kDead);
  EXPECT_THAT(j->error, HasSubstr("agents run build, rollout and reconcile jobs, not 'hook'"));
  const int64_t bad = Enqueue("rollout", "{not json");
  ClaimAndRun(agent);
  EXPECT_EQ(h_.store->GetJob(bad)->state, JobState::kDead);
  EXPECT_EQ(runs_, 0);
}

// A plan reaching an agent is checked before anything starts: each of these
// fails its job naming the field, and no rollout (no subprocess) runs.
TEST_F(AgentTest, AMalformedPlanIsRefusedBeforeAnythingRuns) {
  struct Bad {
    std::function<void(RolloutPlan&)> spoil;
    std::string field;
  };
  const std::vector<Bad> cases = {
      {[](RolloutPlan& p) { p.hosts[1].address = "10.0.0.2;touch /tmp/x"; }, "/hosts/1/address"},
      {[](RolloutPlan& p) { p.hosts[0].name = "-oProxyCommand=x"; }, "/hosts/0/name"},
      {[](RolloutPlan& p) { p.hosts[2].ssh_port = 0; }, "/hosts/2/ssh_port"},
      {[](RolloutPlan& p) { p.docker_host = "tcp://10.0.0.9:2375"; }, "/docker_host"},
      {[](RolloutPlan& p) { p.bastion = BastionSpec{"10.0.0.1", 22, "deploy", "/k", "* ssh-ed25519 AAAA"}; },
       "/bastion/host_key"},
      {[](RolloutPlan& p) {
         p.bastion = BastionSpec{"10.0.0.1", 22, "deploy", "/k", "@cert-authority * ssh-ed25519 AAAA"};
       },
       "/bastion/host_key"},
      {[](RolloutPlan& p) { p.app.command = {"--flag", "two\nlines"}; }, "/app/command"},
      {[](RolloutPlan& p) { p.app.env["BAD NAME"] = "x"; }, "/app/env"},
      {[](RolloutPlan& p) { p.app.env_refs["DB_URL"] = "file:relative/db"; }, "/app/env_refs/DB_URL"},
      {[](RolloutPlan& p) { p.app.env_refs["BAD NAME"] = "credential:db"; }, "/app/env_refs"},
      {[](RolloutPlan& p) { p.load_balancers[0].socket = "relative.sock"; }, "/load_balancers/0/socket"},
      {[](RolloutPlan& p) { p.base_dir = "/srv/../etc"; }, "/base_dir"},
      {[](RolloutPlan& p) { p.deployment = "Prod!"; }, "/deployment"},
      {[](RolloutPlan& p) { p.registry.address = "evil.example:99999"; }, "/registry/address"},
      {[](RolloutPlan& p) { p.registry.password_ref = "file:relative/token"; }, "/registry/password_ref"},
      {[](RolloutPlan& p) { p.app.volumes = {"etc:/host-etc"}; }, "/app/volumes"},
      {[](RolloutPlan& p) { p.app.health.path = "http://elsewhere/"; }, "/app/health/path"},
      {[](RolloutPlan& p) { p.app.smoke = {"curl", "a\nb"}; }, "/app/smoke"},
  };
  Agent agent = MakeAgent();
  for (const auto& c : cases) {
    RolloutPlan p = Plan();
    c.spoil(p);
    const int64_t id = Enqueue("rollout", PlanToJson(p));
    ClaimAndRun(agent);
    auto j = h_.store->GetJob(id);
    EXPECT_EQ(j->state, JobState::kDead) << c.field;
    EXPECT_THAT(j->error, HasSubstr("refused: plan " + c.field)) << j->error;
  }
  EXPECT_EQ(runs_, 0) << "a rollout ran on a malformed plan";
  // The same plan unspoiled runs.
  const int64_t good = Enqueue("rollout", PlanToJson(Plan()));
  ClaimAndRun(agent);
  EXPECT_EQ(h_.store->GetJob(good)->state, JobState::kSucceeded);
}

}  // namespace
}  // namespace sp
