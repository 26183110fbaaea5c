"""
wire.py — the internal framed protocol (common/include/cairn/wire.h) from
Python, for the negative-security tests and the fault suite's inspection of
the metadata tier; plus a reader of fragment files (frag.h).

Frame: 40-byte header | body | 32-byte trailer. The trailer is
HMAC-SHA256(frame key, session || link || header || XXH3-128(body, secret)),
where the frame key is HMAC-SHA256(cluster secret, "cairn wire key v1"), the
XXH3 secret is 192 bytes: HMAC(frame key, "xxh3 secret i") for i = 0..5
(wire.c), session is the 16-byte id from the server's hello (the first frame
on every connection; zeros for the hello itself) and link is 40 zero bytes
for a request, the request's header for its response. Requests carry seq
1, 2, ... on their connection; the header also carries the sender's clock.

XXH3 is not in Python's standard library. It is taken from the system's
libxxhash (a build dependency of cairn) through ctypes. Without it,
Frames still builds frames with a wrong trailer (enough for "refused"
tests) and has_xxhash is False: callers that need a valid MAC skip.

Caveats
- A test helper, not a client library: one blocking socket per call, no
  pipelining, no streaming of large bodies.
- MetaClient follows NOTLEADER redirects but does not wrap calls in
  META_ONCE, so it must only be used for reads (and idempotent admin calls).
"""

import ctypes
import ctypes.util
import hashlib
import hmac
import os
import socket
import struct
import time

MAGIC = 0x324E5243          # "CRN2"
HDR = 40
MAC = 32
SESSION = 16
HELLO = HDR + SESSION + MAC
SKEW_MS = 60000
FLAG_RESPONSE = 1
FLAG_CLOSE = 2
HDR_FMT = "<IHHiIQQq"       # magic op flags status seq req_id body_len time_ms

OP_HELLO = 0
OP_PING = 1
OP_FRAG_PUT = 10
OP_FRAG_GET = 11
OP_FRAG_DELETE = 12
OP_FRAG_STAT = 13
OP_FRAG_LIST = 14
OP_NODE_INFO = 15
OP_META_USER_GET = 100
OP_META_USER_PUT = 101
OP_META_BUCKET_CREATE = 110
OP_META_BUCKET_HEAD = 112
OP_META_BUCKET_LIST = 113
OP_META_OBJ_PUT = 120
OP_META_OBJ_GET = 121
OP_META_OBJ_DELETE = 122
OP_META_OBJ_LIST = 123
OP_META_STATUS = 180
OP_META_ONCE = 190

EBASE = 10000
ERRORS = {-(EBASE + i): n for i, n in enumerate(
    ["?", "EPROTO", "EAUTH", "ECORRUPT", "ETOOBIG", "ENOTFOUND", "EEXIST", "ENOTEMPTY", "ETIMEOUT",
     "EUNAVAIL", "EINVAL", "ENOTLEADER", "ECONFLICT", "ENOSUCHUSER", "EBUCKET", "EOWNED"])}
EAUTH = -(EBASE + 2)
ENOTFOUND = -(EBASE + 5)
ENOTLEADER = -(EBASE + 11)

FRAG_HDR = 64
FRAG_SUM = 8
FRAG_MAGIC = 0x464E5243     # "CRNF"


def errname(status):
    if status == 0:
        return "ok"
    return ERRORS.get(status, str(status))


# ---------------------------------------------------------------- XXH3

class _XXH128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


_xxh = None
for _name in ("libxxhash.so.0", ctypes.util.find_library("xxhash")):
    if not _name:
        continue
    try:
        _xxh = ctypes.CDLL(_name)
        _xxh.XXH3_64bits.restype = ctypes.c_uint64
        _xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        _xxh.XXH3_128bits_withSecret.restype = _XXH128
        _xxh.XXH3_128bits_withSecret.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                                 ctypes.c_size_t]
        break
    except (OSError, AttributeError):
        _xxh = None

has_xxhash = _xxh is not None


def xxh3_64(data):
    return _xxh.XXH3_64bits(bytes(data), len(data))


def xxh3_128_secret(data, secret):
    """The canonical (big-endian, high half first) 16 bytes of XXH3-128 with a secret."""
    h = _xxh.XXH3_128bits_withSecret(bytes(data), len(data), secret, len(secret))
    return struct.pack(">QQ", h.high64, h.low64)


# ---------------------------------------------------------------- frames

