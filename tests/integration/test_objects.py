#!/usr/bin/python3
"""Objects through curl --aws-sigv4 and the AWS CLI: PUT/GET of many sizes,
HEAD, metadata, overwrite and delete (with their fragment files), Range GETs."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import os
import time

from harness import (INLINE_MAX, KiB, MiB, Suite, TestFailure, check, eq, expect_error, key_path, md5, sha256, sha256_file,
                     short, xml_parse)

suite = Suite("objects")
BUCKET = "objects"
SIZES = [0, 1, 4095, 4096, MiB + 1, 64 * MiB]


def data_of(size):
    return os.urandom(size)


def aws_download_sha(c, bucket, key):
    """aws s3 cp s3://bucket/key to a file; its sha256."""
    p = c.tmpfile(suffix=".awsget")
    c.aws_ok("s3", "cp", "--only-show-errors", "s3://%s/%s" % (bucket, key), p, timeout=180)
    d = sha256_file(p)
    os.unlink(p)
    return d


def wait_gone(paths, seconds=15):
    """Poll until none of paths exist; the ones still there."""
    deadline = time.time() + seconds
    while True:
        left = [p for p in paths if os.path.exists(p)]
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


@suite.case
def create_bucket(c):
    c.make_bucket(BUCKET)


@suite.case
def put_get_sizes_curl(c):
    for size in SIZES:
        data = data_of(size)
        key = "curl/size-%d" % size
        st, h, body = c.ok(c.curl("PUT", key_path(BUCKET, key), data=data, timeout=180), "curl PUT %s" % key)
        eq(h.get("etag"), '"%s"' % md5(data), "ETag of curl PUT %s" % key)
        st, got, h = c.get_sha(BUCKET, key)
        eq(st, 200, "curl GET %s status" % key)
        eq(got, sha256(data), "sha256 of curl GET %s (%d bytes)" % (key, size))
        eq(h.get("content-length"), str(size), "Content-Length of GET %s" % key)
        eq(aws_download_sha(c, BUCKET, key), sha256(data), "sha256 of aws s3 cp download of %s" % key)


@suite.case
def put_get_sizes_aws(c):
    for size in SIZES:
        data = data_of(size)
        src = c.tmpfile(data)
        key = "aws/size-%d" % size
        out = c.aws_ok("s3api", "put-object", "--bucket", BUCKET, "--key", key, "--body", src, timeout=180)
        eq(out.get("ETag"), '"%s"' % md5(data), "ETag of aws put-object %s" % key)
        st, got, _ = c.get_sha(BUCKET, key)
        eq(st, 200, "curl GET %s status" % key)
        eq(got, sha256(data), "sha256 of curl GET %s (%d bytes)" % (key, size))
        eq(aws_download_sha(c, BUCKET, key), sha256(data), "sha256 of aws s3 cp download of %s" % key)
        if size <= MiB + 1:
            dst = c.tmpfile(suffix=".getobj")
            c.aws_ok("s3api", "get-object", "--bucket", BUCKET, "--key", key, dst)
            eq(sha256_file(dst), sha256(data), "sha256 of aws s3api get-object %s" % key)
            # aws s3 cp upload (a single PUT below the CLI's multipart threshold)
            key2 = "awscp/size-%d" % size
            c.aws_ok("s3", "cp", "--only-show-errors", src, "s3://%s/%s" % (BUCKET, key2))
            st, got, _ = c.get_sha(BUCKET, key2)
            eq((st, got), (200, sha256(data)), "curl GET of aws s3 cp upload %s" % key2)
        os.unlink(src)


