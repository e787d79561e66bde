/* SPDX-License-Identifier: MIT */
/*
 * Shared code for the policy-engine tests (test_policy_engine*.c): a
 * fixture with a system, one address space, an engine and one managed
 * device, a managed range at TBASE, and a device access that services one
 * batch at a time and runs both validators — the engine's (§5.9 and
 * agreement with the page tables) and the core's dmm_check — after every
 * batch.
 */
#ifndef DEVMM_TESTS_POLICY_HELPERS_H
#define DEVMM_TESTS_POLICY_HELPERS_H

#include "helpers.h"

#include <devmm/policy.h>

#include "managed.h"

#define PFX_FRAMES 8192
#define PFX_DEV_PAGES 2048
#define PFX_RANGE_PAGES 1024 /* two managed blocks */

struct pfx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct dmm_engine *eng;
	struct managed_dev *dev;
	unsigned int gpu;
	uint64_t free0;
	unsigned int batches_checked;
};

/* String equality. */
#define STREQ(actual, expected)                                                                  \
	do {                                                                                     \
		const char *a_ = (actual), *e_ = (expected);                                       \
		if (!a_ || strcmp(a_, e_))                                                         \
			h_fail(__FILE__, __LINE__, "%s = \"%s\", expected \"%s\"", #actual,         \
			       a_ ? a_ : "(null)", e_);                                            \
	} while (0)

static inline void engine_check_at(const char *file, int line, struct dmm_engine *eng)
{
	static char report[8192];
	int rc = dmm_engine_check(eng, report, sizeof(report));

	if (rc)
		h_fail(file, line, "dmm_engine_check = %d (%s):\n%s", rc, errname(rc), report);
}
#define ENGINE_CHECK(eng) engine_check_at(__FILE__, __LINE__, (eng))

/* System, mm, engine (ondemand unless @policy), device, range of
 * PFX_RANGE_PAGES at TBASE; NULL on failure. */
static inline struct pfx *pfx_new(const char *policy, unsigned int fault_buffer_entries)
{
	struct pfx *p = calloc(1, sizeof(*p));
	struct dmm_engine_config cfg = { .policy_name = policy };

	if (!p)
		return NULL;
	p->sys = sys_new(PFX_FRAMES);
	if (!p->sys || dmm_mm_create(p->sys, &p->mm) || dmm_engine_create(p->mm, &cfg, &p->eng) ||
	    managed_dev_create(p->sys, p->eng, PFX_DEV_PAGES, fault_buffer_entries, &p->dev))
		return NULL;
	p->gpu = managed_dev_proc(p->dev);
	p->free0 = dmm_system_nr_free(p->sys);
	MAP_ANON(p->mm, TBASE, PFX_RANGE_PAGES);
	OK(dmm_engine_range_add(p->eng, TBASE, PFX_RANGE_PAGES * PG));
	return p;
}

static inline void pfx_free(struct pfx *p)
{
	if (!p)
		return;
	dmm_engine_destroy(p->eng);
	managed_dev_destroy(p->dev);
	dmm_mm_exit(p->mm);
	dmm_system_destroy(p->sys);
	free(p);
}

/* Service one batch at a time until the buffer is empty, with both
 * validators after every batch. */
static inline void service_checked_at(const char *file, int line, struct pfx *p)
{
	struct dmm_service_result res;

	do {
		int rc = dmm_engine_service(p->eng, p->gpu, &res);

		if (rc)
			h_fail(file, line, "dmm_engine_service = %d (%s)", rc, errname(rc));
		engine_check_at(file, line, p->eng);
		check_ok_at(file, line, p->sys);
		p->batches_checked += res.batches;
	} while (res.pending);
}
#define SERVICE_CHECKED(p) service_checked_at(__FILE__, __LINE__, (p))

/* A device access that completes, servicing (checked) as it must. */
static inline int gpu_run_at(const char *file, int line, struct pfx *p, uint32_t stream, uint64_t addr,
			     enum dmm_access op, void *buf, size_t len)
{
	for (int round = 0; round < 64; round++) {
		int rc = managed_access(p->dev, stream, addr, op, buf, len);

		if (rc != -EAGAIN)
			return rc;
		service_checked_at(file, line, p);
	}
	h_fail(file, line, "the access at %#" PRIx64 " never completed", addr);
	return -EBUSY;
}
#define GPU_RUN(p, stream, addr, op, buf, len) gpu_run_at(__FILE__, __LINE__, (p), (stream), (addr), (op), (buf), (len))

static inline struct dmm_engine_stats stats_of(struct dmm_engine *eng)
{
	struct dmm_engine_stats st;

	memset(&st, 0, sizeof(st));
	dmm_engine_stats(eng, &st);
	return st;
}

#endif /* DEVMM_TESTS_POLICY_HELPERS_H */
