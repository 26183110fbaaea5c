#!/usr/bin/python3
"""
run.py — the fault-injection suite: scenarios of workload + nemesis +
checker against a real cluster started by tests/integration/harness.py.

  python3 tests/faults/run.py [--short] [SCENARIO...]     (CAIRN_BIN = build dir)

The long form (`make faults`) runs every fault type alone, several times
over, then a random combination of them; the short form (inside `make
test`, through tests/integration/test_faults.py) runs four scenarios of a
few seconds per fault. Each scenario uses a fresh bucket, its own history
and ends with the checker's verdict and counts:

  # verdict <scenario>: PASS|FAIL — N ops under faults (...), faults ...,
  #   lost acked writes 0, wrong reads 0, stale reads 0, ...

Environment
  CAIRN_FAULTS_SECONDS   long form: seconds of faults per single-fault
                         scenario (default 90; the random one runs 3x that)
  CAIRN_FAULTS_SEED      seed of workload and nemesis (default: time-based,
                         printed so a run can be repeated)
  CAIRN_FAULTS_JSON      write every scenario's counts to this file
  CAIRN_KEEP             as in harness.py

A scenario is a list of phases; a phase injects its faults together, holds
them, heals them all (restarts, SIGCONT, unmount), then waits a gap. The
long form cycles a scenario's phases until its time is up.
"""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import json
import os
import random
import re
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import checker  # noqa: E402
import nemesis  # noqa: E402
import s3  # noqa: E402
import wire  # noqa: E402
from harness import Suite, TestFailure, admin_answer, bin_dir, check, conf_value  # noqa: E402
from workload import History, Workload, perform, write_cold  # noqa: E402

GET_CHUNK = 4 << 20   # the gateway reads this much per round of a GET (gateway/s3_object.c)
# Cold objects (written once, then only read): one to several stripes of 1 MiB, one over a GET round.
COLD_SIZES = [100, 5000, 70000, 300000, 1100000, 2500000, 700, 5 * 1024 * 1024 + 3]


def P(faults, hold=3.0, gap=1.5):
    """A phase: faults = [(name, {args})] injected together."""
    return {"faults": faults, "hold": hold, "gap": gap}


# Short form: four scenarios, each fault a few seconds.
SHORT = [
    ("processes", [P([("kill_nodes", {"n": 1})], 2, 1), P([("kill_nodes", {"n": 2})], 2.5, 1),
                   P([("kill_meta", {"role": "leader"})], 3, 1), P([("kill_meta", {"role": "follower"})], 1.5, 1),
                   P([("kill_gateway", {})], 1, 1)]),
    ("slow-node", [P([("pause_node", {})], 12, 1)]),
    ("disks", [P([("corrupt", {"n": 6})], 0, 1.5), P([("wipe", {})], 0, 2), P([("enospc", {})], 6, 1)]),
    ("combined", [P([("kill_nodes", {"n": 1}), ("kill_meta", {"role": "leader"})], 2.5, 1),
                  P([("pause_node", {}), ("kill_gateway", {})], 3, 1),
                  P([("corrupt", {"n": 3}), ("kill_nodes", {"n": 2})], 2.5, 1)]),
]

# Long form: each fault type alone, cycled; then random combinations.
LONG = [
    ("kill-nodes", [P([("kill_nodes", {"n": 1})], 5, 3), P([("kill_nodes", {"n": 2})], 5, 3)]),
    ("kill-meta", [P([("kill_meta", {"role": "leader"})], 5, 4), P([("kill_meta", {"role": "follower"})], 5, 3)]),
    ("kill-gateway", [P([("kill_gateway", {})], 2, 4)]),
    ("pause-node", [P([("pause_node", {})], 10, 3)]),
    ("corrupt", [P([("corrupt", {"n": 8})], 0, 8)]),
    ("wipe", [P([("wipe", {})], 0, 15)]),
    ("enospc", [P([("enospc", {})], 16, 4)]),
    ("random", None),
]

RANDOM_FAULTS = [("kill_nodes", {"n": 1}), ("kill_nodes", {"n": 2}), ("kill_meta", {"role": "leader"}),
                 ("kill_meta", {"role": "follower"}), ("kill_gateway", {}), ("pause_node", {}),
                 ("corrupt", {"n": 3}), ("wipe", {}), ("enospc", {})]


