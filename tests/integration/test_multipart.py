#!/usr/bin/python3
"""Multipart uploads: aws s3 cp of 100 MiB up and down (the CLI goes multipart
above 8 MiB), the aws s3api multipart calls one by one, Range GETs across part
boundaries, every Complete error, and the fragment files of superseded,
unused and aborted parts being removed."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import hashlib
import json
import os
import random
import time

from harness import (MiB, Suite, check, eq, expect_error, key_path, md5, sha256, sha256_file, short, xml_parse)

suite = Suite("multipart")
BUCKET = "multipart"


def mpu_etag(parts):
    """The ETag S3 gives a multipart object: MD5 of the part MD5s, then -N."""
    h = hashlib.md5()
    for p in parts:
        h.update(hashlib.md5(p).digest())
    return '"%s-%d"' % (h.hexdigest(), len(parts))


def create(c, key, *extra):
    out = c.aws_ok("s3api", "create-multipart-upload", "--bucket", BUCKET, "--key", key, *extra)
    eq(out.get("Bucket"), BUCKET, "Bucket of create-multipart-upload")
    eq(out.get("Key"), key, "Key of create-multipart-upload")
    check(len(out.get("UploadId", "")) == 32, "UploadId %r" % out.get("UploadId"))
    return out["UploadId"]


def upload_part(c, key, uid, n, data):
    src = c.tmpfile(data)
    out = c.aws_ok("s3api", "upload-part", "--bucket", BUCKET, "--key", key, "--upload-id", uid,
                   "--part-number", n, "--body", src, timeout=180)
    os.unlink(src)
    eq(out.get("ETag"), '"%s"' % md5(data), "ETag of part %d" % n)
    return out["ETag"]


def complete(c, key, uid, parts, ok=True):
    """parts: [(number, etag)]. Returns (rc, parsed output or stderr)."""
    doc = {"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]}
    f = c.tmpfile(json.dumps(doc).encode())
    args = ("s3api", "complete-multipart-upload", "--bucket", BUCKET, "--key", key, "--upload-id", uid,
            "--multipart-upload", "file://" + f)
    if ok:
        return c.aws_ok(*args, timeout=180)
    rc, o, e = c.aws(*args, timeout=180)
    check(rc != 0, "complete-multipart-upload should have failed: %s" % short(o))
    return e


def frag_count(c):
    return len(c.frag_files())


def wait_frag_count(c, want, seconds=15):
    deadline = time.time() + seconds
    while True:
        n = frag_count(c)
        if n == want or time.time() > deadline:
            return n
        time.sleep(0.2)


@suite.case
def create_bucket(c):
    c.make_bucket(BUCKET)


@suite.case
def aws_cp_100mib(c):
    data = os.urandom(100 * MiB)
    src = c.tmpfile(data)
    c.aws_ok("s3", "cp", "--only-show-errors", src, "s3://%s/big/100mib" % BUCKET, timeout=300)
    head = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", "big/100mib")
    eq(head.get("ContentLength"), 100 * MiB, "ContentLength of the 100 MiB object")
    check(head.get("ETag", "").endswith('-13"'), "ETag of an 13-part upload: %r" % head.get("ETag"))
    eq(head.get("ETag"), mpu_etag([data[i:i + 8 * MiB] for i in range(0, 100 * MiB, 8 * MiB)]),
       "ETag = md5 of the part md5s")
    dst = c.tmpfile(suffix=".get")
    c.aws_ok("s3", "cp", "--only-show-errors", "s3://%s/big/100mib" % BUCKET, dst, timeout=300)
    eq(sha256_file(dst), sha256(data), "sha256 of aws s3 cp download")
    st, got, h = c.get_sha(BUCKET, "big/100mib")
    eq((st, got), (200, sha256(data)), "curl GET of the 100 MiB object")
    eq(h.get("etag"), head["ETag"], "ETag of GET")
    # Listing shows it with its size and ETag.
    out = c.aws_ok("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "big/")
    eq([(o["Key"], o["Size"], o["ETag"]) for o in out.get("Contents", [])], [("big/100mib", 100 * MiB, head["ETag"])],
       "listing of the multipart object")
    for p in (src, dst):
        os.unlink(p)


@suite.case
def s3api_calls_and_ranges(c):
    key = "api/three parts+é"
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 17), os.urandom(MiB + 3)]
    uid = create(c, key, "--content-type", "text/x-test", "--metadata", "color=teal")
    # Listed while in progress.
    out = c.aws_ok("s3api", "list-multipart-uploads", "--bucket", BUCKET)
    eq([(u["Key"], u["UploadId"]) for u in out.get("Uploads", [])], [(key, uid)], "uploads in progress")
    etags = [upload_part(c, key, uid, i + 1, p) for i, p in enumerate(parts)]
    lp = c.aws_ok("s3api", "list-parts", "--bucket", BUCKET, "--key", key, "--upload-id", uid)
    eq([(p["PartNumber"], p["ETag"], p["Size"]) for p in lp.get("Parts", [])],
       [(i + 1, etags[i], len(parts[i])) for i in range(3)], "list-parts")
    # Paged list-parts (raw: the CLI would follow the pages itself).
    st, h, body = c.curl("GET", key_path(BUCKET, key), query={"uploadId": uid, "max-parts": "2"})
    root = xml_parse(body)
    eq((st, root.findtext("IsTruncated"), root.findtext("NextPartNumberMarker")), (200, "true", "2"),
       "list-parts max-parts=2")
    st, h, body = c.curl("GET", key_path(BUCKET, key), query={"uploadId": uid, "part-number-marker": "2"})
    eq([p.findtext("PartNumber") for p in xml_parse(body).findall("Part")], ["3"], "list-parts after part 2")

    out = complete(c, key, uid, list(zip([1, 2, 3], etags)))
    want = mpu_etag(parts)
    eq(out.get("ETag"), want, "ETag of complete-multipart-upload")
    whole = b"".join(parts)
    head = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", key)
    eq((head.get("ContentLength"), head.get("ETag"), head.get("ContentType"), head.get("Metadata")),
       (len(whole), want, "text/x-test", {"color": "teal"}), "head-object of the completed upload")
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(whole)), "GET of the completed upload")
    out = c.aws_ok("s3api", "list-multipart-uploads", "--bucket", BUCKET) or {}
    eq(out.get("Uploads", []), [], "no uploads left after complete")

    # Ranges: across each boundary, inside parts, suffix and open-ended.
    b1, b2 = len(parts[0]), len(parts[0]) + len(parts[1])
    rng = random.Random(7)
    cases = [(b1 - 10, b1 + 10), (b2 - 1, b2), (0, len(whole) - 1), (b1, b1), (b2 - 5, len(whole) - 1)]
    cases += [tuple(sorted(rng.randrange(len(whole)) for _ in range(2))) for _ in range(8)]
    for a, b in cases:
        st, h, body = c.curl("GET", key_path(BUCKET, key), headers={"Range": "bytes=%d-%d" % (a, b)})
        eq(st, 206, "status of Range %d-%d" % (a, b))
        check(body == whole[a:b + 1], "bytes of Range %d-%d differ" % (a, b))
        eq(h.get("content-range"), "bytes %d-%d/%d" % (a, b, len(whole)), "Content-Range")
    st, h, body = c.curl("GET", key_path(BUCKET, key), headers={"Range": "bytes=-7"})
    check(st == 206 and body == whole[-7:], "suffix range: %d" % st)
    st, h, body = c.curl("GET", key_path(BUCKET, key), headers={"Range": "bytes=%d-" % len(whole)})
    expect_error((st, h, body), 416, "InvalidRange", "range past the end")


@suite.case
def complete_errors(c):
    key = "err/k"
    uid = create(c, key)
    small = os.urandom(MiB)
    big = os.urandom(5 * MiB)
    e1 = upload_part(c, key, uid, 1, small)
    e2 = upload_part(c, key, uid, 2, big)
    e = complete(c, key, uid, [(2, e2), (1, e1)], ok=False)
    check("InvalidPartOrder" in e, "parts out of order: %s" % short(e))
    e = complete(c, key, uid, [(1, e1), (3, e2)], ok=False)
    check("InvalidPart" in e, "missing part: %s" % short(e))
    e = complete(c, key, uid, [(1, e2)], ok=False)
    check("InvalidPart" in e, "wrong ETag: %s" % short(e))
    e = complete(c, key, uid, [(1, e1), (2, e2)], ok=False)
    check("EntityTooSmall" in e, "1 MiB first part: %s" % short(e))
    # Malformed and empty part lists (raw XML).
    q = {"uploadId": uid}
    r = c.curl("POST", key_path(BUCKET, key), query=q, data=b"<CompleteMultipartUpload></CompleteMultipartUpload>")
    expect_error(r, 400, "MalformedXML", "empty part list")
    r = c.curl("POST", key_path(BUCKET, key), query=q, data=b"<CompleteMultipartUpload><Part>")
    expect_error(r, 400, "MalformedXML", "truncated XML")
    r = c.curl("POST", key_path(BUCKET, key), query=q,
               data=b"<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>x</ETag></Part>"
                    b"</CompleteMultipartUpload>")
    expect_error(r, 400, "InvalidArgument", "part number 0")
    # Part numbers out of range, unknown upload ids, another key's upload.
    r = c.curl("PUT", key_path(BUCKET, key), query={"partNumber": "10001", "uploadId": uid}, data=b"x")
    expect_error(r, 400, "InvalidArgument", "part number 10001")
    r = c.curl("PUT", key_path(BUCKET, key), query={"partNumber": "1", "uploadId": "0" * 32}, data=b"x")
    expect_error(r, 404, "NoSuchUpload", "unknown upload id")
    r = c.curl("PUT", key_path(BUCKET, key), query={"partNumber": "1", "uploadId": "nothex"}, data=b"x")
    expect_error(r, 404, "NoSuchUpload", "malformed upload id")
    r = c.curl("PUT", key_path(BUCKET, "err/other"), query={"partNumber": "1", "uploadId": uid}, data=b"x")
    expect_error(r, 404, "NoSuchUpload", "upload id of another key")
    r = c.curl("POST", key_path("nosuchbucket-mpu", key), query={"uploads": None})
    expect_error(r, 404, "NoSuchBucket", "create in a missing bucket")
    # Bad Content-MD5 on a part.
    r = c.curl("PUT", key_path(BUCKET, key), query={"partNumber": "3", "uploadId": uid}, data=b"hello",
               headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
    expect_error(r, 400, "BadDigest", "part with a wrong Content-MD5")
    # The upload is intact after all that: a last-part-only completion works.
    out = complete(c, key, uid, [(2, e2)])
    eq(out.get("ETag"), mpu_etag([big]), "ETag after the failed attempts")
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(big)), "GET after complete")
    # Completed: the id is gone.
    e = complete(c, key, uid, [(2, e2)], ok=False)
    check("NoSuchUpload" in e, "complete twice: %s" % short(e))


@suite.case
def parts_data_freed(c):
    """Superseded parts, parts left out of Complete, aborted uploads, and the
    parts of a replaced or deleted multipart object lose their fragments."""
    nf = c.k + c.m
    base = frag_count(c)
    key = "free/k"
    uid = create(c, key)
    p1 = os.urandom(5 * MiB)
    upload_part(c, key, uid, 1, os.urandom(5 * MiB))
    e1 = upload_part(c, key, uid, 1, p1)  # supersedes the first part 1
    eq(wait_frag_count(c, base + nf), base + nf, "fragments after part 1 was uploaded twice")
    e2 = upload_part(c, key, uid, 2, os.urandom(100))
    e3 = upload_part(c, key, uid, 3, os.urandom(100))
    eq(frag_count(c), base + 3 * nf, "fragments of three parts")
    complete(c, key, uid, [(1, e1), (3, e3)])  # part 2 left out
    eq(wait_frag_count(c, base + 2 * nf), base + 2 * nf, "fragments after part 2 was left out")
    # Replace the multipart object with a small (inline, fragment-less) PUT: both parts' fragments go.
    c.ok(c.curl("PUT", key_path(BUCKET, key), data=b"small now"), "PUT over the multipart object")
    eq(wait_frag_count(c, base), base, "fragments after the multipart object was replaced")
    c.ok(c.curl("DELETE", key_path(BUCKET, key)), "DELETE", status=204)
    eq(wait_frag_count(c, base), base, "fragments after DELETE")

    # Abort frees every part.
    uid = create(c, "free/aborted")
    upload_part(c, "free/aborted", uid, 1, os.urandom(MiB))
    upload_part(c, "free/aborted", uid, 7, os.urandom(MiB))
    eq(frag_count(c), base + 2 * nf, "fragments of two parts")
    c.aws_ok("s3api", "abort-multipart-upload", "--bucket", BUCKET, "--key", "free/aborted", "--upload-id", uid)
    eq(wait_frag_count(c, base), base, "fragments after abort")
    rc, o, e = c.aws("s3api", "list-parts", "--bucket", BUCKET, "--key", "free/aborted", "--upload-id", uid)
    check(rc != 0 and "NoSuchUpload" in e, "list-parts after abort: %s" % short(e))
    rc, o, e = c.aws("s3api", "abort-multipart-upload", "--bucket", BUCKET, "--key", "free/aborted",
                     "--upload-id", uid)
    check(rc != 0 and "NoSuchUpload" in e, "abort twice: %s" % short(e))

    # A multipart object deleted through DeleteObject loses its parts too.
    uid = create(c, "free/mp")
    e1 = upload_part(c, "free/mp", uid, 1, os.urandom(5 * MiB))
    e2 = upload_part(c, "free/mp", uid, 2, os.urandom(10))
    complete(c, "free/mp", uid, [(1, e1), (2, e2)])
    eq(frag_count(c), base + 2 * nf, "fragments of the completed object")
    c.aws_ok("s3api", "delete-object", "--bucket", BUCKET, "--key", "free/mp")
    eq(wait_frag_count(c, base), base, "fragments after delete-object")


@suite.case
def list_uploads_and_bucket(c):
    c.make_bucket("mpu-list")
    ids = {}
    for k in ["a/1", "a/2", "b", "c/d/e"]:
        out = c.aws_ok("s3api", "create-multipart-upload", "--bucket", "mpu-list", "--key", k)
        ids[k] = out["UploadId"]
    out = c.aws_ok("s3api", "list-multipart-uploads", "--bucket", "mpu-list", "--delimiter", "/")
    eq([u["Key"] for u in out.get("Uploads", [])], ["b"], "uploads with delimiter /")
    eq([p["Prefix"] for p in out.get("CommonPrefixes", [])], ["a/", "c/"], "common prefixes")
    out = c.aws_ok("s3api", "list-multipart-uploads", "--bucket", "mpu-list", "--prefix", "a/")
    eq([u["Key"] for u in out.get("Uploads", [])], ["a/1", "a/2"], "uploads with prefix a/")
    st, h, body = c.curl("GET", "/mpu-list", query={"uploads": None, "max-uploads": "2"})
    root = xml_parse(body)
    eq((st, root.findtext("IsTruncated"), root.findtext("NextKeyMarker")), (200, "true", "a/2"), "max-uploads=2")
    st, h, body = c.curl("GET", "/mpu-list", query={"uploads": None, "key-marker": "a/2"})
    eq([u.findtext("Key") for u in xml_parse(body).findall("Upload")], ["b", "c/d/e"], "after key-marker a/2")
    # A bucket with uploads in progress cannot be deleted (their parts hold data).
    rc, o, e = c.aws("s3api", "delete-bucket", "--bucket", "mpu-list")
    check(rc != 0 and "BucketNotEmpty" in e, "delete-bucket with uploads: %s" % short(e))
    for k, uid in ids.items():
        c.aws_ok("s3api", "abort-multipart-upload", "--bucket", "mpu-list", "--key", k, "--upload-id", uid)
    c.aws_ok("s3api", "delete-bucket", "--bucket", "mpu-list")


@suite.case
def upload_part_copy(c):
    src = os.urandom(7 * MiB + 5)
    c.ok(c.curl("PUT", key_path(BUCKET, "copy/src"), data=src, timeout=120), "PUT source")
    key = "copy/dst"
    uid = create(c, key)
    o1 = c.aws_ok("s3api", "upload-part-copy", "--bucket", BUCKET, "--key", key, "--upload-id", uid,
                  "--part-number", "1", "--copy-source", "%s/copy/src" % BUCKET,
                  "--copy-source-range", "bytes=0-%d" % (5 * MiB - 1))
    o2 = c.aws_ok("s3api", "upload-part-copy", "--bucket", BUCKET, "--key", key, "--upload-id", uid,
                  "--part-number", "2", "--copy-source", "%s/copy/src" % BUCKET,
                  "--copy-source-range", "bytes=%d-%d" % (5 * MiB, len(src) - 1))
    e1, e2 = o1["CopyPartResult"]["ETag"], o2["CopyPartResult"]["ETag"]
    eq(e1, '"%s"' % md5(src[:5 * MiB]), "ETag of copied part 1")
    complete(c, key, uid, [(1, e1), (2, e2)])
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(src)), "object assembled from copied parts")
    rc, o, e = c.aws("s3api", "upload-part-copy", "--bucket", BUCKET, "--key", key, "--upload-id", uid,
                     "--part-number", "1", "--copy-source", "%s/copy/src" % BUCKET)
    check(rc != 0 and "NoSuchUpload" in e, "part copy into a completed upload: %s" % short(e))


@suite.case
def composite_checksum(c):
    """An upload created with a checksum algorithm: each part's checksum is
    verified and kept, and the object gets S3's COMPOSITE checksum, the CRC32
    of the parts' raw CRC32s, then -N."""
    import base64
    import struct
    import zlib
    key = "ck/composite"
    parts = [os.urandom(5 * MiB), os.urandom(123)]
    out = c.aws_ok("s3api", "create-multipart-upload", "--bucket", BUCKET, "--key", key,
                   "--checksum-algorithm", "CRC32")
    uid = out["UploadId"]
    eq(out.get("ChecksumAlgorithm"), "CRC32", "ChecksumAlgorithm echoed")
    doc, raws = [], b""
    for i, p in enumerate(parts):
        src = c.tmpfile(p)
        o = c.aws_ok("s3api", "upload-part", "--bucket", BUCKET, "--key", key, "--upload-id", uid,
                     "--part-number", i + 1, "--body", src, "--checksum-algorithm", "CRC32")
        raw = struct.pack(">I", zlib.crc32(p) & 0xFFFFFFFF)
        eq(o.get("ChecksumCRC32"), base64.b64encode(raw).decode(), "part %d checksum" % (i + 1))
        doc.append({"PartNumber": i + 1, "ETag": o["ETag"], "ChecksumCRC32": o["ChecksumCRC32"]})
        raws += raw
    lp = c.aws_ok("s3api", "list-parts", "--bucket", BUCKET, "--key", key, "--upload-id", uid)
    eq([p.get("ChecksumCRC32") for p in lp["Parts"]], [d["ChecksumCRC32"] for d in doc], "checksums in list-parts")
    f = c.tmpfile(json.dumps({"Parts": doc}).encode())
    out = c.aws_ok("s3api", "complete-multipart-upload", "--bucket", BUCKET, "--key", key, "--upload-id", uid,
                   "--multipart-upload", "file://" + f)
    want = base64.b64encode(struct.pack(">I", zlib.crc32(raws) & 0xFFFFFFFF)).decode() + "-2"
    eq(out.get("ChecksumCRC32"), want, "composite checksum of complete-multipart-upload")
    head = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", key, "--checksum-mode", "ENABLED")
    eq(head.get("ChecksumCRC32"), want, "composite checksum of head-object")
    st, h, _ = c.curl("HEAD", key_path(BUCKET, key), headers={"x-amz-checksum-mode": "ENABLED"})
    eq(h.get("x-amz-checksum-type"), "COMPOSITE", "x-amz-checksum-type")
    st, h, _ = c.curl("HEAD", key_path(BUCKET, key))
    check("x-amz-checksum-crc32" not in h and "x-amz-checksum-algorithm" not in h,
          "checksum headers without checksum mode: %r" % h)


@suite.case
def degraded_reads(c):
    """With m nodes down every part is rebuilt from parity, across part boundaries."""
    key = "degraded/k"
    parts = [os.urandom(5 * MiB + 1), os.urandom(2 * MiB + 7)]
    uid = create(c, key)
    etags = [upload_part(c, key, uid, i + 1, p) for i, p in enumerate(parts)]
    complete(c, key, uid, list(zip([1, 2], etags)))
    whole = b"".join(parts)
    down = c.node_names()[:c.m]
    try:
        for n in down:
            c.kill9(n)
        st, got, _ = c.get_sha(BUCKET, key)
        eq((st, got), (200, sha256(whole)), "GET with %s down" % ", ".join(down))
        a, b = len(parts[0]) - 100, len(parts[0]) + 100
        st, h, body = c.curl("GET", key_path(BUCKET, key), headers={"Range": "bytes=%d-%d" % (a, b)})
        check(st == 206 and body == whole[a:b + 1], "degraded Range across the part boundary: %d" % st)
    finally:
        c.restart()


suite.main()
