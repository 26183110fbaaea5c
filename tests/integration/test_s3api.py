#!/usr/bin/python3
"""The S3 calls beyond plain PUT/GET: aws-chunked uploads (signed chunks,
signed and unsigned trailers) built and signed here byte by byte, the
x-amz-checksum-* algorithms, stored headers, CopyObject, DeleteObjects,
conditional GET/HEAD, versioning/ACL/configuration answers, and a boto3 run
with Debian's python3 when python3-boto3 is installed."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import base64
import hashlib
import hmac
import http.client
import os
import struct
import subprocess
import time
import urllib.parse
import zlib

from harness import (MiB, Suite, check, eq, expect_error, key_path, md5, sha256, short, xml_parse)

suite = Suite("s3api")
BUCKET = "s3api"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
BOTO3_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3api_boto3.py")


# ---------------------------------------------------------------- checksums


def _crc_table(poly):
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t.append(c)
    return t


_CRC32C = _crc_table(0x82F63B78)
_CRC64NVME = _crc_table(0x9A6C9329AC4BC9B5)


def _crc(table, data, bits):
    mask = (1 << bits) - 1
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def checksum(alg, data):
    """base64 of the checksum as S3 sends it."""
    if alg == "crc32":
        raw = struct.pack(">I", zlib.crc32(data) & 0xFFFFFFFF)
    elif alg == "crc32c":
        raw = struct.pack(">I", _crc(_CRC32C, data, 32))
    elif alg == "crc64nvme":
        raw = struct.pack(">Q", _crc(_CRC64NVME, data, 64))
    else:
        raw = hashlib.new(alg, data).digest()
    return base64.b64encode(raw).decode()


ALGS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]


# ---------------------------------------------------------------- SigV4 by hand


def _hmac(k, m):
    return hmac.new(k, m.encode() if isinstance(m, str) else m, hashlib.sha256).digest()


def sign(c, method, path, query, headers, payload):
    """Add x-amz-date, x-amz-content-sha256 and Authorization to headers
    (lower-case names; every one is signed). Returns (key, seed signature,
    amz_date, scope) for chunk signatures."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload
    names = sorted(headers)
    canon = "".join("%s:%s\n" % (n, " ".join(str(headers[n]).split())) for n in names)
    signed = ";".join(names)
    creq = "\n".join([method, path, query, canon, signed, payload])
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], c.region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = _hmac(("AWS4" + c.sk).encode(), amz_date[:8])
    for part in (c.region, "s3", "aws4_request"):
        k = _hmac(k, part)
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        c.ak, scope, signed, sig)
    return k, sig, amz_date, scope


def chunked(data, size, signing=None, trailers=None):
    """An aws-chunked body: chunks of `size` bytes, signed when signing =
    (key, seed, amz_date, scope), then trailers [(name, value)] if given."""
    out, prev = [], signing[1] if signing else None
    pieces = [data[i:i + size] for i in range(0, len(data), size)] + [b""]
    for p in pieces:
        if signing:
            key, _, amz_date, scope = signing
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256,
                             hashlib.sha256(p).hexdigest()])
            prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            out.append(b"%x;chunk-signature=%s\r\n" % (len(p), prev.encode()))
        else:
            out.append(b"%x\r\n" % len(p))
        if p:
            out.append(p + b"\r\n")
    if trailers is not None:
        canon = "".join("%s:%s\n" % (n, v) for n, v in trailers)
        for n, v in trailers:
            out.append(("%s:%s\r\n" % (n, v)).encode())
        if signing:
            key, _, amz_date, scope = signing
            sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                             hashlib.sha256(canon.encode()).hexdigest()])
            tsig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            out.append(("x-amz-trailer-signature:%s\r\n" % tsig).encode())
    out.append(b"\r\n")
    return b"".join(out)


def raw(c, method, path, headers, body=b""):
    """One HTTP request exactly as given; (status, {header: value}, body)."""
    u = urllib.parse.urlparse(c.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, str(v))
        conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
    finally:
        conn.close()


