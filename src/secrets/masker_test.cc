#include "secrets/masker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace sp {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "p@ss w0rd/+\"x";

TEST(MaskerTest, MasksTheValueAndItsPrintedForms) {
  Masker m({kSecret});
  EXPECT_EQ(m.Mask(std::string("db=") + kSecret + "; again " + kSecret), "db=***; again ***");
  EXPECT_EQ(m.Mask("b64: cEBzcyB3MHJkLysieA=="), "b64: ***A==");
  EXPECT_EQ(m.Mask("url: p%40ss%20w0rd%2F%2B%22x and p%40ss%20w0rd%2f%2b%22x"), "url: *** and ***");
  EXPECT_EQ(m.Mask(R"({"v":"p@ss w0rd/+\"x"})"), R"({"v":"***"})");
  EXPECT_EQ(m.Mask("nothing here"), "nothing here");
  EXPECT_EQ(Masker().Mask("x"), "x");
}

TEST(MaskerTest, Base64AtEveryLengthModulo3) {
  // The base64 of a value is masked whatever its length (the tail characters
  // that depend on what follows are left).
  for (std::string v : {"abcd", "abcde", "abcdef", "abcdefg"}) {
    Masker m({v});
    const std::vector<std::string> encoded = {"YWJjZA==", "YWJjZGU=", "YWJjZGVm", "YWJjZGVmZw=="};
    const std::string e = encoded[v.size() - 4];
    EXPECT_THAT(m.Mask("x " + e + " y"), HasSubstr("***")) << v;
    EXPECT_THAT(m.Mask("x " + e + " y"), Not(HasSubstr(e.substr(0, 4)))) << v;
  }
}

TEST(MaskerTest, ShortValuesAreNotMasked) {
  EXPECT_FALSE(MaskableValue("abc"));
  EXPECT_TRUE(MaskableValue("abcd"));
  EXPECT_EQ(Masker({"abc"}).Mask("abc abc"), "abc abc");
}

// Every way of cutting the output into chunks, down to one byte at a time.
TEST(MaskerTest, AStreamCatchesAValueSplitAcrossChunks) {
  Masker m({kSecret, "p@ss w0rd/+\"xyz-longer", "another-one"});
  const std::string text = std::string("start ") + kSecret + " mid p@ss w0rd/+\"xyz-longer end another-one" +
                           " p@ss cEBzcyB3MHJkLysieA== tail p@s";
  const std::string want = m.Mask(text);
  EXPECT_THAT(want, Not(HasSubstr("w0rd")));
  EXPECT_THAT(want, Not(HasSubstr("another")));
  EXPECT_THAT(want, Not(HasSubstr("longer")));
  for (size_t size = 1; size <= text.size(); ++size) {
    Masker::Stream s(m);
    std::string got;
    for (size_t at = 0; at < text.size(); at += size) got += s.Feed(std::string_view(text).substr(at, size));
    got += s.Flush();
    EXPECT_EQ(got, want) << "chunks of " << size;
  }
}

TEST(MaskerTest, AStreamHoldsBackOnlyWhatMayStillBecomeAValue) {
  Masker m({"secret-value"});
  Masker::Stream s(m);
  EXPECT_EQ(s.Feed("hello sec"), "hello ");
  EXPECT_EQ(s.Feed("ond"), "second");
  EXPECT_EQ(s.Feed(" secret-val"), " ");
  EXPECT_EQ(s.Feed("ue!"), "***!");
  EXPECT_EQ(s.Feed("secr"), "");
  EXPECT_EQ(s.Flush(), "secr");
}

}  // namespace
}  // namespace sp

namespace sp {
namespace {

TEST(MaskerTest, MasksEveryStringAndKeyOfAJsonDocument) {
  Masker m({"top-secret"});
  nlohmann::ordered_json doc = {{"b", "x top-secret y"}, {"a", {1, "top-secret", {{"top-secret", "k"}}}}, {"n", 3}};
  MaskJson(m, doc);
  EXPECT_EQ(doc.dump(), R"({"b":"x *** y","a":[1,"***",{"***":"k"}],"n":3})") << "order and non-strings kept";
}

TEST(MaskerTest, ValuesAddedWhileOthersMask) {
  Masker m;
  std::thread adder([&] {
    for (int i = 0; i < 200; ++i) m.Add("value-" + std::to_string(1000 + i));
  });
  for (int i = 0; i < 200; ++i) (void)m.Mask("text value-1000 and more");
  adder.join();
  EXPECT_EQ(m.Mask("value-1199 value-1000"), "*** ***");
}

}  // namespace
}  // namespace sp
