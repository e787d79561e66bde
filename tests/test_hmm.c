/* SPDX-License-Identifier: MIT */
/*
 * dmm_hmm_range_fault (semantics.md §3.13): every row of the walk-outcome
 * table in snapshot mode and with a fault requested, the request
 * arithmetic (default_flags, pfn_flags_mask, REQ_WRITE only with
 * REQ_FAULT), the in-out flags, -EBUSY when the notifier sequence moved
 * (including the sequence moved by the call's own faults, which the caller
 * protocol retries), -EPERM, -EFAULT and -ENOMEM from migrate_to_ram, and
 * the §5.3 REQ_WRITE gap for owned device-private entries.
 *
 * Every call follows the caller protocol: read_begin, then the call with
 * dmm_mmap_read_lock held.
 */
#include <pthread.h>

#include "helpers.h"
#include "testdrv.h"

#define DEV_PAGES 16
#define V DMM_HMM_PFN_VALID
#define W DMM_HMM_PFN_WRITE
#define ERR DMM_HMM_PFN_ERROR
#define RF DMM_HMM_PFN_REQ_FAULT
#define RW_REQ (DMM_HMM_PFN_REQ_FAULT | DMM_HMM_PFN_REQ_WRITE)
#define NPFN 16

/* A minimal mirror subscription: counts invalidations and sets the seq. */
struct msub {
	struct dmm_mmu_interval_notifier sub;
	pthread_mutex_t lock;
	unsigned long n;
};

static bool msub_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			    unsigned long cur_seq)
{
	struct msub *m = (struct msub *)sub;

	(void)r;
	pthread_mutex_lock(&m->lock);
	m->n++;
	dmm_mmu_interval_set_seq(sub, cur_seq);
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops msub_ops = { .invalidate = msub_invalidate };

struct hfx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct testdrv *drv;  /* device private, the mirror's own device */
	struct testdrv *drv2; /* device private, another owner */
	struct testdrv *coh;  /* device coherent */
	struct msub m;
	struct dmm_file *file;
};

static int hfx_setup(void **state)
{
	struct hfx *h = calloc(1, sizeof(*h));

	if (!h)
		return -1;
	h->sys = sys_new(4096);
	if (!h->sys || dmm_mm_create(h->sys, &h->mm) ||
	    testdrv_create(h->sys, DMM_MEMORY_DEVICE_PRIVATE, DEV_PAGES, &h->drv) ||
	    testdrv_create(h->sys, DMM_MEMORY_DEVICE_PRIVATE, DEV_PAGES, &h->drv2) ||
	    testdrv_create(h->sys, DMM_MEMORY_DEVICE_COHERENT, DEV_PAGES, &h->coh)) {
		if (h->sys)
			dmm_system_destroy(h->sys);
		free(h);
		return -1;
	}
	pthread_mutex_init(&h->m.lock, NULL);
	/* The mirror covers a large window around TBASE. */
	if (dmm_mmu_interval_notifier_insert(&h->m.sub, h->mm, TBASE, 256 * PG, &msub_ops)) {
		dmm_system_destroy(h->sys);
		free(h);
		return -1;
	}
	*state = h;
	return 0;
}

static int hfx_teardown(void **state)
{
	struct hfx *h = *state;

	if (h->m.sub.mm)
		dmm_mmu_interval_notifier_remove(&h->m.sub);
	if (h->file)
		dmm_file_put(h->file);
	dmm_system_destroy(h->sys);
	testdrv_free(h->drv);
	testdrv_free(h->drv2);
	testdrv_free(h->coh);
	pthread_mutex_destroy(&h->m.lock);
	free(h);
	return 0;
}

/* One attempt of the caller protocol's fault step. */
static int hmm_once(struct hfx *h, uint64_t start, unsigned long n, uint64_t *pfns, uint64_t dflt,
		    uint64_t mask, void *owner)
{
	struct dmm_hmm_range r = {
		.notifier = &h->m.sub, .start = start, .end = start + n * PG, .hmm_pfns = pfns,
		.default_flags = dflt, .pfn_flags_mask = mask, .dev_private_owner = owner,
	};
	int rc;

	r.notifier_seq = dmm_mmu_interval_read_begin(&h->m.sub);
	dmm_mmap_read_lock(h->mm);
	rc = dmm_hmm_range_fault(&r);
	dmm_mmap_read_unlock(h->mm);
	return rc;
}

