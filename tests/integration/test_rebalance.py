#!/usr/bin/python3
"""Membership changes on a live cluster: nodes are added, drained, removed
and wiped; `cairn-admin rebalance` moves exactly the fragments its dry run
predicts (close to the theoretical share), survives kill -9 and resumes,
yields to concurrent client writes, and `cairn-admin repair` rebuilds a
wiped disk. Every object is read back byte for byte after each step."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import hashlib
import os
import random
import shutil
import signal
import statistics
import struct
import subprocess
import threading
import time
import urllib.request

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "faults"))

import wire  # noqa: E402  (tests/faults/wire.py)
from harness import KiB, MiB, Suite, admin_answer, TestFailure, _proc_start_time, bin_dir, check, eq, short

suite = Suite("rebalance")
BUCKET = "rebal"
NOBJ = int(os.environ.get("CAIRN_REBALANCE_OBJECTS", "2000"))
SHA = {}          # key -> sha256 of its bytes (the objects written before the first rebalance)
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "cairn-cluster")


def body_of(key, size):
    """Deterministic bytes of an object: the key seeds them."""
    seed = hashlib.sha256(key.encode()).digest()
    out = bytearray()
    block = hashlib.sha512(seed).digest() * 64  # 4 KiB
    i = 0
    while len(out) < size:
        out += hashlib.sha256(seed + i.to_bytes(4, "little")).digest() + block
        i += 1
    return bytes(out[:size])


def s3(c):
    return boto3.client("s3", endpoint_url=c.endpoint, aws_access_key_id=c.ak, aws_secret_access_key=c.sk,
                        region_name=c.region,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                                      signature_version="s3v4", max_pool_connections=16))


def admin(c, *args, timeout=600, ok=True):
    """cairn-admin --json ARGS (harness.admin_answer), failing unless it succeeds when ok."""
    rc, doc, out, err = admin_answer(c, *args, timeout=timeout)
    if ok and rc != 0:
        raise TestFailure("cairn-admin %s: rc %d: %s %s" % (" ".join(args), rc, short(out, 1500), short(err, 1500)))
    return rc, doc, out, err


def add_node(c):
    """Start one more storage node with the launcher; its name (node-N)."""
    before = set(os.listdir(os.path.join(c.dir, "data")))
    env = dict(os.environ, CAIRN_BIN=bin_dir())
    r = subprocess.run([LAUNCHER, "add-node", c.dir], env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    check(r.returncode == 0, "add-node failed: %s %s" % (short(r.stdout), short(r.stderr)))
    new = sorted(set(os.listdir(os.path.join(c.dir, "data"))) - before)
    eq(len(new), 1, "new node data directories")
    name = new[0]
    pid = c.pid(name)
    check(pid is not None, "no pid file for %s" % name)
    c.procs[name] = (pid, _proc_start_time(pid))
    return name


def frag_census(c):
    """{(oid, index): [node names holding it]} over every node's data dir."""
    out = {}
    for f in c.frag_files().values():
        out.setdefault((f.oid, f.index), []).append(f.node)
    return out


def check_no_duplicates(c, what):
    dup = [(k, v) for k, v in frag_census(c).items() if len(v) > 1]
    check(not dup, "%s: %d fragments stored twice, e.g. %s" % (what, len(dup), dup[:3]))


