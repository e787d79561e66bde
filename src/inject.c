/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: every allocation site asks should_fail() first. A site
 * fails on the Nth call after it was armed (countdown mode, once), or with
 * a fixed probability (seeded xorshift, reproducible for one thread).
 * Tests sweep N = 1, 2, ... to exercise every failure path.
 */
#include <errno.h>
#include <stdlib.h>

#include "inject.h"
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

/* One "SITE:key=value[:key=value]" item. */
static int parse_item(const char *item, size_t len, int *site, struct dmm_inject_config *cfg)
{
	char buf[128], *save = NULL, *tok;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, item, len);
	buf[len] = '\0';
	memset(cfg, 0, sizeof(*cfg));
	tok = strtok_r(buf, ":", &save);
	*site = dmm_inject_site_by_name(tok);
	if (*site < 0)
		return -EINVAL;
	while ((tok = strtok_r(NULL, ":", &save))) {
		char *eq = strchr(tok, '='), *end;
		unsigned long long v;

		if (!eq || !eq[1])
			return -EINVAL;
		*eq = '\0';
		errno = 0;
		v = strtoull(eq + 1, &end, 0);
		if (*end || errno)
			return -EINVAL;
		if (!strcmp(tok, "countdown"))
			cfg->countdown = v;
		else if (!strcmp(tok, "probability") && v <= 1000000)
			cfg->probability = (unsigned int)v;
		else if (!strcmp(tok, "seed"))
			cfg->seed = v;
		else
			return -EINVAL;
	}
	return 0;
}

int dmm_inject_parse(struct dmm_system *sys, const char *spec)
{
	struct dmm_inject_config cfgs[DMM_NR_INJECT_SITES];
	bool set[DMM_NR_INJECT_SITES] = { false };
	const char *p = spec;

	if (!sys || !spec)
		return -EINVAL;
	while (*p) {
		size_t len = strcspn(p, ";,");
		struct dmm_inject_config cfg;
		int site;

		if (len && parse_item(p, len, &site, &cfg))
			return -EINVAL;
		if (len) {
			cfgs[site] = cfg;
			set[site] = true;
		}
		p += len + (p[len] != '\0');
	}
	for (int i = 0; i < DMM_NR_INJECT_SITES; i++)
		if (set[i])
			dmm_inject_set(sys, i, &cfgs[i]);
	return 0;
}

void *meta_calloc(struct dmm_system *sys, size_t n, size_t size)
{
	if (should_fail(sys, DMM_INJECT_META))
		return NULL;
	return calloc(n, size);
}

bool inject_should_fail(struct dmm_system *sys, enum dmm_inject_site site)
{
	return should_fail(sys, site);
}