class Frames:
    """Frame encoder/decoder for one cluster secret (the [cluster] secret
    string exactly as in cluster.conf; any other string is a wrong key)."""

    def __init__(self, secret):
        if isinstance(secret, str):
            secret = secret.encode()
        self.key = hmac.new(secret, b"cairn wire key v1", hashlib.sha256).digest()
        self.xxh_secret = b"".join(hmac.new(self.key, b"xxh3 secret %d" % i, hashlib.sha256).digest()
                                   for i in range(6))

    def mac(self, header, body, session=None, link=None):
        if not has_xxhash:
            return os.urandom(MAC)  # cannot compute: certainly wrong
        d = xxh3_128_secret(body, self.xxh_secret)
        pre = (session or bytes(SESSION)) + (link or bytes(HDR))
        return hmac.new(self.key, pre + header + d, hashlib.sha256).digest()

    @staticmethod
    def header(op, body_len, req_id=0x5EC0, flags=0, status=0, seq=1, time_ms=None):
        if time_ms is None:
            time_ms = now_ms()
        return struct.pack(HDR_FMT, MAGIC, op, flags, status, seq, req_id, body_len, time_ms)

    def frame(self, op, body=b"", req_id=0x5EC0, session=None, seq=1, time_ms=None):
        """A request frame; session None (all zeros) is never a live session."""
        h = self.header(op, len(body), req_id, seq=seq, time_ms=time_ms)
        return h + body + self.mac(h, body, session)

    def check(self, header, body, trailer, session=None, link=None):
        return has_xxhash and hmac.compare_digest(self.mac(header, body, session, link), trailer)

    def hello_session(self, hello):
        """The session id of a server's hello (HELLO bytes), or None when it
        is not a hello, not MACed with this key or stale."""
        if len(hello) != HELLO:
            return None
        h = parse_header(hello[:HDR])
        body, t = hello[HDR:HDR + SESSION], hello[HDR + SESSION:]
        if h["magic"] != MAGIC or h["op"] != OP_HELLO or h["flags"] != FLAG_RESPONSE or h["body_len"] != SESSION:
            return None
        if abs(h["time_ms"] - now_ms()) > SKEW_MS or not self.check(hello[:HDR], body, t):
            return None
        return body


def now_ms():
    return int(time.time() * 1000)


def parse_header(h):
    magic, op, flags, status, seq, req_id, blen, t = struct.unpack(HDR_FMT, h)
    return dict(magic=magic, op=op, flags=flags, status=status, seq=seq, req_id=req_id, body_len=blen, time_ms=t)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            break
        out += b
    return out


def exchange(addr, payload, timeout=5.0, half_close=False):
    """Send payload to host:port and read what comes back until EOF or timeout.
    Returns dict(frames=[(hdr dict, body, trailer)], hello=bytes|None,
    raw=bytes, closed=bool, error=None|str). The server's hello, when it
    starts the answer, is in 'hello' and not in 'frames' or 'raw'. 'closed'
    is True when the server ended the connection (EOF or reset) within the
    timeout."""
    host, port = addr.rsplit(":", 1)
    out = dict(frames=[], raw=b"", closed=False, error=None)
    raw = b""
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        if payload:
            s.sendall(payload)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                out["closed"] = True
                break
            raw += b
    except socket.timeout:
        out["error"] = "timeout"
    except ConnectionResetError:
        out["closed"] = True
    except OSError as e:
        out["closed"] = True
        out["error"] = str(e)
    finally:
        s.close()
    out["hello"] = None
    if len(raw) >= HELLO and parse_header(raw[:HDR])["magic"] == MAGIC and parse_header(raw[:HDR])["op"] == OP_HELLO:
        out["hello"], raw = raw[:HELLO], raw[HELLO:]
    out["raw"] = raw
    p = 0
    data = out["raw"]
    while len(data) - p >= HDR:
        h = parse_header(data[p:p + HDR])
        if h["magic"] != MAGIC:
            break
        body = data[p + HDR:p + HDR + h["body_len"]]
        trailer = data[p + HDR + h["body_len"]:p + HDR + h["body_len"] + MAC]
        out["frames"].append((h, body, trailer))
        p += HDR + h["body_len"] + MAC
    return out


class Conn:
    """One connection to a node or metadata replica, speaking the session
    protocol: reads the hello on connect, numbers requests, checks answers."""

    def __init__(self, frames, addr, timeout=5.0):
        host, port = addr.rsplit(":", 1)
        self.frames, self.seq = frames, 0
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        hello = recv_exact(self.s, HELLO)
        self.session = frames.hello_session(hello) if has_xxhash else hello[HDR:HDR + SESSION]
        if self.session is None:
            self.s.close()
            raise ValueError("bad hello %r" % hello[:HDR])

    def request(self, op, body=b"", req_id=0x5EC0):
        """The bytes of the next request frame (not sent)."""
        self.seq += 1
        return self.frames.frame(op, body, req_id, self.session, self.seq)

    def send(self, payload):
        self.s.sendall(payload)

    def response(self, request):
        """Read the answer to the request frame `request`: (status, body,
        flags). Raises OSError when the connection ends first, ValueError
        on a malformed or unauthenticated answer."""
        h = recv_exact(self.s, HDR)
        if len(h) != HDR:
            raise OSError("connection closed (%d header bytes)" % len(h))
        hd = parse_header(h)
        if hd["magic"] != MAGIC or not hd["flags"] & FLAG_RESPONSE:
            raise ValueError("bad response header %r" % hd)
        b = recv_exact(self.s, hd["body_len"])
        t = recv_exact(self.s, MAC)
        if len(b) != hd["body_len"] or len(t) != MAC:
            raise ValueError("short response")
        rq = parse_header(request[:HDR])
        if hd["seq"] != rq["seq"] or hd["req_id"] != rq["req_id"]:
            raise ValueError("answer to another request: %r" % hd)
        if has_xxhash and not self.frames.check(h, b, t, self.session, request[:HDR]):
            raise ValueError("response MAC mismatch")
        return hd["status"], b, hd["flags"]

    def closed(self, wait=5.0):
        """True when the server ends the connection within wait seconds."""
        self.s.settimeout(wait)
        try:
            while self.s.recv(65536):
                pass
            return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        self.s.close()


