#include "inventory/inventory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_util.h"

#include <algorithm>
#include <set>
#include <string>

namespace sp {
namespace {

using ::testing::HasSubstr;

using test::LineOf;

std::string At(const std::string& text, const std::string& needle, int nth = 1) {
  return "inventory.yml:" + std::to_string(LineOf(text, needle, nth)) + ": ";
}

std::string ErrorOf(const std::string& text) {
  auto r = ParseInventory(text, "inventory.yml");
  EXPECT_FALSE(r.has_value()) << "parsed unexpectedly";
  if (r.has_value()) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << r.error().message;
  return r.error().message;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

const std::string kInventory = R"(version: 1
stacks:
  demo:
    requires_bastion: true
    resources:
      db:
        url: postgres://db.internal/demo
        read-url: postgres://replica.internal/demo
      cache-1:
        host: 10.0.0.9
    deployments:
      prod:
        network: dc1
        bastion:
          address: bastion.example.com
          port: 2222
          user: jump
          key: /etc/sallyport/keys/prod
          host_key: "bastion.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE"
        env:
          LOG_LEVEL: info
          REGION: eu
        releases:
          web:
            env:
              LOG_LEVEL: warn
            docker_host: unix:///run/sp-docker.sock
            base_dir: /srv/sallyport
            load_balancers:
              - kind: haproxy
                socket: /run/haproxy/admin.sock
                backend: web_back
                servers:
                  app1: web1
              - address: 10.0.0.2:9999
                backend: web
            hosts:
              - name: app1
                address: 10.0.0.11
                port: 8081
                ssh_user: deploy
                ssh_port: 2200
                tags: {zone: a, role: web}
              - name: app2
                address: app2.internal
              - {name: app3, address: 10.0.0.13}
      staging:
        network: dc1
        releases:
          web:
            load_balancers: [{socket: /run/haproxy/staging.sock, backend: web}]
)";

TEST(InventoryTest, ParsesEveryField) {
  auto r = ParseInventory(kInventory, "inventory.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const Inventory& inv = *r;
  EXPECT_EQ(inv.file, "inventory.yml");
  const StackSpec& demo = inv.stacks.at("demo");
  EXPECT_EQ(demo.name, "demo");
  EXPECT_TRUE(demo.requires_bastion);
  EXPECT_EQ(demo.resources.at("db").at("url"), "postgres://db.internal/demo");
  EXPECT_EQ(demo.resources.at("db").at("read-url"), "postgres://replica.internal/demo");
  EXPECT_EQ(demo.resources.at("cache-1").at("host"), "10.0.0.9");
  const DeploymentSpec& prod = demo.deployments.at("prod");
  EXPECT_EQ(prod.name, "prod");
  EXPECT_EQ(prod.network, "dc1");
  ASSERT_TRUE(prod.bastion.has_value());
  EXPECT_EQ(prod.bastion->address, "bastion.example.com");
  EXPECT_EQ(prod.bastion->port, 2222);
  EXPECT_EQ(prod.bastion->user, "jump");
  EXPECT_EQ(prod.bastion->key, "/etc/sallyport/keys/prod");
  EXPECT_EQ(prod.bastion->host_key, "bastion.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE");
  EXPECT_EQ(prod.env, (std::map<std::string, std::string>{{"LOG_LEVEL", "info"}, {"REGION", "eu"}}));
  const ReleaseInventory& web = prod.releases.at("web");
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.env, (std::map<std::string, std::string>{{"LOG_LEVEL", "warn"}}));
  EXPECT_EQ(web.docker_host, "unix:///run/sp-docker.sock");
  EXPECT_EQ(web.base_dir, "/srv/sallyport");
  ASSERT_EQ(web.load_balancers.size(), 2u);
  EXPECT_EQ(web.load_balancers[0].kind, "haproxy");
  EXPECT_EQ(web.load_balancers[0].socket, "/run/haproxy/admin.sock");
  EXPECT_EQ(web.load_balancers[0].address, "");
  EXPECT_EQ(web.load_balancers[0].backend, "web_back");
  EXPECT_EQ(web.load_balancers[0].ServerFor("app1"), "web1");
  EXPECT_EQ(web.load_balancers[0].ServerFor("app2"), "app2");
  EXPECT_EQ(web.load_balancers[1].kind, "haproxy");
  EXPECT_EQ(web.load_balancers[1].address, "10.0.0.2:9999");
  ASSERT_EQ(web.hosts.size(), 3u);
  EXPECT_EQ(web.hosts[0].name, "app1");
  EXPECT_EQ(web.hosts[0].address, "10.0.0.11");
  EXPECT_EQ(web.hosts[0].port, 8081);
  EXPECT_EQ(web.hosts[0].ssh_user, "deploy");
  EXPECT_EQ(web.hosts[0].ssh_port, 2200);
  EXPECT_EQ(web.hosts[0].tags, (std::map<std::string, std::string>{{"zone", "a"}, {"role", "web"}}));
  EXPECT_EQ(web.hosts[1].port, 0);
  EXPECT_EQ(web.hosts[1].ssh_port, 22);
  EXPECT_EQ(web.hosts[2].name, "app3");
  // A deployment without hosts needs no bastion even when the stack requires one.
  EXPECT_FALSE(demo.deployments.at("staging").bastion.has_value());
  EXPECT_TRUE(demo.deployments.at("staging").releases.at("web").hosts.empty());
}

TEST(InventoryTest, HostListedTwiceNamesBothLines) {
  const std::string text = Replace(kInventory, "{name: app3,", "{name: app1,");
  EXPECT_EQ(ErrorOf(text), At(text, "{name: app1,") +
                               "stacks.demo.deployments.prod.releases.web.hosts[2].name: host 'app1' listed twice in "
                               "this release (lines " +
                               std::to_string(LineOf(text, "name: app1")) + " and " +
                               std::to_string(LineOf(text, "{name: app1,")) + ")");
}

TEST(InventoryTest, ReleaseWithoutLoadBalancerIsRejected) {
  const std::string empty = Replace(kInventory, "load_balancers: [{socket: /run/haproxy/staging.sock, backend: web}]",
                                    "load_balancers: []");
  EXPECT_EQ(ErrorOf(empty), At(empty, "load_balancers: []") +
                                "stacks.demo.deployments.staging.releases.web.load_balancers: at least one load "
                                "balancer is required (or 'none', said explicitly)");
  const std::string missing = Replace(kInventory, "load_balancers: [{socket: /run/haproxy/staging.sock, backend: web}]",
                                      "base_dir: /srv");
  EXPECT_THAT(ErrorOf(missing), HasSubstr(At(missing, "          web:\n            base_dir: /srv") +
                                          "stacks.demo.deployments.staging.releases.web.load_balancers: missing "
                                          "required field"));
}

TEST(InventoryTest, NoLoadBalancerOnlyWhenSaidExplicitlyAndAddServersIsParsed) {
  const std::string none = Replace(kInventory, "load_balancers: [{socket: /run/haproxy/staging.sock, backend: web}]",
                                   "load_balancers: none");
  auto inv = ParseInventory(none, "inventory.yml");
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_TRUE(inv->stacks.at("demo").deployments.at("staging").releases.at("web").load_balancers.empty());
  const std::string typo = Replace(kInventory, "load_balancers: [{socket: /run/haproxy/staging.sock, backend: web}]",
                                   "load_balancers: nothing");
  EXPECT_THAT(ErrorOf(typo), HasSubstr("stacks.demo.deployments.staging.releases.web.load_balancers"));
  const std::string adds = Replace(kInventory, "{socket: /run/haproxy/staging.sock, backend: web}",
                                   "{socket: /run/haproxy/staging.sock, backend: web, add_servers: true}");
  auto added = ParseInventory(adds, "inventory.yml");
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_EQ(added->stacks.at("demo").deployments.at("staging").releases.at("web").load_balancers[0].add_servers, true);
  auto plain = ParseInventory(kInventory, "inventory.yml");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_FALSE(plain->stacks.at("demo").deployments.at("staging").releases.at("web").load_balancers[0].add_servers);
}

TEST(InventoryTest, LoadBalancerNeedsExactlyOneOfSocketOrAddress) {
  const std::string both = Replace(kInventory, "{socket: /run/haproxy/staging.sock,",
                                   "{socket: /run/haproxy/staging.sock, address: 10.0.0.1:9999,");
  EXPECT_THAT(ErrorOf(both), HasSubstr(At(both, "staging.sock") +
                                       "stacks.demo.deployments.staging.releases.web.load_balancers[0]: both 'socket' "
                                       "and 'address' are set"));
  const std::string neither = Replace(kInventory, "{socket: /run/haproxy/staging.sock, backend: web}", "{backend: web}");
  EXPECT_THAT(ErrorOf(neither), HasSubstr(At(neither, "[{backend: web}]") +
                                          "stacks.demo.deployments.staging.releases.web.load_balancers[0]: set "
                                          "exactly one of 'socket'"));
  const std::string no_port = Replace(kInventory, "address: 10.0.0.2:9999", "address: 10.0.0.2");
  EXPECT_THAT(ErrorOf(no_port), HasSubstr(At(no_port, "address: 10.0.0.2\n") +
                                          "stacks.demo.deployments.prod.releases.web.load_balancers[1].address: "
                                          "invalid address '10.0.0.2' (expected host:port"));
  const std::string kind = Replace(kInventory, "kind: haproxy", "kind: nginx");
  EXPECT_THAT(ErrorOf(kind), HasSubstr("load_balancers[0].kind: unsupported load balancer kind 'nginx'"));
  const std::string relative = Replace(kInventory, "socket: /run/haproxy/admin.sock", "socket: admin.sock");
  EXPECT_THAT(ErrorOf(relative), HasSubstr("load_balancers[0].socket: expected an absolute path, got 'admin.sock'"));
}

TEST(InventoryTest, ServersNamingAnUnknownHostAreRejected) {
  const std::string text = Replace(kInventory, "app1: web1", "app9: web9");
  EXPECT_EQ(ErrorOf(text), At(text, "app9: web9") +
                               "stacks.demo.deployments.prod.releases.web.load_balancers[0].servers.app9: no host "
                               "'app9' in this release's hosts (hosts: app1, app2, app3)");
}

TEST(InventoryTest, RequiresBastionRejectsADeploymentWithHostsAndNoBastion) {
  std::string text = kInventory;
  const size_t from = text.find("        bastion:");
  const size_t to = text.find("        env:");
  text.erase(from, to - from);
  EXPECT_EQ(ErrorOf(text), At(text, "      prod:") +
                               "stacks.demo.deployments.prod: stack 'demo' has requires_bastion: true, but this "
                               "deployment has hosts and no bastion");
  // Without requires_bastion the same deployment is fine.
  auto ok = ParseInventory(Replace(text, "requires_bastion: true", "requires_bastion: false"), "inventory.yml");
  EXPECT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_THAT(ErrorOf(Replace(kInventory, "requires_bastion: true", "requires_bastion: yes")),
              HasSubstr("inventory.yml:4: stacks.demo.requires_bastion: expected true or false, got 'yes'"));
}

TEST(InventoryTest, InvalidAddressesNamesAndPortsAreRejected) {
  auto check = [](const std::string& from, const std::string& to, const std::string& expected_suffix) {
    const std::string text = Replace(kInventory, from, to);
    EXPECT_EQ(ErrorOf(text), At(text, to) + expected_suffix);
  };
  check("address: 10.0.0.11", "address: 10.0.0.300",
        "stacks.demo.deployments.prod.releases.web.hosts[0].address: invalid address '10.0.0.300' (expected an IPv4 "
        "address or a DNS name)");
  check("address: bastion.example.com", "address: bad_host!",
        "stacks.demo.deployments.prod.bastion.address: invalid address 'bad_host!' (expected an IPv4 address or a DNS "
        "name)");
  check("port: 8081", "port: 65536",
        "stacks.demo.deployments.prod.releases.web.hosts[0].port: expected an integer from 1 to 65535, got '65536'");
  check("ssh_port: 2200", "ssh_port: twenty",
        "stacks.demo.deployments.prod.releases.web.hosts[0].ssh_port: expected an integer from 1 to 65535, got "
        "'twenty'");
  check("port: 2222", "port: -1", "stacks.demo.deployments.prod.bastion.port: expected an integer from 1 to 65535, got '-1'");
  check("- name: app1", "- name: \"app 1\"",
        "stacks.demo.deployments.prod.releases.web.hosts[0].name: invalid host name 'app 1' (expected letters, digits, "
        "'-', '.', '_')");
  check("      prod:", "      Prod:",
        "stacks.demo.deployments.Prod: invalid name 'Prod' (expected lower-case letters, digits and '-', starting "
        "with a letter or digit, at most 63 characters)");
  check("network: dc1", "network: \"dc 1\"",
        "stacks.demo.deployments.prod.network: invalid name 'dc 1' (expected lower-case letters, digits and '-', "
        "starting with a letter or digit, at most 63 characters)");
  check("ssh_user: deploy", "ssh_user: \"root;rm\"",
        "stacks.demo.deployments.prod.releases.web.hosts[0].ssh_user: invalid user name 'root;rm' (expected "
        "[a-z_][a-z0-9_-]*, at most 32 characters)");
  check("backend: web_back", "backend: \"web back\"",
        "stacks.demo.deployments.prod.releases.web.load_balancers[0].backend: invalid HAProxy name 'web back' "
        "(expected letters, digits, '-', '_', '.', ':')");
  check("docker_host: unix:///run/sp-docker.sock", "docker_host: /run/sp-docker.sock",
        "stacks.demo.deployments.prod.releases.web.docker_host: expected unix:///path/to/docker.sock or "
        "tcp://host:port, got '/run/sp-docker.sock'");
  check("REGION: eu", "REGION-X: eu",
        "stacks.demo.deployments.prod.env.REGION-X: invalid environment variable name 'REGION-X' (expected letters, "
        "digits and '_', not starting with a digit)");
}

TEST(InventoryTest, DuplicateKeysAtNestedLevelsNameBothLines) {
  // Inside a host's tags (flow mapping, depth 9).
  std::string text = Replace(kInventory, "{zone: a, role: web}", "{zone: a, zone: b}");
  const int tags_line = LineOf(text, "zone: a");
  EXPECT_EQ(ErrorOf(text), "inventory.yml:" + std::to_string(tags_line) +
                               ": stacks.demo.deployments.prod.releases.web.hosts[0].tags.zone: duplicate key 'zone' "
                               "(first on line " +
                               std::to_string(tags_line) + ", again on line " + std::to_string(tags_line) + ")");
  // Two deployments with the same name.
  text = Replace(kInventory, "      staging:", "      prod:");
  EXPECT_EQ(ErrorOf(text), At(text, "      prod:", 2) + "stacks.demo.deployments.prod: duplicate key 'prod' (first on line " +
                               std::to_string(LineOf(text, "      prod:")) + ", again on line " +
                               std::to_string(LineOf(text, "      prod:", 2)) + ")");
  // A repeated field in a bastion.
  text = Replace(kInventory, "          user: jump\n", "          user: jump\n          port: 22\n");
  EXPECT_THAT(ErrorOf(text), HasSubstr(At(text, "port: 22\n") + "stacks.demo.deployments.prod.bastion.port: duplicate key 'port' (first on line " +
                                       std::to_string(LineOf(text, "port: 2222")) + ", again on line " +
                                       std::to_string(LineOf(text, "port: 22\n")) + ")"));
}

TEST(InventoryTest, UnknownKeysAreRejected) {
  const std::string text = Replace(kInventory, "ssh_port: 2200", "sshport: 2200");
  EXPECT_EQ(ErrorOf(text), At(text, "sshport") +
                               "stacks.demo.deployments.prod.releases.web.hosts[0]: unknown key 'sshport' (expected "
                               "one of: name, address, port, ssh_user, ssh_port, tags)");
}

TEST(InventoryTest, MissingFieldsAndVersionAreNamed) {
  EXPECT_EQ(ErrorOf("stacks: {}\n"),
            "inventory.yml:1: version: missing required field (put 'version: 1' at the top of the file)");
  EXPECT_EQ(ErrorOf("version: 1\n"), "inventory.yml:1: stacks: missing required field");
  const std::string no_network = Replace(kInventory, "        network: dc1\n        releases:", "        releases:");
  EXPECT_THAT(ErrorOf(no_network), HasSubstr(At(no_network, "      staging:") +
                                             "stacks.demo.deployments.staging.network: missing required field"));
  const std::string no_address = Replace(kInventory, "              - name: app2\n                address: app2.internal\n",
                                         "              - name: app2\n");
  EXPECT_EQ(ErrorOf(no_address), At(no_address, "- name: app2") +
                                     "stacks.demo.deployments.prod.releases.web.hosts[1].address: missing required field");
}

TEST(InventoryTest, YamlSyntaxErrorReportsOneBasedLine) {
  EXPECT_THAT(ErrorOf("version: 1\nstacks:\n  demo:\n    deployments: {prod: \n  bad: ]\n"),
              HasSubstr("YAML syntax error"));
  EXPECT_THAT(ErrorOf("version: 1\nstacks:\n\tdemo: {}\n"), HasSubstr("inventory.yml:3: YAML syntax error"));
}

TEST(InventoryTest, ResourceAttributesMustMakeDistinctEnvNames) {
  const std::string text = Replace(kInventory, "      cache-1:\n        host: 10.0.0.9\n",
                                   "      db-read:\n        url: x\n");
  EXPECT_EQ(ErrorOf(text), At(text, "url: x") +
                               "stacks.demo.resources.db-read.url: exported as DB_READ_URL, which "
                               "stacks.demo.resources.db.read-url is exported as too");
  EXPECT_EQ(ResourceEnvName("cache-1", "read-url"), "CACHE_1_READ_URL");
  EXPECT_EQ(ResourceEnvName("db", "url"), "DB_URL");
}

// ---- Resolve ----

Inventory Parsed() {
  auto r = ParseInventory(kInventory, "inventory.yml");
  SP_CHECK(r.has_value());
  return *r;
}

TEST(ResolveTest, ResolvesHostsLoadBalancersAndEnv) {
  auto t = Resolve(Parsed(), "demo", "web", "prod");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->stack, "demo");
  EXPECT_EQ(t->release, "web");
  EXPECT_EQ(t->deployment, "prod");
  EXPECT_EQ(t->network, "dc1");
  ASSERT_TRUE(t->bastion.has_value());
  EXPECT_EQ(t->bastion->address, "bastion.example.com");
  EXPECT_EQ(t->load_balancers.size(), 2u);
  ASSERT_EQ(t->hosts.size(), 3u);
  EXPECT_EQ(t->docker_host, "unix:///run/sp-docker.sock");
  EXPECT_EQ(t->base_dir, "/srv/sallyport");
  EXPECT_EQ(t->resource_env, (std::map<std::string, std::string>{{"DB_URL", "postgres://db.internal/demo"},
                                                                  {"DB_READ_URL", "postgres://replica.internal/demo"},
                                                                  {"CACHE_1_HOST", "10.0.0.9"}}));
  // Release env overlays deployment env.
  EXPECT_EQ(t->deployment_env, (std::map<std::string, std::string>{{"LOG_LEVEL", "warn"}, {"REGION", "eu"}}));
}

TEST(ResolveTest, NotFoundNamesWhatIsMissing) {
  const Inventory inv = Parsed();
  auto s = Resolve(inv, "x", "web", "prod");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(s.error().message, HasSubstr("stack 'x' not found in inventory.yml"));
  EXPECT_THAT(s.error().message, HasSubstr("(stacks: demo)"));

  auto d = Resolve(inv, "demo", "web", "qa");
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(d.error().message, HasSubstr("deployment 'qa' not found in stack 'demo'"));
  EXPECT_THAT(d.error().message, HasSubstr("(deployments: prod, staging)"));

  auto r = Resolve(inv, "demo", "api", "prod");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr("release 'api' not in deployment 'prod' of stack 'demo'"));
}

