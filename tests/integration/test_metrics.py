#!/usr/bin/python3
"""Observability: every process of the cluster answers /health and serves
Prometheus text-format /metrics on its admin port (DIR/cluster.env
CAIRN_METRICS_URLS), parsed here with the official Python client's parser.
S3 traffic moves the gateway's request and byte counters, the nodes'
fragment counters and the metadata replicas' request counters by exactly
what was sent; the replicas agree on one leader and one term; a silent
client does not hold up a scrape."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import os

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client is installed for /usr/bin/python3;
    # another python3 first on PATH does not see it.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import http.client
import socket
import threading
import time
import urllib.parse

from harness import INLINE_MAX, KiB, MiB, Suite, TestFailure, check, eq, key_path, sha256, short

suite = Suite("metrics")
BUCKET = "observed"


# ---------------------------------------------------------------- scraping


def http_get(url, method="GET", timeout=10):
    """(status, headers dict lower-cased, body text) of one request."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, u.path or "/")
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


class Scrape:
    """One parsed /metrics page: families by name, and sample lookups."""

    def __init__(self, url):
        self.url = url
        st, hdrs, body = http_get(url)
        eq(st, 200, "GET %s" % url)
        ctype = hdrs.get("content-type", "")
        check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
              "%s: Content-Type %r is not the text exposition format 0.0.4" % (url, ctype))
        self.text = body
        try:
            self.families = {f.name: f for f in text_string_to_metric_families(body)}
        except Exception as e:
            raise TestFailure("%s does not parse as Prometheus text: %s; body: %s" % (url, e, short(body, 1500)))

    def samples(self, name):
        """[(labels dict, value)] of every sample called name (any family)."""
        out = []
        for f in self.families.values():
            for s in f.samples:
                if s.name == name:
                    out.append((s.labels, s.value))
        return out

    def value(self, name, **labels):
        """Sum of the samples called name whose labels include `labels`; 0 if none."""
        return sum(v for l, v in self.samples(name) if all(l.get(k) == w for k, w in labels.items()))

    def service(self):
        info = self.samples("cairn_service_info")
        eq(len(info), 1, "cairn_service_info samples at %s" % self.url)
        return info[0][0]["service"], info[0][0]["id"]


def scrape_all(c):
    """{"gateway": [Scrape], "node": [...], "meta": [...]} of every URL in cluster.env."""
    urls = c.env.get("CAIRN_METRICS_URLS", "").split()
    out = {"gateway": [], "node": [], "meta": []}
    for u in urls:
        s = Scrape(u)
        out[s.service()[0]].append(s)
    return out


def total(scrapes, name, **labels):
    return sum(s.value(name, **labels) for s in scrapes)


# ---------------------------------------------------------------- cases


@suite.case
def every_process_has_an_endpoint(c):
    urls = c.env.get("CAIRN_METRICS_URLS", "").split()
    metas = [n for n in c.proc_names() if n.startswith("meta-")]
    eq(len(urls), 1 + c.nodes + len(metas), "metrics URLs in cluster.env (%s)" % urls)
    seen = set()
    for u in urls:
        s = Scrape(u)
        svc, ident = s.service()
        seen.add((svc, ident))
        for fam in ("process_start_time_seconds", "process_resident_memory_bytes", "process_open_fds"):
            check(fam in s.families, "%s lacks %s" % (u, fam))
        check(s.value("process_resident_memory_bytes") > 1 * MiB, "%s: implausible RSS" % u)
        health = u[: -len("/metrics")] + "/health"
        st, hdrs, body = http_get(health)
        eq((st, body), (200, "ok\n"), "GET %s" % health)
        eq(hdrs.get("connection"), "close", "Connection header of %s" % health)
        eq(http_get(u[: -len("/metrics")] + "/nope")[0], 404, "GET /nope on %s" % u)
        eq(http_get(u, method="POST")[0], 405, "POST %s" % u)
    eq(sorted(x for x, _ in seen), sorted(["gateway"] + ["node"] * c.nodes + ["meta"] * len(metas)),
       "services behind the URLs")
    eq(sorted(int(i) for s, i in seen if s == "node"), list(range(1, c.nodes + 1)), "node ids")
    eq(sorted(int(i) for s, i in seen if s == "meta"), sorted(int(n[5:]) for n in metas), "replica ids")


