#include "runtime/process/process_runtime.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <regex>
#include <utility>

#include "core/text.h"
#include "runtime/listeners.h"
#include "runtime/process/launcher.h"

namespace sp {
namespace {

// ---------------------------------------------------------------------------
// Fixed shell scripts. They are run as: sh -c '<script>' sh ARG1 ARG2 ...
// Outside values only ever arrive as positional arguments or on stdin.
// Exit codes: 3 = not found / not pulled, 4 = conflict (running), other != 0
// = failure with a message on stderr. Scripts that take stdin read all of it
// before anything can fail: a writer whose reader exits early gets SIGPIPE.
// ---------------------------------------------------------------------------

// sp_alive PIDFILE IDFILE: 0 when PIDFILE names a live, non-zombie process
// whose "<starttime> <boot_id>" equals IDFILE's content; sets sp_pid and
// sp_pgid (its process group: start-stop-daemon's setsid makes the group
// private to the app, led by an already-exited intermediate process).
constexpr const char kAliveFn[] = R"SH(
sp_alive() {
  sp_pid=
  sp_pgid=
  [ -f "$1" ] && [ -f "$2" ] || return 1
  { read -r sp_pid < "$1" && read -r sp_want < "$2"; } 2>/dev/null || return 1
  case $sp_pid in ''|*[!0-9]*) return 1 ;; esac
  { read -r sp_stat < "/proc/$sp_pid/stat" && read -r sp_boot < /proc/sys/kernel/random/boot_id; } 2>/dev/null || return 1
  sp_stat=${sp_stat##*) }
  set -f
  set -- $sp_stat
  set +f
  case $1 in Z|X|x) return 1 ;; esac
  [ "${20} $sp_boot" = "$sp_want" ] || return 1
  sp_pgid=$3
}
)SH";

// Scripts that read or change which instance runs hold the host directory's
// lock (flock on <host dir>/.lock, fd 9) for their whole run: a script left
// running by a killed orchestrator (a start waiting for its launcher) is
// waited for, never raced, by the next rollout's reconcile. The launched app
// does not inherit the lock's descriptor. Usage: sp_lock HOST_DIR WAIT_S
// create|existing; with "existing" a missing host directory needs no lock
// (there is nothing to list, stop or remove, and nothing racing on it).
constexpr const char kLockFn[] = R"SH(
sp_lock() {
  if [ "$3" = create ]; then mkdir -p "$1" || return 1; elif [ ! -d "$1" ]; then return 0; fi
  exec 9>>"$1/.lock" || return 1
  flock -w "$2" 9 || { echo "another Sallyport action on this host held $1/.lock for $2 s" >&2; return 1; }
}
)SH";

// $1 release dir, $2 run dir, $3 pid file, $4 id file; stdin: launcher text.
constexpr const char kPrepareScript[] = R"SH(
launcher=$(cat)
if sp_alive "$3" "$4"; then echo "instance is running (pid $sp_pid); stop it first" >&2; exit 4; fi
rm -rf "$1" && mkdir -p "$1" "$2" && printf '%s\n' "$launcher" > "$1/launch" || exit 1
)SH";

// $1 release dir, $2 kind (exe|tar). stdin: N, N lines of cmd, then meta.
constexpr const char kFinishScript[] = R"SH(
input=$(cat)
d=$1
if [ "$2" = tar ]; then
  mkdir "$d/app" && tar -xzf "$d/artifact.tar.gz" -C "$d/app" --no-same-owner || { echo "cannot unpack the artifact" >&2; exit 1; }
  rm -f "$d/artifact.tar.gz"
