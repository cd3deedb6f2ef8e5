// Operators' everyday commands around rollouts, end to end with the real
// CLI, the process runtime and a strict HAProxy (the shared fixture): a
// rollout journaled and locked on the server whose inventory it reads,
// `rollout undo --to` an earlier version, and `status` (what runs where).
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "support/cli_runner.h"
#include "support/process_rollout_fixture.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using nlohmann::json;

// A rollout that reads its inventory from a server (-i URL) keeps its
// journal and its scope lock on that server, under the caller's deploy
// scope: the server's history shows it (and who ran it), its lock is the
// server's, the CLI's own store stays empty, a token for another deployment
// is refused before any host is touched, and the server never queues a
// rollback to the version such a CLI planned.
TEST_F(ProcessRolloutTest, ARolloutWithTheServersInventoryJournalsAndLocksOnThatServer) {
  const std::string db = *dir_ / "server.db";
  ServerProcess server(*dir_, db, "server");
  ASSERT_TRUE(server.ready()) << server.Log();
  auto applied = RunSallyport({"inventory", "apply", "-f", *dir_ / "inventory.yml", "--server", server.url(), "--yes"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  const std::string deployer = CreateApiToken(db, "deployer", {"read", "deploy:demo/integration"});
  const std::string stranger = CreateApiToken(db, "stranger", {"read", "deploy:demo/staging"});
  ASSERT_FALSE(deployer.empty());
  auto args = [&](const std::string& version) {
    auto a = Args(version);
    for (size_t k = 0; k + 1 < a.size(); ++k) {
      if (a[k] == "-i") a[k + 1] = server.url();
      if (a[k] == "--store") a[k + 1] = *dir_ / "cli.db";
    }
    return a;
  };
  auto refused = RunSallyport(args("v0"), {{"SALLYPORT_TOKEN", stranger}});
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_THAT(refused.err, ::testing::HasSubstr("lacks the scope deploy on demo/integration")) << refused.err;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "") << "app" << i << " was touched";

  for (const std::string v : {"v1", "v2"}) {
    auto r = RunSallyport(args(v), {{"SALLYPORT_TOKEN", deployer}});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), v) << "app" << i;
  }
  // While one runs (paused at app2's start), the server holds its lock.
  std::vector<std::string> paused = args("v3");
  paused.insert(paused.begin(), BuildBinary("sallyport-test"));
  const std::string log = *dir_ / "paused.log";
  Daemon cli(paused, log, {{"SP_TESTBIN_HALT_AFTER", "app2:start:begin"}, {"SALLYPORT_TOKEN", deployer}});
  ASSERT_TRUE(PausedIn(log)) << ReadFile(log);
  auto locks = RunSallyport({"lock", "list", "--server", server.url(), "--output", "json"});
  ASSERT_EQ(locks.exit_code, 0) << locks.err;
  EXPECT_THAT(locks.out, ::testing::HasSubstr("cli token:deployer")) << locks.out;
  auto second = RunSallyport(args("v4"), {{"SALLYPORT_TOKEN", deployer}});
  EXPECT_EQ(second.exit_code, 3) << second.out << second.err;  // The lock is held (on the server).
  cli.SignalGroup(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return !cli.Alive(); }, std::chrono::seconds(60))) << ReadFile(log);
  EXPECT_EQ(cli.exit_code(), 0) << ReadFile(log);

  auto list = RunSallyport({"rollout", "list", "--server", server.url(), "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto rollouts = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(rollouts.contains("rollouts")) << list.out;
  std::vector<std::string> versions;
  for (const auto& r : rollouts["rollouts"]) {
    EXPECT_EQ(r.value("status", ""), "succeeded") << r.dump();
    versions.push_back(r.value("version", ""));
  }
  std::sort(versions.begin(), versions.end());
  EXPECT_EQ(versions, (std::vector<std::string>{"v1", "v2", "v3"})) << list.out;
  const std::string last = rollouts["rollouts"][0].value("id", "");
  auto show = RunSallyport({"rollout", "show", last, "--server", server.url(), "--output", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto shown = json::parse(show.out, nullptr, false);
  ASSERT_TRUE(shown.contains("plan")) << show.out;
  EXPECT_EQ(shown["plan"].value("submitted_by", ""), "token:deployer (CLI)") << show.out;
  EXPECT_EQ(shown["hosts"].size(), 3u) << show.out;
  auto local = RunSallyport({"rollout", "list", "--store", *dir_ / "cli.db", "--output", "json"});
  EXPECT_THAT(local.out, ::testing::Not(::testing::HasSubstr("\"id\""))) << "journaled in the CLI's store: " << local.out;

  // The server queues no rollback to a version a CLI planned.
  auto c = server.Client();
  c.set_default_headers({{"Authorization", "Bearer " + deployer}});
  auto back = c.Post("/v1/rollbacks", R"({"stack":"demo","release":"web","deployment":"integration","queue_anyway":true})",
                     "application/json");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, 409) << back->body;
  EXPECT_THAT(back->body, ::testing::HasSubstr("planned by a CLI")) << back->body;
  // The CLI itself rolls back, journaled on the server too.
  auto undo = RunSallyport({"rollout", "undo", "-c", *dir_ / "sallyport.yml", "-i", server.url(), "-d", "integration"},
                           {{"SALLYPORT_TOKEN", deployer}});
  ASSERT_EQ(undo.exit_code, 0) << undo.out << undo.err;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v2") << "app" << i;
  ExpectAllUp();
}

// `rollout undo --to`: back two versions, to one no host keeps any more (its
// artifact pulled again), under load with no failed request; an unknown
// version is refused naming the versions there are, touching nothing.
TEST_F(ProcessRolloutTest, UndoToAChosenEarlierVersionShipsItsArtifactAndConfigAgain) {
  for (const std::string v : {"v1", "v2", "v3"}) ASSERT_EQ(Deploy(v).exit_code, 0);
  auto undo = [&](const std::string& to) {
    return RunSallyport({"rollout", "undo", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                         "integration", "--store", *dir_ / "state.db", "--to", to});
  };
  auto unknown = undo("v9");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.err, ::testing::HasSubstr("versions it ran: v3, v2, v1")) << unknown.err;
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(VersionOn(i), "v3") << "app" << i;
  auto load = StartLoad();
  ASSERT_TRUE(load);
  auto r = undo("v1");
  auto result = load->Stop();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(result);
  EXPECT_GT(result->requests, 0);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(VersionOn(i), "v1") << "app" << i;
    EXPECT_EQ(RunningOn(i), 1) << "app" << i;
  }
  auto list = RunSallyport({"rollout", "list", "--store", *dir_ / "state.db", "--output", "json"});
  auto rollouts = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(rollouts.contains("rollouts")) << list.out;
  EXPECT_EQ(rollouts["rollouts"][0].value("kind", ""), "rollback") << list.out;
  EXPECT_EQ(rollouts["rollouts"][0].value("version", ""), "v1") << list.out;
  ExpectAllUp();
}

