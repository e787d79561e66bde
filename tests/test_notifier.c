/* SPDX-License-Identifier: MIT */
/*
 * MMU interval notifiers (semantics.md §3.14): insert/remove argument
 * rules, the even/odd sequence protocol (read_begin / read_retry /
 * check_retry / set_seq), which operation fires which event over which
 * range with which owner (the §3.14 table, pitfall 12 for exit), that
 * access-granting operations fire nothing, the OOM reaper's non-blockable
 * invalidations, and the synchronisation of remove() and insert() with an
 * invalidation that is running, including one that overlaps no
 * subscription (held open in the middle of its zap by a device page's
 * folio_free), with a recording subscription and with the mirror driver.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "mirror.h"
#include "ptab.h"
#include "testdrv.h"

/* ------------------------------------------------------------------------ */
/* A recording subscription                                                  */

#define MAX_EV 32
#define NREC 3
#define DEV_PAGES 16

struct ev {
	enum dmm_mmu_notifier_event event;
	uint64_t start, end;
	void *owner;
	unsigned int flags;
	unsigned long cur_seq;
	struct dmm_mm *mm;
	bool refused;
};

struct rec {
	struct dmm_mmu_interval_notifier sub; /* first: the callback casts back */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
	struct ev ev[MAX_EV];
	bool refuse;   /* refuse non-blockable invalidations */
	bool noseq;    /* do not call set_seq */
	/* Blocking: the callback waits until release is set. */
	atomic_bool block, entered, release, returned;
};

static bool rec_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			   unsigned long cur_seq)
{
	struct rec *rc = (struct rec *)sub;
	bool ok = true;

	pthread_mutex_lock(&rc->lock);
	if (rc->n < MAX_EV) {
		struct ev *e = &rc->ev[rc->n];

		e->event = r->event;
		e->start = r->start;
		e->end = r->end;
		e->owner = r->owner;
		e->flags = r->flags;
		e->cur_seq = cur_seq;
		e->mm = r->mm;
		e->refused = rc->refuse && !(r->flags & DMM_MMU_NOTIFIER_RANGE_BLOCKABLE);
		ok = !e->refused;
	}
	rc->n++;
	if (ok && !rc->noseq)
		dmm_mmu_interval_set_seq(sub, cur_seq);
	if (atomic_load(&rc->block)) {
		atomic_store(&rc->entered, true);
		pthread_cond_broadcast(&rc->cond);
		while (!atomic_load(&rc->release))
			pthread_cond_wait(&rc->cond, &rc->lock);
		atomic_store(&rc->returned, true);
	}
	pthread_mutex_unlock(&rc->lock);
	return ok;
}

static const struct dmm_mmu_interval_notifier_ops rec_ops = { .invalidate = rec_invalidate };

static void rec_init(struct rec *rc)
{
	memset(rc, 0, sizeof(*rc));
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->cond, NULL);
}

static void rec_reset(struct rec *rc)
{
	pthread_mutex_lock(&rc->lock);
	rc->n = 0;
	pthread_mutex_unlock(&rc->lock);
}

static int rec_count(struct rec *rc)
{
	int n;

	pthread_mutex_lock(&rc->lock);
	n = rc->n;
	pthread_mutex_unlock(&rc->lock);
	return n;
}

static void rec_release(struct rec *rc)
{
	pthread_mutex_lock(&rc->lock);
	atomic_store(&rc->release, true);
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
}

static void rec_wait_entered(struct rec *rc)
{
	pthread_mutex_lock(&rc->lock);
	while (!atomic_load(&rc->entered))
		pthread_cond_wait(&rc->cond, &rc->lock);
	pthread_mutex_unlock(&rc->lock);
}

static const char *ev_name(enum dmm_mmu_notifier_event e)
{
	static const char *const n[] = { "UNMAP", "CLEAR", "PROTECTION_VMA", "PROTECTION_PAGE",
					 "SOFT_DIRTY", "RELEASE", "MIGRATE", "EXCLUSIVE" };

	return (unsigned int)e < sizeof(n) / sizeof(n[0]) ? n[e] : "?";
}

static void dump_events(struct rec *rc)
{
	for (int i = 0; i < rc->n && i < MAX_EV; i++)
		print_error("  event %d: %s [%#" PRIx64 ", %#" PRIx64 ") owner %p flags %#x seq %lu\n", i,
			    ev_name(rc->ev[i].event), rc->ev[i].start, rc->ev[i].end, rc->ev[i].owner,
			    rc->ev[i].flags, rc->ev[i].cur_seq);
}

/* Exactly n events were recorded. */
#define NEV(rc, expected)                                                                  \
	do {                                                                               \
		int n_ = rec_count(rc);                                                    \
		if (n_ != (expected)) {                                                    \
			dump_events(rc);                                                   \
			h_fail(__FILE__, __LINE__, "%s recorded %d invalidations, expected %d", \
			       #rc, n_, (int)(expected));                                  \
		}                                                                          \
	} while (0)

/* Event i is (event, [start, end), owner), blockable. */
static void ev_at(const char *file, int line, struct rec *rc, int i, enum dmm_mmu_notifier_event event,
		  uint64_t start, uint64_t end, void *owner)
{
	const struct ev *e = &rc->ev[i];

	if (i >= rc->n) {
		dump_events(rc);
		h_fail(file, line, "no event %d", i);
	}
	if (e->event != event || e->start != start || e->end != end || e->owner != owner ||
	    !(e->flags & DMM_MMU_NOTIFIER_RANGE_BLOCKABLE) || !(e->cur_seq & 1)) {
		dump_events(rc);
		h_fail(file, line,
		       "event %d is %s [%#" PRIx64 ", %#" PRIx64 ") owner %p flags %#x seq %lu, expected %s [%#" PRIx64
		       ", %#" PRIx64 ") owner %p, blockable, odd seq",
		       i, ev_name(e->event), e->start, e->end, e->owner, e->flags, e->cur_seq, ev_name(event),
		       start, end, owner);
	}
}
#define EV(rc, i, event, start, end, owner) ev_at(__FILE__, __LINE__, rc, i, event, start, end, owner)

/* ------------------------------------------------------------------------ */
/* Fixture: a system, an mm, a device-private testdrv, NREC recorders        */

struct nfx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct testdrv *drv;
	struct rec rec[NREC];
	/* A test's zap held in folio_free (hold_a_zap_open), and its mirror
	 * device: a failing test leaves them to the teardown. */
	pthread_t held;
	bool held_started;
	int held_r;
	atomic_bool held_done;
	struct mirror_device *mdev;
};

static int nfx_setup(void **state)
{
	struct nfx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->sys = sys_new(4096);
	if (!f->sys || dmm_mm_create(f->sys, &f->mm) ||
	    testdrv_create(f->sys, DMM_MEMORY_DEVICE_PRIVATE, DEV_PAGES, &f->drv)) {
		if (f->sys)
			dmm_system_destroy(f->sys);
		free(f);
		return -1;
	}
	for (int i = 0; i < NREC; i++)
		rec_init(&f->rec[i]);
	*state = f;
	return 0;
}

static int nfx_teardown(void **state)
{
	struct nfx *f = *state;

	testdrv_release_free(f->drv);
	if (f->held_started)
		pthread_join(f->held, NULL);
	mirror_device_destroy(f->mdev);
	for (int i = 0; i < NREC; i++) {
		rec_release(&f->rec[i]);
		if (f->rec[i].sub.mm)
			dmm_mmu_interval_notifier_remove(&f->rec[i].sub);
	}
	dmm_system_destroy(f->sys);
	testdrv_free(f->drv);
	for (int i = 0; i < NREC; i++) {
		pthread_mutex_destroy(&f->rec[i].lock);
		pthread_cond_destroy(&f->rec[i].cond);
	}
	free(f);
	return 0;
}

