#include "health/http/http_health.h"

#include <curl/curl.h>

#include <algorithm>

#include "core/curl_global.h"
#include "core/text.h"

namespace sp {
namespace {

constexpr size_t kMaxBody = 512;

struct BodySink {
  std::string body;
  bool truncated = false;  // We stopped the transfer on purpose.
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  size_t n = size * nmemb;
  size_t room = kMaxBody - sink->body.size();
  sink->body.append(data, std::min(n, room));
  if (sink->body.size() >= kMaxBody) {
    sink->truncated = true;
    return 0;  // Aborts the transfer (CURLE_WRITE_ERROR): we have what we keep.
  }
  return n;
}


}  // namespace

CurlHealthChecker::CurlHealthChecker() { CurlGlobalInitOnce(); }
CurlHealthChecker::CurlHealthChecker(Route route) : route_(std::move(route)) { CurlGlobalInitOnce(); }

HealthProbe CurlHealthChecker::Probe(const std::string& address, int port, const HealthCheckSpec& spec) {
  HealthProbe probe;
  std::string via;  // A local socket reaching address:port, or empty: connect directly.
  if (route_) {
    auto r = route_(address, port);
    if (!r) {
      probe.error = r.error().message;
      return probe;
    }
    via = std::move(*r);
  }
  std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  std::string path = spec.path.empty() || spec.path.front() != '/' ? "/" + spec.path : spec.path;
  std::string url = "http://" + host + ":" + std::to_string(port) + path;

  CURL* curl = curl_easy_init();
  if (!curl) {
    probe.error = "curl_easy_init failed";
    return probe;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  BodySink sink;
  const long timeout_ms = std::max<long>(1, static_cast<long>(spec.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (!via.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, via.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sallyport-health");

  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);

  const bool deliberate_stop = rc == CURLE_WRITE_ERROR && sink.truncated;
  if (rc != CURLE_OK && !deliberate_stop && status == 0) {
    probe.error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT) probe.error = "timed out: " + probe.error;
    return probe;
  }
  probe.status = static_cast<int>(status);
  probe.body = std::move(sink.body);
  if (rc != CURLE_OK && !deliberate_stop) {
    // Headers arrived but the body did not complete (e.g. timed out mid-body).
    probe.error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  }
  probe.ok = probe.status == spec.expected_status && (rc == CURLE_OK || deliberate_stop);
  return probe;
}

}  // namespace sp
