#!/usr/bin/env bash
# bench.sh — `make bench`: measure a fresh local cairn cluster with cairn-bench.
#
#   tools/bench.sh BUILD_DIR
#
# Starts the standard local cluster (tools/cairn-cluster: 1 metadata, 6
# nodes, EC 4+2, 1 gateway) in a temporary directory, runs a fixed set of
# scenarios, each BENCH_REPEAT times, and prints one table of the medians
# over the repeats. Beside each scenario: the CPU time all cluster processes
# used in the measured phase (user+sys from /proc/PID/stat, per GB moved or
# per operation; on a shared machine it holds steadier than throughput
# does), the gateway's peak RSS (VmHWM, reset before each run through
# /proc/PID/clear_refs), and how many cores other programs kept busy
# meanwhile (from /proc/stat), so a noisy run shows itself.
# References measured in the same run: single-core MD5 and SHA-256 speed
# (openssl speed, 1 MiB blocks).
#
# Scenarios: PUT and GET of 64 MiB objects at concurrency 1 and 4, PUT and
# GET of 4 KiB objects at concurrency 16, a 1 MiB mixed load (get/put/delete
# 60/30/10) at concurrency 8. GETs read the objects the PUT of the same
# scenario wrote, and verify every byte.
#
# Environment:
#   BENCH_REPEAT    runs per scenario (default 3)
#   BENCH_DURATION  seconds per run (default 4)
#   BENCH_OUT       directory to keep the raw JSON, the table and the logs in
#   BENCH_KEEP=1    keep the cluster directory (it is printed)
# Exit status: 0 when every operation succeeded, 1 otherwise.
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
dur=${BENCH_DURATION:-4}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench.XXXXXX")
cdir=$work/cluster
res=$work/results
mkdir -p "$res"

cleanup() {
    local rc=$?
    CAIRN_BIN=$build "$root/tools/cairn-cluster" stop "$cdir" >/dev/null 2>&1 || true
    if [ -n "${BENCH_OUT:-}" ]; then
        mkdir -p "$BENCH_OUT"
        cp -r "$res"/. "$BENCH_OUT"/
        [ -d "$cdir/logs" ] && cp -r "$cdir/logs" "$BENCH_OUT"/ || true
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
} | tee "$res/conditions.txt"

CAIRN_BIN=$build "$root/tools/cairn-cluster" start "$cdir" >"$res/cluster-start.log" 2>&1 || {
    cat "$res/cluster-start.log" >&2
    echo "bench: the cluster did not start" >&2
    exit 1
}
gw_pid=$(cat "$cdir/pids/gateway-1.pid")
envf=$cdir/cluster.env