#define SUB(f, i, mm, start, npages) \
	OK(dmm_mmu_interval_notifier_insert(&(f)->rec[i].sub, mm, start, (uint64_t)(npages) * PG, &rec_ops))

static struct dmm_notifier_stats nstats(struct dmm_mm *mm)
{
	struct dmm_notifier_stats s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(dmm_mm_notifier_stats(mm, &s), 0);
	return s;
}

static void mmap_locked_exclusive(struct dmm_mm *mm, uint64_t addr, void *owner, uint64_t *pfn)
{
	int r;

	dmm_mmap_read_lock(mm);
	r = dmm_make_device_exclusive(mm, addr, owner, pfn);
	dmm_mmap_read_unlock(mm);
	OK(r);
	dmm_unlock_page(dmm_mm_system(mm), *pfn);
	dmm_put_page(dmm_mm_system(mm), *pfn);
}

/* ------------------------------------------------------------------------ */
/* insert / remove arguments                                                 */

static void test_insert_rejects_null_arguments_and_an_exited_mm(void **state)
{
	struct nfx *f = *state;
	static const struct dmm_mmu_interval_notifier_ops no_cb = { .invalidate = NULL };
	struct dmm_mm *mm2;

	EXPECT_RC(-EINVAL, dmm_mmu_interval_notifier_insert(NULL, f->mm, TBASE, PG, &rec_ops));
	EXPECT_RC(-EINVAL, dmm_mmu_interval_notifier_insert(&f->rec[0].sub, NULL, TBASE, PG, &rec_ops));
	EXPECT_RC(-EINVAL, dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, TBASE, PG, NULL));
	EXPECT_RC(-EINVAL, dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, TBASE, PG, &no_cb));
	CHECK_OK(f->sys);

	/* An mm that exited while a subscription kept its structure alive. */
	OK(dmm_mm_create(f->sys, &mm2));
	SUB(f, 0, mm2, TBASE, 4);
	dmm_mm_exit(mm2);
	CHECK_OK(f->sys);
	/* The exit told the subscription: RELEASE over everything. */
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_RELEASE, 0, UINT64_MAX, NULL);
	EXPECT_RC(-EINVAL, dmm_mmu_interval_notifier_insert(&f->rec[1].sub, mm2, TBASE, PG, &rec_ops));
	dmm_mmu_interval_notifier_remove(&f->rec[0].sub); /* frees mm2 (ASan: no leak) */
	EQ(f->rec[0].sub.mm, 0);
	CHECK_OK(f->sys);
}

static void test_insert_rejects_empty_and_overflowing_ranges(void **state)
{
	struct nfx *f = *state;

	EXPECT_RC(-EOVERFLOW, dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, TBASE, 0, &rec_ops));
	EXPECT_RC(-EOVERFLOW, dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, UINT64_MAX - PG + 1,
							      2 * PG, &rec_ops));
	EXPECT_RC(-EOVERFLOW, dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, 1, UINT64_MAX, &rec_ops));
	EXPECT_RC(-EOVERFLOW, dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, PG, UINT64_MAX - PG + 1,
							      &rec_ops));
	CHECK_OK(f->sys);
	/* The largest legal range: [0, UINT64_MAX - 1]. */
	OK(dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, 0, UINT64_MAX, &rec_ops));
	CHECK_OK(f->sys);
	MAP_ANON(f->mm, TBASE, 1);
	OK(dmm_munmap(f->mm, TBASE, PG));
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_UNMAP, TBASE, TBASE + PG, NULL);
	dmm_mmu_interval_notifier_remove(&f->rec[0].sub);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* The sequence protocol                                                     */

static void test_sequence_starts_at_two_and_moves_by_two_per_invalidation(void **state)
{
	struct nfx *f = *state;
	struct dmm_notifier_stats s = nstats(f->mm);
	struct rec *a = &f->rec[0];
	unsigned long seq;

	EQ(s.invalidate_seq, 2);
	EQ(s.starts, 0);
	EQ(s.ends, 0);
	EQ(s.refused, 0);
	EXPECT_RC(-EINVAL, dmm_mm_notifier_stats(NULL, &s));
	EXPECT_RC(-EINVAL, dmm_mm_notifier_stats(f->mm, NULL));

	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 8);
	CHECK_OK(f->sys);
	/* A new subscription's seq is the mm's minus one: odd. */
	seq = dmm_mmu_interval_read_begin(&a->sub);
	EQ(seq, 1);
	TRUE(!dmm_mmu_interval_read_retry(&a->sub, seq));
	TRUE(!dmm_mmu_interval_check_retry(&a->sub, seq));
	EQ(nstats(f->mm).invalidate_seq, 2);

	/* An overlapping invalidation: the callback sees the odd seq 3;
	 * afterwards the mm is at 4 and the read side must retry. */
	OK(dmm_munmap(f->mm, TBASE, PG));
	CHECK_OK(f->sys);
	NEV(a, 1);
	EV(a, 0, DMM_MMU_NOTIFY_UNMAP, TBASE, TBASE + PG, NULL);
	EQ(a->ev[0].cur_seq, 3);
	s = nstats(f->mm);
	EQ(s.invalidate_seq, 4);
	EQ(s.starts, 1);
	EQ(s.ends, 1);
	TRUE(dmm_mmu_interval_read_retry(&a->sub, seq));
	TRUE(dmm_mmu_interval_check_retry(&a->sub, seq));
	seq = dmm_mmu_interval_read_begin(&a->sub);
	EQ(seq, 3);
	TRUE(!dmm_mmu_interval_read_retry(&a->sub, seq));

	/* An invalidation that overlaps no subscription leaves the seq alone
	 * (but still counts as a start and an end). */
	MAP_ANON(f->mm, TBASE + 32 * PG, 2);
	FILL(f->mm, TBASE + 32 * PG, 2 * PG, 1);
	OK(dmm_munmap(f->mm, TBASE + 32 * PG, 2 * PG));
	CHECK_OK(f->sys);
	NEV(a, 1);
	s = nstats(f->mm);
	EQ(s.invalidate_seq, 4);
	EQ(s.starts, 2);
	EQ(s.ends, 2);
	TRUE(!dmm_mmu_interval_read_retry(&a->sub, seq));

	/* Two more overlapping invalidations: 5, then 7. */
	OK(dmm_madvise(f->mm, TBASE + PG, PG, DMM_MADV_DONTNEED));
	OK(dmm_madvise(f->mm, TBASE + 2 * PG, PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	NEV(a, 3);
	EQ(a->ev[1].cur_seq, 5);
	EQ(a->ev[2].cur_seq, 7);
	EQ(nstats(f->mm).invalidate_seq, 8);
	TRUE(dmm_mmu_interval_read_retry(&a->sub, seq));
	EQ(dmm_mmu_interval_read_begin(&a->sub), 7);

	/* A subscriber that does not set the seq: read_retry can't know. */
	a->noseq = true;
	seq = dmm_mmu_interval_read_begin(&a->sub);
	OK(dmm_madvise(f->mm, TBASE + 3 * PG, PG, DMM_MADV_DONTNEED));
	NEV(a, 4);
	TRUE(!dmm_mmu_interval_read_retry(&a->sub, seq));
	EQ(nstats(f->mm).invalidate_seq, 10);
	dmm_mmu_interval_notifier_remove(&a->sub);
	CHECK_OK(f->sys);
}

static void test_a_subscription_inserted_later_starts_at_seq_minus_one(void **state)
{
	struct nfx *f = *state;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 4);
	OK(dmm_madvise(f->mm, TBASE, PG, DMM_MADV_DONTNEED));
	OK(dmm_madvise(f->mm, TBASE, PG, DMM_MADV_DONTNEED));
	EQ(nstats(f->mm).invalidate_seq, 6);
	SUB(f, 1, f->mm, TBASE, 4);
	EQ(dmm_mmu_interval_read_begin(&f->rec[1].sub), 5);
	EQ(dmm_mmu_interval_read_begin(&f->rec[0].sub), 5);
	/* Both overlap the next invalidation and see the same odd seq. */
	OK(dmm_madvise(f->mm, TBASE + PG, PG, DMM_MADV_DONTNEED));
	NEV(&f->rec[0], 3);
	NEV(&f->rec[1], 1);
	EQ(f->rec[0].ev[2].cur_seq, 7);
	EQ(f->rec[1].ev[0].cur_seq, 7);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_CLEAR, TBASE + PG, TBASE + 2 * PG, NULL);
	dmm_mmu_interval_notifier_remove(&f->rec[0].sub);
	dmm_mmu_interval_notifier_remove(&f->rec[1].sub);
	CHECK_OK(f->sys);
}

