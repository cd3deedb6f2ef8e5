// Small parsing and validation helpers for values that come from outside:
// durations ("500ms", "30s", "2m"), batch sizes ("1", "3", "25%"), names,
// image references. All return a clear Error naming what was wrong.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace sp {

// "250ms", "10s", "2m", "1h"; a bare integer is seconds.
Result<Millis> ParseDuration(std::string_view text);
std::string FormatDuration(Millis d);
// Wall-clock milliseconds as "2026-12-06 18:30:01Z" (UTC); "" for 0.
std::string FormatUtc(int64_t wall_ms);

// A count or a percentage: "1", "3", "25%". Resolve() turns it into a count
// for a fleet of `total` (percentages round up, at least 1 when total > 0).
struct CountOrPercent {
  int value = 1;
  bool percent = false;
  int Resolve(int total) const;
  std::string ToString() const;
};
Result<CountOrPercent> ParseCountOrPercent(std::string_view text);

// Names of releases, deployments, stacks, services: [a-z0-9][a-z0-9-]{0,62}.
bool IsValidName(std::string_view s);
// User names of personal deployments: [a-z0-9][a-z0-9-]{0,31}.
bool IsValidUser(std::string_view user);
// Host names in the inventory: letters, digits, '-', '.', '_' (1..253 chars).
bool IsValidHostName(std::string_view s);
// An address: IPv4 dotted quad or a DNS name.
bool IsValidAddress(std::string_view s);
// "host:port" (port 1..65535), or also a bare host unless `port_required`.
bool IsValidHostPort(std::string_view s, bool port_required);
// The host of "scheme://[user@]host[:port][/...]" ("[::1]" gives "::1"); "" when there is none.
std::string UrlHost(std::string_view url);
// 127.0.0.0/8, ::1 or localhost: where plain HTTP may carry a token.
bool IsLoopbackHost(std::string_view host);
// Env var names: [A-Za-z_][A-Za-z0-9_]*.
bool IsValidEnvName(std::string_view s);
// A Docker image reference as docker reads it (core/image_ref.h).
bool IsValidImageRef(std::string_view s);
// The registry host of an image reference ("10.0.0.3:5000" of
// "10.0.0.3:5000/app@sha256:..."), by Docker's rule: the first path component
// when it has a '.' or ':' or is "localhost"; else "docker.io" (Docker Hub);
// "" when it is no image reference.
std::string ImageRegistry(std::string_view image_ref);
// Base64 with padding; `url`: the URL-safe alphabet ('-' and '_' for '+' and '/').
std::string Base64(std::string_view in, bool url = false);
// Text that can be a single argv entry and a line of an env file: no NUL, no newline.
bool IsSafeValue(std::string_view s);

// "host:port" or "[v6]:port" split and checked (port 1..65535, host not
// empty); with default_port > 0 a bare "host" is accepted too.
struct HostPort {
  std::string host;
  int port = 0;
};
std::optional<HostPort> ParseHostPort(std::string_view s, int default_port = 0);

std::vector<std::string> Split(std::string_view s, char sep);
std::string Trim(std::string_view s);
// An outside string made safe to show in one line of a message or log:
// control and non-ASCII bytes as \\xNN, cut at 120 bytes ("...").
std::string Printable(std::string_view s);
// %XX sequences decoded (a malformed one kept as it is); with
// plus_is_space, '+' as a space (a query string's form encoding).
std::string UrlDecode(std::string_view s, bool plus_is_space);
// Percent-encodes everything but unreserved characters (RFC 3986) for a URL's path segment or query value.
std::string UrlQuery(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
// `s` without its trailing '\n' and '\r' bytes (a file's or a command's last line break).
std::string StripLineBreaks(std::string s);
// Last `n` lines of `text`.
std::string LastLines(std::string_view text, int n);

}  // namespace sp