def read_all(c, what, keys=None):
    cl = s3(c)
    bad = []
    lock = threading.Lock()
    keys = sorted(keys if keys is not None else SHA)

    def worker(part):
        for key in part:
            try:
                got = hashlib.sha256(cl.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest()
            except Exception as e:  # noqa: BLE001 - any failure is a finding
                got = "error %s" % e
            if got != SHA[key]:
                with lock:
                    bad.append("%s: %s" % (key, got[:80]))

    ts = [threading.Thread(target=worker, args=(keys[i::8],)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not bad, "%s: %d of %d objects wrong, e.g. %s" % (what, len(bad), len(keys), bad[:3]))


def meta_gauges(c, prefix):
    """{series: value} of every metric starting with prefix, from each metadata
    replica's /metrics: a list, one dict per replica."""
    out = []
    for url in c.env["CAIRN_METRICS_URLS"].split():
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        if 'service="meta"' not in text:
            continue
        out.append(dict((l.rsplit(" ", 1)[0], float(l.rsplit(" ", 1)[1])) for l in text.splitlines()
                        if l.startswith(prefix)))
    return out


def settle(c):
    """Give every gateway time to pick up a map change (it polls each second)."""
    time.sleep(2.5)


@suite.case
def load(c):
    cl = s3(c)
    cl.create_bucket(Bucket=BUCKET)
    rnd = random.Random(7)
    jobs = []
    for i in range(NOBJ):
        r = rnd.random()
        size = rnd.randint(17 * KiB, 96 * KiB) if r < 0.9 else rnd.randint(128 * KiB, MiB) if r < 0.997 else 6 * MiB
        jobs.append(("obj/%05d" % i, size))
    errors = []

    def worker(part):
        w = s3(c)
        for key, size in part:
            data = body_of(key, size)
            try:
                if size >= 6 * MiB:  # multipart: two parts
                    up = w.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                    e1 = w.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1, Body=data[:5 * MiB])
                    e2 = w.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=2, Body=data[5 * MiB:])
                    w.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": [
                        {"PartNumber": 1, "ETag": e1["ETag"]}, {"PartNumber": 2, "ETag": e2["ETag"]}]})
                else:
                    w.put_object(Bucket=BUCKET, Key=key, Body=data)
                SHA[key] = hashlib.sha256(data).hexdigest()
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (key, e))

    ts = [threading.Thread(target=worker, args=(jobs[i::8],)) for i in range(8)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "PUT errors: %s" % errors[:3])
    print("# loaded %d objects (%.1f MiB) in %.1fs" % (len(SHA), sum(s for _, s in jobs) / MiB, time.time() - t0))
    _, plan, _, _ = admin(c, "rebalance", "--dry-run")
    eq(plan["fragments"], 0, "fragments to move on a fresh cluster")


@suite.case
def add_two_nodes(c):
    new = [add_node(c), add_node(c)]
    settle(c)
    before = frag_census(c)
    _, plan, _, _ = admin(c, "rebalance", "--dry-run")
    total = plan["sets"] * (c.k + c.m)
    new_ids = set(int(n.split("-")[1]) for n in new)
    check(all(f["to"] in new_ids for f in plan["flows"]), "the plan moves only onto the new nodes: %s" % plan["flows"])
    t0 = time.time()
    _, run, out, _ = admin(c, "rebalance")
    secs = time.time() - t0
    eq(run["this_run_fragments"], plan["fragments"], "fragments moved vs the dry run")
    eq(run["this_run_bytes"], plan["bytes"], "bytes moved vs the dry run")
    theory = total * 2 / (len(c.node_names()))
    frac = run["this_run_fragments"] / theory
    print("# moved %d of %d fragments; theory (k+m)/N share of the new nodes %.0f: ratio %.3f; %.1f MiB in %.1fs "
          "(%.1f MB/s)" % (run["this_run_fragments"], total, theory, frac, run["this_run_bytes"] / MiB, secs,
                           run["this_run_bytes"] / 1e6 / max(secs, 1e-3)))
    check(0.9 <= frac <= 1.1, "moved %d fragments, theory %.0f (outside 10%%)" % (run["this_run_fragments"], theory))
    _, again, _, _ = admin(c, "rebalance", "--dry-run")
    eq(again["fragments"], 0, "fragments still misplaced after the rebalance")
    time.sleep(0.5)  # followers apply the last commits
    for g in meta_gauges(c, "cairn_"):
        eq(g.get('cairn_job_done_fragments{job="rebalance"}'), float(run["moved_fragments"]),
           "rebalance progress on a metadata replica's /metrics")
        eq(g.get('cairn_job_running{job="rebalance"}'), 0.0, "rebalance running flag after the run")
        eq(g.get("cairn_cluster_misplaced_fragments"), 0.0, "misplaced fragments on /metrics")
    after = frag_census(c)
    moved_onto_new = sum(1 for k, v in after.items() if v[0] in new and before.get(k) != v)
    eq(moved_onto_new, plan["fragments"], "fragment files that appeared on the new nodes")
    check_no_duplicates(c, "after rebalance")
    read_all(c, "after adding two nodes")


