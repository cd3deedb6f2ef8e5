// End to end: the real `sallyport rollout` CLI, the process runtime, a real
// HAProxy (strict: no retries, no redispatch) and real wrk load. The sample
// app dies at once on SIGTERM, so only draining keeps requests from failing.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "lb/haproxy/haproxy_lb.h"
#include "runtime/process/process_runtime.h"
#include "support/cli_runner.h"
#include "support/process_rollout_fixture.h"
#include "support/haproxy_fixture.h"
#include "support/load_generator.h"
#include "support/rollout_scenario.h"
#include "support/test_util.h"
#include "transport/local/local_transport.h"

namespace sp::test {
namespace {

using nlohmann::json;

TEST_F(ProcessRolloutTest, RollingReleaseUnderLoadHasZeroFailedRequests) {
  auto v1 = Deploy("v1");
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  ExpectAllUp();

  auto load = StartLoad();
  ASSERT_TRUE(load);
  auto args = Args("v2");
  args.insert(args.end(), {"--output", "json"});
  auto r = RunSallyport(args);
  auto result = load->Stop();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load during rollout: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 100);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  auto sessions = SessionsAtDrain(r.out);
  ASSERT_EQ(sessions.size(), 3u) << r.out;
  for (const auto& [host, n] : sessions) EXPECT_GT(n, 0) << host << ": no session in flight when its drain began";
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(VersionOn(i), "v2") << "app" << i;
    EXPECT_EQ(RunningOn(i), 1) << "app" << i;
  }
  ExpectAllUp();
}

// The operator's Ctrl-C (SIGINT) or a service manager's SIGTERM, sent to the
// CLI's process group as the middle host's drain, stop, start or health is
// about to act: that host finishes, the last keeps the old version, every
// host is in rotation within a second of the exit, the lock is free, stderr
// says what happened and how to continue (exit 5), no request fails, and
// the next plain rollout needs no --resume.
TEST_F(ProcessRolloutTest, AnInterruptFinishesTheHostInHandReleasesTheLockAndFailsNoRequest) {
  auto v1 = Deploy("v1");
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  auto load = StartLoad();
  ASSERT_TRUE(load);
  const std::vector<std::pair<std::string, int>> moments = {
      {"drain", SIGINT}, {"stop", SIGTERM}, {"start", SIGINT}, {"health", SIGTERM}};
  for (const auto& [step, sig] : moments) {
    const std::string version = "i-" + step;
    const std::string log = *dir_ / (version + ".log");
    Daemon cli = RunPausedAt(version, step, log);
    ASSERT_TRUE(PausedIn(log)) << ReadFile(log);
    cli.SignalGroup(sig);
    cli.SignalGroup(SIGCONT);
    ASSERT_TRUE(WaitFor([&] { return !cli.Alive(); }, std::chrono::seconds(60))) << ReadFile(log);
    const std::string out = ReadFile(log);
    EXPECT_EQ(cli.exit_code(), 5) << step << ":\n" << out;
    EXPECT_THAT(out, ::testing::HasSubstr(sig == SIGINT ? "SIGINT: finishing the host(s) in hand" : "SIGTERM: finishing"));
    EXPECT_THAT(out, ::testing::HasSubstr("interrupted: 1 of 3 host(s) untouched"));
    EXPECT_THAT(out, ::testing::HasSubstr("Continue with: sallyport rollout resume r-"));
    EXPECT_TRUE(haproxy_->WaitAllUp(std::chrono::milliseconds(1000))) << step;
    EXPECT_EQ(VersionOn(1), version) << step;
    EXPECT_EQ(VersionOn(2), version) << step << ": the host in hand finished";
    EXPECT_EQ(VersionOn(3), "v1") << step << ": the host after it is never touched";
    auto locks = RunSallyport({"lock", "list", "--output", "json", "--store", *dir_ / "state.db"});
    ASSERT_EQ(locks.exit_code, 0) << locks.err;
    EXPECT_TRUE(json::parse(locks.out)["locks"].empty()) << locks.out;
  }
  // Each was recorded interrupted (not left running for the next to reconcile).
  auto list = RunSallyport({"rollout", "list", "--output", "json", "--store", *dir_ / "state.db"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  size_t interrupted = 0;
  for (size_t at = 0; (at = list.out.find("\"interrupted\"", at)) != std::string::npos; ++at) ++interrupted;
  EXPECT_EQ(interrupted, moments.size()) << list.out;
  auto next = Deploy("after");  // A plain rollout: nothing to resume first.
  auto result = load->Stop();
  ASSERT_EQ(next.exit_code, 0);
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load during 4 interrupted rollouts and one more: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 100);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "after") << "app" << i;
  ExpectAllUp();
}

