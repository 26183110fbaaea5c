#!/usr/bin/env bash
# rig.sh — test hosts for the Ansible deployment of cairn, on one machine.
#
#   tests/ansible/rig.sh up            create the test hosts (reaping a leftover rig first)
#   tests/ansible/rig.sh down          remove every trace of the rig
#   tests/ansible/rig.sh run [BIN]     up, the whole deployment check, down; BIN holds the
#                                      binaries (default $CAIRN_BIN, else build)
#   tests/ansible/rig.sh play ARGS...  ansible-playbook with the rig's inventory (rig up)
#   tests/ansible/rig.sh ssh HOST [CMD]  a shell on a test host
#
# A test host is a network namespace with its own PID, mount and UTS
# namespaces; sshd is its PID 1. Overlays on /etc /opt /var /root /usr give
# each host production paths and its own users without touching the
# machine's files; /run is a private tmpfs. Ansible runs in the controller
# namespace "ctl" and reaches the hosts over real SSH. A second client
# namespace "cli" has no sshd: it only reads objects back.
#
# The gateway serves S3 over HTTPS: `up` makes a self-signed certificate for
# gw1's address (and its key) in $STATE/tls, and every play gets them with
# -e cairn_gateway_tls_cert/key; the rig's S3 clients trust that certificate.
# CAIRN_RIG_TLS=0 rig.sh play ... leaves them out (a plain HTTP gateway).
#
#   10.77.0.1  ctl       10.77.0.11-13  meta1-3       10.77.0.31  gw1
#   10.77.0.2  cli       10.77.0.21-24  sn1-4 (sn4 in zone b)
#                        10.77.0.25     sn5 (zone b; enters the inventory in the
#                                       "add a storage host" step)
#
# Safety: before anything else the root namespace gets an `unreachable` route
# for 10.77.0.0/24, so no packet to a test address ever follows the default
# route off the machine; every probe runs with `ip netns exec`. `down` kills
# every process of every cairnrig-* namespace (killing sshd, a host's PID 1,
# kills the host's daemons), deletes the namespaces (their veths and the
# bridge go with them), removes the route and the state directory. `up` runs
# `down` first, so a killed run never leaves anything behind for long. One
# rig exists at a time: `up`, `down` and `run` take a lock.
#
# Needs root, ansible, ansible-lint, openssh-server (sshd), curl, openssl, overlayfs.
set -euo pipefail

PREFIX=cairnrig
NET=10.77.0
SUBNET=$NET.0/24
STATE=/tmp/cairn-ansible-rig
LOCK=/tmp/cairn-ansible-rig.lock
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF=$ROOT/tests/ansible/rig.sh
OVERLAID="etc opt var root usr"

# name:last-octet. Hosts with sshd; ctl and cli are client namespaces only.
SSH_HOSTS="meta1:11 meta2:12 meta3:13 sn1:21 sn2:22 sn3:23 sn4:24 sn5:25 gw1:31"
CLIENTS="ctl:1 cli:2"

die() { echo "rig: $*" >&2; exit 1; }
say() { printf '%s\n' "rig: $*"; }
ns() { echo "$PREFIX-$1"; }
ip_of() {
    local e
    for e in $SSH_HOSTS $CLIENTS; do
        [ "${e%%:*}" = "$1" ] && { echo "$NET.${e#*:}"; return; }
    done
    die "no host $1"
}
# Run a command in host $1's network namespace; it does not inherit the
# rig lock (fd 8), so a killed rig.sh never leaves the lock held.
in_ns() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@" 8>&-; }

# One rig at a time. Waits CAIRN_RIG_LOCK_WAIT seconds (default 900) for
# another run to finish; exits 75 if it does not.
take_lock() {
    exec 8>"$LOCK"
    if ! flock -w "${CAIRN_RIG_LOCK_WAIT:-900}" 8; then
        echo "rig: another rig run holds $LOCK" >&2
        exit 75
    fi
}

# ------------------------------------------------------------------ down

