#include "rollout/effective_env.h"

namespace sp {

std::map<std::string, std::string> EffectiveEnv(const ResolvedTarget& target, const ReleaseSpec& release,
                                                const std::map<std::string, std::string>& secrets) {
  std::map<std::string, std::string> env = target.resource_env;
  for (const auto* layer : {&release.env, &target.deployment_env, &secrets}) {
    for (const auto& [k, v] : *layer) env[k] = v;
  }
  return env;
}

}  // namespace sp
