// SshTransport against the lab: real sshd on every host, reached only through
// the bastion, host keys verified.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>

#include <gtest/gtest.h>

#include "core/text.h"
#include "support/lab.h"
#include "support/test_util.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::test {
namespace {

using std::chrono::milliseconds;

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// errno of a TCP connect from the office (root namespace), 0 if it connected.
int ConnectErrno(const std::string& address, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int e = rc == 0 ? 0 : errno;
  ::close(fd);
  return e;
}

CommandSpec Cmd(std::vector<std::string> argv, Millis timeout = Millis(20'000)) {
  CommandSpec s;
  s.argv = std::move(argv);
  s.timeout = timeout;
  return s;
}

TEST(LabSshTransport, RunReturnsExitStatusAndSeparateStreams) {
  SP_REQUIRE_LAB(lab);
  SshTransport t(lab.Ssh());
  auto r = t.Run(lab.Host(0), Cmd({"sh", "-c", "echo out; echo err >&2; echo \"$1\"; exit 3", "x", "it's $(id)"}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\nit's $(id)\n");
  EXPECT_EQ(r->err, "err\n");
  auto host = t.Run(lab.Host(0), Cmd({"cat", "/etc/hostname", "/proc/self/net/fib_trie"}));
  ASSERT_TRUE(host && host->ok());
  EXPECT_NE(host->out.find(lab.hosts[0].address), std::string::npos) << "ran on the wrong host";
}

TEST(LabSshTransport, StdinIsDevNullAndStartupFilesAreNotNeeded) {
  SP_REQUIRE_LAB(lab);
  SshTransport t(lab.Ssh());
  // `cat` returns at once with nothing: stdin is /dev/null, not our terminal.
  auto r = t.Run(lab.Host(0), Cmd({"cat"}, Millis(5000)));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->ok()) << r->Describe();
  EXPECT_EQ(r->out, "");
  auto p = t.Run(lab.Host(0), Cmd({"sh", "-c", "echo $PATH"}));
  ASSERT_TRUE(p && p->ok());
  EXPECT_NE(p->out.find("/usr/sbin"), std::string::npos) << "PATH is fixed by the transport: " << p->out;
  CommandSpec in = Cmd({"sh", "-c", "cat; echo; cat"});
  in.stdin_data = "given input";
  auto q = t.Run(lab.Host(0), in);
  ASSERT_TRUE(q && q->ok());
  EXPECT_EQ(q->out, "given input\n");
}

TEST(LabSshTransport, OutputStreamsLineByLineWhileTheCommandRuns) {
  SP_REQUIRE_LAB(lab);
  SshTransport t(lab.Ssh());
  const std::string flag = "/tmp/sp-stream-" + std::to_string(::getpid());
  // The remote command prints "first" and then waits for a flag file that
  // the callback for "first" creates: it can only finish if that line was
  // delivered while it was still running.
  CommandSpec s = Cmd({"sh", "-c",
                       "echo first; i=0; while [ ! -e \"$1\" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
                       "rm -f \"$1\"; [ $i -lt 200 ] && echo second",
                       "x", flag});
  std::vector<std::string> lines;
  s.on_line = [&](bool is_err, const std::string& line) {
    lines.push_back(line);
    if (line == "first") {
      auto w = t.Run(lab.Host(0), Cmd({"touch", flag}));
      EXPECT_TRUE(w && w->ok());
    }
  };
  auto r = t.Run(lab.Host(0), s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->ok()) << r->Describe();
  EXPECT_EQ(lines, (std::vector<std::string>{"first", "second"}));
}

TEST(LabSshTransport, TimeoutKillsTheRemoteCommandToo) {
  SP_REQUIRE_LAB(lab);
  SshTransport t(lab.Ssh());
  const std::string marker = std::to_string(30 + ::getpid() % 1000) + ".25";
  auto r = t.Run(lab.Host(1), Cmd({"sleep", marker}, Millis(1000)));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->ok());
  // Nothing is left running on the host (the pid namespace is shared, so
  // pgrep sees it if it were).
  bool gone = WaitFor([&] { return ::sp::test::Run({"pgrep", "-f", "sleep " + marker}) != 0; }, milliseconds(5000));
  EXPECT_TRUE(gone) << "remote `sleep " << marker << "` survived the timeout";
}

TEST(LabSshTransport, WriteFileIsPrivateAtomicAndOnlyOnThatHost) {
  SP_REQUIRE_LAB(lab);
  SshTransport t(lab.Ssh());
  const std::string path = "/srv/sallyport/sp-env-" + std::to_string(::getpid());
  ASSERT_TRUE(t.WriteFile(lab.Host(0), path, "SECRET=s3cr3t\n", 0600));
  auto r = t.Run(lab.Host(0), Cmd({"stat", "-c", "%a %U", path}));
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(r->out, "600 deploy\n");
  auto c = t.Run(lab.Host(0), Cmd({"cat", path}));
  ASSERT_TRUE(c && c->ok());
  EXPECT_EQ(c->out, "SECRET=s3cr3t\n");
  // Each host has its own /srv: neither the office nor host 2 sees the file.
  EXPECT_FALSE(FileExists(path));
  auto other = t.Run(lab.Host(1), Cmd({"test", "-e", path}));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->exit_code, 1);
  // No temporary file is left next to it.
  auto ls = t.Run(lab.Host(0), Cmd({"sh", "-c", "ls -a /srv/sallyport | grep -c sp-write || true"}));
  ASSERT_TRUE(ls && ls->ok());
  EXPECT_EQ(Trim(ls->out), "0");
}

TEST(LabSshTransport, CopyFileStreamsALargeFile) {
  SP_REQUIRE_LAB(lab);
  TempDir tmp("sp-copy");
  const std::string local = tmp.path() + "/blob";
  ASSERT_EQ(::sp::test::Run({"sh", "-c", "head -c 24000000 /dev/urandom > " + local}), 0);
  std::string sum;
  ::sp::test::Run({"sha256sum", local}, &sum);
  SshTransport t(lab.Ssh());
  const std::string remote = "/srv/sallyport/blob-" + std::to_string(::getpid());
  ASSERT_TRUE(t.CopyFile(lab.Host(2), local, remote, 0755));
  auto r = t.Run(lab.Host(2), Cmd({"sh", "-c", "sha256sum \"$1\" | cut -d' ' -f1; stat -c %a \"$1\"; rm -f \"$1\"",
                                   "x", remote}));
  ASSERT_TRUE(r && r->ok()) << (r ? r->Describe() : r.error().message);
  EXPECT_EQ(r->out, sum.substr(0, 64) + "\n755\n");
}

TEST(LabSshTransport, OneConnectionPerHostAndOneSharedBastion) {
  SP_REQUIRE_LAB(lab);
  const int bastion_before = Count(lab.SshdLog("bastion"), "Accepted publickey");
  std::vector<int> before;
  for (size_t i = 0; i < 3; ++i) before.push_back(Count(lab.SshdLog(lab.hosts[i].name), "Accepted publickey"));
  {
    SshTransport t(lab.Ssh());
    for (int round = 0; round < 5; ++round) {
      for (size_t i = 0; i < 3; ++i) {
        auto r = t.Run(lab.Host(i), Cmd({"true"}));
        ASSERT_TRUE(r && r->ok());
      }
    }
    EXPECT_EQ(t.stats().host_connects, 3);
    EXPECT_EQ(t.stats().bastion_connects, 1);
    EXPECT_EQ(t.stats().commands, 15);
  }
  // The hosts' own sshd logs agree: one login each, one on the bastion.
  EXPECT_EQ(Count(lab.SshdLog("bastion"), "Accepted publickey") - bastion_before, 1);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Count(lab.SshdLog(lab.hosts[i].name), "Accepted publickey") - before[i], 1) << lab.hosts[i].name;
  }
}

