// The real ApiClient: HTTP/1.1 to a Sallyport server (cpp-httplib), a
// bearer token on every request when one is given.
#pragma once

#include <memory>
#include <string>

#include "client/api_client.h"

namespace httplib {
class Client;
}

namespace sp {

struct HttpClientOptions {
  std::string server;  // "http://host:port"
  std::string token;   // Bearer token; empty: none.
  Millis connect_timeout{5'000};
  Millis read_timeout{60'000};
};

class HttpApiClient final : public ApiClient {
 public:
  // kInvalidArgument when `server` is not an http:// URL.
  static Result<std::unique_ptr<HttpApiClient>> Create(HttpClientOptions options);
  ~HttpApiClient() override;
  Result<ApiDoc> Call(const std::string& method, const std::string& path, const std::string& body = "") override;
  Result<std::string> GetText(const std::string& path) override;
  Status Stream(const std::string& path, const std::function<bool(const char* data, size_t n)>& on_data) override;
  std::string server() const override { return o_.server; }

 private:
  explicit HttpApiClient(HttpClientOptions options);
  std::unique_ptr<httplib::Client> NewClient(Millis read_timeout) const;
  HttpClientOptions o_;
};

}  // namespace sp
