// Personal deployments for real, in the lab: a claim takes a pool host behind
// the bastion, its first rollout adds the host's server to the user's empty
// HAProxy backend, and release (CLI) or TTL expiry (the server's timer) tears
// it down: the server deleted from the backend, the app stopped and removed
// on the host, the host returned to the pool. Other deployments on the same
// host are untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "core/text.h"
#include "lb/haproxy/haproxy_lb.h"
#include "runtime/process/process_runtime.h"
#include "support/cli_runner.h"
#include "support/lab.h"
#include "support/rollout_scenario.h"
#include "support/server_process.h"
#include "support/test_util.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;

class LabPersonalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lab = Lab::Load();
    ASSERT_TRUE(lab) << lab.error().message;
    lab_ = *lab;
    dir_ = std::make_unique<TempDir>("sp-lab-personal");
    ssh_ = std::make_unique<SshTransport>(lab_.Ssh());
  }

  // Stack demo with template `personal`: pool h1, h2 behind the bastion;
  // release web on the user's own, initially empty, backend pers-{user}.
  std::string Inventory(const std::string& ttl) {
    return "version: 1\n"
           "stacks:\n"
           "  demo:\n"
           "    requires_bastion: true\n"
           "    templates:\n"
           "      personal:\n"
           "        name: personal-{user}\n"
           "        ttl: " + ttl + "\n"
           "        deployment:\n"
           "          network: lab\n"
           "          bastion: {address: " + lab_.bastion + ", user: deploy, key: " + lab_.key + "}\n"
           "          ssh: {known_hosts: " + lab_.known_hosts + ", config: none, connect_timeout: 5s}\n"
           "          hosts:\n"
           "            - {name: " + lab_.hosts[0].name + ", address: " + lab_.hosts[0].address + "}\n"
           "            - {name: " + lab_.hosts[1].name + ", address: " + lab_.hosts[1].address + "}\n"
           "          releases:\n"
           "            web:\n"
           "              base_dir: /srv/sallyport/apps\n"
           "              load_balancers:\n"
           "                - {kind: haproxy, address: \"" + lab_.lb_api_address + ":" + std::to_string(lab_.lb_api_port) +
           "\", backend: \"pers-{user}\"}\n";
  }

  void WriteService(int port) {
    std::string svc = ProcessServiceYaml("{path: /health, interval: 100ms, timeout: 1s, retries: 30}");
    svc.replace(svc.find("port: 8080"), 10, "port: " + std::to_string(port));
    WriteFile(*dir_ / "sallyport.yml", svc);
  }

  std::map<std::string, std::string> Servers(const std::string& backend) { return lab_.ServerStatus(*ssh_, backend); }

  // What the office gets through HAProxy's frontend on `port`.
  std::string ThroughLb(int port) {
    std::string out;
    ::sp::test::Run({"curl", "-s", "-m", "3", "http://" + lab_.lb + ":" + std::to_string(port) + "/"}, &out);
    return out;
  }

  // What answers on lab host i's own loopback (seen from inside).
  std::string OnHost(size_t i, int port) {
    CommandSpec s;
    s.argv = {"curl", "-s", "-m", "2", "http://127.0.0.1:" + std::to_string(port) + "/"};
    s.timeout = Millis(5000);
    auto r = ssh_->Run(lab_.Host(i), s);
    return r && r->ok() ? r->out : "";
  }

  // Instances the process runtime finds for (web, deployment) on lab host i.
  size_t InstancesOn(size_t i, const std::string& deployment) {
    ProcessOptions o;
    o.base_dir = "/srv/sallyport/apps";
    ProcessRuntime rt(*ssh_, o);
    auto list = rt.List(RuntimeTarget{lab_.Host(i), "web", deployment});
    EXPECT_TRUE(list) << list.error().message;
    return list ? list->size() : 0;
  }

  Lab lab_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<SshTransport> ssh_;
};