/* The protocol's retry loop (the inputs are restored for each attempt):
 * returns the final result; *busy counts the -EBUSY attempts. */
static int hmm_retry(struct hfx *h, uint64_t start, unsigned long n, uint64_t *pfns, uint64_t dflt,
		     uint64_t mask, void *owner, int *busy)
{
	uint64_t in[NPFN];
	int rc;

	assert_true(n <= NPFN);
	memcpy(in, pfns, n * sizeof(*pfns));
	*busy = 0;
	for (int i = 0; i < 10; i++) {
		memcpy(pfns, in, n * sizeof(*pfns));
		rc = hmm_once(h, start, n, pfns, dflt, mask, owner);
		if (rc != -EBUSY)
			return rc;
		(*busy)++;
	}
	return -EBUSY;
}

/* Snapshot mode: no request at all. */
static int snapshot(struct hfx *h, uint64_t start, unsigned long n, uint64_t *pfns, void *owner)
{
	memset(pfns, 0, n * sizeof(*pfns));
	return hmm_once(h, start, n, pfns, 0, 0, owner);
}

static void zero(uint64_t *p, unsigned long n)
{
	memset(p, 0, n * sizeof(*p));
}

/* ------------------------------------------------------------------------ */

static void test_no_vma_is_error_in_snapshot_and_efault_when_faulting(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];
	struct dmm_stats s0;

	MAP_ANON(h->mm, TBASE + 4 * PG, 2);
	FILL(h->mm, TBASE + 4 * PG, 2 * PG, 1);
	s0 = STATS(h->sys);
	OK(snapshot(h, TBASE, 8, p, NULL));
	CHECK_OK(h->sys);
	for (int i = 0; i < 4; i++)
		EQ(p[i], ERR);
	EQ(p[4], PFN(h->mm, TBASE + 4 * PG) | V | W);
	EQ(p[5], PFN(h->mm, TBASE + 5 * PG) | V | W);
	EQ(p[6], ERR);
	EQ(p[7], ERR);
	/* A fault requested anywhere over the hole: -EFAULT. */
	zero(p, 8);
	EXPECT_RC(-EFAULT, hmm_once(h, TBASE, 8, p, RF, 0, NULL));
	zero(p, 8);
	p[7] = RF;
	EXPECT_RC(-EFAULT, hmm_once(h, TBASE, 8, p, 0, RF, NULL));
	/* Requests only on the mapped pages: the hole stays ERROR. */
	zero(p, 8);
	p[4] = RF;
	p[5] = RF;
	OK(hmm_once(h, TBASE, 8, p, 0, RF, NULL));
	EQ(p[0], ERR);
	EQ(p[4], PFN(h->mm, TBASE + 4 * PG) | V | W);
	EQ(p[6], ERR);
	EQ(STAT_DELTA(h->sys, s0, hmm_faults), 0);
	CHECK_OK(h->sys);
}

static void test_prot_none_vma_is_error_in_snapshot_and_efault_when_faulting(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];

	MAP_FIXED(h->mm, TBASE, 2 * PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	MAP_ANON(h->mm, TBASE + 2 * PG, 2);
	FILL(h->mm, TBASE + 2 * PG, 2 * PG, 1);
	OK(snapshot(h, TBASE, 4, p, NULL));
	EQ(p[0], ERR);
	EQ(p[1], ERR);
	EQ(p[2], PFN(h->mm, TBASE + 2 * PG) | V | W);
	zero(p, 4);
	EXPECT_RC(-EFAULT, hmm_once(h, TBASE, 4, p, RF, 0, NULL));
	/* Populated pages whose VMA became PROT_NONE: ERROR too. */
	OK(dmm_mprotect(h->mm, TBASE + 2 * PG, 2 * PG, DMM_PROT_NONE));
	OK(snapshot(h, TBASE, 4, p, NULL));
	for (int i = 0; i < 4; i++)
		EQ(p[i], ERR);
	zero(p, 4);
	p[3] = RF;
	EXPECT_RC(-EFAULT, hmm_once(h, TBASE, 4, p, 0, RF, NULL));
	CHECK_OK(h->sys);
}

