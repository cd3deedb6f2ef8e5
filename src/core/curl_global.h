// CurlGlobalInitOnce: curl_global_init, once per process, before the first
// easy handle (header-only, for the libraries that link libcurl).
#pragma once

#include <curl/curl.h>

#include <mutex>

namespace sp {

inline void CurlGlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace sp
