# SPDX-License-Identifier: Apache-2.0
"""The test client's codecs against the byte-exact examples of the ZEO 5
protocol description (docs/zeo.md section 9), and round trips. No server."""

import pickle
import sys

sys.dont_write_bytecode = True
import zeo_client as zc  # noqa: E402

T1 = bytes.fromhex("03f84a5000000000")
T2 = bytes.fromhex("03f84a5080000000")
TXN = 140244309122640


def h(s):
    return bytes.fromhex(s.replace("\n", " "))


# (value, pickle payload) pairs from the protocol description.
PICKLE_CASES = [
    ((1, False, "register", ("1", 0)),
     "80 03 28 4b 01 89 58 08 00 00 00 72 65 67 69 73 74 65 72 58 01 00 00 00 31 4b 00 86 74 2e"),
    ((1, 0, ".reply", T1),
     "80 03 28 4b 01 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 43 08 03 f8 4a 50 00 00 00 00 74 2e"),
    ((4, False, "vote", (TXN,)),
     "80 03 28 4b 04 89 58 04 00 00 00 76 6f 74 65 8a 06 50 1e 3a 2c 8d 7f 85 74 2e"),
    ((0, True, "tpc_begin", (TXN, b"", b"", {}, None, " ")),
     "80 03 28 4b 00 88 58 09 00 00 00 74 70 63 5f 62 65 67 69 6e 28 8a 06 50 1e 3a 2c 8d 7f"
     " 43 00 43 00 7d 4e 58 01 00 00 00 20 74 74 2e"),
    ((0, True, "invalidateTransaction", (T2, [zc.Z64])),
     "80 03 28 4b 00 88 58 15 00 00 00 69 6e 76 61 6c 69 64 61 74 65 54 72 61 6e 73 61 63 74"
     " 69 6f 6e 43 08 03 f8 4a 50 80 00 00 00 5d 43 08 00 00 00 00 00 00 00 00 61 86 74 2e"),
    ((-1, 0, ".reply", None),
     "80 03 28 4a ff ff ff ff 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 4e 74 2e"),
    ((2 ** 31, False, "ping", ()),
     "80 03 28 8a 05 00 00 00 80 00 89 58 04 00 00 00 70 69 6e 67 29 74 2e"),
    (((zc.Z64, bytes.fromhex("03f84a5000000001")), False, "loadBefore",
      (zc.Z64, bytes.fromhex("03f84a5000000001"))),
     "80 03 28 43 08 00 00 00 00 00 00 00 00 43 08 03 f8 4a 50 00 00 00 01 86 89 58 0a 00 00 00"
     " 6c 6f 61 64 42 65 66 6f 72 65 43 08 00 00 00 00 00 00 00 00 43 08 03 f8 4a 50 00 00 00"
     " 01 86 74 2e"),
]

MSGPACK_CASES = [
    ((1, False, "register", ("1", False)),
     "94 01 c2 a8 72 65 67 69 73 74 65 72 92 a1 31 c2"),
    ((1, 0, ".reply", T1), "94 01 00 a6 2e 72 65 70 6c 79 c4 08 03 f8 4a 50 00 00 00 00"),
    ((0, True, "tpc_begin", (TXN, b"", b"", {}, None, " ")),
     "94 00 c3 a9 74 70 63 5f 62 65 67 69 6e 96 cf 00 00 7f 8d 2c 3a 1e 50 c4 00 c4 00 80 c0 a1 20"),
    ((-1, 0, ".reply", None), "94 ff 00 a6 2e 72 65 70 6c 79 c0"),
]


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def main():
    for value, hexs in PICKLE_CASES:
        b = h(hexs)
        check(zc.pickle_encode(value) == b, "pickle encode %r" % (value,))
        v = []
        check(zc.pickle_decode(b, v) == value, "pickle decode %r" % (value,))
        check(v == [] or value[1] is not None, "server opcodes for %r: %r" % (value, v))
    for value, hexs in MSGPACK_CASES:
        b = h(hexs)
        check(zc.msgpack_encode(value) == b, "msgpack encode %r" % (value,))
        check(zc.msgpack_decode(b) == value, "msgpack decode %r" % (value,))

    # Round trips across length classes; msgpack arrays decode as tuples.
    samples = [None, True, False, 0, 127, 128, 255, 256, 65535, 65536, -1, -32, -33,
               -129, -40000, 2 ** 31, 2 ** 63 + 5, -(2 ** 40), 1.5, "", "é" * 40,
               "x" * 300, "y" * 70000, b"", b"\0" * 255, b"\1" * 256, b"\2" * 70000,
               tuple(range(20)), {"a": (1, 2), "b": {"c": b"d"}}, {"k%d" % i: i for i in range(20)}]
    for s in samples:
        check(zc.msgpack_decode(zc.msgpack_encode(s)) == s, "msgpack round trip %r" % (s,)[:60])
        check(zc.pickle_decode(zc.pickle_encode(s)) == s, "pickle round trip %r" % (s,)[:60])

    # Refusals.
    for bad in (pickle.dumps({1, 2}, 3), pickle.dumps(Exception("x"), 3)):
        try:
            zc.pickle_decode(bad)
            check(False, "global accepted: %r" % bad)
        except pickle.UnpicklingError:
            pass
    v = []
    x = b"abc"
    zc.pickle_decode(pickle.dumps([x, x], 3), v)
    check(any("BINPUT" in x or "MEMOIZE" in x for x in v), "memo opcodes reported: %r" % v)
    v = []
    zc.pickle_decode(b"\x80\x03U\x02ab.", v)
    check(any("SHORT_BINSTRING" in x for x in v), "BINSTRING reported: %r" % v)
    try:
        zc.msgpack_decode(h("c7 01 05 00"))
        check(False, "msgpack ext accepted")
    except ValueError:
        pass
    print("zeo codec: %d pickle, %d msgpack examples and %d round trips OK"
          % (len(PICKLE_CASES), len(MSGPACK_CASES), len(samples)))


if __name__ == "__main__":
    main()
