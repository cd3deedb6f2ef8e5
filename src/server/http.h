// The server's HTTP layer as plain values: a request, a response, a route
// (method, path pattern, who may call it, handler) and the router that picks
// the route, enforces its access in one place and runs it. The socket side
// (cpp-httplib) is http_server.h; unit tests call Router::Handle directly.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/auth.h"
#include "core/error.h"
#include "queue/job.h"

namespace sp::http {

using Doc = nlohmann::ordered_json;

enum class Method { kGet, kPost, kPut, kDelete };
std::string_view MethodName(Method m);

struct Request;

// Who called, as the bearer token says: a holder of an API token (with its
// scopes) or an agent (with the labels its token is bound to).
struct Caller {
  std::string who;  // "token:<name>" or "agent:<name>".
  std::vector<std::string> scopes;
  std::optional<QueueStore::AgentToken> agent;
};

// What one request needs: the need, and the object it names (a project;
// "stack/deployment" for deploys; "" for everything).
struct Target {
  auth::Need need = auth::Need::kAdmin;
  std::string object;
};

// Who may call a route. Every route declares it in its table (there is no
// default); the router enforces it, in one place, before the handler runs:
// 401 without a token or with an unknown, revoked or expired one, 403 when
// its scopes do not grant the need on the object the request names. Public
// routes are listed, not assumed: health and the webhooks (which check
// their own signatures).
class Access {
 public:
  using TargetOf = std::function<Result<Target>(const Request&)>;
  static Access Public() { return Access(auth::Need::kPublic); }
  static Access Agent() { return Access(auth::Need::kAgent); }
  static Access Read() { return Access(auth::Need::kRead); }
  static Access InventoryWrite() { return Access(auth::Need::kInventoryWrite); }
  static Access Admin() { return Access(auth::Need::kAdmin); }
  // The need and its object found in the request (path, query or body),
  // e.g. a build's project or a lock's stack/deployment; an error (a
  // malformed body, an unknown id) is answered as it is.
  static Access Of(auth::Need need, TargetOf target) { return Access(need, std::move(target)); }
  auth::Need need() const { return need_; }
  Result<Target> TargetFor(const Request& req) const {
    if (target_) return target_(req);
    return Target{need_, ""};
  }

 private:
  explicit Access(auth::Need need, TargetOf target = nullptr) : need_(need), target_(std::move(target)) {}
  auth::Need need_;
  TargetOf target_;
};

struct Request {
  Method method = Method::kGet;
  std::string path;  // Without the query.
  std::string body;
  std::multimap<std::string, std::string> params;  // Query parameters.
  std::map<std::string, std::string> headers;      // Names in lower case.
  std::vector<std::string> args;                   // The route pattern's captures.
  std::optional<QueueStore::AgentToken> agent;     // Agent routes: the caller.
  std::optional<Caller> caller;                    // Any route with a token: the caller.
  std::string peer;                                // The client's address.

  bool Has(const std::string& name) const { return params.count(name) > 0; }
  std::string Param(const std::string& name, const std::string& fallback = "") const;
  int64_t IntParam(const std::string& name, int64_t fallback) const;
  // A boolean query flag: present empty, 1, true or yes.
  bool Flag(const std::string& name) const;
  std::string Header(const std::string& name) const;
  // The body as a JSON object; syntax errors name line and column.
  Result<Doc> Json() const;
};

// A query string's pairs ("a=1&b=x%20y&c"), decoded, into `out`.
void ParseQuery(std::string_view query, std::multimap<std::string, std::string>& out);

// Optional fields of a JSON body: absent leaves `out` as it is; a value of
// another type is a 400 naming the field ("/name: expected a string").
Status StringField(const Doc& o, const char* key, std::string& out);
Status IntField(const Doc& o, const char* key, int64_t& out);

// Where a streamed answer goes (a log followed as server-sent events).
struct StreamSink {
  std::function<bool(const char* data, size_t n)> write;
  std::function<void()> done;
  std::function<bool()> is_writable;
};
// Called again and again until it returns false or calls sink.done().
using StreamProvider = std::function<bool(StreamSink& sink)>;

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  StreamProvider stream;  // Set: the body is streamed (chunked) instead.
  std::string stream_type = "text/plain";
  std::string error;  // The message Error() answered with (for the audit trail).