down() {
    local n pids tries left
    for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
        pids=$(ip netns pids "$n" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
    done
    for tries in $(seq 30); do
        left=
        for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
            pids=$(ip netns pids "$n" 2>/dev/null || true)
            if [ -n "$pids" ]; then
                left=1
                # shellcheck disable=SC2086
                [ "$tries" -lt 20 ] || kill -KILL $pids 2>/dev/null || true
            fi
        done
        [ -n "$left" ] || break
        sleep 0.1
    done
    for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
        ip netns del "$n" 2>/dev/null || true
    done
    while ip route show type unreachable "$SUBNET" 2>/dev/null | grep -q .; do
        ip route del unreachable "$SUBNET" 2>/dev/null || break
    done
    rm -rf "$STATE"
}

# ------------------------------------------------------------------ up

host_init() {
    # PID 1 of test host $1 (inside its own mount, UTS and PID namespaces).
    local h=$1 d
    hostname "$h"
    for d in $OVERLAID; do
        mkdir -p "$STATE/hosts/$h/upper/$d" "$STATE/hosts/$h/work/$d"
        mount -t overlay overlay \
            -o "lowerdir=/$d,upperdir=$STATE/hosts/$h/upper/$d,workdir=$STATE/hosts/$h/work/$d" "/$d"
    done
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir -p /run/sshd /run/lock
    # The machine's root .bashrc starts pyenv: 0.2 s on every SSH command.
    cp /etc/skel/.bashrc /root/.bashrc
    exec /usr/sbin/sshd -D -e -f "$STATE/ssh/sshd_config" 2>>"$STATE/hosts/$h/sshd.log"
}

write_ssh() {
    local s=$STATE/ssh e list=
    mkdir -p "$s" "$STATE/cp"
    chmod 700 "$s"
    ssh-keygen -q -t ed25519 -N '' -C cairnrig-client -f "$s/client"
    ssh-keygen -q -t ed25519 -N '' -C cairnrig-host -f "$s/host"
    cp "$s/client.pub" "$s/authorized_keys"
    for e in $SSH_HOSTS; do list+="${list:+,}$NET.${e#*:}"; done
    echo "$list $(cut -d' ' -f1,2 "$s/host.pub")" >"$s/known_hosts"
    cat >"$s/sshd_config" <<EOF
ListenAddress 0.0.0.0
HostKey $s/host
AuthorizedKeysFile $s/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
EOF
    cat >"$s/ssh_config" <<EOF
Host *
    User root
    IdentityFile $s/client
    IdentitiesOnly yes
    UserKnownHostsFile $s/known_hosts
    StrictHostKeyChecking yes
    ConnectTimeout 5
EOF
}

# make_tls_pair: a self-signed P-256 certificate for gw1's address and its
# key (mode 600) in $STATE/tls, replacing any there (the old certificate is
# kept as old-cert.pem). The path stays the same, as when an operator renews.
make_tls_pair() {
    local d=$STATE/tls
    mkdir -p "$d"
    chmod 700 "$d"
    [ ! -e "$d/cert.pem" ] || cp "$d/cert.pem" "$d/old-cert.pem"
    [ ! -e "$d/key.pem" ] || cp "$d/key.pem" "$d/old-key.pem"
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 365 -nodes \
            -subj /CN=gw1 -addext "subjectAltName=IP:$(ip_of gw1)" \
            -keyout "$d/key.pem.tmp" -out "$d/cert.pem.tmp" 2>"$d/openssl.log"
    ) || { cat "$d/openssl.log" >&2; die "cannot create the TLS certificate"; }
    chmod 644 "$d/cert.pem.tmp"
    mv "$d/key.pem.tmp" "$d/key.pem"
    mv "$d/cert.pem.tmp" "$d/cert.pem"
}

add_ns() {
    local h=$1 addr=$2
    ip netns add "$(ns "$h")"
    ip -n "$(ns sw)" link add "v-$h" type veth peer name eth0 netns "$(ns "$h")"
    ip -n "$(ns sw)" link set "v-$h" master br0 up
    ip -n "$(ns "$h")" link set lo up
    ip -n "$(ns "$h")" addr add "$addr/24" dev eth0
    ip -n "$(ns "$h")" link set eth0 up
}

