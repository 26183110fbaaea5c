#!/usr/bin/python3
"""Buckets (create, errors, delete), ListObjectsV2 with prefix/delimiter
across pages (curl and the AWS CLI), and keys that need encoding."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import os

from harness import Suite, check, eq, expect_error, key_path, sha256, sha256_file, short, xml_parse

suite = Suite("list")
LB = "listing"
KEYS = [
    "a/1", "a/2", "a/b/3", "a/b/4", "a/c/5", "a/d",
    "b/1", "b/x/y/z",
    "c", "c/", "c//d",
    "d/x/1", "d/x/2", "d/y/1",
    "e1", "e2", "e3", "f-", "f.", "f0",
]


def expected(keys, prefix="", delimiter="", start_after=""):
    """What ListObjectsV2 must return: (sorted keys, sorted common prefixes)."""
    out_keys, prefixes = [], set()
    for k in sorted(keys, key=lambda s: s.encode()):
        if not k.startswith(prefix) or (start_after and k.encode() <= start_after.encode()):
            continue
        rest = k[len(prefix):]
        if delimiter and delimiter in rest:
            prefixes.add(prefix + rest[:rest.index(delimiter) + len(delimiter)])
        else:
            out_keys.append(k)
    return out_keys, sorted(prefixes, key=lambda s: s.encode())


def list_curl(c, bucket, prefix=None, delimiter=None, max_keys=None, start_after=None):
    """Page through ListObjectsV2 with curl; (keys, prefixes, pages)."""
    keys, prefixes, pages, token = [], [], 0, None
    while True:
        q = {"list-type": "2"}
        for name, v in (("prefix", prefix), ("delimiter", delimiter), ("max-keys", max_keys),
                        ("start-after", start_after), ("continuation-token", token)):
            if v is not None:
                q[name] = v
        st, h, body = c.curl("GET", "/" + bucket, query=q)
        what = "ListObjectsV2 %r page %d" % (q, pages + 1)
        c.ok((st, h, body), what)
        root = xml_parse(body)
        check(root is not None and root.tag == "ListBucketResult", "%s: not a ListBucketResult: %s" % (what, short(body)))
        pk = [e.findtext("Key") for e in root.findall("Contents")]
        pp = [e.findtext("Prefix") for e in root.findall("CommonPrefixes")]
        eq(root.findtext("Name"), bucket, "%s <Name>" % what)
        eq(root.findtext("KeyCount"), str(len(pk) + len(pp)), "%s <KeyCount>" % what)
        if max_keys is not None:
            eq(root.findtext("MaxKeys"), str(max_keys), "%s <MaxKeys>" % what)
            check(len(pk) + len(pp) <= int(max_keys), "%s: %d entries > max-keys %s" % (what, len(pk) + len(pp), max_keys))
        if prefix is not None:
            eq(root.findtext("Prefix") or "", prefix, "%s <Prefix>" % what)
        for e in root.findall("Contents"):
            check(e.findtext("ETag") and e.findtext("Size") is not None and e.findtext("LastModified"),
                  "%s: <Contents> without ETag/Size/LastModified" % what)
        keys += pk
        prefixes += pp
        pages += 1
        truncated = root.findtext("IsTruncated")
        check(truncated in ("true", "false"), "%s: <IsTruncated> is %r" % (what, truncated))
        if truncated == "false":
            check(root.find("NextContinuationToken") is None, "%s: NextContinuationToken on the last page" % what)
            break
        token = root.findtext("NextContinuationToken")
        check(token, "%s: truncated but no NextContinuationToken" % what)
        check(pk or pp, "%s: truncated page with nothing in it" % what)
        check(pages < 100, "%s: more than 100 pages" % what)
    return keys, prefixes, pages


@suite.case
def bucket_errors(c):
    expect_error(c.curl("GET", "/nosuchbucket/key"), 404, "NoSuchBucket", "GET in a missing bucket")
    before = c.frag_files()
    expect_error(c.curl("PUT", "/nosuchbucket/key", data=b"x" * 5000), 404, "NoSuchBucket", "PUT in a missing bucket")
    eq(c.new_frags(before), [], "fragments written for a PUT into a missing bucket")
    expect_error(c.curl("GET", "/nosuchbucket", query={"list-type": "2"}), 404, "NoSuchBucket", "list a missing bucket")
    expect_error(c.curl("DELETE", "/nosuchbucket"), 404, "NoSuchBucket", "DELETE a missing bucket")
    st, _, _ = c.curl("HEAD", "/nosuchbucket")
    eq(st, 404, "HEAD of a missing bucket")

    c.make_bucket("bkt-errors")
    st, _, _ = c.curl("HEAD", "/bkt-errors")
    eq(st, 200, "HEAD of an existing bucket")
    expect_error(c.curl("PUT", "/bkt-errors"), 409, "BucketAlreadyOwnedByYou", "create the same bucket twice")
    for bad in ("Bad_Name", "ab", "-abc", "abc-", "UPPER", "a..b", "192.168.5.4", "x" * 64, "a_b"):
        expect_error(c.curl("PUT", "/" + bad), 400, "InvalidBucketName", "create bucket %r" % bad)
    c.make_bucket("a.b-c1")
    c.make_bucket("x" * 63)

    c.ok(c.curl("PUT", key_path("bkt-errors", "obj"), data=b"hello"), "PUT obj")
    expect_error(c.curl("DELETE", "/bkt-errors"), 409, "BucketNotEmpty", "DELETE a non-empty bucket")
    st, _, _ = c.curl("HEAD", "/bkt-errors")
    eq(st, 200, "HEAD of the bucket after a refused DELETE")
    c.ok(c.curl("DELETE", key_path("bkt-errors", "obj")), "DELETE obj", status=204)
    c.ok(c.curl("DELETE", "/bkt-errors"), "DELETE the emptied bucket", status=204)
    st, _, _ = c.curl("HEAD", "/bkt-errors")
    eq(st, 404, "HEAD of a deleted bucket")
    expect_error(c.curl("GET", "/bkt-errors", query={"list-type": "2"}), 404, "NoSuchBucket", "list a deleted bucket")

    # The same through the AWS CLI.
    c.aws_ok("s3", "mb", "s3://bkt-aws")
    rc, o, e = c.aws("s3api", "create-bucket", "--bucket", "bkt-aws")
    check(rc != 0 and "BucketAlreadyOwnedByYou" in e, "aws create-bucket twice: rc %d %s" % (rc, short(e)))
    rc, o, e = c.aws("s3api", "create-bucket", "--bucket", "Bad_Name")
    check(rc != 0 and "InvalidBucketName" in e, "aws create-bucket Bad_Name: rc %d %s" % (rc, short(e)))
    c.aws_ok("s3api", "put-object", "--bucket", "bkt-aws", "--key", "k", "--body", c.tmpfile(b"abc"))
    rc, o, e = c.aws("s3api", "delete-bucket", "--bucket", "bkt-aws")
    check(rc != 0 and "BucketNotEmpty" in e, "aws delete-bucket non-empty: rc %d %s" % (rc, short(e)))
    c.aws_ok("s3", "rm", "--only-show-errors", "s3://bkt-aws/k")
    c.aws_ok("s3", "rb", "s3://bkt-aws")
    rc, o, e = c.aws("s3api", "list-objects-v2", "--bucket", "bkt-aws")
    check(rc != 0 and "NoSuchBucket" in e, "aws list-objects-v2 of a removed bucket: rc %d %s" % (rc, short(e)))


@suite.case
def list_buckets(c):
    for b in ("lb-one", "lb-two"):
        c.make_bucket(b)
    st, h, body = c.ok(c.curl("GET", "/"), "ListBuckets")
    root = xml_parse(body)
    check(root is not None and root.tag == "ListAllMyBucketsResult", "ListBuckets: %s" % short(body))
    names = [b.findtext("Name") for b in root.iter("Bucket")]
    for b in ("lb-one", "lb-two", "a.b-c1"):
        check(b in names, "ListBuckets lacks %s: %s" % (b, names))
    check("bkt-errors" not in names, "ListBuckets still shows deleted bkt-errors: %s" % names)
    eq(names, sorted(names), "ListBuckets order")
    out = c.aws_ok("s3api", "list-buckets")
    got = [b["Name"] for b in out.get("Buckets", [])]
    eq(got, names, "aws list-buckets names")


@suite.case
def make_list_objects(c):
    c.make_bucket(LB)
    for k in KEYS:
        c.ok(c.curl("PUT", key_path(LB, k), data=k.encode()), "PUT %s" % k)


COMBOS = [
    dict(),
    dict(delimiter="/"),
    dict(prefix="a/"),
    dict(prefix="a/", delimiter="/"),
    dict(prefix="a/b", delimiter="/"),
    dict(prefix="c", delimiter="/"),
    dict(prefix="c/", delimiter="/"),
    dict(prefix="d/", delimiter="/"),
    dict(prefix="e"),
    dict(prefix="nothing"),
    dict(delimiter="x"),
]


@suite.case
def list_curl_pages(c):
    for combo in COMBOS:
        want = expected(KEYS, combo.get("prefix", ""), combo.get("delimiter", ""))
        for mk in (None, 1, 2, 3):
            keys, prefixes, pages = list_curl(c, LB, max_keys=mk, **combo)
            eq((keys, prefixes), want, "curl list %r max-keys %s (%d pages)" % (combo, mk, pages))
            if mk is not None:
                n = len(want[0]) + len(want[1])
                check(pages >= -(-n // mk), "curl list %r max-keys %s: %d entries in %d pages" % (combo, mk, n, pages))
    # start-after
    keys, prefixes, _ = list_curl(c, LB, max_keys=2, start_after="b/1")
    eq((keys, prefixes), expected(KEYS, start_after="b/1"), "curl list start-after b/1")


def aws_list(c, *extra):
    out = c.aws_ok("s3api", "list-objects-v2", "--bucket", LB, *extra)
    out = out or {}
    return ([o["Key"] for o in out.get("Contents", [])], [p["Prefix"] for p in out.get("CommonPrefixes", [])])


@suite.case
def list_aws_pages(c):
    for combo in COMBOS:
        args = []
        if "prefix" in combo:
            args += ["--prefix", combo["prefix"]]
        if "delimiter" in combo:
            args += ["--delimiter", combo["delimiter"]]
        want = expected(KEYS, combo.get("prefix", ""), combo.get("delimiter", ""))
        # Paginated by the CLI, merged.
        got = aws_list(c, *(args + ["--page-size", "2"]))
        eq((got[0], sorted(got[1])), want, "aws list-objects-v2 %r --page-size 2" % combo)
        # One page at a time with --max-keys and --continuation-token.
        keys, prefixes, token, pages = [], [], None, 0
        while True:
            a = args + ["--max-keys", "2", "--no-paginate"] + (["--continuation-token", token] if token else [])
            out = c.aws_ok("s3api", "list-objects-v2", "--bucket", LB, *a) or {}
            page = [o["Key"] for o in out.get("Contents", [])] + [p["Prefix"] for p in out.get("CommonPrefixes", [])]
            check(len(page) <= 2, "aws --max-keys 2 returned %d entries" % len(page))
            keys += [o["Key"] for o in out.get("Contents", [])]
            prefixes += [p["Prefix"] for p in out.get("CommonPrefixes", [])]
            pages += 1
            if not out.get("IsTruncated"):
                break
            token = out.get("NextContinuationToken")
            check(token and pages < 100, "aws page %d: truncated without a token" % pages)
        eq((keys, prefixes), want, "aws list-objects-v2 %r --max-keys 2 by hand" % combo)
    # --max-items stops early and hands out a resume token.
    out = c.aws_ok("s3api", "list-objects-v2", "--bucket", LB, "--max-items", "3", "--page-size", "2")
    eq([o["Key"] for o in out.get("Contents", [])], sorted(KEYS)[:3], "aws --max-items 3")
    check(out.get("NextToken"), "aws --max-items 3: no NextToken")
    # aws s3 ls
    rc, o, e = c.aws("s3", "ls", "s3://%s/a/" % LB)
    check(rc == 0, "aws s3 ls: %s" % short(e))
    lines = [l.split()[-1] for l in o.splitlines() if l.strip()]
    eq(sorted(lines), sorted(["b/", "c/", "1", "2", "d"]), "aws s3 ls s3://%s/a/" % LB)


SPECIAL = [
    "with space",
    "two  spaces and trailing ",
    "plus+sign",
    "a+b c",
    "percent%20literal",
    "100%",
    "%2F",
    "double//slash",
    "/leading-slash",
    "trailing/",
    "dot/./segment",
    "dots/../up",
    "unicodé/日本語/ファイル",
    "emoji-\U0001F600",
    "tilde~star*quote'paren()",
    "amp&eq=semi;colon:at@dollar$comma,",
    "question?hash#",
    "brackets[]{}|^`\\",
    "caret<>\"",
]


@suite.case
def special_keys(c):
    c.make_bucket("special")
    datas = {}
    for i, k in enumerate(SPECIAL):
        data = os.urandom(100 + i)
        datas[k] = data
        src = c.tmpfile(data)
        c.aws_ok("s3api", "put-object", "--bucket", "special", "--key", k, "--body", src)
    for k in SPECIAL:
        dst = c.tmpfile(suffix=".sp")
        out = c.aws_ok("s3api", "get-object", "--bucket", "special", "--key", k, dst)
        eq(sha256_file(dst), sha256(datas[k]), "aws get-object %r" % k)
        out = c.aws_ok("s3api", "head-object", "--bucket", "special", "--key", k)
        eq(out.get("ContentLength"), len(datas[k]), "aws head-object %r ContentLength" % k)
        # The same key through curl, path encoded with the SigV4 rules.
        st, h, body = c.curl("GET", key_path("special", k))
        eq((st, sha256(body)), (200, sha256(datas[k])), "curl GET %r" % k)
    out = c.aws_ok("s3api", "list-objects-v2", "--bucket", "special") or {}
    got = [o["Key"] for o in out.get("Contents", [])]
    eq(got, sorted(SPECIAL, key=lambda s: s.encode()), "aws list-objects-v2 of special keys")
    # Keys are at most 1024 bytes of UTF-8.
    longest = "k/" + "é" * 511  # 1024 bytes
    c.aws_ok("s3api", "put-object", "--bucket", "special", "--key", longest, "--body", c.tmpfile(b"long"))
    st, h, body = c.curl("GET", key_path("special", longest))
    eq((st, body), (200, b"long"), "GET of a 1024-byte key")
    c.aws_ok("s3api", "delete-object", "--bucket", "special", "--key", longest)
    expect_error(c.curl("PUT", key_path("special", longest + "x"), data=b"x"), 400, "KeyTooLongError",
                 "PUT of a 1025-byte key")
    # A key is not a path: "a//b", "a/./b" and "a/../b" are distinct objects.
    check(c.curl("GET", key_path("special", "double/slash"))[0] == 404, "double//slash was normalised")
    check(c.curl("GET", key_path("special", "up"))[0] == 404, "dots/../up was normalised")
    for k in SPECIAL:
        c.aws_ok("s3api", "delete-object", "--bucket", "special", "--key", k)
    out = c.aws_ok("s3api", "list-objects-v2", "--bucket", "special") or {}
    eq(out.get("Contents", []), [], "special bucket after deleting every key")


if __name__ == "__main__":
    suite.main()
