/*
 * config.c: the bottom of the configuration loader: the one error reporter
 * every stage uses (zcfg_error), and what a loaded configuration offers its
 * users (zap_config_free, zap_config_node, zap_config_lcore_for_role). The
 * loading itself is config_load.c, above every other file of the loader.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "config_internal.h"

int zcfg_error(struct zcfg_err *e, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (e->set)
		return -EINVAL;
	e->set = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* values from the file are quoted in messages: keep them printable */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (e->buf == NULL || e->len == 0)
		return -EINVAL;
	if (line > 0)
		snprintf(e->buf, e->len, "%s:%u: %s", e->name, line, msg);
	else
		snprintf(e->buf, e->len, "%s: %s", e->name, msg);
	return -EINVAL;
}

void zap_config_free(struct zap_config *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; c->nodes != NULL && i < c->n_nodes; i++) {
		struct zap_node_config *n = &c->nodes[i];

		free(n->name);
		free(n->zeo.host);
		free(n->zeo_unix);
		free(n->admin.host);
		free(n->client_udp.host);
		free(n->log_dir);
		for (unsigned j = 0; n->ports != NULL && j < n->n_ports; j++) {
			free(n->ports[j].pci);
			free(n->ports[j].vdev);
			free(n->ports[j].vdev_name);
		}
		free(n->ports);
	}
	free(c->nodes);
	free(c->lcores);
	free(c->store.hugetlbfs_dir);
	free(c->log.dir);
	free(c->source);
	free(c);
}

const struct zap_node_config *zap_config_node(const struct zap_config *c, uint16_t id)
{
	if (c == NULL)
		return NULL;
	for (unsigned i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].id == id)
			return &c->nodes[i];
	return NULL;
}

const struct zap_lcore_config *zap_config_lcore_for_role(const struct zap_config *c, uint32_t role)
{
	if (c == NULL || role == 0)
		return NULL;
	for (unsigned i = 0; i < c->n_lcores; i++)
		if (c->lcores[i].roles & role)
			return &c->lcores[i];
	return NULL;
}
