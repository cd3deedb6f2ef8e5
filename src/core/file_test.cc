#include "core/file.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

namespace sp {
namespace {

TEST(FileTest, NewFilesAreCreatedWithTheirModeAndNeverOverwrite) {
  const std::string dir = std::filesystem::temp_directory_path() / ("sp-file-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string log = dir + "/a.log";
  std::FILE* f = OpenForAppend(log);
  ASSERT_NE(f, nullptr);
  std::fputs("one\n", f);
  std::fclose(f);
  f = OpenForAppend(log);
  std::fputs("two\n", f);
  std::fclose(f);
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*ReadTextFile(log), "one\ntwo\n");
  ASSERT_TRUE(WriteNewFile(dir + "/key", "k", 0600));
  EXPECT_EQ(WriteNewFile(dir + "/key", "other", 0600).error().code, ErrorCode::kConflict);
  EXPECT_EQ(*ReadTextFile(dir + "/key"), "k");
  std::filesystem::remove_all(dir);
}

// Retention of logs: only regular files with the suffix, older than the
// cut, directly in the directory; a missing directory has none.
TEST(FileTest, RemoveFilesOlderThanTakesOnlyOldFilesWithTheSuffix) {
  const std::string dir = std::filesystem::temp_directory_path() / ("sp-file-age-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir + "/sub.log");
  auto make = [&](const std::string& name, int64_t age_s) {
    const std::string path = dir + "/" + name;
    std::fclose(std::fopen(path.c_str(), "w"));
    timespec t[2];
    ::clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_s;
    t[1] = t[0];
    ::utimensat(AT_FDCWD, path.c_str(), t, 0);
  };
  make("1.log", 3 * 86'400);
  make("2.log", 10);
  make("3.txt", 3 * 86'400);
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const int64_t day_ago_ms = (static_cast<int64_t>(now.tv_sec) - 86'400) * 1000;
  EXPECT_EQ(RemoveFilesOlderThan(dir, ".log", day_ago_ms), 1);
  EXPECT_FALSE(std::filesystem::exists(dir + "/1.log"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/2.log"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/3.txt"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/sub.log")) << "a directory is never removed";
  EXPECT_EQ(RemoveFilesOlderThan(dir + "/missing", ".log", day_ago_ms), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sp
