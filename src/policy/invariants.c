/* SPDX-License-Identifier: MIT */
/*
 * dmm_engine_check: the invariants of managed-memory.md §5.9 that this
 * engine can break, and the engine's agreement with the core's page tables
 * (the truth of where a page lives). A real validator, run after every
 * batch in the tests, as dmm_check is for the core.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "engine.h"

#define PAGE DMM_PAGE_SIZE

struct report {
	char *buf;
	size_t size, len;
	int bad;
};

static void fail(struct report *r, const char *fmt, ...)
{
	va_list ap;

	r->bad++;
	va_start(ap, fmt);
	if (!r->buf) {
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else if (r->len + 1 < r->size) {
		int n = vsnprintf(r->buf + r->len, r->size - r->len, fmt, ap);

		if (n > 0)
			r->len += (size_t)n < r->size - r->len ? (size_t)n : r->size - r->len - 1;
		if (r->len + 1 < r->size)
			r->buf[r->len++] = '\n', r->buf[r->len] = 0;
	}
	va_end(ap);
}

/* The processor the page table says holds addr (DMM_PROC_NONE: nobody). */
static unsigned int pte_holder(struct dmm_engine *eng, uint64_t addr)
{
	struct dmm_pte_info pi;
	struct dmm_pgmap *pg;

	if (dmm_pte_query(eng->mm, addr, &pi))
		return DMM_PROC_NONE;
	if (pi.kind == DMM_PTE_PRESENT)
		return pi.special ? DMM_PROC_NONE : DMM_PROC_CPU;
	if (pi.kind != DMM_PTE_DEVICE_PRIVATE_READ && pi.kind != DMM_PTE_DEVICE_PRIVATE_WRITE)
		return DMM_PROC_NONE;
	pg = dmm_page_pgmap(eng->sys, pi.pfn);
	for (unsigned int p = 1; p < eng->nr_procs && pg; p++)
		if (eng->procs[p].desc.pgmap_owner == dmm_pgmap_owner(pg))
			return p;
	return DMM_MAX_PROCS; /* someone else's device page */
}

static void check_page(struct dmm_engine *eng, struct mblock *b, unsigned int i, struct report *r)
{
	uint64_t addr = b->start + (uint64_t)i * PAGE;
	unsigned int copies = 0, where = DMM_PROC_NONE, truth;

	for (unsigned int p = 0; p < eng->nr_procs; p++) {
		if (dmm_pmask_test(blk_res(b, p), i)) {
			copies++;
			where = p;
		}
		if (p && dmm_pmask_test(blk_map(b, eng->nr_procs, p), i) && !dmm_pmask_test(blk_res(b, p), i))
			fail(r, "0x%llx: mapped by processor %u, which does not hold it", (unsigned long long)addr, p);
	}
	if (copies > 1)
		fail(r, "0x%llx: %u copies without read duplication", (unsigned long long)addr, copies);
	if ((copies > 0) != dmm_pmask_test(&b->populated, i))
		fail(r, "0x%llx: populated bit %d with %u copies", (unsigned long long)addr,
		     dmm_pmask_test(&b->populated, i), copies);
	if (dmm_pmask_test(&b->pinned, i) && (!b->pin_proc || b->pin_proc[i] != where))
		fail(r, "0x%llx: pinned away from where it is", (unsigned long long)addr);
	if (b->stale)
		return; /* the engine knows it does not know: resynced before use */
	truth = pte_holder(eng, addr);
	if (truth != where && !(truth == DMM_PROC_CPU && where == DMM_PROC_NONE && copies == 0))
		fail(r, "0x%llx: the engine says processor %d, the page table %d", (unsigned long long)addr,
		     where == DMM_PROC_NONE ? -1 : (int)where, truth == DMM_PROC_NONE ? -1 : (int)truth);
}

/*
 * Every page of every range whose page table says one of our devices holds
 * it must be known to the engine: a block for it, and (checked per block)
 * the same holder. Finds device pages a failed move or evacuation left
 * behind where the engine no longer looks.
 */
static void check_range_ptes(struct dmm_engine *eng, struct mrange *rg, struct report *r)
{
	for (uint64_t a = rg->start; a < rg->end; a += PAGE) {
		unsigned int truth = pte_holder(eng, a);
		struct mblock *b;

		if (truth == DMM_PROC_NONE || truth == DMM_PROC_CPU || truth == DMM_MAX_PROCS)
			continue;
		pthread_mutex_lock(&eng->lock);
		b = block_lookup(eng, rg, a);
		pthread_mutex_unlock(&eng->lock);
		if (!b)
			fail(r, "0x%llx: on processor %u, in no block of its range", (unsigned long long)a, truth);
	}
}

int dmm_engine_check(struct dmm_engine *eng, char *report, size_t size)
{
	struct report r = { .buf = report, .size = size };
	struct dmm_engine_stats st;
	struct mblock *b;
	size_t k;

	if (!eng)
		return -EINVAL;
	if (report && size)
		report[0] = 0;
	pthread_mutex_lock(&eng->service_lock);
	/* Quiescent by contract: eng->lock is not held across the page-table
	 * queries (a driver lock above a PTL would invert the core's order). */
	blocks_for_each(eng, b, k)
		for (unsigned int i = b->first; i < b->first + b->npages; i++)
			check_page(eng, b, i, &r);
	for (struct mrange *rg = eng->ranges; rg; rg = rg->next)
		check_range_ptes(eng, rg, &r);
	pthread_mutex_lock(&eng->lock);
	st = eng->st;
	if (st.lane_bytes != st.htod_bytes + st.dtoh_bytes)
		fail(&r, "the link lanes carried %llu bytes, the moves %llu", (unsigned long long)st.lane_bytes,
		     (unsigned long long)(st.htod_bytes + st.dtoh_bytes));
	{
		uint64_t lanes = 0;

		for (unsigned int p = 1; p < eng->nr_procs; p++)
			lanes += eng->procs[p].htod.bytes + eng->procs[p].dtoh.bytes;
		if (lanes != st.lane_bytes)
			fail(&r, "the lanes hold %llu bytes, the counter %llu", (unsigned long long)lanes,
			     (unsigned long long)st.lane_bytes);
	}
	/* Each lane against the pages it carried, counted page by page where
	 * the pages move, not where the transfers are charged. */
	for (unsigned int p = 1; p < eng->nr_procs; p++) {
		const struct proc *d = &eng->procs[p];

		if (d->htod.bytes != d->htod_pages * PAGE || d->dtoh.bytes != d->dtoh_pages * PAGE)
			fail(&r, "processor %u: lanes carried %llu / %llu bytes (HtoD / DtoH), for %llu / %llu pages",
			     p, (unsigned long long)d->htod.bytes, (unsigned long long)d->dtoh.bytes,
			     (unsigned long long)d->htod_pages, (unsigned long long)d->dtoh_pages);
	}
	if (st.far_faults != eng->fault_pages_moved + st.fault_migrate_failed)
		fail(&r, "far faults %llu != pages moved for faults %llu + left behind %llu",
		     (unsigned long long)st.far_faults, (unsigned long long)eng->fault_pages_moved,
		     (unsigned long long)st.fault_migrate_failed);
	for (struct stream *s = eng->streams; s; s = s->next)
		if (s->stalled && s->proc == DMM_PROC_CPU)
			fail(&r, "the CPU stream %u is stalled", s->id);
	pthread_mutex_unlock(&eng->lock);
	pthread_mutex_unlock(&eng->service_lock);
	return r.bad ? -EUCLEAN : 0;
}
