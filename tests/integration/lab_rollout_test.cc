// End to end through the bastion: the real `sallyport rollout` CLI in the
// office, three lab hosts reached only over SSH through the bastion, the
// HAProxy runtime API reached only through a forward, and wrk load through
// HAProxy's office frontend (strict: no retries, no redispatch).
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>

#include "core/text.h"
#include "lb/haproxy/haproxy_lb.h"
#include "support/cli_runner.h"
#include "support/lab.h"
#include "support/load_generator.h"
#include "support/rollout_scenario.h"
#include "support/test_util.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::test {
namespace {

class LabRolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lab = Lab::Load();
    ASSERT_TRUE(lab) << lab.error().message;
    lab_ = *lab;
    dir_ = std::make_unique<TempDir>("sp-lab");
    ssh_ = std::make_unique<SshTransport>(lab_.Ssh());
  }

  std::string Inventory(const std::string& backend, const std::string& extra_release = "",
                        const std::string& known_hosts = "") {
    return lab_.InventoryYaml(backend, extra_release, known_hosts);
  }
  std::string VersionOn(size_t i, int port) { return lab_.VersionOn(*ssh_, i, port); }
  std::map<std::string, std::string> ServerStatus(const std::string& backend) {
    return lab_.ServerStatus(*ssh_, backend);
  }
  // Fails the test for every server of `backend` not in rotation.
  void ExpectAllInRotation(const std::string& backend) {
    auto status = ServerStatus(backend);
    ASSERT_EQ(status.size(), 3u) << (status.count("error") ? status["error"] : "");
    for (const auto& [name, st] : status) EXPECT_EQ(st, "UP") << name;
  }

  // Asserted per server: HAProxy's state and the version the host serves.
  void ExpectServers(const std::vector<std::pair<std::string, std::string>>& state_and_version) {
    auto status = ServerStatus("proc");
    for (size_t i = 0; i < 3; ++i) {
      const auto& [state, version] = state_and_version[i];
      EXPECT_EQ(status[lab_.hosts[i].name].substr(0, state.size()), state) << lab_.hosts[i].name;
      EXPECT_EQ(VersionOn(i, 8080), version) << lab_.hosts[i].name;
    }
  }

  void PushImagesAndWriteDockerService(std::map<std::string, std::string>* digests,
                                       const std::vector<std::string>& versions = {"v1", "v2"});

  std::unique_ptr<LoadGenerator> StartLoad(int frontend_port) {
    LoadOptions lo;
    lo.host = lab_.lb;
    lo.port = frontend_port;
    lo.slow_fraction = 0.5;
    lo.work_dir = dir_->path();
    return ::sp::test::StartLoad(lo);
  }

  CliResult Rollout(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"rollout", "run", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                                  "integration", "--store", *dir_ / "state.db"};
    args.insert(args.end(), extra.begin(), extra.end());
    // The office trusts the lab registry's CA as the engines do (certs.d).
    return RunSallyport(args, {{"SALLYPORT_REGISTRY_CERTS_D", lab_.registry_certs_d}});
  }

  Lab lab_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<SshTransport> ssh_;
};

