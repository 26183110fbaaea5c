#!/usr/bin/python3
"""Authentication: wrong secrets and unknown keys are refused and change
nothing; garbage Authorization headers get a 4xx XML error (never a 5xx or a
hang); every answer carries x-amz-request-id and the id is in the gateway log."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import datetime
import time

from harness import Suite, TestFailure, check, eq, expect_error, key_path, short, xml_error_code, xml_parse

suite = Suite("auth")
BUCKET = "authz"
WRONG = "x" * 40


def amz_date():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def wait_no_new_frags(c, before, seconds=5):
    deadline = time.time() + seconds
    while True:
        new = c.new_frags(before)
        if not new or time.time() > deadline:
            return new
        time.sleep(0.2)


@suite.case
def setup(c):
    c.make_bucket(BUCKET)
    c.ok(c.curl("PUT", key_path(BUCKET, "existing"), data=b"original content"), "PUT existing")


@suite.case
def wrong_secret_curl(c):
    before = c.frag_files()
    # A new object is not created.
    r = c.curl("PUT", key_path(BUCKET, "new-with-bad-sig"), data=b"A" * 70000, sk=WRONG)
    expect_error(r, 403, "SignatureDoesNotMatch", "PUT with a wrong secret")
    expect_error(c.curl("GET", key_path(BUCKET, "new-with-bad-sig")), 404, "NoSuchKey", "GET after a refused PUT")
    # An existing object is not changed, nor deleted.
    r = c.curl("PUT", key_path(BUCKET, "existing"), data=b"evil content", sk=WRONG)
    expect_error(r, 403, "SignatureDoesNotMatch", "overwrite with a wrong secret")
    r = c.curl("DELETE", key_path(BUCKET, "existing"), sk=WRONG)
    expect_error(r, 403, "SignatureDoesNotMatch", "DELETE with a wrong secret")
    st, h, body = c.curl("GET", key_path(BUCKET, "existing"))
    eq((st, body), (200, b"original content"), "existing object after refused writes")
    # Reads are refused too.
    expect_error(c.curl("GET", key_path(BUCKET, "existing"), sk=WRONG), 403, "SignatureDoesNotMatch",
                 "GET with a wrong secret")
    expect_error(c.curl("GET", "/" + BUCKET, query={"list-type": "2"}, sk=WRONG), 403, "SignatureDoesNotMatch",
                 "list with a wrong secret")
    # Buckets are neither created nor deleted.
    expect_error(c.curl("PUT", "/bad-sig-bucket", sk=WRONG), 403, "SignatureDoesNotMatch", "create bucket, wrong secret")
    eq(c.curl("HEAD", "/bad-sig-bucket")[0], 404, "HEAD of a bucket whose creation was refused")
    c.make_bucket("empty-victim")
    expect_error(c.curl("DELETE", "/empty-victim", sk=WRONG), 403, "SignatureDoesNotMatch", "delete bucket, wrong secret")
    eq(c.curl("HEAD", "/empty-victim")[0], 200, "HEAD of a bucket whose deletion was refused")
    eq(wait_no_new_frags(c, before), [], "fragment files left by refused PUTs")

    # A -T upload: curl signs sha256("") for it; a wrong secret is still refused.
    r = c.curl("PUT", key_path(BUCKET, "existing"), file=c.tmpfile(b"evil via -T"), upload=True, sk=WRONG)
    expect_error(r, 403, "SignatureDoesNotMatch", "-T upload with a wrong secret")
    st, h, body = c.curl("GET", key_path(BUCKET, "existing"))
    eq((st, body), (200, b"original content"), "existing object after a refused -T upload")


@suite.case
def wrong_secret_aws(c):
    before = c.frag_files()
    src = c.tmpfile(b"B" * 5000)
    rc, o, e = c.aws("s3api", "put-object", "--bucket", BUCKET, "--key", "aws-bad", "--body", src, sk=WRONG)
    check(rc != 0 and "SignatureDoesNotMatch" in e, "aws put-object with a wrong secret: rc %d %s" % (rc, short(e)))
    rc, o, e = c.aws("s3api", "put-object", "--bucket", BUCKET, "--key", "existing", "--body", src, sk=WRONG)
    check(rc != 0 and "SignatureDoesNotMatch" in e, "aws overwrite with a wrong secret: rc %d %s" % (rc, short(e)))
    rc, o, e = c.aws("s3api", "delete-object", "--bucket", BUCKET, "--key", "existing", sk=WRONG)
    check(rc != 0 and "SignatureDoesNotMatch" in e, "aws delete-object with a wrong secret: rc %d %s" % (rc, short(e)))
    rc, o, e = c.aws("s3api", "list-objects-v2", "--bucket", BUCKET, sk=WRONG)
    check(rc != 0 and "SignatureDoesNotMatch" in e, "aws list with a wrong secret: rc %d %s" % (rc, short(e)))
    expect_error(c.curl("GET", key_path(BUCKET, "aws-bad")), 404, "NoSuchKey", "GET after a refused aws PUT")
    st, h, body = c.curl("GET", key_path(BUCKET, "existing"))
    eq((st, body), (200, b"original content"), "existing object after refused aws writes")
    eq(wait_no_new_frags(c, before), [], "fragment files left by refused aws PUTs")


@suite.case
def unknown_access_key(c):
    for ak in ("AKIDDOESNOTEXIST000", "CAIRN" + "Z" * 15):
        expect_error(c.curl("GET", key_path(BUCKET, "existing"), ak=ak), 403, "InvalidAccessKeyId",
                     "GET with unknown access key %s" % ak)
        expect_error(c.curl("PUT", key_path(BUCKET, "unknown-ak"), data=b"zz", ak=ak), 403, "InvalidAccessKeyId",
                     "PUT with unknown access key %s" % ak)
    expect_error(c.curl("GET", key_path(BUCKET, "unknown-ak")), 404, "NoSuchKey", "GET after a refused PUT")
    rc, o, e = c.aws("s3api", "list-objects-v2", "--bucket", BUCKET, ak="AKIDDOESNOTEXIST000")
    check(rc != 0 and "InvalidAccessKeyId" in e, "aws with an unknown access key: rc %d %s" % (rc, short(e)))


@suite.case
def anonymous(c):
    for method, path in (("GET", "/"), ("GET", "/" + BUCKET), ("GET", key_path(BUCKET, "existing")),
                         ("PUT", key_path(BUCKET, "anon")), ("DELETE", key_path(BUCKET, "existing"))):
        r = c.curl(method, path, sign=False, data=b"anon" if method == "PUT" else None)
        expect_error(r, 403, "AccessDenied", "anonymous %s %s" % (method, path))
    st, h, body = c.curl("GET", key_path(BUCKET, "existing"))
    eq((st, body), (200, b"original content"), "existing object after anonymous writes")
    expect_error(c.curl("GET", key_path(BUCKET, "anon")), 404, "NoSuchKey", "anonymous PUT created an object")


def garbage_headers(c):
    d = amz_date()
    day = d[:8]
    cred = "%s/%s/%s/s3/aws4_request" % (c.ak, day, c.region)
    good_tail = "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64
    return [
        "garbage",
        "",
        " ",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256 Credential=",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "AWS4-HMAC-SHA256 Credential=%s" % cred,
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=host" % cred,
        "AWS4-HMAC-SHA256 Credential=%s, %s" % (cred, good_tail),
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=host;x-amz-date, Signature=zz" % cred,
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=host;x-amz-date, Signature=%s" % (cred, "g" * 64),
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=host;x-amz-date, Signature=%s" % (cred, "0" * 65),
        "AWS4-HMAC-SHA256 Credential=%s/x/y/z/w/v, %s" % (c.ak, good_tail),
        "AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/aws4_request, %s" % (c.ak, "2000-01-01", c.region, good_tail),
        "AWS4-HMAC-SHA256 Credential=%s/%s/other-region/s3/aws4_request, %s" % (c.ak, day, good_tail),
        "AWS4-HMAC-SHA256 Credential=%s/%s/%s/ec2/aws4_request, %s" % (c.ak, day, c.region, good_tail),
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=;;;;, Signature=%s" % (cred, "0" * 64),
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=nonexistent-header, Signature=%s" % (cred, "0" * 64),
        "AWS4-HMAC-SHA256 Credential=%s,SignedHeaders=host;x-amz-date,Signature=%s,Signature=%s" % (cred, "0" * 64, "1" * 64),
        "AWS4-HMAC-SHA256 Credential=%s, %s" % ("A" * 4000 + "/" + day + "/us-east-1/s3/aws4_request", good_tail),
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s" % (cred, ";".join(["h%d" % i for i in range(500)]), "0" * 64),
        "AWS4-HMAC-SHA256 Credential=\u00e9\u00ff/\u2603, %s" % good_tail,
        "AWS %s:c2lnbmF0dXJl" % c.ak,
        "AWS :",
        "AWS4-ECDSA-P256-SHA256 Credential=%s, %s" % (cred, good_tail),
        "Bearer abc.def.ghi",
        "Basic dXNlcjpwYXNz",
        "AWS4-HMAC-SHA256 " + "Credential=" * 300,
        "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=host;x-amz-date, Signature=%s" % (cred, "0" * 64) + "," * 100,
    ]


@suite.case
def garbage_authorization(c):
    d = amz_date()
    paths = [("GET", key_path(BUCKET, "existing")), ("PUT", key_path(BUCKET, "garbage-put")), ("GET", "/")]
    bad = []
    for auth in garbage_headers(c):
        for method, path in paths:
            hdrs = {"Authorization": auth, "x-amz-date": d,
                    "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
            st, h, body = c.curl(method, path, sign=False, headers=hdrs, timeout=15, allow_error=True,
                                 data=b"garbage body" if method == "PUT" else None)
            code = xml_error_code(body)
            if not (400 <= st < 500 and code):
                bad.append("%s %s with Authorization %r -> %d %s" % (method, path, auth[:80], st, short(body, 150)))
        if c.dead_unexpectedly():
            raise TestFailure("gateway died after Authorization %r" % auth[:120])
    # Auth mechanisms in the query string.
    for q in ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=garbage",
              "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s%%2F20200101%%2Fus-east-1%%2Fs3%%2Faws4_request"
              "&X-Amz-Date=20200101T000000Z&X-Amz-Expires=999999999999&X-Amz-SignedHeaders=host&X-Amz-Signature=00" % c.ak,
              "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s%%2F20200101%%2Fus-east-1%%2Fs3%%2Faws4_request"
              "&X-Amz-Date=notadate&X-Amz-Expires=-5&X-Amz-SignedHeaders=&X-Amz-Signature=" % c.ak,
              "X-Amz-Signature=" + "0" * 64,
              "AWSAccessKeyId=%s&Expires=1&Signature=abc" % c.ak):
        st, h, body = c.curl("GET", key_path(BUCKET, "existing"), query=q, sign=False, timeout=15, allow_error=True)
        if not (400 <= st < 500 and xml_error_code(body)):
            bad.append("GET ?%s -> %d %s" % (q[:80], st, short(body, 150)))
    # Header and query auth at once.
    st, h, body = c.curl("GET", key_path(BUCKET, "existing"), query="X-Amz-Algorithm=AWS4-HMAC-SHA256", timeout=15,
                         allow_error=True)
    if not (400 <= st < 500 and xml_error_code(body)):
        bad.append("signed GET plus X-Amz-Algorithm in the query -> %d %s" % (st, short(body, 150)))
    # A bad x-amz-date with an otherwise well-formed request.
    for date in ("yesterday", "20200101T000000Z", "99999999T999999Z"):
        st, h, body = c.curl("GET", key_path(BUCKET, "existing"), headers={"x-amz-date": date}, timeout=15,
                             allow_error=True)
        if not (400 <= st < 500 and xml_error_code(body)):
            bad.append("signed GET with x-amz-date %r -> %d %s" % (date, st, short(body, 150)))
    check(not bad, "%d requests not answered with a 4xx XML error:\n  %s" % (len(bad), "\n  ".join(bad)))
    st, h, body = c.curl("GET", key_path(BUCKET, "existing"))
    eq((st, body), (200, b"original content"), "existing object after the garbage")
    expect_error(c.curl("GET", key_path(BUCKET, "garbage-put")), 404, "NoSuchKey", "a garbage-auth PUT created an object")


@suite.case
def request_ids_logged(c):
    # A few more kinds of answer: HEAD, 404, 416, 206, list, 409, 204.
    c.curl("HEAD", key_path(BUCKET, "existing"))
    c.curl("HEAD", key_path(BUCKET, "nope"))
    c.curl("GET", key_path(BUCKET, "existing"), headers={"Range": "bytes=100-"})
    c.curl("GET", key_path(BUCKET, "existing"), headers={"Range": "bytes=2-5"})
    c.curl("GET", "/" + BUCKET, query={"list-type": "2"})
    c.curl("PUT", "/" + BUCKET)
    c.curl("PUT", key_path(BUCKET, "rid"), data=b"rid")
    c.curl("DELETE", key_path(BUCKET, "rid"))
    missing = [(s, w) for rid, s, w in c.request_ids if not rid and s > 0]
    check(not missing, "%d answers without x-amz-request-id, e.g. %s" % (len(missing), missing[:5]))
    ids = [(rid, s, w) for rid, s, w in c.request_ids if rid]
    eq(len(set(r for r, _, _ in ids)), len(ids), "distinct request ids")
    deadline = time.time() + 5
    while True:
        log = c.log_text("gateway-1")
        absent = [(r, s, w) for r, s, w in ids if r not in log]
        if not absent or time.time() > deadline:
            break
        time.sleep(0.3)
    check(not absent, "%d of %d request ids not in gateway-1.log, e.g. %s" % (len(absent), len(ids), absent[:5]))
    # The error body names the same id.
    st, h, body = c.curl("GET", key_path(BUCKET, "nope"))
    root = xml_parse(body)
    eq(root.findtext("RequestId") if root is not None else None, h.get("x-amz-request-id"),
       "<RequestId> of an error vs x-amz-request-id")


if __name__ == "__main__":
    suite.main()
