#!/usr/bin/python3
"""Negative security: what an attacker who reaches a port can do, and what
hostile input does to stored data.

- Internal ports: raw frames (wire.h: 40-byte header, body, 32-byte MAC
  trailer) signed with a wrong key, or plain garbage, sent to every storage
  node and metadata replica are refused: no response carries data, the
  connection is closed, nothing on disk or in metadata changes, and the
  service stays up. A frame built the same way with the cluster key is
  accepted (so the refusals are about the key, not a malformed frame).
- Replay: a frame made with the cluster key and served once is refused when
  sent again on its connection, on another connection, or when its clock is
  outside the skew window, and the refusal changes nothing (a recorded
  FRAG_DELETE does not delete the fragment put back since; a recorded
  BUCKET_CREATE does not bring back the bucket deleted since).
- Presigned URLs: one that expired is refused with AccessDenied "Request
  has expired".
- Users: a second user's key cannot read, list, overwrite or delete the
  first user's bucket, nor the reverse.
- Hostile S3 requests (huge headers, 2000 headers, bad and hostile XML,
  path traversal keys, NUL bytes, bad percent-encoding, overlong keys,
  broken framing) get a 4xx, and every stored object stays byte-identical.
- Gateway limits: 1024-byte keys, 1000 keys per DeleteObjects, 4 MiB XML
  bodies, 16 KiB of headers are enforced with S3 errors; a client that
  trickles its headers is cut off at the request timeout while others are
  served; connections and requests past [gateway] max_connections and
  max_requests get 503 SlowDown.
- Nothing derived from a key reaches a file path: node data directories
  hold only fan-out directories and <32 hex>.<index> files.
"""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import hashlib
import http.client
import os
import re
import socket
import struct
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "faults"))

import s3  # noqa: E402  (tests/faults/s3.py)
import wire  # noqa: E402  (tests/faults/wire.py)
from harness import Suite, check, conf_value, eq, sha256, short, xml_error_code  # noqa: E402

suite = Suite("security")
BUCKET = "secure"
OBJECTS = {}      # key -> bytes, every object that must stay byte-identical
SNAPSHOT = {}     # fragment path -> sha256 at setup
FRAG_OF = {}      # key -> (oid hex, [node ids]) from the metadata record
STATE = {}

EAUTH = wire.EAUTH


def node_addrs(c):
    return {n: conf_value(c, "node.%s" % n.split("-")[1], "addr") for n in c.node_names()}


def meta_addrs(c):
    return conf_value(c, "cluster", "meta").split(",")


def client(c, ak=None, sk=None):
    return s3.S3Client(c.endpoint, ak or c.ak, sk or c.sk, c.region, timeout=30)


def file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def objects_intact(c, what):
    """Every object of OBJECTS reads back byte-identical; every fragment file
    of the setup snapshot is still there, unchanged."""
    bad = []
    cl = client(c)
    try:
        for key, data in sorted(OBJECTS.items()):
            st, h, body = cl.get(BUCKET, key)
            if st != 200 or body != data:
                bad.append("GET %r -> %d, %d bytes (want %d bytes, sha %s)" % (key, st, len(body), len(data),
                                                                               sha256(data)[:12]))
    finally:
        cl.close()
    for p, digest in sorted(SNAPSHOT.items()):
        if not os.path.exists(p):
            bad.append("fragment file %s is gone" % p)
        elif file_sha(p) != digest:
            bad.append("fragment file %s changed" % p)
    check(not bad, "%s:\n  %s" % (what, "\n  ".join(bad)))


def tmp_leftovers(c):
    out = []
    for n in c.node_names():
        d = os.path.join(c.dir, "data", n, "tmp")
        out += [os.path.join(n, f) for f in (os.listdir(d) if os.path.isdir(d) else [])]
    return out


def refused(res, what):
    """A wrong-key or garbage exchange: no response frame with a body or a
    success status, and the server closed the connection. Returns a list of
    problems (empty when refused properly)."""
    bad = []
    for h, body, trailer in res["frames"]:
        if h["status"] == 0:
            bad.append("%s: answered with status 0 (op %d)" % (what, h["op"]))
        if h["body_len"] or body:
            bad.append("%s: answer carries %d bytes of body" % (what, h["body_len"]))
    if not res["frames"] and res["raw"]:
        bad.append("%s: %d bytes that are not a frame: %r" % (what, len(res["raw"]), res["raw"][:64]))
    if not res["closed"]:
        bad.append("%s: connection still open after %s" % (what, res["error"] or "the answer"))
    return bad


def build_fragment(oid_hex, index, k, m, data, block_size=256 * 1024):
    """A well-formed one-stripe fragment file (frag.h) holding `data`
    (len(data) <= block size) as its block: header with its checksum, the
    block, the block's XXH3-64."""
    hdr = bytearray(64)
    struct.pack_into("<IHH", hdr, 0, wire.FRAG_MAGIC, 1, 64)
    hdr[8:24] = bytes.fromhex(oid_hex)
    hdr[24], hdr[25], hdr[26] = index, k, m
    struct.pack_into("<IQ", hdr, 28, block_size, len(data) * k)
    struct.pack_into("<Q", hdr, 56, wire.xxh3_64(bytes(hdr[:56])))
    return bytes(hdr) + data + struct.pack("<Q", wire.xxh3_64(data))


# ---------------------------------------------------------------- setup

