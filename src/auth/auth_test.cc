#include "auth/auth.h"

#include <gtest/gtest.h>

namespace sp::auth {
namespace {

TEST(ScopeTest, ValidScopesAreAcceptedAndOthersNamedInTheError) {
  for (const char* ok : {"read", "read:web", "read:*", "build:web", "build:*", "deploy:demo/production",
                         "deploy:demo/*", "deploy:*/*", "inventory:write", "secrets:web", "secrets:*", "admin"}) {
    EXPECT_TRUE(ValidateScope(ok).has_value()) << ok;
  }
  for (const char* bad : {"", "root", "read:", "build", "deploy:demo", "deploy:demo/prod/x", "deploy:/prod",
                          "inventory", "inventory:read", "admin:x", "build:we b", "deploy:de mo/x", "secrets",
                          "secrets:", "secrets:a/b"}) {
    auto st = ValidateScope(bad);
    ASSERT_FALSE(st.has_value()) << bad;
    EXPECT_NE(st.error().message.find(std::string("'") + bad + "'"), std::string::npos) << st.error().message;
  }
}

// Every need against every kind of scope: the table of who may do what.
TEST(ScopeTest, EachScopeGrantsExactlyItsNeeds) {
  struct Case {
    std::vector<std::string> scopes;
    Need need;
    std::string object;
    bool allowed;
  };
  const std::vector<Case> cases = {
      {{"admin"}, Need::kAdmin, "", true},
      {{"admin"}, Need::kDeploy, "demo/production", true},
      {{"admin"}, Need::kInventoryWrite, "", true},
      {{"read"}, Need::kRead, "", true},
      {{"read"}, Need::kRead, "web", true},
      {{"read"}, Need::kBuild, "web", false},
      {{"read"}, Need::kDeploy, "demo/integration", false},
      {{"read"}, Need::kInventoryWrite, "", false},
      {{"read"}, Need::kAdmin, "", false},
      {{"read:web"}, Need::kRead, "web", true},
      {{"read:web"}, Need::kRead, "api", false},
      {{"read:web"}, Need::kRead, "", false},  // A list of everything needs plain read.
      {{"read:*"}, Need::kRead, "api", true},
      {{"build:web"}, Need::kBuild, "web", true},
      {{"build:web"}, Need::kBuild, "api", false},
      {{"build:web"}, Need::kRead, "web", true},
      {{"build:web"}, Need::kRead, "", false},
      {{"build:*"}, Need::kBuild, "api", true},
      {{"build:web"}, Need::kDeploy, "demo/integration", false},
      {{"deploy:demo/integration"}, Need::kDeploy, "demo/integration", true},
      {{"deploy:demo/integration"}, Need::kDeploy, "demo/production", false},
      {{"deploy:demo/integration"}, Need::kDeploy, "other/integration", false},
      {{"deploy:demo/*"}, Need::kDeploy, "demo/production", true},
      {{"deploy:demo/*"}, Need::kDeploy, "shop/production", false},
      {{"deploy:*/*"}, Need::kDeploy, "shop/production", true},
      {{"deploy:demo/*"}, Need::kDeploy, "demo", false},
      {{"deploy:demo/integration"}, Need::kRead, "", false},
      {{"deploy:demo/integration"}, Need::kAdmin, "", false},
      {{"inventory:write"}, Need::kInventoryWrite, "", true},
      {{"inventory:write"}, Need::kAdmin, "", false},
      {{"inventory:write"}, Need::kRead, "", false},
      {{"read", "build:web"}, Need::kBuild, "web", true},
      {{"secrets:web"}, Need::kSecrets, "web", true},
      {{"secrets:web"}, Need::kSecrets, "api", false},
      {{"secrets:*"}, Need::kSecrets, "api", true},
      {{"secrets:web"}, Need::kRead, "web", false},
      {{"secrets:web"}, Need::kBuild, "web", false},
      {{"build:web", "read", "inventory:write"}, Need::kSecrets, "web", false},
      {{"admin"}, Need::kSecrets, "web", true},
      {{}, Need::kRead, "", false},
      {{"admin"}, Need::kPublic, "", true},
      {{"read"}, Need::kAgent, "", false},
  };
  for (const auto& c : cases) {
    std::string scopes;
    for (const auto& s : c.scopes) scopes += s + " ";
    EXPECT_EQ(Allows(c.scopes, c.need, c.object), c.allowed)
        << "[" << scopes << "] " << NeedName(c.need) << " on '" << c.object << "'";
  }
}

TEST(ScopeTest, LiveMeansNeitherRevokedNorExpired) {
  ApiToken t;
  EXPECT_TRUE(Live(t, 1000));
  t.expires_ms = 2000;
  EXPECT_TRUE(Live(t, 1999));
  EXPECT_FALSE(Live(t, 2000));
  t.expires_ms = 0;
  t.revoked_ms = 5;
  EXPECT_FALSE(Live(t, 1000));
}

TEST(ScopeTest, NewSecretsAre32RandomBytesInHex) {
  auto a = NewTokenSecret(), b = NewTokenSecret();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 4u + 64u);
  EXPECT_EQ(a->rfind("spt_", 0), 0u);
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace sp::auth
