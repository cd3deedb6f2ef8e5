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

#include "core/error.h"
#include "queue/job.h"

namespace sp::http {

using Doc = nlohmann::ordered_json;

enum class Method { kGet, kPost, kPut, kDelete };
std::string_view MethodName(Method m);

// Who may call a route. Every route declares it in its table; the router
// enforces it before the handler runs. kPublic routes are listed, not
// assumed: health and the webhooks (which check their own signatures).
enum class Access {
  kPublic,  // Anyone (the inventory, jobs and builds are still open: issue 14).
  kAgent,   // An agent's bearer token (401 without or with an unknown one).
};

struct Request {
  Method method = Method::kGet;
  std::string path;  // Without the query.
  std::string body;
  std::multimap<std::string, std::string> params;  // Query parameters.
  std::map<std::string, std::string> headers;      // Names in lower case.
  std::vector<std::string> args;                   // The route pattern's captures.
  std::optional<QueueStore::AgentToken> agent;     // kAgent routes: the caller.

  bool Has(const std::string& name) const { return params.count(name) > 0; }
  std::string Param(const std::string& name, const std::string& fallback = "") const;
  int64_t IntParam(const std::string& name, int64_t fallback) const;
  // A boolean query flag: present empty, 1, true or yes.
  bool Flag(const std::string& name) const;
  std::string Header(const std::string& name) const;
  // The body as a JSON object; syntax errors name line and column.
  Result<Doc> Json() const;
};

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

// What every route table's file uses.
namespace routes {
using http::Access;
using http::Doc;
using http::Method;
using http::Request;
using http::Response;
}  // namespace routes

using Handler = std::function<void(const Request& req, Response& res)>;

struct Route {
  Method method;
  std::string pattern;  // ECMAScript regex over the whole path; captures become Request::args.
  Access access;
  Handler handler;
};

class Router {
 public:
  // Who holds a bearer token: the agent, or kUnauthenticated.
  using Authenticate = std::function<Result<QueueStore::AgentToken>(const std::string& bearer)>;
  explicit Router(Authenticate authenticate) : authenticate_(std::move(authenticate)) {}
  void Add(std::vector<Route> routes);
  // The routes as declared, for tests that walk every one.
  const std::vector<Route>& routes() const { return routes_; }
  // Picks the route (404 when none matches the method and path), enforces
  // its access, runs it; a handler's exception becomes a 500 answer.
  Response Handle(Request req) const;

 private:
  Authenticate authenticate_;
  std::vector<Route> routes_;
  std::vector<std::regex> patterns_;
  std::vector<std::string> prefixes_;
};

}  // namespace sp::http