fi
printf '%s\n' "$input" | {
  IFS= read -r n || exit 1
  case $n in ''|*[!0-9]*) echo "bad command header" >&2; exit 1 ;; esac
  : > "$d/cmd.tmp" || exit 1
  i=0
  while [ "$i" -lt "$n" ]; do
    IFS= read -r a || { echo "short command" >&2; exit 1; }
    printf '%s\n' "$a" >> "$d/cmd.tmp" || exit 1
    i=$((i+1))
  done
  read -r exe < "$d/cmd.tmp"
  [ -f "$exe" ] && [ -x "$exe" ] || { echo "$exe is not an executable file" >&2; exit 3; }
  mv -f "$d/cmd.tmp" "$d/cmd" && cat > "$d/meta.tmp" && mv -f "$d/meta.tmp" "$d/meta" || exit 1
}
)SH";

// $1 host dir, $2 artifact, $3 new release dir, $4 find|copy. Looks for a kept
// release of the same artifact on the host; "copy" copies its app into $3.
// Exit 1: none kept (the artifact must come from its source).
constexpr const char kKeptScript[] = R"SH(
for d in "$1"/releases/*; do
  [ "$d" = "$3" ] && continue
  [ -f "$d/meta" ] && [ -e "$d/app" ] || continue
  grep -qxF -e "artifact=$2" "$d/meta" || continue
  if [ "$4" = copy ]; then cp -a "$d/app" "$3/app" || exit 2; fi
  exit 0
done
exit 1
)SH";

// $1 release dir. Exit 1: not (completely) pulled. Else prints meta.
constexpr const char kHasArtifactScript[] = R"SH(
[ -f "$1/meta" ] && [ -f "$1/cmd" ] || exit 1
read -r exe < "$1/cmd" || exit 1
[ -f "$exe" ] && [ -x "$exe" ] || exit 1
cat "$1/meta"
)SH";

// $1 host dir. Prints "@instance=<id>", the meta lines, "@running=0|1" per release.
constexpr const char kListScript[] = R"SH(
for d in "$1"/releases/*; do
  [ -f "$d/meta" ] || continue
  id=${d##*/}
  printf '@instance=%s\n' "$id"
  cat "$d/meta" || exit 1
  if read -r n < "$d/restarts"; then echo "restarts=$n"; fi 2>/dev/null
  if sp_alive "$1/run/$id.pid" "$1/run/$id.id"; then echo '@running=1'; else echo '@running=0'; fi
done
exit 0
)SH";

// $1 release dir, $2 pid file, $3 id file, $4 new|again. stdin (new): env file.
// Waits up to 5 s for the launcher to record its identity; prints meta.
constexpr const char kStartScript[] = R"SH(
[ "$4" = new ] && env_text=$(cat)
d=$1
[ -f "$d/meta" ] && [ -f "$d/cmd" ] && [ -f "$d/launch" ] || { echo "release $d is not pulled" >&2; exit 3; }
if sp_alive "$2" "$3"; then echo "already running (pid $sp_pid)" >&2; exit 4; fi
if [ "$4" = new ]; then
  rm -f "$d/env.tmp" && (umask 077 && printf '%s\n' "$env_text" > "$d/env.tmp") && mv -f "$d/env.tmp" "$d/env" || exit 1
fi
[ -f "$d/env" ] || { echo "release $d has no env file: its supervisor ended without being told to stop (kill -9, a reboot), and a running instance's env rests in no file; a new rollout starts it again" >&2; exit 3; }
rm -f "$2" "$3" || exit 1
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin start-stop-daemon --start --quiet \
  --background --make-pidfile --pidfile "$2" --chdir "$d" --output "$d/out.log" \
  --startas /bin/sh -- "$d/launch" "$3" 9>&- || exit 1
i=0
while [ ! -f "$3" ]; do
  if [ "$i" -ge 250 ]; then echo "the launcher did not start:" >&2; tail -n 5 "$d/out.log" >&2; exit 1; fi
  sleep 0.02
  i=$((i+1))
done
cat "$d/meta"
)SH";

