# SPDX-License-Identifier: Apache-2.0
"""A minimal in-memory ZEO 5 server ("Z5" announcement, pickle or msgpack by
the client's answer) listening on several ports that share one storage, the
way the nodes of a cluster share one database. It implements the subset of
the protocol description the cluster cases use, with client-side conflict
resolution (conflict dicts at vote). It exists to check the test client and
the cases themselves; it is not a reference for the gateway.

usage: fake_zeo_server.py PORT [PORT ...]     (runs until killed)
"""

import json
import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zeo_client as zc  # noqa: E402

MAX_FRAME_BYTES = 64 << 20
MAX_DEPTH = 64
POS = "ZODB.POSException."


def depth(v, d=0):
    if d > MAX_DEPTH:
        return d
    if isinstance(v, (tuple, list)):
        return max([depth(x, d + 1) for x in v] or [d])
    if isinstance(v, dict):
        return max([depth(x, d + 1) for x in v.values()] or [d])
    return d


def now_tid():
    t = time.gmtime()
    minutes = ((((t.tm_year - 1900) * 12 + t.tm_mon - 1) * 31 + t.tm_mday - 1) * 24
               + t.tm_hour) * 60 + t.tm_min
    frac = int((time.time() % 60) * (1 << 32) / 60)
    return (minutes << 32) | frac


class Storage:
    def __init__(self):
        self.lock = threading.RLock()
        self.revs = {}   # oid -> [(tid, data)] ascending
        self.log = []    # [(tid, oids, user, desc)]
        self.last = zc.Z64
        self.next_oid = 1
        self.conns = set()
        self.locks = {}  # oid -> Conn whose voted transaction holds it
        self.unlocked = threading.Condition(self.lock)

    def release(self, conn):
        with self.lock:
            for oid in [o for o, c in self.locks.items() if c is conn]:
                del self.locks[oid]
            self.unlocked.notify_all()

    def current(self, oid):
        r = self.revs.get(oid)
        return r[-1][0] if r else zc.Z64


