// The test lab (tests/lab/lab) as the tests see it: addresses, keys and a way
// to look inside a lab host. The lab is brought up once per ctest run by the
// `lab_up` fixture and described by the file in $SP_LAB_ENV.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::test {

struct LabHost {
  std::string name;     // h1, h2, ...
  std::string address;  // Private address (reachable only through the bastion).
};

struct Lab {
  std::string dir, prefix, net;
  std::string bastion;         // Office-side address of the bastion.
  int bastion_alt_port = 0;    // The bastion's sshd also listens here.
  std::string bastion_private;
  std::string lb;              // Office-side address of the LB (frontends :80 proc, :81 dock).
  std::string lb_api_address;  // HAProxy runtime API, private.
  int lb_api_port = 0;
  std::string registry, registry_push;  // Private (pull) and office (push) addresses "a:port".
  std::string registry_user, registry_password_file;
  std::string registry_certs_d;  // The lab CA in docker's certs.d layout (the registry speaks HTTPS).
  std::string registry_auth;     // "token" (a token server beside it) or "basic".
  std::string registry_token_log;  // The token server's log: one line per token asked.
  std::string key, known_hosts;
  std::vector<LabHost> hosts;
  int docker_hosts = 0;

  // Reads $SP_LAB_ENV; an error says how to bring the lab up.
  static Result<Lab> Load();
  // Bastion, key and known_hosts of the lab; user deploy; no ssh config file.
  SshOptions Ssh() const;
  HostRef Host(size_t i) const;
  // Runs argv inside host `name`'s network and mount namespaces (as root):
  // what the host itself sees. For assertions only.
  int InHost(const std::string& name, const std::vector<std::string>& argv, std::string* out = nullptr) const;
  // The sshd log of a host ("bastion", "lb", "h1", ...).
  std::string SshdLog(const std::string& name) const;
  // How many times `needle` occurs in that log (e.g. "Starting session:").
  int SshdLogCount(const std::string& name, const std::string& needle) const;
  // SHA256 fingerprint of a host's key, "SHA256:...".
  std::string Fingerprint(const std::string& name) const;
  std::string HostKeyLine(const std::string& name) const;  // "ssh-ed25519 AAAA..."
  // Writes <dir>/known_hosts: the lab's, with the entry for `address`
  // replaced by `replacement` (dropped when empty). Returns its path.
  std::string EditedKnownHosts(const std::string& dir, const std::string& address,
                               const std::string& replacement = "") const;

  // inventory.yml: stack demo, deployment integration (network lab) behind
  // the bastion; release web on h1..h3 behind `backend` of the LB's private
  // runtime API. `extra_release`: more release lines (12 spaces indented).
  std::string InventoryYaml(const std::string& backend, const std::string& extra_release = "",
                            const std::string& known_hosts = "") const;
  // HAProxy's view of every server of `backend` (name -> "UP" when in
  // rotation, else its status), through a forward of `ssh` to the private
  // runtime API; {"error": message} when it cannot be read.
  std::map<std::string, std::string> ServerStatus(SshTransport& ssh, const std::string& backend) const;
  // The version lab host i's app on `port` answers on the host's own
  // loopback (seen from inside, over `ssh`); "" when nothing answers.
  std::string VersionOn(SshTransport& ssh, size_t i, int port) const;
};

// known_hosts text with the line whose first field is `address` replaced by
// `replacement` (dropped when empty); blank lines dropped.
std::string ReplaceKnownHost(const std::string& text, const std::string& address, const std::string& replacement);

// In a TEST body: loads the lab or fails the test with the reason.
#define SP_REQUIRE_LAB(var)                                              \
  auto var##_r = ::sp::test::Lab::Load();                                \
  ASSERT_TRUE(var##_r.has_value()) << var##_r.error().message;           \
  const ::sp::test::Lab& var = *var##_r

}  // namespace sp::test
