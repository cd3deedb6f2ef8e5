// LoadGenerator: real `wrk` load against http://127.0.0.1:<port>, mixing
// fast "/" requests with "/slow?ms=<0..slow_max_ms>" requests over
// keep-alive connections, and parsing wrk's summary into counts of failed
// requests. A summary that cannot be parsed is an error, never zero failures.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/error.h"
#include "support/test_util.h"

namespace sp::test {

struct LoadOptions {
  int port = 0;                 // Target port.
  std::string host = "127.0.0.1";  // Target address (loopback or a lab host).
  int connections = 16;
  int threads = 2;
  // wrk's own duration: the load always ends by then (bounded), even if
  // Stop() is never called.
  std::chrono::seconds max_duration{120};
  double slow_fraction = 0.1;   // Share of requests that go to /slow.
  int slow_max_ms = 2000;       // /slow?ms= is uniform in [0, slow_max_ms].
  std::string work_dir;         // Script and output go here; must outlive the generator.
};

struct LoadResult {
  long requests = 0;        // Completed requests (any status).
  long non2xx = 0;          // "Non-2xx or 3xx responses".
  long connect_errors = 0;  // "Socket errors: connect A, read B, write C, timeout D".
  long read_errors = 0;
  long write_errors = 0;
  long timeouts = 0;
  std::string raw;          // wrk's whole output.
  long failures() const { return non2xx + connect_errors + read_errors + write_errors + timeouts; }
  // "requests=N non2xx=N connect=N read=N write=N timeout=N".
  std::string Summary() const;
};

// Parses wrk 4.x summary text. kInternal (quoting the text) when the
// "N requests in" line is missing or a counter line is malformed.
Result<LoadResult> ParseWrkOutput(const std::string& text);

class LoadGenerator {
 public:
  explicit LoadGenerator(LoadOptions options);
  ~LoadGenerator();  // Kills wrk (by PID) if still running.
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Writes the Lua script, starts wrk, and returns once wrk is running with
  // its connections opened (polled, at most 10 s).
  Status Start();
  // Interrupts wrk (SIGINT: it stops and prints its summary), waits for it
  // to exit (at most 15 s) and parses the summary.
  Result<LoadResult> Stop();
  // Waits up to `timeout` for wrk to finish its own duration, then parses.
  Result<LoadResult> Wait(std::chrono::milliseconds timeout);
  std::string output_path() const { return options_.work_dir + "/wrk.out"; }

 private:
  Result<LoadResult> Collect(std::chrono::milliseconds timeout);

  LoadOptions options_;
  Daemon daemon_;
  bool exited_ = false;
};

// Starts a generator; when it cannot start, fails the current test and
// returns nullptr.
std::unique_ptr<LoadGenerator> StartLoad(const LoadOptions& options);

}  // namespace sp::test
