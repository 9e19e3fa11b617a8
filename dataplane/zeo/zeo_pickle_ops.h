/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap pickle opcodes: the one table of Python pickle opcode bytes that the
 * ZEO message codec (zeo_codec_pickle.c decodes, zeo_codec_write.c writes)
 * and the ZODB record decoder and writer (zodb_record*.c) share, and the
 * protocols a PROTO opcode may name. Operands are read and written with
 * base/bytes.h (little-endian lengths and ints, a big-endian BINFLOAT).
 *
 * The ZEO codec accepts only the data subset (zeo_codec.h); the record
 * decoder reads every opcode of protocols 0-5 (zodb_record.h).
 */
#ifndef ZAP_ZEO_PICKLE_OPS_H
#define ZAP_ZEO_PICKLE_OPS_H

/** Lowest protocol of a PROTO opcode (protocols 0 and 1 have none). */
#define PK_PROTO_MIN 2u
/** Highest protocol of a PROTO opcode. */
#define PK_PROTO_MAX 5u

enum pk_op {
	PK_MARK = 0x28,
	PK_EMPTY_TUPLE = 0x29,
	PK_STOP = 0x2e,
	PK_POP = 0x30,
	PK_POP_MARK = 0x31,
	PK_DUP = 0x32,
	PK_BINBYTES = 0x42,
	PK_SHORT_BINBYTES = 0x43,
	PK_FLOAT = 0x46,
	PK_BINFLOAT = 0x47,
	PK_INT = 0x49,
	PK_BININT = 0x4a,
	PK_BININT1 = 0x4b,
	PK_LONG = 0x4c,
	PK_BININT2 = 0x4d,
	PK_NONE = 0x4e,
	PK_PERSID = 0x50,
	PK_BINPERSID = 0x51,
	PK_REDUCE = 0x52,
	PK_STRING = 0x53,
	PK_BINSTRING = 0x54,
	PK_SHORT_BINSTRING = 0x55,
	PK_UNICODE = 0x56,
	PK_BINUNICODE = 0x58,
	PK_EMPTY_LIST = 0x5d,
	PK_APPEND = 0x61,
	PK_BUILD = 0x62,
	PK_GLOBAL = 0x63,
	PK_DICT = 0x64,
	PK_APPENDS = 0x65,
	PK_GET = 0x67,
	PK_BINGET = 0x68,
	PK_INST = 0x69,
	PK_LONG_BINGET = 0x6a,
	PK_LIST = 0x6c,
	PK_OBJ = 0x6f,
	PK_PUT = 0x70,
	PK_BINPUT = 0x71,
	PK_LONG_BINPUT = 0x72,
	PK_SETITEM = 0x73,
	PK_TUPLE = 0x74,
	PK_SETITEMS = 0x75,
	PK_EMPTY_DICT = 0x7d,
	PK_PROTO = 0x80,
	PK_NEWOBJ = 0x81,
	PK_EXT1 = 0x82,
	PK_EXT2 = 0x83,
	PK_EXT4 = 0x84,
	PK_TUPLE1 = 0x85,
	PK_TUPLE2 = 0x86,
	PK_TUPLE3 = 0x87,
	PK_NEWTRUE = 0x88,
	PK_NEWFALSE = 0x89,
	PK_LONG1 = 0x8a,
	PK_LONG4 = 0x8b,
	PK_SHORT_BINUNICODE = 0x8c,
	PK_BINUNICODE8 = 0x8d,
	PK_BINBYTES8 = 0x8e,
	PK_EMPTY_SET = 0x8f,
	PK_ADDITEMS = 0x90,
	PK_FROZENSET = 0x91,
	PK_NEWOBJ_EX = 0x92,
	PK_STACK_GLOBAL = 0x93,
	PK_MEMOIZE = 0x94,
	PK_FRAME = 0x95,
	PK_BYTEARRAY8 = 0x96,
	PK_NEXT_BUFFER = 0x97,
	PK_READONLY_BUFFER = 0x98,
};

#endif /* ZAP_ZEO_PICKLE_OPS_H */
