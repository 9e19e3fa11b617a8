/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap native conflict resolution (zeo_resolve.h).
 *
 * The three records are decoded in values mode (zodb_record.h): nothing
 * runs, persistent references stay references. The class comes from the
 * client's record header, as in ZODB; the other two headers are not looked
 * at. The merge follows the BTrees package's bucket merge step for step
 * (three sorted iterators over old, committed and new; the `position` of an
 * iterator is the 1-based index of its current item), so zap refuses exactly
 * where BTrees raises a BTreesConflictError:
 *   - committed or new changed the bucket's next pointer;
 *   - committed or new is empty;
 *   - both changed the value of one key (even to equal values);
 *   - one deleted a key the other changed;
 *   - both inserted the same key, or both deleted the same key;
 *   - a side deleted a key that sorts before its own first key (the first
 *     key of a bucket is used by its parent);
 *   - the result is empty.
 * Comparing values that BTrees' Python and C merges might treat differently
 * (zeo_resolve_cmp.c), keys of mixed or unordered types, and shapes the
 * BTrees code would reject with a TypeError all give UNSUPPORTED: the
 * client resolves those with its own classes.
 *
 * The merged record is the client's class header followed by the merged
 * state as a protocol-3 pickle without memo opcodes.
 */
#include "zeo_resolve.h"
#include "zeo_resolve_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** The BTrees families (BTrees.<F>BTree modules with buckets, sets and trees). */
static const char *const rs_families[] = {
    "IF", "II", "IO", "IU", "LF", "LL", "LO", "LQ", "OI", "OL", "OO",
    "OQ", "OU", "QF", "QL", "QO", "QQ", "UF", "UI", "UO", "UU",
};

/** What zap merges, by class. */
enum rs_class {
	RS_OTHER = 0,
	RS_BUCKET, /**< <F>Bucket: (items,) or (items, next) */
	RS_SET,	   /**< <F>Set: (keys,) or (keys, next) */
	RS_TREE,   /**< <F>BTree: None or ((bucket state,),) */
	RS_TREESET,
	RS_LENGTH, /**< BTrees.Length.Length: an int */
};

static bool rs_eq_str(const uint8_t *p, uint32_t len, const char *s)
{
	return strlen(s) == len && memcmp(p, s, len) == 0;
}

static enum rs_class rs_classify(const uint8_t *mod, uint32_t mod_len, const uint8_t *name,
				 uint32_t name_len)
{
	static const char *const kinds[] = {"Bucket", "Set", "BTree", "TreeSet"};
	static const enum rs_class kind_class[] = {RS_BUCKET, RS_SET, RS_TREE, RS_TREESET};
	char buf[32];
	if (rs_eq_str(mod, mod_len, "BTrees.Length") && rs_eq_str(name, name_len, "Length"))
		return RS_LENGTH;
	for (size_t f = 0; f < sizeof(rs_families) / sizeof(rs_families[0]); f++) {
		snprintf(buf, sizeof(buf), "BTrees.%sBTree", rs_families[f]);
		if (!rs_eq_str(mod, mod_len, buf))
			continue;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			snprintf(buf, sizeof(buf), "%s%s", rs_families[f], kinds[k]);
			if (rs_eq_str(name, name_len, buf))
				return kind_class[k];
		}
	}
	return RS_OTHER;
}

/* ------------------------------------------------------------ bucket states */

/** One bucket's items: entry i is it[i * step] (key) and it[i * step + 1] (value). */
struct rs_side {
	struct zodb_val *const *it;
	uint32_t n; /* entries */
	unsigned step;
	const struct zodb_val *next;
};

/** A bucket or set state (None = empty). @return 0; ZEO_RESOLVE_UNSUPPORTED. */
static int rs_bucket_state(const struct zodb_val *st, unsigned step, struct rs_side *s)
{
	memset(s, 0, sizeof(*s));
	s->step = step;
	if (st->type == ZODB_NONE)
		return 0;
	if (st->type != ZODB_TUPLE || st->seq.n < 1 || st->seq.n > 2)
		return ZEO_RESOLVE_UNSUPPORTED;
	const struct zodb_val *items = st->seq.items[0];
	if (items->type != ZODB_TUPLE || items->seq.n % step)
		return ZEO_RESOLVE_UNSUPPORTED;
	s->it = items->seq.items;
	s->n = items->seq.n / step;
	if (st->seq.n == 2 && st->seq.items[1]->type != ZODB_NONE)
		s->next = st->seq.items[1];
	return 0;
}

