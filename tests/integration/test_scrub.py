#!/usr/bin/python3
"""Scrubbing: storage nodes find damaged fragment files on their own.

The cluster runs with a fast scrubber ([cluster] scrub_rate_mb = 200,
scrub_interval_s = 1). A flipped byte in one fragment file and a truncated
other one must appear on their nodes' bad lists (NODE_BAD_LIST, spoken here
with the cluster key) within a bounded time, without any client reading
them; the files leave frags/ for quarantine/; the scrub counters move; the
objects still read back exactly (parity); the list survives a node restart;
putting the fragment back (what a repair does) takes it off the list, and
deleting the object removes the quarantined copies.

First, with the default scrubber (a pass a day, so it finds nothing by
itself here): `cairn-admin repair --verify` has every node scrub at once,
and the fragments damaged on disk, which no client has read, are found,
quarantined and rebuilt in the same run; with --dry-run they are found but
not rebuilt.
"""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import os
import struct
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "faults"))

import wire  # noqa: E402  (tests/faults/wire.py)
from harness import (KiB, MiB, Suite, TestFailure, admin_answer, check, conf_value, eq, flip_bytes,  # noqa: E402
                     set_config, sha256, short)

suite = Suite("scrub")
BUCKET = "scrubbed"
OP_NODE_BAD_LIST = 16
OP_NODE_SCRUB_STATUS = 17
VBUCKET = "verified"
VOBJECTS = {}              # key -> bytes, of the --verify cases
VFRAGS = {}                # key -> [Frag] by index
BAD_BLOCK, BAD_SIZE = 2, 3
FOUND_WITHIN = 30          # seconds: a pass over a few MiB at 200 MB/s, plus the 1 s interval
OBJECTS = {}               # key -> bytes
DAMAGED = {}               # what -> (Frag, reason)
STATE = {}


def frames(c):
    return wire.Frames(conf_value(c, "cluster", "secret"))


def node_addr(c, node):
    return conf_value(c, "node.%s" % node.split("-")[1], "addr")


def node_call(c, node, op, body=b""):
    st, b = wire.call(frames(c), node_addr(c, node), op, body)
    eq(wire.errname(st), "ok", "op %d on %s" % (op, node))
    return b


def bad_list(c, node):
    """{(oid hex, index): (reason, found_ms)} of a node."""
    d = wire.Dec(node_call(c, node, OP_NODE_BAD_LIST, struct.pack("<I", 1000)))
    out = {}
    for _ in range(d.u32()):
        oid, index, reason = d.raw(16).hex(), d.u8(), d.u8()
        out[(oid, index)] = (reason, struct.unpack("<q", d.raw(8))[0])
    eq(d.u8(), 0, "NODE_BAD_LIST 'more' of %s" % node)
    eq(d.left(), 0, "bytes after NODE_BAD_LIST of %s" % node)
    return out


def scrub_status(c, node):
    b = node_call(c, node, OP_NODE_SCRUB_STATUS)
    eq(len(b), 64, "NODE_SCRUB_STATUS body length of %s" % node)
    v = struct.unpack("<QQQQqQQQ", b)
    return dict(zip(("passes", "fragments", "bytes", "bad", "last_end_ms", "progress", "now_requested", "now_done"),
                    v))


def admin(c, *args, timeout=300):
    """cairn-admin --json ARGS (harness.admin_answer), failing without a JSON answer:
    (exit status, the answer, stdout, stderr)."""
    rc, doc, out, err = admin_answer(c, *args, timeout=timeout)
    if doc is None:
        raise TestFailure("cairn-admin %s: rc %d, no JSON: %s %s" % (" ".join(args), rc, short(out, 1500),
                                                                    short(err, 1500)))
    return rc, doc, out, err


def frag_stat(c, f):
    """FRAG_STAT of a fragment on its node: the status name ("ok", "ENOTFOUND"...)."""
    st, _ = wire.call(frames(c), node_addr(c, f.node), wire.OP_FRAG_STAT, bytes.fromhex(f.oid) + bytes([f.index]))
    return wire.errname(st)


