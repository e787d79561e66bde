/* SPDX-License-Identifier: MIT */
/*
 * Statistics: counters sharded per thread (so hot paths never share a
 * cache line between threads), summed on read. The list in devmm.h
 * (DMM_STAT_LIST) generates both the struct and its printout. Also home of
 * the per-thread shard number and of dmm_bug().
 */
#include <stdio.h>

#include "internal.h"

static _Atomic unsigned int next_shard;
static _Thread_local unsigned int my_shard = ~0u;

unsigned int dmm_shard(void)
{
	if (unlikely(my_shard == ~0u))
		my_shard = atomic_fetch_add(&next_shard, 1) % NR_SHARDS;
	return my_shard;
}

_Noreturn void dmm_bug(const char *file, int line, const char *what)
{
	fprintf(stderr, "devmm: BUG at %s:%d: %s\n", file, line, what);
	abort();
}

int dmm_stats_get(struct dmm_system *sys, struct dmm_stats *out)
{
	if (!sys || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < NR_SHARDS; i++) {
#define DMM_STAT_SUM(name, desc) \
	out->name += atomic_load_explicit(&sys->stats[i].name, memory_order_relaxed);
		DMM_STAT_LIST(DMM_STAT_SUM)
#undef DMM_STAT_SUM
	}
	return 0;
}

void dmm_stats_print(const struct dmm_stats *s, FILE *f)
{
	if (!s || !f)
		return;
#define DMM_STAT_PRINT(name, desc) \
	fprintf(f, "%-20s %12llu  # %s\n", #name, (unsigned long long)s->name, desc);
	DMM_STAT_LIST(DMM_STAT_PRINT)
#undef DMM_STAT_PRINT
}
