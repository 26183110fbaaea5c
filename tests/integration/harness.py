"""
harness.py — start a real cairn cluster on 127.0.0.1 and speak S3 to it.

Every tests/integration/test_*.py runs standalone (python3 test_x.py, with
CAIRN_BIN naming the build directory; arguments name the cases to run). It
builds a Suite, registers its cases with @suite.case, and calls suite.main():
one cluster per file, started with tools/cairn-cluster in a fresh temporary
directory under $TMPDIR (default /tmp), reused by every case of the file,
and stopped on exit (normal exit, exception, SIGINT/SIGTERM).

Each case prints "ok NAME" or "FAIL NAME: reason"; after a failure the tail of
every log under DIR/logs is printed. After each case the harness checks that
no cluster process died unless a case killed it on purpose (a crash is a
failure of the case that caused it). The last line is "N passed, N failed"
and the exit status is 1 if anything failed.

Clients are the real ones: curl --aws-sigv4 (7.88) and the Debian AWS CLI
2.9 (/usr/bin/aws, run by a helper process, see Cluster.aws). Every call has
a timeout, so a hung server shows up as a failure, never as a stuck test run.
The AWS CLI runs with a private HOME and config (no retries, path-style
addressing), so nothing from the machine leaks in.

Caveats
- curl 7.88 signs the query string and path exactly as given (it neither
  sorts nor re-encodes them). curl_query() therefore builds queries already
  in canonical form: parameters sorted, values encoded with the AWS rules.
- curl signs sha256 of --data-binary bytes, so bodies go through
  --data-binary @file (curl reads the file into memory: fine up to 64 MiB).
- The fragment helpers parse the fragment file format of common/include/
  cairn/frag.h: 64-byte header, then per stripe one block and its XXH3-64.

Environment
  CAIRN_BIN    build directory (default: <repo>/build)
  CAIRN_TLS    1: the cluster serves S3 over HTTPS with a self-signed
               certificate (tools/cairn-cluster --tls); curl() and aws() then
               trust it through the AWS_CA_BUNDLE of cluster.env
  CAIRN_KEEP   1: keep the whole temporary directory (by default it is removed,
               and after a failure only the logs and config are kept)
"""

import atexit
import hashlib
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, "tools", "cairn-cluster")
AWS = "/usr/bin/aws"
CURL = "/usr/bin/curl"

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

KiB = 1024
MiB = 1024 * 1024
# Objects up to this size are stored inside their metadata record, with no
# fragment files (the gateway's default [gateway] inline_max).
INLINE_MAX = 16 * 1024


FRAG_HDR = 64
FRAG_SUM = 8
FRAG_RE = re.compile(r"^([0-9a-f]{32})\.(\d+)$")


def bin_dir():
    b = os.environ.get("CAIRN_BIN") or "build"
    if os.path.isabs(b):
        return b
    if os.path.isdir(b):
        return os.path.abspath(b)
    return os.path.join(REPO, b)


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    """Fail the current case with msg unless cond."""
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    """Fail unless got == want, printing both."""
    if got != want:
        raise TestFailure("%s: expected %r, got %r" % (what, want, got))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def md5(data):
    return hashlib.md5(data).hexdigest()


def short(b, n=300):
    """A printable prefix of a response body for failure messages."""
    if b is None:
        return "None"
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return b if len(b) <= n else b[:n] + "...(%d bytes)" % len(b)


def aws_quote(s, safe="-_.~"):
    """Percent-encode with the SigV4 rules: unreserved characters stay, the
    rest becomes %XX (upper case), UTF-8 first."""
    return urllib.parse.quote(s, safe=safe)


def key_path(bucket, key):
    """/bucket/key with the key encoded as S3 canonical URIs want ('/' kept)."""
    return "/" + bucket + "/" + aws_quote(key, safe="-_.~/")


def curl_query(params):
    """A canonical query string from a dict or list of pairs: sorted by name,
    each name and value encoded, '=' always present. None values give
    'name=' (S3 subresources like ?delete are signed as 'delete=')."""
    items = list(params.items()) if isinstance(params, dict) else list(params)
    enc = sorted((aws_quote(str(k)), aws_quote("" if v is None else str(v))) for k, v in items)
    return "&".join("%s=%s" % kv for kv in enc)


# ---------------------------------------------------------------- XML


