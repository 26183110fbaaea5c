#!/usr/bin/env bash
# run-all.sh — run every cairn test and end with one line: "N passed, N failed".
#
#   tests/run-all.sh BUILD_DIR [FILTER] [BUILD_DIR2 FILTER2 ...]
#
# Runs, for each build directory in turn:
#   BUILD_DIR/tests/*/*_test            unit test binaries (cmocka)
#   tests/integration/test_*.py         with python3
#   tests/integration/test_*.sh         with bash
# A test passes when it exits 0 within CAIRN_TEST_TIMEOUT seconds (default
# 900). FILTER, if given and not empty, keeps only tests whose name matches
# it (an extended regular expression). A second build (e.g. a sanitizer
# build) runs its own filtered set; names get the build's name as a prefix.
# The summary line counts every build.
#
# Each test runs from the repository root with CAIRN_BIN=BUILD_DIR (absolute)
# and its own TMPDIR; any cluster a test left running under that TMPDIR is
# stopped afterwards. Output goes to BUILD_DIR/test-logs/<name>.log; the last
# 50 lines are printed when a test fails. Exit status: 0 if all passed, else 1.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
timeout_s=${CAIRN_TEST_TIMEOUT:-900}
passed=0
failed=0

summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [FILTER] [BUILD_DIR2 FILTER2 ...]" >&2
    exit 2
fi

# run_test NAME COMMAND...
run_test() {
    local name=$1 log start rc tmp d secs
    shift
    [[ -z $filter || $name =~ $filter ]] || return 0
    [ -z "$label" ] || name="$label/$name"
    log=$logs/${name//\//_}.log
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-test.XXXXXX")
    start=$SECONDS
    CAIRN_BIN=$build TMPDIR=$tmp timeout -k 10 "$timeout_s" "$@" </dev/null >"$log" 2>&1
    rc=$?
    secs=$((SECONDS - start))
    # Clusters a test left behind (crash, timeout) must not outlive it.
    while IFS= read -r d; do
        "$root/tools/cairn-cluster" stop "$(dirname "$d")" >>"$log" 2>&1 || true
    done < <(find "$tmp" -maxdepth 4 -name cluster.conf 2>/dev/null)
    if [ $rc -eq 0 ]; then
        printf 'PASS  %-40s %4ds\n' "$name" "$secs"
        passed=$((passed + 1))
        rm -rf "$tmp"
        return 0
    fi
    failed=$((failed + 1))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        printf 'FAIL  %-40s %4ds  (timed out after %ds)\n' "$name" "$secs" "$timeout_s"
    else
        printf 'FAIL  %-40s %4ds  (exit %d)\n' "$name" "$secs" "$rc"
    fi
    echo "---- last 50 lines of $log (temp files kept in $tmp)"
    tail -n 50 "$log"
    echo "----"
}

shopt -s nullglob
first=1
while [ $# -gt 0 ]; do
    filter=${2:-}
    if ! build=$(cd "$1" 2>/dev/null && pwd); then
        echo "run-all: no build directory $1 (run make first)" >&2
        failed=$((failed + 1))
        summary
    fi
    label=
    [ $first -eq 1 ] || label=$(basename "$build")
    first=0
    shift $(($# >= 2 ? 2 : 1))
    logs=$build/test-logs
    mkdir -p "$logs"
    cd "$root" || exit 2
    for t in "$build"/tests/*/*_test; do
        if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
        rel=${t#"$build"/tests/}
        run_test "unit/$rel" "$t"
    done
    for t in tests/integration/test_*.py; do
        run_test "integration/$(basename "$t")" python3 "$t"
    done
    for t in tests/integration/test_*.sh; do
        run_test "integration/$(basename "$t")" bash "$t"
    done
done

summary
