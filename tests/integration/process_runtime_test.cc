// ProcessRuntime over LocalTransport against the real start-stop-daemon and
// real processes. Every instance a test starts is stopped in TearDown through
// the runtime (by its verified pid file), even when the test fails.
#include "runtime/process/process_runtime.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/text.h"
#include "health/http/http_health.h"
#include "support/test_util.h"
#include "transport/local/local_transport.h"

namespace sp {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Writes $PORT, $SECRET_X and its args to $OUT_FILE, prints two log lines,
// then waits on a child sleep (so a stray group member exists to clean up).
constexpr const char kScriptApp[] = R"SH(#!/bin/sh
sleep 1000 &
printf 'port=%s secret=%s leak=%s args=%s cwd=%s sleep=%s\n' "$PORT" "$SECRET_X" "${SP_IT_LEAK:-none}" "$*" "$(pwd)" "$!" > "$OUT_FILE.tmp"
mv "$OUT_FILE.tmp" "$OUT_FILE"
echo "log line one"
echo "log line two" >&2
wait
)SH";

// Ignores SIGTERM (the ignore survives exec) and sleeps.
constexpr const char kStubbornApp[] = R"SH(#!/bin/sh
trap '' TERM
echo ready > "$OUT_FILE"
exec sleep 1000
)SH";

std::string ProcText(pid_t pid, const char* what) {
  std::string s = test::ReadFile("/proc/" + std::to_string(pid) + "/" + what);
  for (char& c : s) {
    if (c == '\0') c = '\n';
  }
  return s;
}

bool ProcessGoneOrZombie(pid_t pid) {
  std::string stat = test::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

// The files under `dir` whose bytes hold `needle`, one per line ("" none).
std::string FilesHolding(const std::string& dir, const std::string& needle) {
  std::string found;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != decltype(it)(); it.increment(ec)) {
    if (it->is_regular_file(ec) && test::ReadFile(it->path()).find(needle) != std::string::npos) {
      found += it->path().string() + "\n";
    }
  }
  return found;
}

int ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

class ProcessRuntimeIT : public ::testing::Test {
 protected:
  ProcessRuntimeIT() : runtime_(transport_, Options()) {}

