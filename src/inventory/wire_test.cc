// The one serializer of each wire shape: every field survives the round
// trip, and the plan, the API and the export all write that same shape.
#include "inventory/wire.h"

#include <gtest/gtest.h>

#include "rollout/plan.h"

namespace sp {
namespace {

BastionSpec Bastion() { return {"10.9.0.1", 2222, "ops", "/etc/sp/bastion.key", "10.9.0.1 ssh-ed25519 AAAAC3Nz"}; }
SshAccess Ssh() { return {true, "/etc/sp/known_hosts", "none", "/etc/sp/id", "app", 7000, 4}; }
HostSpec Host() { return {"app1", "10.9.0.11", 8081, "deploy", 2200, {{"role", "api"}, {"az", "b"}}}; }
LoadBalancerSpec Lb() {
  LoadBalancerSpec lb;
  lb.socket = "/run/haproxy.sock";
  lb.backend = "web";
  lb.servers = {{"app1", "web-1"}};
  lb.add_servers = true;
  return lb;
}

TEST(WireTest, EveryFieldOfEachShapeSurvivesTheRoundTrip) {
  const BastionSpec b = BastionFromJson(nlohmann::json::parse(BastionToJson(Bastion()).dump()));
  EXPECT_EQ(b.address, "10.9.0.1");
  EXPECT_EQ(b.port, 2222);
  EXPECT_EQ(b.user, "ops");
  EXPECT_EQ(b.key, "/etc/sp/bastion.key");
  EXPECT_EQ(b.host_key, "10.9.0.1 ssh-ed25519 AAAAC3Nz");
  const SshAccess s = SshAccessFromJson(nlohmann::json::parse(SshAccessToJson(Ssh()).dump()));
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.known_hosts, "/etc/sp/known_hosts");
  EXPECT_EQ(s.config, "none");
  EXPECT_EQ(s.identity, "/etc/sp/id");
  EXPECT_EQ(s.user, "app");
  EXPECT_EQ(s.connect_timeout_ms, 7000);
  EXPECT_EQ(s.max_hosts, 4);
  const HostSpec h = HostFromJson(nlohmann::json::parse(HostToJson(Host()).dump()));
  EXPECT_EQ(h.name, "app1");
  EXPECT_EQ(h.address, "10.9.0.11");
  EXPECT_EQ(h.port, 8081);
  EXPECT_EQ(h.ssh_user, "deploy");
  EXPECT_EQ(h.ssh_port, 2200);
  EXPECT_EQ(h.tags, Host().tags);
  const LoadBalancerSpec lb = LoadBalancerFromJson(nlohmann::json::parse(LoadBalancerToJson(Lb()).dump()));
  EXPECT_EQ(lb.socket, "/run/haproxy.sock");
  EXPECT_EQ(lb.backend, "web");
  EXPECT_EQ(lb.servers, Lb().servers);
  EXPECT_EQ(lb.add_servers, std::optional<bool>(true));
}

TEST(WireTest, AFrozenPlanWritesTheSameShapesAsTheApi) {
  RolloutPlan p;
  p.id = "r-1";
  p.stack = "demo";
  p.release = "web";
  p.deployment = "dev";
  p.hosts = {Host()};
  p.load_balancers = {Lb()};
  p.bastion = Bastion();
  p.ssh = Ssh();
  p.registry.insecure = true;
  const auto plan = nlohmann::json::parse(PlanToJson(p));
  EXPECT_EQ(plan["bastion"], nlohmann::json::parse(BastionToJson(Bastion()).dump()));
  EXPECT_EQ(plan["ssh"], nlohmann::json::parse(SshAccessToJson(Ssh()).dump()));
  EXPECT_EQ(plan["hosts"][0], nlohmann::json::parse(HostToJson(Host()).dump()));
  EXPECT_EQ(plan["load_balancers"][0], nlohmann::json::parse(LoadBalancerToJson(Lb()).dump()));
  auto back = PlanFromJson(PlanToJson(p));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->bastion->host_key, Bastion().host_key);
  EXPECT_EQ(back->ssh.identity, "/etc/sp/id");
  EXPECT_EQ(back->hosts[0].tags, Host().tags);
  EXPECT_TRUE(back->registry.insecure);
  // A plan frozen before registry.insecure existed reads as HTTPS.
  auto old = nlohmann::json::parse(PlanToJson(p));
  old["registry"].erase("insecure");
  auto older = PlanFromJson(old.dump());
  ASSERT_TRUE(older) << older.error().message;
  EXPECT_FALSE(older->registry.insecure);
}

}  // namespace
}  // namespace sp
