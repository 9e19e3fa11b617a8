/*
 * config_tree.c: the YAML text as a small tree of nodes with line numbers.
 *
 * libcyaml 1.3.1 loads YAML into structs but reports no usable position for
 * most errors, so the loader first reads the same text with libyaml's event
 * parser and keeps, for every node, the line it starts on and the line of its
 * key. Every later check (schema walk, cross-field rules) finds its line here
 * by key path.
 *
 * The tree refuses what the configuration never needs and what could make a
 * hostile file expensive: aliases (a "billion laughs" document expands
 * exponentially), more than one document, complex mapping keys, nesting
 * deeper than YTREE_MAX_DEPTH and more than YTREE_MAX_NODES nodes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config_internal.h"

/** One open collection while events stream in. */
struct yframe {
	struct ynode *node;
	char *pending_key; /* mapping: key read, value not yet */
	unsigned pending_line;
};

struct ybuild {
	struct ynode *root;
	struct yframe stack[YTREE_MAX_DEPTH];
	unsigned depth;
	unsigned n_nodes;
	unsigned n_docs;
	struct zcfg_err *e;
};

void ytree_free(struct ynode *n)
{
	if (n == NULL)
		return;
	for (unsigned i = 0; i < n->n_kids; i++)
		ytree_free(n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->val);
	free(n);
}

static int ynode_add_kid(struct ynode *parent, struct ynode *kid)
{
	if (parent->n_kids == parent->cap_kids) {
		unsigned cap = parent->cap_kids ? parent->cap_kids * 2 : 8;
		struct ynode **k = realloc(parent->kids, cap * sizeof(*k));

		if (k == NULL)
			return -ENOMEM;
		parent->kids = k;
		parent->cap_kids = cap;
	}
	parent->kids[parent->n_kids++] = kid;
	return 0;
}

static char *ystrndup(const unsigned char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		return NULL;
	if (len)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Attach a new node for event @p ev; returns it, or NULL with an error set. */
static struct ynode *ybuild_node(struct ybuild *b, const yaml_event_t *ev, enum ynode_kind kind,
				 int *rc)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;
	struct ynode *n;

	if (++b->n_nodes > YTREE_MAX_NODES) {
		*rc = zcfg_error(b->e, line, "document too large (more than %u YAML nodes)",
				 YTREE_MAX_NODES);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		*rc = -ENOMEM;
		zcfg_error(b->e, 0, "out of memory");
		return NULL;
	}
	n->kind = kind;
	n->line = line;
	n->key_line = line;
	if (kind == YNODE_SCALAR) {
		n->val = ystrndup(ev->data.scalar.value, ev->data.scalar.length);
		n->val_len = ev->data.scalar.length;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if (n->val == NULL) {
			free(n);
			*rc = -ENOMEM;
			zcfg_error(b->e, 0, "out of memory");
			return NULL;
		}
	}
	if (b->depth == 0) {
		b->root = n;
		return n;
	}
	struct yframe *f = &b->stack[b->depth - 1];

	if (f->node->kind == YNODE_MAP) {
		n->key = f->pending_key;
		n->key_line = f->pending_line;
		f->pending_key = NULL;
	}
	if (ynode_add_kid(f->node, n) < 0) {
		f->pending_key = n->key;
		n->key = NULL;
		ytree_free(n);
		*rc = -ENOMEM;
		zcfg_error(b->e, 0, "out of memory");
		return NULL;
	}
	return n;
}

/* A scalar in key position of a mapping: remember it as the pending key. */
static int ybuild_key(struct ybuild *b, const yaml_event_t *ev)
{
	struct yframe *f = &b->stack[b->depth - 1];

	f->pending_key = ystrndup(ev->data.scalar.value, ev->data.scalar.length);
	if (f->pending_key == NULL)
		return zcfg_error(b->e, 0, "out of memory"), -ENOMEM;
	f->pending_line = (unsigned)ev->start_mark.line + 1;
	return 0;
}

static int ybuild_event(struct ybuild *b, const yaml_event_t *ev)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;
	struct yframe *top = b->depth ? &b->stack[b->depth - 1] : NULL;
	int in_key = top && top->node->kind == YNODE_MAP && top->pending_key == NULL;
	enum ynode_kind kind;
	int rc = 0;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->n_docs > 1)
			return zcfg_error(b->e, line, "only one YAML document is allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return zcfg_error(b->e, line, "YAML aliases (*%s) are not supported",
				  (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		if (in_key)
			return ybuild_key(b, ev);
		return ybuild_node(b, ev, YNODE_SCALAR, &rc) ? 0 : rc;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (in_key)
			return zcfg_error(b->e, line, "a mapping key must be a scalar");
		if (b->depth == YTREE_MAX_DEPTH)
			return zcfg_error(b->e, line, "nesting deeper than %u levels",
					  YTREE_MAX_DEPTH);
		kind = ev->type == YAML_MAPPING_START_EVENT ? YNODE_MAP : YNODE_SEQ;
		struct ynode *n = ybuild_node(b, ev, kind, &rc);

		if (n == NULL)
			return rc;
		b->stack[b->depth].node = n;
		b->stack[b->depth].pending_key = NULL;
		b->depth++;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0) {
			b->depth--;
			free(b->stack[b->depth].pending_key);
			b->stack[b->depth].pending_key = NULL;
		}
		return 0;
	default:
		return 0;
	}
}

