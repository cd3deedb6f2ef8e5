// People log in with a password, attacked from outside: a real `sallyport
// server` over TLS, the real CLI reading the password from standard input.
// The login's token is kept 0600 and works; wrong passwords are refused and,
// ten in a minute, stop that user's logins (the right password too) before
// any derivation; the password is never in the audit trail, the server's
// output or the state database.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr const char* kPassword = "correct horse battery staple";

class LoginIT : public ::testing::Test {
 protected:
  void SetUp() override {
    // The user exists before the server starts (`user add` writes the store).
    ASSERT_EQ(RunAs({"user", "add", "amy", "--scope", "read", "--store", db_}, kPassword), 0) << out_;
    server_ = std::make_unique<ServerProcess>(dir_, db_, "server", std::vector<std::string>{"--poll-every", "0"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
  }
  // `sallyport <args>` with `password` on stdin, its own config dir, no token in the environment.
  int RunAs(const std::vector<std::string>& args, const std::string& password) {
    std::vector<std::string> argv{"env", "-u", "SALLYPORT_TOKEN", "XDG_CONFIG_HOME=" + config_,
                                  BuildBinary("sallyport")};
    argv.insert(argv.end(), args.begin(), args.end());
    return sp::test::Run(argv, &out_, password + "\n");
  }
  int Login(const std::string& password) { return RunAs({"login", "--user", "amy", "--server", server_->url()}, password); }
  TempDir dir_{"sp-login-it"};
  std::string db_ = dir_ / "state.db";
  std::string config_ = dir_ / "config";
  std::unique_ptr<ServerProcess> server_;
  std::string out_;
};

TEST_F(LoginIT, ALoginKeepsATokenWithTheUsersScopesOnly) {
  ASSERT_EQ(Login(kPassword), 0) << out_;
  EXPECT_THAT(out_, HasSubstr("as amy"));
  const std::string token_file = config_ + "/sallyport/token";
  struct stat st {};
  ASSERT_EQ(::stat(token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ::stat((config_ + "/sallyport").c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // The kept token is presented by later commands: read works, admin does not.
  EXPECT_EQ(RunAs({"job", "list", "--server", server_->url()}, ""), 0) << out_;
  EXPECT_NE(RunAs({"token", "list", "--server", server_->url()}, ""), 0);
  EXPECT_THAT(out_, HasSubstr("admin"));
  // The token is listed with its creator and an expiry, like any other.
  auto listed = RunSallyport({"token", "list", "--server", server_->url(), "--output", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("user:amy"));
}

TEST_F(LoginIT, TenWrongPasswordsInAMinuteStopTheUsersLoginsAndNoPasswordIsKept) {
  for (int i = 0; i < 10; ++i) {
    EXPECT_NE(Login("wrong password number " + std::to_string(i)), 0);
    EXPECT_THAT(out_, HasSubstr("unknown user or wrong password"));
  }
  // The eleventh, even with the right password, is refused before any derivation.
  EXPECT_NE(Login(kPassword), 0);
  EXPECT_THAT(out_, HasSubstr("too many failed logins"));
  httplib::Client c = server_->Client();
  auto raw = c.Post("/v1/login", json{{"user", "amy"}, {"password", kPassword}}.dump(), "application/json");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 429);
  // An unknown user answers as a wrong password does.
  auto unknown = c.Post("/v1/login", json{{"user", "nobody"}, {"password", kPassword}}.dump(), "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 401);
  EXPECT_THAT(unknown->body, HasSubstr("unknown user or wrong password"));
  // Every attempt is in the audit trail; no password anywhere.
  auto audit = RunSallyport({"audit", "list", "--server", server_->url(), "--output", "json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  const json trail = json::parse(audit.out);
  int logins = 0;
  for (const auto& row : trail["audit"]) logins += row.value("path", "") == "/v1/login";
  EXPECT_EQ(logins, 13);
  server_->daemon().Stop();
  for (const std::string& file : {db_, db_ + "-wal", dir_ / "server.log"}) {
    const std::string bytes = ReadFile(file);
    EXPECT_EQ(bytes.find(kPassword), std::string::npos) << file;
    EXPECT_EQ(bytes.find("wrong password number"), std::string::npos) << file;
  }
  EXPECT_EQ(audit.out.find("wrong password number"), std::string::npos);
}

}  // namespace
}  // namespace sp::test
