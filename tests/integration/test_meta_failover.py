#!/usr/bin/python3
"""The replicated metadata tier (3 Raft replicas): kill -9 of the leader
under a stream of PUTs loses no acknowledged write; a follower can die and
come back; the whole tier can stop and restart; a wiped replica is removed,
re-added and catches up from a snapshot; a minority refuses writes with 503
until the majority is back; garbage on the replicas' ports is refused.

The cluster is created with snapshots every 64 entries, so snapshots and log
compaction happen many times during the file. Measured numbers (failover
time, the writes around it) are printed as "# ..." lines."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import functools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import harness
from harness import CURL, Suite, TestFailure, check, eq, key_path, sha256, short, xml_error_code

# Read by tools/cairn-cluster when it writes the new cluster.conf.
os.environ["CAIRN_META_SNAPSHOT_THRESHOLD"] = "64"
os.environ["CAIRN_META_SNAPSHOT_TRAILING"] = "16"

suite = Suite("meta_failover")
BUCKET = "failover"
OBJECTS = {}  # key -> bytes of every acknowledged PUT


# ---------------------------------------------------------------- helpers

# cairn-admin (harness), given 90 s to answer here
admin = functools.partial(harness.admin, timeout=90)
admin_ok = functools.partial(harness.admin_ok, timeout=90)


def status(c):
    """cairn-admin --json meta status, as a list of dicts (rc ignored)."""
    rc, out, err = admin(c, "--json", "meta", "status")
    try:
        return json.loads(out)
    except ValueError:
        raise TestFailure("meta status: not JSON (rc %d): %s %s" % (rc, short(out), short(err)))


def leader(c):
    """(id, row) of the replica that reports itself leader, or (None, None)."""
    for row in status(c):
        if row.get("role") == "leader":
            return row["id"], row
    return None, None


def wait_for(what, cond, timeout=30, step=0.2):
    """Poll cond() until it returns a true value; that value, else fail."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise TestFailure("%s: not within %ds" % (what, timeout))
        time.sleep(step)


def wait_leader(c, timeout=30):
    return wait_for("a metadata leader", lambda: leader(c)[0], timeout)


def replica_conf(c, rid):
    """(addr, raft_addr) of [meta.<rid>] in cluster.conf."""
    text = open(os.path.join(c.dir, "cluster.conf")).read()
    m = re.search(r"^\[meta\.%d\]\s*\naddr = (\S+)\s*\nraft_addr = (\S+)" % rid, text, re.M)
    check(m is not None, "no [meta.%d] in cluster.conf" % rid)
    return m.group(1), m.group(2)


def all_caught_up(c, ids):
    """True when every replica in ids answers and has applied the leader's commit index."""
    rows = {r["id"]: r for r in status(c)}
    lead = [r for r in rows.values() if r.get("role") == "leader"]
    if not lead:
        return False
    return all(i in rows and "applied" in rows[i] and rows[i]["applied"] >= lead[0]["commit"] for i in ids)


def put(c, key, data, tag):
    """One PUT with curl, thread-safe (own temp files). (status, seconds, start time)."""
    body = os.path.join(c.work, "put-%s" % tag)
    with open(body, "wb") as f:
        f.write(data)
    cmd = [CURL, "-sS", "--path-as-is", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}",
           "--aws-sigv4", "aws:amz:%s:s3" % c.region, "--user", "%s:%s" % (c.ak, c.sk),
           "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + body,
           "-X", "PUT", c.url(key_path(BUCKET, key))]
    t0 = time.time()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
    t1 = time.time()
    os.unlink(body)
    st = int(r.stdout.decode().strip() or 0) if r.returncode == 0 else -r.returncode
    return st, t1 - t0, t0


def check_objects(c, what, objects=None):
    """GET every acknowledged object; exact bytes or a list of problems."""
    bad = []
    for key, data in sorted((objects or OBJECTS).items()):
        st, got, _ = c.get_sha(BUCKET, key)
        if st != 200 or got != sha256(data):
            bad.append("%s: GET %s -> %d (sha256 %s, want %s)" % (what, key, st, got[:12], sha256(data)[:12]))
    check(not bad, "%d of %d objects wrong:\n  %s" % (len(bad), len(objects or OBJECTS), "\n  ".join(bad[:20])))


