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

// A log file appended through a 1 MiB buffer that is written out at least
// every 50 ms (followers read the file) and when full: a chatty step costs
// one write per megabyte, not one per line. Thread-safe.
class LogFileWriter {
 public:
  explicit LogFileWriter(const std::string& path);
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
  std::thread flusher_;
};

}  // namespace sp