  ProcessOptions Options() {
    ProcessOptions o;
    o.base_dir = tmp_ / "apps";
    o.command_timeout = milliseconds(30'000);
    return o;
  }

  void SetUp() override {
    if (test::FindProgram("start-stop-daemon").empty()) GTEST_SKIP() << "start-stop-daemon not installed";
    std::filesystem::create_directories(tmp_ / "apps");
    std::filesystem::create_directories(tmp_ / "out");
  }

  // Stops whatever is still running on the targets this test used.
  void TearDown() override {
    for (const auto& t : used_) {
      auto list = runtime_.List(t);
      if (!list) continue;
      for (const auto& inst : *list) {
        if (inst.running) (void)runtime_.Stop(t, inst, milliseconds(0));
      }
    }
  }

  RuntimeTarget Target(const std::string& host) {
    RuntimeTarget t;
    t.host = {host, "127.0.0.1", "", 22};
    t.release = "shop";
    t.deployment = "prod";
    used_.push_back(t);
    return t;
  }

  std::string Artifact(const std::string& name, const std::string& content) {
    std::string path = tmp_ / name;
    test::WriteFile(path, content, 0755);
    return path;
  }

  AppSpec App(const std::string& rollout_id, const std::string& artifact, const std::string& out_file) {
    AppSpec app;
    app.release = "shop";
    app.deployment = "prod";
    app.rollout_id = rollout_id;
    app.version = "v-" + rollout_id;
    app.artifact = artifact;
    app.port = 18080;
    app.command = {"first arg", "$(id)"};
    app.env = {{"SECRET_X", "s3cr3t value 'with' $quotes"}, {"OUT_FILE", out_file}};
    app.stop_timeout = milliseconds(10'000);
    return app;
  }

  // sp-sample-app as instance `id` (version `version`) on a free port.
  AppSpec SampleApp(const std::string& id, const std::string& version) {
    AppSpec app = App(id, test::BuildBinary("sp-sample-app"), "");
    app.command = {};
    app.env = {{"APP_VERSION", version}};
    app.port = test::FreePort();
    return app;
  }
  // Pulls and starts `app` on `t`; returns once its port answers.
  void Launch(const RuntimeTarget& t, const AppSpec& app) {
    ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
    ASSERT_TRUE(runtime_.Start(t, app).has_value());
    ASSERT_TRUE(test::WaitFor([&] { return test::PortOpen(app.port); }, milliseconds(5000)));
  }

  std::string HostDir(const RuntimeTarget& t) { return tmp_ / ("apps/shop/prod/" + t.host.name); }

  // The instance's supervisor (the pid file's process).
  pid_t PidOf(const RuntimeTarget& t, const std::string& id) {
    std::string s = test::ReadFile(HostDir(t) + "/run/" + id + ".pid");
    return s.empty() ? -1 : std::atoi(s.c_str());
  }
  // The app its supervisor runs (its child), once started; -1 if none.
  pid_t AppPidOf(const RuntimeTarget& t, const std::string& id) {
    const pid_t sup = PidOf(t, id);
    pid_t app = -1;
    test::WaitFor([&] {
      std::string kids = test::ReadFile("/proc/" + std::to_string(sup) + "/task/" + std::to_string(sup) + "/children");
      app = kids.empty() ? -1 : std::atoi(kids.c_str());
      return app > 0;
    }, milliseconds(5000));
    return app;
  }

  Instance Inst(const std::string& id) {
    Instance i;
    i.id = id;
    return i;
  }

  test::TempDir tmp_{"sp-it-proc"};
  LocalTransport transport_;
  ProcessRuntime runtime_;
  std::vector<RuntimeTarget> used_;
};

TEST_F(ProcessRuntimeIT, StartRunsDetachedWithEnvFromFileAndStopKeepsTheRelease) {
  ::setenv("SP_IT_LEAK", "from-sallyport", 1);  // Must not reach the app.
  auto t = Target("host-a");
  const std::string out = tmp_ / "out/a.txt";
  AppSpec app = App("r1", Artifact("app.sh", kScriptApp), out);
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  EXPECT_TRUE(*runtime_.HasArtifact(t, app));
  AppSpec other = app;
  other.rollout_id = "r2";
  EXPECT_FALSE(*runtime_.HasArtifact(t, other));

  auto inst = runtime_.Start(t, app);
  ::unsetenv("SP_IT_LEAK");
  ASSERT_TRUE(inst.has_value()) << inst.error().message;
  EXPECT_EQ(inst->id, "r1");
  EXPECT_EQ(inst->version, "v-r1");
  ASSERT_TRUE(test::WaitFor([&] { return test::FileExists(out); }, milliseconds(5000)));
  const std::string release = HostDir(t) + "/releases/r1";
  EXPECT_EQ(test::ReadFile(out), "port=18080 secret=s3cr3t value 'with' $quotes leak=none args=first arg $(id) cwd=" +
                                     release + " sleep=" + Split(test::ReadFile(out), '=').back());
  // A running instance's env rests in no file: the supervisor read it and removed it.
  EXPECT_FALSE(test::FileExists(release + "/env"));
  EXPECT_EQ(FilesHolding(HostDir(t), "s3cr3t"), "");
  EXPECT_EQ(ModeOf(release + "/app"), 0755);

  const pid_t pid = AppPidOf(t, "r1");
  ASSERT_GT(pid, 0);
  EXPECT_NE(ProcText(pid, "environ").find("SECRET_X=s3cr3t value 'with' $quotes\n"), std::string::npos);
  EXPECT_NE(ProcText(pid, "cmdline").find(release + "/app\nfirst arg\n$(id)\n"), std::string::npos);
  EXPECT_EQ(ProcText(pid, "cmdline").find("s3cr3t"), std::string::npos);
  const pid_t child = std::atoi(Split(Trim(test::ReadFile(out)), '=').back().c_str());
  ASSERT_GT(child, 0);

  auto list = runtime_.List(t);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].running);
  EXPECT_EQ((*list)[0].artifact, app.artifact);
  EXPECT_EQ((*list)[0].rollout_id, "r1");
  EXPECT_GT((*list)[0].created_ms, 0);

