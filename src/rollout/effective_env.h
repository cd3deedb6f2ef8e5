// The environment of a release's container or process, computed once per
// rollout and frozen in its plan (CONTRACTS "Effective configuration").
#pragma once

#include <map>
#include <string>

#include "inventory/inventory.h"
#include "config/service_config.h"

namespace sp {

// Merges, later layers winning on equal names:
//   stack resources (target.resource_env, e.g. DB_URL)
//   < release defaults (release.env from sallyport.yml)
//   < deployment overrides (target.deployment_env: deployment env, then release env in the inventory)
//   < secrets.
// A name set by a reference in sallyport.yml (release.env_refs) stays a
// reference unless a later layer sets it.
struct EffectiveEnvironment {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> refs;  // NAME -> "credential:C": resolved when the app starts.
};
EffectiveEnvironment EffectiveEnv(const ResolvedTarget& target, const ReleaseSpec& release,
                                  const std::map<std::string, std::string>& secrets);

}  // namespace sp
