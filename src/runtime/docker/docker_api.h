// DockerApi: one request to the Docker Engine API over a unix socket, with
// libcurl. DockerRuntime uses it, through a socket the transport forwards from
// the host (an SSH stream-local forward on the host's own connection), for
// the calls on a rollout's critical path: a request costs one round trip
// instead of a docker CLI start on the host (~15-20 ms each, measured in the
// lab; docs/benchmarks.md).
//
// Paths are unversioned (the engine's own version), so the same requests work
// against engines older and newer than the one they were written for.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"

namespace sp {

struct ApiResponse {
  long status = 0;   // HTTP status.
  std::string body;  // At most 8 MiB; more is an error.

  // The engine's error text ({"message": ...}), else the body, else "HTTP <status>".
  std::string Message() const;
};

// An Engine API answer as a Status: one of the `ok` statuses, else the
// engine's own message after `what` (kUnavailable).
Status Expect(const ApiResponse& r, std::initializer_list<long> ok, const std::string& what);

// A container's name in an entry of GET /containers/json (the first of its
// "Names", without the leading '/'); "" when it has none.
std::string ContainerNameIn(const nlohmann::json& entry);

// `target` is path and query ("/containers/json?all=1"). `body`, when not
// empty, is sent as application/json. `headers` are extra "Name: value" lines.
// With `on_line`, the reply is a stream (a pull's progress): each line goes to
// it as it arrives and only the last 64 KiB stay in the response's body, so a
// long stream never hits the 8 MiB limit.
// An Error (kUnavailable, kTimeout) means no HTTP response arrived: the socket
// could not be reached, the connection closed early, or `timeout` passed.
Result<ApiResponse> DockerApiCall(const std::string& socket, const std::string& method, const std::string& target,
                                  const std::string& body, const std::vector<std::string>& headers, Millis timeout,
                                  const std::function<void(std::string_view line)>& on_line = nullptr);

// Percent-encodes `s` for a query string value.
std::string UrlEncode(const std::string& s);

}  // namespace sp
