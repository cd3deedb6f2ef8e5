// Real Docker for integration tests: a private dockerd, a private registry
// (HTTPS with the test CA and token auth, as real registries run, or htpasswd
// Basic auth), a helper that builds and pushes the sample app image,
// and a syslog receiver.
//
// Isolation: the dockerd runs in its own mount namespace (util-linux
// `unshare --mount`) with an empty tmpfs over /run/containerd, so it can never
// find and attach to a system containerd: it always starts its own, whose
// socket lives under this fixture's exec root. Its overlay mounts stay in that
// namespace too, so nothing is left mounted on the host when it exits. Its
// /etc/docker is this fixture's own directory (bind-mounted in that
// namespace): registries' CAs go to its certs.d, never to the machine's /etc.
#pragma once


#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "runtime/docker/docker_runtime.h"
#include "support/test_util.h"
#include "support/token_server.h"

namespace sp::test {

// A dockerd owned by the test. Everything lives under one short directory in
// /tmp (unix socket paths are limited to ~108 bytes):
//   d.sock (API), data/ (data root), x/ (exec root, holds containerd's socket),
//   d.pid, daemon.json ("{}": no system daemon.json), dockerd.log.
class DockerdFixture {
 public:
  // Starts dockerd and polls until the API answers (at most `timeout`), then
  // checks that its containerd is private. An Error says why it could not
  // (missing binary, not root, the tail of dockerd's log).
  static Result<std::unique_ptr<DockerdFixture>> Start(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Removes all containers, stops dockerd by PID (SIGTERM, then SIGKILL),
  // unmounts anything left under the root and removes it.
  ~DockerdFixture();
  DockerdFixture(const DockerdFixture&) = delete;
  DockerdFixture& operator=(const DockerdFixture&) = delete;

  // "unix:///tmp/spd-XXXXXX/d.sock".
  const std::string& host() const { return host_; }
  const std::string& docker_bin() const { return docker_bin_; }
  // Options for sp::DockerRuntime talking to this engine.
  DockerOptions Options() const;
  // argv: docker -H <host> args...
  std::vector<std::string> Argv(const std::vector<std::string>& args) const;
  // Runs docker with `args`; exit code, stdout+stderr in *out.
  int Docker(const std::vector<std::string>& args, std::string* out = nullptr,
             const std::string& stdin_data = "") const;
  // Like Docker(), but only stdout, trimmed; empty on failure.
  std::string DockerOut(const std::vector<std::string>& args) const;

  pid_t pid() const { return daemon_.pid(); }
  // Its certs.d (what it sees as /etc/docker/certs.d).
  std::string certs_dir() const { return root_ + "/etc-docker/certs.d"; }
  // Makes this engine trust `ca_file` for the registry at `address` (host:port).
  Status TrustRegistry(const std::string& address, const std::string& ca_file) const;
  const std::string& root() const { return root_; }
  // The containerd socket this dockerd uses (under its exec root).
  std::string containerd_socket() const { return root_ + "/x/containerd/containerd.sock"; }
  std::chrono::milliseconds startup_time() const { return startup_time_; }
  std::string LogTail(int lines = 20) const;
  // docker rm -f of every container of this engine.
  void RemoveAllContainers() const;

 private:
  DockerdFixture() = default;
  std::string root_, host_, docker_bin_ = "/usr/bin/docker";
  Daemon daemon_;
  std::chrono::milliseconds startup_time_{0};
};

// Debian's docker-registry (distribution 2.8) on 127.0.0.1:<free port>, with
// filesystem storage and htpasswd (bcrypt) auth for one user over plain HTTP;
// or, with `token`, over HTTPS (the shared test CA) trusting the tokens of
// that token server, which knows the user.
struct RegistryToken {
  std::string realm, service = "sp-test-registry", issuer = "sp-test-issuer";
  std::string root_ca;  // The bundle the token signer's chain ends in.
  std::string cert, key;  // The registry's TLS certificate.
  // Tokens of `realm`; the registry serves `tls`'s certificate and trusts
  // token signers of its CA (as TokenServer::Start(ca, …) issues them).
  static RegistryToken With(std::string realm, const TlsFiles& tls) {
    RegistryToken t;
    t.realm = std::move(realm);
    t.root_ca = tls.ca;
    t.cert = tls.cert;
    t.key = tls.key;
    return t;
  }
};
class RegistryFixture {
 public:
  static Result<std::unique_ptr<RegistryFixture>> Start(std::string user, std::string password,
                                                        const std::optional<RegistryToken>& token = std::nullopt);
  ~RegistryFixture();
  RegistryFixture(const RegistryFixture&) = delete;
  RegistryFixture& operator=(const RegistryFixture&) = delete;