def random_phase(rnd):
    """One to three faults at once; never more than m nodes unavailable by
    kill/pause together, and at most one disk fault of the victim."""
    n = rnd.choice((1, 1, 2, 2, 3))
    faults, down, disk = [], 0, False
    for name, args in rnd.sample(RANDOM_FAULTS, len(RANDOM_FAULTS)):
        if len(faults) >= n:
            break
        cost = args.get("n", 1) if name in ("kill_nodes", "pause_node") else 0
        if name in ("wipe", "enospc"):
            if disk:
                continue
            cost, disk = 1, True
        if down + cost > 2:
            continue
        down += cost
        faults.append((name, args))
    return P(faults, rnd.uniform(2, 8), rnd.uniform(1, 4))


# ---------------------------------------------------------------- helpers

def meta_client(c):
    return wire.MetaClient(wire.Frames(conf_value(c, "cluster", "secret")),
                           conf_value(c, "cluster", "meta").split(","))


def admin_path():
    p = os.path.join(bin_dir(), "cairn-admin")
    return p if os.path.exists(p) else None


def repair(c):
    """cairn-admin repair --verify on the quiet cluster: every node checks
    every fragment first, so flipped bytes no read has met are rebuilt too.
    (its JSON summary or None, problem or None)."""
    if admin_path() is None:
        return None, "no cairn-admin binary"
    rc, doc, out, err = admin_answer(c, "repair", "--verify", "--rate", "200", timeout=600)
    if rc != 0 or doc is None:
        return doc, "repair failed (rc %d): stdout: %s stderr: %s" % (rc, out[-1500:].replace("\n", " | "),
                                                                     err[-1500:].replace("\n", " | "))
    return doc, None


def client(c, timeout=30.0):
    return s3.S3Client(c.endpoint, c.ak, c.sk, c.region, timeout=timeout)


