"""
nemesis.py — faults injected into a running cluster (a harness.Cluster),
one at a time or several at once, each recorded as an event in the run's
History (start and end time, what was done).

Faults:
  kill_nodes N     kill -9 of N storage nodes (N <= m), restarted at heal
  kill_meta ROLE   kill -9 of the metadata leader or a follower (found with
                   cairn-admin meta status; without it, replicas in turn)
  kill_gateway     kill -9 of the gateway, restarted at heal
  pause_node       SIGSTOP of a storage node, SIGCONT at heal
  corrupt N        N fragment files damaged in place: a flipped byte in a
                   block, in a block checksum or in the header, or the file
                   truncated
  wipe             the victim node killed and restarted with an empty data dir
  enospc           the victim node restarted on a small loop-mounted ext4
                   (tmpfs when loop devices are unavailable) that is nearly
                   full; space is freed half-way through; at heal the node
                   goes back to its own directory

Damage budget. Repair runs only after quiescence (run.py), so permanent
damage during a scenario must never take an object below k intact
fragments, or a "lost write" would be our doing. Permanent damage to nodes (wipe, enospc) always hits the scenario's
one victim node; corruption only touches objects that have all k+m
fragments on disk, intact, and were not damaged before — at most one
corrupted fragment per object. Worst case per object: one fragment missing
since its PUT (k+1 acks), or one corrupted, plus the victim's: k+m-2 >= k.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time

import wire


def _now():
    return time.monotonic()


class Nemesis:
    def __init__(self, cluster, history, seed=1, log=print, k=4, m=2, admin=None):
        self.c, self.h = cluster, history
        self.rnd = random.Random(seed)
        self.log = log
        self.k, self.m = k, m
        self.admin = admin if admin and os.path.exists(admin) else None
        self.counts = {}          # fault name -> times injected
        self.damaged = set()      # oids with a corrupted fragment
        self.corrupted = []       # (path, mode)
        self.paused = {}          # node name -> pid
        self.mount = None         # the enospc mount, while active
        self.t_wall0 = time.time()
        self.nodes = cluster.node_names()
        self.victim = self.rnd.choice(self.nodes)
        self.notes = []           # things observed while injecting (ENOSPC answers, leftovers...)
        self.lock = threading.Lock()
        self.meta_turn = 0
        self.mode_turn = 0        # corruption modes rotate across calls

    # ---- bookkeeping

    def _count(self, name):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def _event(self, what):
        return self.h.event(what, _now())

    def _done(self, ev):
        self.h.event_end(ev, _now())

    # ---- processes

    def alive_nodes(self):
        return [n for n in self.nodes if self.c.alive(n) and n not in self.paused]

    def kill_nodes(self, n=1, exclude=()):
        """kill -9 of n running nodes (never the paused one). Returns a heal function."""
        cand = [x for x in self.alive_nodes() if x not in exclude]
        victims = self.rnd.sample(cand, min(n, len(cand)))
        ev = self._event("kill -9 %s" % ", ".join(victims))
        for v in victims:
            self.c.kill9(v)
            self._count("kill -9 storage node")
        self.log("# nemesis: kill -9 %s" % ", ".join(victims))

        def heal():
            self.c.restart()
            self._done(ev)
        return heal

    def meta_status(self):
        if not self.admin:
            return None
        try:
            r = subprocess.run([self.admin, "--config", os.path.join(self.c.dir, "cluster.conf"), "--json", "meta",
                                "status"], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
            return json.loads(r.stdout)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            return None

    def kill_meta(self, role="leader"):
        rows = self.meta_status()
        target = None
        if rows:
            alive = [r for r in rows if self.c.alive("meta-%d" % r["id"])]
            if role == "leader":
                target = [r["id"] for r in alive if r.get("role") == "leader"][:1]
            else:
                target = [r["id"] for r in alive if r.get("role") != "leader"]
            target = "meta-%d" % self.rnd.choice(target) if target else None
        if target is None:  # no admin tool or no leader known: replicas in turn
            metas = sorted(n for n in self.c.proc_names() if n.startswith("meta-") and self.c.alive(n))
            target = metas[self.meta_turn % len(metas)]
            self.meta_turn += 1
            role = "replica"
        ev = self._event("kill -9 %s (%s)" % (target, role))
        self.c.kill9(target)
        self._count("kill -9 metadata %s" % role)
        self.log("# nemesis: kill -9 %s (%s)" % (target, role))

        def heal():
            self.c.restart()
            self._done(ev)
        return heal

    def kill_gateway(self):
        ev = self._event("kill -9 gateway-1")
        self.c.kill9("gateway-1")
        self._count("kill -9 gateway")
        self.log("# nemesis: kill -9 gateway-1")

        def heal():
            self.c.restart()
            self._done(ev)
        return heal

    def pause_node(self, exclude=()):
        cand = [x for x in self.alive_nodes() if x not in exclude]
        name = self.rnd.choice(cand)
        pid = self.c.procs[name][0]
        ev = self._event("SIGSTOP %s" % name)
        os.kill(pid, signal.SIGSTOP)
        self.paused[name] = pid
        self._count("SIGSTOP storage node")
        self.log("# nemesis: SIGSTOP %s" % name)

        def heal():
            self._cont(name)
            self._done(ev)
        return heal

    def _cont(self, name):
        pid = self.paused.pop(name, None)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    # ---- disks

    def _node_id(self, name):
        return int(name.split("-", 1)[1])

    def frag_inventory(self):
        """{oid: [(path, node name, index, mtime)]} of every fragment file now on disk."""
        inv = {}
        data = os.path.join(self.c.dir, "data")
        for node in self.nodes:
            root = os.path.join(data, node, "frags")
            try:
                fans = os.listdir(root)
            except OSError:
                continue
            for fan in fans:
                try:
                    names = os.listdir(os.path.join(root, fan))
                except OSError:
                    continue
                for f in names:
                    oid, _, idx = f.partition(".")
                    if len(oid) != 32 or not idx.isdigit():
                        continue
                    p = os.path.join(root, fan, f)
                    try:
                        mt = os.stat(p).st_mtime
                    except OSError:
                        continue
                    inv.setdefault(oid, []).append((p, node, int(idx), mt))
        return inv

    def corrupt(self, n=4, modes=("flip_block", "flip_sum", "flip_header", "truncate")):
        """Damage n fragment files of distinct, fully intact objects written
        during this scenario. Permanent."""
        inv = self.frag_inventory()
        cand = []
        for oid, frags in inv.items():
            if oid in self.damaged or len(frags) != self.k + self.m:
                continue
            if len(set(f[2] for f in frags)) != self.k + self.m:
                continue
            if min(f[3] for f in frags) < self.t_wall0:
                continue
            cand.append(oid)
        self.rnd.shuffle(cand)
        done = []
        for oid in cand:
            if len(done) >= n:
                break
            frags = inv[oid]
            if any(wire.frag_check(p) is not None for p, _, _, _ in frags):
                continue  # already bad (or vanished): not ours to count
            p, node, idx, _ = self.rnd.choice(frags)
            mode = modes[self.mode_turn % len(modes)]
            try:
                self._damage(p, mode)
            except OSError:
                continue  # deleted under us by an overwrite
            self.mode_turn += 1
            self.damaged.add(oid)
            self.corrupted.append((p, mode))
            done.append("%s %s.%d (%s)" % (node, oid[:8], idx, mode))
            self._count("fragment %s" % mode.replace("_", " "))
        t = _now()
        self.h.event("corrupt %d fragment(s): %s" % (len(done), ", ".join(done)), t, t)
        self.log("# nemesis: corrupted %d of %d wanted fragment files: %s" % (len(done), n, ", ".join(done)))
        return lambda: None

    def _damage(self, path, mode):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            hdr = f.read(wire.FRAG_HDR)
            bsize = int.from_bytes(hdr[28:32], "little")
            if mode == "truncate":
                f.truncate(self.rnd.randint(0, max(0, size - 1)))
            else:
                if mode == "flip_header":
                    off = self.rnd.randint(0, wire.FRAG_HDR - 1)
                elif mode == "flip_sum" and size > wire.FRAG_HDR + wire.FRAG_SUM:
                    # the checksum after the first block
                    blen = min(bsize, size - wire.FRAG_HDR - wire.FRAG_SUM)
                    off = wire.FRAG_HDR + blen + self.rnd.randint(0, wire.FRAG_SUM - 1)
                    off = min(off, size - 1)
                else:
                    off = self.rnd.randint(wire.FRAG_HDR, max(wire.FRAG_HDR, size - wire.FRAG_SUM - 1))
                f.seek(off)
                b = f.read(1)
                f.seek(off)
                f.write(bytes([b[0] ^ (1 << self.rnd.randint(0, 7))]))
            f.flush()
            os.fsync(f.fileno())

    def wipe(self):
        """Kill the victim node, empty its data directory, start it again."""
        name = self.victim
        ev = self._event("wipe %s (restart with an empty data dir)" % name)
        if self.c.alive(name):
            self.c.kill9(name)
        d = os.path.join(self.c.dir, "data", name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, exist_ok=True)
        self.c.restart()
        self._count("node restarted with an empty data dir")
        self._done(ev)
        self.log("# nemesis: wiped %s" % name)
        return lambda: None

    def enospc(self, size_mb=24, headroom_kb=768, free_after=None):
        """Move the victim node onto a small, nearly full filesystem. The
        returned heal() frees the filler first if free_after is None, then
        moves the node back. free() can be called earlier."""
        name = self.victim
        d = os.path.join(self.c.dir, "data", name)
        img = os.path.join(self.c.root, "enospc-%s.img" % name)
        if self.c.alive(name):
            self.c.kill9(name)
        kind, why = None, []
        try:
            with open(img, "wb") as f:
                f.truncate(size_mb << 20)
            r = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", img], capture_output=True, text=True)
            if r.returncode == 0:
                r = subprocess.run(["mount", "-o", "loop", img, d], capture_output=True, text=True)
                if r.returncode == 0:
                    kind = "loop-mounted ext4"
            if kind is None:
                why.append("loop mount: %s" % (r.stderr.strip() or r.returncode))
        except OSError as e:
            why.append("loop image: %s" % e)
        if kind is None:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % size_mb, "tmpfs", d],
                               capture_output=True, text=True)
            if r.returncode == 0:
                kind = "tmpfs"
            else:
                why.append("tmpfs: %s" % r.stderr.strip())
        if kind is None:
            self.c.restart()
            self.notes.append("ENOSPC not injected: %s" % "; ".join(why))
            self.log("# nemesis: ENOSPC skipped: %s" % "; ".join(why))
            return lambda: None
        self.mount = d
        old_handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum, frame):  # the harness exits with os._exit: unmount first
            self._umount(name, lazy=True)
            h = old_handlers.get(signum)
            if callable(h):
                h(signum, frame)
            os._exit(1)
        for s in old_handlers:
            signal.signal(s, on_signal)

        filler = os.path.join(d, "filler")
        st = os.statvfs(d)
        free = st.f_bavail * st.f_frsize
        # Leave room for the node's directories and a few small fragments.
        with open(filler, "wb") as f:
            left = max(0, free - headroom_kb * 1024)
            chunk = b"\0" * (1 << 20)
            while left > 0:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
        ev = self._event("ENOSPC on %s (%s of %d MiB, %d KiB free)" % (name, kind, size_mb, headroom_kb))
        self.c.restart()
        self._count("ENOSPC on a node")
        self.log("# nemesis: %s now on a full %s (%d KiB free)" % (name, kind, headroom_kb))
        log0 = os.path.getsize(self.c.log_path(name)) if os.path.exists(self.c.log_path(name)) else 0
        state = {"freed": False}

        def free():
            if not state["freed"]:
                state["freed"] = True
                try:
                    os.unlink(filler)
                except OSError:
                    pass
                self.log("# nemesis: freed the filler on %s" % name)

        def heal():
            free()
            alive = self.c.alive(name)
            # Temporary files older than a few seconds are leaks, not writes in flight.
            leftovers = []
            tmpd = os.path.join(d, "tmp")
            now = time.time()
            for f in (os.listdir(tmpd) if os.path.isdir(tmpd) else []):
                try:
                    if now - os.stat(os.path.join(tmpd, f)).st_mtime > 5:
                        leftovers.append(f)
                except OSError:
                    pass
            with open(self.c.log_path(name), "rb") as f:
                f.seek(log0)
                text = f.read().decode("utf-8", "replace")
            nospace = [l for l in text.splitlines() if "No space left" in l or "ENOSPC" in l]
            self.notes.append("ENOSPC on %s (%s): node %s through it; %d log line(s) about no space; "
                              "%d temporary file(s) older than 5 s left in tmp/" %
                              (name, kind, "stayed up" if alive else "DIED", len(nospace), len(leftovers)))
            if nospace:
                self.notes.append("  e.g. %s" % nospace[0].strip()[:300])
            if not alive:
                self.notes.append("PROBLEM: %s died while its disk was full" % name)
            if leftovers:
                self.notes.append("PROBLEM: temporary files left behind on a full disk: %s" % leftovers[:5])
            self._umount(name)
            for s, h in old_handlers.items():
                signal.signal(s, h)
            self.c.restart()
            self._done(ev)
        self._enospc_free = free
        return heal

    def _umount(self, name, lazy=False):
        if self.mount is None:
            return
        pid = self.c.procs.get(name, (None, None))[0]
        if self.c.alive(name):
            if lazy:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            else:
                self.c.kill9(name)
        args = ["umount"] + (["-l"] if lazy else []) + [self.mount]
        for _ in range(20):
            r = subprocess.run(args, capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.25)
        else:
            subprocess.run(["umount", "-l", self.mount], capture_output=True)
        self.mount = None

    # ---- heal everything (end of a scenario, or after an error)

    def heal_all(self, heals=()):
        for h in heals:
            try:
                h()
            except Exception as e:
                self.log("# nemesis: heal failed: %r" % e)
        for name in list(self.paused):
            self._cont(name)
        if self.mount is not None:
            self._umount(self.victim)
        self.c.restart()