@suite.case
def clients_during_rebalance(c):
    add_node(c)
    settle(c)
    _, plan, _, _ = admin(c, "rebalance", "--dry-run")
    check(plan["fragments"] > 0, "a ninth node gives the rebalance work")
    cl = s3(c)
    # GET latency of small objects, alone, then during the rebalance
    probe = sorted(SHA)[:50]

    def lat(n):
        out = []
        for i in range(n):
            t = time.time()
            cl.get_object(Bucket=BUCKET, Key=probe[i % len(probe)])["Body"].read()
            out.append(time.time() - t)
        return out

    quiet = lat(200)
    # The writers overwrite and delete objects the rebalance is moving (they
    # were placed by the old map), and write new ones.
    hot = sorted(SHA)[-150:]
    live = dict((k, SHA[k]) for k in hot)  # key -> sha or None (deleted), last acknowledged
    maybe = {}      # key -> set of possible states after a failed request
    stop = threading.Event()
    errors = []

    def writer(wid):
        w = s3(c)
        rnd = random.Random(wid)
        n = 0
        while not stop.is_set():
            # each writer has keys of its own: the order of two writers' acknowledgements
            # says nothing about the order of their commits
            mine = hot[wid::3]
            key = mine[rnd.randrange(len(mine))] if rnd.random() < 0.6 else "live/%d/%d" % (wid, rnd.randrange(40))
            n += 1
            if rnd.random() < 0.7:
                data = body_of("%s#%d" % (key, n), rnd.randint(17 * KiB, 300 * KiB))
                sha = hashlib.sha256(data).hexdigest()
                try:
                    w.put_object(Bucket=BUCKET, Key=key, Body=data)
                    live[key] = sha
                    maybe.pop(key, None)
                except Exception as e:  # noqa: BLE001
                    maybe.setdefault(key, set()).update({live.get(key), sha})
                    errors.append(str(e))
            else:
                try:
                    w.delete_object(Bucket=BUCKET, Key=key)
                    live[key] = None
                    maybe.pop(key, None)
                except Exception as e:  # noqa: BLE001
                    maybe.setdefault(key, set()).update({live.get(key), None})
                    errors.append(str(e))

    ws = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in ws:
        t.start()
    result = {}

    def rebalance():
        result["run"] = admin(c, "rebalance", "--rate", "20")

    rb = threading.Thread(target=rebalance)
    t0 = time.time()
    rb.start()
    busy = []
    while rb.is_alive():
        busy += lat(20)
    rb.join()
    secs = time.time() - t0
    time.sleep(1)
    stop.set()
    for t in ws:
        t.join()
    _, run, _, _ = result["run"]
    q = statistics.quantiles(quiet, n=100)
    b = statistics.quantiles(busy, n=100) if len(busy) >= 2 else [float("nan")] * 99
    print("# rebalance under client load: %d fragments, %.1f MiB in %.1fs, %d sets yielded to writes; "
          "GET p50/p99 %.1f/%.1f ms quiet, %.1f/%.1f ms during (%d samples)"
          % (run["this_run_fragments"], run["this_run_bytes"] / MiB, secs, run["conflicts"], q[49] * 1e3,
             q[98] * 1e3, b[49] * 1e3, b[98] * 1e3, len(busy)))
    check(len(errors) == 0, "client requests failed during the rebalance: %s" % errors[:3])
    # every key holds what its last acknowledged write left; deleted keys stay deleted
    listed = set()
    for page in cl.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        listed.update(o["Key"] for o in page.get("Contents", []))
    for key, want in sorted(live.items()):
        try:
            got = hashlib.sha256(cl.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest()
        except cl.exceptions.NoSuchKey:
            got = None
        ok = got == want or (key in maybe and got in maybe[key])
        check(ok, "%s: got %s, last acknowledged %s" % (key, got and got[:12], want and want[:12]))
        check((got is not None) == (key in listed), "%s: listing and GET disagree" % key)
        if key in SHA:  # later cases read the objects back as they are now
            if got is None:
                del SHA[key]
            else:
                SHA[key] = got
    _, rep, _, _ = admin(c, "repair", "--dry-run")
    eq(rep["degraded_sets"], 0, "objects pointing at a missing fragment after the rebalance")
    _, again, _, _ = admin(c, "rebalance", "--dry-run")
    eq(again["fragments"], 0, "misplaced fragments after the rebalance (client writes place by the new map)")
    check_no_duplicates(c, "after a rebalance under client writes")
    read_all(c, "after the rebalance under client writes")


@suite.case
def kill_and_resume(c):
    # Weight 3 on node-1 moves a good share onto it.
    admin(c, "node", "weight", "1", "3")
    settle(c)
    _, plan, _, _ = admin(c, "rebalance", "--dry-run")
    check(plan["fragments"] > 50, "enough work to interrupt: %d" % plan["fragments"])
    cmd = [os.path.join(bin_dir(), "cairn-admin"), "--config", os.path.join(c.dir, "cluster.conf"), "rebalance",
           "--rate", "1", "--parallel", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    moved = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        _, st, _, _ = admin(c, "rebalance", "status")
        moved = st["moved_fragments"]
        if moved >= plan["fragments"] // 4:
            break
    p.send_signal(signal.SIGKILL)
    p.wait()
    check(moved < plan["fragments"], "the rebalance was killed before it finished (%d of %d)" % (moved,
                                                                                                 plan["fragments"]))
    _, st, _, _ = admin(c, "rebalance", "status")
    eq(st["state"], "running", "state of a killed rebalance")
    _, left, _, _ = admin(c, "rebalance", "--dry-run")
    check(left["fragments"] < plan["fragments"], "the killed run's moves stuck: %d left of %d" % (left["fragments"],
                                                                                                   plan["fragments"]))
    rc, run, out, err = admin(c, "rebalance")
    check("resuming" in err, "the second run resumes: %s" % short(err))
    check(out.strip().startswith("{") and len(out.strip().splitlines()) == 1, "--json: stdout holds only the result")
    check(run["this_run_fragments"] <= plan["fragments"] - st["moved_fragments"] + 64,
          "the second run redid finished work: %d moved after %d of %d" % (run["this_run_fragments"],
                                                                           st["moved_fragments"], plan["fragments"]))
    eq(run["state"], "done", "state after the resumed run")
    print("# killed after %d of %d fragments; the resumed run moved %d and removed %d leftover copies"
          % (st["moved_fragments"], plan["fragments"], run["this_run_fragments"], run["stale_removed"]))
    _, again, _, _ = admin(c, "rebalance", "--dry-run")
    eq(again["fragments"], 0, "misplaced fragments after the resumed run")
    check_no_duplicates(c, "after a killed and resumed rebalance")
    read_all(c, "after a killed and resumed rebalance")


@suite.case
def drain_and_remove(c):
    admin(c, "node", "drain", "2")
    settle(c)
    _, run, _, _ = admin(c, "rebalance")
    check(run["this_run_fragments"] > 0, "draining moves fragments")
    left = [f for f in c.frag_files().values() if f.node == "node-2"]
    eq(len(left), 0, "fragments left on the drained node")
    admin(c, "node", "remove", "2")
    c.kill9("node-2")
    read_all(c, "after draining and removing node 2")


@suite.case
def wipe_and_repair(c):
    victim = "node-3"
    n_before = len([f for f in c.frag_files().values() if f.node == victim])
    check(n_before > 0, "%s holds fragments" % victim)
    c.kill9(victim)
    shutil.rmtree(os.path.join(c.dir, "data", victim))
    c.restart()
    _, dry, _, _ = admin(c, "repair", "--dry-run")
    eq(dry["fragments"], n_before, "missing fragments found by repair --dry-run")
    t0 = time.time()
    _, rep, _, _ = admin(c, "repair")
    secs = time.time() - t0
    eq(rep["rebuilt_fragments"], n_before, "fragments rebuilt")
    print("# repair rebuilt %d fragments (%.1f MiB) in %.1fs (%.1f MB/s)" % (rep["rebuilt_fragments"],
          rep["bytes"] / MiB, secs, rep["bytes"] / 1e6 / max(secs, 1e-3)))
    _, again, _, _ = admin(c, "repair", "--dry-run")
    eq(again["degraded_sets"], 0, "degraded objects after repair")
    eq(len([f for f in c.frag_files().values() if f.node == victim]), n_before, "fragments back on the wiped node")
    read_all(c, "after wiping %s and repairing" % victim)


def plant_orphan(c, node, size=5000):
    """A well-formed fragment file (index 0 of a 4+2 object) that no record
    names, as a PUT that crashed before its commit leaves; its path."""
    oid = os.urandom(16)
    B = 64 * KiB
    L = -(-size // c.k)  # one short stripe: every block is ceil(size / k) bytes
    hdr = struct.pack("<IHH16sBBBBIQ16x", 0x464E5243, 1, 64, oid, 0, c.k, c.m, 0, B, size)
    hdr += struct.pack("<Q", wire.xxh3_64(hdr))
    block = os.urandom(L)
    data = hdr + block + struct.pack("<Q", wire.xxh3_64(block))
    some = next(f for f in c.frag_files().values() if f.node == node)
    top = os.path.dirname(os.path.dirname(some.path))
    d = os.path.join(top, oid.hex()[:2])
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "%s.0" % oid.hex())
    with open(path, "wb") as f:
        f.write(data)
    return path


@suite.case
def gc_orphans(c):
    orphan = plant_orphan(c, "node-4")
    _, dry, _, _ = admin(c, "gc", "--dry-run")
    eq(dry["orphans"], 0, "orphans deleted under the default 1 h minimum age")
    check(dry["young"] >= 1, "the orphan is counted as young: %s" % dry)
    check(os.path.exists(orphan), "a dry run deletes nothing")
    _, g, _, _ = admin(c, "gc", "--min-age", "0")
    eq(g["orphans"], 1, "orphans deleted")
    check(not os.path.exists(orphan), "the orphan fragment file is gone")
    read_all(c, "after gc")


if __name__ == "__main__":
    suite.main()
