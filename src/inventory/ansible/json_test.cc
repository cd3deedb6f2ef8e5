#include "inventory/ansible/ansible_import.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/ansible/test_helpers.h"

namespace sp::inventory::ansible_test {
namespace {

using ::testing::HasSubstr;

// --- JSON -----------------------------------------------------------------------

TEST(AnsibleJsonTest, WithMetaHostvarsTheCallbackIsNotUsed) {
  auto inv = ParseAnsibleJson(R"({
    "all": {"vars": {"env": "prod", "level": "all"}},
    "web": {"hosts": ["web1", "web2"], "vars": {"level": "web"}},
    "dc1": {"children": ["web", "db"]},
    "db": ["db1"],
    "_meta": {"hostvars": {"web1": {"ansible_host": "10.0.0.1", "level": "host"}, "ghost": {"x": 1}}}
  })", "inv.json", [](const std::string& host) -> Result<json> {
    ADD_FAILURE() << "--host called for " << host;
    return json::object();
  });
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(Names(*inv), (std::vector<std::string>{"db1", "web1", "web2"}));  // ghost is in no group.
  EXPECT_EQ(Tags(Host(*inv, "web1")), (std::vector<std::string>{"dc1", "web"}));
  EXPECT_EQ(Tags(Host(*inv, "db1")), (std::vector<std::string>{"db", "dc1"}));
  EXPECT_EQ(Vars(Host(*inv, "web1")), json::parse(R"({"env": "prod", "level": "host", "ansible_host": "10.0.0.1"})"));
  EXPECT_EQ(Host(*inv, "web1").address, "10.0.0.1");
  EXPECT_EQ(Host(*inv, "web2").vars.at("level"), "web");
}

TEST(AnsibleJsonTest, WithoutMetaAsksForEachHostOnce) {
  std::vector<std::string> asked;
  auto inv = ParseAnsibleJson(R"({"web": {"hosts": ["web1", "web2"], "vars": {"port": 80}}, "all": {"children": ["web"]},
                                  "canary": ["web2"]})",
                              "inv.json", [&](const std::string& host) -> Result<json> {
                                asked.push_back(host);
                                if (host == "web2") return json{{"port", 8080}, {"ansible_user", "deploy"}};
                                return json::object();
                              });
  ASSERT_TRUE(inv) << inv.error().message;
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<std::string>{"web1", "web2"}));
  EXPECT_EQ(Host(*inv, "web1").vars.at("port"), 80);
  EXPECT_EQ(Host(*inv, "web2").vars.at("port"), 8080);
  EXPECT_EQ(Host(*inv, "web2").ssh_user, "deploy");
  EXPECT_EQ(Tags(Host(*inv, "web2")), (std::vector<std::string>{"canary", "web"}));
}

TEST(AnsibleJsonTest, MetaWithoutHostvarsStillAsksPerHost) {
  int asked = 0;
  auto inv = ParseAnsibleJson(R"({"web": ["web1"], "_meta": {}})", "inv.json", [&](const std::string&) -> Result<json> {
    ++asked;
    return json{{"x", 1}};
  });
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(Host(*inv, "web1").vars.at("x"), 1);
}

TEST(AnsibleJsonTest, HostVarsCallbackResultsMustBeObjects) {
  auto inv = ParseAnsibleJson(R"({"web": ["web1"]})", "inv.json", [](const std::string&) -> Result<json> {
    return json::array();
  });
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message, HasSubstr("inv.json: output of --host web1: variables of host 'web1' must be a JSON object"));
  inv = ParseAnsibleJson(R"({"web": ["web1"]})", "inv.json", [](const std::string&) -> Result<json> {
    return Err(ErrorCode::kUnavailable, "script died");
  });
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(inv.error().message, "script died");
}

TEST(AnsibleJsonTest, GarbageNamesTheByteOffset) {
  EXPECT_THAT(JsonError("{\"web\": {\"hosts\": [\"a\",]}}"), HasSubstr("inv.json: not valid JSON at byte 24"));
  EXPECT_THAT(JsonError(""), HasSubstr("inv.json: not valid JSON at byte"));
  EXPECT_THAT(JsonError("Traceback (most recent call last):"), HasSubstr("not valid JSON at byte 1"));
}

TEST(AnsibleJsonTest, WrongShapesNameTheJsonPointer) {
  EXPECT_THAT(JsonError("[1]"), HasSubstr("inv.json: expected a JSON object of groups, got array"));
  EXPECT_THAT(JsonError(R"({"web": {"hosts": ["a", 5]}})"), HasSubstr("inv.json: /web/hosts/1: expected a host name, got 5"));
  EXPECT_THAT(JsonError(R"({"web": {"hosts": "a"}})"), HasSubstr("inv.json: /web/hosts: expected a list of host names"));
  EXPECT_THAT(JsonError(R"({"web": {"vars": [], "hosts": []}})"), HasSubstr("inv.json: /web/vars: expected an object"));
  EXPECT_THAT(JsonError(R"({"web": {"children": [{}]}})"), HasSubstr("inv.json: /web/children/0: expected a group name"));
  EXPECT_THAT(JsonError(R"({"web": ["a"], "_meta": {"hostvars": {"a": []}}})"),
              HasSubstr("inv.json: /_meta/hostvars/a: variables of host 'a' must be a JSON object"));
  EXPECT_THAT(JsonError(R"({"web": ["a"], "_meta": {"hostvars": {"a": {"ansible_port": "x"}}}})"),
              HasSubstr("inv.json: /_meta/hostvars/a/ansible_port: host 'a': ansible_port must be a port number"));
  EXPECT_THAT(JsonError(R"({"a/b": {"hosts": [1]}})"), HasSubstr("inv.json: /a~1b/hosts/0"));
  EXPECT_THAT(JsonError(R"({"a": {"children": ["b"]}, "b": {"children": ["a"]}})"),
              HasSubstr("inv.json: /b/children/0: adding group 'a' as a child of 'b' makes a loop"));
}

TEST(AnsibleJsonTest, AGroupObjectWithoutKnownKeysIsAHostWithVars) {
  // Ansible's script plugin reads {"name": {vars}} as host "name" in group "name".
  auto inv = ParseAnsibleJson(R"({"solo": {"x": 1}})", "inv.json");
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(Names(*inv), std::vector<std::string>{"solo"});
  EXPECT_EQ(Host(*inv, "solo").vars.at("x"), 1);
}

}  // namespace
}  // namespace sp::inventory::ansible_test
