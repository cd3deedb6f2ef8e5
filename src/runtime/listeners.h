// Who holds a TCP port on a host (issue 20: success is proven on the
// instance that was started). For the runtimes' Listeners: a fixed script that
// reads the host's listening sockets from /proc/net/tcp{,6} and finds the
// processes holding each, and its parser. Header-only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/text.h"
#include "runtime/runtime.h"

namespace sp {

// sp_kids PID: adds PID's descendants to $sp_cands (the candidates below).
inline constexpr char kKidsFn[] = R"SH(
sp_kids() {
  sp_kl=
  { read -r sp_kl < "/proc/$1/task/$1/children"; } 2>/dev/null
  for sp_k in $sp_kl; do
    sp_cands="$sp_cands $sp_k"
    sp_kids "$sp_k"
  done
}
)SH";

// $1: the port as 4 upper-case hex digits; $sp_cands (may be empty): pids to
// look at first (the instances' processes). For each socket listening on
// the port (IPv4 or IPv6) prints one line per process holding it:
//   "@listen <inode> <pid> <pgid> <cgroups joined by |> <comm>"
// and "@listen <inode> - - - -" when no visible process holds it (another
// user's, without the rights to see it). Prints nothing when none listens.
// Cheap on the common path: one grep for the port's sockets, one `ls` of the
// candidates' descriptors; a `find` over every process only for a socket
// no candidate holds (a stray, to be named).
inline constexpr char kListenersScript[] = R"SH(
sp_hex=$1
sp_inodes=$(grep -h -e ":$sp_hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null | while read -r sp_sl sp_local sp_rem sp_st sp_rest; do
  [ "$sp_st" = 0A ] || continue
  case $sp_local in *:"$sp_hex") ;; *) continue ;; esac
  set -f
  set -- $sp_rest
  set +f
  printf '%s ' "$6"
done)
[ -n "$sp_inodes" ] || exit 0
sp_seen=
sp_holder() {  # pid inode: one @listen line
  { read -r sp_stat < "/proc/$1/stat" && read -r sp_comm < "/proc/$1/comm"; } 2>/dev/null || return 0
  sp_stat=${sp_stat##*) }
  set -f
  set -- "$1" "$2" $sp_stat
  set +f
  sp_cg=
  while read -r sp_c; do sp_cg="$sp_cg${sp_cg:+|}$sp_c"; done < "/proc/$1/cgroup" 2>/dev/null
  printf '@listen %s %s %s %s %s\n' "$2" "$1" "$5" "${sp_cg:--}" "$sp_comm"
  sp_seen="$sp_seen $2 "
}
if [ -n "$sp_cands" ]; then
  set --
  for sp_p in $sp_cands; do set -- "$@" "/proc/$sp_p/fd"; done
  sp_pid=
  while IFS= read -r sp_line; do
    case $sp_line in
      /proc/*/fd:) sp_pid=${sp_line#/proc/}; sp_pid=${sp_pid%%/*} ;;
      *"-> socket:["*)
        sp_i=${sp_line##*socket:\[}
        sp_i=${sp_i%\]}
        case " $sp_inodes" in *" $sp_i "*) [ -n "$sp_pid" ] && sp_holder "$sp_pid" "$sp_i" ;; esac ;;
    esac
  done <<SP_LS
$(ls -l "$@" 2>/dev/null)
SP_LS
fi
sp_rest=
for sp_i in $sp_inodes; do
  case $sp_seen in *" $sp_i "*) ;; *) sp_rest="$sp_rest $sp_i" ;; esac
done
[ -n "$sp_rest" ] || exit 0
set --
for sp_i in $sp_rest; do
  [ $# -gt 0 ] && set -- "$@" -o
  set -- "$@" -lname "socket:\[$sp_i\]"
done
for sp_line in $(find /proc/[0-9]*/fd -maxdepth 1 \( "$@" \) -printf '%h:%l\n' 2>/dev/null); do
  sp_pid=${sp_line#/proc/}
  sp_pid=${sp_pid%%/*}
  sp_i=${sp_line##*:socket:\[}
  sp_i=${sp_i%\]}
  sp_holder "$sp_pid" "$sp_i"
done
for sp_i in $sp_rest; do
  case $sp_seen in *" $sp_i "*) ;; *) printf '@listen %s - - - -\n' "$sp_i" ;; esac
done
exit 0
)SH";

inline std::string PortHex(int port) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04X", port & 0xffff);
  return buf;
}

// One "@listen" line of kListenersScript.
struct SocketHolder {
  std::string inode;
  int64_t pid = 0, pgid = 0;  // 0: no visible holder.
  std::string cgroups, comm;
  std::string Describe() const {
    return pid ? "pid " + std::to_string(pid) + " (" + comm + ")" : "a process not visible to the deploy user";
  }
};

inline std::vector<SocketHolder> ParseListeners(const std::string& out) {
  std::vector<SocketHolder> held;
  for (const auto& line : Split(out, '\n')) {
    if (!StartsWith(line, "@listen ")) continue;
    // Five fields; the last (comm) may hold spaces.
    std::string rest = line.substr(8);
    std::vector<std::string> f;
    for (int k = 0; k < 4; ++k) {
      const size_t sp = rest.find(' ');
      if (sp == std::string::npos) break;
      f.push_back(rest.substr(0, sp));
      rest = rest.substr(sp + 1);
    }
    if (f.size() < 4) continue;
    SocketHolder h;
    h.inode = f[0];
    if (f[1] != "-") {
      h.pid = std::atoll(f[1].c_str());
      h.pgid = std::atoll(f[2].c_str());
      h.cgroups = f[3];
      h.comm = rest;
    }
    held.push_back(std::move(h));
  }
  return held;
}

// The listeners from the holders: one per socket; a socket is an instance's
// when every visible process holding it is (`instance_of` returns the id or "").
template <typename InstanceOf>
std::vector<PortListener> Attribute(const std::vector<SocketHolder>& held, InstanceOf instance_of) {
  std::vector<PortListener> out;
  std::vector<std::string> inodes;
  for (const auto& h : held) {
    size_t at = 0;
    while (at < inodes.size() && inodes[at] != h.inode) ++at;
    const std::string who = h.pid ? instance_of(h) : std::string();
    if (at == inodes.size()) {
      inodes.push_back(h.inode);
      out.push_back(PortListener{who, h.Describe()});
    } else if (out[at].instance != who) {
      out[at].instance.clear();  // Shared with a process that is not the instance's.
      out[at].holder += ", " + h.Describe();
    }
  }
  return out;
}

}  // namespace sp