static void test_removed_subscription_gets_no_more_callbacks(void **state)
{
	struct nfx *f = *state;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 4);
	SUB(f, 1, f->mm, TBASE, 4);
	dmm_mmu_interval_notifier_remove(&f->rec[0].sub);
	EQ(f->rec[0].sub.mm, 0);
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, TBASE, 4 * PG));
	NEV(&f->rec[0], 0);
	NEV(&f->rec[1], 1);
	/* It can be inserted again, into another range. */
	SUB(f, 0, f->mm, TBASE + 64 * PG, 1);
	MAP_ANON(f->mm, TBASE + 64 * PG, 1);
	FILL(f->mm, TBASE + 64 * PG, PG, 1);
	OK(dmm_munmap(f->mm, TBASE + 64 * PG, PG));
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_UNMAP, TBASE + 64 * PG, TBASE + 65 * PG, NULL);
	NEV(&f->rec[1], 1);
	dmm_mmu_interval_notifier_remove(&f->rec[0].sub);
	dmm_mmu_interval_notifier_remove(&f->rec[1].sub);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* Which operation fires what (§3.14)                                        */

static void test_munmap_fires_unmap_over_the_span(void **state)
{
	struct nfx *f = *state;

	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 8);
	SUB(f, 1, f->mm, TBASE + 100 * PG, 4); /* elsewhere: hears nothing */
	SUB(f, 2, f->mm, TBASE + 5 * PG, 1);   /* overlaps the end of the span */
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, TBASE + 2 * PG, 4 * PG));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_UNMAP, TBASE + 2 * PG, TBASE + 6 * PG, NULL);
	EQ(f->rec[0].ev[0].mm, f->mm);
	NEV(&f->rec[1], 0);
	NEV(&f->rec[2], 1);
	EV(&f->rec[2], 0, DMM_MMU_NOTIFY_UNMAP, TBASE + 2 * PG, TBASE + 6 * PG, NULL);

	/* A subscription ending right before the span, one starting right
	 * after it: [start, last] is inclusive, the range's end exclusive. */
	rec_reset(&f->rec[0]);
	dmm_mmu_interval_notifier_remove(&f->rec[1].sub);
	dmm_mmu_interval_notifier_remove(&f->rec[2].sub);
	rec_reset(&f->rec[1]);
	rec_reset(&f->rec[2]);
	SUB(f, 1, f->mm, TBASE + 6 * PG, 2);
	SUB(f, 2, f->mm, TBASE, 1);
	OK(dmm_munmap(f->mm, TBASE + PG, PG));
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_UNMAP, TBASE + PG, TBASE + 2 * PG, NULL);
	NEV(&f->rec[1], 0);
	NEV(&f->rec[2], 0);
	CHECK_OK(f->sys);
}

static void test_munmap_of_an_unmapped_range_fires_nothing(void **state)
{
	struct nfx *f = *state;
	struct dmm_notifier_stats s0;

	SUB(f, 0, f->mm, TBASE, 8);
	s0 = nstats(f->mm);
	OK(dmm_munmap(f->mm, TBASE, 8 * PG));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 0);
	EQ(nstats(f->mm).starts, s0.starts);
	EQ(nstats(f->mm).invalidate_seq, s0.invalidate_seq);
}

static void test_mmap_fires_nothing_but_map_fixed_over_a_mapping_fires_unmap(void **state)
{
	struct nfx *f = *state;

	SUB(f, 0, f->mm, TBASE, 8);
	MAP_ANON(f->mm, TBASE, 8);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 0);
	FILL(f->mm, TBASE, 8 * PG, 1);
	NEV(&f->rec[0], 0);
	/* Replacing pages 2..3 unmaps them first. */
	MAP_FIXED(f->mm, TBASE + 2 * PG, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_UNMAP, TBASE + 2 * PG, TBASE + 4 * PG, NULL);
	VERIFY_ZERO(f->mm, TBASE + 2 * PG, 2 * PG);
	VERIFY(f->mm, TBASE + 4 * PG, PG, 1 + 4 * WORDS_PER_PAGE);
}

static void test_mremap_fires_unmap_on_the_old_range(void **state)
{
	struct nfx *f = *state;
	uint64_t to = TBASE + 32 * PG;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 7);
	SUB(f, 0, f->mm, TBASE, 4);
	SUB(f, 1, f->mm, to, 4); /* the target was empty: nothing to invalidate */
	OK(dmm_mremap(f->mm, TBASE, 4 * PG, 4 * PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, to));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_UNMAP, TBASE, TBASE + 4 * PG, NULL);
	NEV(&f->rec[1], 0);
	VERIFY(f->mm, to, 4 * PG, 7);

	/* Moving it back over a mapped target unmaps the target too. */
	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 9);
	rec_reset(&f->rec[0]);
	OK(dmm_mremap(f->mm, to, 4 * PG, 4 * PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, TBASE));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_UNMAP, TBASE, TBASE + 4 * PG, NULL);
	NEV(&f->rec[1], 1);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_UNMAP, to, to + 4 * PG, NULL);
	VERIFY(f->mm, TBASE, 4 * PG, 7);
}

static void test_madv_dontneed_fires_clear(void **state)
{
	struct nfx *f = *state;

	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 8);
	OK(dmm_madvise(f->mm, TBASE + 3 * PG, 2 * PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_CLEAR, TBASE + 3 * PG, TBASE + 5 * PG, NULL);
	VERIFY_ZERO(f->mm, TBASE + 3 * PG, 2 * PG);
	/* Flag-only advice invalidates nothing. */
	OK(dmm_madvise(f->mm, TBASE, 8 * PG, DMM_MADV_DONTFORK));
	OK(dmm_madvise(f->mm, TBASE, 8 * PG, DMM_MADV_DOFORK));
	OK(dmm_madvise(f->mm, TBASE, 8 * PG, DMM_MADV_HUGEPAGE));
	NEV(&f->rec[0], 1);
	CHECK_OK(f->sys);
}

