// TLS between the parts, attacked from outside: real `sallyport server`
// processes serving HTTPS with certificates of a test CA (or made by
// `sallyport server init-tls`), real agents and CLI processes verifying
// them. The right CA works; another CA, a certificate of the right CA for
// another name, an expired one and plain HTTP to a non-loopback address are
// each refused with a message that says which.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_ca.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

int FileMode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

using json = nlohmann::json;
using ::testing::HasSubstr;

class TlsIT : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ca_.ok());
    ASSERT_FALSE(AdminToken(db_).empty());
    agent_token_ = CreateAgentToken(dir_, db_, "dc1-agent", "network=dc1");
    ASSERT_FALSE(agent_token_.empty());
  }
  // A server serving `tls` on a free loopback port; its https:// URL ("" if it did not start).
  std::string Serve(const TlsFiles& tls, const std::string& name) {
    servers_.emplace_back(std::vector<std::string>{BuildBinary("sallyport"), "server", "--store", db_, "--listen",
                                                   "127.0.0.1:0", "--poll-every", "0", "--tls-cert", tls.cert,
                                                   "--tls-key", tls.key},
                          dir_ / (name + ".log"));
    const std::string marker = "listening on https://127.0.0.1:";
    int port = 0;
    WaitForStart(servers_.back(),
                 [&] {
                   const std::string log = ReadFile(dir_ / (name + ".log"));
                   const size_t at = log.find(marker);
                   if (at == std::string::npos) return false;
                   port = std::atoi(log.c_str() + at + marker.size());
                   return true;
                 },
                 std::chrono::seconds(10));
    return port ? "https://127.0.0.1:" + std::to_string(port) : "";
  }
  // `agent run` against `url` trusting `ca`, expected to give up: its stderr.
  CliResult AgentGivingUp(const std::string& url, const std::string& ca) {
    std::vector<std::string> args{"agent", "run", "--server", url, "--token-file", agent_token_};
    if (!ca.empty()) args.insert(args.end(), {"--ca", ca});
    return RunSallyport(args, {{"SALLYPORT_CA", ""}}, 30);
  }
  TempDir dir_{"sp-tls-it"};
  std::string db_ = dir_ / "state.db";
  TestCa ca_{dir_.path()};
  TestCa other_ca_{dir_.path(), "Another CA"};
  std::string agent_token_;
  std::vector<Daemon> servers_;
};

TEST_F(TlsIT, AnAgentAndTheCliTrustingTheServersCaWork) {
  const std::string url = Serve(ca_.Issue("good", {"localhost"}, {"127.0.0.1"}), "good");
  ASSERT_FALSE(url.empty()) << ReadFile(dir_ / "good.log");
  Daemon agent({BuildBinary("sallyport"), "agent", "run", "--server", url, "--ca", ca_.ca_file(), "--token-file",
                agent_token_},
               dir_ / "agent.log");
  const std::map<std::string, std::string> env{{"SALLYPORT_CA", ca_.ca_file()}};
  EXPECT_TRUE(WaitFor(
      [&] {
        auto listed = RunSallyport({"agent", "list", "--server", url, "--output", "json"}, env);
        return listed.exit_code == 0 && listed.out.find("dc1-agent") != std::string::npos;
      },
      std::chrono::seconds(15)))
      << ReadFile(dir_ / "agent.log");
  EXPECT_THAT(ReadFile(dir_ / "agent.log"), HasSubstr("claiming for"));
  // The CLI: --ca as a flag, and $SALLYPORT_CA.
  auto by_flag = RunSallyport({"job", "list", "--server", url, "--ca", ca_.ca_file()}, {{"SALLYPORT_CA", ""}});
  EXPECT_EQ(by_flag.exit_code, 0) << by_flag.err;
  // Plain HTTP to the TLS port gets no answer.
  auto plain = RunSallyport({"job", "list", "--server", "http" + url.substr(5)}, env);
  EXPECT_NE(plain.exit_code, 0);
}

TEST_F(TlsIT, ACertificateOfAnotherCaIsRefused) {
  const std::string url = Serve(other_ca_.Issue("other-ca", {"localhost"}, {"127.0.0.1"}), "other-ca");
  ASSERT_FALSE(url.empty());
  auto r = AgentGivingUp(url, ca_.ca_file());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("the server's certificate is not trusted"));
  EXPECT_THAT(r.err, HasSubstr(ca_.ca_file()));
  // Nor does the system's store know a private CA.
  auto system = AgentGivingUp(url, "");
  EXPECT_THAT(system.err, HasSubstr("trusting the system's CAs"));
}

