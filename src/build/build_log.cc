#include "build/build_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string_view>

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

std::string LogCapMarker(int64_t ts_ms, int64_t cap_bytes) {
  return FormatLogLine(ts_ms, "sallyport", true,
                       "log truncated: it reached its cap of " + std::to_string(cap_bytes) +
                           " bytes; later lines are dropped");
}

namespace {
constexpr std::string_view kMarkerTail = "\tsallyport\terr\tlog truncated: ";
}  // namespace

bool LogEndsCapped(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char tail[256];
  struct stat st {};
  ssize_t n = -1;
  if (::fstat(fd, &st) == 0) {
    const int64_t want = std::min<int64_t>(st.st_size, sizeof tail);
    n = ::pread(fd, tail, static_cast<size_t>(want), st.st_size - want);
  }
  ::close(fd);
  if (n <= 0) return false;
  const std::string_view t(tail, static_cast<size_t>(n));
  const size_t last = t.size() > 1 ? t.rfind('\n', t.size() - 2) : std::string_view::npos;
  const std::string_view line = last == std::string_view::npos ? t : t.substr(last + 1);
  // "<ts>" then the marker's fields: a step's own text (which may hold tabs)
  // comes only after its step name and stream.
  const size_t ts_end = line.find_first_not_of("0123456789");
  return ts_end != std::string_view::npos && ts_end > 0 && line.substr(ts_end, kMarkerTail.size()) == kMarkerTail;
}

std::string CappedLogAppend(const std::string& lines, int64_t size, int64_t cap_bytes, int64_t ts_ms) {
  const int64_t room = std::max<int64_t>(0, cap_bytes - size);
  if (static_cast<int64_t>(lines.size()) <= room) return lines;
  // The whole lines that fit: up to the last newline within the room.
  const size_t nl = room > 0 ? lines.rfind('\n', static_cast<size_t>(room - 1)) : std::string::npos;
  std::string out = nl == std::string::npos ? std::string() : lines.substr(0, nl + 1);
  return out + LogCapMarker(ts_ms, cap_bytes);
}

LogFileWriter::LogFileWriter(const std::string& path, int64_t cap_bytes) : f_(OpenForAppend(path)), cap_(cap_bytes) {
  if (f_) {
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    struct stat st {};
    if (::fstat(::fileno(f_), &st) == 0) size_ = st.st_size;
    capped_ = LogEndsCapped(path);
  }
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
  if (!f_ || capped_) return;
  line_.clear();
  AppendLogLine(line_, ts, step, is_err, text);
  if (size_ + static_cast<int64_t>(line_.size()) > cap_) {
    line_ = LogCapMarker(ts, cap_);
    capped_ = true;
  }
  std::fwrite(line_.data(), 1, line_.size(), f_);
  size_ += static_cast<int64_t>(line_.size());
  dirty_ = true;
}

void LogFileWriter::Flush() {
  std::lock_guard l(mu_);
  if (f_) std::fflush(f_);
  dirty_ = false;
}

}  // namespace sp
