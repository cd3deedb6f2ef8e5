#!/usr/bin/env bash
# Race: one rolling release of the sample app on the same lab hosts, through
# the same bastion and HAProxy, with Ansible (bench/race/rolling.yml, serial 1)
# and with `sallyport rollout` (process or docker runtime, batch 1). Prints
# per-host medians and Ansible/Sallyport ratios, plus the median of 200
# `ssh host true` on a reused connection through the bastion (what an OpenSSH
# client process costs per command, as Ansible pays it; SshTransport speaks
# the mux protocol itself: bench_ssh_command).
#
# Usage: bash bench/race_ansible.sh [N...]      (default: 3 10; run as root)
#   env RACE_RUNS=v2,v3   timed releases per tool (v1 is always untimed)
#   env RACE_RUNTIME=docker   the docker runtime instead of the process one:
#       every lab host gets its own dockerd; images v1.. (FROM scratch, the
#       sample app) are built and pushed on h1 to the lab's authenticated
#       registry and removed there, so every host pulls by digest; Ansible
#       runs bench/race/rolling_docker.yml.
#
# For each N: tests/lab/lab up (prefix sprace, net 10.213.11, dir
# /tmp/sp-race-lab), then Sallyport v1 (untimed), v2, v3 (timed); stop its
# apps (by the pid listening on :8080, per host) and wipe its base_dir; then
# Ansible v1 (untimed), v2, v3 (timed, each with cold SSH connections, as
# Sallyport has); lab down. The lab always goes down on exit.
#
# Figures per tool: total wall (office clock around the whole command, startup
# included), per-host wall (Sallyport: host_done elapsed; Ansible: first task
# start -> last task end on that host), total/N, out of rotation (drain start
# -> HAProxy reports UP again), orchestration overhead = per-host wall -
# (drain wait + app start -> healthy). Needs: ansible-playbook, python3,
# build/bin/{sallyport,sp-sample-app}.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/tests/lab/lab
LABDIR=/tmp/sp-race-lab
PREFIX=sprace
NET=10.213.11
SP=$ROOT/build/bin/sallyport
APP=$ROOT/build/bin/sp-sample-app
RACE=$ROOT/bench/race
IFS=, read -r -a TIMED <<<"${RACE_RUNS:-v2,v3}"
RUNTIME=${RACE_RUNTIME:-process}
case $RUNTIME in
  process) PORT=8080 BACKEND=proc ;;
  docker) PORT=8081 BACKEND=dock ;;
  *) echo "race: RACE_RUNTIME must be process or docker" >&2; exit 2 ;;