def put_many(c, prefix, n, size=2048):
    for i in range(n):
        key = "%s/%04d" % (prefix, i)
        data = os.urandom(size)
        st, secs, _ = put(c, key, data, "%s-%d" % (prefix.replace("/", "_"), i))
        eq(st, 200, "PUT %s" % key)
        OBJECTS[key] = data


def term(c, name):
    """SIGTERM one cluster process and wait for it to exit."""
    pid, st = c.procs[name]
    os.kill(pid, signal.SIGTERM)
    c.killed.add(name)
    wait_for("%s to exit" % name, lambda: not c.alive(name), timeout=15, step=0.05)


# ---------------------------------------------------------------- cases

@suite.case
def three_replicas(c):
    names = [n for n in c.proc_names() if n.startswith("meta-")]
    eq(names, ["meta-1", "meta-2", "meta-3"], "metadata replicas started by the launcher")
    wait_leader(c)
    rows = status(c)
    eq(sorted(r["id"] for r in rows), [1, 2, 3], "replicas in meta status")
    eq(sorted(r["role"] for r in rows), ["follower", "follower", "leader"], "roles")
    out = admin_ok(c, "meta", "status")
    lines = out.strip().splitlines()
    eq(len(lines), 4, "meta status lines (header + 3): %r" % out)
    for line in lines[1:]:
        f = line.split()
        check(len(f) >= 6 and f[2] in ("leader", "follower"), "status line %r" % line)
    c.make_bucket(BUCKET)
    put_many(c, "warmup", 20)