def xml_parse(body):
    """Parse an S3 XML body; namespaces stripped from tags. None if not XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    return root


def xml_error_code(body):
    """The <Code> of an S3 <Error> body, or None when body is not one."""
    root = xml_parse(body) if body else None
    if root is None or root.tag != "Error":
        return None
    return root.findtext("Code")


def expect_error(resp, status, code, what):
    """Check an S3 error answer: HTTP status and the XML <Error><Code>."""
    st, hdrs, body = resp
    got = xml_error_code(body)
    if st != status or got != code:
        raise TestFailure("%s: expected %d %s, got %d %s; body: %s" % (what, status, code, st, got, short(body)))


# ---------------------------------------------------------------- fragments


class Frag:
    """One fragment file on disk: node name, object id (hex), index, path."""

    def __init__(self, node, oid, index, path):
        self.node, self.oid, self.index, self.path = node, oid, index, path

    def __repr__(self):
        return "Frag(%s %s.%d)" % (self.node, self.oid, self.index)

    def header(self):
        """Decode the 64-byte header (see frag.h)."""
        with open(self.path, "rb") as f:
            h = f.read(FRAG_HDR)
        if len(h) < FRAG_HDR:
            raise TestFailure("%s: short header (%d bytes)" % (self.path, len(h)))
        magic, version, hsize = struct.unpack_from("<IHH", h, 0)
        oid = h[8:24].hex()
        index, k, m = h[24], h[25], h[26]
        bsize, osize = struct.unpack_from("<IQ", h, 28)
        return dict(magic=magic, version=version, hsize=hsize, oid=oid, index=index, k=k, m=m,
                    block_size=bsize, object_size=osize)

    def blocks(self):
        """[(file offset, length)] of each block's data, per the header's geometry."""
        h = self.header()
        k, B, size = h["k"], h["block_size"], h["object_size"]
        sb = k * B
        nstripes = (size + sb - 1) // sb
        out, off = [], FRAG_HDR
        for s in range(nstripes):
            rem = size - s * sb
            blen = B if rem >= sb else (rem + k - 1) // k
            out.append((off, blen))
            off += blen + FRAG_SUM
        return out


def flip_bytes(path, offset, n=1):
    """XOR n bytes of a file at offset with 0xff, in place."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = bytearray(f.read(n))
        for i in range(len(b)):
            b[i] ^= 0xFF
        f.seek(offset)
        f.write(bytes(b))
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- cluster


def _proc_start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return fields[19]


