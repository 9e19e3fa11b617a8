# SPDX-License-Identifier: Apache-2.0
"""A ZEO 5 protocol client for tests, Python 3 standard library only.

It speaks the wire protocol of the stock ZEO.ClientStorage as described in
docs/zeo.md: 4-byte big-endian length framing, a handshake
where the server announces b"Z5" or b"M5" and the client answers with a
letter and "5", then messages (msgid, flag, name, args) encoded as pickle
protocol 3 in fast mode ("Z") or msgpack ("M").

Design:
- One socket, one reader thread. The reader decodes every incoming frame and
  either completes the pending sync call with that msgid (an int, or the
  tuple (oid, tid) of loadBefore) or, for a server-initiated call
  (msgid 0, flag True), appends (name, args) to `events`.
- Decoding is strict: the pickle unpickler refuses every global and every
  persistent id, and (strict=True) every opcode outside the set the
  protocol allows a server to emit is recorded in `violations`, as are
  replies with an unknown msgid, bad flags or trailing bytes. Tests assert
  that `violations` stays empty.
- A flag-2 reply raises ZeoError(class_name, payload) in the caller.
- When the connection ends, every pending call fails with ConnectionClosed.
"""

import io
import pickle
import pickletools
import socket
import struct
import threading
import time

Z64 = b"\0" * 8
MAXTID = b"\x7f\xff\xff\xff\xff\xff\xff\xff"

# Opcodes a server may emit in "Z" mode (docs/zeo.md, the ZEO 5 protocol).
SERVER_OPCODES = frozenset([
    "PROTO", "MARK", "TUPLE", "EMPTY_TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "EMPTY_LIST", "APPEND", "APPENDS", "EMPTY_DICT", "SETITEM", "SETITEMS",
    "NONE", "NEWTRUE", "NEWFALSE", "BININT1", "BININT2", "BININT", "LONG1",
    "BINFLOAT", "BINUNICODE", "SHORT_BINBYTES", "BINBYTES", "STOP",
])

DEFAULT_TIMEOUT_S = 15.0
MAX_RESOLVE_ROUNDS = 9


class ZeoError(Exception):
    """A flag-2 error reply: args are (class_name, payload)."""

    def __init__(self, class_name, payload):
        super().__init__(class_name, payload)
        self.class_name = class_name
        self.payload = payload


class ConnectionClosed(Exception):
    """The connection ended before the expected reply arrived."""


class ConflictUnresolved(Exception):
    """commit(): the resolver refused, or MAX_RESOLVE_ROUNDS were used up."""


def p64(n):
    return struct.pack(">Q", n)


def u64(b):
    return struct.unpack(">Q", b)[0]


# --------------------------------------------------------------------------
# Encodings


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError("global %s.%s refused" % (module, name))

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent id refused")


def pickle_encode(value):
    """Pickle protocol 3, fast mode (no memo), as the stock client does."""
    f = io.BytesIO()
    p = pickle.Pickler(f, 3)
    p.fast = True
    p.dump(value)
    return f.getvalue()


def pickle_decode(data, violations=None):
    """Decode one pickle; globals are refused. With a `violations` list,
    opcodes a ZEO server must not emit and trailing bytes are recorded."""
    if violations is not None:
        end = 0
        for op, _arg, pos in pickletools.genops(data):
            if op.name not in SERVER_OPCODES:
                violations.append("opcode %s at %d" % (op.name, pos))
            end = pos + 1
        if end != len(data):
            violations.append("%d bytes after STOP" % (len(data) - end))
    f = io.BytesIO(data)
    v = _NoGlobalsUnpickler(f).load()
    if f.tell() != len(data):
        raise pickle.UnpicklingError("trailing bytes after STOP")
    return v


def msgpack_encode(value):
    """Minimal msgpack writer: bin for bytes, str for text, no ext types."""
    out = bytearray()
    _mp_put(out, value)
    return bytes(out)


def _mp_len(out, n, small_base, small_max, codes):
    if small_base is not None and n <= small_max:
        out.append(small_base | n)
    elif codes[0] is not None and n < 0x100:
        out += bytes([codes[0], n])
    elif n < 0x10000:
        out += bytes([codes[1]]) + struct.pack(">H", n)
    else:
        out += bytes([codes[2]]) + struct.pack(">I", n)