@suite.case
def setup(c):
    cl = client(c)
    try:
        eq(cl.create_bucket(BUCKET)[0], 200, "create bucket")
        for key, size in [("victim", 20000),  # above the inline limit: it has fragments ("dir/a.txt", 5000), ("big", 1500 * 1024), ("etc/passwd", 64),
                          ("a", 10), ("a.1", 3)]:
            data = os.urandom(size)
            eq(cl.put(BUCKET, key, data)[0], 200, "PUT %s" % key)
            OBJECTS[key] = data
    finally:
        cl.close()
    mc = wire.MetaClient(wire.Frames(conf_value(c, "cluster", "secret")), meta_addrs(c))
    for key in OBJECTS:
        rec = mc.obj_get(BUCKET, key)
        check(rec is not None, "no metadata record for %s" % key)
        FRAG_OF[key] = (rec["oid"], rec["nodes"], rec["k"], rec["m"])
        for i, n in enumerate(rec["nodes"]):
            p = wire.frag_path(c.dir, n, rec["oid"], i)
            check(os.path.exists(p), "fragment %d of %s not at %s" % (i, key, p))
            SNAPSHOT[p] = file_sha(p)
    STATE["etc_passwd"] = file_sha("/etc/passwd")
    objects_intact(c, "right after setup")


# ---------------------------------------------------------------- internal ports

def node_frames(good, bad, oid, index, k, m):
    """(what, payload) pairs a client without the key might send to a node."""
    o = bytes.fromhex(oid)
    frames = [
        ("PING, wrong key", bad.frame(wire.OP_PING)),
        ("FRAG_GET of a stored fragment, wrong key",
         bad.frame(wire.OP_FRAG_GET, o + bytes([index]) + struct.pack("<QI", 0, 16))),
        ("FRAG_STAT, wrong key", bad.frame(wire.OP_FRAG_STAT, o + bytes([index]))),
        ("FRAG_LIST from the start, wrong key", bad.frame(wire.OP_FRAG_LIST, bytes(17) + struct.pack("<I", 1000))),
        ("NODE_INFO, wrong key", bad.frame(wire.OP_NODE_INFO)),
        ("FRAG_DELETE of a stored fragment, wrong key", bad.frame(wire.OP_FRAG_DELETE, o + bytes([index]))),
        ("FRAG_DELETE with no MAC at all", bad.header(wire.OP_FRAG_DELETE, 17) + o + bytes([index])),
        ("FRAG_DELETE with an all-zero MAC", bad.header(wire.OP_FRAG_DELETE, 17) + o + bytes([index]) + bytes(32)),
        ("FRAG_DELETE with the MAC of another frame",
         bad.header(wire.OP_FRAG_DELETE, 17) + o + bytes([index]) + good.frame(wire.OP_PING)[-32:]),
        ("unknown opcode, wrong key", bad.frame(999, b"x" * 10)),
        ("bad magic", os.urandom(32) + os.urandom(64)),
        ("random bytes", os.urandom(4096)),
        ("header claiming 2^62 bytes", bad.header(wire.OP_FRAG_PUT, 1 << 62) + os.urandom(64)),
        ("header with unknown flag bits", struct.pack(wire.HDR_FMT, wire.MAGIC, 1, 0x80, 0, 1, 1, 0, wire.now_ms())
         + bytes(32)),
        ("a frame of the previous protocol (CRN1, no session)",
         struct.pack("<IHHiIQQ", 0x314E5243, wire.OP_PING, 0, 0, 0, 1, 0) + bytes(32)),
        ("truncated frame", bad.header(wire.OP_FRAG_GET, 29) + o[:5]),
    ]
    if wire.has_xxhash:
        # A well-formed replacement for a stored fragment, streamed with a wrong key.
        body = build_fragment(oid, index, k, m, b"attacker bytes " * 100)
        frames.append(("FRAG_PUT replacing a stored fragment, wrong key", bad.frame(wire.OP_FRAG_PUT, body)))
        # The same body with a MAC computed over a different header (op PING).
        h = bad.header(wire.OP_FRAG_PUT, len(body))
        frames.append(("FRAG_PUT with the MAC of another header",
                       h + body + good.mac(good.header(wire.OP_PING, len(body)), body)))
    return frames


@suite.case
def node_ports_refuse_wrong_key(c):
    check(FRAG_OF, "no objects (setup failed)")
    good = wire.Frames(conf_value(c, "cluster", "secret"))
    bad = wire.Frames(conf_value(c, "cluster", "secret")[::-1])   # same length, wrong
    oid, nodes, k, m = FRAG_OF["victim"]
    addrs = node_addrs(c)
    problems = []
    for i, nid in enumerate(nodes):
        name = "node-%d" % nid
        for what, payload in node_frames(good, bad, oid, i, k, m):
            # An incomplete frame gets EOF after it; a complete one must be
            # answered and closed by the server on its own.
            res = wire.exchange(addrs[name], payload, timeout=8,
                                half_close=what.startswith("truncated") or "no MAC" in what)
            problems += refused(res, "%s: %s" % (name, what))
    # Every other node too, with garbage only (it holds no fragment of victim).
    for name, addr in addrs.items():
        if int(name.split("-")[1]) not in nodes:
            problems += refused(wire.exchange(addr, bad.frame(wire.OP_NODE_INFO)), "%s: NODE_INFO, wrong key" % name)
    check(not problems, "\n  ".join(problems))
    # Positive control: the same frame builder with the cluster key is served.
    if wire.has_xxhash:
        st, body = wire.call(good, addrs["node-%d" % nodes[0]], wire.OP_FRAG_STAT, bytes.fromhex(oid) + b"\0")
        eq(wire.errname(st), "ok", "FRAG_STAT with the cluster key (positive control)")
        check(body[8:24].hex() == oid, "FRAG_STAT with the cluster key: header of another object")
    else:
        print("# libxxhash not loadable: no positive control (frames with the right key)")
    time.sleep(0.5)
    for n in c.node_names():
        check(c.alive(n), "%s died" % n)
    left = [f for f in tmp_leftovers(c)]
    check(not left, "temporary files left by refused streams: %s" % left)
    objects_intact(c, "after wrong-key frames to the nodes")


def once(op, body, cmd_id=b"\x42" * 16):
    return struct.pack("<H", op) + cmd_id + body


