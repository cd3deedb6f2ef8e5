#include "client/http_client.h"

#include <httplib.h>

#include "core/text.h"

namespace sp {

ErrorCode ErrorCodeFromName(const std::string& name) {
  for (ErrorCode c : {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kConflict, ErrorCode::kUnavailable,
                      ErrorCode::kTimeout, ErrorCode::kCancelled, ErrorCode::kInternal, ErrorCode::kUnauthenticated,
                      ErrorCode::kPermissionDenied}) {
    if (ErrorCodeName(c) == name) return c;
  }
  return ErrorCode::kUnavailable;
}

namespace {

// The transport failure in words a person can act on.
std::string Describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection: return "cannot connect (refused, or no route to it)";
    case httplib::Error::ConnectionTimeout: return "connection timed out";
    case httplib::Error::Read: return "connection closed while reading the answer";
    case httplib::Error::Write: return "connection closed while sending the request";
    default: return httplib::to_string(e);
  }
}

}  // namespace

HttpApiClient::HttpApiClient(HttpClientOptions options) : o_(std::move(options)) {}

// A connection per request: calls from several threads (heartbeats, log
// lines, journal calls) never wait for each other.
std::unique_ptr<httplib::Client> HttpApiClient::NewClient(Millis read_timeout) const {
  auto c = std::make_unique<httplib::Client>(o_.server);
  c->set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(o_.connect_timeout).count(),
                            static_cast<time_t>((o_.connect_timeout.count() % 1000) * 1000));
  c->set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(read_timeout).count(), 0);
  if (!o_.token.empty()) c->set_default_headers({{"Authorization", "Bearer " + o_.token}});
  return c;
}

HttpApiClient::~HttpApiClient() = default;

Result<std::unique_ptr<HttpApiClient>> HttpApiClient::Create(HttpClientOptions options) {
  if (!StartsWith(options.server, "http://")) {
    return Err(ErrorCode::kInvalidArgument, "server must be an http:// URL, got '" + Printable(options.server) + "'");
  }
  return std::unique_ptr<HttpApiClient>(new HttpApiClient(std::move(options)));
}

Result<ApiDoc> HttpApiClient::Call(const std::string& method, const std::string& path, const std::string& body) {
  const std::string type = "application/json";
  auto client = NewClient(o_.read_timeout);
  httplib::Result res = method == "GET"      ? client->Get(path)
                        : method == "DELETE" ? client->Delete(path)
                        : method == "PUT"    ? client->Put(path, body, type)
                                             : client->Post(path, body, type);
  if (!res) return Err(ErrorCode::kUnavailable, "server " + o_.server + ": " + Describe(res.error()));
  if (res->status == 204) return ApiDoc();
  ApiDoc doc = ApiDoc::parse(res->body, nullptr, false);
  if (doc.is_discarded()) {
    return Err(ErrorCode::kInternal, "server " + o_.server + " answered " + std::to_string(res->status) + " with non-JSON");
  }
  if (res->status >= 300) {
    const bool api_error = doc.is_object() && doc.contains("error") && doc["error"].is_object();
    const ErrorCode code = api_error ? ErrorCodeFromName(doc["error"].value("code", "")) : ErrorCode::kUnavailable;
    return Err(code, api_error ? doc["error"].value("message", "") : res->body);
  }
  return doc;
}

Result<std::string> HttpApiClient::GetText(const std::string& path) {
  httplib::Result r = NewClient(o_.read_timeout)->Get(path);
  if (!r) return Err(ErrorCode::kUnavailable, "server " + o_.server + ": " + Describe(r.error()));
  if (r->status != 200) {
    ApiDoc doc = ApiDoc::parse(r->body, nullptr, false);
    const bool api_error = doc.is_object() && doc.contains("error") && doc["error"].is_object();
    return Err(api_error ? ErrorCodeFromName(doc["error"].value("code", "")) : ErrorCode::kUnavailable,
               api_error ? doc["error"].value("message", "") : path + ": HTTP " + std::to_string(r->status));
  }
  return r->body;
}

Status HttpApiClient::Stream(const std::string& path, const std::function<bool(const char* data, size_t n)>& on_data) {
  auto client = NewClient(Millis(3'600'000));
  int status = 0;
  std::string error_body;
  auto r = client->Get(
      path, [&](const httplib::Response& res) {
        status = res.status;
        return true;
      },
      [&](const char* data, size_t n) {
        if (status != 200) {
          error_body.append(data, n);
          return true;
        }
        return on_data(data, n);
      });
  if (!r && status == 0) return Err(ErrorCode::kUnavailable, "server " + o_.server + ": " + Describe(r.error()));
  if (status != 200) {
    ApiDoc doc = ApiDoc::parse(error_body, nullptr, false);
    const bool api_error = doc.is_object() && doc.contains("error") && doc["error"].is_object();
    return Err(api_error ? ErrorCodeFromName(doc["error"].value("code", "")) : ErrorCode::kUnavailable,
               api_error ? doc["error"].value("message", "") : path + ": HTTP " + std::to_string(status));
  }
  return Ok();
}

}  // namespace sp