static void test_pte_none_is_0_in_snapshot_and_faulted_on_request(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];
	struct dmm_stats s0;

	MAP_ANON(h->mm, TBASE, 4);
	OK(snapshot(h, TBASE, 4, p, NULL));
	for (int i = 0; i < 4; i++)
		EQ(p[i], 0);
	PTE_NONE(h->mm, TBASE);
	/* REQ_WRITE alone is no request: still a snapshot. */
	for (int i = 0; i < 4; i++)
		p[i] = W;
	OK(hmm_once(h, TBASE, 4, p, 0, RF | W, NULL));
	for (int i = 0; i < 4; i++)
		EQ(p[i], 0);
	PTE_NONE(h->mm, TBASE);

	/* A read fault maps the zero page: valid, not writable. */
	s0 = STATS(h->sys);
	zero(p, 2);
	OK(hmm_once(h, TBASE, 2, p, RF, 0, NULL));
	CHECK_OK(h->sys);
	EQ(p[0], DMM_ZERO_PFN | V);
	EQ(p[1], DMM_ZERO_PFN | V);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_PRESENT);
	TRUE(PTE(h->mm, TBASE).special);
	EQ(STAT_DELTA(h->sys, s0, hmm_faults), 2);

	/* A write fault allocates a page: valid and writable, first time. */
	zero(p, 2);
	OK(hmm_once(h, TBASE + 2 * PG, 2, p, RW_REQ, 0, NULL));
	CHECK_OK(h->sys);
	for (int i = 0; i < 2; i++) {
		uint64_t pfn = PFN(h->mm, PAGE_ADDR(TBASE, 2 + i));

		NE(pfn, DMM_ZERO_PFN);
		EQ(p[i], pfn | V | W);
		EQ(PAGE(h->sys, pfn).location, DMM_LOC_SYSTEM);
		FLAGS(PAGE(h->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
		EQ(PTE(h->mm, PAGE_ADDR(TBASE, 2 + i)).write, 1);
	}
	EQ(STAT_DELTA(h->sys, s0, hmm_faults), 4);
	VERIFY_ZERO(h->mm, TBASE, 4 * PG);
	EQ(h->m.n, 0);
	CHECK_OK(h->sys);
}

static void test_present_pages_report_their_pfn_and_write_bit(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN], pfn0, pfn1;
	struct dmm_mm *child;
	int busy;

	MAP_ANON(h->mm, TBASE, 2);
	FILL(h->mm, TBASE, 2 * PG, 1);
	pfn0 = PFN(h->mm, TBASE);
	pfn1 = PFN(h->mm, TBASE + PG);
	OK(snapshot(h, TBASE, 2, p, NULL));
	EQ(p[0], pfn0 | V | W);
	EQ(p[1], pfn1 | V | W);
	/* A read-only VMA: valid without WRITE. */
	OK(dmm_mprotect(h->mm, TBASE + PG, PG, DMM_PROT_READ));
	OK(snapshot(h, TBASE, 2, p, NULL));
	EQ(p[0], pfn0 | V | W);
	EQ(p[1], pfn1 | V);
	zero(p, 2);
	OK(hmm_once(h, TBASE, 2, p, RF, 0, NULL));
	EQ(p[1], pfn1 | V);
	OK(dmm_mprotect(h->mm, TBASE + PG, PG, RW));

	/* After fork both pages are read-only shared. */
	OK(dmm_fork(h->mm, &child));
	OK(snapshot(h, TBASE, 2, p, NULL));
	EQ(p[0], pfn0 | V);
	EQ(p[1], pfn1 | V);
	/* REQ_WRITE breaks CoW; the CLEAR it fires moves the sequence, so the
	 * first attempt says -EBUSY and the retry sees the new page. */
	zero(p, 1);
	p[0] = RW_REQ;
	EXPECT_RC(-EBUSY, hmm_once(h, TBASE, 1, p, 0, RW_REQ, NULL));
	CHECK_OK(h->sys);
	NE(PFN(h->mm, TBASE), pfn0);
	p[0] = RW_REQ;
	OK(hmm_retry(h, TBASE, 1, p, 0, RW_REQ, NULL, &busy));
	EQ(busy, 0);
	EQ(p[0], PFN(h->mm, TBASE) | V | W);
	EQ(PFN(child, TBASE), pfn0);
	VERIFY(h->mm, TBASE, 2 * PG, 1);
	VERIFY(child, TBASE, 2 * PG, 1);
	dmm_mm_exit(child);
	CHECK_OK(h->sys);
}

