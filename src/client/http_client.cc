#include "client/http_client.h"

#include <httplib.h>
#include <openssl/x509.h>

#include <chrono>

#include "core/file.h"
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

constexpr size_t kMaxIdle = 4;
// The server closes a kept-alive connection idle for 5 s: reuse only
// younger ones, so that a request never races that close.
constexpr int64_t kMaxIdleAgeMs = 2'000;


}  // namespace

// The transport failure in words a person can act on.
std::string HttpApiClient::Describe(const httplib::Client& c, int error) const {
  switch (static_cast<httplib::Error>(error)) {
    case httplib::Error::Connection: return "cannot connect (refused, or no route to it)";
    case httplib::Error::ConnectionTimeout: return "connection timed out";
    case httplib::Error::Read: return "connection closed while reading the answer";
    case httplib::Error::Write: return "connection closed while sending the request";
    case httplib::Error::SSLConnection: return "TLS handshake failed (is it an https:// server?)";
    case httplib::Error::SSLLoadingCerts: return "cannot load the CA certificates " + (o_.ca.empty() ? "of the system" : o_.ca);
    case httplib::Error::SSLServerVerification: {
      const long v = c.get_openssl_verify_result();
      if (v != X509_V_OK) {
        return std::string("the server's certificate is not trusted: ") + X509_verify_cert_error_string(v) +
               " (trusting " + (o_.ca.empty() ? "the system's CAs" : "the CA in " + o_.ca) + ")";
      }
      return "the server's certificate is not for " + UrlHost(o_.server);
    }
    default: return httplib::to_string(static_cast<httplib::Error>(error));
  }
}

HttpApiClient::HttpApiClient(HttpClientOptions options) : o_(std::move(options)) {
  if (!o_.clock) o_.clock = &RealClock::Instance();
}

std::unique_ptr<httplib::Client> HttpApiClient::NewClient(Millis read_timeout) const {
  auto c = std::make_unique<httplib::Client>(o_.server);
  c->set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(o_.connect_timeout).count(),
                            static_cast<time_t>((o_.connect_timeout.count() % 1000) * 1000));
  c->set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(read_timeout).count(), 0);
  c->set_tcp_nodelay(true);
  if (StartsWith(o_.server, "https://")) {
    if (!o_.ca.empty()) c->set_ca_cert_path(o_.ca.c_str());
    c->enable_server_certificate_verification(true);
  }
  if (!o_.token.empty()) c->set_default_headers({{"Authorization", "Bearer " + o_.token}});
  return c;
}

// Calls from several threads (heartbeats, log lines, journal calls) each
// take their own connection: they never wait for each other.
std::unique_ptr<httplib::Client> HttpApiClient::Acquire() {
  {
    std::lock_guard lk(mu_);
    const int64_t now = o_.clock->MonotonicMs();
    while (!idle_.empty()) {
      Idle last = std::move(idle_.back());
      idle_.pop_back();
      if (now - last.since_ms < kMaxIdleAgeMs) return std::move(last.client);
    }
  }
  auto c = NewClient(o_.read_timeout);
  c->set_keep_alive(true);
  return c;
}

void HttpApiClient::Release(std::unique_ptr<httplib::Client> c) {
  std::lock_guard lk(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back({std::move(c), o_.clock->MonotonicMs()});
}

HttpApiClient::~HttpApiClient() = default;

Result<std::unique_ptr<HttpApiClient>> HttpApiClient::Create(HttpClientOptions options) {
  const bool https = StartsWith(options.server, "https://");
  if (!https && !StartsWith(options.server, "http://")) {
    return Err(ErrorCode::kInvalidArgument, "server must be an https:// URL, got '" + Printable(options.server) + "'");
  }
  if (!https && !IsLoopbackHost(UrlHost(options.server))) {
    return Err(ErrorCode::kInvalidArgument, "server " + Printable(options.server) +
                                                ": plain http:// is used only to a loopback address (tokens, plans and "
                                                "env would travel in clear); use https://");
  }
  if (https && !options.ca.empty()) {
    if (auto ca = ReadTextFile(options.ca); !ca) return Err(ca.error().code, "--ca: " + ca.error().message);
  }
  return std::unique_ptr<HttpApiClient>(new HttpApiClient(std::move(options)));
}

Result<ApiDoc> HttpApiClient::Call(const std::string& method, const std::string& path, const std::string& body) {
  const std::string type = "application/json";
  const int64_t give_up = o_.clock->MonotonicMs() + o_.retry_refused.count();
  auto send = [&](httplib::Client& c) {
    return method == "GET"      ? c.Get(path)
           : method == "DELETE" ? c.Delete(path)
           : method == "PUT"    ? c.Put(path, body, type)
                                : c.Post(path, body, type);
  };
  auto client = Acquire();
  httplib::Result res = send(*client);
  // Refused: the request never left, so sending it again cannot repeat it.
  while (!res && res.error() == httplib::Error::Connection && o_.clock->MonotonicMs() < give_up) {
    o_.clock->Sleep(Millis(100));
    client = Acquire();
    res = send(*client);
  }
  if (!res) return Err(ErrorCode::kUnavailable, "server " + o_.server + ": " + Describe(*client, static_cast<int>(res.error())));
  Release(std::move(client));
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
  auto client = Acquire();
  httplib::Result r = client->Get(path);
  if (!r) return Err(ErrorCode::kUnavailable, "server " + o_.server + ": " + Describe(*client, static_cast<int>(r.error())));
  Release(std::move(client));
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
  if (!r && status == 0) {
    return Err(ErrorCode::kUnavailable, "server " + o_.server + ": " + Describe(*client, static_cast<int>(r.error())));
  }
  if (status != 200) {
    ApiDoc doc = ApiDoc::parse(error_body, nullptr, false);
    const bool api_error = doc.is_object() && doc.contains("error") && doc["error"].is_object();
    return Err(api_error ? ErrorCodeFromName(doc["error"].value("code", "")) : ErrorCode::kUnavailable,
               api_error ? doc["error"].value("message", "") : path + ": HTTP " + std::to_string(status));
  }
  return Ok();
}

}  // namespace sp