class Cluster:
    """A cluster in a temporary directory, driven by tools/cairn-cluster."""

    def __init__(self, nodes=6, k=4, m=2, name="itest"):
        self.nodes, self.k, self.m = nodes, k, m
        # Under $TMPDIR when set (tests/run-all.sh gives each test its own and
        # stops any cluster left there), else /tmp.
        self.root = tempfile.mkdtemp(prefix="cairn-%s-" % name, dir=os.environ.get("TMPDIR") or "/tmp")
        self.dir = os.path.join(self.root, "cluster")
        self.work = os.path.join(self.root, "work")
        self.awshome = os.path.join(self.root, "aws")
        os.makedirs(self.work)
        os.makedirs(self.awshome)
        with open(os.path.join(self.awshome, "config"), "w") as f:
            f.write("[default]\noutput = json\nmax_attempts = 1\nretry_mode = standard\n"
                    "s3 =\n  addressing_style = path\n")
        open(os.path.join(self.awshome, "credentials"), "w").close()
        self.env = {}
        self.procs = {}          # name -> (pid, start time) of processes we expect alive
        self.killed = set()      # names killed on purpose, not expected alive
        self.running = False
        self.request_ids = []    # (x-amz-request-id, status, what) of every curl answer
        self._seq = 0
        self._aws_proc = None

    # ---- lifecycle

    def _launcher(self, *args, timeout=90):
        env = dict(os.environ)
        env["CAIRN_BIN"] = bin_dir()
        cmd = [LAUNCHER]
        if args[0] == "start":
            cmd += ["--nodes", str(self.nodes), "--k", str(self.k), "--m", str(self.m)]
        cmd += list(args)
        try:
            return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, text=True, errors="replace")
        except subprocess.TimeoutExpired as e:
            raise TestFailure("%s timed out after %ds: %s" % (" ".join(cmd), timeout, short(e.stderr, 2000)))

    def start(self):
        """Start every process that is not running (all of them the first time);
        returns once the S3 endpoint answers."""
        t0 = time.time()
        self.running = True  # from here on, stop() must run
        r = self._launcher("start", self.dir)
        if r.returncode != 0:
            raise TestFailure("cairn-cluster start failed (rc %d): %s%s" % (r.returncode, r.stdout[-3000:],
                                                                          r.stderr[-3000:]))
        self.env = {}
        with open(os.path.join(self.dir, "cluster.env")) as f:
            for line in f:
                line = line.strip()
                if "=" in line and not line.startswith(("#", "export")):
                    k, v = line.split("=", 1)
                    self.env[k] = v.strip().strip('"').strip("'")
        self.endpoint = self.env["CAIRN_ENDPOINT"].rstrip("/")
        self.ak = self.env["AWS_ACCESS_KEY_ID"]
        self.sk = self.env["AWS_SECRET_ACCESS_KEY"]
        self.region = self.env.get("AWS_DEFAULT_REGION", "us-east-1")
        self.procs = {}
        self.killed = set()
        for name in self.proc_names():
            pid = self.pid(name)
            check(pid is not None, "no pid file for %s after start" % name)
            self.procs[name] = (pid, _proc_start_time(pid))
        self.start_seconds = time.time() - t0

    def stop(self):
        if not self.running:
            return
        self.running = False
        r = None
        try:
            r = self._launcher("stop", self.dir, timeout=60)
        except TestFailure as e:
            print("harness: %s" % e, file=sys.stderr)
        # If the launcher failed, end what we recorded (by pid, checked against
        # its start time so a recycled pid is left alone).
        if r is None or r.returncode != 0:
            for name, (pid, st) in self.procs.items():
                if st is not None and _proc_start_time(pid) == st:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass

    def restart(self):
        """Start again whatever is not running (e.g. nodes killed with -9)."""
        self.start()

    def cleanup(self, keep=False):
        self._aws_kill()
        self.stop()
        if os.environ.get("CAIRN_KEEP") == "1":
            print("harness: kept %s" % self.root)
        elif keep:
            # After a failure keep what explains it (logs, config), not the
            # bulk (fragment files, test data).
            for d in (self.work, self.awshome, os.path.join(self.dir, "data")):
                shutil.rmtree(d, ignore_errors=True)
            print("harness: kept the logs in %s (CAIRN_KEEP=1 keeps the data too)" % self.dir)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- processes

    def proc_names(self):
        names = []
        pids = os.path.join(self.dir, "pids")
        for f in sorted(os.listdir(pids)) if os.path.isdir(pids) else []:
            if f.endswith(".pid"):
                names.append(f[:-4])
        return names

    def node_names(self):
        return sorted((n for n in self.proc_names() if n.startswith("node-")), key=lambda n: int(n[5:]))

    def pid(self, name):
        try:
            with open(os.path.join(self.dir, "pids", name + ".pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def alive(self, name):
        if name not in self.procs:
            return False
        pid, st = self.procs[name]
        return st is not None and _proc_start_time(pid) == st

    def kill9(self, name):
        """kill -9 one process of the cluster by its pid file; waits until gone."""
        check(self.alive(name), "kill9: %s is not running" % name)
        pid, st = self.procs[name]
        os.kill(pid, signal.SIGKILL)
        self.killed.add(name)
        deadline = time.time() + 10
        while _proc_start_time(pid) == st and time.time() < deadline:
            time.sleep(0.02)
        check(_proc_start_time(pid) != st, "%s (pid %d) still alive 10 s after SIGKILL" % (name, pid))

    def dead_unexpectedly(self):
        """Names of processes that died although no case killed them."""
        if not self.running:
            return []
        return [n for n in self.procs if n not in self.killed and not self.alive(n)]

    # ---- logs

    def log_path(self, name):
        return os.path.join(self.dir, "logs", name + ".log")

    def log_text(self, name):
        try:
            with open(self.log_path(name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def print_log_tails(self, n=25, out=sys.stdout):
        logs = os.path.join(self.dir, "logs")
        if not os.path.isdir(logs):
            print("  (no logs in %s)" % logs, file=out)
            return
        for f in sorted(os.listdir(logs)):
            p = os.path.join(logs, f)
            try:
                with open(p, "rb") as fh:
                    lines = fh.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            print("  ---- last %d lines of %s" % (min(n, len(lines)), p), file=out)
            for line in lines[-n:]:
                print("  | " + line[:400], file=out)

    # ---- fragments

    def frag_files(self):
        """{path: Frag} of every fragment file under DIR/data/node-*."""
        out = {}
        data = os.path.join(self.dir, "data")
        for node in sorted(os.listdir(data)) if os.path.isdir(data) else []:
            if not node.startswith("node-"):
                continue
            for dirpath, _, files in os.walk(os.path.join(data, node)):
                for f in files:
                    mo = FRAG_RE.match(f)
                    if mo:
                        p = os.path.join(dirpath, f)
                        out[p] = Frag(node, mo.group(1), int(mo.group(2)), p)
        return out

    def new_frags(self, before):
        """Fragments present now and not in `before` (a frag_files() result)."""
        return [f for p, f in sorted(self.frag_files().items()) if p not in before]

    def put_find_frags(self, bucket, key, data, headers=None):
        """PUT data with curl and return (response, [Frag] it created)."""
        before = self.frag_files()
        r = self.curl("PUT", key_path(bucket, key), data=data, headers=headers)
        return r, self.new_frags(before)

    # ---- clients

    def tmpfile(self, data=None, suffix=""):
        """A new file under the work dir, holding data if given; its path."""
        self._seq += 1
        p = os.path.join(self.work, "f%05d%s" % (self._seq, suffix))
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
        return p

    def url(self, path, query=None):
        if query is None:
            return self.endpoint + path
        if not isinstance(query, str):
            query = curl_query(query)
        return self.endpoint + path + "?" + query

    def curl(self, method, path, data=None, file=None, headers=None, query=None, sign=True, ak=None, sk=None,
             timeout=60, out=None, upload=False, extra=None, what=None, allow_error=False):
        """One HTTP request with curl. path is the raw (encoded) path, query a
        canonical string or pairs (see curl_query). data: bytes body; file: a
        body file (sent with --data-binary, or -T when upload). sign: use
        --aws-sigv4 with ak/sk (default: the cluster's keys). out: write the
        body to this path and return body None. allow_error: a transfer
        error of curl (e.g. a reply cut short) gives status -<curl exit code>
        instead of failing the case.
        Returns (status, {lower-case header: value}, body bytes)."""
        hdr_file = self.tmpfile(suffix=".hdr")
        body_file = out or self.tmpfile(suffix=".body")
        cmd = [CURL, "-sS", "--path-as-is", "--max-time", str(timeout), "-D", hdr_file, "-o", body_file, "-w", "%{http_code}"]
        if method == "HEAD":
            cmd += ["-I"]
        else:
            cmd += ["-X", method]
        if sign:
            cmd += ["--aws-sigv4", "aws:amz:%s:s3" % self.region, "--user", "%s:%s" % (ak or self.ak, sk or self.sk)]
        if self.env.get("AWS_CA_BUNDLE"):
            cmd += ["--cacert", self.env["AWS_CA_BUNDLE"]]
        hl = dict((k.lower(), (k, v)) for k, v in (headers or {}).items())
        if data is not None and file is None:
            file = self.tmpfile(data)
        if file is not None:
            if upload:
                cmd += ["-T", file]
            else:
                cmd += ["--data-binary", "@" + file]
                if "content-type" not in hl:
                    hl["content-type"] = ("Content-Type", "application/octet-stream")
        for k, v in hl.values():
            cmd += ["-H", "%s: %s" % (k, v) if v != "" else "%s;" % k]
        cmd += list(extra or [])
        cmd += [self.url(path, query)]
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            raise TestFailure("curl %s %s: no answer within %ds" % (method, path, timeout + 10))
        if r.returncode != 0 and not allow_error:
            raise TestFailure("curl %s %s%s failed (rc %d): %s" % (method, path, "?" + str(query) if query else "",
                                                               r.returncode, r.stderr.decode(errors="replace").strip()))
        status = int(r.stdout.decode().strip() or 0)
        if r.returncode != 0:
            status = -r.returncode
        hdrs = {}
        raw = ""
        if os.path.exists(hdr_file):
            with open(hdr_file, "rb") as f:
                raw = f.read().decode("latin-1")
            os.unlink(hdr_file)
        blocks = [b for b in re.split(r"\r?\n\r?\n", raw) if b.startswith("HTTP/")]
        if blocks:
            for line in blocks[-1].splitlines()[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
        body = None
        if out is None:
            body = b""
            if os.path.exists(body_file):
                with open(body_file, "rb") as f:
                    body = f.read()
                os.unlink(body_file)
            if method == "HEAD":
                body = b""
        self.request_ids.append((hdrs.get("x-amz-request-id"), status, what or "%s %s" % (method, path)))
        return status, hdrs, body

    def s3(self, method, bucket, key=None, **kw):
        """curl for /bucket or /bucket/key (key encoded here)."""
        path = "/" + bucket if key is None else key_path(bucket, key)
        return self.curl(method, path, **kw)

    def aws_env(self, ak=None, sk=None):
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.awshome,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "AWS_CONFIG_FILE": os.path.join(self.awshome, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.awshome, "credentials"),
            "AWS_ACCESS_KEY_ID": ak or self.ak,
            "AWS_SECRET_ACCESS_KEY": sk or self.sk,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
        }
        if self.env.get("AWS_CA_BUNDLE"):  # an HTTPS cluster (CAIRN_TLS=1)
            env["AWS_CA_BUNDLE"] = self.env["AWS_CA_BUNDLE"]
        return env

    def aws(self, *args, ak=None, sk=None, timeout=120):
        """Run the AWS CLI against the cluster. Returns (rc, stdout, stderr) as text.

        Each command runs the CLI's own entry point (what /usr/bin/aws runs)
        with a fresh session and environment, inside one long-lived helper
        process, because starting the CLI costs over a second on this
        machine. CAIRN_AWS_EXEC=1 runs /usr/bin/aws for every command instead.
        A command that takes longer than timeout kills the helper."""
        args = ["--endpoint-url", self.endpoint] + [str(a) for a in args]
        env = self.aws_env(ak, sk)
        what = "aws %s" % " ".join(args[2:])
        if os.environ.get("CAIRN_AWS_EXEC") == "1":
            try:
                r = subprocess.run([AWS] + args, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TestFailure("%s: no answer within %ds" % (what, timeout))
            return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
        if self._aws_proc is None or self._aws_proc.poll() is not None:
            self._aws_spawn()
        req = json.dumps({"args": args, "env": env}) + "\n"
        try:
            os.write(self._aws_w, req.encode())
            line = self._aws_readline(timeout)
        except (OSError, TestFailure) as e:
            self._aws_kill()
            raise TestFailure("%s: %s" % (what, e))
        r = json.loads(line)
        return r["rc"], r["out"], r["err"]

    def _aws_spawn(self):
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        log = open(os.path.join(self.work, "aws-helper.log"), "ab")
        env = self.aws_env()
        self._aws_proc = subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), "--aws-helper",
                                           str(req_r), str(resp_w)], pass_fds=(req_r, resp_w), env=env,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        os.close(req_r)
        os.close(resp_w)
        self._aws_w, self._aws_r, self._aws_buf = req_w, resp_r, b""

    def _aws_readline(self, timeout):
        deadline = time.time() + timeout
        while b"\n" not in self._aws_buf:
            left = deadline - time.time()
            if left <= 0:
                raise TestFailure("no answer within %ds" % timeout)
            ready, _, _ = select.select([self._aws_r], [], [], left)
            if ready:
                chunk = os.read(self._aws_r, 1 << 20)
                if not chunk:
                    raise TestFailure("the AWS CLI helper exited (see %s/aws-helper.log)" % self.work)
                self._aws_buf += chunk
        line, self._aws_buf = self._aws_buf.split(b"\n", 1)
        return line.decode()

    def _aws_kill(self):
        p, self._aws_proc = self._aws_proc, None
        if p is None:
            return
        for fd in (self._aws_w, self._aws_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if p.poll() is None:
            p.kill()
        p.wait()

    def aws_ok(self, *args, **kw):
        """aws(...) that must succeed; returns parsed JSON stdout (or text)."""
        rc, o, e = self.aws(*args, **kw)
        if rc != 0:
            raise TestFailure("aws %s failed (rc %d): %s" % (" ".join(map(str, args)), rc, (e or o).strip()[-1500:]))
        try:
            return json.loads(o) if o.strip() else None
        except ValueError:
            return o

    # ---- conveniences

    def ok(self, resp, what, status=200):
        st, h, body = resp
        if st != status:
            raise TestFailure("%s: expected %d, got %d %s; body: %s" % (what, status, st, xml_error_code(body) or "",
                                                                      short(body)))
        return resp

    def make_bucket(self, bucket):
        self.ok(self.curl("PUT", "/" + bucket), "create bucket %s" % bucket)

    def get_sha(self, bucket, key, timeout=120):
        """GET an object with curl into a file; (status, sha256 hex of body)."""
        p = self.tmpfile(suffix=".get")
        st, h, _ = self.curl("GET", key_path(bucket, key), out=p, timeout=timeout)
        d = sha256_file(p)
        os.unlink(p)
        return st, d, h


def admin(c, *args, conf=None, timeout=120):
    """Run cairn-admin against the cluster (conf: another config file):
    (rc, stdout, stderr)."""
    cmd = [os.path.join(bin_dir(), "cairn-admin"), "--config", conf or os.path.join(c.dir, "cluster.conf")]
    cmd += [str(a) for a in args]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        raise TestFailure("cairn-admin %s: no answer within %ds" % (" ".join(map(str, args)), timeout))
    return r.returncode, r.stdout, r.stderr


def admin_ok(c, *args, **kw):
    """cairn-admin that must succeed: its stdout."""
    rc, out, err = admin(c, *args, **kw)
    check(rc == 0, "cairn-admin %s failed (rc %d): %s%s" % (" ".join(map(str, args)), rc, out, err))
    return out


def admin_answer(c, *args, timeout=600):
    """cairn-admin --json ARGS: (rc, its answer — the last JSON line of
    stdout, parsed — or None, stdout, stderr)."""
    rc, out, err = admin(c, "--json", *args, timeout=timeout)
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return rc, json.loads(line), out, err
    return rc, None, out, err


def conf_value(c, section, key, default=None):
    """The value of key in [section] of the cluster's cluster.conf, or default."""
    sec = None
    with open(os.path.join(c.dir, "cluster.conf")) as f:
        for line in f:
            line = line.split(";", 1)[0].strip()
            if line.startswith("["):
                sec = line.strip("[]").strip()
            elif "=" in line and sec == section:
                k, v = line.split("=", 1)
                if k.strip() == key:
                    return v.strip()
    return default


def set_config(c, values, procs=None):
    """Set keys of the cluster's cluster.conf, {section: {key: value}}, and
    restart the processes that must read them (tools/cairn-cluster writes a
    new config only on first start, then reuses it): every process, or only
    those named in procs (kill -9, then started again), which keeps the
    other processes' ports bound meanwhile. A key already in its section is
    replaced, a missing one added at the section's end."""
    path = os.path.join(c.dir, "cluster.conf")
    with open(path) as f:
        lines = f.read().splitlines()
    for section, kv in values.items():
        head = next((i for i, l in enumerate(lines) if l.strip() == "[%s]" % section), None)
        check(head is not None, "set_config: no [%s] in %s" % (section, path))
        end = next((i for i in range(head + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        left = dict((k, str(v)) for k, v in kv.items())
        for i in range(head + 1, end):
            name = lines[i].split("=", 1)[0].strip() if "=" in lines[i] else None
            if name in left:
                lines[i] = "%s = %s" % (name, left.pop(name))
        while end > head + 1 and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = ["%s = %s" % kv for kv in left.items()]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)
    if procs is None:
        c.stop()
    else:
        for name in procs:
            c.kill9(name)
    c.start()


# ---------------------------------------------------------------- runner


class Suite:
    """A file's cases, run in order against one cluster.

        suite = Suite("objects")
        @suite.case
        def put_get(c): ...        # c is the Cluster
        suite.main()
    """

    def __init__(self, name, nodes=6, k=4, m=2):
        self.name, self.nodes, self.k, self.m = name, nodes, k, m
        self.cases = []
        self.cluster = None

    def case(self, fn):
        self.cases.append(fn)
        return fn

    def _teardown(self, keep=False):
        c, self.cluster = self.cluster, None
        if c is not None:
            c.cleanup(keep=keep)

    def main(self):
        only = set(sys.argv[1:])
        failed, passed = [], 0

        def on_signal(signum, frame):
            print("harness: signal %d, stopping the cluster" % signum, flush=True)
            self._teardown(keep=True)
            os._exit(1)

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        atexit.register(self._teardown, True)

        t0 = time.time()
        self.cluster = c = Cluster(self.nodes, self.k, self.m, name=self.name)
        try:
            c.start()
            print("# %s: cluster up in %.1fs at %s (%s)" % (self.name, c.start_seconds, c.endpoint, c.dir), flush=True)
        except Exception as e:
            print("FAIL %s (cluster start): %s" % (self.name, e), flush=True)
            c.print_log_tails()
            self._teardown(keep=True)
            print("0 passed, %d failed" % max(1, len(self.cases)))
            sys.exit(1)

        for fn in self.cases:
            name = fn.__name__
            if only and name not in only:
                continue
            t1 = time.time()
            reason = None
            try:
                fn(c)
            except TestFailure as e:
                reason = str(e)
            except Exception:
                reason = "exception:\n" + traceback.format_exc()
            dead = c.dead_unexpectedly()
            if dead:
                reason = (reason + "; " if reason else "") + "process(es) died: %s" % ", ".join(dead)
                for n in dead:
                    c.killed.add(n)  # report once
            if reason is None:
                passed += 1
                print("ok %s (%.1fs)" % (name, time.time() - t1), flush=True)
            else:
                failed.append((name, reason))
                print("FAIL %s: %s" % (name, reason), flush=True)
                c.print_log_tails()
                sys.stdout.flush()
            if dead and c.running:
                # Bring the dead ones back so later cases test something.
                try:
                    c.restart()
                except Exception as e:
                    print("harness: restart after crash failed: %s" % e, flush=True)

        self._teardown(keep=bool(failed))
        print("# %s: %.1fs" % (self.name, time.time() - t0))
        for name, reason in failed:  # again, short, where a runner showing the tail sees it
            reason = reason.strip().replace("\n", "\n    ")
            print("FAIL %s: %s" % (name, reason if len(reason) < 600 else reason[:600] + " ..."))
        print("%d passed, %d failed%s" % (passed, len(failed), (": " + ", ".join(n for n, _ in failed)) if failed else ""))
        sys.stdout.flush()
        sys.exit(1 if failed else 0)


# ---------------------------------------------------------------- AWS CLI helper


def _aws_helper(rfd, wfd):
    """Serve Cluster.aws(): one JSON request a line on rfd ({"args", "env"}),
    one JSON answer a line on wfd ({"rc", "out", "err"}). Each request runs
    the entry point of /usr/bin/aws with its own environment and session."""
    import io
    import awscli.clidriver
    import botocore.session
    # Every command gets a new session, as with /usr/bin/aws, but they share
    # one loader of the CLI's JSON models: parsing them again for each
    # command would cost most of its time. The models are read-only.
    loaders = {}
    create_loader = botocore.session.create_loader

    def shared_loader(search_path=None):
        if search_path not in loaders:
            loaders[search_path] = create_loader(search_path)
        return loaders[search_path]

    botocore.session.create_loader = shared_loader
    # Importing awscli sets AWS_DATA_PATH (where the CLI finds its own data).
    keep = {k: v for k, v in os.environ.items() if k == "AWS_DATA_PATH"}
    rf = os.fdopen(rfd, "rb")
    wf = os.fdopen(wfd, "wb")
    for line in rf:
        req = json.loads(line)
        os.environ.clear()
        os.environ.update(req["env"])
        os.environ.update(keep)
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
        saved = sys.stdout, sys.stderr, sys.stdin
        sys.stdout, sys.stderr, sys.stdin = out, err, open(os.devnull)
        try:
            rc = awscli.clidriver.AWSCLIEntryPoint().main(req["args"])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            rc = 255
            err.write(traceback.format_exc())
        finally:
            sys.stdin.close()
            sys.stdout, sys.stderr, sys.stdin = saved
        ans = {"rc": rc, "out": out.buffer.getvalue().decode("utf-8", "replace"),
               "err": err.buffer.getvalue().decode("utf-8", "replace")}
        wf.write(json.dumps(ans).encode() + b"\n")
        wf.flush()


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--aws-helper":
    _aws_helper(int(sys.argv[2]), int(sys.argv[3]))
