#include "transport/ssh/ssh_command.h"

#include <gtest/gtest.h>

#include "core/subprocess.h"

namespace sp::ssh {
namespace {

// What a POSIX shell makes of a quoted string: run it through /bin/sh and
// print each argument on its own line.
std::vector<std::string> ShellWords(const std::string& line) {
  CommandSpec s;
  s.argv = {"/bin/sh", "-c", "for a in " + line + "; do printf '%s\\0' \"$a\"; done"};
  auto r = SystemProcesses().Run(s);
  EXPECT_TRUE(r && r->ok());
  std::vector<std::string> words;
  std::string cur;
  for (char c : r->out) {
    if (c == '\0') {
      words.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return words;
}

TEST(ShellQuoteTest, AnyBytesSurviveTheShellUnchanged) {
  const std::vector<std::string> hostile = {"plain",  "two words", "it's",       "$(touch /tmp/sp-pwned)",
                                            "`id`",   "a;b|c&d",   "\"dq\" \\bs", "*",
                                            "",       "new\nline", "--option",   "remote-run/ben/x'; rm -rf /"};
  std::string line;
  for (const auto& h : hostile) line += ShellQuote(h) + " ";
  EXPECT_EQ(ShellWords(line), hostile);
}

TEST(RemoteCommandLineTest, QuotesEveryArgumentAndFixesPath) {
  CommandSpec s;
  s.argv = {"docker", "run", "--name", "a b", "$(x)"};
  std::string line = RemoteCommandLine(s);
  EXPECT_EQ(line,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH; exec 'docker' 'run' "
            "'--name' 'a b' '$(x)'");
}

TEST(RemoteCommandLineTest, TimeoutCwdAndEnvWrapTheCommand) {
  CommandSpec s;
  s.argv = {"sleep", "5"};
  s.timeout = Millis(1500);
  s.cwd = "/srv/app dir";
  s.env = {{"A", "1 2"}};
  EXPECT_EQ(RemoteCommandLine(s),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH; cd '/srv/app dir' || "
            "exit 125; exec timeout --kill-after=2 2 env 'A=1 2' 'sleep' '5'");
}

TEST(RemoteCommandLineTest, RunsForRealInAShell) {
  CommandSpec s;
  s.argv = {"printf", "%s|%s", "it's", "$HOME"};
  s.env = {{"X", "y"}};
  CommandSpec sh;
  sh.argv = {"/bin/sh", "-c", RemoteCommandLine(s)};
  auto r = SystemProcesses().Run(sh);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(r->out, "it's|$HOME");
}

TEST(HostKeyProblemTest, UnknownKeyNamesHostAndFingerprint) {
  const std::string err =
      "debug1: Connecting to 10.213.7.13 [10.213.7.13] port 22.\n"
      "debug1: Server host key: ssh-ed25519 SHA256:gghdz55FCbPJlkgaiCtUOptRIpU9MKWQp5fzqkQ5/c8\n"
      "No ED25519 host key is known for 10.213.7.13 and you have requested strict checking.\n"
      "Host key verification failed.\n";
  auto p = ParseHostKeyProblem(err);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, HostKeyProblem::kUnknown);
  EXPECT_EQ(p->host, "10.213.7.13");
  EXPECT_EQ(p->fingerprint, "ssh-ed25519 SHA256:gghdz55FCbPJlkgaiCtUOptRIpU9MKWQp5fzqkQ5/c8");
  std::string d = p->Describe("host h3");
  EXPECT_NE(d.find("host h3 (10.213.7.13) is not in known_hosts"), std::string::npos) << d;
  EXPECT_NE(d.find("SHA256:gghdz55"), std::string::npos) << d;
}

TEST(HostKeyProblemTest, ChangedKeyWithoutDebugUsesTheWarningFingerprint) {
  const std::string err =
      "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
      "The fingerprint for the ED25519 key sent by the remote host is\n"
      "SHA256:jCVPenGbAuQYF1oLDnybVKfe/rFl9q8fjFygxrAihdA.\n"
      "Host key for [10.213.7.250]:2222 has changed and you have requested strict checking.\n"
      "Host key verification failed.\n";
  auto p = ParseHostKeyProblem(err);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, HostKeyProblem::kChanged);
  EXPECT_EQ(p->host, "[10.213.7.250]:2222");
  EXPECT_EQ(p->fingerprint, "ED25519 SHA256:jCVPenGbAuQYF1oLDnybVKfe/rFl9q8fjFygxrAihdA");
  EXPECT_NE(p->Describe("bastion").find("CHANGED"), std::string::npos);
}

TEST(HostKeyProblemTest, OtherFailuresAreNotKeyProblems) {
  EXPECT_FALSE(ParseHostKeyProblem("ssh: connect to host 10.0.0.1 port 22: No route to host\n"));
  EXPECT_EQ(SshErrorText("debug1: x\nOpenSSH_9.2p1\nssh: connect to host 10.0.0.1 port 22: No route to host\n"),
            "ssh: connect to host 10.0.0.1 port 22: No route to host");
}

TEST(KnownHostsNameTest, NonDefaultPortsAreBracketed) {
  EXPECT_EQ(KnownHostsName("10.0.0.1", 22), "10.0.0.1");
  EXPECT_EQ(KnownHostsName("10.0.0.1", 2222), "[10.0.0.1]:2222");
}

}  // namespace
}  // namespace sp::ssh
