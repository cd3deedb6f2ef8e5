// The port through which a rollout runs its hooks (HookSpec, inventory.h):
// an argv command or an HTTP call, made by whoever runs the rollout. The
// engine fences, journals and orders them (rollout/engine_hooks.cc); the
// adapter (system_hook_runner.h) only runs one to its end.
#pragma once

#include <map>
#include <string>

#include "core/error.h"
#include "inventory/inventory.h"

namespace sp {

struct HookCall {
  std::string point;  // "pre_rollout", ... (inventory/hooks.h kHookPoints)
  // At-least-once delivery's idempotency key: "<rollout id>/<point>/<hook>"
  // (and "/<host>" for a host's hooks). The same key on every retry and
  // after a resume, so a receiver sees one distinct key per hook and rollout.
  std::string key;
  // What the hook may know: rollout, stack, release, deployment, version,
  // artifact, and for a host's hooks host, address, port. A command gets
  // them as SALLYPORT_<NAME> (and SALLYPORT_HOOK, SALLYPORT_IDEMPOTENCY_KEY);
  // an HTTP body template as {name} (and {hook}, {point}, {key}).
  std::map<std::string, std::string> vars;
};

class HookRunner {
 public:
  virtual ~HookRunner() = default;
  // Runs `hook` to its end within hook.timeout_ms (an HTTP hook's retries
  // included). Its output (the tail of a command's, or an HTTP answer's
  // status and body), or an error naming the hook and the cause with that
  // output. Never holds a secret header's value in either.
  virtual Result<std::string> Run(const HookSpec& hook, const HookCall& call) = 0;
};

}  // namespace sp
