#include "inventory/hooks.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "config/yaml_util.h"
#include "core/text.h"
#include "inventory/wire.h"

namespace sp {
namespace {

using yaml::Map;
using yaml::Reader;
using yaml::Val;

const std::vector<std::string> kHookKeys = {"name", "command", "http", "timeout", "on_error"};
const std::vector<std::string> kHttpKeys = {"method", "url", "headers", "body"};
const std::vector<std::string> kRefKeys = {"env", "file"};
const std::vector<std::string> kSilenceKeys = {"alertmanager", "matchers", "duration", "timeout", "on_error"};
const std::vector<std::string> kMatcherKeys = {"name", "value", "regex", "equal"};
constexpr int64_t kMinSilenceMs = 10'000;
constexpr int64_t kMaxSilenceMs = 10 * 60'000;
constexpr int64_t kMaxTimeoutMs = 10 * 60'000;
constexpr size_t kMaxBody = 64 * 1024;

bool IsHeaderName(const std::string& s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

bool IsSecretRef(const std::string& ref) {
  if (StartsWith(ref, "env:")) return IsValidEnvName(ref.substr(4));
  return StartsWith(ref, "file:/") && IsSafeValue(ref);
}

Result<std::string> AsRef(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kRefKeys));
  if (m.entries.size() != 1) return Err(r.Fail(v, "set exactly one of 'env' or 'file'"));
  if (const Val* f = m.Get("file")) {
    SP_ASSIGN_OR_RETURN(std::string path, r.AsAbsolutePath(*f));
    return "file:" + path;
  }
  SP_ASSIGN_OR_RETURN(std::string name, r.AsString(*m.Get("env")));
  if (!IsValidEnvName(name)) return Err(r.Fail(*m.Get("env"), "invalid environment variable name '" + name + "'"));
  return "env:" + name;
}

Result<HookSpec> ParseHook(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kHookKeys));
  HookSpec h;
  const Val* name = m.Get("name");
  if (!name) return Err(r.Missing(m, "name", " (part of the hook's idempotency key)"));
  SP_ASSIGN_OR_RETURN(h.name, r.AsName(*name));
  const Val* cmd = m.Get("command");
  const Val* http = m.Get("http");
  if (!!cmd == !!http) return Err(r.Fail(v, "set exactly one of 'command' (argv) and 'http'"));
  if (cmd) {
    SP_ASSIGN_OR_RETURN(h.command, r.AsStringList(*cmd));
    if (h.command.empty() || h.command[0].empty()) return Err(r.Fail(*cmd, "the command needs a program"));
  } else {
    SP_ASSIGN_OR_RETURN(Map hm, r.AsMap(*http, kHttpKeys));
    if (const Val* me = hm.Get("method")) { SP_ASSIGN_OR_RETURN(h.method, r.AsString(*me)); }
    const Val* url = hm.Get("url");
    if (!url) return Err(r.Missing(hm, "url"));
    SP_ASSIGN_OR_RETURN(h.url, r.AsNonEmptyString(*url));
    if (const Val* hv = hm.Get("headers")) {
      SP_ASSIGN_OR_RETURN(Map hs, r.AsMap(*hv));
      for (const auto& [k, val] : hs.entries) {
        if (val.node.IsMap()) {
          SP_ASSIGN_OR_RETURN(h.header_refs[k], AsRef(r, val));
        } else {
          SP_ASSIGN_OR_RETURN(h.headers[k], r.AsSafeString(val));
        }
      }
    }
    if (const Val* b = hm.Get("body")) { SP_ASSIGN_OR_RETURN(h.body, r.AsString(*b)); }
  }
  if (const Val* t = m.Get("timeout")) {
    SP_ASSIGN_OR_RETURN(Millis ms, r.AsDuration(*t));
    h.timeout_ms = ms.count();
  }
  if (const Val* e = m.Get("on_error")) { SP_ASSIGN_OR_RETURN(h.on_error, r.AsString(*e)); }
  if (Status ok = CheckHook(h); !ok) return Err(r.Fail(v, ok.error().message));
  return h;
}

