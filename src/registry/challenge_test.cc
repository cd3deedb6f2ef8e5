#include "registry/challenge.h"

#include <gtest/gtest.h>

namespace sp::registry {
namespace {

TEST(RegistryChallengeTest, ParsesBearerAndBasicChallenges) {
  auto b = ParseChallenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->scheme, "bearer");
  EXPECT_EQ(b->Param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(b->Param("service"), "registry.docker.io");
  EXPECT_EQ(b->Param("scope"), "repository:library/busybox:pull");

  auto basic = ParseChallenge("Basic realm=\"sp \\\"test\\\"\"");
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->scheme, "basic");
  EXPECT_EQ(basic->Param("realm"), "sp \"test\"");

  auto spaced = ParseChallenge("  BEARER  Realm = \"https://r/t\" , service=reg ,error=\"insufficient_scope\"");
  ASSERT_TRUE(spaced);
  EXPECT_EQ(spaced->scheme, "bearer");
  EXPECT_EQ(spaced->Param("realm"), "https://r/t");
  EXPECT_EQ(spaced->Param("service"), "reg");
  EXPECT_EQ(spaced->Param("error"), "insufficient_scope");

  EXPECT_FALSE(ParseChallenge(""));
  EXPECT_FALSE(ParseChallenge("Bearer realm=\"unterminated"));
}

TEST(RegistryChallengeTest, RealmUrlsAreHttpWithAHostAndNoUserinfo) {
  auto u = ParseHttpUrl("https://auth.docker.io/token?x=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "auth.docker.io");
  EXPECT_EQ(u->port, 0);
  auto p = ParseHttpUrl("http://127.0.0.1:5001/auth");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->HostPort(), "127.0.0.1:5001");
  auto v6 = ParseHttpUrl("https://[::1]:8443/t");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->HostPort(), "[::1]:8443");
  for (const char* bad : {"ftp://x/t", "https://user:pw@evil/t", "https:///t", "https://h:0/", "https://h:x/",
                          "realm", "https://h h/"}) {
    EXPECT_FALSE(ParseHttpUrl(bad)) << bad;
  }
  EXPECT_EQ(HostOnly("registry.local:5000"), "registry.local");
  EXPECT_EQ(HostOnly("[::1]:5000"), "::1");
  EXPECT_EQ(HostOnly("ghcr.io"), "ghcr.io");
}

TEST(RegistryChallengeTest, CredentialsGoOnlyToTheRegistrysOwnRealmOrAnAllowedOne) {
  auto realm = [](const char* url) { return *ParseHttpUrl(url); };
  // Docker Hub: the API host and its auth service, built in.
  EXPECT_TRUE(RealmMayGetCredentials("registry-1.docker.io", realm("https://auth.docker.io/token"), {}));
  EXPECT_FALSE(RealmMayGetCredentials("ghcr.io", realm("https://auth.docker.io/token"), {}));
  // The registry's own host (any port), as GHCR, Harbor and Gitea run it.
  EXPECT_TRUE(RealmMayGetCredentials("ghcr.io", realm("https://ghcr.io/token"), {}));
  EXPECT_TRUE(RealmMayGetCredentials("reg.example:5000", realm("https://reg.example:5001/auth"), {}));
  // Anywhere else only when the credential lists it.
  EXPECT_FALSE(RealmMayGetCredentials("reg.example:5000", realm("https://evil.example/token"), {}));
  EXPECT_FALSE(RealmMayGetCredentials("reg.example:5000", realm("https://reg.example.evil.example/t"), {}));
  EXPECT_TRUE(RealmMayGetCredentials("reg.example:5000", realm("https://sso.example/token"), {"sso.example"}));
  EXPECT_TRUE(RealmMayGetCredentials("reg.example:5000", realm("https://sso.example:8443/token"), {"sso.example:443"}));
  // Over TLS, or on loopback.
  EXPECT_TRUE(CredentialsTravelSafely("ghcr.io", true, realm("https://ghcr.io/token")));
  EXPECT_FALSE(CredentialsTravelSafely("ghcr.io", true, realm("http://ghcr.io/token")));
  EXPECT_FALSE(CredentialsTravelSafely("reg.example:5000", false, realm("https://reg.example/token")));
  EXPECT_TRUE(CredentialsTravelSafely("127.0.0.1:5000", false, realm("http://127.0.0.1:5001/token")));
}

}  // namespace
}  // namespace sp::registry