/** A tree's state: None, or ((bucket state,),). @return 0; ZEO_RESOLVE_UNSUPPORTED. */
static int rs_tree_state(const struct zodb_val *st, const struct zodb_val **bucket)
{
	if (st->type == ZODB_NONE) {
		*bucket = st;
		return 0;
	}
	/* a 2-tuple is a tree of several buckets: only the client can tell */
	if (st->type != ZODB_TUPLE || st->seq.n != 1)
		return ZEO_RESOLVE_UNSUPPORTED;
	const struct zodb_val *b = st->seq.items[0];
	if (b->type != ZODB_TUPLE || b->seq.n != 1 || b->seq.items[0]->type != ZODB_TUPLE)
		return ZEO_RESOLVE_UNSUPPORTED;
	*bucket = b->seq.items[0];
	return 0;
}

/** Next pointers: equal when both absent or the same persistent id. */
static int rs_next_check(const struct zodb_val *a, const struct zodb_val *b)
{
	if (!a && !b)
		return 0;
	if (!a || !b)
		return ZEO_RESOLVE_REFUSED;
	enum rs_eq e = rs_val_eq(a, b);
	if (e == RS_EQ && a->type == ZODB_REF && b->type == ZODB_REF) {
		struct zodb_ref x, y;
		/* C compares next pointers by identity: the same persistent id only */
		if (zodb_ref_parse(a->pid, &x) || zodb_ref_parse(b->pid, &y) || x.weak || y.weak)
			return ZEO_RESOLVE_UNSUPPORTED;
		struct zeo_buf p, q;
		zeo_buf_init(&p);
		zeo_buf_init(&q);
		int wa = zodb_w_val(&p, a->pid), wb = zodb_w_val(&q, b->pid);
		bool same = !wa && !wb && !p.oom && !q.oom && p.len == q.len &&
			    memcmp(p.p, q.p, p.len) == 0;
		zeo_buf_free(&p);
		zeo_buf_free(&q);
		return same ? 0 : ZEO_RESOLVE_UNSUPPORTED;
	}
	if (e == RS_EQ)
		return ZEO_RESOLVE_UNSUPPORTED;
	return e == RS_UNSURE ? ZEO_RESOLVE_UNSUPPORTED : ZEO_RESOLVE_REFUSED;
}

/** Keys of all three sides are of one kind zap orders. */
static int rs_keys_check(const struct rs_side *s, unsigned step)
{
	enum rs_key_kind kind = RS_KEY_BAD;
	for (unsigned k = 0; k < 3; k++)
		for (uint32_t i = 0; i < s[k].n; i++) {
			enum rs_key_kind x = rs_key_kind(s[k].it[(size_t)i * step]);
			if (x == RS_KEY_BAD || (kind != RS_KEY_BAD && x != kind))
				return ZEO_RESOLVE_UNSUPPORTED;
			kind = x;
		}
	return 0;
}

/* ------------------------------------------------------------ the merge */

struct rs_iter {
	const struct rs_side *s;
	uint32_t idx; /* current entry; active while idx < s->n; position = idx + 1 */
};

struct rs_merge {
	unsigned step; /* 2 bucket, 1 set */
	const struct zodb_val **out; /* key, value pairs (step per entry) */
	uint32_t nout;
	int rc; /* ZEO_RESOLVE_REFUSED / _UNSUPPORTED once decided */
};

static bool it_active(const struct rs_iter *i)
{
	return i->idx < i->s->n;
}

static const struct zodb_val *it_key(const struct rs_iter *i)
{
	return i->s->it[(size_t)i->idx * i->s->step];
}

static const struct zodb_val *it_val(const struct rs_iter *i)
{
	return i->s->it[(size_t)i->idx * i->s->step + 1];
}