  auto again = runtime_.Start(t, app);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);

  const auto t0 = steady_clock::now();
  ASSERT_TRUE(runtime_.Stop(t, *inst, milliseconds(10'000)).has_value());
  const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0);
  // Dies at once on SIGTERM: no waiting for the grace period nor for the
  // (slow) reaping of the zombie.
  EXPECT_LT(took.count(), 3000) << "stop took " << took.count() << " ms";
  EXPECT_TRUE(ProcessGoneOrZombie(pid));
  EXPECT_TRUE(test::WaitFor([&] { return ProcessGoneOrZombie(child); }, milliseconds(2000)))
      << "the app's child in its process group was not cleaned up";
  EXPECT_FALSE(test::FileExists(HostDir(t) + "/run/r1.pid"));
  EXPECT_TRUE(test::FileExists(release + "/app"));
  // Kept for a restore: the supervisor wrote the env back when told to stop, 0600.
  ASSERT_TRUE(test::FileExists(release + "/env"));
  EXPECT_EQ(ModeOf(release + "/env"), 0600);
  EXPECT_NE(test::ReadFile(release + "/env").find("SECRET_X=s3cr3t value 'with' $quotes\n"), std::string::npos);
  list = runtime_.List(t);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_FALSE((*list)[0].running);
  // Stopping a stopped instance is fine.
  EXPECT_TRUE(runtime_.Stop(t, *inst, milliseconds(1000)).has_value());
}

TEST_F(ProcessRuntimeIT, ProcessIgnoringSigtermIsKilledAfterStopTimeout) {
  auto t = Target("host-a");
  const std::string out = tmp_ / "out/stubborn.txt";
  AppSpec app = App("r1", Artifact("stubborn.sh", kStubbornApp), out);
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  ASSERT_TRUE(runtime_.Start(t, app).has_value());
  ASSERT_TRUE(test::WaitFor([&] { return test::FileExists(out); }, milliseconds(5000)));
  const pid_t pid = PidOf(t, "r1");
  ASSERT_GT(pid, 0);

  const auto t0 = steady_clock::now();
  ASSERT_TRUE(runtime_.Stop(t, Inst("r1"), milliseconds(700)).has_value());
  const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0);
  EXPECT_GE(took.count(), 700);
  EXPECT_LT(took.count(), 4000) << "stop took " << took.count() << " ms";
  EXPECT_TRUE(ProcessGoneOrZombie(pid));
  auto list = runtime_.List(t);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_FALSE((*list)[0].running);
}

TEST_F(ProcessRuntimeIT, RestartOfKeptInstanceNeedsNoArtifactSource) {
  auto t = Target("host-a");
  const std::string out = tmp_ / "out/r.txt";
  const std::string artifact = Artifact("app.sh", kScriptApp);
  AppSpec app = App("r1", artifact, out);
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  ASSERT_TRUE(runtime_.Start(t, app).has_value());
  ASSERT_TRUE(test::WaitFor([&] { return test::FileExists(out); }, milliseconds(5000)));
  ASSERT_TRUE(runtime_.Stop(t, Inst("r1"), milliseconds(5000)).has_value());
  std::filesystem::remove(artifact);
  std::filesystem::remove(out);

  ASSERT_TRUE(runtime_.Restart(t, Inst("r1")).has_value());
  ASSERT_TRUE(test::WaitFor([&] { return test::FileExists(out); }, milliseconds(5000)));
  EXPECT_TRUE(StartsWith(test::ReadFile(out), "port=18080 secret=s3cr3t value 'with' $quotes "));
  EXPECT_EQ(FilesHolding(HostDir(t), "s3cr3t"), "") << "the restarted instance's env rests in no file";
  auto list = runtime_.List(t);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].running);

  // A running instance cannot be removed; a stopped one can.
  EXPECT_EQ(runtime_.Remove(t, Inst("r1")).error().code, ErrorCode::kConflict);
  ASSERT_TRUE(runtime_.Stop(t, Inst("r1"), milliseconds(5000)).has_value());
  ASSERT_TRUE(runtime_.Remove(t, Inst("r1")).has_value());
  EXPECT_FALSE(test::FileExists(HostDir(t) + "/releases/r1"));
  EXPECT_TRUE(runtime_.List(t)->empty());
  EXPECT_EQ(runtime_.Restart(t, Inst("r1")).error().code, ErrorCode::kNotFound);
}

