#include "core/image_ref.h"

#include <gtest/gtest.h>

#include <vector>

namespace sp {
namespace {

const std::string kHex(64, 'a');

ImageRef Parse(const std::string& s) {
  auto r = ParseImageRef(s);
  EXPECT_TRUE(r) << s << ": " << (r ? "" : r.error().message);
  return r ? *r : ImageRef{};
}

TEST(ImageRefTest, DockerHubShortNamesGetTheHostAndLibrary) {
  ImageRef b = Parse("busybox");
  EXPECT_EQ(b.domain, "docker.io");
  EXPECT_EQ(b.path, "library/busybox");
  EXPECT_EQ(b.Reference(), "latest");
  EXPECT_EQ(b.ApiHost(), "registry-1.docker.io");
  EXPECT_EQ(b.Full(), "docker.io/library/busybox");

  ImageRef t = Parse("myteam/api:integration");
  EXPECT_EQ(t.domain, "docker.io");
  EXPECT_EQ(t.path, "myteam/api");
  EXPECT_EQ(t.tag, "integration");
  EXPECT_EQ(t.Reference(), "integration");

  ImageRef d = Parse("docker.io/library/busybox@sha256:" + kHex);
  EXPECT_EQ(d.domain, "docker.io");
  EXPECT_EQ(d.path, "library/busybox");
  EXPECT_EQ(d.Reference(), "sha256:" + kHex);

  EXPECT_EQ(Parse("index.docker.io/library/busybox").domain, "docker.io");
  EXPECT_EQ(Parse("docker.io/busybox").path, "library/busybox");
}

TEST(ImageRefTest, HostsPortsTagsAndDigests) {
  ImageRef l = Parse("localhost:5000/a/b/c:tag");
  EXPECT_EQ(l.domain, "localhost:5000");
  EXPECT_EQ(l.path, "a/b/c");
  EXPECT_EQ(l.tag, "tag");
  EXPECT_EQ(l.ApiHost(), "localhost:5000");

  ImageRef g = Parse("ghcr.io/org/app");
  EXPECT_EQ(g.domain, "ghcr.io");
  EXPECT_EQ(g.path, "org/app");
  EXPECT_EQ(g.Reference(), "latest");

  ImageRef both = Parse("127.0.0.1:5000/team/app:v2@sha256:" + kHex);
  EXPECT_EQ(both.domain, "127.0.0.1:5000");
  EXPECT_EQ(both.tag, "v2");
  EXPECT_EQ(both.Reference(), "sha256:" + kHex);  // The digest wins.
  EXPECT_EQ(both.Full(), "127.0.0.1:5000/team/app:v2@sha256:" + kHex);

  EXPECT_EQ(Parse("localhost/app").domain, "localhost");
  EXPECT_EQ(Parse("[::1]:5000/app").domain, "[::1]:5000");
  EXPECT_EQ(Parse("a__b/c-d--e.f_g").path, "a__b/c-d--e.f_g");
}

TEST(ImageRefTest, RefusesWhatDockerRefuses) {
  for (const std::string& bad : std::vector<std::string>{"", "Busybox", "team/App", "hello; rm -rf /", "$(reboot)", "-rm", "app:", "app:-x", "app@sha256:abc",
        "app@md5:" + kHex, "a//b", "/a", "a/", "app:" + std::string(129, 't'), "a..b", "a-", "reg.io/",
        "bad_host.io:99999x/app", std::string(300, 'a') + "/" + std::string(300, 'b')}) {
    auto r = ParseImageRef(bad);
    EXPECT_FALSE(r) << "'" << bad << "' should be refused";
    if (!r) { EXPECT_NE(r.error().message.find("invalid image reference"), std::string::npos); }
  }
  auto upper = ParseImageRef("team/App");
  ASSERT_FALSE(upper);
  EXPECT_NE(upper.error().message.find("lowercase"), std::string::npos);
}

}  // namespace
}  // namespace sp