@suite.case
def kill_leader_under_load(c):
    lid = wait_leader(c)
    victim = "meta-%d" % lid
    results = []           # (key, data, status, seconds, start)
    lock = threading.Lock()
    acked = [0]
    total, streams = 400, 4

    def stream(s):
        for i in range(total // streams):
            key = "stream/%d/%04d" % (s, i)
            data = os.urandom(1024 + (i * 37 + s * 101) % 6000)
            st, secs, t0 = put(c, key, data, "s%d-%d" % (s, i))
            with lock:
                results.append((key, data, st, secs, t0))
                if st == 200:
                    acked[0] += 1

    threads = [threading.Thread(target=stream, args=(s,)) for s in range(streams)]
    for t in threads:
        t.start()
    wait_for("100 acknowledged PUTs", lambda: acked[0] >= 100, timeout=120, step=0.01)
    t_kill = time.time()
    c.kill9(victim)
    for t in threads:
        t.join(timeout=600)
    check(not any(t.is_alive() for t in threads), "PUT streams did not finish")

    ok = [r for r in results if r[2] == 200]
    failed = [r for r in results if r[2] != 200]
    after = sorted(r[4] + r[3] for r in ok if r[4] >= t_kill)
    spanning = [r for r in ok if r[4] < t_kill < r[4] + r[3]]
    eq(len(results), total, "PUTs attempted")
    check(after, "no PUT succeeded after the leader was killed")
    new_lid = wait_leader(c)
    check(new_lid != lid, "leader still %s after kill -9" % lid)
    print("# kill -9 of leader meta-%d under %d PUT streams: first PUT issued after the kill acknowledged "
          "%.3f s after it; %d PUTs in flight at the kill took up to %.3f s; %d of %d acknowledged, %d failed "
          "(statuses %s); new leader meta-%d" % (
              lid, streams, after[0] - t_kill, len(spanning), max([r[3] for r in spanning] or [0]), len(ok),
              total, len(failed), sorted(set(r[2] for r in failed)), new_lid), flush=True)
    for key, data, st, secs, t0 in ok:
        OBJECTS[key] = data
    # every acknowledged PUT reads back exactly, with the old leader still down ...
    check_objects(c, "after failover")
    # ... and nothing unacknowledged is half there: absent, or exactly what was sent
    for key, data, st, secs, t0 in failed:
        gst, got, _ = c.get_sha(BUCKET, key)
        check(gst == 404 or (gst == 200 and got == sha256(data)),
              "unacknowledged PUT %s (status %d) reads back %d with other bytes" % (key, st, gst))
    c.restart()
    wait_for("old leader back and caught up", lambda: all_caught_up(c, [1, 2, 3]), timeout=60)
    check_objects(c, "after the old leader rejoined")


@suite.case
def kill_follower(c):
    lid = wait_leader(c)
    fid = [i for i in (1, 2, 3) if i != lid][0]
    c.kill9("meta-%d" % fid)
    objs = {}
    for i in range(40):
        key = "follower-down/%03d" % i
        data = os.urandom(3000 + i)
        st, secs, _ = put(c, key, data, "fd-%d" % i)
        eq(st, 200, "PUT %s with follower meta-%d down" % (key, fid))
        objs[key] = data
        OBJECTS[key] = data
    check_objects(c, "with follower down", objs)
    c.restart()
    wait_for("meta-%d caught up" % fid, lambda: all_caught_up(c, [fid]), timeout=60)
    rows = {r["id"]: r for r in status(c)}
    eq(rows[fid]["role"], "follower", "role of the restarted replica")


@suite.case
def stop_all_and_restart(c):
    buckets = ["failover", "second-bucket"]
    c.make_bucket("second-bucket")
    st, secs, _ = put(c, "last-before-stop", b"x" * 777, "lbs")
    eq(st, 200, "PUT before stopping the tier")
    OBJECTS["last-before-stop"] = b"x" * 777
    for n in ("meta-1", "meta-2", "meta-3"):
        term(c, n)
    st, h, body = c.curl("GET", key_path(BUCKET, "last-before-stop"))
    eq(st, 503, "GET with the whole metadata tier down")
    c.restart()
    wait_leader(c)
    check_objects(c, "after restarting every replica")
    st, h, body = c.curl("GET", "/")
    eq(st, 200, "ListBuckets after restart")
    for b in buckets:
        check(("<Name>%s</Name>" % b).encode() in body, "bucket %s missing after restart: %s" % (b, short(body)))


@suite.case
def wipe_and_readd(c):
    lid = wait_leader(c)
    fid = [i for i in (1, 2, 3) if i != lid][-1]
    name = "meta-%d" % fid
    addr, raft_addr = replica_conf(c, fid)
    term(c, name)
    data_dir = os.path.join(c.dir, "data", name)
    subprocess.run(["rm", "-rf", data_dir], check=True)
    admin_ok(c, "meta", "remove", fid)
    rows = {r["id"]: r for r in status(c)}
    check(not rows.get(fid, {}).get("member", False), "meta-%d still a member after remove: %s" % (fid, rows))
    # enough writes that the log is compacted well past what the wiped
    # replica could get as entries (snapshots every 64)
    put_many(c, "while-wiped", 150, size=1500)
    c.restart()  # the launcher sees an empty data dir in a running group: --join
    check("--join" in open("/proc/%d/cmdline" % c.pid(name)).read().replace("\0", " "),
          "the wiped replica was not started with --join")
    t0 = time.time()
    admin_ok(c, "meta", "add", fid, addr, raft_addr)
    t1 = time.time()
    wait_for("meta-%d caught up" % fid, lambda: all_caught_up(c, [fid]), timeout=60)
    log = c.log_text(name)
    check("restored a snapshot" in log, "meta-%d caught up without installing a snapshot:\n%s" % (fid, log[-2000:]))
    print("# wiped meta-%d re-added: 'meta add' returned after %.1f s, caught up after %.1f s; %s" % (
        fid, t1 - t0, time.time() - t0, [l.split(" INFO ")[-1] for l in log.splitlines() if "restored a snapshot" in l]),
        flush=True)
    rows = {r["id"]: r for r in status(c)}
    eq(rows[fid]["member"], True, "meta-%d a member again" % fid)
    eq(rows[fid]["kind"], "voter", "meta-%d's kind" % fid)
    # serve everything from the re-added replica: make it the leader
    admin_ok(c, "meta", "transfer", fid)
    wait_for("meta-%d leading" % fid, lambda: leader(c)[0] == fid, timeout=30)
    check_objects(c, "served by the re-added replica meta-%d" % fid)
    put_many(c, "after-readd", 10)


@suite.case
def minority_refuses_writes(c):
    lid = wait_leader(c)
    others = [i for i in (1, 2, 3) if i != lid]
    stopped = [lid, others[0]]  # the leader and one follower: the third is alone
    for i in stopped:
        pid, _ = c.procs["meta-%d" % i]
        os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        st, secs, _ = put(c, "minority/should-fail", b"no quorum", "minority")
        code = None
        st2, h, body = c.curl("PUT", key_path(BUCKET, "minority/should-fail-2"), data=b"no quorum either")
        code = xml_error_code(body)
        print("# minority (2 of 3 replicas stopped): PUT answered %d after %.1f s, then %d %s" %
              (st, secs, st2, code), flush=True)
        eq(st, 503, "PUT with two of three replicas stopped")
        eq(st2, 503, "second PUT with two of three replicas stopped")
        check(code in ("ServiceUnavailable", "SlowDown"), "S3 error code %r for the refused PUT" % code)
    finally:
        for i in stopped:
            pid, _ = c.procs["meta-%d" % i]
            os.kill(pid, signal.SIGCONT)
    wait_leader(c)

    def write_works():
        st, secs, _ = put(c, "minority/after", b"quorum is back", "after-minority")
        return st == 200
    wait_for("writes after SIGCONT", write_works, timeout=60, step=0.5)
    OBJECTS["minority/after"] = b"quorum is back"
    gst, got, _ = c.get_sha(BUCKET, "minority/should-fail")
    check(gst == 404 or got == sha256(b"no quorum"), "refused PUT half there: GET %d" % gst)
    check_objects(c, "after the partition healed")


def lease_reads(c):
    """cairn_meta_reads_total{path="lease"} summed over the replicas."""
    total = 0
    for url in c.env["CAIRN_METRICS_URLS"].split():
        r = subprocess.run([CURL, "-sS", "--max-time", "5", url], capture_output=True, timeout=30)
        for line in r.stdout.decode().splitlines():
            if line.startswith('cairn_meta_reads_total{path="lease"}'):
                total += int(float(line.split()[-1]))
    return total


@suite.case
def reads_follow_transfers(c):
    """The leader answers reads under a lease; a handover ends it, so a GET
    right after a PUT at the new leader sees that PUT, round after round."""
    before = lease_reads(c)
    for rnd in range(6):
        lid = wait_leader(c)
        target = [i for i in (1, 2, 3) if i != lid][rnd % 2]
        admin_ok(c, "meta", "transfer", target)
        for i in range(3):
            data = os.urandom(1000)
            st, _, _ = put(c, "lease/k", data, "lease-%d-%d" % (rnd, i))
            eq(st, 200, "PUT lease/k in round %d" % rnd)
            OBJECTS["lease/k"] = data
            gst, got, _ = c.get_sha(BUCKET, "lease/k")
            eq((gst, got), (200, sha256(data)), "GET lease/k right after its PUT, round %d (leader was %d)" % (rnd, lid))
    after = lease_reads(c)
    print("# reads under the leader's lease during 6 handovers: %d" % (after - before), flush=True)
    check(after > before, "no read was served under a lease (counter %d -> %d)" % (before, after))


def send_garbage(port, payload, wait=5):
    """Connect, send payload, half-close, and wait (at most wait seconds) for
    the server to answer or hang up. True when the server closed the
    connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        if payload:
            s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                return True
    except socket.timeout:
        return False
    except OSError:
        return True  # reset: refused
    finally:
        s.close()


@suite.case
def garbage_on_ports(c):
    hdr = lambda op, blen, flags=0: struct.pack("<IHHiIQQ", 0x314e5243, op, flags, 0, 0, 0x1234, blen)
    frames = [
        ("truncated frame", hdr(190, 100) + b"only part of the body"),
        ("wrong HMAC", hdr(1, 4) + b"ping" + os.urandom(32)),
        ("huge length", hdr(121, 1 << 62) + os.urandom(64)),
        ("length above the buffer limit", hdr(101, 1 << 30) + os.urandom(1000)),
        ("bad magic", os.urandom(32) + os.urandom(64)),
        ("random bytes", os.urandom(4096)),
    ]
    for rid in (1, 2, 3):
        addr, raft_addr = replica_conf(c, rid)
        port, raft_port = int(addr.rsplit(":", 1)[1]), int(raft_addr.rsplit(":", 1)[1])
        for what, payload in frames:
            check(send_garbage(port, payload), "meta-%d kept a connection open after %s" % (rid, what))
        for what, payload in frames[-2:] + [("raft handshake with a huge address length",
                                             struct.pack("<QQQ", 1, 99, 1 << 40) + os.urandom(64))]:
            send_garbage(raft_port, payload, wait=1)
    time.sleep(0.5)
    for rid in (1, 2, 3):
        check(c.alive("meta-%d" % rid), "meta-%d died from garbage" % rid)
    wait_for("all replicas answering", lambda: all_caught_up(c, [1, 2, 3]), timeout=30)
    put_many(c, "after-garbage", 5)
    check_objects(c, "after garbage")


suite.main()
