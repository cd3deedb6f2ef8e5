// The socket side of the server: Boost.Beast on an Asio event loop. Every
// connection is read asynchronously — a kept-alive idle connection, a slow
// client sending its head byte by byte, a TLS handshake that never ends hold
// no thread — and only a complete request reaches a worker, on its route's
// lane (http.h): a bounded quick lane for the answers agents wait on, and
// their own bounded lanes for agents' long polls and for log streams.
//
// Limits, each answered plainly: a request head must arrive within
// header_timeout of its first byte, a body within body_timeout (else the
// connection is closed: a Beast stream's deadline closes its socket); a Content-Length over the route's limit is refused with 413
// before its body is read, and the bodies being read at once share a budget
// (503 beyond); each client address holds at most max_connections_per_client
// connections (429), all at most max_connections (beyond it the connection
// that has waited longest without sending a request is closed; if none
// waits, 503). A full lane answers 503 with Retry-After.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "server/http.h"

namespace sp::http {

struct HttpServerOptions {
  int threads = 16;          // The quick lane's workers.
  int queue = 1024;          // Requests waiting for a quick worker; beyond: 503.
  int poll_threads = 256;    // Agents' long-polled claims at once; beyond: 503.
  int stream_threads = 256;  // Log reads and follows at once; beyond: 503.
  int io_threads = 2;        // Event loops (TLS handshakes, reads, writes).
  Clock* clock = nullptr;    // How long connections have waited; null: the real clock.
  size_t max_body_bytes = 64u << 20;     // No route reads a longer body.
  size_t default_body_bytes = 4u << 20;  // A route that states no limit.
  size_t body_budget_bytes = 256u << 20;  // Bodies being read or handled at once.
  int max_connections = 4096;
  int max_connections_per_client = 256;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};    // A kept-alive connection between requests.
  std::chrono::milliseconds header_timeout{10'000};  // From a request's first byte to its blank line.
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds write_timeout{60'000};   // One write of an answer or a stream's chunk.
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
  // Binds host:port (port 0: any free port) and serves on background threads.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  // Stops accepting, lets the quick lane finish its requests, closes every
  // connection (log follows end), joins.
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace sp::http
