#include "inventory/ansible/ansible_import.h"

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/ansible/test_helpers.h"
#include "support/test_util.h"

namespace sp::inventory::ansible_test {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace sp::inventory::ansible_test