@suite.case
def meta_ports_refuse_wrong_key(c):
    check(FRAG_OF, "no objects (setup failed)")
    good = wire.Frames(conf_value(c, "cluster", "secret"))
    bad = wire.Frames("not the cluster secret")
    oid, nodes, k, m = FRAG_OF["victim"]
    ps = wire.put_str
    evil_user = ps("EVILEVILEVIL0000001") + ps("evil" * 10) + ps("evil") + ps("Evil")
    frames = [
        ("STATUS", wire.OP_META_STATUS, b""),
        ("USER_GET of the S3 key (its secret)", wire.OP_META_USER_GET, ps(c.ak)),
        ("USER_PUT of an attacker's key", wire.OP_META_USER_PUT, evil_user),
        ("ONCE(USER_PUT) of an attacker's key", wire.OP_META_ONCE, once(wire.OP_META_USER_PUT, evil_user)),
        ("OBJ_GET of victim", wire.OP_META_OBJ_GET, ps(BUCKET) + ps("victim")),
        ("OBJ_LIST of the bucket", wire.OP_META_OBJ_LIST, ps(BUCKET) + ps("") + ps("") + ps("") + struct.pack("<I", 1000)),
        ("BUCKET_LIST of the owner", wire.OP_META_BUCKET_LIST, ps("cairn")),
        ("OBJ_DELETE of victim", wire.OP_META_OBJ_DELETE, ps(BUCKET) + ps("victim")),
        ("ONCE(OBJ_DELETE) of victim", wire.OP_META_ONCE, once(wire.OP_META_OBJ_DELETE, ps(BUCKET) + ps("victim"))),
        ("BUCKET_CREATE", wire.OP_META_BUCKET_CREATE, ps("evil-bucket") + ps("evil")),
        ("ONCE(BUCKET_DELETE)", wire.OP_META_ONCE, once(111, ps(BUCKET) + ps("cairn"))),
        ("MEMBER_ADD", 181, struct.pack("<Q", 9) + ps("127.0.0.1:1") + ps("127.0.0.1:2")),
        ("TRANSFER", 183, struct.pack("<Q", 0)),
    ]
    problems = []
    for addr in meta_addrs(c):
        for what, op, body in frames:
            res = wire.exchange(addr, bad.frame(op, body), timeout=8)
            problems += refused(res, "meta %s: %s, wrong key" % (addr, what))
            if c.sk.encode() in res["raw"]:
                problems.append("meta %s: %s: the S3 secret key is in the answer" % (addr, what))
        for what, payload in [("OBJ_DELETE with no MAC", bad.header(wire.OP_META_OBJ_DELETE, 14) + ps(BUCKET)[:14]),
                              ("random bytes", os.urandom(4096)), ("bad magic", os.urandom(96)),
                              ("header claiming 2^62 bytes", bad.header(wire.OP_META_OBJ_PUT, 1 << 62))]:
            problems += refused(wire.exchange(addr, payload, timeout=8, half_close=True), "meta %s: %s" % (addr, what))
    check(not problems, "\n  ".join(problems))
    if wire.has_xxhash:
        mc = wire.MetaClient(good, meta_addrs(c))
        st, body = mc.call(wire.OP_META_STATUS)
        eq(wire.errname(st), "ok", "STATUS with the cluster key (positive control)")
        eq(mc.obj_get(BUCKET, "victim")["oid"], oid, "victim's record after the attack")
    # Nothing changed: no attacker user, no new bucket, every object intact.
    cl = client(c, "EVILEVILEVIL0000001", "evil" * 10)
    try:
        st, h, body = cl.request("GET", "/")
    finally:
        cl.close()
    check(st == 403, "the attacker's key works (GET / -> %d %s)" % (st, short(body)))
    cl = client(c)
    try:
        st, h, body = cl.request("GET", "/")
        check(b"evil-bucket" not in body, "a bucket created through a wrong-key frame: %s" % short(body))
    finally:
        cl.close()
    for n in c.proc_names():
        if n.startswith("meta-"):
            check(c.alive(n), "%s died" % n)
    objects_intact(c, "after wrong-key frames to the metadata replicas")


def refused_replay(conn, frame, what):
    """Send a recorded frame on conn: it must get an EAUTH answer with no
    body, flagged CLOSE, and the connection must end. Returns problems."""
    bad = []
    try:
        conn.send(frame)
        st, body, flags = conn.response(frame)
        if st != wire.EAUTH:
            bad.append("%s: answered %s" % (what, wire.errname(st)))
        if body:
            bad.append("%s: answer carries %d bytes" % (what, len(body)))
        if not flags & wire.FLAG_CLOSE:
            bad.append("%s: answer without the close flag" % what)
    except OSError:
        pass  # closed without an answer: refused too
    except ValueError as e:
        bad.append("%s: %s" % (what, e))
    if not conn.closed():
        bad.append("%s: connection still open" % what)
    conn.close()
    return bad


