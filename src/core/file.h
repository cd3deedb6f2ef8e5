// Reading whole local files (config, secrets, logs of child processes).
#pragma once

#include <cstdio>
#include <string>

#include "core/error.h"

namespace sp {

// The whole file; kNotFound when it does not exist, kInvalidArgument for a
// directory, kUnavailable when it cannot be read.
Result<std::string> ReadTextFile(const std::string& path);

// Creates `path` with `mode` (never an existing file: kConflict) and writes
// `content`; a partly written file is removed.
Status WriteNewFile(const std::string& path, const std::string& content, int mode);

// Replaces `path` with `content` at once (a temporary file beside it, then
// rename): a reader sees the old or the new file, never part of one. Keeps an
// existing file's mode; a new one gets `mode_if_new`.
Status ReplaceFile(const std::string& path, const std::string& content, int mode_if_new = 0600);

// `path` opened for appending, created with `mode` when new (logs: 0600,
// they may hold what a step printed); nullptr when it cannot be.
std::FILE* OpenForAppend(const std::string& path, int mode = 0600);

// Retention: removes the regular files directly in `dir` whose names end
// with `suffix` and that were last modified before `before_wall_ms` (ms
// since the epoch); how many. A missing directory has none.
int RemoveFilesOlderThan(const std::string& dir, const std::string& suffix, int64_t before_wall_ms);

}  // namespace sp
