#include "server/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <future>
#include <optional>
#include <unordered_map>

#include "core/clock.h"
#include "core/text.h"
#include "server/worker_pool.h"

namespace sp::http {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr size_t kMaxHeadBytes = 16 * 1024;

std::optional<Method> MethodOf(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get: return Method::kGet;
    case bhttp::verb::post: return Method::kPost;
    case bhttp::verb::put: return Method::kPut;
    case bhttp::verb::delete_: return Method::kDelete;
    default: return std::nullopt;
  }
}

// "HTTP/1.1 429 Too Many Requests\r\n": the first line of an answer written by hand.
std::string StatusLine(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " " +
         std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status))) + "\r\n";
}

// A refusal written straight to a socket that has no session (over a
// connection cap): best effort, never blocking.
void RefuseRaw(tcp::socket& sock, int status, const std::string& message) {
  Response r;
  r.Error({ErrorCode::kUnavailable, message});
  const std::string answer = StatusLine(status) +
                             "Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
                             "Content-Length: " +
                             std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
  (void)!::send(sock.native_handle(), answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  beast::error_code ec;
  sock.shutdown(tcp::socket::shutdown_send, ec);
  sock.close(ec);
}

}  // namespace

// One connection as the server sees it, whatever its stream.
struct Conn {
  virtual ~Conn() = default;
  // From any thread: the connection ends at once.
  virtual void Close() = 0;
  // While it waits for a request (or its TLS handshake): since when (steady
  // ms); 0 while a request is read in full, handled or answered.
  std::atomic<int64_t> waiting_since{0};
  std::atomic<bool> closed{false};     // Close() or Shut() ran: never waits, reads or writes again.
  std::atomic<bool> answering{false};  // An answer is being written.
};

struct HttpServer::Impl {
  Impl(const Router& r, HttpServerOptions opts)
      : router(r),
        o(std::move(opts)),
        clock(o.clock ? *o.clock : RealClock::Instance()),
        quick(o.threads, o.queue),
        poll(o.poll_threads, 0),
        stream(o.stream_threads, 0),
        retry(ioc) {}

  WorkerPool& LaneOf(Lane lane) { return lane == Lane::kPoll ? poll : lane == Lane::kStream ? stream : quick; }

  bool ReserveBody(size_t n) {
    size_t cur = body_bytes.load();
    do {
      if (cur + n > o.body_budget_bytes) return false;
    } while (!body_bytes.compare_exchange_weak(cur, cur + n));
    return true;
  }
  void ReleaseBody(size_t n) { body_bytes -= n; }

  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket sock);
  // Under mu: the connection that has waited longest for a request, closed
  // (returned, to be released after mu is: null when none waits).
  std::shared_ptr<Conn> EvictOldestWaiting();
  void Forget(Conn* c, const std::string& peer) {
    std::lock_guard lk(mu);
    conns.erase(c);
    if (auto it = per_client.find(peer); it != per_client.end() && --it->second <= 0) per_client.erase(it);
    if (--total == 0) none_left.notify_all();
  }
  // Closes the connections that wait for a request (only_waiting) or all
  // but those writing an answer.
  void CloseAll(bool only_waiting) {
    std::vector<std::shared_ptr<Conn>> all;  // Released after mu.
    {
      std::lock_guard lk(mu);
      for (auto& [p, w] : conns) {
        if (only_waiting ? p->waiting_since == 0 : p->answering.load()) continue;
        if (auto c = w.lock()) all.push_back(std::move(c));
      }
    }
    for (auto& c : all) c->Close();
  }

  const Router& router;
  const HttpServerOptions o;
  Clock& clock;  // Monotonic: how long a connection has waited.
  WorkerPool quick, poll, stream;
  std::atomic<size_t> body_bytes{0};
  std::atomic<bool> stopping{false};
  std::mutex mu;  // Guards conns, per_client, total.
  std::condition_variable none_left;  // total reached 0 (Stop waits for it).
  std::unordered_map<Conn*, std::weak_ptr<Conn>> conns;
  std::unordered_map<std::string, int> per_client;
  int total = 0;
  std::optional<ssl::context> tls;
  net::io_context ioc;
  // The loops run until Stop, even when nothing is pending (a stream's
  // worker posts its writes while the acceptor is closed).
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  net::steady_timer retry;
  std::vector<std::thread> loops;
};

