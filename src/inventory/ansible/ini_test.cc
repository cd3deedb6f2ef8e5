#include "inventory/ansible/ansible_import.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/ansible/test_helpers.h"

namespace sp::inventory::ansible_test {
namespace {

using ::testing::HasSubstr;

// --- INI --------------------------------------------------------------------

TEST(AnsibleIniTest, NumericRangesKeepLeadingZeros) {
  auto inv = Ini("[web]\nweb[01:03].example.com\nn[8:10]\n");
  EXPECT_EQ(Names(inv), (std::vector<std::string>{"n10", "n8", "n9", "web01.example.com", "web02.example.com",
                                                  "web03.example.com"}));
}

TEST(AnsibleIniTest, AlphabeticRangesAndSteps) {
  auto inv = Ini("db-[a:c]\nb[1:10:3]\nx[a:e:2]\n");
  EXPECT_EQ(Names(inv), (std::vector<std::string>{"b1", "b10", "b4", "b7", "db-a", "db-b", "db-c", "xa", "xc", "xe"}));
}

TEST(AnsibleIniTest, SeveralRangesInOneNameMultiply) {
  auto inv = Ini("rack[1:2]-node[a:b]\n10.0.0.[1:2]\n");
  EXPECT_EQ(Names(inv), (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "rack1-nodea", "rack1-nodeb", "rack2-nodea",
                                                  "rack2-nodeb"}));
}

TEST(AnsibleIniTest, BadRangesAreErrorsOnTheirLine) {
  EXPECT_THAT(IniError("[web]\nok\nweb[01:5]\n"), HasSubstr("hosts.ini:3: [web] host range [01:5] must have begin and end of equal length"));
  EXPECT_THAT(IniError("[web]\nweb[5:1]\n"), HasSubstr("hosts.ini:2: [web] host range [5:1] is empty"));
  EXPECT_THAT(IniError("web[1:4:0]\n"), HasSubstr("hosts.ini:1: host range [1:4:0] needs a positive step"));
  EXPECT_THAT(IniError("web[1-3]\n"), HasSubstr("host range [1-3] must be begin:end or begin:end:step"));
  EXPECT_THAT(IniError("web[1:x]\n"), HasSubstr("must be numbers or single letters"));
}

TEST(AnsibleIniTest, HostPortAndInlineVarsAreTypedLikeAnsible) {
  auto inv = Ini(
      "[web]\n"
      "web1:2222 a=1 b=\"x y\" c='[1, 2]' d=True e=01 f=0x10 g=1.5 h=None i=-5 j=yes k=10.0.0.1 l= # comment\n");
  const ImportedHost& h = Host(inv, "web1");
  EXPECT_EQ(h.ssh_port, 2222);
  EXPECT_EQ(Vars(h), json::parse(R"({"ansible_port": 2222, "a": 1, "b": "x y", "c": [1, 2], "d": true, "e": "01",
      "f": 16, "g": 1.5, "h": null, "i": -5, "j": "yes", "k": "10.0.0.1", "l": ""})"));
}

TEST(AnsibleIniTest, GroupVarsAreTypedLikePythonLiterals) {
  auto inv = Ini(R"ini([g]
h
[g:vars]
tab = 'a\tb'
raw = r'a\tb'
uni = u'caf\u00e9'
joined = 'a' "b"
tuple = (1, 'x')
bare_tuple = 1, 2
dict = {'k': [1, {'n': None}], 2: True}
float = 1e3
addr = 10.0.0.1
number_then_comment = 5 # five
text_then_comment = hello # note
call = len('x')
spaced = the quick fox
)ini");
  EXPECT_EQ(Vars(Host(inv, "h")), json::parse(R"js({"tab": "a\tb", "raw": "a\\tb", "uni": "café", "joined": "ab",
      "tuple": [1, "x"], "bare_tuple": [1, 2], "dict": {"k": [1, {"n": null}], "2": true}, "float": 1000.0,
      "addr": "10.0.0.1", "number_then_comment": 5, "text_then_comment": "hello # note", "call": "len('x')",
      "spaced": "the quick fox"})js"));
}

TEST(AnsibleIniTest, ChildrenAreTransitiveAndMayPrecedeTheirGroups) {
  auto inv = Ini(
      "[prod:children]\ndc1\n"
      "[dc1:children]\nweb\n"
      "[web]\nweb1\n"
      "[db]\ndb1\n"
      "[dc1:children]\ndb\n");
  EXPECT_EQ(Tags(Host(inv, "web1")), (std::vector<std::string>{"dc1", "prod", "web"}));
  EXPECT_EQ(Tags(Host(inv, "db1")), (std::vector<std::string>{"db", "dc1", "prod"}));
}

TEST(AnsibleIniTest, AllAndUngroupedAreNotTags) {
  auto inv = Ini("lonely\n[web]\nweb1\n[all:vars]\nx=1\n");
  EXPECT_TRUE(Host(inv, "lonely").tags.empty());
  EXPECT_EQ(Tags(Host(inv, "web1")), std::vector<std::string>{"web"});
  EXPECT_EQ(Host(inv, "lonely").vars.at("x"), 1);
}

TEST(AnsibleIniTest, HostVarBeatsChildGroupBeatsParentGroupBeatsAll) {
  auto inv = Ini(
      "[web]\nweb1 v_host=host\nweb2\n"
      "[dc:children]\nweb\n"
      "[all:vars]\nv_host=all\nv_child=all\nv_parent=all\nv_all=all\n"
      "[dc:vars]\nv_host=parent\nv_child=parent\nv_parent=parent\n"
      "[web:vars]\nv_host=child\nv_child=child\n");
  EXPECT_EQ(Vars(Host(inv, "web1")),
            json::parse(R"({"v_host": "host", "v_child": "child", "v_parent": "parent", "v_all": "all"})"));
  EXPECT_EQ(Host(inv, "web2").vars.at("v_host"), "child");
}

TEST(AnsibleIniTest, GroupPriorityOrdersGroupsOfTheSameDepth) {
  const std::string two_groups = "[a]\nh1\n[b]\nh1\n[a:vars]\nx=a\n[b:vars]\nx=b\n";
  EXPECT_EQ(Host(Ini(two_groups), "h1").vars.at("x"), "b");  // Same priority: by name, b last.
  auto inv = Ini(two_groups + "[a:vars]\nansible_group_priority=2\n");
  EXPECT_EQ(Host(inv, "h1").vars.at("x"), "a");
  EXPECT_FALSE(Host(inv, "h1").vars.count("ansible_group_priority"));
  EXPECT_THAT(IniError("[a]\nh\n[a:vars]\nansible_group_priority=high\n"),
              HasSubstr("hosts.ini:4: [a:vars] ansible_group_priority of group 'a' must be an integer"));
}

TEST(AnsibleIniTest, GroupNamesAreKeptAsWritten) {
  // Ansible 2.14 does not rewrite "invalid" group names unless configured to.
  auto inv = Ini("[web-servers]\nh1\n[1st.dc]\nh2\n");
  EXPECT_EQ(Tags(Host(inv, "h1")), std::vector<std::string>{"web-servers"});
  EXPECT_EQ(Tags(Host(inv, "h2")), std::vector<std::string>{"1st.dc"});
}

TEST(AnsibleIniTest, ConnectionVariables) {
  auto inv = Ini("[web]\nweb1 ansible_host=10.0.0.5 ansible_port=2200 ansible_user=deploy\nweb2\n");
  const ImportedHost& h = Host(inv, "web1");
  EXPECT_EQ(h.address, "10.0.0.5");
  EXPECT_EQ(h.ssh_port, 2200);
  EXPECT_EQ(h.ssh_user, "deploy");
  EXPECT_EQ(Vars(h), json::parse(R"({"ansible_host": "10.0.0.5", "ansible_port": 2200, "ansible_user": "deploy"})"));
  EXPECT_EQ(Host(inv, "web2").address, "web2");
  EXPECT_EQ(Host(inv, "web2").ssh_port, 22);
  EXPECT_EQ(Host(inv, "web2").ssh_user, "");
}

TEST(AnsibleIniTest, SshAliasesWinWhenBothAreSetAsInAnsible) {
  auto inv = Ini("h ansible_host=10.0.0.1 ansible_ssh_host=10.0.0.2 ansible_port=22 ansible_ssh_port=2222 ansible_ssh_user=root\n");
  EXPECT_EQ(Host(inv, "h").address, "10.0.0.2");
  EXPECT_EQ(Host(inv, "h").ssh_port, 2222);
  EXPECT_EQ(Host(inv, "h").ssh_user, "root");
}

TEST(AnsibleIniTest, BadConnectionVariablesNameTheLineThatSetThem) {
  EXPECT_THAT(IniError("[web]\nweb1 ansible_port=abc\n"),
              HasSubstr("hosts.ini:2: host 'web1': ansible_port must be a port number (1-65535), got \"abc\""));
  EXPECT_THAT(IniError("[web]\nweb1\n[web:vars]\nansible_port=70000\n"),
              HasSubstr("hosts.ini:4: host 'web1': ansible_port must be a port number"));
  EXPECT_THAT(IniError("h ansible_host=[1]\n"), HasSubstr("hosts.ini:1: host 'h': ansible_host must be a string"));
}

TEST(AnsibleIniTest, MalformedInputNamesFileLineAndSection) {
  EXPECT_THAT(IniError("[web]\nh\n[web:vars]\nfoo\n"), HasSubstr("hosts.ini:4: [web:vars] expected key=value, got 'foo'"));
  EXPECT_THAT(IniError("# c\n[web:bogus]\n"), HasSubstr("hosts.ini:2: [web:bogus] has unknown type 'bogus'"));
  EXPECT_THAT(IniError("[web servers]\n"), HasSubstr("hosts.ini:1: invalid section header '[web servers]'"));
  EXPECT_THAT(IniError("[web]\nh1\n[ghost:vars]\nx=1\n"),
              HasSubstr("hosts.ini:3: [ghost:vars] is for group 'ghost', which is never declared"));
  EXPECT_THAT(IniError("[p:children]\nmissing\n"),
              HasSubstr("hosts.ini:2: [p:children] names group 'missing', which is never declared"));
  EXPECT_THAT(IniError("[web]\nh1 x=\"unclosed\n"), HasSubstr("hosts.ini:2: [web] cannot parse host line: no closing quotation"));
  EXPECT_THAT(IniError("[web]\nh1 novalue\n"), HasSubstr("hosts.ini:2: [web] expected key=value host variable, got 'novalue'"));
  EXPECT_THAT(IniError("[a:children]\nb\n[b:children]\na\n"),
              HasSubstr("hosts.ini:4: [b:children] adding group 'a' as a child of 'b' makes a loop"));
  EXPECT_THAT(IniError("[web]\nweb1:\n"), HasSubstr("hosts.ini:2: [web] invalid host pattern 'web1:'"));
  EXPECT_THAT(IniError("---\nall:\n"), HasSubstr("hosts.ini:1: host name '---' is a sign that this file is YAML"));
  EXPECT_THAT(IniError("[g:children]\nbad name\n"), HasSubstr("hosts.ini:2: [g:children] expected a group name"));
}

TEST(AnsibleIniTest, VarsSectionForAGroupDeclaredLaterIsFine) {
  auto inv = Ini("[web:vars]\nx=1\n[web]\nh\n");
  EXPECT_EQ(Host(inv, "h").vars.at("x"), 1);
}

}  // namespace
}  // namespace sp::inventory::ansible_test
