#include "transport/ssh/host_keys.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/subprocess.h"
#include "core/text.h"
#include "transport/ssh/ssh_command.h"

namespace sp::ssh {

namespace {

std::string FingerprintOf(ProcessRunner& processes, const std::string& type, const std::string& key) {
  CommandSpec s;
  s.argv = {"ssh-keygen", "-l", "-E", "sha256", "-f", "-"};
  s.stdin_data = type + " " + key + "\n";
  s.timeout = Millis(5000);
  auto r = processes.Run(s);
  if (!r || !r->ok()) return "";
  auto parts = Split(Trim(r->out), ' ');
  return parts.size() > 1 ? parts[1] : "";
}

}  // namespace

Result<std::vector<OfferedKey>> ScanHostKeys(const std::string& address, int port, SshTransport* via,
                                             ProcessRunner& processes) {
  if (!IsValidAddress(address)) return Err(ErrorCode::kInvalidArgument, "invalid address '" + address + "'");
  CommandSpec s;
  s.argv = {"ssh-keyscan", "-T", "5", "-p", std::to_string(port), "-t", "ed25519,ecdsa,rsa", address};
  s.timeout = Millis(15'000);
  auto r = via ? via->RunOnBastion(s) : processes.Run(s);
  if (!r) return Err(r.error().Wrap("scan " + address));
  std::vector<OfferedKey> keys;
  for (const std::string& line : Split(r->out, '\n')) {
    auto parts = Split(Trim(line), ' ');
    if (parts.size() < 3 || StartsWith(parts[0], "#")) continue;
    OfferedKey k;
    k.name = KnownHostsName(address, port);
    k.type = parts[1];
    k.key = parts[2];
    k.fingerprint = FingerprintOf(processes, k.type, k.key);
    keys.push_back(k);
  }
  if (keys.empty()) {
    return Err(ErrorCode::kUnavailable, "no host key from " + KnownHostsName(address, port) +
                                            (via ? " (scanned from the bastion)" : "") + ": " +
                                            (r->err.empty() ? r->Describe() : Trim(r->err)));
  }
  return keys;
}

void CompareWithKnownHosts(const std::string& known_hosts, std::vector<OfferedKey>* keys, ProcessRunner& processes) {
  for (OfferedKey& k : *keys) {
    CommandSpec s;
    s.argv = {"ssh-keygen", "-F", k.name, "-f", known_hosts};
    s.timeout = Millis(5000);
    auto r = processes.Run(s);
    k.state = OfferedKey::kNew;
    if (!r || !r->ok()) continue;
    bool same_type = false;
    for (const std::string& line : Split(r->out, '\n')) {
      auto parts = Split(Trim(line), ' ');
      if (parts.size() < 3 || StartsWith(parts[0], "#")) continue;
      if (parts[1] != k.type) continue;
      same_type = true;
      if (parts[2] == k.key) {
        k.state = OfferedKey::kKnown;
        break;
      }
    }
    if (same_type && k.state != OfferedKey::kKnown) k.state = OfferedKey::kChanged;
  }
}

Status AppendKnownHosts(const std::string& known_hosts, const std::vector<OfferedKey>& keys) {
  std::string text;
  for (const OfferedKey& k : keys) text += k.name + " " + k.type + " " + k.key + "\n";
  int fd = ::open(known_hosts.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Err(ErrorCode::kInternal, "open " + known_hosts + ": " + std::strerror(errno));
  ssize_t w = ::write(fd, text.data(), text.size());
  ::fsync(fd);
  ::close(fd);
  if (w != static_cast<ssize_t>(text.size())) return Err(ErrorCode::kInternal, "write " + known_hosts + " failed");
  return Ok();
}

}  // namespace sp::ssh