static int it_cmp(const struct rs_iter *a, const struct rs_iter *b)
{
	return rs_key_cmp(it_key(a), it_key(b));
}

/** Value equality for the merge: 1 equal, 0 not; -1 when the merge stops (m->rc set). */
static int rs_same(struct rs_merge *m, const struct zodb_val *a, const struct zodb_val *b)
{
	switch (rs_val_eq(a, b)) {
	case RS_EQ:
		return 1;
	case RS_NE:
		return 0;
	case RS_RAISE:
		m->rc = ZEO_RESOLVE_REFUSED;
		return -1;
	default:
		m->rc = ZEO_RESOLVE_UNSUPPORTED;
		return -1;
	}
}

static void rs_out(struct rs_merge *m, const struct zodb_val *key, const struct zodb_val *val)
{
	m->out[(size_t)m->nout * m->step] = key;
	if (m->step == 2)
		m->out[(size_t)m->nout * m->step + 1] = val;
	m->nout++;
}

/** Output the current entry of @p i and advance it. */
static void rs_take(struct rs_merge *m, struct rs_iter *i)
{
	rs_out(m, it_key(i), m->step == 2 ? it_val(i) : NULL);
	i->idx++;
}

/** The values of two iterators are equal (always for sets); -1 stops. */
static int rs_same_val(struct rs_merge *m, const struct rs_iter *a, const struct rs_iter *b)
{
	return m->step == 1 ? 1 : rs_same(m, it_val(a), it_val(b));
}

static int rs_refuse(struct rs_merge *m)
{
	m->rc = ZEO_RESOLVE_REFUSED;
	return -1;
}

/** The key is in all three: a value changed on one side only wins. */
static int rs_all_three(struct rs_merge *m, struct rs_iter *o, struct rs_iter *c,
			struct rs_iter *n)
{
	if (m->step == 1) {
		rs_out(m, it_key(o), NULL);
	} else {
		int r = rs_same(m, it_val(c), it_val(o));
		if (r < 0)
			return -1;
		if (r) {
			rs_out(m, it_key(o), it_val(n));
		} else {
			r = rs_same(m, it_val(n), it_val(o));
			if (r <= 0)
				return r < 0 ? -1 : rs_refuse(m);
			rs_out(m, it_key(o), it_val(c));
		}
	}
	o->idx++;
	c->idx++;
	n->idx++;
	return 0;
}

/**
 * The old key is still on side @p keep (whose value must be unchanged) and
 * was deleted on side @p del, whose current key sorts after it.
 */
static int rs_deleted(struct rs_merge *m, struct rs_iter *o, struct rs_iter *keep,
		      struct rs_iter *del)
{
	int r = rs_same_val(m, o, keep);
	if (r <= 0)
		return r < 0 ? -1 : rs_refuse(m);
	if (del->idx == 0) /* position 1: the deleted key sorted before del's first key */
		return rs_refuse(m);
	o->idx++;
	keep->idx++;
	return 0;
}

/** One step while all three iterators are active. */
static int rs_step3(struct rs_merge *m, struct rs_iter *o, struct rs_iter *c, struct rs_iter *n)
{
	int cmp_oc = it_cmp(o, c), cmp_on = it_cmp(o, n);
	if (cmp_oc == 0) {
		if (cmp_on == 0)
			return rs_all_three(m, o, c, n);
		if (cmp_on > 0) {
			rs_take(m, n); /* inserted by new */
			return 0;
		}
		return rs_deleted(m, o, c, n);
	}
	if (cmp_on == 0) {
		if (cmp_oc > 0) {
			rs_take(m, c); /* inserted by committed */
			return 0;
		}
		return rs_deleted(m, o, n, c);
	}
	int cmp_cn = it_cmp(c, n);
	if (cmp_cn == 0) /* both inserted the same key */
		return rs_refuse(m);
	if (cmp_oc > 0)
		rs_take(m, cmp_cn > 0 ? n : c);
	else if (cmp_on > 0)
		rs_take(m, n);
	else /* both deleted the same key */
		return rs_refuse(m);
	return 0;
}

