/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: log recovery. The input becomes the only segment of a
 * log directory; opening it replays a prefix of records, cuts a torn tail,
 * or refuses with a message naming the file and offset. Never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"

static int count(uint8_t type, uint64_t slot, uint64_t ballot, const void *p, uint64_t len,
		 void *ctx)
{
	(void)type;
	(void)slot;
	(void)ballot;
	(void)p;
	(void)len;
	(*(uint64_t *)ctx)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64];
	char path[128];
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/zap-fuzz-log.XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
	}
	snprintf(path, sizeof(path), "%s/00000000000000000001.zlog", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	struct zap_log_params p;
	zap_log_params_init(&p, dir);
	p.durability = ZAP_LOG_DURABILITY_MEMORY;
	struct zap_log *l = NULL;
	char err[512] = "";
	uint64_t n = 0;
	int rc = zap_log_open(&p, count, &n, &l, err, sizeof(err));
	if (rc == 0)
		zap_log_close(l);
	else if (rc == -EILSEQ && strstr(err, ".zlog: offset ") == NULL)
		abort();
	unlink(path);
	return 0;
}