// A second signal 50 ms after the first stops at once (within 2 s), says
// so, and leaves the journal to `rollout resume`, which converges.
TEST_F(ProcessRolloutTest, ASecondInterruptStopsAtOnceAndResumeConverges) {
  auto v1 = Deploy("v1");
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  auto load = StartLoad();
  ASSERT_TRUE(load);
  const std::string log = *dir_ / "twice.log";
  Daemon cli = RunPausedAt("v2", "stop", log);
  ASSERT_TRUE(PausedIn(log)) << ReadFile(log);
  cli.SignalGroup(SIGINT);
  cli.SignalGroup(SIGCONT);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // The scenario: an impatient second Ctrl-C.
  cli.SignalGroup(SIGINT);
  EXPECT_TRUE(WaitFor([&] { return !cli.Alive(); }, std::chrono::seconds(2))) << ReadFile(log);
  ASSERT_TRUE(WaitFor([&] { return !cli.Alive(); }, std::chrono::seconds(60)));
  const std::string out = ReadFile(log);
  EXPECT_EQ(cli.exit_code(), 5) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("SIGINT again: stopped at once"));
  EXPECT_THAT(out, ::testing::HasSubstr("until `sallyport rollout resume r-"));
  auto resume = RunSallyport({"rollout", "resume", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                              "integration", "--store", *dir_ / "state.db"});
  auto result = load->Stop();
  ASSERT_EQ(resume.exit_code, 0) << resume.out << resume.err;
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load during the interrupted rollout and its resume: %s\n", result->Summary().c_str());
  EXPECT_EQ(result->failures(), 0) << result->raw;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v2") << "app" << i;
  ExpectAllUp();
}

TEST_F(ProcessRolloutTest, NegativeControlWithoutSessionWaitFailsRequests) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  auto load = StartLoad();
  ASSERT_TRUE(load);
  auto args = Args("v2");
  args.insert(args.end(), {"--output", "json"});
  // The test tree's binary, its load balancers reporting no session (SP_TESTBIN_SKIP_DRAIN_WAIT).
  auto r = RunSallyportTest(args, {{"SP_TESTBIN_SKIP_DRAIN_WAIT", "1"}});
  auto result = load->Stop();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load during unsafe rollout: %s\n", result->Summary().c_str());
  // What the test binary hid from the engine: the sessions it cut.
  int in_flight = 0;
  for (const auto& line : Split(r.err, '\n')) {
    if (StartsWith(line, "SP_TESTBIN hid ")) in_flight += std::atoi(line.c_str() + 15);
  }
  ASSERT_GT(in_flight, 0) << "control is meaningless without sessions in flight: " << r.err;
  EXPECT_GT(result->failures(), 0) << "stopping apps with sessions in flight must fail requests: " << result->raw;
}

TEST_F(ProcessRolloutTest, HealthFailureOnHost2RestoresItAndLeavesHost3Untouched) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  WriteConfig("bad.yml", "      SAMPLE_HEALTH_FAIL_PORTS: \"" + std::to_string(ports_[1]) + "\"\n");
  auto load = StartLoad();
  ASSERT_TRUE(load);
  auto r = RunSallyport(Args("v2", "bad.yml"));
  auto result = load->Stop();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("host app2 failed at health"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HTTP 500"), std::string::npos) << r.out;
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load during failing rollout: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 0);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  EXPECT_EQ(VersionOn(1), "v2");
  EXPECT_EQ(VersionOn(2), "v1") << "host 2 restored";
  EXPECT_EQ(VersionOn(3), "v1") << "host 3 untouched";
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(RunningOn(i), 1) << "app" << i;
  // Host 3 may hold v2's artifact (pulled ahead while host 2 rolled:
  // EngineOptions::prefetch_batches) but still runs only v1 (checked above).
  const auto app3_releases = *dir_ / "apps/web/integration/app3/releases";
  ASSERT_TRUE(std::filesystem::exists(app3_releases));
  EXPECT_LE(std::distance(std::filesystem::directory_iterator(app3_releases), std::filesystem::directory_iterator{}),
            2) << "v1's release directory and at most v2's, prefetched";
  ExpectAllUp();
}

