#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The ZEO part of `make demo`: a ZEO 5 session against the local cluster,
through each node's ZEO gateway, with the protocol client of the tests
(tests/zeo_cluster/zeo_client.py, Python standard library only).

usage: zeo-demo.py session HOST PORT_A PORT_B
  commits through node A, node B's client gets the invalidation and reads
  the new record; a concurrent write of one record through A and B: B's vote
  gets a conflict dict, resolves it (client-side, as ZODB does) and commits;
  a BTrees.Length incremented through A and B at once is merged by the
  gateway;
  loadBefore and commit round trips (p50 / p99 of 200 each) through A.
usage: zeo-demo.py check HOST PORT OID_HEX TID_HEX DATA
  connects to one node, checks that OID was committed at TID with DATA.
"""
import os
import pickle
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "zeo_cluster"))
from zeo_client import MAXTID, Z64, ZeoClient  # noqa: E402


LENGTH_HEADER = b"\x80\x03cBTrees.Length\nLength\nq\x00."


def length_record(n):
    """A ZODB record of a BTrees.Length.Length holding n."""
    return LENGTH_HEADER + pickle.dumps(n, protocol=3)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def commit(c, stores):
    t = c.new_txn()
    c.tpc_begin(t, b"demo", b"zap demo")
    for oid, serial, data in stores:
        c.storea(oid, serial, data, t)
    r = c.vote(t)
    return t, r


def session(host, pa, pb):
    a = ZeoClient(host, pa, label="a")
    b = ZeoClient(host, pb, label="b")
    la, lb = a.register(), b.register()
    print("client A on port %d registered: last tid %s" % (pa, la.hex()))
    print("client B on port %d registered: last tid %s" % (pb, lb.hex()))
    oid = a.new_oids(1)[0]
    t, r = commit(a, [(oid, Z64, b"hello from A")])
    tid = a.tpc_finish(t)
    print("A: new object %s committed at tid %s (vote %r)" % (oid.hex(), tid.hex(), r))
    inv = b.wait_invalidation(tid)
    if inv is None:
        sys.exit("B got no invalidation for %s" % tid.hex())
    data, start, end = b.loadBefore(oid, MAXTID)
    print("B: invalidateTransaction(%s, %s); loadBefore -> %r serial %s" %
          (tid.hex(), [o.hex() for o in inv[1]], data, start.hex()))

    # A votes first and holds the object; B's vote waits for A, then conflicts.
    ta, _ = commit(a, [(oid, tid, b"A+")])
    tb = b.new_txn()
    b.tpc_begin(tb, b"demo", b"zap demo")
    b.storea(oid, tid, b"B+", tb)
    pending = b.call_start("vote", tb)
    tida = a.tpc_finish(ta)
    rb = pending.result(30)
    print("A: committed %s at %s; B's vote, which waited for A: %d conflict dict(s)" %
          (oid.hex(), tida.hex(), len(rb)))
    committed = rb[0]["serials"][0]
    print("B: conflict on %s: committed %s, base %s; B merges and votes again" %
          (rb[0]["oid"].hex(), committed.hex(), rb[0]["serials"][1].hex()))
    mine = b.loadSerial(oid, committed)
    b.storea(oid, committed, mine + b" and B+", tb)
    rb2 = b.vote(tb)
    tidb = b.tpc_finish(tb)
    print("B: re-vote %r, committed at %s: %r" % (rb2, tidb.hex(),
                                                  b.loadBefore(oid, MAXTID)[0]))
    if a.wait_invalidation(tidb) is None:
        sys.exit("A got no invalidation for %s" % tidb.hex())

    # A BTrees.Length counter changed through both nodes at once: the
    # gateway merges it (committed + new - old), the vote names the oid.
    cnt = a.new_oids(1)[0]
    t, _ = commit(a, [(cnt, Z64, length_record(10))])
    base = a.tpc_finish(t)
    if b.wait_invalidation(base) is None:
        sys.exit("B got no invalidation for %s" % base.hex())
    ta, _ = commit(a, [(cnt, base, length_record(10 + 5))])
    tb = b.new_txn()
    b.tpc_begin(tb, b"demo", b"zap demo")
    b.storea(cnt, base, length_record(10 + 7), tb)
    a.tpc_finish(ta)
    rb = b.vote(tb)
    tidc = b.tpc_finish(tb)
    value = pickle.loads(b.loadBefore(cnt, MAXTID)[0][len(LENGTH_HEADER):])
    print("Length %s: A adds 5, B adds 7 at the same time; B's vote %s; value %d at %s" %
          (cnt.hex(), "names it (merged by the gateway)" if rb == [cnt] else repr(rb),
           value, tidc.hex()))
    if value != 22:
        sys.exit("the merged Length is %d, not 22" % value)

    loads, commits = [], []
    for _ in range(200):
        t0 = time.perf_counter()
        a.loadBefore(oid, MAXTID)
        loads.append((time.perf_counter() - t0) * 1e6)
    serial = tidb
    for i in range(200):
        t0 = time.perf_counter()
        t, _ = commit(a, [(oid, serial, b"x" * 100)])
        serial = a.tpc_finish(t)
        commits.append((time.perf_counter() - t0) * 1e6)
    print("latency through port %d (Python client, loopback TCP):" % pa)
    print("    loadBefore    p50 %7.0f us  p99 %7.0f us" % (pct(loads, .5), pct(loads, .99)))
    print("    2PC commit    p50 %7.0f us  p99 %7.0f us  (tpc_begin..tpc_finish, 1 x 100 B)" %
          (pct(commits, .5), pct(commits, .99)))
    print("LAST %s %s %s" % (oid.hex(), serial.hex(), (b"x" * 100).decode()))
    a.close()
    b.close()


def check(host, port, oid_hex, tid_hex, data):
    c = ZeoClient(host, port)
    last = c.register()
    rec = c.loadBefore(bytes.fromhex(oid_hex), MAXTID)
    ok = rec is not None and rec[0] == data.encode() and rec[1].hex() == tid_hex
    print("port %d: registered at %s; object %s: serial %s %s" %
          (port, last.hex(), oid_hex, rec[1].hex() if rec else "-",
           "(the last acknowledged commit)" if ok else "(WRONG)"))
    c.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "session":
        session(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 7 and sys.argv[1] == "check":
        check(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        sys.exit(__doc__)
