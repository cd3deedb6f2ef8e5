#include "hooks/system_hook_runner.h"

#include <algorithm>
#include <cctype>
#include <strings.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "hooks/http_call.h"

namespace sp {
namespace {

constexpr size_t kMaxOutput = 4096;

std::string Tail(std::string s) {
  if (s.size() > kMaxOutput) s = "..." + s.substr(s.size() - kMaxOutput);
  return StripLineBreaks(std::move(s));
}

std::string EnvName(const std::string& var) {
  std::string out = "SALLYPORT_";
  for (char c : var) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string ExpandHookTemplate(const std::string& body, const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size();) {
    if (body[i] == '{') {
      const size_t close = body.find('}', i + 1);
      if (close != std::string::npos) {
        auto it = vars.find(body.substr(i + 1, close - i - 1));
        if (it != vars.end()) {
          const std::string quoted = nlohmann::json(it->second).dump();
          out += quoted.substr(1, quoted.size() - 2);
          i = close + 1;
          continue;
        }
      }
    }
    out += body[i++];
  }
  return out;
}

SystemHookRunner::SystemHookRunner(ProcessRunner& processes, Clock& clock,
                                   std::function<Result<std::string>(const std::string& ref)> read_ref)
    : processes_(processes), clock_(clock), read_ref_(std::move(read_ref)) {}

Result<std::string> SystemHookRunner::Run(const HookSpec& hook, const HookCall& call) {
  return hook.command.empty() ? RunHttpHook(hook, call) : RunCommandHook(hook, call);
}

Result<std::string> SystemHookRunner::RunCommandHook(const HookSpec& hook, const HookCall& call) {
  CommandSpec c;
  c.argv = hook.command;
  c.inherit_env = false;
  for (const char* keep : {"PATH", "LANG", "HOME"}) {
    if (const char* v = std::getenv(keep)) c.env[keep] = v;
  }
  if (!c.env.count("PATH")) c.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& [k, v] : call.vars) c.env[EnvName(k)] = v;
  c.env["SALLYPORT_HOOK"] = hook.name;
  c.env["SALLYPORT_HOOK_POINT"] = call.point;
  c.env["SALLYPORT_IDEMPOTENCY_KEY"] = call.key;
  c.timeout = Millis(hook.timeout_ms);
  auto r = processes_.Run(c);
  const std::string what = "hook " + hook.name + " (" + FormatArgv(hook.command) + ")";
  if (!r) return Err(r.error().Wrap(what));
  std::string output = Tail(r->out + (r->out.empty() || r->err.empty() ? "" : "\n") + r->err);
  if (!r->ok()) {
    return Err(r->timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
               what + ": " + r->Describe() + (output.empty() ? "" : "; output:\n" + output));
  }
  return output;
}

Result<std::string> SystemHookRunner::RunHttpHook(const HookSpec& hook, const HookCall& call) {
  const std::string what = "hook " + hook.name + " (" + hook.method + " " + hook.url + ")";
  std::vector<std::string> headers;
  bool content_type = false;
  for (const auto& [k, v] : hook.headers) {
    headers.push_back(k + ": " + v);
    content_type |= strcasecmp(k.c_str(), "Content-Type") == 0;
  }
  for (const auto& [k, ref] : hook.header_refs) {
    auto v = read_ref_ ? read_ref_(ref) : Result<std::string>(Err(ErrorCode::kUnavailable, "no secret reader"));
    if (!v) return Err(ErrorCode::kUnavailable, what + ": header " + k + ": " + v.error().message);
    if (!IsSafeValue(*v) || v->find('\r') != std::string::npos) {
      return Err(ErrorCode::kInvalidArgument, what + ": header " + k + ": the secret is not one line");
    }
    headers.push_back(k + ": " + *v);
  }
  headers.push_back("Idempotency-Key: " + call.key);
  std::map<std::string, std::string> vars = call.vars;
  vars["hook"] = hook.name;
  vars["point"] = call.point;
  vars["key"] = call.key;
  const std::string body = ExpandHookTemplate(hook.body, vars);
  if (!content_type && !body.empty()) headers.push_back("Content-Type: application/json");
  HttpRequest req;
  req.method = hook.method;
  req.url = hook.url;
  req.headers = headers;
  req.body = body;
  req.max_answer = kMaxOutput;
  req.user_agent = "sallyport-hook";
  int attempts = 0;
  const HttpAnswer a = SendRetrying(req, clock_, hook.timeout_ms, Millis(2000), &attempts);
  const std::string said = a.status ? "HTTP " + std::to_string(a.status) + (a.body.empty() ? "" : ": " + Tail(a.body))
                                    : a.error;
  if (a.ok()) return said;
  return Err(a.timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
             what + ": " + said + " (attempt " + std::to_string(attempts) + ")");
}

}  // namespace sp
