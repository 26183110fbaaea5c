"""
checker.py — verdict on one fault-suite history (workload.History).

Model: each key is a register holding "absent" or the bytes of one PUT.
Every PUT body is unique, so a GET's sha256 names the write it saw.

For a read r of key K (a GET, or the presence of K in a LIST), the writes
that may explain it are those
  - invoked before r completed (w.t_inv < r.t_end), and
  - not yet known to be replaced when r began: w is replaced at S(w), the
    earliest moment some write w2 that began after w ended (w.t_end <
    w2.t_inv) is known to have taken effect — w2 acknowledged, or some read
    that returned w2's bytes completed. r is fine when S(w) >= r.t_inv.
Writes that failed with "info" (outcome unknown) may take effect at any
time after their invocation (t_end = infinity) and are acknowledged never;
writes that certainly failed are left out. The key starts absent (an
acknowledged delete at minus infinity: each run uses a fresh bucket).

Cost: O(W log W + R * D) per key (W writes, R reads, D deletes), so hours of
history check in seconds.

Verdict counters (all must be 0):
  wrong_reads      a GET returned bytes that no PUT to that key ever sent
                   (garbage, truncation, another key's data, a write that was
                   refused before it was sent, or one invoked after the read)
  stale_reads      a GET during the run returned a value (or 404) that an
                   acknowledged (or observed) later write had replaced
  lost_writes      the same, in the reads after quiescence: an acknowledged
                   PUT or DELETE that is not visible once every fault healed
  unreadable       a GET after quiescence that kept failing (5xx, timeout)
  stale_list       a LIST during the run that showed a key absent (or
                   present) when it could not be
  list_ghosts      after quiescence: listed, but GET says 404
  list_missing     after quiescence: GET returns it, LIST does not show it
  list_garbage     a LIST showed a key outside the workload's key set
  unexpected       a 4xx answer to a well-formed write, or a workload error
"""

import bisect

INF = float("inf")


class W:
    """A write as the checker sees it."""
    __slots__ = ("op", "kind", "sha", "t_inv", "t_end", "acked", "E", "S")

    def __init__(self, op, kind, sha, t_inv, t_end, acked):
        self.op, self.kind, self.sha, self.t_inv, self.t_end, self.acked = op, kind, sha, t_inv, t_end, acked
        self.E = t_end if acked else INF   # earliest evidence that it took effect
        self.S = INF                        # earliest evidence that it was replaced


def _key_writes(ops):
    ws = [W(None, "delete", None, -INF, -INF, True)]
    for op in ops:
        if op.kind not in ("put", "delete") or op.status not in ("ok", "info"):
            continue
        if op.status == "ok":
            ws.append(W(op, op.kind, op.sha, op.t_inv, op.t_end, True))
        else:
            ws.append(W(op, op.kind, op.sha, op.t_inv, INF, False))
    return ws


def _supersede(ws):
    """Fill w.S for every write: min E(w2) over w2 with w2.t_inv > w.t_end."""
    order = sorted(ws, key=lambda w: w.t_inv)
    invs = [w.t_inv for w in order]
    suffix = [INF] * (len(order) + 1)
    for i in range(len(order) - 1, -1, -1):
        suffix[i] = min(order[i].E, suffix[i + 1])
    for w in ws:
        i = bisect.bisect_right(invs, w.t_end)
        w.S = suffix[i]


class Verdict:
    FIELDS = ("wrong_reads", "stale_reads", "lost_writes", "unreadable", "stale_list", "list_ghosts",
              "list_missing", "list_garbage", "unexpected")

    def __init__(self):
        self.counts = {f: 0 for f in self.FIELDS}
        self.details = []      # human-readable lines, one per violation (capped when printed)
        self.stats = {}

    def bad(self, field, line):
        self.counts[field] += 1
        self.details.append("%s: %s" % (field, line))

    @property
    def ok(self):
        return all(v == 0 for v in self.counts.values())


