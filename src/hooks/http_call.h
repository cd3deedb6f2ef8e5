// One HTTP(S) request with libcurl, as the hooks' adapters make them: no
// redirect followed, no proxy to loopback, a bounded answer, a timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace sp {

struct HttpRequest {
  std::string method = "GET", url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // Sent unless the method is GET.
  int64_t timeout_ms = 10'000;
  size_t max_answer = 4096;          // Bytes of the answer's body kept.
  std::string user_agent = "sallyport";
};

struct HttpAnswer {
  bool connected = false;   // false: nothing answered (refused, unresolved, timed out before an answer).
  bool refused = false;     // The connection was refused.
  bool timed_out = false;
  long status = 0;          // The HTTP status; 0 when nothing answered.
  std::string body, error;  // error: curl's, when the transfer failed.
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
  // Retried by the callers: nothing answered, the receiver is busy, or it failed on its side.
  bool retryable() const { return status == 0 ? refused : status == 429 || status >= 500; }
};

HttpAnswer SendHttp(const HttpRequest& req);

// SendHttp until an answer is final — ok, not retryable, or `final(answer)`
// (may be empty) — or `timeout_ms` has passed: a retryable one (refused,
// 429, 5xx) is sent again after 100 ms, doubling to `max_backoff`, each
// send bounded by the time left. The last answer, with timed_out set when
// the deadline cut it short; *attempts: how many were sent.
HttpAnswer SendRetrying(HttpRequest req, Clock& clock, int64_t timeout_ms, Millis max_backoff, int* attempts,
                        const std::function<bool(const HttpAnswer&)>& final = nullptr);

}  // namespace sp
