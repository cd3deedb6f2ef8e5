// ssh_libssh_probe: per-command latency of a native libssh client, direct and
// through an SSH bastion (direct-tcpip channel + socketpair-backed inner
// session), in the Sallyport network-namespace test lab.
//
// Not part of the CMake build (libssh is not a Sallyport dependency). Build:
//   apt-get install -y --no-install-recommends libssh-dev      # Debian 12: 0.10.6
//   g++ -O2 -std=c++20 -Wall -o /tmp/ssh_libssh_probe bench/ssh_libssh_probe.cc -lssh -lpthread
// Run (root; the lab must be up, the probe reads DIR/lab.env for the bastion,
// key and known_hosts):
//   tests/lab/lab up --dir /tmp/lab-libssh --prefix spls --net 10.213.9 --hosts 2
//   /tmp/ssh_libssh_probe --lab /tmp/lab-libssh [--iters 200] [--case all|1|2|3|4|cold|3x]
//                         [--host 10.213.9.11] [--trace]
//   tests/lab/lab down --dir /tmp/lab-libssh
// --trace: 5 iterations with per-step timings (open/exec/read-to-EOF/exit
// status/close) and, for the jump cases, the pump's timeline of chunks.
//
// Each measured command is `true`: channel new + open session, exec, read
// stdout to EOF, get exit status, close + free, on an already authenticated
// session. Reported: median and p95 wall time in ms over --iters iterations.
//
// Cases
//   1  libssh direct to the bastion, default options
//   2  libssh direct to the bastion, SSH_OPTIONS_NODELAY=1
//   3  libssh to the app host through the bastion: outer session (NODELAY=1)
//      to the bastion, direct-tcpip channel to HOST:22, inner session on one
//      end of a socketpair (SSH_OPTIONS_FD), event-driven pump thread between
//      the other end and the channel (the pump thread is the only user of the
//      outer session once started). Inner host key checked against the lab
//      known_hosts (ssh_session_is_known_server).
//   4  as 3, plus the fix: the pump sets TCP_QUICKACK on the outer socket
//      after each drain of it.
//   3x investigation variants: outer without NODELAY (with/without
//      QUICKACK), one exec on the outer connection first, inner EOF sent
//      right after exec.
//   cold  time to a first command on a fresh connection: direct (TCP + kex +
//      auth + `true`) and through the bastion (outer kex + auth + forward +
//      inner kex + auth + `true`, with the case-4 pump).
//
// Findings (lab, Debian 12, libssh 0.10.6, OpenSSH 9.2p1 sshd):
//   Case 1 (~44 ms): client-side Nagle. ssh_channel_close writes EOF and
//   CLOSE as two packets and the next command's CHANNEL_OPEN follows; sshd
//   answers nothing to EOF/CLOSE and delays its ACK (40 ms), so the OPEN waits.
//   SSH_OPTIONS_NODELAY removes it (case 2, ~2 ms).
//   Case 3 (~44 ms, stall inside "read to EOF"): server-side Nagle on the
//   bastion -> office hop. sshd sets TCP_NODELAY on a client connection only
//   when a session runs a command (ssh_packet_set_interactive); a connection
//   that carries only direct-tcpip channels never gets it (strace: NODELAY is
//   set on the bastion's socket to the app host, never on the one to the
//   office). The app host answers exec with CHANNEL_SUCCESS+WINDOW_ADJUST
//   (72 B) and ~2 ms later exit-status+EOF+CLOSE (124 B); the bastion
//   forwards them as two CHANNEL_DATA writes (108 B, 164 B). The office side
//   has nothing to send after the first (the inner session just waits), so
//   its kernel delays the ACK ~40 ms and the bastion's kernel holds the
//   second segment until then (ss -ti on the bastion: unacked:1 notsent:164).
//   OpenSSH's ProxyJump escapes by accident: its client sends EOF right after
//   exec (stdin is /dev/null), and that segment carries the ACK.
//   Fix (case 4, ~2 ms): TCP_QUICKACK on the outer socket after each read.
#include <libssh/libssh.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string bastion = "10.213.9.250";
  std::string host = "10.213.9.11";
  std::string user = "deploy";
  std::string key;
  std::string known_hosts;
  int iters = 200;
  std::string which = "all";
  bool trace = false;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

