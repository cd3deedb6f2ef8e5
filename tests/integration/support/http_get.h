// A minimal HTTP client for tests: what an app on a port answers.
#pragma once

#include <optional>
#include <string>

namespace sp::test {

// One HTTP/1.0 GET to 127.0.0.1:<port><path>. Returns the status code and
// body, or nullopt if nothing answered.
struct HttpReply {
  int status = 0;
  std::string body;
};
std::optional<HttpReply> HttpGet(int port, const std::string& path);

}  // namespace sp::test