TEST(LabSshTransport, ReleaseClosesTheHostConnection) {
  SP_REQUIRE_LAB(lab);
  const int before = Count(lab.SshdLog("h1"), "Accepted publickey");
  SshTransport t(lab.Ssh());
  ASSERT_TRUE(t.Check(lab.Host(0)));
  ASSERT_TRUE(t.Check(lab.Host(0)));  // Same connection.
  t.Release(lab.Host(0));
  ASSERT_TRUE(t.Check(lab.Host(0)));  // A new one.
  EXPECT_EQ(t.stats().host_connects, 2);
  EXPECT_EQ(t.stats().bastion_connects, 1);
  // h1's sshd saw exactly two logins.
  EXPECT_EQ(Count(lab.SshdLog("h1"), "Accepted publickey") - before, 2);
}

TEST(LabSshTransport, BoundsTheHostsConnectedAtOnce) {
  SP_REQUIRE_LAB(lab);
  SshOptions o = lab.Ssh();
  o.max_hosts = 2;
  SshTransport t(o);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 3; ++k) {
        auto r = t.Run(lab.Host(i), Cmd({"sleep", "0.1"}));
        if (r && r->ok()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 9);
  EXPECT_EQ(t.stats().max_connected, 2);
  EXPECT_GE(t.stats().host_connects, 3);
}