// $1 pid file, $2 id file, $3 SIGTERM grace in 5 ms ticks (polled finely: an
// app that exits at once on SIGTERM must not cost a coarse poll interval),
// $4 the release dir (its `supervisor` file).
// SIGTERM goes to the app; SIGKILL (after the grace) to its whole process
// group, and once the app is gone any strays left in that group are killed.
// The group is only signalled when it is not this shell's own group.
constexpr const char kStopScript[] = R"SH(
if ! sp_alive "$1" "$2"; then rm -f "$1" "$2"; exit 0; fi
pid=$sp_pid
pgid=$sp_pgid
{ read -r self < /proc/self/stat; } 2>/dev/null
self=${self##*) }
set -f
set -- "$1" "$2" "$3" $self
set +f
case $pgid in ''|*[!0-9]*|0|1) pgid= ;; esac
[ "$pgid" = "$6" ] && pgid=
i=0
spin=0
# A supervisor (it wrote its pid in the release's `supervisor` file) is told
# to stop supervising (USR1) and its app gets SIGTERM straight away, as an
# app started by an older launcher (the pid file's process itself) does.
sup=
{ read -r sup < "$4/supervisor"; } 2>/dev/null
if [ "$sup" = "$pid" ]; then
  kids=
  { read -r kids < "/proc/$pid/task/$pid/children"; } 2>/dev/null
  kill -s USR1 "$pid" 2>/dev/null
  for k in $kids; do kill -s TERM "$k" 2>/dev/null; done
else
  kill -s TERM "$pid" 2>/dev/null
fi
while sp_alive "$1" "$2"; do
  if [ "$i" -ge "$3" ]; then
    kill -s KILL "$pid" 2>/dev/null
    [ -n "$pgid" ] && kill -s KILL -- "-$pgid" 2>/dev/null
    j=0
    while sp_alive "$1" "$2"; do
      if [ "$j" -ge 100 ]; then echo "pid $pid survived SIGKILL for 5s" >&2; exit 1; fi
      sleep 0.05
      j=$((j+1))
    done
    break
  fi
  # The first checks spin (builtins only): an app that exits at once, and its
  # supervisor right after it, cost no sleep's process start.
  if [ "$spin" -lt 40 ]; then spin=$((spin+1)); continue; fi
  sleep 0.005
  i=$((i+1))
done
[ -n "$pgid" ] && kill -s KILL -- "-$pgid" 2>/dev/null
rm -f "$1" "$2"
exit 0
)SH";

// $1 release dir, $2 pid file, $3 id file.
constexpr const char kRemoveScript[] = R"SH(
if sp_alive "$2" "$3"; then echo "instance is running (pid $sp_pid); stop it first" >&2; exit 4; fi
rm -rf "$1" && rm -f "$2" "$3"
)SH";

// $1 release dir, $2 line count.
constexpr const char kLogsScript[] = R"SH(
[ -d "$1" ] || { echo "no release $1" >&2; exit 3; }
[ -f "$1/out.log" ] || exit 0
exec tail -n "$2" -- "$1/out.log"
)SH";

// $1 host dir, $2 port (4 hex digits). "@instance <id> <pgid> <restarts>" for each
// running instance; its supervisor and their descendants become the
// candidates (sp_cands) of kListenersScript, whose lines follow.
constexpr const char kInstanceGroups[] = R"SH(
sp_cands=
for sp_p in "$1"/run/*.pid; do
  sp_id=${sp_p##*/}
  sp_id=${sp_id%.pid}
  if sp_alive "$sp_p" "$1/run/$sp_id.id"; then
    sp_r=0
    { read -r sp_r < "$1/releases/$sp_id/restarts"; } 2>/dev/null
    printf '@instance %s %s %s\n' "$sp_id" "$sp_pgid" "${sp_r:-0}"
    sp_cands="$sp_cands $sp_pid"
    sp_kids "$sp_pid"
  fi
done
shift
)SH";

constexpr const char kReservedEnvPrefix[] = "SALLYPORT_LAUNCHER_";

struct HostLock {
  std::string host_dir;
  int64_t wait_s = 0;
  bool create = false;  // Creates the host directory (a pull's first script).
};

