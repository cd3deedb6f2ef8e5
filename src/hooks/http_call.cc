#include "hooks/http_call.h"

#include <curl/curl.h>

#include <algorithm>

#include "core/curl_global.h"
#include "core/text.h"

namespace sp {
namespace {

struct Sink {
  std::string* body;
  size_t max;
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * nmemb;
  sink->body->append(data, std::min(n, sink->max - std::min(sink->max, sink->body->size())));
  return n;
}

}  // namespace

HttpAnswer SendHttp(const HttpRequest& req) {
  CurlGlobalInitOnce();
  HttpAnswer a;
  CURL* curl = curl_easy_init();
  if (!curl) {
    a.error = "curl_easy_init failed";
    return a;
  }
  curl_slist* list = nullptr;
  for (const auto& h : req.headers) list = curl_slist_append(list, h.c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  Sink sink{&a.body, req.max_answer};
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  if (req.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  }
  if (IsLoopbackHost(UrlHost(req.url))) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, req.timeout_ms)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, req.user_agent.c_str());
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
  if (rc != CURLE_OK) a.error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  a.connected = a.status != 0;
  a.refused = rc == CURLE_COULDNT_CONNECT;
  a.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
  curl_easy_cleanup(curl);
  curl_slist_free_all(list);
  return a;
}

HttpAnswer SendRetrying(HttpRequest req, Clock& clock, int64_t timeout_ms, Millis max_backoff, int* attempts,
                        const std::function<bool(const HttpAnswer&)>& final) {
  const int64_t deadline = clock.MonotonicMs() + timeout_ms;
  Millis backoff(100);
  for (*attempts = 1;; ++*attempts) {
    req.timeout_ms = deadline - clock.MonotonicMs();
    HttpAnswer a = SendHttp(req);
    if (a.ok() || (final && final(a)) || !a.retryable()) return a;
    if (deadline - clock.MonotonicMs() <= backoff.count()) {
      a.timed_out = true;
      return a;
    }
    clock.Sleep(backoff);
    backoff = std::min<Millis>(backoff * 2, max_backoff);
  }
}

}  // namespace sp