static void test_cow_replacement_after_fork_fires_clear_over_the_page(void **state)
{
	struct nfx *f = *state;
	struct dmm_mm *child;
	struct dmm_stats s0;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	OK(dmm_fork(f->mm, &child));
	SUB(f, 0, f->mm, TBASE, 4);
	SUB(f, 1, child, TBASE, 4);
	CHECK_OK(f->sys);
	s0 = STATS(f->sys);

	/* The parent writes page 1: CoW copy, CLEAR over that page only. */
	OK(dmm_store32(f->mm, TBASE + PG, 0xabc));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, cow_copy), 1);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_CLEAR, TBASE + PG, TBASE + 2 * PG, NULL);
	NEV(&f->rec[1], 0);

	/* The child writes page 2: its own CLEAR; the parent hears nothing. */
	OK(dmm_store32(child, TBASE + 2 * PG, 0xdef));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	NEV(&f->rec[1], 1);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_CLEAR, TBASE + 2 * PG, TBASE + 3 * PG, NULL);
	EQ(f->rec[1].ev[0].mm, child);

	/* The other side of each page is now alone: its write reuses the page
	 * in place, which only grants access and fires nothing. */
	OK(dmm_store32(child, TBASE + PG, 0x111));
	OK(dmm_store32(f->mm, TBASE + 2 * PG, 0x222));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, cow_copy), 2);
	EQ(STAT_DELTA(f->sys, s0, cow_reuse), 2);
	NEV(&f->rec[0], 1);
	NEV(&f->rec[1], 1);
	EQ(LOAD(f->mm, TBASE + PG), 0xabc);
	EQ(LOAD(child, TBASE + PG), 0x111);
	EQ(LOAD(f->mm, TBASE + 2 * PG), 0x222);
	EQ(LOAD(child, TBASE + 2 * PG), 0xdef);
	dmm_mmu_interval_notifier_remove(&f->rec[1].sub);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void test_write_to_the_zero_page_fires_clear(void **state)
{
	struct nfx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	SUB(f, 0, f->mm, TBASE, 2);
	EQ(LOAD(f->mm, TBASE), 0); /* maps the zero page: fires nothing */
	NEV(&f->rec[0], 0);
	EQ(PFN(f->mm, TBASE), DMM_ZERO_PFN);
	/* Replacing the zero page by a new page changes the pfn. */
	OK(dmm_store32(f->mm, TBASE, 5));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_CLEAR, TBASE, TBASE + PG, NULL);
	NE(PFN(f->mm, TBASE), DMM_ZERO_PFN);
}

static void test_mprotect_fires_protection_vma_unless_nothing_changes(void **state)
{
	struct nfx *f = *state;

	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 8);
	/* Same protection: a no-op. */
	OK(dmm_mprotect(f->mm, TBASE, 8 * PG, RW));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 0);
	OK(dmm_mprotect(f->mm, TBASE + 2 * PG, 2 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_PROTECTION_VMA, TBASE + 2 * PG, TBASE + 4 * PG, NULL);
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE + 2 * PG, 1));
	/* Read-only again: still nothing changes. */
	OK(dmm_mprotect(f->mm, TBASE + 2 * PG, 2 * PG, DMM_PROT_READ));
	NEV(&f->rec[0], 1);
	CHECK_OK(f->sys);
}

static void test_fork_fires_protection_page_over_cow_vmas_with_anon_pages(void **state)
{
	struct nfx *f = *state;
	uint64_t a = TBASE, b = TBASE + 16 * PG, c = TBASE + 32 * PG, d = TBASE + 48 * PG;
	struct dmm_mm *child;

	MAP_ANON(f->mm, a, 4);                                          /* written */
	MAP_ANON(f->mm, b, 4);                                          /* never touched */
	MAP_ANON(f->mm, c, 4);                                          /* only read */
	MAP_FIXED(f->mm, d, 4 * PG, RW, ANON_SHARED, NULL, 0);          /* shared, written */
	FILL(f->mm, a + PG, PG, 1);
	EQ(LOAD(f->mm, c), 0);
	FILL(f->mm, d, 4 * PG, 2);
	OK(dmm_mmu_interval_notifier_insert(&f->rec[0].sub, f->mm, TBASE, 64 * PG, &rec_ops));
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	/* Only the COW VMA with anonymous pages: over the whole VMA. */
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_PROTECTION_PAGE, a, a + 4 * PG, NULL);
	EQ(f->rec[0].ev[0].mm, f->mm);
	EQ(PTE(f->mm, a + PG).write, 0);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void test_exit_fires_release_first_then_unmap_per_vma(void **state)
{
	struct nfx *f = *state;
	struct dmm_mm *mm2;

	OK(dmm_mm_create(f->sys, &mm2));
	MAP_ANON(mm2, TBASE, 4);
	MAP_FIXED(mm2, TBASE + 8 * PG, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_ANON(mm2, TBASE + 100 * PG, 1);
	FILL(mm2, TBASE, 4 * PG, 1);
	SUB(f, 0, mm2, TBASE, 16);	       /* covers the first two VMAs */
	SUB(f, 1, mm2, TBASE + 200 * PG, 1); /* covers no VMA */
	CHECK_OK(f->sys);
	dmm_mm_exit(mm2);
	CHECK_OK(f->sys);
	/* Pitfall 12: RELEASE over everything, then UNMAP again per VMA. */
	NEV(&f->rec[0], 3);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_RELEASE, 0, UINT64_MAX, NULL);
	EV(&f->rec[0], 1, DMM_MMU_NOTIFY_UNMAP, TBASE, TBASE + 4 * PG, NULL);
	EV(&f->rec[0], 2, DMM_MMU_NOTIFY_UNMAP, TBASE + 8 * PG, TBASE + 10 * PG, NULL);
	NEV(&f->rec[1], 1);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_RELEASE, 0, UINT64_MAX, NULL);
	/* The structure lives on for the subscriptions; removing them is fine. */
	dmm_mmu_interval_notifier_remove(&f->rec[0].sub);
	dmm_mmu_interval_notifier_remove(&f->rec[1].sub);
	CHECK_OK(f->sys);
}

static void test_migration_fires_migrate_with_the_driver_as_owner(void **state)
{
	struct nfx *f = *state;
	unsigned long moved = 0;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 3);
	SUB(f, 0, f->mm, TBASE, 4);
	SUB(f, 1, f->mm, TBASE + 64 * PG, 4);
	/* No holes: one MIGRATE for the collect, owner = pgmap_owner. */
	OK(testdrv_migrate_to_dev(f->drv, f->mm, TBASE, 4, &moved));
	EQ(moved, 4);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_MIGRATE, TBASE, TBASE + 4 * PG, f->drv);
	NEV(&f->rec[1], 0);

	/* A CPU fault on page 2: migrate_to_ram collects that page. */
	rec_reset(&f->rec[0]);
	EQ(LOAD(f->mm, TBASE + 2 * PG), 3 + 2 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_MIGRATE, TBASE + 2 * PG, TBASE + 3 * PG, f->drv);

	/* Explicitly back. */
	rec_reset(&f->rec[0]);
	OK(testdrv_migrate_to_sys(f->drv, f->mm, TBASE, 4, &moved));
	EQ(moved, 3);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_MIGRATE, TBASE, TBASE + 4 * PG, f->drv);
	VERIFY(f->mm, TBASE, 4 * PG, 3);
	NEV(&f->rec[1], 0);
}

