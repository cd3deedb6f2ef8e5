// Log files over HTTP: a build's or a job's log ("<ts>\t<step>\t<out|err>\t
// <text>" lines, build_log.h) whole from an offset, or followed as
// server-sent events until it ends; and where a job's lines are kept.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "queue/job.h"
#include "server/api_server.h"
#include "server/http.h"

namespace sp {

// Answers with the file at `path` from ?offset=N (default 0), or with
// ?follow=1 as server-sent events until `finished` names how it ended (an
// "end" event carries that name). Read in 64 KiB chunks: a long log is never
// held in memory, and a follower that stops reading is dropped by the write
// timeout without slowing the writer.
void ServeLogFile(const http::Request& req, http::Response& res, const std::string& path,
                  std::function<std::optional<std::string>()> finished);

// The log file's bytes from `offset` (at most 4 MiB at a time; "" when
// there is none yet).
std::string ReadLogFrom(const std::string& path, int64_t offset);

// The build a build job carries (its payload's build_id).
std::optional<int64_t> BuildIdOf(const Job& j);

// Where job `j`'s lines are kept: a build job's are its build's log; ""
// when this server keeps no job logs.
std::string LogPathOf(const ServerContext& ctx, const Job& j);

}  // namespace sp