static void test_zero_page_reports_the_zero_pfn_and_write_request_cows(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];
	struct dmm_stats s0;
	int busy;

	MAP_ANON(h->mm, TBASE, 1);
	EQ(LOAD(h->mm, TBASE), 0);
	OK(snapshot(h, TBASE, 1, p, NULL));
	EQ(p[0], DMM_ZERO_PFN | V);
	zero(p, 1);
	OK(hmm_once(h, TBASE, 1, p, RF, 0, NULL));
	EQ(p[0], DMM_ZERO_PFN | V);
	s0 = STATS(h->sys);
	p[0] = 0;
	OK(hmm_retry(h, TBASE, 1, p, RW_REQ, 0, NULL, &busy));
	CHECK_OK(h->sys);
	EQ(busy, 1); /* the CoW of the zero page fired CLEAR */
	EQ(STAT_DELTA(h->sys, s0, cow_copy), 1);
	NE(PFN(h->mm, TBASE), DMM_ZERO_PFN);
	EQ(p[0], PFN(h->mm, TBASE) | V | W);
	VERIFY_ZERO(h->mm, TBASE, PG);
}

static void test_owned_device_private_is_reported_and_never_faulted(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN], dev;
	unsigned long moved;
	struct dmm_stats s0;
	struct dmm_mm *child;

	MAP_ANON(h->mm, TBASE, 2);
	FILL(h->mm, TBASE, 2 * PG, 5);
	OK(testdrv_migrate_to_dev(h->drv, h->mm, TBASE, 2, &moved));
	EQ(moved, 2);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	dev = PTE(h->mm, TBASE).pfn;
	s0 = STATS(h->sys);
	OK(snapshot(h, TBASE, 1, p, h->drv));
	EQ(p[0], dev | V | W);
	zero(p, 1);
	OK(hmm_once(h, TBASE, 1, p, RW_REQ, 0, h->drv));
	EQ(p[0], dev | V | W);
	EQ(atomic_load(&h->drv->faults), 0);

	/* Any mprotect downgrades the entry to read (§3.5) ... */
	OK(dmm_mprotect(h->mm, TBASE, PG, DMM_PROT_READ));
	OK(dmm_mprotect(h->mm, TBASE, PG, RW));
	EQ(PTE(h->mm, TBASE + PG).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_READ);
	/* ... and REQ_WRITE then returns 0 without WRITE: the §5.3 gap. */
	zero(p, 1);
	OK(hmm_once(h, TBASE, 1, p, RW_REQ, 0, h->drv));
	EQ(p[0], dev | V);
	EQ(atomic_load(&h->drv->faults), 0);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_READ);

	/* The same after fork, for the other page. */
	OK(dmm_fork(h->mm, &child));
	EQ(PTE(h->mm, TBASE + PG).kind, DMM_PTE_DEVICE_PRIVATE_READ);
	zero(p, 1);
	OK(hmm_once(h, TBASE + PG, 1, p, RW_REQ, 0, h->drv));
	EQ(p[0], PTE(h->mm, TBASE + PG).pfn | V);
	EQ(atomic_load(&h->drv->faults), 0);
	EQ(STAT_DELTA(h->sys, s0, hmm_faults), 0);
	CHECK_OK(h->sys);
	dmm_mm_exit(child);
	VERIFY(h->mm, TBASE, 2 * PG, 5);
	CHECK_OK(h->sys);
}

