/* SPDX-License-Identifier: MIT */
/*
 * The one white-box number of the benchmarks: the bytes devmm reserves for
 * frame metadata (src/system.c: (nr_frames + 1) * sizeof(struct dmm_page)).
 * The public API has no call for it, so this file alone is compiled
 * against the internal headers (bench/meson.build); it reads a field and
 * calls nothing internal.
 */
#include "internal.h"

#include "bench.h"

uint64_t bench_meta_bytes(const struct dmm_system *sys)
{
	return sys->meta_bytes;
}
