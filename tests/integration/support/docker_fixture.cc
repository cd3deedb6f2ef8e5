#include "support/docker_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/subprocess.h"
#include "core/text.h"
#include "support/test_ca.h"

namespace sp::test {

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::string TailOfFile(const std::string& path, int lines) { return LastLines(ReadFile(path), lines); }

// Runs argv with extra env; exit code (-1: could not start), stdout and stderr.
int RunWithEnv(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, std::string* out,
               std::string* err, const std::string& stdin_data = "") {
  CommandSpec spec;
  spec.argv = argv;
  spec.env = env;
  spec.stdin_data = stdin_data;
  spec.timeout = milliseconds(300'000);
  auto r = SystemProcesses().Run(spec);
  if (!r) {
    if (err) *err = r.error().message;
    return -1;
  }
  if (out) *out = r->out;
  if (err) *err = r->err;
  return r->ok() ? 0 : (r->signal ? 128 + r->signal : (r->timed_out ? 124 : r->exit_code));
}

// Unmounts (lazily) every mount point at or below `root` in this mount
// namespace, deepest first.
void UnmountUnder(const std::string& root) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::vector<std::string> points;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string id, parent, devno, mroot, point;
    ss >> id >> parent >> devno >> mroot >> point;
    if (point == root || StartsWith(point, root + "/")) points.push_back(point);
  }
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& p : points) ::umount2(p.c_str(), MNT_DETACH);
}

}  // namespace

// ----------------------------------------------------------------- dockerd