@suite.case
def replayed_frames(c):
    """Frames made with the cluster key and served once, sent again."""
    if not wire.has_xxhash:
        print("# replay: skipped (libxxhash not loadable)")
        return
    good = wire.Frames(conf_value(c, "cluster", "secret"))
    oid_v, nodes, k, m = FRAG_OF["victim"]
    nid = nodes[0]
    addr = node_addrs(c)["node-%d" % nid]
    oid = os.urandom(16)
    path = wire.frag_path(c.dir, nid, oid.hex(), 0)
    frag = build_fragment(oid.hex(), 0, k, m, b"replay scratch " * 50)
    problems = []

    def put_back():
        st, _ = wire.call(good, addr, wire.OP_FRAG_PUT, frag)
        eq(wire.errname(st), "ok", "FRAG_PUT of the scratch fragment")
        check(os.path.exists(path), "scratch fragment not at %s" % path)

    put_back()
    # A FRAG_DELETE recorded off the wire: served once...
    a = wire.Conn(good, addr)
    delete = a.request(wire.OP_FRAG_DELETE, oid + b"\0", req_id=0xDE1)
    a.send(delete)
    st, body, flags = a.response(delete)
    eq(wire.errname(st), "ok", "the recorded FRAG_DELETE, first time")
    check(not os.path.exists(path), "FRAG_DELETE did not delete %s" % path)
    put_back()
    # ... then sent again on its connection, and on another one.
    problems += refused_replay(a, delete, "FRAG_DELETE again on its connection")
    check(os.path.exists(path), "a replayed FRAG_DELETE deleted the fragment")
    problems += refused_replay(wire.Conn(good, addr), delete, "FRAG_DELETE on a second connection")
    check(os.path.exists(path), "a FRAG_DELETE replayed on another connection deleted the fragment")
    # Right session and seq, but a clock outside the window (made for later, or kept from before).
    for off, what in [(-2 * wire.SKEW_MS, "stamped 2 minutes ago"), (2 * wire.SKEW_MS, "stamped 2 minutes ahead")]:
        b = wire.Conn(good, addr)
        f = good.frame(wire.OP_FRAG_DELETE, oid + b"\0", 0xDE2, b.session, 1, wire.now_ms() + off)
        problems += refused_replay(b, f, "FRAG_DELETE %s" % what)
        check(os.path.exists(path), "a FRAG_DELETE %s deleted the fragment" % what)
    # Two requests of one connection swapped.
    b = wire.Conn(good, addr)
    first, second = b.request(wire.OP_PING), b.request(wire.OP_FRAG_DELETE, oid + b"\0")
    problems += refused_replay(b, second, "FRAG_DELETE sent before the request numbered before it")
    check(os.path.exists(path), "a reordered FRAG_DELETE deleted the fragment")
    st, _ = wire.call(good, addr, wire.OP_FRAG_DELETE, oid + b"\0")
    eq(wire.errname(st), "ok", "cleaning up the scratch fragment")

    # Metadata: a recorded BUCKET_CREATE, replayed after the bucket was deleted.
    ps = wire.put_str
    create_body = ps("replayed-bucket") + ps("cairn")
    created = None
    for maddr in meta_addrs(c):
        conn = wire.Conn(good, maddr)
        f = conn.request(wire.OP_META_BUCKET_CREATE, create_body, req_id=0xB0C)
        conn.send(f)
        st, body, flags = conn.response(f)
        if st == 0:
            created = (maddr, conn, f)
            break
        conn.close()
    check(created is not None, "no metadata replica created the bucket")
    maddr, conn, f = created
    mc = wire.MetaClient(good, meta_addrs(c))
    eq(wire.errname(mc.call(112, ps("replayed-bucket"))[0]), "ok", "BUCKET_HEAD of the bucket made by the frame")
    eq(wire.errname(mc.call(111, create_body)[0]), "ok", "BUCKET_DELETE of that bucket")
    problems += refused_replay(conn, f, "BUCKET_CREATE again on its connection")
    problems += refused_replay(wire.Conn(good, maddr), f, "BUCKET_CREATE on a second connection")
    time.sleep(0.5)
    st = mc.call(112, ps("replayed-bucket"))[0]
    check(st != 0, "the deleted bucket is back after the replayed BUCKET_CREATE")
    check(not problems, "\n  ".join(problems))
    for n in c.proc_names():
        check(c.alive(n), "%s died" % n)
    objects_intact(c, "after replayed frames")


# ---------------------------------------------------------------- presigned URLs