def _mp_put(out, v):
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if 0 <= v < 0x80:
            out.append(v)
        elif -32 <= v < 0:
            out += struct.pack(">b", v)
        elif 0 <= v < 1 << 64:
            for code, fmt, lim in ((0xCC, ">B", 8), (0xCD, ">H", 16),
                                   (0xCE, ">I", 32), (0xCF, ">Q", 64)):
                if v < 1 << lim:
                    out += bytes([code]) + struct.pack(fmt, v)
                    break
        elif -(1 << 63) <= v < 0:
            for code, fmt, lim in ((0xD0, ">b", 7), (0xD1, ">h", 15),
                                   (0xD2, ">i", 31), (0xD3, ">q", 63)):
                if v >= -(1 << lim):
                    out += bytes([code]) + struct.pack(fmt, v)
                    break
        else:
            raise ValueError("int out of msgpack range")
    elif isinstance(v, float):
        out += b"\xcb" + struct.pack(">d", v)
    elif isinstance(v, str):
        b = v.encode("utf-8")
        _mp_len(out, len(b), 0xA0, 31, (0xD9, 0xDA, 0xDB))
        out += b
    elif isinstance(v, (bytes, bytearray)):
        _mp_len(out, len(v), None, -1, (0xC4, 0xC5, 0xC6))
        out += v
    elif isinstance(v, (tuple, list)):
        _mp_len(out, len(v), 0x90, 15, (None, 0xDC, 0xDD))
        for x in v:
            _mp_put(out, x)
    elif isinstance(v, dict):
        _mp_len(out, len(v), 0x80, 15, (None, 0xDE, 0xDF))
        for k, x in v.items():
            _mp_put(out, k)
            _mp_put(out, x)
    else:
        raise TypeError("cannot msgpack %r" % type(v))