bool IsLabelName(const std::string& s) {
  return !s.empty() && s.size() <= 128 && !std::isdigit(static_cast<unsigned char>(s[0])) &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

Result<SilenceSpec> ParseSilence(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kSilenceKeys));
  SilenceSpec s;
  const Val* url = m.Get("alertmanager");
  if (!url) return Err(r.Missing(m, "alertmanager", " (Alertmanager's URL, e.g. http://alertmanager:9093)"));
  SP_ASSIGN_OR_RETURN(s.url, r.AsNonEmptyString(*url));
  if (const Val* ms = m.Get("matchers")) {
    SP_ASSIGN_OR_RETURN(std::vector<Val> items, r.AsList(*ms));
    for (const Val& item : items) {
      SP_ASSIGN_OR_RETURN(Map mm, r.AsMap(item, kMatcherKeys));
      SilenceMatcher x;
      const Val* name = mm.Get("name");
      const Val* value = mm.Get("value");
      if (!name) return Err(r.Missing(mm, "name"));
      if (!value) return Err(r.Missing(mm, "value"));
      SP_ASSIGN_OR_RETURN(x.name, r.AsString(*name));
      SP_ASSIGN_OR_RETURN(x.value, r.AsSafeString(*value));
      if (const Val* re = mm.Get("regex")) { SP_ASSIGN_OR_RETURN(x.regex, r.AsBool(*re)); }
      if (const Val* eq = mm.Get("equal")) { SP_ASSIGN_OR_RETURN(x.equal, r.AsBool(*eq)); }
      s.matchers.push_back(std::move(x));
    }
    if (s.matchers.empty()) return Err(r.Fail(*ms, "leave 'matchers' out for the defaults, or name at least one"));
  }
  if (const Val* d = m.Get("duration")) {
    SP_ASSIGN_OR_RETURN(Millis ms, r.AsDuration(*d));
    s.duration_ms = ms.count();
  }
  if (const Val* t = m.Get("timeout")) {
    SP_ASSIGN_OR_RETURN(Millis ms, r.AsDuration(*t));
    s.timeout_ms = ms.count();
  }
  if (const Val* e = m.Get("on_error")) { SP_ASSIGN_OR_RETURN(s.on_error, r.AsString(*e)); }
  if (Status ok = CheckSilence(s); !ok) return Err(r.Fail(v, ok.error().message));
  return s;
}

}  // namespace

std::vector<SilenceMatcher> DefaultSilenceMatchers() {
  return {{"release", "{release}"}, {"deployment", "{deployment}"}, {"host", "{hosts}", /*regex=*/true}};
}

