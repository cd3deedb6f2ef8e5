// The fixed launcher and supervisor script the process runtime writes into
// each release directory (`launch`): what runs an app, restarts it when it
// exits and stops it for good. Its text is part of the runtime's contract
// (docs/process-runtime.md); kept apart from process_runtime.cc for size.
#pragma once

namespace sp {

inline constexpr char kLauncher[] = R"SH(#!/bin/sh
# Sallyport process launcher and supervisor. Fixed content, written by
# ProcessRuntime. Usage: sh launch ID_FILE
# Records "<starttime> <boot_id>" of this process (the supervisor, named by
# the pid file) in ID_FILE, reads ./env once into an unexported variable and
# removes the file (a running instance's env rests in no file: when the
# supervision ends, on SIGUSR1, SIGTERM or SIGINT, it is written back, 0600,
# for a later restart of this kept instance), and
# runs ./cmd (one argument per line, the first is the executable) in ./app
# when that is a directory, in a child that exports each KEY=VALUE line of
# that env verbatim (no eval, no expansion) just before it becomes the app: the supervisor's own environment, and its
# `sleep` and `date`, never hold the app's env (its secrets). When the app exits, for any
# reason, it is started again after a backoff (1 s, doubling up to 30 s; back
# to 1 s once it ran 60 s), each restart said in out.log and counted in
# ./restarts. SIGTERM (or SIGINT) is passed on to the app and ends the
# supervision: the supervisor exits once the app has. SIGUSR1 ends the
# supervision only (Stop sends it, and SIGTERM to the app itself, whose pid
# is this one's child; ./supervisor names this process).
SALLYPORT_LAUNCHER_DIR=${0%/*}
SALLYPORT_LAUNCHER_ID=$1
{ read -r SALLYPORT_LAUNCHER_STAT < /proc/$$/stat && read -r SALLYPORT_LAUNCHER_BOOT < /proc/sys/kernel/random/boot_id; } || exit 120
SALLYPORT_LAUNCHER_STAT=${SALLYPORT_LAUNCHER_STAT##*) }
set -f
set -- $SALLYPORT_LAUNCHER_STAT
set +f
printf '%s %s\n' "${20}" "$SALLYPORT_LAUNCHER_BOOT" > "$SALLYPORT_LAUNCHER_ID.tmp" && mv -f "$SALLYPORT_LAUNCHER_ID.tmp" "$SALLYPORT_LAUNCHER_ID" || exit 121
set --
while IFS= read -r SALLYPORT_LAUNCHER_ARG; do set -- "$@" "$SALLYPORT_LAUNCHER_ARG"; done < "$SALLYPORT_LAUNCHER_DIR/cmd" || exit 122
rm -f "$SALLYPORT_LAUNCHER_DIR/restarts"
SALLYPORT_LAUNCHER_RESTARTS=0
SALLYPORT_LAUNCHER_DELAY=1
SALLYPORT_LAUNCHER_STOP=
SALLYPORT_LAUNCHER_CHILD=
SALLYPORT_LAUNCHER_HAS_ENV=
# The env back in its file when the supervision ends (builtins only: no
# process start on the stop path); the app's children never see this umask.
sallyport_launcher_keep_env() {
  [ -n "$SALLYPORT_LAUNCHER_HAS_ENV" ] || return 0
  SALLYPORT_LAUNCHER_HAS_ENV=
  umask 077
  printf '%s\n' "$SALLYPORT_LAUNCHER_ENV" > "$SALLYPORT_LAUNCHER_DIR/env"
}
trap 'SALLYPORT_LAUNCHER_STOP=1; sallyport_launcher_keep_env; [ -n "$SALLYPORT_LAUNCHER_CHILD" ] && kill -s TERM "$SALLYPORT_LAUNCHER_CHILD" 2>/dev/null' TERM INT
trap 'SALLYPORT_LAUNCHER_STOP=1; sallyport_launcher_keep_env' USR1
echo $$ > "$SALLYPORT_LAUNCHER_DIR/supervisor"
if [ -d "$SALLYPORT_LAUNCHER_DIR/app" ]; then cd "$SALLYPORT_LAUNCHER_DIR/app" || exit 123; fi
# Read once, kept in an unexported variable: every restart gets the same env
# even if the release directory changes under it.
SALLYPORT_LAUNCHER_ENV=$(cat "$SALLYPORT_LAUNCHER_DIR/env") || exit 124
rm -f "$SALLYPORT_LAUNCHER_DIR/env"
SALLYPORT_LAUNCHER_HAS_ENV=1
# A stop that came while the file was being read and removed: write it back now.
[ -n "$SALLYPORT_LAUNCHER_STOP" ] && sallyport_launcher_keep_env
while [ -z "$SALLYPORT_LAUNCHER_STOP" ]; do
  SALLYPORT_LAUNCHER_SINCE=$(date +%s)
  (
    trap - TERM INT USR1
    while IFS= read -r SALLYPORT_LAUNCHER_LINE; do
      case $SALLYPORT_LAUNCHER_LINE in ?*=*) export "$SALLYPORT_LAUNCHER_LINE" ;; esac
    done <<SALLYPORT_LAUNCHER_EOF
$SALLYPORT_LAUNCHER_ENV
SALLYPORT_LAUNCHER_EOF
    exec "$@"
  ) </dev/null &
  SALLYPORT_LAUNCHER_CHILD=$!
  [ -n "$SALLYPORT_LAUNCHER_STOP" ] && kill -s TERM "$SALLYPORT_LAUNCHER_CHILD" 2>/dev/null
  # A trapped signal ends `wait` early: wait again until the app is gone.
  SALLYPORT_LAUNCHER_RC=0
  while kill -0 "$SALLYPORT_LAUNCHER_CHILD" 2>/dev/null; do
    wait "$SALLYPORT_LAUNCHER_CHILD"
    SALLYPORT_LAUNCHER_RC=$?
  done
  SALLYPORT_LAUNCHER_CHILD=
  [ -n "$SALLYPORT_LAUNCHER_STOP" ] && break
  [ $(($(date +%s) - SALLYPORT_LAUNCHER_SINCE)) -ge 60 ] && SALLYPORT_LAUNCHER_DELAY=1
  SALLYPORT_LAUNCHER_RESTARTS=$((SALLYPORT_LAUNCHER_RESTARTS + 1))
  echo "$SALLYPORT_LAUNCHER_RESTARTS" > "$SALLYPORT_LAUNCHER_DIR/restarts"
  echo "sallyport supervisor: the app exited (status $SALLYPORT_LAUNCHER_RC); restart $SALLYPORT_LAUNCHER_RESTARTS in ${SALLYPORT_LAUNCHER_DELAY}s" >&2
  sleep "$SALLYPORT_LAUNCHER_DELAY" &
  wait $!
  SALLYPORT_LAUNCHER_DELAY=$((SALLYPORT_LAUNCHER_DELAY * 2))
  [ "$SALLYPORT_LAUNCHER_DELAY" -gt 30 ] && SALLYPORT_LAUNCHER_DELAY=30
done
exit 0
)SH";

}  // namespace sp
