#include "inventory/ansible_import.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_util.h"

namespace sp::inventory {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

std::vector<std::string> Names(const ImportedInventory& inv) {
  std::vector<std::string> out;
  for (const auto& h : inv.hosts) out.push_back(h.name);
  return out;
}

const ImportedHost& Host(const ImportedInventory& inv, const std::string& name) {
  for (const auto& h : inv.hosts) {
    if (h.name == name) return h;
  }
  ADD_FAILURE() << "no host " << name;
  static const ImportedHost kNone;
  return kNone;
}

std::vector<std::string> Tags(const ImportedHost& h) {
  std::vector<std::string> out;
  for (const auto& [k, v] : h.tags) {
    EXPECT_EQ(v, "true") << k;
    out.push_back(k);
  }
  return out;
}

// The host's vars as one JSON object (keys sorted): easy to compare whole.
json Vars(const ImportedHost& h) {
  json out = json::object();
  for (const auto& [k, v] : h.vars) out[k] = v;
  return out;
}

ImportedInventory Ini(const std::string& text, const std::string& base_dir = "") {
  auto inv = ParseAnsibleIni(text, "hosts.ini", base_dir);
  EXPECT_TRUE(inv) << inv.error().message;
  return inv ? *inv : ImportedInventory{};
}

std::string IniError(const std::string& text) {
  auto inv = ParseAnsibleIni(text, "hosts.ini", "");
  EXPECT_FALSE(inv) << "parsed:\n" << text;
  if (inv) return "";
  EXPECT_EQ(inv.error().code, ErrorCode::kInvalidArgument);
  return inv.error().message;
}

ImportedInventory Yaml(const std::string& text, const std::string& base_dir = "") {
  auto inv = ParseAnsibleYaml(text, "inventory.yml", base_dir);
  EXPECT_TRUE(inv) << inv.error().message;
  return inv ? *inv : ImportedInventory{};
}

std::string YamlError(const std::string& text) {
  auto inv = ParseAnsibleYaml(text, "inventory.yml", "");
  EXPECT_FALSE(inv) << "parsed:\n" << text;
  return inv ? "" : inv.error().message;
}

std::string JsonError(const std::string& text) {
  auto inv = ParseAnsibleJson(text, "inv.json");
  EXPECT_FALSE(inv) << "parsed:\n" << text;
  if (inv) return "";
  EXPECT_EQ(inv.error().code, ErrorCode::kInvalidArgument);
  return inv.error().message;
}

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

// --- group_vars/ and host_vars/ ------------------------------------------------

TEST(AnsibleVarsFilesTest, FilesMergeAboveInlineVarsAsInAnsible) {
  test::TempDir dir("sp-ansible");
  std::filesystem::create_directories(dir / "group_vars/db/more");
  std::filesystem::create_directories(dir / "host_vars");
  test::WriteFile(dir / "group_vars/all.yml", "level: all-file\nfrom_all: 1\n");
  test::WriteFile(dir / "group_vars/web", "level: web-file\n");          // No extension: found first...
  test::WriteFile(dir / "group_vars/web.yml", "ignored: true\n");        // ...so this is not read.
  test::WriteFile(dir / "group_vars/db/a.yml", "k: a\nonly_a: 1\n");
  test::WriteFile(dir / "group_vars/db/b.yaml", "k: b\n");
  test::WriteFile(dir / "group_vars/db/more/c.json", "{\"deep\": 1e3}");
  test::WriteFile(dir / "group_vars/db/.hidden.yml", "k: hidden\n");
  test::WriteFile(dir / "group_vars/db/z.yml~", "k: backup\n");
  test::WriteFile(dir / "group_vars/db/z.txt", "k: text\n");
  test::WriteFile(dir / "host_vars/web1.yaml", "level: host-file\n");
  test::WriteFile(dir / "host_vars/empty.yml", "");
  auto inv = Ini(
      "[web]\nweb1 level=host-inline\nweb2 level=host-inline2\nweb3\n"
      "[db]\ndb1\nempty\n"
      "[web:vars]\nlevel=web-inline\n"
      "[all:vars]\nlevel=all-inline\nfrom_all=0\n",
      dir.path());
  EXPECT_EQ(Host(inv, "web1").vars.at("level"), "host-file");    // host_vars file > host inline.
  EXPECT_EQ(Host(inv, "web2").vars.at("level"), "host-inline2");  // Host inline > any group var.
  EXPECT_EQ(Host(inv, "web3").vars.at("level"), "web-file");      // Group file > group inline.
  EXPECT_FALSE(Host(inv, "web3").vars.count("ignored"));
  EXPECT_EQ(Vars(Host(inv, "db1")),
            json::parse(R"({"level": "all-file", "from_all": 1, "k": "b", "only_a": 1, "deep": 1000.0})"));
  EXPECT_EQ(Host(inv, "empty").vars.at("k"), "b");
}

TEST(AnsibleVarsFilesTest, BadFilesAreNamedWithTheirLine) {
  test::TempDir dir("sp-ansible");
  std::filesystem::create_directories(dir / "group_vars");
  test::WriteFile(dir / "group_vars/web.yml", "a: 1\nb: [1, 2\n");
  auto inv = ParseAnsibleIni("[web]\nh\n", "hosts.ini", dir.path());
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message, HasSubstr(dir / "group_vars/web.yml:"));
  EXPECT_THAT(inv.error().message, HasSubstr("YAML syntax error"));

