// Printing a build's or a job's log: from a server (whole, or followed as
// server-sent events) or from the local file; "step | text" lines, or with
// --output json one {ts_ms, step, stream, text} object a line.
#pragma once

#include <functional>
#include <string>

#include "cli/command.h"

namespace sp::cli {

// Prints the complete log lines of `text` ("step | text", or JSON objects).
void PrintLogLines(const std::string& text, bool json);

int StreamServerLog(Context& ctx, const std::string& path, const std::string& what);
// Reads `path` from the start; with --follow until `finished` says so.
int FollowLocalLog(Context& ctx, const std::string& path, const std::function<bool()>& finished);

}  // namespace sp::cli