TEST(LabSshTransport, UnknownHostKeyFailsNamingHostAndFingerprint) {
  SP_REQUIRE_LAB(lab);
  TempDir tmp("sp-kh");
  SshOptions o = lab.Ssh();
  o.known_hosts = lab.EditedKnownHosts(tmp.path(), lab.hosts[1].address);  // h2 unknown.
  SshTransport t(o);
  ASSERT_TRUE(t.Check(lab.Host(0)));  // Others still work.
  auto s = t.Check(lab.Host(1));
  ASSERT_FALSE(s);
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("host h2"), std::string::npos) << m;
  EXPECT_NE(m.find(lab.hosts[1].address), std::string::npos) << m;
  EXPECT_NE(m.find(lab.Fingerprint("h2")), std::string::npos) << m;
  EXPECT_NE(m.find("sallyport hosts trust"), std::string::npos) << m;
  EXPECT_EQ(m.find("BEGIN OPENSSH"), std::string::npos);
}

TEST(LabSshTransport, ChangedHostKeyFailsNamingTheOfferedFingerprint) {
  SP_REQUIRE_LAB(lab);
  TempDir tmp("sp-kh");
  // h2's address with h1's key: an impostor or a rebuilt host.
  SshOptions o = lab.Ssh();
  o.known_hosts = lab.EditedKnownHosts(tmp.path(), lab.hosts[1].address,
                                       lab.hosts[1].address + " " + lab.HostKeyLine("h1"));
  SshTransport t(o);
  auto s = t.Check(lab.Host(1));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("CHANGED"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(lab.Fingerprint("h2")), std::string::npos) << s.error().message;
}

TEST(LabSshTransport, UnknownBastionKeyFailsNamingTheBastion) {
  SP_REQUIRE_LAB(lab);
  TempDir tmp("sp-kh");
  SshOptions o = lab.Ssh();
  o.known_hosts = lab.EditedKnownHosts(tmp.path(), lab.bastion);  // Bastion unknown.
  SshTransport t(o);
  auto s = t.Check(lab.Host(0));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("bastion " + lab.bastion), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(lab.Fingerprint("bastion")), std::string::npos) << s.error().message;
  // The inventory's bastion host_key line is enough on its own.
  o.bastion_host_key = lab.bastion + " " + lab.HostKeyLine("bastion");
  SshTransport t2(o);
  EXPECT_TRUE(t2.Check(lab.Host(0)));
}

