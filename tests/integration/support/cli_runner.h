// Runs the real `sallyport` binary from tests: to completion, or streaming
// its --json events so a test can act (e.g. kill -9) at an exact event.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sp::test {

struct CliResult {
  int exit_code = -1;   // 128+signal when killed.
  std::string out, err;
};

// Runs `sallyport <args>` (bounded by `timeout_s`).
CliResult RunSallyport(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                       int timeout_s = 300);
// The same with the test tree's binary (tests/support/sallyport_testbin.cc):
// the CLI with test-only controls switched by `env` (SP_TESTBIN_*).
CliResult RunSallyportTest(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                           int timeout_s = 300);

// Runs any program (argv[0] looked up in PATH) to completion.
CliResult RunProgram(const std::vector<std::string>& argv, int timeout_s = 60);

// Runs `sallyport <args>` and calls `on_line` for each stdout line as it
// arrives; when it returns true the process is sent SIGKILL at once.
// Returns the result (exit_code 137 when killed).
CliResult StreamSallyport(const std::vector<std::string>& args, const std::function<bool(const std::string&)>& on_line,
                          const std::map<std::string, std::string>& env = {}, int timeout_s = 300);

}  // namespace sp::test