// sh -c SCRIPT sh ARGS...; a locked script first takes the host
// directory's lock (its two leading arguments, shifted away before SCRIPT).
std::vector<std::string> ShArgv(const char* script, const std::optional<HostLock>& lock,
                                std::vector<std::string> args) {
  std::string text = script;
  std::vector<std::string> argv = {"sh", "-c", "", "sh"};
  if (lock) {
    text = std::string(kAliveFn) + kLockFn + "sp_lock \"$1\" \"$2\" \"$3\" || exit 1\nshift 3\n" + text;
    argv.push_back(lock->host_dir);
    argv.push_back(std::to_string(lock->wait_s));
    argv.push_back(lock->create ? "create" : "existing");
  }
  argv[2] = std::move(text);
  for (auto& a : args) argv.push_back(std::move(a));
  return argv;
}

bool IsValidInstanceId(std::string_view s) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  return std::regex_match(s.begin(), s.end(), re);
}

bool IsTarball(const std::string& artifact) {
  auto ends = [&](std::string_view suffix) {
    return artifact.size() > suffix.size() && artifact.compare(artifact.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends(".tar.gz") || ends(".tgz");
}

// A relative path inside the unpacked tarball: no leading '/', no "." or ".." parts.
bool IsInsidePath(const std::string& p) {
  if (p.empty() || p.front() == '/' || !IsSafeValue(p)) return false;
  for (const auto& part : Split(p, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

struct Paths {
  std::string host_dir, release_dir, run_dir, pid_file, id_file;
};

Result<Paths> PathsFor(const std::string& base_dir, const RuntimeTarget& t, const std::string& id) {
  if (base_dir.size() < 2 || base_dir.front() != '/' || !IsSafeValue(base_dir)) {
    return Err(ErrorCode::kInvalidArgument, "process base_dir must be an absolute path, got '" + base_dir + "'");
  }
  if (!IsValidName(t.release)) return Err(ErrorCode::kInvalidArgument, "invalid release name '" + t.release + "'");
  if (!IsValidName(t.deployment)) {
    return Err(ErrorCode::kInvalidArgument, "invalid deployment name '" + t.deployment + "'");
  }
  if (!IsValidHostName(t.host.name)) return Err(ErrorCode::kInvalidArgument, "invalid host name '" + t.host.name + "'");
  if (!IsValidInstanceId(id)) return Err(ErrorCode::kInvalidArgument, "invalid instance/rollout id '" + id + "'");
  std::string base = base_dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  Paths p;
  p.host_dir = base + "/" + t.release + "/" + t.deployment + "/" + t.host.name;
  p.release_dir = p.host_dir + "/releases/" + id;
  p.run_dir = p.host_dir + "/run";
  p.pid_file = p.run_dir + "/" + id + ".pid";
  p.id_file = p.run_dir + "/" + id + ".id";
  return p;
}

std::string Where(const RuntimeTarget& t) { return t.release + "/" + t.deployment + " on " + t.host.name; }

// Turns a script's outcome into a Status; exit 3/4 map to the given codes.
Status CheckExit(const Result<ExitStatus>& r, const std::string& what, ErrorCode code3 = ErrorCode::kNotFound) {
  if (!r) return Err(r.error().Wrap(what));
  if (r->ok()) return Ok();
  if (r->timed_out) return Err(ErrorCode::kTimeout, what + ": " + r->Describe());
  std::string detail = Trim(LastLines(r->err.empty() ? r->out : r->err, 5));
  if (r->signal == 0 && r->exit_code == 3) return Err(code3, what + ": " + detail);
  if (r->signal == 0 && r->exit_code == 4) return Err(ErrorCode::kConflict, what + ": " + detail);
  return Err(ErrorCode::kUnavailable, what + ": " + r->Describe());
}

// The script ran and exited with `code` (e.g. 1: "not there").
bool ExitedWith(const Result<ExitStatus>& r, int code) {
  return r && !r->timed_out && r->signal == 0 && r->exit_code == code;
}

// Applies one "key=value" meta line to `inst`.
void ApplyMetaLine(std::string_view line, Instance& inst) {
  auto eq = line.find('=');
  if (eq == std::string_view::npos) return;
  std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
  if (key == "version") inst.version = std::string(value);
  else if (key == "artifact") inst.artifact = std::string(value);
  else if (key == "rollout_id") inst.rollout_id = std::string(value);
  else if (key == "created_ms") std::from_chars(value.data(), value.data() + value.size(), inst.created_ms);
  else if (key == "restarts") std::from_chars(value.data(), value.data() + value.size(), inst.restarts);
}

Instance ParseMeta(const std::string& id, std::string_view text) {
  Instance inst;
  inst.id = id;
  for (const auto& line : Split(text, '\n')) ApplyMetaLine(line, inst);
  return inst;
}

std::string MetaText(const AppSpec& app, int64_t created_ms) {
  return "version=" + app.version + "\nartifact=" + app.artifact + "\nrollout_id=" + app.rollout_id +
         "\ncreated_ms=" + std::to_string(created_ms) + "\n";
}

// The env file: app.env in key order, then PORT (overriding any PORT in app.env).
Result<std::string> EnvText(const AppSpec& app) {
  std::string out;
  for (const auto& [k, v] : app.env) {
    if (!IsValidEnvName(k) || StartsWith(k, kReservedEnvPrefix)) {
      return Err(ErrorCode::kInvalidArgument, "invalid env name '" + k + "'");
    }
    // The value is deliberately not echoed: it may be a secret.
    if (!IsSafeValue(v)) return Err(ErrorCode::kInvalidArgument, "env " + k + " contains a newline or NUL");
    if (k == "PORT" && app.port > 0) continue;
    out += k + "=" + v + "\n";
  }
  if (app.port > 0) out += "PORT=" + std::to_string(app.port) + "\n";
  return out;
}

Status ValidateForPull(const AppSpec& app, bool tarball) {
  if (app.artifact.empty() || !IsSafeValue(app.artifact)) {
    return Err(ErrorCode::kInvalidArgument, "invalid artifact path '" + app.artifact + "'");
  }
  if (!IsSafeValue(app.version)) return Err(ErrorCode::kInvalidArgument, "version contains a newline or NUL");
  if (app.port < 0 || app.port > 65535) {
    return Err(ErrorCode::kInvalidArgument, "invalid port " + std::to_string(app.port));
  }
  for (const auto& a : app.command) {
    if (!IsSafeValue(a)) return Err(ErrorCode::kInvalidArgument, "command argument contains a newline or NUL");
  }
  if (tarball && (app.command.empty() || !IsInsidePath(app.command[0]))) {
    return Err(ErrorCode::kInvalidArgument,
               "a tarball artifact needs command[0] = relative path of the executable inside it, got '" +
                   (app.command.empty() ? std::string() : app.command[0]) + "'");
  }
  return Ok();
}

}  // namespace

const char* ProcessRuntime::LauncherScript() { return kLauncher; }

ProcessRuntime::ProcessRuntime(Transport& transport, ProcessOptions options)
    : transport_(transport), options_(std::move(options)) {
  SP_CHECK(options_.clock != nullptr);
}

Result<ExitStatus> ProcessRuntime::RunScript(const HostRef& host, const char* script, const std::string& lock_dir,
                                             std::vector<std::string> args, std::string in,
                                             std::optional<Millis> timeout) {
  CommandSpec spec;
  const Millis deadline = timeout ? *timeout : options_.command_timeout;
  spec.timeout = deadline;
  std::optional<HostLock> lock;
  // The lock's wait ends before the command's deadline, so a held lock is reported as such.
  if (!lock_dir.empty()) {
    lock = HostLock{lock_dir, std::max<int64_t>(1, deadline.count() / 1000 - 2), script == kPrepareScript};
  }
  spec.argv = ShArgv(script, lock, std::move(args));
  spec.stdin_data = std::move(in);
  return transport_.Run(host, spec);
}

Status ProcessRuntime::Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) {
  const std::string what = "pull " + app.artifact + " for " + Where(t);
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, app.rollout_id));
  const bool tarball = IsTarball(app.artifact);
  if (auto v = ValidateForPull(app, tarball); !v) return Err(v.error().Wrap(what));

  SP_TRY(CheckExit(RunScript(t.host, kPrepareScript, p.host_dir, {p.release_dir, p.run_dir, p.pid_file, p.id_file}, kLauncher),
                   what));

  // A release of the same artifact kept on the host (e.g. for a rollback) is
  // copied there: no transfer, and no need for the artifact's source.
  auto kept_r = RunScript(t.host, kKeptScript, "", {p.host_dir, app.artifact, p.release_dir, "copy"});
  const bool reused = kept_r && kept_r->ok();
  if (!reused) {
    const std::string target = p.release_dir + (tarball ? "/artifact.tar.gz" : "/app");
    if (auto s = transport_.CopyFile(t.host, app.artifact, target, tarball ? 0600 : 0755); !s) {
      return Err(s.error().Wrap(what));
    }
  }

  std::vector<std::string> cmd;
  if (tarball) {
    cmd.push_back(p.release_dir + "/app/" + app.command[0]);
    cmd.insert(cmd.end(), app.command.begin() + 1, app.command.end());
  } else {
    cmd.push_back(p.release_dir + "/app");
    cmd.insert(cmd.end(), app.command.begin(), app.command.end());
  }
  std::string in = std::to_string(cmd.size()) + "\n";
  for (const auto& a : cmd) in += a + "\n";
  in += MetaText(app, options_.clock->WallMs());
  return CheckExit(
      RunScript(t.host, kFinishScript, "", {p.release_dir, reused ? "kept" : (tarball ? "tar" : "exe")}, in), what,
      ErrorCode::kInvalidArgument);
}

Result<bool> ProcessRuntime::HasArtifact(const RuntimeTarget& t, const AppSpec& app) {
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, app.rollout_id));
  auto r = RunScript(t.host, kHasArtifactScript, "", {p.release_dir});
  if (ExitedWith(r, 1)) return false;
  SP_TRY(CheckExit(r, "check artifact of " + Where(t)));
  Instance inst = ParseMeta(app.rollout_id, r->out);
  return inst.artifact == app.artifact && inst.version == app.version;
}