@suite.case
def head_etag_and_metadata(c):
    data = data_of(5000)
    key = "meta/one"
    hdrs = {"Content-Type": "text/plain; charset=utf-8", "x-amz-meta-color": "blue",
            "x-amz-meta-Mixed-Case": "Value With Spaces"}
    c.ok(c.curl("PUT", key_path(BUCKET, key), data=data, headers=hdrs), "PUT with metadata")
    for method in ("HEAD", "GET"):
        st, h, body = c.curl(method, key_path(BUCKET, key))
        eq(st, 200, "%s status" % method)
        eq(h.get("content-length"), "5000", "%s Content-Length" % method)
        eq(h.get("etag"), '"%s"' % md5(data), "%s ETag" % method)
        eq(h.get("content-type"), "text/plain; charset=utf-8", "%s Content-Type" % method)
        eq(h.get("x-amz-meta-color"), "blue", "%s x-amz-meta-color" % method)
        eq(h.get("x-amz-meta-mixed-case"), "Value With Spaces", "%s x-amz-meta-mixed-case" % method)
        check("last-modified" in h, "%s: no Last-Modified header" % method)
        if method == "GET":
            eq(sha256(body), sha256(data), "GET body")
    out = c.aws_ok("s3api", "head-object", "--bucket", BUCKET, "--key", key)
    eq(out.get("ContentLength"), 5000, "aws head-object ContentLength")
    eq(out.get("ETag"), '"%s"' % md5(data), "aws head-object ETag")
    eq(out.get("ContentType"), "text/plain; charset=utf-8", "aws head-object ContentType")
    eq(out.get("Metadata"), {"color": "blue", "mixed-case": "Value With Spaces"}, "aws head-object Metadata")

    # The same through the AWS CLI, read back with curl.
    src = c.tmpfile(data)
    c.aws_ok("s3api", "put-object", "--bucket", BUCKET, "--key", "meta/two", "--body", src,
             "--content-type", "image/png", "--metadata", "k1=v1,k2=second value")
    st, h, _ = c.curl("HEAD", key_path(BUCKET, "meta/two"))
    eq(st, 200, "HEAD meta/two")
    eq(h.get("content-type"), "image/png", "Content-Type of aws put-object")
    eq((h.get("x-amz-meta-k1"), h.get("x-amz-meta-k2")), ("v1", "second value"), "metadata of aws put-object")

    # HEAD of a missing key / bucket: 404 without a body.
    st, h, _ = c.curl("HEAD", key_path(BUCKET, "meta/missing"))
    eq(st, 404, "HEAD of a missing key")
    st, h, _ = c.curl("HEAD", key_path("no-such-bucket-here", "x"))
    eq(st, 404, "HEAD of a key in a missing bucket")


@suite.case
def content_md5(c):
    import base64
    import hashlib
    data = data_of(10000)
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    c.ok(c.curl("PUT", key_path(BUCKET, "md5/good"), data=data, headers={"Content-MD5": good}), "PUT with Content-MD5")
    before = c.frag_files()
    expect_error(c.curl("PUT", key_path(BUCKET, "md5/bad"), data=data, headers={"Content-MD5": bad}), 400, "BadDigest",
                 "PUT with a wrong Content-MD5")
    expect_error(c.curl("GET", key_path(BUCKET, "md5/bad")), 404, "NoSuchKey", "GET after a BadDigest PUT")
    left = wait_gone([f.path for f in c.new_frags(before)])
    eq(left, [], "fragment files left behind by a BadDigest PUT")


@suite.case
def overwrite(c):
    key = "over/write"
    v1 = data_of(3 * MiB + 17)
    r, f1 = c.put_find_frags(BUCKET, key, v1)
    c.ok(r, "PUT v1")
    eq(len(f1), c.k + c.m, "fragment files of v1 (%s)" % f1)
    eq(sorted(f.index for f in f1), list(range(c.k + c.m)), "fragment indexes of v1")
    eq(len(set(f.node for f in f1)), c.k + c.m, "distinct nodes holding v1 (%s)" % f1)
    eq(len(set(f.oid for f in f1)), 1, "one object id for v1")
    for f in f1:
        h = f.header()
        eq((h["magic"], h["version"], h["hsize"]), (0x464E5243, 1, 64), "%s header magic/version/size" % f)
        eq((h["oid"], h["index"], h["k"], h["m"], h["object_size"]), (f.oid, f.index, c.k, c.m, len(v1)),
           "%s header fields" % f)
        blocks = f.blocks()
        want = blocks[-1][0] + blocks[-1][1] + 8 if blocks else 64
        eq(os.path.getsize(f.path), want, "%s file size (header + blocks + checksums)" % f)

    v2 = data_of(INLINE_MAX + 777)
    r, f2 = c.put_find_frags(BUCKET, key, v2)
    c.ok(r, "PUT v2 (overwrite)")
    eq(len(f2), c.k + c.m, "fragment files of v2")
    check(f2[0].oid != f1[0].oid, "overwrite reused the object id %s" % f1[0].oid)
    st, got, h = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(v2)), "GET after overwrite")
    eq(h.get("etag"), '"%s"' % md5(v2), "ETag after overwrite")
    left = wait_gone([f.path for f in f1])
    eq(left, [], "fragment files of the overwritten version still on disk")

    # Overwrite through the AWS CLI too.
    v3 = data_of(MiB + 5)
    before = c.frag_files()
    c.aws_ok("s3api", "put-object", "--bucket", BUCKET, "--key", key, "--body", c.tmpfile(v3))
    eq(len(c.new_frags(before)), c.k + c.m, "fragment files of v3")
    st, got, _ = c.get_sha(BUCKET, key)
    eq((st, got), (200, sha256(v3)), "GET after aws overwrite")
    eq(wait_gone([f.path for f in f2]), [], "fragment files of v2 still on disk")