TEST(LabSshTransport, HashedAndBracketedPortEntriesAreHonoured) {
  SP_REQUIRE_LAB(lab);
  TempDir tmp("sp-kh");
  // The bastion on its second port, known only as [addr]:port; everything hashed.
  const std::string kh = lab.EditedKnownHosts(
      tmp.path(), lab.bastion,
      "[" + lab.bastion + "]:" + std::to_string(lab.bastion_alt_port) + " " + lab.HostKeyLine("bastion"));
  ASSERT_EQ(::sp::test::Run({"ssh-keygen", "-q", "-H", "-f", kh}), 0);
  ASSERT_EQ(ReadFile(kh).find(lab.hosts[0].address), std::string::npos) << "entries were not hashed";
  SshOptions o = lab.Ssh();
  o.known_hosts = kh;
  o.bastion->port = lab.bastion_alt_port;
  SshTransport t(o);
  auto s = t.Check(lab.Host(0));
  EXPECT_TRUE(s) << s.error().message;
  // The same key on port 22 is not the [addr]:port entry: refused as unknown.
  o.bastion->port = 22;
  SshTransport t22(o);
  auto refused = t22.Check(lab.Host(0));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("is not in known_hosts"), std::string::npos) << refused.error().message;
}

TEST(LabSshTransport, SshConfigHostHostNameUserPortIdentityJumpAndKnownHosts) {
  SP_REQUIRE_LAB(lab);
  TempDir tmp("sp-cfg");
  const std::string cfg = tmp.path() + "/config";
  WriteFile(cfg,
            "Host office-bastion\n"
            "  HostName " + lab.bastion + "\n"
            "  User deploy\n"
            "  Port " + std::to_string(lab.bastion_alt_port) + "\n"
            "  IdentityFile " + lab.key + "\n"
            "  UserKnownHostsFile " + tmp.path() + "/kh\n"
            "Host app-one\n"
            "  HostName " + lab.hosts[0].address + "\n"
            "  User deploy\n"
            "  Port 22\n"
            "  IdentityFile " + lab.key + "\n"
            "  UserKnownHostsFile " + tmp.path() + "/kh\n"
            "  ProxyJump office-bastion\n",
            0600);
  WriteFile(tmp.path() + "/kh",
            "[" + lab.bastion + "]:" + std::to_string(lab.bastion_alt_port) + " " + lab.HostKeyLine("bastion") + "\n" +
                lab.hosts[0].address + " " + lab.HostKeyLine("h1") + "\n",
            0600);
  SshOptions o;  // No bastion, key, user or known_hosts of our own: all from the file.
  o.config_file = cfg;
  SshTransport t(o);
  auto r = t.Run(HostRef{"app-one", "app-one", "", 22}, Cmd({"sh", "-c", "id -un; cat /proc/self/net/fib_trie"}));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->ok()) << r->Describe();
  EXPECT_TRUE(StartsWith(r->out, "deploy\n"));
  EXPECT_NE(r->out.find(lab.hosts[0].address), std::string::npos);
}

TEST(LabSshTransport, KeysFromSshAgent) {
  SP_REQUIRE_LAB(lab);
  TempDir tmp("sp-agent");
  const std::string sock = tmp.path() + "/agent.sock";
  Daemon agent({"ssh-agent", "-D", "-a", sock}, tmp.path() + "/agent.log");
  ASSERT_TRUE(WaitFor([&] { return FileExists(sock); }, milliseconds(5000)));
  ASSERT_EQ(::sp::test::Run({"env", "SSH_AUTH_SOCK=" + sock, "ssh-add", "-q", lab.key}), 0);
  ::setenv("SSH_AUTH_SOCK", sock.c_str(), 1);
  SshOptions o = lab.Ssh();
  o.identity_file.clear();  // Only the agent has the key.
  SshTransport t(o);
  auto s = t.Check(lab.Host(0));
  ::unsetenv("SSH_AUTH_SOCK");
  EXPECT_TRUE(s) << s.error().message;
}