TEST_F(ProcessRolloutTest, RollbackRestoresThePreviousVersionWithoutItsArtifact) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  ASSERT_EQ(Deploy("v2").exit_code, 0);
  std::filesystem::remove_all(*dir_ / "artifacts/v1");  // The "registry" is gone.
  auto load = StartLoad();
  ASSERT_TRUE(load);
  auto r = RunSallyport({"rollout", "undo", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                         "integration", "--store", *dir_ / "state.db"});
  auto result = load->Stop();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(result);
  EXPECT_GT(result->requests, 0);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v1") << "app" << i;
  ExpectAllUp();
}

TEST_F(ProcessRolloutTest, DryRunPrintsTheFrozenPlanAndTouchesNothing) {
  auto args = Args("v1");
  args.push_back("--dry-run");
  auto r = RunSallyport(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto plan = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(plan.is_discarded()) << r.out;
  EXPECT_EQ(plan["hosts"].size(), 3u);
  EXPECT_EQ(plan["app"]["artifact"], Artifact("v1"));
  EXPECT_EQ(plan["app"]["env"]["GREETING"], "hello");
  EXPECT_EQ(plan["load_balancers"][0]["socket"], haproxy_->socket_path());
  EXPECT_FALSE(std::filesystem::exists(*dir_ / "apps/web")) << "dry run touched a host";
  EXPECT_THAT(r.err, ::testing::HasSubstr("preflight ok: nothing was touched"));
  auto history = RunSallyport({"rollout", "list", "--store", *dir_ / "state.db"});
  EXPECT_EQ(history.out, "") << "dry run recorded a rollout";
}

// --dry-run runs the read-only preflight: a missing artifact and an
// unreachable load balancer each make it fail, named, touching nothing.
TEST_F(ProcessRolloutTest, DryRunFailsNamingAMissingArtifactAndAnUnreachableLoadBalancer) {
  auto args = Args("v1");
  auto after = [&](const std::string& flag) -> std::string& {
    return *(std::find(args.begin(), args.end(), flag) + 1);
  };
  after("--artifact") = *dir_ / "no-such-artifact";
  args.push_back("--dry-run");
  auto missing = RunSallyport(args);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, ::testing::HasSubstr("artifact " + (*dir_ / "no-such-artifact") + " cannot be read"));

  std::string inv = ReadFile(*dir_ / "inventory.yml");
  const std::string socket = haproxy_->socket_path();
  inv.replace(inv.find(socket), socket.size(), *dir_ / "no-haproxy.sock");
  WriteFile(*dir_ / "gone-lb.yml", inv);
  after("--artifact") = Artifact("v1");
  after("-i") = *dir_ / "gone-lb.yml";
  auto gone = RunSallyport(args);
  EXPECT_EQ(gone.exit_code, 4) << gone.out << gone.err;
  EXPECT_THAT(gone.err, ::testing::HasSubstr("load balancer of backend"));
  EXPECT_THAT(gone.err, ::testing::HasSubstr("no-haproxy.sock"));
  EXPECT_FALSE(std::filesystem::exists(*dir_ / "apps/web")) << "dry run touched a host";
  auto history = RunSallyport({"rollout", "list", "--store", *dir_ / "state.db"});
  EXPECT_EQ(history.out, "");
}

