#include "transport/local/local_transport.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace sp {
namespace {

int ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

int CountEntries(const std::string& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

const HostRef kHost{"local", "127.0.0.1", "", 22};

TEST(LocalTransportTest, RunReturnsOutputAndExitCode) {
  LocalTransport t;
  CommandSpec spec;
  spec.argv = {"sh", "-c", "printf '%s' \"$1\"; cat; exit 3", "sh", "a b'c"};
  spec.stdin_data = "from-stdin";
  auto r = t.Run(kHost, spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "a b'cfrom-stdin");
}

TEST(LocalTransportTest, RunOfMissingProgramIsAnError) {
  LocalTransport t;
  CommandSpec spec;
  spec.argv = {"/nonexistent/sp-no-such-program"};
  EXPECT_FALSE(t.Run(kHost, spec).has_value());
}

TEST(LocalTransportTest, WriteFileReplacesAtomicallyWithExactMode) {
  test::TempDir dir;
  LocalTransport t;
  const std::string path = dir / "env";
  struct UmaskGuard {
    mode_t old = ::umask(077);
    ~UmaskGuard() { ::umask(old); }
  } umask_guard;
  ASSERT_TRUE(t.WriteFile(kHost, path, "A=1\n", 0644).has_value());
  EXPECT_EQ(ModeOf(path), 0644);
  ASSERT_TRUE(t.WriteFile(kHost, path, "SECRET=x\n", 0600).has_value());
  EXPECT_EQ(test::ReadFile(path), "SECRET=x\n");
  EXPECT_EQ(ModeOf(path), 0600);
  ASSERT_TRUE(t.WriteFile(kHost, dir / "tool", "#!/bin/sh\n", 0755).has_value());
  EXPECT_EQ(ModeOf(dir / "tool"), 0755);  // Not reduced by the umask.
  EXPECT_EQ(CountEntries(dir.path()), 2);  // No temp files left over.
}

TEST(LocalTransportTest, WriteFileDoesNotCreateParentDirectories) {
  test::TempDir dir;
  LocalTransport t;
  auto s = t.WriteFile(kHost, dir / "missing/env", "A=1\n", 0600);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(test::FileExists(dir / "missing"));
}

TEST(LocalTransportTest, CopyFileCopiesContentAndMode) {
  test::TempDir dir;
  LocalTransport t;
  std::string big(300'000, 'x');
  big[12345] = '\0';
  test::WriteFile(dir / "src", big, 0600);
  ASSERT_TRUE(t.WriteFile(kHost, dir / "dst", "old", 0644).has_value());
  ASSERT_TRUE(t.CopyFile(kHost, dir / "src", dir / "dst", 0755).has_value());
  EXPECT_EQ(test::ReadFile(dir / "dst"), big);
  EXPECT_EQ(ModeOf(dir / "dst"), 0755);
  EXPECT_EQ(CountEntries(dir.path()), 2);
}

TEST(LocalTransportTest, CopyFileOfMissingSourceIsNotFoundAndLeavesTargetAlone) {
  test::TempDir dir;
  LocalTransport t;
  test::WriteFile(dir / "dst", "keep", 0644);
  auto s = t.CopyFile(kHost, dir / "nope", dir / "dst", 0755);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(test::ReadFile(dir / "dst"), "keep");
  EXPECT_EQ(CountEntries(dir.path()), 1);
}

TEST(LocalTransportTest, CheckSucceeds) {
  LocalTransport t;
  EXPECT_TRUE(t.Check(kHost).has_value());
}

}  // namespace
}  // namespace sp
