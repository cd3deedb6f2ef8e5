// Differential test of the Ansible inventory import against Ansible itself.
// Every fixture directory under tests/fixtures/ansible/ holds one inventory
// source (a file, or an executable dynamic-inventory script) and possibly
// group_vars/ and host_vars/. Debian's `ansible-inventory -i <source> --list`
// is the reference; our import (LoadAnsibleInventory for files,
// RunDynamicSource for scripts) must agree with it host by host: the same
// hosts, the same groups for each host (transitively, without all and
// ungrouped) and the same effective variables.
//
// ansible-inventory is required: without it these tests fail, they do not skip.
#include "inventory/ansible/ansible_import.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "core/subprocess.h"
#include "support/test_util.h"

namespace sp::inventory {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// <source root>/tests/fixtures/ansible, found from this file's own path.
std::string FixtureRoot() {
  return (fs::path(__FILE__).parent_path() / ".." / "fixtures" / "ansible").lexically_normal().string();
}

struct Fixture {
  std::string name;     // The fixture's directory name.
  std::string source;   // The one regular file at its top: the inventory.
  bool script = false;  // Executable: a dynamic-inventory script.
};

// gtest prints a failing parameter with this (instead of its bytes).
void PrintTo(const Fixture& f, std::ostream* os) { *os << f.name; }

std::vector<Fixture> Fixtures() {
  std::vector<Fixture> out;
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(FixtureRoot(), ec)) {
    if (!dir.is_directory()) continue;
    Fixture f{dir.path().filename().string(), "", false};
    for (const auto& entry : fs::directory_iterator(dir.path())) {
      if (!entry.is_regular_file()) continue;
      f.source = entry.path().string();
      f.script = (entry.status().permissions() & fs::perms::owner_exec) != fs::perms::none;
    }
    if (!f.source.empty()) out.push_back(f);
  }
  std::sort(out.begin(), out.end(), [](const Fixture& a, const Fixture& b) { return a.name < b.name; });
  return out;
}

// What one side says about a host.
struct HostView {
  std::set<std::string> groups;  // Without "all" and "ungrouped".
  json vars = json::object();
};
using FleetView = std::map<std::string, HostView>;

// Hosts of `group` and of all groups below it.
std::set<std::string> HostsBelow(const json& doc, const std::string& group, int depth = 0) {
  std::set<std::string> out;
  if (!doc.contains(group) || depth > 100) return out;
  const json& g = doc[group];
  for (const auto& h : g.value("hosts", json::array())) out.insert(h.get<std::string>());
  for (const auto& c : g.value("children", json::array())) {
    for (const auto& h : HostsBelow(doc, c.get<std::string>(), depth + 1)) out.insert(h);
  }
  return out;
}

// ansible-inventory --list: groups with their direct hosts and children,
// and _meta.hostvars (only for hosts that have variables).
FleetView FromAnsibleList(const json& doc) {
  FleetView fleet;
  for (const auto& h : HostsBelow(doc, "all")) fleet[h];
  for (const auto& [name, group] : doc.items()) {
    if (name == "_meta" || name == "all" || name == "ungrouped") continue;
    for (const auto& h : HostsBelow(doc, name)) fleet[h].groups.insert(name);
  }
  const json hostvars = doc.value("_meta", json::object()).value("hostvars", json::object());
  for (const auto& [name, vars] : hostvars.items()) fleet[name].vars = vars;
  return fleet;
}

FleetView FromImport(const ImportedInventory& inv) {
  FleetView fleet;
  for (const auto& h : inv.hosts) {
    HostView& v = fleet[h.name];
    for (const auto& [tag, value] : h.tags) v.groups.insert(tag);
    for (const auto& [k, value] : h.vars) v.vars[k] = value;
  }
  return fleet;
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return "{" + out + "}";
}

// Compares two fleets and reports every difference (not only the first).
void ExpectSameFleet(const FleetView& want, const FleetView& got) {
  std::set<std::string> want_hosts, got_hosts;
  for (const auto& [h, v] : want) want_hosts.insert(h);
  for (const auto& [h, v] : got) got_hosts.insert(h);
  ASSERT_EQ(Join(want_hosts), Join(got_hosts)) << "host sets differ (ansible-inventory vs import)";
  for (const auto& [host, w] : want) {
    const HostView& g = got.at(host);
    EXPECT_EQ(Join(w.groups), Join(g.groups)) << "groups of " << host;
    for (const auto& [k, v] : w.vars.items()) {
      // dump() tells 1 from 1.0 and keeps key order sorted on both sides.
      EXPECT_EQ(v.dump(), g.vars.contains(k) ? g.vars[k].dump() : "<unset>") << host << ": variable " << k;
    }
    for (const auto& [k, v] : g.vars.items()) {
      EXPECT_TRUE(w.vars.contains(k)) << host << ": variable " << k << " = " << v.dump() << " not set by Ansible";
    }
  }
}