def check(history, final_reads=(), final_list=None, list_reads=(), keyset=None, workload_errors=()):
    """history: workload.History of the run. final_reads: GET ops done after
    quiescence (Op objects, also valid as ordinary reads). final_list: the
    keys of the LIST after quiescence (or None). list_reads: GET ops of the
    listed keys after quiescence. keyset: the workload's keys."""
    v = Verdict()
    ops = list(history.ops)
    final_ids = set(id(o) for o in final_reads)
    allops = ops + [o for o in final_reads if o not in ops]
    by_key = {}
    for op in allops:
        if op.key is not None:
            by_key.setdefault(op.key, []).append(op)
    keys = set(keyset or by_key)
    keys.update(by_key)
    listings = [(o, set(o.result or ())) for o in ops if o.kind == "list" and o.status == "ok"]

    for key in sorted(keys):
        kops = by_key.get(key, [])
        ws = _key_writes(kops)
        by_sha = {w.sha: w for w in ws if w.kind == "put"}
        attempted = history.written.get(key, {})
        reads = [o for o in kops if o.kind == "get" and o.status == "ok"]
        for r in reads:
            if r.result is not None and r.result in by_sha:
                w = by_sha[r.result]
                w.E = min(w.E, r.t_end)
        _supersede(ws)
        deletes = [w for w in ws if w.kind == "delete"]
        for r in reads:
            final = id(r) in final_ids
            if r.result is not None:
                w = by_sha.get(r.result)
                if w is None:
                    src = attempted.get(r.result)
                    why = ("bytes of %r, whose PUT certainly failed (%s)" % (src, src.err) if src is not None
                           else "bytes never written to %s" % key)
                    v.bad("wrong_reads", "%r: %s" % (r, why))
                    continue
                if w.t_inv >= r.t_end:
                    v.bad("wrong_reads", "%r: bytes of %r, a PUT invoked after the read ended" % (r, w.op))
                    continue
                if w.S < r.t_inv:
                    v.bad("lost_writes" if final else "stale_reads",
                          "%r returned %r, replaced at %.3f by a later write" % (r, w.op, w.S))
            else:
                if not any(d.t_inv < r.t_end and d.S >= r.t_inv for d in deletes):
                    puts = [w.op for w in ws if w.kind == "put" and w.acked and w.t_end < r.t_inv]
                    v.bad("lost_writes" if final else "stale_reads",
                          "%r returned 404; last acknowledged PUT before it: %r" % (r, puts[-1] if puts else None))
        # LIST: the presence of key in each listing is a read of "present"/"absent".
        for lo, shown in listings:
            present = key in shown
            if present:
                good = any(w.kind == "put" and w.t_inv < lo.t_end and w.S >= lo.t_inv for w in ws)
            else:
                good = any(d.t_inv < lo.t_end and d.S >= lo.t_inv for d in deletes)
            if not good:
                v.bad("stale_list", "LIST #%d @%.3f-%.3f %s %s" % (lo.id, lo.t_inv, lo.t_end,
                                                                 "shows" if present else "lacks", key))

    for lo, shown in listings:
        extra = shown - keys if keyset else set()
        for k in sorted(extra):
            v.bad("list_garbage", "LIST #%d shows %r" % (lo.id, k))

    for r in final_reads:
        if r.status != "ok":
            v.bad("unreadable", "%r after quiescence" % r)
    if final_list is not None:
        fl = set(final_list)
        for r in list_reads:
            if r.status == "ok" and r.result is None:
                v.bad("list_ghosts", "%s listed after quiescence, GET 404" % r.key)
        for r in final_reads:
            if r.status == "ok" and r.result is not None and r.key not in fl:
                v.bad("list_missing", "%s readable after quiescence, not listed" % r.key)
        if keyset:
            for k in sorted(fl - set(keyset)):
                v.bad("list_garbage", "final LIST shows %r" % k)

    for op in ops:
        if op.note == "unexpected":
            v.bad("unexpected", "%r" % op)
    for e in workload_errors:
        v.bad("unexpected", "workload error: %s" % e)

    v.stats = stats(ops, final_reads)
    return v


def stats(ops, final_reads=()):
    s = {"ops": len(ops)}
    for kind in ("put", "get", "delete", "list"):
        ko = [o for o in ops if o.kind == kind]
        s[kind] = {st: sum(1 for o in ko if o.status == st) for st in ("ok", "fail", "info")}
    gets = [o for o in ops if o.kind == "get" and o.status == "ok"]
    s["get_200"] = sum(1 for o in gets if o.result is not None)
    s["get_404"] = sum(1 for o in gets if o.result is None)
    s["bytes_put_acked"] = sum(o.size or 0 for o in ops if o.kind == "put" and o.status == "ok")
    lat = sorted(o.latency() for o in ops if o.kind == "get" and o.t_end is not None)
    s["get_latency_max"] = lat[-1] if lat else 0.0
    s["get_latency_p99"] = lat[int(0.99 * (len(lat) - 1))] if lat else 0.0
    s["final_reads"] = len(final_reads)
    return s


