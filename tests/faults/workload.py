"""
workload.py — the client side of the fault suite: several threads doing
PUT / overwrite / GET / DELETE / LIST over a fixed key set, every operation
recorded in a History with its invoke and completion times.

Each PUT body is unique (a header naming key, thread and sequence number,
then seeded random bytes), so the sha256 of a body names the one write that
produced it, and a GET that returns some bytes says exactly which write it
saw — or that it saw bytes nobody wrote.

Outcome of an operation, as the checker needs it:
  ok    a complete S3 answer that says it happened (PUT 200, DELETE 204,
        GET 200 or 404 NoSuchKey, LIST 200)
  fail  it certainly did not happen (the connection was refused: nothing
        was sent), or a read that answered an error
  info  it may or may not have happened: the connection broke after the
        request was sent, a timeout, or a 5xx to a write (a 503 after the
        metadata commit timed out may still have been applied)

Times are time.monotonic() seconds. Operations are appended to the history
from several threads under one lock; the checker reads it after stop().
"""

import hashlib
import random
import threading
import time

import s3


class Op:
    __slots__ = ("id", "thread", "kind", "key", "sha", "size", "t_inv", "t_end", "status", "http", "result",
                 "err", "note")

    def __init__(self, id, thread, kind, key):
        self.id, self.thread, self.kind, self.key = id, thread, kind, key
        self.sha = self.size = self.http = self.result = self.err = self.note = None
        self.t_inv = self.t_end = None
        self.status = None

    def latency(self):
        return (self.t_end - self.t_inv) if self.t_end is not None else None

    def __repr__(self):
        return "#%d %s %s %s @%.3f-%.3f %s http=%s%s%s" % (
            self.id, self.kind, self.key, (self.sha or "")[:12], self.t_inv, self.t_end or -1, self.status,
            self.http, (" result=%s" % (self.result[:12] if isinstance(self.result, str) else self.result))
            if self.kind == "get" else "", (" err=%s" % self.err) if self.err else "")


