#!/usr/bin/env bash
# test_ansible.sh — the Ansible deployment, checked on real hosts.
#
# Runs tests/ansible/rig.sh run: deploys cairn with ansible/ onto network
# namespace hosts reached over SSH (3 metadata, 4 storage in two zones, 1
# gateway, serving S3 over HTTPS with a self-signed certificate), checks
# that a second run changes nothing, verifies S3 through the gateway over
# HTTPS (and that plain HTTP gets no answer), changes one tunable, renews
# the certificate, adds a storage host (rebalancing existing objects onto
# it) and rolls a restart under client load; see that script for the steps.
# Binaries come from $CAIRN_BIN (run-all.sh sets it).
#
# Needs root (namespaces, mounts). Without root it says so and passes, and
# so it does when another run keeps the test hosts busy for 7 minutes.
# Whatever happens — failure, timeout, TERM or Ctrl-C — the rig is taken
# down before this script exits; after a SIGKILL the next run reaps it.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
rig=$root/tests/ansible/rig.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the Ansible rig needs root (network namespaces, overlay mounts)"
    exit 0
fi
for t in ansible-playbook ansible-lint /usr/sbin/sshd; do
    command -v "$t" >/dev/null || { echo "FAIL: $t missing (make deps installs it)"; exit 1; }
done

pid=
# shellcheck disable=SC2317
cleanup() {
    trap - INT TERM EXIT
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null # rig.sh takes the rig down on TERM
        wait "$pid" 2>/dev/null
    fi
    # rig.sh run takes the rig down itself; this catches a rig.sh killed
    # outright. If another run holds the rig by now, its `up` reaped ours.
    CAIRN_RIG_LOCK_WAIT=0 "$rig" down >/dev/null 2>&1 || true
}
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 130' INT
trap cleanup EXIT

# In the background, so that a signal to this script is handled at once.
# The test hosts are one per machine: wait at most 7 minutes for another
# run (a parallel `make test`) to finish with them.
CAIRN_RIG_LOCK_WAIT=${CAIRN_RIG_LOCK_WAIT:-420} "$rig" run "${CAIRN_BIN:-$root/build}" &
pid=$!
wait "$pid"
rc=$?
pid=
if [ $rc -eq 75 ]; then
    echo "SKIP: another run kept the Ansible test hosts busy for ${CAIRN_RIG_LOCK_WAIT:-420}s"
    exit 0
fi
exit $rc