def raw_get(c, target, method="GET", body=None):
    conn = http.client.HTTPConnection(c.endpoint.split("//")[1].split(":")[0], int(c.endpoint.rsplit(":", 1)[1]),
                                      timeout=30)
    try:
        conn.request(method, target, body=body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@suite.case
def expired_presigned_url(c):
    host = c.endpoint.split("//")[1]
    path = s3.quote_key(BUCKET, "victim")
    url = s3.presign("GET", host, path, c.ak, c.sk, c.region, 60)
    st, body = raw_get(c, url)
    check(st == 200 and body == OBJECTS["victim"], "a fresh presigned GET (positive control): %d %s" % (st, short(body)))
    url = s3.presign("GET", host, path, c.ak, c.sk, c.region, 1)
    put_url = s3.presign("PUT", host, path, c.ak, c.sk, c.region, 1)
    time.sleep(3.0)  # X-Amz-Date has whole seconds: 3 s is past the 1 s expiry whatever the rounding
    st, body = raw_get(c, url)
    eq((st, xml_error_code(body)), (403, "AccessDenied"), "expired presigned GET")
    check(b"Request has expired" in body, "expired presigned GET: message is not 'Request has expired': %s" % short(body))
    check(OBJECTS["victim"] not in body, "expired presigned GET returned the object's bytes")
    st, body = raw_get(c, put_url, "PUT", b"overwrite through an expired URL")
    eq((st, xml_error_code(body)), (403, "AccessDenied"), "expired presigned PUT")
    # A signature that does not match (last hex digit changed) is refused too.
    url = s3.presign("GET", host, path, c.ak, c.sk, c.region, 60)
    url = url[:-1] + ("0" if url[-1] != "0" else "1")
    st, body = raw_get(c, url)
    eq((st, xml_error_code(body)), (403, "SignatureDoesNotMatch"), "presigned GET with a wrong signature")
    objects_intact(c, "after expired presigned URLs")


# ---------------------------------------------------------------- users

@suite.case
def cross_user_isolation(c):
    """User B (a second access key, created in metadata) and the cluster's
    user A: neither can read, list, overwrite or delete the other's bucket."""
    if not wire.has_xxhash:
        print("# cross-user: skipped (needs libxxhash to create a second user)")
        return
    mc = wire.MetaClient(wire.Frames(conf_value(c, "cluster", "secret")), meta_addrs(c))
    bk, bs = "USERBUSERBUSERB00001", "b-secret-" + os.urandom(12).hex()
    ps = wire.put_str
    st, _ = mc.call(wire.OP_META_USER_PUT, ps(bk) + ps(bs) + ps("user-b") + ps("User B"))
    eq(wire.errname(st), "ok", "create user B in metadata")
    a, b = client(c), client(c, bk, bs)
    problems = []
    try:
        eq(b.create_bucket("bucket-of-b")[0], 200, "user B creates its bucket")
        b_data = os.urandom(3000)
        eq(b.put("bucket-of-b", "private", b_data)[0], 200, "user B PUTs its object")

        def expect_denied(what, resp):
            st, h, body = resp
            if st != 403:
                problems.append("%s: expected 403 AccessDenied, got %d %s" % (what, st, xml_error_code(body) or ""))
        expect_denied("A GETs B's object", a.get("bucket-of-b", "private"))
        expect_denied("A LISTs B's bucket", a.request("GET", "/bucket-of-b", "list-type=2"))
        expect_denied("A overwrites B's object", a.put("bucket-of-b", "private", b"written by A"))
        expect_denied("A DELETEs B's object", a.delete("bucket-of-b", "private"))
        expect_denied("B GETs A's object", b.get(BUCKET, "victim"))
        expect_denied("B LISTs A's bucket", b.request("GET", "/" + BUCKET, "list-type=2"))
        expect_denied("B PUTs into A's bucket", b.put(BUCKET, "planted-by-b", b"x"))
        expect_denied("B overwrites A's object", b.put(BUCKET, "victim", b"written by B"))
        expect_denied("B DELETEs A's object", b.delete(BUCKET, "victim"))
        expect_denied("B DELETEs A's bucket", b.request("DELETE", "/" + BUCKET))
        st, h, body = b.get("bucket-of-b", "private")
        if st != 200 or body != b_data:
            problems.append("B's own object after A's attempts: %d, %d bytes (want its %d bytes)" %
                            (st, len(body), len(b_data)))
        st, h, body = b.request("GET", "/")
        if BUCKET.encode() in body:
            problems.append("B's ListBuckets shows A's bucket")
    finally:
        a.close()
        b.close()
    # A's data must be what it was, whatever the answers above were.
    lost = []
    cl = client(c)
    try:
        for key, data in sorted(OBJECTS.items()):
            st, h, body = cl.get(BUCKET, key)
            if st != 200 or body != data:
                lost.append(key)
        if cl.get(BUCKET, "planted-by-b")[0] != 404:
            lost.append("planted-by-b exists in A's bucket")
    finally:
        cl.close()
    if lost:
        problems.append("A's objects changed by user B: %s" % lost)
        # Put them back so the cases after this one test something.
        cl = client(c)
        try:
            for key, data in OBJECTS.items():
                cl.put(BUCKET, key, data)
            cl.delete(BUCKET, "planted-by-b")
        finally:
            cl.close()
        # Restored objects have new fragments.
        SNAPSHOT.clear()
    check(not problems, "\n  ".join(problems))


# ---------------------------------------------------------------- hostile S3 requests

def raw_http(c, payload, timeout=10, close_after_send=False):
    """Send raw bytes to the gateway; (status or None, raw answer)."""
    host, port = c.endpoint.split("//")[1].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    out = b""
    try:
        s.sendall(payload)
        if close_after_send:
            s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"content-length: *(\d+)", head, re.I)
                if m and len(body) >= int(m.group(1)):
                    break
    except socket.timeout:
        pass
    except OSError:
        pass
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    return (int(m.group(1)) if m else None), out


BOMB = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "victim"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
        b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>'
        b'<Delete><Object><Key>&f;</Key></Object></Delete>')
XXE = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<Delete><Object><Key>&x;</Key></Object></Delete>')
ENTITY_KEY = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY v "victim">]><Delete><Object><Key>&v;</Key></Object></Delete>'


