#!/usr/bin/env bash
# bench.sh — `make bench`: measure a fresh local cairn cluster with cairn-bench.
#
#   tools/bench.sh BUILD_DIR
#
# Starts the standard local cluster (tools/cairn-cluster: 3 metadata
# replicas, 6 nodes, EC 4+2, 1 gateway) and an nginx in a temporary
# directory, runs a fixed set of scenarios, each BENCH_REPEAT times, and
# prints one table of the medians over the repeats (tools/bench/summary.py),
# then how each figure compares with the targets of the performance issue.
# Beside each scenario: the CPU time the servers used in the measured phase
# (user+sys of all cluster processes, or of nginx for its rows, from
# /proc/PID/stat, per GB moved or per operation; on a shared machine it
# holds steadier than throughput does), the gateway's peak RSS (VmHWM,
# reset before each run through /proc/PID/clear_refs), and how many cores
# other programs kept busy meanwhile (from /proc/stat), so a noisy run
# shows itself.
#
# References measured in the same run: single-core MD5 and SHA-256 speed
# (openssl speed, 1 MiB blocks), one thread's memcpy bandwidth, and a
# one-hop baseline: nginx (sendfile, one worker per core, run unprivileged
# on a free 127.0.0.1 port with everything under the bench directory)
# serving 64 MiB and 4 KiB files that hold the same bytes as the cairn
# objects, fetched by the same client (cairn-bench get --raw, every byte
# checked).
#
# Scenarios:
#   nginx GET 64 MiB at concurrency 1 and 4, 4 KiB at 32;
#   PUT and GET of 64 MiB objects at concurrency 1 and 4; the same GETs
#   with 2 of the 6 storage nodes killed (kill -9), restarted afterwards;
#   PUT, GET, HEAD, DELETE of 4 KiB and 64 KiB objects at concurrency 32;
#   4 KiB GETs at concurrency 8 alone and while 64 MiB PUTs run at
#   concurrency 4 (is the gateway's event loop still responsive?);
#   a 1 MiB mixed load (get/put/delete 60/30/10) at concurrency 8;
#   ListObjectsV2 pages of 1,000 keys in a bucket of 10,000 keys and in one
#   of BENCH_LIST_KEYS keys. Those buckets are filled with empty objects by
#   `cairn-bench load` (records committed straight to the metadata tier;
#   an S3 PUT per key would take far too long), and the big one only for
#   BENCH_LIST_LOAD_S seconds at most: the table says how many keys it got.
# GETs, HEADs and DELETEs use the objects the PUTs of the same size wrote;
# GETs verify every byte.
#
# Environment:
#   BENCH_REPEAT       runs per scenario (default 3)
#   BENCH_DURATION     seconds per run (default 3)
#   BENCH_LIST_KEYS    keys of the big listing bucket (default 1000000)
#   BENCH_LIST_LOAD_S  longest time to spend filling it (default 240)
#   BENCH_BUDGET       seconds this script should take at most (default 530, so
#                      that `make bench` with a fresh build stays under 10
#                      minutes): filling the big bucket stops early enough
#   BENCH_NGINX=0      skip the nginx baseline
#   BENCH_OUT          directory to keep the raw JSON, the table and the logs in
#   BENCH_KEEP=1       keep the bench directory (it is printed)
# Exit status: 0 when every operation succeeded, 1 otherwise, 130 when
# interrupted. Every process it started is stopped and its directory removed
# on any exit, Ctrl-C included.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || { echo "bench: no build directory $1 (run make first)" >&2; exit 2; }
bench=$build/cairn-bench
[ -x "$bench" ] || { echo "bench: $bench not found (make first)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench: python3 is needed for the summary" >&2; exit 2; }

repeat=${BENCH_REPEAT:-3}
dur=${BENCH_DURATION:-3}
list_keys=${BENCH_LIST_KEYS:-1000000}
list_load_s=${BENCH_LIST_LOAD_S:-240}
budget=${BENCH_BUDGET:-530}
use_nginx=${BENCH_NGINX:-1}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ "$use_nginx" = 0 ] || [ -x "$nginx_bin" ] || {
    echo "bench: nginx not found (make deps installs it; BENCH_NGINX=0 skips the baseline)" >&2
    exit 2
}

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench.XXXXXX")
chmod 711 "$work" # nginx runs as nobody and must reach $work/nginx
cdir=$work/cluster
res=$work/results
ngx=$work/nginx
mkdir -p "$res"

child=      # the cairn-bench run being waited for
busy=       # a background load (PUTs while GETs are measured)
nginx_pid=