TEST(ResolveTest, LimitNarrowsHostsKeepingInventoryOrder) {
  auto t = Resolve(Parsed(), "demo", "web", "prod", " app3, app1 ");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  ASSERT_EQ(t->hosts.size(), 2u);
  EXPECT_EQ(t->hosts[0].name, "app1");
  EXPECT_EQ(t->hosts[1].name, "app3");
  // Load balancers are not narrowed.
  EXPECT_EQ(t->load_balancers.size(), 2u);
}

TEST(ResolveTest, LimitNamingAnUnknownHostIsAnError) {
  auto t = Resolve(Parsed(), "demo", "web", "prod", "app1,app9");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(t.error().message, HasSubstr("host 'app9' is not in release 'web' of deployment 'prod'"));
  EXPECT_THAT(t.error().message, HasSubstr("(hosts: app1, app2, app3)"));
  auto empty = Resolve(Parsed(), "demo", "web", "prod", " , ");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
}

// ---- Host pools, selectors, dynamic sources ----

const std::string kPooled = R"(version: 1
stacks:
  shop:
    requires_bastion: true
    deployments:
      prod:
        network: dc2
        bastion: {address: 10.1.0.1}
        ssh: {known_hosts: /etc/sallyport/known_hosts, max_hosts: 4, connect_timeout: 1500ms}
        hosts:
          - {name: a1, address: 10.1.0.11, tags: {role: api, az: a}}
          - {name: a2, address: 10.1.0.12, tags: {role: api, az: b}}
          - {name: w1, address: 10.1.0.21, tags: {role: web, az: b}}
        source: {command: [/usr/local/bin/ec2.py, --region, eu], timeout: 20s}
        releases:
          api:
            select: role=api
            load_balancers: [{address: 10.1.0.2:9999, backend: api, servers: {a1: api-1, scaled-9: api-9}}]
          web:
            hosts: [w1, {name: extra, address: 10.1.0.99, tags: {role: "true"}}]
            load_balancers: [{address: 10.1.0.2:9999, backend: web}]
)";