@suite.case
def hostile_requests(c):
    check(OBJECTS, "no objects (setup failed)")
    cl = client(c)
    problems, literal = [], []

    def want_4xx(what, fn, codes=None, reset_ok=False):
        """reset_ok: the server may also refuse by closing the connection while
        the request is still being sent (h2o does so for oversized headers)."""
        try:
            st, h, body = fn()
        except (s3.NotSent, s3.Indeterminate) as e:
            cl.close()
            if not (reset_ok and "send:" in str(e)):
                problems.append("%s: no answer (%s)" % (what, e))
            return
        code = xml_error_code(body)
        if not 400 <= st < 500:
            problems.append("%s: expected a 4xx, got %d %s" % (what, st, code or short(body, 100)))
        elif codes and code not in codes:
            problems.append("%s: expected %s, got %d %s" % (what, "/".join(codes), st, code))

    def traversal(what, path, key):
        """A key with dot segments or slashes: S3 stores it as a literal name.
        A 4xx is fine too; a 2xx must mean exactly that, and nothing else
        may change."""
        st, h, body = cl.request("PUT", path, body=b"traversal attempt")
        if 400 <= st < 500:
            return
        if st != 200:
            problems.append("%s: %d %s" % (what, st, xml_error_code(body)))
            return
        st, h, body = cl.get(BUCKET, key)
        if st != 200 or body != b"traversal attempt":
            problems.append("%s: accepted, but GET of the literal key %r -> %d" % (what, key, st))
        literal.append(key)
        cl.delete(BUCKET, key)

    try:
        # Headers.
        want_4xx("a 1 MiB header", lambda: cl.request("GET", s3.quote_key(BUCKET, "victim"),
                                                      headers={"x-amz-meta-big": "a" * (1 << 20)}), reset_ok=True)
        want_4xx("a 1 MiB header on PUT victim", lambda: cl.put(BUCKET, "victim", b"overwrite",
                                                               headers={"x-big": "a" * (1 << 20)}), reset_ok=True)
        want_4xx("2000 headers", lambda: cl.request("GET", s3.quote_key(BUCKET, "victim"),
                                                    headers={"x-h%d" % i: "v" for i in range(2000)}), reset_ok=True)
        want_4xx("2000 headers on PUT victim", lambda: cl.put(BUCKET, "victim", b"overwrite",
                                                             headers={"x-amz-meta-h%d" % i: "v" for i in range(2000)}), reset_ok=True)
        want_4xx("3 KiB of x-amz-meta on PUT victim (S3 allows 2 KiB)",
                 lambda: cl.put(BUCKET, "victim", b"overwrite", headers={"x-amz-meta-m": "v" * 3000}))
        # XML bodies: DeleteObjects with broken, hostile and entity-bearing XML.
        for what, body in [("unterminated XML", b"<Delete><Object><Key>victim</Key></Object>"),
                           ("binary garbage", os.urandom(3000)), ("an entity-expansion bomb", BOMB),
                           ("an external entity (XXE)", XXE), ("a key spelled through an entity", ENTITY_KEY),
                           ("no <Delete> root", b"<Other><Object><Key>victim</Key></Object></Other>"),
                           ("10 MiB of XML", b"<Delete>" + b"<Object><Key>x</Key></Object>" * 380000 + b"</Delete>")]:
            want_4xx("DeleteObjects with %s" % what, lambda body=body: cl.request(
                "POST", "/" + BUCKET, "delete=", body=body,
                headers={"content-md5": __import__("base64").b64encode(hashlib.md5(body).digest()).decode()}))
        want_4xx("CompleteMultipartUpload of no upload, bad XML", lambda: cl.request(
            "POST", s3.quote_key(BUCKET, "victim"), "uploadId=..%2F..%2Fetc", body=b"<Complete"))
        # Keys.
        want_4xx("PUT a key with a NUL byte (victim%00evil)",
                 lambda: cl.request("PUT", "/%s/victim%%00evil" % BUCKET, body=b"nul"))
        want_4xx("GET a key with a NUL byte", lambda: cl.request("GET", "/%s/victim%%00" % BUCKET))
        want_4xx("PUT a 1025-byte key", lambda: cl.put(BUCKET, "k" * 1025, b"long"), ("KeyTooLongError",))
        want_4xx("PUT a 64 KiB key", lambda: cl.put(BUCKET, "k" * 65536, b"long"))
        want_4xx("PUT with bad percent-encoding", lambda: cl.request("PUT", "/%s/a%%zzb" % BUCKET, body=b"x"))
        want_4xx("PUT with a truncated percent-escape", lambda: cl.request("PUT", "/%s/victim%%2" % BUCKET, body=b"x"))
        want_4xx("PUT to a bucket named ..", lambda: cl.request("PUT", "/../victim", body=b"x"))
        want_4xx("PUT to bucket ../etc", lambda: cl.request("PUT", "/..%2Fetc/passwd", body=b"x"))
        want_4xx("GET with a Range past the end", lambda: cl.get(BUCKET, "victim", headers={"range": "bytes=99999-"}))
        st = cl.get(BUCKET, "victim", headers={"range": "bytes=18446744073709551615-1"})[0]
        if st >= 500:  # S3 ignores a Range it cannot satisfy this way (200); never a 5xx
            problems.append("GET with an absurd Range: %d" % st)
        traversal("PUT /bucket/../../etc/passwd (raw dot segments)", "/%s/../../etc/passwd" % BUCKET, "../../etc/passwd")
        traversal("PUT key ../../etc/shadow (encoded)", s3.quote_key(BUCKET, "../../etc/shadow"), "../../etc/shadow")
        traversal("PUT key ..%2F..%2F..%2Ftmp%2Fx", "/%s/..%%2F..%%2F..%%2Ftmp%%2Fx" % BUCKET, "../../../tmp/x")
        traversal("PUT key ./victim", "/%s/./victim" % BUCKET, "./victim")
        traversal("PUT key dir/../victim", "/%s/dir/../victim" % BUCKET, "dir/../victim")
    finally:
        cl.close()
    # Broken HTTP framing, unsigned and unauthenticated bytes.
    for what, payload, close in [
            ("a raw NUL in the request line", b"GET /%s/vic\x00tim HTTP/1.1\r\nHost: x\r\n\r\n" % BUCKET.encode(), False),
            ("random bytes", os.urandom(2000), False),
            ("a request line with no target", b"GET\r\n\r\n", False),
            ("a negative Content-Length", b"PUT /%s/victim HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"
             % BUCKET.encode(), False),
            ("two Content-Lengths", b"PUT /%s/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 9\r\n"
             b"\r\nevil" % BUCKET.encode(), False),
            ("an unsigned PUT over victim", b"PUT /%s/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nevil"
             % BUCKET.encode(), False),
            ("/../../etc/passwd unsigned", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", False),
            ("a body shorter than its Content-Length, then EOF",
             b"PUT /%s/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort" % BUCKET.encode(), True)]:
        st, out = raw_http(c, payload, timeout=10, close_after_send=close)
        if st is not None and not 400 <= st < 500:
            problems.append("raw request with %s: HTTP %d" % (what, st))
        if st is None and out:
            problems.append("raw request with %s: answer is not HTTP: %r" % (what, out[:80]))
    # A signed request whose body is cut short: the PUT must not happen.
    host, port = c.endpoint.split("//")[1].rsplit(":", 1)
    hdrs = s3.sign_headers("PUT", s3.quote_key(BUCKET, "victim"), "",
                           {"host": "%s:%s" % (host, port), "content-length": "100000"}, c.ak, c.sk, c.region)
    req = ("PUT %s HTTP/1.1\r\n" % s3.quote_key(BUCKET, "victim")).encode()
    req += b"".join(("%s: %s\r\n" % kv).encode() for kv in hdrs.items()) + b"\r\n" + b"z" * 5000
    raw_http(c, req, timeout=5, close_after_send=True)
    check(c.alive("gateway-1"), "the gateway died")
    if literal:
        print("# hostile: stored as literal keys (S3 semantics), no file path involved: %s" % literal)
    check(not problems, "\n  ".join(problems))
    objects_intact(c, "after hostile requests")
    eq(file_sha("/etc/passwd"), STATE["etc_passwd"], "/etc/passwd")


# ---------------------------------------------------------------- file names

FAN_RE = re.compile(r"^[0-9a-f]{2}$")
FRAG_RE = re.compile(r"^([0-9a-f]{32})\.(\d+)$")
TMP_RE = re.compile(r"^[0-9a-f]{32}\.\d+\.[0-9a-f]{16}$")


@suite.case
def no_key_in_file_paths(c):
    """Node data directories hold frags/<2 hex>/<32 hex>.<n> (fan-out = first
    byte of the oid) and tmp/; nothing anywhere under the cluster directory
    is named after a key."""
    data = os.path.join(c.dir, "data")
    bad = []
    for n in c.node_names():
        root = os.path.join(data, n)
        for dirpath, dirs, files in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            if rel == ".":
                extra = set(dirs + files) - {"frags", "tmp", "quarantine", "scrub.state"}
                bad += ["%s/%s" % (n, x) for x in sorted(extra)]
            elif rel == "frags":
                bad += ["%s/frags/%s" % (n, x) for x in dirs if not FAN_RE.match(x)]
                bad += ["%s/frags/%s (a file)" % (n, x) for x in files]
            elif rel.startswith("frags" + os.sep):
                fan = os.path.basename(dirpath)
                bad += ["%s/%s/%s (a directory)" % (n, rel, x) for x in dirs]
                for f in files:
                    m = FRAG_RE.match(f)
                    if not m or m.group(1)[:2] != fan:
                        bad.append("%s/%s/%s" % (n, rel, f))
            elif rel == "tmp":
                bad += ["%s/tmp/%s" % (n, x) for x in dirs + [f for f in files if not TMP_RE.match(f)]]
            elif rel == "quarantine":  # <32 hex>.<n>.<found ms>.<reason>
                bad += ["%s/quarantine/%s" % (n, x) for x in dirs + [f for f in files
                                                                    if not re.match(r"^[0-9a-f]{32}(\.\d+){3}$", f)]]
            else:
                bad.append("%s/%s (unexpected directory)" % (n, rel))
    # Anything named after a key, anywhere in the cluster directory.
    words = set()
    for key in list(OBJECTS) + ["passwd", "shadow", "victim", "evil", "private", "planted-by-b"]:
        for part in re.split(r"[/.]", key):
            if len(part) >= 4:
                words.add(part)
    for dirpath, dirs, files in os.walk(c.dir):
        if os.path.relpath(dirpath, c.dir).split(os.sep)[0] in ("logs", "pids"):
            continue
        for f in dirs + files:
            if any(w in f for w in words):
                bad.append("%s named after a key" % os.path.join(os.path.relpath(dirpath, c.dir), f))
    for p in (os.path.join(c.dir, "etc"), os.path.join(data, "etc"), os.path.join(c.root, "etc")):
        if os.path.exists(p):
            bad.append("%s exists" % p)
    check(not bad, "unexpected names under the data directories:\n  " + "\n  ".join(bad[:40]))


# ---------------------------------------------------------------- gateway limits

def delete_objects(cl, keys):
    body = "<Delete>%s</Delete>" % "".join(
        "<Object><Key>%s</Key></Object>" % k.replace("&", "&amp;").replace("<", "&lt;") for k in keys)
    body = body.encode()
    return cl.request("POST", "/" + BUCKET, "delete=", body=body, headers={
        "content-md5": __import__("base64").b64encode(hashlib.md5(body).digest()).decode()})


@suite.case
def limits_keys_xml_headers(c):
    """Key length, DeleteObjects size, XML body size and header section
    size are refused with their S3 errors; nothing stored changes."""
    check(OBJECTS, "no objects (setup failed)")
    cl = client(c)
    problems = []
    try:
        # Keys: 1024 bytes is the largest S3 allows.
        eq(cl.put(BUCKET, "k" * 1024, b"longest key")[0], 200, "PUT a 1024-byte key")
        st, h, body = cl.get(BUCKET, "k" * 1024)
        eq((st, body), (200, b"longest key"), "GET of the 1024-byte key")
        eq(cl.delete(BUCKET, "k" * 1024)[0], 204, "DELETE of the 1024-byte key")
        st, h, body = cl.put(BUCKET, "k" * 1025, b"x")
        eq((st, xml_error_code(body)), (400, "KeyTooLongError"), "PUT a 1025-byte key")
        # DeleteObjects: 1000 keys at most; a 1025-byte key is an error of its own.
        st, h, body = delete_objects(cl, ["absent-%d" % i for i in range(1001)] + ["victim"])
        eq((st, xml_error_code(body)), (400, "MalformedXML"), "DeleteObjects of 1002 keys")
        st, h, body = delete_objects(cl, ["absent-%d" % i for i in range(999)] + ["L" * 1025])
        eq(st, 200, "DeleteObjects of 1000 keys, one of 1025 bytes")
        check(body.count(b"<Deleted>") == 999 and b"<Code>KeyTooLongError</Code>" in body,
              "DeleteObjects with a 1025-byte key: %s" % short(body[-300:]))
        # XML bodies above 4 MiB are refused whole.
        st, h, body = delete_objects(cl, ["x" * 1000] * 4300)
        eq((st, xml_error_code(body)), (400, "MalformedXML"), "DeleteObjects of 4300 keys (4.4 MB of XML)")
        # Header section: [gateway] max_header_size (16 KiB) with an S3 error,
        # far below h2o's own head limit (about 408 KiB, then a bare close).
        for size in (20000, 300000):
            st, h, body = cl.request("GET", s3.quote_key(BUCKET, "victim"), headers={"x-pad": "a" * size})
            if (st, xml_error_code(body)) != (400, "RequestHeaderSectionTooLarge"):
                problems.append("a %d-byte header: %d %s" % (size, st, xml_error_code(body)))
        st, h, body = cl.get(BUCKET, "victim", headers={"x-pad": "a" * 8000})
        eq((st, body == OBJECTS["victim"]), (200, True), "GET with an 8 KB header (allowed)")
        # Header count: h2o parses at most 100 and closes the connection past that.
        st, h, body = cl.get(BUCKET, "victim", headers={"x-h%d" % i: "v" for i in range(80)})
        eq((st, body == OBJECTS["victim"]), (200, True), "GET with 80 extra headers")
        try:
            st = cl.get(BUCKET, "victim", headers={"x-h%d" % i: "v" for i in range(150)})[0]
            if st != 400:
                problems.append("150 headers: %d" % st)
        except (s3.NotSent, s3.Indeterminate):
            cl.close()  # closed by h2o: refused
    finally:
        cl.close()
    check(not problems, "\n  ".join(problems))
    objects_intact(c, "after the limit checks")


def signed_raw(c, method, path, extra=None):
    host, port = c.endpoint.split("//")[1].rsplit(":", 1)
    h = {"host": "%s:%s" % (host, port)}
    h.update(extra or {})
    h = s3.sign_headers(method, path, "", h, c.ak, c.sk, c.region)
    return ("%s %s HTTP/1.1\r\n" % (method, path)).encode() + \
        b"".join(("%s: %s\r\n" % kv).encode() for kv in h.items()) + b"\r\n"


def gw_socket(c, rcvbuf=None, timeout=10):
    host, port = c.endpoint.split("//")[1].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, int(port)))
    return s