  void Json(int status, const Doc& body);
  // {"error": {"code": "not_found", "message": "..."}} with the code's status.
  void Error(const sp::Error& e);
};

int StatusFor(ErrorCode code);

// Answers 200 {key: [to_json(item), ...]}, or the error.
template <typename T, typename ToJson>
void JsonList(Response& res, const Result<std::vector<T>>& items, const char* key, ToJson to_json) {
  if (!items) return res.Error(items.error());
  Doc out = Doc::array();
  for (const auto& item : *items) out.push_back(to_json(item));
  res.Json(200, {{key, out}});
}

// Body limits of the routes that take more, or less, than the server's
// default (HttpServerOptions::default_body_bytes, 4 MiB).
inline constexpr size_t kHookBodyBytes = 1u << 20;       // A webhook's: public, anyone may send one.
inline constexpr size_t kDocumentBodyBytes = 16u << 20;  // An inventory document, a job and its plan.
inline constexpr size_t kLogBatchBodyBytes = 32u << 20;  // An agent's log batch (up to 8 MiB of text, escaped).

// What every route table's file uses.
namespace routes {
using auth::Need;
using http::Access;
using http::Target;
using http::Doc;
using http::Method;
using http::Request;
using http::Response;
using http::kDocumentBodyBytes;
using http::kHookBodyBytes;
using http::kLogBatchBodyBytes;
}  // namespace routes

using Handler = std::function<void(const Request& req, Response& res)>;

// Which workers run a route's handler (http_server.h): the quick lane
// answers at once (every agent heartbeat and journal call, every API call);
// an agent's long-polled claim and a log read or follow, which may take
// seconds to hours, run on their own bounded lanes and never hold a quick
// worker.
enum class Lane { kQuick, kPoll, kStream };

struct Route {
  Method method;
  std::string pattern;  // ECMAScript regex over the whole path; captures become Request::args.
  Access access;
  Handler handler;
  Lane lane = Lane::kQuick;
  // The largest body this route reads (0: the server's default): a longer
  // Content-Length is answered 413 before a byte of it is read.
  size_t max_body = 0;
};

// What the socket side needs to know of a request from its head alone, and
// the route it picked (Router::Handle runs that one without looking again).
struct Admission {
  int route = -1;  // -1: no route has this method and path (404).
  Lane lane = Lane::kQuick;
  size_t max_body = 0;
  std::vector<std::string> args;  // The route pattern's captures.
  bool routed() const { return route >= 0; }
};

class Router {
 public:
  // Who holds a bearer token, or kUnauthenticated.
  using Authenticate = std::function<Result<Caller>(const std::string& bearer)>;
  // Records one mutating request (POST, PUT, DELETE) and its outcome,
  // refusals included; the agent protocol's calls are the jobs' own record.
  using Audit = std::function<void(const auth::AuditRecord& record)>;
  explicit Router(Authenticate authenticate, Audit audit = nullptr)
      : authenticate_(std::move(authenticate)), audit_(std::move(audit)) {}
  void Add(std::vector<Route> routes);
  // The routes as declared, for tests that walk every one.
  const std::vector<Route>& routes() const { return routes_; }
  // Picks the route (404 when none matches the method and path), enforces
  // its access, runs it; a handler's exception becomes a 500 answer.
  Response Handle(Request req) const;
  // The same for the route `admitted` picked for req's method and path.
  Response Handle(Request req, const Admission& admitted) const;
  // The route a request's method and path pick: its lane and body limit.
  Admission Admit(Method method, const std::string& path) const;

 private:
  // The route's access for this request: the caller set on `req`, or the refusal.
  Status Authorize(const Route& route, Request& req, std::string* target) const;
  Authenticate authenticate_;
  Audit audit_;
  std::vector<Route> routes_;
  std::vector<std::regex> patterns_;
  std::vector<std::string> prefixes_;
};

}  // namespace sp::http
