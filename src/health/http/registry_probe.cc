#include "health/http/registry_probe.h"

#include "core/curl_global.h"

#include <curl/curl.h>

#include "core/text.h"

namespace sp {

Result<ImageRef> ParseImageRef(const std::string& ref) {
  if (!IsValidImageRef(ref)) return Err(ErrorCode::kInvalidArgument, "invalid image reference '" + ref + "'");
  ImageRef out;
  out.registry = ImageRegistry(ref);
  std::string rest = out.registry.empty() ? ref : ref.substr(out.registry.size() + 1);
  auto at = rest.find('@');
  if (at != std::string::npos) {
    out.reference = rest.substr(at + 1);
    rest = rest.substr(0, at);
  } else {
    auto colon = rest.rfind(':');
    if (colon != std::string::npos) {
      out.reference = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    } else {
      out.reference = "latest";
    }
  }
  out.repository = rest;
  return out;
}

Status CheckManifest(const std::string& image, const std::string& username, const std::string& password,
                     Millis timeout, const std::string& unix_socket) {
  SP_ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(image));
  if (ref.registry.empty()) {
    return Err(ErrorCode::kInvalidArgument, "image '" + image + "' names no registry (use host:port/repo)");
  }
  CurlGlobalInitOnce();
  CURL* c = curl_easy_init();
  if (!c) return Err(ErrorCode::kInternal, "curl init failed");
  std::string url = "http://" + ref.registry + "/v2/" + ref.repository + "/manifests/" + ref.reference;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers,
                              "Accept: application/vnd.docker.distribution.manifest.v2+json, "
                              "application/vnd.docker.distribution.manifest.list.v2+json, "
                              "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_socket.c_str());
  curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  if (!username.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    return Err(ErrorCode::kUnavailable, "registry " + ref.registry + " unreachable: " + curl_easy_strerror(rc));
  }
  if (status == 200) return Ok();
  if (status == 401 || status == 403) {
    return Err(ErrorCode::kInvalidArgument, "registry " + ref.registry + " rejected the credentials of user '" +
                                                username + "' (HTTP " + std::to_string(status) + ")");
  }
  if (status == 404) return Err(ErrorCode::kNotFound, "image not found in registry " + ref.registry);
  return Err(ErrorCode::kUnavailable, "registry " + ref.registry + " answered HTTP " + std::to_string(status));
}

}  // namespace sp