[[noreturn]] void Die(const std::string& what, ssh_session s = nullptr) {
  throw std::runtime_error(what + (s ? std::string(": ") + ssh_get_error(s) : std::string()));
}

ssh_key g_key = nullptr;

// Verify the server's host key against Config::known_hosts (plain entries).
void CheckHostKey(ssh_session s, const char* host) {
  enum ssh_known_hosts_e k = ssh_session_is_known_server(s);
  if (k != SSH_KNOWN_HOSTS_OK) Die(std::string("host key of ") + host + " not verified (" + std::to_string(k) + ")", s);
}

void Authenticate(ssh_session s) {
  if (ssh_userauth_publickey(s, nullptr, g_key) != SSH_AUTH_SUCCESS) Die("publickey auth", s);
}

ssh_session NewSession(const Config& c, const std::string& host, bool nodelay, socket_t* fd) {
  ssh_session s = ssh_new();
  if (!s) Die("ssh_new");
  int port = 22, verbosity = SSH_LOG_NOLOG, nd = nodelay ? 1 : 0;
  ssh_options_set(s, SSH_OPTIONS_HOST, host.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  ssh_options_set(s, SSH_OPTIONS_USER, c.user.c_str());
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, c.known_hosts.c_str());
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  bool process_config = false;
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &process_config);
  if (nodelay) ssh_options_set(s, SSH_OPTIONS_NODELAY, &nd);
  if (fd) ssh_options_set(s, SSH_OPTIONS_FD, fd);
  return s;
}

ssh_session ConnectDirect(const Config& c, const std::string& host, bool nodelay) {
  ssh_session s = NewSession(c, host, nodelay, nullptr);
  if (ssh_connect(s) != SSH_OK) Die("connect " + host, s);
  CheckHostKey(s, host.c_str());
  Authenticate(s);
  return s;
}

// Per-step timing of one command, for --trace.
struct Steps {
  double open = 0, exec = 0, read = 0, status = 0, close = 0;
};

// One command: open channel, exec, read to EOF, exit status, close.
// eof_after_exec: send our EOF as soon as exec is confirmed (what OpenSSH
// does when stdin is /dev/null) instead of from ssh_channel_close.
double RunTrue(ssh_session s, Steps* st = nullptr, bool eof_after_exec = false) {
  auto t0 = Clock::now();
  ssh_channel ch = ssh_channel_new(s);
  if (!ch) Die("channel_new", s);
  if (ssh_channel_open_session(ch) != SSH_OK) Die("open_session", s);
  auto t1 = Clock::now();
  if (ssh_channel_request_exec(ch, "true") != SSH_OK) Die("exec", s);
  if (eof_after_exec && ssh_channel_send_eof(ch) != SSH_OK) Die("send_eof", s);
  auto t2 = Clock::now();
  char buf[4096];
  for (;;) {
    int n = ssh_channel_read(ch, buf, sizeof buf, 0);
    if (n < 0) Die("read", s);
    if (n == 0 && ssh_channel_is_eof(ch)) break;
  }
  auto t3 = Clock::now();
  int rc = ssh_channel_get_exit_status(ch);
  if (rc != 0) Die("exit status " + std::to_string(rc), s);
  auto t4 = Clock::now();
  ssh_channel_close(ch);
  ssh_channel_free(ch);
  auto t5 = Clock::now();
  if (st) *st = {Ms(t1 - t0), Ms(t2 - t1), Ms(t3 - t2), Ms(t4 - t3), Ms(t5 - t4)};
  return Ms(t5 - t0);
}