TEST(InventoryTest, ReleasesNameOrSelectTheDeploymentsHosts) {
  auto inv = ParseInventory(kPooled, "inventory.yml");
  ASSERT_TRUE(inv) << inv.error().message;
  const auto& dep = inv->stacks.at("shop").deployments.at("prod");
  ASSERT_EQ(dep.hosts.size(), 3u);
  ASSERT_TRUE(dep.source);
  EXPECT_EQ(dep.source->command, (std::vector<std::string>{"/usr/local/bin/ec2.py", "--region", "eu"}));
  EXPECT_EQ(dep.source->timeout_ms, 20'000);
  const auto& web = dep.releases.at("web");
  ASSERT_EQ(web.hosts.size(), 2u);
  EXPECT_EQ(web.hosts[0].address, "10.1.0.21");  // Copied from the pool.
  EXPECT_EQ(web.pool_refs, std::set<std::string>{"w1"});
  EXPECT_EQ(dep.releases.at("api").select, "role=api");
}

TEST(InventoryTest, PoolReferencesAndSelectorsAreChecked) {
  EXPECT_THAT(ErrorOf(Replace(kPooled, "hosts: [w1,", "hosts: [w9,")),
              HasSubstr("no host 'w9' in this deployment's hosts (hosts: a1, a2, w1)"));
  EXPECT_THAT(ErrorOf(Replace(kPooled, "select: role=api", "select: role=a b")), HasSubstr("selector 'role=a b'"));
  const std::string no_source = Replace(kPooled, "        source: {command: [/usr/local/bin/ec2.py, --region, eu], timeout: 20s}\n", "");
  // Without a dynamic source, servers may only name hosts the release can have.
  EXPECT_THAT(ErrorOf(no_source), HasSubstr("no host 'scaled-9'"));
  EXPECT_THAT(ErrorOf(Replace(kPooled, "    - {name: a2, address: 10.1.0.12, tags: {role: api, az: b}}\n",
                              "    - {name: a2, address: 10.1.0.12, tags: {role: api, az: b}}\n"
                              "          - {name: a1, address: 10.1.0.13}\n")),
              HasSubstr("host 'a1' listed twice in this deployment"));
  // A pool counts as hosts for requires_bastion.
  EXPECT_THAT(ErrorOf(Replace(kPooled, "        bastion: {address: 10.1.0.1}\n", "")),
              HasSubstr("has hosts and no bastion"));
}

TEST(ResolveTest, SelectorPicksPoolAndSourceHostsAtResolveTime) {
  auto inv = ParseInventory(kPooled, "inventory.yml");
  ASSERT_TRUE(inv) << inv.error().message;
  int runs = 0;
  HostSourceRunner runner = [&](const HostSourceSpec& src) -> Result<std::vector<HostSpec>> {
    ++runs;
    EXPECT_EQ(src.command[0], "/usr/local/bin/ec2.py");
    HostSpec scaled;
    scaled.name = "scaled-9";
    scaled.address = "10.1.0.19";
    scaled.tags = {{"role", "api"}};
    HostSpec dup = scaled;  // Also in the pool under the same name: the pool's entry wins.
    dup.name = "a1";
    return std::vector<HostSpec>{scaled, dup};
  };
  auto t = Resolve(*inv, "shop", "api", "prod", "", runner);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(runs, 1);
  std::vector<std::string> names;
  for (const auto& h : t->hosts) names.push_back(h.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a1", "a2", "scaled-9"}));
  EXPECT_EQ(t->hosts[0].address, "10.1.0.11");

  auto no_runner = Resolve(*inv, "shop", "api", "prod");
  ASSERT_FALSE(no_runner);
  EXPECT_THAT(no_runner.error().message, HasSubstr("dynamic host source"));

  HostSourceRunner failing = [](const HostSourceSpec&) -> Result<std::vector<HostSpec>> {
    return Err(ErrorCode::kUnavailable, "ec2.py exited 1");
  };
  auto failed = Resolve(*inv, "shop", "api", "prod", "", failing);
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().message, HasSubstr("host source: ec2.py exited 1"));
  // Static releases never run the source.
  auto web = Resolve(*inv, "shop", "web", "prod", "", failing);
  ASSERT_TRUE(web) << web.error().message;
  EXPECT_EQ(web->hosts.size(), 2u);
}

// ---- Export ----

TEST(InventoryExportTest, ExportedYamlParsesBackToTheSameInventory) {
  for (const std::string* text : {&kInventory, &kPooled}) {
    auto inv = ParseInventory(*text, "inventory.yml");
    ASSERT_TRUE(inv) << inv.error().message;
    const std::string yaml = JsonToYaml(InventoryToJson(*inv));
    auto back = ParseInventory(yaml, "exported.yml");
    ASSERT_TRUE(back) << back.error().message << "\n" << yaml;
    EXPECT_EQ(InventoryToJson(*back).dump(), InventoryToJson(*inv).dump()) << yaml;
  }
}

TEST(InventoryExportTest, StoredDocumentsReadBackWithoutTheValidatingParser) {
  for (const std::string* text : {&kInventory, &kPooled}) {
    auto inv = ParseInventory(*text, "inventory.yml");
    ASSERT_TRUE(inv) << inv.error().message;
    for (const auto& [name, stack] : inv->stacks) {
      auto back = StackFromJson(name, nlohmann::json::parse(StackToJson(stack).dump()));
      ASSERT_TRUE(back) << back.error().message;
      EXPECT_EQ(StackToJson(*back).dump(), StackToJson(stack).dump());
      const auto& d = back->deployments.begin()->second;
      EXPECT_EQ(d.releases.begin()->second.hosts.size(), stack.deployments.begin()->second.releases.begin()->second.hosts.size());
    }
  }
  auto bad = StackFromJson("x", nlohmann::json::parse(R"({"deployments": {"d": {"releases": {}}}})"));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("stored stack 'x'"));
}

TEST(InventoryExportTest, JsonIsValidInventoryInputToo) {
  auto inv = ParseInventory(kPooled, "inventory.yml");
  ASSERT_TRUE(inv);
  const std::string json = InventoryToJson(*inv).dump(2);
  auto back = ParseInventory(json, "inventory.json");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(InventoryToJson(*back).dump(), InventoryToJson(*inv).dump());
}

TEST(InventoryExportTest, TextThatReadsAsANumberOrBooleanStaysAString) {
  auto inv = ParseInventory(kPooled, "inventory.yml");
  ASSERT_TRUE(inv);
  const std::string yaml = JsonToYaml(InventoryToJson(*inv));
  EXPECT_THAT(yaml, HasSubstr("role: \"true\""));
}

}  // namespace
}  // namespace sp
