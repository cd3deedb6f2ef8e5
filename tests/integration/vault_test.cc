// `sallyport secrets` against the real `ansible-vault` (Debian's ansible):
// files and inline values made by either open with the other, with and
// without vault ids; a wrong password or an altered file changes nothing and
// says why; `edit` works on a private copy it removes; `rekey` re-encrypts
// files and inline values. ansible-vault is required: without it these tests
// fail, they do not skip.
#include <sys/stat.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "core/text.h"
#include "support/cli_runner.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

constexpr char kPlain[] = "db: postgres://app:s3cr3t@db.internal/app\ntoken: \"x y z\"\n";

class VaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(FindProgram("ansible-vault").empty()) << "ansible-vault is needed (scripts/deps installs ansible)";
    Write("pw", "correct horse\n");
    Write("pw2", "battery staple\n");
    Write("plain.txt", kPlain);
  }
  std::string P(const std::string& name) const { return dir_ / name; }
  void Write(const std::string& name, const std::string& content) {
    fs::remove(P(name));
    ASSERT_TRUE(WriteNewFile(P(name), content, 0600));
  }
  // `sh -c script` in the test's directory (for pipes into stdin).
  CliResult Sh(const std::string& script) {
    return RunProgram({"sh", "-c", "cd '" + dir_.path() + "' && " + script}, 120);
  }
  static std::string Sallyport() { return BuildBinary("sallyport"); }
  CliResult Secrets(std::vector<std::string> args) {
    args.insert(args.begin(), "secrets");
    return RunSallyport(args);
  }
  // What Ansible itself reads from an inline value in a vars file.
  std::string AnsibleVar(const std::string& vars, const std::string& var, const std::string& vault_arg) {
    auto r = RunProgram({"env", "ANSIBLE_LOCALHOST_WARNING=False", "ANSIBLE_INVENTORY_UNPARSED_WARNING=False",
                         "ansible", "localhost", "-m", "debug", "-a", "var=" + var, "-e", "@" + P(vars), vault_arg},
                        180);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.out;
  }
  TempDir dir_{"sp-vault"};
};

