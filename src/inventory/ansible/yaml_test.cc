#include "inventory/ansible/ansible_import.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/ansible/test_helpers.h"

namespace sp::inventory::ansible_test {
namespace {

using ::testing::HasSubstr;

// --- YAML ---------------------------------------------------------------------

TEST(AnsibleYamlTest, HostsVarsAndNestedChildren) {
  auto inv = Yaml(R"(all:
  vars:
    level: all
    keep: all
  hosts:
    bastion:
      ansible_host: 203.0.113.10
  children:
    prod:
      vars: {level: prod}
      children:
        web:
          vars: {level: web}
          hosts:
            web[1:2].example.com:
              role: frontend
            web3.example.com:2200:
              level: host
)");
  EXPECT_EQ(Names(inv), (std::vector<std::string>{"bastion", "web1.example.com", "web2.example.com", "web3.example.com"}));
  EXPECT_TRUE(Host(inv, "bastion").tags.empty());
  EXPECT_EQ(Host(inv, "bastion").address, "203.0.113.10");
  EXPECT_EQ(Tags(Host(inv, "web1.example.com")), (std::vector<std::string>{"prod", "web"}));
  EXPECT_EQ(Vars(Host(inv, "web1.example.com")), json::parse(R"({"level": "web", "keep": "all", "role": "frontend"})"));
  EXPECT_EQ(Vars(Host(inv, "web3.example.com")), json::parse(R"({"level": "host", "keep": "all", "ansible_port": 2200})"));
  EXPECT_EQ(Host(inv, "web3.example.com").ssh_port, 2200);
}

TEST(AnsibleYamlTest, PlainScalarsAreTypedByYaml11LikePyYaml) {
  auto inv = Yaml(R"(all:
  hosts:
    h:
      a: yes
      b: "yes"
      c: 010
      d: 0x1f
      e: 1:30
      f: 1e3
      g: 1.5e+3
      h: ~
      i: 2024-01-15
      j: 08
      k: '010'
      l: Off
      m: 1_000
      n: .5
      o: !!str 12
      p: -0b101
)");
  EXPECT_EQ(Vars(Host(inv, "h")), json::parse(R"({"a": true, "b": "yes", "c": 8, "d": 31, "e": 90, "f": "1e3",
      "g": 1500.0, "h": null, "i": "2024-01-15", "j": "08", "k": "010", "l": false, "m": 1000, "n": 0.5, "o": "12",
      "p": -5})"));
}

TEST(AnsibleYamlTest, AFileThatIsJsonFollowsJsonRules) {
  auto inv = Yaml(R"({"all": {"hosts": {"h1": {"a": 1e3, "b": "yes", "c": true}}}})");
  EXPECT_EQ(Vars(Host(inv, "h1")), json::parse(R"({"a": 1000.0, "b": "yes", "c": true})"));
}

TEST(AnsibleYamlTest, AnchorsAndMergeKeys) {
  auto inv = Yaml(R"(all:
  hosts:
    a: &base {x: 1, y: 2, list: [1]}
    b:
      <<: *base
      y: 3
    c: *base
)");
  EXPECT_EQ(Vars(Host(inv, "b")), json::parse(R"({"x": 1, "y": 3, "list": [1]})"));
  EXPECT_EQ(Vars(Host(inv, "c")), json::parse(R"({"x": 1, "y": 2, "list": [1]})"));
}

TEST(AnsibleYamlTest, EmptyGroupsAndStringShorthand) {
  auto inv = Yaml("all:\n  children:\n    dns:\n      hosts: ns1\n    empty:\n    other: ~\n");
  EXPECT_EQ(Names(inv), std::vector<std::string>{"ns1"});
  EXPECT_EQ(Tags(Host(inv, "ns1")), std::vector<std::string>{"dns"});
}

TEST(AnsibleYamlTest, ChildGroupPriorityAndDepth) {
  auto inv = Yaml(R"(all:
  children:
    a:
      vars: {x: a, ansible_group_priority: 3}
      hosts: {h: }
    b:
      vars: {x: b}
      hosts: {h: }
      children:
        c:
          vars: {y: c}
          hosts: {h: }
)");
  // a and b have depth 1; a's priority 3 puts it after b. c is deeper.
  EXPECT_EQ(Vars(Host(inv, "h")), json::parse(R"({"x": "a", "y": "c"})"));
}

TEST(AnsibleYamlTest, MalformedInputNamesFileLineAndPath) {
  EXPECT_THAT(YamlError("all:\n  hosts:\n    - web1\n"), HasSubstr("inventory.yml:2: all.hosts: expected a mapping, got a list"));
  EXPECT_THAT(YamlError("all:\n  hostz:\n    a:\n"), HasSubstr("inventory.yml:2: all.hostz: unknown key 'hostz'"));
  EXPECT_THAT(YamlError("all:\n  hosts:\n    a:\n    a:\n"), HasSubstr("inventory.yml:4: duplicate key 'a' (first on line 3)"));
  EXPECT_THAT(YamlError("plugin: aws_ec2\n"), HasSubstr("inventory.yml:1: this is an inventory plugin configuration"));
  EXPECT_THAT(YamlError("all:\n  hosts:\n    1.5:\n"), HasSubstr("inventory.yml:3: a host pattern must be a string"));
  EXPECT_THAT(YamlError("all:\n  hosts: {a: 1\n"), HasSubstr("inventory.yml:"));
  EXPECT_THAT(YamlError("all:\n  hosts: {a: 1\n"), HasSubstr("YAML syntax error"));
  EXPECT_THAT(YamlError("all:\n  vars:\n    ansible_port: abc\n  hosts:\n    h1:\n"),
              HasSubstr("inventory.yml:3: host 'h1': ansible_port must be a port number"));
  EXPECT_THAT(YamlError("all:\n  children:\n    a:\n      children:\n        all:\n"),
              HasSubstr("makes a loop"));
  EXPECT_THAT(YamlError("web: [a, b]\n"), HasSubstr("inventory.yml:1: web: a group must be a mapping"));
  EXPECT_THAT(YamlError(""), HasSubstr("inventory.yml:1: the inventory is empty"));
  EXPECT_THAT(YamlError("all:\n  hosts:\n    h: {secret: !vault abc}\n"), HasSubstr("vault-encrypted values are not supported"));
}

}  // namespace
}  // namespace sp::inventory::ansible_test
