#include "auth/password.h"

#include <gtest/gtest.h>

namespace sp::auth {
namespace {

TEST(PasswordTest, AHashVerifiesItsPasswordOnly) {
  auto h = HashPassword("correct horse battery");
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->rfind("scrypt$15$8$1$", 0), 0u);
  EXPECT_EQ(h->find("correct horse"), std::string::npos);
  EXPECT_TRUE(VerifyPassword("correct horse battery", *h));
  EXPECT_FALSE(VerifyPassword("correct horse batterY", *h));
  EXPECT_FALSE(VerifyPassword("", *h));
  // Salted: the same password hashes differently.
  EXPECT_NE(*h, *HashPassword("correct horse battery"));
}

TEST(PasswordTest, ShortPasswordsAndMalformedHashesAreRefused) {
  EXPECT_EQ(HashPassword("short").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(HashPassword(std::string(1025, 'x')).error().code, ErrorCode::kInvalidArgument);
  for (const char* bad : {"", "scrypt$15$8$1$c2FsdA==", "md5$x$y$z$a$b", "scrypt$40$8$1$c2FsdHNhbHRzYWx0$AAAA",
                          "scrypt$15$8$1$$"}) {
    EXPECT_FALSE(VerifyPassword("correct horse battery", bad)) << bad;
  }
  EXPECT_FALSE(VerifyPassword("no user has this password", "")) << "the decoy is not a blank check";
  EXPECT_FALSE(DecoyPasswordHash().empty());
}

TEST(LoginLimiterTest, TenFailuresOfAUserInAMinuteStopItsLoginsUntilTheOldestIsAMinuteOld) {
  LoginLimiter limiter;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(limiter.RetryAfter("amy", "10.0.0.1", 1000 * i), 0) << i;
    limiter.Failed("amy", "10.0.0.1", 1000 * i);
  }
  EXPECT_EQ(limiter.RetryAfter("amy", "10.0.0.9", 10'000), 50'000) << "from any address";
  EXPECT_EQ(limiter.RetryAfter("ben", "10.0.0.9", 10'000), 0) << "another user is not affected";
  EXPECT_EQ(limiter.RetryAfter("amy", "10.0.0.1", 60'000), 0) << "the first failure left the window";
}

TEST(LoginLimiterTest, ThirtyFailuresFromOneAddressStopItForEveryUser) {
  LoginLimiter limiter;
  for (int i = 0; i < 30; ++i) limiter.Failed("user-" + std::to_string(i), "10.0.0.1", 0);
  EXPECT_GT(limiter.RetryAfter("zoe", "10.0.0.1", 1), 0);
  EXPECT_EQ(limiter.RetryAfter("zoe", "10.0.0.2", 1), 0);
}

}  // namespace
}  // namespace sp::auth
