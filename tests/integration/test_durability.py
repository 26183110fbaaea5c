#!/usr/bin/python3
"""Durability: objects survive kill -9 of any 2 storage nodes (several
pairs), damaged fragment files are detected and decoded around, and the
client never gets silently wrong bytes."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import os

from harness import INLINE_MAX, KiB, MiB, Suite, TestFailure, check, eq, flip_bytes, key_path, sha256, short, xml_error_code

suite = Suite("durability")
BUCKET = "durable"
OBJECTS = {}   # key -> bytes
FRAGS = {}     # key -> [Frag]
SIZES = [0, 1, 4095, 4096, INLINE_MAX + 4095, MiB + 1, 3 * MiB + 777, 9 * MiB + 3]
SHORT = "obj-%d" % (INLINE_MAX + 4095)  # the smallest kind with fragments: one short stripe
PAIRS = [("node-1", "node-2"), ("node-3", "node-6"), ("node-4", "node-5"), ("node-1", "node-5")]


def read_all(c, what, keys=None):
    """GET every object (or keys) and compare by sha256; a list of problems."""
    bad = []
    for key in keys or sorted(OBJECTS):
        data = OBJECTS[key]
        st, got, h = c.get_sha(BUCKET, key)
        if st != 200 or got != sha256(data):
            bad.append("%s: GET %s -> %d, sha256 %s (want %s, %d bytes)" % (what, key, st, got[:16],
                                                                           sha256(data)[:16], len(data)))
    return bad


def range_check(c, key, ranges, what):
    data = OBJECTS[key]
    bad = []
    for a, b in ranges:
        st, h, body = c.curl("GET", key_path(BUCKET, key), headers={"Range": "bytes=%d-%d" % (a, b)})
        if st != 206 or body != data[a:b + 1]:
            bad.append("%s: Range %d-%d of %s -> %d, %d bytes%s" % (what, a, b, key, st, len(body),
                                                                 " (differ)" if st == 206 else ""))
    return bad


@suite.case
def setup_objects(c):
    c.make_bucket(BUCKET)
    for size in SIZES:
        key = "obj-%d" % size
        data = os.urandom(size)
        r, frags = c.put_find_frags(BUCKET, key, data)
        c.ok(r, "PUT %s" % key)
        OBJECTS[key] = data
        FRAGS[key] = frags
        if size <= INLINE_MAX:  # kept in the (replicated) metadata record
            eq(frags, [], "fragment files of the small object %s" % key)
            continue
        eq(sorted(f.index for f in frags), list(range(c.k + c.m)), "fragment indexes of %s (%s)" % (key, frags))
        eq(len(set(f.node for f in frags)), c.k + c.m, "distinct nodes holding %s (%s)" % (key, frags))
    bad = read_all(c, "healthy")
    check(not bad, "\n  ".join(bad))


@suite.case
def kill_two_nodes(c):
    check(OBJECTS, "no objects (setup failed)")
    big = "obj-%d" % (9 * MiB + 3)
    S = 4 * 256 * KiB
    for pair in PAIRS:
        for n in pair:
            c.kill9(n)
        what = "with %s and %s killed" % pair
        bad = read_all(c, what)
        bad += range_check(c, big, [(0, 10), (S - 5, S + 5), (2 * S - 1, 5 * S + 1), (9 * MiB - 2, 9 * MiB + 2)], what)
        st, h, _ = c.curl("HEAD", key_path(BUCKET, big))
        if st != 200 or h.get("content-length") != str(9 * MiB + 3):
            bad.append("%s: HEAD %s -> %d, Content-Length %s" % (what, big, st, h.get("content-length")))
        st, h, body = c.curl("GET", "/" + BUCKET, query={"list-type": "2"})
        if st != 200 or body.count(b"<Key>") != len(OBJECTS):
            bad.append("%s: list -> %d, %d keys" % (what, st, body.count(b"<Key>")))
        check(not bad, "\n  ".join(bad))
        c.restart()  # starts the two killed nodes again
        bad = read_all(c, "after restarting %s and %s" % pair)
        check(not bad, "\n  ".join(bad))


@suite.case
def put_with_two_nodes_down_is_refused(c):
    # The design acknowledges a PUT only after k+1 durable fragments, so with
    # 2 of 6 nodes down (4 = k reachable) a PUT must fail with 503 and leave
    # nothing visible.
    c.kill9("node-2")
    c.kill9("node-4")
    try:
        st, h, body = c.curl("PUT", key_path(BUCKET, "two-down"), data=os.urandom(100000), timeout=60)
        code = xml_error_code(body)
        check((st, code) == (503, "ServiceUnavailable"),
              "PUT with 2 of 6 nodes down: expected 503 ServiceUnavailable, got %d %s %s" % (st, code, short(body)))
        st, h, body = c.curl("GET", key_path(BUCKET, "two-down"))
        eq((st, xml_error_code(body)), (404, "NoSuchKey"), "GET after a refused PUT")
    finally:
        c.restart()


@suite.case
def put_with_one_node_down(c):
    # k+1 = 5 of 6 reachable: the PUT succeeds, and survives losing one more node.
    c.kill9("node-3")
    data = os.urandom(2 * MiB + 99)
    c.ok(c.curl("PUT", key_path(BUCKET, "one-down"), data=data), "PUT with node-3 down")
    OBJECTS["one-down"] = data
    bad = read_all(c, "node-3 down", ["one-down"])
    c.kill9("node-1")
    bad += read_all(c, "node-3 and node-1 down", ["one-down"])
    c.restart()
    bad += read_all(c, "after restart", ["one-down"])
    c.kill9("node-5")
    bad += read_all(c, "node-5 down (node-3 never got its fragment)", ["one-down"])
    c.restart()
    check(not bad, "\n  ".join(bad))


def frag_of(key, index):
    for f in FRAGS[key]:
        if f.index == index:
            return f
    raise TestFailure("no fragment %d of %s" % (index, key))


@suite.case
def flipped_bytes_in_data_fragment(c):
    key = "obj-%d" % (3 * MiB + 777)
    data = OBJECTS[key]
    f0 = frag_of(key, 0)
    blocks = f0.blocks()
    eq(len(blocks), 4, "stripes of %s" % key)
    # Stripe 0 and the short last stripe of data fragment 0.
    flip_bytes(f0.path, blocks[0][0] + 1000, 16)
    flip_bytes(f0.path, blocks[3][0] + 3, 1)
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(data)), "GET with fragment 0 damaged")
    # Another data fragment damaged in another stripe, and its checksum in a third.
    f1 = frag_of(key, 1)
    b1 = f1.blocks()
    flip_bytes(f1.path, b1[1][0] + b1[1][1] // 2, 64)
    flip_bytes(f1.path, b1[2][0] + b1[2][1] + 2, 1)  # inside the XXH3 after block 2
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(data)), "GET with fragments 0 and 1 damaged")
    bad = range_check(c, key, [(1000, 1100), (256 * KiB, 256 * KiB + 10), (MiB + 256 * KiB - 2, MiB + 256 * KiB + 2),
                               (3 * MiB, 3 * MiB + 776)], "damaged")
    check(not bad, "\n  ".join(bad))

    # Two data fragments damaged in the same stripe (m = 2: still decodable).
    key = "obj-%d" % (MiB + 1)
    data = OBJECTS[key]
    for idx in (0, 3):
        f = frag_of(key, idx)
        flip_bytes(f.path, f.blocks()[0][0] + 7, 3)
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(data)), "GET with fragments 0 and 3 damaged in the same stripe")

    # A small object with fragments: one short stripe.
    key = SHORT
    f = frag_of(key, 2)
    flip_bytes(f.path, f.blocks()[0][0], 1)
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(OBJECTS[key])), "GET of a one-short-stripe object with fragment 2 damaged")


@suite.case
def damaged_fragment_and_dead_node(c):
    key = "obj-%d" % (9 * MiB + 3)
    data = OBJECTS[key]
    f2 = frag_of(key, 2)
    flip_bytes(f2.path, f2.blocks()[4][0] + 5000, 8)
    parity = frag_of(key, c.k)   # first parity fragment
    c.kill9(parity.node)
    try:
        st, got, _ = c.get_sha(BUCKET, key)
        eq((st, got), (200, sha256(data)), "GET with fragment 2 damaged and %s (parity) down" % parity.node)
    finally:
        c.restart()


@suite.case
def too_much_damage_is_an_error(c):
    # Three of six fragments of one stripe damaged (more than m): the client
    # must get an error or a cut-short reply, never 200 with wrong bytes.
    key = "obj-%d" % (9 * MiB + 3)
    data = OBJECTS[key]
    for idx in (0, 1, c.k):
        f = frag_of(key, idx)
        flip_bytes(f.path, f.blocks()[6][0] + 12, 4)
    p = c.tmpfile(suffix=".dmg")
    st, h, _ = c.curl("GET", key_path(BUCKET, key), out=p, allow_error=True, timeout=60)
    n = os.path.getsize(p) if os.path.exists(p) else 0
    with open(p, "rb") as fh:
        got = sha256(fh.read())
    if st == 200 and n == len(data):
        check(got == sha256(data), "GET of an object beyond repair returned 200 with %d wrong bytes" % n)
        raise TestFailure("GET of an object with 3 of 6 fragments of stripe 6 damaged returned all %d bytes "
                          "intact: the damage was not where the test put it" % n)
    # A range outside the damaged stripe still reads.
    bad = range_check(c, key, [(0, 100), (3 * MiB, 4 * MiB)], "stripe 6 beyond repair")
    check(not bad, "\n  ".join(bad))


if __name__ == "__main__":
    suite.main()