  test::WriteFile(dir / "group_vars/web.yml", "- a\n- b\n");
  inv = ParseAnsibleIni("[web]\nh\n", "hosts.ini", dir.path());
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message, HasSubstr(dir / "group_vars/web.yml:1: expected a mapping of variables"));

  test::WriteFile(dir / "group_vars/web.yml", "ok: 1\nansible_port: [22]\n");
  inv = ParseAnsibleIni("[web]\nh\n", "hosts.ini", dir.path());
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message, HasSubstr(dir / "group_vars/web.yml:2: host 'h': ansible_port"));
}

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

// --- Dynamic sources ------------------------------------------------------------

// A dynamic-inventory script in a temp dir that logs its argv, one run a line.
class AnsibleDynamicSourceTest : public ::testing::Test {
 protected:
  std::string Script(const std::string& body, const std::string& name = "inv.sh") {
    const std::string path = dir_ / name;
    test::WriteFile(path, "#!/bin/sh\nprintf '%s|' \"$@\" >> '" + (dir_ / "calls") + "'\necho >> '" + (dir_ / "calls") +
                              "'\n" + body, 0755);
    return path;
  }
  std::string Calls() const { return test::FileExists(dir_ / "calls") ? test::ReadFile(dir_ / "calls") : ""; }

  test::TempDir dir_{"sp-ansible-dyn"};
};

TEST_F(AnsibleDynamicSourceTest, ListWithMetaRunsOnce) {
  const std::string script = Script(R"(cat <<'EOF'
{"web": {"hosts": ["web1"], "vars": {"a": 1}}, "_meta": {"hostvars": {"web1": {"ansible_host": "10.0.0.1"}}}}
EOF
)");
  auto inv = RunDynamicSource({script}, std::chrono::seconds(10));
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(Calls(), "--list|\n");
  EXPECT_EQ(Host(*inv, "web1").address, "10.0.0.1");
  EXPECT_EQ(Tags(Host(*inv, "web1")), std::vector<std::string>{"web"});
}

TEST_F(AnsibleDynamicSourceTest, WithoutMetaAsksEveryHost) {
  const std::string script = Script(R"([ "$1" = --region ] && shift 2
case "$1" in
  --list) echo '{"web": ["web1", "web2"]}' ;;
  --host) echo "{\"ansible_host\": \"10.0.0.$(echo "$2" | tr -dc 0-9)\"}" ;;
esac
)");
  auto inv = RunDynamicSource({script, "--region", "eu"}, std::chrono::seconds(10));
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(Calls(), "--region|eu|--list|\n--region|eu|--host|web1|\n--region|eu|--host|web2|\n");
  EXPECT_EQ(Host(*inv, "web2").address, "10.0.0.2");
}

TEST_F(AnsibleDynamicSourceTest, GroupVarsBesideTheScriptApply) {
  std::filesystem::create_directories(dir_ / "group_vars");
  test::WriteFile(dir_ / "group_vars/web.yml", "from_file: yes\n");
  const std::string script = Script("echo '{\"web\": [\"web1\"], \"_meta\": {\"hostvars\": {}}}'\n");
  auto inv = RunDynamicSource({script}, std::chrono::seconds(10));
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(Host(*inv, "web1").vars.at("from_file"), true);
}

