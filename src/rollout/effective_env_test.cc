#include "rollout/effective_env.h"

#include <gtest/gtest.h>

namespace sp {
namespace {

TEST(EffectiveEnvTest, LaterLayersWinInContractOrder) {
  ResolvedTarget target;
  target.resource_env = {{"DB_URL", "resource"}, {"A", "resource"}, {"B", "resource"}, {"C", "resource"}};
  ReleaseSpec release;
  release.env = {{"A", "release"}, {"B", "release"}, {"C", "release"}, {"ONLY_RELEASE", "release"}};
  target.deployment_env = {{"B", "deployment"}, {"C", "deployment"}, {"ONLY_DEPLOYMENT", "deployment"}};
  const std::map<std::string, std::string> secrets = {{"C", "secret"}, {"ONLY_SECRET", "secret"}};

  const auto env = EffectiveEnv(target, release, secrets);
  EXPECT_EQ(env, (std::map<std::string, std::string>{{"DB_URL", "resource"},
                                                      {"A", "release"},
                                                      {"B", "deployment"},
                                                      {"C", "secret"},
                                                      {"ONLY_RELEASE", "release"},
                                                      {"ONLY_DEPLOYMENT", "deployment"},
                                                      {"ONLY_SECRET", "secret"}}));
}

TEST(EffectiveEnvTest, ReleaseDefaultsOverrideResources) {
  ResolvedTarget target;
  target.resource_env = {{"DB_URL", "postgres://from-inventory"}};
  ReleaseSpec release;
  release.env = {{"DB_URL", "sqlite:///local"}};
  EXPECT_EQ(EffectiveEnv(target, release, {}).at("DB_URL"), "sqlite:///local");
  EXPECT_EQ(EffectiveEnv(target, ReleaseSpec{}, {}).at("DB_URL"), "postgres://from-inventory");
}

}  // namespace
}  // namespace sp
