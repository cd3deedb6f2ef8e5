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

}  // namespace
}  // namespace sp::test
