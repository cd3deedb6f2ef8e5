#include "secrets/vault.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "secrets/vault_yaml.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

// Made by Debian 12's ansible-vault 2.14 (password "hunter2").
constexpr char kAnsible11[] = R"($ANSIBLE_VAULT;1.1;AES256
31363331303862393835346334613736653737376531383634613230363461626564323836366161
3564366461616636646633386636376336306630376631360a303961363337326363353631346130
35623030376366326530366137643235303864316366376536363239373831336237393939323564
3162366665363234620a636238616233396133363039326465666636383338666335633332383435
66656463303561316565393530356565336462346232646334303731346534313065
)";
constexpr char kAnsible12[] = R"($ANSIBLE_VAULT;1.2;AES256;prod
31333062333265383665323061376239336235306334333561346661616334646331313865653430
6532653363633231656439656663393636383230636334350a643337613239663736386139363066
64393464383235636637666139616338333337323562373064663064333164346131396566626563
6237316563306231340a633531386538663136663536353465616437663532656162303637663636
62333839373231343637376435653737376631326432633766643339366365353539
)";
constexpr char kInline[] = R"(# staging
db_url: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          61356439653333336162363035383830653037356166663430623130333761666436326133323638
          3834336531633231613830623434376536393139613330630a303533313931383539656535336536
          30636130326431393361363661346636313534656239666561633031333166323662323932323735
          3536393739363337640a363233393961306135363465393739646235393265626336653232393864
          62653365633066353536303235316336313332613936616632303337396335653139
port: 8080
)";
constexpr char kPlain[] = "line one\nsecond: \"two\"\n";

const VaultSecret kPw{"", "hunter2"};

TEST(VaultTest, OpensWhatAnsibleVaultMade) {
  EXPECT_EQ(*VaultDecrypt(kAnsible11, {kPw}), kPlain);
  VaultSecret used;
  auto plain = VaultDecrypt(kAnsible12, {{"dev", "nope"}, {"prod", "hunter2"}}, &used);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(*plain, kPlain);
  EXPECT_EQ(used.id, "prod");
  EXPECT_EQ(ParseVaultHeader(kAnsible12)->id, "prod");
}

TEST(VaultTest, RoundTripsWithAFreshSaltEachTime) {
  for (std::string text : {std::string(), std::string("x"), std::string(15, 'a'), std::string(16, 'b'),
                           std::string(1000, '\n'), std::string("\0\xff\x01", 3)}) {
    auto a = VaultEncrypt(text, kPw);
    auto b = VaultEncrypt(text, kPw);
    ASSERT_TRUE(a && b);
    EXPECT_NE(*a, *b) << "the same value encrypted twice must differ (a salt reused reuses the keystream)";
    EXPECT_EQ(*VaultDecrypt(*a, {kPw}), text);
    EXPECT_EQ(*VaultDecrypt(*b, {kPw}), text);
  }
}

TEST(VaultTest, EnvelopeLayoutIsAnsibles) {
  auto e = VaultEncrypt(std::string(100, 'z'), {"prod", "pw"});
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
  EXPECT_TRUE(e->ends_with("\n"));
  size_t at = e->find('\n') + 1, lines = 0;
  while (at < e->size()) {
    const size_t nl = e->find('\n', at);
    EXPECT_LE(nl - at, 80u);
    at = nl + 1;
    ++lines;
  }
  EXPECT_GT(lines, 3u);
  EXPECT_TRUE(VaultEncrypt("v", {"default", "pw"})->starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
}

TEST(VaultTest, AWrongPasswordSaysSo) {
  auto r = VaultDecrypt(kAnsible11, {{"", "hunter3"}});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("HMAC mismatch"));
  EXPECT_THAT(r.error().message, HasSubstr("password is wrong"));
  EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("hunter")));
  EXPECT_FALSE(VaultDecrypt(kAnsible11, {}));
}

TEST(VaultTest, TamperingIsDetected) {
  std::string e = kAnsible11;
  // One hex digit of the ciphertext's encoding changed (a valid digit still).
  const size_t at = e.rfind('\n', e.size() - 2) + 5;
  e[at] = e[at] == '3' ? '4' : '3';
  auto r = VaultDecrypt(e, {kPw});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, AnyOf(HasSubstr("HMAC mismatch"), HasSubstr("damaged")));
  std::string bad = kAnsible11;
  bad[bad.find('\n') + 3] = 'x';
  EXPECT_THAT(VaultDecrypt(bad, {kPw}).error().message, HasSubstr("damaged: line 2 is not hexadecimal"));
  std::string cut = std::string(kAnsible11).substr(0, 200);
  EXPECT_THAT(VaultDecrypt(cut, {kPw}).error().message, HasSubstr("damaged"));
  EXPECT_THAT(VaultDecrypt("$ANSIBLE_VAULT;1.0;AES\n00\n", {kPw}).error().message, HasSubstr("1.0 is not supported"));
  EXPECT_THAT(VaultDecrypt("hello", {kPw}).error().message, HasSubstr("not an Ansible Vault envelope"));
}

TEST(VaultTest, DecryptsManyInParallelInOrder) {
  std::vector<std::string> envelopes, want;
  for (int i = 0; i < 12; ++i) {
    want.push_back("value " + std::to_string(i));
    envelopes.push_back(*VaultEncrypt(want.back(), kPw));
  }
  EXPECT_EQ(*VaultDecryptMany(envelopes, {kPw}, 3), want);
  envelopes[7] = *VaultEncrypt("x", {"", "other"});
  EXPECT_THAT(VaultDecryptMany(envelopes, {kPw}, 3).error().message, HasSubstr("value 8"));
}

TEST(VaultYamlTest, FindsAndRewritesInlineValuesKeepingTheRest) {
  auto found = FindInlineVaults(kInline);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].key, "db_url");
  EXPECT_EQ((*found)[0].line, 2);
  EXPECT_EQ(*VaultDecrypt((*found)[0].envelope, {kPw}), "postgres://u:p@db/x");
  auto shown = RewriteInlineVaults(kInline, [](const InlineVault& v) -> Result<std::string> {
    return QuotedScalar(*VaultDecrypt(v.envelope, {kPw}));
  });
  EXPECT_EQ(*shown, "# staging\ndb_url: \"postgres://u:p@db/x\"\nport: 8080\n");
  auto rekeyed = RewriteInlineVaults(kInline, [](const InlineVault& v) -> Result<std::string> {
    return InlineBlock(v, *VaultEncrypt(*VaultDecrypt(v.envelope, {kPw}), {"", "new"}));
  });
  ASSERT_TRUE(rekeyed);
  EXPECT_THAT(*rekeyed, HasSubstr("db_url: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          "));
  EXPECT_THAT(*rekeyed, HasSubstr("\nport: 8080\n"));
  auto again = FindInlineVaults(*rekeyed);
  EXPECT_EQ(*VaultDecrypt((*again)[0].envelope, {{"", "new"}}), "postgres://u:p@db/x");
}

TEST(VaultYamlTest, NamesTheLineOfABrokenValue) {
  EXPECT_THAT(FindInlineVaults("a: 1\nb: !vault 'x'\n").error().message, HasSubstr("line 2"));
  EXPECT_THAT(FindInlineVaults("a: !vault |\n  hello\n").error().message, HasSubstr("line 1"));
  EXPECT_TRUE(FindInlineVaults("list:\n  - !vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    00\nz: 1\n")->size() == 1);
  EXPECT_EQ(EncryptedStringEntry("k", "$ANSIBLE_VAULT;1.1;AES256\nab\n"),
              "k: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          ab\n");
}

}  // namespace
}  // namespace sp