Result<std::unique_ptr<DockerdFixture>> DockerdFixture::Start(milliseconds timeout) {
  const std::string dockerd = FindProgram("dockerd", {"/usr/sbin/dockerd", "/usr/bin/dockerd"});
  if (dockerd.empty()) return Err(ErrorCode::kUnavailable, "dockerd not found (Debian package docker.io)");
  if (!FileExists("/usr/bin/docker")) return Err(ErrorCode::kUnavailable, "/usr/bin/docker not found (docker.io)");
  const std::string unshare = FindProgram("unshare", {"/usr/bin/unshare"});
  if (unshare.empty()) return Err(ErrorCode::kUnavailable, "unshare not found (util-linux)");
  if (::geteuid() != 0)
    return Err(ErrorCode::kUnavailable, "dockerd needs root; this test runs as uid " + std::to_string(::geteuid()));
  // The mount point for the private tmpfs must exist on the host; an empty
  // directory there changes nothing for other daemons (they look for the socket).
  std::error_code ec;
  fs::create_directories("/run/containerd", ec);
  if (ec) return Err(ErrorCode::kUnavailable, "mkdir /run/containerd: " + ec.message());

  std::unique_ptr<DockerdFixture> f(new DockerdFixture());
  char tmpl[] = "/tmp/spd-XXXXXX";  // Short on purpose: socket paths.
  if (!::mkdtemp(tmpl)) return Err(ErrorCode::kInternal, std::string("mkdtemp: ") + std::strerror(errno));
  f->root_ = tmpl;
  f->host_ = "unix://" + f->root_ + "/d.sock";
  WriteFile(f->root_ + "/daemon.json", "{}\n", 0600);
  fs::create_directories(f->certs_dir(), ec);
  if (ec) return Err(ErrorCode::kInternal, "mkdir " + f->certs_dir() + ": " + ec.message());
  // Its own /etc/docker (for certs.d) in its mount namespace; the mount point
  // is the machine's (docker-registry's package makes it).
  const bool own_etc = fs::is_directory("/etc/docker");

  // Paths come from mkdtemp ([A-Za-z0-9/-]) and constants: safe in this script.
  const std::string& r = f->root_;
  const std::string script = "mount -t tmpfs -o mode=0711,size=16m sp-containerd /run/containerd && " +
                             (own_etc ? "mount --bind " + r + "/etc-docker /etc/docker && " : std::string()) + "exec " +
                             dockerd +
                             " --config-file " + r + "/daemon.json -H " + f->host_ + " --data-root " + r +
                             "/data --exec-root " + r + "/x --pidfile " + r +
                             "/d.pid --iptables=false --ip-forward=false --ip-masq=false --bridge=none" +
                             " --userland-proxy=false --log-level=warn";
  const std::string log = r + "/dockerd.log";
  const auto t0 = std::chrono::steady_clock::now();
  try {
    f->daemon_ = Daemon({unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script}, log);
  } catch (const std::exception& e) {
    return Err(ErrorCode::kUnavailable, std::string("cannot start dockerd: ") + e.what());
  }
  const StartWait w = WaitForStart(
      f->daemon_, [&] { return f->Docker({"version", "--format", "{{.Server.Version}}"}) == 0; }, timeout,
      milliseconds(50));
  f->startup_time_ = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  if (w != StartWait::kReady) {
    return Err(ErrorCode::kUnavailable,
               std::string(w == StartWait::kDied ? "dockerd exited" : "dockerd did not answer") + " (log " + log +
                   "):\n" + f->LogTail());
  }
  // Its containerd must be the one it supervises under our exec root, and the
  // system path must be empty as dockerd sees it.
  struct stat st;
  if (::stat(f->containerd_socket().c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return Err(ErrorCode::kInternal,
               "dockerd is not using a private containerd: no socket at " + f->containerd_socket());
  }
  const std::string seen = "/proc/" + std::to_string(f->pid()) + "/root/run/containerd/containerd.sock";
  if (FileExists(seen)) {
    return Err(ErrorCode::kInternal, "a system containerd socket is visible to the test dockerd: " + seen);
  }
  return f;
}

Status DockerdFixture::TrustRegistry(const std::string& address, const std::string& ca_file) const {
  if (!fs::is_directory("/etc/docker")) {
    return Err(ErrorCode::kUnavailable, "/etc/docker is missing: the test dockerd cannot be given a registry CA");
  }
  std::error_code ec;
  fs::create_directories(certs_dir() + "/" + address, ec);
  if (ec) return Err(ErrorCode::kInternal, "mkdir " + certs_dir() + "/" + address + ": " + ec.message());
  WriteFile(certs_dir() + "/" + address + "/ca.crt", ReadFile(ca_file));
  return Ok();
}

DockerdFixture::~DockerdFixture() {
  if (daemon_.pid() > 0 && daemon_.Alive()) RemoveAllContainers();
  daemon_.Stop(std::chrono::seconds(20));
  if (root_.empty()) return;
  UnmountUnder(root_);
  std::error_code ec;
  fs::remove_all(root_, ec);
}

DockerOptions DockerdFixture::Options() const {
  DockerOptions o;
  o.docker_bin = docker_bin_;
  o.docker_host = host_;
  o.command_timeout = milliseconds(120'000);
  return o;
}

std::vector<std::string> DockerdFixture::Argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{docker_bin_, "-H", host_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

int DockerdFixture::Docker(const std::vector<std::string>& args, std::string* out,
                           const std::string& stdin_data) const {
  std::string o, e;
  int rc = RunWithEnv(Argv(args), {{"DOCKER_BUILDKIT", "0"}}, &o, &e, stdin_data);
  if (out) *out = o + e;
  return rc;
}

std::string DockerdFixture::DockerOut(const std::vector<std::string>& args) const {
  std::string o, e;
  if (RunWithEnv(Argv(args), {{"DOCKER_BUILDKIT", "0"}}, &o, &e) != 0) return "";
  return Trim(o);
}

std::string DockerdFixture::LogTail(int lines) const { return TailOfFile(root_ + "/dockerd.log", lines); }

void DockerdFixture::RemoveAllContainers() const {
  std::string ids = DockerOut({"ps", "-aq"});
  if (ids.empty()) return;
  std::vector<std::string> args{"rm", "-f"};
  for (const auto& id : Split(ids, '\n')) {
    if (!Trim(id).empty()) args.push_back(Trim(id));
  }
  Docker(args);
}

// ----------------------------------------------------------------- registry

Result<std::unique_ptr<RegistryFixture>> RegistryFixture::Start(std::string user, std::string password,
                                                               const std::optional<RegistryToken>& token) {
  const std::string registry = FindProgram("docker-registry", {"/usr/bin/docker-registry"});
  if (registry.empty())
    return Err(ErrorCode::kUnavailable, "docker-registry not found (Debian package docker-registry)");
  std::unique_ptr<RegistryFixture> f(new RegistryFixture());
  f->dir_ = std::make_unique<TempDir>("sp-registry");
  f->registry_bin_ = registry;
  f->user_ = std::move(user);
  f->password_ = std::move(password);
  const std::string dir = f->dir_->path();
  if (!token) {  // With token auth the token server checks the user.
    const std::string htpasswd = FindProgram("htpasswd", {"/usr/bin/htpasswd"});
    if (htpasswd.empty()) return Err(ErrorCode::kUnavailable, "htpasswd not found (apache2-utils)");
    std::string out, err;
    // bcrypt (-B) is the only scheme the registry accepts; password on stdin (-i).
    if (RunWithEnv({htpasswd, "-B", "-i", "-c", dir + "/htpasswd", f->user_}, {}, &out, &err, f->password_) != 0) {
      return Err(ErrorCode::kInternal, "htpasswd: " + err);
    }
  }
  f->port_ = FreePort();
  WriteFile(dir + "/config.yml",
            "version: 0.1\n"
            "log:\n  level: info\n  accesslog:\n    disabled: true\n"
            "storage:\n  filesystem:\n    rootdirectory: " +
                dir +
                "/data\n  delete:\n    enabled: true\n"
                "http:\n  addr: 127.0.0.1:" +
                std::to_string(f->port_) +
                "\n  secret: sp-test-only\n" +
                (token ? "  tls:\n    certificate: " + token->cert + "\n    key: " + token->key +
                             "\nauth:\n  token:\n    realm: " + token->realm + "\n    service: " + token->service +
                             "\n    issuer: " + token->issuer + "\n    rootcertbundle: " + token->root_ca + "\n"
                       : "auth:\n  htpasswd:\n    realm: sp-test\n    path: " + dir + "/htpasswd\n"),
            0600);
  SP_TRY(f->Resume());
  return f;
}

RegistryFixture::~RegistryFixture() { Stop(); }

void RegistryFixture::Stop() { daemon_.Stop(); }

Status RegistryFixture::Resume() {
  if (daemon_.Alive()) return Ok();
  const std::string dir = dir_->path();
  try {
    daemon_ = Daemon({registry_bin_, "serve", dir + "/config.yml"}, dir + "/registry.log");
  } catch (const std::exception& e) {
    return Err(ErrorCode::kUnavailable, std::string("cannot start docker-registry: ") + e.what());
  }
  const StartWait w = WaitForStart(daemon_, [&] { return PortOpen(port_); }, milliseconds(20'000));
  if (w != StartWait::kReady) {
    return Err(ErrorCode::kUnavailable,
               std::string(w == StartWait::kDied ? "docker-registry exited" : "docker-registry did not listen") +
                   " on " + address() + ":\n" + LogTail());
  }
  return Ok();
}

std::string RegistryFixture::LogTail(int lines) const { return TailOfFile(dir_->path() + "/registry.log", lines); }

// ----------------------------------------------------------------- images

Result<std::string> BuildAndPushSampleImage(const DockerdFixture& docker, const RegistryFixture& registry,
                                            const std::string& repo_tag, const std::string& version) {
  const std::string app = BuildBinary("sp-sample-app");
  if (!FileExists(app)) {
    return Err(ErrorCode::kNotFound, app + " is missing: build it first (ninja sp-sample-app)");
  }
  TempDir ctx("sp-image");
  std::error_code ec;
  fs::copy_file(app, ctx / "sp-sample-app", fs::copy_options::overwrite_existing, ec);
  if (ec) return Err(ErrorCode::kInternal, "copy " + app + ": " + ec.message());
  ::chmod((ctx / "sp-sample-app").c_str(), 0755);
  WriteFile(ctx / "Dockerfile",
            "FROM scratch\n"
            "COPY sp-sample-app /sp-sample-app\n"
            "ENV APP_VERSION=" +
                version +
                "\n"
                "LABEL org.opencontainers.image.version=" +
                version +
                "\n"
                "ENTRYPOINT [\"/sp-sample-app\"]\n");
  const std::string ref = registry.address() + "/" + repo_tag;
  std::string out;
  if (docker.Docker({"build", "-q", "-t", ref, ctx.path()}, &out) != 0) {
    return Err(ErrorCode::kInternal, "docker build " + ref + ": " + out);
  }
  TempDir config("sp-push-config");
  const std::vector<std::string> login{docker.docker_bin(), "--config",        config.path(), "-H",
                                       docker.host(),       "login",           "--username",  registry.user(),
                                       "--password-stdin",  registry.address()};
  std::string o, e;
  if (RunWithEnv(login, {}, &o, &e, registry.password()) != 0) {
    return Err(ErrorCode::kInternal, "docker login " + registry.address() + ": " + e);
  }
  if (RunWithEnv({docker.docker_bin(), "--config", config.path(), "-H", docker.host(), "push", ref}, {}, &o, &e) != 0) {
    return Err(ErrorCode::kInternal, "docker push " + ref + ": " + o + e);
  }
  std::string digest = docker.DockerOut({"image", "inspect", "--format", "{{index .RepoDigests 0}}", ref});
  if (digest.find("@sha256:") == std::string::npos) {
    return Err(ErrorCode::kInternal, "no repo digest for " + ref + " after push: '" + digest + "'");
  }
  return digest;
}

Status RemoveImage(const DockerdFixture& docker, const std::string& ref) {
  std::string id = docker.DockerOut({"image", "inspect", "--format", "{{.Id}}", ref});
  if (id.empty()) return Ok();
  std::string out;
  if (docker.Docker({"rmi", "-f", id}, &out) != 0) return Err(ErrorCode::kInternal, "docker rmi " + id + ": " + out);
  return Ok();
}

// ----------------------------------------------------------------- syslog

SyslogListener::SyslogListener(std::string path) : path_(std::move(path)) {
  sockaddr_un addr{};
  if (path_.size() >= sizeof addr.sun_path) return;
  ::unlink(path_.c_str());
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  ::chmod(path_.c_str(), 0666);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { Loop(); });
}

SyslogListener::~SyslogListener() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

void SyslogListener::Loop() {
  char buf[65536];
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (!fds[0].revents) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) continue;
    std::string line(buf, static_cast<size_t>(n));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\0')) line.pop_back();
    {
      std::lock_guard l(mu_);
      lines_.push_back(std::move(line));
    }
    cv_.notify_all();
  }
}

std::optional<std::string> SyslogListener::WaitForLine(const std::string& substring, milliseconds timeout) {
  std::unique_lock l(mu_);
  std::optional<std::string> found;
  cv_.wait_for(l, timeout, [&] {
    for (const auto& line : lines_) {
      if (line.find(substring) != std::string::npos) {
        found = line;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::vector<std::string> SyslogListener::Lines() const {
  std::lock_guard l(mu_);
  return lines_;
}

// ----------------------------------------------------------------- environment

namespace {
DockerEnvironment* g_environment = nullptr;
}

DockerEnvironment::DockerEnvironment(std::string registry_user, std::string registry_password)
    : user_(std::move(registry_user)), password_(std::move(registry_password)) {
  g_environment = this;
}

DockerEnvironment* DockerEnvironment::Get() { return g_environment; }

void DockerEnvironment::SetUp() {
  auto d = DockerdFixture::Start();
  if (!d) {
    error_ = d.error().message;
    return;
  }
  std::fprintf(stderr, "[docker env] dockerd pid %d ready in %lld ms at %s (containerd %s)\n",
               static_cast<int>((*d)->pid()), static_cast<long long>((*d)->startup_time().count()),
               (*d)->host().c_str(), (*d)->containerd_socket().c_str());
  auto t0 = std::chrono::steady_clock::now();
  const TlsFiles& tls = SharedTls();
  TokenServer::Options to;
  to.user = user_;
  to.password = password_;
  auto tokens = TokenServer::Start(SharedCa(), tls, to);
  if (!tokens) {
    error_ = tokens.error().message;
    return;
  }
  auto r = RegistryFixture::Start(user_, password_, RegistryToken::With((*tokens)->realm(), tls));
  if (!r) {
    error_ = r.error().message;
    return;
  }
  std::fprintf(
      stderr, "[docker env] registry ready in %lld ms at %s\n",
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count()),
      (*r)->address().c_str());
  if (Status trust = (*d)->TrustRegistry((*r)->address(), tls.ca); !trust) {
    error_ = trust.error().message;
    return;
  }
  // What Sallyport (the preflight, in this process and in the CLIs it starts) trusts.
  ::setenv("SALLYPORT_REGISTRY_CERTS_D", (*d)->certs_dir().c_str(), 1);
  docker_ = std::move(*d);
  registry_ = std::move(*r);
  tokens_ = std::move(*tokens);
}

void DockerEnvironment::TearDown() {
  registry_.reset();
  tokens_.reset();
  docker_.reset();
}

bool DockerOptional() {
  const char* v = std::getenv("SP_REQUIRE_DOCKER");
  return v != nullptr && std::string(v) == "0";
}

}  // namespace sp::test