TEST_F(LabRolloutTest, ProcessRuntimeThroughTheBastionUnderLoadHasZeroFailedRequests) {
  WriteFile(*dir_ / "sallyport.yml", ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 30}"));
  WriteFile(*dir_ / "inventory.yml", Inventory("proc", "            base_dir: /srv/sallyport/apps\n"));
  const std::string app = BuildBinary("sp-sample-app");
  auto v1 = Rollout({"--artifact", app, "--version", "v1"});
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(VersionOn(i, 8080), "v1") << lab_.hosts[i].name;

  auto load = StartLoad(80);
  ASSERT_TRUE(load);
  auto v2 = Rollout({"--artifact", app, "--version", "v2"});
  auto result = load->Stop();
  ASSERT_EQ(v2.exit_code, 0) << v2.out << v2.err;
  ASSERT_TRUE(result) << result.error().message;
  std::printf("load through the bastion-fronted LB during the rollout: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 100);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(VersionOn(i, 8080), "v2") << lab_.hosts[i].name;
  // The artifact travelled over SSH: it is in the host's private /srv, not
  // in the office's.
  EXPECT_FALSE(FileExists("/srv/sallyport/apps"));
  ExpectAllInRotation("proc");
}

// The sample app's images (v1 and v2 unless told), built inside the lab (h1's dockerd,
// over SSH) and pushed to the lab registry, then removed there so every host
// has to pull them by digest; the service file and inventory of a docker
// release "web" on them.
void LabRolloutTest::PushImagesAndWriteDockerService(std::map<std::string, std::string>* digests,
                                                     const std::vector<std::string>& versions) {
  const std::string password = Trim(ReadFile(lab_.registry_password_file));
  // Build and push the image inside the lab (h1's dockerd, over SSH), then
  // remove it there so every host has to pull it by digest.
  const HostRef builder = lab_.Host(0);
  const std::string ctx = "/srv/sallyport/img-" + std::to_string(::getpid());
  CommandSpec mkdir;
  mkdir.argv = {"mkdir", "-p", ctx};
  ASSERT_TRUE(ssh_->Run(builder, mkdir));
  ASSERT_TRUE(ssh_->CopyFile(builder, BuildBinary("sp-sample-app"), ctx + "/sp-sample-app", 0755));
  for (const std::string& v : versions) {
    ASSERT_TRUE(ssh_->WriteFile(builder, ctx + "/Dockerfile",
                                "FROM scratch\nCOPY sp-sample-app /sp-sample-app\nENV APP_VERSION=" + v +
                                    "\nENTRYPOINT [\"/sp-sample-app\"]\n",
                                0644));
    const std::string tag = lab_.registry + "/lab-sample:" + v;
    CommandSpec build;
    build.argv = {"docker", "build", "-q", "-t", tag, ctx};
    build.timeout = Millis(120'000);
    auto b = ssh_->Run(builder, build);
    ASSERT_TRUE(b && b->ok()) << (b ? b->Describe() : b.error().message);
    CommandSpec push;
    push.argv = {"sh", "-c",
                 "set -e; c=$(mktemp -d); docker --config \"$c\" login -u sallyport --password-stdin \"$1\" "
                 ">/dev/null; docker --config \"$c\" push -q \"$2\" >/dev/null; rm -rf \"$c\"; "
                 "docker image inspect --format '{{index .RepoDigests 0}}' \"$2\"; docker rmi -f \"$2\" >/dev/null",
                 "x", lab_.registry, tag};
    push.stdin_data = password;
    push.timeout = Millis(120'000);
    auto p = ssh_->Run(builder, push);
    ASSERT_TRUE(p && p->ok()) << (p ? p->Describe() : p.error().message);
    (*digests)[v] = Trim(p->out);
    ASSERT_NE((*digests)[v].find("@sha256:"), std::string::npos) << p->out;
  }
  WriteFile(*dir_ / "registry-password", password, 0600);
  WriteFile(*dir_ / "sallyport.yml",
            "version: 1\n"
            "service: sample\n"
            "stack: demo\n"
            "image: {repository: " + lab_.registry + "/lab-sample}\n"
            "registry:\n"
            "  address: " + lab_.registry + "\n"
            "  username: sallyport\n"
            "  password: {file: " + *dir_ / "registry-password" + "}\n"
            "releases:\n"
            "  web:\n"
            "    runtime: docker\n"
            "    port: 8081\n"
            "    health: {path: /health, interval: 100ms, timeout: 1s, retries: 30}\n"
            "    stop_timeout: 5s\n"
            "    strategy: {batch: 1, drain_timeout: 30s, ready_timeout: 15s}\n");
  WriteFile(*dir_ / "inventory.yml", Inventory("dock"));

}

TEST_F(LabRolloutTest, DockerRuntimeThroughTheBastionPullsFromThePrivateRegistry) {
  ASSERT_GE(lab_.docker_hosts, 3) << "the lab needs --docker-hosts 3";
  std::map<std::string, std::string> digests;
  PushImagesAndWriteDockerService(&digests);
  if (HasFatalFailure()) return;
  auto v1 = Rollout({"--artifact", digests["v1"], "--version", "v1"});
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  // Sessions each host's sshd starts, and refused forwards to the engine's
  // socket, during the v2 rollout.
  auto count = [&](size_t i, const std::string& needle) { return lab_.SshdLogCount(lab_.hosts[i].name, needle); };
  const std::string kSession = "Starting session:", kDenied = "docker.sock, but the request was denied";
  std::vector<int> sessions_before, denied_before;
  for (size_t i = 0; i < 3; ++i) {
    sessions_before.push_back(count(i, kSession));
    denied_before.push_back(count(i, kDenied));
  }
  auto load = StartLoad(81);
  ASSERT_TRUE(load);
  auto v2 = Rollout({"--artifact", digests["v2"], "--version", "v2"});
  auto result = load->Stop();
  ASSERT_EQ(v2.exit_code, 0) << v2.out << v2.err;
  // h1 and h2 allow local forwarding: the runtime talked to their engines'
  // API through it. h3 refuses it (the lab's --docker-forwarding mixed): one
  // refused attempt, then the docker CLI did the same work in more sessions.
  std::vector<int> sessions, denied;
  for (size_t i = 0; i < 3; ++i) {
    sessions.push_back(count(i, kSession) - sessions_before[i]);
    denied.push_back(count(i, kDenied) - denied_before[i]);
    std::printf("docker: %s: %d sessions, %d refused forwards during the v2 rollout\n", lab_.hosts[i].name.c_str(),
                sessions[i], denied[i]);
  }
  EXPECT_EQ(denied[0], 0);
  EXPECT_EQ(denied[1], 0);
  EXPECT_GE(denied[2], 1);
  EXPECT_LE(denied[2], 2) << "a host that refused stays on the CLI (one attempt per thread that met it first)";
  EXPECT_GE(sessions[2], sessions[0] + 4) << "list, stop, rm and start on the CLI only on h3";
  ASSERT_TRUE(result) << result.error().message;
  std::printf("docker: load through the LB during the rollout: %s\n", result->Summary().c_str());
  EXPECT_GT(result->requests, 100);
  EXPECT_EQ(result->failures(), 0) << result->raw;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(VersionOn(i, 8081), "v2") << lab_.hosts[i].name;
    // The container runs in that host's own dockerd, pulled by digest.
    std::string out;
    EXPECT_EQ(lab_.InHost(lab_.hosts[i].name,
                          {"sh", "-c",
                           "docker inspect --format '{{.Config.Image}}' $(docker ps -q --filter label=sallyport.release=web)"},
                          &out),
              0);
    EXPECT_EQ(Trim(out), digests["v2"]) << lab_.hosts[i].name;
    // No registry credentials are left on the host.
    std::string left;
    lab_.InHost(lab_.hosts[i].name, {"sh", "-c", "ls -d /tmp/sp-docker.* 2>/dev/null | wc -l"}, &left);
    EXPECT_EQ(Trim(left), "0") << lab_.hosts[i].name;
  }
  // The registry speaks only HTTPS, with the lab's CA, which the engines
  // trust from their own certs.d (no insecure-registries anywhere).
  std::string plain, tls;
  lab_.InHost(lab_.hosts[0].name,
              {"curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://" + lab_.registry + "/v2/"},
              &plain);
  EXPECT_EQ(plain, "400") << "plain HTTP to the registry";
  lab_.InHost(lab_.hosts[0].name,
              {"curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
               "/etc/docker/certs.d/" + lab_.registry + "/ca.crt", "https://" + lab_.registry + "/v2/"},
              &tls);
  EXPECT_EQ(tls, "401") << "HTTPS to the registry with the CA of the host's certs.d";
  // Token auth (ctest's lab_up passes --token-server): the pushes and every
  // host's pull asked the realm, with the user's credentials, for this repository.
  EXPECT_EQ(lab_.registry_auth, "token") << "the lab's registry runs without token auth";
  {
    const std::string tokens = ReadFile(lab_.registry_token_log);
    EXPECT_NE(tokens.find("token: 200 for 'sallyport' (credentials: yes) service sallyport-lab-registry scopes "
                          "repository:lab-sample:push,pull"),
              std::string::npos)
        << tokens;
    EXPECT_NE(tokens.find("token: 200 for 'sallyport' (credentials: yes) service sallyport-lab-registry scopes "
                          "repository:lab-sample:pull"),
              std::string::npos)
        << tokens;
  }
  std::string insecure;
  lab_.InHost(lab_.hosts[0].name, {"docker", "info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}"},
              &insecure);
  EXPECT_EQ(Trim(insecure), "[\"127.0.0.0/8\"]") << "only docker's built-in loopback default";
  // The app port listens only inside its host: the office cannot reach it.
  std::string office;
  ::sp::test::Run({"curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://" + lab_.hosts[0].address + ":8081/"},
                  &office);
  EXPECT_EQ(office, "000");
  std::string inside;
  lab_.InHost(lab_.hosts[0].name, {"sh", "-c", "ss -Hltn 'sport = :8081' | wc -l"}, &inside);
  EXPECT_EQ(Trim(inside), "1");
  ExpectAllInRotation("dock");
}


// The office trusts the registry but one host's engine does not (no CA in
// its certs.d; the lab registry is not on loopback, which engines would
// trust without TLS checks): the preflight asks each host's engine for the
// manifest and names that host before anything moves.
TEST_F(LabRolloutTest, DockerPreflightNamesAHostWhoseEngineDoesNotTrustTheRegistry) {
  ASSERT_GE(lab_.docker_hosts, 3) << "the lab needs --docker-hosts 3";
  std::map<std::string, std::string> digests;
  PushImagesAndWriteDockerService(&digests, {"v3"});  // On no host yet: every engine is asked.
  if (HasFatalFailure()) return;
  std::vector<std::string> before;
  for (size_t i = 0; i < 3; ++i) before.push_back(VersionOn(i, 8081));
  const std::string ca = lab_.dir + "/hosts/" + lab_.hosts[1].name + "/etc-docker/certs.d/" + lab_.registry + "/ca.crt";
  const std::string saved = ReadFile(ca);
  ASSERT_FALSE(saved.empty()) << ca;
  std::filesystem::remove(ca);
  auto r = Rollout({"--artifact", digests["v3"], "--version", "v3"});
  WriteFile(ca, saved);  // Back before any assertion can stop the test.
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;  // The registry cannot be reached from that host.
  EXPECT_NE(r.err.find("preflight: host " + lab_.hosts[1].name + ": its engine resolving " + digests["v3"]),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("certificate signed by unknown authority"), std::string::npos) << r.err;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(VersionOn(i, 8081), before[i]) << lab_.hosts[i].name << " was touched";
  // With the CA back, the preflight passes.
  auto dry = Rollout({"--artifact", digests["v3"], "--version", "v3", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
}

TEST_F(LabRolloutTest, HostsTrustRecordsKeysThatPreflightOtherwiseRefuses) {
  WriteFile(*dir_ / "sallyport.yml", ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 30}"));
  const std::string kh = *dir_ / "known_hosts";
  WriteFile(*dir_ / "inventory.yml", Inventory("proc", "            base_dir: /srv/sallyport/apps\n", kh));
  const std::string app = BuildBinary("sp-sample-app");
  // Nothing trusted yet: preflight refuses, naming the bastion's fingerprint.
  auto refused = Rollout({"--artifact", app, "--version", "v3"});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("bastion " + lab_.bastion), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(lab_.Fingerprint("bastion")), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("sallyport hosts trust"), std::string::npos) << refused.err;

  auto trust = RunSallyport({"hosts", "trust", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                             "integration"});
  ASSERT_EQ(trust.exit_code, 0) << trust.out << trust.err;
  for (const std::string name : {"bastion", "h1", "h2", "h3"}) {
    EXPECT_NE(trust.out.find(lab_.Fingerprint(name)), std::string::npos) << name << "\n" << trust.out;
  }
  EXPECT_NE(trust.out.find("4 key(s) added"), std::string::npos) << trust.out;
  auto again = RunSallyport({"hosts", "trust", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                             "integration"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("0 key(s) added"), std::string::npos) << again.out;

  auto ok = Rollout({"--artifact", app, "--version", "v3"});
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;

  // h2 "rebuilt" (its entry now holds another key): trust refuses to replace
  // it and the rollout's preflight names the host and the key it offered.
  const std::string tampered =
      ReplaceKnownHost(ReadFile(kh), lab_.hosts[1].address, lab_.hosts[1].address + " " + lab_.HostKeyLine("h1"));
  WriteFile(kh, tampered, 0600);
  auto changed = RunSallyport({"hosts", "trust", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                               "integration"});
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_NE(changed.out.find("CHANGED h2"), std::string::npos) << changed.out;
  EXPECT_EQ(ReadFile(kh), tampered) << "trust must never replace a key";
  auto blocked = Rollout({"--artifact", app, "--version", "v4"});
  EXPECT_NE(blocked.exit_code, 0);
  EXPECT_NE(blocked.err.find("h2"), std::string::npos) << blocked.err;
  EXPECT_NE(blocked.err.find("CHANGED"), std::string::npos) << blocked.err;
  EXPECT_NE(blocked.err.find(lab_.Fingerprint("h2")), std::string::npos) << blocked.err;
}

// Failures through the bastion: each a clear error, and every server's
// HAProxy state and version as expected afterwards (asserted per server).
TEST_F(LabRolloutTest, FailuresAreClearAndLeaveEveryServerConsistent) {
  WriteFile(*dir_ / "sallyport.yml", ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 30}"));
  const std::string inventory = Inventory("proc", "            base_dir: /srv/sallyport/apps\n");
  WriteFile(*dir_ / "inventory.yml", inventory);
  const std::string app = BuildBinary("sp-sample-app");
  auto v1 = Rollout({"--artifact", app, "--version", "v1"});
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  const std::vector<std::pair<std::string, std::string>> all_v1 = {{"UP", "v1"}, {"UP", "v1"}, {"UP", "v1"}};
  ExpectServers(all_v1);

  // Exit 2: the inventory is wrong (a host key); 4: a host cannot be reached or refuses us.
  auto expect_refused = [&](const std::string& inv, const std::vector<std::string>& says, int exit_code = 2) {
    WriteFile(*dir_ / "inventory.yml", inv);
    auto r = Rollout({"--artifact", app, "--version", "v2"});
    EXPECT_EQ(r.exit_code, exit_code) << r.out << r.err;
    for (const auto& s : says) EXPECT_NE(r.err.find(s), std::string::npos) << "missing '" << s << "' in: " << r.err;
    ExpectServers(all_v1);  // Preflight refused: nothing touched.
  };
  // A key the bastion does not accept.
  ASSERT_EQ(::sp::test::Run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", *dir_ / "wrong_key"}), 0);
  std::string wrong_key = inventory;
  wrong_key.replace(wrong_key.find("key: " + lab_.key), 5 + lab_.key.size(), "key: " + *dir_ / "wrong_key");
  wrong_key.replace(wrong_key.find(", config: none"), 0, ", identity: " + *dir_ / "wrong_key");
  expect_refused(wrong_key, {"bastion " + lab_.bastion, "Permission denied"}, 4);
  // An app host whose key is not known, and one whose key changed.
  TempDir kh1("sp-kh"), kh2("sp-kh"), kh3("sp-kh");
  expect_refused(Inventory("proc", "            base_dir: /srv/sallyport/apps\n",
                           lab_.EditedKnownHosts(kh1.path(), lab_.hosts[1].address)),
                 {"h2", lab_.Fingerprint("h2")});
  expect_refused(Inventory("proc", "            base_dir: /srv/sallyport/apps\n",
                           lab_.EditedKnownHosts(kh2.path(), lab_.hosts[1].address,
                                                 lab_.hosts[1].address + " " + lab_.HostKeyLine("h1"))),
                 {"h2", "CHANGED", lab_.Fingerprint("h2")});
  // The bastion's key changed.
  expect_refused(Inventory("proc", "            base_dir: /srv/sallyport/apps\n",
                           lab_.EditedKnownHosts(kh3.path(), lab_.bastion, lab_.bastion + " " + lab_.HostKeyLine("h1"))),
                 {"bastion " + lab_.bastion, "CHANGED", lab_.Fingerprint("bastion")});
  // The bastion down (nothing listens where the inventory says it is).
  std::string bastion_down = inventory;
  bastion_down.replace(bastion_down.find("{address: " + lab_.bastion + ", "), 10 + lab_.bastion.size() + 2,
                       "{address: " + lab_.bastion + ", port: 9, ");
  expect_refused(bastion_down, {"cannot connect to bastion " + lab_.bastion}, 4);

  // An app host goes down mid-rollout (its link cut as its drain begins):
  // h1 is done, h2 fails and is reported (its restore cannot reach it
  // either), h3 is not touched.
  WriteFile(*dir_ / "inventory.yml", inventory);
  const std::string h2_ns = lab_.prefix + "-h2";
  bool cut = false;
  auto r = StreamSallyport({"rollout", "run", "-c", *dir_ / "sallyport.yml", "-i", *dir_ / "inventory.yml", "-d",
                            "integration", "--store", *dir_ / "state.db", "--artifact", app, "--version", "v2", "--output", "json"},
                           [&](const std::string& line) {
                             if (!cut && line.find("\"host\":\"h2\"") != std::string::npos &&
                                 line.find("\"step\":\"drain\"") != std::string::npos) {
                               cut = ::sp::test::Run({"ip", "-n", h2_ns, "link", "set", "eth0", "down"}) == 0;
                             }
                             return false;
                           });
  ::sp::test::Run({"ip", "-n", h2_ns, "link", "set", "eth0", "up"});
  ASSERT_TRUE(cut) << r.out << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // With --json the summary is an event on stdout.
  EXPECT_NE((r.out + r.err).find("host h2 failed at stop"), std::string::npos) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("RESTORE FAILED"), std::string::npos) << r.out << r.err;
  // Back up: h1 serves v2, h2 still v1 and out of rotation (in maintenance,
  // as left: its restore could not reach it), h3 untouched.
  ASSERT_TRUE(WaitFor([&] { return VersionOn(1, 8080) == "v1"; }, std::chrono::seconds(20)));
  ExpectServers({{"UP", "v2"}, {"MAINT", "v1"}, {"UP", "v1"}});
  // The next rollout converges every host.
  auto again = Rollout({"--artifact", app, "--version", "v2"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  ExpectServers({{"UP", "v2"}, {"UP", "v2"}, {"UP", "v2"}});

  // A command on a host that times out (a smoke command that hangs, bounded
  // by health timeout x retries = 3 s): h1 fails at smoke and is restored,
  // the remote process is gone, the others are untouched.
  WriteFile(*dir_ / "sallyport.yml",
            ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 3}") +
                "    smoke: [sh, -c, 'sleep 31']\n");
  auto hung = Rollout({"--artifact", app, "--version", "v3"});
  EXPECT_EQ(hung.exit_code, 1) << hung.out << hung.err;
  EXPECT_NE((hung.out + hung.err).find("host h1 failed at smoke"), std::string::npos) << hung.out << hung.err;
  EXPECT_NE((hung.out + hung.err).find("timed out"), std::string::npos) << hung.out << hung.err;
  ExpectServers({{"UP", "v2"}, {"UP", "v2"}, {"UP", "v2"}});
  CommandSpec ps;
  ps.argv = {"sh", "-c", "pgrep -f 'slee[p] 31' | wc -l"};
  ps.timeout = Millis(5000);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto left = ssh_->Run(lab_.Host(0), ps);
        return left && left->ok() && Trim(left->out) == "0";
      },
      std::chrono::seconds(10)))
      << "the timed-out command still runs on h1";
}

}  // namespace
}  // namespace sp::test
