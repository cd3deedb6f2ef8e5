#include "core/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace
}  // namespace sp
