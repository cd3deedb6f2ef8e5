// Host keys for `sallyport hosts trust`: what a host offers, and how that
// compares with a known_hosts file (plain, hashed or [host]:port entries).
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "transport/ssh/ssh_transport.h"

namespace sp::ssh {

struct OfferedKey {
  std::string name;         // known_hosts name: "addr" or "[addr]:port".
  std::string type, key;    // "ssh-ed25519", base64 blob.
  std::string fingerprint;  // "SHA256:..."
  enum State { kNew, kKnown, kChanged } state = kNew;
};

// The keys `address:port` offers, scanned with ssh-keyscan from here, or on
// the bastion through `via` (whose own key is verified) for a jumped host.
Result<std::vector<OfferedKey>> ScanHostKeys(const std::string& address, int port, SshTransport* via,
                                             ProcessRunner& processes = SystemProcesses());

// Sets each key's state against `known_hosts` (ssh-keygen -F: hashed entries too).
void CompareWithKnownHosts(const std::string& known_hosts, std::vector<OfferedKey>* keys,
                           ProcessRunner& processes = SystemProcesses());

// Appends the new keys as plain lines (creating the file 0600).
Status AppendKnownHosts(const std::string& known_hosts, const std::vector<OfferedKey>& keys);

}  // namespace sp::ssh