def streamed_put(c, key, data, mode, chunk=65536, trailer_alg=None, trailer_value=None, decoded_len=None,
                 tamper=None):
    """PUT data as aws-chunked. mode: 'signed' (STREAMING-AWS4-HMAC-SHA256-PAYLOAD),
    'signed-trailer', 'unsigned-trailer'. tamper(body) may alter the encoding."""
    path = key_path(BUCKET, key)
    host = urllib.parse.urlparse(c.endpoint).netloc
    h = {"host": host, "content-encoding": "aws-chunked",
         "x-amz-decoded-content-length": str(len(data) if decoded_len is None else decoded_len)}
    payload = {"signed": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "signed-trailer": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
               "unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}[mode]
    trailers = None
    if trailer_alg:
        h["x-amz-trailer"] = "x-amz-checksum-" + trailer_alg
        trailers = [("x-amz-checksum-" + trailer_alg, trailer_value or checksum(trailer_alg, data))]
    s = sign(c, "PUT", path, "", h, payload)
    body = chunked(data, chunk, s if mode != "unsigned-trailer" else None, trailers)
    if tamper:
        body = tamper(body)
    return raw(c, "PUT", path, h, body)


def frag_count(c):
    return len(c.frag_files())


def head_checksum(c, key):
    st, h, _ = c.curl("HEAD", key_path(BUCKET, key), headers={"x-amz-checksum-mode": "ENABLED"})
    eq(st, 200, "HEAD %s" % key)
    return dict((k, v) for k, v in h.items() if k.startswith("x-amz-checksum-"))


# ---------------------------------------------------------------- cases


@suite.case
def create_bucket(c):
    c.make_bucket(BUCKET)


@suite.case
def aws_chunked_signed(c):
    data = os.urandom(300 * 1000 + 7)
    st, h, body = streamed_put(c, "chunked/signed", data, "signed")
    eq(st, 200, "signed aws-chunked PUT: %s" % short(body))
    eq(h.get("etag"), '"%s"' % md5(data), "ETag is the MD5 of the decoded body")
    st, got, hh = c.get_sha(BUCKET, "chunked/signed")
    eq((st, got), (200, sha256(data)), "GET of the signed aws-chunked upload (no framing inside)")
    eq(hh.get("content-length"), str(len(data)), "Content-Length")
    check("content-encoding" not in hh, "aws-chunked must not be stored as Content-Encoding: %r" %
          hh.get("content-encoding"))
    # One chunk of one byte per chunk boundary case, and an empty body.
    for n, size in [(1, 1), (0, 8192), (8192, 8192), (8193, 8192)]:
        d = os.urandom(n)
        st, h, body = streamed_put(c, "chunked/edge-%d" % n, d, "signed", chunk=size)
        eq(st, 200, "signed aws-chunked PUT of %d bytes: %s" % (n, short(body)))
        st, got, _ = c.get_sha(BUCKET, "chunked/edge-%d" % n)
        eq(got, sha256(d), "GET of %d bytes" % n)

    before = frag_count(c)

    def flip(body):
        i = body.index(b"\r\n", 200) + 100  # a data byte of the first chunk
        return body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]

    r = streamed_put(c, "chunked/tampered", data, "signed", tamper=flip)
    expect_error(r, 403, "SignatureDoesNotMatch", "a flipped data byte")

    def drop_chunk(body):  # remove the second chunk entirely: the signature chain breaks
        a = body.index(b";chunk-signature=", 100)
        a = body.rindex(b"\r\n", 0, a) + 2
        b = body.index(b";chunk-signature=", a + 20)
        b = body.rindex(b"\r\n", 0, b) + 2
        return body[:a] + body[b:]

    r = streamed_put(c, "chunked/tampered", data, "signed", tamper=drop_chunk,
                     decoded_len=len(data) - 65536)
    expect_error(r, 403, "SignatureDoesNotMatch", "a chunk left out")
    r = streamed_put(c, "chunked/tampered", data, "signed", decoded_len=len(data) + 1)
    expect_error(r, 400, "IncompleteBody", "x-amz-decoded-content-length off by one")
    r = streamed_put(c, "chunked/tampered", data, "signed", tamper=lambda b: b[:-40])
    check(r[0] in (400, 403), "truncated aws-chunked body: %d %s" % (r[0], short(r[2])))
    eq(frag_count(c), before, "fragment files after refused uploads")
    st, _, _ = c.curl("HEAD", key_path(BUCKET, "chunked/tampered"))
    eq(st, 404, "nothing stored under a refused upload's key")


