#include "secrets/vault_ref.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "secrets/vault_yaml.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const VaultSecret kOld{"", "old pass"}, kNew{"new", "new pass"};

RefReader Reader(std::vector<VaultSecret> secrets) {
  return WithVaultRefs([](const std::string& ref) -> Result<std::string> { return "inner:" + ref; },
                       std::move(secrets));
}

TEST(VaultRefTest, ValidReferences) {
  EXPECT_TRUE(IsValidVaultRef("vault:/etc/sp/vault.yml"));
  EXPECT_TRUE(IsValidVaultRef("vault:/etc/sp/vault.yml#db_password"));
  EXPECT_FALSE(IsValidVaultRef("vault:relative.yml"));
  EXPECT_FALSE(IsValidVaultRef("vault:/x#"));
  EXPECT_FALSE(IsValidVaultRef("vault:/x#a b"));
  EXPECT_FALSE(IsValidVaultRef("file:/x"));
}

TEST(VaultRefTest, WholeFilesKeysOfWholeFilesAndInlineValues) {
  test::TempDir dir("sp-vault-ref");
  ASSERT_TRUE(WriteNewFile(dir / "whole", *VaultEncrypt("s3cret-whole\n", kOld), 0600));
  ASSERT_TRUE(WriteNewFile(dir / "group_vars.yml",
                           *VaultEncrypt("vault_db_password: 'p@ss: word'\nother: 2\n", kOld), 0600));
  ASSERT_TRUE(WriteNewFile(dir / "inline.yml",
                           "port: 1\n" + EncryptedStringEntry("api_key", *VaultEncrypt("k-123", kOld)), 0600));
  auto read = Reader({kOld});
  EXPECT_EQ(*read("vault:" + dir / "whole"), "s3cret-whole");
  EXPECT_EQ(*read("vault:" + dir / "group_vars.yml#vault_db_password"), "p@ss: word");
  EXPECT_EQ(*read("vault:" + dir / "inline.yml#api_key"), "k-123");
  EXPECT_EQ(*read("file:/x"), "inner:file:/x") << "other references go to the inner reader";
  EXPECT_THAT(read("vault:" + dir / "group_vars.yml#nope").error().message, HasSubstr("no top-level key 'nope'"));
  EXPECT_THAT(read("vault:" + dir / "inline.yml#port").error().message, HasSubstr("no !vault value under key 'port'"));
  EXPECT_THAT(read("vault:" + dir / "inline.yml").error().message, HasSubstr("name a key"));
  EXPECT_THAT(read("vault:" + dir / "missing").error().message, HasSubstr("cannot be read"));
}

TEST(VaultRefTest, AWrongPasswordOrNoneSaysSoWithoutTheValue) {
  test::TempDir dir("sp-vault-ref");
  ASSERT_TRUE(WriteNewFile(dir / "whole", *VaultEncrypt("s3cret-whole", kOld), 0600));
  auto wrong = Reader({{"", "nope"}})("vault:" + dir / "whole");
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("HMAC mismatch"));
  EXPECT_THAT(wrong.error().message, HasSubstr(dir / "whole"));
  EXPECT_THAT(wrong.error().message, Not(HasSubstr("s3cret")));
  EXPECT_THAT(Reader({})("vault:" + dir / "whole").error().message, HasSubstr("has no vault password"));
}

// A rekey while the server runs with the old and the new password: every
// read before, during and after it opens the value; the changed file is
// re-read at once.
TEST(VaultRefTest, ARekeyedFileIsReadAgainWithTheOtherPassword) {
  test::TempDir dir("sp-vault-ref");
  const std::string ref = "vault:" + dir / "v.yml#k";
  ASSERT_TRUE(WriteNewFile(dir / "v.yml", EncryptedStringEntry("k", *VaultEncrypt("value-1", kOld)), 0600));
  auto read = Reader({kOld, kNew});
  EXPECT_EQ(*read(ref), "value-1");
  ASSERT_TRUE(ReplaceFile(dir / "v.yml", EncryptedStringEntry("k", *VaultEncrypt("value-2", kNew))));
  EXPECT_EQ(*read(ref), "value-2");
  EXPECT_THAT(Reader({kOld})(ref).error().message, HasSubstr("HMAC mismatch"));
}

}  // namespace
}  // namespace sp