@suite.case
def inline_small_objects(c):
    """Objects up to INLINE_MAX live in their metadata record: no fragment
    files, and overwrites between the two forms leave nothing behind."""
    key = "inline/obj"
    small, big = data_of(INLINE_MAX), data_of(INLINE_MAX + 1)
    r, f = c.put_find_frags(BUCKET, key, small)
    c.ok(r, "PUT inline")
    eq(f, [], "fragment files of an object of INLINE_MAX bytes")
    eq(c.get_sha(BUCKET, key)[:2], (200, sha256(small)), "GET inline")
    st, h, body = c.curl("GET", key_path(BUCKET, key), headers={"Range": "bytes=100-4195"})
    eq((st, body), (206, small[100:4196]), "Range GET of an inline object")
    r, f = c.put_find_frags(BUCKET, key, big)
    c.ok(r, "PUT over inline")
    eq(len(f), c.k + c.m, "fragment files of an object of INLINE_MAX + 1 bytes")
    eq(c.get_sha(BUCKET, key)[:2], (200, sha256(big)), "GET after inline -> fragments")
    r, f2 = c.put_find_frags(BUCKET, key, small)
    c.ok(r, "PUT inline over fragments")
    eq(f2, [], "fragment files of the inline overwrite")
    eq(wait_gone([x.path for x in f]), [], "fragments of the overwritten version still on disk")
    eq(c.get_sha(BUCKET, key)[:2], (200, sha256(small)), "GET after fragments -> inline")
    c.ok(c.curl("DELETE", key_path(BUCKET, key)), "DELETE inline", status=204)
    expect_error(c.curl("GET", key_path(BUCKET, key)), 404, "NoSuchKey", "GET after DELETE of an inline object")


@suite.case
def delete(c):
    key = "del/me"
    data = data_of(2 * MiB + 3)
    r, frags = c.put_find_frags(BUCKET, key, data)
    c.ok(r, "PUT")
    eq(len(frags), c.k + c.m, "fragment files")
    c.ok(c.curl("DELETE", key_path(BUCKET, key)), "DELETE", status=204)
    st, h, body = c.curl("GET", key_path(BUCKET, key))
    expect_error((st, h, body), 404, "NoSuchKey", "GET after DELETE")
    root = xml_parse(body)
    eq(root.findtext("Key"), key, "<Key> of the NoSuchKey error")
    check(h.get("content-type", "").startswith(("application/xml", "text/xml")),
          "NoSuchKey Content-Type is %r, not XML" % h.get("content-type"))
    st, _, _ = c.curl("HEAD", key_path(BUCKET, key))
    eq(st, 404, "HEAD after DELETE")
    eq(wait_gone([f.path for f in frags]), [], "fragment files of a deleted object still on disk")
    # Deleting what is not there succeeds (S3: 204).
    c.ok(c.curl("DELETE", key_path(BUCKET, key)), "DELETE of a missing key", status=204)

    # Through the AWS CLI.
    src = c.tmpfile(data_of(100))
    c.aws_ok("s3api", "put-object", "--bucket", BUCKET, "--key", "del/aws", "--body", src)
    c.aws_ok("s3api", "delete-object", "--bucket", BUCKET, "--key", "del/aws")
    rc, o, e = c.aws("s3api", "get-object", "--bucket", BUCKET, "--key", "del/aws", c.tmpfile(suffix=".x"))
    check(rc != 0 and "NoSuchKey" in e, "aws get-object after delete-object: rc %d, %s" % (rc, short(e)))
    rc, o, e = c.aws("s3api", "head-object", "--bucket", BUCKET, "--key", "del/aws")
    check(rc != 0 and "404" in e, "aws head-object after delete-object: rc %d, %s" % (rc, short(e)))


def find_block_size(c, frags):
    return frags[0].header()["block_size"]


