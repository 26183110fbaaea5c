#!/usr/bin/python3
"""boto3 with virtual-hosted-style addressing, run by test_clients.py with
Debian's python3 (python3-boto3). Environment: CAIRN_ENDPOINT (http://
s3.localhost:PORT, a base domain of the gateway), AWS_* credentials,
CAIRN_WORK (scratch). Every request must go to http://BUCKET.s3.localhost:
PORT/...; glibc does not resolve *.localhost here, so this process maps
those names to 127.0.0.1 itself (the Host header stays the name).
Prints "ok NAME" per group; exits 1 at the first failure."""

import hashlib
import os
import socket
import sys
import traceback
import urllib.parse
import urllib.request

_getaddrinfo = socket.getaddrinfo


def _local_getaddrinfo(host, *args, **kw):
    if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kw)


socket.getaddrinfo = _local_getaddrinfo

import boto3  # noqa: E402  (after the resolver hook, which urllib3 picks up at connect time)
import botocore  # noqa: E402
from botocore.config import Config  # noqa: E402

MiB = 1024 * 1024
BUCKET = "vhost-boto3"
seen_hosts = set()


def fail(msg):
    raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        fail("%s: expected %r, got %r" % (what, want, got))


def on_send(request, **kw):
    seen_hosts.add(urllib.parse.urlsplit(request.url).hostname)


def main():
    endpoint = os.environ["CAIRN_ENDPOINT"]
    base = urllib.parse.urlsplit(endpoint).hostname
    s3 = boto3.client("s3", endpoint_url=endpoint,
                      config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4",
                                    retries={"max_attempts": 1}))
    s3.meta.events.register("before-send.s3", on_send)
    s3.create_bucket(Bucket=BUCKET)
    eq(seen_hosts, {BUCKET + "." + base}, "hosts of CreateBucket")
    s3.head_bucket(Bucket=BUCKET)
    # ListBuckets names no bucket: it goes to the base domain itself, path style.
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    if BUCKET not in names:
        fail("list_buckets lacks %s: %r" % (BUCKET, names))
    eq(seen_hosts, {BUCKET + "." + base, base}, "hosts after ListBuckets")
    seen_hosts.discard(base)
    print("ok create_bucket")

    objs = {"plain": os.urandom(1000), "dir/with space ü.txt": b"x" * 20000, "a+b=c&d": os.urandom(70000),
            "trailing/": b"", "dbl//slash": b"two slashes", "~tilde%25": os.urandom(33)}
    for k, v in objs.items():
        s3.put_object(Bucket=BUCKET, Key=k, Body=v, ContentType="application/x-test")
    for k, v in objs.items():
        r = s3.get_object(Bucket=BUCKET, Key=k)
        eq((r["Body"].read(), r["ContentType"]), (v, "application/x-test"), "get_object %r" % k)
        eq(s3.head_object(Bucket=BUCKET, Key=k)["ContentLength"], len(v), "head_object %r" % k)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    eq(sorted(keys), sorted(objs), "list_objects_v2")
    r = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    eq(sorted(p["Prefix"] for p in r.get("CommonPrefixes", [])), ["dbl/", "dir/", "trailing/"], "common prefixes")
    r = s3.get_object(Bucket=BUCKET, Key="a+b=c&d", Range="bytes=10-19")
    eq(r["Body"].read(), objs["a+b=c&d"][10:20], "range")
    print("ok objects")

    # The transfer manager: multipart above 8 MiB, parts fetched by range.
    work = os.environ["CAIRN_WORK"]
    src = os.path.join(work, "vhost-big")
    big = os.urandom(9 * MiB + 11)
    with open(src, "wb") as f:
        f.write(big)
    s3.upload_file(src, BUCKET, "big/file")
    if not s3.head_object(Bucket=BUCKET, Key="big/file")["ETag"].endswith('-2"'):
        fail("upload_file of 9 MiB should be 2 parts")
    dst = src + ".down"
    s3.download_file(BUCKET, "big/file", dst)
    with open(dst, "rb") as f:
        eq(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(big).hexdigest(), "download_file")
    os.unlink(src)
    os.unlink(dst)
    s3.copy_object(Bucket=BUCKET, Key="copy", CopySource={"Bucket": BUCKET, "Key": "plain"})
    eq(s3.get_object(Bucket=BUCKET, Key="copy")["Body"].read(), objs["plain"], "copy_object")
    print("ok multipart_copy")

    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "dir/with space ü.txt"},
                                    ExpiresIn=300)
    eq(urllib.parse.urlsplit(url).hostname, BUCKET + "." + base, "host of the presigned URL")
    eq(urllib.request.urlopen(url, timeout=30).read(), objs["dir/with space ü.txt"], "presigned GET")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "pre/put"}, ExpiresIn=300)
    urllib.request.urlopen(urllib.request.Request(url, data=b"presigned", method="PUT"), timeout=30).read()
    eq(s3.get_object(Bucket=BUCKET, Key="pre/put")["Body"].read(), b"presigned", "presigned PUT")
    print("ok presigned")

    try:
        s3.get_object(Bucket=BUCKET, Key="missing")
        fail("get of a missing key worked")
    except botocore.exceptions.ClientError as e:
        eq(e.response["Error"]["Code"], "NoSuchKey", "missing key")
    s3.delete_object(Bucket=BUCKET, Key="copy")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    if "copy" in keys:
        fail("delete_object left the key")
    out = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    eq(sorted(d["Key"] for d in out["Deleted"]), sorted(keys), "delete_objects")
    s3.delete_bucket(Bucket=BUCKET)
    eq(seen_hosts, {BUCKET + "." + base}, "every request's host")
    print("ok cleanup (%d distinct host: %s)" % (len(seen_hosts), ", ".join(sorted(seen_hosts))))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