TEST(LabSshTransport, OfficeReachesOnlyTheBastionYetForwardsReachTheLbApi) {
  SP_REQUIRE_LAB(lab);
  EXPECT_EQ(ConnectErrno(lab.bastion, 22), 0);
  for (const auto& h : lab.hosts) {
    EXPECT_NE(ConnectErrno(h.address, 22), 0) << h.name << " is reachable from the office";
  }
  EXPECT_NE(ConnectErrno(lab.lb_api_address, lab.lb_api_port), 0) << "HAProxy API reachable from the office";
  EXPECT_NE(ConnectErrno(lab.lb, lab.lb_api_port), 0) << "HAProxy API on the LB's office address";
  SshTransport t(lab.Ssh());
  auto sock = t.Forward(lab.lb_api_address, lab.lb_api_port);
  ASSERT_TRUE(sock) << sock.error().message;
  // HAProxy's runtime API through the bastion, as the LB adapter will use it.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock->c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  const char cmd[] = "show info\n";
  ASSERT_EQ(::write(fd, cmd, sizeof cmd - 1), static_cast<ssize_t>(sizeof cmd - 1));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(fd);
  EXPECT_NE(out.find("Name: HAProxy"), std::string::npos) << out;
}

// The lab script's own promises (tests/lab/lab): `up` first sweeps leftovers
// with its prefix and routes the whole lab range to `unreachable` in the
// office (reference-counted: a holder per lab directory), so nothing meant for
// a lab host can leave by the default route; `down` removes everything of its
// lab and its hold on the route, and leaves other labs' hold alone.
TEST(LabScript, UpSweepsLeftoversTheRangeIsUnreachableAndDownRemovesEverything) {
  SP_REQUIRE_LAB(lab);  // The shared lab holds the route too.
  const std::string script = std::string(SP_SOURCE_DIR) + "/tests/lab/lab";
  TempDir tmp("sp-labscript");
  const std::string dir = tmp.path() + "/lab";
  auto text = [](std::vector<std::string> argv) {
    std::string out;
    (void)::sp::test::Run(argv, &out);
    return out;
  };
  // Leftovers of a lab of this prefix that died without `down`.
  (void)::sp::test::Run({script, "sweep", "--prefix", "spls"});
  ASSERT_EQ(::sp::test::Run({"ip", "netns", "add", "spls-h9"}), 0);
  ASSERT_EQ(::sp::test::Run({"ip", "link", "add", "spls-o9", "type", "veth", "peer", "name", "spls-p9"}), 0);

  ASSERT_EQ(::sp::test::Run({script, "up", "--dir", dir, "--prefix", "spls", "--net", "10.213.31", "--hosts", "1"}), 0);
  std::string netns = text({"ip", "netns", "list"});
  EXPECT_EQ(netns.find("spls-h9"), std::string::npos) << "leftover namespace not swept:\n" << netns;
  EXPECT_NE(netns.find("spls-h1"), std::string::npos) << netns;
  EXPECT_EQ(text({"ip", "-o", "link", "show"}).find("spls-o9"), std::string::npos) << "leftover link not swept";
  EXPECT_NE(text({"ip", "-4", "route", "show", "type", "unreachable"}).find("10.213.0.0/16"), std::string::npos);
  std::string get;
  EXPECT_NE(::sp::test::Run({"ip", "route", "get", "10.213.31.99"}, &get), 0)
      << "an unused lab address must have no route out of the office: " << get;
  EXPECT_NE(ReadFile("/run/sallyport-lab/holders").find(dir), std::string::npos);

  ASSERT_EQ(::sp::test::Run({script, "down", "--dir", dir}), 0);
  EXPECT_EQ(text({"ip", "netns", "list"}).find("spls-"), std::string::npos);
  EXPECT_EQ(text({"ip", "-o", "link", "show"}).find("spls-"), std::string::npos);
  EXPECT_FALSE(FileExists(dir));
  EXPECT_EQ(ReadFile("/run/sallyport-lab/holders").find(dir), std::string::npos);
  // The shared lab still holds the route, so it stays.
  EXPECT_NE(text({"ip", "-4", "route", "show", "type", "unreachable"}).find("10.213.0.0/16"), std::string::npos);
  EXPECT_NE(::sp::test::Run({"ip", "route", "get", lab.hosts[0].address}), 0);
}

}  // namespace
}  // namespace sp::test