// ------------------------------------------------------------------ jump
struct PumpOptions {
  bool outer_nodelay = true;
  // The fix: TCP_QUICKACK on the outer socket each time the pump has drained
  // it, so the office ACKs the bastion's segments at once instead of after
  // the ~40 ms delayed-ACK timer (the bastion's sshd sends on that socket
  // with Nagle on, see the header).
  bool quickack = false;
  // Alternative fix, needs a shell on the bastion: run one `true` on the outer
  // connection first; sshd then calls ssh_packet_set_interactive() and sets
  // TCP_NODELAY on its socket to the office for the rest of the connection.
  bool outer_exec = false;
};

struct PumpEvent {
  double t;
  char dir;  // '>' inner->channel, '<' channel->inner
  int bytes;
};

// Outer session + forward channel + pump thread + inner session on a socketpair.
class Jump {
 public:
  Jump(const Config& c, const PumpOptions& o) : opt_(o) {
    outer_ = ConnectDirect(c, c.bastion, o.outer_nodelay);
    if (o.outer_exec) RunTrue(outer_);
    chan_ = ssh_channel_new(outer_);
    if (!chan_) Die("channel_new", outer_);
    if (ssh_channel_open_forward(chan_, c.host.c_str(), 22, "127.0.0.1", 0) != SSH_OK) Die("open_forward", outer_);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) Die("socketpair");
    inner_fd_ = sv[0];
    pump_fd_ = sv[1];
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    t0_ = Clock::now();
    // From here on only the pump thread touches outer_ and chan_.
    pump_ = std::thread([this] { Pump(); });
    socket_t fd = inner_fd_;
    inner_ = NewSession(c, c.host, false, &fd);  // NODELAY is meaningless on AF_UNIX
    if (ssh_connect(inner_) != SSH_OK) Die("inner connect", inner_);
    CheckHostKey(inner_, c.host.c_str());
    Authenticate(inner_);
  }
  ~Jump() {
    ssh_disconnect(inner_);  // closes inner_fd_
    ssh_free(inner_);
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof one) < 0) perror("eventfd");
    pump_.join();
    close(pump_fd_);
    close(stop_fd_);
    // The pump thread has ended: this thread may now use the outer session.
    ssh_channel_free(chan_);
    ssh_disconnect(outer_);
    ssh_free(outer_);
  }
  ssh_session inner() { return inner_; }
  std::vector<PumpEvent> TakeEvents() {
    std::vector<PumpEvent> e;
    e.swap(events_);
    return e;
  }
  void StartRecording() {
    t0_ = Clock::now();
    recording_ = true;
  }
  std::atomic<bool> recording_{false};

 private:
  void Record(char dir, int n) {
    if (recording_ && events_.size() < 100000) events_.push_back({Ms(Clock::now() - t0_), dir, n});
  }
  static void WriteAll(int fd, const char* p, size_t n) {
    while (n) {
      ssize_t w = write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error("pump write to socketpair failed");
      }
      p += w;
      n -= size_t(w);
    }
  }
  // Event-driven pump: blocks in poll() on the socketpair, the outer socket
  // and a stop eventfd (no timeout, so no polling latency); forwards every
  // chunk as soon as it is read.
  void Pump() {
    char buf[65536];
    int outer_fd = ssh_get_fd(outer_);
    bool eof_sent = false;
    try {
      for (;;) {
        // 1) Deliver whatever libssh has decoded for the channel (this also
        //    reads the outer socket, non-blocking).
        for (;;) {
          int n = ssh_channel_read_nonblocking(chan_, buf, sizeof buf, 0);
          if (n == SSH_ERROR) throw std::runtime_error("channel read");
          if (n <= 0) break;  // 0 = nothing now, SSH_EOF = remote eof
          Record('<', n);
          WriteAll(pump_fd_, buf, size_t(n));
        }
        if (opt_.quickack) {
          // Flushes an ACK the kernel is holding back for the delayed-ACK
          // timer and leaves pingpong mode (the flag is not sticky: set it
          // after every read).
          int one = 1;
          setsockopt(outer_fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        }
        if (ssh_channel_is_eof(chan_) && !eof_sent) {
          shutdown(pump_fd_, SHUT_WR);
          eof_sent = true;
        }
        // 2) Wait for the inner session, the outer socket or stop.
        pollfd p[3] = {{pump_fd_, POLLIN, 0}, {outer_fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        if (poll(p, 3, -1) < 0 && errno != EINTR) throw std::runtime_error("poll");
        if (p[2].revents) return;
        if (p[0].revents & (POLLIN | POLLHUP)) {
          ssize_t n = read(pump_fd_, buf, sizeof buf);
          if (n < 0 && errno != EINTR && errno != EAGAIN) throw std::runtime_error("socketpair read");
          if (n == 0) {  // inner session gone: half-close the forward, wait for stop
            ssh_channel_send_eof(chan_);
            uint64_t v;
            if (read(stop_fd_, &v, sizeof v) < 0) perror("eventfd");
            return;
          }
          if (n > 0) {
            Record('>', int(n));
            if (ssh_channel_write(chan_, buf, uint32_t(n)) != n) throw std::runtime_error("channel write");
          }
        }
        // p[1] readable: loop; ssh_channel_read_nonblocking processes the packets.
      }
    } catch (const std::exception& e) {
      fprintf(stderr, "pump: %s: %s\n", e.what(), ssh_get_error(outer_));
      shutdown(pump_fd_, SHUT_RDWR);
    }
  }

  PumpOptions opt_;
  ssh_session outer_ = nullptr, inner_ = nullptr;
  ssh_channel chan_ = nullptr;
  int inner_fd_ = -1, pump_fd_ = -1, stop_fd_ = -1;
  std::thread pump_;
  Clock::time_point t0_;
  std::vector<PumpEvent> events_;  // written by the pump thread only while recording
};

// ------------------------------------------------------------------ stats
struct Stat {
  double med, p95, min, max;
};
Stat Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))]; };
  return {at(0.5), at(0.95), v.front(), v.back()};
}

