#include "runtime/docker/docker_api.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/curl_global.h"
#include "core/text.h"

namespace sp {

namespace {

constexpr size_t kMaxBody = 8 << 20;


constexpr size_t kStreamTail = 64 << 10;

struct Sink {
  std::string body;
  bool overflow = false;
  const std::function<void(std::string_view)>* on_line = nullptr;
  std::string partial;  // Streaming: the line not yet ended.
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * nmemb;
  if (sink->on_line && *sink->on_line) {
    sink->partial.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = sink->partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      (*sink->on_line)(std::string_view(sink->partial).substr(start, nl - start));
    }
    sink->partial.erase(0, start);
    if (sink->partial.size() > kMaxBody) {  // One line over 8 MiB: not a progress stream.
      sink->overflow = true;
      return 0;
    }
    sink->body.append(data, n);
    if (sink->body.size() > 2 * kStreamTail) sink->body.erase(0, sink->body.size() - kStreamTail);
    return n;
  }
  if (sink->body.size() + n > kMaxBody) {
    sink->overflow = true;
    return 0;
  }
  sink->body.append(data, n);
  return n;
}

}  // namespace

std::string ApiResponse::Message() const {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  const std::string text = StripLineBreaks(body);
  if (!text.empty()) return text.substr(0, 500);
  return "HTTP " + std::to_string(status);
}

std::string UrlEncode(const std::string& s) {
  CurlGlobalInitOnce();
  // libcurl's own escaping (the handle argument is unused since 7.82):
  // everything but ALPHA / DIGIT / "-._~" becomes %XX.
  std::unique_ptr<char, decltype(&curl_free)> out(curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size())),
                                                  &curl_free);
  return out ? std::string(out.get()) : std::string();
}

Result<ApiResponse> DockerApiCall(const std::string& socket, const std::string& method, const std::string& target,
                                  const std::string& body, const std::vector<std::string>& headers, Millis timeout,
                                  const std::function<void(std::string_view line)>& on_line) {
  CurlGlobalInitOnce();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Err(ErrorCode::kInternal, "docker API: curl_easy_init failed");
  CURL* h = curl.get();
  const std::string url = "http://docker" + target;
  Sink sink;
  sink.on_line = &on_line;
  curl_slist* list = nullptr;
  for (const auto& line : headers) list = curl_slist_append(list, line.c_str());
  if (!body.empty()) list = curl_slist_append(list, "Content-Type: application/json");
  list = curl_slist_append(list, "Expect:");  // No 100-continue round trip.
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(list, &curl_slist_free_all);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, timeout.count())));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(10'000, timeout.count())));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  const CURLcode rc = curl_easy_perform(h);
  if (sink.overflow) return Err(ErrorCode::kInternal, "docker API " + method + " " + target + ": reply over 8 MiB");
  if (rc != CURLE_OK) {
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return Err(rc == CURLE_OPERATION_TIMEDOUT ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
               "docker API " + method + " " + target + ": " + why);
  }
  ApiResponse out;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  if (on_line && !sink.partial.empty()) on_line(sink.partial);  // A last line without a newline.
  out.body = std::move(sink.body);
  return out;
}

std::string ContainerNameIn(const nlohmann::json& c) {
  std::string name;
  if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty() && c["Names"][0].is_string()) {
    name = c["Names"][0].get<std::string>();
    if (!name.empty() && name[0] == '/') name.erase(0, 1);
  }
  return name;
}

Status Expect(const ApiResponse& r, std::initializer_list<long> ok, const std::string& what) {
  if (std::find(ok.begin(), ok.end(), r.status) != ok.end()) return Ok();
  return Err(ErrorCode::kUnavailable, what + ": " + r.Message());
}

}  // namespace sp
