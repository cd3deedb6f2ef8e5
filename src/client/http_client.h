// The real ApiClient: HTTP/1.1 to a Sallyport server (cpp-httplib), a
// bearer token on every request when one is given. https:// verifies the
// server's certificate (chain to `ca` or the system's CAs, and the URL's
// host among its names); http:// only to a loopback address. Connections are
// kept alive and reused (a few idle ones at most).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "client/api_client.h"
#include "core/clock.h"

namespace httplib {
class Client;
}

namespace sp {

struct HttpClientOptions {
  std::string server;  // "https://host:port", or "http://" + a loopback address.
  std::string token;   // Bearer token; empty: none.
  std::string ca;      // PEM file of the CA(s) to trust; empty: the system's.
  Millis connect_timeout{5'000};
  Millis read_timeout{60'000};
  Clock* clock = nullptr;  // How long a connection has been idle; none: the real clock.
  // A refused connection (nothing was sent: the server is restarting) is
  // tried again every 100 ms for this long before Call reports it; 0: never.
  Millis retry_refused{0};
};

class HttpApiClient final : public ApiClient {
 public:
  // kInvalidArgument when `server` is not an https:// URL or an http:// one
  // of a loopback address, or `ca` cannot be read.
  static Result<std::unique_ptr<HttpApiClient>> Create(HttpClientOptions options);
  ~HttpApiClient() override;
  Result<ApiDoc> Call(const std::string& method, const std::string& path, const std::string& body = "") override;
  Result<std::string> GetText(const std::string& path) override;
  Status Stream(const std::string& path, const std::function<bool(const char* data, size_t n)>& on_data) override;
  std::string server() const override { return o_.server; }

 private:
  explicit HttpApiClient(HttpClientOptions options);
  std::unique_ptr<httplib::Client> NewClient(Millis read_timeout) const;
  // A kept-alive connection, or a new one; Release returns it for reuse.
  std::unique_ptr<httplib::Client> Acquire();
  void Release(std::unique_ptr<httplib::Client> c);
  std::string Describe(const httplib::Client& c, int error) const;
  HttpClientOptions o_;
  std::mutex mu_;
  struct Idle {
    std::unique_ptr<httplib::Client> client;
    int64_t since_ms;  // Monotonic.
  };
  std::vector<Idle> idle_;
};

}  // namespace sp
