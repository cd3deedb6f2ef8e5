// What an agent checks of a frozen plan before it acts on any of it: a plan
// arrives over the network, so every field that reaches a command line, a
// socket or a host is validated again (the server made it, but the agent
// trusts no wire). The first field that fails names itself.
#pragma once

#include "core/error.h"
#include "rollout/plan.h"

namespace sp {

// kInvalidArgument naming the field (e.g. "/hosts/1/address: ...") when the
// plan holds a malformed name, address or port, an engine address other
// than a local unix socket, a host key line not bound to the bastion's own
// name (wildcards, @cert-authority and @revoked markers included), a path
// that is not absolute, a volume, health path or registry reference of
// another shape than the service file allows, or a NUL or newline in an
// argument or env value.
Status CheckPlan(const RolloutPlan& plan);

}  // namespace sp
