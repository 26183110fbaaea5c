#!/usr/bin/python3
"""seeds.py — write the hand-made seed inputs of the fuzz targets.

    python3 tests/fuzz/seeds.py [TARGET ...]

Each seed goes to tests/fuzz/corpus/<target>/seed-<name>, next to the
inputs the fuzzer found (their names are content hashes). Seeds are valid
examples of what each parser reads, so the fuzzer starts from deep inside
the format: a SigV4-signed request (the AWS documentation's example key and
date, which fuzz_sigv4 and fuzz_s3route use), frames of every kind, a
fragment answer, encoded metadata records, S3 XML bodies. Running it again
rewrites the same files.
"""

import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "faults"))
import s3  # noqa: E402  (tests/faults/s3.py: SigV4 signing)
import wire  # noqa: E402  (tests/faults/wire.py: xxh3 from libxxhash)

AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHEN = "20130524T000000Z"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def u8(v):
    return struct.pack("<B", v)


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v & (2 ** 64 - 1))


def bstr(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


# ---------------------------------------------------------------- HTTP / SigV4

def http_request(method, target, headers, body=b""):
    lines = ["%s %s HTTP/1.1" % (method, target)] + ["%s: %s" % kv for kv in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def signed(method, path, query="", extra=None, host="examplebucket.s3.amazonaws.com", payload=EMPTY_SHA):
    h = {"host": host}
    h.update(extra or {})
    h = s3.sign_headers(method, path, query, h, AK, SK, "us-east-1", payload=payload, when=WHEN)
    return http_request(method, path + ("?" + query if query else ""), h)


def sigv4_seeds():
    return {
        "get-range": signed("GET", "/test.txt", extra={"range": "bytes=0-9"}),
        "put-unsigned": signed("PUT", "/test%24file.text", payload="UNSIGNED-PAYLOAD",
                               extra={"x-amz-storage-class": "REDUCED_REDUNDANCY", "date": "Fri, 24 May 2013"}),
        "list": signed("GET", "/", "list-type=2&max-keys=2&prefix=J"),
        "lifecycle": signed("GET", "/", "lifecycle="),
        "presigned": http_request("GET", s3.presign("GET", "examplebucket.s3.amazonaws.com", "/test.txt", AK, SK,
                                                    "us-east-1", 86400, when=WHEN),
                                  {"host": "examplebucket.s3.amazonaws.com"}),
        "chunked": signed("PUT", "/examplebucket/chunkObject.txt",
                          payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                          extra={"content-encoding": "aws-chunked", "x-amz-decoded-content-length": "66560"}),
    }


def s3route_seeds():
    host = {"host": "localhost:8000"}
    seeds = dict(sigv4_seeds())
    for name, (m, t) in {
        "mpu-create": ("POST", "/b/k?uploads"), "mpu-part": ("PUT", "/b/k?partNumber=2&uploadId=00ff"),
        "mpu-complete": ("POST", "/b/k?uploadId=00ff"), "mpu-abort": ("DELETE", "/b/k?uploadId=00ff"),
        "mpu-list-parts": ("GET", "/b/k?uploadId=00ff&max-parts=5"), "mpu-list": ("GET", "/b?uploads&prefix=a"),
        "delete-objects": ("POST", "/b?delete"), "versioning": ("GET", "/b?versioning"),
        "versions": ("GET", "/b?versions"), "acl": ("PUT", "/b/k%2Fx?acl"), "tagging": ("GET", "/b/k?tagging"),
        "location": ("GET", "/b?location"), "list-v1": ("GET", "/b?prefix=a%2F&delimiter=%2F&marker=x"),
        "head-bucket": ("HEAD", "/b"), "root": ("GET", "/"), "deep-key": ("GET", "/b/a/b/../c%2Fd%41?x-id=GetObject"),
    }.items():
        seeds[name] = http_request(m, t, host)
    seeds["copy"] = http_request("PUT", "/b/dst", {"host": "localhost", "x-amz-copy-source": "/b/src%20key"})
    seeds["part-copy"] = http_request("PUT", "/b/k?partNumber=1&uploadId=ab",
                                      {"host": "localhost", "x-amz-copy-source": "b/src",
                                       "x-amz-copy-source-range": "bytes=0-5"})
    seeds["vhost"] = http_request("GET", "/photos/2024/a.jpg?list-type=2", {"Host": "mybucket.s3.test:9000"})
    seeds["vhost-root"] = http_request("DELETE", "/", {"Host": "mybucket.localhost."})
    return seeds


# ---------------------------------------------------------------- wire

def hdr(op, blen, flags=0, status=0, seq=1, req_id=0x1234, t=0):
    return struct.pack(wire.HDR_FMT, wire.MAGIC, op, flags, status, seq, req_id, blen, t)


def frame(op, body=b"", **kw):
    return hdr(op, len(body), **kw) + body + bytes(32)


def wire_seeds():
    decode_body = bytes(range(16)) + u8(3) + u64(99) + u32(7) + bstr(b"decoded")
    seeds = {
        "echo": u8(5) + frame(1, b"hello"),
        "echo-two": u8(5) + frame(1, b"first") + frame(1, b"second", seq=2),
        "decode": u8(5) + frame(2, decode_body),
        "decode-short": u8(5) + frame(2, decode_body[:20]),
        "stream": u8(5) + frame(3, bytes(range(200)) * 2),
        "stream-refused": u8(5) + frame(3, b"\xee" + bytes(150)),
        "lazy": u8(5) + frame(4, b"abc") + frame(1, b"x"),
        "unknown-op": u8(5) + frame(999, b"zz"),
        "stale": u8(1) + frame(1, b"old", t=1),
        "wrong-seq": u8(5 & ~4 | 1) + frame(1, b"again", seq=9),
        "unsealed": u8(0) + frame(1, b"no mac"),
        "response-flag": u8(5) + frame(1, b"r", flags=1),
        "too-big": u8(5) + hdr(1, 1 << 40) + bytes(8),
        "answer": u8(7) + frame(1, b"answer body", flags=1, status=-10005),
        "answer-close": u8(7) + frame(1, b"", flags=3, status=-10002),
        "hello": u8(5) + hdr(0, 16, flags=1, seq=0, req_id=0) + b"fuzz session 16b" + bytes(32),
        "hello-then-frame": u8(5) + hdr(0, 16, flags=1, seq=0, req_id=0) + bytes(16) + bytes(32) + frame(1, b"x"),
    }
    return seeds


# ---------------------------------------------------------------- fragments

def frag_header(oid, index, k, m, bsize, osize, good=True):
    h = bytearray(64)
    struct.pack_into("<IHH", h, 0, wire.FRAG_MAGIC, 1, 64)
    h[8:24] = oid
    h[24], h[25], h[26] = index, k, m
    struct.pack_into("<IQ", h, 28, bsize, osize)
    if good and wire.has_xxhash:
        struct.pack_into("<Q", h, 56, wire.xxh3_64(bytes(h[:56])))
    return bytes(h)


def frag_answer(k, m, bsize, osize, first, n, index=0):
    """A FRAG_GET answer: header, then n blocks from stripe `first`."""
    h = frag_header(bytes(range(16)), index, k, m, bsize, osize)
    out, ss = h, k * bsize
    nst = (osize + ss - 1) // ss
    for s in range(first, first + n):
        if s >= nst:
            L = 0
        elif s + 1 < nst:
            L = bsize
        else:
            L = (osize - s * ss + k - 1) // k
        blk = bytes((s * 7 + i) & 0xFF for i in range(L))
        out += blk + (u64(wire.xxh3_64(blk)) if wire.has_xxhash else bytes(8))
    return out


def frag_seeds():
    def seed(mode, first, n, body):
        return u8(mode) + u32(first) + u8(n) + body
    return {
        "one-stripe": seed(3, 0, 1, frag_answer(4, 2, 64, 100, 0, 1)),
        "three-stripes": seed(3, 0, 3, frag_answer(2, 1, 128, 600, 0, 3)),
        "last-stripe": seed(3, 2, 1, frag_answer(2, 1, 128, 600, 2, 1, index=2)),
        "empty-object": seed(3, 0, 0, frag_answer(4, 2, 256, 0, 0, 0)),
        "past-end": seed(3, 5, 2, frag_answer(1, 0, 64, 64, 5, 2)),
        "bad-sum": seed(1, 0, 1, frag_answer(4, 2, 64, 100, 0, 1)[:-1] + b"\x00"),
        "huge-object": seed(1, 0, 0, frag_header(bytes(16), 5, 10, 4, 16 << 20, 1 << 50)),
        "bad-fields": seed(1, 0, 0, frag_header(bytes(16), 7, 4, 2, 100, 10)),
        "unsealed": seed(0, 0, 1, frag_answer(4, 2, 64, 100, 0, 1)),
    }


# ---------------------------------------------------------------- metadata

def pairs(*kv):
    out = b""
    for k, v in kv:
        out += u16(len(k)) + k + u16(len(v)) + v
    return out


def part(number, k=4, m=2):
    return u32(number) + bytes([number] * 16) + u64(5 << 20) + u8(k) + u8(m) + u32(1 << 20) + \
        b"".join(u32(i + 1) for i in range(k + m))


def obj_rec(version, k=4, m=2, sys_meta=b"", parts=(), inline=None, size=1234):
    r = u8(version) + bytes(range(16)) + u64(size if inline is None else len(inline)) + u64(1700000000000)
    etag = b"d41d8cd98f00b204e9800998ecf8427e" + (b"-%d" % len(parts) if parts else b"")
    r += u8(len(etag)) + etag + u8(k) + u8(m) + u32(1 << 20) + b"".join(u32(i + 1) for i in range(k + m))
    r += bstr(b"text/plain") + bstr(pairs((b"color", b"blue"), (b"a", b"")))
    if version >= 2:
        r += bstr(sys_meta) + u32(len(parts)) + bstr(b"".join(parts))
    if version == 3:
        r += bstr(inline)
    return r


def status_enc(nmembers=3):
    s = u64(1) + u8(3) + u64(5) + u64(100) + u64(100) + u64(101) + u64(99) + u64(50) + u64(1)
    s += bstr("127.0.0.1:7001") + u32(nmembers)
    for i in range(nmembers):
        s += u64(i + 1) + u8(1) + bstr("127.0.0.1:%d" % (7101 + i)) + bstr("127.0.0.1:%d" % (7001 + i))
    return s


def meta_seeds():
    list_resp = u32(2) + bstr("a/1") + u64(10) + u64(1) + bstr(b"etag1\0") + bstr("a/2") + u64(0) + u64(2) + \
        bstr(b"\0") + u32(1) + bstr("a/b/") + u8(1) + bstr("a/b/")
    return {
        "obj-v1": u8(0) + obj_rec(1),
        "obj-v2-sys": u8(0) + obj_rec(2, sys_meta=pairs((b"content-encoding", b"gzip"))),
        "obj-v2-parts": u8(0) + obj_rec(2, k=0, m=0, parts=(part(1), part(2, 2, 1), part(7))),
        "obj-v3-inline": u8(0) + obj_rec(3, k=0, m=0, inline=b"small object bytes"),
        "buckets": u8(1) + bstr("photos") + bstr("alice") + u64(1700000000000) + bstr("x") + bstr("") + u64(0),
        "list-req": u8(2) + bstr("photos") + bstr("2024/") + bstr("/") + bstr("2024/a") + u32(1000),
        "list-resp": u8(3) + list_resp,
        "status": u8(4) + status_enc(),
        "mpu-rec": u8(5) + u8(1) + bstr("big/object") + bstr("alice") + u64(1700000000000) + bstr("video/mp4") +
        bstr(pairs((b"k", b"v"))) + bstr(b""),
        "mpu-id": u8(6) + b"00112233445566778899aabbccddeeff",
        "mpu-id-upper": u8(6) + b"00112233445566778899AABBCCDDEEFF",
        "mpu-list-req": u8(7) + bstr("photos") + bstr("a") + bstr("/") + bstr("a/x") + u8(1) + bytes(16) + u32(50),
        "parts-pairs": u8(8) + part(3) + part(4, 1, 0),
    }


# ---------------------------------------------------------------- S3 XML

def s3xml_seeds():
    ns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    return {
        "delete": u8(0) + ('<?xml version="1.0" encoding="UTF-8"?><Delete%s><Quiet>true</Quiet>'
                           '<Object><Key>a.txt</Key></Object><Object><Key>dir/b &amp; c</Key>'
                           '<VersionId>null</VersionId></Object><Object><Key>x</Key><VersionId>3/L4kqtJl</VersionId>'
                           '</Object></Delete>' % ns).encode(),
        "delete-prefixed": u8(0) + b'<s3:Delete xmlns:s3="urn:x"><s3:Object><s3:Key>&#x1F600;\xc3\xa9</s3:Key>'
                                   b'</s3:Object></s3:Delete>',
        "delete-cdata": u8(0) + b"<Delete><Object><Key><![CDATA[<k>]]></Key></Object><!-- c --></Delete>",
        "delete-nokey": u8(0) + b"<Delete><Object><VersionId>1</VersionId></Object></Delete>",
        "delete-doctype": u8(0) + b'<!DOCTYPE d [<!ENTITY a "v">]><Delete><Object><Key>&a;</Key></Object></Delete>',
        "complete": u8(1) + ('<CompleteMultipartUpload%s><Part><PartNumber>1</PartNumber><ETag>"a54357aff0632cce46d942af68356b38"'
                             '</ETag></Part><Part><ETag> "0c78aef83f66abc1fa1e8477f296d394" </ETag><PartNumber>2'
                             '</PartNumber><ChecksumCRC32>abc=</ChecksumCRC32></Part></CompleteMultipartUpload>'
                             % ns).encode(),
        "complete-bad-number": u8(1) + b"<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>x</ETag>"
                                       b"</Part></CompleteMultipartUpload>",
        "complete-empty": u8(1) + b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        "items-deep": u8(2) + b"<Delete><Object><Key><b>deep</b></Key></Object></Delete>",
        "items-stop": u8(2) + b"<Delete><Xstop>1</Xstop><Object><Key>k</Key></Object></Delete>",
        "items-many-fields": u8(2) + b"<Delete><Object>" + b"".join(b"<F%d>v</F%d>" % (i, i) for i in range(17)) +
        b"</Object></Delete>",
    }


TARGETS = {"sigv4": sigv4_seeds, "s3route": s3route_seeds, "wire": wire_seeds, "frag": frag_seeds,
           "meta": meta_seeds, "s3xml": s3xml_seeds}


def main(names):
    if not wire.has_xxhash:
        print("seeds.py: libxxhash not loadable; fragment seeds would have wrong sums", file=sys.stderr)
        return 1
    for t in names or sorted(TARGETS):
        d = os.path.join(HERE, "corpus", t)
        os.makedirs(d, exist_ok=True)
        for name, data in TARGETS[t]().items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        print("%s: %d seeds" % (t, len(TARGETS[t]())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