TEST_F(VaultTest, FilesAnsibleVaultMadeOpenWithSallyport) {
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("a.txt")));
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("b.txt")));
  auto r = RunProgram({"ansible-vault", "encrypt", "--vault-password-file", P("pw"), P("a.txt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunProgram({"ansible-vault", "encrypt", "--vault-id", "prod@" + P("pw2"), P("b.txt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(ReadFile(P("b.txt")).starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
  auto view = Secrets({"view", P("a.txt"), "--vault-password-file", P("pw")});
  EXPECT_EQ(view.exit_code, 0) << view.err;
  EXPECT_EQ(view.out, kPlain);
  // Several ids: the envelope's own id is tried first, any other after.
  view = Secrets({"view", P("b.txt"), "--vault-id", "dev@" + P("pw"), "--vault-id", "prod@" + P("pw2")});
  EXPECT_EQ(view.out, kPlain) << view.err;
  auto dec = Secrets({"decrypt", P("b.txt"), "--vault-id", "prod@" + P("pw2")});
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(ReadFile(P("b.txt")), kPlain);
}

TEST_F(VaultTest, FilesSallyportMadeOpenWithAnsibleVault) {
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("a.txt")));
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("b.txt")));
  auto r = Secrets({"encrypt", P("a.txt"), "--vault-password-file", P("pw")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Secrets({"encrypt", P("b.txt"), "--vault-id", "prod@" + P("pw2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadFile(P("a.txt")).starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
  EXPECT_TRUE(ReadFile(P("b.txt")).starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
  auto view = RunProgram({"ansible-vault", "view", "--vault-password-file", P("pw"), P("a.txt")});
  EXPECT_EQ(view.exit_code, 0) << view.err;
  EXPECT_EQ(view.out, kPlain);
  view = RunProgram({"ansible-vault", "view", "--vault-id", "prod@" + P("pw2"), P("b.txt")});
  EXPECT_EQ(view.out, kPlain) << view.err;
  // Already encrypted: refused, unchanged.
  const std::string before = ReadFile(P("a.txt"));
  EXPECT_NE(Secrets({"encrypt", P("a.txt"), "--vault-password-file", P("pw")}).exit_code, 0);
  EXPECT_EQ(ReadFile(P("a.txt")), before);
}

TEST_F(VaultTest, InlineValuesBothWays) {
  // Ansible's encrypt_string, read by Sallyport (its output ends without a newline).
  auto r = Sh("printf %s 's3cr3t value' | ansible-vault encrypt_string --vault-id prod@pw --stdin-name db_password"
              " > ansible_vars.yml && printf '\\nport: 8080\\n' >> ansible_vars.yml");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto view = Secrets({"view", P("ansible_vars.yml"), "--vault-id", "prod@" + P("pw")});
  EXPECT_EQ(view.exit_code, 0) << view.err;
  EXPECT_EQ(view.out, "db_password: \"s3cr3t value\"\nport: 8080\n");
  // Sallyport's encrypt-string, read by Ansible itself.
  r = Sh("printf %s 'an0ther: one' | '" + Sallyport() +
         "' secrets encrypt-string --name api_key --vault-password-file pw > ours.yml");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ReadFile(P("ours.yml")), HasSubstr("api_key: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n"));
  EXPECT_THAT(AnsibleVar("ours.yml", "api_key", "--vault-password-file=" + P("pw")),
              HasSubstr("\"api_key\": \"an0ther: one\""));
  r = Sh("printf %s 'with-id' | '" + Sallyport() +
         "' secrets encrypt-string --name k --vault-id prod@pw2 > ours_id.yml");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ReadFile(P("ours_id.yml")), HasSubstr("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
  EXPECT_THAT(AnsibleVar("ours_id.yml", "k", "--vault-id=prod@" + P("pw2")), HasSubstr("\"k\": \"with-id\""));
}

TEST_F(VaultTest, AWrongPasswordOrAnAlteredFileChangesNothingAndSaysWhy) {
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("a.txt")));
  ASSERT_EQ(RunProgram({"ansible-vault", "encrypt", "--vault-password-file", P("pw"), P("a.txt")}).exit_code, 0);
  const std::string sealed = ReadFile(P("a.txt"));
  auto r = Secrets({"decrypt", P("a.txt"), "--vault-password-file", P("pw2")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr(P("a.txt")));
  EXPECT_THAT(r.err, HasSubstr("HMAC mismatch"));
  EXPECT_THAT(r.err, HasSubstr("password is wrong"));
  EXPECT_EQ(ReadFile(P("a.txt")), sealed) << "nothing written";
  EXPECT_THAT(r.err + r.out, ::testing::Not(HasSubstr("battery")));
  // One digit of the last line altered (still a hex digit): the MAC says so.
  std::string altered = sealed;
  const size_t at = altered.rfind('\n', altered.size() - 2) + 7;
  altered[at] = altered[at] == '6' ? '3' : '6';
  Write("b.txt", altered);
  r = Secrets({"view", P("b.txt"), "--vault-password-file", P("pw")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr(P("b.txt")));
  EXPECT_THAT(r.err, ::testing::AnyOf(HasSubstr("HMAC mismatch"), HasSubstr("damaged")));
  EXPECT_EQ(r.out, "");
  EXPECT_NE(RunProgram({"ansible-vault", "view", "--vault-password-file", P("pw"), P("b.txt")}).exit_code, 0)
      << "ansible-vault agrees the file was altered";
}

TEST_F(VaultTest, PasswordsFromAScriptAnEnvironmentVariableAndAnsiblesVariable) {
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("a.txt")));
  ASSERT_EQ(RunProgram({"ansible-vault", "encrypt", "--vault-id", "prod@" + P("pw"), P("a.txt")}).exit_code, 0);
  // An executable prints it; a "-client" script is told the id it is asked for.
  Write("get-pass", "#!/bin/sh\nprintf 'correct horse\\n'\n");
  Write("keys-client", "#!/bin/sh\n[ \"$1 $2\" = '--vault-id prod' ] || exit 3\necho 'correct horse'\n");
  ::chmod(P("get-pass").c_str(), 0700);
  ::chmod(P("keys-client").c_str(), 0700);
  EXPECT_EQ(Secrets({"view", P("a.txt"), "--vault-password-file", P("get-pass")}).out, kPlain);
  auto client = Secrets({"view", P("a.txt"), "--vault-id", "prod@" + P("keys-client")});
  EXPECT_EQ(client.out, kPlain) << client.err;
  auto env = RunSallyport({"secrets", "view", P("a.txt"), "--vault-password-env", "MY_VAULT_PASS"},
                          {{"MY_VAULT_PASS", "correct horse"}});
  EXPECT_EQ(env.out, kPlain) << env.err;
  auto ansible_env = RunSallyport({"secrets", "view", P("a.txt")}, {{"ANSIBLE_VAULT_PASSWORD_FILE", P("pw")}});
  EXPECT_EQ(ansible_env.out, kPlain) << ansible_env.err;
  auto none = RunSallyport({"secrets", "view", P("a.txt")}, {{"ANSIBLE_VAULT_PASSWORD_FILE", ""}});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("no vault password"));
  Write("fails", "#!/bin/sh\necho 'locked' >&2\nexit 3\n");
  ::chmod(P("fails").c_str(), 0700);
  auto failed = Secrets({"view", P("a.txt"), "--vault-password-file", P("fails")});
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_THAT(failed.err, HasSubstr("vault password script"));
}

TEST_F(VaultTest, EditWorksOnAPrivateCopyThatIsRemoved) {
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("a.txt")));
  ASSERT_EQ(Secrets({"encrypt", P("a.txt"), "--vault-id", "prod@" + P("pw")}).exit_code, 0);
  // The "editor" notes where it was asked to edit and with what modes, then appends a line.
  Write("editor", "#!/bin/sh\necho \"$1\" > '" + P("seen") + "'\nstat -c %a \"$1\" \"$(dirname \"$1\")\" >> '" +
                      P("seen") + "'\necho 'added: 1' >> \"$1\"\n");
  ::chmod(P("editor").c_str(), 0700);
  auto r = RunSallyport({"secrets", "edit", P("a.txt"), "--vault-id", "prod@" + P("pw")},
                        {{"EDITOR", P("editor")}, {"TMPDIR", dir_.path()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto seen = Split(ReadFile(P("seen")), '\n');
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[1], "600") << "the plaintext copy is the user's alone";
  EXPECT_EQ(seen[2], "700");
  EXPECT_FALSE(fs::exists(seen[0])) << "the plaintext copy is removed";
  EXPECT_FALSE(fs::exists(fs::path(seen[0]).parent_path()));
  EXPECT_TRUE(ReadFile(P("a.txt")).starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n")) << "kept under its id";
  auto view = RunProgram({"ansible-vault", "view", "--vault-id", "prod@" + P("pw"), P("a.txt")});
  EXPECT_EQ(view.out, std::string(kPlain) + "added: 1\n") << view.err;
  // An editor that fails leaves the file as it was.
  const std::string before = ReadFile(P("a.txt"));
  r = RunSallyport({"secrets", "edit", P("a.txt"), "--vault-id", "prod@" + P("pw")}, {{"EDITOR", "false"}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(ReadFile(P("a.txt")), before);
}

TEST_F(VaultTest, RekeyReencryptsFilesAndInlineValues) {
  ASSERT_TRUE(fs::copy_file(P("plain.txt"), P("a.txt")));
  ASSERT_EQ(RunProgram({"ansible-vault", "encrypt", "--vault-password-file", P("pw"), P("a.txt")}).exit_code, 0);
  auto r = Sh("printf %s 'v1' | ansible-vault encrypt_string --vault-password-file pw --stdin-name one > vars.yml"
              " && printf '\\n# kept\\n' >> vars.yml && printf %s 'v2' | ansible-vault encrypt_string --vault-password-file pw"
              " --stdin-name two >> vars.yml");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A wrong old password: nothing rewritten.
  const std::string a_before = ReadFile(P("a.txt")), vars_before = ReadFile(P("vars.yml"));
  r = Secrets({"rekey", P("a.txt"), P("vars.yml"), "--vault-password-file", P("pw2"), "--new-vault-password-file",
               P("pw2")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(ReadFile(P("a.txt")), a_before);
  EXPECT_EQ(ReadFile(P("vars.yml")), vars_before);
  r = Secrets({"rekey", P("a.txt"), P("vars.yml"), "--vault-password-file", P("pw"), "--new-vault-password-file",
               P("pw2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(RunProgram({"ansible-vault", "view", "--vault-password-file", P("pw"), P("a.txt")}).exit_code, 0);
  EXPECT_EQ(RunProgram({"ansible-vault", "view", "--vault-password-file", P("pw2"), P("a.txt")}).out, kPlain);
  EXPECT_THAT(ReadFile(P("vars.yml")), HasSubstr("# kept\n"));
  EXPECT_THAT(AnsibleVar("vars.yml", "two", "--vault-password-file=" + P("pw2")), HasSubstr("\"two\": \"v2\""));
  EXPECT_EQ(Secrets({"view", P("vars.yml"), "--vault-password-file", P("pw2")}).out,
            "one: \"v1\"\n# kept\ntwo: \"v2\"\n");
}

}  // namespace
}  // namespace sp::test
