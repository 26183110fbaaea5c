#!/usr/bin/python3
"""TLS on the S3 endpoint: a cluster started with tools/cairn-cluster --tls
(CAIRN_TLS=1) serves S3 over HTTPS with a self-signed certificate for
localhost and 127.0.0.1, generated into DIR/tls/.

- Clients that trust the certificate work byte for byte: curl --cacert with
  --aws-sigv4 (PUT, GET, HEAD, DELETE; inline and erasure-coded sizes; a
  20 MiB object), the AWS CLI through AWS_CA_BUNDLE (s3 cp up and down),
  boto3 with verify=<cert> (put, get, list, delete, a presigned GET), and a
  request addressed to https://localhost:PORT (another signed Host, the
  certificate's DNS name).
- Several requests ride one TLS connection (keep-alive): curl reports no
  new connect and the same local port for each.
- Refused: plain HTTP to the TLS port (no HTTP answer), clients that do not
  trust the certificate (curl, Python's default context, boto3's default
  bundle) or reach it under a name it does not carry, TLS 1.1 (when this
  OpenSSL can still speak it: checked against an openssl s_server first),
  TLS 1.2 ciphers without forward secrecy, and client-initiated
  renegotiation. A wrong secret over TLS still gets SignatureDoesNotMatch.
- The admin port (/health, /metrics) stays plain HTTP.
- Start-up refuses a bad pair with a clear message: tls_cert without
  tls_key, a missing file, a key of another certificate, an encrypted key.
"""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import os
import re
import socket
import ssl
import subprocess
import time

os.environ["CAIRN_TLS"] = "1"  # read by tools/cairn-cluster when the harness starts the cluster

from harness import CURL, MiB, Suite, bin_dir, check, conf_value, eq, expect_error, key_path, sha256, short  # noqa: E402

suite = Suite("tls")
BUCKET = "tls"
S3ARGS = None
DEBIAN_PY = "/usr/bin/python3"


def hostport(c):
    m = re.match(r"^https://([0-9.]+):(\d+)$", c.endpoint)
    check(m is not None, "endpoint %r is not https://IP:PORT" % c.endpoint)
    return m.group(1), int(m.group(2))


def cert(c):
    return c.env["AWS_CA_BUNDLE"]