// A supervisor that ends without being told to stop (kill -9, a reboot)
// leaves no env behind: its instance cannot be restarted, and Restart says
// why; a new instance (a rollout) starts with the env its plan gives.
TEST_F(ProcessRuntimeIT, AnInstanceWhoseSupervisorWasKilledHasNoEnvLeftAndRestartSaysWhy) {
  auto t = Target("host-a");
  const std::string out = tmp_ / "out/k.txt";
  AppSpec app = App("r1", Artifact("app.sh", kScriptApp), out);
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  ASSERT_TRUE(runtime_.Start(t, app).has_value());
  ASSERT_TRUE(test::WaitFor([&] { return test::FileExists(out); }, milliseconds(5000)));
  const pid_t supervisor = PidOf(t, "r1");
  const pid_t app_pid = AppPidOf(t, "r1");
  ASSERT_GT(supervisor, 0);
  // The supervisor's whole group (the app and its child too), as a reboot would end them.
  if (::getpgid(supervisor) == supervisor) {
    ASSERT_EQ(::kill(-supervisor, SIGKILL), 0);
  } else {
    ASSERT_EQ(::kill(supervisor, SIGKILL), 0);
    if (app_pid > 0) ::kill(app_pid, SIGKILL);
  }
  ASSERT_TRUE(test::WaitFor([&] { auto l = runtime_.List(t); return l && l->size() == 1 && !l->front().running; },
                            milliseconds(5000)));
  EXPECT_EQ(FilesHolding(HostDir(t), "s3cr3t"), "");
  auto restarted = runtime_.Restart(t, Inst("r1"));
  ASSERT_FALSE(restarted.has_value());
  EXPECT_THAT(restarted.error().message, ::testing::HasSubstr("has no env file"));
}

TEST_F(ProcessRuntimeIT, TarballArtifactIsUnpackedAndRunFromItsRoot) {
  auto t = Target("host-a");
  test::TempDir src("sp-it-tar");
  std::filesystem::create_directories(src / "bin");
  test::WriteFile(src / "bin/run.sh",
                  "#!/bin/sh\nprintf 'data=%s arg=%s port=%s\\n' \"$(cat data.txt)\" \"$1\" \"$PORT\" > \"$OUT_FILE\"\n"
                  "exec sleep 1000\n",
                  0755);
  test::WriteFile(src / "data.txt", "from-tarball", 0644);
  const std::string tarball = tmp_ / "app-1.0.tar.gz";
  std::string tar_out;
  ASSERT_EQ(test::Run({"tar", "-czf", tarball, "-C", src.path(), "bin", "data.txt"}, &tar_out), 0) << tar_out;

  const std::string out = tmp_ / "out/tar.txt";
  AppSpec app = App("r7", tarball, out);
  app.command = {"bin/run.sh", "hello"};
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  EXPECT_TRUE(*runtime_.HasArtifact(t, app));
  EXPECT_FALSE(test::FileExists(HostDir(t) + "/releases/r7/artifact.tar.gz"));
  ASSERT_TRUE(runtime_.Start(t, app).has_value());
  ASSERT_TRUE(test::WaitFor([&] { return test::FileExists(out) && !test::ReadFile(out).empty(); },
                            milliseconds(5000)));
  EXPECT_EQ(test::ReadFile(out), "data=from-tarball arg=hello port=18080\n");
  ASSERT_TRUE(runtime_.Stop(t, Inst("r7"), milliseconds(5000)).has_value());

  // A command that is not in the tarball fails the pull clearly.
  AppSpec bad = App("r8", tarball, out);
  bad.command = {"bin/missing"};
  auto s = runtime_.Pull(t, bad, std::nullopt);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(s.error().message.find("bin/missing"), std::string::npos) << s.error().message;
  EXPECT_FALSE(*runtime_.HasArtifact(t, bad));
}

TEST_F(ProcessRuntimeIT, LogsReturnsTheOutputLines) {
  auto t = Target("host-a");
  const std::string out = tmp_ / "out/l.txt";
  AppSpec app = App("r1", Artifact("app.sh", kScriptApp), out);
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  auto before = runtime_.Logs(t, Inst("r1"), 10);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(*before, "");
  ASSERT_TRUE(runtime_.Start(t, app).has_value());
  std::string logs;
  EXPECT_TRUE(test::WaitFor(
      [&] {
        auto l = runtime_.Logs(t, Inst("r1"), 10);
        logs = l ? *l : "";
        return logs.find("log line two") != std::string::npos;
      },
      milliseconds(5000)))
      << logs;
  EXPECT_NE(logs.find("log line one\n"), std::string::npos);
  EXPECT_EQ(*runtime_.Logs(t, Inst("r1"), 1), "log line two\n");
  EXPECT_EQ(runtime_.Logs(t, Inst("nope"), 10).error().code, ErrorCode::kNotFound);
}

