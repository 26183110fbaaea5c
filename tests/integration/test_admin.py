#!/usr/bin/python3
"""cairn-admin's node and status commands against a real cluster (6 nodes,
4+2), and `tools/cairn-cluster add-node`.

Bad input (unknown node, duplicate address, zero or malformed weight,
malformed address, a change that would leave fewer than k+m nodes up)
gets a clear message, exit status 1 or 2, and leaves the cluster map
exactly as it was. `status` reports every node reachable. A node added
with the launcher receives fragments of new objects about a second later
(the gateways poll the map), survives a restart of the cluster, and a
drained node receives none. Removal is refused while the node holds
fragments or cannot be asked; with --force it warns, and `status --deep`
then counts the degraded objects. Also the regression of `meta status`
listing followers twice when the configuration has no [meta.N] sections."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import json
import os
import re
import subprocess
import time

from harness import (INLINE_MAX, LAUNCHER, KiB, Suite, TestFailure, _proc_start_time, admin, admin_ok, bin_dir, check,
                     eq, sha256, short)

suite = Suite("admin")
BUCKET = "admintest"
ADDED = {}       # the node add-node started: id, addr, name
WRITTEN = {}     # key -> sha256 of every object written


# ---------------------------------------------------------------- helpers

def admin_json(c, *args):
    out = admin_ok(c, "--json", *args)
    try:
        return json.loads(out)
    except ValueError:
        raise TestFailure("cairn-admin --json %s: not JSON: %s" % (" ".join(args), short(out)))


def node_map(c):
    return admin_json(c, "node", "list")


def node_of(m, nid):
    for n in m["nodes"]:
        if n["id"] == nid:
            return n
    return None


def refused(c, args, words, rcs=(1, 2)):
    """cairn-admin ARGS must fail with an exit status in rcs, say `words`
    (a regular expression) on stderr, and leave the cluster map as it was."""
    before = node_map(c)
    rc, out, err = admin(c, *args)
    what = "cairn-admin %s" % " ".join(args)
    check(rc in rcs, "%s: expected exit status %s, got %d (stdout %s, stderr %s)" % (what, rcs, rc, short(out),
                                                                                       short(err)))
    check(re.search(words, err), "%s: stderr lacks /%s/: %s" % (what, words, short(err, 600)))
    check(err.startswith("cairn-admin: "), "%s: the message does not name the tool: %s" % (what, short(err)))
    eq(node_map(c), before, "%s: the cluster map after the refusal" % what)
    return err


def frags_on(c, name):
    """Paths of the fragment files under DIR/data/<name>."""
    return {p for p, f in c.frag_files().items() if f.node == name}


def put_objects(c, prefix, n, size=100 * KiB):
    """n objects above the inline limit, each with its own bytes."""
    check(size > INLINE_MAX, "objects must be stored as fragments")
    for i in range(n):
        key = "%s-%03d" % (prefix, i)
        data = (key.encode() * (size // len(key) + 1))[:size]
        c.ok(c.curl("PUT", "/%s/%s" % (BUCKET, key), data=data), "PUT %s" % key)
        WRITTEN[key] = sha256(data)


def wait_map_seen(c):
    """Gateways poll the map every second: give them two."""
    time.sleep(2.2)


def launcher(c, *args, timeout=90):
    env = dict(os.environ)
    env["CAIRN_BIN"] = bin_dir()
    try:
        return subprocess.run([LAUNCHER] + list(args), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure("cairn-cluster %s: no answer within %ds" % (" ".join(args), timeout))


# ---------------------------------------------------------------- cases

@suite.case
def help_everywhere(c):
    """--help of every command prints its usage and exits 0, even without a
    configuration."""
    for args in (["node", "--help"], ["node", "add", "--help"], ["node", "remove", "--help"],
                 ["node", "drain", "-h"], ["status", "--help"], ["meta", "--help"]):
        for conf in (None, "/nonexistent/cluster.conf"):
            rc, out, err = admin(c, *args, conf=conf)
            eq(rc, 0, "cairn-admin %s (config %s): exit status; stderr %s" % (" ".join(args), conf, short(err)))
            check(out.startswith("usage: cairn-admin"), "cairn-admin %s: usage: %s" % (" ".join(args), short(out)))
    rc, out, err = admin(c, "node", "list", conf="/nonexistent/cluster.conf")
    eq(rc, 2, "node list without a configuration")
    out = subprocess.run([os.path.join(bin_dir(), "cairn-admin"), "--help"], capture_output=True, text=True).stdout
    check(re.search(r"^ *node +list", out, re.M) and re.search(r"^ *status +\[--deep\]", out, re.M),
          "cairn-admin --help lists node and status: %s" % out)


@suite.case
def node_list(c):
    m = node_map(c)
    check(m["epoch"] >= 1, "the map is seeded: %s" % m)
    eq((m["k"], m["m"]), (4, 2), "k+m")
    eq(sorted(n["id"] for n in m["nodes"]), list(range(1, 7)), "node ids")
    eq(m["next_id"], 7, "next id")
    for n in m["nodes"]:
        eq((n["state"], n["zone"], n["weight_milli"]), ("up", "default", 1000), "node %d" % n["id"])
        check(re.match(r"^127\.0\.0\.1:\d+$", n["addr"]), "node %d address %s" % (n["id"], n["addr"]))
    text = admin_ok(c, "node", "list")
    check(re.search(r"epoch %d, 4\+2 erasure coding, 6 nodes: 6 up" % m["epoch"], text), "node list: %s" % text)


@suite.case
def status_all_reachable(c):
    c.make_bucket(BUCKET)
    put_objects(c, "before", 12)
    st = admin_json(c, "status")
    eq(len(st["nodes"]), 6, "nodes in status")
    total = 0
    for n in st["nodes"]:
        check(n["reachable"] is True, "node %d reachable: %s" % (n["id"], n))
        check(n["free_bytes"] > 0 and n["used_bytes"] > 0, "node %d bytes: %s" % (n["id"], n))
        total += n["fragments"]
    eq(total, 12 * 6, "fragments the nodes report")
    eq(st["objects"], 12, "objects in status")
    eq(st["misplaced_fragments"], 0, "misplaced fragments")
    eq(st["objects_on_unavailable_nodes"], 0, "objects on unavailable nodes")
    eq(len(st["meta"]), 3, "metadata replicas")
    eq(sorted(r["role"] for r in st["meta"]), ["follower", "follower", "leader"], "replica roles")
    text = admin_ok(c, "status")
    rows = [l for l in text.splitlines() if re.match(r"^\d+ +127\.0\.0\.1:\d+ +default ", l)]
    eq(len(rows), 6, "node rows of status:\n%s" % text)
    for l in rows:
        check(re.search(r" up +yes ", l), "status row: %s" % l)
    deep = admin_json(c, "status", "--deep")["deep"]
    eq((deep["fragments_checked"], deep["bad_fragments"], deep["degraded_objects"]), (72, 0, 0), "deep check")
    eq((deep["worst_good_fragments"], deep["worst_of"], deep["worst_objects"]), (6, 6, 12), "deep worst case")


@suite.case
def bad_input(c):
    m = node_map(c)
    n1 = node_of(m, 1)
    refused(c, ["node", "drain", "99"], r"no node 99 in the cluster map")
    refused(c, ["node", "undrain", "99"], r"no node 99 in the cluster map")
    refused(c, ["node", "out", "99"], r"no node 99 in the cluster map")
    refused(c, ["node", "remove", "99"], r"no node 99 in the cluster map")
    refused(c, ["node", "weight", "99", "2"], r"no node 99 in the cluster map")
    refused(c, ["node", "add", n1["addr"]], r"duplicate address: %s is node 1" % re.escape(n1["addr"]))
    refused(c, ["node", "add", "127.0.0.1:1", "--weight", "0"], r"bad weight '0': a weight must be greater than 0")
    refused(c, ["node", "add", "127.0.0.1:1", "--weight", "-2"], r"greater than 0")
    refused(c, ["node", "add", "127.0.0.1:1", "--weight", "heavy"], r"a decimal number")
    refused(c, ["node", "weight", "1", "0"], r"a weight must be greater than 0")
    refused(c, ["node", "weight", "1", "0.000"], r"a weight must be greater than 0")
    refused(c, ["node", "weight", "1", "1.2345"], r"at most three decimal places")
    refused(c, ["node", "add", "localhost"], r"bad address 'localhost': expected HOST:PORT")
    refused(c, ["node", "add", "127.0.0.1:99999"], r"port must be a number from 1 to 65535")
    refused(c, ["node", "add", "127.0.0.1:1", "--zone", ""], r"bad zone")
    refused(c, ["node", "add", "127.0.0.1:1", "--id", "3"], r"id 3, but node 3 of the map is")
    refused(c, ["node", "add", "127.0.0.1:1"], r"cannot reach a storage node at 127\.0\.0\.1:1")
    refused(c, ["node", "drain", "abc"], r"a node id is a positive integer, not 'abc'")
    refused(c, ["node", "drain"], r"missing argument")
    refused(c, ["node", "frobnicate", "1"], r"unknown command 'frobnicate'")
    refused(c, ["node", "add", "127.0.0.1:1", "--color", "red"], r"unknown option '--color'")
    # exactly k+m = 6 nodes up: none may leave
    for args, verb in ((["node", "drain", "1"], "draining"), (["node", "out", "2"], "taking out"),
                       (["node", "remove", "3"], "removing")):
        err = refused(c, args, r"refused: %s node \d would leave 5 nodes up, fewer than the 6 \(k\+m = 4\+2\)" % verb,
                      rcs=(1,))
    # syntax errors are usage errors (2), refusals by the cluster's state are 1
    eq(admin(c, "node", "weight", "1", "x")[0], 2, "exit status of a malformed weight")
    eq(admin(c, "node", "drain", "99")[0], 1, "exit status of an unknown node")
    # no change: nothing to do, exit 0, epoch kept
    out = admin_ok(c, "node", "undrain", "1")
    check("up already" in out, "undrain of an up node: %s" % out)
    eq(node_map(c)["epoch"], m["epoch"], "epoch after all the refusals")


@suite.case
def meta_status_without_meta_sections(c):
    """Regression: with only the [cluster] meta list (no [meta.N] sections)
    `meta status` listed the followers twice."""
    conf = os.path.join(c.work, "no-meta-sections.conf")
    out, skip = [], False
    with open(os.path.join(c.dir, "cluster.conf")) as f:
        for line in f:
            if re.match(r"^\s*\[meta\.\d+\]", line):
                skip = True
                continue
            if line.lstrip().startswith("["):
                skip = False
            if not skip:
                out.append(line)
    with open(conf, "w") as f:
        f.writelines(out)
    rows = json.loads(admin_ok(c, "--json", "meta", "status", conf=conf))
    eq(sorted(r["id"] for r in rows), [1, 2, 3], "replica ids in meta status:\n%s" % rows)
    text = admin_ok(c, "meta", "status", conf=conf)
    eq(len(text.strip().splitlines()), 4, "meta status lines:\n%s" % text)


@suite.case
def add_node(c):
    before = node_map(c)
    r = launcher(c, "add-node", c.dir, "--zone", "default", "--weight", "1.5")
    check(r.returncode == 0, "add-node failed (rc %d): %s%s" % (r.returncode, r.stdout, r.stderr))
    mo = re.search(r"added node (\d+) at (127\.0\.0\.1:\d+)", r.stdout)
    check(mo, "add-node output: %s" % r.stdout)
    nid, addr = int(mo.group(1)), mo.group(2)
    eq(nid, 7, "the new node's id")
    name = "node-%d" % nid
    pid = c.pid(name)
    check(pid is not None, "no pid file %s/pids/%s.pid" % (c.dir, name))
    c.procs[name] = (pid, _proc_start_time(pid))
    ADDED.update(id=nid, addr=addr, name=name)
    m = node_map(c)
    eq(m["epoch"], before["epoch"] + 1, "epoch after add-node")
    n = node_of(m, nid)
    check(n is not None, "node %d in the map: %s" % (nid, m))
    eq((n["addr"], n["state"], n["weight_milli"], n["zone"]), (addr, "up", 1500, "default"), "the new node")
    with open(os.path.join(c.dir, "nodes.extra")) as f:
        check(re.search(r"^%d %s default 1\.5$" % (nid, re.escape(addr)), f.read(), re.M), "nodes.extra")
    st = launcher(c, "status", c.dir)
    check(re.search(r"^%s +running" % name, st.stdout, re.M), "launcher status: %s" % st.stdout)
    # the same address again: refused, map unchanged
    refused(c, ["node", "add", addr], r"duplicate address")

    # new objects reach it once the gateways have the new map
    wait_map_seen(c)
    had = frags_on(c, name)
    eq(len(had), 0, "fragments on the new node before any write")
    put_objects(c, "after-add", 20)
    got = frags_on(c, name)
    print("# %d of 20 new objects placed a fragment on the new node" % len(got), flush=True)
    check(len(got) >= 10, "only %d of 20 new objects have a fragment on the new node" % len(got))
    st = admin_json(c, "status")
    sn = [x for x in st["nodes"] if x["id"] == nid][0]
    check(sn["reachable"] and sn["fragments"] == len(got), "status of the new node: %s (files: %d)" % (sn, len(got)))
    check(all(x["reachable"] for x in st["nodes"]), "every node reachable: %s" % st["nodes"])
    check(st["misplaced_fragments"] > 0, "objects written before the add are misplaced now: %s" % st)
    for key, digest in WRITTEN.items():
        s, d, _ = c.get_sha(BUCKET, key)
        eq((s, d), (200, digest), "GET %s" % key)

    # bad input against a map of 7: the last nodes still may not go
    refused(c, ["node", "add", "127.0.0.1:2", "--id", "7"], r"id 7, but node 7 of the map is")
    refused(c, ["node", "add", "127.0.0.1:2", "--id", "4"], r"id 4, but node 4")


@suite.case
def restart_keeps_added_node(c):
    check(ADDED, "needs add_node")
    c.stop()
    c.start()
    name = ADDED["name"]
    check(c.alive(name), "%s runs again after a restart" % name)
    n = node_of(node_map(c), ADDED["id"])
    eq((n["addr"], n["state"]), (ADDED["addr"], "up"), "the added node after a restart")
    st = admin_json(c, "status")
    check(all(x["reachable"] for x in st["nodes"]), "every node reachable after a restart: %s" % st["nodes"])


@suite.case
def drain_and_states(c):
    check(ADDED, "needs add_node")
    nid, name = ADDED["id"], ADDED["name"]
    e0 = node_map(c)["epoch"]
    out = admin_ok(c, "node", "drain", nid)
    check("draining (was up)" in out, "drain: %s" % out)
    eq(node_of(node_map(c), nid)["state"], "draining", "state after drain")
    # now exactly 6 up again: another drain is refused
    refused(c, ["node", "drain", "1"], r"would leave 5 nodes up", rcs=(1,))
    wait_map_seen(c)
    before = frags_on(c, name)
    put_objects(c, "after-drain", 20)
    eq(sorted(frags_on(c, name) - before), [], "new fragments on the draining node")
    # still readable while draining
    for key, digest in WRITTEN.items():
        s, d, _ = c.get_sha(BUCKET, key)
        eq((s, d), (200, digest), "GET %s" % key)
    st = admin_json(c, "status")
    check(st["misplaced_fragments"] >= len(before), "the draining node's fragments are misplaced: %s" % st)

    # every change bumps the epoch by one; weights are decimals
    out = admin_ok(c, "node", "weight", nid, "2.25")
    check("weight 2.25 (was 1.5)" in out, "weight: %s" % out)
    eq(node_of(node_map(c), nid)["weight_milli"], 2250, "weight_milli")
    admin_ok(c, "node", "undrain", nid)
    admin_ok(c, "node", "out", nid)
    n = node_of(node_map(c), nid)
    eq((n["state"], n["weight_milli"]), ("out", 2250), "after out")
    admin_ok(c, "node", "undrain", nid)
    admin_ok(c, "node", "drain", nid)
    eq(node_map(c)["epoch"], e0 + 6, "epoch after six changes")


@suite.case
def remove(c):
    check(ADDED, "needs add_node")
    nid, name = ADDED["id"], ADDED["name"]
    held = len(frags_on(c, name))
    check(held > 0, "the added node holds fragments")
    refused(c, ["node", "remove", str(nid)], r"refused: node %d still holds %d fragments" % (nid, held), rcs=(1,))

    # an unreachable node: added only with --force, removed only with --force
    rc, out, err = admin(c, "node", "add", "127.0.0.1:1", "--zone", "nowhere", "--force")
    eq(rc, 0, "node add --force of a node that does not answer: %s" % err)
    check("warning: no storage node answers" in err, "warning of add --force: %s" % err)
    ghost = int(re.search(r"added node (\d+)", out).group(1))
    eq(ghost, nid + 1, "the id after %d" % nid)
    st = admin_json(c, "status")
    g = [x for x in st["nodes"] if x["id"] == ghost][0]
    check(g["reachable"] is False, "status shows the ghost unreachable: %s" % g)
    refused(c, ["node", "remove", str(ghost)], r"cannot ask node %d at 127\.0\.0\.1:1 whether it still holds" % ghost,
            rcs=(1,))
    rc, out, err = admin(c, "node", "remove", str(ghost), "--force")
    eq(rc, 0, "node remove --force of the ghost: %s" % err)
    check("warning: node %d at 127.0.0.1:1 cannot be asked" % ghost in err, "warning: %s" % err)
    check(node_of(node_map(c), ghost) is None, "the ghost is gone")
    # ids are never reused
    refused(c, ["node", "add", "127.0.0.1:2", "--force", "--id", str(ghost)], r"an id used before")
    rc, out, err = admin(c, "node", "add", "127.0.0.1:2", "--force")
    eq(rc, 0, "another ghost: %s" % err)
    eq(int(re.search(r"added node (\d+)", out).group(1)), ghost + 1, "the next id skips the removed one")
    admin_ok(c, "node", "remove", ghost + 1, "--force")

    # --force on a node with fragments: a warning of what is lost, then
    # status counts the objects that lost a fragment
    rc, out, err = admin(c, "node", "remove", str(nid), "--force")
    eq(rc, 0, "node remove --force: %s" % err)
    check(re.search(r"warning: node %d still holds %d fragments" % (nid, held), err), "warning: %s" % err)
    mo = re.search(r"warning: (\d+) objects? \(or parts\) had a fragment on node %d: (\d+) stay readable" % nid, err)
    check(mo and int(mo.group(1)) == held and int(mo.group(2)) == held, "warning of the loss: %s" % err)
    eq(node_of(node_map(c), nid), None, "the node after remove --force")
    st = admin_json(c, "status", "--deep")
    eq(st["objects_on_unavailable_nodes"], held, "objects with a fragment on a removed node")
    eq(st["deep"]["degraded_objects"], held, "degraded objects")
    eq((st["deep"]["worst_good_fragments"], st["deep"]["worst_of"]), (5, 6), "the worst case")
    eq(st["deep"]["unreadable_objects"], 0, "unreadable objects")
    for key, digest in WRITTEN.items():
        s, d, _ = c.get_sha(BUCKET, key)
        eq((s, d), (200, digest), "GET %s after the removal" % key)


if __name__ == "__main__":
    suite.main()
