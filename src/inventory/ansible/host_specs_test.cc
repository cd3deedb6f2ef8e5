#include "inventory/ansible/ansible_import.h"

#include <functional>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/ansible/test_helpers.h"

namespace sp::inventory::ansible_test {
namespace {

using ::testing::HasSubstr;

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
}  // namespace sp::inventory::ansible_test
