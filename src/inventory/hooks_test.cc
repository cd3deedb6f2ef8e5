// A deployment's `hooks:` in the inventory file: read with errors naming
// file, line and field; the same hooks back from every wire form (export,
// the service's stored documents, resolve answers, plans).
#include "inventory/hooks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/wire.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

const std::string kHooked = R"(version: 1
stacks:
  demo:
    deployments:
      production:
        network: prod
        hooks:
          pre_rollout:
            - name: suspend-asg
              command: [aws, autoscaling, suspend-processes, --auto-scaling-group-name, web-prod]
              timeout: 30s
              on_error: warn
          post_rollout:
            - name: resume-asg
              http:
                method: PUT
                url: https://ops.internal/asg/web-prod/resume
                headers: {Authorization: {env: OPS_TOKEN}, X-Team: web}
                body: '{"rollout": "{rollout}", "key": "{key}"}'
        releases:
          web:
            load_balancers: none
            hosts: [{name: app1, address: 10.0.0.1}]
)";

void ExpectTheHooks(const HooksSpec& h) {
  ASSERT_EQ(h.pre_rollout.size(), 1u);
  EXPECT_EQ(h.pre_rollout[0].name, "suspend-asg");
  EXPECT_EQ(h.pre_rollout[0].command.back(), "web-prod");
  EXPECT_EQ(h.pre_rollout[0].timeout_ms, 30'000);
  EXPECT_EQ(h.pre_rollout[0].on_error, "warn");
  ASSERT_EQ(h.post_rollout.size(), 1u);
  const HookSpec& r = h.post_rollout[0];
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.url, "https://ops.internal/asg/web-prod/resume");
  EXPECT_EQ(r.header_refs.at("Authorization"), "env:OPS_TOKEN");
  EXPECT_EQ(r.headers.at("X-Team"), "web");
  EXPECT_EQ(r.body, R"({"rollout": "{rollout}", "key": "{key}"})");
  EXPECT_EQ(r.timeout_ms, 10'000);
  EXPECT_EQ(r.on_error, "abort");
  EXPECT_TRUE(h.pre_host.empty() && h.post_host.empty() && h.on_failure.empty());
}

TEST(HooksParseTest, ADeploymentsHooksAreReadAndComeBackFromEveryWireForm) {
  auto inv = ParseInventory(kHooked, "inventory.yml");
  ASSERT_TRUE(inv) << inv.error().message;
  ExpectTheHooks(inv->stacks.at("demo").deployments.at("production").hooks);
  // Export (YAML) and read again.
  auto again = ParseInventory(JsonToYaml(InventoryToJson(*inv)), "exported.yml");
  ASSERT_TRUE(again) << again.error().message;
  ExpectTheHooks(again->stacks.at("demo").deployments.at("production").hooks);
  // The inventory service's stored document.
  auto stack = StackFromJson("demo", nlohmann::json::parse(StackToJson(inv->stacks.at("demo")).dump()));
  ASSERT_TRUE(stack) << stack.error().message;
  ExpectTheHooks(stack->deployments.at("production").hooks);
  // A resolve answer carries them to whoever makes the plan.
  auto target = Resolve(*inv, "demo", "web", "production");
  ASSERT_TRUE(target) << target.error().message;
  ExpectTheHooks(ResolvedTargetFromJson(nlohmann::json::parse(ResolvedTargetToJson(*target).dump())).hooks);
}

TEST(HooksParseTest, ErrorsNameFileLineAndField) {
  auto error = [](const std::string& from, const std::string& to) {
    std::string text = kHooked;
    text.replace(text.find(from), from.size(), to);
    auto r = ParseInventory(text, "inventory.yml");
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message;
  };
  EXPECT_THAT(error("pre_rollout:", "pre_deploy:"), HasSubstr("inventory.yml:8: stacks.demo.deployments.production.hooks: "
                                                             "unknown key 'pre_deploy'"));
  const std::string both =
      error("              timeout: 30s", "              timeout: 30s\n              http: {url: 'https://x'}");
  EXPECT_THAT(both, HasSubstr("inventory.yml:9: stacks.demo.deployments.production.hooks.pre_rollout"));
  EXPECT_THAT(both, HasSubstr("set exactly one of 'command' (argv) and 'http'"));
  EXPECT_THAT(error("url: https://ops.internal", "url: http://ops.internal"),
              HasSubstr("secret headers go over HTTPS only"));
  EXPECT_THAT(error("{env: OPS_TOKEN}", "{env: 'OPS TOKEN'}"), HasSubstr("invalid environment variable name"));
  EXPECT_THAT(error("on_error: warn", "on_error: ignore"), HasSubstr("on_error must be abort or warn"));
}

TEST(HooksParseTest, AHookNamedTwiceAtOnePointIsRefused) {
  std::string text = kHooked;
  const std::string dup = "            - name: suspend-asg\n              command: [true]\n";
  text.insert(text.find("          post_rollout:"), dup);
  auto r = ParseInventory(text, "inventory.yml");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("hook 'suspend-asg' is named twice under pre_rollout"));
}

}  // namespace
}  // namespace sp
