#include "hooks/system_hook_runner.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <strings.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/curl_global.h"
#include "core/text.h"

namespace sp {
namespace {

constexpr size_t kMaxOutput = 4096;

std::string Tail(std::string s) {
  if (s.size() > kMaxOutput) s = "..." + s.substr(s.size() - kMaxOutput);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string EnvName(const std::string& var) {
  std::string out = "SALLYPORT_";
  for (char c : var) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t n = size * nmemb;
  body->append(data, std::min(n, kMaxOutput - std::min(kMaxOutput, body->size())));
  return n;
}

struct Answer {
  CURLcode rc = CURLE_OK;
  long status = 0;
  std::string body, error;
};

Answer Send(const HookSpec& hook, const std::vector<std::string>& headers, const std::string& body,
            int64_t timeout_ms) {
  Answer a;
  CURL* curl = curl_easy_init();
  if (!curl) {
    a.rc = CURLE_FAILED_INIT;
    a.error = "curl_easy_init failed";
    return a;
  }
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, hook.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, hook.method.c_str());
  if (hook.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (IsLoopbackHost(UrlHost(hook.url))) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, timeout_ms)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sallyport-hook");
  a.rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
  if (a.rc != CURLE_OK) a.error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(a.rc));
  curl_easy_cleanup(curl);
  curl_slist_free_all(list);
  return a;
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
    : processes_(processes), clock_(clock), read_ref_(std::move(read_ref)) {
  CurlGlobalInitOnce();
}

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
  const int64_t deadline = clock_.MonotonicMs() + hook.timeout_ms;
  Millis backoff(100);
  for (int attempt = 1;; ++attempt) {
    Answer a = Send(hook, headers, body, deadline - clock_.MonotonicMs());
    const std::string said = a.status ? "HTTP " + std::to_string(a.status) + (a.body.empty() ? "" : ": " + Tail(a.body))
                                      : a.error;
    if (a.rc == CURLE_OK && a.status >= 200 && a.status < 300) return said;
    // Retried: nothing answered, the receiver is busy, or it failed on its side.
    const bool retry = a.status == 0 ? a.rc == CURLE_COULDNT_CONNECT : a.status == 429 || a.status >= 500;
    const int64_t left = deadline - clock_.MonotonicMs();
    if (!retry || left <= backoff.count()) {
      const bool timed_out = a.rc == CURLE_OPERATION_TIMEDOUT || (retry && left <= backoff.count());
      return Err(timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
                 what + ": " + said + " (attempt " + std::to_string(attempt) + ")");
    }
    clock_.Sleep(backoff);
    backoff = std::min<Millis>(backoff * 2, Millis(2000));
  }
}

}  // namespace sp
