// The server's routes through its router, without sockets: access enforced
// in one place, fenced agent calls, the queue, rollout and lock answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/text.h"
#include "rollout/journal_wire.h"
#include "server/job_store_calls.h"
#include "support/route_paths.h"
#include "unit/server_harness.h"

namespace sp {
namespace {

using ::testing::HasSubstr;
using http::Access;
using http::Method;
using test::PathFor;

class RoutesTest : public ::testing::Test {
 protected:
  http::Response Send(Method m, const std::string& path, const std::string& body = "", const std::string& token = "") {
    http::Request req;
    req.method = m;
    req.path = path.substr(0, path.find('?'));
    if (path.find('?') != std::string::npos) {
      for (const auto& kv : Split(path.substr(path.find('?') + 1), '&')) {
        req.params.emplace(kv.substr(0, kv.find('=')), kv.substr(kv.find('=') + 1));
      }
    }
    req.body = body;
    if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
    return h_.server->router().Handle(req);
  }
  Job Enqueue(const std::string& kind, std::map<std::string, std::string> labels) {
    JobSpec spec;
    spec.kind = kind;
    spec.payload = R"({"stack":"demo","release":"web","deployment":"dev"})";
    spec.labels = std::move(labels);
    return *h_.store->Enqueue(spec, h_.clock.WallMs());
  }
  // A rollout job (network dev) claimed by the agent of `token` (claim
  // query `query`): the path of its store call and a lock_get body on `key`.
  std::pair<std::string, std::string> StoreCall(const std::string& token, const std::string& query,
                                                const std::string& key) {
    const Job job = Enqueue("rollout", {{"network", "dev"}});
    auto claim = http::Doc::parse(Send(Method::kPost, "/v1/agent/claim" + query, "", token).body);
    http::Doc body{{"epoch", claim["epoch"]}, {"call", "lock_get"}, {"key", key}};
    return {"/v1/agent/jobs/" + std::to_string(job.id) + "/store", body.dump()};
  }
  test::ServerHarness h_;
  const std::string admin_ = h_.Token("ops-admin", {"admin"});
};

TEST_F(RoutesTest, EveryAgentRouteRefusesAMissingOrUnknownTokenBeforeItsHandler) {
  int agent_routes = 0;
  for (const http::Route& r : h_.server->router().routes()) {
    if (r.access.need() != auth::Need::kAgent) continue;
    ++agent_routes;
    const std::string path = PathFor(r.pattern);
    EXPECT_EQ(Send(r.method, path).status, 401) << path;
    EXPECT_EQ(Send(r.method, path, "{}", "not-a-token").status, 401) << path;
  }
  EXPECT_EQ(agent_routes, 9);
  // An API token, even an admin's, is not an agent's.
  EXPECT_EQ(Send(Method::kPost, "/v1/agent/claim", "", admin_).status, 403);
}

TEST_F(RoutesTest, EveryRouteDeclaresWhoMayCallIt) {
  for (const http::Route& r : h_.server->router().routes()) {
    const bool agent_path = r.pattern.rfind("/v1/agent/", 0) == 0;
    EXPECT_EQ(r.access.need() == auth::Need::kAgent, agent_path) << r.pattern;
    const bool public_path =
        r.pattern == "/v1/health" || r.pattern == "/v1/login" || r.pattern.rfind("/hooks/", 0) == 0;
    EXPECT_EQ(r.access.need() == auth::Need::kPublic, public_path) << r.pattern;
  }
}

TEST_F(RoutesTest, APathOutsideTheTablesIs404WithAnApiError) {
  auto res = Send(Method::kGet, "/v1/nothing-here");
  EXPECT_EQ(res.status, 404);
  EXPECT_THAT(res.body, HasSubstr("\"code\":\"not_found\""));
  EXPECT_EQ(Send(Method::kPut, "/v1/health").status, 404) << "a known path with another method";
}

TEST_F(RoutesTest, AClaimTakesOnlyJobsTheTokensLabelsAllowAndFencesByEpoch) {
  const std::string dev = h_.AgentToken("dev-agent", {{"network", "dev"}});
  Enqueue("rollout", {{"network", "prod"}});
  const Job mine = Enqueue("rollout", {{"network", "dev"}});
  auto claim = Send(Method::kPost, "/v1/agent/claim", "", dev);
  ASSERT_EQ(claim.status, 200) << claim.body;
  auto job = http::Doc::parse(claim.body);
  EXPECT_EQ(job["id"], mine.id);
  const std::string base = "/v1/agent/jobs/" + std::to_string(mine.id);
  EXPECT_EQ(Send(Method::kPost, base + "/heartbeat", R"({"epoch": 999})", dev).status, 409);
  auto stale_log = Send(Method::kPost, base + "/log", R"({"epoch": 999, "lines": [{"text": "x"}]})", dev);
  EXPECT_EQ(stale_log.status, 409);
  const std::string epoch = std::to_string(job["epoch"].get<int64_t>());
  EXPECT_EQ(Send(Method::kPost, base + "/heartbeat", "{\"epoch\": " + epoch + "}", dev).status, 200);
  // Another agent never acts on it.
  const std::string other = h_.AgentToken("other", {{"network", "dev"}});
  EXPECT_EQ(Send(Method::kPost, base + "/heartbeat", "{\"epoch\": " + epoch + "}", other).status, 409);
}

TEST_F(RoutesTest, AJournalWriteNeedsTheLeaseWithAMarginLeft) {
  const std::string dev = h_.AgentToken("dev-agent", {{"network", "dev"}});
  const auto [path, body] = StoreCall(dev, "?lease_ms=1000", "demo/web/dev");
  EXPECT_EQ(Send(Method::kPost, path, body, dev).status, 200);
  h_.clock.Advance(Millis(800));  // 200 ms left: inside the 250 ms margin.
  EXPECT_EQ(Send(Method::kPost, path, body, dev).status, 409);
}

// A lock that outlived its dead holder by days would keep every later
// rollout of its scope out: an agent's TTL is clamped, on take and renew.
TEST_F(RoutesTest, AnAgentsLockTtlIsClampedOnAcquireAndRenew) {
  const std::string dev = h_.AgentToken("dev-agent", {{"network", "dev"}});
  const auto [path, get] = StoreCall(dev, "", "demo/web/dev");
  http::Doc call = http::Doc::parse(get);
  const int64_t now = h_.clock.WallMs();
  auto expires = [&] {
    call["call"] = "lock_get";
    auto r = Send(Method::kPost, path, call.dump(), dev);
    return http::Doc::parse(r.body)["lease"].value("expires_ms", int64_t{0});
  };
  call["call"] = "lock_acquire";
  // Times an agent's clock (a day ahead) would give are not the lease's:
  // the server's clock, the store's, stamps it.
  const int64_t skewed = now + 24 * 3600 * 1000;
  call["lease"] = {{"key", "demo/web/dev"}, {"holder", "agent"},         {"token", "t-1"},
                   {"reason", "rollout r-1 v2"}, {"acquired_ms", skewed}, {"expires_ms", skewed + 60'000}};
  call["ttl_ms"] = int64_t{10} * 24 * 3600 * 1000;  // Ten days.
  auto took = Send(Method::kPost, path, call.dump(), dev);
  ASSERT_EQ(took.status, 200) << took.body;
  EXPECT_EQ(expires(), now + kMaxLockTtlMs);
  EXPECT_EQ(http::Doc::parse(took.body)["lease"].value("acquired_ms", int64_t{0}), now);
  call["call"] = "lock_renew";
  call["key"] = "demo/web/dev";
  call["token"] = http::Doc::parse(took.body)["lease"].value("token", "");
  call["ttl_ms"] = -5;
  ASSERT_EQ(Send(Method::kPost, path, call.dump(), dev).status, 200);
  EXPECT_EQ(expires(), now + kMinLockTtlMs);
}

TEST_F(RoutesTest, AStoreCallOutsideTheJobsScopeIsRefused) {
  const std::string dev = h_.AgentToken("dev-agent", {{"network", "dev"}});
  const auto [path, body] = StoreCall(dev, "", "demo/web/prod");
  auto res = Send(Method::kPost, path, body, dev);
  EXPECT_EQ(res.status, 403);
}

// An agent's token reads no job through the API; a build job's agent follows
// the rollout its own deploy queued, and no other.
TEST_F(RoutesTest, ABuildsAgentWatchesItsOwnDeployOnly) {
  const std::string builder = h_.AgentToken("builder", {{"role", "builder"}});
  JobSpec b;
  b.kind = "build";
  b.payload = R"({"build_id": 7})";
  b.labels = {{"role", "builder"}};
  const Job build = *h_.store->Enqueue(b, h_.clock.WallMs());
  auto claim = http::Doc::parse(Send(Method::kPost, "/v1/agent/claim", "", builder).body);
  ASSERT_EQ(claim["id"], build.id);
  const std::string epoch = std::to_string(claim["epoch"].get<int64_t>());
  JobSpec mine, other;
  mine.kind = other.kind = "rollout";
  mine.payload = R"({"stack":"demo","release":"web","deployment":"dev","build_id":7})";
  other.payload = R"({"stack":"demo","release":"web","deployment":"prod","build_id":8})";
  mine.labels = other.labels = {{"network", "dev"}};
  const Job m = *h_.store->Enqueue(mine, h_.clock.WallMs()), o = *h_.store->Enqueue(other, h_.clock.WallMs());
  const std::string path = "/v1/agent/jobs/" + std::to_string(build.id) + "/watch";
  auto seen = Send(Method::kPost, path, "{\"epoch\": " + epoch + ", \"job\": " + std::to_string(m.id) + "}", builder);
  ASSERT_EQ(seen.status, 200) << seen.body;
  EXPECT_EQ(http::Doc::parse(seen.body)["state"], "queued");
  EXPECT_EQ(Send(Method::kPost, path, "{\"epoch\": " + epoch + ", \"job\": " + std::to_string(o.id) + "}", builder).status,
            403);
  EXPECT_EQ(Send(Method::kGet, "/v1/jobs/" + std::to_string(m.id), "", builder).status, 403);
}

TEST_F(RoutesTest, RetryAndCancelChangeAJobsState) {
  const Job job = Enqueue("rollout", {{"network", "dev"}});
  const std::string base = "/v1/jobs/" + std::to_string(job.id);
  const std::string deployer = h_.Token("dev-deployer", {"deploy:demo/dev"});
  EXPECT_EQ(Send(Method::kPost, base + "/cancel", "", deployer).status, 200);
  EXPECT_EQ(h_.store->GetJob(job.id)->state, JobState::kCanceled);
  EXPECT_EQ(Send(Method::kPost, base + "/retry", "", deployer).status, 200);
  EXPECT_EQ(h_.store->GetJob(job.id)->state, JobState::kQueued);
  EXPECT_EQ(Send(Method::kPost, "/v1/jobs/424242/retry", "", admin_).status, 404);
  // Acting on a job is acting where it deploys.
  const std::string elsewhere = h_.Token("prod-deployer", {"deploy:demo/prod"});
  EXPECT_EQ(Send(Method::kPost, base + "/cancel", "", elsewhere).status, 403);
  EXPECT_EQ(h_.store->GetJob(job.id)->state, JobState::kQueued);
}

TEST_F(RoutesTest, LocksAreListedWithoutTheirTokensAndReleasedByKey) {
  Lease l;
  l.key = "demo/web/dev";
  l.holder = "ops@box pid 1";
  l.token = "secret-token-value";
  ASSERT_TRUE(h_.store->Acquire(l, h_.clock.WallMs(), 30'000));
  auto list = Send(Method::kGet, "/v1/locks", "", admin_);
  ASSERT_EQ(list.status, 200);
  EXPECT_THAT(list.body, HasSubstr("ops@box pid 1"));
  EXPECT_THAT(list.body, ::testing::Not(HasSubstr("secret-token-value")));
  EXPECT_EQ(Send(Method::kDelete, "/v1/locks/demo/web/dev", "", h_.Token("prod", {"deploy:demo/prod"})).status, 403);
  EXPECT_TRUE(*h_.store->Get("demo/web/dev"));
  // Its lease is live: refused, saying what --force risks; forced, released.
  auto live = Send(Method::kDelete, "/v1/locks/demo/web/dev", "", h_.Token("dev", {"deploy:demo/dev"}));
  EXPECT_EQ(live.status, 409);
  EXPECT_THAT(live.body, HasSubstr("is held by ops@box pid 1"));
  EXPECT_THAT(live.body, HasSubstr("--force releases it anyway"));
  EXPECT_TRUE(*h_.store->Get("demo/web/dev"));
  EXPECT_EQ(Send(Method::kDelete, "/v1/locks/demo/web/dev?force=1", "", h_.Token("dev", {"deploy:demo/dev"})).status,
            204);
  EXPECT_FALSE(*h_.store->Get("demo/web/dev"));
  // An expired lease (its holder elsewhere, gone) needs no --force.
  ASSERT_TRUE(h_.store->Acquire(l, h_.clock.WallMs(), 30'000));
  h_.clock.Advance(Millis(30'001));
  EXPECT_EQ(Send(Method::kDelete, "/v1/locks/demo/web/dev", "", h_.Token("dev", {"deploy:demo/dev"})).status, 204);
}

// A CLI's journal and lock on the server (-i URL): only for its own scope,
// its plan recorded as submitted by the caller (a plan of another rollout or
// scope refused), two CLIs of one user excluded from each other's lock.
TEST_F(RoutesTest, ACliJournalsOnlyItsOwnScopeAndItsPlanIsMarkedSubmitted) {
  const std::string dev = h_.Token("dev", {"deploy:demo/dev"});
  const std::string path = "/v1/journal/demo/web/dev";
  EXPECT_EQ(Send(Method::kPost, "/v1/journal/demo/web/prod", R"({"call":"lock_get","key":"demo/web/prod"})", dev).status,
            403);
  RolloutRecord r;
  r.id = "r-cli";
  r.stack = "demo";
  r.release = "web";
  r.deployment = "dev";
  auto create = [&](const RolloutRecord& rec) {
    return Send(Method::kPost, path, http::Doc{{"call", "create_rollout"}, {"rollout", http::Doc::parse(
                                                   RolloutRecordToJson(rec).dump())}}.dump(), dev);
  };
  r.plan_json = R"({"id":"r-other","stack":"demo","release":"web","deployment":"dev"})";
  EXPECT_EQ(create(r).status, 400) << "a plan of another rollout";
  r.plan_json = R"({"id":"r-cli","stack":"demo","release":"web","deployment":"dev","submitted_by":""})";
  auto made = create(r);
  ASSERT_EQ(made.status, 200) << made.body;
  auto stored = h_.store->GetRollout("r-cli");
  ASSERT_TRUE(stored);
  EXPECT_THAT(stored->plan_json, HasSubstr(R"x("submitted_by":"token:dev (CLI)")x"));
  RolloutRecord other = r;
  other.id = "r-prod";
  other.deployment = "prod";
  EXPECT_EQ(create(other).status, 403) << "another deployment's rollout through this scope";

  Lease want;
  want.key = "demo/web/dev";
  want.holder = "me@laptop pid 1";
  want.token = "t1";
  auto acquire = [&](const Lease& l) {
    return Send(Method::kPost, path, http::Doc{{"call", "lock_acquire"}, {"ttl_ms", 30'000},
                                               {"lease", http::Doc::parse(LeaseToJson(l).dump())}}.dump(), dev);
  };
  auto first = acquire(want);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_THAT(first.body, HasSubstr("cli token:dev (CLI, me@laptop pid 1)"));
  want.token = "t2";
  EXPECT_EQ(acquire(want).status, 409) << "the same user's second CLI takes no lock over";
  EXPECT_EQ(Send(Method::kPost, path, R"({"call":"lock_force_release","key":"demo/web/dev"})", dev).status, 200);
  EXPECT_FALSE(*h_.store->Get("demo/web/dev"));
}

TEST_F(RoutesTest, ARolloutIsShownWithItsPlanHostsAndJournal) {
  RolloutRecord r;
  r.id = "r-1";
  r.stack = "demo";
  r.release = "web";
  r.deployment = "dev";
  r.plan_json = R"({"app": {"version": "v2", "artifact": "img@sha256:x"}})";
  ASSERT_TRUE(h_.store->CreateRollout(r));
  ASSERT_TRUE(h_.store->PutHost(HostRecord{"r-1", "app1", HostState::kDone, Step::kConfirmUp, 120, ""}));
  ASSERT_TRUE(h_.store->AppendStep(StepRecord{0, "r-1", "app1", Step::kDrain, StepPhase::kBegin, 1, ""}));
  auto show = Send(Method::kGet, "/v1/rollouts/r-1", "", admin_);
  ASSERT_EQ(show.status, 200) << show.body;
  auto d = http::Doc::parse(show.body);
  EXPECT_EQ(d["rollout"]["version"], "v2");
  EXPECT_EQ(d["hosts"][0]["state"], "done");
  EXPECT_EQ(d["steps"][0]["step"], "drain");
  EXPECT_EQ(d["plan"]["app"]["artifact"], "img@sha256:x");
  auto list = http::Doc::parse(Send(Method::kGet, "/v1/rollouts", "", admin_).body);
  EXPECT_EQ(list["rollouts"][0]["id"], "r-1");
  EXPECT_FALSE(list["rollouts"][0].contains("plan_json"));
  EXPECT_EQ(Send(Method::kGet, "/v1/rollouts/r-missing", "", admin_).status, 404);
}

TEST_F(RoutesTest, AHandlerThatThrowsAnswers500) {
  http::Router router([](const std::string&) -> Result<http::Caller> { return http::Caller{}; });
  router.Add({{Method::kGet, "/boom", Access::Public(),
               [](const http::Request&, http::Response&) { throw std::runtime_error("kaput"); }}});
  http::Request req;
  req.path = "/boom";
  auto res = router.Handle(req);
  EXPECT_EQ(res.status, 500);
  EXPECT_THAT(res.body, HasSubstr("kaput"));
}

}  // namespace
}  // namespace sp
