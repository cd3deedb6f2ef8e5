#include "build/build_log.h"

#include <chrono>
#include <cstdlib>

#include "core/file.h"

namespace sp {

void AppendLogLine(std::string& out, int64_t ts_ms, const std::string& step, bool is_err, const std::string& text) {
  char ts[24];
  const int n = std::snprintf(ts, sizeof ts, "%lld\t", static_cast<long long>(ts_ms));
  out.append(ts, static_cast<size_t>(n)).append(step).append(is_err ? "\terr\t" : "\tout\t").append(text).push_back('\n');
}

std::string FormatLogLine(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text) {
  std::string out;
  AppendLogLine(out, ts_ms, step, is_err, text);
  return out;
}

std::optional<LogLine> ParseLogLine(const std::string& line) {
  const size_t a = line.find('\t');
  const size_t b = a == std::string::npos ? a : line.find('\t', a + 1);
  const size_t c = b == std::string::npos ? b : line.find('\t', b + 1);
  if (c == std::string::npos) return std::nullopt;
  LogLine l;
  l.ts_ms = std::atoll(line.substr(0, a).c_str());
  l.step = line.substr(a + 1, b - a - 1);
  l.is_err = line.compare(b + 1, c - b - 1, "err") == 0;
  l.text = line.substr(c + 1);
  return l;
}

LogFileWriter::LogFileWriter(const std::string& path) : f_(OpenForAppend(path)) {
  if (f_) std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  flusher_ = std::thread([this] {
    std::unique_lock l(mu_);
    while (!cv_.wait_for(l, std::chrono::milliseconds(50), [this] { return closing_; })) {
      if (dirty_ && f_) std::fflush(f_);
      dirty_ = false;
    }
  });
}

LogFileWriter::~LogFileWriter() {
  {
    std::lock_guard l(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  flusher_.join();
  if (f_) std::fclose(f_);
}

void LogFileWriter::Line(int64_t ts, const std::string& step, bool is_err, const std::string& text) {
  std::lock_guard l(mu_);
  if (!f_) return;
  line_.clear();
  AppendLogLine(line_, ts, step, is_err, text);
  std::fwrite(line_.data(), 1, line_.size(), f_);
  dirty_ = true;
}

void LogFileWriter::Flush() {
  std::lock_guard l(mu_);
  if (f_) std::fflush(f_);
  dirty_ = false;
}

}  // namespace sp