Status CheckSilence(const SilenceSpec& s) {
  auto bad = [](const std::string& what) { return Err(ErrorCode::kInvalidArgument, "silence: " + what); };
  if ((!StartsWith(s.url, "https://") && !StartsWith(s.url, "http://")) || UrlHost(s.url).empty() ||
      !IsSafeValue(s.url)) {
    return bad("alertmanager must be an http:// or https:// URL with a host, on one line");
  }
  if (s.duration_ms < kMinSilenceMs || s.duration_ms > kMaxSilenceMs) {
    return bad("duration must be between 10s and 10m (a dead rollout's silence ends by itself within it)");
  }
  if (s.timeout_ms < 1 || s.timeout_ms > 60'000) return bad("timeout must be between 1ms and 1m");
  if (s.on_error != "abort" && s.on_error != "warn") return bad("on_error must be abort or warn");
  for (const auto& x : s.matchers) {
    if (!IsLabelName(x.name)) return bad("matcher '" + x.name + "': a label name is [a-zA-Z_][a-zA-Z0-9_]*");
    if (x.value.empty() || !IsSafeValue(x.value) || x.value.find('\r') != std::string::npos || x.value.size() > 1024) {
      return bad("matcher '" + x.name + "': a value is one non-empty line");
    }
  }
  return Ok();
}

const std::vector<HookSpec>& HooksAt(const HooksSpec& h, std::string_view point) {
  return HooksAt(const_cast<HooksSpec&>(h), point);
}

std::vector<HookSpec>& HooksAt(HooksSpec& h, std::string_view point) {
  if (point == "pre_rollout") return h.pre_rollout;
  if (point == "post_rollout") return h.post_rollout;
  if (point == "pre_host") return h.pre_host;
  if (point == "post_host") return h.post_host;
  SP_CHECK(point == "on_failure");
  return h.on_failure;
}

Status CheckHook(const HookSpec& h) {
  auto bad = [&](const std::string& what) { return Err(ErrorCode::kInvalidArgument, "hook '" + h.name + "': " + what); };
  if (!IsValidName(h.name)) return bad("invalid name (expected [a-z0-9][a-z0-9-]*)");
  if (h.command.empty() == h.url.empty()) return bad("set exactly one of a command and a URL");
  if (h.timeout_ms < 1 || h.timeout_ms > kMaxTimeoutMs) return bad("timeout must be between 1ms and 10m");
  if (h.on_error != "abort" && h.on_error != "warn") return bad("on_error must be abort or warn");
  if (!h.command.empty()) {
    if (h.command[0].empty()) return bad("the command needs a program");
    for (const auto& a : h.command) {
      if (a.find('\0') != std::string::npos) return bad("a command word holds a NUL byte");
    }
    if (!h.headers.empty() || !h.header_refs.empty() || !h.body.empty()) return bad("headers and body are for HTTP hooks");
    return Ok();
  }
  static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  if (!kMethods.count(h.method)) return bad("method must be one of GET, POST, PUT, PATCH, DELETE");
  const bool tls = StartsWith(h.url, "https://");
  if ((!tls && !StartsWith(h.url, "http://")) || UrlHost(h.url).empty() || !IsSafeValue(h.url)) {
    return bad("url must be http:// or https:// with a host, on one line");
  }
  if (!tls && !h.header_refs.empty() && !IsLoopbackHost(UrlHost(h.url))) {
    return bad("secret headers go over HTTPS only (plain http:// is allowed to loopback)");
  }
  for (const auto& [k, v] : h.headers) {
    if (!IsHeaderName(k) || !IsSafeValue(v) || v.find('\r') != std::string::npos) {
      return bad("header '" + k + "': names are letters, digits, '-' and '_', values one line");
    }
  }
  for (const auto& [k, ref] : h.header_refs) {
    if (!IsHeaderName(k) || h.headers.count(k)) return bad("header '" + k + "': invalid or set twice");
    if (!IsSecretRef(ref)) return bad("header '" + k + "': a reference is {env: NAME} or {file: /abs/path}");
  }
  if (h.body.size() > kMaxBody) return bad("body is longer than 64 KiB");
  return Ok();
}

Status CheckHooks(const HooksSpec& hooks) {
  for (std::string_view point : kHookPoints) {
    std::set<std::string> names;
    for (const auto& h : HooksAt(hooks, point)) {
      if (Status ok = CheckHook(h); !ok) return Err(ok.error().Wrap(std::string(point)));
      if (!names.insert(h.name).second) {
        return Err(ErrorCode::kInvalidArgument, std::string(point) + ": hook '" + h.name + "' is named twice");
      }
    }
  }
  if (hooks.silence) SP_TRY(CheckSilence(*hooks.silence));
  return Ok();
}

Result<HooksSpec> ParseHooks(const Reader& r, const Val& v) {
  std::vector<std::string> keys(std::begin(kHookPoints), std::end(kHookPoints));
  keys.push_back("silence");
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, keys));
  HooksSpec out;
  for (const auto& [point, lv] : m.entries) {
    if (point == "silence") {
      SP_ASSIGN_OR_RETURN(out.silence, ParseSilence(r, lv));
      continue;
    }
    SP_ASSIGN_OR_RETURN(std::vector<Val> items, r.AsList(lv));
    auto& list = HooksAt(out, point);
    for (const Val& item : items) {
      SP_ASSIGN_OR_RETURN(HookSpec h, ParseHook(r, item));
      if (std::any_of(list.begin(), list.end(), [&](const HookSpec& o) { return o.name == h.name; })) {
        return Err(r.Fail(item, "hook '" + h.name + "' is named twice under " + point));
      }
      list.push_back(std::move(h));
    }
  }
  return out;
}