def read_status(s):
    """The status of the HTTP answer on s, or None if the connection ends first."""
    out = b""
    try:
        while b"\r\n" not in out:
            b = s.recv(4096)
            if not b:
                break
            out += b
    except OSError:
        pass
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    return int(m.group(1)) if m else None


def get_victim_ok(c, what):
    cl = client(c)
    try:
        st, h, body = cl.get(BUCKET, "victim")
    finally:
        cl.close()
    eq((st, body == OBJECTS["victim"]), (200, True), what)


def trickle(c, out, interval=1.0):
    """Send a request head one byte a second; record when the server ended
    the connection (seconds after connect) and how many bytes got through."""
    head = signed_raw(c, "GET", s3.quote_key(BUCKET, "victim"))
    s = gw_socket(c)
    t0 = time.time()
    sent = 0
    try:
        for i in range(len(head) - 2):  # never the final CRLF: the head never ends
            try:
                s.send(head[i:i + 1])
                sent += 1
            except OSError:
                break
            r, _, _ = __import__("select").select([s], [], [], interval)
            if r:
                try:
                    if not s.recv(4096):
                        break
                except OSError:
                    break
            if time.time() - t0 > 60:
                break
    finally:
        out["closed_after"] = time.time() - t0
        out["sent"] = sent
        s.close()