@suite.case
def aws_chunked_trailers(c):
    data = os.urandom(200 * 1000 + 3)
    for alg in ALGS:
        key = "chunked/unsigned-%s" % alg
        st, h, body = streamed_put(c, key, data, "unsigned-trailer", trailer_alg=alg)
        eq(st, 200, "unsigned trailer %s: %s" % (alg, short(body)))
        eq(h.get("x-amz-checksum-" + alg), checksum(alg, data), "checksum echoed for %s" % alg)
        st, got, _ = c.get_sha(BUCKET, key)
        eq(got, sha256(data), "GET of the %s trailer upload" % alg)
        eq(head_checksum(c, key), {"x-amz-checksum-" + alg: checksum(alg, data)}, "HEAD checksum-mode %s" % alg)
        wrong = checksum(alg, data + b"x")
        r = streamed_put(c, key + "-bad", data, "unsigned-trailer", trailer_alg=alg, trailer_value=wrong)
        expect_error(r, 400, "BadDigest", "wrong %s trailer" % alg)
    # Without checksum-mode the checksum is not returned.
    st, h, _ = c.curl("HEAD", key_path(BUCKET, "chunked/unsigned-crc32"))
    check(not any(k.startswith("x-amz-checksum-") for k in h), "checksum without checksum-mode: %r" % h)
    # Signed chunks and a signed trailer.
    st, h, body = streamed_put(c, "chunked/signed-trailer", data, "signed-trailer", trailer_alg="crc32c")
    eq(st, 200, "signed trailer: %s" % short(body))
    eq(head_checksum(c, "chunked/signed-trailer"), {"x-amz-checksum-crc32c": checksum("crc32c", data)},
       "signed trailer checksum stored")

    def alter_trailer(body):
        v = checksum("crc32c", data).encode()
        return body.replace(v, checksum("crc32c", b"other").encode())

    r = streamed_put(c, "chunked/signed-trailer-bad", data, "signed-trailer", trailer_alg="crc32c",
                     tamper=alter_trailer)
    expect_error(r, 403, "SignatureDoesNotMatch", "a trailer changed after signing")


@suite.case
def header_checksums(c):
    data = os.urandom(70000)
    for alg in ALGS:
        key = "ck/header-%s" % alg
        r = c.curl("PUT", key_path(BUCKET, key), data=data, headers={"x-amz-checksum-" + alg: checksum(alg, data)})
        c.ok(r, "PUT with x-amz-checksum-%s" % alg)
        eq(head_checksum(c, key), {"x-amz-checksum-" + alg: checksum(alg, data)}, "stored %s" % alg)
        r = c.curl("PUT", key_path(BUCKET, key + "-bad"), data=data,
                   headers={"x-amz-checksum-" + alg: checksum(alg, b"nope")})
        expect_error(r, 400, "BadDigest", "wrong x-amz-checksum-%s" % alg)
    r = c.curl("PUT", key_path(BUCKET, "ck/malformed"), data=data, headers={"x-amz-checksum-crc32": "abc"})
    expect_error(r, 400, "InvalidRequest", "malformed checksum value")
    # The AWS CLI computes and sends them itself.
    src = c.tmpfile(data)
    for alg in ["CRC32", "CRC32C", "SHA1", "SHA256"]:
        key = "ck/cli-%s" % alg
        c.aws_ok("s3api", "put-object", "--bucket", BUCKET, "--key", key, "--body", src, "--checksum-algorithm", alg)
        out = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", key, "--checksum-mode", "ENABLED")
        eq(out.get("Checksum" + alg), checksum(alg.lower(), data), "head-object Checksum%s" % alg)


@suite.case
def stored_headers(c):
    hdrs = {"Content-Encoding": "gzip", "Content-Disposition": 'attachment; filename="a b.txt"',
            "Cache-Control": "max-age=60", "Expires": "Wed, 21 Oct 2037 07:28:00 GMT",
            "Content-Language": "de-CH", "Content-Type": "text/plain"}
    c.ok(c.curl("PUT", key_path(BUCKET, "hdrs/one"), data=b"payload", headers=hdrs), "PUT with headers")
    for method in ("HEAD", "GET"):
        st, h, _ = c.curl(method, key_path(BUCKET, "hdrs/one"))
        eq(st, 200, method)
        for k, v in hdrs.items():
            eq(h.get(k.lower()), v, "%s %s" % (method, k))
    out = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", "hdrs/one")
    eq((out.get("ContentDisposition"), out.get("CacheControl"), out.get("ContentLanguage")),
       (hdrs["Content-Disposition"], "max-age=60", "de-CH"), "aws head-object")
    r = c.curl("PUT", key_path(BUCKET, "hdrs/acl"), data=b"x", headers={"x-amz-acl": "public-read"})
    expect_error(r, 501, "NotImplemented", "a canned ACL other than private")
    c.ok(c.curl("PUT", key_path(BUCKET, "hdrs/acl"), data=b"x", headers={"x-amz-acl": "private"}), "x-amz-acl private")


