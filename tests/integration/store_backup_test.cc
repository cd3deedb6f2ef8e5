// `sallyport backup` against a real server that keeps writing: the copy is
// one consistent snapshot, private, checked; restored in place of the store,
// a new server serves what it holds (issue 15: the store lives long).
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

TEST(StoreBackupTest, ABackupTakenWhileTheServerWritesIsConsistentAndRestoresToAServingServer) {
  TempDir dir("sp-backup");
  const std::string db = dir / "state.db", copy = dir / "backup.db";
  auto server = std::make_unique<ServerProcess>(dir, db, "server");
  ASSERT_TRUE(server->ready()) << server->Log();
  // A writer queues jobs through the API as fast as it can, before, during and after the backup.
  std::atomic<bool> stop{false};
  std::atomic<int> made{0};
  std::thread writer([&] {
    httplib::Client c = server->Client();
    c.set_keep_alive(true);
    c.set_tcp_nodelay(true);  // As the CLI's and agents' client.
    const httplib::Headers auth{{"Authorization", Bearer()}};
    const std::string body = json{{"kind", "hook"}, {"payload", std::string(4000, 'p')}, {"labels", {{"n", "x"}}}}.dump();
    while (!stop) {
      auto r = c.Post("/v1/jobs", auth, body, "application/json");
      if (r && r->status == 201) ++made;
    }
  });
  ASSERT_TRUE(WaitFor([&] { return made >= 200; }, std::chrono::seconds(30)));
  const int before = made;
  auto backup = RunSallyport({"backup", "--store", db, "--to", copy});
  const int after = made;
  EXPECT_TRUE(WaitFor([&] { return made >= after + 100; }, std::chrono::seconds(30))) << "the server went on writing";
  stop = true;
  writer.join();
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  EXPECT_THAT(backup.out, HasSubstr("integrity ok"));
  struct stat st {};
  ASSERT_EQ(::stat(copy.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(copy + ".partial"));
  auto again = RunSallyport({"backup", "--store", db, "--to", copy});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("never overwrites"));

  // Restore: the server stopped, its files moved aside, the copy in their place.
  server.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (std::filesystem::exists(db + suffix)) std::filesystem::rename(db + suffix, db + suffix + ".old");
  }
  std::filesystem::copy_file(copy, db);
  ServerProcess restored(dir, db, "restored");
  ASSERT_TRUE(restored.ready()) << restored.Log();
  httplib::Client c = restored.Client();
  auto jobs = c.Get("/v1/jobs?limit=1000", httplib::Headers{{"Authorization", Bearer()}});  // The admin token is in it.
  ASSERT_TRUE(jobs && jobs->status == 200) << (jobs ? jobs->body : "no answer");
  const size_t n = json::parse(jobs->body)["jobs"].size();
  std::printf("jobs queued before the backup %d, by its end %d, in the copy %zu, in all %d\n", before, after, n,
              made.load());
  EXPECT_GE(n, static_cast<size_t>(before));
  EXPECT_LE(n, static_cast<size_t>(after));
}

// Retention (--retain): a real server removes ended jobs and their agents'
// log files, and build logs, once older than the setting; a queued job
// stays whatever its age.
TEST(StoreRetentionTest, EndedJobsAndLogsOlderThanRetainAreRemovedAndQueuedJobsStay) {
  TempDir dir("sp-retain");
  const std::string db = dir / "state.db";
  std::filesystem::create_directories(dir / "builds/logs");
  WriteFile(dir / "builds/logs/1.log", "an old build's lines\n");
  std::filesystem::last_write_time(dir / "builds/logs/1.log",
                                   std::filesystem::file_time_type::clock::now() - std::chrono::hours(48));
  const std::string agent_token = CreateAgentToken(dir, db, "agent", "n=x");
  ASSERT_FALSE(agent_token.empty());
  ServerProcess server(dir, db, "server", {"--retain", "3s", "--poll-every", "0"});
  ASSERT_TRUE(server.ready()) << server.Log();
  httplib::Client c = server.Client();
  c.set_tcp_nodelay(true);
  const httplib::Headers admin{{"Authorization", Bearer()}};
  const httplib::Headers agent{{"Authorization", "Bearer " + Trim(ReadFile(agent_token))}};
  auto enqueue = [&](const std::string& label) {
    auto r = c.Post("/v1/jobs", admin, json{{"kind", "hook"}, {"payload", "p"}, {"labels", {{"n", label}}}}.dump(),
                    "application/json");
    return r && r->status == 201 ? json::parse(r->body).value("id", int64_t{0}) : int64_t{0};
  };
  const int64_t ended = enqueue("x"), waiting = enqueue("nobody");
  ASSERT_GT(ended, 0);
  ASSERT_GT(waiting, 0);
  auto claim = c.Post("/v1/agent/claim?wait_ms=0&lease_ms=60000", agent, "", "application/json");
  ASSERT_TRUE(claim && claim->status == 200) << (claim ? claim->body : "no answer");
  const int64_t epoch = json::parse(claim->body).value("epoch", int64_t{0});
  const std::string base = "/v1/agent/jobs/" + std::to_string(ended);
  auto logged = c.Post(base + "/log", agent,
                       json{{"epoch", epoch}, {"lines", {{{"ts", 1}, {"step", "s"}, {"err", false}, {"text", "hi"}}}}}.dump(),
                       "application/json");
  ASSERT_TRUE(logged && logged->status < 300) << (logged ? logged->body : "no answer");
  auto completed = c.Post(base + "/complete", agent, json{{"epoch", epoch}, {"result", "ok"}}.dump(), "application/json");
  ASSERT_TRUE(completed && completed->status < 300) << (completed ? completed->body : "no answer");
  const std::string job_log = dir / ("jobs/" + std::to_string(ended) + ".log");
  EXPECT_TRUE(std::filesystem::exists(job_log));
  EXPECT_TRUE(WaitFor([&] { return !std::filesystem::exists(dir / "builds/logs/1.log"); }, std::chrono::seconds(5)))
      << "the two-day-old build log is still there: " << server.Log();
  // The job ended now: it goes once 3 s old (passes every 1.5 s).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = c.Get("/v1/jobs/" + std::to_string(ended), admin);
        return r && r->status == 404;
      },
      std::chrono::seconds(15), std::chrono::milliseconds(200)))
      << server.Log();
  EXPECT_FALSE(std::filesystem::exists(job_log));
  auto kept = c.Get("/v1/jobs/" + std::to_string(waiting), admin);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->status, 200) << "a queued job was removed";
  EXPECT_THAT(server.Log(), HasSubstr("retention: removed 1 ended job(s)"));
}

}  // namespace
}  // namespace sp::test