esac
NS=("$@"); (( ${#NS[@]} )) || NS=(3 10)

(( EUID == 0 )) || { echo "race: needs root (the lab)" >&2; exit 2; }
for b in "$SP" "$APP"; do [[ -x $b ]] || { echo "race: missing $b (cmake --build build)" >&2; exit 2; }; done
command -v ansible-playbook >/dev/null || { echo "race: ansible-playbook not found" >&2; exit 2; }

OUT=$(mktemp -d /tmp/sp-race.XXXXXX)
cleanup() {
  local rc=$?
  # Our own SSH masters (control sockets under $OUT), by socket, then the lab.
  local s
  for s in $(find "$OUT" -type s 2>/dev/null); do ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1 || true; done
  "$LAB" down --dir "$LABDIR" >/dev/null 2>&1 || true
  echo "race: lab down; work files in $OUT" >&2
  exit $rc
}
trap cleanup EXIT
log() { echo "race: $*" >&2; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
labvar() { sed -n "s/^$1=//p" "$LABDIR/lab.env"; }

write_configs() {  # <work dir> <N>
  local w=$1 n=$2 hp name addr
  local key kh bastion lbapi
  key=$(labvar LAB_KEY); kh=$(labvar LAB_KNOWN_HOSTS); bastion=$(labvar LAB_BASTION); lbapi=$(labvar LAB_LB_API)
  # Sallyport.
  {
    cat <<EOT
version: 1
service: sample
stack: demo
EOT
    if [[ $RUNTIME == docker ]]; then
      cat <<EOT
image: {repository: $(labvar LAB_REGISTRY)/race-sample}
registry:
  address: $(labvar LAB_REGISTRY)
  username: sallyport
  password: {file: $(labvar LAB_REGISTRY_PASSWORD_FILE)}
EOT
    fi
    cat <<EOT
releases:
  web:
    runtime: $RUNTIME
    port: $PORT
    health: {path: /health, interval: 100ms, timeout: 1s, retries: 30}
    stop_timeout: 5s
    strategy: {batch: 1, drain_timeout: 30s, ready_timeout: 15s}
EOT
  } >"$w/sallyport.yml"
  {
    cat <<EOT
version: 1
stacks:
  demo:
    requires_bastion: true
    deployments:
      integration:
        network: lab
        bastion: {address: $bastion, user: deploy, key: $key}
        ssh: {known_hosts: $kh, config: none, connect_timeout: 5s}
        releases:
          web:
            base_dir: /srv/sallyport/apps
            load_balancers:
              - {kind: haproxy, address: "$lbapi", backend: $BACKEND}
            hosts:
EOT
    for hp in $(labvar LAB_HOSTS); do echo "              - {name: ${hp%%=*}, address: ${hp#*=}}"; done
  } >"$w/inventory.yml"
  # Plain OpenSSH: the bastion by its office address, hosts by private
  # address through it. ssh_config (with masters) serves the `true` benchmark
  # and the script's own chores; ssh_config_ansible has no master of its own
  # for the bastion (Ansible's ssh_args add masters per host).
  local common="  User deploy
  IdentityFile $key
  IdentitiesOnly yes
  UserKnownHostsFile $kh
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5"
  printf 'Host bastion\n  HostName %s\nHost %s.*\n  ProxyJump bastion\nHost *\n%s\n  ControlMaster auto\n  ControlPath %s/cm-%%C\n  ControlPersist 60s\n' \
    "$bastion" "$NET" "$common" "$w" >"$w/ssh_config"
  printf 'Host bastion\n  HostName %s\nHost %s.*\n  ProxyJump bastion\nHost *\n%s\n' \
    "$bastion" "$NET" "$common" >"$w/ssh_config_ansible"
  # Ansible.
  {
    echo "[app]"
    for hp in $(labvar LAB_HOSTS); do
      echo "${hp%%=*} ansible_host=${hp#*=}"
    done
    echo
    echo "[app:vars]"
    echo "ansible_user=deploy"
    echo "ansible_ssh_private_key_file=$key"
    echo "ansible_ssh_common_args='-F $w/ssh_config_ansible -o UserKnownHostsFile=$kh -o StrictHostKeyChecking=yes'"
    echo "ansible_python_interpreter=/usr/bin/python3"
  } >"$w/hosts.ini"
  cat >"$w/ansible.cfg" <<EOT
[defaults]
inventory = $w/hosts.ini
gathering = explicit
forks = 10
host_key_checking = True
callback_plugins = $RACE/callback_plugins
callbacks_enabled = race_times
retry_files_enabled = False
interpreter_python = /usr/bin/python3
local_tmp = $w/ansible-local

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s
EOT
  if [[ $RUNTIME == process ]]; then
    for v in v1 v2 v3 v4 v5; do cp "$APP" "$w/app-$v"; printf '\nsp-race %s\n' "$v" >>"$w/app-$v"; done
  fi
}

rsh() { ssh -F "$W/ssh_config" "$@"; }  # <host address> <command>

check_version() {  # <version> <tool>
  local hp got
  for hp in $(labvar LAB_HOSTS); do
    got=$(rsh "${hp#*=}" "curl -fsS --max-time 2 http://127.0.0.1:$PORT/") || true
    [[ $got == "version=$1 port=$PORT" ]] || { log "$2: ${hp%%=*} serves '$got', want $1"; exit 1; }
  done
}

sallyport_run() {  # <version> <timed:0|1>
  local v=$1 t0 t1
  t0=$(now_ms)
  # The lab registry speaks HTTPS with the lab's CA: Sallyport's preflight trusts it from certs.d.
  SALLYPORT_REGISTRY_CERTS_D=$(labvar LAB_REGISTRY_CERTS_D) \
  "$SP" rollout run -c "$W/sallyport.yml" -i "$W/inventory.yml" -d integration --store "$W/state.db" \
    --artifact "$(artifact "$v")" --version "$v" --output json >"$W/sp-$v.jsonl" 2>"$W/sp-$v.err" \
    || { log "sallyport $v failed:"; tail -5 "$W/sp-$v.jsonl" "$W/sp-$v.err" >&2; exit 1; }
  t1=$(now_ms)
  (( $2 )) && echo $(( t1 - t0 )) >"$W/sp-$v.wall"
  check_version "$v" sallyport
  log "sallyport $v: $(( t1 - t0 )) ms"
}

ansible_run() {  # <version> <timed:0|1>
  local v=$1 t0 t1
  rm -f "$W/an-$v.jsonl"
  # Cold start like Sallyport's: a fresh control path dir, no masters left.
  mkdir -p "$W/cp-$v"
  t0=$(now_ms)
  local play=rolling.yml vars="version=$v artifact=$W/app-$v app_dir=/srv/sallyport/ansible"
  if [[ $RUNTIME == docker ]]; then
    play=rolling_docker.yml
    vars="image=$(artifact "$v") registry=$(labvar LAB_REGISTRY) password_file=$(labvar LAB_REGISTRY_PASSWORD_FILE) port=$PORT"
  fi
  ANSIBLE_CONFIG=$W/ansible.cfg ANSIBLE_SSH_CONTROL_PATH_DIR=$W/cp-$v RACE_TIMES_FILE=$W/an-$v.jsonl \
    ansible-playbook "$RACE/$play" \
      -e "$vars api_host=${LBAPI%:*} api_port=${LBAPI#*:} backend=$BACKEND" \
      >"$W/an-$v.out" 2>&1 || { log "ansible $v failed:"; tail -30 "$W/an-$v.out" >&2; exit 1; }
  t1=$(now_ms)
  (( $2 )) && echo $(( t1 - t0 )) >"$W/an-$v.wall"
  check_version "$v" ansible
  local s
  for s in $(find "$W/cp-$v" -type s); do ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1 || true; done
  log "ansible $v: $(( t1 - t0 )) ms"
}

artifact() {  # <version>: what the rollout ships
  if [[ $RUNTIME == docker ]]; then cat "$W/digest-$1"; else echo "$W/app-$1"; fi
}

push_images() {  # docker: build v1..v5 on h1 (FROM scratch + the sample app), push, remove there
  local h v ctx=/srv/sallyport/race-img
  h=$(labvar LAB_HOSTS); h=${h%% *}; h=${h#*=}
  rsh "$h" "mkdir -p $ctx && cat >$ctx/sp-sample-app && chmod 755 $ctx/sp-sample-app" <"$APP"
  for v in v1 v2 v3 v4 v5; do
    printf 'FROM scratch\nCOPY sp-sample-app /sp-sample-app\nENV APP_VERSION=%s\nENTRYPOINT ["/sp-sample-app"]\n' "$v" |
      rsh "$h" "cat >$ctx/Dockerfile"
    # Lab-made values only (registry address, version): safe to put in the command line.
    rsh "$h" "set -e; t=$(labvar LAB_REGISTRY)/race-sample:$v; docker build -q -t \$t $ctx >/dev/null
      c=\$(mktemp -d); docker --config \$c login -u sallyport --password-stdin $(labvar LAB_REGISTRY) >/dev/null
      docker --config \$c push -q \$t >/dev/null; rm -rf \$c
      docker image inspect --format '{{index .RepoDigests 0}}' \$t; docker rmi -f \$t >/dev/null" \
      <"$(labvar LAB_REGISTRY_PASSWORD_FILE)" >"$W/digest-$v"
    grep -q '@sha256:' "$W/digest-$v" || { log "push $v failed"; exit 1; }
  done
  rsh "$h" "rm -rf $ctx"
}

stop_apps() {  # the lab's app on each host (process: the pid on :8080; docker: every container), then its files
  local hp
  if [[ $RUNTIME == docker ]]; then
    for hp in $(labvar LAB_HOSTS); do
      rsh "${hp#*=}" 'c=$(docker ps -aq); [ -z "$c" ] || docker rm -f $c >/dev/null'
    done
    return
  fi
  for hp in $(labvar LAB_HOSTS); do
    rsh "${hp#*=}" 'pid=$(ss -Hltnp "sport = :8080" | sed -n "s/.*pid=\([0-9]*\).*/\1/p" | head -1)
      [ -z "$pid" ] || kill "$pid"
      i=0; while [ -n "$pid" ] && [ $i -lt 100 ] && kill -0 "$pid" 2>/dev/null; do i=$((i+1)); sleep 0.05; done
      rm -rf /srv/sallyport/apps /srv/sallyport/ansible; mkdir -p /srv/sallyport/ansible'
  done
}

ssh_true_bench() {  # 200 x `ssh host true` on a reused master, through the bastion's master
  local h i t0 t1
  h=$(labvar LAB_HOSTS); h=${h%% *}; h=${h#*=}
  rsh "$h" true  # opens the masters (bastion and host)
  : >"$W/ssh_true.ms"
  for ((i = 0; i < 200; i++)); do
    t0=${EPOCHREALTIME/./}
    rsh "$h" true
    t1=${EPOCHREALTIME/./}
    echo "$(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 ))" >>"$W/ssh_true.ms"
  done
}

: >"$OUT/rows.tsv"
for N in "${NS[@]}"; do
  W=$OUT/n$N; mkdir -p "$W"
  log "N=$N: lab up"
  docker_hosts=0; [[ $RUNTIME == docker ]] && docker_hosts=$N
  # The lab's registry: HTTPS with the lab's CA and token auth (as hosted registries run).
  "$LAB" up --dir "$LABDIR" --prefix "$PREFIX" --net "$NET" --hosts "$N" --docker-hosts "$docker_hosts" --docker-forwarding all \
    --token-server "$ROOT/build/bin/sp-token-server" 2>"$W/lab.log" \
    || { cat "$W/lab.log" >&2; exit 1; }
  LBAPI=$(labvar LAB_LB_API)
  write_configs "$W" "$N"
  [[ $RUNTIME == docker ]] && push_images
  stop_apps  # also creates /srv/sallyport/ansible
  sallyport_run v1 0
  for v in "${TIMED[@]}"; do sallyport_run "$v" 1; done
  stop_apps
  ansible_run v1 0
  for v in "${TIMED[@]}"; do ansible_run "$v" 1; done
  ssh_true_bench
  python3 "$RACE/analyze.py" "$N" "$W"
  for s in $(find "$W" -maxdepth 1 -type s); do ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1 || true; done
  "$LAB" down --dir "$LABDIR" 2>>"$W/lab.log"
done

echo
echo "Rolling release, batch 1, $RUNTIME runtime, no load; times in ms unless marked."
{
  printf 'N\ttool\ttotal wall s (per run)\tper-host wall\ttotal/N\tout of rotation\toverhead/host\n'
  cat "$OUT/rows.tsv"
} | column -t -s $'\t'
echo "overhead/host = per-host wall - (drain wait + app start->healthy); target for sallyport: <= 100 ms/host"