@suite.case
def copy_object(c):
    data = os.urandom(3 * MiB + 11)
    c.ok(c.curl("PUT", key_path(BUCKET, "copy/src"), data=data,
                headers={"Content-Type": "image/png", "x-amz-meta-origin": "here", "Cache-Control": "no-cache"}),
         "PUT source")
    c.make_bucket("s3api-other")
    out = c.aws_ok("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/same-bucket",
                   "--copy-source", "%s/copy/src" % BUCKET)
    eq(out["CopyObjectResult"]["ETag"], '"%s"' % md5(data), "ETag of the copy")
    c.aws_ok("s3api", "copy-object", "--bucket", "s3api-other", "--key", "copy/other bucket é",
             "--copy-source", "%s/copy/src" % BUCKET)
    for b, k in [(BUCKET, "copy/same-bucket"), ("s3api-other", "copy/other bucket é")]:
        st, got, h = c.get_sha(b, k)
        eq((st, got), (200, sha256(data)), "GET of copy %s/%s" % (b, k))
        eq((h.get("content-type"), h.get("x-amz-meta-origin"), h.get("cache-control")),
           ("image/png", "here", "no-cache"), "metadata copied (COPY directive)")
    c.aws_ok("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/replaced", "--copy-source",
             "%s/copy/src" % BUCKET, "--metadata-directive", "REPLACE", "--content-type", "text/csv",
             "--metadata", "fresh=yes")
    out = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", "copy/replaced")
    eq((out.get("ContentType"), out.get("Metadata")), ("text/csv", {"fresh": "yes"}), "REPLACE directive")
    # Onto itself: only with REPLACE.
    rc, o, e = c.aws("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/src", "--copy-source",
                     "%s/copy/src" % BUCKET)
    check(rc != 0 and "InvalidRequest" in e, "copy onto itself without REPLACE: %s" % short(e))
    c.aws_ok("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/src", "--copy-source", "%s/copy/src" % BUCKET,
             "--metadata-directive", "REPLACE", "--content-type", "text/plain")
    st, got, h = c.get_sha(BUCKET, "copy/src")
    eq((st, got, h.get("content-type")), (200, sha256(data), "text/plain"), "self-copy with REPLACE")
    # Conditions on the source, and missing sources.
    rc, o, e = c.aws("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/cond", "--copy-source",
                     "%s/copy/src" % BUCKET, "--copy-source-if-match", '"0123"')
    check(rc != 0 and "PreconditionFailed" in e, "copy-source-if-match mismatch: %s" % short(e))
    c.aws_ok("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/cond", "--copy-source",
             "%s/copy/src" % BUCKET, "--copy-source-if-match", '"%s"' % md5(data))
    rc, o, e = c.aws("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/x", "--copy-source",
                     "%s/copy/missing" % BUCKET)
    check(rc != 0 and "NoSuchKey" in e, "copy of a missing key: %s" % short(e))
    # A large multipart source is copied window by window.
    big = os.urandom(66 * MiB + 5)
    src = c.tmpfile(big)
    c.aws_ok("s3", "cp", "--only-show-errors", src, "s3://%s/copy/big" % BUCKET, timeout=300)
    os.unlink(src)
    c.aws_ok("s3api", "copy-object", "--bucket", BUCKET, "--key", "copy/big-copy", "--copy-source",
             "%s/copy/big" % BUCKET, timeout=300)
    st, got, _ = c.get_sha(BUCKET, "copy/big-copy")
    eq((st, got), (200, sha256(big)), "GET of the copy of a 66 MiB multipart object")
    st, h, body = c.curl("GET", key_path(BUCKET, "copy/big-copy"),
                         headers={"Range": "bytes=%d-%d" % (64 * MiB - 3, 64 * MiB + 3)})
    check(st == 206 and body == big[64 * MiB - 3:64 * MiB + 4], "Range across the copy window: %d" % st)


