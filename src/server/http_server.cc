#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cctype>
#include <cstdlib>

namespace sp::http {

namespace {

Request FromHttplib(Method method, const httplib::Request& in) {
  Request r;
  r.method = method;
  r.path = in.path;
  r.body = in.body;
  r.peer = in.remote_addr;
  r.params.insert(in.params.begin(), in.params.end());
  for (const auto& [k, v] : in.headers) {
    std::string lower;
    for (char c : k) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace(lower, v);
  }
  return r;
}

void ToHttplib(Response res, httplib::Response& out) {
  out.status = res.status;
  if (!res.stream) {
    out.set_content(std::move(res.body), res.content_type);
    return;
  }
  auto provider = std::make_shared<StreamProvider>(std::move(res.stream));
  out.set_chunked_content_provider(res.stream_type, [provider](size_t, httplib::DataSink& sink) {
    StreamSink s;
    s.write = [&sink](const char* d, size_t n) { return sink.write(d, n); };
    s.done = [&sink] { sink.done(); };
    s.is_writable = [&sink] { return sink.is_writable(); };
    return (*provider)(s);
  });
}

}  // namespace

namespace {

std::unique_ptr<httplib::Server> NewServer(const HttpServerOptions& o) {
  if (o.tls_cert_file.empty() && o.tls_key_file.empty()) return std::make_unique<httplib::Server>();
  return std::make_unique<httplib::SSLServer>(o.tls_cert_file.c_str(), o.tls_key_file.c_str());
}

}  // namespace

HttpServer::HttpServer(const Router& router, HttpServerOptions options)
    : router_(router), http_(NewServer(options)) {
  httplib::Server& s = *http_;
  // Debian's libcpp-httplib listens with a backlog of 5 (compiled in): a
  // burst of connections (50 clients at once in the tests) overflowed it,
  // and clients saw their connection reset after a 1 s SYN retry. Keep the
  // listening socket's fd (this hook runs before bind) to listen again with
  // a real backlog in Start().
  s.set_socket_options([this](int fd) {
    httplib::default_socket_options(fd);
    listen_fd_ = fd;
  });
  // Small answers go out at once: without it, a kept-alive client's next
  // request waits for the delayed ACK (~40 ms; 147 vs ~2,000 jobs/s in
  // bench_agent_protocol).
  s.set_tcp_nodelay(true);
  // A kept-alive connection serves up to 1,000 requests, as nginx (httplib's default
  // of 5 made every 5th request of a TLS client a new handshake).
  s.set_keep_alive_max_count(1000);
  s.set_payload_max_length(options.max_body_bytes);
  // Before the body is read: a webhook states its length, within the limit.
  s.set_pre_routing_handler([limit = options.max_hook_body_bytes](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/hooks/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    const std::string length = req.get_header_value("Content-Length");
    char* end = nullptr;
    const unsigned long long n = std::strtoull(length.c_str(), &end, 10);
    if (!length.empty() && end && *end == '\0' && n <= limit) return httplib::Server::HandlerResponse::Unhandled;
    res.status = length.empty() ? 411 : 413;
    res.set_content(R"({"error": {"code": "invalid_argument", "message": "a webhook's body needs a Content-Length of at most )" +
                        std::to_string(limit) + R"( bytes"}})",
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  const int threads = options.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unexpected error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    Response r;
    r.Error({ErrorCode::kInternal, what});
    ToHttplib(std::move(r), res);
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // Already an API error.
    Response r;
    r.Error({res.status == 404 ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
             "cannot serve " + req.method + " " + req.path + " (HTTP " + std::to_string(res.status) + ")"});
    r.status = res.status;
    ToHttplib(std::move(r), res);
  });
  // Every request goes to the router, which knows the routes.
  const std::pair<Method, decltype(&httplib::Server::Get)> kMethods[] = {
      {Method::kGet, &httplib::Server::Get},
      {Method::kPost, &httplib::Server::Post},
      {Method::kPut, &httplib::Server::Put},
      {Method::kDelete, &httplib::Server::Delete},
  };
  for (const auto& [method, add] : kMethods) {
    (s.*add)(".*", [this, method = method](const httplib::Request& req, httplib::Response& res) {
      ToHttplib(router_.Handle(FromHttplib(method, req)), res);
    });
  }
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& host, int port) {
  if (!http_->is_valid()) {
    return Err(ErrorCode::kInvalidArgument,
               "server: cannot use the TLS certificate and key (both PEM files, readable, the key the certificate's)");
  }
  if (port == 0) {
    port_ = http_->bind_to_any_port(host);
    if (port_ < 0) return Err(ErrorCode::kUnavailable, "server: cannot bind " + host + " on any port");
  } else {
    if (!http_->bind_to_port(host, port)) {
      return Err(ErrorCode::kUnavailable, "server: cannot bind " + host + ":" + std::to_string(port));
    }
    port_ = port;
  }
  if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);  // Linux updates the backlog of a listening socket.
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  return Ok();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace sp::http
