// The inventory's structs as JSON: one serializer per wire shape, beside
// the structs (inventory.h). The shape is the inventory file's schema
// (docs/inventory.md): fields equal to their defaults are left out, and
// every reader fills them back in. The same shapes travel in the inventory
// service's documents and answers, in resolve answers and in frozen plans.
//
// The *FromJson readers are for documents that were validated when written
// (the store's, a plan's, the server's answers): they check types only, and
// throw nlohmann::json::exception on a document of another shape; callers
// catch it at their boundary.
#pragma once

#include <nlohmann/json.hpp>

#include "inventory/inventory.h"
#include "inventory/store.h"

namespace sp {

using WireDoc = nlohmann::ordered_json;

WireDoc HostToJson(const HostSpec& h);
HostSpec HostFromJson(const nlohmann::json& j);

WireDoc LoadBalancerToJson(const LoadBalancerSpec& lb);
LoadBalancerSpec LoadBalancerFromJson(const nlohmann::json& j);

WireDoc BastionToJson(const BastionSpec& b);
BastionSpec BastionFromJson(const nlohmann::json& j);

// The `ssh:` mapping (its presence turns SSH on; `enabled` is not written).
WireDoc SshAccessToJson(const SshAccess& a);
SshAccess SshAccessFromJson(const nlohmann::json& j);

// A resolve answer: the target's scope and network, `bastion` and `ssh`
// (null when absent or off), every load balancer with a server name for
// every host, the hosts, `env_layers` {resources, deployment}, docker_host
// and base_dir.
WireDoc ResolvedTargetToJson(const ResolvedTarget& t);
ResolvedTarget ResolvedTargetFromJson(const nlohmann::json& j);

WireDoc ClaimToJson(const ClaimRecord& c);

// Durations as the file writes them: "<n>s" or "<n>ms".
std::string WireDuration(int64_t ms);
int64_t WireDurationMs(const std::string& text);

}  // namespace sp
