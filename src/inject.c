/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: every allocation site asks should_fail() first. A site
 * fails on the Nth call after it was armed (countdown mode, once), or with
 * a fixed probability (seeded xorshift, reproducible for one thread).
 * Tests sweep N = 1, 2, ... to exercise every failure path.
 */
#include "internal.h"

static const char *const site_names[] = {
#define DMM_INJECT_NAME(id, name, desc) name,
	DMM_INJECT_SITES(DMM_INJECT_NAME)
#undef DMM_INJECT_NAME
};

int dmm_inject_site_by_name(const char *name)
{
	for (int i = 0; name && i < DMM_NR_INJECT_SITES; i++)
		if (!strcmp(name, site_names[i]))
			return i;
	return -EINVAL;
}

int dmm_inject_set(struct dmm_system *sys, enum dmm_inject_site site, const struct dmm_inject_config *cfg)
{
	struct dmm_inject_state *st;

	if (!sys || !cfg || (unsigned int)site >= DMM_NR_INJECT_SITES || cfg->probability > 1000000)
		return -EINVAL;
	st = &sys->inject[site];
	atomic_store(&st->countdown, (long)cfg->countdown);
	atomic_store(&st->rng, cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ULL);
	atomic_store(&st->ppm, cfg->probability);
	return 0;
}

uint64_t dmm_inject_count(struct dmm_system *sys, enum dmm_inject_site site)
{
	if (!sys || (unsigned int)site >= DMM_NR_INJECT_SITES)
		return 0;
	return atomic_load(&sys->inject[site].injected);
}

static uint64_t xorshift(_Atomic uint64_t *state)
{
	uint64_t old = atomic_load_explicit(state, memory_order_relaxed), x;

	do {
		x = old;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	} while (!atomic_compare_exchange_weak_explicit(state, &old, x, memory_order_relaxed,
							memory_order_relaxed));
	return x;
}

bool should_fail_slow(struct dmm_system *sys, enum dmm_inject_site site)
{
	struct dmm_inject_state *st = &sys->inject[site];
	long c = atomic_load_explicit(&st->countdown, memory_order_relaxed);
	uint32_t ppm;

	while (c > 0) {
		if (atomic_compare_exchange_weak(&st->countdown, &c, c - 1)) {
			if (c == 1)
				goto fail;
			break;
		}
	}
	ppm = atomic_load_explicit(&st->ppm, memory_order_relaxed);
	if (ppm && xorshift(&st->rng) % 1000000 < ppm)
		goto fail;
	return false;
fail:
	atomic_fetch_add(&st->injected, 1);
	return true;
}

void *meta_calloc(struct dmm_system *sys, size_t n, size_t size)
{
	if (should_fail(sys, DMM_INJECT_META))
		return NULL;
	return calloc(n, size);
}