class History:
    """Operations and fault events of one run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.events = []       # (t_start, t_end or None, description)
        self.written = {}      # key -> {sha: Op} of every attempted PUT (whatever its outcome)
        self.t0 = time.monotonic()

    def begin(self, thread, kind, key):
        with self.lock:
            op = Op(len(self.ops), thread, kind, key)
            self.ops.append(op)
        op.t_inv = time.monotonic()
        return op

    def note_put(self, op, sha, size):
        op.sha, op.size = sha, size
        with self.lock:
            self.written.setdefault(op.key, {})[sha] = op

    def event(self, what, t_start, t_end=None):
        with self.lock:
            self.events.append([t_start, t_end, what])
            return len(self.events) - 1

    def event_end(self, idx, t_end):
        with self.lock:
            self.events[idx][1] = t_end


def size_dist(rnd, large=True):
    """Object sizes: mostly small, some multi-stripe (stripe = k*B = 1 MiB at 4+2)."""
    r = rnd.random()
    if r < 0.40:
        return rnd.randint(64, 2048)
    if r < 0.65:
        return rnd.randint(2049, 64 * 1024)
    if r < 0.85 or not large:
        return rnd.randint(64 * 1024 + 1, 1024 * 1024)
    if r < 0.97:
        return rnd.randint(1024 * 1024 + 1, 3 * 1024 * 1024)
    return rnd.randint(3 * 1024 * 1024 + 1, 6 * 1024 * 1024)


def make_body(rnd, key, thread, seq, size):
    head = ("cairn-fault key=%s thread=%d seq=%d\n" % (key, thread, seq)).encode()
    if size <= len(head):
        return head
    return head + rnd.randbytes(size - len(head))


def write_cold(endpoint, ak, sk, region, bucket, keys, history, sizes, seed=1):
    """PUT each cold key once (before the faults): objects that are only read
    afterwards, so damage to their fragments stays visible. Returns the
    keys whose PUT was acknowledged."""
    rnd = random.Random(seed)
    cl = s3.S3Client(endpoint, ak, sk, region)
    done = []
    try:
        for i, key in enumerate(keys):
            body = make_body(rnd, key, -2, i, sizes[i % len(sizes)])
            op = history.begin(-2, "put", key)
            history.note_put(op, hashlib.sha256(body).hexdigest(), len(body))
            perform(op, lambda: cl.put(bucket, key, body), ok=(200,))
            if op.status == "ok":
                done.append(key)
    finally:
        cl.close()
    return done


class Workload:
    """Client threads against one bucket. start(), then stop() (joins).
    Hot keys get every kind of operation; cold keys (written beforehand with
    write_cold) only GETs, cold_share of all operations."""

    MIX = (("put", 40), ("get", 40), ("delete", 10), ("list", 10))

    def __init__(self, endpoint, ak, sk, region, bucket, keys, history, threads=4, seed=1, timeout=30.0,
                 large=True, pause=0.0, cold_keys=(), cold_share=0.25):
        self.endpoint, self.ak, self.sk, self.region = endpoint, ak, sk, region
        self.bucket, self.keys, self.h = bucket, list(keys), history
        self.cold_keys, self.cold_share = list(cold_keys), cold_share
        self.nthreads, self.seed, self.timeout, self.large, self.pause = threads, seed, timeout, large, pause
        self.stop_ev = threading.Event()
        self.threads = []
        self.errors = []   # exceptions that escaped an operation (workload bugs, not cluster faults)

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), name="wl-%d" % i, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self, timeout=120):
        self.stop_ev.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

    def _run(self, ti):
        rnd = random.Random(self.seed * 1000 + ti)
        cl = s3.S3Client(self.endpoint, self.ak, self.sk, self.region, timeout=self.timeout)
        kinds = [k for k, w in self.MIX for _ in range(w)]
        seq = 0
        try:
            while not self.stop_ev.is_set():
                seq += 1
                if self.cold_keys and rnd.random() < self.cold_share:
                    kind, key = "get", rnd.choice(self.cold_keys)   # written once, read under faults
                else:
                    kind, key = rnd.choice(kinds), rnd.choice(self.keys)
                try:
                    op = self.one(cl, rnd, ti, seq, kind, key)
                except Exception as e:  # a bug of ours: keep it, keep going
                    self.errors.append("%s %s: %r" % (kind, key, e))
                    op = None
                if self.pause:
                    time.sleep(self.pause)
                if op is not None and op.status == "fail" and op.http is None:
                    time.sleep(0.05)  # refused or broken: do not spin while the gateway restarts
        finally:
            cl.close()

    def one(self, cl, rnd, ti, seq, kind, key):
        h = self.h
        if kind == "put":
            size = size_dist(rnd, self.large)
            body = make_body(rnd, key, ti, seq, size)
            op = h.begin(ti, "put", key)
            h.note_put(op, hashlib.sha256(body).hexdigest(), len(body))
            self._do(op, lambda: cl.put(self.bucket, key, body), ok=(200,))
            return op
        elif kind == "delete":
            op = h.begin(ti, "delete", key)
            self._do(op, lambda: cl.delete(self.bucket, key), ok=(204, 200))
            return op
        elif kind == "get":
            op = h.begin(ti, "get", key)
            self._do(op, lambda: cl.get(self.bucket, key), ok=(200, 404), read=True)
            return op
        else:
            op = h.begin(ti, "list", None)
            try:
                st, keys = cl.list_keys(self.bucket)
                op.t_end = time.monotonic()
                op.http = st
                if st == 200:
                    op.status, op.result = "ok", keys
                else:
                    op.status = "fail"
            except s3.NotSent as e:
                op.t_end, op.status, op.err = time.monotonic(), "fail", str(e)
            except s3.Indeterminate as e:
                op.t_end, op.status, op.err = time.monotonic(), "fail", str(e)
            except Exception as e:  # malformed XML and the like: a failed read
                op.t_end, op.status, op.err = time.monotonic(), "fail", "%s: %s" % (type(e).__name__, e)
            return op

    def _do(self, op, fn, ok, read=False):
        perform(op, fn, ok, read)


def perform(op, fn, ok, read=False):
    """Run fn() (an S3Client call) for op and record its outcome in op."""
    try:
        st, hdrs, body = fn()
    except s3.NotSent as e:
        op.t_end, op.status, op.err = time.monotonic(), "fail", str(e)
        return
    except s3.Indeterminate as e:
        op.t_end, op.err = time.monotonic(), str(e)
        op.status = "fail" if read else "info"
        return
    op.t_end = time.monotonic()
    op.http = st
    if read:
        if st == 200:
            op.status, op.result = "ok", hashlib.sha256(body).hexdigest()
            cl = hdrs.get("content-length")
            if cl is not None and cl.isdigit() and int(cl) != len(body):
                op.note = "content-length %s, %d bytes" % (cl, len(body))
        elif st == 404 and b"NoSuchKey" in body:
            op.status, op.result = "ok", None
        else:
            op.status = "fail"
            op.err = "HTTP %d %s" % (st, body[:200])
        return
    if st in ok:
        op.status = "ok"
    elif st >= 500:
        op.status, op.err = "info", "HTTP %d %s" % (st, body[:200])
    else:
        # A 4xx to a well-formed write: the write did not happen, and the
        # checker reports it as an unexpected answer.
        op.status, op.err = "fail", "HTTP %d %s" % (st, body[:200])
        op.note = "unexpected"
