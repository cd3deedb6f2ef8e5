// Recording fakes of the seams beyond the engine: processes, pipeline steps,
// version control, and the server's API as an agent or the CLI sees it.
// Each records what it was asked in order and answers what the test set up,
// with errors injected by exact key.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "build/step_runner.h"
#include "build/vcs.h"
#include "client/api_client.h"
#include "core/subprocess.h"
#include "server/http.h"

namespace sp::test {

// Answers by argv[0] + " " + argv[1] ("docker login"); records every argv.
class FakeProcessRunner final : public ProcessRunner {
 public:
  Result<ExitStatus> Run(const CommandSpec& spec) override;
  std::vector<std::vector<std::string>> calls;
  std::vector<std::string> stdin_seen;
  std::map<std::string, ExitStatus> answers;  // Default: exit 0, no output.
  std::map<std::string, Error> cannot_start;
  std::mutex mu;
};

// Answers by the step's argv[0] (for docker steps "docker <verb>"); records
// every command; `lines` are handed to on_line before the answer.
class FakeStepRunner final : public StepRunner {
 public:
  Result<ExitStatus> Run(const StepCommand& cmd) override;
  std::vector<StepCommand> calls;
  std::map<std::string, ExitStatus> answers;
  std::map<std::string, std::vector<std::string>> lines;
  std::function<void(const StepCommand&)> on_run;  // Before answering (a test may cancel here).
};

// A checkout writes `files` into the directory (sallyport.yml at least).
class FakeVcs final : public Vcs {
 public:
  Result<std::vector<RemoteHead>> ListHeads(const std::string& url, Millis timeout, const GitAccess& access) override;
  Status Checkout(const std::string& url, const std::string& branch, const std::string& sha, const std::string& dir,
                  Millis timeout, const LineCallback& on_line, const GitAccess& access) override;
  Result<CommitInfo> ReadCommit(const std::string& dir) override;
  std::map<std::string, std::string> files;  // Relative path -> content.
  std::vector<RemoteHead> heads;
  std::optional<Error> checkout_error;
  std::vector<std::string> calls;
};

// An ApiClient that hands every call to a server's router in this process
// (no sockets), as an agent with `token`. Faults are injected per call:
// `fail` maps "METHOD path-prefix" to the error answered instead (the
// server is not called), once or always.
class RouterClient final : public ApiClient {
 public:
  RouterClient(const http::Router& router, std::string token) : router_(router), token_(std::move(token)) {}
  Result<ApiDoc> Call(const std::string& method, const std::string& path, const std::string& body = "") override;
  Result<std::string> GetText(const std::string& path) override;
  Status Stream(const std::string& path, const std::function<bool(const char* data, size_t n)>& on_data) override;
  std::string server() const override { return "router"; }

  struct Fault {
    Error error;
    bool once = false;
  };
  void Fail(const std::string& method_and_prefix, Error e, bool once = false);
  // "METHOD path" of every call, in order (faulted ones included).
  std::vector<std::string> Calls();
  int Count(const std::string& method_and_prefix);

 private:
  http::Response Send(const std::string& method, const std::string& path, const std::string& body);
  const http::Router& router_;
  std::string token_;
  std::mutex mu_;
  std::map<std::string, Fault> faults_;
  std::vector<std::string> calls_;
};

}  // namespace sp::test