TEST_F(LabPersonalTest, ReleaseTearsDownTheAppAndTheServerEntryAndReturnsTheHost) {
  const std::string db = *dir_ / "state.db";
  WriteFile(*dir_ / "inventory.yml", Inventory("24h"));
  WriteService(8082);
  auto applied = RunSallyport({"inventory", "apply", "-f", *dir_ / "inventory.yml", "--store", db, "--yes"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  auto claim = RunSallyport({"claim", "create", "personal", "--stack", "demo", "--user", "ben", "--store", db});
  ASSERT_EQ(claim.exit_code, 0) << claim.out << claim.err;
  EXPECT_THAT(claim.out, HasSubstr("\"host\": \"" + lab_.hosts[0].name + "\""));
  ASSERT_TRUE(Servers("pers-ben").empty()) << "the lab's personal backend starts empty";

  const std::string app = BuildBinary("sp-sample-app");
  auto v1 = RunSallyport({"rollout", "run", "-c", *dir_ / "sallyport.yml", "-i", "store", "--store", db, "-d", "personal-ben",
                          "--artifact", app, "--version", "v1"});
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  EXPECT_THAT(v1.out, HasSubstr("added to"));
  EXPECT_EQ(Servers("pers-ben"), (std::map<std::string, std::string>{{lab_.hosts[0].name, "UP"}}));
  EXPECT_THAT(ThroughLb(82), HasSubstr("version=v1"));
  ASSERT_EQ(InstancesOn(0, "personal-ben"), 1u);
  const std::string integration_app = OnHost(0, 8080);  // Another deployment's app on the same host.

  auto released = RunSallyport({"claim", "release", "personal-ben", "--stack", "demo", "--store", db});
  ASSERT_EQ(released.exit_code, 0) << released.out << released.err;
  EXPECT_THAT(released.out, HasSubstr("teardown"));
  EXPECT_TRUE(Servers("pers-ben").empty()) << "server entry deleted";
  EXPECT_EQ(InstancesOn(0, "personal-ben"), 0u) << "app stopped and removed";
  EXPECT_EQ(OnHost(0, 8082), "") << "nothing answers on the personal app's port";
  EXPECT_EQ(OnHost(0, 8080), integration_app) << "other deployments on the host untouched";

  auto amy = RunSallyport({"claim", "create", "personal", "--stack", "demo", "--user", "amy", "--store", db});
  ASSERT_EQ(amy.exit_code, 0) << amy.out << amy.err;
  EXPECT_THAT(amy.out, HasSubstr("\"host\": \"" + lab_.hosts[0].name + "\"")) << "the host is back in the pool";
  auto gone = RunSallyport({"inventory", "resolve", "--stack", "demo", "--release", "web", "--deployment",
                            "personal-ben", "--store", db});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_THAT(gone.err, HasSubstr("personal-ben"));
}

TEST_F(LabPersonalTest, TtlExpiryOnTheServerTearsDownForReal) {
  const std::string db = *dir_ / "state.db";
  WriteFile(*dir_ / "inventory.yml", Inventory("10s"));
  WriteService(8083);
  const std::string log = *dir_ / "server.log";
  ASSERT_FALSE(AdminToken(db).empty());  // The CLI's calls through the server present it.
  Daemon server({BuildBinary("sallyport"), "server", "--store", db, "--listen", "127.0.0.1:0", "--expire-every",
                 "200ms"},
                log);
  ASSERT_EQ(WaitForStart(server, [&] { return ReadFile(log).find("listening on") != std::string::npos; },
                         std::chrono::seconds(10)),
            StartWait::kReady)
      << ReadFile(log);
  const std::string text = ReadFile(log);
  const std::string url = "http://127.0.0.1:" + std::to_string(std::atoi(text.c_str() + text.find("http://127.0.0.1:") + 17));

  auto applied = RunSallyport({"inventory", "apply", "-f", *dir_ / "inventory.yml", "--server", url, "--yes"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  auto claim = RunSallyport({"claim", "create", "personal", "--stack", "demo", "--user", "amy", "--server", url});
  ASSERT_EQ(claim.exit_code, 0) << claim.out << claim.err;
  EXPECT_THAT(claim.out, HasSubstr("\"host\": \"" + lab_.hosts[0].name + "\""));
  auto v1 = RunSallyport({"rollout", "run", "-c", *dir_ / "sallyport.yml", "-i", url, "--store", db, "-d", "personal-amy",
                          "--artifact", BuildBinary("sp-sample-app"), "--version", "v1"});
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  EXPECT_EQ(Servers("pers-amy"), (std::map<std::string, std::string>{{lab_.hosts[0].name, "UP"}}));
  EXPECT_THAT(ThroughLb(83), HasSubstr("version=v1"));

  // The TTL passes; the server's timer tears the deployment down and frees the host.
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("claim demo/personal-amy expired") != std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(log);
  EXPECT_TRUE(Servers("pers-amy").empty()) << "server entry deleted";
  EXPECT_EQ(InstancesOn(0, "personal-amy"), 0u);
  EXPECT_EQ(OnHost(0, 8083), "");
  auto claims = RunSallyport({"claim", "create", "personal", "--stack", "demo", "--user", "cid", "--server", url});
  ASSERT_EQ(claims.exit_code, 0) << claims.out << claims.err;
  EXPECT_THAT(claims.out, HasSubstr("\"host\": \"" + lab_.hosts[0].name + "\"")) << "the host is back in the pool";
  server.Stop();
}

}  // namespace
}  // namespace sp::test