@suite.case
def one_leader_one_term(c):
    """Exactly one replica says leader, every replica reports the same term,
    leader id and member count; the indexes are consistent."""
    deadline = time.time() + 10
    while True:
        metas = scrape_all(c)["meta"]
        leaders = [s for s in metas if s.value("cairn_meta_raft_role", role="leader") == 1]
        terms = {s.value("cairn_meta_raft_term") for s in metas}
        leader_ids = {s.value("cairn_meta_raft_leader_id") for s in metas}
        if (len(leaders) == 1 and len(terms) == 1 and len(leader_ids) == 1) or time.time() > deadline:
            break
        time.sleep(0.2)
    eq(len(leaders), 1, "replicas reporting role leader")
    eq(len(terms), 1, "distinct terms across replicas (%s)" % sorted(terms))
    check(min(terms) >= 1, "term %s" % terms)
    eq(leader_ids, {float(leaders[0].service()[1])}, "leader id seen by every replica")
    for s in metas:
        roles = {l["role"]: v for l, v in s.samples("cairn_meta_raft_role")}
        eq(sorted(roles), ["candidate", "follower", "leader", "unavailable"], "role series at %s" % s.url)
        eq(sum(roles.values()), 1, "roles set at %s (%s)" % (s.url, roles))
        eq(s.value("cairn_meta_raft_members", kind="voter"), len(metas), "voters seen at %s" % s.url)
        commit, applied = s.value("cairn_meta_raft_commit_index"), s.value("cairn_meta_raft_applied_index")
        check(0 < applied <= commit <= s.value("cairn_meta_raft_last_index"),
              "indexes at %s: applied %s commit %s last %s" % (s.url, applied, commit,
                                                              s.value("cairn_meta_raft_last_index")))