@suite.case
def limits_slow_clients_connections_requests(c):
    """[gateway] request_timeout_ms cuts off a client trickling its headers
    while others are served; max_connections and max_requests answer 503
    SlowDown past the limit, and service resumes once below it."""
    check(OBJECTS, "no objects (setup failed)")
    import harness
    import threading
    big = os.urandom(24 << 20)  # a GET of it cannot finish into a small receive buffer
    cl = client(c)
    try:
        eq(cl.put(BUCKET, "limits-big", big)[0], 200, "PUT a 24 MiB object")
    finally:
        cl.close()
    timeout_ms, max_conns, max_reqs = 4000, 8, 4
    harness.set_config(c, {"gateway": {"request_timeout_ms": timeout_ms, "max_connections": max_conns,
                                       "max_requests": max_reqs}})
    try:
        # Slowloris: one byte a second, never ending the head.
        res = {}
        t = threading.Thread(target=trickle, args=(c, res))
        t.start()
        time.sleep(1.5)
        get_victim_ok(c, "GET while a client trickles its headers")
        t.join(90)
        check(not t.is_alive(), "the trickling client was never cut off")
        print("# slowloris: cut off after %.1f s (%d header bytes sent), request_timeout_ms %d" %
              (res["closed_after"], res["sent"], timeout_ms))
        check(timeout_ms / 1000.0 - 0.5 <= res["closed_after"] <= timeout_ms / 1000.0 + 3,
              "trickling client cut off after %.1f s, request timeout %d ms" % (res["closed_after"], timeout_ms))

        # Connections: max_conns idle ones, then one more.
        idle = [gw_socket(c) for _ in range(max_conns)]
        time.sleep(0.5)
        s = gw_socket(c)
        s.sendall(signed_raw(c, "GET", s3.quote_key(BUCKET, "victim")))
        st = read_status(s)
        s.close()
        for x in idle:
            x.close()
        eq(st, 503, "connection %d of max_connections %d" % (max_conns + 1, max_conns))
        deadline = time.time() + 10
        while True:  # the server notices the closes
            try:
                get_victim_ok(c, "GET after the idle connections closed")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

        # Requests in flight: max_reqs GETs of the big object that are not read.
        stuck = []
        for _ in range(max_reqs):
            x = gw_socket(c, rcvbuf=4096)
            x.sendall(signed_raw(c, "GET", s3.quote_key(BUCKET, "limits-big")))
            stuck.append(x)
        time.sleep(1.5)
        cl = client(c)
        try:
            st, h, body = cl.get(BUCKET, "victim")
        finally:
            cl.close()
        eq((st, xml_error_code(body)), (503, "SlowDown"), "request %d of max_requests %d" % (max_reqs + 1, max_reqs))
        for x in stuck:
            x.close()
        deadline = time.time() + 15
        while True:
            try:
                get_victim_ok(c, "GET after the stuck requests ended")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
    finally:
        harness.set_config(c, {"gateway": {"request_timeout_ms": 600000, "max_connections": 4096,
                                           "max_requests": 1024}})
    cl = client(c)
    try:
        cl.delete(BUCKET, "limits-big")
    finally:
        cl.close()
    objects_intact(c, "after the limits")


@suite.case
def everything_still_intact(c):
    for n in c.proc_names():
        check(c.alive(n), "%s is not running" % n)
    objects_intact(c, "at the end")


suite.main()
