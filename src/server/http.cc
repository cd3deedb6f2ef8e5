#include "server/http.h"

#include <cstdlib>

#include "core/text.h"

namespace sp::http {

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kGet: return "GET";
    case Method::kPost: return "POST";
    case Method::kPut: return "PUT";
    case Method::kDelete: return "DELETE";
  }
  return "GET";
}

std::string Request::Param(const std::string& name, const std::string& fallback) const {
  auto it = params.find(name);
  return it == params.end() ? fallback : it->second;
}

int64_t Request::IntParam(const std::string& name, int64_t fallback) const {
  auto it = params.find(name);
  return it == params.end() ? fallback : std::atoll(it->second.c_str());
}

bool Request::Flag(const std::string& name) const {
  auto it = params.find(name);
  if (it == params.end()) return false;
  const std::string& v = it->second;
  return v.empty() || v == "1" || v == "true" || v == "yes";
}

std::string Request::Header(const std::string& name) const {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = headers.find(lower);
  return it == headers.end() ? "" : it->second;
}

Result<Doc> Request::Json() const {
  try {
    Doc d = Doc::parse(body);
    if (!d.is_object()) return Err(ErrorCode::kInvalidArgument, "request body: expected a JSON object");
    return d;
  } catch (const Doc::parse_error& e) {
    // nlohmann's message names the line and column ("at line 3, column 5").
    return Err(ErrorCode::kInvalidArgument, std::string("request body: malformed JSON: ") + e.what());
  }
}

int StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kUnavailable: return 503;
    default: return 500;
  }
}

void Response::Json(int s, const Doc& b) {
  status = s;
  body = b.dump();
  content_type = "application/json";
}

void Response::Error(const sp::Error& e) {
  Doc b;
  b["error"]["code"] = std::string(ErrorCodeName(e.code));
  b["error"]["message"] = e.message;
  Json(StatusFor(e.code), b);
  error = e.message;
}

namespace {

// The pattern's literal start (before any regex syntax): a path that does
// not start with it cannot match, and is passed over without the regex.
std::string LiteralPrefix(const std::string& pattern) {
  size_t special = pattern.find_first_of("\\^$.|?*+()[]{}");
  if (special == std::string::npos) return pattern;
  // A quantifier makes the character before it optional.
  if (special > 0 && (pattern[special] == '?' || pattern[special] == '*' || pattern[special] == '{')) --special;
  if (pattern[special] == '|') return "";  // Alternatives: no common start known.
  return pattern.substr(0, special);
}

}  // namespace

void Router::Add(std::vector<Route> routes) {
  for (auto& r : routes) {
    patterns_.emplace_back(r.pattern);
    prefixes_.push_back(LiteralPrefix(r.pattern));
    routes_.push_back(std::move(r));
  }
}

Status Router::Authorize(const Route& route, Request& req, std::string* target) const {
  const auth::Need need = route.access.need();
  if (need == auth::Need::kPublic) return Ok();
  const std::string header = req.Header("Authorization");
  if (!StartsWith(header, "Bearer ") || header.size() <= 7) {
    return Err(ErrorCode::kUnauthenticated, "missing bearer token");
  }
  SP_ASSIGN_OR_RETURN(Caller caller, authenticate_(header.substr(7)));
  req.caller = caller;
  if (need == auth::Need::kAgent) {
    if (!caller.agent) return Err(ErrorCode::kPermissionDenied, caller.who + " is not an agent's token");
    req.agent = caller.agent;
    return Ok();
  }
  if (caller.agent) return Err(ErrorCode::kPermissionDenied, caller.who + ": an agent's token serves the agent protocol only");
  SP_ASSIGN_OR_RETURN(Target t, route.access.TargetFor(req));
  *target = t.object;
  if (!auth::Allows(caller.scopes, t.need, t.object)) {
    return Err(ErrorCode::kPermissionDenied,
               caller.who + " lacks the scope " + std::string(auth::NeedName(t.need)) +
                   (t.object.empty() ? "" : " on " + t.object) + " that " + std::string(MethodName(req.method)) +
                   " " + req.path + " needs");
  }
  return Ok();
}

Admission Router::Admit(Method method, const std::string& path) const {
  Admission a;
  for (size_t i = 0; i < routes_.size(); ++i) {
    std::smatch m;
    if (routes_[i].method == method && path.compare(0, prefixes_[i].size(), prefixes_[i]) == 0 &&
        std::regex_match(path, m, patterns_[i])) {
      a.route = static_cast<int>(i);
      a.lane = routes_[i].lane;
      a.max_body = routes_[i].max_body;
      for (size_t k = 1; k < m.size(); ++k) a.args.push_back(m[k].str());
      break;
    }
  }
  return a;
}

Response Router::Handle(Request req) const {
  const Admission admitted = Admit(req.method, req.path);
  return Handle(std::move(req), admitted);
}

Response Router::Handle(Request req, const Admission& admitted) const {
  Response res;
  if (admitted.routed()) {
    const Route& route = routes_[admitted.route];
    req.args = admitted.args;
    std::string target;
    Status allowed = Authorize(route, req, &target);
    if (!allowed) {
      res.Error(allowed.error());
    } else {
      try {
        route.handler(req, res);
      } catch (const std::exception& e) {
        res = Response();
        res.Error({ErrorCode::kInternal, e.what()});
      }
    }
    if (audit_ && req.method != Method::kGet && route.access.need() != auth::Need::kAgent) {
      auth::AuditRecord rec;
      rec.who = req.caller ? req.caller->who : route.access.need() == auth::Need::kPublic ? "public" : "anonymous";
      rec.method = std::string(MethodName(req.method));
      rec.path = req.path;
      rec.target = target;
      rec.from = req.peer;
      rec.status = res.status;
      rec.result = res.status < 400 ? "ok" : !res.error.empty() ? res.error : "HTTP " + std::to_string(res.status);
      audit_(rec);
    }
    return res;
  }
  res.Error({ErrorCode::kNotFound, "no route for " + std::string(MethodName(req.method)) + " " + req.path});
  return res;
}

void ParseQuery(std::string_view q, std::multimap<std::string, std::string>& out) {
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    out.emplace(UrlDecode(pair.substr(0, eq), true),
                eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1), true));
  }
}

Status StringField(const Doc& o, const char* key, std::string& out) {
  if (!o.contains(key)) return Ok();
  if (!o[key].is_string()) return Err(ErrorCode::kInvalidArgument, std::string("/") + key + ": expected a string");
  out = o[key].get<std::string>();
  return Ok();
}

Status IntField(const Doc& o, const char* key, int64_t& out) {
  if (!o.contains(key)) return Ok();
  if (!o[key].is_number_integer()) {
    return Err(ErrorCode::kInvalidArgument, std::string("/") + key + ": expected an integer");
  }
  out = o[key].get<int64_t>();
  return Ok();
}

}  // namespace sp::http
