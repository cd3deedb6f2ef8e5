// Pure helpers of the SSH transport: how a command becomes the one string an
// sshd hands to the remote login shell, and how ssh's own errors are read.
// No I/O here, so every rule is unit-tested.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/subprocess.h"

namespace sp::ssh {

// 'text' in single quotes, safe for any POSIX shell whatever the bytes.
std::string ShellQuote(const std::string& text);

// The remote command line for `spec`: a fixed PATH (the login shell's start-up
// files are not relied on), optional `cd`, optional remote `timeout`, the
// extra env (through env(1)), then every argv element quoted. Never pastes an
// argument unquoted.
std::string RemoteCommandLine(const CommandSpec& spec);

// The remote deadline: `timeout --kill-after=2 <secs>` wraps the command so
// the remote process dies with the deadline even when the ssh client is
// killed; the local client gets this much longer as a backstop.
inline constexpr Millis kRemoteKillGrace{2000};
inline constexpr Millis kLocalBackstop{5000};

// Exit status 124 from timeout(1) after the deadline means the remote command
// timed out.
inline constexpr int kRemoteTimeoutExit = 124;

// What ssh printed when it could not verify a host key.
struct HostKeyProblem {
  enum Kind { kUnknown, kChanged } kind = kUnknown;
  std::string host;         // As ssh named it ("10.0.0.11", "[10.0.0.11]:2222").
  std::string fingerprint;  // "ssh-ed25519 SHA256:..." when ssh printed it (-v).
  std::string Describe(const std::string& who) const;
};
// Reads ssh's stderr (run with -v so the server key is printed). nullopt when
// the failure is not about host keys.
std::optional<HostKeyProblem> ParseHostKeyProblem(const std::string& ssh_stderr);

// The human part of ssh's stderr: debug lines and banners dropped, last lines kept.
std::string SshErrorText(const std::string& ssh_stderr);

// known_hosts name of a host: "addr" for port 22, else "[addr]:port".
std::string KnownHostsName(const std::string& address, int port);

}  // namespace sp::ssh