@suite.case
def range_gets(c):
    key = "range/obj"
    before = c.frag_files()
    probe = data_of(INLINE_MAX + 10)
    c.ok(c.curl("PUT", key_path(BUCKET, "range/probe"), data=probe), "PUT probe")
    pf = c.new_frags(before)
    check(pf, "no fragment files for range/probe")
    B = find_block_size(c, pf)
    S = c.k * B  # stripe
    eq(S, 4 * 256 * KiB, "stripe size k*B")
    size = 3 * S + 12345
    data = data_of(size)
    c.ok(c.curl("PUT", key_path(BUCKET, key), data=data), "PUT range object")

    cases = [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=%d-%d" % (B - 5, B + 5), B - 5, B + 5),                 # across a block boundary
        ("bytes=%d-%d" % (S - 1, S), S - 1, S),                         # across a stripe boundary
        ("bytes=%d-%d" % (S - 100, 2 * S + 100), S - 100, 2 * S + 100),  # three stripes
        ("bytes=%d-%d" % (3 * S - 7, 3 * S + 7), 3 * S - 7, 3 * S + 7),  # into the short last stripe
        ("bytes=%d-" % (2 * S + 3), 2 * S + 3, size - 1),
        ("bytes=%d-" % (size - 1), size - 1, size - 1),
        ("bytes=-1", size - 1, size - 1),
        ("bytes=-%d" % (S + 1), size - S - 1, size - 1),
        ("bytes=-%d" % (size + 1000), 0, size - 1),                    # suffix longer than the object
        ("bytes=%d-%d" % (size - 10, size + 1000), size - 10, size - 1),  # end past the end: clamped
        ("bytes=0-%d" % (size - 1), 0, size - 1),
    ]
    for rng, a, b in cases:
        st, h, body = c.curl("GET", key_path(BUCKET, key), headers={"Range": rng})
        eq(st, 206, "status of Range %s" % rng)
        eq(h.get("content-range"), "bytes %d-%d/%d" % (a, b, size), "Content-Range of %s" % rng)
        eq(h.get("content-length"), str(b - a + 1), "Content-Length of %s" % rng)
        if body != data[a:b + 1]:
            raise TestFailure("Range %s: body differs (%d bytes, want %d)" % (rng, len(body), b - a + 1))

    for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size, size + 10), "bytes=%d-%d" % (size + 100, size + 200)):
        expect_error(c.curl("GET", key_path(BUCKET, key), headers={"Range": rng}), 416, "InvalidRange",
                     "Range %s beyond the end" % rng)
    # A range of an empty object cannot be satisfied.
    c.ok(c.curl("PUT", key_path(BUCKET, "range/empty"), data=b""), "PUT empty")
    expect_error(c.curl("GET", key_path(BUCKET, "range/empty"), headers={"Range": "bytes=0-0"}), 416, "InvalidRange",
                 "Range bytes=0-0 of an empty object")

    # The AWS CLI's --range.
    dst = c.tmpfile(suffix=".rng")
    out = c.aws_ok("s3api", "get-object", "--bucket", BUCKET, "--key", key, "--range",
                   "bytes=%d-%d" % (S - 3, 2 * S + 3), dst)
    eq(out.get("ContentRange"), "bytes %d-%d/%d" % (S - 3, 2 * S + 3, size), "aws get-object ContentRange")
    with open(dst, "rb") as f:
        check(f.read() == data[S - 3:2 * S + 4], "aws get-object --range: body differs")


@suite.case
def parallel_puts_and_gets(c):
    import concurrent.futures
    objs = {"par/%02d" % i: data_of(i * 150000 + 7) for i in range(16)}

    def put(kv):
        k, d = kv
        st, h, body = c.curl("PUT", key_path(BUCKET, k), data=d)
        return k, st, h.get("etag"), body

    def get(k):
        st, got, h = c.get_sha(BUCKET, k)
        return k, st, got

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        for k, st, etag, body in ex.map(put, objs.items()):
            check(st == 200 and etag == '"%s"' % md5(objs[k]), "parallel PUT %s -> %d %s %s" % (k, st, etag, short(body)))
        for _ in range(2):
            for k, st, got in ex.map(get, sorted(objs)):
                eq((st, got), (200, sha256(objs[k])), "parallel GET %s" % k)


@suite.case
def client_aborts(c):
    big = "curl/size-%d" % (64 * MiB)
    # A GET abandoned after a second, at 1 MB/s.
    st, h, _ = c.curl("GET", key_path(BUCKET, big), out=c.tmpfile(suffix=".abort"), timeout=1,
                      extra=["--limit-rate", "1M"], allow_error=True)
    eq(st, -28, "curl exit status of an abandoned GET (28: timeout)")
    # A PUT abandoned half way: nothing is created.
    st, h, _ = c.curl("PUT", key_path(BUCKET, "abort/put"), data=data_of(8 * MiB), timeout=1,
                      extra=["--limit-rate", "1M"], allow_error=True)
    eq(st, -28, "curl exit status of an abandoned PUT")
    time.sleep(0.5)
    expect_error(c.curl("GET", key_path(BUCKET, "abort/put")), 404, "NoSuchKey", "GET of an abandoned PUT")
    # The gateway still serves, whole objects included.
    st, h, _ = c.curl("HEAD", key_path(BUCKET, big))
    eq((st, h.get("content-length")), (200, str(64 * MiB)), "HEAD after the aborts")
    st, h, body = c.curl("GET", key_path(BUCKET, big), headers={"Range": "bytes=0-99"})
    eq((st, len(body)), (206, 100), "Range GET after the aborts")


if __name__ == "__main__":
    suite.main()