Result<bool> ProcessRuntime::Available(const RuntimeTarget& t, const AppSpec& app) {
  SP_ASSIGN_OR_RETURN(bool here, HasArtifact(t, app));
  if (here) return true;
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, app.rollout_id));
  auto k = RunScript(t.host, kKeptScript, "", {p.host_dir, app.artifact, p.release_dir, "find"});
  if (ExitedWith(k, 1)) return false;
  SP_TRY(CheckExit(k, "look for a kept " + app.artifact + " on " + Where(t)));
  return true;
}

Result<std::vector<Instance>> ProcessRuntime::List(const RuntimeTarget& t) {
  // Any valid id gives the host directory; the script globs the releases.
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, "x"));
  auto r = RunScript(t.host, kListScript, p.host_dir, {p.host_dir});
  SP_TRY(CheckExit(r, "list " + Where(t)));
  std::vector<Instance> out;
  for (const auto& line : Split(r->out, '\n')) {
    if (StartsWith(line, "@instance=")) {
      out.emplace_back().id = line.substr(10);
    } else if (out.empty()) {
      continue;  // Nothing before the first record (not expected).
    } else if (StartsWith(line, "@running=")) {
      out.back().running = line == "@running=1";
    } else {
      ApplyMetaLine(line, out.back());
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Instance& a, const Instance& b) {
    return a.created_ms != b.created_ms ? a.created_ms < b.created_ms : a.id < b.id;
  });
  return out;
}

