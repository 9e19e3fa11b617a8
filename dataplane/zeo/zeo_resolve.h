/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap native conflict resolution (docs/zeo.md, "Conflict resolution"): the
 * three-way merge of one object's records for the classes whose merge zap
 * knows, with the BTrees package's rules: buckets and sets of every BTrees
 * family (BTrees.<F>BTree.<F>Bucket, <F>Set), BTrees and TreeSets whose
 * state is a single embedded bucket (<F>BTree, <F>TreeSet), and
 * BTrees.Length.Length (committed + new - old). Everything else is left to
 * the client (ZEO_RESOLVE_UNSUPPORTED), which can always resolve with the
 * application's own classes.
 *
 * Pure function: no global state, callable from any thread.
 */
#ifndef ZAP_ZEO_RESOLVE_H
#define ZAP_ZEO_RESOLVE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum zeo_resolve_rc {
	ZEO_RESOLVED = 0,
	/** not a class/state zap merges: caller falls back to client-side resolution */
	ZEO_RESOLVE_UNSUPPORTED = 1,
	/** a class zap merges and the merge rules refuse */
	ZEO_RESOLVE_REFUSED = 2,
};

/**
 * Three-way merge of one object's records: @p old (the revision the client's
 * change was based on), @p committed (the current revision), @p newer (the
 * client's record). On ZEO_RESOLVED *out is a malloc'd record (class header
 * copied from the client's record, merged state re-pickled, protocol 3) of
 * *out_len bytes. @p class_name (may be NULL) gets "module.name" of the
 * record's class when known ("" otherwise; truncated to @p class_name_cap).
 * @return enum zeo_resolve_rc. Out of memory and records zap cannot decode
 *   give ZEO_RESOLVE_UNSUPPORTED.
 */
int zeo_resolve(const void *old, size_t old_len, const void *committed, size_t committed_len,
		const void *newer, size_t newer_len, void **out, size_t *out_len, char *class_name,
		size_t class_name_cap);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_ZEO_RESOLVE_H */