  // "127.0.0.1:<port>".
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  // Ends the registry by PID; storage is kept. Idempotent.
  void Stop();
  // Starts it again on the same port and storage; returns once it accepts connections.
  Status Resume();
  std::string LogTail(int lines = 20) const;

 private:
  RegistryFixture() = default;
  std::unique_ptr<TempDir> dir_;
  std::string user_, password_;
  std::string registry_bin_;
  int port_ = 0;
  Daemon daemon_;
};

// Builds an image FROM scratch holding the sp-sample-app binary (ENTRYPOINT,
// ENV APP_VERSION=<version>), tags it <registry>/<repo_tag>, pushes it (login
// through a temporary --config dir, removed afterwards) and returns
// "<registry>/<repo>@sha256:<digest>".
Result<std::string> BuildAndPushSampleImage(const DockerdFixture& docker, const RegistryFixture& registry,
                                            const std::string& repo_tag, const std::string& version);
// Removes an image and all its tags/digest references from the engine.
Status RemoveImage(const DockerdFixture& docker, const std::string& ref);

// Receives syslog(3) datagrams on an AF_UNIX SOCK_DGRAM socket bound at
// `path` (mode 0666), on a background thread owned by this object.
class SyslogListener {
 public:
  explicit SyslogListener(std::string path);
  ~SyslogListener();
  SyslogListener(const SyslogListener&) = delete;
  SyslogListener& operator=(const SyslogListener&) = delete;
  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  // Waits (on a condition variable, not a sleep) until a received line
  // contains `substring`; returns that line.
  std::optional<std::string> WaitForLine(const std::string& substring, std::chrono::milliseconds timeout);
  std::vector<std::string> Lines() const;

 private:
  void Loop();
  std::string path_;
  int fd_ = -1;
  int wake_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::thread thread_;
};


// One dockerd and one registry for the whole test binary, started before the
// first test and stopped after the last. The registry speaks HTTPS (the
// shared test CA, which the dockerd trusts through its certs.d and
// Sallyport through $SALLYPORT_REGISTRY_CERTS_D) with token auth. Register it with
// ::testing::AddGlobalTestEnvironment(new DockerEnvironment(...)).
class DockerEnvironment : public ::testing::Environment {
 public:
  DockerEnvironment(std::string registry_user, std::string registry_password);
  void SetUp() override;
  void TearDown() override;
  // The single registered instance (nullptr if none).
  static DockerEnvironment* Get();

  bool ready() const { return docker_ && registry_ && tokens_; }
  // Why the engine or registry could not be started.
  const std::string& error() const { return error_; }
  DockerdFixture& docker() { return *docker_; }
  RegistryFixture& registry() { return *registry_; }
  // The registry's token server (what it was asked, and by whom).
  TokenServer& tokens() { return *tokens_; }

 private:
  std::string user_, password_, error_;
  std::unique_ptr<TokenServer> tokens_;
  std::unique_ptr<DockerdFixture> docker_;
  std::unique_ptr<RegistryFixture> registry_;
};

// True when SP_REQUIRE_DOCKER=0: a missing engine skips instead of failing.
bool DockerOptional();

}  // namespace sp::test

// In a test body or SetUp: fails (or, with SP_REQUIRE_DOCKER=0, skips) with the
// reason when the shared Docker environment could not be started.
#define SP_REQUIRE_DOCKER_ENVIRONMENT()                                                                          \
  do {                                                                                                           \
    auto* sp_env_ = ::sp::test::DockerEnvironment::Get();                                                        \
    if (sp_env_ == nullptr || !sp_env_->ready()) {                                                               \
      const std::string sp_why_ = sp_env_ ? sp_env_->error() : std::string("no DockerEnvironment registered");   \
      if (::sp::test::DockerOptional()) GTEST_SKIP() << "SP_REQUIRE_DOCKER=0 and no Docker engine: " << sp_why_; \
      FAIL() << "cannot start a Docker engine for this test (set SP_REQUIRE_DOCKER=0 to skip): " << sp_why_;     \
    }                                                                                                            \
  } while (0)
