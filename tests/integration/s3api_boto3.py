#!/usr/bin/python3
"""boto3 against a cairn cluster, run by test_s3api.py with Debian's python3
(python3-boto3). Environment: CAIRN_ENDPOINT, AWS_* credentials, CAIRN_WORK
(a scratch directory). Prints "ok NAME" per check group and exits 1 at the
first failure, with the reason."""

import hashlib
import os
import sys
import traceback
import urllib.request

import boto3
import botocore
from botocore.config import Config

MiB = 1024 * 1024
BUCKET = "boto3-bucket"


def client():
    return boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"],
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                      signature_version="s3v4"))


def fail(msg):
    raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        fail("%s: expected %r, got %r" % (what, want, got))


def error_code(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    fail("%s did not fail" % fn.__name__)


def md5(b):
    return hashlib.md5(b).hexdigest()


def main():
    s3 = client()
    work = os.environ["CAIRN_WORK"]
    s3.create_bucket(Bucket=BUCKET)
    print("ok create_bucket")

    data = os.urandom(3 * MiB + 1)
    for alg in ["CRC32", "CRC32C", "SHA1", "SHA256"]:
        key = "ck/" + alg
        s3.put_object(Bucket=BUCKET, Key=key, Body=data, ChecksumAlgorithm=alg)
        h = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        if "Checksum" + alg not in h:
            fail("head_object lacks Checksum%s: %r" % (alg, h))
        got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        eq(got, data, "get_object after put_object with %s" % alg)
    print("ok checksums")

    r = s3.get_object(Bucket=BUCKET, Key="ck/CRC32", Range="bytes=100-199")
    eq((r["Body"].read(), r["ContentRange"]), (data[100:200], "bytes 100-199/%d" % len(data)), "range")
    eq(error_code(s3.get_object, Bucket=BUCKET, Key="ck/CRC32", Range="bytes=%d-" % len(data)), "InvalidRange",
       "range past the end")
    print("ok ranges")

    # Transfer manager: multipart above 8 MiB both ways.
    src = os.path.join(work, "boto3-big")
    big = os.urandom(20 * MiB + 5)
    with open(src, "wb") as f:
        f.write(big)
    s3.upload_file(src, BUCKET, "big/file")
    dst = src + ".down"
    s3.download_file(BUCKET, "big/file", dst)
    with open(dst, "rb") as f:
        eq(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(big).hexdigest(), "download_file of upload_file")
    if not s3.head_object(Bucket=BUCKET, Key="big/file")["ETag"].endswith('-3"'):
        fail("upload_file of 20 MiB should be 3 parts")
    # GetObject/HeadObject by part number: the transfer manager cut 8 MiB parts.
    h = s3.head_object(Bucket=BUCKET, Key="big/file", PartNumber=2)
    eq((h["ContentLength"], h["PartsCount"]), (8 * MiB, 3), "head_object PartNumber=2")
    r = s3.get_object(Bucket=BUCKET, Key="big/file", PartNumber=3)
    eq((r["Body"].read() == big[16 * MiB:], r["ContentRange"], r["PartsCount"]),
       (True, "bytes %d-%d/%d" % (16 * MiB, len(big) - 1, len(big)), 3), "get_object PartNumber=3")
    eq(error_code(s3.get_object, Bucket=BUCKET, Key="big/file", PartNumber=4), "InvalidPartNumber", "PartNumber=4")
    os.unlink(src)
    os.unlink(dst)
    print("ok transfer_manager")

    # Multipart by hand, with UploadPartCopy.
    mp = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/one", ContentType="text/x-mp")
    uid = mp["UploadId"]
    p1 = os.urandom(5 * MiB)
    e1 = s3.upload_part(Bucket=BUCKET, Key="mp/one", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part_copy(Bucket=BUCKET, Key="mp/one", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": BUCKET, "Key": "ck/CRC32"},
                             CopySourceRange="bytes=0-999")["CopyPartResult"]["ETag"]
    parts = s3.list_parts(Bucket=BUCKET, Key="mp/one", UploadId=uid)["Parts"]
    eq([(p["PartNumber"], p["Size"]) for p in parts], [(1, 5 * MiB), (2, 1000)], "list_parts")
    ups = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    eq([u["UploadId"] for u in ups], [uid], "list_multipart_uploads")
    eq(error_code(s3.complete_multipart_upload, Bucket=BUCKET, Key="mp/one", UploadId=uid,
                  MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]}),
       "InvalidPartOrder", "parts out of order")
    eq(error_code(s3.complete_multipart_upload, Bucket=BUCKET, Key="mp/one", UploadId=uid,
                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e2}]}), "InvalidPart", "wrong etag")
    s3.complete_multipart_upload(Bucket=BUCKET, Key="mp/one", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                                            {"PartNumber": 2, "ETag": e2}]})
    r = s3.get_object(Bucket=BUCKET, Key="mp/one")
    eq((r["Body"].read(), r["ContentType"]), (p1 + data[:1000], "text/x-mp"), "multipart object")
    mp = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/small")
    s1 = s3.upload_part(Bucket=BUCKET, Key="mp/small", UploadId=mp["UploadId"], PartNumber=1, Body=b"a")["ETag"]
    s2 = s3.upload_part(Bucket=BUCKET, Key="mp/small", UploadId=mp["UploadId"], PartNumber=2, Body=b"b")["ETag"]
    eq(error_code(s3.complete_multipart_upload, Bucket=BUCKET, Key="mp/small", UploadId=mp["UploadId"],
                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}]}),
       "EntityTooSmall", "small first part")
    s3.abort_multipart_upload(Bucket=BUCKET, Key="mp/small", UploadId=mp["UploadId"])
    eq(error_code(s3.upload_part, Bucket=BUCKET, Key="mp/small", UploadId=mp["UploadId"], PartNumber=1, Body=b"a"),
       "NoSuchUpload", "part after abort")
    print("ok multipart")

    # Copy, conditionals, batch delete, versions, errors.
    s3.copy_object(Bucket=BUCKET, Key="copy/dst", CopySource={"Bucket": BUCKET, "Key": "ck/SHA1"},
                   MetadataDirective="REPLACE", ContentType="text/plain", Metadata={"k": "v"})
    r = s3.get_object(Bucket=BUCKET, Key="copy/dst")
    eq((r["Body"].read() == data, r["ContentType"], r["Metadata"]), (True, "text/plain", {"k": "v"}), "copy_object")
    etag = s3.head_object(Bucket=BUCKET, Key="copy/dst")["ETag"]
    eq(error_code(s3.get_object, Bucket=BUCKET, Key="copy/dst", IfMatch='"nope"'), "PreconditionFailed", "IfMatch")
    eq(error_code(s3.head_object, Bucket=BUCKET, Key="copy/dst", IfNoneMatch=etag), "304", "IfNoneMatch")
    s3.get_object(Bucket=BUCKET, Key="copy/dst", IfMatch=etag)
    out = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "copy/dst"}, {"Key": "nothing"}]})
    eq(sorted(d["Key"] for d in out["Deleted"]), ["copy/dst", "nothing"], "delete_objects")
    eq(error_code(s3.get_object, Bucket=BUCKET, Key="copy/dst"), "NoSuchKey", "deleted")
    v = s3.list_object_versions(Bucket=BUCKET, Prefix="ck/")
    eq([(x["Key"], x["VersionId"]) for x in v["Versions"]],
       [("ck/" + a, "null") for a in ["CRC32", "CRC32C", "SHA1", "SHA256"]], "list_object_versions")
    eq(s3.get_bucket_versioning(Bucket=BUCKET).get("Status"), None, "versioning status")
    eq(error_code(s3.get_bucket_lifecycle_configuration, Bucket=BUCKET), "NoSuchLifecycleConfiguration", "lifecycle")
    eq(error_code(s3.head_bucket, Bucket="boto3-missing"), "404", "head_bucket of a missing bucket")
    print("ok copy_conditional_delete")

    # Presigned GET and PUT.
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "pre/put"}, ExpiresIn=300)
    req = urllib.request.Request(url, data=b"presigned body", method="PUT")
    urllib.request.urlopen(req, timeout=30).read()
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "pre/put"}, ExpiresIn=300)
    eq(urllib.request.urlopen(url, timeout=30).read(), b"presigned body", "presigned GET")
    print("ok presigned")

    # Clean up, so the bucket can go.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    s3.delete_bucket(Bucket=BUCKET)
    print("ok cleanup")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