@suite.case
def s3_traffic_moves_the_counters(c):
    c.make_bucket(BUCKET)
    big, small = os.urandom(MiB + 4097), os.urandom(INLINE_MAX // 2)
    before = scrape_all(c)
    r, frags = c.put_find_frags(BUCKET, "big", big)
    c.ok(r, "PUT big")
    eq(len(frags), c.k + c.m, "fragment files of the big object")
    c.ok(c.s3("PUT", BUCKET, "small", data=small), "PUT small")
    for key, data in (("big", big), ("small", small)):
        st, hdrs, body = c.s3("GET", BUCKET, key)
        eq((st, sha256(body)), (200, sha256(data)), "GET %s" % key)
    st, _, _ = c.s3("GET", BUCKET, "absent")
    eq(st, 404, "GET absent")
    after = scrape_all(c)

    def delta(kind, name, **labels):
        return total(after[kind], name, **labels) - total(before[kind], name, **labels)

    # gateway: requests by operation and status, bytes, latency
    eq(delta("gateway", "cairn_gateway_requests_total", op="PutObject", status="200"), 2, "PutObject 200")
    eq(delta("gateway", "cairn_gateway_requests_total", op="GetObject", status="200"), 2, "GetObject 200")
    eq(delta("gateway", "cairn_gateway_requests_total", op="GetObject", status="404"), 1, "GetObject 404")
    eq(delta("gateway", "cairn_gateway_received_bytes_total", op="PutObject"), len(big) + len(small),
       "gateway bytes received by PutObject")
    sent_get = delta("gateway", "cairn_gateway_sent_bytes_total", op="GetObject")
    check(len(big) + len(small) < sent_get < len(big) + len(small) + 2 * KiB,
          "gateway bytes sent by GetObject: %d for %d bytes of objects plus one error body" %
          (sent_get, len(big) + len(small)))
    eq(delta("gateway", "cairn_gateway_request_duration_seconds_count", op="PutObject"), 2, "PutObject latencies")
    eq(delta("gateway", "cairn_gateway_request_duration_seconds_bucket", op="GetObject", le="+Inf"), 3,
       "GetObject latencies in the +Inf bucket")
    check(delta("gateway", "cairn_gateway_request_duration_seconds_sum", op="PutObject") > 0, "PutObject time")
    eq(total(after["gateway"], "cairn_gateway_requests_in_flight"), 0, "gateway requests in flight")

    # nodes: one FRAG_PUT per fragment, the files' exact bytes, the count stored
    eq(delta("node", "cairn_node_requests_total", op="frag_put", result="ok"), c.k + c.m, "frag_put ok")
    eq(delta("node", "cairn_node_received_bytes_total", op="frag_put"), sum(os.path.getsize(f.path) for f in frags),
       "node bytes received by frag_put (the fragment files' sizes)")
    eq(delta("node", "cairn_node_fragments"), c.k + c.m, "fragments stored")
    gets = delta("node", "cairn_node_requests_total", op="frag_get", result="ok")
    check(gets >= c.k, "frag_get ok: %d, want at least k=%d" % (gets, c.k))
    check(delta("node", "cairn_node_sent_bytes_total", op="frag_get") >= len(big), "node bytes sent by frag_get")
    eq(delta("node", "cairn_node_request_duration_seconds_count", op="frag_put"), c.k + c.m, "frag_put latencies")
    for s in after["node"]:
        check(s.value("cairn_node_disk_free_bytes") > 0 and s.value("cairn_node_disk_used_bytes") > 0,
              "disk gauges at %s" % s.url)

    # metadata: the leader committed both records and answered the reads
    eq(delta("meta", "cairn_meta_requests_total", op="obj_put", result="ok"), 2, "obj_put ok")
    check(delta("meta", "cairn_meta_requests_total", op="obj_get", result="ok") >= 2, "obj_get ok")
    check(delta("meta", "cairn_meta_requests_total", op="obj_get", result="not_found") >= 1, "obj_get not_found")
    commits = [s.value("cairn_meta_raft_commit_index") for s in after["meta"]]
    check(max(commits) > max(s.value("cairn_meta_raft_commit_index") for s in before["meta"]),
          "commit index moved (%s)" % commits)


def silent_client(url, payload=b""):
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    if payload:
        s.sendall(payload)
    return s


@suite.case
def silent_clients_do_not_block_scrapes(c):
    """Clients that connect and send nothing (or half a request line) hold
    no one up: scrapes of the same endpoint, also from threads in parallel,
    answer at once; the server drops the silent ones after its 5 s timeout."""
    urls = c.env["CAIRN_METRICS_URLS"].split()
    silent = []
    for u in urls:
        silent.append(silent_client(u))
        silent.append(silent_client(u, b"GET /metr"))
    results, errors = [], []

    def scrape(u):
        t0 = time.time()
        try:
            Scrape(u)
            results.append(time.time() - t0)
        except Exception as e:  # reported below
            errors.append("%s: %s" % (u, e))

    t0 = time.time()
    threads = [threading.Thread(target=scrape, args=(u,)) for u in urls for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    eq(errors, [], "scrapes beside silent clients")
    eq(len(results), 3 * len(urls), "scrapes finished")
    check(max(results) < 2.0, "slowest scrape beside silent clients took %.2fs" % max(results))
    # The server gives up on them after 5 s: EOF (maybe after a 408).
    for s in silent:
        s.settimeout(max(1.0, t0 + 9 - time.time()))
        data = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        except socket.timeout:
            raise TestFailure("a silent connection was still open %.1fs after connecting" % (time.time() - t0))
        finally:
            s.close()
        check(data == b"" or data.startswith(b"HTTP/1.1 408"), "answer to a silent client: %r" % data[:80])
    waited = time.time() - t0
    check(4.0 <= waited < 9.0, "silent connections closed after %.1fs, want about 5s" % waited)


if __name__ == "__main__":
    suite.main()
