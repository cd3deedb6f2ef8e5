// A client of OpenSSH's ControlMaster socket, speaking its multiplexing
// protocol (OpenSSH's PROTOCOL.mux, version 4) directly instead of starting an
// `ssh -S ctl` process per command.
//
// Why: through the bastion, a command on a connected host cost 10.6 ms median
// with an `ssh` client process, of which ~7 ms is only that process starting
// (`ssh -V` alone: 6.8 ms). Over the socket the same command costs ~3 ms
// (docs/benchmarks.md, "SSH transport"). Authentication, host keys, config and
// the jump all stay with the OpenSSH master; this client only asks it for a
// session and hands it the session's stdin/stdout/stderr descriptors.
//
// Framing: every message is a uint32 length then the body; integers are
// big-endian uint32, strings are uint32 length + bytes. File descriptors pass
// as SCM_RIGHTS, one per one-byte message, after the new-session request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"

namespace sp::ssh {

inline constexpr uint32_t kMuxVersion = 4;
inline constexpr uint32_t kMuxHello = 0x00000001;
inline constexpr uint32_t kMuxNewSession = 0x10000002;
inline constexpr uint32_t kMuxAliveCheck = 0x10000004;
inline constexpr uint32_t kMuxTerminate = 0x10000005;
inline constexpr uint32_t kMuxOk = 0x80000001;
inline constexpr uint32_t kMuxPermissionDenied = 0x80000002;
inline constexpr uint32_t kMuxFailure = 0x80000003;
inline constexpr uint32_t kMuxExitMessage = 0x80000004;
inline constexpr uint32_t kMuxAlive = 0x80000005;
inline constexpr uint32_t kMuxSessionOpened = 0x80000006;
inline constexpr uint32_t kMuxTtyAllocFail = 0x80000008;

// Whole framed messages (length prefix included).
std::string MuxHelloMessage();
std::string MuxNewSessionMessage(uint32_t request_id, const std::string& command);
std::string MuxRequestMessage(uint32_t type, uint32_t request_id);  // Alive check, terminate.

// One message body as the master sends it: its type, the integers that type
// carries (request/session id, exit value, pid, version) and, for
// failure/denied, the reason.
struct MuxMessage {
  uint32_t type = 0;
  std::vector<uint32_t> ints;
  std::string reason;
};
// kInvalidArgument for a body too short for its type or of an unknown type.
Result<MuxMessage> ParseMuxMessage(std::string_view body);

// Runs `command` (already a remote command line) in a new session of the
// master at `ctl`. stdin is spec.stdin_data, else the file spec.stdin_path
// (the master reads it), else /dev/null; stdout/stderr are captured and
// spec.on_line gets their lines as they arrive. After `timeout` the session is
// abandoned and the result has timed_out set (the remote side must bound
// itself: see RemoteCommandLine). A session that ends without an exit status
// (signal, or the connection went away) reports exit 255, as ssh does.
// kUnavailable when the master cannot be reached or refuses the session.
Result<ExitStatus> MuxRun(const std::string& ctl, const std::string& command, const CommandSpec& spec,
                          std::optional<Millis> timeout);

// The master's pid when it answers an alive check within `timeout`.
Result<int> MuxAliveCheck(const std::string& ctl, Millis timeout);
// Asks the master to close its connection and exit.
Status MuxTerminate(const std::string& ctl, Millis timeout);

}  // namespace sp::ssh