def damage(f):
    """Flip a byte in the middle of the fragment's last block (header untouched)."""
    off, blen = f.blocks()[-1]
    flip_bytes(f.path, off + blen // 2)
    check(wire.frag_check(f.path, f.oid, f.index) is not None, "%r still verifies after the flip" % f)


def check_rebuilt(c, f, what):
    """The fragment is back in frags/, intact, served, off the bad list; its
    damaged copy sits in quarantine/."""
    check(os.path.exists(f.path), "%s: %r not rebuilt (no file)" % (what, f))
    eq(wire.frag_check(f.path, f.oid, f.index), None, "%s: the rebuilt file of %r" % (what, f))
    eq(frag_stat(c, f), "ok", "%s: FRAG_STAT of %r" % (what, f))
    check((f.oid, f.index) not in bad_list(c, f.node), "%s: %r still on the bad list" % (what, f))
    q = [x for x in quarantined(c, f.node) if x.startswith("%s.%d." % (f.oid, f.index))]
    eq(len(q), 1, "%s: quarantined copies of %r" % (what, f))


def wait_for(what, fn, timeout=FOUND_WITHIN):
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got:
            return got
        check(time.time() < deadline, "%s: not within %d s" % (what, timeout))
        time.sleep(0.2)


def quarantined(c, node):
    d = os.path.join(c.dir, "data", node, "quarantine")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@suite.case
def verify_repairs_unread_damage(c):
    c.make_bucket(VBUCKET)
    for i, size in enumerate((3 * MiB + 11, 2 * MiB, MiB + 5, 900 * KiB, 5 * MiB + 1)):
        key, data = "v%d" % i, os.urandom(size)
        r, fr = c.put_find_frags(VBUCKET, key, data)
        c.ok(r, "PUT %s" % key)
        eq(len(fr), c.k + c.m, "fragment files of %s" % key)
        VOBJECTS[key] = data
        VFRAGS[key] = sorted(fr, key=lambda f: f.index)
    total = sum(os.path.getsize(f.path) for fr in VFRAGS.values() for f in fr)
    # Data and parity fragments, two of one object (m = 2), some on one node.
    hit = [VFRAGS["v0"][0], VFRAGS["v1"][2], VFRAGS["v2"][c.k], VFRAGS["v4"][1], VFRAGS["v4"][c.k + 1]]
    for f in hit:
        damage(f)
    for n in c.node_names():
        eq(bad_list(c, n), {}, "bad list of %s before the verification" % n)

    t0 = time.time()
    rc, doc, out, err = admin(c, "repair", "--verify", "--rate", "100")
    took = time.time() - t0
    eq(rc, 0, "repair --verify exit status (stderr %s)" % short(err, 1500))
    v = doc.get("verify")
    check(v is not None, "no verify counts in the --json answer: %s" % doc)
    nodes = len(c.node_names())
    eq((v["nodes"], v["verified"], v["skipped"]), (nodes, nodes, 0), "nodes asked, verified, skipped")
    eq(v["corrupt"], len(hit), "corrupt fragments the verification found")
    check(v["fragments"] >= len(VFRAGS) * (c.k + c.m) and v["bytes"] >= total,
          "the verification checked %d fragments, %d bytes; the store holds %d, %d bytes" %
          (v["fragments"], v["bytes"], len(VFRAGS) * (c.k + c.m), total))
    check("nodes done" in err and "%d corrupt found" % len(hit) in err, "no verify progress on stderr: %s" % short(err))
    eq((doc["degraded_sets"], doc["rebuilt_fragments"], doc["failed"], doc["unrecoverable"]), (4, len(hit), 0, 0),
       "repair after the verification: degraded sets, rebuilt, failed, unrecoverable")
    for f in hit:
        check_rebuilt(c, f, "repair --verify")
    for n in c.node_names():
        st = scrub_status(c, n)
        check(st["now_requested"] >= 1 and st["now_done"] >= st["now_requested"],
              "%s: requested pass not done: %s" % (n, st))
    print("# repair --verify: %d nodes verified %d fragments (%.1f MiB) in %.2f s at --rate 100, %d corrupt found; "
          "rebuilt %d; %.2f s in all" % (v["verified"], v["fragments"], v["bytes"] / MiB, v["seconds"], v["corrupt"],
                                         doc["rebuilt_fragments"], took))
    for key, data in sorted(VOBJECTS.items()):
        st, got, _ = c.get_sha(VBUCKET, key)
        eq((st, got), (200, sha256(data)), "GET %s after repair --verify" % key)


@suite.case
def verify_dry_run_rebuilds_nothing(c):
    f = VFRAGS["v3"][1]
    damage(f)
    rc, doc, _, err = admin(c, "repair", "--verify", "--dry-run")
    eq(rc, 0, "repair --verify --dry-run exit status (stderr %s)" % short(err, 1500))
    eq(doc["verify"]["corrupt"], 1, "corrupt fragments found by the dry run")
    eq((doc["degraded_sets"], doc["fragments"]), (1, 1), "degraded sets and fragments the dry run reports")
    check(not os.path.exists(f.path), "the damaged %r is still in frags/" % f)
    check((f.oid, f.index) in bad_list(c, f.node), "the damaged %r is not on the bad list" % f)
    eq(frag_stat(c, f), "ENOTFOUND", "FRAG_STAT of the quarantined %r" % f)
    rc, doc, _, err = admin(c, "repair")
    eq((rc, doc["rebuilt_fragments"]), (0, 1), "the repair after the dry run: exit status, rebuilt")
    check_rebuilt(c, f, "repair after repair --verify --dry-run")
    st, got, _ = c.get_sha(VBUCKET, "v3")
    eq((st, got), (200, sha256(VOBJECTS["v3"])), "GET v3")


@suite.case
def fast_scrubber(c):
    set_config(c, {"cluster": {"scrub_rate_mb": 200, "scrub_interval_s": 1}}, procs=c.node_names())
    for n in c.node_names():
        wait_for("first scrub pass on %s" % n, lambda: scrub_status(c, n)["passes"] >= 1)
        check(bad_list(c, n) == {}, "%s: bad list of a fresh node not empty" % n)


@suite.case
def damage_is_found(c):
    c.make_bucket(BUCKET)
    frags = {}
    for key, size in (("flipped", 3 * MiB + 5), ("torn", MiB + 77), ("intact", 700 * KiB)):
        data = os.urandom(size)
        r, fr = c.put_find_frags(BUCKET, key, data)
        c.ok(r, "PUT %s" % key)
        eq(len(fr), c.k + c.m, "fragment files of %s" % key)
        OBJECTS[key] = data
        frags[key] = sorted(fr, key=lambda f: f.index)
    before = {n: scrub_status(c, n) for n in c.node_names()}

    f = frags["flipped"][1]                    # a data fragment: a byte inside stripe 1's block
    off, blen = f.blocks()[1]
    flip_bytes(f.path, off + blen // 2)
    DAMAGED["flipped"] = (f, BAD_BLOCK)
    STATE["flipped_at"] = off + blen // 2
    f = frags["torn"][c.k]                     # a parity fragment cut in half
    os.truncate(f.path, os.path.getsize(f.path) // 2)
    DAMAGED["torn"] = (f, BAD_SIZE)

    t0 = time.time()
    for what, (f, reason) in DAMAGED.items():
        got = wait_for("%s fragment %r on the bad list" % (what, f),
                       lambda: bad_list(c, f.node).get((f.oid, f.index)))
        eq(got[0], reason, "bad-list reason of the %s fragment" % what)
        check(abs(got[1] / 1000 - time.time()) < 120, "found_ms of the %s fragment: %d" % (what, got[1]))
        check(not os.path.exists(f.path), "%s fragment still in frags/: %s" % (what, f.path))
        q = [x for x in quarantined(c, f.node) if x.startswith("%s.%d." % (f.oid, f.index))]
        eq(len(q), 1, "quarantined copies of the %s fragment on %s" % (what, f.node))
    print("# both damaged fragments listed %.1f s after the damage" % (time.time() - t0))
    # Nothing else is listed anywhere.
    listed = sum(len(bad_list(c, n)) for n in c.node_names())
    eq(listed, 2, "bad-list entries on all nodes")

    for n in c.node_names():
        wait_for("another pass on %s" % n, lambda: scrub_status(c, n)["passes"] > before[n]["passes"])
        a = scrub_status(c, n)
        b = before[n]
        check(a["fragments"] > b["fragments"] and a["bytes"] > b["bytes"] and a["last_end_ms"] > b["last_end_ms"],
              "%s: scrub counters did not move: %s -> %s" % (n, b, a))
    for what, (f, _) in DAMAGED.items():
        a = scrub_status(c, f.node)
        check(a["bad"] >= before[f.node]["bad"] + 1, "%s: bad_found did not count the %s fragment: %s" %
              (f.node, what, a))


@suite.case
def reads_are_exact(c):
    for key, data in sorted(OBJECTS.items()):
        st, got, _ = c.get_sha(BUCKET, key)
        eq((st, got), (200, sha256(data)), "GET %s" % key)


@suite.case
def bad_list_survives_restart(c):
    f, reason = DAMAGED["flipped"]
    was = bad_list(c, f.node)
    c.kill9(f.node)
    c.restart()
    eq(bad_list(c, f.node), was, "bad list of %s after kill -9 and restart" % f.node)


@suite.case
def repair_takes_it_off(c):
    # What a repair does: put a good copy of the fragment. Here the good
    # copy is the quarantined one with its flipped byte flipped back.
    f, _ = DAMAGED["flipped"]
    qdir = os.path.join(c.dir, "data", f.node, "quarantine")
    q = [x for x in quarantined(c, f.node) if x.startswith("%s.%d." % (f.oid, f.index))][0]
    with open(os.path.join(qdir, q), "rb") as fh:
        body = bytearray(fh.read())
    body[STATE["flipped_at"]] ^= 0xFF
    check(wire.frag_check(os.path.join(qdir, q)) is not None, "the quarantined copy is the damaged one")
    st, _ = wire.call(frames(c), node_addr(c, f.node), wire.OP_FRAG_PUT, bytes(body))
    eq(wire.errname(st), "ok", "FRAG_PUT of the repaired fragment")
    left = bad_list(c, f.node)
    check((f.oid, f.index) not in left, "%s: the repaired fragment is still listed: %s" % (f.node, left))
    t, _ = DAMAGED["torn"]
    check((t.oid, t.index) in bad_list(c, t.node), "%s: the torn fragment left the list too" % t.node)
    eq(wire.frag_check(f.path, f.oid, f.index), None, "the repaired fragment file")
    check(q in quarantined(c, f.node), "the quarantined copy stays until it expires or is deleted")
    st, got, _ = c.get_sha(BUCKET, "flipped")
    eq((st, got), (200, sha256(OBJECTS["flipped"])), "GET flipped after the repair")


@suite.case
def delete_removes_quarantined(c):
    # The gateway deletes an object's fragments gc_delay_ms (2 s here) after
    # the DELETE; that FRAG_DELETE also removes quarantined copies.
    for key in ("flipped", "torn"):
        st, _, _ = c.s3("DELETE", BUCKET, key)
        eq(st, 204, "DELETE %s" % key)
    for what, (f, _) in DAMAGED.items():
        wait_for("quarantined copies of the %s fragment removed" % what,
                 lambda: not [x for x in quarantined(c, f.node) if x.startswith(f.oid)])
        left = bad_list(c, f.node)
        check((f.oid, f.index) not in left, "%s: the %s fragment still listed after the delete: %s" %
              (f.node, what, left))
    eq(sum(len(bad_list(c, n)) for n in c.node_names()), 0, "bad-list entries left on all nodes")


if __name__ == "__main__":
    suite.main()
