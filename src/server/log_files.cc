#include "server/log_files.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

namespace sp {

std::optional<int64_t> BuildIdOf(const Job& j) {
  if (j.spec.kind != "build") return std::nullopt;
  http::Doc p = http::Doc::parse(j.spec.payload, nullptr, false);
  if (!p.is_object() || !p.contains("build_id") || !p["build_id"].is_number_integer()) return std::nullopt;
  return p["build_id"].get<int64_t>();
}

std::string LogPathOf(const ServerContext& ctx, const Job& j) {
  if (auto build = BuildIdOf(j); build && ctx.options.builds) return ctx.options.builds->LogPath(*build);
  return ctx.options.job_log_dir.empty() ? "" : JobLogPath(ctx.options.job_log_dir, j.id);
}

namespace {

// The state of one log being served.
struct LogCursor {
  std::string path;
  bool follow = false;
  long offset = 0;
  std::string pending;  // A partial line (follow).
  std::function<std::optional<std::string>()> finished;

  // One step of the stream; see ServeLogFile.
  bool Next(http::StreamSink& sink) {
    for (;;) {
      char buf[65536];
      size_t got = 0;
      if (std::FILE* f = std::fopen(path.c_str(), "re")) {
        std::fseek(f, offset, SEEK_SET);
        got = std::fread(buf, 1, sizeof buf, f);
        std::fclose(f);
      }
      if (got > 0) {
        offset += static_cast<long>(got);
        if (!follow) return sink.write(buf, got);
        return WriteEvents(sink, buf, got);
      }
      const std::optional<std::string> done = follow ? finished() : std::optional<std::string>("");
      if (done) {
        // Read once more after seeing it done: lines written just before.
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        if (follow && !ec && offset < static_cast<long>(size)) continue;
        if (follow) {
          const std::string end = "event: end\ndata: " + *done + "\n\n";
          sink.write(end.data(), end.size());
        }
        sink.done();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!sink.is_writable()) return false;
    }
  }

  bool WriteEvents(http::StreamSink& sink, const char* buf, size_t got) {
    pending.append(buf, got);
    std::string events;
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      events += "data: " + pending.substr(start, nl - start) + "\n\n";
    }
    pending.erase(0, start);
    return events.empty() ? true : sink.write(events.data(), events.size());
  }
};

}  // namespace

void ServeLogFile(const http::Request& req, http::Response& res, const std::string& path,
                  std::function<std::optional<std::string>()> finished) {
  auto cursor = std::make_shared<LogCursor>();
  cursor->path = path;
  cursor->follow = req.Param("follow") == "1";
  cursor->offset = std::max<long>(0, req.IntParam("offset", 0));
  cursor->finished = std::move(finished);
  res.status = 200;
  res.stream_type = cursor->follow ? "text/event-stream" : "text/plain";
  res.stream = [cursor](http::StreamSink& sink) { return cursor->Next(sink); };
}

std::string ReadLogFrom(const std::string& path, int64_t offset) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rbe");
  if (!f) return out;
  if (std::fseek(f, static_cast<long>(offset), SEEK_SET) == 0) {
    char buf[65536];
    size_t got;
    while (out.size() < (4u << 20) && (got = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, got);
  }
  std::fclose(f);
  return out;
}

}  // namespace sp