static void test_migration_populating_holes_fires_a_second_migrate_from_the_first_hole(void **state)
{
	struct nfx *f = *state;
	unsigned long moved = 0;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, PG, 3);		/* page 0 */
	FILL(f->mm, TBASE + 2 * PG, PG, 4);	/* page 2; 1 and 3 are holes */
	SUB(f, 0, f->mm, TBASE, 4);
	OK(testdrv_migrate_to_dev(f->drv, f->mm, TBASE, 4, &moved));
	EQ(moved, 4);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 2);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_MIGRATE, TBASE, TBASE + 4 * PG, f->drv);
	EV(&f->rec[0], 1, DMM_MMU_NOTIFY_MIGRATE, TBASE + PG, TBASE + 4 * PG, f->drv);
	VERIFY(f->mm, TBASE, PG, 3);
	VERIFY_ZERO(f->mm, TBASE + PG, PG);
	VERIFY(f->mm, TBASE + 2 * PG, PG, 4);
	VERIFY_ZERO(f->mm, TBASE + 3 * PG, PG);
	CHECK_OK(f->sys);
}

static void test_try_to_migrate_of_a_forked_page_fires_clear_for_the_child(void **state)
{
	struct nfx *f = *state;
	struct dmm_mm *child;
	unsigned long moved = 0;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 5);
	OK(dmm_fork(f->mm, &child));
	SUB(f, 0, f->mm, TBASE, 2);
	SUB(f, 1, child, TBASE, 2);
	/* The parent migrates page 1, which the child maps too. */
	OK(testdrv_migrate_to_dev(f->drv, f->mm, TBASE + PG, 1, &moved));
	EQ(moved, 1);
	CHECK_OK(f->sys);
	/* The child's mapping went through try_to_migrate: CLEAR, owner NULL. */
	NEV(&f->rec[1], 1);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_CLEAR, TBASE + PG, TBASE + 2 * PG, NULL);
	EQ(f->rec[1].ev[0].mm, child);
	/* The parent heard the collect, with the driver as owner. */
	TRUE(rec_count(&f->rec[0]) >= 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_MIGRATE, TBASE + PG, TBASE + 2 * PG, f->drv);
	for (int i = 1; i < rec_count(&f->rec[0]); i++)
		TRUE(f->rec[0].ev[i].event == DMM_MMU_NOTIFY_CLEAR && f->rec[0].ev[i].owner == NULL);
	/* Both now map the device page read-only. */
	EQ(PTE(f->mm, TBASE + PG).kind, DMM_PTE_DEVICE_PRIVATE_READ);
	EQ(PTE(child, TBASE + PG).kind, DMM_PTE_DEVICE_PRIVATE_READ);
	EQ(PTE(child, TBASE + PG).pfn, PTE(f->mm, TBASE + PG).pfn);
	VERIFY(child, TBASE, 2 * PG, 5);
	VERIFY(f->mm, TBASE, 2 * PG, 5);
	dmm_mmu_interval_notifier_remove(&f->rec[1].sub);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void test_device_exclusive_fires_exclusive_and_its_restore_fires_clear(void **state)
{
	struct nfx *f = *state;
	int token;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 9);
	SUB(f, 0, f->mm, TBASE, 2);
	SUB(f, 1, f->mm, TBASE + PG, 1);
	mmap_locked_exclusive(f->mm, TBASE, &token, &pfn);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EV(&f->rec[0], 0, DMM_MMU_NOTIFY_EXCLUSIVE, TBASE, TBASE + PG, &token);
	NEV(&f->rec[1], 0);
	EQ(PTE(f->mm, TBASE).kind, DMM_PTE_DEVICE_EXCLUSIVE);

	/* A CPU touch restores it: CLEAR, owner NULL. */
	EQ(LOAD(f->mm, TBASE), 9);
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 2);
	EV(&f->rec[0], 1, DMM_MMU_NOTIFY_CLEAR, TBASE, TBASE + PG, NULL);
	EQ(PTE(f->mm, TBASE).kind, DMM_PTE_PRESENT);
	NEV(&f->rec[1], 0);
	/* Making a page exclusive with a NULL owner passes NULL. */
	mmap_locked_exclusive(f->mm, TBASE + PG, NULL, &pfn);
	NEV(&f->rec[0], 3);
	EV(&f->rec[0], 2, DMM_MMU_NOTIFY_EXCLUSIVE, TBASE + PG, TBASE + 2 * PG, NULL);
	NEV(&f->rec[1], 1);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_EXCLUSIVE, TBASE + PG, TBASE + 2 * PG, NULL);
	CHECK_OK(f->sys);
}

static void test_access_granting_operations_fire_nothing(void **state)
{
	struct nfx *f = *state;
	struct dmm_notifier_stats s0;
	uint64_t pfns[4], hp[2];
	struct dmm_hmm_range r = { 0 };
	struct dmm_mm *child;
	int rc;

	SUB(f, 0, f->mm, TBASE, 64);
	s0 = nstats(f->mm);
	MAP_ANON(f->mm, TBASE, 16);
	MAP_FIXED(f->mm, TBASE + 16 * PG, 4 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EQ(LOAD(f->mm, TBASE), 0);                    /* read fault: zero page */
	OK(dmm_store32(f->mm, TBASE + PG, 1));         /* write fault on a hole */
	EQ(LOAD(f->mm, TBASE + 16 * PG), 0);          /* read fault, read-only VMA */
	OK(dmm_mprotect(f->mm, TBASE, 16 * PG, RW));   /* changes nothing */
	EQS(dmm_get_user_pages(f->mm, TBASE + 2 * PG, 2, DMM_FOLL_GET, pfns), 2);
	EQS(dmm_get_user_pages(f->mm, TBASE + 4 * PG, 2, DMM_FOLL_PIN | DMM_FOLL_WRITE, pfns + 2), 2);
	dmm_put_user_pages(f->sys, pfns, 2);
	dmm_unpin_user_pages(f->sys, pfns + 2, 2);
	/* An hmm fault of two holes, read then write. */
	hp[0] = DMM_HMM_PFN_REQ_FAULT;
	hp[1] = DMM_HMM_PFN_REQ_FAULT | DMM_HMM_PFN_REQ_WRITE;
	r.notifier = &f->rec[0].sub;
	r.start = TBASE + 8 * PG;
	r.end = TBASE + 10 * PG;
	r.hmm_pfns = hp;
	r.pfn_flags_mask = DMM_HMM_PFN_REQ_FAULT | DMM_HMM_PFN_REQ_WRITE;
	r.notifier_seq = dmm_mmu_interval_read_begin(&f->rec[0].sub);
	dmm_mmap_read_lock(f->mm);
	rc = dmm_hmm_range_fault(&r);
	dmm_mmap_read_unlock(f->mm);
	OK(rc);
	/* A read-only page of ours (fork, child gone) written again: reuse. */
	FILL(f->mm, TBASE + 12 * PG, PG, 3);
	OK(dmm_mmu_interval_notifier_insert(&f->rec[1].sub, f->mm, TBASE + 64 * PG, PG, &rec_ops));
	OK(dmm_fork(f->mm, &child));
	dmm_mm_exit(child);
	rec_reset(&f->rec[0]); /* the fork's PROTECTION_PAGE */
	s0 = nstats(f->mm);
	OK(dmm_store32(f->mm, TBASE + 12 * PG, 4));
	OK(dmm_store32(f->mm, TBASE + PG, 2));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 0);
	NEV(&f->rec[1], 0);
	EQ(nstats(f->mm).invalidate_seq, s0.invalidate_seq);
	EQ(nstats(f->mm).starts, s0.starts);
}

/* ------------------------------------------------------------------------ */
/* OOM reaper: non-blockable invalidations that may be refused               */