def call(frames, addr, op, body=b"", timeout=5.0):
    """One authenticated request on a fresh connection: (status, body).
    Raises OSError on transport failure, ValueError on a malformed or
    unauthenticated response."""
    c = Conn(frames, addr, timeout)
    try:
        req = c.request(op, body)
        c.send(req)
        st, b, _ = c.response(req)
        return st, b
    finally:
        c.close()


# ---------------------------------------------------------------- encodings (buf.h)

def put_str(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return struct.pack("<I", len(s)) + s


class Dec:
    def __init__(self, b):
        self.b, self.p = b, 0

    def raw(self, n):
        if self.p + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def u8(self):
        return self.raw(1)[0]

    def u32(self):
        return struct.unpack("<I", self.raw(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.raw(8))[0]

    def bytes(self):
        return self.raw(self.u32())

    def left(self):
        return len(self.b) - self.p


def decode_obj_rec(b):
    """An object record (meta.c cairn_obj_rec_encode), as a dict."""
    d = Dec(b)
    version = d.u8()
    r = dict(version=version, oid=d.raw(16).hex(), size=d.u64(), mtime_ms=d.u64())
    r["etag"] = d.raw(d.u8()).decode("latin-1")
    r["k"], r["m"] = d.u8(), d.u8()
    r["block_size"] = d.u32()
    r["nodes"] = [d.u32() for _ in range(r["k"] + r["m"])]
    r["content_type"] = d.bytes()
    r["user_meta"] = d.bytes()
    r["nparts"] = 0
    if version == 2:
        r["sys_meta"] = d.bytes()
        r["nparts"] = d.u32()
        r["parts"] = d.bytes()
    return r


class MetaClient:
    """Reads from the metadata tier with the cluster key: tries each replica
    and follows NOTLEADER redirects."""

    def __init__(self, frames, addrs, timeout=5.0):
        self.frames, self.addrs, self.timeout = frames, list(addrs), timeout

    def call(self, op, body=b""):
        tried, queue, last = set(), list(self.addrs), None
        while queue:
            a = queue.pop(0)
            if a in tried:
                continue
            tried.add(a)
            try:
                st, b = call(self.frames, a, op, body, self.timeout)
            except (OSError, ValueError) as e:
                last = e
                continue
            if st == ENOTLEADER:
                if b:
                    queue.insert(0, b.decode())
                continue
            return st, b
        raise OSError("no metadata replica answered: %s" % last)

    def obj_get(self, bucket, key):
        """The record of bucket/key as a dict, or None when absent."""
        st, b = self.call(OP_META_OBJ_GET, put_str(bucket) + put_str(key))
        if st == ENOTFOUND:
            return None
        if st != 0:
            raise OSError("OBJ_GET %s/%s: %s" % (bucket, key, errname(st)))
        d = Dec(b)
        return decode_obj_rec(d.bytes())


# ---------------------------------------------------------------- fragment files

def frag_check(path, want_oid=None, want_index=None):
    """Verify one fragment file: header (magic, checksum, oid, index) and
    every block's XXH3-64. Returns None when intact, else a short reason."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return "unreadable: %s" % e
    if len(data) < FRAG_HDR:
        return "short header"
    h = data[:FRAG_HDR]
    magic, version, hsize = struct.unpack_from("<IHH", h, 0)
    if magic != FRAG_MAGIC:
        return "bad magic"
    if version != 1 or hsize != FRAG_HDR:
        return "version %d, header size %d" % (version, hsize)
    if has_xxhash and struct.unpack_from("<Q", h, 56)[0] != xxh3_64(h[:56]):
        return "header checksum"
    oid, index, k = h[8:24].hex(), h[24], h[25]
    bsize, osize = struct.unpack_from("<IQ", h, 28)
    if want_oid is not None and oid != want_oid:
        return "oid %s" % oid
    if want_index is not None and index != want_index:
        return "index %d" % index
    sb = k * bsize
    nstripes = (osize + sb - 1) // sb if sb else 0
    off = FRAG_HDR
    for s in range(nstripes):
        rem = osize - s * sb
        blen = bsize if rem >= sb else (rem + k - 1) // k
        if off + blen + FRAG_SUM > len(data):
            return "truncated at stripe %d" % s
        if has_xxhash and struct.unpack_from("<Q", data, off + blen)[0] != xxh3_64(data[off:off + blen]):
            return "block %d checksum" % s
        off += blen + FRAG_SUM
    if off != len(data):
        return "size %d, expected %d" % (len(data), off)
    return None


def frag_path(cluster_dir, node_id, oid, index):
    return os.path.join(cluster_dir, "data", "node-%d" % node_id, "frags", oid[:2], "%s.%d" % (oid, index))
