// The inventory service over real HTTP on loopback: `sallyport server`
// processes started by the test, driven with an HTTP client and with the CLI.
#include <httplib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "inventory/inventory.h"
#include "support/server_process.h"
#include "core/text.h"
#include "support/cli_runner.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const char* kInventory = R"(version: 1
stacks:
  shop:
    resources:
      db: {url: "postgres://db/shop"}
    deployments:
      prod:
        network: dc2
        env: {LOG_LEVEL: info}
        hosts:
          - {name: a1, address: 127.0.0.1, port: 18181, tags: {role: api}}
          - {name: a2, address: 127.0.0.1, port: 18182, tags: {role: api}}
        releases:
          api:
            select: role=api
            env: {LOG_LEVEL: warn}
            load_balancers: [{socket: /run/sp-test-haproxy.sock, backend: api}]
)";

// A `sallyport server` on a free loopback port, on the given store.
class Server {
 public:
  Server(const TempDir& dir, const std::string& store, const std::string& name) {
    log_ = dir / (name + ".log");
    EXPECT_FALSE(AdminToken(store).empty());
    daemon_ = Daemon({BuildBinary("sallyport"), "server", "--store", store, "--listen", "127.0.0.1:0"}, log_);
    auto ready = WaitForStart(daemon_, [&] { return ReadFile(log_).find("listening on") != std::string::npos; },
                              std::chrono::seconds(10));
    EXPECT_EQ(ready, StartWait::kReady) << ReadFile(log_);
    const std::string log = ReadFile(log_);
    size_t at = log.find("http://127.0.0.1:");
    if (at != std::string::npos) port_ = std::atoi(log.c_str() + at + 17);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    c.set_tcp_nodelay(true);
    c.set_default_headers({{"Authorization", Bearer()}});
    return c;
  }

 private:
  std::string log_;
  Daemon daemon_;
  int port_ = 0;
};

