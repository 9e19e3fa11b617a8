# SPDX-License-Identifier: Apache-2.0
"""ZEO 5 gateway cases against a running 3-node zap cluster.

usage: test_zeo_cluster.py --ports P1,P2,P3 [--host H] [--config CFG
       --cluster-sh PATH --run-dir DIR] [--only NAME,...] [--extra]

Every case asserts behaviour through the test client (zeo_client.py). The
cases run in order and share one ledger of every acknowledged commit
(tid -> {oid: data}, data None for a deletion). Long-lived "watcher"
connections, one per node, stay registered for the whole run so the feed
case can check that each saw an invalidation for every acknowledged commit,
with the right oids, in strictly increasing tid order. After each case every
connection it opened must have recorded no protocol violation
(zeo_client.ZeoClient.violations: undecodable replies, opcodes a server must
not emit, unknown msgids, the ordering rules O1 and O3).
A load on another node than the committer's is made only after that node
announced the commit (invalidation or ping), except in loads_after_commit,
which checks what such early loads may return.
The kill case (SIGKILL of the leader through cluster.sh) runs last.
Exit status 0 if every case passed, 1 otherwise.
"""

import argparse
import hashlib
import io
import json
import os
import pickle
import re
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zeo_client as zc  # noqa: E402
from zeo_client import MAXTID, Z64, ZeoClient, ZeoError, frame, p64, u64  # noqa: E402

POS = "ZODB.POSException."
CLOSE_WAIT_S = 5.0
HANDSHAKE_WAIT_S = 15.0  # the gateway closes silent connections after 10 s
LATENCY_ITERATIONS = 200

CASES = []
EXTRA = set()


def case(fn):
    CASES.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, what, *detail):
    if not cond:
        raise Failure(what + (": " + " ".join(repr(d) for d in detail) if detail else ""))


def expect_error(fn, class_name=None):
    """Run fn; it must raise ZeoError (of class_name if given). Returns it."""
    try:
        v = fn()
    except ZeoError as e:
        check(class_name is None or e.class_name == class_name,
              "error class", e.class_name, "want", class_name, "payload", e.payload)
        return e
    raise Failure("no error reply (want %s), got %r" % (class_name or "any", v))


class Ctx:
    def __init__(self, args):
        self.host = args.host
        self.ports = [int(p) for p in args.ports.split(",")]
        self.args = args
        self.opened = []
        self.all_clients = []
        self.watchers = {}
        self.watch_from = {}
        self.killed = None
        self.silent = None

    def connect(self, node, register=True, **kw):
        """A connection to node 1..3, registered unless register=False."""
        kw.setdefault("label", "n%d" % node)
        track = kw.pop("track", True)
        c = ZeoClient(self.host, self.ports[node - 1], **kw)
        c.tracked = track
        self.opened.append(c)
        self.all_clients.append(c)
        if register and c.encoding:
            tid = c.register()
            check(isinstance(tid, bytes) and len(tid) == 8, "register tid", tid)
            c.register_tid = tid
        return c

    def ledger(self):
        """Every acknowledged commit of the run: sorted [(tid, {oid: data})]."""
        out = []
        for c in self.all_clients:
            out.extend(c.finished)
        return sorted(out, key=lambda x: x[0])

    def end_case(self):
        bad = []
        for c in self.opened:
            if c.violations and c.tracked:
                bad.append("%s: %s" % (c.label, "; ".join(c.violations[:5])))
            if c not in self.watchers.values():
                c.close()
        self.opened = []
        if bad:
            raise Failure("protocol violations: " + " | ".join(bad))


