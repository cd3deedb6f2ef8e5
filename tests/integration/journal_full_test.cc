// Issue 15: a journal that cannot be written never keeps a host out of
// rotation. The store lives on a small tmpfs of the test's own; the rollout
// pauses at app2's `stop begin`, the test fills the filesystem, and from
// there every write of the journal fails (SQLITE_FULL) — the real CLI, the
// process runtime, HAProxy and wrk load.
#include <sys/mount.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "support/process_rollout_fixture.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;

// A tmpfs of `size` mounted on `path` for the test's lifetime.
class SmallFilesystem {
 public:
  SmallFilesystem(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Writes a file until the filesystem is full.
  void Fill() {
    std::FILE* f = std::fopen((path_ + "/filler").c_str(), "w");
    if (!f) return;
    const std::string block(64 << 10, 'x');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST_F(ProcessRolloutTest, AFullDiskFromStopBeginOnStillRestoresTheHostWithZeroFailedRequests) {
  SmallFilesystem small(*dir_ / "small", "8m");
  ASSERT_TRUE(small.mounted()) << "mounting a tmpfs needs root";
  store_ = *dir_ / "small/state.db";
  ASSERT_EQ(Deploy("v1").exit_code, 0);
  auto load = StartLoad();
  ASSERT_TRUE(load);
  const std::string log = *dir_ / "cli.log";
  Daemon cli = RunPausedAt("v2", "stop", log);
  ASSERT_TRUE(PausedIn(log)) << ReadFile(log);
  small.Fill();
  cli.SignalGroup(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return !cli.Alive(); }, std::chrono::seconds(60))) << ReadFile(log);
  auto result = load->Stop();
  const std::string out = ReadFile(log);
  EXPECT_NE(cli.exit_code(), 0) << out;
  EXPECT_THAT(out, HasSubstr("host app2 failed at stop"));
  EXPECT_THAT(out, HasSubstr("database or disk is full"));
  EXPECT_THAT(out, HasSubstr("the journal could not record"));
  EXPECT_EQ(out.find("RESTORE FAILED"), std::string::npos) << out;
  EXPECT_TRUE(haproxy_->WaitAllUp(std::chrono::milliseconds(1000))) << "every host in rotation";
  EXPECT_EQ(VersionOn(1), "v2");
  EXPECT_EQ(VersionOn(2), "v1") << "app2 restored";
  EXPECT_EQ(VersionOn(3), "v1");
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load during a rollout whose journal filled its disk: %s\n", result->Summary().c_str());
  EXPECT_EQ(result->failures(), 0) << result->raw;
}

}  // namespace
}  // namespace sp::test
