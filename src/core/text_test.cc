#include "core/text.h"

#include <gtest/gtest.h>

#include "core/subprocess.h"

namespace sp {
namespace {

TEST(TextTest, ParsesDurationsWithUnits) {
  EXPECT_EQ(ParseDuration("250ms")->count(), 250);
  EXPECT_EQ(ParseDuration("10s")->count(), 10'000);
  EXPECT_EQ(ParseDuration("2m")->count(), 120'000);
  EXPECT_EQ(ParseDuration("3")->count(), 3'000);
  EXPECT_EQ(ParseDuration("30d")->count(), 30LL * 86'400'000);
  EXPECT_FALSE(ParseDuration("ten"));
  EXPECT_FALSE(ParseDuration("5 parsecs"));
}

TEST(TextTest, BatchCountsAndPercentagesResolveAgainstFleet) {
  EXPECT_EQ(ParseCountOrPercent("1")->Resolve(10), 1);
  EXPECT_EQ(ParseCountOrPercent("25%")->Resolve(10), 3);
  EXPECT_EQ(ParseCountOrPercent("100%")->Resolve(3), 3);
  EXPECT_EQ(ParseCountOrPercent("5")->Resolve(3), 3);
  EXPECT_FALSE(ParseCountOrPercent("150%"));
  EXPECT_FALSE(ParseCountOrPercent("-1"));
  EXPECT_FALSE(ParseCountOrPercent("x"));
}

TEST(TextTest, ValidatesOutsideStrings) {
  EXPECT_TRUE(IsValidImageRef("127.0.0.1:5000/hello:v2"));
  EXPECT_TRUE(IsValidImageRef("registry.local/team/app@sha256:" + std::string(64, 'a')));
  EXPECT_FALSE(IsValidImageRef("hello; rm -rf /"));
  EXPECT_FALSE(IsValidImageRef("$(reboot)"));
  EXPECT_TRUE(IsValidName("web-2"));
  EXPECT_FALSE(IsValidName("Web"));
  EXPECT_FALSE(IsValidName("../x"));
  EXPECT_TRUE(IsValidAddress("10.1.2.3"));
  EXPECT_FALSE(IsValidAddress("10.1.2.300"));
  EXPECT_FALSE(IsValidAddress("a b"));
  EXPECT_FALSE(IsSafeValue("a\nb"));
}

TEST(SubprocessTest, SeparatesStdoutStderrAndFeedsStdin) {
  CommandSpec spec;
  spec.argv = {"sh", "-c", "cat; echo oops >&2; exit 3"};
  spec.stdin_data = "hello";
  auto r = SystemProcesses().Run(spec);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "hello");
  EXPECT_EQ(r->err, "oops\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->ok());
}

TEST(SubprocessTest, TimeoutKillsTheWholeProcessGroup) {
  CommandSpec spec;
  spec.argv = {"sh", "-c", "sleep 30 & sleep 30; wait"};
  spec.timeout = Millis(200);
  auto r = SystemProcesses().Run(spec);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  CommandSpec spec;
  spec.argv = {"/nonexistent/program"};
  EXPECT_FALSE(SystemProcesses().Run(spec));
}

TEST(ParseHostPortTest, SplitsAndChecks) {
  auto a = ParseHostPort("10.0.0.2:9999");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "10.0.0.2");
  EXPECT_EQ(a->port, 9999);
  auto v6 = ParseHostPort("[::1]:80");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 80);
  auto bare = ParseHostPort("registry.local", 80);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 80);
  EXPECT_FALSE(ParseHostPort("registry.local"));
  EXPECT_FALSE(ParseHostPort("h:"));
  EXPECT_FALSE(ParseHostPort(":80"));
  EXPECT_FALSE(ParseHostPort("h:0"));
  EXPECT_FALSE(ParseHostPort("h:65536"));
  EXPECT_FALSE(ParseHostPort("h:8x"));
  EXPECT_FALSE(ParseHostPort("[::1"));
}

TEST(TextTest, Base64StandardAndUrlSafe) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("user:pa ss"), "dXNlcjpwYSBzcw==");
  EXPECT_EQ(Base64("\xfb\xff\xbf"), "+/+/");
  EXPECT_EQ(Base64("\xfb\xff\xbf", /*url=*/true), "-_-_");
}

TEST(TextTest, UrlHostAndLoopback) {
  EXPECT_EQ(UrlHost("https://git.example/a.git"), "git.example");
  EXPECT_EQ(UrlHost("http://user:pw@10.0.0.1:8080/x"), "10.0.0.1");
  EXPECT_EQ(UrlHost("https://[::1]:8700"), "::1");
  EXPECT_EQ(UrlHost("http://127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(UrlHost("http://evil.example?@127.0.0.1/"), "evil.example");
  EXPECT_EQ(UrlHost("no scheme"), "");
  EXPECT_TRUE(IsLoopbackHost("127.0.0.2"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("127.example"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost(""));
}

TEST(TextTest, StripLineBreaksRemovesOnlyTrailingLineBreaks) {
  EXPECT_EQ(StripLineBreaks("s3cret\n"), "s3cret");
  EXPECT_EQ(StripLineBreaks("s3cret\r\n\n"), "s3cret");
  EXPECT_EQ(StripLineBreaks("a\nb\n"), "a\nb");
  EXPECT_EQ(StripLineBreaks(" pad \t"), " pad \t");
  EXPECT_EQ(StripLineBreaks("\n\r"), "");
  EXPECT_EQ(StripLineBreaks(""), "");
}

}  // namespace
}  // namespace sp
