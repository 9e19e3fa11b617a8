/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO codec, the pickle decoder (zeo_codec_pickle.c), called by
 * zeo_decode() for ZEO_ENC_PICKLE.
 */
#ifndef ZAP_ZEO_CODEC_PICKLE_H
#define ZAP_ZEO_CODEC_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "zeo_value.h"

/** zeo_decode() with ZEO_ENC_PICKLE: same arguments, return codes and reasons. */
int zeo_pickle_decode(const uint8_t *buf, size_t len, struct zeo_arena *a, struct zeo_val **out,
		      const char **err);

#endif /* ZAP_ZEO_CODEC_PICKLE_H */
