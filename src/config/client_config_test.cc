#include "config/client_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sp {
namespace {

using ::testing::HasSubstr;

TEST(ClientConfigTest, ServerCaAndTokenFileAreRead) {
  auto c = ParseClientConfig("version: 1\nserver: http://build:8700\nca: /etc/sp/ca.pem\ntoken_file: /home/u/t\n", "c.yml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->server, "http://build:8700");
  EXPECT_EQ(c->ca, "/etc/sp/ca.pem");
  EXPECT_EQ(c->token_file, "/home/u/t");
}

TEST(ClientConfigTest, ErrorsNameFileLineAndField) {
  auto unknown = ParseClientConfig("version: 1\nserver: http://a:1\ntoken: abc\n", "c.yml");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("c.yml:3"));
  EXPECT_THAT(unknown.error().message, HasSubstr("token"));
  auto url = ParseClientConfig("version: 1\nserver: build:8700\n", "c.yml");
  ASSERT_FALSE(url);
  EXPECT_THAT(url.error().message, HasSubstr("c.yml:2: server: expected an http:// or https:// URL"));
  EXPECT_FALSE(ParseClientConfig("version: 1\nca: relative.pem\n", "c.yml"));
}

}  // namespace
}  // namespace sp