TEST_F(ProcessRuntimeIT, TwoHostsWithTheSameBaseDirDoNotInterfere) {
  auto a = Target("host-a");
  auto b = Target("host-b");
  const std::string artifact = Artifact("app.sh", kScriptApp);
  AppSpec app_a = App("r1", artifact, tmp_ / "out/a.txt");
  AppSpec app_b = App("r1", artifact, tmp_ / "out/b.txt");
  ASSERT_TRUE(runtime_.Pull(a, app_a, std::nullopt).has_value());
  ASSERT_TRUE(runtime_.Pull(b, app_b, std::nullopt).has_value());
  ASSERT_TRUE(runtime_.Start(a, app_a).has_value());
  ASSERT_TRUE(runtime_.Start(b, app_b).has_value());
  const pid_t pid_a = PidOf(a, "r1"), pid_b = PidOf(b, "r1");
  ASSERT_GT(pid_a, 0);
  ASSERT_GT(pid_b, 0);
  EXPECT_NE(pid_a, pid_b);

  ASSERT_TRUE(runtime_.Stop(a, Inst("r1"), milliseconds(5000)).has_value());
  EXPECT_TRUE(ProcessGoneOrZombie(pid_a));
  EXPECT_FALSE(ProcessGoneOrZombie(pid_b));
  auto list_a = runtime_.List(a);
  auto list_b = runtime_.List(b);
  ASSERT_TRUE(list_a && list_b);
  ASSERT_EQ(list_a->size(), 1u);
  ASSERT_EQ(list_b->size(), 1u);
  EXPECT_FALSE((*list_a)[0].running);
  EXPECT_TRUE((*list_b)[0].running);
  ASSERT_TRUE(runtime_.Remove(a, Inst("r1")).has_value());
  EXPECT_TRUE(test::FileExists(HostDir(b) + "/releases/r1/app"));
  EXPECT_FALSE(ProcessGoneOrZombie(pid_b));
}

TEST_F(ProcessRuntimeIT, StalePidFileNamingAnotherProcessIsNeitherRunningNorSignalled) {
  auto t = Target("host-a");
  const std::string out = tmp_ / "out/s.txt";
  AppSpec app = App("r1", Artifact("app.sh", kScriptApp), out);
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  // As after a reboot: the pid file names a PID now used by something else.
  test::Daemon bystander({"sleep", "1000"}, tmp_ / "bystander.log");
  test::WriteFile(HostDir(t) + "/run/r1.pid", std::to_string(bystander.pid()) + "\n");
  test::WriteFile(HostDir(t) + "/run/r1.id", "12345 00000000-0000-0000-0000-000000000000\n");

  auto list = runtime_.List(t);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_FALSE((*list)[0].running);
  ASSERT_TRUE(runtime_.Stop(t, Inst("r1"), milliseconds(0)).has_value());
  EXPECT_TRUE(bystander.Alive());
  // And Start is not blocked by it.
  ASSERT_TRUE(runtime_.Start(t, app).has_value());
  EXPECT_NE(PidOf(t, "r1"), bystander.pid());
}

