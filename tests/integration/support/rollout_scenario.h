// Shared pieces of the end-to-end rollout tests and benchmarks: the
// inventory for "stack demo / deployment integration / release web" with N
// local hosts behind one HAProxy, and what the hosts and HAProxy report.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace sp::test {

class HaproxyFixture;
struct HaproxyOptions;

// HAProxy options for the scenario: backend "web" with servers app1..app<hosts>
// on fresh 127.0.0.1 ports, which are appended to *ports.
HaproxyOptions ScenarioHaproxy(int hosts, std::vector<int>* ports);

struct ScenarioInventory {
  std::string haproxy_socket;
  std::vector<int> ports;    // Host i (1-based) is "app<i>" on 127.0.0.1:ports[i-1].
  std::string base_dir;      // Process runtime root (or empty).
  std::string docker_host;   // Docker runtime engine (or empty).
};
// inventory.yml text: backend "web", servers named like the hosts.
std::string InventoryYaml(const ScenarioInventory& inv);

// sallyport.yml for service "sample" on stack "demo": release web, process
// runtime on port 8080, batch 1. `health` is the flow mapping of the health
// check; `extra_env` more lines under env (each "      KEY: value\n").
std::string ProcessServiceYaml(const std::string& health, const std::string& extra_env = "");

// Stops every running instance of release web on hosts app1..app<hosts>
// of `deployment`, through the real process runtime rooted at `base_dir`
// (its pid files): what a test or benchmark started, ended by PID.
void StopScenarioApps(const std::string& base_dir, int hosts, const std::string& deployment = "integration");

// The version the sample app on `port` reports ("version=<v>"), "" if none.
std::string VersionOn(int port);

// Fails the current test for every server of the backend not reported UP.
void ExpectAllUp(HaproxyFixture& haproxy, int hosts);

// host -> sessions_at_drain, from a `sallyport rollout --json` output.
std::map<std::string, int> SessionsAtDrain(const std::string& json_lines);

}  // namespace sp::test