# Stop what we started, by pid: the current run, the background load, nginx, the cluster.
cleanup() {
    local rc=$?
    trap - INT TERM
    local p
    for p in $child $busy; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
    if [ -n "$nginx_pid" ]; then
        kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
    fi
    CAIRN_BIN=$build "$root/tools/cairn-cluster" stop "$cdir" >/dev/null 2>&1 || true
    if [ -n "${BENCH_OUT:-}" ]; then
        mkdir -p "$BENCH_OUT"
        cp -r "$res"/. "$BENCH_OUT"/
        [ -d "$cdir/logs" ] && cp -r "$cdir/logs" "$BENCH_OUT"/ || true
        [ -f "$ngx/logs/error.log" ] && cp "$ngx/logs/error.log" "$BENCH_OUT"/nginx-error.log || true
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $work"
    else
        rm -rf "$work"
    fi
    echo "bench: finished in $((SECONDS - t_start)) s"
    exit $rc
}
t_start=$SECONDS
trap cleanup EXIT
trap 'exit 130' INT TERM

# run OUT ERR CMD...: run a command in the background, stdout to OUT and
# stderr to ERR ("+" for OUT as well), and wait for it, so that a signal
# reaches the trap at once (bash defers traps while a foreground command
# runs) and cleanup can stop the command. The shell's own output is never
# redirected, so cleanup's messages reach the terminal.
run() {
    local out=$1 err=$2
    shift 2
    if [ "$err" = + ]; then
        "$@" >"$out" 2>&1 &
    else
        "$@" >"$out" 2>"$err" &
    fi
    child=$!
    local rc=0
    wait "$child" || rc=$?
    child=
    return $rc
}

{
    echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    if rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null); then
        git -C "$root" diff --quiet HEAD 2>/dev/null || rev="$rev (with local changes)"
    else
        rev="unknown (not a git checkout)"
    fi
    echo "commit:    $rev"
    echo "cpu:       $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "memory:    $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel:    $(uname -r)"
    echo "disk:      $(df -h "$work" | awk 'NR == 2 {print $1 " (" $2 ")"}')"
    echo "load avg:  $(cut -d" " -f1-3 /proc/loadavg) (before the cluster starts)"
    echo "runs:      $repeat x ${dur}s per scenario, medians reported"
    [ "$use_nginx" = 0 ] || echo "nginx:     $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
} | tee "$res/conditions.txt"

run "$res/cluster-start.log" + env CAIRN_BIN="$build" "$root/tools/cairn-cluster" start "$cdir" || {
    cat "$res/cluster-start.log" >&2
    echo "bench: the cluster did not start" >&2
    exit 1
}
gw_pid=$(cat "$cdir/pids/gateway-1.pid")
envf=$cdir/cluster.env

# Is process $1 running (not gone, not a zombie waiting to be reaped)?
alive() {
    local st
    st=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ "$st" != X ]
}

