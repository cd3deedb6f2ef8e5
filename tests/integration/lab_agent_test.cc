// Agents that die or stall mid-rollout, in the lab (issue 6): a real server
// in the office, agent processes reaching the lab hosts through the bastion,
// the rollout's journal and lock on the server, every action fenced by the
// job's lease. Load runs through HAProxy's office frontend all along.
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "runtime/process/process_runtime.h"
#include "support/alertmanager_fixture.h"
#include "support/cli_runner.h"
#include "support/lab.h"
#include "support/load_generator.h"
#include "support/rollout_scenario.h"
#include "support/server_process.h"
#include "support/test_util.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

class LabAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lab = Lab::Load();
    ASSERT_TRUE(lab) << lab.error().message;
    lab_ = *lab;
    dir_ = std::make_unique<TempDir>("sp-lab-agent");
    ssh_ = std::make_unique<SshTransport>(lab_.Ssh());
    db_ = *dir_ / "server.db";
    // The vault password of credentials bound to vault values (the secret test).
    WriteFile(*dir_ / "vault-pass", "lab vault pass\n", 0600);
    server_ = std::make_unique<ServerProcess>(*dir_, db_, "server",
                                              std::vector<std::string>{"--vault-password-file", *dir_ / "vault-pass"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
    WriteFile(*dir_ / "sallyport.yml", ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 30}"));
    WriteFile(*dir_ / "inventory.yml", lab_.InventoryYaml("proc", "            base_dir: /srv/sallyport/apps\n"));
    // The agents silence the hosts' alerts in an Alertmanager beside them
    // (on this namespace's loopback, as one inside the network would be).
    am_ = std::make_unique<AlertmanagerFixture>(*dir_ / "am");
    ASSERT_TRUE(am_->Start()) << am_->LogTail();
    std::string inv = ReadFile(*dir_ / "inventory.yml");
    const std::string at = "        network: lab\n";
    ASSERT_NE(inv.find(at), std::string::npos);
    inv.insert(inv.find(at) + at.size(),
               "        hooks:\n          silence: {alertmanager: '" + am_->url() + "', duration: 10s}\n");
    WriteFile(*dir_ / "inventory.yml", inv);
    for (const char* name : {"agent-a", "agent-b"}) {
      ASSERT_NE(CreateAgentToken(*dir_, db_, name, "network=lab"), "") << name;
    }
  }

  // An agent process with a 3 s lease; `halt_after` ("h2:drain"): it stops
  // itself (SIGSTOP) when that step ends ("h2:stop:begin": when it is about
  // to act).
  Daemon StartAgent(const std::string& name, const std::string& halt_after = "") {
    std::map<std::string, std::string> env;
    // The test tree's binary stops itself at that step (SP_TESTBIN_HALT_AFTER).
    if (!halt_after.empty()) env["SP_TESTBIN_HALT_AFTER"] = halt_after;
    return Daemon({BuildBinary(halt_after.empty() ? "sallyport" : "sallyport-test"), "agent", "run", "--server", server_->url(), "--token-file",
                   *dir_ / (name + ".token"), "--lease", "3s"},
                  *dir_ / (name + ".log"), env);
  }

  // Queues a rollout of `version` for the lab's agents; returns the job id.
  int64_t Queue(const std::string& version) {
    auto r = RunSallyport({"rollout", "run", "--server", server_->url(), "--plan-here", "-c", *dir_ / "sallyport.yml", "-i",
                           *dir_ / "inventory.yml", "-d", "integration", "--store", *dir_ / "cli.db", "--artifact",
                           BuildBinary("sp-sample-app"), "--version", version});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto at = r.out.find(" as job ");
    return at == std::string::npos ? 0 : std::atoll(r.out.c_str() + at + 8);
  }

  json Job(int64_t id) {
    httplib::Client c = server_->Client();
    c.set_default_headers({{"Authorization", Bearer()}});
    auto r = c.Get("/v1/jobs/" + std::to_string(id));
    return r ? json::parse(r->body, nullptr, false) : json();
  }

  // Polls until the job is finished (or 90 s passed); returns it.
  json WaitFinished(int64_t id) {
    json j;
    WaitFor(
        [&] {
          j = Job(id);
          return j.is_object() && j.value("state", "") != "queued" && j.value("state", "") != "leased";
        },
        std::chrono::seconds(90));
    return j;
  }

  // True once the process is stopped (state T in /proc/PID/stat).
  static bool Stopped(const Daemon& d) {
    const std::string stat = ReadFile("/proc/" + std::to_string(d.pid()) + "/stat");
    auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'T';
  }

  // Every host serves `version` from exactly one running instance, and every
  // server is UP in HAProxy.
  void ExpectConverged(const std::string& version) {
    ProcessOptions o;
    o.base_dir = "/srv/sallyport/apps";
    ProcessRuntime rt(*ssh_, o);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(lab_.VersionOn(*ssh_, i, 8080), version) << lab_.hosts[i].name;
      auto list = rt.List(RuntimeTarget{lab_.Host(i), "web", "integration"});
      ASSERT_TRUE(list) << list.error().message;
      int running = 0;
      for (const auto& inst : *list) running += inst.running;
      EXPECT_EQ(running, 1) << lab_.hosts[i].name << ": one version per host";
    }
    auto status = lab_.ServerStatus(*ssh_, "proc");
    ASSERT_EQ(status.size(), 3u) << (status.count("error") ? status["error"] : "");
    for (const auto& [name, st] : status) EXPECT_EQ(st, "UP") << name;
  }

  // What the app hosts' sshd logged since `before` (host -> log size then).
  std::string NewLogLines(const std::map<std::string, size_t>& before) {
    std::string out;
    for (const auto& h : lab_.hosts) {
      const std::string log = lab_.SshdLog(h.name);
      const size_t from = before.count(h.name) ? before.at(h.name) : 0;
      if (log.size() > from) out += "--- " + h.name + ":\n" + log.substr(from);
    }
    return out;
  }

  // Sessions (commands) the app hosts' sshd started so far.
  int SessionsOnAppHosts() {
    int n = 0;
    for (const auto& h : lab_.hosts) n += lab_.SshdLogCount(h.name, "Starting session:");
    return n;
  }

  std::unique_ptr<LoadGenerator> StartLoad() {
    LoadOptions lo;
    lo.host = lab_.lb;
    lo.port = 80;
    lo.slow_fraction = 0.5;
    lo.work_dir = dir_->path();
    return ::sp::test::StartLoad(lo);
  }

  // The silences of the rollout of `version` (its comment names it).
  std::vector<json> SilencesOf(const std::string& version, const std::string& state = "") {
    return am_->SilencesWith(" to " + version + ":", state);
  }

  Lab lab_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<AlertmanagerFixture> am_;
  std::unique_ptr<SshTransport> ssh_;
  std::string db_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(LabAgentTest, AnAgentKilledAfterDrainStopOrStartIsResumedByAnotherWithZeroFailedRequests) {
  // A first version through one agent, so every host has something to stop.
  {
    Daemon b = StartAgent("agent-b");
    const int64_t id = Queue("k0");
    json j = WaitFinished(id);
    ASSERT_EQ(j.value("state", ""), "succeeded") << j.dump() << ReadFile(*dir_ / "agent-b.log");
    b.Stop();
  }
  ExpectConverged("k0");

  auto load = StartLoad();
  ASSERT_TRUE(load);
  int round = 0;
  for (const std::string point : {"drain", "stop", "start"}) {
    const std::string version = "k" + std::to_string(++round);
    SCOPED_TRACE("agent killed after h2's " + point + " step");
    Daemon a = StartAgent("agent-a", "h2:" + point);
    const int64_t id = Queue(version);
    ASSERT_TRUE(WaitFor([&] { return Stopped(a); }, std::chrono::seconds(60))) << ReadFile(*dir_ / "agent-a.log");
    // The stalled rollout's hosts are silenced, by the agent inside the network.
    const auto during = SilencesOf(version, "active");
    ASSERT_EQ(during.size(), 1u) << am_->Silences().dump(1);
    std::set<std::string> ms;
    for (const auto& m : during[0]["matchers"]) ms.insert(m["name"].get<std::string>() + "=" + m["value"].get<std::string>());
    EXPECT_EQ(ms, (std::set<std::string>{"release=web", "deployment=integration",
                                         "host=" + lab_.hosts[0].name + "|" + lab_.hosts[1].name + "|" +
                                             lab_.hosts[2].name}));
    Daemon b = StartAgent("agent-b");
    a.Signal(SIGKILL);
    a.Stop();
    json j = WaitFinished(id);
    EXPECT_EQ(j.value("state", ""), "succeeded") << j.dump() << ReadFile(*dir_ / "agent-b.log");
    EXPECT_EQ(j.value("owner", ""), "agent-b") << "resumed by the other agent";
    EXPECT_EQ(j.value("attempts", 0), 2) << "claimed again once the killed agent's lease expired";
    EXPECT_THAT(ReadFile(*dir_ / "agent-b.log"), HasSubstr("resuming rollout"));
    b.Stop();
    ExpectConverged(version);
    const auto after = SilencesOf(version);
    ASSERT_EQ(after.size(), 1u) << "adopted by the agent that resumed, never made twice:\n" << am_->Silences().dump(1);
    EXPECT_EQ(after[0]["status"]["state"], "expired");
  }
  auto result = load->Stop();
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load through HAProxy while three agents were killed mid-rollout: %s\n", result->Summary().c_str());
  // A failed host (every app fails its health check): restored, and the silence expired all the same.
  WriteFile(*dir_ / "bad.yml", ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 5}",
                                                  "      SAMPLE_HEALTH_FAIL_PORTS: \"8080\"\n"));
  {
    Daemon b = StartAgent("agent-b");
    auto r = RunSallyport({"rollout", "run", "--server", server_->url(), "--plan-here", "-c", *dir_ / "bad.yml", "-i",
                           *dir_ / "inventory.yml", "-d", "integration", "--store", *dir_ / "cli.db", "--artifact",
                           BuildBinary("sp-sample-app"), "--version", "kbad"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto at = r.out.find(" as job ");
    ASSERT_NE(at, std::string::npos) << r.out;
    json j = WaitFinished(std::atoll(r.out.c_str() + at + 8));
    EXPECT_TRUE(j.is_object()) << "the job ended: " << j.dump();
    b.Stop();
  }
  ExpectConverged("k3");
  const auto failed = SilencesOf("kbad");
  ASSERT_EQ(failed.size(), 1u) << am_->Silences().dump(1);
  EXPECT_EQ(failed[0]["status"]["state"], "expired") << "expired after a failed host";
  size_t active = 0;
  for (const auto& x : am_->Silences()) active += x["status"]["state"] != "expired";
  EXPECT_EQ(active, 0u);
  std::printf("alertmanager: %zu silences for 5 rollouts (3 resumed by another agent, 1 with a failed host), %zu active\n",
              am_->Silences().size(), active);
  EXPECT_GT(result->requests, 100);
  EXPECT_EQ(result->failures(), 0) << result->raw;
}

TEST_F(LabAgentTest, APausedAgentDoesNothingMoreOnceItsLeaseHasLapsed) {
  // Paused with h2's stop journaled (the server accepted it) but not done:
  // only the agent's own fence stands between it and stopping what the
  // other agent will have put in rotation by then.
  Daemon a = StartAgent("agent-a", "h2:stop:begin");
  const int64_t id = Queue("p1");
  ASSERT_TRUE(WaitFor([&] { return Stopped(a); }, std::chrono::seconds(60))) << ReadFile(*dir_ / "agent-a.log");
  // Its lease lapses; the other agent claims the job and finishes it.
  Daemon b = StartAgent("agent-b");
  json j = WaitFinished(id);
  ASSERT_EQ(j.value("state", ""), "succeeded") << j.dump() << ReadFile(*dir_ / "agent-b.log");
  EXPECT_EQ(j.value("owner", ""), "agent-b");
  b.Stop();
  // Counted with nothing of ours in between: the test's own commands on the
  // hosts (ExpectConverged) come at the end.
  const int sessions = SessionsOnAppHosts();
  std::map<std::string, size_t> logs_before;
  for (const auto& h : lab_.hosts) logs_before[h.name] = lab_.SshdLog(h.name).size();
  const auto haproxy = lab_.ServerStatus(*ssh_, "proc");

  // Resumed, the paused agent finds its lease gone: the server refuses its
  // journal, its own fence refuses every action; it gives the job up.
  a.Signal(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(*dir_ / "agent-a.log").find("agent: job " + std::to_string(id) + " failed") !=
                                   std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(*dir_ / "agent-a.log");
  const std::string a_log = ReadFile(*dir_ / "agent-a.log");
  EXPECT_THAT(a_log, HasSubstr("lease"));
  a.Stop();
  EXPECT_EQ(SessionsOnAppHosts(), sessions) << "the hosts' sshd logs show no command from the paused agent:\n"
                                            << NewLogLines(logs_before) << "\nagent a:\n" << a_log;
  EXPECT_EQ(lab_.ServerStatus(*ssh_, "proc"), haproxy);
  json after = Job(id);
  EXPECT_EQ(after.value("state", ""), "succeeded");
  EXPECT_EQ(after.value("owner", ""), "agent-b") << "the paused agent's report changed nothing";
  ExpectConverged("p1");
}

// FNV-1a 64 as the sample app's /secret-hash answers it.
std::string Fnv1a64(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// A secret env value in a lab rollout: an inline value made by ansible-vault,
// bound by the admin to deployment integration; the server plans build 1 with
// a reference, and the agent fetches the value when it starts each app
// through the bastion. Each app has it (it answers with its hash), and on
// each host no process's command line, and no environment but the app's
// own, holds it; nor the CLI's output, the server's store or log, the
// agent's log, or the job's payload.
TEST_F(LabAgentTest, ASecretEnvValueReachesOnlyTheAppOnEachHost) {
  const std::string value = "lab-s3cret-71c9e2";
  auto made = RunProgram({"sh", "-c", "printf %s '" + value + "' | ansible-vault encrypt_string --vault-password-file '" +
                                          *dir_ / "vault-pass" + "' --stdin-name sample_secret > '" +
                                          *dir_ / "vault.yml" + "'"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  for (std::vector<std::string> args :
       {std::vector<std::string>{"inventory", "apply", "-f", *dir_ / "inventory.yml", "--yes"},
        std::vector<std::string>{"project", "add", "--name", "sample", "--git", "git://127.0.0.1:9/sample.git"},
        std::vector<std::string>{"credential", "set", "sample", "sample_secret", "--vault",
                                 *dir_ / "vault.yml#sample_secret", "--deployment", "integration"}}) {
    args.insert(args.end(), {"--store", db_});
    auto r = RunSallyport(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_EQ(RecordBuild(db_, "sample", 'e', BuildStatus::kSucceeded, BuildBinary("sp-sample-app"),
                        ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 30}",
                                           "      SAMPLE_SECRET: {credential: sample_secret}\n")),
            1);
  Daemon agent = StartAgent("agent-a");
  // Seen by the server before the rollout asks for an agent of the network.
  ASSERT_TRUE(WaitFor([&] { return ReadFile(*dir_ / "agent-a.log").find("claiming for") != std::string::npos; },
                      std::chrono::seconds(20)))
      << ReadFile(*dir_ / "agent-a.log");
  auto run = RunSallyport({"rollout", "run", "--server", server_->url(), "--build", "1", "-d", "integration", "--wait"},
                          {}, 180);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  // The sweep gets the value on stdin (never in its own argv); `tr` and the
  // subshells carry none of it.
  const std::string sweep =
      "IFS= read -r v; for d in /proc/[0-9]*; do p=${d#/proc/}; [ \"$p\" = $$ ] && continue; "
      "c=$(tr '\\000' '\\n' < $d/cmdline 2>/dev/null); case $c in *\"$v\"*) echo \"cmdline $p\";; esac; "
      "e=$(tr '\\000' '\\n' < $d/environ 2>/dev/null); case $e in *\"$v\"*) "
      "echo \"environ $p $(cat $d/comm 2>/dev/null)\";; esac; done; echo swept";
  for (size_t i = 0; i < lab_.hosts.size(); ++i) {
    CommandSpec get;
    get.argv = {"curl", "-s", "-m", "2", "http://127.0.0.1:8080/secret-hash"};
    get.timeout = Millis(5000);
    auto hash = ssh_->Run(lab_.Host(i), get);
    ASSERT_TRUE(hash && hash->ok()) << lab_.hosts[i].name;
    EXPECT_EQ(Trim(hash->out), Fnv1a64(value)) << lab_.hosts[i].name << ": the app has the value";
  }
  // The lab's hosts are network namespaces sharing this machine's processes:
  // one sweep from a host (as root, through the bastion) sees every process
  // here — the three apps, their supervisors, sshd, the agent, the server.
  CommandSpec s;
  s.argv = {"sh", "-c", sweep};
  s.stdin_data = value + "\n";
  s.timeout = Millis(60'000);
  auto found = ssh_->Run(lab_.Host(0), s);
  ASSERT_TRUE(found && found->ok()) << (found ? found->Describe() : found.error().message);
  ASSERT_THAT(found->out, HasSubstr("swept"));
  int app_envs = 0;
  for (const auto& line : Split(found->out, '\n')) {
    if (line.empty() || line == "swept") continue;
    EXPECT_TRUE(line.starts_with("environ ") && line.ends_with(" app"))
        << "only an app's environment may hold it: " << line;
    app_envs += line.starts_with("environ ") && line.ends_with(" app");
  }
  EXPECT_EQ(app_envs, static_cast<int>(lab_.hosts.size())) << "one app per host: " << found->out;
  // Nor does any file a host keeps for the app (releases, logs, run files):
  // a running instance's env rests only in its supervisor's memory. The
  // pattern comes on stdin (never in grep's argv).
  for (size_t i = 0; i < lab_.hosts.size(); ++i) {
    CommandSpec g;
    // Its positive control: the same search finds the releases' `meta` files
    // (they name the artifact), so a wrong or unreadable directory cannot pass.
    g.argv = {"sh", "-c", "grep -rlF -f - /srv/sallyport/apps 2>&1; echo swept; grep -rlF sp-sample-app /srv/sallyport/apps | grep -c /meta"};
    g.stdin_data = value + "\n";
    g.timeout = Millis(30'000);
    auto files = ssh_->Run(lab_.Host(i), g);
    ASSERT_TRUE(files && files->ok()) << (files ? files->Describe() : files.error().message);
    const auto lines = Split(Trim(files->out), '\n');
    ASSERT_GE(lines.size(), 2u) << files->out;
    EXPECT_EQ(lines[0], "swept") << lab_.hosts[i].name << ": files holding the value: " << files->out;
    EXPECT_GE(std::atoi(lines.back().c_str()), 1) << lab_.hosts[i].name << ": the search read no release";
  }
  EXPECT_EQ((run.out + run.err).find(value), std::string::npos);
  auto job = Job(1);
  EXPECT_EQ(job.dump().find(value), std::string::npos) << "the job's payload";
  for (const std::string& file : {db_, db_ + "-wal", *dir_ / "agent-a.log"}) {
    if (std::filesystem::exists(file)) {
      EXPECT_EQ(ReadFile(file).find(value), std::string::npos) << file;
    }
  }
  EXPECT_EQ(server_->Log().find(value), std::string::npos) << "the server's log";
  agent.Stop();
}

}  // namespace
}  // namespace sp::test
