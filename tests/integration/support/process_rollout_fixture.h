// The process runtime's end-to-end bench, shared by the rollout tests that
// drive the real `sallyport rollout` CLI: three sample-app hosts on loopback
// behind a strict HAProxy, wrk load, and the test binary that pauses itself
// at a step.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/cli_runner.h"
#include "support/haproxy_fixture.h"
#include "support/load_generator.h"
#include "support/test_util.h"

namespace sp::test {

class ProcessRolloutTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  void WriteConfig(const std::string& name, const std::string& extra_env);
  // A distinct executable file per version, as a build would produce.
  std::string Artifact(const std::string& version);
  // `rollout run` of `version` on the three hosts, journalled in store_.
  std::vector<std::string> Args(const std::string& version, const std::string& config = "sallyport.yml");
  CliResult Deploy(const std::string& version);
  std::string VersionOn(int i);
  // Running instances of app<i>, through the real adapter (-1: cannot list).
  int RunningOn(int i);
  void ExpectAllUp();
  // `rollout run` of `version` by the test binary, which pauses itself
  // (SIGSTOP) as app2's `step` is about to act; its output in `log`.
  Daemon RunPausedAt(const std::string& version, const std::string& step, const std::string& log);
  // Whether the CLI writing `log` got to its pause.
  static bool PausedIn(const std::string& log);
  std::unique_ptr<LoadGenerator> StartLoad();

  std::unique_ptr<TempDir> dir_;
  std::string store_;  // <dir>/state.db unless a test moves it.
  std::vector<int> ports_;
  std::unique_ptr<HaproxyFixture> haproxy_;
};

}  // namespace sp::test
