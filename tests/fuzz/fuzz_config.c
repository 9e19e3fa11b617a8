/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: YAML configuration. Every input loads, or fails with a
 * message that names the input: "fuzz.yaml:LINE: ..." or "fuzz.yaml: ...".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char name[] = "fuzz.yaml";
	struct zap_config *c = NULL;
	char err[512];
	int rc = zap_config_load_string(name, (const char *)data, size, &c, err, sizeof(err));
	if (rc == 0) {
		zap_config_free(c);
		return 0;
	}
	if (strncmp(err, name, sizeof(name) - 1) != 0 || err[sizeof(name) - 1] != ':')
		abort();
	return 0;
}