namespace {

template <class Stream>
class Session : public Conn, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  // A TLS session's stream is made when its client's first bytes arrive:
  // until then a connection costs a socket, not TLS buffers (a 5,000-connection
  // hold: 698 MiB peak before, 71 MiB after; ServerSiegeTest).
  Session(HttpServer::Impl& s, tcp::socket sock, std::string peer)
      : s_(s), ex_(sock.get_executor()), peer_(std::move(peer)), fd_(sock.native_handle()), timer_(ex_) {
    if constexpr (kTls) {
      raw_.emplace(std::move(sock));
    } else {
      stream_.emplace(std::move(sock));
    }
  }
  ~Session() override {
    if (reserved_) s_.ReleaseBody(reserved_);
    s_.Forget(this, peer_);
  }

  void Start() {
    net::dispatch(ex_, [self = this->shared_from_this()] { self->Begin(); });
  }
  void Close() override {
    closed = true;
    waiting_since = 0;
    net::post(ex_, [self = this->shared_from_this()] { self->Shut(); });
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(*stream_); }
  auto Self() { return this->shared_from_this(); }

  void Begin() {
    waiting_since = s_.clock.MonotonicMs();
    if constexpr (kTls) {
      timer_.expires_after(s_.o.handshake_timeout);
      timer_.async_wait([self = Self()](beast::error_code ec) {
        if (!ec) self->Shut();
      });
      raw_->async_wait(tcp::socket::wait_read, [self = Self()](beast::error_code ec) {
        if (ec || self->closed) return self->Shut();
        self->stream_.emplace(beast::tcp_stream(std::move(*self->raw_)), *self->s_.tls);
        self->raw_.reset();
        self->stream_->async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          self->timer_.cancel();
          if (ec) return self->Shut();
          self->Wait();
        });
      });
    } else {
      Wait();
    }
  }

  void Shut() {
    closed = true;
    waiting_since = 0;
    beast::error_code ec;
    timer_.cancel();
    if (raw_) {
      raw_->close(ec);
      return;
    }
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    Tcp().close();
  }

  // Between requests: waits for the next one's first byte (idle timeout),
  // then for the rest of its head (header timeout).
  void Wait() {
    if (s_.stopping || closed) return Shut();
    waiting_since = s_.clock.MonotonicMs();
    if (buffer_.size() > 0) return ReadHead();
    Tcp().expires_after(s_.o.idle_timeout);
    stream_->async_read_some(buffer_.prepare(4096), [self = Self()](beast::error_code ec, size_t n) {
      if (ec) return self->Shut();
      self->buffer_.commit(n);
      self->ReadHead();
    });
  }

  void ReadHead() {
    parser_.emplace();
    parser_->header_limit(kMaxHeadBytes);
    parser_->body_limit(s_.o.max_body_bytes);
    Tcp().expires_after(s_.o.header_timeout);
    bhttp::async_read_header(*stream_, buffer_, *parser_,
                             [self = Self()](beast::error_code ec, size_t) { self->OnHead(ec); });
  }

  void OnHead(beast::error_code ec) {
    if (ec == bhttp::error::header_limit) return Refuse(431, "the request's head is longer than 16 KiB");
    if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {
      return Refuse(400, "malformed request: " + ec.message());
    }
    if (ec) return Shut();
    waiting_since = 0;
    auto& h = parser_->get();
    keep_alive_ = h.keep_alive();
    const std::optional<Method> method = MethodOf(h.method());
    const std::string_view target(h.target().data(), h.target().size());
    const size_t q = target.find('?');
    path_ = UrlDecode(target.substr(0, q), false);
    query_ = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
    if (!method) return Refuse(405, "cannot serve " + std::string(h.method_string()) + " " + path_);
    method_ = *method;
    admission_ = s_.router.Admit(method_, path_);
    const size_t limit = std::min(
        admission_.max_body ? admission_.max_body : s_.o.default_body_bytes, s_.o.max_body_bytes);
    const auto length = parser_->content_length();
    const bool has_body = (length && *length > 0) || parser_->chunked();
    if (!admission_.routed()) {
      keep_alive_ = keep_alive_ && !has_body;  // Its body is not read: the connection ends after the 404.
      return Dispatch();
    }
    if (length && *length > limit) {
      return Refuse(413, "a body of " + std::to_string(*length) + " bytes: " + std::string(MethodName(method_)) +
                             " " + path_ + " takes at most " + std::to_string(limit));
    }
    const size_t need = length ? static_cast<size_t>(*length) : parser_->chunked() ? limit : 0;
    if (need > 0 && !s_.ReserveBody(need)) {
      return Refuse(503, "the server is reading as many request bodies as it holds at once; try again");
    }
    reserved_ = need;
    parser_->body_limit(limit);
    const auto expect = h[bhttp::field::expect];
    if (need > 0 && beast::iequals(expect, "100-continue")) {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      Tcp().expires_after(s_.o.write_timeout);
      return net::async_write(*stream_, net::buffer(*cont), [self = Self(), cont](beast::error_code ec, size_t) {
        if (ec) return self->Shut();
        self->ReadBody();
      });
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    Tcp().expires_after(s_.o.body_timeout);
    bhttp::async_read(*stream_, buffer_, *parser_, [self = Self()](beast::error_code ec, size_t) {
      if (ec == bhttp::error::body_limit) return self->Refuse(413, "the request's body is over its route's limit");
      if (ec) return self->Shut();
      self->Dispatch();
    });
  }

  void Dispatch() {
    Tcp().expires_never();
    Request req;
    req.method = method_;
    req.path = path_;
    ParseQuery(query_, req.params);
    for (const auto& f : parser_->get()) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace(std::move(name), std::string(f.value()));
    }
    req.body = std::move(parser_->get().body());
    req.peer = peer_;
    parser_.reset();
    const Lane lane = admission_.lane;  // kQuick for a path no route takes (its 404).
    if (!s_.LaneOf(lane).Submit([self = Self(), req = std::move(req)]() mutable { self->Work(std::move(req)); })) {
      Refuse(503, lane == Lane::kQuick ? "the server has more requests waiting than it queues; try again"
                                       : "the server serves as many log streams and long polls as it can; try again");
    }
  }

  // On a lane's worker.
  void Work(Request req) {
    Response res = s_.router.Handle(std::move(req), admission_);
    if (reserved_) s_.ReleaseBody(std::exchange(reserved_, 0));
    if (!res.stream) {
      return net::post(ex_,
                       [self = Self(), res = std::move(res)]() mutable { self->Answer(std::move(res)); });
    }
    if (admission_.lane == Lane::kStream) return Serve(std::move(res));
    auto shared = std::make_shared<Response>(std::move(res));
    if (!s_.stream.Submit([self = Self(), shared] { self->Serve(std::move(*shared)); })) {
      net::post(ex_, [self = Self()] { self->Refuse(503, "too many log streams; try again"); });
    }
  }

  void Refuse(int status, const std::string& message) {
    keep_alive_ = false;
    Response r;
    r.Error({status == 503 || status == 429 ? ErrorCode::kUnavailable
             : status == 404                ? ErrorCode::kNotFound
                                            : ErrorCode::kInvalidArgument,
             message});
    r.status = status;
    Answer(std::move(r));
  }

  void Answer(Response res) {
    if (closed) return;
    auto out = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(res.status), 11);
    out->set(bhttp::field::content_type, res.content_type);
    if (res.status == 503 || res.status == 429) out->set(bhttp::field::retry_after, "1");
    out->body() = std::move(res.body);
    out->keep_alive(keep_alive_ && !s_.stopping);
    out->prepare_payload();
    Tcp().expires_after(s_.o.write_timeout);
    answering = true;
    bhttp::async_write(*stream_, *out, [self = Self(), out](beast::error_code ec, size_t) {
      self->answering = false;
      if (ec || !out->keep_alive()) return self->Shut();
      self->Wait();
    });
  }

  // On a lane's worker: the answer's chunks written one at a time.
  void Serve(Response res) {
    const std::string head = StatusLine(res.status) + "Content-Type: " + res.stream_type +
                             "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n" +
                             (keep_alive_ ? "" : "Connection: close\r\n") + "\r\n";
    bool done = false;
    StreamSink sink;
    sink.write = [&](const char* d, size_t n) {
      if (n == 0) return true;
      char size[24];
      std::snprintf(size, sizeof size, "%zx\r\n", n);
      return WriteNow(std::string(size) + std::string(d, n) + "\r\n");
    };
    sink.done = [&] { done = true; };
    sink.is_writable = [&] { return !closed && !s_.stopping && PeerOpen(); };
    bool ok = WriteNow(head);
    while (ok && !done) ok = res.stream(sink);
    if (!ok || !WriteNow("0\r\n\r\n") || !keep_alive_) return Close();
    net::post(ex_, [self = Self()] { self->Wait(); });
  }

  // From a lane's worker: one write on the connection's strand, waited for.
  bool WriteNow(std::string data) {
    auto done = std::make_shared<std::promise<bool>>();
    std::future<bool> result = done->get_future();
    auto buf = std::make_shared<std::string>(std::move(data));
    net::post(ex_, [self = Self(), buf, done] {
      if (self->closed) return done->set_value(false);
      self->Tcp().expires_after(self->s_.o.write_timeout);
      net::async_write(*self->stream_, net::buffer(*buf),
                       [buf, done](beast::error_code ec, size_t) { done->set_value(!ec); });
    });
    try {
      return result.get();
    } catch (const std::future_error&) {  // The loop stopped with the write pending.
      return false;
    }
  }

  // Whether the client is still there (a follow that has nothing to write
  // learns of a client gone without waiting for its next line).
  bool PeerOpen() const {
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
  }

  HttpServer::Impl& s_;
  const net::any_io_executor ex_;  // The connection's strand.
  std::optional<tcp::socket> raw_;  // TLS: until its first bytes.
  std::optional<Stream> stream_;
  const std::string peer_;
  const int fd_;
  net::steady_timer timer_;  // TLS: the handshake's deadline.
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Method method_ = Method::kGet;
  std::string path_, query_;
  Admission admission_;
  size_t reserved_ = 0;
  bool keep_alive_ = true;
};

}  // namespace

