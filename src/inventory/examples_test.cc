// The example files under examples/ must always parse: they are what the docs
// point people to.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "rollout/effective_env.h"
#include "inventory/inventory.h"
#include "config/service_config.h"

namespace sp {
namespace {

// <source root>/examples/demo, found from this file's own path.
std::string DemoDir() {
  return (std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "examples" / "demo").lexically_normal().string();
}

TEST(ExamplesTest, DemoFilesParseAndResolve) {
  auto svc = LoadServiceConfig(DemoDir() + "/sallyport.yml");
  ASSERT_TRUE(svc.has_value()) << svc.error().message;
  auto inv = LoadInventory(DemoDir() + "/inventory.yml");
  ASSERT_TRUE(inv.has_value()) << inv.error().message;

  EXPECT_EQ(svc->service, "hello");
  ASSERT_EQ(svc->releases.count("web"), 1u);
  const ReleaseSpec& web = svc->releases.at("web");
  EXPECT_EQ(web.runtime, "process");

  auto target = Resolve(*inv, svc->stack, "web", "local");
  ASSERT_TRUE(target.has_value()) << target.error().message;
  ASSERT_EQ(target->hosts.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(target->hosts[i].name, "app" + std::to_string(i + 1));
    EXPECT_EQ(target->hosts[i].address, "127.0.0.1");
    EXPECT_EQ(target->hosts[i].port, 18081 + i);
  }
  ASSERT_EQ(target->load_balancers.size(), 1u);
  EXPECT_EQ(target->load_balancers[0].kind, "haproxy");
  EXPECT_FALSE(target->load_balancers[0].socket.empty());

  const auto env = EffectiveEnv(*target, web, {}).env;
  EXPECT_EQ(env.at("DB_URL"), "postgres://demo@127.0.0.1:5432/demo");
  EXPECT_EQ(env.at("LOG_LEVEL"), "info");
  EXPECT_EQ(env.at("GREETING"), "hello from sallyport");
}

}  // namespace
}  // namespace sp