class _MpReader:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def take(self, n):
        if self.i + n > len(self.d):
            raise ValueError("msgpack: truncated")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def num(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def value(self, depth=0):
        if depth > 100:
            raise ValueError("msgpack: nested too deep")
        c = self.take(1)[0]
        if c < 0x80:
            return c
        if c >= 0xE0:
            return c - 0x100
        if 0x80 <= c <= 0x8F:
            return self.map(c & 0x0F, depth)
        if 0x90 <= c <= 0x9F:
            return self.array(c & 0x0F, depth)
        if 0xA0 <= c <= 0xBF:
            return self.take(c & 0x1F).decode("utf-8")
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if c in simple:
            return simple[c]
        ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
                0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
        if c in ints:
            return self.num(ints[c])
        lens = {0xC4: ">B", 0xC5: ">H", 0xC6: ">I", 0xD9: ">B",
                0xDA: ">H", 0xDB: ">I", 0xDC: ">H", 0xDD: ">I",
                0xDE: ">H", 0xDF: ">I"}
        if c in lens:
            n = self.num(lens[c])
            if c <= 0xC6:
                return bytes(self.take(n))
            if c <= 0xDB:
                return self.take(n).decode("utf-8")
            if c <= 0xDD:
                return self.array(n, depth)
            return self.map(n, depth)
        if c == 0xCB:
            return self.num(">d")
        if c == 0xCA:
            return self.num(">f")
        raise ValueError("msgpack: type byte %#x refused" % c)

    def array(self, n, depth):
        return tuple(self.value(depth + 1) for _ in range(n))

    def map(self, n, depth):
        d = {}
        for _ in range(n):
            k = self.value(depth + 1)
            d[k] = self.value(depth + 1)
        return d


def msgpack_decode(data):
    """Decode one msgpack value; arrays become tuples (as ZEO readers do)."""
    r = _MpReader(bytes(data))
    v = r.value()
    if r.i != len(data):
        raise ValueError("msgpack: %d trailing bytes" % (len(data) - r.i))
    return v


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


# --------------------------------------------------------------------------
# Connection


class _Pending:
    def __init__(self, msgid, name="", args=()):
        self.msgid = msgid
        self.name = name
        self.args = args
        self.done = threading.Event()
        self.flag = None
        self.value = None
        self.error = None
        self.sent_at = time.monotonic()
        self.rtt_s = None
        self.request = None  # encoded call payload
        self.reply = None  # encoded reply payload

    def result(self, timeout=DEFAULT_TIMEOUT_S):
        if not self.done.wait(timeout):
            raise TimeoutError("no reply to msgid %r in %.1f s" % (self.msgid, timeout))
        if self.error is not None:
            raise self.error
        if self.flag == 2:
            v = self.value
            if not (isinstance(v, tuple) and len(v) == 2):
                raise ZeoError("<malformed error reply>", v)
            raise ZeoError(v[0], v[1])
        return self.value


def recv_exact(sock, n):
    """n bytes from sock, or b"" if the peer closed first."""
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            return b""
        buf += b
    return bytes(buf)


def recv_frame(sock):
    """One framed payload, or None when the peer closed."""
    h = recv_exact(sock, 4)
    if not h:
        return None
    n = struct.unpack(">I", h)[0]
    body = recv_exact(sock, n)
    if n and not body:
        return None
    return body


class ZeoClient:
    """One ZEO 5 connection. `encoding` None echoes the server's letter;
    "Z" or "M" forces the answer letter. `handshake` False leaves the socket
    right after the server's announcement (for raw-byte tests)."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT_S, encoding=None,
                 strict=True, handshake=True, label=""):
        self.host, self.port, self.label = host, port, label
        self.timeout = timeout
        self.strict = strict
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.violations = []
        self.events = []
        self.events_cv = threading.Condition()
        self.closed = threading.Event()
        self.close_reason = None
        self._pending = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next_msgid = 1
        self._next_txn = (1 << 46) + (id(self) & 0xFFFFFF)
        self.finished = []  # (tid, {oid: data}) of this connection's commits
        self._last_tid_seen = None  # newest tid of an invalidation or tpc_finish reply
        self._inval_tid = {}  # oid -> newest invalidation tid received
        self.announcement = recv_frame(self.sock)
        if self.announcement is None:
            raise ConnectionClosed("closed before the announcement")
        self.encoding = None
        self._reader = None
        if handshake:
            self.answer(encoding)

    # ---- handshake and raw access

    def answer(self, encoding=None):
        ann = self.announcement
        if len(ann) < 2 or ann[:1] not in (b"Z", b"M") or ann[1:] < b"5":
            raise ConnectionClosed("refused announcement %r" % ann)
        letter = (encoding or ann[:1].decode()).encode()
        self.encoding = letter.decode()
        self.sock.sendall(frame(letter + b"5"))
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name="zeo-reader-%s" % self.label)
        self._reader.start()

    def send_raw(self, data):
        with self._send_lock:
            self.sock.sendall(data)

    def encode(self, value):
        if self.encoding == "M":
            return msgpack_encode(value)
        return pickle_encode(value)

    def decode(self, payload):
        if self.encoding == "M":
            return msgpack_decode(payload)
        return pickle_decode(payload, self.violations if self.strict else None)

    def send_message(self, msgid, flag, name, args):
        self.send_raw(frame(self.encode((msgid, flag, name, args))))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def wait_closed(self, timeout):
        """True if the server closed the connection within timeout."""
        return self.closed.wait(timeout)

    # ---- reader

    def _read_loop(self):
        self.sock.settimeout(None)
        reason = "closed by server"
        try:
            while True:
                payload = recv_frame(self.sock)
                if payload is None:
                    break
                self._dispatch(payload)
        except (OSError, ValueError, pickle.UnpicklingError, EOFError) as e:
            reason = "%s: %s" % (type(e).__name__, e)
        self.close_reason = reason
        with self._lock:
            pend, self._pending = list(self._pending.values()), {}
        for p in pend:
            p.error = ConnectionClosed("%s (msgid %r)" % (reason, p.msgid))
            p.done.set()
        self.closed.set()
        with self.events_cv:
            self.events_cv.notify_all()

    def _dispatch(self, payload):
        try:
            msg = self.decode(payload)
        except Exception as e:
            self.violations.append("undecodable message %r: %s" % (payload[:64], e))
            raise ValueError("undecodable message") from e
        if not (isinstance(msg, tuple) and len(msg) == 4):
            self.violations.append("not a 4-tuple: %r" % (msg,))
            return
        msgid, flag, name, args = msg
        if name == ".reply":
            if flag not in (0, 2):
                self.violations.append("reply flag %r for msgid %r" % (flag, msgid))
            try:
                with self._lock:
                    p = self._pending.pop(msgid, None)
            except TypeError:
                p = None
            if p is None:
                self.violations.append("reply with unknown msgid %r" % (msgid,))
                return
            if type(msgid) is not type(p.msgid):
                self.violations.append("msgid %r echoed as %r" % (p.msgid, msgid))
            if flag == 0:
                self._check_order(p, args)
            p.flag = flag
            p.value = args
            p.reply = payload
            p.rtt_s = time.monotonic() - p.sent_at
            p.done.set()
            return
        if msgid != 0 or not flag or not isinstance(args, tuple):
            self.violations.append("bad server call %r" % (msg,))
        if name == "invalidateTransaction" and isinstance(args, tuple) and len(args) == 2:
            self._note_tid(args[0], "invalidateTransaction")
            for oid in args[1]:
                self._inval_tid[oid] = args[0]
        with self.events_cv:
            self.events.append((name, args))
            self.events_cv.notify_all()

    def _note_tid(self, tid, what):
        # O1: invalidation tids and tpc_finish tids strictly increase.
        if self._last_tid_seen is not None and tid <= self._last_tid_seen:
            self.violations.append("O1: %s tid %s after tid %s" % (
                what, tid.hex(), self._last_tid_seen.hex()))
        self._last_tid_seen = tid

    def _check_order(self, p, value):
        if p.name == "tpc_finish" and isinstance(value, bytes):
            self._note_tid(value, "tpc_finish reply")
        elif p.name == "loadBefore" and isinstance(value, tuple) and len(value) == 3:
            # O3: no revision presented as current once its successor was
            # announced on this connection.
            oid = p.args[0]
            inv = self._inval_tid.get(oid)
            if value[2] is None and inv is not None and value[1] < inv:
                self.violations.append("O3: loadBefore %s -> current revision %s after "
                                       "invalidation %s" % (oid.hex(), value[1].hex(),
                                                            inv.hex()))

    # ---- calls

    def call_start(self, name, *args, msgid=None):
        """Send a sync call and return its _Pending (for out-of-order use)."""
        with self._lock:
            if msgid is None:
                msgid = self._next_msgid
                self._next_msgid += 1
            p = _Pending(msgid, name, args)
            if self.closed.is_set():
                p.error = ConnectionClosed("connection closed (%s)" % self.close_reason)
                p.done.set()
                return p
            self._pending[msgid] = p
        try:
            p.request = self.encode((msgid, False, name, args))
            self.send_raw(frame(p.request))
        except OSError as e:
            with self._lock:
                self._pending.pop(msgid, None)
            p.error = ConnectionClosed("send failed: %s" % e)
            p.done.set()
        return p

    def call(self, name, *args, msgid=None, timeout=None):
        return self.call_start(name, *args, msgid=msgid).result(timeout or self.timeout)

    def call_async(self, name, *args):
        self.send_message(0, True, name, args)

    def heartbeat(self):
        self.send_message(-1, 0, ".reply", None)

    def wait_event(self, pred, timeout=DEFAULT_TIMEOUT_S, start=0):
        """The first events[i] (i >= start) with pred(name, args), or None."""
        deadline = time.monotonic() + timeout
        with self.events_cv:
            while True:
                for e in self.events[start:]:
                    if pred(*e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.closed.is_set():
                    return None
                self.events_cv.wait(left)

    def invalidations(self):
        """(tid, oids) of every invalidateTransaction received, in order."""
        with self.events_cv:
            return [a for n, a in self.events if n == "invalidateTransaction"]

    def wait_invalidation(self, tid, timeout=DEFAULT_TIMEOUT_S):
        e = self.wait_event(lambda n, a: n == "invalidateTransaction" and a[0] == tid,
                            timeout)
        return None if e is None else e[1]

    # ---- ZEO methods

    def register(self, storage="1", read_only=False):
        return self.call("register", storage, read_only)

    def get_info(self):
        return self.call("get_info")

    def lastTransaction(self):
        return self.call("lastTransaction")

    def loadBefore(self, oid, before):
        return self.call("loadBefore", oid, before, msgid=(oid, before))

    def loadSerial(self, oid, serial):
        return self.call("loadSerial", oid, serial)

    def history(self, oid, size=1):
        return self.call("history", oid, size)

    def new_oids(self, *n):
        return self.call("new_oids", *n)

    def getInvalidations(self, tid):
        return self.call("getInvalidations", tid)

    def ping(self):
        return self.call("ping")

    def new_txn(self):
        with self._lock:
            self._next_txn += 1
            return self._next_txn

    def tpc_begin(self, txn, user=b"", description=b"", extension=None, tid=None,
                  status=" "):
        self.call_async("tpc_begin", txn, user, description,
                        {} if extension is None else extension, tid, status)

    def storea(self, oid, serial, data, txn):
        self.call_async("storea", oid, serial, data, txn)

    def checkCurrentSerialInTransaction(self, oid, serial, txn):
        self.call_async("checkCurrentSerialInTransaction", oid, serial, txn)

    def deleteObject(self, oid, serial, txn):
        self.call_async("deleteObject", oid, serial, txn)

    def vote(self, txn):
        return self.call("vote", txn)

    def tpc_finish(self, txn, stored=None):
        """`stored` (oid -> data) is what the transaction wrote; it is kept
        with the tid in self.finished."""
        tid = self.call("tpc_finish", txn)
        self.finished.append((tid, dict(stored or {})))
        return tid

    def tpc_abort(self, txn):
        return self.call("tpc_abort", txn)

    def resolve_and_vote(self, txn, result, resolver, stored):
        """Client-side conflict resolution after a vote whose reply is a
        list of conflict dicts {"oid", "serials", "data"}: for each, load
        the base and committed revisions, merge with `resolver(oid, base,
        committed, mine)` (None = refuse), store the merge on top of the
        committed serial, and vote again; at most MAX_RESOLVE_ROUNDS rounds.
        `stored` maps oid -> data and is updated. Returns the final vote
        reply and the list of rounds, each a list of conflict dicts."""
        rounds = []
        while _is_conflict_list(result):
            if len(rounds) == MAX_RESOLVE_ROUNDS or resolver is None:
                self.tpc_abort(txn)
                raise ConflictUnresolved(result)
            rounds.append(result)
            for c in result:
                committed, base = c["serials"]
                base_data = self.loadSerial(c["oid"], base)
                committed_data = self.loadSerial(c["oid"], committed)
                merged = resolver(c["oid"], base_data, committed_data, c["data"])
                if merged is None:
                    self.tpc_abort(txn)
                    raise ConflictUnresolved(c)
                self.storea(c["oid"], committed, merged, txn)
                stored[c["oid"]] = merged
            result = self.vote(txn)
        return result, rounds

    def commit(self, stores, reads=(), resolver=None, user=b"", description=b"",
               extension=None):
        """The stock client's two-phase commit: tpc_begin, storea for each
        (oid, serial, data), checkCurrentSerialInTransaction for each (oid,
        serial) in reads, vote (resolving conflict dicts), tpc_finish.
        Returns the tid. A vote error is raised after tpc_abort. The last
        commit's details are left in self.last_commit."""
        txn = self.new_txn()
        self.tpc_begin(txn, user, description, extension)
        stored = {}
        for oid, serial, data in stores:
            self.storea(oid, serial, data, txn)
            stored[oid] = data
        for oid, serial in reads:
            self.checkCurrentSerialInTransaction(oid, serial, txn)
        try:
            result = self.vote(txn)
        except ZeoError:
            self.tpc_abort(txn)
            raise
        result, rounds = self.resolve_and_vote(txn, result, resolver, stored)
        tid = self.tpc_finish(txn, stored)
        self.last_commit = {"tid": tid, "vote": result, "rounds": rounds,
                            "stored": stored}
        return tid


def _is_conflict_list(v):
    return isinstance(v, list) and v and all(isinstance(c, dict) for c in v)