def retry(what, fn, timeout=60, step=0.5):
    """fn() -> (done, value); retried until done or timeout."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            done, val = fn()
            if done:
                return val
            last = val
        except (s3.NotSent, s3.Indeterminate, OSError) as e:
            last = e
        if time.time() > deadline:
            raise TestFailure("%s: not within %ds (last: %s)" % (what, timeout, last))
        time.sleep(step)


def quiesce(c, nem, bucket):
    """Every process up, a metadata leader, the gateway answering."""
    c.restart()
    cl = client(c, timeout=15)
    try:
        retry("gateway answering LIST after healing", lambda: (cl.list_keys(bucket)[0] == 200, None), 90)
    finally:
        cl.close()
    if nem.admin:
        retry("a metadata leader", lambda: (any(r.get("role") == "leader" for r in (nem.meta_status() or [])), None),
              60)


def final_reads(c, h, bucket, keys, attempts=6):
    """One GET per key after quiescence, retried while it fails. Ops are not
    added to h.ops (the checker takes them separately)."""
    cl = client(c, timeout=30)
    out = []
    try:
        for key in keys:
            for attempt in range(attempts):
                op = h.begin(-1, "get", key)
                with h.lock:
                    h.ops.remove(op)
                perform(op, lambda: cl.get(bucket, key), ok=(200, 404), read=True)
                if op.status == "ok":
                    break
                time.sleep(2)
            out.append(op)
    finally:
        cl.close()
    return out


def degraded_report(c, bucket, reads):
    """For every object readable after quiescence: how many of its k+m
    fragments are on disk and intact. {count: objects}, problems."""
    hist, problems = {}, []
    try:
        mc = meta_client(c)
    except Exception as e:
        return hist, ["no metadata client: %s" % e]
    for r in reads:
        if r.status != "ok" or r.result is None:
            continue
        try:
            rec = mc.obj_get(bucket, r.key)
        except OSError as e:
            problems.append("%s: %s" % (r.key, e))
            continue
        if rec is None or rec["nparts"] or rec["k"] == 0:  # multipart, or inline: no fragments of its own
            continue
        paths = [wire.frag_path(c.dir, n, rec["oid"], i) for i, n in enumerate(rec["nodes"])]
        good = sum(1 for i, p in enumerate(paths)
                   if wire.frag_check(p, rec["oid"], i) is None)
        hist[good] = hist.get(good, 0) + 1
    return hist, problems


def slow_gets(h, io_timeout):
    """GETs invoked while a node was paused (early enough to finish before
    SIGCONT) that took longer than the io timeout plus 3 s. Also the worst
    GET latency in those windows, split by object size (one read round or more)."""
    pauses = [(a, b) for a, b, what in h.events if what.startswith("SIGSTOP") and b is not None]
    sizes = {}
    for key, d in h.written.items():
        for sha, op in d.items():
            sizes[sha] = op.size
    slow, worst_small, worst_big, n = [], 0.0, 0.0, 0
    for a, b in pauses:
        for op in h.ops:
            if op.kind != "get" or op.t_end is None or not (a <= op.t_inv <= b - io_timeout - 3):
                continue
            n += 1
            lat = op.latency()
            big = op.result is not None and sizes.get(op.result, 0) > GET_CHUNK
            if big:
                worst_big = max(worst_big, lat)
            else:
                worst_small = max(worst_small, lat)
            if lat > io_timeout + 3 and not big:
                slow.append(op)
    return slow, worst_small, worst_big, n


def failed_gets_racing_writes(h):
    """Failed GETs that overlapped a write (PUT or DELETE) of the same key:
    the gateway removes a replaced version's fragments as soon as the new
    one commits, so a GET still reading the old version loses them."""
    writes = {}
    for o in h.ops:
        if o.kind in ("put", "delete") and o.status in ("ok", "info"):
            writes.setdefault(o.key, []).append(o)
    n = 0
    for o in h.ops:
        if o.kind == "get" and o.status == "fail" and o.t_end is not None:
            if any(w.t_inv <= o.t_end and (w.t_end is None or w.t_end >= o.t_inv) for w in writes.get(o.key, ())):
                n += 1
    return n


def timeline(h):
    """One line per fault event: how the operations invoked while it lasted ended."""
    out = []
    for a, b, what in h.events:
        b = b if b is not None else a
        ops = [o for o in h.ops if a <= o.t_inv <= b]
        if b == a:
            ops = [o for o in h.ops if a <= o.t_inv <= a + 5]
        n = {st: sum(1 for o in ops if o.status == st) for st in ("ok", "fail", "info")}
        e5 = sum(1 for o in ops if o.http is not None and o.http >= 500)
        slow = max([o.latency() for o in ops if o.t_end is not None] or [0])
        out.append("%+7.2f s %5.2f s  %-56s ops: %d ok, %d failed, %d unknown (%d 5xx), slowest %.1f s" % (
            a - h.t0, b - a, what[:56], n["ok"], n["fail"], n["info"], e5, slow))
    return out


def dump(h, reads, name):
    """CAIRN_FAULTS_DUMP=DIR: the whole history as JSON lines, for a closer look."""
    d = os.environ.get("CAIRN_FAULTS_DUMP")
    if not d:
        return
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "%s.jsonl" % name), "w") as f:
        for a, b, what in h.events:
            f.write(json.dumps({"event": what, "t0": a - h.t0, "t1": (b - h.t0) if b else None}) + "\n")
        for o in list(h.ops) + list(reads):
            f.write(json.dumps({"id": o.id, "th": o.thread, "kind": o.kind, "key": o.key, "sha": o.sha,
                                "size": o.size, "t0": o.t_inv - h.t0, "t1": (o.t_end - h.t0) if o.t_end else None,
                                "st": o.status, "http": o.http, "err": o.err,
                                "res": o.result if o.kind != "list" else len(o.result or [])}) + "\n")


# ---------------------------------------------------------------- scenario

class Scenario:
    def __init__(self, name, phases, seconds=None, threads=4, nkeys=24, seed=1, rnd_phases=False, ncold=8):
        self.name, self.phases, self.seconds, self.ncold = name, phases, seconds, ncold
        self.threads, self.nkeys, self.seed, self.rnd_phases = threads, nkeys, seed, rnd_phases

    def run(self, c, results):
        t_start = time.time()
        bucket = "faults-%s-%d" % (re.sub(r"[^a-z0-9-]", "-", self.name.lower()), int(t_start) % 100000)
        cl = client(c)
        retry("create bucket %s" % bucket, lambda: (cl.create_bucket(bucket)[0] == 200, None), 30)
        cl.close()
        keys = ["k%02d" % i for i in range(self.nkeys // 2)] + ["dir/sub/k%02d" % i for i in range(self.nkeys // 2)]
        cold = ["cold/c%02d" % i for i in range(self.ncold)]
        h = History()
        k, m = c.k, c.m
        nem = nemesis.Nemesis(c, h, seed=self.seed, k=k, m=m, admin=admin_path())
        io_timeout = int(conf_value(c, "cluster", "io_timeout_ms", "5000")) / 1000.0
        acked = write_cold(c.endpoint, c.ak, c.sk, c.region, bucket, cold, h, COLD_SIZES, self.seed)
        check(len(acked) == len(cold), "cold objects: only %d of %d PUTs acknowledged before any fault" %
              (len(acked), len(cold)))
        wl = Workload(c.endpoint, c.ak, c.sk, c.region, bucket, keys, h, threads=self.threads, seed=self.seed,
                      timeout=max(30.0, 4 * io_timeout), cold_keys=cold)
        keys = keys + cold
        print("# scenario %s: bucket %s, %d keys, %d client threads, seed %d, victim node %s" %
              (self.name, bucket, len(keys), self.threads, self.seed, nem.victim), flush=True)
        rnd = random.Random(self.seed)
        wl.start()
        heals = []
        try:
            time.sleep(1.5)
            deadline = time.monotonic() + (self.seconds or 0)
            i = 0
            while True:
                if self.rnd_phases:
                    ph = random_phase(rnd)
                else:
                    ph = self.phases[i % len(self.phases)]
                i += 1
                self.phase(nem, ph, heals)
                if self.seconds is None:
                    if i >= len(self.phases):
                        break
                elif time.monotonic() >= deadline and (self.rnd_phases or i % len(self.phases) == 0):
                    break
            time.sleep(1.0)
        finally:
            nem.heal_all(heals)
            stuck = wl.stop()
        check(not stuck, "workload threads did not stop: %s" % stuck)
        t_q = time.time()
        quiesce(c, nem, bucket)
        reads = final_reads(c, h, bucket, keys)
        cl = client(c)
        try:
            st, listed = retry("final LIST", lambda: (lambda r: (r[0] == 200, r))(cl.list_keys(bucket)), 60)
        finally:
            cl.close()
        list_reads = final_reads(c, h, bucket, listed) if listed else []
        v = checker.check(h, final_reads=reads, final_list=listed, list_reads=list_reads, keyset=keys,
                          workload_errors=wl.errors)
        slow, worst_small, worst_big, paused_gets = slow_gets(h, io_timeout)
        degraded, dproblems = degraded_report(c, bucket, reads)
        # Repair (after a verify pass on every node) brings every object
        # back to k+m intact fragments.
        rep, rproblem = repair(c)
        repaired, rproblems = degraded_report(c, bucket, reads)
        short_sets = sum(n for good, n in repaired.items() if good < k + m)
        # A non-zero exit alone is no failure: repair also reports fragment
        # sets beyond rescue that no readable object uses (e.g. parts of an
        # upload a killed gateway never completed). Readable objects below
        # k+m afterwards are.
        if rproblem:
            print("# %s: %s" % (self.name, rproblem), flush=True)
        repair_ok = short_sets == 0 and not rproblems and rep is not None
        ver = (rep or {}).get("verify") or {}
        print("# %s: repair --verify: %s fragments checked, %s corrupt found, %s fragments rebuilt; afterwards %d "
              "objects hold fewer than k+m intact fragments%s" %
              (self.name, ver.get("fragments", "?"), ver.get("corrupt", "?"),
               rep["rebuilt_fragments"] if rep else "?", short_sets,
               ("; problems: %s" % "; ".join(rproblems[:5])) if rproblems else ""), flush=True)
        s = v.stats
        faults = sum(nem.counts.values())
        line = ("# verdict %s: %s — %d ops under faults (PUT %d ok/%d unknown/%d failed, GET %d ok (%d 200, %d 404)/"
                "%d failed, DELETE %d ok/%d unknown/%d failed, LIST %d ok/%d failed), %.1f MiB acknowledged; "
                "%d faults injected (%s); lost acked writes %d, wrong reads %d, stale reads %d, unreadable after "
                "quiescence %d, stale LIST entries %d, LIST ghosts %d, LIST missing %d, LIST garbage %d, "
                "unexpected answers %d" % (
                    self.name, "PASS" if v.ok and not slow and repair_ok else "FAIL", s["ops"], s["put"]["ok"], s["put"]["info"],
                    s["put"]["fail"], s["get"]["ok"], s["get_200"], s["get_404"], s["get"]["fail"], s["delete"]["ok"],
                    s["delete"]["info"], s["delete"]["fail"], s["list"]["ok"], s["list"]["fail"],
                    s["bytes_put_acked"] / 1048576.0, faults,
                    ", ".join("%s x%d" % kv for kv in sorted(nem.counts.items())) or "none",
                    v.counts["lost_writes"], v.counts["wrong_reads"], v.counts["stale_reads"], v.counts["unreadable"],
                    v.counts["stale_list"], v.counts["list_ghosts"], v.counts["list_missing"],
                    v.counts["list_garbage"], v.counts["unexpected"]))
        print(line, flush=True)
        raced = failed_gets_racing_writes(h)
        print("# %s: GET latency max %.2f s, p99 %.2f s; %d GETs during SIGSTOP windows: worst %.2f s "
              "(objects up to 4 MiB), %.2f s (larger); io timeout %.1f s; %d of %d failed GETs overlapped "
              "an overwrite or delete of their key" %
              (self.name, s["get_latency_max"], s["get_latency_p99"], paused_gets, worst_small, worst_big,
               io_timeout, raced, s["get"]["fail"]), flush=True)
        total = sum(degraded.values())
        print("# %s: fragments of the %d objects readable after quiescence (intact of %d): %s%s" %
              (self.name, total, k + m, ", ".join("%d: %d" % (n, degraded[n]) for n in sorted(degraded, reverse=True))
               or "none", ("; problems: %s" % "; ".join(dproblems[:5])) if dproblems else ""), flush=True)
        for note in nem.notes:
            print("# %s: %s" % (self.name, note), flush=True)
        for line in timeline(h):
            print("# %s: %s" % (self.name, line), flush=True)
        dump(h, reads, self.name)
        print("# %s: %.1f s (faults %.1f s, quiescence and checks %.1f s)" %
              (self.name, time.time() - t_start, t_q - t_start, time.time() - t_q), flush=True)
        results.append({"scenario": self.name, "ok": v.ok and not slow and repair_ok, "counts": v.counts, "stats": s,
                        "faults": nem.counts, "degraded": degraded, "notes": nem.notes,
                        "slow_gets_during_pause": len(slow), "failed_gets_racing_writes": raced, "worst_get_during_pause": [worst_small, worst_big],
                        "seconds": time.time() - t_start})
        problems = ["%s" % d for d in v.details[:20]]
        problems += ["GET took %.2f s while a node was stopped (io timeout %.1f s): %r" % (o.latency(), io_timeout, o)
                     for o in slow[:5]]
        problems += [n for n in nem.notes if n.startswith("PROBLEM")]
        if not repair_ok:
            problems.append("after repair --verify %d objects still hold fewer than k+m intact fragments; %s" %
                            (short_sets, "; ".join(rproblems[:5])))
        if problems:
            raise TestFailure("scenario %s: %d problem(s):\n  %s" % (self.name, len(v.details) + len(slow),
                                                                   "\n  ".join(problems)))

    def phase(self, nem, ph, heals):
        t = time.monotonic()
        free = None
        for name, args in ph["faults"]:
            heals.append(getattr(nem, name)(**args))
            if name == "enospc":
                free = getattr(nem, "_enospc_free", None)
        hold = ph["hold"]
        if free is not None:
            time.sleep(hold / 2)
            free()
            time.sleep(hold / 2)
        else:
            time.sleep(max(0.0, hold - (time.monotonic() - t)))
        while heals:
            heals.pop(0)()
        time.sleep(ph["gap"])


# ---------------------------------------------------------------- entry points

def checker_self_test(c):
    f = checker.self_test()
    check(not f, "checker self-test:\n  " + "\n  ".join(f))


def build_suite(name, scenarios, seconds=None, threads=4, nkeys=24, seed=None, results=None, nodes=8):
    """A harness Suite with one case per scenario. Returns (suite, results list)."""
    seed = seed if seed is not None else int(os.environ.get("CAIRN_FAULTS_SEED") or time.time()) % 1000000
    results = results if results is not None else []
    suite = Suite(name, nodes=nodes)
    print("# %s: seed %d (CAIRN_FAULTS_SEED=%d repeats it)" % (name, seed, seed), flush=True)
    suite.case(checker_self_test)
    for i, (sname, phases) in enumerate(scenarios):
        sc = Scenario(sname, phases, seconds=seconds * (3 if phases is None else 1) if seconds else None,
                      threads=threads, nkeys=nkeys, seed=seed + i, rnd_phases=phases is None)

        def case(c, sc=sc):
            sc.run(c, results)
        case.__name__ = sname.replace("-", "_")
        suite.case(case)
    return suite, results


def write_json(results):
    path = os.environ.get("CAIRN_FAULTS_JSON")
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


def main():
    args = [a for a in sys.argv[1:]]
    short = "--short" in args
    args = [a for a in args if a != "--short"]
    if short:
        scen, seconds, threads, nkeys = SHORT, None, 4, 24
    else:
        scen, seconds, threads, nkeys = LONG, float(os.environ.get("CAIRN_FAULTS_SECONDS") or 90), 6, 40
    if args:
        scen = [s for s in scen if s[0] in args or s[0].replace("-", "_") in args]
        sys.argv[1:] = []  # the harness takes arguments as case names: run them all
    suite, results = build_suite("faults" if not short else "faults_short", scen, seconds, threads, nkeys)
    import atexit
    atexit.register(write_json, results)
    suite.main()


if __name__ == "__main__":
    main()