# ---------------------------------------------------------------- self test

def self_test():
    """The checker against small histories with known answers. Returns a
    list of failures (empty when every case gave its expected verdict)."""
    from workload import History

    def mk(events):
        """events: (kind, key, tag, t_inv, t_end, status, result-tag) tuples."""
        h = History()
        finals = []
        for kind, key, tag, a, b, st, res in events:
            fin = kind == "final"
            op = h.begin(0, "get" if fin else kind, key)
            op.t_inv, op.t_end, op.status = a, b, st
            if kind == "put":
                h.note_put(op, "sha-" + tag, 1)
            if kind in ("get", "final"):
                op.result = None if res is None else "sha-" + res
            if kind == "list":
                op.result = res
            if fin:
                h.ops.remove(op)
                finals.append(op)
        return h, finals

    cases = [
        ("read own write", [("put", "a", "1", 0, 1, "ok", None), ("get", "a", None, 2, 3, "ok", "1")], {}),
        ("read of nothing", [("get", "a", None, 0, 1, "ok", None)], {}),
        ("garbage", [("put", "a", "1", 0, 1, "ok", None), ("get", "a", None, 2, 3, "ok", "zz")],
         {"wrong_reads": 1}),
        ("other key's bytes", [("put", "b", "1", 0, 1, "ok", None), ("get", "a", None, 2, 3, "ok", "1")],
         {"wrong_reads": 1}),
        ("refused put read back", [("put", "a", "1", 0, 1, "fail", None), ("get", "a", None, 2, 3, "ok", "1")],
         {"wrong_reads": 1}),
        ("stale after overwrite", [("put", "a", "1", 0, 1, "ok", None), ("put", "a", "2", 2, 3, "ok", None),
                                   ("get", "a", None, 4, 5, "ok", "1")], {"stale_reads": 1}),
        ("concurrent overwrite", [("put", "a", "1", 0, 1, "ok", None), ("put", "a", "2", 2, 6, "ok", None),
                                  ("get", "a", None, 4, 5, "ok", "1"), ("get", "a", None, 4, 5, "ok", "2")], {}),
        ("indeterminate may appear late", [("put", "a", "1", 0, 1, "ok", None), ("put", "a", "2", 2, 3, "info", None),
                                           ("get", "a", None, 4, 5, "ok", "1"), ("get", "a", None, 6, 7, "ok", "2"),
                                           ("final", "a", None, 8, 9, "ok", "2")], {}),
        ("observed write supersedes", [("put", "a", "1", 0, 1, "ok", None), ("put", "a", "2", 2, 9, "info", None),
                                       ("get", "a", None, 3, 4, "ok", "2"), ("get", "a", None, 5, 6, "ok", "1")],
         {"stale_reads": 1}),
        ("lost acked put", [("put", "a", "1", 0, 1, "ok", None), ("final", "a", None, 8, 9, "ok", None)],
         {"lost_writes": 1}),
        ("resurrected delete", [("put", "a", "1", 0, 1, "ok", None), ("delete", "a", None, 2, 3, "ok", None),
                                ("final", "a", None, 8, 9, "ok", "1")], {"lost_writes": 1}),
        ("delete then 404", [("put", "a", "1", 0, 1, "ok", None), ("delete", "a", None, 2, 3, "ok", None),
                             ("get", "a", None, 4, 5, "ok", None)], {}),
        ("unreadable", [("put", "a", "1", 0, 1, "ok", None), ("final", "a", None, 8, 9, "fail", None)],
         {"unreadable": 1}),
        ("list stale", [("put", "a", "1", 0, 1, "ok", None), ("list", None, None, 2, 3, "ok", [])],
         {"stale_list": 1}),
        ("list ok", [("put", "a", "1", 0, 1, "ok", None), ("list", None, None, 2, 3, "ok", ["a"])], {}),
    ]
    failures = []
    for name, events, want in cases:
        h, finals = mk(events)
        v = check(h, final_reads=finals, keyset=["a", "b"])
        got = {k: n for k, n in v.counts.items() if n}
        if got != want:
            failures.append("%s: expected %s, got %s (%s)" % (name, want, got, "; ".join(v.details)))
    return failures


if __name__ == "__main__":
    import sys
    sys.dont_write_bytecode = True
    f = self_test()
    for line in f:
        print("FAIL " + line)
    print("checker self-test: %d failures" % len(f))
    sys.exit(1 if f else 0)
