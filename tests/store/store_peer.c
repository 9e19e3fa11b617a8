/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A second process for the store tests: attaches to a store by path
 * (read-only data mapping, its own reader table slot) and reads it.
 *
 *   store_peer PATH read OID...   print "OID SERIAL LEN ok|bad|missing" per oid
 *   store_peer PATH hold          enter a read section, print "ready", wait to be killed
 *   store_peer PATH loop N OIDS   N snapshots; check every record of oids [0, OIDS)
 *                                 against its pattern; print "checked K" or "bad ..."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store_pattern.h"

static int check_rev(uint64_t oid, const struct zap_store_rev *rev)
{
	if (rev->deleted)
		return 1;
	return rev->len == pattern_len(oid, rev->serial) &&
	       pattern_check(rev->data, rev->len, oid, rev->serial);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: store_peer PATH MODE ARGS\n"
		   "  read OID...   print \"OID SERIAL LEN ok|bad|missing\" per oid\n"
		   "  hold          enter a read section, print \"ready\", wait to be killed\n"
		   "  loop N OIDS   N snapshots; check every record of oids [0, OIDS)\n"
		   "  -h, --help    print this help and exit\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	struct zap_store *s;
	struct zap_store_reader *r;
	int rc = zap_store_attach(argv[1], &s);
	if (rc != 0) {
		fprintf(stderr, "attach %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	rc = zap_store_reader_open(s, &r);
	if (rc != 0) {
		fprintf(stderr, "reader: %s\n", strerror(-rc));
		return 1;
	}
	if (strcmp(argv[2], "read") == 0) {
		zap_store_read_begin(r);
		for (int i = 3; i < argc; i++) {
			uint64_t oid = strtoull(argv[i], NULL, 0);
			struct zap_store_rev rev;
			if (zap_store_load(r, oid, &rev) != 0) {
				printf("%llu 0 0 missing\n", (unsigned long long)oid);
				continue;
			}
			printf("%llu %llu %llu %s\n", (unsigned long long)oid,
			       (unsigned long long)rev.serial, (unsigned long long)rev.len,
			       check_rev(oid, &rev) ? "ok" : "bad");
		}
		zap_store_read_end(r);
	} else if (strcmp(argv[2], "hold") == 0) {
		zap_store_read_begin(r);
		printf("ready\n");
		fflush(stdout);
		for (;;)
			pause();
	} else if (strcmp(argv[2], "loop") == 0 && argc == 5) {
		long n = atol(argv[3]);
		uint64_t oids = strtoull(argv[4], NULL, 0), checked = 0, last = 0;
		for (long k = 0; k < n; k++) {
			uint64_t snap = zap_store_read_begin(r);
			if (snap < last) {
				printf("bad snapshot went back %llu < %llu\n",
				       (unsigned long long)snap, (unsigned long long)last);
				return 1;
			}
			last = snap;
			for (uint64_t oid = 0; oid < oids; oid++) {
				struct zap_store_rev rev;
				if (zap_store_load(r, oid, &rev) != 0)
					continue;
				if (rev.serial > snap || !check_rev(oid, &rev)) {
					printf("bad oid %llu serial %llu\n",
					       (unsigned long long)oid,
					       (unsigned long long)rev.serial);
					return 1;
				}
				checked++;
			}
			zap_store_read_end(r);
		}
		printf("checked %llu\n", (unsigned long long)checked);
	} else {
		fprintf(stderr, "store_peer: unknown mode %s\n", argv[2]);
		return 2;
	}
	zap_store_reader_close(r);
	zap_store_close(s);
	return 0;
}
