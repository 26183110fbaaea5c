#!/usr/bin/python3
"""cairn-bench, briefly (seconds, no timing assertions): its workloads run
without errors against a real cluster, its verification catches a corrupted
object, `files` + `get --raw` check a plain web server's bytes, and `load`
fills a bucket that ListObjectsV2 then lists in full."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import functools
import http.server
import json
import os
import subprocess
import threading

from harness import Suite, bin_dir, check, eq, key_path, xml_parse

suite = Suite("bench")


def bench(c, *args, want_rc=0, timeout=120):
    """Run cairn-bench with the cluster's endpoint; its JSON report."""
    cmd = [os.path.join(bin_dir(), "cairn-bench"), "--env", os.path.join(c.dir, "cluster.env"), "--json", "-q"]
    cmd += list(args)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, text=True)
    check(r.returncode == want_rc, "%s: exit %d, want %d: %s %s" % (" ".join(args), r.returncode, want_rc,
                                                                    r.stdout[-500:], r.stderr[-1000:]))
    return json.loads(r.stdout)


def no_errors(d, op, n):
    s = d["ops"].get(op, {})
    eq((s.get("ok"), s.get("errors"), d["verify_failures"]), (n, 0, 0), "%s: ok, errors, verify failures" % op)


@suite.case
def workloads(c):
    # Large enough for the erasure-coded path (above inline_max) and for the inline one.
    for size, pfx in (("100KiB", "ec"), ("3KiB", "inl")):
        d = bench(c, "put", "-s", size, "-c", "2", "-n", "12", "--prefix", pfx)
        no_errors(d, "put", 12)
        eq(d["keys"], 12, "keys written")
        no_errors(bench(c, "get", "-c", "3", "-n", "20", "--objects", "12", "--no-prepare", "--prefix", pfx), "get",
                  20)
        no_errors(bench(c, "head", "-c", "2", "-n", "10", "--objects", "12", "--no-prepare", "--prefix", pfx), "head",
                  10)
        no_errors(bench(c, "delete", "-c", "4", "-d", "30", "--objects", "12", "--no-prepare", "--prefix", pfx),
                  "delete", 12)
        st, _, _ = c.curl("GET", key_path("cairn-bench", pfx + "/o3"))
        eq(st, 404, "GET after the delete workload")
    d = bench(c, "mixed", "-s", "1KiB-40KiB", "-c", "4", "-n", "60", "--objects", "16", "--prefix", "mix",
              "--mix", "get=50,put=30,delete=10,head=10")
    eq((d["total"]["errors"], d["verify_failures"]), (0, 0), "mixed: errors, verify failures")


@suite.case
def verification_catches_corruption(c):
    bench(c, "put", "-s", "70KiB", "-c", "1", "-n", "3", "--prefix", "bad", "--corrupt")
    d = bench(c, "get", "-c", "1", "-n", "3", "--objects", "3", "--no-prepare", "--prefix", "bad", want_rc=3)
    eq(d["verify_failures"], 3, "verification failures")
    check(any("mismatch" in x or "byte" in x for x in d["verify_details"]), "details: %r" % d["verify_details"])
    # The same objects written honestly read back clean.
    bench(c, "put", "-s", "70KiB", "-c", "1", "-n", "3", "--prefix", "bad")
    no_errors(bench(c, "get", "-c", "1", "-n", "3", "--objects", "3", "--no-prepare", "--prefix", "bad"), "get", 3)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@suite.case
def files_and_raw_get(c):
    www = os.path.join(c.work, "www")
    exe = os.path.join(bin_dir(), "cairn-bench")
    subprocess.run([exe, "files", "--dir", www, "--prefix", "f", "-s", "5000", "--objects", "4"], check=True,
                   timeout=60)
    eq(os.path.getsize(os.path.join(www, "cairn-bench", "f", "o2")), 5000, "size of a written file")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=www))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        raw = ["get", "--raw", "--endpoint", url, "--prefix", "f", "--objects", "4", "--no-prepare", "-c", "2",
               "-n", "12"]
        no_errors(bench(c, *raw), "get", 12)
        with open(os.path.join(www, "cairn-bench", "f", "o1"), "r+b") as f:
            f.seek(4000)
            b = f.read(1)
            f.seek(4000)
            f.write(bytes([b[0] ^ 0x20]))
        d = bench(c, *raw[:-1], "40", want_rc=3)
        check(d["verify_failures"] > 0, "a flipped byte in a served file went unnoticed")
    finally:
        srv.shutdown()
        srv.server_close()


@suite.case
def load_then_list(c):
    exe = os.path.join(bin_dir(), "cairn-bench")
    r = subprocess.run([exe, "load", "--cluster-config", os.path.join(c.dir, "cluster.conf"), "--bucket", "loaded",
                        "--prefix", "k", "--objects", "1500", "-c", "16", "--json"],
                       capture_output=True, text=True, timeout=120)
    eq(r.returncode, 0, "load exit status (%s)" % r.stderr[-500:])
    d = json.loads(r.stdout)
    eq((d["loaded"], d["failed"]), (1500, 0), "records loaded, failed")
    # Every key is there, empty, through S3: count them page by page.
    keys, token = 0, None
    while True:
        q = [("list-type", "2"), ("max-keys", "1000")] + ([("continuation-token", token)] if token else [])
        st, _, body = c.curl("GET", "/loaded", query=sorted(q))
        eq(st, 200, "ListObjectsV2")
        root = xml_parse(body)
        for o in root.findall("Contents"):
            eq(o.findtext("Size"), "0", "size of a loaded object")
            keys += 1
        if root.findtext("IsTruncated") != "true":
            break
        token = root.findtext("NextContinuationToken")
    eq(keys, 1500, "keys listed")
    st, h, body = c.curl("GET", key_path("loaded", "k/o777"))
    eq((st, body, h.get("etag")), (200, b"", '"d41d8cd98f00b204e9800998ecf8427e"'), "GET of a loaded object")
    d = bench(c, "list", "--bucket", "loaded", "--no-create-bucket", "--prefix", "k", "--no-prepare", "-c", "1",
              "-n", "3")
    eq((d["ops"]["list"]["ok"], d["ops"]["list"]["keys"]), (3, 2500), "list workload: pages, keys (1000+500+1000)")


if __name__ == "__main__":
    suite.main()