// A script left running by a killed orchestrator (a start still waiting for
// its launcher) holds the host's lock: the next List waits for it and sees
// what it left, never a half-done state. The app itself holds no lock.
TEST_F(ProcessRuntimeIT, ActionsOnAHostWaitForAScriptStillHoldingItsLock) {
  if (test::FindProgram("flock").empty()) GTEST_SKIP() << "flock not installed";
  auto t = Target("host-a");
  AppSpec app = App("r1", Artifact("app.sh", kScriptApp), tmp_ / "out/l.txt");
  ASSERT_TRUE(runtime_.Pull(t, app, std::nullopt).has_value());
  ASSERT_TRUE(runtime_.Start(t, app).has_value());
  const pid_t pid = PidOf(t, "r1");
  ASSERT_GT(pid, 0);
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    EXPECT_EQ(std::filesystem::read_symlink(fd.path(), ec).string().find(".lock"), std::string::npos)
        << "the app inherited the host lock as fd " << fd.path().filename();
  }
  // Another action holds the lock; released, it has stopped r1 (its pid file gone).
  const std::string held = tmp_ / "held", go = tmp_ / "go";
  test::Daemon holder({"flock", HostDir(t) + "/.lock", "sh", "-c",
                       "touch \"$1\"; while [ ! -e \"$2\" ]; do sleep 0.01; done; kill \"$3\"; rm -f \"$4\"", "sh",
                       held, go, std::to_string(pid), HostDir(t) + "/run/r1.pid"},
                      tmp_ / "holder.log");
  ASSERT_TRUE(test::WaitFor([&] { return test::FileExists(held); }, milliseconds(5000)));
  auto list = std::async(std::launch::async, [&] { return runtime_.List(t); });
  EXPECT_EQ(list.wait_for(milliseconds(300)), std::future_status::timeout) << "List did not wait for the lock";
  test::WriteFile(go, "");
  auto seen = list.get();
  ASSERT_TRUE(seen.has_value()) << seen.error().message;
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_FALSE((*seen)[0].running) << "List ran before the lock's holder finished";
  ASSERT_TRUE(test::WaitFor([&] { return ProcessGoneOrZombie(pid); }, milliseconds(5000)));
}