def wait_port(host, port, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def raw_session(ctx, node):
    """A bare socket that has read the server's announcement."""
    s = socket.create_connection((ctx.host, ctx.ports[node - 1]), timeout=CLOSE_WAIT_S)
    ann = zc.recv_frame(s)
    check(ann in (b"Z5", b"M5"), "announcement", ann)
    return s


def raw_closed(s, timeout_s=CLOSE_WAIT_S):
    """Read until EOF; returns (closed, bytes received meanwhile)."""
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(got)
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return True, bytes(got)
        if not b:
            return True, bytes(got)
        got += b


def fresh_oid(c):
    return c.new_oids()[0]


# --------------------------------------------------------------------------
# Cases


@case
def handshake_register_info(ctx):
    c = ctx.connect(1, handshake=False, register=False)
    check(c.announcement in (b"Z5", b"M5"), "announcement", c.announcement)
    r, _, _ = select.select([c.sock], [], [], 0.3)
    check(not r, "server sent more than the announcement before the answer")
    c.answer()
    tid = c.register()
    check(isinstance(tid, bytes) and len(tid) == 8, "register reply", tid)
    last = c.lastTransaction()
    check(isinstance(last, bytes) and len(last) == 8 and last >= tid, "lastTransaction", last, tid)
    info = c.get_info()
    check(isinstance(info, dict), "get_info type", info)
    types = {"length": int, "size": int, "name": str, "supportsUndo": bool,
             "supports_record_iternext": bool, "interfaces": tuple}
    for k, t in types.items():
        check(k in info, "get_info key missing", k, info)
        check(isinstance(info[k], t), "get_info[%s] type" % k, info[k])
    for i in info["interfaces"]:
        check(isinstance(i, tuple) and len(i) == 2 and all(isinstance(x, str) for x in i),
              "interfaces entry", i)
    check(c.ping() is None, "ping reply")
    print("  announcement %r, register tid %s, info %r" % (c.announcement, tid.hex(), info))
    # A connection that never answers the announcement, checked in the feed case.
    ctx.silent = (raw_session(ctx, 2), time.monotonic())
    # Long-lived watchers, one per node, for the feed case.
    for n in (1, 2, 3):
        w = ctx.connect(n, label="watch-n%d" % n)
        ctx.watchers[n] = w
        ctx.watch_from[n] = w.register_tid


def tid_seconds(tid):
    """A tid as seconds since the epoch (ZODB TimeStamp layout,
    the ZEO 5 protocol): minutes since 1900 with 31-day months, then the
    fraction of the minute in units of 60 / 2^32 s."""
    import calendar
    v = u64(tid)
    m, frac = v >> 32, v & 0xFFFFFFFF
    minute, m = m % 60, m // 60
    hour, m = m % 24, m // 24
    day, m = m % 31 + 1, m // 31
    month, year = m % 12 + 1, m // 12 + 1900
    return calendar.timegm((year, month, day, hour, minute, 0)) + frac * 60.0 / 2 ** 32


class PackRef:
    """The class the persistent references of pack_record() name."""


class _PackOid:
    def __init__(self, oid):
        self.oid = oid


class _PackPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return (obj.oid, PackRef) if isinstance(obj, _PackOid) else None


def pack_record(*refs):
    """A ZODB record as a stock client writes it (protocol 3: the class
    header, then the state): a PersistentMapping whose values are persistent
    references (oid, class) to refs, so that pack can follow them."""
    f = io.BytesIO()
    f.write(b"\x80\x03cpersistent.mapping\nPersistentMapping\nq\x00.")
    state = {"data": {"k%d" % i: _PackOid(o) for i, o in enumerate(refs)}}
    _PackPickler(f, protocol=3).dump(state)
    return f.getvalue()


@case
def pack_drops_old_revisions(ctx):
    """pack(t) on node 1 at the time of an object's second revision: on node
    3 the first revision is gone (loadSerial: POSKeyError), the second and
    third still load. Then garbage collection: once the root (oid 0) exists,
    a pack removes on every node the objects the root no longer reaches at
    the pack time (loadBefore: POSKeyError) and keeps those it reaches. It
    runs before the other cases: a pack covers every object, and no other
    case has committed anything yet (nor the root)."""
    a = ctx.connect(1, label="packer-n1")
    r = ctx.connect(3, label="reader-n3")
    oid = fresh_oid(a)
    t1 = a.commit([(oid, Z64, b"pack r1")])
    t2 = a.commit([(oid, t1, b"pack r2")])
    time.sleep(0.05)  # t3 well after t2: the pack time below is t2 + 1 us
    t3 = a.commit([(oid, t2, b"pack r3")])
    check(t1 < t2 < t3, "tids", t1.hex(), t2.hex(), t3.hex())
    check(r.ping() is None, "ping on node 3")
    check(r.loadSerial(oid, t1) == b"pack r1", "revision 1 on node 3 before the pack")
    # 1 us above t2's time: a float near 1.8e9 s is exact to ~0.24 us, so the
    # node's tid for it is not below t2, and it is below t3
    t = tid_seconds(t2) + 1e-6
    check(a.call("pack", t, True) is None, "pack reply")
    # the first revision is no longer readable anywhere: drop it from the ledger
    a.finished = [(tid, s) for tid, s in a.finished if tid != t1]
    check(r.ping() is None, "ping on node 3 (read barrier: the pack is applied there)")
    e = expect_error(lambda: r.loadSerial(oid, t1), POS + "POSKeyError")
    check(e.payload == (oid,), "POSKeyError payload", e.payload)
    check(r.loadSerial(oid, t2) == b"pack r2", "revision 2 on node 3 after the pack")
    check(r.loadSerial(oid, t3) == b"pack r3", "revision 3 on node 3 after the pack")
    check(r.loadBefore(oid, t3) == (b"pack r2", t2, t3), "loadBefore(t3) on node 3",
          r.loadBefore(oid, t3))
    check(r.loadBefore(oid, t2) is None, "loadBefore(t2) on node 3: nothing before t2 left",
          r.loadBefore(oid, t2))
    check(r.loadBefore(oid, MAXTID) == (b"pack r3", t3, None), "current revision on node 3")
    expect_error(lambda: a.loadSerial(oid, t1), POS + "POSKeyError")
    # a read-only connection may pack; a time far ahead is capped at its last
    # announced tid, which is t3 or later: revision 2 goes too
    ro = ctx.connect(2, register=False, label="ro-n2")
    ro.register_tid = ro.register("1", True)
    check(ro.register_tid >= t3, "read-only register tid", ro.register_tid.hex(), t3.hex())
    check(ro.call("pack", time.time() + 3600, False) is None, "pack on a read-only connection")
    a.finished = [(tid, s) for tid, s in a.finished if tid != t2]
    check(r.ping() is None, "ping on node 3")
    expect_error(lambda: r.loadSerial(oid, t2), POS + "POSKeyError")
    check(r.loadSerial(oid, t3) == b"pack r3", "revision 3 after the second pack")
    # a time before the first tid packs nothing
    check(ro.call("pack", 1.0, True) is None, "pack at 1970")
    check(r.loadSerial(oid, t3) == b"pack r3", "revision 3 after a pack in the past")
    print("  packed at %.6f (t2 %s); first revision gone on node 3" % (t, t2.hex()))
    # garbage collection: g is reached from the root's first revision only,
    # k (and k2 through it) from both; the object above, whose record is
    # not a pickle, is reached from none
    g, k, k2 = fresh_oid(a), fresh_oid(a), fresh_oid(a)
    tg = a.commit([(g, Z64, pack_record())])
    tk = a.commit([(k2, Z64, pack_record()), (k, Z64, pack_record(k2))])
    # two objects with blobs: gb reached from the root's first revision only
    # (collected with its blob), kb from both (kept, blob intact)
    gb, kb = fresh_oid(a), fresh_oid(a)
    gblob, kblob = b"g" * 300000, bytes(range(256)) * 1200
    tb = a.new_txn()
    a.tpc_begin(tb)
    store_blob(a, tb, gb, pack_record(), gblob, step=100000)
    store_blob(a, tb, kb, pack_record(), kblob, step=100000)
    check(a.vote(tb) in ([], None), "vote of two blobs")
    tbl = a.tpc_finish(tb, {gb: pack_record(), kb: pack_record()})
    tr1 = a.commit([(Z64, Z64, pack_record(k, g, gb, kb))])
    tr2 = a.commit([(Z64, tr1, pack_record(k, kb))])
    check(a.call("pack", tid_seconds(tr2) + 1e-6, True) is None, "pack with a root")
    # collected: g, gb and the object above; packed away: the root's first revision
    # (and the blobs' transaction, half of which is gone: kb is checked here)
    gone = (tg, tr1, t3, tbl)
    a.finished = [(tid, s) for tid, s in a.finished if tid not in gone]
    for c in (a, ro, r):
        node = c.label
        check(c.ping() is None, "ping on %s (the pack is applied there)" % node)
        for o in (g, oid):
            e = expect_error(lambda: c.loadBefore(o, MAXTID), POS + "POSKeyError")
            check(e.payload == (o,), "POSKeyError payload on %s" % node, e.payload, o.hex())
        expect_error(lambda: c.loadSerial(g, tg), POS + "POSKeyError")
        expect_error(lambda: c.loadSerial(Z64, tr1), POS + "POSKeyError")
        check(c.loadBefore(Z64, MAXTID) == (pack_record(k, kb), tr2, None), "root on %s" % node)
        check(c.loadBefore(k, MAXTID) == (pack_record(k2), tk, None), "k on %s" % node)
        check(c.loadBefore(k2, MAXTID) == (pack_record(), tk, None), "k2 on %s" % node)
        expect_error(lambda: c.loadBefore(gb, MAXTID), POS + "POSKeyError")
        expect_error(lambda: c.call("sendBlob", gb, tbl), POS + "POSKeyError")
        check(c.loadBefore(kb, MAXTID) == (pack_record(), tbl, None), "kb on %s" % node)
        start = len(c.events)
        check(c.call("sendBlob", kb, tbl) is None, "sendBlob of the kept blob on %s" % node)
        got = b"".join(e[1][2] for e in c.events[start:] if e[0] == "receiveBlobChunk")
        check(got == kblob, "kept blob's bytes on %s" % node, len(got))
    # every node swept the collected blob's file and kept the other's
    for n in (1, 2, 3):
        gone, kept = blob_file(ctx, n, gblob), blob_file(ctx, n, kblob)
        if gone:
            check(not os.path.exists(gone), "collected blob's file removed on node %d" % n, gone)
            check(os.path.exists(kept), "kept blob's file on node %d" % n, kept)
    print("  collected %s, %s and the blob of %s on every node; root, %s, %s and the blob "
          "of %s kept" % (g.hex(), oid.hex(), gb.hex(), k.hex(), k2.hex(), kb.hex()))
    # pack trims the undo log, as FileStorage's: no transaction before the
    # pack tid (here tr2: the pack time is capped at the last tid announced)
    # is listed, nor can it be undone
    if a.get_info().get("supportsUndo"):
        ids = [e["id"] for e in a.call("undoLog", 0, -20)]
        check(ids and ids[0] == tr2 and not [i for i in ids if i < tr2],
              "undoLog after the pack", [i.hex() for i in ids], tr2.hex())
        txn = a.new_txn()
        a.tpc_begin(txn)
        a.call_async("undoa", tr1, txn)
        expect_error(lambda: a.vote(txn), POS + "UndoError")
        check(a.tpc_abort(txn) is None, "tpc_abort after undoing a packed transaction")


@case
def new_oids_unique(ctx):
    seen = set()
    for n in (1, 2, 3):
        c = ctx.connect(n)
        for _ in range(2):
            oids = c.new_oids()
            check(isinstance(oids, list) and len(oids) == 100, "new_oids() length", len(oids))
            check(all(isinstance(o, bytes) and len(o) == 8 for o in oids), "oid type", oids[:3])
            check(len(set(oids)) == 100, "duplicates within one reply")
            dup = seen & set(oids)
            check(not dup, "oid handed out twice (node %d)" % n, sorted(dup)[:3])
            check(Z64 not in oids, "new_oids returned the root oid z64")
            seen |= set(oids)


@case
def commit_and_invalidate(ctx):
    a = ctx.connect(1, label="a-n1")
    b = ctx.connect(1, label="b-n1")
    w = ctx.connect(3, label="w-n3")
    oid = fresh_oid(a)
    data = b"commit-and-invalidate " + oid
    txn = a.new_txn()
    a.tpc_begin(txn, b"alice", b"first commit")
    a.storea(oid, Z64, data, txn)
    v = a.vote(txn)
    check(v is None or v == [], "vote reply", v)
    t = a.tpc_finish(txn, {oid: data})
    check(isinstance(t, bytes) and len(t) == 8, "tpc_finish tid", t)
    check(t > a.register_tid and t > w.register_tid, "tid after register tids", t)
    inv = w.wait_invalidation(t)
    check(inv is not None, "no invalidateTransaction(%s) on node 3" % t.hex(), w.events[-3:])
    check(inv[1] == [oid] and isinstance(inv[1], list), "invalidated oids", inv[1], [oid])
    got = w.loadBefore(oid, MAXTID)
    check(got == (data, t, None), "loadBefore on node 3", got)
    check(w.loadBefore(oid, t) is None, "loadBefore(oid, T) of an oid created in T",
          w.loadBefore(oid, t))
    check(w.loadSerial(oid, t) == data, "loadSerial on node 3")
    check(b.wait_invalidation(t) is not None, "other connection on node 1 got no invalidation")
    check(a.ping() is None, "ping")
    own = [x for x in a.invalidations() if x[0] == t]
    check(not own, "committer got an invalidation for its own commit", own)
    check(a.lastTransaction() == t, "lastTransaction after commit")
    for c in (a, b, w):
        tids = [x[0] for x in c.invalidations()]
        check(all(x < y for x, y in zip(tids, tids[1:])), "invalidation tids not increasing",
              c.label, [x.hex() for x in tids])


@case
def load_unknown_oid(ctx):
    c = ctx.connect(2)
    oid = fresh_oid(c)
    e = expect_error(lambda: c.loadBefore(oid, MAXTID), POS + "POSKeyError")
    check(e.payload == (oid,), "POSKeyError payload", e.payload)
    check(c.ping() is None, "connection works after the error")


def load_state(c, oid, before=MAXTID):
    """loadBefore's reply, or the error class name; the encoded request and
    reply are left in c.last_load."""
    p = c.call_start("loadBefore", oid, before, msgid=(oid, before))
    c.last_load = p
    try:
        return p.result()
    except ZeoError as e:
        return e.class_name


def exchange(c):
    p = c.last_load
    return "[request %s reply %s]" % (p.request.hex(), p.reply.hex() if p.reply else None)


@case
def loads_after_commit(ctx):
    """loadBefore(oid, maxtid) right after a tpc_finish reply, without
    waiting for the invalidation: on the committing node it returns the
    committed revision (the node's store has it); on another node it returns
    a consistent state, the new revision or the one before it (POSKeyError
    for a new object), never None and never a revision with an end tid."""
    w = ctx.connect(1, label="writer-n1")
    same = ctx.connect(1, label="reader-n1")
    other = ctx.connect(2, label="reader-n2")
    upd = fresh_oid(w)
    s = w.commit([(upd, Z64, b"u0")])
    bad = []
    stale = 0
    for i in range(30):
        o = fresh_oid(w)
        t = w.commit([(o, Z64, b"n%d" % i)])
        got = load_state(same, o)
        if got != (b"n%d" % i, t, None):
            bad.append("same node, new oid, commit %s: %r %s" % (t.hex(), got, exchange(same)))
        got = load_state(other, o)
        if got not in ((b"n%d" % i, t, None), POS + "POSKeyError"):
            bad.append("other node, new oid, commit %s: %r %s" % (t.hex(), got, exchange(other)))
        stale += got != (b"n%d" % i, t, None)
        s2 = w.commit([(upd, s, b"u%d" % (i + 1))])
        got = load_state(same, upd)
        if got != (b"u%d" % (i + 1), s2, None):
            bad.append("same node, update %s -> %s: %r %s" % (s.hex(), s2.hex(), got,
                                                               exchange(same)))
        got = load_state(other, upd)
        if got not in ((b"u%d" % (i + 1), s2, None), (b"u%d" % i, s, None)):
            bad.append("other node, update %s -> %s: %r %s" % (s.hex(), s2.hex(), got,
                                                                exchange(other)))
        stale += got != (b"u%d" % (i + 1), s2, None)
        s = s2
    print("  other node: %d of 60 loads answered before it had the commit" % stale)
    check(not bad, "%d inconsistent loads, first ones:\n    " % len(bad) + "\n    ".join(bad[:4]))


@case
def ping_is_a_barrier(ctx):
    """O6: after a ping reply, every transaction acknowledged before the ping
    was sent has been announced on that connection, on any node."""
    w = ctx.connect(1, label="writer-n1")
    r3 = ctx.connect(3, label="reader-n3")
    r2 = ctx.connect(2, label="reader-n2")
    o = fresh_oid(w)
    s = Z64
    for i in range(20):
        s = w.commit([(o, s, b"p%d" % i)])
        for r in (r3, r2):
            check(r.ping() is None, "ping")
            seen = [x for x in r.invalidations() if x[0] == s]
            check(seen, "%s: no invalidation for %s after ping" % (r.label, s.hex()))
            check(r.loadBefore(o, MAXTID) == (b"p%d" % i, s, None), "load after ping")


@case
def pipelined_calls(ctx):
    """Many sync calls in flight on one connection, replies matched by msgid."""
    c = ctx.connect(2)
    oids = c.new_oids()[:20]
    t = c.commit([(o, Z64, b"pipe " + o) for o in oids])
    unknown = c.new_oids()[:10]
    pend = [(o, c.call_start("loadBefore", o, MAXTID, msgid=(o, MAXTID))) for o in oids]
    pend2 = [(o, c.call_start("loadBefore", o, MAXTID, msgid=(o, MAXTID))) for o in unknown]
    pings = [c.call_start("ping") for _ in range(20)]
    for o, p in pend:
        check(p.result() == (b"pipe " + o, t, None), "pipelined loadBefore", o)
    for o, p in pend2:
        expect_error(lambda: p.result(), POS + "POSKeyError")
    for p in pings:
        check(p.result() is None, "pipelined ping")


@case
def delete_object(ctx):
    """IExternalGC is announced: deleteObject commits, the oid is invalidated
    and no longer loads; a stale serial is a ConflictError."""
    c = ctx.connect(1)
    w = ctx.watchers[3]
    o, o2 = c.new_oids()[:2]
    s = c.commit([(o, Z64, b"to delete"), (o2, Z64, b"keep")])
    s2 = c.commit([(o2, s, b"keep 2")])
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.deleteObject(o2, s, txn)
    e = expect_error(lambda: c.vote(txn), POS + "ConflictError")
    check(isinstance(e.payload, dict) and e.payload.get("oid") == o2
          and e.payload.get("serials") == (s2, s), "ConflictError payload", e.payload)
    check(c.tpc_abort(txn) is None, "tpc_abort")
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.deleteObject(o, s, txn)
    v = c.vote(txn)
    check(v is None or v == [], "vote", v)
    t = c.tpc_finish(txn, {o: None})
    inv = w.wait_invalidation(t)
    check(inv is not None and o in inv[1], "invalidation of the deletion", inv)
    expect_error(lambda: w.loadBefore(o, MAXTID), POS + "POSKeyError")
    check(w.loadBefore(o, t) == (b"to delete", s, t), "revision before the deletion",
          w.loadBefore(o, t))


@case
def lenient_serials(ctx):
    """As a stock server: storea with a None serial (ClientStorage sends it
    for a new object) or a str serial commits a new object; on an existing
    object it is a conflict at vote, and the connection keeps working."""
    c = ctx.connect(1)
    w = ctx.watchers[2]
    o, o2 = c.new_oids()[:2]
    t = c.commit([(o, None, b"serial None"), (o2, "", b"serial str")])
    check(w.wait_invalidation(t) is not None, "invalidation of the commit")
    check(w.loadBefore(o, MAXTID) == (b"serial None", t, None), "None-serial record")
    check(w.loadBefore(o2, MAXTID) == (b"serial str", t, None), "str-serial record")
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.storea(o, None, b"no base", txn)
    try:
        v = c.vote(txn)
        check(_conflict_oids(v) == [o], "vote of a None serial on an existing object", v)
    except ZeoError as e:
        check(e.class_name == POS + "ConflictError", "error class", e.class_name)
    check(c.tpc_abort(txn) is None, "tpc_abort")
    check(c.ping() is None, "connection works after the conflict")
    check(w.loadBefore(o, MAXTID) == (b"serial None", t, None), "record unchanged")


def _conflict_oids(v):
    return [x.get("oid") for x in v] if isinstance(v, list) and v and \
        all(isinstance(x, dict) for x in v) else None


class DictReducing(dict):
    """A dict subclass that pickles as builtins.dict of its items (GLOBAL and
    REDUCE), as ZODB's checkTransactionExtensionFromIterator sends one."""
    def __reduce__(self):
        return dict, (tuple(self.items()),)


@case
def extension_reduced_to_dict(ctx):
    """A transaction extension pickled with GLOBAL builtins.dict and REDUCE
    commits, and iteration returns it as the dict it stands for."""
    c = ctx.connect(1)
    o = c.new_oids()[0]
    t = c.commit([(o, Z64, b"ext")], extension=DictReducing(foo=1))
    it = c.call("iterator_start", t, t)
    tx = c.call("iterator_next", it)
    check(tx is not None and tx[0] == t and tx[4] == {"foo": 1}, "iterated extension", tx)
    check(c.call("iterator_gc", [it]) is None, "iterator_gc")


def iterated_records(c, it, tid):
    """The records of transaction tid of iterator it, in the order served."""
    ri = c.call("iterator_record_start", it, tid)
    recs = []
    while True:
        r = c.call("iterator_record_next", ri)
        if r is None:
            return recs
        recs.append(r)


@case
def record_order_kept(ctx):
    """A transaction's records keep the order the client stored them in
    (FileStorage's order): iteration returns them so, and a restore of them
    keeps it."""
    c = ctx.connect(1)
    a, b, d = c.new_oids()[:3]
    order = [d, a, b]
    t = c.commit([(o, Z64, b"order " + o) for o in order])

    def records(tid):
        it = c.call("iterator_start", tid, tid)
        tx = c.call("iterator_next", it)
        check(tx is not None and tx[0] == tid, "iterated transaction", tx)
        recs = iterated_records(c, it, tid)
        c.call("iterator_gc", [it])
        return recs
    recs = records(t)
    check([r[0] for r in recs] == order, "record order of the commit",
          [r[0].hex() for r in recs])
    txn = c.new_txn()
    c.tpc_begin(txn, b"", b"restore in order", {}, None, " ")
    for r in reversed(recs):
        c.call_async("restorea", r[0], r[1], r[2], r[3], txn)
    check(c.vote(txn) in ([], None), "vote of the restore")
    t2 = c.tpc_finish(txn, {r[0]: r[2] for r in recs})
    check([r[0] for r in records(t2)] == order[::-1], "record order of the restore")


@case
def transaction_sizes(ctx):
    """A 200-object transaction and a 48 KiB record commit and read back on
    another node; a 1 MiB record either commits or fails its vote with an
    error reply, and the connection keeps working."""
    c = ctx.connect(1)
    w = ctx.watchers[2]
    oids = c.new_oids() + c.new_oids() + c.new_oids()
    many = [(o, Z64, b"many " + o) for o in oids[:200]]
    t = c.commit(many)
    check(w.wait_invalidation(t) is not None, "invalidation of the 200-object commit")
    inv = [x for x in w.invalidations() if x[0] == t][0]
    check(sorted(inv[1]) == sorted(oids[:200]), "200 oids invalidated")
    for o, _, d in many[::20]:
        check(w.loadBefore(o, MAXTID) == (d, t, None), "load of a record of the big commit")
    big = bytes(range(256)) * 192
    t = c.commit([(oids[200], Z64, big)])
    check(w.wait_invalidation(t) is not None, "invalidation of the 48 KiB record")
    check(w.loadBefore(oids[200], MAXTID) == (big, t, None), "48 KiB record read back")
    huge = b"h" * (1 << 20)
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.storea(oids[201], Z64, huge, txn)
    p = c.call_start("vote", txn)
    try:
        v = p.result(15.0)
        check(v is None or v == [], "vote of the 1 MiB record", v)
        t = c.tpc_finish(txn, {oids[201]: huge})
        check(w.wait_invalidation(t) is not None, "invalidation of the 1 MiB record")
        check(w.loadSerial(oids[201], t) == huge, "1 MiB record read back")
        print("  1 MiB record committed")
    except ZeoError as e:
        print("  1 MiB record refused at vote: %s %r" % (e.class_name, e.payload))
        check(c.tpc_abort(txn) is None, "tpc_abort after the refused vote")
    except TimeoutError:
        raise Failure("vote of a 1 MiB record: no reply within 15 s")
    check(c.ping() is None, "connection works after the 1 MiB record")
    o = oids[202]
    check(c.commit([(o, Z64, b"small")]) is not None, "commit after the 1 MiB record")


def merge(base, committed, mine):
    return committed + b" + " + mine[len(base):]


@case
def conflict_across_nodes(ctx):
    a = ctx.connect(1, label="a-n1")
    b = ctx.connect(2, label="b-n2")
    oid = fresh_oid(a)
    d0 = b"base"
    s0 = a.commit([(oid, Z64, d0)])
    check(b.wait_invalidation(s0) is not None, "node 2 invalidation of the base revision")
    check(b.loadBefore(oid, MAXTID) == (d0, s0, None), "node 2 sees the base revision")
    ta, tb = a.new_txn(), b.new_txn()
    da, db = d0 + b"|from-a", d0 + b"|from-b"
    a.tpc_begin(ta)
    b.tpc_begin(tb)
    a.storea(oid, s0, da, ta)
    b.storea(oid, s0, db, tb)
    va = a.vote(ta)
    check(va is None or va == [], "first vote", va)
    t1 = a.tpc_finish(ta, {oid: da})
    vb = b.vote(tb)
    check(isinstance(vb, list) and len(vb) == 1 and isinstance(vb[0], dict),
          "second vote: want a list with one conflict dict", vb)
    cd = vb[0]
    check(cd.get("oid") == oid, "conflict oid", cd)
    check(cd.get("serials") == (t1, s0) and isinstance(cd["serials"], tuple),
          "conflict serials (committed, base)", cd.get("serials"), (t1, s0))
    check(cd.get("data") == db, "conflict data is what was sent", cd.get("data"))
    seen = []

    def resolver(o, base, committed, mine):
        seen.append((o, base, committed, mine))
        return merge(base, committed, mine)

    stored = {oid: db}
    v2, rounds = b.resolve_and_vote(tb, vb, resolver, stored)
    check(seen == [(oid, d0, da, db)], "loadSerial of base / committed", seen)
    check(v2 is None or v2 == [], "vote after resolution", v2)
    t2 = b.tpc_finish(tb, stored)
    check(t2 > t1, "resolved commit tid", t2, t1)
    w = ctx.watchers[3]
    check(w.wait_invalidation(t2) is not None, "node 3 invalidation of the resolved commit")
    got = w.loadBefore(oid, MAXTID)
    check(got == (merge(d0, da, db), t2, None), "node 3 reads the merge", got)
    check(w.loadBefore(oid, t2) == (da, t1, t2), "previous revision", w.loadBefore(oid, t2))


def zodb_record(module, name, state):
    """A ZODB record: the class header pickle, then the state pickle."""
    head = b"\x80\x03c" + module.encode() + b"\n" + name.encode() + b"\nq\x00."
    return head + pickle.dumps(state, protocol=3)


class _RecordReader(pickle.Unpickler):
    def find_class(self, module, name):
        return (module, name)

    def persistent_load(self, pid):
        return ("ref", pid)


def record_state(data):
    """(class as (module, name), state) of a ZODB record."""
    u = _RecordReader(io.BytesIO(data))
    return u.load(), u.load()


def bucket(module, name, items):
    return zodb_record(module, name, (tuple(items),))


@case
def native_resolution(ctx):
    """Concurrent changes from two nodes to one BTrees bucket, a one-bucket
    BTree, a set and a Length: the gateway merges them at vote, as the BTrees
    package would (the oids come back in vote's list, the client does not
    cache its own copy); a vote that waited for the other transaction's
    locks merges too; a change the BTrees merge rules refuse is a
    ConflictError naming the class."""
    a = ctx.connect(1, label="a-n1")
    b = ctx.connect(2, label="b-n2")
    w = ctx.watchers[3]
    ob, ot, os_, ol = a.new_oids()[:4]
    tree = lambda items: zodb_record("BTrees.OOBTree", "OOBTree", (((tuple(items),),),))
    base = {ob: bucket("BTrees.OOBTree", "OOBucket", ["b", 1, "d", 2, "f", 3]),
            ot: tree([b"k1", "v1", b"k5", "v5"]),
            os_: bucket("BTrees.IIBTree", "IISet", [10, 20, 30]),
            ol: zodb_record("BTrees.Length", "Length", 10)}
    s0 = a.commit([(o, Z64, d) for o, d in base.items()])
    check(b.wait_invalidation(s0) is not None, "node 2 invalidation of the base")
    mine_a = {ob: bucket("BTrees.OOBTree", "OOBucket", ["b", 1, "c", 9, "d", 2, "f", 3]),
              ot: tree([b"k1", "v1", b"k2", "a", b"k5", "v5"]),
              os_: bucket("BTrees.IIBTree", "IISet", [10, 15, 20, 30]),
              ol: zodb_record("BTrees.Length", "Length", 15)}
    mine_b = {ob: bucket("BTrees.OOBTree", "OOBucket", ["b", 1, "d", 2, "e", 8, "f", 3]),
              ot: tree([b"k1", "v1", b"k5", "v5", b"k7", "b"]),
              os_: bucket("BTrees.IIBTree", "IISet", [10, 20, 25, 30]),
              ol: zodb_record("BTrees.Length", "Length", 17)}
    ta, tb = a.new_txn(), b.new_txn()
    a.tpc_begin(ta)
    b.tpc_begin(tb)
    for o in base:
        a.storea(o, s0, mine_a[o], ta)
        b.storea(o, s0, mine_b[o], tb)
    va = a.vote(ta)
    check(va is None or va == [], "first vote", va)
    t1 = a.tpc_finish(ta, mine_a)
    vb = b.vote(tb)
    check(isinstance(vb, list) and sorted(vb) == sorted(base),
          "second vote lists every merged oid", vb)
    t2 = b.tpc_finish(tb, mine_b)
    check(w.wait_invalidation(t2) is not None, "node 3 invalidation of the merged commit")
    want = {ob: (("b", 1, "c", 9, "d", 2, "e", 8, "f", 3),),
            ot: ((((b"k1", "v1", b"k2", "a", b"k5", "v5", b"k7", "b"),),),),
            os_: ((10, 15, 20, 25, 30),),
            ol: 22}
    merged = {}
    for o, state in want.items():
        data, serial, nxt = w.loadBefore(o, MAXTID)
        check(serial == t2 and nxt is None, "merged revision", serial, t2)
        cls, got = record_state(data)
        check(cls == record_state(base[o])[0], "merged record keeps the class", cls)
        check(got == state, "merged state", got, "want", state)
        merged[o] = data
    b.finished[-1] = (t2, merged)  # the ledger holds what was stored

    # A vote that waits for another node's prepared transaction merges over it.
    ta, tb = a.new_txn(), b.new_txn()
    a.tpc_begin(ta)
    a.storea(ol, t2, zodb_record("BTrees.Length", "Length", 23), ta)
    check(a.vote(ta) in (None, []), "vote holding the Length")
    b.tpc_begin(tb)
    b.storea(ol, t2, zodb_record("BTrees.Length", "Length", 24), tb)
    pv = b.call_start("vote", tb)
    time.sleep(0.2)
    t3 = a.tpc_finish(ta, {ol: zodb_record("BTrees.Length", "Length", 23)})
    vb = pv.result(20.0)
    check(vb == [ol], "the waiting vote merged", vb)
    t4 = b.tpc_finish(tb, {})
    data = w.loadSerial(ol, t4) if w.wait_invalidation(t4) is not None else None
    check(data is not None and record_state(data)[1] == 25, "Length after both", data)
    b.finished[-1] = (t4, {ol: data})
    check(t4 > t3, "tids", t3, t4)

    # Both sides change the same key: refused natively, left to the client.
    ta, tb = a.new_txn(), b.new_txn()
    a.tpc_begin(ta)
    b.tpc_begin(tb)
    a.storea(ob, t2, bucket("BTrees.OOBTree", "OOBucket", ["b", 1, "c", 100, "d", 2, "e", 8, "f", 3]), ta)
    b.storea(ob, t2, bucket("BTrees.OOBTree", "OOBucket", ["b", 1, "c", 200, "d", 2, "e", 8, "f", 3]), tb)
    check(a.vote(ta) in (None, []), "vote of one change")
    t5 = a.tpc_finish(ta, {ob: bucket("BTrees.OOBTree", "OOBucket",
                                      ["b", 1, "c", 100, "d", 2, "e", 8, "f", 3])})
    e = expect_error(lambda: b.vote(tb), POS + "ConflictError")
    p = e.payload if isinstance(e.payload, dict) else {}
    check(p.get("oid") == ob and p.get("serials") == (t5, t2)
          and p.get("class_name") == "BTrees.OOBTree.OOBucket",
          "same key changed on both sides: ConflictError with oid, serials, class", e.payload)
    check(b.tpc_abort(tb) is None, "tpc_abort")


@case
def waiting_vote(ctx):
    """A vote on an oid another node's transaction has prepared waits (or
    fails at once) without holding up other calls on its connection; it
    then sees the outcome of the prepared transaction: a conflict dict after
    its commit, a clean vote after its abort or after its connection died."""
    w = ctx.watchers[2]
    for outcome in ("commit", "abort", "disconnect"):
        a = ctx.connect(1, label="a-n1-" + outcome)
        b = ctx.connect(2, label="b-n2-" + outcome)
        oid, other = a.new_oids()[:2]
        s0 = a.commit([(oid, Z64, b"w0"), (other, Z64, b"other")])
        check(w.wait_invalidation(s0) is not None, "node 2 invalidation of the base")
        ta, tb = a.new_txn(), b.new_txn()
        a.tpc_begin(ta)
        a.storea(oid, s0, b"wa", ta)
        va = a.vote(ta)
        check(va is None or va == [], "first vote", va)
        b.tpc_begin(tb)
        b.storea(oid, s0, b"wb", tb)
        pv = b.call_start("vote", tb)
        waited = not pv.done.wait(0.3)
        got = b.loadBefore(other, MAXTID)
        check(got == (b"other", s0, None), "load while the vote waits", got)
        if outcome == "commit":
            t1 = a.tpc_finish(ta, {oid: b"wa"})
        elif outcome == "abort":
            check(a.tpc_abort(ta) is None, "tpc_abort of a voted transaction")
        else:
            a.close()
        try:
            vb = pv.result(20.0)
        except ZeoError as e:
            check(outcome == "commit" and not waited and e.class_name == POS + "ConflictError",
                  "second vote (%s): error" % outcome, e.class_name, e.payload)
            check(b.tpc_abort(tb) is None, "tpc_abort")
            continue
        stored = {oid: b"wb"}
        if outcome == "commit":
            check(isinstance(vb, list) and len(vb) == 1 and vb[0].get("serials") == (t1, s0),
                  "second vote after the commit: one conflict dict", vb)
            vb, _ = b.resolve_and_vote(tb, vb, lambda o, x, y, z: y + b"+" + z, stored)
        check(vb is None or vb == [], "second vote (%s)" % outcome, vb)
        t2 = b.tpc_finish(tb, stored)
        check(w.loadSerial(oid, t2) == stored[oid], "second commit's record")
        print("  %s: the second vote %s" % (outcome, "waited" if waited else "did not wait"))


@case
def undo(ctx):
    """undoLog lists transactions newest first; undoa in a transaction
    restores the state before the undone one, vote names the undone oids and
    other connections are told. Without undo support, undoLog is ()."""
    c = ctx.connect(1)
    w = ctx.watchers[3]
    info = c.get_info()
    if not info.get("supportsUndo"):
        check(c.call("undoLog", 0, -20) == (), "undoLog without undo support")
        print("  undo not offered")
        return
    check(("ZODB.interfaces", "IStorageUndoable") in info["interfaces"],
          "supportsUndo without IStorageUndoable", info["interfaces"])
    x, y = c.new_oids()[:2]
    t1 = c.commit([(x, Z64, b"a"), (y, Z64, b"y")], user=b"undo-test", description=b"first")
    t2 = c.commit([(x, t1, b"b")], user=b"undo-test", description=b"second")
    log = c.call("undoLog", 0, -20)
    check(isinstance(log, list) and len(log) >= 2 and all(isinstance(e, dict) for e in log),
          "undoLog reply", log[:2])
    e2, e1 = log[0], log[1]
    check(e2.get("description") == b"second" and e1.get("description") == b"first",
          "undoLog order (newest first)", e2, e1)
    for e in (e1, e2):
        check(isinstance(e.get("id"), bytes) and isinstance(e.get("time"), float)
              and e.get("user_name") == b"undo-test", "undoLog entry", e)
    check(len(c.call("undoLog", 0, -1)) == 1, "undoLog(0, -1) has one entry")
    # undoing t1 would overwrite x's later revision: refused as a stock
    # server refuses it, MultipleUndoErrors with the (oid, reason) pairs
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.call_async("undoa", e1["id"], txn)
    e = expect_error(lambda: c.vote(txn), POS + "MultipleUndoErrors")
    errs = e.payload.get("_errs") if isinstance(e.payload, dict) else None
    check(isinstance(errs, list) and len(errs) == 1 and errs[0][0] in (x, y)
          and "modified by a later transaction" in errs[0][1], "MultipleUndoErrors _errs", errs)
    check(c.tpc_abort(txn) is None, "tpc_abort after the refused undo")
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.call_async("undoa", p64(1), txn)
    expect_error(lambda: c.vote(txn), POS + "UndoError")
    check(c.tpc_abort(txn) is None, "tpc_abort after an unknown undo id")
    check(c.ping() is None, "connection works after the refusals")
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.call_async("undoa", e2["id"], txn)
    v = c.vote(txn)
    check(isinstance(v, list) and x in v, "vote of an undo names the undone oid", v)
    t3 = c.tpc_finish(txn, {x: b"a"})
    check(t3 > t2, "undo tid")
    inv = w.wait_invalidation(t3)
    check(inv is not None and x in inv[1], "invalidation of the undo", inv)
    check(w.loadBefore(x, MAXTID) == (b"a", t3, None), "state after the undo",
          w.loadBefore(x, MAXTID))
    check(w.loadBefore(x, t3) == (b"b", t2, t3), "revision before the undo")
    # As FileStorage: undoing the undo (a redo) is allowed although x changed
    # since t2, because x holds exactly what the undone transaction wrote.
    log = c.call("undoLog", 0, -1)
    check(log[0]["id"] == t3, "the undo is the newest transaction", log[0])
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.call_async("undoa", t3, txn)
    v = c.vote(txn)
    check(isinstance(v, list) and x in v, "vote of the redo names x", v)
    t4 = c.tpc_finish(txn, {x: b"b"})
    check(w.wait_invalidation(t4) is not None and w.loadBefore(x, MAXTID) == (b"b", t4, None),
          "state after the redo", w.loadBefore(x, MAXTID))
    # Two undos in one transaction: the second is checked against what the
    # first wrote (undo t4 gives x "a", which is what t3 wrote; undoing t3
    # as well gives x "b" again), each oid named once.
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.call_async("undoa", t4, txn)
    c.call_async("undoa", t3, txn)
    v = c.vote(txn)
    check(isinstance(v, list) and v.count(x) == 1, "vote of two undos names x once", v)
    t5 = c.tpc_finish(txn, {x: b"b"})
    check(w.wait_invalidation(t5) is not None and w.loadBefore(x, MAXTID) == (b"b", t5, None),
          "state after two undos in one transaction", w.loadBefore(x, MAXTID))
    # An object changed since the undone transaction, of a class zap merges
    # (here a BTrees.Length): the undo keeps the later change, as FileStorage
    # resolves it (17 + 10 - 15).
    ln = c.new_oids()[0]
    def length(n):
        return zodb_record("BTrees.Length", "Length", n)
    l0 = c.commit([(ln, Z64, length(10))])
    l1 = c.commit([(ln, l0, length(15))])
    l2 = c.commit([(ln, l1, length(17))])
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.call_async("undoa", l1, txn)
    v = c.vote(txn)
    check(isinstance(v, list) and ln in v, "vote of the merged undo names the oid", v)
    l3 = c.tpc_finish(txn, {ln: length(12)})
    check(w.wait_invalidation(l3) is not None, "invalidation of the merged undo")
    got = w.loadBefore(ln, MAXTID)
    check(got is not None and got[1] == l3 and record_state(got[0])[1] == 12,
          "Length after undoing +5 under a later +2", got, l2)


@case
def blob_round_trip(ctx):
    """A blob stored through node 1 (storea, storeBlobStart/Chunk/End) is
    sent back by node 3 with sendBlob: receiveBlobStart, the chunks and
    receiveBlobStop before the reply (O7); loads return the pickle only."""
    c = ctx.connect(1)
    w = ctx.watchers[3]
    check(("ZODB.interfaces", "IBlobStorage") in c.get_info()["interfaces"],
          "IBlobStorage announced")
    oid = c.new_oids()[0]
    blob = bytes(range(256)) * 700  # 179200 bytes: several chunks
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.storea(oid, Z64, b"blob-pickle", txn)
    c.call_async("storeBlobStart")
    for i in range(0, len(blob), 59000):
        c.call_async("storeBlobChunk", blob[i:i + 59000])
    c.call_async("storeBlobEnd", oid, Z64, b"blob-pickle", txn)
    check(c.vote(txn) in ([], None), "vote of a blob store")
    tid = c.tpc_finish(txn, {oid: b"blob-pickle"})
    check(w.wait_invalidation(tid) is not None, "invalidation of the blob commit")
    check(w.loadBefore(oid, MAXTID) == (b"blob-pickle", tid, None), "load of a blob record")
    start = len(w.events)
    check(w.call("sendBlob", oid, tid) is None, "sendBlob reply")
    ev = w.events[start:]
    names = [e[0] for e in ev]
    check(names[0] == "receiveBlobStart" and names[-1] == "receiveBlobStop"
          and all(n == "receiveBlobChunk" for n in names[1:-1]), "receiveBlob order", names)
    got = b"".join(e[1][2] for e in ev if e[0] == "receiveBlobChunk")
    check(got == blob, "blob bytes", len(got), len(blob))
    try:
        w.call("sendBlob", oid, Z64)
        check(False, "sendBlob of a missing revision")
    except ZeoError as e:
        check(e.class_name == "ZODB.POSException.POSKeyError", "sendBlob error", e.class_name)


def follower_node(ctx):
    """A node that does not lead: its large writes cross to the leader."""
    lead = leader_node(ctx)
    return 2 if lead == 1 else 1


def more_oids(c, n):
    oids = []
    while len(oids) < n:
        oids += c.new_oids(1000)
    return oids[:n]


def store_blob(c, txn, oid, pickled, blob, step=1 << 20):
    """storea, then the blob as storeBlobStart / storeBlobChunk... / storeBlobEnd."""
    c.storea(oid, Z64, pickled, txn)
    c.call_async("storeBlobStart")
    mv = memoryview(blob)
    for i in range(0, len(blob), step):
        c.call_async("storeBlobChunk", bytes(mv[i:i + step]))
    c.call_async("storeBlobEnd", oid, Z64, pickled, txn)


def blob_file(ctx, node, data):
    """Where node keeps a blob of these bytes: <log_dir>/blobs/HH/<BLAKE2b-256 hex>
    (log_dir: the node's, in the order of the config's nodes); None without
    --config."""
    if not ctx.args.config:
        return None
    with open(ctx.args.config) as f:
        dirs = re.findall(r"^\s+log_dir:\s*(\S+)", f.read(), re.M)
    h = hashlib.blake2b(data, digest_size=32).hexdigest()
    return os.path.join(dirs[node - 1], "blobs", h[:2], h)


def served_blob(ctx, node, oid, tid):
    """sha256 and length of what a fresh connection to node gets from sendBlob."""
    r = ctx.connect(node, label="blob-reader-n%d" % node)
    check(r.call("sendBlob", oid, tid, timeout=300) is None, "sendBlob reply, node %d" % node)
    h, n = hashlib.sha256(), 0
    for e in r.events:
        if e[0] == "receiveBlobChunk":
            h.update(e[1][2])
            n += len(e[1][2])
    r.events.clear()
    return h.hexdigest(), n


@case
def large_transactions(ctx):
    """Through a follower, so that every chunk crosses to the leader: a
    64 MiB transaction (64 records of 1 MiB) commits and reads back
    byte-identical on every node, and while it uploads and votes a small
    commit of another client completes (its latency is printed); then
    20 000 new objects in one transaction, every one invalidated and read
    back on every node."""
    node = follower_node(ctx)
    c = ctx.connect(node, label="large")
    small = ctx.connect(node % 3 + 1, label="small")
    oids = more_oids(c, 64)
    recs = [(o, Z64, hashlib.sha256(o).digest() * 32768) for o in oids]
    so = fresh_oid(small)
    s_serial = small.commit([(so, Z64, b"small 0")])
    txn = c.new_txn()
    c.tpc_begin(txn)
    t0 = time.perf_counter()
    for o, s, d in recs:
        c.storea(o, s, d, txn)
    p = c.call_start("vote", txn)
    lat = []
    for i in range(5):
        t1 = time.perf_counter()
        s_serial = small.commit([(so, s_serial, b"small %d" % (i + 1))])
        lat.append(time.perf_counter() - t1)
    v = p.result(300)
    check(v in (None, []), "vote of the 64 MiB transaction", v)
    tid = c.tpc_finish(txn, dict((o, d) for o, _, d in recs))
    took = time.perf_counter() - t0
    print("  64 MiB transaction through node %d: %.2f s (%.1f MB/s); small commits meanwhile "
          "on node %d: %s ms" % (node, took, 64 / took, node % 3 + 1,
                                 " ".join("%.1f" % (x * 1e3) for x in lat)))
    for n in (1, 2, 3):
        r = ctx.connect(n, label="reader-n%d" % n)
        r.ping()
        for o, _, d in recs:
            got = r.loadBefore(o, MAXTID)
            check(got is not None and got[0] == d and got[1] == tid,
                  "1 MiB record of the large transaction on node %d" % n, u64(o))
    w = ctx.watchers[node % 3 + 1]
    oids = more_oids(c, 20000)
    t0 = time.perf_counter()
    tid = c.commit([(o, Z64, b"n" + o) for o in oids])
    took = time.perf_counter() - t0
    print("  20 000 new objects in one transaction: %.2f s" % took)
    check(w.wait_invalidation(tid, 60) is not None, "invalidation of the 20 000 objects")
    inv = [x for x in w.invalidations() if x[0] == tid][0]
    check(sorted(inv[1]) == sorted(oids), "20 000 oids invalidated", len(inv[1]))
    for n in (1, 2, 3):
        r = ctx.connect(n, label="reader2-n%d" % n)
        r.ping()
        for o in oids:
            check(r.loadBefore(o, MAXTID) == (b"n" + o, tid, None),
                  "object of the 20 000 on node %d" % n, u64(o))


@case
def large_blob(ctx):
    """A 256 MiB blob stored through a follower is served byte-identical by
    every node (sendBlob to a fresh connection of each)."""
    node = follower_node(ctx)
    c = ctx.connect(node, label="blob-writer")
    oid = c.new_oids()[0]
    blob = hashlib.sha256(b"256").digest() * (8 << 20)
    want = hashlib.sha256(blob).hexdigest()
    t0 = time.perf_counter()
    txn = c.new_txn()
    c.tpc_begin(txn)
    store_blob(c, txn, oid, b"big-blob-pickle", blob)
    check(c.call("vote", txn, timeout=300) in ([], None), "vote of a 256 MiB blob")
    tid = c.tpc_finish(txn, {oid: b"big-blob-pickle"})
    took = time.perf_counter() - t0
    print("  256 MiB blob through node %d: %.2f s (%.1f MB/s)" % (node, took, 256 / took))
    paths = [blob_file(ctx, n, blob) for n in (1, 2, 3)]
    del blob
    for n in (1, 2, 3):
        got = served_blob(ctx, n, oid, tid)
        check(got == (want, 256 << 20), "256 MiB blob served by node %d" % n, got[1])
        # the bytes live in the node's blob area, one file named by their hash
        if paths[n - 1]:
            check(os.path.getsize(paths[n - 1]) == 256 << 20, "blob file on node %d" % n,
                  paths[n - 1])


@case
def too_large_refused(ctx):
    """Past txn.max_bytes (300M in this cluster's config) the vote fails
    with a StorageError naming the limit, the bytes past it are not kept,
    and the connection goes on: the next transaction commits."""
    c = ctx.connect(1, label="too-large")
    oid = c.new_oids()[0]
    txn = c.new_txn()
    c.tpc_begin(txn)
    store_blob(c, txn, oid, b"p", b"z" * (301 << 20), step=4 << 20)
    e = expect_error(lambda: c.vote(txn), POS + "StorageError")
    check("txn.max_bytes" in repr(e.payload), "the error names the limit", e.payload)
    check(c.tpc_abort(txn) is None, "tpc_abort after the refused vote")
    check(c.commit([(oid, Z64, b"fits")]) is not None, "commit after the refused one")


@case
def iterate_and_restore(ctx):
    """iterator_* return the transactions after a tid with their records;
    restoring them (tpc_begin with a tid, restorea) writes the same records
    again, in a new transaction when the tid is not later than the last one,
    under the asked tid when it is (even ahead of the clock). An iterator
    sees the transactions that existed when it started."""
    c = ctx.connect(2)
    since = c.lastTransaction()
    x, y = c.new_oids()[:2]
    t1 = c.commit([(x, Z64, b"i1"), (y, Z64, b"j1")], user=b"it", description=b"one",
                  extension={"k": "v"})
    t2 = c.commit([(x, t1, b"i2")], user=b"it", description=b"two")
    it = c.call("iterator_start", p64(u64(since) + 1), t2)
    seen = []
    while True:
        tx = c.call("iterator_next", it)
        if tx is None:
            break
        seen.append((tx, iterated_records(c, it, tx[0])))
    mine = [(tx, recs) for tx, recs in seen if tx[0] in (t1, t2)]
    check(len(mine) == 2 and mine[0][0][0] == t1 and mine[1][0][0] == t2,
          "iteration order", [tx[0].hex() for tx, _ in seen])
    tx1, recs1 = mine[0]
    check(tx1[2] == b"it" and tx1[3] == b"one" and tx1[4].get("k") == "v",
          "iterated transaction metadata", tx1)
    check(sorted((r[0], r[2]) for r in recs1) == sorted([(x, b"i1"), (y, b"j1")]),
          "iterated records", recs1)
    txn = c.new_txn()
    c.tpc_begin(txn, tx1[2], tx1[3], tx1[4], tx1[0], tx1[1])
    for r in recs1:
        c.call_async("restorea", r[0], r[1], r[2], r[3], txn)
    check(c.vote(txn) in ([], None), "vote of a restore")
    t3 = c.tpc_finish(txn, {x: b"i1", y: b"j1"})
    check(t3 > t2, "restored transaction gets a new tid", t3)
    check(c.loadBefore(x, MAXTID)[:2] == (b"i1", t3), "restored record", c.loadBefore(x, MAXTID))
    c.call_async("iterator_gc", [it])
    # An iterator reads the transactions that existed when it started, as
    # FileStorage's does: one committed while it is open is not returned.
    # iterator_gc is served as a call too.
    it = c.call("iterator_start", t1, None)
    check(c.call("iterator_next", it)[0] == t1, "first transaction of an open iterator")
    late = c.commit([(x, t3, b"i-late")])
    left = []
    while True:
        tx = c.call("iterator_next", it)
        if tx is None:
            break
        left.append(tx[0])
    check(left == [t2, t3], "an open iterator does not see a later commit",
          [t.hex() for t in left], late.hex())
    check(c.call("iterator_gc", [it]) is None, "iterator_gc as a call")
    expect_error(lambda: c.call("iterator_next", it), "builtins.KeyError")
    t3 = late
    # A restore whose tid is later than every tid assigned keeps it, as
    # copying a database into an empty zap does.
    want = p64(u64(t3) + 1000)
    txn = c.new_txn()
    c.tpc_begin(txn, b"it", b"kept", {}, want, " ")
    c.call_async("restorea", y, want, b"j-kept", None, txn)
    check(c.vote(txn) in ([], None), "vote of a restore with a later tid")
    t4 = c.tpc_finish(txn, {y: b"j-kept"})
    check(t4 == want, "restored transaction keeps its tid", t4.hex(), want.hex())
    w = ctx.watchers[1]
    check(w.wait_invalidation(t4) is not None, "node 1 invalidation of the kept tid")
    check(w.loadBefore(y, MAXTID) == (b"j-kept", t4, None), "record under the kept tid on node 1",
          w.loadBefore(y, MAXTID))
    # As with FileStorage, a tid ahead of the clock is kept too (here 3 s
    # ahead), and the next commit follows it.
    future = p64(u64(t4) + (3 << 32) // 60)
    txn = c.new_txn()
    c.tpc_begin(txn, b"it", b"future", {}, future, " ")
    c.call_async("restorea", y, future, b"j-future", None, txn)
    check(c.vote(txn) in ([], None), "vote of a restore with a future tid")
    t5 = c.tpc_finish(txn, {y: b"j-future"})
    check(t5 == future, "a tid ahead of the clock is kept", t5.hex(), future.hex())
    t6 = c.commit([(y, t5, b"j-after")])
    check(t6 > t5, "the commit after a kept tid follows it", t6.hex(), t5.hex())


def ring_slots(ctx):
    """store.txn_ring_slots of the cluster's config (65536 when it does not say)."""
    if ctx.args.config:
        with open(ctx.args.config) as f:
            m = re.search(r"^\s+txn_ring_slots:\s*(\d+)", f.read(), re.M)
        if m:
            return int(m.group(1))
    return 65536


@case
def undo_past_ring(ctx):
    """Undo reaches every transaction since the last pack, as FileStorage's,
    not just those the store's transaction ring still holds: with a ring of
    a few dozen (the meson test zeo-undo-ring sets store.txn_ring_slots), a
    transaction more than a ring behind is listed by undoLog and undone."""
    ring = ring_slots(ctx)
    if ring > 4096:
        raise Failure("needs a config with a small store.txn_ring_slots (got %d)" % ring)
    c = ctx.connect(1, label="undo-ring-n1")
    r = ctx.connect(2, label="undo-ring-reader-n2")
    x, y = c.new_oids()[:2]
    t0 = c.commit([(x, Z64, b"x0")], description=b"x first")
    t1 = c.commit([(x, t0, b"x1")], description=b"x second")
    serial, mine = Z64, [t0, t1]
    for i in range(ring + 8):  # push t1 out of the ring
        serial = c.commit([(y, serial, b"y%d" % i)])
        mine.append(serial)
    log = c.call("undoLog", 0, -(ring + 100))
    ids = [e["id"] for e in log]
    check(t1 in ids and t0 in ids, "undoLog past the ring lists t0 and t1", len(ids))
    check(ids == sorted(ids, reverse=True), "undoLog newest first past the ring")
    check(all(t in ids for t in mine), "undoLog lists every transaction of the case",
          len(ids), len(mine))
    check(len(c.call("undoLog", 0, -(ring + 4))) == ring + 4, "undoLog(0, -(ring + 4))")
    e1 = log[ids.index(t1)]
    check(e1.get("description") == b"x second" and e1.get("size") == 1,
          "undoLog entry past the ring", e1)
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.call_async("undoa", t1, txn)
    v = c.vote(txn)
    check(isinstance(v, list) and x in v, "vote of an undo past the ring names x", v)
    t2 = c.tpc_finish(txn, {x: b"x0"})
    check(r.ping() is None, "ping on node 2")
    check(r.loadBefore(x, MAXTID) == (b"x0", t2, None), "x after the undo, on node 2",
          r.loadBefore(x, MAXTID))
    print("  ring of %d: t1 was %d transactions back; listed and undone" % (ring, ring + 9))


EXTRA.add("undo_past_ring")


@case
def read_conflict(ctx):
    a = ctx.connect(1, label="a-n1")
    b = ctx.connect(2, label="b-n2")
    c = ctx.connect(3, label="c-n3")
    x, y = a.new_oids()[:2]
    s1 = a.commit([(x, Z64, b"x1")])
    s2 = b.commit([(x, s1, b"x2")])
    check(c.wait_invalidation(s2) is not None, "node 3 invalidation")
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.checkCurrentSerialInTransaction(x, s1, txn)
    c.storea(y, Z64, b"y", txn)
    e = expect_error(lambda: c.vote(txn), POS + "ReadConflictError")
    p = e.payload
    check(isinstance(p, dict), "ReadConflictError payload is a dict", p)
    check(p.get("oid") == x, "payload oid", p)
    check(p.get("serials") == (s2, s1), "payload serials (committed, read)", p.get("serials"))
    check(isinstance(p.get("message"), str), "payload message", p)
    check(c.tpc_abort(txn) is None, "tpc_abort after a failed vote")
    expect_error(lambda: c.loadBefore(y, MAXTID), POS + "POSKeyError")
    check(c.lastTransaction() == s2, "nothing committed")
    # A good read-current check commits.
    t = c.commit([(y, Z64, b"y")], reads=[(x, s2)])
    check(t > s2, "commit with a current read")


@case
def txn_state_errors(ctx):
    c = ctx.connect(2)
    last = c.lastTransaction()
    txn = c.new_txn()
    e = expect_error(lambda: c.vote(txn), POS + "StorageTransactionError")
    check(isinstance(e.payload, tuple), "StorageTransactionError payload is a tuple", e.payload)
    e = expect_error(lambda: c.tpc_finish(txn), POS + "StorageTransactionError")
    check(isinstance(e.payload, tuple), "StorageTransactionError payload is a tuple", e.payload)
    check(c.tpc_abort(txn) is None, "tpc_abort of an unknown txn")
    check(c.tpc_abort(c.new_txn()) is None, "tpc_abort of another unknown txn")
    check(c.ping() is None, "ping")
    check(c.lastTransaction() == last, "lastTransaction unchanged")
    # The connection still commits.
    oid = fresh_oid(c)
    check(c.commit([(oid, Z64, b"after errors")]) > last, "commit after errors")


@case
def get_invalidations(ctx):
    a = ctx.connect(1)
    l0 = a.lastTransaction()
    o1, o2, o3 = a.new_oids()[:3]
    a.commit([(o1, Z64, b"g1"), (o2, Z64, b"g2")])
    t2 = a.commit([(o3, Z64, b"g3")])
    t3 = a.commit([(o1, a.finished[-2][0], b"g1b")])
    check(t3 > t2, "tids increase")
    b = ctx.connect(2)
    check(b.register_tid >= t3, "register on node 2 after commits on node 1 (read barrier)",
          b.register_tid.hex(), t3.hex())
    r = b.getInvalidations(l0)
    check(isinstance(r, tuple) and len(r) == 2, "getInvalidations reply", r)
    x, oids = r
    check(isinstance(x, bytes) and x >= t3, "getInvalidations tid", x, t3)
    check(isinstance(oids, list) and all(isinstance(o, bytes) for o in oids), "oids", oids)
    check({o1, o2, o3} <= set(oids), "oids cover the commits since", oids)
    r = b.getInvalidations(t2)
    check(r is not None and o1 in r[1], "getInvalidations(t2) covers t3", r)


@case
def heartbeat(ctx):
    c = ctx.connect(3)
    n = len(c.events)
    c.heartbeat()
    c.send_raw(zc.frame(bytes.fromhex(
        "80 03 28 4a ff ff ff ff 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 4e 74 2e")))
    time.sleep(0.3)
    check(c.ping() is None, "ping after heartbeats")
    check(len(c.events) == n, "server answered a heartbeat", c.events[n:])
    check(not c.closed.is_set(), "connection closed")


@case
def unknown_method(ctx):
    c = ctx.connect(1)
    last = c.lastTransaction()
    e = expect_error(lambda: c.call("noSuchMethod", 1, b"x"))
    print("  unknown method: %s %r" % (e.class_name, e.payload))
    check(isinstance(e.class_name, str), "error class name type", e.class_name)
    check(c.ping() is None, "ping after the error")
    check(c.lastTransaction() == last, "lastTransaction")


def still_serving(ctx, node, last, what):
    c = ctx.connect(node, label="check-n%d" % node)
    check(c.register_tid == last, "after %s: register tid" % what, c.register_tid.hex(), last.hex())
    check(c.lastTransaction() == last, "after %s: lastTransaction changed" % what)
    check(c.ping() is None, "after %s: ping" % what)


def nested_call(depth):
    body = b"\x5d" * depth + b"\x61" * (depth - 1)
    return (b"\x80\x03\x28\x4b\x05\x89\x58\x04\x00\x00\x00ping" + body + b"\x85\x74\x2e")


@case
def robustness(ctx):
    probe = ctx.connect(1)
    last = probe.lastTransaction()
    ok = zc.pickle_encode((5, False, "lastTransaction", ()))
    after_register = [
        ("pickle with a global (set)", frame(zc.pickle_encode((5, False, "ping", ({1, 2},))))),
        ("truncated pickle", frame(ok[:-3])),
        ("nesting 1000 deep", frame(nested_call(1000))),
        ("3 GiB frame", struct.pack(">I", 3 << 30) + ok),
    ]
    node = 1
    for what, data in after_register:
        node = node % 3 + 1
        c = ctx.connect(node, strict=False, track=False, label="bad-n%d" % node)
        c.send_raw(data)
        check(c.wait_closed(CLOSE_WAIT_S), "connection not closed after " + what)
        still_serving(ctx, node, last, what)
    before_answer = [
        ("answer Z4", frame(b"Z4")),
        ("answer XY", frame(b"XY")),
        ("register without answer", frame(zc.pickle_encode((1, False, "register", ("1", 0))))),
        ("HTTP request", b"GET / HTTP/1.0\r\n\r\n"),
    ]
    for what, data in before_answer:
        node = node % 3 + 1
        s = raw_session(ctx, node)
        s.sendall(data)
        closed, got = raw_closed(s, 10.0 if what == "HTTP request" else CLOSE_WAIT_S)
        s.close()
        check(closed, "connection not closed after " + what, got[:64])
        still_serving(ctx, node, last, what)


@case
def ruok(ctx):
    s = raw_session(ctx, 2)
    s.sendall(frame(b"ruok"))
    body = zc.recv_frame(s)
    check(body is not None, "no ruok reply")
    st = json.loads(body.decode("utf-8"))
    check(isinstance(st, dict) and st and all(isinstance(v, dict) for v in st.values()),
          "ruok reply is {storage: {status}}", st)
    closed, extra = raw_closed(s)
    s.close()
    check(closed and not extra, "after the ruok reply: closed, nothing more", extra[:64])
    print("  ruok: %s" % json.dumps(st, sort_keys=True)[:300])


@case
def msgpack_session(ctx):
    p = ctx.connect(2)
    last = p.lastTransaction()
    oid, t, data = None, None, None
    for tid, stored in reversed(ctx.ledger()):
        if stored and None not in stored.values():
            oid, data = next(iter(stored.items()))
            t = tid
            break
    m = ctx.connect(2, encoding="M", label="msgpack-n2")
    check(m.register_tid == last, "msgpack register tid", m.register_tid, last)
    check(m.lastTransaction() == last, "msgpack lastTransaction")
    if oid is not None:
        got = m.loadSerial(oid, t)
        check(got == data, "msgpack loadSerial", got, data)
    expect_error(lambda: m.loadBefore(m.new_oids()[0], MAXTID), POS + "POSKeyError")
    m.heartbeat()
    check(m.ping() is None, "msgpack ping after heartbeat")
    o = m.new_oids()[0]
    tid = m.commit([(o, Z64, b"via msgpack")])
    check(p.wait_invalidation(tid) is not None, "invalidation of the msgpack commit")
    got = p.loadBefore(o, MAXTID)
    check(got == (b"via msgpack", tid, None), "pickle reader sees it", got, tid)


@case
def extra_spec_checks(ctx):
    """Further rules of the protocol description, one error each."""
    c = ctx.connect(1)
    oid = fresh_oid(c)
    t = c.commit([(oid, Z64, b"h")], user=b"bob", description=b"history check")
    h = c.history(oid, 5)
    check(isinstance(h, list) and h and isinstance(h[0], dict), "history reply", h)
    check(h[0].get("tid") == t and h[0].get("user_name") == b"bob"
          and h[0].get("description") == b"history check"
          and isinstance(h[0].get("time"), float) and isinstance(h[0].get("size"), int),
          "history entry", h[0])
    check(len(c.new_oids(3)) == 3, "new_oids(3)")
    check(c.call("getTid", oid) == t, "getTid")
    c.call_async("set_client_label", "zeo-cluster test")
    st = c.call("server_status")
    check(isinstance(st, dict) and isinstance(st.get("last-transaction"), str),
          "server_status", st)
    # Later stores of an oid in one transaction replace earlier ones.
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.storea(oid, t, b"first store", txn)
    c.storea(oid, t, b"second store", txn)
    v = c.vote(txn)
    check(v is None or v == [], "vote with two stores of one oid", v)
    t2 = c.tpc_finish(txn, {oid: b"second store"})
    check(c.loadBefore(oid, MAXTID) == (b"second store", t2, None), "the later store wins")
    expect_error(lambda: c.loadSerial(oid, Z64), POS + "POSKeyError")
    expect_error(lambda: c.register(), "builtins.ValueError")
    u = ctx.connect(1, register=False)
    expect_error(lambda: u.register("no-such-storage", False), "builtins.ValueError")
    u2 = ctx.connect(1, register=False, track=False)
    u2.call_start("lastTransaction")
    check(u2.wait_closed(CLOSE_WAIT_S), "a call before register does not close the connection")


@case
def delete_z64_serial(ctx):
    """deleteObject of an existing object with serial z64 is a serial
    mismatch: ConflictError at vote, like any stale serial."""
    c = ctx.connect(1)
    oid = fresh_oid(c)
    c.commit([(oid, Z64, b"exists")])
    txn = c.new_txn()
    c.tpc_begin(txn)
    c.deleteObject(oid, Z64, txn)
    e = expect_error(lambda: c.vote(txn))
    check(e.class_name == POS + "ConflictError", "want ConflictError", e.class_name, e.payload)
    check(c.tpc_abort(txn) is None, "tpc_abort")


@case
def latency(ctx):
    leader = leader_node(ctx)
    for node in (1, 2):
        c = ctx.connect(node, strict=False)
        oid = fresh_oid(c)
        serial = c.commit([(oid, Z64, b"lat")])
        loads, commits = [], []
        for _ in range(LATENCY_ITERATIONS):
            t0 = time.perf_counter()
            c.loadBefore(oid, MAXTID)
            loads.append(time.perf_counter() - t0)
        for i in range(LATENCY_ITERATIONS):
            t0 = time.perf_counter()
            serial = c.commit([(oid, serial, b"lat %d" % i)])
            commits.append(time.perf_counter() - t0)
        print("  node %d%s: loadBefore p50 %s p99 %s; one-object commit p50 %s p99 %s (%d each)"
              % (node, " (leader)" if node == leader else "", *pct(loads), *pct(commits),
                 LATENCY_ITERATIONS))


def pct(xs):
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return "%.3f ms" % (q[49] * 1e3), "%.3f ms" % (q[98] * 1e3)


class RawConn:
    """A bare registered ZEO connection, driven by the caller's selector: no
    thread of its own, so a case can hold a thousand of them."""

    def __init__(self, host, port, msgid=1):
        self.sock = socket.create_connection((host, port), timeout=CLOSE_WAIT_S)
        ann = zc.recv_frame(self.sock)
        check(ann == b"Z5", "announcement", ann)
        self.sock.sendall(frame(b"Z5") + frame(zc.pickle_encode(
            (msgid, False, "register", ("1", False)))))
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.messages = []
        self.closed = False

    def pump(self):
        """Read what arrived; decode whole frames into self.messages."""
        while True:
            try:
                b = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.closed = True
                break
            if not b:
                self.closed = True
                break
            self.buf += b
        while len(self.buf) >= 4:
            n = struct.unpack(">I", self.buf[:4])[0]
            if len(self.buf) < 4 + n:
                break
            self.messages.append(zc.pickle_decode(bytes(self.buf[4:4 + n])))
            del self.buf[:4 + n]

    def close(self):
        self.sock.close()


def raise_nofile(want):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pump_until(conns, pred, timeout_s):
    """Read from every connection until pred(conn) holds for all (or timeout)."""
    import selectors
    sel = selectors.DefaultSelector()
    waiting = {c for c in conns if not pred(c)}
    for c in waiting:
        sel.register(c.sock, selectors.EVENT_READ, c)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        for key, _ in sel.select(min(0.5, max(0.01, deadline - time.monotonic()))):
            c = key.data
            c.pump()
            if pred(c) or c.closed:
                sel.unregister(c.sock)
                waiting.discard(c)
    sel.close()
    return [c for c in conns if not pred(c)]


MANY_CONNECTIONS = 1000


@case
def many_connections(ctx):
    """A thousand connections to one node register; one other connection
    commits; every one of them receives the commit's invalidation; the node
    goes on serving."""
    limit = raise_nofile(MANY_CONNECTIONS + 256)
    check(limit >= MANY_CONNECTIONS + 64, "open-file limit of the test", limit)
    conns = []
    t0 = time.monotonic()
    try:
        for _ in range(MANY_CONNECTIONS):
            conns.append(RawConn(ctx.host, ctx.ports[0]))
        registered = lambda c: any(m[0] == 1 and m[2] == ".reply" for m in c.messages)
        late = pump_until(conns, registered, 60.0)
        check(not late, "%d of %d connections not registered" % (len(late), len(conns)),
              [(c.closed, c.messages[:2]) for c in late[:3]])
        t_reg = time.monotonic() - t0
        c = ctx.connect(1, label="many-committer")
        oid = fresh_oid(c)
        tid = c.commit([(oid, Z64, b"seen by a thousand")])

        def saw(x):
            return any(m[2] == "invalidateTransaction" and m[3][0] == tid and oid in m[3][1]
                       for m in x.messages)
        missed = pump_until(conns, saw, 30.0)
        check(not missed, "%d of %d connections without the invalidation"
              % (len(missed), len(conns)), [(x.closed, x.messages[-2:]) for x in missed[:3]])
        check(not any(x.closed for x in conns), "a connection was closed")
        # The node still answers at once beside them.
        t1 = time.perf_counter()
        check(c.loadBefore(oid, MAXTID) == (b"seen by a thousand", tid, None), "load")
        t_load = time.perf_counter() - t1
        print("  %d connections registered in %.1f s; all saw the commit; a load beside "
              "them took %.1f ms" % (len(conns), t_reg, t_load * 1e3))
    finally:
        for x in conns:
            x.close()


@case
def connection_churn(ctx):
    """Connections opened and closed in a loop (before the handshake, after
    register, in the middle of a transaction, after its vote) while another
    connection commits: every commit succeeds and reads back, no lock is
    left behind."""
    c = ctx.connect(1, label="churn-committer")
    oids = c.new_oids()[:4]
    serials = {o: Z64 for o in oids}
    stop = threading.Event()
    errors = []
    done = [0]

    def commits():
        try:
            i = 0
            while not stop.is_set() and i < 400:
                o = oids[i % len(oids)]
                serials[o] = c.commit([(o, serials[o], b"churn %d" % i)])
                done[0] += 1
                i += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    th = threading.Thread(target=commits, daemon=True)
    th.start()
    kinds = {"no-handshake": 0, "registered": 0, "mid-txn": 0, "voted": 0}
    t_end = time.monotonic() + 8.0
    i = 0
    try:
        while time.monotonic() < t_end and th.is_alive():
            kind = list(kinds)[i % len(kinds)]
            i += 1
            if kind == "no-handshake":
                s = socket.create_connection((ctx.host, ctx.ports[i % 3]), timeout=CLOSE_WAIT_S)
                s.close()
            else:
                d = ZeoClient(ctx.host, ctx.ports[i % 3], label="churn-%d" % i)
                d.register()
                if kind != "registered":
                    o = d.new_oids()[0]
                    t = d.new_txn()
                    d.tpc_begin(t)
                    d.storea(o, Z64, b"abandoned", t)
                    if kind == "voted":
                        v = d.vote(t)
                        check(v is None or v == [], "vote of an abandoned transaction", v)
                d.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                d.close()
            kinds[kind] += 1
    finally:
        stop.set()
        th.join(30)
    check(not th.is_alive(), "the committer hung")
    check(not errors, "commit failed during the churn", errors[:1])
    check(done[0] >= 10, "commits during the churn", done[0])
    # What the churn prepared holds no lock: every oid commits again at once.
    for o in oids:
        serials[o] = c.commit([(o, serials[o], b"after the churn")])
        check(c.loadBefore(o, MAXTID)[0] == b"after the churn", "read back")
    print("  %d connections opened and dropped (%s) beside %d commits"
          % (sum(kinds.values()), ", ".join("%s %d" % kv for kv in kinds.items()), done[0]))


@case
def unread_client_closed(ctx):
    """A client that asks for large records and never reads its socket is
    closed once the output it left unread passes the gateway's limit; the
    node keeps serving the others meanwhile."""
    c = ctx.connect(1, label="unread-peer")
    oid = fresh_oid(c)
    big = os.urandom(900 * 1024)
    tid = c.commit([(oid, Z64, big)])
    s = raw_session(ctx, 1)
    s.sendall(frame(b"Z5") + frame(zc.pickle_encode((1, False, "register", ("1", False)))))
    time.sleep(0.5)
    # 100 loads of 900 KiB (90 MiB of replies), never read.
    s.sendall(b"".join(frame(zc.pickle_encode((10 + k, False, "loadBefore", (oid, MAXTID))))
                       for k in range(100)))
    lat = []
    for i in range(20):
        t0 = time.perf_counter()
        got = c.loadBefore(oid, MAXTID)
        lat.append(time.perf_counter() - t0)
        check(got == (big, tid, None), "a load beside the unread client")
        tid = c.commit([(oid, tid, big[:1000] + b"%d" % i)])
        big = big[:1000] + b"%d" % i
    check(max(lat) < 2.0, "loads beside the unread client took up to %.2f s" % max(lat))
    # Not a byte read yet: the gateway must close it on its own (its log says so).
    if ctx.args.run_dir:
        deadline = time.monotonic() + 30.0
        logged = False
        while not logged and time.monotonic() < deadline:
            with open(os.path.join(ctx.args.run_dir, "n1.log"), errors="replace") as f:
                logged = "does not read its socket" in f.read()
            time.sleep(0.2)
        check(logged, "no log line for the client that does not read")
    closed, got = raw_closed(s, 40.0)
    s.close()
    check(closed, "the unread client is still connected")
    check(len(got) < 100 * 900 * 1024, "the unread client got every reply", len(got))
    print("  closed after %.1f MiB of replies reached it; loads beside it p max %.1f ms"
          % (len(got) / 2**20, max(lat) * 1e3))


@case
def invalidation_feed(ctx):
    """Every watcher saw every acknowledged commit after its register tid,
    exactly once, in strictly increasing tid order, with the stored oids."""
    ledger = ctx.ledger()
    for n, w in ctx.watchers.items():
        want = [(t, s) for t, s in ledger if t > ctx.watch_from[n]]
        if want:
            check(w.wait_invalidation(want[-1][0], 10.0) is not None,
                  "watcher n%d: no invalidation for the last commit" % n)
        got = w.invalidations()
        tids = [t for t, _ in got]
        check(all(x < y for x, y in zip(tids, tids[1:])), "watcher n%d: tids not increasing" % n)
        check(not w.closed.is_set(), "watcher n%d closed: %s" % (n, w.close_reason))
        check(not w.violations, "watcher n%d: protocol violations" % n, w.violations[:5])
        gmap = dict(got)
        missing = [t.hex() for t, _ in want if t not in gmap]
        check(not missing, "watcher n%d: %d commits without invalidation" % (n, len(missing)),
              missing[:5])
        for t, s in want:
            check(set(gmap[t]) == set(s), "watcher n%d: oids of %s" % (n, t.hex()),
                  gmap[t], list(s))
        print("  watcher n%d: %d invalidations in order" % (n, len(want)))
    if ctx.silent:
        s, t0 = ctx.silent
        closed, got = raw_closed(s, max(0.1, t0 + HANDSHAKE_WAIT_S - time.monotonic()))
        s.close()
        check(closed, "a connection that never answered the announcement is still open "
              "after %.0f s" % (time.monotonic() - t0), got[:32])


def leader_node(ctx):
    rd = ctx.args.run_dir
    if not rd:
        return None
    votes = []
    for n in (1, 2, 3):
        try:
            with open(os.path.join(rd, "n%d.log" % n), errors="replace") as f:
                m = re.findall(r"leader is node (\d+)", f.read())
            if m and m[-1] != "0":
                votes.append(int(m[-1]))
        except OSError:
            pass
    return max(set(votes), key=votes.count) if votes else None


@case
def follower_down_blob(ctx):
    """A follower stopped while a 64 MiB blob commits through another node
    catches up when it comes back (the chunks and the LARGE entry are log
    entries like any other) and serves the blob byte-identical."""
    if not ctx.args.cluster_sh:
        raise Failure("needs --cluster-sh, --config and --run-dir")
    lead = leader_node(ctx) or 1
    down = lead % 3 + 1
    via = down % 3 + 1  # the third node: a follower, or the leader itself
    subprocess.run(["bash", ctx.args.cluster_sh, "stop", str(down), ctx.args.config],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))
    try:
        c = ctx.connect(via, label="blob-while-n%d-down" % down)
        oid = c.new_oids()[0]
        blob = hashlib.sha256(b"64").digest() * (2 << 20)
        want = hashlib.sha256(blob).hexdigest()
        txn = c.new_txn()
        c.tpc_begin(txn)
        store_blob(c, txn, oid, b"caught-up-blob", blob)
        check(c.call("vote", txn, timeout=300) in ([], None),
              "vote of the blob with node %d down" % down)
        tid = c.tpc_finish(txn, {oid: b"caught-up-blob"})
        del blob
    finally:
        subprocess.run(["bash", ctx.args.cluster_sh, "start", str(down), ctx.args.config],
                       check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + 60
    while True:
        try:
            r = ctx.connect(down, label="caught-up-n%d" % down)
            if r.lastTransaction() >= tid:
                break
            r.close()
        except (OSError, zc.ConnectionClosed, TimeoutError, ZeoError):
            pass
        check(time.monotonic() < deadline, "node %d caught up within 60 s" % down)
        time.sleep(0.5)
    got = served_blob(ctx, down, oid, tid)
    check(got == (want, 64 << 20), "64 MiB blob served by the node that was down", got[1])
    print("  node %d was down during a 64 MiB blob commit through node %d; it caught up and "
          "serves the blob" % (down, via))


@case
def kill_connected_node(ctx):
    if not ctx.args.cluster_sh:
        raise Failure("needs --cluster-sh, --config and --run-dir")
    victim = leader_node(ctx) or 1
    other = victim % 3 + 1
    c = ctx.connect(victim, label="victim-n%d" % victim)
    # A transaction voted on the victim: its locks outlive the node, until the lease.
    lv = ctx.connect(victim, label="voted-on-victim")
    held = fresh_oid(lv)
    s_held = lv.commit([(held, Z64, b"before the lease")])
    tl = lv.new_txn()
    lv.tpc_begin(tl)
    lv.storea(held, s_held, b"voted, never finished", tl)
    check(lv.vote(tl) in (None, []), "vote on the victim")
    pool = c.new_oids() + c.new_oids()
    acked = []
    stop = threading.Event()
    errors = []

    def stream():
        try:
            for i, oid in enumerate(pool):
                if stop.is_set():
                    return
                data = b"stream %d " % i + oid
                acked.append((oid, data, c.commit([(oid, Z64, data)])))
        except (zc.ConnectionClosed, TimeoutError, ZeoError, OSError) as e:
            errors.append(e)

    th = threading.Thread(target=stream, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while len(acked) < 20 and th.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    check(len(acked) >= 20, "stream before the kill", len(acked), errors)
    # A 64 MiB transaction uploading to the victim (its vote in flight) when it dies.
    big = ctx.connect(victim, label="large-on-victim")
    big_oids = more_oids(big, 64)
    tb = big.new_txn()
    big.tpc_begin(tb)
    for o in big_oids:
        big.storea(o, Z64, o * (1 << 17), tb)
    t_big = time.monotonic()
    big_vote = big.call_start("vote", tb)
    time.sleep(0.3)
    subprocess.run(["bash", ctx.args.cluster_sh, "kill", str(victim), ctx.args.config],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))
    ctx.killed = victim
    check(c.wait_closed(10.0), "connection to the killed node not closed")
    stop.set()
    th.join(20)
    check(not th.is_alive(), "commit stream hung after the kill")
    last_acked = max(t for _, _, t in acked)
    print("  killed node %d (leader) after %d acknowledged commits; reconnecting to node %d"
          % (victim, len(acked), other))
    d = None
    deadline = time.monotonic() + 30
    while d is None:
        try:
            d = ctx.connect(other, label="after-kill-n%d" % other)
        except (OSError, zc.ConnectionClosed, TimeoutError, ZeoError) as e:
            if time.monotonic() > deadline:
                raise Failure("no registered connection to node %d: %r" % (other, e))
            time.sleep(0.5)
    check(d.register_tid >= last_acked, "register tid after the kill",
          d.register_tid.hex(), last_acked.hex())
    check(d.lastTransaction() >= last_acked, "lastTransaction after the kill")
    for oid, data, t in acked:
        got = d.loadBefore(oid, MAXTID)
        check(got == (data, t, None), "acknowledged record %s" % oid.hex(), got, t.hex())
    n = 0
    for t, stored in ctx.ledger():
        for oid, data in stored.items():
            if data is None:
                continue
            check(d.loadSerial(oid, t) == data, "ledger record %s@%s" % (oid.hex(), t.hex()))
            n += 1
    o = fresh_oid(d)
    t = d.commit([(o, Z64, b"after the kill")])
    check(t > last_acked, "commit after the kill")
    # The voted transaction's connection died with its node: its lock goes
    # with the lease (txn.lease_ms), and a commit on the same oid then succeeds.
    t0 = time.monotonic()
    tx = d.new_txn()
    d.tpc_begin(tx)
    d.storea(held, s_held, b"after the lease", tx)
    v = d.call("vote", tx, timeout=60.0)
    check(v in (None, []), "vote over the lease-held oid", v)
    t_lease = d.tpc_finish(tx, {held: b"after the lease"})
    waited = time.monotonic() - t0
    check(d.loadBefore(held, MAXTID) == (b"after the lease", t_lease, None),
          "the record committed after the lease")
    check(w_lease_ok(ctx, waited), "the lease-held oid waited %.1f s" % waited)
    print("  %d stream records and %d ledger records read back; new commit %s; the oid "
          "voted on the killed node committed again after %.1f s (lease)"
          % (len(acked), n, t.hex(), waited))
    # The large transaction never finished: none of its records is visible,
    # and its oids are free for others once the lease is over.
    try:
        v = big_vote.result(5.0)
        print("  the large vote was answered before the kill: %r" % (v,))
    except (zc.ConnectionClosed, TimeoutError, ZeoError, OSError) as e:
        print("  the large vote on the killed node: %s" % type(e).__name__)
    for o in big_oids:
        expect_error(lambda: d.loadBefore(o, MAXTID), POS + "POSKeyError")
    check(d.commit([(big_oids[0], Z64, b"after the large one")]) is not None,
          "commit on an oid of the unfinished large transaction")
    # Its chunks expire with the lease on every replica (the harness checks
    # the nodes' final reports: no payload left open).
    rest = t_big + w_lease_s(ctx) + 5.0 - time.monotonic()
    if rest > 0:
        time.sleep(rest)


def w_lease_s(ctx):
    """The cluster's txn.lease_ms, in seconds."""
    lease_s = 10.0
    if ctx.args.config:
        with open(ctx.args.config) as f:
            m = re.search(r"lease_ms:\s*(\d+)", f.read())
        if m:
            lease_s = int(m.group(1)) / 1000.0
    return lease_s


def w_lease_ok(ctx, waited):
    """Within the configured lease plus an election and a lease tick."""
    return waited <= w_lease_s(ctx) + 15.0


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ports", required=True)
    ap.add_argument("--config")
    ap.add_argument("--cluster-sh")
    ap.add_argument("--run-dir")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--extra", action="store_true", help="also run the extra cases")
    args = ap.parse_args()
    ctx = Ctx(args)
    for p in ctx.ports:
        wait_port(args.host, p, 20)
    only = set(args.only.split(",")) if args.only else None
    failed = []
    ran = 0
    t_all = time.monotonic()
    for fn in CASES:
        name = fn.__name__
        if only and name not in only and name != "handshake_register_info":
            continue
        if not only and name in EXTRA and not args.extra:
            continue
        ran += 1
        t0 = time.monotonic()
        try:
            fn(ctx)
            ctx.end_case()
            print("PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except Exception as e:
            try:
                ctx.end_case()
            except Failure as e2:
                e = Failure("%s; %s" % (e, e2))
            failed.append(name)
            kind = "" if isinstance(e, (Failure, ZeoError)) else type(e).__name__ + ": "
            print("FAIL %s (%.1f s): %s%s" % (name, time.monotonic() - t0, kind, e), flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc(limit=4)
    print("%d cases, %d failed%s, %.1f s" % (
        ran, len(failed),
        (": " + ", ".join(failed)) if failed else "", time.monotonic() - t_all))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