static void test_other_owners_device_private_is_0_or_migrated_back(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN], dev;
	unsigned long moved;
	int busy;

	MAP_ANON(h->mm, TBASE, 2);
	FILL(h->mm, TBASE, 2 * PG, 6);
	OK(testdrv_migrate_to_dev(h->drv, h->mm, TBASE, 2, &moved));
	EQ(moved, 2);
	dev = PTE(h->mm, TBASE).pfn;
	/* A NULL owner never matches; nor does another driver. */
	OK(snapshot(h, TBASE, 2, p, NULL));
	EQ(p[0], 0);
	EQ(p[1], 0);
	OK(snapshot(h, TBASE, 2, p, h->drv2));
	EQ(p[0], 0);
	EQ(p[1], 0);
	EQ(atomic_load(&h->drv->faults), 0);

	/* A requested fault calls the owning driver's migrate_to_ram; its
	 * MIGRATE invalidation makes the attempt -EBUSY; the retry sees RAM. */
	zero(p, 1);
	EXPECT_RC(-EBUSY, hmm_once(h, TBASE, 1, p, RF, 0, h->drv2));
	EQ(atomic_load(&h->drv->faults), 1);
	EQ(atomic_load(&h->drv2->faults), 0);
	CHECK_OK(h->sys);
	zero(p, 1);
	OK(hmm_retry(h, TBASE, 1, p, RF, 0, h->drv2, &busy));
	EQ(busy, 0);
	EQ(p[0], PFN(h->mm, TBASE) | V | W);
	EQ(PAGE(h->sys, PFN(h->mm, TBASE)).location, DMM_LOC_SYSTEM);
	NE(PFN(h->mm, TBASE), dev);
	/* The other page, with NULL owner and a write request. */
	zero(p, 1);
	OK(hmm_retry(h, TBASE + PG, 1, p, RW_REQ, 0, NULL, &busy));
	EQ(busy, 1);
	EQ(p[0], PFN(h->mm, TBASE + PG) | V | W);
	EQ(atomic_load(&h->drv->faults), 2);
	EQ(testdrv_used(h->drv), 0);
	VERIFY(h->mm, TBASE, 2 * PG, 6);
	CHECK_OK(h->sys);
}

static void test_device_coherent_pages_are_present_for_any_owner(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN], c;
	unsigned long moved;

	MAP_ANON(h->mm, TBASE, 1);
	FILL(h->mm, TBASE, PG, 7);
	OK(testdrv_migrate_to_dev(h->coh, h->mm, TBASE, 1, &moved));
	EQ(moved, 1);
	c = PFN(h->mm, TBASE);
	EQ(PAGE(h->sys, c).location, DMM_LOC_DEVICE_COHERENT);
	OK(snapshot(h, TBASE, 1, p, NULL));
	EQ(p[0], c | V | W);
	zero(p, 1);
	OK(hmm_once(h, TBASE, 1, p, RW_REQ, 0, h->drv));
	EQ(p[0], c | V | W);
	EQ(PFN(h->mm, TBASE), c);
	CHECK_OK(h->sys);
}

static void test_device_exclusive_is_0_in_snapshot_and_restored_by_a_fault(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN], pfn;
	struct dmm_stats s0;
	int busy, r;

	MAP_ANON(h->mm, TBASE, 1);
	FILL(h->mm, TBASE, PG, 8);
	dmm_mmap_read_lock(h->mm);
	r = dmm_make_device_exclusive(h->mm, TBASE, h, &pfn);
	dmm_mmap_read_unlock(h->mm);
	OK(r);
	dmm_unlock_page(h->sys, pfn);
	dmm_put_page(h->sys, pfn);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	OK(snapshot(h, TBASE, 1, p, h));
	EQ(p[0], 0);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	s0 = STATS(h->sys);
	zero(p, 1);
	OK(hmm_retry(h, TBASE, 1, p, RF, 0, h, &busy));
	CHECK_OK(h->sys);
	EQ(busy, 1); /* the restore fired CLEAR */
	EQ(STAT_DELTA(h->sys, s0, exclusive_restored), 1);
	EQ(p[0], pfn | V | W);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(h->mm, TBASE).pfn, pfn);
	EQ(PTE(h->mm, TBASE).young, 0); /* restored "old" */
	VERIFY(h->mm, TBASE, PG, 8);
}

static void test_write_request_on_a_read_only_vma_is_eperm(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];

	MAP_FIXED(h->mm, TBASE, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EQ(LOAD(h->mm, TBASE + PG), 0);
	zero(p, 2);
	EXPECT_RC(-EPERM, hmm_once(h, TBASE, 1, p, RW_REQ, 0, NULL));	  /* a hole */
	EXPECT_RC(-EPERM, hmm_once(h, TBASE + PG, 1, p, RW_REQ, 0, NULL)); /* the zero page */
	PTE_NONE(h->mm, TBASE);
	OK(hmm_once(h, TBASE, 2, p, RF, 0, NULL));
	EQ(p[0], DMM_ZERO_PFN | V);
	EQ(p[1], DMM_ZERO_PFN | V);
	CHECK_OK(h->sys);
}