json Body(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

class InventoryApiTest : public ::testing::Test {
 protected:
  TempDir dir_{"sp-inv-api"};
};

TEST_F(InventoryApiTest, StatusCodesBodiesAndValidationErrors) {
  Server server(dir_, dir_ / "state.db", "s1");
  auto c = server.Client();
  auto health = c.Get("/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto created = c.Post("/v1/stacks", R"({"name":"shop","deployments":{}})", "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  auto again = c.Post("/v1/stacks", R"({"name":"shop","deployments":{}})", "application/json");
  EXPECT_EQ(again->status, 409);
  EXPECT_EQ(Body(again)["error"]["code"], "conflict");

  auto dep = c.Put("/v1/stacks/shop/deployments/prod",
                   R"({"network":"dc2","hosts":[{"name":"a1","address":"127.0.0.1"}],
                       "releases":{"api":{"hosts":["a1"],"load_balancers":[{"address":"127.0.0.1:9999","backend":"api"}]}}})",
                   "application/json");
  ASSERT_TRUE(dep);
  EXPECT_EQ(dep->status, 201) << dep->body;
  auto replaced = c.Put("/v1/stacks/shop/deployments/prod/hosts/a1", R"({"name":"a1","address":"127.0.0.2"})",
                        "application/json");
  EXPECT_EQ(replaced->status, 200) << replaced->body;
  auto get = c.Get("/v1/stacks/shop/deployments/prod/hosts/a1");
  ASSERT_EQ(get->status, 200);
  EXPECT_EQ(Body(get)["address"], "127.0.0.2");

  // Validation: the field as a JSON pointer, nothing written.
  auto bad = c.Put("/v1/stacks/shop/deployments/prod/hosts/a1", R"({"name":"a1","address":"127.0.0.999"})",
                   "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(Body(bad)["error"]["code"], "invalid_argument");
  EXPECT_THAT(Body(bad)["error"]["message"].get<std::string>(),
              HasSubstr("/stacks/shop/deployments/prod/hosts/0/address: invalid address '127.0.0.999'"));
  EXPECT_EQ(Body(c.Get("/v1/stacks/shop/deployments/prod/hosts/a1"))["address"], "127.0.0.2");
  auto bad_name = c.Put("/v1/stacks/Shop_1", R"({"deployments":{}})", "application/json");
  EXPECT_EQ(bad_name->status, 400);
  auto bad_port = c.Put("/v1/stacks/shop/deployments/prod/hosts/a1", R"({"name":"a1","address":"127.0.0.1","ssh_port":70000})",
                        "application/json");
  EXPECT_EQ(bad_port->status, 400);
  EXPECT_THAT(Body(bad_port)["error"]["message"].get<std::string>(), HasSubstr("/ssh_port"));
  auto malformed = c.Put("/v1/stacks/shop", "{\n  \"deployments\": {,\n}", "application/json");
  EXPECT_EQ(malformed->status, 400);
  EXPECT_THAT(Body(malformed)["error"]["message"].get<std::string>(), HasSubstr("line 2"));
  auto no_lb = c.Put("/v1/stacks/shop/deployments/prod/releases/web", R"({"hosts":["a1"]})", "application/json");
  EXPECT_EQ(no_lb->status, 400);
  EXPECT_THAT(Body(no_lb)["error"]["message"].get<std::string>(), HasSubstr("load_balancers"));

  // Unknown objects are 404s naming what is missing.
  auto missing = c.Get("/v1/stacks/nope");
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(Body(missing)["error"]["message"].get<std::string>(), HasSubstr("stack 'nope' not found (stacks: shop)"));
  auto resolve_missing = c.Get("/v1/resolve?stack=shop&release=web&deployment=prod");
  EXPECT_EQ(resolve_missing->status, 404);
  EXPECT_THAT(Body(resolve_missing)["error"]["message"].get<std::string>(), HasSubstr("release 'web' not in deployment 'prod'"));
  auto no_route = c.Get("/v1/nothing");
  EXPECT_EQ(no_route->status, 404);
  EXPECT_EQ(Body(no_route)["error"]["code"], "not_found");

  auto resolved = c.Get("/v1/resolve?stack=shop&release=api&deployment=prod");
  ASSERT_EQ(resolved->status, 200) << resolved->body;
  EXPECT_EQ(Body(resolved)["hosts"][0]["address"], "127.0.0.2");
  EXPECT_EQ(Body(resolved)["load_balancers"][0]["servers"]["a1"], "a1");

  auto deleted = c.Delete("/v1/stacks/shop/deployments/prod/releases/api");
  EXPECT_EQ(deleted->status, 204);
  auto deleted_again = c.Delete("/v1/stacks/shop/deployments/prod/releases/api");
  EXPECT_EQ(deleted_again->status, 404);
}

TEST_F(InventoryApiTest, CliApplyExportAndResolveThroughTheServer) {
  Server server(dir_, dir_ / "state.db", "s1");
  WriteFile(dir_ / "inventory.yml", kInventory);
  auto first = RunSallyport({"inventory", "apply", "-f", dir_ / "inventory.yml", "--server", server.url(), "--yes"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("+ stack shop"));
  auto second = RunSallyport({"inventory", "apply", "-f", dir_ / "inventory.yml", "--server", server.url(), "--yes"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("inventory: no changes"));

  auto exported = RunSallyport({"inventory", "export", "--server", server.url()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  auto a = ParseInventory(kInventory, "inventory.yml");
  auto b = ParseInventory(exported.out, "exported.yml");
  ASSERT_TRUE(a && b) << (b ? "" : b.error().message);
  EXPECT_EQ(InventoryToJson(*a).dump(), InventoryToJson(*b).dump());

  // Without --yes and without a terminal nothing is applied.
  std::string changed = kInventory;
  changed.replace(changed.find("LOG_LEVEL: info"), 15, "LOG_LEVEL: debug");
  WriteFile(dir_ / "changed.yml", changed);
  auto refused = RunSallyport({"inventory", "apply", "-f", dir_ / "changed.yml", "--server", server.url()});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.out, HasSubstr("~ deployment shop/prod"));
  EXPECT_THAT(RunSallyport({"inventory", "export", "--server", server.url()}).out, HasSubstr("LOG_LEVEL: info"));

  // A bad file names file, line and field, and the store is untouched.
  WriteFile(dir_ / "bad.yml", std::string(kInventory) + "          - {name: a1, address: 127.0.0.1}\n");
  auto bad = RunSallyport({"inventory", "apply", "-f", dir_ / "bad.yml", "--server", server.url(), "--yes"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("bad.yml:"));

  // The rollout resolves through the server: the plan's hosts come from it.
  WriteFile(dir_ / "sallyport.yml",
            "version: 1\nservice: shop-api\nstack: shop\nreleases:\n  api:\n    runtime: process\n    port: 18180\n"
            "    health: {path: /health}\n");
  auto plan = RunSallyport({"rollout", "run", "--dry-run", "-c", dir_ / "sallyport.yml", "-i", server.url(), "-d", "prod",
                            "--artifact", BuildBinary("sp-sample-app"), "--store", dir_ / "local.db"});
  // The plan is printed; its preflight then finds the inventory's HAProxy absent.
  EXPECT_EQ(plan.exit_code, 4) << plan.err;
  EXPECT_THAT(plan.err, HasSubstr("load balancer of backend"));
  auto p = json::parse(plan.out, nullptr, false);
  ASSERT_FALSE(p.is_discarded()) << plan.out;
  ASSERT_EQ(p["hosts"].size(), 2u);
  EXPECT_EQ(p["hosts"][1]["name"], "a2");
  EXPECT_EQ(p["app"]["env"]["LOG_LEVEL"], "warn");
  EXPECT_EQ(p["app"]["env"]["DB_URL"], "postgres://db/shop");
}

// Two server processes share one store: writes from both, interleaved, are
// all kept (each is one read-modify-write transaction).
TEST_F(InventoryApiTest, TwoServersSharingOneStoreLoseNoWrite) {
  Server s1(dir_, dir_ / "state.db", "s1");
  Server s2(dir_, dir_ / "state.db", "s2");
  WriteFile(dir_ / "inventory.yml", kInventory);
  ASSERT_EQ(RunSallyport({"inventory", "apply", "-f", dir_ / "inventory.yml", "--server", s1.url(), "--yes"}).exit_code, 0);
  constexpr int kWriters = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      auto c = (i % 2 ? s1 : s2).Client();
      auto t0 = std::chrono::steady_clock::now();
      const std::string name = "n" + std::to_string(i);
      auto r = c.Put("/v1/stacks/shop/deployments/prod/hosts/" + name,
                     R"({"name":")" + name + R"(","address":"127.0.0.1","tags":{"role":"api"}})", "application/json");
      if (r && r->status == 201) {
        ++ok;
      } else {
        ADD_FAILURE() << name << ": " << (r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error()))
                      << " after " << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count() << " ms";
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kWriters);
  // Read-your-writes from the other process too.
  for (const Server* s : {&s1, &s2}) {
    auto r = s->Client().Get("/v1/resolve?stack=shop&release=api&deployment=prod");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    EXPECT_EQ(Body(r)["hosts"].size(), 2u + kWriters);
  }
}

// 50 users claim personal deployments at once through two server processes
// sharing one store; the template's pool has 10 hosts.
TEST_F(InventoryApiTest, FiftyParallelClaimsAcrossTwoServersGetTenDistinctHosts) {
  Server s1(dir_, dir_ / "state.db", "s1");
  Server s2(dir_, dir_ / "state.db", "s2");
  std::string inv = "version: 1\nstacks:\n  shop:\n    deployments: {}\n    templates:\n      personal:\n"
                    "        ttl: 1h\n        deployment:\n          network: dev\n          hosts:\n";
  for (int i = 1; i <= 10; ++i) {
    inv += "            - {name: dev" + std::to_string(i) + ", address: 127.0.0." + std::to_string(10 + i) + "}\n";
  }
  // No load balancer: a release's teardown then only asks the runtime on the
  // host (this machine, nothing deployed), so it succeeds.
  inv += "          releases:\n            api:\n              load_balancers: none\n";
  WriteFile(dir_ / "inventory.yml", inv);
  auto applied = RunSallyport({"inventory", "apply", "-f", dir_ / "inventory.yml", "--server", s1.url(), "--yes"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;

  constexpr int kUsers = 50;
  std::mutex mu;
  std::map<int, int> statuses;
  std::map<std::string, std::string> host_of;  // user -> host
  std::vector<std::thread> threads;
  for (int i = 0; i < kUsers; ++i) {
    threads.emplace_back([&, i] {
      auto c = (i % 2 ? s1 : s2).Client();
      const std::string user = "user-" + std::to_string(i);
      auto r = c.Post("/v1/stacks/shop/templates/personal/claims", json{{"user", user}}.dump(), "application/json");
      std::lock_guard lk(mu);
      statuses[r ? r->status : -1]++;
      if (r && r->status == 201) host_of[user] = Body(r)["host"];
      if (r && r->status == 409) {
        EXPECT_THAT(r->body, HasSubstr("no free host")) << r->body;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(statuses[201], 10);
  EXPECT_EQ(statuses[409], kUsers - 10);
  std::set<std::string> hosts;
  for (const auto& [user, host] : host_of) hosts.insert(host);
  EXPECT_EQ(hosts.size(), 10u) << "a host was given twice";

  // Each winner's deployment resolves to exactly its host, from either server.
  for (const auto& [user, host] : host_of) {
    auto r = s2.Client().Get("/v1/resolve?stack=shop&release=api&deployment=personal-" + user);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_EQ(Body(r)["hosts"].size(), 1u);
    EXPECT_EQ(Body(r)["hosts"][0]["name"], host);
    EXPECT_TRUE(Body(r)["load_balancers"].empty()) << "the template says none";
  }
  // Releasing one frees its host for the next user; bad user names are 400.
  const std::string first = host_of.begin()->first;
  auto rel = RunSallyport({"claim", "release", "personal-" + first, "--stack", "shop", "--server", s1.url()});
  ASSERT_EQ(rel.exit_code, 0) << rel.err;
  auto next = RunSallyport({"claim", "create", "personal", "--stack", "shop", "--user", "late", "--server", s2.url()});
  ASSERT_EQ(next.exit_code, 0) << next.err;
  EXPECT_THAT(next.out, HasSubstr("\"host\": \"" + host_of.begin()->second + "\""));
  auto bad = s1.Client().Post("/v1/stacks/shop/templates/personal/claims", R"({"user":"Bad User"})", "application/json");
  EXPECT_EQ(bad->status, 400);
}

std::string Fixture(const std::string& rel) { return std::string(SP_SOURCE_DIR) + "/tests/fixtures/ansible/" + rel; }

// A deployment's hosts from a dynamic-inventory script, found at resolve
// time; a failing or garbage source is a clear error, never an empty fleet.
TEST_F(InventoryApiTest, DynamicSourceHostsAreFoundAtResolveTime) {
  Server server(dir_, dir_ / "state.db", "s1");
  auto c = server.Client();
  auto stack = c.Put("/v1/stacks/cloud",
                     json{{"deployments",
                           {{"prod",
                             {{"network", "aws"},
                              {"source", {{"command", {Fixture("script_meta/inventory.py")}}, {"timeout", "10s"}}},
                              {"releases",
                               {{"web", {{"select", "role_web"},
                                         {"load_balancers", {{{"address", "10.1.0.2:9999"}, {"backend", "web"}}}}}}}}}},
                            {"broken",
                             {{"network", "aws"},
                              {"source", {{"command", {"/bin/false"}}}},
                              {"releases",
                               {{"web", {{"select", "role_web"},
                                         {"load_balancers", {{{"address", "10.1.0.2:9999"}, {"backend", "web"}}}}}}}}}},
                            {"garbage",
                             {{"network", "aws"},
                              {"source", {{"command", {"/bin/echo", "not json"}}}},
                              {"releases",
                               {{"web", {{"select", "role_web"},
                                         {"load_balancers", {{{"address", "10.1.0.2:9999"}, {"backend", "web"}}}}}}}}}}}}}
                         .dump(),
                     "application/json");
  ASSERT_TRUE(stack);
  ASSERT_EQ(stack->status, 201) << stack->body;

  auto r = c.Get("/v1/resolve?stack=cloud&release=web&deployment=prod");
  ASSERT_EQ(r->status, 200) << r->body;
  auto hosts = Body(r)["hosts"];
  ASSERT_EQ(hosts.size(), 2u) << r->body;
  EXPECT_EQ(hosts[0]["address"], "10.1.1.10");
  EXPECT_EQ(hosts[0]["tags"]["role_web"], "true");
  EXPECT_EQ(hosts[0]["ssh_user"], "ec2-user");

  auto broken = c.Get("/v1/resolve?stack=cloud&release=web&deployment=broken");
  EXPECT_EQ(broken->status, 503) << broken->body;
  EXPECT_THAT(Body(broken)["error"]["message"].get<std::string>(), HasSubstr("/bin/false"));
  auto garbage = c.Get("/v1/resolve?stack=cloud&release=web&deployment=garbage");
  EXPECT_EQ(garbage->status, 400) << garbage->body;
  EXPECT_THAT(Body(garbage)["error"]["message"].get<std::string>(), HasSubstr("host source"));
}

TEST_F(InventoryApiTest, ImportAddsAnAnsibleInventorysHostsWithGroupsAsTags) {
  Server server(dir_, dir_ / "state.db", "s1");
  WriteFile(dir_ / "inventory.yml", kInventory);
  ASSERT_EQ(RunSallyport({"inventory", "apply", "-f", dir_ / "inventory.yml", "--server", server.url(), "--yes"}).exit_code, 0);
  auto imported = RunSallyport({"inventory", "import", "-f", Fixture("ini_fleet/hosts.ini"), "--stack", "shop", "-d",
                                "prod", "--server", server.url()});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_THAT(imported.out, HasSubstr("imported "));
  auto host = server.Client().Get("/v1/stacks/shop/deployments/prod/hosts/db-c");
  ASSERT_EQ(host->status, 200) << host->body;
  EXPECT_EQ(Body(host)["address"], "10.0.2.3");
  EXPECT_EQ(Body(host)["ssh_user"], "postgres");
  EXPECT_EQ(Body(host)["tags"]["dbservers"], "true");
  EXPECT_EQ(Body(host)["tags"]["dc1"], "true");  // Through :children.
  EXPECT_EQ(Body(host)["tags"]["prod"], "true");
}

}  // namespace
}  // namespace sp::test