static void test_oom_reap_with_a_refusing_subscriber_is_ebusy_and_keeps_memory(void **state)
{
	struct nfx *f = *state;
	uint64_t a = TBASE, b = TBASE + 16 * PG;
	struct dmm_notifier_stats s;

	MAP_ANON(f->mm, a, 4);
	MAP_ANON(f->mm, b, 4);
	FILL(f->mm, a, 4 * PG, 1);
	FILL(f->mm, b, 4 * PG, 2);
	SUB(f, 0, f->mm, a + PG, 1);
	f->rec[0].refuse = true;
	EXPECT_RC(-EBUSY, dmm_oom_reap(f->mm));
	CHECK_OK(f->sys);
	/* The refusing subscriber was asked with a non-blockable CLEAR. */
	NEV(&f->rec[0], 1);
	EQ(f->rec[0].ev[0].event, DMM_MMU_NOTIFY_CLEAR);
	EQ(f->rec[0].ev[0].start, a);
	EQ(f->rec[0].ev[0].end, a + 4 * PG);
	EQ(f->rec[0].ev[0].flags & DMM_MMU_NOTIFIER_RANGE_BLOCKABLE, 0);
	TRUE(f->rec[0].ev[0].refused);
	s = nstats(f->mm);
	EQ(s.refused, 1);
	EQ(s.starts, s.ends);
	EQ(s.invalidate_seq & 1, 0);
	/* Its VMA was skipped; the other one was reaped. */
	VERIFY(f->mm, a, 4 * PG, 1);
	VERIFY_ZERO(f->mm, b, 4 * PG);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 4);
	EXPECT_RC(-EINVAL, dmm_oom_reap(NULL));
	CHECK_OK(f->sys);
}

static void test_oom_reap_with_an_accepting_subscriber_zeroes_private_anon_memory(void **state)
{
	struct nfx *f = *state;
	uint64_t a = TBASE, sh = TBASE + 16 * PG;

	MAP_ANON(f->mm, a, 4);
	MAP_FIXED(f->mm, sh, 4 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, a, 4 * PG, 1);
	FILL(f->mm, sh, 4 * PG, 2);
	SUB(f, 0, f->mm, TBASE, 32);
	OK(dmm_oom_reap(f->mm));
	CHECK_OK(f->sys);
	NEV(&f->rec[0], 1);
	EQ(f->rec[0].ev[0].event, DMM_MMU_NOTIFY_CLEAR);
	EQ(f->rec[0].ev[0].start, a);
	EQ(f->rec[0].ev[0].end, a + 4 * PG);
	EQ(f->rec[0].ev[0].owner, 0);
	EQ(f->rec[0].ev[0].flags & DMM_MMU_NOTIFIER_RANGE_BLOCKABLE, 0);
	EQ(nstats(f->mm).refused, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	VERIFY_ZERO(f->mm, a, 4 * PG);
	VERIFY(f->mm, sh, 4 * PG, 2); /* shared memory is not reaped */
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* remove / insert racing with a running invalidation                       */

struct op_thread {
	struct nfx *f;
	struct rec *rc;
	uint64_t addr;
	int r;
	unsigned long seq;
	atomic_bool done;
	bool cb_returned_at_done;
};

static void *munmap_thread(void *arg)
{
	struct op_thread *t = arg;

	t->r = dmm_munmap(t->f->mm, t->addr, PG);
	atomic_store(&t->done, true);
	return NULL;
}

static void *remove_thread(void *arg)
{
	struct op_thread *t = arg;

	dmm_mmu_interval_notifier_remove(&t->rc->sub);
	t->cb_returned_at_done = atomic_load(&t->rc->returned);
	atomic_store(&t->done, true);
	return NULL;
}

static void *read_begin_thread(void *arg)
{
	struct op_thread *t = arg;

	t->seq = dmm_mmu_interval_read_begin(&t->rc->sub);
	t->cb_returned_at_done = atomic_load(&t->f->rec[0].returned);
	atomic_store(&t->done, true);
	return NULL;
}

static void short_sleep(void)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static void test_remove_waits_for_a_running_invalidation(void **state)
{
	struct nfx *f = *state;
	struct op_thread mu = { .f = f, .addr = TBASE }, rm = { .f = f, .rc = &f->rec[0] };
	pthread_t t1, t2;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 2);
	atomic_store(&f->rec[0].block, true);
	assert_int_equal(pthread_create(&t1, NULL, munmap_thread, &mu), 0);
	rec_wait_entered(&f->rec[0]);
	/* The invalidation is running (its callback blocked): seq is odd. */
	EQ(nstats(f->mm).invalidate_seq & 1, 1);
	assert_int_equal(pthread_create(&t2, NULL, remove_thread, &rm), 0);
	short_sleep();
	short_sleep();
	TRUE(!atomic_load(&rm.done));
	TRUE(!atomic_load(&mu.done));
	rec_release(&f->rec[0]);
	pthread_join(t2, NULL);
	pthread_join(t1, NULL);
	OK(mu.r);
	/* remove returned only after the callback had returned. */
	TRUE(rm.cb_returned_at_done);
	EQ(f->rec[0].sub.mm, 0);
	NEV(&f->rec[0], 1);
	EQ(nstats(f->mm).invalidate_seq & 1, 0);
	CHECK_OK(f->sys);
	/* Gone: the next invalidation doesn't reach it. */
	atomic_store(&f->rec[0].block, false);
	OK(dmm_munmap(f->mm, TBASE + PG, PG));
	NEV(&f->rec[0], 1);
	CHECK_OK(f->sys);
}

static void test_remove_of_another_subscription_during_an_invalidation_waits_too(void **state)
{
	struct nfx *f = *state;
	struct op_thread mu = { .f = f, .addr = TBASE }, rm = { .f = f, .rc = &f->rec[1] };
	pthread_t t1, t2;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 2);
	SUB(f, 1, f->mm, TBASE + 50 * PG, 2); /* not involved */
	atomic_store(&f->rec[0].block, true);
	assert_int_equal(pthread_create(&t1, NULL, munmap_thread, &mu), 0);
	rec_wait_entered(&f->rec[0]);
	assert_int_equal(pthread_create(&t2, NULL, remove_thread, &rm), 0);
	short_sleep();
	TRUE(!atomic_load(&rm.done));
	rec_release(&f->rec[0]);
	pthread_join(t2, NULL);
	pthread_join(t1, NULL);
	OK(mu.r);
	EQ(f->rec[1].sub.mm, 0);
	NEV(&f->rec[1], 0);
	CHECK_OK(f->sys);
}

static void test_insert_during_a_running_invalidation_is_deferred(void **state)
{
	struct nfx *f = *state;
	struct op_thread mu = { .f = f, .addr = TBASE }, rb = { .f = f, .rc = &f->rec[1] };
	pthread_t t1, t2;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	SUB(f, 0, f->mm, TBASE, 4);
	atomic_store(&f->rec[0].block, true);
	assert_int_equal(pthread_create(&t1, NULL, munmap_thread, &mu), 0);
	rec_wait_entered(&f->rec[0]);
	EQ(nstats(f->mm).invalidate_seq, 3);
	/* Insert returns at once, over the very range being invalidated. */
	SUB(f, 1, f->mm, TBASE, 4);
	/* Its read_begin sleeps until the invalidation ends. */
	assert_int_equal(pthread_create(&t2, NULL, read_begin_thread, &rb), 0);
	short_sleep();
	short_sleep();
	TRUE(!atomic_load(&rb.done));
	rec_release(&f->rec[0]);
	pthread_join(t2, NULL);
	pthread_join(t1, NULL);
	OK(mu.r);
	TRUE(rb.cb_returned_at_done);
	EQ(rb.seq, 3);
	EQ(nstats(f->mm).invalidate_seq, 4);
	TRUE(!dmm_mmu_interval_read_retry(&f->rec[1].sub, rb.seq));
	/* It missed the invalidation that was running when it was added... */
	NEV(&f->rec[1], 0);
	CHECK_OK(f->sys);
	/* ...and is in effect from then on. */
	atomic_store(&f->rec[0].block, false);
	OK(dmm_munmap(f->mm, TBASE + PG, PG));
	NEV(&f->rec[1], 1);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_UNMAP, TBASE + PG, TBASE + 2 * PG, NULL);
	EQ(f->rec[1].ev[0].cur_seq, 5);
	TRUE(dmm_mmu_interval_read_retry(&f->rec[1].sub, rb.seq));
	CHECK_OK(f->sys);
}