std::shared_ptr<Conn> HttpServer::Impl::EvictOldestWaiting() {
  // A connection in the map is alive at least until its destructor's
  // Forget takes mu: its fields may be read here without owning it.
  const std::weak_ptr<Conn>* oldest = nullptr;
  int64_t since = 0;
  for (auto& [p, w] : conns) {
    const int64_t t = p->waiting_since;
    if (t > 0 && !p->closed && (!oldest || t < since)) oldest = &w, since = t;
  }
  std::shared_ptr<Conn> c = oldest ? oldest->lock() : nullptr;
  if (c) c->Close();
  return c;
}

void HttpServer::Impl::Accept() {
  acceptor->async_accept(net::make_strand(ioc),
                         [this](beast::error_code ec, tcp::socket sock) { OnAccept(ec, std::move(sock)); });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket sock) {
  if (stopping || ec == net::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors (or another accept error): make room, try again shortly.
    std::shared_ptr<Conn> evicted;
    {
      std::lock_guard lk(mu);
      evicted = EvictOldestWaiting();
    }
    retry.expires_after(std::chrono::milliseconds(50));
    retry.async_wait([this](beast::error_code e) {
      if (!e) Accept();
    });
    return;
  }
  beast::error_code e;
  const tcp::endpoint remote = sock.remote_endpoint(e);
  if (e) return Accept();
  sock.set_option(tcp::no_delay(true), e);
  const std::string peer = remote.address().to_string();
  int refused = 0;
  std::shared_ptr<Conn> evicted;  // Released after mu.
  {
    std::lock_guard lk(mu);
    auto it = per_client.find(peer);
    if (it != per_client.end() && it->second >= o.max_connections_per_client) {
      refused = 429;
    } else if (total >= o.max_connections && !(evicted = EvictOldestWaiting())) {
      refused = 503;
    } else {
      ++per_client[peer];
      ++total;
    }
  }
  if (refused) {
    // Over TLS a refusal cannot be read before a handshake: the connection is closed.
    if (tls) {
      sock.close(e);
    } else {
      RefuseRaw(sock, refused,
                refused == 429 ? "this address holds as many connections as one client may"
                               : "the server holds as many connections as it can");
    }
    return Accept();
  }
  // Known before it starts (it may end at once, on another loop).
  auto start = [this](auto session) {
    {
      std::lock_guard lk(mu);
      conns.emplace(session.get(), session);
    }
    session->Start();
  };
  if (tls) {
    start(std::make_shared<Session<TlsStream>>(*this, std::move(sock), peer));
  } else {
    start(std::make_shared<Session<PlainStream>>(*this, std::move(sock), peer));
  }
  Accept();
}