/** Old and @p side remain: the other side deleted the rest of old. */
static int rs_tail2(struct rs_merge *m, struct rs_iter *o, struct rs_iter *side)
{
	while (it_active(o) && it_active(side)) {
		int cmp = it_cmp(o, side);
		if (cmp > 0) {
			rs_take(m, side);
			continue;
		}
		int r = cmp == 0 ? rs_same_val(m, o, side) : 0;
		if (r <= 0) /* dueling deletes, or a delete and a change */
			return r < 0 ? -1 : rs_refuse(m);
		o->idx++;
		side->idx++;
	}
	return 0;
}

/** The bucket merge. @return 0 and m->out; -1 with m->rc. */
static int rs_merge_run(struct rs_merge *m, const struct rs_side *so, const struct rs_side *sc,
			const struct rs_side *sn)
{
	struct rs_iter o = {so, 0}, c = {sc, 0}, n = {sn, 0};
	if (rs_next_check(sc->next, so->next) || rs_next_check(sn->next, so->next)) {
		int a = rs_next_check(sc->next, so->next), b = rs_next_check(sn->next, so->next);
		m->rc = a == ZEO_RESOLVE_UNSUPPORTED || b == ZEO_RESOLVE_UNSUPPORTED
			    ? ZEO_RESOLVE_UNSUPPORTED
			    : ZEO_RESOLVE_REFUSED;
		return -1;
	}
	if (sc->n == 0 || sn->n == 0)
		return rs_refuse(m);
	while (it_active(&o) && it_active(&c) && it_active(&n))
		if (rs_step3(m, &o, &c, &n))
			return -1;
	while (it_active(&c) && it_active(&n)) {
		int cmp = it_cmp(&c, &n);
		if (cmp == 0) /* both inserted the same key */
			return rs_refuse(m);
		rs_take(m, cmp > 0 ? &n : &c);
	}
	if (rs_tail2(m, &o, &c) || rs_tail2(m, &o, &n))
		return -1;
	if (it_active(&o)) /* both deleted the same keys */
		return rs_refuse(m);
	while (it_active(&c))
		rs_take(m, &c);
	while (it_active(&n))
		rs_take(m, &n);
	if (m->nout == 0)
		return rs_refuse(m);
	return 0;
}

/* ------------------------------------------------------------ output */

/** The merged bucket state: (items,) or (items, next); a tree wraps it in ((state,),). */
static int rs_write_bucket(struct zeo_buf *b, const struct rs_merge *m,
			   const struct zodb_val *next, bool tree)
{
	uint32_t n = m->nout * m->step;
	int rc = 0;
	zeo_w_tuple_begin(b, ZEO_ENC_PICKLE, n);
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = zodb_w_val(b, m->out[i]);
	zeo_w_tuple_end(b, ZEO_ENC_PICKLE, n);
	if (rc == 0 && next)
		rc = zodb_w_val(b, next);
	zeo_w_tuple_end(b, ZEO_ENC_PICKLE, next ? 2 : 1);
	if (tree) {
		zeo_w_tuple_end(b, ZEO_ENC_PICKLE, 1);
		zeo_w_tuple_end(b, ZEO_ENC_PICKLE, 1);
	}
	return rc;
}

/** Merge bucket / set / tree states and write the merged state into @p b. */
static int rs_resolve_bucket(enum rs_class cls, const struct zodb_val *const st[3],
			     struct zeo_buf *b)
{
	bool tree = cls == RS_TREE || cls == RS_TREESET;
	unsigned step = cls == RS_BUCKET || cls == RS_TREE ? 2 : 1;
	struct rs_side side[3];
	for (unsigned k = 0; k < 3; k++) {
		const struct zodb_val *bs = st[k];
		if (tree && rs_tree_state(st[k], &bs))
			return ZEO_RESOLVE_UNSUPPORTED;
		if (rs_bucket_state(bs, step, &side[k]))
			return ZEO_RESOLVE_UNSUPPORTED;
	}
	if (rs_keys_check(side, step))
		return ZEO_RESOLVE_UNSUPPORTED;
	size_t cap = ((size_t)side[0].n + side[1].n + side[2].n + 1) * step;
	struct rs_merge m = {.step = step, .out = malloc(cap * sizeof(*m.out))};
	if (!m.out)
		return ZEO_RESOLVE_UNSUPPORTED;
	/* side order: old, committed, new */
	int rc = rs_merge_run(&m, &side[0], &side[1], &side[2]) ? m.rc : 0;
	if (rc == 0 && rs_write_bucket(b, &m, side[0].next, tree))
		rc = ZEO_RESOLVE_UNSUPPORTED;
	free(m.out);
	return rc;
}