TEST_F(TlsIT, ACertificateOfTheRightCaForAnotherNameIsRefused) {
  const std::string url = Serve(ca_.Issue("other-name", {"sallyport.example"}, {"10.255.0.1"}), "other-name");
  ASSERT_FALSE(url.empty());
  auto r = AgentGivingUp(url, ca_.ca_file());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("the server's certificate is not for 127.0.0.1"));
}

TEST_F(TlsIT, AnExpiredCertificateIsRefused) {
  const int64_t now = std::time(nullptr);
  const std::string url =
      Serve(ca_.Issue("expired", {"localhost"}, {"127.0.0.1"}, now - 3 * 86400, now - 86400), "expired");
  ASSERT_FALSE(url.empty());
  auto r = AgentGivingUp(url, ca_.ca_file());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("certificate has expired"));
}

TEST_F(TlsIT, PlainHttpIsOnlyForLoopback) {
  // Clients: an agent and the CLI refuse before connecting (the address is
  // unroutable here anyway: nothing is sent).
  auto agent = AgentGivingUp("http://10.255.0.1:8700", "");
  EXPECT_EQ(agent.exit_code, 2) << agent.err;
  EXPECT_THAT(agent.err, HasSubstr("plain http:// is used only to a loopback address"));
  auto cli = RunSallyport({"job", "list", "--server", "http://[fd00::1]:8700"});
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_THAT(cli.err, HasSubstr("plain http:// is used only to a loopback address"));
  // The server will not listen beyond loopback without a certificate.
  auto server = RunSallyport({"server", "--store", db_, "--listen", "0.0.0.0:0"}, {}, 30);
  EXPECT_EQ(server.exit_code, 2);
  EXPECT_THAT(server.err, HasSubstr("plain HTTP is served only on a loopback address"));
  // A git remote's token goes over https:// (or to loopback) only.
  auto project = RunSallyport({"project", "add", "--name", "svc", "--git", "http://10.255.0.1/svc.git", "--credential",
                               "file:/etc/hostname", "--store", db_});
  EXPECT_EQ(project.exit_code, 2);
  EXPECT_THAT(project.err, HasSubstr("its token would travel in clear to 10.255.0.1"));
  // Half a certificate is a usage error too.
  auto half = RunSallyport({"server", "--store", db_, "--listen", "127.0.0.1:0", "--tls-cert", ca_.ca_file()}, {}, 30);
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_THAT(half.err, HasSubstr("--tls-cert and --tls-key go together"));
}

TEST_F(TlsIT, InitTlsMakesACaAndACertificateTheClientsVerify) {
  const std::string tls = dir_ / "tls";
  auto made = RunSallyport({"server", "init-tls", "--dir", tls, "--ip", "10.213.7.1", "--name", "deploy.example"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_THAT(made.out, HasSubstr("10.213.7.1"));
  // The fingerprint it prints is the CA certificate's, as openssl computes it.
  std::string openssl;
  ASSERT_EQ(sp::test::Run({"openssl", "x509", "-in", tls + "/ca.crt", "-noout", "-fingerprint", "-sha256"}, &openssl), 0);
  const std::string fp = Trim(openssl.substr(openssl.find('=') + 1));
  EXPECT_THAT(made.out, HasSubstr("SHA256:" + fp));
  // Keys are 0600; a second run keeps what is there.
  EXPECT_EQ(FileMode(tls + "/ca.key"), 0600);
  EXPECT_EQ(FileMode(tls + "/server.key"), 0600);
  const std::string cert = ReadFile(tls + "/server.crt");
  auto again = RunSallyport({"server", "init-tls", "--dir", tls});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("kept"));
  EXPECT_EQ(ReadFile(tls + "/server.crt"), cert);
  const std::string url = Serve({tls + "/ca.crt", tls + "/server.crt", tls + "/server.key"}, "init-tls");
  ASSERT_FALSE(url.empty()) << ReadFile(dir_ / "init-tls.log");
  auto listed = RunSallyport({"job", "list", "--server", url, "--ca", tls + "/ca.crt"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  // localhost is among its names.
  auto by_name = RunSallyport({"job", "list", "--server", "https://localhost" + url.substr(url.rfind(':')), "--ca",
                               tls + "/ca.crt"});
  EXPECT_EQ(by_name.exit_code, 0) << by_name.err;
}

}  // namespace
}  // namespace sp::test