nlohmann::ordered_json HooksToJson(const HooksSpec& hooks) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (std::string_view point : kHookPoints) {
    const auto& list = HooksAt(hooks, point);
    if (list.empty()) continue;
    auto& arr = out[std::string(point)] = nlohmann::ordered_json::array();
    for (const auto& h : list) {
      nlohmann::ordered_json j;
      j["name"] = h.name;
      if (!h.command.empty()) {
        j["command"] = h.command;
      } else {
        nlohmann::ordered_json http;
        http["method"] = h.method;
        http["url"] = h.url;
        nlohmann::ordered_json headers = nlohmann::ordered_json::object();
        for (const auto& [k, v] : h.headers) headers[k] = v;
        for (const auto& [k, ref] : h.header_refs) {
          const size_t colon = ref.find(':');
          headers[k] = {{ref.substr(0, colon), ref.substr(colon + 1)}};
        }
        if (!headers.empty()) http["headers"] = headers;
        if (!h.body.empty()) http["body"] = h.body;
        j["http"] = http;
      }
      if (h.timeout_ms != HookSpec{}.timeout_ms) j["timeout"] = WireDuration(h.timeout_ms);
      if (h.on_error != HookSpec{}.on_error) j["on_error"] = h.on_error;
      arr.push_back(j);
    }
  }
  if (const auto& s = hooks.silence) {
    nlohmann::ordered_json j;
    j["alertmanager"] = s->url;
    if (!s->matchers.empty()) {
      auto& arr = j["matchers"] = nlohmann::ordered_json::array();
      for (const auto& x : s->matchers) {
        nlohmann::ordered_json mj = {{"name", x.name}, {"value", x.value}};
        if (x.regex) mj["regex"] = true;
        if (!x.equal) mj["equal"] = false;
        arr.push_back(mj);
      }
    }
    if (s->duration_ms != SilenceSpec{}.duration_ms) j["duration"] = WireDuration(s->duration_ms);
    if (s->timeout_ms != SilenceSpec{}.timeout_ms) j["timeout"] = WireDuration(s->timeout_ms);
    if (s->on_error != SilenceSpec{}.on_error) j["on_error"] = s->on_error;
    out["silence"] = j;
  }
  return out;
}

HooksSpec HooksFromJson(const nlohmann::json& j) {
  HooksSpec out;
  for (std::string_view point : kHookPoints) {
    const std::string p(point);
    if (!j.contains(p)) continue;
    for (const auto& hj : j.at(p)) {
      HookSpec h;
      h.name = hj.at("name");
      if (hj.contains("command")) h.command = hj["command"].get<std::vector<std::string>>();
      if (hj.contains("http")) {
        const auto& http = hj["http"];
        h.method = http.value("method", std::string("POST"));
        h.url = http.at("url");
        h.body = http.value("body", std::string());
        if (http.contains("headers")) {
          for (const auto& [k, v] : http["headers"].items()) {
            if (v.is_object()) {  // {env: NAME} or {file: /path}: one entry.
              for (const auto& ref : v.items()) h.header_refs[k] = ref.key() + ":" + ref.value().get<std::string>();
            } else {
              h.headers[k] = v.get<std::string>();
            }
          }
        }
      }
      if (hj.contains("timeout")) h.timeout_ms = WireDurationMs(hj["timeout"]);
      h.on_error = hj.value("on_error", h.on_error);
      HooksAt(out, point).push_back(std::move(h));
    }
  }
  if (j.contains("silence")) {
    const auto& sj = j["silence"];
    SilenceSpec s;
    s.url = sj.at("alertmanager");
    if (sj.contains("matchers")) {
      for (const auto& mj : sj["matchers"]) {
        s.matchers.push_back({mj.at("name"), mj.at("value"), mj.value("regex", false), mj.value("equal", true)});
      }
    }
    if (sj.contains("duration")) s.duration_ms = WireDurationMs(sj["duration"]);
    if (sj.contains("timeout")) s.timeout_ms = WireDurationMs(sj["timeout"]);
    s.on_error = sj.value("on_error", s.on_error);
    out.silence = std::move(s);
  }
  return out;
}

}  // namespace sp