def run(cmd, timeout=60, env=None, stdin=None):
    """(rc, stdout+stderr as text) of a command that must finish in time."""
    try:
        r = subprocess.run(cmd, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                           capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s: no answer within %ds" % (" ".join(cmd[:3]), timeout))
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def raw_curl(c, url, *extra, sign=True):
    """curl without the harness's --cacert: (rc, http_code, stderr)."""
    cmd = [CURL, "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}"]
    if sign:
        cmd += ["--aws-sigv4", "aws:amz:%s:s3" % c.region, "--user", "%s:%s" % (c.ak, c.sk)]
    r = subprocess.run(cmd + list(extra) + [url], stdin=subprocess.DEVNULL, capture_output=True, timeout=40)
    return r.returncode, r.stdout.decode().strip(), r.stderr.decode("utf-8", "replace").strip()


def s_client(c, *args, stdin=b"", timeout=20):
    host, port = hostport(c)
    return run(["openssl", "s_client", "-connect", "%s:%d" % (host, port), "-CAfile", cert(c)] + list(args),
               timeout=timeout, stdin=stdin)


@suite.case
def setup(c):
    """The pair on disk, the config keys, the endpoint and the gateway's log line."""
    d = os.path.join(c.dir, "tls")
    eq(conf_value(c, "gateway", "tls_cert"), os.path.join(d, "cert.pem"), "[gateway] tls_cert")
    eq(conf_value(c, "gateway", "tls_key"), os.path.join(d, "key.pem"), "[gateway] tls_key")
    eq(cert(c), os.path.join(d, "cert.pem"), "AWS_CA_BUNDLE of cluster.env")
    eq(oct(os.stat(os.path.join(d, "key.pem")).st_mode & 0o777), "0o600", "mode of key.pem")
    check(c.endpoint.startswith("https://127.0.0.1:"), "endpoint %s is not https" % c.endpoint)
    check(c.env["AWS_ENDPOINT_URL"] == c.endpoint, "AWS_ENDPOINT_URL %s" % c.env["AWS_ENDPOINT_URL"])
    rc, out = run(["openssl", "x509", "-in", cert(c), "-noout", "-subject", "-ext", "subjectAltName"])
    eq(rc, 0, "openssl x509 of the certificate: " + out)
    check("DNS:localhost" in out and "IP Address:127.0.0.1" in out, "subjectAltName: %s" % out)
    log = c.log_text("gateway-1")
    check("TLS on the S3 endpoint" in log and "(https," in log, "gateway log lacks the TLS lines:\n" + log[-1500:])
    c.make_bucket(BUCKET)


@suite.case
def curl_put_get_head_delete(c):
    """curl --cacert --aws-sigv4 over HTTPS: every method, byte for byte."""
    for size in (0, 1, 16 * 1024 + 1, MiB + 3):
        key = "curl/obj-%d" % size
        data = os.urandom(size)
        c.ok(c.s3("PUT", BUCKET, key, data=data), "PUT %s" % key)
        st, h, body = c.s3("GET", BUCKET, key)
        eq(st, 200, "GET %s status" % key)
        check(body == data, "GET %s: %d bytes, sha %s; want %d bytes, sha %s" % (key, len(body), sha256(body)[:12],
                                                                             size, sha256(data)[:12]))
        st, h, _ = c.s3("HEAD", BUCKET, key)
        eq(st, 200, "HEAD %s status" % key)
        eq(h.get("content-length"), str(size), "HEAD %s content-length" % key)
        eq(c.s3("DELETE", BUCKET, key)[0], 204, "DELETE %s" % key)
        eq(c.s3("GET", BUCKET, key)[0], 404, "GET %s after DELETE" % key)


@suite.case
def sigv4_over_tls(c):
    """A wrong secret is still refused; a request signed for Host localhost:PORT
    (the certificate's DNS name) is accepted."""
    expect_error(c.s3("GET", BUCKET, query={"list-type": "2"}, sk="x" * 40), 403, "SignatureDoesNotMatch",
                 "listing signed with a wrong secret over TLS")
    host, port = hostport(c)
    data = os.urandom(5000)
    c.ok(c.s3("PUT", BUCKET, "sigv4/localhost", data=data), "PUT sigv4/localhost")
    rc, code, err = raw_curl(c, "https://localhost:%d%s" % (port, key_path(BUCKET, "sigv4/localhost")),
                             "--cacert", cert(c), "--resolve", "localhost:%d:127.0.0.1" % port)
    eq((rc, code), (0, "200"), "GET via https://localhost:%d (%s)" % (port, err))


@suite.case
def aws_cli_cp(c):
    """The AWS CLI trusts the certificate through AWS_CA_BUNDLE: cp up and down."""
    data = os.urandom(3 * MiB + 11)
    src = c.tmpfile(data)
    c.aws_ok("s3", "cp", src, "s3://%s/cli/object" % BUCKET)
    dst = c.tmpfile(suffix=".down")
    c.aws_ok("s3", "cp", "s3://%s/cli/object" % BUCKET, dst)
    with open(dst, "rb") as f:
        got = f.read()
    check(got == data, "aws s3 cp down: %d bytes, want %d (sha %s vs %s)" % (len(got), len(data), sha256(got)[:12],
                                                                         sha256(data)[:12]))
    out = c.aws_ok("s3", "ls", "s3://%s/cli/" % BUCKET)
    check("object" in str(out), "aws s3 ls: %s" % short(str(out)))
    # Without the bundle the CLI refuses the certificate.
    env = c.aws_env()
    del env["AWS_CA_BUNDLE"]
    rc, out = run(["/usr/bin/aws", "--endpoint-url", c.endpoint, "s3", "ls", "s3://%s/" % BUCKET], env=env,
                  timeout=120)
    check(rc != 0 and "CERTIFICATE_VERIFY_FAILED" in out, "aws without AWS_CA_BUNDLE: rc %d: %s" % (rc, short(out, 600)))


BOTO3_SCRIPT = r"""
import os, ssl, sys, urllib.request
import boto3, botocore
from botocore.config import Config
ep, cert, bucket = os.environ["EP"], os.environ["CERT"], os.environ["BUCKET"]
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, signature_version="s3v4")
s3 = boto3.client("s3", endpoint_url=ep, verify=cert, config=cfg)
data = os.urandom(2 * 1024 * 1024 + 5)
s3.put_object(Bucket=bucket, Key="boto3/obj", Body=data)
assert s3.get_object(Bucket=bucket, Key="boto3/obj")["Body"].read() == data, "get_object bytes"
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="boto3/").get("Contents", [])]
assert keys == ["boto3/obj"], keys
url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "boto3/obj"}, ExpiresIn=300)
assert url.startswith("https://"), url
with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=cert), timeout=30) as r:
    assert r.read() == data, "presigned GET bytes"
s3.delete_object(Bucket=bucket, Key="boto3/obj")
try:
    s3.head_object(Bucket=bucket, Key="boto3/obj")
    raise AssertionError("head_object after delete succeeded")
except botocore.exceptions.ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
untrusting = boto3.client("s3", endpoint_url=ep, config=cfg)
try:
    untrusting.list_objects_v2(Bucket=bucket)
    raise AssertionError("a client with the default CA bundle accepted the self-signed certificate")
except botocore.exceptions.SSLError as e:
    print("default bundle refused: %s" % str(e)[:160])
print("boto3 %s ok" % boto3.__version__)
"""


@suite.case
def boto3_verify_cert(c):
    """boto3 (Debian's python3-boto3) with verify=<cert>: put, get, list, a
    presigned GET, delete; with the default CA bundle it refuses the server."""
    if subprocess.run([DEBIAN_PY, "-c", "import boto3"], capture_output=True).returncode != 0:
        print("# boto3: python3-boto3 is not installed; case skipped")
        return
    env = {"PATH": "/usr/bin:/bin", "HOME": c.awshome, "EP": c.endpoint, "CERT": cert(c), "BUCKET": BUCKET,
           "AWS_ACCESS_KEY_ID": c.ak, "AWS_SECRET_ACCESS_KEY": c.sk, "AWS_DEFAULT_REGION": c.region,
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "AWS_EC2_METADATA_DISABLED": "true"}
    rc, out = run([DEBIAN_PY, "-c", BOTO3_SCRIPT], env=env, timeout=180)
    print("\n".join("# " + line for line in out.strip().splitlines()[-3:]))
    eq(rc, 0, "boto3 script exit status (output: %s)" % short(out, 2000))


@suite.case
def untrusted_clients_fail(c):
    """No trust, no connection: curl and Python's default context refuse the
    self-signed certificate, and curl refuses a name the certificate lacks.
    The PUT that curl refused never reached the gateway."""
    host, port = hostport(c)
    url = c.endpoint + key_path(BUCKET, "untrusted/obj")
    f = c.tmpfile(b"never stored")
    rc, code, err = raw_curl(c, url, "-T", f)
    eq(rc, 60, "curl without --cacert: exit status (%s)" % err)
    check("certificate" in err, "curl's reason: %s" % err)
    rc, code, err = raw_curl(c, "https://other.example:%d%s" % (port, key_path(BUCKET, "untrusted/obj")), "-T", f,
                             "--cacert", cert(c), "--resolve", "other.example:%d:127.0.0.1" % port)
    eq(rc, 60, "curl under a name not in the certificate: exit status (%s)" % err)
    eq(c.s3("HEAD", BUCKET, "untrusted/obj")[0], 404, "HEAD of the object the refused PUTs named")
    with socket.create_connection((host, port), timeout=10) as s:
        try:
            with ssl.create_default_context().wrap_socket(s, server_hostname="127.0.0.1"):
                raise AssertionError("Python's default context accepted the self-signed certificate")
        except ssl.SSLCertVerificationError as e:
            check("self-signed" in str(e) or "self signed" in str(e), "Python's reason: %s" % e)


@suite.case
def plain_http_refused(c):
    """Plain HTTP to the TLS port gets no HTTP answer; the gateway serves on."""
    host, port = hostport(c)
    rc, code, err = raw_curl(c, "http://%s:%d/%s" % (host, port, BUCKET))
    check(rc != 0 and code == "000", "plain HTTP got an answer: rc %d, status %s (%s)" % (rc, code, err))
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"GET /_cairn/health HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port))
        got = b""
        deadline = time.time() + 10
        try:
            while time.time() < deadline:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except (ConnectionResetError, socket.timeout):
            pass
    check(not got.startswith(b"HTTP/"), "plain HTTP on the TLS port was answered: %r" % got[:200])
    c.ok(c.curl("GET", "/_cairn/health", sign=False), "health over HTTPS after the plain requests")


def tls11_possible(c):
    """Can this OpenSSL still speak TLS 1.1 at all? Tried against an openssl
    s_server that allows it (same certificate). (True, "") or (False, why)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = os.path.join(os.path.dirname(cert(c)), "key.pem")
    # stdin stays open (a pipe): s_server quits at EOF on it
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", cert(c), "-key", key,
                            "-tls1_1", "-cipher", "ALL:@SECLEVEL=0"],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and srv.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        rc, out = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_1", "-cipher",
                       "ALL:@SECLEVEL=0"], stdin=b"", timeout=20)
        if re.search(r"Protocol\s*:\s*TLSv1\.1", out) and "Cipher is (NONE)" not in out:
            return True, ""
        return False, "openssl s_client -tls1_1 cannot complete a TLS 1.1 handshake even with a server that allows it"
    finally:
        srv.kill()
        srv.wait()


@suite.case
def protocol_versions(c):
    """TLS 1.2 (ECDHE + AEAD) and 1.3 accepted, TLS 1.1 and non-forward-secret
    TLS 1.2 ciphers refused, no compression."""
    rc, out = s_client(c, "-tls1_3")
    check(rc == 0 and re.search(r"New, TLSv1\.3, Cipher is TLS_", out), "TLS 1.3 handshake: rc %d: %s" % (rc, out[-800:]))
    rc, out = s_client(c, "-tls1_2")
    m = re.search(r"New, TLSv1\.2, Cipher is (\S+)", out)
    check(rc == 0 and m, "TLS 1.2 handshake: rc %d: %s" % (rc, out[-800:]))
    check(m.group(1).startswith("ECDHE-") and ("GCM" in m.group(1) or "CHACHA20" in m.group(1)),
          "TLS 1.2 cipher %s is not ECDHE with AEAD" % m.group(1))
    check("Compression: NONE" in out, "compression offered: %s" % out[-800:])
    check("Verify return code: 0 (ok)" in out, "verification with -CAfile: %s" % out[-800:])
    rc, out = s_client(c, "-tls1_2", "-cipher", "AES128-SHA:AES256-GCM-SHA384:@SECLEVEL=0")
    check("Cipher is (NONE)" in out, "a TLS 1.2 cipher without ECDHE was accepted: %s" % out[-800:])
    ok, why = tls11_possible(c)
    if not ok:
        print("# TLS 1.1 check skipped: %s" % why)
        return
    rc, out = s_client(c, "-tls1_1", "-cipher", "ALL:@SECLEVEL=0")
    check("Cipher is (NONE)" in out and not re.search(r"New, TLSv1(\.1)?, Cipher is [A-Z]", out),
          "TLS 1.1 was accepted: %s" % out[-800:])
    print("# TLS 1.1: refused (the same client completes TLS 1.1 with an openssl s_server that allows it)")


@suite.case
def no_renegotiation(c):
    """A client-initiated renegotiation ends the connection: the request sent
    after it gets no answer, while the same request without it gets 200."""
    req = b"GET /_cairn/health HTTP/1.1\r\nHost: x\r\n\r\n"

    def session(lines):
        # s_client reads commands ("R" = renegotiate) and data from stdin; the
        # pauses let each step finish before the next.
        p = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % hostport(c), "-CAfile", cert(c),
                              "-tls1_2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            for line in lines:
                time.sleep(0.7)
                p.stdin.write(line)
                p.stdin.flush()
            time.sleep(1.0)
            out, _ = p.communicate(timeout=20)  # closes stdin: s_client ends
        except (BrokenPipeError, subprocess.TimeoutExpired):
            p.kill()
            out, _ = p.communicate()
        return out.decode("latin-1")

    out = session([req])
    check("HTTP/1.1 200" in out, "control: the health request over s_client got no 200: %s" % out[-600:])
    out = session([b"R\n", req])
    check("RENEGOTIATING" in out, "s_client did not try to renegotiate: %s" % out[-600:])
    check("HTTP/1.1 200" not in out, "the request after a renegotiation was answered: %s" % out[-600:])


@suite.case
def keepalive(c):
    """Six requests (PUT, GET, HEAD, GET, DELETE, GET) on one TLS connection:
    curl connects once and keeps its local port."""
    data = os.urandom(100000)
    src = c.tmpfile(data)
    url = c.endpoint + key_path(BUCKET, "keepalive/obj")
    common = ["--cacert", cert(c), "--aws-sigv4", "aws:amz:%s:s3" % c.region, "--user", "%s:%s" % (c.ak, c.sk),
              "-w", "%{http_code} %{num_connects} %{local_port} %{size_download}\\n"]
    outs = [c.tmpfile(suffix=".ka%d" % i) for i in range(6)]
    steps = [["-T", src], [], ["-I"], [], ["-X", "DELETE"], []]
    cmd = [CURL, "-sS", "--max-time", "60"]
    for i, step in enumerate(steps):
        if i:
            cmd.append("--next")
        cmd += common + step + ["-o", outs[i], url]
    rc, out = run(cmd, timeout=90)
    rows = [line.split() for line in out.strip().splitlines() if re.match(r"^\d{3} ", line)]
    eq(len(rows), 6, "curl transfers reported (output: %s)" % out)
    eq([r[0] for r in rows], ["200", "200", "200", "200", "204", "404"], "statuses")
    eq([r[1] for r in rows], ["1", "0", "0", "0", "0", "0"], "new connections per request")
    eq(len(set(r[2] for r in rows)), 1, "local ports (one connection)")
    with open(outs[1], "rb") as f:
        check(f.read() == data, "GET over the kept-alive connection returned other bytes")


@suite.case
def big_object(c):
    """20 MiB PUT and GET over HTTPS, byte for byte."""
    data = os.urandom(20 * MiB)
    t0 = time.time()
    c.ok(c.s3("PUT", BUCKET, "big/20mib", data=data, timeout=120), "PUT 20 MiB")
    t1 = time.time()
    st, digest, h = c.get_sha(BUCKET, "big/20mib")
    t2 = time.time()
    eq(st, 200, "GET 20 MiB status")
    eq(digest, sha256(data), "sha256 of the 20 MiB GET")
    print("# 20 MiB over HTTPS: PUT %.2fs (%.0f MB/s), GET %.2fs (%.0f MB/s)" % (
        t1 - t0, 20 * MiB / 1e6 / (t1 - t0), t2 - t1, 20 * MiB / 1e6 / (t2 - t1)))


@suite.case
def admin_port_plain(c):
    """/health and /metrics on the admin port are plain HTTP, and count the
    S3 requests served over HTTPS."""
    admin = conf_value(c, "gateway", "admin_listen")
    check(admin, "no [gateway] admin_listen")
    rc, code, err = raw_curl(c, "http://%s/metrics" % admin, sign=False)
    eq((rc, code), (0, "200"), "GET http://%s/metrics (%s)" % (admin, err))
    r = subprocess.run([CURL, "-sS", "--max-time", "10", "http://%s/metrics" % admin], capture_output=True, timeout=30)
    check(b"cairn_gateway_requests_total" in r.stdout, "metrics lack cairn_gateway_requests_total: %s" %
          short(r.stdout, 500))
    rc, code, err = raw_curl(c, "https://%s/health" % admin, "-k", "--max-time", "3", sign=False)
    check(rc != 0, "the admin port answered TLS: rc %d status %s" % (rc, code))


def gateway_fails(c, name, gateway_lines, want):
    """Run cairn-gateway on a copy of cluster.conf whose [gateway] section
    gets gateway_lines (replacing tls_*): it must exit at once, non-zero,
    saying want. It listens (if it wrongly started) on a port of its own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines = []
    for line in open(os.path.join(c.dir, "cluster.conf")).read().splitlines():
        if line.strip().startswith(("tls_cert", "tls_key")):
            continue
        lines.append(line)
        if line.strip() == "[gateway]":
            lines += gateway_lines
    conf = os.path.join(c.work, "%s.conf" % name)
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.Popen([os.path.join(bin_dir(), "cairn-gateway"), "--config", conf, "--listen",
                          "127.0.0.1:%d" % port], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError("%s: cairn-gateway started instead of failing: %s" % (name, short(out, 800)))
    out = out.decode("utf-8", "replace")
    check(p.returncode != 0 and want in out, "%s: rc %d, want %r in: %s" % (name, p.returncode, want, short(out, 800)))
    print("# %s: %s" % (name, out.strip().splitlines()[-1]))


@suite.case
def startup_errors(c):
    """A bad pair stops the gateway at start-up with a message naming it."""
    d = os.path.join(c.dir, "tls")
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    other = os.path.join(c.work, "other.key")
    enc = os.path.join(c.work, "encrypted.key")
    rc, out = run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out",
                   other])
    eq(rc, 0, "openssl genpkey: " + out)
    rc, out = run(["openssl", "pkey", "-in", key, "-out", enc, "-aes256", "-passout", "pass:secret-words"])
    eq(rc, 0, "openssl pkey -aes256: " + out)
    gateway_fails(c, "cert-only", ["tls_cert = " + crt],
                  "tls_cert is set but tls_key is not in [gateway]")
    gateway_fails(c, "missing-cert", ["tls_cert = " + crt + ".nope", "tls_key = " + key],
                  "tls_cert %s.nope: No such file or directory" % crt)
    gateway_fails(c, "other-key", ["tls_cert = " + crt, "tls_key = " + other],
                  "tls_key %s does not belong to tls_cert %s" % (other, crt))
    gateway_fails(c, "encrypted-key", ["tls_cert = " + crt, "tls_key = " + enc],
                  "tls_key %s is encrypted" % enc)
    gateway_fails(c, "key-as-cert", ["tls_cert = " + key, "tls_key = " + key],
                  "tls_cert %s: not a PEM certificate chain" % key)


if __name__ == "__main__":
    suite.main()