static void test_default_flags_and_pfn_flags_mask_combine_per_page(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];

	MAP_ANON(h->mm, TBASE, 8);
	/* Prefault mode: mask 0 ignores whatever the words hold. */
	for (int i = 0; i < 2; i++)
		p[i] = W | 0x1234 | ERR;
	OK(hmm_once(h, TBASE, 2, p, RF, 0, NULL));
	EQ(p[0], DMM_ZERO_PFN | V);
	EQ(p[1], DMM_ZERO_PFN | V);

	/* Per-page requests: mask = REQ_FAULT|REQ_WRITE, default 0. */
	p[0] = RF;
	p[1] = 0;
	p[2] = RW_REQ;
	p[3] = W; /* REQ_WRITE without REQ_FAULT: nothing */
	OK(hmm_once(h, TBASE + 2 * PG, 4, p, 0, RW_REQ, NULL));
	EQ(p[0], DMM_ZERO_PFN | V);
	EQ(p[1], 0);
	EQ(p[2], PFN(h->mm, TBASE + 4 * PG) | V | W);
	EQ(p[3], 0);
	PTE_NONE(h->mm, TBASE + 3 * PG);
	PTE_NONE(h->mm, TBASE + 5 * PG);

	/* default REQ_FAULT, per-page REQ_WRITE through a mask of WRITE only. */
	p[0] = W;
	p[1] = RF; /* masked out, but the default asks for it anyway */
	OK(hmm_once(h, TBASE + 6 * PG, 2, p, RF, W, NULL));
	EQ(p[0], PFN(h->mm, TBASE + 6 * PG) | V | W);
	EQ(p[1], DMM_ZERO_PFN | V);

	/* A mask of every bit: only the request bits of the input count. */
	p[0] = RF | 0x4242;
	OK(hmm_once(h, TBASE + 3 * PG, 1, p, 0, ~0ULL, NULL));
	EQ(p[0], DMM_ZERO_PFN | V);
	CHECK_OK(h->sys);
}

static void test_in_out_flags_are_preserved_and_the_rest_overwritten(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];
	const uint64_t order = 3ULL << DMM_HMM_PFN_ORDER_SHIFT;

	MAP_ANON(h->mm, TBASE, 3);
	FILL(h->mm, TBASE, PG, 1);
	p[0] = DMM_HMM_PFN_DMA_MAPPED | DMM_HMM_PFN_P2PDMA | order | 0x777;
	p[1] = DMM_HMM_PFN_P2PDMA_BUS | ERR;
	p[2] = DMM_HMM_PFN_DMA_MAPPED | RF;
	p[3] = DMM_HMM_PFN_DMA_MAPPED | V | W | 0x999; /* no VMA */
	OK(hmm_once(h, TBASE, 4, p, 0, 0, NULL));
	EQ(p[0], PFN(h->mm, TBASE) | V | W | DMM_HMM_PFN_DMA_MAPPED | DMM_HMM_PFN_P2PDMA);
	EQ(p[1], DMM_HMM_PFN_P2PDMA_BUS);
	EQ(p[2], DMM_HMM_PFN_DMA_MAPPED);
	EQ(p[3], DMM_HMM_PFN_DMA_MAPPED | ERR);
	EQ(dmm_hmm_pfn_to_pfn(p[0]), PFN(h->mm, TBASE));
	EQ(dmm_hmm_pfn_to_map_order(p[0]), 0);
	/* With faults requested. */
	p[0] = DMM_HMM_PFN_P2PDMA_BUS;
	p[1] = DMM_HMM_PFN_DMA_MAPPED | order;
	OK(hmm_once(h, TBASE + PG, 2, p, RW_REQ, 0, NULL));
	EQ(p[0], PFN(h->mm, TBASE + PG) | V | W | DMM_HMM_PFN_P2PDMA_BUS);
	EQ(p[1], PFN(h->mm, TBASE + 2 * PG) | V | W | DMM_HMM_PFN_DMA_MAPPED);
	CHECK_OK(h->sys);
}