# Every cluster process, for cairn-bench --watch-pids.
cluster_pids=$(cat "$cdir"/pids/*.pid | paste -sd, -)
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$gw_pid/status"; }
rss_reset() { echo 5 >"/proc/$gw_pid/clear_refs" 2>/dev/null || true; }

# run_case NAME RUN ARGS...: one run of cairn-bench (JSON, with the cluster's CPU time) and the gateway's peak RSS.
run_case() {
    local name=$1 r=$2
    shift 2
    rss_reset
    local rc=0
    "$bench" --env "$envf" --json -q --watch-pids "$cluster_pids" "$@" >"$res/$name.$r.json" 2>"$res/$name.$r.err" || rc=$?
    printf '{"hwm_kb": %s, "rc": %d}\n' "$(hwm_kb)" "$rc" >"$res/$name.$r.extra"
    if [ "$rc" -ne 0 ]; then
        echo "bench: $name run $r: cairn-bench exited $rc" >&2
        head -5 "$res/$name.$r.err" >&2 || true
    fi
    printf '  %-12s run %d: %s\n' "$name" "$r" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
t = d["total"]
print("%.1f MB/s, %.1f ops/s, %d errors, cluster %.2f CPU-s, machine %.2f of %.2f CPU-s busy" % (t["mb_per_s"],
      t["ops_per_s"], t["errors"], d.get("watched_cpu_s", -1), d["machine_cpu_s"]["busy"], d["elapsed_s"] * int(sys.argv[2])))' \
        "$res/$name.$r.json" "$(nproc)" 2>/dev/null || echo "no result")"
}

# keys NAME RUN: how many keys that put run wrote.
keys_of() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["keys"])' "$res/$1.$2.json"; }

echo
echo "references (one core):"
ref() {
    openssl speed -evp "$1" -bytes 1048576 -seconds 1 2>/dev/null |
        awk -v alg="$1" '$1 == alg {v = $NF; sub(/k$/, "", v); printf "%.0f\n", v * 1000 / 1e6}'
}
md5=$(ref md5)
sha=$(ref sha256)
echo "  md5 ${md5:-?} MB/s, sha256 ${sha:-?} MB/s (openssl speed -evp, 1 MiB blocks)"
printf '{"md5_mb_s": %s, "sha256_mb_s": %s}\n' "${md5:-null}" "${sha:-null}" >"$res/references.json"

echo
echo "runs:"
for r in $(seq 1 "$repeat"); do
    run_case put64-c1 "$r" put -s 64MiB -c 1 -d "$dur" --prefix "put64-c1-$r"
done
for r in $(seq 1 "$repeat"); do
    run_case put64-c4 "$r" put -s 64MiB -c 4 -d "$dur" --prefix "put64-c4-$r"
done
n1=$(keys_of put64-c1 1 2>/dev/null || echo 1)
n4=$(keys_of put64-c4 1 2>/dev/null || echo 1)
for r in $(seq 1 "$repeat"); do
    run_case get64-c1 "$r" get -c 1 -d "$dur" --prefix put64-c1-1 --objects "$n1" --no-prepare
done
for r in $(seq 1 "$repeat"); do
    run_case get64-c4 "$r" get -c 4 -d "$dur" --prefix put64-c4-1 --objects "$n4" --no-prepare
done
for r in $(seq 1 "$repeat"); do
    run_case put4k-c16 "$r" put -s 4KiB -c 16 -d "$dur" --prefix "put4k-$r"
done
n=$(keys_of put4k-c16 1 2>/dev/null || echo 1)
for r in $(seq 1 "$repeat"); do
    run_case get4k-c16 "$r" get -c 16 -d "$dur" --prefix put4k-1 --objects "$n" --no-prepare
done
for r in $(seq 1 "$repeat"); do
    run_case mixed1m-c8 "$r" mixed -s 1MiB -c 8 -d "$dur" --objects 64 --prefix "mixed-$r" --mix get=60,put=30,delete=10
done

echo
python3 - "$res" "$((SECONDS - t_start))" <<'EOF' | tee "$res/table.txt"
import glob, json, os, statistics, sys

res, wall = sys.argv[1], int(sys.argv[2])
ref = json.load(open(os.path.join(res, "references.json")))
scenarios = [
    ("put64-c1", "PUT 64 MiB", 1, "put"),
    ("put64-c4", "PUT 64 MiB", 4, "put"),
    ("get64-c1", "GET 64 MiB", 1, "get"),
    ("get64-c4", "GET 64 MiB", 4, "get"),
    ("put4k-c16", "PUT 4 KiB", 16, "put"),
    ("get4k-c16", "GET 4 KiB", 16, "get"),
    ("mixed1m-c8", "mixed 1 MiB 60/30/10", 8, None),
]
med = statistics.median
ncpu = os.cpu_count() or 1
hdr = "%-22s %4s %8s %8s %8s %8s %8s %3s %12s %10s %6s %8s" % (
    "scenario", "conc", "MB/s", "ops/s", "p50 ms", "p99 ms", "max ms", "err", "cluster CPU", "gw RSS MiB", "others",
    "ref")
print(hdr)
print("-" * len(hdr))
bad = 0
for name, label, conc, op in scenarios:
    runs = []
    for j in sorted(glob.glob(os.path.join(res, name + ".*.json"))):
        try:
            d = json.load(open(j))
            x = json.load(open(j[:-5] + ".extra"))
        except (OSError, ValueError):
            continue
        runs.append((d, x))
    if not runs:
        print("%-22s %4d  no result" % (label, conc))
        bad += 1
        continue
    def stat(d):
        return d["ops"].get(op, {}) if op else None
    mbs = med([d["total"]["mb_per_s"] for d, _ in runs])
    ops = med([d["total"]["ops_per_s"] for d, _ in runs])
    lat = [stat(d)["latency_ms"] for d, _ in runs if op and stat(d)] if op else []
    if not op:  # mixed: latency of its GETs
        lat = [d["ops"]["get"]["latency_ms"] for d, _ in runs if "get" in d["ops"]]
    p50 = med([l["p50"] for l in lat]) if lat else 0
    p99 = med([l["p99"] for l in lat]) if lat else 0
    mx = max([l["max"] for l in lat]) if lat else 0
    err = sum(d["total"]["errors"] for d, _ in runs) + sum(1 for _, x in runs if x["rc"] not in (0,))
    bad += err
    # cluster CPU per GB moved (large objects) or per operation (small ones)
    per, others = [], []
    for d, x in runs:
        t, c = d["total"], d.get("watched_cpu_s", -1)
        if c >= 0:
            if "4 KiB" in label:
                if t["ok"]:
                    per.append(c / t["ok"] * 1000)
            elif t["bytes"]:
                per.append(c / (t["bytes"] / 1e9))
            # CPU that neither the cluster nor the client used: the neighbours' load, in cores
            cl = d["client_cpu_s"]["user"] + d["client_cpu_s"]["sys"]
            if d["elapsed_s"] > 0:
                others.append(max(0.0, d["machine_cpu_s"]["busy"] - c - cl) / d["elapsed_s"])
    cpu = ("%.2f ms/op" if "4 KiB" in label else "%.2f s/GB") % med(per) if per else "?"
    rss = max(x["hwm_kb"] for _, x in runs) / 1024
    r = ""
    if label.startswith("PUT 64") and ref.get("md5_mb_s"):
        r = "%.0f%% md5" % (100 * mbs / ref["md5_mb_s"])
    oth = "%.2f" % med(others) if others else "?"
    print("%-22s %4d %8.1f %8.1f %8.2f %8.2f %8.2f %3d %12s %10.0f %6s %8s" % (
        label, conc, mbs, ops, p50, p99, mx, err, cpu, rss, oth, r))
print()
print("references (one core, openssl speed -evp, 1 MiB blocks): md5 %s MB/s, sha256 %s MB/s"
      % (ref.get("md5_mb_s"), ref.get("sha256_mb_s")))
print("MB = 10^6 bytes. Medians of %d runs; max ms and gw RSS are the maxima; err counts all runs." %
      max(len(glob.glob(os.path.join(res, "put64-c1.*.json"))), 1))
print("cluster CPU = user+sys of all cluster processes in the measured phase / GB moved (or / operation).")
print("gw RSS = the gateway's VmHWM during the run. others = cores busy with neither the cluster nor")
print("cairn-bench (neighbours on a shared machine), of %d. mixed: latency of its GETs. %d s." % (ncpu, wall))
open(os.path.join(res, "status"), "w").write("1" if bad else "0")
EOF

st=$(cat "$res/status" 2>/dev/null || echo 1)
[ "$st" = 0 ] || echo "bench: some operations failed (see above)" >&2
exit "$st"