TEST_F(AnsibleDynamicSourceTest, NamesAreArgvNeverShellText) {
  // A host name full of shell syntax reaches --host as one argument and runs nothing.
  const std::string evil = "x;touch " + (dir_ / "pwned") + ";$(id)";
  const std::string script = Script("case \"$1\" in\n  --list) echo '{\"g\": [\"" + evil + "\"]}' ;;\n  --host) echo '{}' ;;\nesac\n",
                                    "inv $(x); ok.sh");
  auto inv = RunDynamicSource({script}, std::chrono::seconds(10));
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(Names(*inv), std::vector<std::string>{evil});
  EXPECT_EQ(Calls(), "--list|\n--host|" + evil + "|\n");
  EXPECT_FALSE(test::FileExists(dir_ / "pwned"));
  EXPECT_FALSE(ToHostSpecs(*inv));  // And such a name is no Sallyport host.
}

TEST_F(AnsibleDynamicSourceTest, FailingCommandIsUnavailableNamingIt) {
  const std::string script = Script("echo 'cloud API: 403 Forbidden' >&2\nexit 3\n");
  auto inv = RunDynamicSource({script, "--profile", "prod"}, std::chrono::seconds(10));
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(inv.error().message, HasSubstr(script));
  EXPECT_THAT(inv.error().message, HasSubstr("--profile prod --list"));
  EXPECT_THAT(inv.error().message, HasSubstr("403 Forbidden"));
}

TEST_F(AnsibleDynamicSourceTest, FailingHostQueryIsUnavailable) {
  const std::string script = Script("[ \"$1\" = --list ] && echo '{\"web\": [\"web1\"]}' && exit 0\nexit 1\n");
  auto inv = RunDynamicSource({script}, std::chrono::seconds(10));
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(inv.error().message, HasSubstr("--host web1"));
}

TEST_F(AnsibleDynamicSourceTest, TimeoutIsUnavailable) {
  const std::string script = Script("exec sleep 10\n");
  auto inv = RunDynamicSource({script}, std::chrono::milliseconds(300));
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(inv.error().message, HasSubstr("timed out"));
}

TEST_F(AnsibleDynamicSourceTest, NonJsonOutputIsInvalidArgumentWithOffset) {
  const std::string script = Script("echo 'Warning: deprecated'\necho '{}'\n");
  auto inv = RunDynamicSource({script}, std::chrono::seconds(10));
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(inv.error().message, HasSubstr("inventory command '" + script + " --list': not valid JSON at byte 1"));

  const std::string host_garbage = Script("[ \"$1\" = --list ] && echo '{\"web\": [\"web1\"]}' && exit 0\necho 'nope'\n",
                                          "inv2.sh");
  inv = RunDynamicSource({host_garbage}, std::chrono::seconds(10));
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message, HasSubstr("--host web1': not valid JSON at byte"));
}

TEST_F(AnsibleDynamicSourceTest, NoHostsOrNoOutputIsNeverAnEmptyFleet) {
  auto inv = RunDynamicSource({Script("echo '{\"_meta\": {\"hostvars\": {}}}'\n")}, std::chrono::seconds(10));
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(inv.error().message, HasSubstr("listed no hosts"));
  inv = RunDynamicSource({Script("exit 0\n", "silent.sh")}, std::chrono::seconds(10));
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message, HasSubstr("printed nothing"));
}

TEST_F(AnsibleDynamicSourceTest, MissingCommandIsUnavailable) {
  auto inv = RunDynamicSource({dir_ / "no-such-script"}, std::chrono::seconds(10));
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(inv.error().message, HasSubstr("no-such-script"));
  EXPECT_FALSE(RunDynamicSource({}, std::chrono::seconds(1)));
}

// --- Loading files ----------------------------------------------------------------

TEST(AnsibleLoadTest, PicksTheFormatFromNameAndContent) {
  test::TempDir dir("sp-ansible-load");
  const std::map<std::string, std::string> files = {
      {"hosts.ini", "[web]\nini1:2222\n"},
      {"hosts", "# INI without extension\n\nini2 a=1\n"},
      {"inventory", "# YAML without extension\nall:\n  hosts:\n    yaml1:\n"},
      {"inv.yaml", "all:\n  hosts: {yaml2: }\n"},
      {"list.json", R"({"web": ["json1"], "_meta": {"hostvars": {}}})"},
      {"yamlish.json", R"({"all": {"hosts": {"json2": {"a": 1}}}})"},
      {"docs", "---\nall:\n  hosts: {yaml3: }\n"},
  };
  for (const auto& [name, text] : files) test::WriteFile(dir / name, text);
  const std::map<std::string, std::string> want = {{"hosts.ini", "ini1"}, {"hosts", "ini2"},   {"inventory", "yaml1"},
                                                   {"inv.yaml", "yaml2"}, {"list.json", "json1"}, {"yamlish.json", "json2"},
                                                   {"docs", "yaml3"}};
  for (const auto& [name, host] : want) {
    auto inv = LoadAnsibleInventory(dir / name);
    ASSERT_TRUE(inv) << name << ": " << inv.error().message;
    EXPECT_EQ(Names(*inv), std::vector<std::string>{host}) << name;
  }
}