/* Line of byte @p off in the input, 1-based. */
static unsigned yline_of_offset(const char *s, size_t len, size_t off)
{
	unsigned line = 1;

	for (size_t i = 0; i < off && i < len; i++)
		line += s[i] == '\n';
	return line;
}

static int ysyntax_error(const yaml_parser_t *p, const char *yaml, size_t len, struct zcfg_err *e)
{
	unsigned line;

	if (p->error == YAML_MEMORY_ERROR) {
		zcfg_error(e, 0, "out of memory while parsing YAML");
		return -ENOMEM;
	}
	if (p->error == YAML_READER_ERROR)
		line = yline_of_offset(yaml, len, p->problem_offset);
	else
		line = (unsigned)p->problem_mark.line + 1;
	if (p->context != NULL)
		return zcfg_error(e, line, "YAML syntax error: %s %s",
				  p->problem ? p->problem : "invalid YAML", p->context);
	return zcfg_error(e, line, "YAML syntax error: %s",
			  p->problem ? p->problem : "invalid YAML");
}

/*
 * libyaml also breaks lines at a lone CR, NEL (U+0085), LS (U+2028) and PS
 * (U+2029), which editors do not; refuse them so that libyaml's line numbers
 * are the operator's line numbers.
 */
static int ycheck_line_breaks(const char *s, size_t len, struct zcfg_err *e)
{
	unsigned line = 1;

	for (size_t i = 0; i < len; i++) {
		const unsigned char *u = (const unsigned char *)s + i;

		if (*u == '\n')
			line++;
		else if (*u == '\r' && (i + 1 == len || u[1] != '\n'))
			return zcfg_error(e, line, "carriage return without line feed");
		else if (*u == 0xc2 && i + 1 < len && u[1] == 0x85)
			return zcfg_error(e, line, "NEL (U+0085) line break is not allowed");
		else if (*u == 0xe2 && i + 2 < len && u[1] == 0x80 &&
			 (u[2] == 0xa8 || u[2] == 0xa9))
			return zcfg_error(e, line,
					  "Unicode line/paragraph separator is not allowed");
	}
	return 0;
}

int ytree_parse(const char *yaml, size_t len, struct ynode **root, struct zcfg_err *e)
{
	struct ybuild b = {.e = e};
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0, done = 0;

	*root = NULL;
	rc = ycheck_line_breaks(yaml, len, e);
	if (rc < 0)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return zcfg_error(e, 0, "out of memory"), -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = ysyntax_error(&parser, yaml, len, e);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = ybuild_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	for (unsigned i = 0; i < YTREE_MAX_DEPTH; i++)
		free(b.stack[i].pending_key);
	if (rc < 0) {
		ytree_free(b.root);
		return rc;
	}
	*root = b.root;
	return 0;
}

const struct ynode *ytree_get(const struct ynode *n, const char *key)
{
	if (n == NULL || n->kind != YNODE_MAP)
		return NULL;
	for (unsigned i = 0; i < n->n_kids; i++)
		if (n->kids[i]->key != NULL && strcmp(n->kids[i]->key, key) == 0)
			return n->kids[i];
	return NULL;
}

/* Walk one path segment "name" or "name[3]" or "[3]"; NULL if absent. */
static const struct ynode *ytree_step(const struct ynode *n, const char *seg, size_t seg_len)
{
	char key[128];
	size_t klen = 0;

	while (klen < seg_len && seg[klen] != '[')
		klen++;
	if (klen >= sizeof(key))
		return NULL;
	if (klen > 0) {
		memcpy(key, seg, klen);
		key[klen] = '\0';
		n = ytree_get(n, key);
	}
	for (size_t i = klen; n != NULL && i < seg_len && seg[i] == '[';) {
		unsigned long idx = strtoul(seg + i + 1, NULL, 10);

		if (n->kind != YNODE_SEQ || idx >= n->n_kids)
			return NULL;
		n = n->kids[idx];
		while (i < seg_len && seg[i] != ']')
			i++;
		i++;
	}
	return n;
}

unsigned ytree_line(const struct ynode *root, const char *fmt, ...)
{
	char path[256];
	const struct ynode *n = root, *best = root;
	const char *p = path;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	while (n != NULL && *p != '\0') {
		size_t len = strcspn(p, ".");

		n = ytree_step(n, p, len);
		if (n != NULL)
			best = n;
		p += len;
		if (*p == '.')
			p++;
	}
	if (best == NULL)
		return 1;
	return best->key != NULL ? best->key_line : best->line;
}
