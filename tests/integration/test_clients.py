#!/usr/bin/python3
"""The S3 clients people run, unmodified, against a real cluster: the AWS
CLI (aws s3 sync of a 500-file tree there and back, aws s3 presign), rclone
(sync --checksum up and back, rclone check), s3cmd (mb, put, get, ls, del,
rb, a multipart put), and virtual-hosted-style addressing (boto3 with
addressing_style=virtual, curl with bucket.domain Host names). Every byte
is compared after each round trip.

The gateway runs with [gateway] domain = s3.localhost,localhost (set by the
first case, which restarts it), so path style and virtual-hosted style are
served side by side. glibc does not resolve *.localhost on this machine:
curl gets --resolve, and the boto3 script maps *.localhost to 127.0.0.1 in
its own process. Each client runs with a clean environment (env -i), so no
setting of the machine (AWS_CA_BUNDLE, ~/.s3cfg, rclone.conf) leaks in.
rclone and s3cmd are Debian packages; a case whose client is missing fails."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import hashlib
import os
import random
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from harness import (KiB, MiB, CURL, Suite, TestFailure, aws_quote, check, eq, expect_error, key_path, short,
                     xml_error_code, xml_parse)

suite = Suite("clients")
DOMAINS = "s3.localhost,localhost"
TREE_FILES = 500
BOTO3_VHOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clients_boto3_vhost.py")
RCLONE = "/usr/bin/rclone"
S3CMD = "/usr/bin/s3cmd"

state = {}  # what later cases reuse: the tree


# ---------------------------------------------------------------- helpers


def make_tree(root, n, seed=4):
    """n files of mixed sizes under root: empty ones, many small, some of a
    few MiB, one of 11 MiB (multipart for the AWS CLI and rclone), in nested
    directories, names with spaces, unicode, '+', '=', '(', '~'. Sizes and
    names are fixed by the seed. Returns {relative path: sha256}."""
    rng = random.Random(seed)
    dirs = ["", "a/", "a/b/", "a/b/c d/", "ünï/", "ünï/日本 語/", "x+y=z/", "deep/1/2/3/4/5/"]
    stems = ["f%03d", "with space %03d", "é%03d.txt", "plus+%03d", "eq=%03d", "(paren)%03d", "tilde~%03d",
             "ключ-%03d.bin"]
    out = {}
    for i in range(n):
        if i % 50 == 0:
            size = 0
        elif i % 60 == 7:
            size = rng.randint(1 * MiB, 3 * MiB)
        elif i % 8 == 3:
            size = rng.randint(20 * KiB, 300 * KiB)
        else:
            size = rng.randint(1, 16 * KiB)
        if i == 499 % n:
            size = 11 * MiB + 17
        rel = rng.choice(dirs) + (rng.choice(stems) % i)
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        data = rng.randbytes(size)
        with open(p, "wb") as f:
            f.write(data)
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def the_tree(c):
    """(root, {relative path: sha256}) of the test tree, made on first use."""
    if "tree" not in state:
        root = os.path.join(c.work, "tree")
        state["tree"], state["sums"] = root, make_tree(root, TREE_FILES)
    return state["tree"], state["sums"]


def tree_sums(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def same_tree(want, root, what):
    """Every file of want (path -> sha256) under root with the same bytes, and nothing else."""
    got = tree_sums(root)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(p for p in set(want) & set(got) if want[p] != got[p])
    check(not missing and not extra and not differ,
          "%s: %d missing %r, %d extra %r, %d with other bytes %r" % (what, len(missing), missing[:5], len(extra),
                                                                     extra[:5], len(differ), differ[:5]))


def log_mark(c):
    return len(c.log_text("gateway-1"))


def writes_since(c, mark):
    """PUT/POST/DELETE requests the gateway logged since mark (log_mark)."""
    text = c.log_text("gateway-1")[mark:]
    return [line for line in text.splitlines() if re.search(r" req=\S+ (?:PUT|POST|DELETE) /", line)]


def qkey(key):
    """The path of key in virtual-hosted style: /key, encoded as S3 canonical URIs want."""
    return "/" + aws_quote(key, safe="-_.~/")


def host_port(c):
    return c.endpoint.split("//", 1)[1]


def port(c):
    return int(c.endpoint.rsplit(":", 1)[1])


def run(cmd, env, what, timeout=300, ok=True):
    """Run a client with exactly env; (rc, stdout+stderr as text)."""
    try:
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s: no answer within %ds" % (what, timeout))
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    if ok and r.returncode != 0:
        raise TestFailure("%s failed (rc %d): %s" % (what, r.returncode, out.strip()[-2000:]))
    return r.returncode, out


def clean_env(c, **extra):
    env = {"PATH": "/usr/bin:/bin", "HOME": c.work, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update(extra)
    return env


def vcurl(c, method, host, path, data=None, sign=True, headers=None):
    """curl to http://host:port/path with host resolved to 127.0.0.1 (so
    the Host header is host:port); signed with the cluster's keys.
    Returns (status, {header: value}, body)."""
    hdr = c.tmpfile(suffix=".hdr")
    body = c.tmpfile(suffix=".body")
    cmd = [CURL, "-sS", "--path-as-is", "--max-time", "60", "-D", hdr, "-o", body, "-w", "%{http_code}",
           "--resolve", "%s:%d:127.0.0.1" % (host, port(c))]
    cmd += ["-I"] if method == "HEAD" else ["-X", method]
    if sign:
        cmd += ["--aws-sigv4", "aws:amz:%s:s3" % c.region, "--user", "%s:%s" % (c.ak, c.sk)]
    if data is not None:
        cmd += ["--data-binary", "@" + c.tmpfile(data), "-H", "content-type: application/octet-stream"]
    for k, v in (headers or {}).items():
        cmd += ["-H", "%s: %s" % (k, v)]
    cmd.append("http://%s:%d%s" % (host, port(c), path))
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
    if r.returncode != 0:
        raise TestFailure("curl %s %s%s: rc %d %s" % (method, host, path, r.returncode, r.stderr.decode()))
    hdrs = {}
    with open(hdr, "rb") as f:
        for line in f.read().decode("latin-1").splitlines()[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
    with open(body, "rb") as f:
        b = f.read()
    os.unlink(hdr)
    os.unlink(body)
    return int(r.stdout.decode()), hdrs, b


# ---------------------------------------------------------------- cases


@suite.case
def gateway_with_domains(c):
    """Serve virtual-hosted style too: [gateway] domain, then restart the gateway."""
    conf = os.path.join(c.dir, "cluster.conf")
    with open(conf) as f:
        text = f.read()
    check("\n[gateway]\n" in text, "cluster.conf has no [gateway] section")
    text = text.replace("\n[gateway]\n", "\n[gateway]\ndomain = %s\n" % DOMAINS, 1)
    with open(conf, "w") as f:
        f.write(text)
    c.kill9("gateway-1")
    c.restart()
    c.ok(c.curl("GET", "/"), "ListBuckets after the restart")


@suite.case
def aws_sync_tree(c):
    """aws s3 sync of 500 files up, down, and up again (nothing to send)."""
    src, want = the_tree(c)
    eq(len(want), TREE_FILES, "files in the tree")
    total = sum(os.path.getsize(os.path.join(src, p)) for p in want)
    c.aws_ok("s3", "mb", "s3://aws-sync")
    mark = log_mark(c)
    t1 = time.time()
    c.aws_ok("s3", "sync", src, "s3://aws-sync/t", "--no-progress", timeout=300)
    up = time.time() - t1
    puts = writes_since(c, mark)
    check(len(puts) >= TREE_FILES, "sync up: %d writes logged for %d files" % (len(puts), TREE_FILES))
    out = c.aws_ok("s3api", "list-objects-v2", "--bucket", "aws-sync", "--prefix", "t/")
    # The CLI pages by itself: Contents holds every key.
    keys = sorted(o["Key"][2:] for o in out.get("Contents", []))
    eq(keys, sorted(want), "keys after aws s3 sync")
    dst = os.path.join(c.work, "tree.aws")
    t1 = time.time()
    c.aws_ok("s3", "sync", "s3://aws-sync/t", dst, "--no-progress", timeout=300)
    down = time.time() - t1
    same_tree(want, dst, "aws s3 sync down")
    # Sizes and times match now: a second sync each way moves nothing.
    mark = log_mark(c)
    out = c.aws_ok("s3", "sync", src, "s3://aws-sync/t", "--no-progress", timeout=300)
    eq(writes_since(c, mark), [], "requests that write, in a second aws s3 sync up")
    check("upload:" not in (out or ""), "second sync uploaded: %s" % short(out))
    out = c.aws_ok("s3", "sync", "s3://aws-sync/t", dst, "--no-progress", timeout=300)
    check("download:" not in (out or ""), "second sync downloaded: %s" % short(out))
    shutil.rmtree(dst)
    print("# aws s3 sync: %d files, %.1f MiB: up %.1fs, down %.1fs" % (len(want), total / MiB, up, down))


@suite.case
def aws_presign(c):
    """aws s3 presign, then GET with urllib; an expired URL gives 403 AccessDenied."""
    with open(os.path.join(c.awshome, "config")) as f:
        conf = f.read()
    if "signature_version" not in conf:  # presign signs SigV2 unless told
        with open(os.path.join(c.awshome, "config"), "w") as f:
            f.write(conf.replace("s3 =\n", "s3 =\n  signature_version = s3v4\n", 1))
    data = os.urandom(100 * KiB + 3)
    c.ok(c.s3("PUT", "aws-sync", "pre/sig ned+ü", data=data), "PUT for presign")
    url = c.aws_ok("s3", "presign", "s3://aws-sync/pre/sig ned+ü", "--expires-in", "300").strip()
    check("X-Amz-Signature=" in url and "X-Amz-Expires=300" in url, "not a SigV4 presigned URL: %s" % url)
    eq(urllib.request.urlopen(url, timeout=30).read(), data, "GET of the presigned URL")
    url = c.aws_ok("s3", "presign", "s3://aws-sync/pre/sig ned+ü", "--expires-in", "1").strip()
    time.sleep(3.0)  # X-Amz-Date has whole seconds: 3 s is past a 1 s expiry whatever the rounding
    try:
        urllib.request.urlopen(url, timeout=30).read()
        raise TestFailure("an expired presigned URL was served")
    except urllib.error.HTTPError as e:
        body = e.read()
        eq((e.code, xml_error_code(body)), (403, "AccessDenied"), "expired presigned GET")
        check(b"Request has expired" in body, "message of the expired GET: %s" % short(body))


def rclone(c, *args, ok=True, timeout=300):
    conf = os.path.join(c.work, "rclone.conf")
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            f.write("[cairn]\ntype = s3\nprovider = Other\nenv_auth = false\naccess_key_id = %s\n"
                    "secret_access_key = %s\nendpoint = %s\nregion = %s\nforce_path_style = true\n"
                    % (c.ak, c.sk, c.endpoint, c.region))
    check(os.path.exists(RCLONE), "rclone is not installed (Debian package rclone)")
    cmd = [RCLONE, "--config", conf, "--retries", "1", "--low-level-retries", "1", "--transfers", "4",
           "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"] + list(args)
    return run(cmd, clean_env(c), "rclone " + " ".join(args), timeout=timeout, ok=ok)


@suite.case
def rclone_sync_check(c):
    """rclone sync --checksum up and back, rclone check clean, a second sync sends nothing."""
    src, want = the_tree(c)
    rclone(c, "mkdir", "cairn:rclone-sync")
    mark = log_mark(c)
    t0 = time.time()
    rclone(c, "sync", "--checksum", src, "cairn:rclone-sync/t")
    up = time.time() - t0
    check(any(" POST /rclone-sync/" in line for line in writes_since(c, mark)),
          "rclone did not use a multipart upload for the 11 MiB file")
    rc, out = rclone(c, "check", src, "cairn:rclone-sync/t", ok=False)
    check(rc == 0 and "0 differences found" in out, "rclone check (rc %d): %s" % (rc, out.strip()[-1500:]))
    check("%d matching files" % len(want) in out, "rclone check: %s" % out.strip()[-500:])
    dst = os.path.join(c.work, "tree.rclone")
    t0 = time.time()
    rclone(c, "sync", "--checksum", "cairn:rclone-sync/t", dst)
    down = time.time() - t0
    same_tree(want, dst, "rclone sync down")
    mark = log_mark(c)
    rclone(c, "sync", "--checksum", src, "cairn:rclone-sync/t")
    eq(writes_since(c, mark), [], "requests that write, in a second rclone sync")
    # rclone lists with ListObjects; what it sees is what the CLI sees.
    rc, out = rclone(c, "lsf", "-R", "--files-only", "cairn:rclone-sync/t")
    eq(sorted(out.splitlines()), sorted(want), "rclone lsf")
    # Server-side copy (CopyObject) and ranged reads (rclone cat --offset --count).
    name = max(want, key=lambda p: os.path.getsize(os.path.join(src, p)) if os.path.getsize(os.path.join(src, p)) < 4 * MiB else 0)
    with open(os.path.join(src, name), "rb") as f:
        data = f.read()
    rclone(c, "copyto", "cairn:rclone-sync/t/" + name, "cairn:rclone-sync/copy/one")
    eq(rclone(c, "md5sum", "cairn:rclone-sync/copy")[1].split()[0], hashlib.md5(data).hexdigest(), "md5 of the copy")
    r = subprocess.run([RCLONE, "--config", os.path.join(c.work, "rclone.conf"), "cat", "--offset", "1000",
                        "--count", "5000", "cairn:rclone-sync/copy/one"], env=clean_env(c), capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    eq((r.returncode, r.stdout == data[1000:6000]), (0, True), "rclone cat --offset 1000 --count 5000")
    shutil.rmtree(dst)
    rclone(c, "purge", "cairn:rclone-sync")
    eq(c.curl("HEAD", "/rclone-sync")[0], 404, "HEAD of the bucket after rclone purge")
    print("# rclone sync: up %.1fs, down %.1fs" % (up, down))


def s3cmd(c, *args, ok=True):
    conf = os.path.join(c.work, "s3cfg")
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            f.write("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\n"
                    "bucket_location = %s\nsignature_v2 = False\nuse_https = False\n"
                    % (c.ak, c.sk, host_port(c), host_port(c), c.region))
    check(os.path.exists(S3CMD), "s3cmd is not installed (Debian package s3cmd)")
    return run([S3CMD, "-c", conf] + list(args), clean_env(c), "s3cmd " + " ".join(args), ok=ok)


@suite.case
def s3cmd_calls(c):
    """s3cmd mb, put (one file, a directory), ls, get, a multipart put, cp, sync, del, rb."""
    b = "s3cmd-bucket"
    s3cmd(c, "mb", "s3://" + b)
    files = {"dir/with space ü.txt": b"unicode name\n", "dir/empty": b"", "dir/sub/plus+eq=.bin": os.urandom(70 * KiB)}
    up = os.path.join(c.work, "s3cmd-up")
    for key, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(up, key)), exist_ok=True)
        with open(os.path.join(up, key), "wb") as f:
            f.write(data)
    files["small"] = os.urandom(1000)
    s3cmd(c, "put", c.tmpfile(files["small"]), "s3://%s/small" % b)
    s3cmd(c, "put", "--recursive", os.path.join(up, "dir"), "s3://%s/" % b)
    rc, out = s3cmd(c, "ls", "-r", "s3://%s" % b)
    listed = sorted(line.split("s3://%s/" % b, 1)[1] for line in out.splitlines() if "s3://" in line)
    eq(listed, sorted(files), "s3cmd ls -r")
    rc, out = s3cmd(c, "ls", "s3://%s/" % b)
    check("DIR  s3://%s/dir/" % b in out, "s3cmd ls shows no common prefix dir/: %s" % short(out))
    rc, out = s3cmd(c, "ls")
    check("s3://" + b in out, "s3cmd ls lacks the bucket: %s" % short(out))
    # info asks for the location, ACL, policy, CORS and lifecycle of the bucket.
    rc, out = s3cmd(c, "info", "s3://" + b)
    check("Location:  %s" % c.region in out and "FULL_CONTROL" in out and "Policy:    none" in out,
          "s3cmd info of the bucket: %s" % short(out, 600))
    down = os.path.join(c.work, "s3cmd-down")
    os.makedirs(down)
    s3cmd(c, "get", "--recursive", "s3://%s/" % b, down + "/")
    same_tree({k: hashlib.sha256(v).hexdigest() for k, v in files.items()}, down, "s3cmd get --recursive")
    shutil.rmtree(down)
    # Multipart: 16 MiB + a bit in 5 MiB chunks is four parts.
    big = os.urandom(16 * MiB + 1234)
    src = c.tmpfile(big)
    mark = log_mark(c)
    s3cmd(c, "put", "--multipart-chunk-size-mb=5", src, "s3://%s/big" % b)
    eq(len([x for x in writes_since(c, mark) if re.search(r" PUT /%s/big 200 " % b, x)]), 4,
       "UploadPart requests of s3cmd's multipart put")
    st, h, _ = c.curl("HEAD", key_path(b, "big"))
    check(st == 200 and h.get("etag", "").endswith('-4"'), "HEAD of the multipart object: %d %r" % (st, h))
    dst = c.tmpfile(suffix=".get")
    s3cmd(c, "get", "--force", "s3://%s/big" % b, dst)
    with open(dst, "rb") as f:
        eq(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(big).hexdigest(), "s3cmd get of the multipart put")
    os.unlink(dst)
    os.unlink(src)
    # cp is a CopyObject (its follow-up PutObjectAcl with an ACL document is refused, see
    # docs/s3-compatibility.md; s3cmd carries on); sync up and down of a part of the tree.
    s3cmd(c, "cp", "s3://%s/small" % b, "s3://%s/copied" % b)
    eq(c.s3("GET", b, "copied")[2], files["small"], "object made by s3cmd cp")
    root, sums = the_tree(c)
    part = os.path.join(root, "a", "b", "c d")
    want = {p[len("a/b/c d/"):]: d for p, d in sums.items() if p.startswith("a/b/c d/")}
    s3cmd(c, "sync", part + "/", "s3://%s/sync/" % b)
    dst = os.path.join(c.work, "tree.s3cmd")
    s3cmd(c, "sync", "s3://%s/sync/" % b, dst + "/")
    same_tree(want, dst, "s3cmd sync of 'a/b/c d/' (%d files)" % len(want))
    shutil.rmtree(dst)
    rc, out = s3cmd(c, "rb", "s3://" + b, ok=False)
    check(rc != 0 and "BucketNotEmpty" in out, "rb of a full bucket: %s" % short(out))
    s3cmd(c, "del", "--recursive", "s3://%s/sync/" % b)
    s3cmd(c, "del", *["s3://%s/%s" % (b, k) for k in list(files) + ["big", "copied"]])
    rc, out = s3cmd(c, "ls", "-r", "s3://%s" % b)
    eq(out.strip(), "", "s3cmd ls -r after del")
    s3cmd(c, "rb", "s3://" + b)
    eq(c.curl("HEAD", "/" + b)[0], 404, "HEAD of the bucket after s3cmd rb")


@suite.case
def virtual_hosted_curl(c):
    """bucket.localhost:port in Host selects the bucket; the domain itself and an IP are path style."""
    data = os.urandom(40 * KiB)
    c.ok(vcurl(c, "PUT", "vhost-curl.localhost", "/"), "CreateBucket in virtual-hosted style")
    key = "dir/some key+ü"
    c.ok(vcurl(c, "PUT", "vhost-curl.localhost", qkey(key), data=data), "PUT virtual-hosted")
    # The same object path style, by IP and by the bare domain.
    eq(c.s3("GET", "vhost-curl", key)[2], data, "GET path style (127.0.0.1) of a virtual-hosted PUT")
    eq(vcurl(c, "GET", "localhost", key_path("vhost-curl", key))[2], data, "GET path style with Host = the domain")
    eq(vcurl(c, "GET", "vhost-curl.s3.localhost", qkey(key))[2], data, "GET under the second domain")
    st, h, body = vcurl(c, "GET", "vhost-curl.localhost", "/", headers={})
    root = xml_parse(body)
    check(st == 200 and root is not None and root.findtext("Name") == "vhost-curl", "ListObjects: %d %s" % (st, short(body)))
    eq([e.findtext("Key") for e in root.iter("Contents")], [key], "keys listed in virtual-hosted style")
    st, h, _ = vcurl(c, "HEAD", "vhost-curl.localhost", qkey(key))
    eq((st, h.get("content-length")), (200, str(len(data))), "HEAD virtual-hosted")
    # A bucket name with dots, and a host whose first labels are too long for a bucket.
    c.ok(vcurl(c, "PUT", "dot.ted.bucket.localhost", "/"), "CreateBucket dot.ted.bucket")
    c.ok(c.curl("HEAD", "/dot.ted.bucket"), "HEAD path style of the dotted bucket")
    expect_error(vcurl(c, "GET", "b" * 64 + ".localhost", "/"), 400, "InvalidBucketName", "64-character bucket")
    expect_error(vcurl(c, "GET", "vhost-curl.localhost", qkey(key), sign=False), 403, "AccessDenied",
                 "unsigned virtual-hosted GET")
    c.ok(vcurl(c, "DELETE", "vhost-curl.localhost", qkey(key)), "DELETE virtual-hosted", 204)
    c.ok(vcurl(c, "DELETE", "vhost-curl.localhost", "/"), "DeleteBucket virtual-hosted", 204)
    c.ok(vcurl(c, "DELETE", "dot.ted.bucket.localhost", "/"), "DeleteBucket dot.ted.bucket", 204)


@suite.case
def virtual_hosted_boto3(c):
    """boto3 (Debian's python3) with addressing_style=virtual against http://s3.localhost:port."""
    env = {"PATH": "/usr/bin:/bin", "HOME": c.work, "CAIRN_ENDPOINT": "http://s3.localhost:%d" % port(c),
           "AWS_ACCESS_KEY_ID": c.ak, "AWS_SECRET_ACCESS_KEY": c.sk, "AWS_DEFAULT_REGION": c.region,
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "AWS_EC2_METADATA_DISABLED": "true", "CAIRN_WORK": c.work}
    rc, out = run(["/usr/bin/python3", BOTO3_VHOST], env, "boto3 virtual-hosted script", ok=False)
    print("\n".join("# boto3: " + line for line in out.strip().splitlines()[-30:]))
    eq(rc, 0, "boto3 virtual-hosted script exit status")


suite.main()
