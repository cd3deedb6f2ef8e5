// The socket side of the server: cpp-httplib accepting connections on a
// pool of worker threads and handing every request to a Router.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "core/error.h"
#include "server/http.h"

namespace httplib {
class Server;
}

namespace sp::http {

struct HttpServerOptions {
  int threads = 16;                    // Worker threads (keep-alive clients each hold one).
  size_t max_body_bytes = 64u << 20;
  // A webhook's body (public: anyone may send one) is refused with 413 from
  // its Content-Length, before it is read.
  size_t max_hook_body_bytes = 1u << 20;
  // HTTPS with this PEM certificate (chain) and key; both empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  HttpServer(const Router& router, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // Binds host:port (port 0: any free port) and serves on a background thread.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  // Stops accepting, finishes requests in flight, joins.
  void Stop();

 private:
  const Router& router_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  int listen_fd_ = -1;
};

}  // namespace sp::http