static void test_read_begin_sleeps_only_for_invalidations_touching_the_subscription(void **state)
{
	struct nfx *f = *state;
	struct op_thread mu = { .f = f, .addr = TBASE };
	unsigned long seq;
	pthread_t t1;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 1);
	SUB(f, 0, f->mm, TBASE, 1);
	SUB(f, 1, f->mm, TBASE + 50 * PG, 1);
	atomic_store(&f->rec[0].block, true);
	assert_int_equal(pthread_create(&t1, NULL, munmap_thread, &mu), 0);
	rec_wait_entered(&f->rec[0]);
	/* rec[1] is not touched by the running invalidation: no sleep. */
	seq = dmm_mmu_interval_read_begin(&f->rec[1].sub);
	EQ(seq & 1, 1);
	TRUE(!dmm_mmu_interval_read_retry(&f->rec[1].sub, seq));
	/* rec[0] is: its retry check already says so. */
	TRUE(dmm_mmu_interval_check_retry(&f->rec[0].sub, 1));
	rec_release(&f->rec[0]);
	pthread_join(t1, NULL);
	OK(mu.r);
	TRUE(!dmm_mmu_interval_read_retry(&f->rec[1].sub, seq));
	CHECK_OK(f->sys);
}

/*
 * An invalidation held open between its start and the PTE change it
 * brackets, without any callback: MADV_DONTNEED over HELD_PAGES pages
 * from TBASE, whose first page is on the testdrv device and whose last
 * page (HELD_FAR, in the next PTE table) is system memory. The zap clears
 * the first table and drops the device page's last reference, whose
 * folio_free the driver holds; HELD_FAR is still mapped, about to be
 * cleared. The caller's subscriptions, if any, do not overlap the range,
 * so the mm's seq stays even while the invalidation is in flight.
 */
#define HELD_PAGES 513
#define HELD_FAR (TBASE + 512 * PG)

static void *dontneed_thread(void *arg)
{
	struct nfx *f = arg;

	f->held_r = dmm_madvise(f->mm, TBASE, HELD_PAGES * PG, DMM_MADV_DONTNEED);
	atomic_store(&f->held_done, true);
	return NULL;
}

static void hold_a_zap_open(struct nfx *f)
{
	struct dmm_notifier_stats s;
	unsigned long moved = 0;

	MAP_ANON(f->mm, TBASE, HELD_PAGES);
	FILL(f->mm, TBASE, PG, 1);
	FILL(f->mm, HELD_FAR, PG, 2);
	OK(testdrv_migrate_to_dev(f->drv, f->mm, TBASE, 1, &moved));
	EQ(moved, 1);
	EQ(testdrv_used(f->drv), 1);
	testdrv_hold_free(f->drv);
	assert_int_equal(pthread_create(&f->held, NULL, dontneed_thread, f), 0);
	f->held_started = true;
	testdrv_wait_free_held(f->drv);
	/* In flight: started, not ended, HELD_FAR still mapped, seq even. */
	s = nstats(f->mm);
	EQ(s.starts, s.ends + 1);
	EQ(s.invalidate_seq & 1, 0);
	EQ(PTE(f->mm, TBASE).kind, DMM_PTE_NONE);
	EQ(PTE(f->mm, HELD_FAR).kind, DMM_PTE_PRESENT);
	TRUE(!atomic_load(&f->held_done));
}

/* Let the held zap finish. */
static void finish_the_zap(struct nfx *f)
{
	testdrv_release_free(f->drv);
	pthread_join(f->held, NULL);
	f->held_started = false;
	OK(f->held_r);
	TRUE(atomic_load(&f->held_done));
}

static void test_insert_during_an_invalidation_overlapping_no_subscription_waits_for_its_end(void **state)
{
	struct nfx *f = *state;
	struct op_thread rb = { .f = f, .rc = &f->rec[1] };
	uint64_t hp[1] = { 0 };
	struct dmm_hmm_range r = { 0 };
	unsigned long seq0, seq, seq_at_insert;
	bool read_begin_done_while_held;
	pthread_t t2;
	int rc;

	/* An older subscription far away: the running zap does not touch it. */
	SUB(f, 0, f->mm, TBASE + 4096 * PG, 1);
	seq0 = dmm_mmu_interval_read_begin(&f->rec[0].sub);
	hold_a_zap_open(f);

	/* Insert over HELD_FAR, whose entry the running zap will clear. */
	SUB(f, 1, f->mm, HELD_FAR, 1);
	/* The insert counted the invalidation in flight: the seq is odd now
	 * and the new subscription's read_begin sleeps until the zap ends. */
	seq_at_insert = nstats(f->mm).invalidate_seq;
	EQ(seq_at_insert & 1, 1);
	assert_int_equal(pthread_create(&t2, NULL, read_begin_thread, &rb), 0);
	short_sleep();
	short_sleep();
	read_begin_done_while_held = atomic_load(&rb.done);
	/* The old subscription was not touched: it does not sleep. */
	seq = dmm_mmu_interval_read_begin(&f->rec[0].sub);
	finish_the_zap(f);
	pthread_join(t2, NULL);
	TRUE(!read_begin_done_while_held);
	EQ(seq, seq0);
	EQ(rb.seq, seq_at_insert);
	EQ(nstats(f->mm).invalidate_seq, seq_at_insert + 1);
	TRUE(!dmm_mmu_interval_read_retry(&f->rec[1].sub, rb.seq));
	/* The snapshot taken after read_begin sees the zap's result. */
	r.notifier = &f->rec[1].sub;
	r.notifier_seq = rb.seq;
	r.start = HELD_FAR;
	r.end = HELD_FAR + PG;
	r.hmm_pfns = hp;
	dmm_mmap_read_lock(f->mm);
	rc = dmm_hmm_range_fault(&r);
	dmm_mmap_read_unlock(f->mm);
	OK(rc);
	EQ(hp[0] & DMM_HMM_PFN_VALID, 0);
	TRUE(!dmm_mmu_interval_read_retry(&f->rec[1].sub, rb.seq));
	NEV(&f->rec[1], 0);
	NEV(&f->rec[0], 0);
	EQ(testdrv_used(f->drv), 0);
	CHECK_OK(f->sys);
	/* In effect from then on. */
	FILL(f->mm, HELD_FAR, PG, 3);
	OK(dmm_madvise(f->mm, HELD_FAR, PG, DMM_MADV_DONTNEED));
	NEV(&f->rec[1], 1);
	EV(&f->rec[1], 0, DMM_MMU_NOTIFY_CLEAR, HELD_FAR, HELD_FAR + PG, NULL);
	EQ(f->rec[1].ev[0].cur_seq, seq_at_insert + 2);
	TRUE(dmm_mmu_interval_read_retry(&f->rec[1].sub, rb.seq));
	CHECK_OK(f->sys);
}

struct mirror_read_thread {
	struct mirror *m;
	uint64_t addr;
	int r;
	uint32_t word;
	atomic_bool done;
};

