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

  const auto env = EffectiveEnv(target, release, secrets).env;
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
  EXPECT_EQ(EffectiveEnv(target, release, {}).env.at("DB_URL"), "sqlite:///local");
  EXPECT_EQ(EffectiveEnv(target, ReleaseSpec{}, {}).env.at("DB_URL"), "postgres://from-inventory");
}

TEST(EffectiveEnvTest, ACredentialReferenceReplacesEarlierValuesAndYieldsToLaterOnes) {
  ResolvedTarget target;
  target.resource_env = {{"DB_URL", "postgres://from-inventory"}, {"API_KEY", "resource"}};
  ReleaseSpec release;
  release.env_refs = {{"DB_URL", "credential:db"}, {"API_KEY", "credential:api"}, {"ONLY_REF", "credential:x"}};
  target.deployment_env = {{"API_KEY", "deployment"}};
  const auto e = EffectiveEnv(target, release, {{"ONLY_REF", "secret"}});
  EXPECT_EQ(e.refs, (std::map<std::string, std::string>{{"DB_URL", "credential:db"}}));
  EXPECT_EQ(e.env, (std::map<std::string, std::string>{{"API_KEY", "deployment"}, {"ONLY_REF", "secret"}}))
      << "a reference leaves no earlier value behind; a later layer's value replaces the reference";
}

}  // namespace
}  // namespace sp
