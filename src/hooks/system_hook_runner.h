// Runs hooks on this machine: a command by argv (its own process group,
// killed at the timeout) with only PATH, LANG and the SALLYPORT_* values of
// the call in its environment (nothing of ours: an agent's token stays
// here); an HTTP call with libcurl (no redirect followed, no proxy for
// loopback), retried with backoff on a refused connection, 429 and 5xx
// until the hook's timeout, with the call's Idempotency-Key header.
#pragma once

#include <functional>
#include <string>

#include "core/clock.h"
#include "core/subprocess.h"
#include "hooks/hook_runner.h"

namespace sp {

// A hook body template with {name} replaced by vars[name], JSON-escaped
// (without quotes): a value can never add JSON structure. Other braces
// (a JSON body's own) are left as they are.
std::string ExpandHookTemplate(const std::string& body, const std::map<std::string, std::string>& vars);

class SystemHookRunner final : public HookRunner {
 public:
  // `read_ref` reads a header's secret reference ("env:NAME", "file:/path").
  SystemHookRunner(ProcessRunner& processes, Clock& clock,
                   std::function<Result<std::string>(const std::string& ref)> read_ref);
  Result<std::string> Run(const HookSpec& hook, const HookCall& call) override;

 private:
  Result<std::string> RunCommandHook(const HookSpec& hook, const HookCall& call);
  Result<std::string> RunHttpHook(const HookSpec& hook, const HookCall& call);

  ProcessRunner& processes_;
  Clock& clock_;
  std::function<Result<std::string>(const std::string&)> read_ref_;
};

}  // namespace sp