// `ansible-inventory -i <source> --list`, writing nothing outside `home`.
json AnsibleInventoryList(const std::string& source, const test::TempDir& home) {
  CommandSpec spec;
  spec.argv = {"ansible-inventory", "-i", source, "--list"};
  test::WriteFile(home / "ansible.cfg", "");
  spec.env = {{"HOME", home.path()},
              {"ANSIBLE_HOME", home / "ansible"},
              {"ANSIBLE_LOCAL_TEMP", home / "tmp"},
              {"ANSIBLE_CONFIG", home / "ansible.cfg"},
              {"ANSIBLE_LOCALHOST_WARNING", "False"},
              {"ANSIBLE_INVENTORY_UNPARSED_WARNING", "False"},
              // A source no plugin can parse must fail, not give an empty inventory.
              {"ANSIBLE_INVENTORY_UNPARSED_FAILED", "True"},
              {"ANSIBLE_NOCOLOR", "True"}};
  spec.cwd = home.path();
  spec.timeout = std::chrono::seconds(120);
  auto st = SystemProcesses().Run(spec);
  EXPECT_TRUE(st) << (st ? "" : st.error().message);
  if (!st) return json();
  EXPECT_TRUE(st->ok()) << "ansible-inventory failed on " << source << ": " << st->Describe() << "\n" << st->err;
  const json doc = json::parse(st->out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(doc.is_object()) << "ansible-inventory printed no JSON object:\n" << st->out;
  return doc.is_object() ? doc : json();
}

// A script's stdout (its stderr apart); a test failure when it fails.
std::string ScriptOutput(const std::vector<std::string>& argv) {
  CommandSpec spec;
  spec.argv = argv;
  spec.timeout = std::chrono::seconds(30);
  auto st = SystemProcesses().Run(spec);
  EXPECT_TRUE(st && st->ok()) << FormatArgv(argv) << ": " << (st ? st->Describe() : st.error().message);
  return st ? st->out : "";
}

bool HaveAnsibleInventory() { return !test::FindProgram("ansible-inventory").empty(); }

constexpr const char* kMissing =
    "ansible-inventory is not installed: this differential test needs Ansible (Debian package 'ansible', "
    "installed by scripts/deps)";

TEST(AnsibleImportFixturesTest, AnsibleInventoryIsInstalled) {
  ASSERT_TRUE(HaveAnsibleInventory()) << kMissing;
}

TEST(AnsibleImportFixturesTest, FixturesCoverEveryFormat) {
  const std::vector<Fixture> fixtures = Fixtures();
  int scripts = 0;
  std::set<std::string> extensions;
  for (const auto& f : fixtures) {
    scripts += f.script;
    if (!f.script) extensions.insert(fs::path(f.source).extension().string());
  }
  EXPECT_GE(fixtures.size(), 4u) << "fixtures under " << FixtureRoot();
  EXPECT_GE(scripts, 2) << "a script with _meta and one answering --host";
  EXPECT_TRUE(extensions.count(".ini") && extensions.count(".yml") && extensions.count(""))
      << "INI, YAML and extension-less fixtures";
}

class AnsibleImportDifferentialTest : public ::testing::TestWithParam<Fixture> {};

TEST_P(AnsibleImportDifferentialTest, MatchesAnsibleInventory) {
  ASSERT_TRUE(HaveAnsibleInventory()) << kMissing;
  const Fixture& f = GetParam();
  test::TempDir home("sp-ansible-home");
  const json reference = AnsibleInventoryList(f.source, home);
  ASSERT_TRUE(reference.is_object());
  const FleetView want = FromAnsibleList(reference);
  ASSERT_FALSE(want.empty()) << "ansible-inventory found no hosts in " << f.source;

  auto imported = f.script ? RunDynamicSource({f.source}, std::chrono::seconds(30)) : LoadAnsibleInventory(f.source);
  ASSERT_TRUE(imported) << imported.error().message;
  ExpectSameFleet(want, FromImport(*imported));

  // The connection fields come from the same effective variables.
  for (const auto& h : imported->hosts) {
    const json& host_vars = want.at(h.name).vars;
    EXPECT_EQ(h.address, host_vars.value("ansible_host", h.name)) << h.name;
    const json port = host_vars.value("ansible_port", json(22));
    EXPECT_EQ(h.ssh_port, port.is_string() ? std::stoi(port.get<std::string>()) : port.get<int>()) << h.name;
    // The older ansible_ssh_user wins when both are set, as in Ansible.
    EXPECT_EQ(h.ssh_user, host_vars.value("ansible_ssh_user", host_vars.value("ansible_user", ""))) << h.name;
  }
  auto specs = ToHostSpecs(*imported);
  ASSERT_TRUE(specs) << specs.error().message;
  EXPECT_EQ(specs->size(), imported->hosts.size());

  if (f.script) {
    // The script's --list output run by hand through ParseAnsibleJson, with
    // --host answered by the script, is the same fleet.
    const std::string dir = fs::path(f.source).parent_path().string();
    auto parsed = ParseAnsibleJson(ScriptOutput({f.source, "--list"}), f.source, [&](const std::string& host) {
      return Result<json>(json::parse(ScriptOutput({f.source, "--host", host})));
    }, dir);
    ASSERT_TRUE(parsed) << parsed.error().message;
    ExpectSameFleet(want, FromImport(*parsed));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AnsibleImportDifferentialTest, ::testing::ValuesIn(Fixtures()),
                         [](const ::testing::TestParamInfo<Fixture>& info) { return info.param.name; });

}  // namespace
}  // namespace sp::inventory
