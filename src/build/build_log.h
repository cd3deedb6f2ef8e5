// The log of a build or a job: one line per output line,
// "<ts ms>\t<step>\t<out|err>\t<text>\n". The text may hold tabs; a line
// never holds a newline. Written by the server (builds it runs, lines
// agents send) and read by followers, the CLI and deploy waiters.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace sp {

struct LogLine {
  int64_t ts_ms = 0;
  std::string step;
  bool is_err = false;
  std::string text;
};
std::string FormatLogLine(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text);
// The same, appended to `out` (a writer reusing one buffer allocates nothing per line).
void AppendLogLine(std::string& out, int64_t ts_ms, const std::string& step, bool is_err, const std::string& text);
// One line without its newline; nullopt when it is not of that form.
std::optional<LogLine> ParseLogLine(const std::string& line);

// A log stops growing at its cap (bytes of lines): the first line that would
// pass it is replaced by the marker line, and nothing follows the marker (a
// capped log ends with exactly one).
inline constexpr int64_t kDefaultLogCapBytes = int64_t{100} << 20;
std::string LogCapMarker(int64_t ts_ms, int64_t cap_bytes);
// Whether the log file at `path` ends with the marker.
bool LogEndsCapped(const std::string& path);
// What of `lines` (whole log lines) to append to an uncapped log of `size`
// bytes: all of them if they fit under `cap_bytes`, else the leading lines
// that fit and the marker.
std::string CappedLogAppend(const std::string& lines, int64_t size, int64_t cap_bytes, int64_t ts_ms);

// A log file appended through a 1 MiB buffer that is written out at least
// every 50 ms (followers read the file) and when full: a chatty step costs
// one write per megabyte, not one per line. Capped as above; a write that
// fails is not an error of the step that printed. Thread-safe.
class LogFileWriter {
 public:
  explicit LogFileWriter(const std::string& path, int64_t cap_bytes = kDefaultLogCapBytes);
  ~LogFileWriter();
  LogFileWriter(const LogFileWriter&) = delete;
  LogFileWriter& operator=(const LogFileWriter&) = delete;
  void Line(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text);
  void Flush();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::FILE* f_;
  bool dirty_ = false, closing_ = false;
  std::string line_;  // Reused for every line.
  int64_t size_ = 0;  // Bytes in the file.
  const int64_t cap_;
  bool capped_ = false;  // The marker is written: nothing more.
  std::thread flusher_;
};

}  // namespace sp
