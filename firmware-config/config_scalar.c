/*
 * config_scalar.c: the small textual syntaxes inside configuration values.
 *
 * Sizes ("512M"), MAC and IPv4 addresses, "host:port", PCI addresses, hex
 * secrets and vdev names. Each parser is strict (the whole string must match,
 * nothing is silently ignored) and never reads past the terminating NUL, so
 * any string from the file is safe to pass. They return 0, or -EINVAL for a
 * syntax error and -ERANGE for a value that does not fit; the caller words
 * the message and supplies the line.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* Longest DNS name (RFC 1035). */
#define ZCFG_HOSTNAME_MAX 253

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decimal digits without leading zeros into *v, at most @p max; advances *s. */
static int parse_dec(const char **s, uint64_t max, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	if (p[0] == '0' && isdigit((unsigned char)p[1]))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (x > (max - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	*s = p;
	*v = x;
	return 0;
}

int zcfg_parse_size(const char *s, uint64_t *bytes)
{
	static const char suffixes[] = "KMGT";
	const char *p = s, *sfx;
	uint64_t v;
	unsigned shift = 0;
	int rc;

	rc = parse_dec(&p, UINT64_MAX, &v);
	if (rc < 0)
		return rc;
	if (*p != '\0') {
		sfx = strchr(suffixes, *p);
		if (sfx == NULL)
			return -EINVAL;
		shift = 10 * (unsigned)(sfx - suffixes + 1);
		p++;
		if (strcmp(p, "iB") == 0)
			p += 2;
		if (*p != '\0')
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = v << shift;
	return 0;
}

int zcfg_parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (i < 5 && *s++ != ':')
			return -EINVAL;
	}
	return *s == '\0' ? 0 : -EINVAL;
}

/* Dotted quad at *s, stopping at the first character that cannot continue it. */
static int parse_ipv4_prefix(const char **s, uint32_t *ipv4_be)
{
	uint8_t b[4];
	uint32_t be;

	for (int i = 0; i < 4; i++) {
		uint64_t v;

		if (parse_dec(s, 255, &v) < 0)
			return -EINVAL;
		b[i] = (uint8_t)v;
		if (i < 3 && *(*s)++ != '.')
			return -EINVAL;
	}
	memcpy(&be, b, sizeof(be));
	*ipv4_be = be;
	return 0;
}

int zcfg_parse_ipv4(const char *s, uint32_t *ipv4_be)
{
	if (parse_ipv4_prefix(&s, ipv4_be) < 0 || *s != '\0')
		return -EINVAL;
	return 0;
}

/* DNS name: labels of letters, digits and '-', not starting or ending with '-'. */
static int valid_hostname(const char *h, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > ZCFG_HOSTNAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return h[len - 1] != '-' && h[len - 1] != '.';
}

int zcfg_parse_hostport(const char *s, char **host, uint16_t *port)
{
	const char *colon, *hs = s, *p;
	size_t hlen;
	uint64_t v;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		char buf[64];
		unsigned char a6[16];

		if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(buf))
			return -EINVAL;
		hs = s + 1;
		hlen = (size_t)(end - hs);
		memcpy(buf, hs, hlen);
		buf[hlen] = '\0';
		if (inet_pton(AF_INET6, buf, a6) != 1)
			return -EINVAL;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -EINVAL;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL)
			return -EINVAL; /* bare IPv6 needs brackets */
		if (hlen > 0 && strspn(s, "0123456789.") >= hlen) {
			/* only digits and dots: must be a whole IPv4 address */
			uint32_t a;
			const char *q = s;

			if (parse_ipv4_prefix(&q, &a) < 0 || q != colon)
				return -EINVAL;
		} else if (!valid_hostname(s, hlen)) {
			return -EINVAL;
		}
	}
	p = colon + 1;
	if (parse_dec(&p, 65535, &v) < 0 || *p != '\0')
		return -EINVAL;
	if (v == 0)
		return -ERANGE;
	*host = strndup(hs, hlen);
	if (*host == NULL)
		return -ENOMEM;
	*port = (uint16_t)v;
	return 0;
}

/* Exactly @p n hex digits at *s into *v; advances *s. */
static int parse_hexn(const char **s, unsigned n, unsigned *v)
{
	unsigned x = 0;

	for (unsigned i = 0; i < n; i++) {
		int d = hexval((*s)[i]);

		if (d < 0)
			return -EINVAL;
		x = x << 4 | (unsigned)d;
	}
	*s += n;
	*v = x;
	return 0;
}

int zcfg_parse_pci(const char *s, char out[16])
{
	unsigned dom = 0, bus, dev, fn;
	const char *p = s;
	size_t len = strlen(s);

	if (len == 12) {
		if (parse_hexn(&p, 4, &dom) < 0 || *p++ != ':')
			return -EINVAL;
	} else if (len != 7) {
		return -EINVAL;
	}
	if (parse_hexn(&p, 2, &bus) < 0 || *p++ != ':')
		return -EINVAL;
	if (parse_hexn(&p, 2, &dev) < 0 || *p++ != '.')
		return -EINVAL;
	if (parse_hexn(&p, 1, &fn) < 0 || *p != '\0')
		return -EINVAL;
	if (dev > 0x1f || fn > 7)
		return -ERANGE;
	snprintf(out, 16, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return 0;
}

int zcfg_parse_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s);

	if (n % 2 != 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (hexval(s[i]) < 0)
			return -EINVAL;
	if (n / 2 > max)
		return -ERANGE;
	for (size_t i = 0; i < n / 2; i++)
		out[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	*len = n / 2;
	return 0;
}

int zcfg_parse_vdev_name(const char *s, char *name, size_t name_len)
{
	size_t n = strcspn(s, ",");

	if (n == 0 || n >= name_len)
		return n == 0 ? -EINVAL : -ERANGE;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return -EINVAL;
	memcpy(name, s, n);
	name[n] = '\0';
	return 0;
}
