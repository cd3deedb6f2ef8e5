#include "inventory/ansible/ansible_import.h"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/ansible/test_helpers.h"
#include "support/test_util.h"

namespace sp::inventory::ansible_test {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace sp::inventory::ansible_test
