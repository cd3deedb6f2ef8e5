#include "support/rollout_scenario.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "support/haproxy_fixture.h"
#include "support/http_get.h"
#include "support/test_util.h"
#include "runtime/process/process_runtime.h"
#include "transport/local/local_transport.h"

namespace sp::test {

HaproxyOptions ScenarioHaproxy(int hosts, std::vector<int>* ports) {
  HaproxyOptions o;
  o.backend = "web";
  for (int i = 1; i <= hosts; ++i) {
    ports->push_back(FreePort());
    o.servers.push_back({"app" + std::to_string(i), ports->back()});
  }
  return o;
}

std::string InventoryYaml(const ScenarioInventory& inv) {
  std::string y =
      "version: 1\n"
      "stacks:\n"
      "  demo:\n"
      "    deployments:\n"
      "      integration:\n"
      "        network: local\n"
      "        releases:\n"
      "          web:\n";
  if (!inv.base_dir.empty()) y += "            base_dir: " + inv.base_dir + "\n";
  if (!inv.docker_host.empty()) y += "            docker_host: " + inv.docker_host + "\n";
  y += "            load_balancers:\n"
       "              - {kind: haproxy, socket: " + inv.haproxy_socket + ", backend: web}\n"
       "            hosts:\n";
  for (size_t i = 0; i < inv.ports.size(); ++i) {
    y += "              - {name: app" + std::to_string(i + 1) + ", address: 127.0.0.1, port: " +
         std::to_string(inv.ports[i]) + "}\n";
  }
  return y;
}

void StopScenarioApps(const std::string& base_dir, int hosts, const std::string& deployment) {
  LocalTransport t;
  ProcessOptions po;
  po.base_dir = base_dir;
  ProcessRuntime rt(t, po);
  for (int i = 1; i <= hosts; ++i) {
    RuntimeTarget target{HostRef{"app" + std::to_string(i), "127.0.0.1", "", 22}, "web", deployment};
    auto list = rt.List(target);
    if (!list) continue;
    for (const auto& inst : *list) {
      if (inst.running) (void)rt.Stop(target, inst, Millis(2000));
    }
  }
}

std::string VersionOn(int port) {
  auto r = HttpGet(port, "/");
  if (!r) return "";
  auto p = r->body.find("version=");
  if (p == std::string::npos) return "";
  return r->body.substr(p + 8, r->body.find_first_of(" \n", p) - p - 8);
}

void ExpectAllUp(HaproxyFixture& haproxy, int hosts) {
  for (int i = 1; i <= hosts; ++i) {
    std::string s = haproxy.ServerStatus("app" + std::to_string(i));
    EXPECT_EQ(s.rfind("UP", 0), 0u) << "app" << i << " reports " << s;
  }
}

std::map<std::string, int> SessionsAtDrain(const std::string& json_lines) {
  std::map<std::string, int> m;
  std::istringstream ss(json_lines);
  for (std::string line; std::getline(ss, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.value("event", "") == "step" && j.value("step", "") == "wait_sessions" && j.value("phase", "") == "end") {
      m[j.value("host", "")] = j["detail"].value("sessions_at_drain", -1);
    }
  }
  return m;
}

std::string ProcessServiceYaml(const std::string& health, const std::string& extra_env) {
  return "version: 1\n"
         "service: sample\n"
         "stack: demo\n"
         "releases:\n"
         "  web:\n"
         "    runtime: process\n"
         "    port: 8080\n"
         "    env:\n"
         "      GREETING: hello\n" +
         extra_env + "    health: " + health +
         "\n"
         "    stop_timeout: 5s\n"
         "    strategy: {batch: 1, drain_timeout: 30s, ready_timeout: 10s}\n";
}

}  // namespace sp::test