// `sallyport status`: what runs where — the current version, since when and
// by whom, the rollout running there with its hosts' progress and the lock's
// holder — as text and as JSON valid against docs/schemas/status.schema.json.
TEST_F(ProcessRolloutTest, StatusShowsTheCurrentVersionARunningRolloutsProgressAndItsLock) {
  const std::string store = *dir_ / "state.db";
  auto status = [&]() {
    auto r = RunSallyport({"status", "-i", *dir_ / "inventory.yml", "--store", store, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    WriteFile(*dir_ / "status.json", r.out);
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.contains("releases") && j["releases"].size() == 1u) << r.out;
    auto v = RunProgram({"python3", std::string(SP_SOURCE_DIR) + "/tests/checks/validate_json.py",
                         std::string(SP_SOURCE_DIR) + "/docs/schemas/status.schema.json", *dir_ / "status.json"});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    return j.contains("releases") && !j["releases"].empty() ? j["releases"][0] : json::object();
  };
  auto none = status();
  EXPECT_EQ(none.value("stack", ""), "demo");
  EXPECT_TRUE(none["current"].is_null() && none["running"].is_null() && none["lock"].is_null()) << none.dump();
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  ASSERT_EQ(Deploy("v2").exit_code, 0);
  const std::string log = *dir_ / "paused.log";
  Daemon cli = RunPausedAt("v3", "start", log);
  ASSERT_TRUE(PausedIn(log)) << ReadFile(log);
  auto during = status();
  EXPECT_EQ(during["current"].value("version", ""), "v2") << during.dump();
  EXPECT_EQ(during["current"].value("kind", ""), "rollout");
  EXPECT_EQ(during["running"].value("version", ""), "v3") << during.dump();
  EXPECT_EQ(during["running"].value("hosts_total", 0), 3);
  EXPECT_EQ(during["running"].value("hosts_done", 0), 1) << "app1 done, app2 in hand";
  EXPECT_EQ(during["running"].value("hosts_in_progress", 0), 1);
  EXPECT_NE(during["lock"].value("holder", ""), "") << during.dump();
  auto text = RunSallyport({"status", "-i", *dir_ / "inventory.yml", "--store", store});
  EXPECT_THAT(text.out, ::testing::HasSubstr("demo/web/integration")) << text.out;
  EXPECT_THAT(text.out, ::testing::HasSubstr("v3 1/3 hosts")) << text.out;
  cli.SignalGroup(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return !cli.Alive(); }, std::chrono::seconds(60))) << ReadFile(log);
  EXPECT_EQ(cli.exit_code(), 0) << ReadFile(log);
  auto after = status();
  EXPECT_EQ(after["current"].value("version", ""), "v3") << after.dump();
  EXPECT_TRUE(after["running"].is_null() && after["lock"].is_null()) << after.dump();
}

}  // namespace
}  // namespace sp::test