# Every live cluster process, for cairn-bench --watch-pids.
cluster_pids() {
    local f p out=
    for f in "$cdir"/pids/*.pid; do
        p=$(cat "$f")
        alive "$p" && out+="${out:+,}$p"
    done
    echo "$out"
}
watch=$(cluster_pids)
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$gw_pid/status"; }
rss_reset() { echo 5 >"/proc/$gw_pid/clear_refs" 2>/dev/null || true; }

# run_case NAME RUN ARGS...: one run of cairn-bench (JSON, with the CPU time
# of the processes in $watch) and the gateway's peak RSS.
run_case() {
    local name=$1 r=$2
    shift 2
    rss_reset
    local rc=0
    run "$res/$name.$r.json" "$res/$name.$r.err" "$bench" --json -q --watch-pids "$watch" "$@" || rc=$?
    printf '{"hwm_kb": %s, "rc": %d}\n' "$(hwm_kb)" "$rc" >"$res/$name.$r.extra"
    if [ "$rc" -ne 0 ]; then
        echo "bench: $name run $r: cairn-bench exited $rc" >&2
        head -5 "$res/$name.$r.err" >&2 || true
    fi
    printf '  %-16s run %d: %s\n' "$name" "$r" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
t = d["total"]
print("%.1f MB/s, %.1f ops/s, %d errors, servers %.2f CPU-s, machine %.2f of %.2f CPU-s busy" % (t["mb_per_s"],
      t["ops_per_s"], t["errors"], d.get("watched_cpu_s", -1), d["machine_cpu_s"]["busy"], d["elapsed_s"] * int(sys.argv[2])))' \
        "$res/$name.$r.json" "$(nproc)" 2>/dev/null || echo "no result")"
}

# Every repeat of one scenario: repeat NAME ARGS... (an "@R" in ARGS is the run number).
repeat() {
    local name=$1 r
    shift
    for r in $(seq 1 "$repeat"); do
        run_case "$name" "$r" "${@//@R/$r}"
    done
}

# keys_of NAME RUN: how many keys that put run wrote.
keys_of() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["keys"])' "$res/$1.$2.json" 2>/dev/null || echo 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

s3=(--env "$envf")

echo
echo "references (one core):"
ref() {
    openssl speed -evp "$1" -bytes 1048576 -seconds 1 2>/dev/null |
        awk -v alg="$1" '$1 == alg {v = $NF; sub(/k$/, "", v); printf "%.0f\n", v * 1000 / 1e6}'
}
md5=$(ref md5)
sha=$(ref sha256)
mcp=$("$bench" memcpy --json)
echo "  md5 ${md5:-?} MB/s, sha256 ${sha:-?} MB/s (openssl speed -evp, 1 MiB blocks); memcpy $mcp"
printf '{"md5_mb_s": %s, "sha256_mb_s": %s, "memcpy": %s}\n' "${md5:-null}" "${sha:-null}" "$mcp" >"$res/references.json"

# ---------------------------------------------------------------- nginx, the one-hop baseline

start_nginx() {
    mkdir -p "$ngx/www" "$ngx/tmp" "$ngx/logs"
    "$bench" files --dir "$ngx/www" --prefix ngx64 -s 64MiB --objects 4
    "$bench" files --dir "$ngx/www" --prefix ngx4k -s 4KiB --objects 1000
    ngx_port=$(free_port)
    cat >"$ngx/nginx.conf" <<EOF
# The one-hop baseline of tools/bench.sh: static files, sendfile, no logs.
daemon off;
worker_processes $(nproc);
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path $ngx/tmp/body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$ngx_port;
        root $ngx/www;
    }
}
EOF
    local as=()
    if [ "$(id -u)" = 0 ]; then # never a root web server: drop to nobody
        chown -R nobody:nogroup "$ngx"
        as=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
    fi
    "${as[@]}" "$nginx_bin" -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/logs/error.log" &
    nginx_pid=$!
    local i
    for i in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$ngx_port") 2>/dev/null; then
            break
        fi
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$ngx_port") 2>/dev/null || {
        cat "$ngx/logs/error.log" >&2 || true
        echo "bench: nginx did not start" >&2
        exit 1
    }
    # the master and its workers (forked after the port opened)
    local workers=
    for i in $(seq 1 50); do
        workers=$(ps -o pid= --ppid "$nginx_pid" | xargs)
        [ "$(echo "$workers" | wc -w)" -ge "$(nproc)" ] && break
        sleep 0.1
    done
    watch=$(echo "$nginx_pid $workers" | tr -s ' ' ',')
}

echo
echo "runs:"
if [ "$use_nginx" != 0 ]; then
    start_nginx
    ngx_url=http://127.0.0.1:$ngx_port
    repeat nginx64-c1 get --raw --endpoint "$ngx_url" --prefix ngx64 --objects 4 --no-prepare -c 1 -d "$dur"
    repeat nginx64-c4 get --raw --endpoint "$ngx_url" --prefix ngx64 --objects 4 --no-prepare -c 4 -d "$dur"
    repeat nginx4k-c32 get --raw --endpoint "$ngx_url" --prefix ngx4k --objects 1000 --no-prepare -c 32 -d "$dur"
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
    rm -rf "$ngx/www"
    watch=$(cluster_pids)
fi

# ---------------------------------------------------------------- large objects

repeat put64-c1 put "${s3[@]}" -s 64MiB -c 1 -d "$dur" --prefix put64-c1-@R
repeat put64-c4 put "${s3[@]}" -s 64MiB -c 4 -d "$dur" --prefix put64-c4-@R
n1=$(keys_of put64-c1 1)
n4=$(keys_of put64-c4 1)
repeat get64-c1 get "${s3[@]}" -c 1 -d "$dur" --prefix put64-c1-1 --objects "$n1" --no-prepare
repeat get64-c4 get "${s3[@]}" -c 4 -d "$dur" --prefix put64-c4-1 --objects "$n4" --no-prepare

# Degraded: two storage nodes die (no warning, no clean shutdown); every
# object has a fragment on each of the 6 nodes, so most reads must decode.
echo "  (killing node-1 and node-2)"
victims="$(cat "$cdir/pids/node-1.pid") $(cat "$cdir/pids/node-2.pid")"
kill -9 $victims
for p in $victims; do
    while alive "$p"; do sleep 0.05; done
done
watch=$(cluster_pids)
repeat deg64-c1 get "${s3[@]}" -c 1 -d "$dur" --prefix put64-c1-1 --objects "$n1" --no-prepare
repeat deg64-c4 get "${s3[@]}" -c 4 -d "$dur" --prefix put64-c4-1 --objects "$n4" --no-prepare
run "$res/cluster-restart.log" + env CAIRN_BIN="$build" "$root/tools/cairn-cluster" start "$cdir" || {
    tail -5 "$res/cluster-restart.log" >&2
    echo "bench: the killed nodes did not come back" >&2
    exit 1
}
echo "  (node-1 and node-2 restarted)"
watch=$(cluster_pids)

# ---------------------------------------------------------------- small objects

repeat put4k-c32 put "${s3[@]}" -s 4KiB -c 32 -d "$dur" --prefix put4k-@R
n=$(keys_of put4k-c32 1)
repeat get4k-c32 get "${s3[@]}" -c 32 -d "$dur" --prefix put4k-1 --objects "$n" --no-prepare
repeat head4k-c32 head "${s3[@]}" -c 32 -d "$dur" --prefix put4k-1 --objects "$n" --no-prepare

# Loop responsiveness: small GETs alone, then while 64 MiB PUTs keep the
# gateway's cores busy (the PUTs start first and end after the GETs).
repeat get4k-c8 get "${s3[@]}" -c 8 -d "$dur" --prefix put4k-1 --objects "$n" --no-prepare
for r in $(seq 1 "$repeat"); do
    "$bench" "${s3[@]}" --json -q put -s 64MiB -c 4 -d "$(python3 -c "print($dur + 2)")" --prefix busy-$r \
        >"$res/busyput.$r.json" 2>"$res/busyput.$r.err" &
    busy=$!
    sleep 1
    run_case get4k-c8-busy "$r" get "${s3[@]}" -c 8 -d "$dur" --prefix put4k-1 --objects "$n" --no-prepare
    wait "$busy" || echo "bench: the background PUT load of run $r failed" >&2
    busy=
done

for r in $(seq 1 "$repeat"); do
    run_case del4k-c32 "$r" delete "${s3[@]}" -c 32 -d "$dur" --prefix "put4k-$r" --objects "$(keys_of put4k-c32 "$r")" \
        --no-prepare
done

repeat put64k-c32 put "${s3[@]}" -s 64KiB -c 32 -d "$dur" --prefix put64k-@R
n=$(keys_of put64k-c32 1)
repeat get64k-c32 get "${s3[@]}" -c 32 -d "$dur" --prefix put64k-1 --objects "$n" --no-prepare
repeat head64k-c32 head "${s3[@]}" -c 32 -d "$dur" --prefix put64k-1 --objects "$n" --no-prepare
for r in $(seq 1 "$repeat"); do
    run_case del64k-c32 "$r" delete "${s3[@]}" -c 32 -d "$dur" --prefix "put64k-$r" \
        --objects "$(keys_of put64k-c32 "$r")" --no-prepare
done

repeat mixed1m-c8 mixed "${s3[@]}" -s 1MiB -c 8 -d "$dur" --objects 64 --prefix mixed-@R --mix get=60,put=30,delete=10

# ---------------------------------------------------------------- listings

# load NAME BUCKET KEYS SECONDS: fill BUCKET with empty objects list/o<i>.
load() {
    local rc=0
    run "$res/$1.json" "$res/$1.err" "$bench" load --cluster-config "$cdir/cluster.conf" --bucket "$2" --prefix list \
        --objects "$3" -c 64 -d "$4" --json --watch-pids "$watch" || rc=$?
    printf '  %-16s %s\n' "$1" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("%d of %d keys in %.1f s, %.0f per second, %d failed, cluster %.3f CPU-ms per key" % (d["loaded"], d["wanted"],
      d["elapsed_s"], d["records_per_s"], d["failed"], d.get("watched_cpu_s", -1) * 1e3 / max(d["loaded"], 1)))' \
        "$res/$1.json" 2>/dev/null || echo "failed (exit $rc)")"
    [ "$rc" -eq 0 ] || head -5 "$res/$1.err" >&2 || true
}
load load10k bench-list-10k 10000 120
repeat list10k-c1 list "${s3[@]}" --bucket bench-list-10k --no-create-bucket --prefix list --no-prepare -c 1 -d "$dur"
# The big bucket gets what is left of the time budget, keeping enough for its listing runs and the summary.
left=$((budget - (SECONDS - t_start) - repeat * (dur + 2) - 15))
[ "$left" -lt "$list_load_s" ] && list_load_s=$((left > 10 ? left : 10))
load loadbig bench-list-big "$list_keys" "$list_load_s"
repeat listbig-c1 list "${s3[@]}" --bucket bench-list-big --no-create-bucket --prefix list --no-prepare -c 1 -d "$dur"

echo
python3 "$root/tools/bench/summary.py" "$res" "$((SECONDS - t_start))" | tee "$res/table.txt"
st=$(cat "$res/status" 2>/dev/null || echo 1)
[ "$st" = 0 ] || echo "bench: some operations failed (see above)" >&2
exit "$st"