TEST(AnsibleLoadTest, ErrorsNameThePathAndVarsFilesAreBesideIt) {
  test::TempDir dir("sp-ansible-load");
  std::filesystem::create_directories(dir / "host_vars");
  test::WriteFile(dir / "host_vars/web1.yml", "ansible_host: 10.0.0.9\n");
  test::WriteFile(dir / "hosts.ini", "[web]\nweb1\n");
  auto inv = LoadAnsibleInventory(dir / "hosts.ini");
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(Host(*inv, "web1").address, "10.0.0.9");

  test::WriteFile(dir / "bad.ini", "[web]\nweb1\n[web:vars]\nnot a var\n");
  inv = LoadAnsibleInventory(dir / "bad.ini");
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message, HasSubstr(dir / "bad.ini:4: [web:vars] expected key=value"));

  inv = LoadAnsibleInventory(dir / "missing.ini");
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().code, ErrorCode::kNotFound);
}

// --- Sallyport hosts ----------------------------------------------------------------

TEST(AnsibleToHostSpecsTest, MapsConnectionVariablesAndGroups) {
  auto inv = Ini("[web]\nweb1 ansible_host=10.0.0.5 ansible_port=2200 ansible_user=deploy\nweb2.example.com\n"
                 "[prod:children]\nweb\n");
  auto specs = ToHostSpecs(inv);
  ASSERT_TRUE(specs) << specs.error().message;
  ASSERT_EQ(specs->size(), 2u);
  const HostSpec& h = (*specs)[0];
  EXPECT_EQ(h.name, "web1");
  EXPECT_EQ(h.address, "10.0.0.5");
  EXPECT_EQ(h.ssh_port, 2200);
  EXPECT_EQ(h.ssh_user, "deploy");
  EXPECT_EQ(h.port, 0);
  EXPECT_EQ(h.tags, (std::map<std::string, std::string>{{"prod", "true"}, {"web", "true"}}));
  EXPECT_EQ((*specs)[1].address, "web2.example.com");
  EXPECT_EQ((*specs)[1].ssh_port, 22);
}

TEST(AnsibleToHostSpecsTest, RejectsWhatSallyportCannotReach) {
  // A valid host, changed by `edit`, must be rejected; returns the message.
  auto reject = [](const std::function<void(ImportedHost&)>& edit) {
    ImportedHost h;
    h.name = "h";
    h.address = "10.0.0.1";
    edit(h);
    auto specs = ToHostSpecs(ImportedInventory{{h}});
    EXPECT_FALSE(specs) << h.name << " " << h.address;
    return specs ? "" : specs.error().message;
  };
  EXPECT_THAT(reject([](ImportedHost& h) { h.name = "bad name"; }), HasSubstr("host 'bad name': invalid host name"));
  EXPECT_THAT(reject([](ImportedHost& h) { h.address = "10.0.0.300"; }), HasSubstr("host 'h': address '10.0.0.300'"));
  EXPECT_THAT(reject([](ImportedHost& h) { h.address = "::1"; }), HasSubstr("is not an IPv4 address or DNS name"));
  EXPECT_THAT(reject([](ImportedHost& h) { h.address = "a;rm -rf /"; }), HasSubstr("is not an IPv4 address or DNS name"));
  EXPECT_THAT(reject([](ImportedHost& h) { h.ssh_user = "Root Admin"; }),
              HasSubstr("ansible_user 'Root Admin' is not a login name"));
  EXPECT_THAT(reject([](ImportedHost& h) { h.tags["my group"] = "true"; }), HasSubstr("group 'my group' cannot be a tag"));
  EXPECT_THAT(reject([](ImportedHost& h) { h.ssh_port = 0; }), HasSubstr("ssh port 0 is out of range"));
}

}  // namespace
}  // namespace sp::inventory