void Report(const char* name, const std::vector<double>& v) {
  Stat s = Summarize(v);
  printf("%-58s n=%-4zu median %7.2f ms  p95 %7.2f ms  (min %.2f, max %.2f)\n", name, v.size(), s.med, s.p95,
         s.min, s.max);
  fflush(stdout);
}

void ReportSteps(const std::vector<Steps>& st) {
  std::vector<double> a, b, c, d, e;
  for (auto& s : st) {
    a.push_back(s.open), b.push_back(s.exec), c.push_back(s.read), d.push_back(s.status), e.push_back(s.close);
  }
  auto m = [](std::vector<double> v) { return Summarize(std::move(v)); };
  printf("    steps median/p95 ms: open %.2f/%.2f  exec %.2f/%.2f  read-to-eof %.2f/%.2f  exit-status %.2f/%.2f  "
         "close+free %.2f/%.2f\n",
         m(a).med, m(a).p95, m(b).med, m(b).p95, m(c).med, m(c).p95, m(d).med, m(d).p95, m(e).med, m(e).p95);
}

std::vector<double> Loop(ssh_session s, int iters, bool trace, bool eof_after_exec = false) {
  std::vector<double> v;
  std::vector<Steps> st;
  RunTrue(s);  // warm-up
  for (int i = 0; i < iters; ++i) {
    Steps x;
    v.push_back(RunTrue(s, &x, eof_after_exec));
    st.push_back(x);
  }
  if (trace) ReportSteps(st);
  return v;
}

void CaseDirect(const Config& c, bool nodelay, const char* name) {
  ssh_session s = ConnectDirect(c, c.bastion, nodelay);
  Report(name, Loop(s, c.iters, c.trace));
  ssh_disconnect(s);
  ssh_free(s);
}

void CaseJump(const Config& c, const PumpOptions& o, const char* name, bool eof_after_exec = false) {
  Jump j(c, o);
  RunTrue(j.inner());
  if (c.trace) j.StartRecording();
  auto v = Loop(j.inner(), c.trace ? 5 : c.iters, c.trace, eof_after_exec);
  j.recording_ = false;
  Report(name, v);
  if (c.trace) {
    // Pump timeline of the traced commands: time (ms), direction, bytes.
    for (auto& e : j.TakeEvents()) printf("    %9.3f %c %d\n", e.t, e.dir, e.bytes);
  }
}