/* ------------------------------------------------------------ entry point */

static void rs_class_name(char *dst, size_t cap, const uint8_t *mod, uint32_t mod_len,
			  const uint8_t *name, uint32_t name_len)
{
	if (!dst || cap == 0)
		return;
	snprintf(dst, cap, "%.*s.%.*s", (int)(mod_len > 256 ? 256 : mod_len), (const char *)mod,
		 (int)(name_len > 256 ? 256 : name_len), (const char *)name);
}

/** Decode the three records and check the class. */
static int rs_decode(struct zodb_rec r[3], const void *const rec[3], const size_t len[3],
		     enum rs_class *cls, char *class_name, size_t class_name_cap)
{
	const uint8_t *mod, *name;
	uint32_t mod_len, name_len;
	const struct zodb_val *args;
	/* the client's record first: it names the class */
	if (zodb_record_decode(&r[2], rec[2], len[2]) ||
	    zodb_record_class(r[2].cls, &mod, &mod_len, &name, &name_len, &args))
		return ZEO_RESOLVE_UNSUPPORTED;
	rs_class_name(class_name, class_name_cap, mod, mod_len, name, name_len);
	*cls = rs_classify(mod, mod_len, name, name_len);
	if (*cls == RS_OTHER)
		return ZEO_RESOLVE_UNSUPPORTED;
	if (args && args->type != ZODB_NONE && !(args->type == ZODB_TUPLE && args->seq.n == 0))
		return ZEO_RESOLVE_UNSUPPORTED;
	/* a blob record is not a bucket: leave it to the client */
	if (r[2].pickle != rec[2])
		return ZEO_RESOLVE_UNSUPPORTED;
	for (unsigned k = 0; k < 2; k++)
		if (len[k] == 0 || zodb_record_decode(&r[k], rec[k], len[k]))
			return ZEO_RESOLVE_UNSUPPORTED;
	return 0;
}

int zeo_resolve(const void *old, size_t old_len, const void *committed, size_t committed_len,
		const void *newer, size_t newer_len, void **out, size_t *out_len, char *class_name,
		size_t class_name_cap)
{
	const void *rec[3] = {old, committed, newer};
	const size_t len[3] = {old_len, committed_len, newer_len};
	struct zodb_rec r[3] = {{0}};
	enum rs_class cls = RS_OTHER;
	struct zeo_buf b;
	*out = NULL;
	*out_len = 0;
	if (class_name && class_name_cap)
		class_name[0] = '\0';
	zeo_buf_init(&b);

	int rc = rs_decode(r, rec, len, &cls, class_name, class_name_cap);
	if (rc == 0) {
		const struct zodb_val *st[3] = {r[0].state, r[1].state, r[2].state};
		zeo_buf_put(&b, r[2].pickle, r[2].cls_len);
		zeo_w_begin(&b, ZEO_ENC_PICKLE);
		if (cls == RS_LENGTH)
			rc = rs_int_add3(&b, st[1], st[2], st[0]) ? ZEO_RESOLVE_UNSUPPORTED : 0;
		else
			rc = rs_resolve_bucket(cls, st, &b);
		zeo_w_end(&b, ZEO_ENC_PICKLE);
	}
	if (rc == 0 && b.oom)
		rc = ZEO_RESOLVE_UNSUPPORTED;
	if (rc == 0) {
		*out = b.p;
		*out_len = b.len;
	} else {
		zeo_buf_free(&b);
	}
	for (unsigned k = 0; k < 3; k++)
		zodb_rec_free(&r[k]);
	return rc;
}