Status ProcessRuntime::Stop(const RuntimeTarget& t, const Instance& inst, Millis timeout) {
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, inst.id));
  const int64_t ticks = std::max<int64_t>(0, (timeout.count() + 4) / 5);
  // The script's own budget: grace + 5 s after SIGKILL, plus slack for polling.
  return CheckExit(RunScript(t.host, kStopScript, p.host_dir,
                             {p.pid_file, p.id_file, std::to_string(ticks), p.release_dir}, {},
                             std::max(options_.command_timeout, timeout + Millis(15'000))),
                   "stop " + inst.id + " of " + Where(t));
}

Result<Instance> ProcessRuntime::Start(const RuntimeTarget& t, const AppSpec& app) {
  const std::string what = "start " + app.rollout_id + " of " + Where(t);
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, app.rollout_id));
  if (app.port < 0 || app.port > 65535) {
    return Err(ErrorCode::kInvalidArgument, what + ": invalid port " + std::to_string(app.port));
  }
  auto env = EnvText(app);
  if (!env) return Err(env.error().Wrap(what));
  auto r = RunScript(t.host, kStartScript, p.host_dir, {p.release_dir, p.pid_file, p.id_file, "new"}, std::move(*env));
  SP_TRY(CheckExit(r, what));
  Instance inst = ParseMeta(app.rollout_id, r->out);
  inst.running = true;
  return inst;
}