void CaseCold(const Config& c) {
  int n = std::max(1, std::min(c.iters, 20));
  std::vector<double> direct, jump;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    ssh_session s = ConnectDirect(c, c.bastion, true);
    RunTrue(s);
    direct.push_back(Ms(Clock::now() - t0));
    ssh_disconnect(s);
    ssh_free(s);
  }
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    PumpOptions o;
    o.quickack = true;
    {
      Jump j(c, o);
      RunTrue(j.inner());
      jump.push_back(Ms(Clock::now() - t0));
    }
  }
  Report("cold: libssh connect+auth+`true`, direct to bastion", direct);
  Report("cold: libssh connect+auth+fwd+inner connect+auth+`true`", jump);
}

Config ParseArgs(int argc, char** argv) {
  Config c;
  std::string lab;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
      return argv[++i];
    };
    if (a == "--lab") lab = next();
    else if (a == "--iters") c.iters = std::stoi(next());
    else if (a == "--case") c.which = next();
    else if (a == "--host") c.host = next();
    else if (a == "--bastion") c.bastion = next();
    else if (a == "--trace") c.trace = true;
    else throw std::runtime_error("unknown argument " + a);
  }
  if (lab.empty()) throw std::runtime_error("--lab DIR is required (the lab's directory, holding lab.env)");
  std::ifstream env(lab + "/lab.env");
  std::map<std::string, std::string> kv;
  for (std::string line; std::getline(env, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (kv.count("LAB_BASTION")) c.bastion = kv["LAB_BASTION"];
  c.key = kv["LAB_KEY"];
  c.known_hosts = kv["LAB_KNOWN_HOSTS"];
  if (c.key.empty() || c.known_hosts.empty()) throw std::runtime_error("no LAB_KEY/LAB_KNOWN_HOSTS in " + lab);
  return c;
}

}  // namespace

int main(int argc, char** argv) try {
  Config c = ParseArgs(argc, argv);
  ssh_init();
  if (ssh_pki_import_privkey_file(c.key.c_str(), nullptr, nullptr, nullptr, &g_key) != SSH_OK)
    Die("import key " + c.key);
  auto want = [&](const char* w) { return c.which == "all" || c.which == w; };
  printf("libssh %s, %d iterations, bastion %s, host %s\n", ssh_version(0), c.iters, c.bastion.c_str(),
         c.host.c_str());
  if (want("1")) CaseDirect(c, false, "1 direct to bastion, default options");
  if (want("2")) CaseDirect(c, true, "2 direct to bastion, NODELAY");
  if (want("3")) CaseJump(c, PumpOptions{}, "3 via bastion (outer NODELAY), plain pump");
  if (want("4")) {
    PumpOptions o;
    o.quickack = true;
    CaseJump(c, o, "4 via bastion (outer NODELAY), pump sets TCP_QUICKACK");
  }
  if (c.which == "3x") {  // investigation variants
    PumpOptions o;
    o.outer_nodelay = false;
    CaseJump(c, o, "3x via bastion, outer WITHOUT NODELAY, plain pump");
    o.quickack = true;
    CaseJump(c, o, "3x via bastion, outer WITHOUT NODELAY, QUICKACK");
    PumpOptions e;
    e.outer_exec = true;
    CaseJump(c, e, "3x via bastion, one exec on outer first (sshd NODELAY)");
    CaseJump(c, PumpOptions{}, "3x via bastion, plain pump, inner EOF right after exec", true);
  }
  if (want("cold")) CaseCold(c);
  ssh_key_free(g_key);
  ssh_finalize();
  return 0;
} catch (const std::exception& e) {
  fprintf(stderr, "ssh_libssh_probe: %s\n", e.what());
  return 1;
}
