#include "cli/logs.h"

#include <cstdio>
#include <thread>

#include "build/build_log.h"
#include "core/text.h"

namespace sp::cli {

// Prints the complete log lines of `text`.
void PrintLogLines(const std::string& text, bool json) {
  for (const auto& line : Split(text, '\n')) {
    auto l = ParseLogLine(line);
    if (!l) continue;
    if (json) {
      PrintJsonLine({{"ts_ms", l->ts_ms}, {"step", l->step}, {"stream", l->is_err ? "err" : "out"}, {"text", l->text}});
    } else {
      std::printf("%-12s | %s\n", l->step.c_str(), l->text.c_str());
    }
  }
  std::fflush(stdout);
}

int StreamServerLog(Context& ctx, const std::string& path, const std::string& what) {
  auto api = ctx.Api();
  if (!api) return Fail(api.error());
  const bool follow = ctx.a.follow;
  std::string pending;
  Status st = (*api)->Stream(path + (follow ? "?follow=1" : ""), [&](const char* data, size_t n) {
    pending.append(data, n);
    size_t start = 0;
    std::string lines;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string l = pending.substr(start, nl - start);
      if (!follow) lines += l + "\n";
      else if (StartsWith(l, "data: ")) lines += l.substr(6) + "\n";
    }
    pending.erase(0, start);
    PrintLogLines(lines, ctx.json());
    return true;
  });
  if (!st) return Fail(st.error().Wrap(what));
  return kExitOk;
}

int FollowLocalLog(Context& ctx, const std::string& path, const std::function<bool()>& finished) {
  long offset = 0;
  std::string pending;
  for (;;) {
    const bool done = !ctx.a.follow || finished();
    if (std::FILE* f = std::fopen(path.c_str(), "re")) {
      std::fseek(f, offset, SEEK_SET);
      char buf[65536];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) {
        offset += static_cast<long>(n);
        pending.append(buf, n);
        const size_t cut = pending.rfind('\n');
        if (cut == std::string::npos) continue;
        PrintLogLines(pending.substr(0, cut + 1), ctx.json());
        pending.erase(0, cut + 1);
      }
      std::fclose(f);
    }
    if (done) return kExitOk;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace sp::cli