TEST_F(ProcessRuntimeIT, SampleAppServesHealthAndDiesOnStop) {
  if (!test::FileExists(test::BuildBinary("sp-sample-app"))) GTEST_SKIP() << "sp-sample-app not built";
  auto t = Target("host-a");
  const AppSpec app = SampleApp("r3", "v3");
  ASSERT_NO_FATAL_FAILURE(Launch(t, app));
  CurlHealthChecker health;
  HealthCheckSpec spec;
  HealthProbe probe = health.Probe("127.0.0.1", app.port, spec);
  EXPECT_TRUE(probe.ok) << probe.Describe();
  spec.path = "/";
  probe = health.Probe("127.0.0.1", app.port, spec);
  EXPECT_NE(probe.body.find("version=v3"), std::string::npos) << probe.body;

  const pid_t pid = PidOf(t, "r3");
  ASSERT_TRUE(runtime_.Stop(t, Inst("r3"), milliseconds(10'000)).has_value());
  EXPECT_TRUE(ProcessGoneOrZombie(pid));
  EXPECT_TRUE(test::WaitFor([&] { return !test::PortOpen(app.port); }, milliseconds(3000)));
}

// The process runtime supervises what it starts: an app killed by hand is
// started again (after a 1 s backoff), counted and said in its log, with its
// env (a secret) again, while the supervisor's own environment never held
// it; Stop ends the supervision with the app, for good.
TEST_F(ProcessRuntimeIT, AnAppKilledByHandIsRestartedByItsSupervisorAndStopEndsItForGood) {
  if (!test::FileExists(test::BuildBinary("sp-sample-app"))) GTEST_SKIP() << "sp-sample-app not built";
  auto t = Target("host-a");
  AppSpec app = SampleApp("r5", "v5");
  app.env["API_SECRET"] = "sekret-env-4d2";
  auto environ_of = [](pid_t pid) { return test::ReadFile("/proc/" + std::to_string(pid) + "/environ"); };
  ASSERT_NO_FATAL_FAILURE(Launch(t, app));
  const pid_t supervisor = PidOf(t, "r5");
  const pid_t first = AppPidOf(t, "r5");
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  // During the backoff the supervisor's `sleep` runs: it inherits the
  // supervisor's environment, which must not hold the app's env.
  std::string sleeper_env;
  ASSERT_TRUE(test::WaitFor([&] {
    const std::string sup = std::to_string(supervisor);
    for (const auto& kid : Split(Trim(test::ReadFile("/proc/" + sup + "/task/" + sup + "/children")), ' ')) {
      if (!kid.empty() && Trim(test::ReadFile("/proc/" + kid + "/comm")) == "sleep") {
        sleeper_env = test::ReadFile("/proc/" + kid + "/environ");
        return !sleeper_env.empty();
      }
    }
    return false;
  }, milliseconds(5'000)));
  EXPECT_EQ(sleeper_env.find("sekret-env-4d2"), std::string::npos) << "the supervisor's sleep has the app's env";
  pid_t second = -1;
  ASSERT_TRUE(test::WaitFor([&] {
    second = AppPidOf(t, "r5");
    return second > 0 && second != first && test::PortOpen(app.port);
  }, milliseconds(10'000))) << *runtime_.Logs(t, Inst("r5"), 10);
  auto list = runtime_.List(t);
  ASSERT_TRUE(list && list->size() == 1);
  EXPECT_TRUE(list->front().running);
  EXPECT_EQ(list->front().restarts, 1);
  // The listeners tell the same count (the health step reads it from there, not from List).
  auto held = runtime_.Listeners(t, app.port);
  ASSERT_TRUE(held && *held && (*held)->size() == 1) << (held ? "" : held.error().message);
  EXPECT_EQ((*held)->front().instance, "r5");
  EXPECT_EQ((*held)->front().instance_restarts, 1);
  EXPECT_THAT(*runtime_.Logs(t, Inst("r5"), 10),
              ::testing::HasSubstr("sallyport supervisor: the app exited (status 137); restart 1 in 1s"));
  EXPECT_EQ(PidOf(t, "r5"), supervisor) << "the same supervisor";
  EXPECT_NE(environ_of(second).find(std::string("API_SECRET=sekret-env-4d2\0", 26)), std::string::npos)
      << "the restarted app has its env";
  EXPECT_EQ(environ_of(supervisor).find("sekret-env-4d2"), std::string::npos) << "the supervisor's environment";

  ASSERT_TRUE(runtime_.Stop(t, Inst("r5"), milliseconds(10'000)).has_value());
  EXPECT_TRUE(ProcessGoneOrZombie(supervisor)) << "no supervisor left to start it again";
  EXPECT_TRUE(ProcessGoneOrZombie(second));
  EXPECT_TRUE(test::WaitFor([&] { return !test::PortOpen(app.port); }, milliseconds(3000)));
  list = runtime_.List(t);
  ASSERT_TRUE(list && list->size() == 1);
  EXPECT_FALSE(list->front().running);
}

// Listeners tells what holds an app's port: nothing, the instance's own
// process (through its process group), or a stray that no instance started.
TEST_F(ProcessRuntimeIT, ListenersNameTheInstanceHoldingThePortOrAStray) {
  const std::string bin = test::BuildBinary("sp-sample-app");
  if (!test::FileExists(bin)) GTEST_SKIP() << "sp-sample-app not built";
  auto t = Target("host-a");
  const AppSpec app = SampleApp("r4", "v4");
  auto free = runtime_.Listeners(t, app.port);
  ASSERT_TRUE(free && *free) << (free ? "not checked" : free.error().message);
  EXPECT_TRUE((*free)->empty());

  ASSERT_NO_FATAL_FAILURE(Launch(t, app));
  auto mine = runtime_.Listeners(t, app.port);
  ASSERT_TRUE(mine && *mine);
  ASSERT_EQ((*mine)->size(), 1u);
  EXPECT_EQ((*mine)->front().instance, "r4");
  EXPECT_EQ((*mine)->front().instance_restarts, 0);
  EXPECT_EQ((*mine)->front().holder, "pid " + std::to_string(AppPidOf(t, "r4")) + " (app)");  // The release's copy.
  ASSERT_TRUE(runtime_.Stop(t, Inst("r4"), milliseconds(10'000)).has_value());

  test::Daemon stray({bin}, tmp_ / "stray.log", {{"PORT", std::to_string(app.port)}, {"APP_VERSION", "stray"}});
  ASSERT_TRUE(test::WaitFor([&] { return test::PortOpen(app.port); }, milliseconds(5000)));
  auto theirs = runtime_.Listeners(t, app.port);
  ASSERT_TRUE(theirs && *theirs);
  ASSERT_EQ((*theirs)->size(), 1u);
  EXPECT_EQ((*theirs)->front().instance, "") << "no instance started it";
  EXPECT_EQ((*theirs)->front().holder, "pid " + std::to_string(stray.pid()) + " (sp-sample-app)");
}

}  // namespace
}  // namespace sp