static void test_moved_sequence_is_ebusy_and_leaves_the_inputs(void **state)
{
	struct hfx *h = *state;
	struct dmm_hmm_range r = { 0 };
	uint64_t p[NPFN];
	int rc;

	MAP_ANON(h->mm, TBASE, 4);
	FILL(h->mm, TBASE, 4 * PG, 1);
	MAP_ANON(h->mm, TBASE + 512 * PG, 1); /* outside the subscription */
	FILL(h->mm, TBASE + 512 * PG, PG, 1);
	for (int i = 0; i < 4; i++)
		p[i] = 0x100 + (uint64_t)i;
	r.notifier = &h->m.sub;
	r.start = TBASE;
	r.end = TBASE + 4 * PG;
	r.hmm_pfns = p;
	r.default_flags = RF;
	r.notifier_seq = dmm_mmu_interval_read_begin(&h->m.sub);
	OK(dmm_munmap(h->mm, TBASE + 3 * PG, PG));
	dmm_mmap_read_lock(h->mm);
	rc = dmm_hmm_range_fault(&r);
	dmm_mmap_read_unlock(h->mm);
	EXPECT_RC(-EBUSY, rc);
	for (int i = 0; i < 4; i++)
		EQ(p[i], 0x100 + (uint64_t)i);
	/* An invalidation that doesn't touch the subscription: no -EBUSY. */
	r.end = TBASE + 3 * PG;
	r.notifier_seq = dmm_mmu_interval_read_begin(&h->m.sub);
	OK(dmm_munmap(h->mm, TBASE + 512 * PG, PG));
	dmm_mmap_read_lock(h->mm);
	rc = dmm_hmm_range_fault(&r);
	dmm_mmap_read_unlock(h->mm);
	OK(rc);
	EQ(p[0], PFN(h->mm, TBASE) | V | W);
	TRUE(!dmm_mmu_interval_read_retry(&h->m.sub, r.notifier_seq));
	CHECK_OK(h->sys);
}

static void test_invalid_arguments_are_einval(void **state)
{
	struct hfx *h = *state;
	struct dmm_mmu_interval_notifier gone;
	struct dmm_hmm_range r;
	uint64_t p[NPFN] = { 0 };
	int rc;

	MAP_ANON(h->mm, TBASE, 4);
	EXPECT_RC(-EINVAL, dmm_hmm_range_fault(NULL));
#define TRY(field, value)                                                                  \
	do {                                                                               \
		memset(&r, 0, sizeof(r));                                                  \
		r.notifier = &h->m.sub;                                                    \
		r.start = TBASE;                                                           \
		r.end = TBASE + 2 * PG;                                                    \
		r.hmm_pfns = p;                                                            \
		r.field = value;                                                           \
		r.notifier_seq = dmm_mmu_interval_read_begin(&h->m.sub);                   \
		dmm_mmap_read_lock(h->mm);                                                 \
		rc = dmm_hmm_range_fault(&r);                                              \
		dmm_mmap_read_unlock(h->mm);                                               \
		EXPECT_RC(-EINVAL, rc);                                                    \
	} while (0)

	TRY(notifier, NULL);
	TRY(hmm_pfns, NULL);
	TRY(start, TBASE + 1);
	TRY(end, TBASE + PG + 8);
	TRY(end, TBASE);
	TRY(end, TBASE - PG);
	TRY(end, DMM_TASK_SIZE + PG);
#undef TRY
	/* A subscription that was removed. */
	OK(dmm_mmu_interval_notifier_insert(&gone, h->mm, TBASE, PG, &msub_ops));
	dmm_mmu_interval_notifier_remove(&gone);
	memset(&r, 0, sizeof(r));
	r.notifier = &gone;
	r.start = TBASE;
	r.end = TBASE + PG;
	r.hmm_pfns = p;
	dmm_mmap_read_lock(h->mm);
	rc = dmm_hmm_range_fault(&r);
	dmm_mmap_read_unlock(h->mm);
	EXPECT_RC(-EINVAL, rc);
	PTE_NONE(h->mm, TBASE);
	CHECK_OK(h->sys);
}