HttpServer::HttpServer(const Router& router, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(router, std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& host, int port) {
  Impl& s = *impl_;
  if (!s.o.tls_cert_file.empty() || !s.o.tls_key_file.empty()) {
    try {
      s.tls.emplace(ssl::context::tls_server);
      s.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      s.tls->use_certificate_chain_file(s.o.tls_cert_file);
      s.tls->use_private_key_file(s.o.tls_key_file, ssl::context::pem);
    } catch (const std::exception&) {
      s.tls.reset();
      return Err(ErrorCode::kInvalidArgument,
                 "server: cannot use the TLS certificate and key (both PEM files, readable, the key the certificate's)");
    }
  }
  beast::error_code ec;
  const std::string where = host + ":" + (port == 0 ? std::string("any port") : std::to_string(port));
  // An address, or a name: its first IPv4 address, else its first.
  auto found = tcp::resolver(s.ioc).resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || found.empty()) {
    return Err(ErrorCode::kInvalidArgument, "server: cannot listen on " + where + ": " +
                                                (ec ? ec.message() : std::string("no address")));
  }
  tcp::endpoint ep = found.begin()->endpoint();
  for (const auto& entry : found) {
    if (entry.endpoint().address().is_v4()) {
      ep = entry.endpoint();
      break;
    }
  }
  s.acceptor.emplace(s.ioc);
  s.acceptor->open(ep.protocol(), ec);
  if (!ec) s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(ep, ec);
  if (!ec) s.acceptor->listen(SOMAXCONN, ec);
  if (ec) {
    s.acceptor.reset();
    return Err(ErrorCode::kUnavailable, "server: cannot bind " + where + ": " + ec.message());
  }
  port_ = s.acceptor->local_endpoint().port();
  s.Accept();
  s.work.emplace(s.ioc.get_executor());
  for (int i = 0; i < std::max(1, s.o.io_threads); ++i) s.loops.emplace_back([&s] { s.ioc.run(); });
  return Ok();
}

void HttpServer::Stop() {
  Impl& s = *impl_;
  if (s.loops.empty() || s.stopping.exchange(true)) return;
  net::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor->close(ec);
    s.retry.cancel();
  });
  s.CloseAll(/*only_waiting=*/true);
  s.quick.Stop();  // Requests in flight are answered (the loops write the answers).
  s.CloseAll(/*only_waiting=*/false);  // Follows and polls end.
  s.poll.Stop();
  s.stream.Stop();
  // Answers being written finish, then every connection is gone (2 s at most).
  {
    std::unique_lock lk(s.mu);
    s.none_left.wait_for(lk, std::chrono::seconds(2), [&s] { return s.total == 0; });
  }
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.loops) t.join();
  s.loops.clear();
}

}  // namespace sp::http
