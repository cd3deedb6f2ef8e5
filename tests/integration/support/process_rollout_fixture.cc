#include "support/process_rollout_fixture.h"

#include <chrono>
#include <filesystem>

#include "runtime/process/process_runtime.h"
#include "support/rollout_scenario.h"
#include "transport/local/local_transport.h"

namespace sp::test {

void ProcessRolloutTest::SetUp() {
  dir_ = std::make_unique<TempDir>("sp-e2e");
  store_ = *dir_ / "state.db";
  haproxy_ = std::make_unique<HaproxyFixture>(dir_->path(), ScenarioHaproxy(3, &ports_));
  auto st = haproxy_->Start();
  ASSERT_TRUE(st) << st.error().message;
  WriteConfig("sallyport.yml", "");
  WriteFile(*dir_ / "inventory.yml", InventoryYaml({haproxy_->socket_path(), ports_, *dir_ / "apps", ""}));
  std::filesystem::create_directories(*dir_ / "apps");
}

void ProcessRolloutTest::TearDown() {
  // Stop every app instance we started (by their pid files, through the real adapter).
  StopScenarioApps(*dir_ / "apps", 3);
  haproxy_.reset();
}

void ProcessRolloutTest::WriteConfig(const std::string& name, const std::string& extra_env) {
  WriteFile(*dir_ / name, ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 20}", extra_env));
}

std::string ProcessRolloutTest::Artifact(const std::string& version) {
  std::string d = *dir_ / ("artifacts/" + version);
  std::filesystem::create_directories(d);
  std::string path = d + "/sp-sample-app";
  if (!FileExists(path)) std::filesystem::copy_file(BuildBinary("sp-sample-app"), path);
  return path;
}

std::vector<std::string> ProcessRolloutTest::Args(const std::string& version, const std::string& config) {
  return {"rollout", "run", "-c", *dir_ / config, "-i", *dir_ / "inventory.yml", "-d", "integration", "--store",
          store_, "--artifact", Artifact(version), "--version", version};
}

CliResult ProcessRolloutTest::Deploy(const std::string& version) {
  auto r = RunSallyport(Args(version));
  if (r.exit_code != 0) ADD_FAILURE() << "deploy " << version << " failed:\n" << r.out << r.err;
  return r;
}

std::string ProcessRolloutTest::VersionOn(int i) { return ::sp::test::VersionOn(ports_[i - 1]); }

int ProcessRolloutTest::RunningOn(int i) {
  LocalTransport t;
  ProcessOptions po;
  po.base_dir = *dir_ / "apps";
  ProcessRuntime rt(t, po);
  auto list = rt.List(RuntimeTarget{HostRef{"app" + std::to_string(i), "127.0.0.1", "", 22}, "web", "integration"});
  if (!list) return -1;
  int n = 0;
  for (const auto& inst : *list) n += inst.running;
  return n;
}

void ProcessRolloutTest::ExpectAllUp() { ::sp::test::ExpectAllUp(*haproxy_, 3); }

Daemon ProcessRolloutTest::RunPausedAt(const std::string& version, const std::string& step, const std::string& log) {
  std::vector<std::string> argv = Args(version);
  argv.insert(argv.begin(), BuildBinary("sallyport-test"));
  return Daemon(argv, log, {{"SP_TESTBIN_HALT_AFTER", "app2:" + step + ":begin"}});
}

bool ProcessRolloutTest::PausedIn(const std::string& log) {
  return WaitFor([&] { return ReadFile(log).find("TEST halting after") != std::string::npos; },
                 std::chrono::seconds(60));
}

std::unique_ptr<LoadGenerator> ProcessRolloutTest::StartLoad() {
  LoadOptions lo;
  lo.port = haproxy_->frontend_port();
  lo.slow_fraction = 0.5;
  lo.work_dir = dir_->path();
  return ::sp::test::StartLoad(lo);
}

}  // namespace sp::test
