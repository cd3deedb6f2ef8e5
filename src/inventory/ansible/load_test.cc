#include "inventory/ansible/ansible_import.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/ansible/test_helpers.h"
#include "support/test_util.h"

namespace sp::inventory::ansible_test {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace sp::inventory::ansible_test
