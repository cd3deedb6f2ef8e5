#include "rollout/effective_env.h"

namespace sp {

EffectiveEnvironment EffectiveEnv(const ResolvedTarget& target, const ReleaseSpec& release,
                                  const std::map<std::string, std::string>& secrets) {
  EffectiveEnvironment out;
  out.env = target.resource_env;
  for (const auto& [k, v] : release.env) out.env[k] = v;
  for (const auto& [k, ref] : release.env_refs) {
    out.env.erase(k);
    out.refs[k] = ref;
  }
  for (const auto* layer : {&target.deployment_env, &secrets}) {
    for (const auto& [k, v] : *layer) {
      out.env[k] = v;
      out.refs.erase(k);
    }
  }
  return out;
}

}  // namespace sp