Status ProcessRuntime::Restart(const RuntimeTarget& t, const Instance& inst) {
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, inst.id));
  return CheckExit(RunScript(t.host, kStartScript, p.host_dir, {p.release_dir, p.pid_file, p.id_file, "again"}),
                   "restart " + inst.id + " of " + Where(t));
}

Status ProcessRuntime::Remove(const RuntimeTarget& t, const Instance& inst) {
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, inst.id));
  return CheckExit(RunScript(t.host, kRemoveScript, p.host_dir, {p.release_dir, p.pid_file, p.id_file}),
                   "remove " + inst.id + " of " + Where(t));
}

Result<std::string> ProcessRuntime::Logs(const RuntimeTarget& t, const Instance& inst, int lines) {
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, inst.id));
  auto r = RunScript(t.host, kLogsScript, "", {p.release_dir, std::to_string(std::max(1, lines))});
  SP_TRY(CheckExit(r, "logs of " + inst.id + " of " + Where(t)));
  return r->out;
}

Result<std::optional<std::vector<PortListener>>> ProcessRuntime::Listeners(const RuntimeTarget& t, int port) {
  SP_ASSIGN_OR_RETURN(Paths p, PathsFor(options_.base_dir, t, "x"));
  static const std::string script = std::string(kAliveFn) + kKidsFn + kInstanceGroups + kListenersScript;
  auto r = RunScript(t.host, script.c_str(), "", {p.host_dir, PortHex(port)});
  SP_TRY(CheckExit(r, "listeners on port " + std::to_string(port) + " of " + t.host.name));
  // An instance owns a socket held by its process group (the app and what it forked).
  std::map<int64_t, std::string> groups;
  std::map<std::string, int> restarts;  // Each running instance's, from the same listing.
  for (const auto& line : Split(r->out, '\n')) {
    if (!StartsWith(line, "@instance ")) continue;
    auto f = Split(line.substr(10), ' ');
    if (f.size() < 2) continue;
    groups[std::atoll(f[1].c_str())] = f[0];
    if (f.size() >= 3 && !f[2].empty() && std::all_of(f[2].begin(), f[2].end(), ::isdigit) && f[2].size() < 9) {
      restarts[f[0]] = std::atoi(f[2].c_str());
    }
  }
  auto listeners = Attribute(ParseListeners(r->out), [&](const SocketHolder& h) {
    auto it = groups.find(h.pgid);
    return it == groups.end() ? std::string() : it->second;
  });
  for (auto& l : listeners) {
    if (auto it = restarts.find(l.instance); !l.instance.empty() && it != restarts.end()) l.instance_restarts = it->second;
  }
  return std::optional(std::move(listeners));
}

}  // namespace sp