class Conn:
    def __init__(self, st, sock):
        self.st, self.sock = st, sock
        self.enc = "Z"
        self.send_lock = threading.Lock()
        self.registered = False
        self.txns = {}

    def send(self, msgid, flag, name, args):
        v = (msgid, flag, name, args)
        b = zc.msgpack_encode(v) if self.enc == "M" else zc.pickle_encode(v)
        with self.send_lock:
            self.sock.sendall(zc.frame(b))

    def recv(self):
        h = zc.recv_exact(self.sock, 4)
        if not h:
            return None
        n = struct.unpack(">I", h)[0]
        if n > MAX_FRAME_BYTES:
            return None
        return zc.recv_exact(self.sock, n) if n else b""

    def run(self):
        try:
            self.serve()
        except Exception:
            pass
        finally:
            self.st.release(self)
            with self.st.lock:
                self.st.conns.discard(self)
            self.sock.close()

    def serve(self):
        self.sock.sendall(zc.frame(b"Z5"))
        self.sock.settimeout(5)
        ans = self.recv()
        self.sock.settimeout(None)
        if ans == b"ruok":
            body = json.dumps({"1": {"connections": len(self.st.conns),
                                     "last-transaction": self.st.last.hex()}})
            self.sock.sendall(zc.frame(body.encode()))
            return
        if ans not in (b"Z5", b"M5"):
            return
        self.enc = ans[:1].decode()
        while True:
            p = self.recv()
            if p is None:
                return
            msg = zc.msgpack_decode(p) if self.enc == "M" else zc.pickle_decode(p)
            if depth(msg) > MAX_DEPTH:
                return
            msgid, flag, name, args = msg
            if msgid == -1:
                continue
            if not self.registered and name != "register":
                return
            if flag:
                getattr(self, "a_" + name)(*args)
                continue
            if name == "vote":  # may wait for a lock: reply from its own thread
                threading.Thread(target=self.answer, args=(msgid, name, args),
                                 daemon=True).start()
            else:
                self.answer(msgid, name, args)

    def answer(self, msgid, name, args):
        try:
            r = getattr(self, "m_" + name, None)
            if r is None:
                raise ZErr("builtins.AttributeError", (name,))
            self.send(msgid, 0, ".reply", r(*args))
        except ZErr as e:
            self.send(msgid, 2, ".reply", (e.args[0], e.args[1]))
        except OSError:
            pass

    # sync methods
    def m_register(self, storage, read_only, *creds):
        if self.registered or storage != "1":
            raise ZErr("builtins.ValueError", ("bad register",))
        with self.st.lock:
            self.registered = True
            self.st.conns.add(self)
            return self.st.last

    def m_get_info(self):
        return {"length": len(self.st.revs), "size": 0, "name": "fake", "supportsUndo": False,
                "supports_record_iternext": False, "interfaces": ()}

    def m_lastTransaction(self):
        return self.st.last

    def m_ping(self):
        return None

    def m_new_oids(self, n=100):
        n = max(1, min(100, n))
        with self.st.lock:
            a = self.st.next_oid
            self.st.next_oid += n
        return [zc.p64(a + i) for i in range(n)]

    def m_loadBefore(self, oid, before):
        with self.st.lock:
            revs = self.st.revs.get(oid)
            if not revs:
                raise ZErr(POS + "POSKeyError", (oid,))
            end = None
            for tid, data in reversed(revs):
                if tid < before:
                    if data is None:
                        raise ZErr(POS + "POSKeyError", (oid,))
                    return (data, tid, end)
                end = tid
            return None

    def m_loadSerial(self, oid, serial):
        for tid, data in self.st.revs.get(oid, ()):
            if tid == serial:
                return data
        raise ZErr(POS + "POSKeyError", (oid,))

    def m_history(self, oid, size=1):
        with self.st.lock:
            revs = self.st.revs.get(oid)
            if not revs:
                raise ZErr(POS + "POSKeyError", (oid,))
            out = []
            for tid, data in reversed(revs[-size:]):
                user, desc = next((u, d) for t, _, u, d in self.st.log if t == tid)
                out.append({"tid": tid, "time": 0.0, "user_name": user, "description": desc,
                            "size": len(data)})
            return out

    def m_getTid(self, oid):
        with self.st.lock:
            if oid not in self.st.revs:
                raise ZErr(POS + "POSKeyError", (oid,))
            return self.st.current(oid)

    def m_server_status(self):
        return {"connections": len(self.st.conns), "last-transaction": self.st.last.hex()}

    def m_undoLog(self, first=0, last=-20):
        return ()

    def a_set_client_label(self, label):
        pass

    def m_getInvalidations(self, tid):
        with self.st.lock:
            oids = set()
            for t, o, _, _ in self.st.log:
                if t > tid:
                    oids |= set(o)
            return (self.st.last, sorted(oids))

    def m_vote(self, txn):
        t = self.txns.get(txn)
        if t is None:
            raise ZErr(POS + "StorageTransactionError", ("no such transaction",))
        with self.st.lock:
            while any(self.st.locks.get(o, self) is not self for o in t["stores"]):
                self.st.unlocked.wait()
            for oid, serial in t["reads"]:
                cur = self.st.current(oid)
                if cur != serial:
                    del self.txns[txn]
                    raise ZErr(POS + "ReadConflictError", {
                        "message": "database read conflict error", "oid": oid,
                        "serials": (cur, serial), "class_name": None})
            conflicts = []
            for oid, (serial, data) in t["stores"].items():
                cur = self.st.current(oid)
                if cur != serial and data is None:
                    del self.txns[txn]
                    raise ZErr(POS + "ConflictError", {
                        "message": "database conflict error", "oid": oid,
                        "serials": (cur, serial), "class_name": None})
                if cur != serial:
                    conflicts.append({"oid": oid, "serials": (cur, serial), "data": data})
            if conflicts:
                return conflicts
            t["voted"] = True
            for oid in t["stores"]:
                self.st.locks[oid] = self
            return []

    def m_tpc_finish(self, txn):
        t = self.txns.pop(txn, None)
        if t is None or not t["voted"]:
            raise ZErr(POS + "StorageTransactionError", ("not voted",))
        with self.st.lock:
            tid = zc.p64(max(now_tid(), zc.u64(self.st.last) + 1))
            for oid, (_, data) in t["stores"].items():
                self.st.revs.setdefault(oid, []).append((tid, data))
            oids = list(t["stores"])
            self.st.log.append((tid, oids, t["user"], t["desc"]))
            self.st.last = tid
            for c in list(self.st.conns):
                if c is not self:
                    try:
                        c.send(0, True, "invalidateTransaction", (tid, oids))
                    except OSError:
                        pass
        self.st.release(self)
        return tid

    def m_tpc_abort(self, txn):
        self.txns.pop(txn, None)
        self.st.release(self)
        return None

    # async methods
    def a_tpc_begin(self, txn, user, desc, ext, tid, status):
        self.txns.setdefault(txn, {"stores": {}, "reads": [], "voted": False,
                                   "user": user, "desc": desc})

    def a_storea(self, oid, serial, data, txn):
        self.txns[txn]["stores"][oid] = (serial, data)

    def a_deleteObject(self, oid, serial, txn):
        self.txns[txn]["stores"][oid] = (serial, None)

    def a_checkCurrentSerialInTransaction(self, oid, serial, txn):
        self.txns[txn]["reads"].append((oid, serial))


class ZErr(Exception):
    pass


def main():
    st = Storage()
    socks = []
    for p in sys.argv[1:]:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(p)))
        s.listen(64)
        socks.append(s)

    def accept(s):
        while True:
            c, _ = s.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=Conn(st, c).run, daemon=True).start()

    for s in socks:
        threading.Thread(target=accept, args=(s,), daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