@suite.case
def delete_objects(c):
    keys = ["del/%d" % i for i in range(5)] + ["del/ü &<>"]
    for k in keys:
        c.ok(c.curl("PUT", key_path(BUCKET, k), data=b"x"), "PUT %s" % k)
    f = c.tmpfile(('{"Objects": [%s]}' % ", ".join('{"Key": "%s"}' % k for k in keys[:3] + ["del/missing"])).encode())
    out = c.aws_ok("s3api", "delete-objects", "--bucket", BUCKET, "--delete", "file://" + f)
    eq(sorted(d["Key"] for d in out.get("Deleted", [])), sorted(keys[:3] + ["del/missing"]), "Deleted (verbose)")
    eq(out.get("Errors", []), [], "no errors")
    f = c.tmpfile(('{"Objects": [%s], "Quiet": true}' % ", ".join('{"Key": "%s"}' % k for k in keys[3:])).encode())
    out = c.aws_ok("s3api", "delete-objects", "--bucket", BUCKET, "--delete", "file://" + f) or {}
    eq(out.get("Deleted", []), [], "Quiet mode lists nothing deleted")
    out = c.aws_ok("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "del/") or {}
    eq(out.get("Contents", []), [], "all deleted")
    # Raw: malformed XML and too many keys.
    r = c.curl("POST", "/" + BUCKET, query={"delete": None}, data=b"<Delete><Object><Key>a</Key>",
               headers={"Content-MD5": base64.b64encode(hashlib.md5(b"<Delete><Object><Key>a</Key>").digest()).decode()})
    expect_error(r, 400, "MalformedXML", "truncated Delete")
    many = b"<Delete>" + b"".join(b"<Object><Key>k%d</Key></Object>" % i for i in range(1001)) + b"</Delete>"
    r = c.curl("POST", "/" + BUCKET, query={"delete": None}, data=many)
    expect_error(r, 400, "MalformedXML", "1001 keys")
    r = c.curl("POST", "/" + BUCKET, query={"delete": None}, data=b"<Delete><Object><Key>a</Key></Object></Delete>",
               headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
    expect_error(r, 400, "BadDigest", "Delete with a wrong Content-MD5")


@suite.case
def conditional_get_head(c):
    data = b"conditional body"
    c.ok(c.curl("PUT", key_path(BUCKET, "cond/k"), data=data), "PUT")
    etag = '"%s"' % md5(data)
    past, future = "Sat, 01 Jan 2000 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"
    cases = [
        ({"If-Match": etag}, 200), ({"If-Match": '"0000"'}, 412), ({"If-Match": "*"}, 200),
        ({"If-None-Match": etag}, 304), ({"If-None-Match": '"0000"'}, 200), ({"If-None-Match": "*"}, 304),
        ({"If-Modified-Since": future}, 304), ({"If-Modified-Since": past}, 200),
        ({"If-Unmodified-Since": past}, 412), ({"If-Unmodified-Since": future}, 200),
        # S3's combinations: If-Match true wins over If-Unmodified-Since false, and
        # If-None-Match false with If-Modified-Since true gives the object.
        ({"If-Match": etag, "If-Unmodified-Since": past}, 200),
        ({"If-None-Match": '"0000"', "If-Modified-Since": future}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
    ]
    for hdrs, want in cases:
        for method in ("GET", "HEAD"):
            st, h, body = c.curl(method, key_path(BUCKET, "cond/k"), headers=hdrs)
            eq(st, want, "%s with %s" % (method, hdrs))
            if want == 304:
                eq(h.get("etag"), etag, "ETag of 304")
                eq(body, b"", "304 has no body")
            if want == 412 and method == "GET":
                expect_error((st, h, body), 412, "PreconditionFailed", "GET with %s" % hdrs)
            if want == 200 and method == "GET":
                eq(body, data, "body with %s" % hdrs)
    rc, o, e = c.aws("s3api", "get-object", "--bucket", BUCKET, "--key", "cond/k", "--if-match", '"0000"',
                     c.tmpfile(suffix=".x"))
    check(rc != 0 and "412" in e or "PreconditionFailed" in e, "aws get-object --if-match: %s" % short(e))


@suite.case
def conditional_writes(c):
    k = key_path(BUCKET, "condw/k")
    before = frag_count(c)
    pad = os.urandom(20000)  # above the inline limit: refused writes have fragments to clean up
    c.ok(c.curl("PUT", k, data=(b"one" + pad), headers={"If-None-Match": "*"}), "If-None-Match: * on a new key")
    r = c.curl("PUT", k, data=(b"two" + pad), headers={"If-None-Match": "*"})
    expect_error(r, 412, "PreconditionFailed", "If-None-Match: * on an existing key")
    r = c.curl("PUT", k, data=(b"two" + pad), headers={"If-Match": '"%s"' % md5((b"nope" + pad))})
    expect_error(r, 412, "PreconditionFailed", "If-Match with another ETag")
    c.ok(c.curl("PUT", k, data=(b"two" + pad), headers={"If-Match": '"%s"' % md5((b"one" + pad))}), "If-Match with the ETag")
    st, h, body = c.curl("GET", k)
    eq((st, body), (200, b"two" + pad), "object after the conditional writes")
    r = c.curl("PUT", key_path(BUCKET, "condw/missing"), data=(b"x" + pad), headers={"If-Match": '"%s"' % md5((b"x" + pad))})
    expect_error(r, 404, "NoSuchKey", "If-Match on a missing key")
    deadline = time.time() + 15  # the replaced version's fragments go after the gateway's gc delay
    while frag_count(c) != before + c.k + c.m and time.time() < deadline:
        time.sleep(0.2)
    eq(frag_count(c), before + c.k + c.m, "refused conditional writes left no fragments")
    # CompleteMultipartUpload with If-None-Match: *
    st, h, body = c.curl("POST", k, query={"uploads": None})
    uid = xml_parse(body).findtext("UploadId")
    st, h, _ = c.curl("PUT", k, query={"partNumber": "1", "uploadId": uid}, data=b"part")
    doc = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
           "</CompleteMultipartUpload>" % h["etag"]).encode()
    r = c.curl("POST", k, query={"uploadId": uid}, data=doc, headers={"If-None-Match": "*"})
    expect_error(r, 412, "PreconditionFailed", "Complete with If-None-Match: * on an existing key")
    c.ok(c.curl("POST", k, query={"uploadId": uid}, data=doc, headers={"If-Match": '"%s"' % md5(b"two" + pad)}),
         "Complete with If-Match")
    st, h, body = c.curl("GET", k)
    eq((st, body), (200, b"part"), "object after the conditional Complete")


@suite.case
def versioning_acl_configs(c):
    out = c.aws_ok("s3api", "get-bucket-versioning", "--bucket", BUCKET)
    check(not out or "Status" not in out, "unversioned bucket has no Status: %r" % out)
    c.make_bucket("s3api-versions")
    for k in ["a", "b/c", "b/d", "e"]:
        c.ok(c.curl("PUT", key_path("s3api-versions", k), data=k.encode()), "PUT %s" % k)
    out = c.aws_ok("s3api", "list-object-versions", "--bucket", "s3api-versions")
    eq([(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"]) for v in out.get("Versions", [])],
       [(k, "null", True, '"%s"' % md5(k.encode())) for k in ["a", "b/c", "b/d", "e"]], "list-object-versions")
    st, h, body = c.curl("GET", "/s3api-versions", query={"versions": None, "delimiter": "/", "max-keys": "2"})
    root = xml_parse(body)
    eq(([v.findtext("Key") for v in root.findall("Version")], [p.findtext("Prefix") for p in root.findall(
        "CommonPrefixes")], root.findtext("IsTruncated"), root.findtext("NextKeyMarker")),
       (["a"], ["b/"], "true", "b/"), "versions page with a delimiter")
    st, h, body = c.curl("GET", "/s3api-versions", query={"versions": None, "key-marker": "b/d"})
    eq([v.findtext("Key") for v in xml_parse(body).findall("Version")], ["e"], "versions after key-marker")
    for args in (("get-bucket-acl", "--bucket", BUCKET), ("get-object-acl", "--bucket", "s3api-versions", "--key", "a")):
        out = c.aws_ok("s3api", *args)
        eq([(g["Grantee"]["Type"], g["Grantee"]["ID"], g["Permission"]) for g in out["Grants"]],
           [("CanonicalUser", c.ak, "FULL_CONTROL")], args[0])
        eq(out["Owner"]["ID"], c.ak, "owner in %s" % args[0])
    rc, o, e = c.aws("s3api", "get-object-acl", "--bucket", "s3api-versions", "--key", "missing")
    check(rc != 0 and "NoSuchKey" in e, "get-object-acl of a missing key: %s" % short(e))
    c.aws_ok("s3api", "put-bucket-acl", "--bucket", BUCKET, "--acl", "private")
    rc, o, e = c.aws("s3api", "put-bucket-acl", "--bucket", BUCKET, "--acl", "public-read")
    check(rc != 0 and "NotImplemented" in e, "put-bucket-acl public-read: %s" % short(e))
    for cmd, code in [("get-bucket-lifecycle-configuration", "NoSuchLifecycleConfiguration"),
                      ("get-bucket-policy", "NoSuchBucketPolicy"), ("get-bucket-cors", "NoSuchCORSConfiguration"),
                      ("get-bucket-tagging", "NoSuchTagSet"), ("get-bucket-website", "NoSuchWebsiteConfiguration"),
                      ("get-bucket-encryption", "ServerSideEncryptionConfigurationNotFoundError")]:
        rc, o, e = c.aws("s3api", cmd, "--bucket", BUCKET)
        check(rc != 0 and code in e, "%s: %s" % (cmd, short(e)))
    out = c.aws_ok("s3api", "get-object-tagging", "--bucket", "s3api-versions", "--key", "a")
    eq(out.get("TagSet"), [], "get-object-tagging")
    rc, o, e = c.aws("s3api", "get-bucket-versioning", "--bucket", "s3api-nosuch")
    check(rc != 0 and "NoSuchBucket" in e, "versioning of a missing bucket: %s" % short(e))
    st, h, body = c.curl("GET", "/" + BUCKET, query={"versioning": None}, sign=False)
    expect_error((st, h, body), 403, "AccessDenied", "anonymous get-bucket-versioning")


def mpu_by_curl(c, key, parts, headers=None, part_headers=None):
    """A multipart upload with curl: create (with headers), one UploadPart per
    bytes in parts (part_headers(i, data) adds headers), Complete. Returns
    (the Complete answer, the Create answer)."""
    k = key_path(BUCKET, key)
    created = c.curl("POST", k, query={"uploads": None}, headers=headers)
    st, h, body = created
    if st != 200:
        return created, created
    uid = xml_parse(body).findtext("UploadId")
    doc = "<CompleteMultipartUpload>"
    for i, p in enumerate(parts):
        st, h, b = c.ok(c.curl("PUT", k, query={"partNumber": str(i + 1), "uploadId": uid}, data=p,
                               headers=part_headers(i, p) if part_headers else None), "part %d of %s" % (i + 1, key))
        doc += "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (i + 1, h["etag"])
    doc += "</CompleteMultipartUpload>"
    return c.curl("POST", k, query={"uploadId": uid}, data=doc.encode()), created


@suite.case
def part_number(c):
    """GetObject/HeadObject ?partNumber=N: that part's bytes (206, Content-Range,
    x-amz-mp-parts-count); part 1 of a one-PUT object is all of it; past the
    last part 416 InvalidPartNumber."""
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 3), os.urandom(1234)]
    whole = b"".join(parts)
    key = "pn/multi"
    c.ok(mpu_by_curl(c, key, parts)[0], "Complete of %s" % key)
    base = 0
    for i, p in enumerate(parts):
        st, h, body = c.curl("GET", key_path(BUCKET, key), query={"partNumber": str(i + 1)})
        eq((st, body == p), (206, True), "GET partNumber=%d: status, same bytes" % (i + 1))
        eq((h.get("content-range"), h.get("x-amz-mp-parts-count"), h.get("content-length")),
           ("bytes %d-%d/%d" % (base, base + len(p) - 1, len(whole)), "3", str(len(p))),
           "headers of GET partNumber=%d" % (i + 1))
        base += len(p)
    out = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", key, "--part-number", "2")
    eq((out.get("ContentLength"), out.get("PartsCount")), (len(parts[1]), 3), "aws head-object --part-number 2")
    dst = c.tmpfile(suffix=".part")
    out = c.aws_ok("s3api", "get-object", "--bucket", BUCKET, "--key", key, "--part-number", "3", dst)
    with open(dst, "rb") as f:
        eq(f.read(), parts[2], "aws get-object --part-number 3")
    eq(out.get("PartsCount"), 3, "PartsCount of get-object --part-number")
    expect_error(c.curl("GET", key_path(BUCKET, key), query={"partNumber": "4"}), 416, "InvalidPartNumber",
                 "partNumber past the last part")
    for bad in ("0", "10001", "x", "-1"):
        expect_error(c.curl("GET", key_path(BUCKET, key), query={"partNumber": bad}), 400, "InvalidArgument",
                     "partNumber=%s" % bad)
    expect_error(c.curl("GET", key_path(BUCKET, key), query={"partNumber": "1"}, headers={"Range": "bytes=0-9"}),
                 400, "InvalidRequest", "partNumber with a Range")
    # An object of one PUT is one part.
    small = os.urandom(30000)
    c.ok(c.curl("PUT", key_path(BUCKET, "pn/single"), data=small), "PUT pn/single")
    st, h, body = c.curl("GET", key_path(BUCKET, "pn/single"), query={"partNumber": "1"})
    eq((st, body == small, h.get("content-range"), "x-amz-mp-parts-count" in h),
       (206, True, "bytes 0-29999/30000", False), "partNumber=1 of a one-PUT object")
    st, h, _ = c.curl("HEAD", key_path(BUCKET, "pn/single"), query={"partNumber": "1"})
    eq((st, h.get("content-length")), (206, "30000"), "HEAD partNumber=1 of a one-PUT object")
    expect_error(c.curl("GET", key_path(BUCKET, "pn/single"), query={"partNumber": "2"}), 416, "InvalidPartNumber",
                 "partNumber=2 of a one-PUT object")
    c.ok(c.curl("PUT", key_path(BUCKET, "pn/empty"), data=b""), "PUT pn/empty")
    st, h, body = c.curl("GET", key_path(BUCKET, "pn/empty"), query={"partNumber": "1"})
    eq((st, body, "content-range" in h), (200, b"", False), "partNumber=1 of an empty object")


@suite.case
def full_object_checksums(c):
    """Multipart uploads of checksum type FULL_OBJECT: the object's CRC32,
    CRC32C or CRC64NVME is the CRC of all its bytes, combined from the parts'
    CRCs, returned with x-amz-checksum-type: FULL_OBJECT. CRC64NVME is
    FULL_OBJECT without asking; combinations S3 refuses are refused."""
    parts = [os.urandom(5 * MiB), os.urandom(77777)]
    whole = b"".join(parts)
    for alg, ask in [("crc32", True), ("crc32c", True), ("crc64nvme", False)]:
        key = "fullck/" + alg
        hdrs = {"x-amz-checksum-algorithm": alg.upper()}
        if ask:
            hdrs["x-amz-checksum-type"] = "FULL_OBJECT"
        done, created = mpu_by_curl(c, key, parts, headers=hdrs,
                                    part_headers=lambda i, p: {"x-amz-checksum-" + alg: checksum(alg, p)})
        eq(created[1].get("x-amz-checksum-type"), "FULL_OBJECT", "type echoed by Create (%s)" % alg)
        st, h, body = c.ok(done, "Complete of %s" % key)
        eq(xml_parse(body).findtext("Checksum" + alg.upper()), checksum(alg, whole), "Checksum in Complete (%s)" % alg)
        eq(head_checksum(c, key), {"x-amz-checksum-" + alg: checksum(alg, whole), "x-amz-checksum-type": "FULL_OBJECT"},
           "HEAD checksum-mode of a FULL_OBJECT upload (%s)" % alg)
        st, got, _ = c.get_sha(BUCKET, key)
        eq(got, sha256(whole), "GET %s" % key)
    # A part without its CRC: the object has no checksum rather than a wrong one.
    done, _ = mpu_by_curl(c, "fullck/gap", parts, headers={"x-amz-checksum-algorithm": "CRC32",
                                                           "x-amz-checksum-type": "FULL_OBJECT"},
                          part_headers=lambda i, p: {"x-amz-checksum-crc32": checksum("crc32", p)} if i else {})
    c.ok(done, "Complete of fullck/gap")
    eq(head_checksum(c, "fullck/gap"), {}, "checksum of an upload with a part lacking its CRC")
    for hdrs, what in [({"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-type": "FULL_OBJECT"}, "SHA256 full"),
                       ({"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"},
                        "CRC64NVME composite"),
                       ({"x-amz-checksum-type": "FULL_OBJECT"}, "a type without an algorithm"),
                       ({"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "HALF"}, "an unknown type")]:
        r = c.curl("POST", key_path(BUCKET, "fullck/refused"), query={"uploads": None}, headers=hdrs)
        expect_error(r, 400, "InvalidRequest", "CreateMultipartUpload with %s" % what)


@suite.case
def boto3_debian(c):
    if not os.path.exists("/usr/bin/python3") or subprocess.run(
            ["/usr/bin/python3", "-c", "import boto3"], capture_output=True).returncode != 0:
        print("# boto3: python3-boto3 is not installed; case skipped")
        return
    env = {"PATH": "/usr/bin:/bin", "HOME": c.awshome, "AWS_CONFIG_FILE": os.path.join(c.awshome, "config"),
           "AWS_SHARED_CREDENTIALS_FILE": os.path.join(c.awshome, "credentials"), "CAIRN_ENDPOINT": c.endpoint,
           "AWS_ACCESS_KEY_ID": c.ak, "AWS_SECRET_ACCESS_KEY": c.sk, "AWS_DEFAULT_REGION": c.region,
           "AWS_EC2_METADATA_DISABLED": "true", "CAIRN_WORK": c.work}
    r = subprocess.run(["/usr/bin/python3", BOTO3_SCRIPT], env=env, capture_output=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    print("\n".join("# boto3: " + line for line in out.strip().splitlines()[-40:]))
    eq(r.returncode, 0, "boto3 script exit status")


suite.main()