static void test_migrate_to_ram_sigbus_is_efault_and_oom_is_enomem(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];
	unsigned long moved;
	int busy;

	MAP_ANON(h->mm, TBASE, 1);
	FILL(h->mm, TBASE, PG, 9);
	OK(testdrv_migrate_to_dev(h->drv, h->mm, TBASE, 1, &moved));
	EQ(moved, 1);
	atomic_store(&h->drv->fault_result, DMM_VM_FAULT_SIGBUS);
	zero(p, 1);
	EXPECT_RC(-EFAULT, hmm_once(h, TBASE, 1, p, RF, 0, NULL));
	EQ(atomic_load(&h->drv->faults), 1);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	CHECK_OK(h->sys);
	atomic_store(&h->drv->fault_result, DMM_VM_FAULT_OOM);
	zero(p, 1);
	EXPECT_RC(-ENOMEM, hmm_once(h, TBASE, 1, p, RF, 0, NULL));
	EQ(atomic_load(&h->drv->faults), 2);
	EQ(PTE(h->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	CHECK_OK(h->sys);
	/* Snapshots never call the driver. */
	OK(snapshot(h, TBASE, 1, p, NULL));
	EQ(p[0], 0);
	EQ(atomic_load(&h->drv->faults), 2);
	atomic_store(&h->drv->fault_result, 0);
	zero(p, 1);
	OK(hmm_retry(h, TBASE, 1, p, RF, 0, NULL, &busy));
	EQ(busy, 1);
	EQ(p[0], PFN(h->mm, TBASE) | V | W);
	VERIFY(h->mm, TBASE, PG, 9);
	CHECK_OK(h->sys);
}

static void test_shared_file_pages_are_valid_read_only_until_a_write_request(void **state)
{
	struct hfx *h = *state;
	uint64_t p[NPFN];
	int busy;

	OK(dmm_file_create(h->sys, 2, &h->file));
	FILE_FILL(h->file, 0, 2 * PG, 11);
	MAP_FIXED(h->mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, h->file, 0);
	zero(p, 2);
	OK(hmm_once(h, TBASE, 2, p, RF, 0, NULL));
	/* A regular file wants dirty tracking: read faults map read-only. */
	EQ(p[0], PFN(h->mm, TBASE) | V);
	FLAGS(PAGE(h->sys, PFN(h->mm, TBASE)).flags, DMM_PAGE_PAGECACHE, DMM_PAGE_ANON);
	/* A write request makes the same page writable: an upgrade, no
	 * invalidation, so the first attempt succeeds. */
	zero(p, 2);
	OK(hmm_retry(h, TBASE, 2, p, RW_REQ, 0, NULL, &busy));
	EQ(busy, 0);
	EQ(p[0], PFN(h->mm, TBASE) | V | W);
	EQ(p[1], PFN(h->mm, TBASE + PG) | V | W);
	FLAGS(PAGE(h->sys, PFN(h->mm, TBASE)).flags, DMM_PAGE_PAGECACHE | DMM_PAGE_DIRTY, DMM_PAGE_ANON);
	EQ(h->m.n, 0);
	CHECK_OK(h->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, hfx_setup, hfx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_no_vma_is_error_in_snapshot_and_efault_when_faulting),
		T(test_prot_none_vma_is_error_in_snapshot_and_efault_when_faulting),
		T(test_pte_none_is_0_in_snapshot_and_faulted_on_request),
		T(test_present_pages_report_their_pfn_and_write_bit),
		T(test_zero_page_reports_the_zero_pfn_and_write_request_cows),
		T(test_owned_device_private_is_reported_and_never_faulted),
		T(test_other_owners_device_private_is_0_or_migrated_back),
		T(test_device_coherent_pages_are_present_for_any_owner),
		T(test_device_exclusive_is_0_in_snapshot_and_restored_by_a_fault),
		T(test_write_request_on_a_read_only_vma_is_eperm),
		T(test_default_flags_and_pfn_flags_mask_combine_per_page),
		T(test_in_out_flags_are_preserved_and_the_rest_overwritten),
		T(test_moved_sequence_is_ebusy_and_leaves_the_inputs),
		T(test_invalid_arguments_are_einval),
		T(test_migrate_to_ram_sigbus_is_efault_and_oom_is_enomem),
		T(test_shared_file_pages_are_valid_read_only_until_a_write_request),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