TEST_F(ProcessRolloutTest, ConfigErrorNamesFileLineAndFieldAndTouchesNothing) {
  WriteFile(*dir_ / "typo.yml", "version: 1\nservice: sample\nstack: demo\nreleases:\n  web:\n    runtime: process\n"
                                "    helth: {path: /health}\n");
  auto r = RunSallyport(Args("v1", "typo.yml"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("typo.yml:7"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("helth"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(*dir_ / "apps/web"));
}

TEST_F(ProcessRolloutTest, LockShowNamesTheKilledHolderAndReleaseFreesIt) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  auto args = Args("v2");
  args.insert(args.end(), {"--output", "json"});
  auto r = StreamSallyport(args, [](const std::string& line) {
    return line.find("\"step\":\"drain\"") != std::string::npos;
  });
  ASSERT_EQ(r.exit_code, 137);
  auto show = RunSallyport({"lock", "list", "--store", *dir_ / "state.db"});
  EXPECT_NE(show.out.find("demo/web/integration"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(" pid "), std::string::npos) << show.out;
  auto release = RunSallyport({"lock", "release", "demo/web/integration", "--store", *dir_ / "state.db"});
  EXPECT_EQ(release.exit_code, 0) << release.err;
  show = RunSallyport({"lock", "list", "--store", *dir_ / "state.db"});
  EXPECT_NE(show.out.find("no locks"), std::string::npos) << show.out;
  // The interrupted rollout is still finished by a resume.
  auto resumed = RunSallyport({"rollout", "resume", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml",
                               "-d", "integration", "--store", *dir_ / "state.db"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v2");
}

// `lock release` on a live rollout (its CLI paused at app2's drain, alive on
// this machine) is refused, naming the holder and what --force risks;
// --force releases it.
TEST_F(ProcessRolloutTest, ReleasingALiveHoldersLockNeedsForce) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  const std::string log = *dir_ / "held.log";
  Daemon cli = RunPausedAt("v2", "drain", log);
  ASSERT_TRUE(PausedIn(log)) << ReadFile(log);
  auto refused = RunSallyport({"lock", "release", "demo/web/integration", "--store", *dir_ / "state.db"});
  EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
  EXPECT_THAT(refused.err, ::testing::HasSubstr("a process that is still running"));
  EXPECT_THAT(refused.err, ::testing::HasSubstr("more hosts out of rotation than the batch allows"));
  auto show = RunSallyport({"lock", "list", "--store", *dir_ / "state.db"});
  EXPECT_THAT(show.out, ::testing::HasSubstr("demo/web/integration")) << "still held";
  auto forced = RunSallyport({"lock", "release", "demo/web/integration", "--force", "--store", *dir_ / "state.db"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_THAT(forced.out, ::testing::HasSubstr("released demo/web/integration (forced)"));
  cli.Stop();
}

// `rollout list` and `rollout show` answer what an operator asks (when,
// who, what, how long, how it ended; the plan with env values redacted, the
// hosts and the step timeline), and their JSON validates against the schemas
// in docs/schemas (checked by tests/checks/validate_json.py, which also
// rejects a document missing a field).
TEST_F(ProcessRolloutTest, ListAndShowAsJsonValidateAgainstTheDocumentedSchemas) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  WriteConfig("bad.yml", "      SAMPLE_HEALTH_FAIL_PORTS: \"" + std::to_string(ports_[1]) + "\"\n");
  ASSERT_EQ(RunSallyport(Args("v2", "bad.yml")).exit_code, 1);
  const std::string store = *dir_ / "state.db";
  const std::string schemas = std::string(SP_SOURCE_DIR) + "/docs/schemas/";
  auto valid = [&](const std::string& schema, const std::string& file) {
    auto r = RunProgram({"python3", std::string(SP_SOURCE_DIR) + "/tests/checks/validate_json.py", schemas + schema,
                         file});
    return r.exit_code == 0 ? std::string() : r.out + r.err + "(exit " + std::to_string(r.exit_code) + ")";
  };

  auto list = RunSallyport({"rollout", "list", "--output", "json", "--store", store});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  WriteFile(*dir_ / "list.json", list.out);
  EXPECT_EQ(valid("rollout-list.schema.json", *dir_ / "list.json"), "") << list.out;
  const json rollouts = json::parse(list.out)["rollouts"];
  ASSERT_EQ(rollouts.size(), 2u);
  const json failed = rollouts[0];  // Newest first.
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["version"], "v2");
  EXPECT_THAT(failed["requested_by"].get<std::string>(), ::testing::HasSubstr("@"));
  EXPECT_TRUE(failed["duration_ms"].is_number());
  EXPECT_THAT(failed["error"].get<std::string>(), ::testing::HasSubstr("host app2 failed at health"));

  auto text = RunSallyport({"rollout", "list", "--store", store});
  EXPECT_THAT(text.out, ::testing::HasSubstr("STARTED (UTC)"));
  EXPECT_THAT(text.out, ::testing::HasSubstr(failed["requested_by"].get<std::string>()));

  auto show = RunSallyport({"rollout", "show", failed["id"], "--output", "json", "--store", store});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  WriteFile(*dir_ / "show.json", show.out);
  EXPECT_EQ(valid("rollout-show.schema.json", *dir_ / "show.json"), "") << show.out;
  const json doc = json::parse(show.out);
  EXPECT_EQ(doc["plan"]["app"]["env"]["GREETING"], "(redacted)");
  EXPECT_EQ(show.out.find("hello"), std::string::npos) << "an env value in the answer";
  EXPECT_GT(doc["steps"].size(), 10u);
  auto text_show = RunSallyport({"rollout", "show", failed["id"], "--store", store});
  EXPECT_THAT(text_show.out, ::testing::HasSubstr("started "));
  EXPECT_THAT(text_show.out, ::testing::HasSubstr("health"));

  // The validator is not a rubber stamp.
  json broken = json::parse(list.out);
  broken["rollouts"][0].erase("requested_by");
  WriteFile(*dir_ / "broken.json", broken.dump());
  EXPECT_THAT(valid("rollout-list.schema.json", *dir_ / "broken.json"), ::testing::HasSubstr("requested_by"));
}

// A stray process holding a host's port (here a copy of the app started by
// hand) fails the rollout's preflight, naming its pid; the fleet is untouched.
TEST_F(ProcessRolloutTest, AStrayOnAHostsPortFailsPreflightNamingItAndTouchesNothing) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  // app2's instance dies (an operator's kill), then a stray takes its port.
  LocalTransport t;
  ProcessOptions po;
  po.base_dir = *dir_ / "apps";
  ProcessRuntime rt(t, po);
  RuntimeTarget app2{HostRef{"app2", "127.0.0.1", "", 22}, "web", "integration"};
  auto list = rt.List(app2);
  ASSERT_TRUE(list && list->size() == 1);
  ASSERT_TRUE(rt.Stop(app2, list->front(), Millis(2000)));
  Daemon stray({Artifact("v1")}, *dir_ / "stray.log", {{"PORT", std::to_string(ports_[1])}, {"APP_VERSION", "stray"}});
  ASSERT_TRUE(WaitFor([&] { return VersionOn(2) == "stray"; }, std::chrono::seconds(5)));
  auto r = RunSallyport(Args("v2"));
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("port " + std::to_string(ports_[1]) + " on app2 is held by pid " +
                                          std::to_string(stray.pid()) + " (sp-sample-app), which no instance of "
                                          "web/integration started"));
  EXPECT_EQ(VersionOn(1), "v1");
  EXPECT_EQ(VersionOn(2), "stray");
  EXPECT_EQ(VersionOn(3), "v1");
  auto history = RunSallyport({"rollout", "list", "--output", "json", "--store", *dir_ / "state.db"});
  EXPECT_EQ(history.out.find("\"v2\""), std::string::npos) << "no rollout of v2 was recorded: " << history.out;
}

// Samples HAProxy's backend every 50 ms on its own connection: the most
// servers it saw out of rotation at once.
class RotationSampler {
 public:
  RotationSampler(LoadBalancerSpec spec, std::string backend)
      : spec_(std::move(spec)), backend_(std::move(backend)), thread_([this] { Loop(); }) {}
  ~RotationSampler() { Stop(); }
  // Stops sampling; the maximum seen.
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return max_out_;
  }
  int samples() const { return samples_; }

 private:
  void Loop() {
    auto lb = MakeHaproxyLoadBalancer(spec_);
    if (!lb) return;
    while (!stop_) {
      if (auto servers = (*lb)->ListBackend(backend_)) {
        int out = 0;
        for (const auto& s : *servers) out += !s.InRotation();
        max_out_ = std::max(max_out_.load(), out);
        ++samples_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  const LoadBalancerSpec spec_;
  const std::string backend_;
  std::atomic<bool> stop_{false};
  std::atomic<int> max_out_{0};
  std::atomic<int> samples_{0};
  std::thread thread_;  // Last: starts once the rest is set.
};

// An operator forces the lock of a live rollout (paused at app2's drain,
// start or health) away and starts a second rollout at once: the first stops
// at its very next action and says "lock lost", the second reconciles and
// succeeds, the fleet ends on the winner's version, and no sample ever sees
// more servers out of rotation than the batch (1) — under load, 0 failures.
TEST_F(ProcessRolloutTest, AForcedReleaseStopsTheHolderAtItsNextActionAndTheNextRolloutWins) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  auto load = StartLoad();
  ASSERT_TRUE(load);
  RotationSampler sampler(haproxy_->UnixSpec(), haproxy_->backend());
  for (const std::string step : {"drain", "start", "health"}) {
    const std::string first_log = *dir_ / ("first-" + step + ".log");
    Daemon first = RunPausedAt("a-" + step, step, first_log);
    ASSERT_TRUE(PausedIn(first_log)) << ReadFile(first_log);
    auto forced = RunSallyport({"lock", "release", "demo/web/integration", "--force", "--store", *dir_ / "state.db"});
    ASSERT_EQ(forced.exit_code, 0) << forced.err;
    std::vector<std::string> argv = Args("b-" + step);
    argv.insert(argv.begin(), BuildBinary("sallyport"));
    const std::string second_log = *dir_ / ("second-" + step + ".log");
    Daemon second(argv, second_log);
    first.SignalGroup(SIGCONT);
    ASSERT_TRUE(WaitFor([&] { return !first.Alive() && !second.Alive(); }, std::chrono::seconds(120)));
    const std::string out1 = ReadFile(first_log), out2 = ReadFile(second_log);
    EXPECT_EQ(first.exit_code(), 3) << step << ":\n" << out1;
    EXPECT_THAT(out1, ::testing::HasSubstr("lock lost")) << step;
    EXPECT_EQ(second.exit_code(), 0) << step << ":\n" << out2;
    EXPECT_THAT(out2, ::testing::HasSubstr("succeeded")) << step;
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "b-" + step) << step << ": app" << i;
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(RunningOn(i), 1) << step << ": app" << i;
    EXPECT_TRUE(haproxy_->WaitAllUp(std::chrono::milliseconds(1000))) << step;
  }
  const int samples = sampler.samples();
  const int max_out = sampler.Stop();
  auto result = load->Stop();
  ASSERT_TRUE(result) << result.error().message;
  std::printf("forced releases at drain, start and health: at most %d of 3 servers out of rotation in %d samples "
              "(every 50 ms); load: %s\n", max_out, samples, result->Summary().c_str());
  EXPECT_GT(samples, 20);
  EXPECT_LE(max_out, 1) << "more servers out of rotation than the batch allows";
  EXPECT_EQ(result->failures(), 0) << result->raw;
  ExpectAllUp();
}

struct CrashPoint {
  std::string step, phase;
};
// ctest names the case by this, not by the struct's bytes.
void PrintTo(const CrashPoint& cp, std::ostream* os) { *os << cp.step << "/" << cp.phase; }

class ProcessCrashTest : public ProcessRolloutTest, public ::testing::WithParamInterface<CrashPoint> {};

TEST_P(ProcessCrashTest, KillDashNineThenResumeConverges) {
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  auto args = Args("v2");
  args.insert(args.end(), {"--output", "json"});
  const auto& cp = GetParam();
  auto r = StreamSallyport(args, [&](const std::string& line) {
    auto j = json::parse(line, nullptr, false);
    return !j.is_discarded() && j.value("event", "") == "step" && j.value("host", "") == "app2" &&
           j.value("step", "") == cp.step && j.value("phase", "") == cp.phase;
  });
  ASSERT_EQ(r.exit_code, 137) << "sallyport was not killed at " << cp.step << "/" << cp.phase << ":\n" << r.out;
  auto resumed = RunSallyport({"rollout", "resume", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml",
                               "-d", "integration", "--store", *dir_ / "state.db"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  ExpectAllUp();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(RunningOn(i), 1) << "app" << i;
    EXPECT_EQ(VersionOn(i), "v2") << "app" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(BothSidesOfEachStep, ProcessCrashTest,
                         ::testing::Values(CrashPoint{"drain", "begin"}, CrashPoint{"drain", "end"},
                                           CrashPoint{"stop", "begin"}, CrashPoint{"stop", "end"},
                                           CrashPoint{"start", "begin"}, CrashPoint{"start", "end"},
                                           CrashPoint{"ready", "begin"}, CrashPoint{"ready", "end"}),
                         [](const auto& info) { return info.param.step + "_" + info.param.phase; });

}  // namespace
}  // namespace sp::test
