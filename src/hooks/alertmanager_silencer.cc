#include "hooks/alertmanager_silencer.h"

#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "hooks/http_call.h"

namespace sp {

using nlohmann::json;

namespace {

constexpr size_t kMaxAnswer = 8 << 20;  // A list of every silence the Alertmanager holds.

std::string Base(const std::string& url) {
  std::string b = url;
  while (!b.empty() && b.back() == '/') b.pop_back();
  return b;
}

bool IsSilenceId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

}  // namespace

std::string FormatRfc3339Ms(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

int64_t ParseRfc3339Ms(const std::string& s) {
  std::tm tm{};
  int n = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &n) != 6) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ms = static_cast<int64_t>(::timegm(&tm)) * 1000;
  size_t i = static_cast<size_t>(n);
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      ms += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int hh = 0, mm = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &hh, &mm) != 2) return -1;
    ms -= (s[i] == '+' ? 1 : -1) * (hh * 3600 + mm * 60) * int64_t{1000};
  } else if (i >= s.size() || (s[i] != 'Z' && s[i] != 'z')) {
    return -1;
  }
  return ms;
}

Result<std::string> AlertmanagerSilencer::Call(const SilenceSpec& spec, const std::string& method,
                                               const std::string& path, const std::string& body, bool expiring) {
  HttpRequest req;
  req.method = method;
  req.url = Base(spec.url) + path;
  req.body = body;
  req.max_answer = kMaxAnswer;
  req.user_agent = "sallyport-silence";
  req.headers = {"Accept: application/json"};
  if (!body.empty()) req.headers.push_back("Content-Type: application/json");
  const std::string what = "alertmanager " + method + " " + req.url;
  // An expiry of a silence gone (404) or expired already (Alertmanager 0.25 answers 500 "already expired").
  auto gone = [](const HttpAnswer& a) {
    return a.status == 404 || (a.status == 500 && a.body.find("already expired") != std::string::npos);
  };
  int attempts = 0;
  const HttpAnswer a = SendRetrying(req, clock_, spec.timeout_ms, Millis(1000), &attempts,
                                    expiring ? std::function<bool(const HttpAnswer&)>(gone) : nullptr);
  if (a.ok()) return a.body;
  if (expiring && gone(a)) return std::string();
  const std::string said =
      a.status ? "HTTP " + std::to_string(a.status) + (a.body.empty() ? "" : ": " + a.body.substr(0, 512)) : a.error;
  return Err(a.timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
             what + ": " + said + " (attempt " + std::to_string(attempts) + ")");
}

Result<std::vector<Silence>> AlertmanagerSilencer::Find(const SilenceSpec& spec, const std::string& marker) {
  SP_ASSIGN_OR_RETURN(std::string body, Call(spec, "GET", "/api/v2/silences", "", false));
  const json list = json::parse(body, nullptr, false);
  if (!list.is_array()) return Err(ErrorCode::kUnavailable, "alertmanager: the silences' list is not a JSON array");
  std::vector<Silence> out;
  for (const auto& j : list) {
    if (!j.is_object()) continue;
    const std::string comment = j.value("comment", std::string());
    const json status = j.value("status", json::object());
    const std::string state = status.is_object() ? status.value("state", std::string()) : "";
    if (comment.find(marker) == std::string::npos || state == "expired") continue;
    Silence s;
    s.id = j.value("id", std::string());
    s.comment = comment;
    s.state = state;
    s.created_by = j.value("createdBy", std::string());
    s.starts_at = j.value("startsAt", std::string());
    s.ends_at_ms = ParseRfc3339Ms(j.value("endsAt", std::string()));
    for (const auto& m : j.value("matchers", json::array())) {
      s.matchers.push_back({m.value("name", std::string()), m.value("value", std::string()), m.value("isRegex", false),
                            m.value("isEqual", true)});
    }
    if (IsSilenceId(s.id)) out.push_back(std::move(s));
  }
  return out;
}

Result<std::string> AlertmanagerSilencer::Put(const SilenceSpec& spec, const Silence& s) {
  json body = {{"matchers", json::array()},
               {"startsAt", s.starts_at.empty() ? FormatRfc3339Ms(clock_.WallMs()) : s.starts_at},
               {"endsAt", FormatRfc3339Ms(s.ends_at_ms)},
               {"createdBy", s.created_by},
               {"comment", s.comment}};
  if (!s.id.empty()) body["id"] = s.id;
  for (const auto& m : s.matchers) {
    body["matchers"].push_back({{"name", m.name}, {"value", m.value}, {"isRegex", m.regex}, {"isEqual", m.equal}});
  }
  SP_ASSIGN_OR_RETURN(std::string answer, Call(spec, "POST", "/api/v2/silences", body.dump(), false));
  const json j = json::parse(answer, nullptr, false);
  const std::string id = j.is_object() ? j.value("silenceID", std::string()) : "";
  if (!IsSilenceId(id)) return Err(ErrorCode::kUnavailable, "alertmanager: no silence id in its answer: " + answer.substr(0, 200));
  return id;
}

Status AlertmanagerSilencer::Expire(const SilenceSpec& spec, const std::string& id) {
  if (!IsSilenceId(id)) return Err(ErrorCode::kInvalidArgument, "not a silence id: '" + id + "'");
  SP_TRY(Call(spec, "DELETE", "/api/v2/silence/" + id, "", true));
  return Ok();
}

}  // namespace sp