up() {
    local e h t
    [ "$(id -u)" -eq 0 ] || die "needs root"
    for t in ansible-playbook ansible-lint ssh ssh-keygen curl openssl unshare; do
        command -v "$t" >/dev/null || die "$t not found"
    done
    [ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd not found (apt-get install openssh-server)"
    down
    # The guard first: from here on, the test subnet cannot leave the machine.
    ip route replace unreachable "$SUBNET"
    mkdir -p "$STATE/hosts"
    write_ssh
    make_tls_pair
    ip netns add "$(ns sw)"
    ip -n "$(ns sw)" link add br0 type bridge
    ip -n "$(ns sw)" link set br0 up
    for e in $CLIENTS $SSH_HOSTS; do add_ns "${e%%:*}" "$NET.${e#*:}"; done
    for e in $SSH_HOSTS; do
        h=${e%%:*}
        mkdir -p "$STATE/hosts/$h"
        setsid ip netns exec "$(ns "$h")" unshare --mount --uts --pid --fork --mount-proc \
            --propagation private "$SELF" host-init "$h" </dev/null >>"$STATE/hosts/$h/init.log" 2>&1 8>&- &
    done
    # Ready when every sshd answers (probed from the controller namespace).
    for e in $SSH_HOSTS; do
        h=${e%%:*}
        for t in $(seq 100); do
            in_ns ctl bash -c "exec 3<>/dev/tcp/$NET.${e#*:}/22" 2>/dev/null && break
            [ "$t" -lt 100 ] || { cat "$STATE/hosts/$h/"*.log >&2; die "sshd of $h does not answer"; }
            sleep 0.1
        done
    done
}

# ------------------------------------------------------------------ inventory

# write_inventory FILE BIN_DIR WITH_SN5
write_inventory() {
    local f=$1 bin=$2 sn5=$3
    {
        cat <<EOF
# The rig's inventory (written by tests/ansible/rig.sh).
all:
  vars:
    ansible_user: root
    cairn_local_bin_dir: $bin
    cairn_secrets_dir: $STATE/secrets
    cairn_ec_k: 2
    cairn_ec_m: 2
    ansible_become: false
  children:
    metadata:
      hosts:
        meta1: {ansible_host: $(ip_of meta1), cairn_meta_id: 1}
        meta2: {ansible_host: $(ip_of meta2), cairn_meta_id: 2}
        meta3: {ansible_host: $(ip_of meta3), cairn_meta_id: 3}
    storage:
      hosts:
        sn1: {ansible_host: $(ip_of sn1), cairn_node_id: 1, cairn_zone: a}
        sn2: {ansible_host: $(ip_of sn2), cairn_node_id: 2, cairn_zone: a}
        sn3: {ansible_host: $(ip_of sn3), cairn_node_id: 3, cairn_zone: a}
        sn4: {ansible_host: $(ip_of sn4), cairn_node_id: 4, cairn_zone: b}
EOF
        [ "$sn5" = 0 ] || echo "        sn5: {ansible_host: $(ip_of sn5), cairn_node_id: 5, cairn_zone: b}"
        cat <<EOF
    gateway:
      hosts:
        gw1: {ansible_host: $(ip_of gw1)}
EOF
    } >"$f"
}

# The environment of every ansible command: ansible/ansible.cfg plus the rig's
# key, known hosts and scratch directories.
play_env() {
    export ANSIBLE_INVENTORY=$STATE/inventory/hosts.yml
    export ANSIBLE_PRIVATE_KEY_FILE=$STATE/ssh/client
    export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=300s -o UserKnownHostsFile=$STATE/ssh/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    export ANSIBLE_SSH_CONTROL_PATH_DIR=$STATE/cp
    export ANSIBLE_HOME=$STATE/ansible-home
    export ANSIBLE_LOCAL_TEMP=$STATE/ansible-home/tmp
    export ANSIBLE_CACHE_PLUGIN_CONNECTION=$STATE/facts
    export ANSIBLE_NOCOLOR=1
    export ANSIBLE_FORCE_COLOR=0
    export ANSIBLE_RETRY_FILES_ENABLED=0
    export ANSIBLE_CALLBACKS_ENABLED=${ANSIBLE_CALLBACKS_ENABLED:-ansible.posix.profile_tasks}
    export PROFILE_TASKS_TASK_OUTPUT_LIMIT=${PROFILE_TASKS_TASK_OUTPUT_LIMIT:-25}
}

play() {
    [ -d "$STATE/inventory" ] || die "the rig is not up"
    play_env
    local tls=()
    [ "${CAIRN_RIG_TLS:-1}" = 0 ] ||
        tls=(-e "cairn_gateway_tls_cert=$STATE/tls/cert.pem" -e "cairn_gateway_tls_key=$STATE/tls/key.pem")
    (cd "$ROOT/ansible" && in_ns ctl ansible-playbook "${tls[@]}" "$@")
}

# ------------------------------------------------------------------ run

passed=0
failed=0
timings=()
step_start=0

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
step() { step_name=$1; step_start=$(now); say "---- $step_name"; }
step_end() {
    local rc=$1 secs
    secs=$(since "$step_start")
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        timings+=("$(printf 'PASS  %-52s %6ss' "$step_name" "$secs")")
    else
        failed=$((failed + 1))
        timings+=("$(printf 'FAIL  %-52s %6ss' "$step_name" "$secs")")
    fi
    say "$step_name: $([ "$rc" -eq 0 ] && echo ok || echo FAILED) (${secs}s)"
}

# run_play LOG ARGS...: ansible-playbook with output to LOG; then show its
# outline. In the background, so that a signal is handled at once.
run_play() {
    local log=$1 rc=0
    shift
    play "$@" >"$log" 2>&1 &
    wait $! || rc=$?
    grep -E '^(PLAY RECAP|RUNNING HANDLER|fatal|failed|ERROR|[a-z0-9]+ +: ok=)|"msg": "[^"]{0,300}' "$log" |
        grep -v 'restart requested' || true
    return $rc
}

# recap_check LOG WANT: WANT is "zero" (no host changed) or a regex of the
# hosts allowed to change. Fails on any failed or unreachable host.
recap_check() {
    local log=$1 want=$2 bad
    bad=$(awk '/^PLAY RECAP/{r=1; next} r && / : ok=/' "$log" |
        awk -v want="$want" '{
            h = $1; c = 0; f = 0; u = 0
            for (i = 2; i <= NF; i++) {
                split($i, kv, "=")
                if (kv[1] == "changed") c = kv[2]
                if (kv[1] == "failed") f = kv[2]
                if (kv[1] == "unreachable") u = kv[2]
            }
            if (f > 0 || u > 0) print h " failed=" f " unreachable=" u
            else if (c > 0 && (want == "zero" || h !~ want)) print h " changed=" c
        }')
    [ -z "$bad" ] || { echo "unexpected recap: $bad" >&2; return 1; }
}

# S3 through the gateway (HTTPS, trusting the rig's certificate) from a
# client namespace. Credentials go to curl in a config file (never on a
# command line).
s3() {
    local where=$1 method=$2 path=$3
    shift 3
    in_ns "$where" curl -sS --fail-with-body --max-time 30 -K "$STATE/curl.cfg" \
        -X "$method" "https://$(ip_of gw1):9000$path" "$@"
}

write_curl_cfg() {
    local ak sk
    ak=$(head -n1 "$STATE/secrets/s3_access_key")
    sk=$(head -n1 "$STATE/secrets/s3_secret_key")
    umask 077
    printf 'aws-sigv4 = "aws:amz:us-east-1:s3"\ncacert = "%s"\nuser = "CAIRN%s:%s"\n' \
        "$STATE/tls/cert.pem" "$ak" "$sk" >"$STATE/curl.cfg"
}

# Write N objects from ctl; remember their checksums.
put_objects() {
    local tag=$1 i size f
    mkdir -p "$STATE/objects"
    s3 ctl PUT /rig -o /dev/null 2>/dev/null || true
    for i in 1 2 3 4 5; do
        size=$(( (i * i * i * 37001) % 3000000 + i ))
        f=$STATE/objects/$tag-$i
        head -c "$size" /dev/urandom >"$f"
        s3 ctl PUT "/rig/$tag-$i" -T "$f" -o /dev/null || return 1
        sha256sum <"$f" | cut -d' ' -f1 >"$f.sha256"
    done
}

# Read every object written so far back from the other client namespace.
check_objects() {
    local f key got n=0
    for f in "$STATE"/objects/*.sha256; do
        key=$(basename "$f" .sha256)
        got=$(s3 cli GET "/rig/$key" | sha256sum | cut -d' ' -f1) || return 1
        [ "$got" = "$(cat "$f")" ] || { echo "object $key reads back wrong" >&2; return 1; }
        n=$((n + 1))
    done
    say "read back $n objects from cli, all intact"
}

# systemd-analyze verify of the unit template, rendered with plain values
# (the rig itself has no systemd). It exits 0 on warnings: any output fails.
verify_unit() {
    local d=$STATE/unit out
    mkdir -p "$d"
    sed -e 's/{{ ansible_managed }}/Ansible managed/' -e 's#{{ cairn_conf_dir }}#/etc/cairn#g' \
        -e 's/{{ cairn_user }}/cairn/' -e 's/{{ cairn_group }}/cairn/' -e 's#{{ cairn_ctl }}#/bin/true#' \
        "$ROOT/ansible/roles/cairn_common/templates/cairn@.service.j2" >"$d/cairn@meta.service"
    if grep -q '{{' "$d/cairn@meta.service"; then
        echo "cairn@.service.j2 has variables verify_unit does not know" >&2
        return 1
    fi
    out=$(systemd-analyze verify "$d/cairn@meta.service" 2>&1) || true
    [ -z "$out" ] || { echo "$out" >&2; return 1; }
}

host_pid() { "$SELF" ssh "$1" "cat /run/cairn/$2.pid" 2>/dev/null; }

loadpid=
# shellcheck disable=SC2317
on_exit() {
    trap - INT TERM EXIT
    [ -z "$loadpid" ] || kill "$loadpid" 2>/dev/null || true
    down
}

run() {
    local bin=${1:-${CAIRN_BIN:-build}} logs rc b
    bin=$(cd "$bin" 2>/dev/null && pwd) || die "no binary directory ${1:-build} (run make first)"
    for b in cairn-meta cairn-node cairn-gateway; do
        [ -x "$bin/$b" ] || die "$bin/$b missing (run make first)"
    done
    trap 'on_exit; exit 143' TERM
    trap 'on_exit; exit 130' INT
    trap on_exit EXIT
    local t0
    t0=$(now)

    step "rig up (9 hosts, 2 clients)"
    up
    mkdir -p "$STATE/inventory"
    write_inventory "$STATE/inventory/hosts.yml" "$bin" 0
    # Outside the state directory, so they outlive `down`.
    logs=${CAIRN_RIG_LOGS:-${TMPDIR:-/tmp}/cairn-ansible-logs}
    rm -rf "$logs"
    mkdir -p "$logs"
    say "logs in $logs"
    step_end 0

    step "syntax-check, ansible-lint, systemd-analyze verify"
    rc=0
    if command -v systemd-analyze >/dev/null; then verify_unit || rc=1; fi
    play --syntax-check site.yml verify.yml rolling.yml >"$logs/syntax.log" 2>&1 || { rc=1; cat "$logs/syntax.log"; }
    (cd "$ROOT/ansible" && ANSIBLE_HOME=$STATE/ansible-home ansible-lint --offline -q site.yml verify.yml rolling.yml) \
        >"$logs/lint.log" 2>&1 || { rc=1; cat "$logs/lint.log"; }
    step_end $rc

    step "site.yml run 1 (deploy 7 hosts)"
    rc=0
    run_play "$logs/run1.log" site.yml || rc=1
    [ $rc -ne 0 ] || recap_check "$logs/run1.log" '.' || rc=1
    step_end $rc
    if [ $rc -ne 0 ]; then
        summary "$t0"
        return 1
    fi
    write_curl_cfg

    step "site.yml run 2 (changed=0)"
    rc=0
    run_play "$logs/run2.log" site.yml || rc=1
    [ $rc -ne 0 ] || recap_check "$logs/run2.log" zero || rc=1
    step_end $rc

    step "verify.yml (health, S3 PUT/GET/DELETE from gw1)"
    rc=0
    run_play "$logs/verify1.log" verify.yml || rc=1
    step_end $rc

    step "HTTPS only on the S3 port"
    rc=0
    https_checks "$logs" || rc=1
    step_end $rc

    step "objects from ctl read back from cli"
    rc=0
    { put_objects a && check_objects; } || rc=1
    step_end $rc

    step "one tunable (gateway threads): only the gateway restarts"
    rc=0
    local before_meta before_node
    before_meta=$(host_pid meta1 meta)
    before_node=$(host_pid sn1 node)
    run_play "$logs/tunable.log" site.yml -e cairn_gateway_threads=3 || rc=1
    [ $rc -ne 0 ] || recap_check "$logs/tunable.log" '^gw1$' || rc=1
    grep -q 'RUNNING HANDLER \[cairn_common : Restart cairn-gateway\]' "$logs/tunable.log" || { echo "gateway not restarted" >&2; rc=1; }
    if grep -E 'RUNNING HANDLER .*Restart cairn-(meta|node)' "$logs/tunable.log"; then rc=1; fi
    if [ -z "$before_meta" ] || [ "$before_meta" != "$(host_pid meta1 meta)" ]; then echo "meta1 restarted" >&2; rc=1; fi
    if [ -z "$before_node" ] || [ "$before_node" != "$(host_pid sn1 node)" ]; then echo "sn1 restarted" >&2; rc=1; fi
    check_objects || rc=1
    step_end $rc

    step "renewed certificate (rolling.yml --limit gateway)"
    rc=0
    renew_tls "$logs" || rc=1
    step_end $rc

    step "add storage host sn5 (-e rebalance=true), objects still read back"
    rc=0
    add_node_rebalance "$logs" "$bin" || rc=1
    step_end $rc

    step "rolling.yml (one host at a time) under client load"
    rc=0
    rolling_under_load "$logs" || rc=1
    check_objects || rc=1
    step_end $rc

    step "verify.yml after all changes; no TLS key in any log"
    rc=0
    run_play "$logs/verify2.log" verify.yml || rc=1
    keys_not_logged "$logs" || rc=1
    step_end $rc

    step "rig down"
    trap - EXIT INT TERM
    down
    step_end 0
    summary "$t0"
}

summary() {
    echo
    printf '%s\n' "${timings[@]}"
    echo "total $(since "$1")s; logs in $logs"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# cairn-admin on storage host $1 (with its node.conf), over SSH from ctl.
host_admin() { local h=$1; shift; "$SELF" ssh "$h" "/opt/cairn/bin/cairn-admin --config /etc/cairn/node.conf $*"; }
# json_get KEY: that top-level value of the JSON object on stdin.
json_get() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# Fragment files on test host $1's node (read from the root namespace: no network).
node_frags() { find "$STATE/hosts/$1/upper/var/lib/cairn/node/frags" -type f 2>/dev/null | wc -l; }
# task_changed LOG TASK HOST: did the task named TASK report a host matching
# the regex HOST changed?
task_changed() {
    awk -v task="TASK [$2] " -v host="^($3)$" '
        /^TASK \[/ { t = (index($0, task) == 1) }
        t && /^changed: \[[^]]*\]$/ { h = substr($0, 11, length($0) - 11); if (h ~ host) f = 1 }
        END { exit !f }' "$1"
}

# sn5 enters the inventory; site.yml -e rebalance=true must register it and
# move existing objects' fragments onto it before any new write: sn5 holds
# fragments, a dry run finds nothing left to move, every object reads back.
# New writes then land on sn5 too.
add_node_rebalance() {
    local logs=$1 bin=$2 rc=0 frags moved left after
    write_inventory "$STATE/inventory/hosts.yml" "$bin" 1
    run_play "$logs/addnode.log" site.yml -e cairn_gateway_threads=3 -e rebalance=true || rc=1
    [ $rc -ne 0 ] || recap_check "$logs/addnode.log" '.' || rc=1
    task_changed "$logs/addnode.log" 'cairn_storage : Register the node in the cluster map' sn5 ||
        { echo "the play did not register sn5" >&2; rc=1; }
    task_changed "$logs/addnode.log" 'cairn_storage : Rebalance' 'sn[0-9]+' ||
        { echo "the rebalance task did not run" >&2; rc=1; }
    frags=$(node_frags sn5)
    moved=$(host_admin sn1 --json rebalance status | json_get moved_fragments) || moved=unknown
    left=$(host_admin sn1 --json rebalance --dry-run | json_get fragments) || left=unknown
    say "rebalance moved $moved fragments; sn5 holds $frags fragment files before any new write;" \
        "a dry run now plans $left fragments"
    [ "$frags" -gt 0 ] || { echo "the rebalance moved nothing onto sn5" >&2; rc=1; }
    [ "$left" = 0 ] || { echo "fragments still misplaced after the rebalance: $left" >&2; rc=1; }
    check_objects || rc=1
    put_objects b || rc=1
    check_objects || rc=1
    after=$(node_frags sn5)
    say "sn5 holds $after fragment files after 5 new objects"
    [ "$after" -gt "$frags" ] || { echo "no new fragment was placed on sn5" >&2; rc=1; }
    return $rc
}

# The S3 port speaks HTTPS only, with the certificate the play installed:
# verify.yml went through https://gw1; from ctl, a request trusting the rig's
# certificate answers, one trusting only the system's CAs fails certificate
# verification (curl exit 60), and plain HTTP gets no HTTP answer. On gw1
# the copies have their owners and modes, gateway.conf names them, and the
# gateway logged that it listens with https.
https_checks() {
    local logs=$1 rc=0 gw out code
    gw=$(ip_of gw1):9000
    grep -F "S3 round trip through https://$gw: ok" "$logs/verify1.log" ||
        { echo "verify.yml did not go through https://$gw" >&2; rc=1; }
    out=$(in_ns ctl curl -sS -v --max-time 10 --cacert "$STATE/tls/cert.pem" -o /dev/null \
        -w 'HTTP %{http_code}\n' "https://$gw/_cairn/health" 2>&1) || true
    say "https://$gw trusting the rig's certificate: $(grep -E 'SSL connection using|^HTTP [0-9]' <<<"$out" | tr -d '*' | xargs)"
    grep -q '^HTTP 200' <<<"$out" || { echo "$out" >&2; rc=1; }
    code=0
    in_ns ctl curl -sS --max-time 10 -o /dev/null "https://$gw/_cairn/health" 2>"$STATE/curl.err" || code=$?
    say "https://$gw trusting the system's CAs: curl exit $code ($(head -n1 "$STATE/curl.err"))"
    [ "$code" = 60 ] || rc=1
    code=0
    out=$(in_ns ctl curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://$gw/_cairn/health" 2>"$STATE/curl.err") || code=$?
    say "plain http://$gw: curl exit $code, HTTP status $out ($(head -n1 "$STATE/curl.err"))"
    [ "$code" != 0 ] && [ "$out" = 000 ] || rc=1
    out=$("$SELF" ssh gw1 "stat -c '%n %U:%G %a' /etc/cairn/tls /etc/cairn/tls/cert.pem /etc/cairn/tls/key.pem; grep '^tls_' /etc/cairn/gateway.conf") || true
    say "on gw1: $(xargs <<<"$out")"
    [ "$out" = "/etc/cairn/tls root:cairn 750
/etc/cairn/tls/cert.pem root:cairn 644
/etc/cairn/tls/key.pem root:cairn 640
tls_cert = /etc/cairn/tls/cert.pem
tls_key = /etc/cairn/tls/key.pem" ] || rc=1
    out=$(grep -F '(https,' "$STATE/hosts/gw1/upper/var/log/cairn/gateway.log" | tail -n1) || true
    say "gw1 log: ${out:-no https listener logged}"
    [ -n "$out" ] || rc=1
    return $rc
}

# A new certificate and key at the same controller paths, rolled out with
# rolling.yml to the gateways only: both copies change, the gateway restarts
# (a new pid) and serves the new certificate (a client trusting only the old
# one now fails verification); objects read back through it.
renew_tls() {
    local logs=$1 rc=0 before code
    before=$(host_pid gw1 gateway)
    make_tls_pair
    run_play "$logs/renew.log" rolling.yml --limit gateway -e cairn_gateway_threads=3 || rc=1
    [ $rc -ne 0 ] || recap_check "$logs/renew.log" '^gw1$' || rc=1
    task_changed "$logs/renew.log" 'cairn_common : Install the TLS certificate' gw1 ||
        { echo "the new certificate was not installed" >&2; rc=1; }
    task_changed "$logs/renew.log" 'cairn_common : Install the TLS key' gw1 ||
        { echo "the new key was not installed" >&2; rc=1; }
    grep -q 'RUNNING HANDLER \[cairn_common : Restart cairn-gateway\]' "$logs/renew.log" ||
        { echo "gateway not restarted" >&2; rc=1; }
    if [ -z "$before" ] || [ "$before" = "$(host_pid gw1 gateway)" ]; then echo "gw1 kept its pid" >&2; rc=1; fi
    code=0
    in_ns ctl curl -sS --max-time 10 --cacert "$STATE/tls/old-cert.pem" -o /dev/null \
        "https://$(ip_of gw1):9000/_cairn/health" 2>"$STATE/curl.err" || code=$?
    say "trusting only the old certificate: curl exit $code ($(head -n1 "$STATE/curl.err"))"
    [ "$code" = 60 ] || rc=1
    check_objects || rc=1
    return $rc
}

# No line of either TLS key's PEM body appears in any play's output.
keys_not_logged() {
    local logs=$1 k line n=0
    for k in "$STATE/tls/key.pem" "$STATE/tls/old-key.pem"; do
        [ -r "$k" ] || continue
        while read -r line; do
            case $line in -----*) continue ;; esac
            n=$((n + 1))
            if grep -rqF -- "$line" "$logs"; then
                echo "a line of $k is in the logs" >&2
                return 1
            fi
        done <"$k"
    done
    say "none of the $n lines of the TLS keys' PEM bodies is in $logs"
}

# with_retry LOG COMMAND...: run COMMAND until it succeeds, at most 50
# times 0.2 s apart, as an S3 SDK retries; log each retry.
with_retry() {
    local log=$1 n
    shift
    for n in $(seq 50); do
        "$@" 2>>"$log" && return 0
        echo "retry $n: $*" >>"$log"
        sleep 0.2
    done
    return 1
}

# A client in cli PUTs and GETs in a loop while rolling.yml restarts every
# host one at a time; a request that still fails after its retries fails
# the step. Retries are counted and reported.
rolling_under_load() {
    local logs=$1 rc=0 fails
    : >"$logs/load.log"
    (
        i=0
        # Ends when told, or when this script is gone (killed outright).
        while [ ! -e "$STATE/load.stop" ] && kill -0 $$ 2>/dev/null; do
            i=$((i + 1))
            head -c 70000 /dev/urandom >"$STATE/load.obj"
            if ! with_retry "$logs/load.log" s3 cli PUT "/rig/load-$i" -T "$STATE/load.obj" -o /dev/null; then
                echo "FAILED PUT load-$i" >>"$logs/load.log"
            elif ! with_retry "$logs/load.log" s3 cli GET "/rig/load-$i" -o "$STATE/load.back" ||
                ! cmp -s "$STATE/load.obj" "$STATE/load.back"; then
                echo "FAILED GET load-$i" >>"$logs/load.log"
            else
                echo "ok $i" >>"$logs/load.log"
            fi
            sleep 0.1
        done
    ) 8>&- &
    loadpid=$!
    run_play "$logs/rolling.log" rolling.yml -e cairn_gateway_threads=3 -e cairn_rolling_restart=true || rc=1
    touch "$STATE/load.stop"
    wait "$loadpid" || true
    loadpid=
    rm -f "$STATE/load.stop"
    fails=$(grep -c FAILED "$logs/load.log" || true)
    say "client load during the rolling restart: $(grep -c '^ok' "$logs/load.log" || true) PUT+GET pairs ok," \
        "$fails failed, $(grep -c '^retry' "$logs/load.log" || true) retries"
    [ "$fails" -eq 0 ] || { grep -B2 FAILED "$logs/load.log" | head -n 20 >&2; rc=1; }
    return $rc
}

# ------------------------------------------------------------------ main

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
host-init) host_init "$@" ;;
up) take_lock; up; mkdir -p "$STATE/inventory" "$STATE/logs"
    write_inventory "$STATE/inventory/hosts.yml" "$(cd "${1:-${CAIRN_BIN:-$ROOT/build}}" && pwd)" 0
    say "up; inventory in $STATE/inventory/hosts.yml" ;;
down) take_lock; down ;;
run) take_lock; run "$@" ;;
play) play "$@" ;;
ssh)
    [ $# -ge 1 ] || die "usage: rig.sh ssh HOST [CMD]"
    h=$1; shift
    in_ns ctl ssh -F "$STATE/ssh/ssh_config" "$(ip_of "$h")" "$@" ;;
*) sed -n '2,10p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