/*
 * An mm without subscriptions invalidates without the notifier lock; a
 * subscription inserted meanwhile must still see those invalidations (its
 * read_begin waits for them) and the last of them must make seq even
 * again, whichever of the insert and the end comes first. Inserts, reads
 * and removes race a thread that keeps zapping and refaulting a page; any
 * lost wake-up hangs read_begin or remove, any lost end leaves seq odd or
 * active non-zero for dmm_check.
 */
struct zapper {
	struct nfx *f;
	atomic_bool stop;
	atomic_int err;
	long rounds;
};

static void *zap_loop(void *arg)
{
	struct zapper *z = arg;
	unsigned char b = 1;
	int r;

	while (!atomic_load(&z->stop)) {
		r = dmm_madvise(z->f->mm, TBASE, 2 * PG, DMM_MADV_DONTNEED);
		if (!r)
			r = dmm_write(z->f->mm, TBASE + PG, &b, 1);
		if (r) {
			atomic_store(&z->err, r);
			break;
		}
		z->rounds++;
	}
	return NULL;
}

static void test_inserts_racing_invalidations_of_an_mm_without_subscriptions(void **state)
{
	struct nfx *f = *state;
	struct zapper z = { .f = f };
	pthread_t t;
	unsigned long seq;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	EQ(pthread_create(&t, NULL, zap_loop, &z), 0);
	for (int i = 0; i < 3000; i++) {
		/* Alternately over the zapped page and elsewhere. */
		SUB(f, 0, f->mm, (i & 1) ? TBASE : TBASE + 16 * PG, 1);
		seq = dmm_mmu_interval_read_begin(&f->rec[0].sub);
		EQ(seq & 1, 1);
		dmm_mmu_interval_notifier_remove(&f->rec[0].sub);
	}
	atomic_store(&z.stop, true);
	EQ(pthread_join(t, NULL), 0);
	EQ(atomic_load(&z.err), 0);
	EQ(nstats(f->mm).invalidate_seq & 1, 0);
	EQ(nstats(f->mm).starts, nstats(f->mm).ends);
	CHECK_OK(f->sys);
}

static void *mirror_read_thread(void *arg)
{
	struct mirror_read_thread *t = arg;
	static uint8_t buf[PG];
	struct mirror_result res = { 0 };

	t->r = mirror_read(t->m, t->addr, 1, buf, &res);
	memcpy(&t->word, buf, sizeof(t->word));
	atomic_store(&t->done, true);
	return NULL;
}

/* The mirror's entry for addr, if any, is the CPU's: the HMM guarantee. */
static void mirror_agrees_with_cpu(struct mirror *m, struct dmm_mm *mm, uint64_t addr)
{
	enum mirror_tag tag;
	uint64_t pfn = 0;
	struct dmm_pte_info cpu;
	int mapped;

	pthread_mutex_lock(&m->lock);
	mapped = ptab_get(m->pt, addr, &pfn, &tag);
	pthread_mutex_unlock(&m->lock);
	if (!mapped)
		return;
	cpu = PTE(mm, addr);
	if (cpu.kind != DMM_PTE_PRESENT || cpu.pfn != pfn)
		fail_msg("the mirror maps pfn %" PRIu64 " at %#" PRIx64 " but the CPU entry is of kind %d, pfn %" PRIu64,
			 pfn, addr, (int)cpu.kind, cpu.pfn);
}

static void test_a_mirror_opened_during_an_invalidation_cannot_keep_the_page_it_replaces(void **state)
{
	struct nfx *f = *state;
	struct mirror_device_config cfg = { .type = DMM_MEMORY_DEVICE_PRIVATE, .pages = DEV_PAGES };
	struct mirror *m;
	struct mirror_read_thread rd = { 0 };
	pthread_t t2;
	bool read_done_while_held;

	OK(mirror_device_create(f->sys, "mirror", &cfg, &f->mdev));
	hold_a_zap_open(f);
	/* The mirror's subscription (the whole address space) arrives while
	 * the zap runs, and the device reads HELD_FAR, which the zap is about
	 * to clear. */
	OK(mirror_open(f->mdev, f->mm, &m));
	rd.m = m;
	rd.addr = HELD_FAR;
	assert_int_equal(pthread_create(&t2, NULL, mirror_read_thread, &rd), 0);
	short_sleep();
	short_sleep();
	read_done_while_held = atomic_load(&rd.done);
	finish_the_zap(f);
	pthread_join(t2, NULL);
	OK(rd.r);
	/* The zap cleared HELD_FAR: the mirror may map only what the CPU
	 * maps there now (the zero page its read faulted in), never the
	 * freed page. */
	mirror_agrees_with_cpu(m, f->mm, HELD_FAR);
	EQ(rd.word, 0);
	TRUE(!read_done_while_held);
	EQ(LOAD(f->mm, HELD_FAR), 0);
	/* A CPU write replaces the zero page; the device sees the new data. */
	OK(dmm_store32(f->mm, HELD_FAR, 0x5a5a5a5a));
	mirror_agrees_with_cpu(m, f->mm, HELD_FAR);
	rd.done = false;
	mirror_read_thread(&rd);
	OK(rd.r);
	EQ(rd.word, 0x5a5a5a5a);
	mirror_agrees_with_cpu(m, f->mm, HELD_FAR);
	CHECK_OK(f->sys);
	mirror_device_destroy(f->mdev);
	f->mdev = NULL;
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, nfx_setup, nfx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_insert_rejects_null_arguments_and_an_exited_mm),
		T(test_insert_rejects_empty_and_overflowing_ranges),
		T(test_sequence_starts_at_two_and_moves_by_two_per_invalidation),
		T(test_a_subscription_inserted_later_starts_at_seq_minus_one),
		T(test_removed_subscription_gets_no_more_callbacks),
		T(test_munmap_fires_unmap_over_the_span),
		T(test_munmap_of_an_unmapped_range_fires_nothing),
		T(test_mmap_fires_nothing_but_map_fixed_over_a_mapping_fires_unmap),
		T(test_mremap_fires_unmap_on_the_old_range),
		T(test_madv_dontneed_fires_clear),
		T(test_cow_replacement_after_fork_fires_clear_over_the_page),
		T(test_write_to_the_zero_page_fires_clear),
		T(test_mprotect_fires_protection_vma_unless_nothing_changes),
		T(test_fork_fires_protection_page_over_cow_vmas_with_anon_pages),
		T(test_exit_fires_release_first_then_unmap_per_vma),
		T(test_migration_fires_migrate_with_the_driver_as_owner),
		T(test_migration_populating_holes_fires_a_second_migrate_from_the_first_hole),
		T(test_try_to_migrate_of_a_forked_page_fires_clear_for_the_child),
		T(test_device_exclusive_fires_exclusive_and_its_restore_fires_clear),
		T(test_access_granting_operations_fire_nothing),
		T(test_oom_reap_with_a_refusing_subscriber_is_ebusy_and_keeps_memory),
		T(test_oom_reap_with_an_accepting_subscriber_zeroes_private_anon_memory),
		T(test_remove_waits_for_a_running_invalidation),
		T(test_remove_of_another_subscription_during_an_invalidation_waits_too),
		T(test_insert_during_a_running_invalidation_is_deferred),
		T(test_read_begin_sleeps_only_for_invalidations_touching_the_subscription),
		T(test_insert_during_an_invalidation_overlapping_no_subscription_waits_for_its_end),
		T(test_a_mirror_opened_during_an_invalidation_cannot_keep_the_page_it_replaces),
		T(test_inserts_racing_invalidations_of_an_mm_without_subscriptions),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
