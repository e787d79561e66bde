/* SPDX-License-Identifier: MIT */
/*
 * The page walker (src/pagewalk.c) driven directly: page tables built by
 * hand (pte_alloc for TABLE slots, pmd_alloc for NONE ones, a leaf word
 * written under the PTL, entries that encode their own address) around
 * the boundaries of every directory level, and random walks whose every
 * callback is checked against a plain reference of what exists: holes
 * against tables, sub-ranges, entries, actions (SUBTREE, CONTINUE, AGAIN),
 * the PTL flag and early stops. Then the slot word as dmm_check sees it,
 * and the split point, which must stop on a leaf while none may exist.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define SPAN1 (PAGE_SIZE << PT_BITS)     /* a PMD slot, 2 MiB */
#define SPAN2 (PAGE_SIZE << (2 * PT_BITS)) /* 1 GiB */
#define SPAN3 (PAGE_SIZE << (3 * PT_BITS)) /* a pgd entry, 512 GiB */
/* Around a pgd boundary, which is also a 1 GiB and a 2 MiB boundary. */
#define REGION_START (SPAN3 - 3 * SPAN2)
#define NSLOTS (6 * SPAN2 / SPAN1) /* 3072 PMD slots */
#define NPOP 48			   /* slots populated per layout */

enum slot_state { S_ABSENT, S_NONE, S_TABLE, S_LEAF };

/* The reference: what each slot of the region is. */
struct layout {
	uint8_t state[NSLOTS];
	uint8_t present[NSLOTS][PTRS_PER_TABLE / 8]; /* TABLE slots: entries set */
	uint64_t seed;
};

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t slot_addr(unsigned int i) { return REGION_START + (uint64_t)i * SPAN1; }
static unsigned int slot_of(uint64_t addr) { return (unsigned int)((addr - REGION_START) / SPAN1); }
/* The entry that page @addr holds: a present entry naming its own address. */
static pte_t entry_for(uint64_t addr) { return pfn_pte(addr >> PAGE_SHIFT, _PTE_YOUNG); }
static pte_t leaf_for(uint64_t addr) { return pfn_pte(addr >> PAGE_SHIFT, _PTE_WRITE); }

static bool ref_present(const struct layout *l, uint64_t addr)
{
	unsigned int i = slot_of(addr), pg = pt_index(addr, 0);

	return l->state[i] == S_TABLE && (l->present[i][pg / 8] & (1u << (pg % 8)));
}

static pte_t ref_entry(const struct layout *l, uint64_t addr)
{
	return ref_present(l, addr) ? entry_for(addr) : 0;
}

/* Is any slot's table allocated under the level-@level entry covering addr? */
static bool ref_dir_populated(const struct layout *l, uint64_t addr, int level)
{
	uint64_t span = pt_level_span(level), base = addr & ~(span - 1);

	for (uint64_t a = DMM_MAX(base, REGION_START); a < base + span && a < slot_addr(NSLOTS); a += SPAN1)
		if (l->state[slot_of(a)] != S_ABSENT)
			return true;
	return false;
}

/* Build the layout in a fresh mm: a random NPOP slots, each NONE, TABLE
 * (some entries set) or a leaf; slots 0, 511, 512 of a 1 GiB and the ones
 * at the pgd boundary are favoured. */
static void build(struct dmm_mm *mm, struct layout *l, uint64_t seed)
{
	static const unsigned int edges[] = {
		0, 1, 511, 512, 513, 1023, 1024, 1535, 1536, 1537, 2047, 2048, 3071,
	};

	memset(l, 0, sizeof(*l));
	l->seed = seed;
	for (unsigned int n = 0; n < NPOP; n++) {
		unsigned int i = n < ARRAY_SIZE(edges) && (rng(&seed) & 1) ? edges[n] : rng(&seed) % NSLOTS;
		uint64_t a = slot_addr(i);
		struct dmm_pte_table *t;

		if (l->state[i] != S_ABSENT)
			continue;
		switch (rng(&seed) % 4) {
		case 0:
		case 1:
			t = pte_alloc(mm, a);
			assert_non_null(t);
			l->state[i] = S_TABLE;
			for (unsigned int k = 0, m = rng(&seed) % 6; k < m; k++) {
				/* runs of entries, and the table's first and last */
				unsigned int pg = k == 0 ? 0 : k == 1 ? 511 : rng(&seed) % PTRS_PER_TABLE;

				for (unsigned int r = rng(&seed) % 8; r-- && pg < PTRS_PER_TABLE; pg++) {
					l->present[i][pg / 8] |= 1u << (pg % 8);
					pte_set(&t->ent[pg], entry_for(a + (uint64_t)pg * PAGE_SIZE));
				}
			}
			break;
		case 2:
			t = pmd_alloc(mm, a);
			assert_non_null(t);
			assert_true(pmd_none(pmd_get(t)));
			l->state[i] = S_NONE;
			break;
		default:
			t = pmd_alloc(mm, a);
			assert_non_null(t);
			ptl_lock(t);
			pmd_set(t, leaf_for(a));
			ptl_unlock(t);
			l->state[i] = S_LEAF;
			break;
		}
	}
}

/* Put the tables back to what an mm may hold at exit: no leaf, no entry. */
static void unbuild(struct dmm_mm *mm, struct layout *l)
{
	for (unsigned int i = 0; i < NSLOTS; i++) {
		struct dmm_pte_table *t;
		pte_t pmd;

		if (l->state[i] == S_ABSENT)
			continue;
		t = pmd_lookup(mm, slot_addr(i), &pmd);
		assert_non_null(t);
		ptl_lock(t);
		if (pmd_is_leaf(pmd))
			pmd_set(t, PMD_NONE);
		for (unsigned int k = 0; k < PTRS_PER_TABLE; k++)
			pte_set(&t->ent[k], 0);
		ptl_unlock(t);
	}
}

/* ------------------------------------------------------------------------ */
/* A recording walk                                                          */

struct rec {
	struct layout *l;
	uint64_t start, end;
	uint64_t at;		/* every address below it was accounted for */
	unsigned long events;	/* callbacks so far */
	unsigned long stop_at;	/* return STOP from this callback (0: never) */
	bool stopped;
	unsigned int mode;	/* which pmd_entry behaviour, see rec_pmd */
	bool ptl;		/* the ops carry MM_WALK_PTL */
	struct dmm_mm *mm;
	unsigned long pmds, ptes, holes, agains;
	int8_t seen[NSLOTS];	/* pmd_entry calls per slot in this walk */
};

#define STOP 7

/* What the random walks reached, so that they are known to reach it all. */
static struct {
	unsigned long holes[PT_LEVELS], pmds, ptes, agains, stops, ptl_ptes;
} cover;

/* Count a callback; true if it is the one that must stop the walk. */
static bool rec_event(struct rec *r)
{
	assert_false(r->stopped); /* nothing after a stop */
	r->events++;
	if (r->stop_at && r->events == r->stop_at) {
		r->stopped = true;
		return true;
	}
	return false;
}

static int rec_hole(uint64_t addr, uint64_t next, int level, struct mm_walk *walk)
{
	struct rec *r = walk->private;
	uint64_t span = pt_level_span(level);

	assert_int_equal(addr, r->at);
	assert_true(level >= 1 && level < PT_LEVELS);
	/* exactly the empty entry, clipped to the range */
	assert_int_equal(next, DMM_MIN((addr & ~(span - 1)) + span, r->end));
	assert_true(addr < next);
	if (level >= 2) {
		assert_false(ref_dir_populated(r->l, addr, level));
		/* ... and the directory above it does exist */
		if (level < PT_LEVELS - 1)
			assert_true(ref_dir_populated(r->l, addr, level + 1));
	} else if (addr >= REGION_START && addr < slot_addr(NSLOTS)) {
		uint8_t s = r->l->state[slot_of(addr)];

		assert_true(s == S_ABSENT || s == S_NONE);
		if (s == S_ABSENT)
			assert_true(ref_dir_populated(r->l, addr, 2));
	}
	r->holes++;
	cover.holes[level]++;
	r->at = next;
	return rec_event(r) ? STOP : 0;
}

static int rec_pte(_Atomic pte_t *pte, pte_t e, uint64_t addr, struct mm_walk *walk)
{
	struct rec *r = walk->private;
	struct dmm_pte_table *t = pte_lookup(r->mm, addr);
	int busy;

	assert_int_equal(addr, r->at);
	assert_ptr_equal(pte, pte_slot(t, addr));
	assert_int_equal(e, ref_entry(r->l, addr));
	busy = pthread_mutex_trylock(&t->ptl);
	if (!busy)
		pthread_mutex_unlock(&t->ptl);
	assert_int_equal(busy != 0, r->ptl);
	r->ptes++;
	cover.ptes++;
	cover.ptl_ptes += r->ptl;
	r->at = addr + PAGE_SIZE;
	return rec_event(r) ? STOP : 0;
}

/*
 * pmd_entry. Modes: 0, go down into tables; 1, skip every table
 * (CONTINUE) and account for it here; 2, as 0 but the first visit of each
 * slot asks for AGAIN. A leaf is always handled here (CONTINUE), except
 * in mode 2, where its first visit "splits" it into a table (entries all
 * none, as a deposited table is) or, every other slot, "zaps" it to NONE,
 * and asks for AGAIN.
 */
static int rec_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t next, struct mm_walk *walk)
{
	struct rec *r = walk->private;
	unsigned int i = slot_of(addr);
	uint8_t s = r->l->state[i];
	bool first = r->seen[i]++ == 0;

	assert_int_equal(addr, r->at);
	assert_int_equal(next, DMM_MIN((addr & ~(SPAN1 - 1)) + SPAN1, r->end));
	assert_true(s == S_TABLE || s == S_LEAF);
	assert_int_equal(pmd, s == S_TABLE ? PMD_TABLE : leaf_for(slot_addr(i)));
	assert_int_equal(walk->action, ACTION_SUBTREE);
	assert_ptr_equal(walk->mm, r->mm);
	r->pmds++;
	cover.pmds++;
	if (rec_event(r))
		return STOP;
	if (r->mode == 2 && first) {
		if (s == S_LEAF) {
			ptl_lock(t);
			pmd_set(t, (i & 1) ? PMD_NONE : PMD_TABLE);
			ptl_unlock(t);
			r->l->state[i] = (i & 1) ? S_NONE : S_TABLE; /* no entries */
		}
		r->agains++;
		cover.agains++;
		walk->action = ACTION_AGAIN;
		return 0;
	}
	if (s == S_LEAF || r->mode == 1) {
		walk->action = ACTION_CONTINUE;
		r->at = next;
	}
	return 0;
}

/* One walk of [start, end) with the given ops, checked to the end (or to
 * the stop). */
static void walk_checked(struct dmm_mm *mm, struct layout *l, uint64_t start, uint64_t end, unsigned int mode,
			 bool ptl, unsigned long stop_at)
{
	struct mm_walk_ops ops = {
		.pmd_entry = rec_pmd,
		.pte_entry = rec_pte,
		.pte_hole = rec_hole,
		.flags = ptl ? MM_WALK_PTL : 0,
	};
	struct rec *r = calloc(1, sizeof(*r));
	uint64_t expect_pages = 0;
	int rc;

	assert_non_null(r);
	r->l = l;
	r->mm = mm;
	r->start = r->at = start;
	r->end = end;
	r->mode = mode;
	r->ptl = ptl;
	r->stop_at = stop_at;
	/* No mmap_lock: nothing else runs in this mm, and a failed assertion
	 * in a callback leaves the walk by longjmp. */
	rc = walk_page_range(mm, start, end, &ops, r);
	if (stop_at && r->stopped) {
		assert_int_equal(rc, STOP);
		assert_int_equal(r->events, stop_at);
		cover.stops++;
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(r->at, end); /* every address accounted for */
		/* every page of every TABLE slot went to pte_entry, unless
		 * mode 1 skipped them */
		for (uint64_t a = start & ~(SPAN1 - 1); a < end; a += SPAN1) {
			if (a + SPAN1 <= REGION_START || a >= slot_addr(NSLOTS))
				continue;
			if (l->state[slot_of(a)] == S_TABLE && mode != 1)
				expect_pages += (DMM_MIN(a + SPAN1, end) - DMM_MAX(a, start)) / PAGE_SIZE;
		}
		assert_int_equal(r->ptes, expect_pages);
	}
	free(r);
}

/* A pte_entry-only walk without holes cannot keep r->at: check it with
 * its own callback. */
struct plain {
	struct layout *l;
	uint64_t last;
	unsigned long n;
};

static int plain_pte(_Atomic pte_t *pte, pte_t e, uint64_t addr, struct mm_walk *walk)
{
	struct plain *p = walk->private;

	(void)pte;
	assert_true(p->n == 0 || addr > p->last);
	assert_int_equal(p->l->state[slot_of(addr)], S_TABLE);
	assert_int_equal(e, ref_entry(p->l, addr));
	p->last = addr;
	p->n++;
	return 0;
}

static uint64_t random_addr(uint64_t *seed)
{
	uint64_t a;

	switch (rng(seed) % 4) {
	case 0: /* a directory boundary of some level, or just around it */
		a = REGION_START + (rng(seed) % 7) * SPAN2;
		if (rng(seed) & 1)
			a = a - PAGE_SIZE + (rng(seed) % 3) * PAGE_SIZE;
		return a;
	case 1: /* a PMD boundary */
		return slot_addr((unsigned int)(rng(seed) % NSLOTS));
	default: /* anywhere, page aligned */
		return REGION_START + (rng(seed) % (NSLOTS * PTRS_PER_TABLE)) * PAGE_SIZE;
	}
}

static void test_random_walks(void **state)
{
	struct fx *f = *state;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	memset(&cover, 0, sizeof(cover));

	for (unsigned int round = 0; round < 12; round++) {
		struct layout *l = calloc(1, sizeof(*l));
		struct dmm_mm *mm;

		assert_non_null(l);
		OK(dmm_mm_create(f->sys, &mm));
		build(mm, l, rng(&seed));
		for (unsigned int w = 0; w < 60; w++) {
			uint64_t a = random_addr(&seed), b = random_addr(&seed);
			unsigned int mode = (unsigned int)(rng(&seed) % 3);
			bool ptl = rng(&seed) & 1;
			unsigned long stop = (rng(&seed) % 3 == 0) ? 1 + rng(&seed) % 200 : 0;

			if (a == b)
				b += PAGE_SIZE;
			if (a > b) {
				uint64_t t = a;

				a = b;
				b = t;
			}
			if (rng(&seed) % 8 == 0) /* the whole region and beyond */
				a = REGION_START - SPAN2, b = 2 * SPAN3 + SPAN2; /* into an empty pgd entry */
			walk_checked(mm, l, a, b, mode, ptl, stop);
		}
		/* a walker without pmd_entry or pte_hole: only TABLE slots'
		 * entries, in order (no leaf is left after the mode-2 walks
		 * that hit them; the rest are skipped below) */
		{
			struct plain p = { .l = l };
			struct mm_walk_ops ops = { .pte_entry = plain_pte };
			uint64_t expect = 0;

			for (unsigned int i = 0; i < NSLOTS; i++) {
				if (l->state[i] == S_LEAF) {
					struct dmm_pte_table *t = pmd_lookup(mm, slot_addr(i), &(pte_t){ 0 });

					ptl_lock(t);
					pmd_set(t, PMD_TABLE);
					ptl_unlock(t);
					l->state[i] = S_TABLE;
				}
				if (l->state[i] == S_TABLE)
					expect += PTRS_PER_TABLE;
			}
			assert_int_equal(walk_page_range(mm, REGION_START, slot_addr(NSLOTS), &ops, &p), 0);
			assert_int_equal(p.n, expect);
		}
		unbuild(mm, l);
		dmm_mm_exit(mm);
		free(l);
	}
	CHECK_OK(f->sys);
	print_message("%lu holes (%lu, %lu, %lu by level), %lu pmd_entry, %lu pte_entry, %lu AGAIN, %lu stops\n",
		      cover.holes[1] + cover.holes[2] + cover.holes[3], cover.holes[1], cover.holes[2],
		      cover.holes[3], cover.pmds, cover.ptes, cover.agains, cover.stops);
	for (int level = 1; level < PT_LEVELS; level++)
		assert_true(cover.holes[level] > 0);
	assert_true(cover.pmds > 0 && cover.ptes > 0 && cover.agains > 0 && cover.stops > 0);
	assert_true(cover.ptl_ptes > 0 && cover.ptl_ptes < cover.ptes);
}

/* Each state of a slot word, one walk each, with every callback. */
static void test_slot_states(void **state)
{
	struct fx *f = *state;
	struct layout *l = calloc(1, sizeof(*l));
	struct dmm_mm *mm;
	struct dmm_pte_table *t;
	pte_t pmd;

	assert_non_null(l);
	OK(dmm_mm_create(f->sys, &mm));
	/* nothing at all: one hole per level down from the pgd */
	walk_checked(mm, l, slot_addr(5), slot_addr(6), 0, true, 0);

	/* a NONE slot is a hole at level 1 */
	t = pmd_alloc(mm, slot_addr(5));
	assert_non_null(t);
	l->state[5] = S_NONE;
	assert_ptr_equal(pmd_lookup(mm, slot_addr(5), &pmd), t);
	assert_true(pmd_none(pmd));
	assert_null(pte_lookup(mm, slot_addr(5)));
	walk_checked(mm, l, slot_addr(4), slot_addr(7), 0, true, 0);

	/* a leaf goes to pmd_entry, which handles it */
	ptl_lock(t);
	pmd_set(t, leaf_for(slot_addr(5)));
	ptl_unlock(t);
	l->state[5] = S_LEAF;
	assert_ptr_equal(pmd_lookup(mm, slot_addr(5), &pmd), t);
	assert_true(pmd_is_leaf(pmd) && pmd_leaf_present(pmd));
	walk_checked(mm, l, slot_addr(4), slot_addr(7), 0, false, 0);

	/* leaf -> NONE by AGAIN (a "zap" of the leaf, odd slots): a hole */
	walk_checked(mm, l, slot_addr(5), slot_addr(5) + 3 * PAGE_SIZE, 2, true, 0);
	assert_int_equal(l->state[5], S_NONE);
	assert_true(pmd_none(pmd_get(t)));
	assert_null(pte_lookup(mm, slot_addr(5)));

	/* leaf -> TABLE by AGAIN (a "split", even slots), then its entries */
	t = pmd_alloc(mm, slot_addr(6));
	assert_non_null(t);
	ptl_lock(t);
	pmd_set(t, leaf_for(slot_addr(6)));
	ptl_unlock(t);
	l->state[6] = S_LEAF;
	walk_checked(mm, l, slot_addr(5) + PAGE_SIZE, slot_addr(6) + 3 * PAGE_SIZE, 2, true, 0);
	assert_int_equal(l->state[6], S_TABLE);
	assert_true(pmd_is_table(pmd_get(t)));
	assert_ptr_equal(pte_lookup(mm, slot_addr(6)), t);

	/* pte_alloc turns a NONE slot into TABLE, under the PTL */
	t = pmd_alloc(mm, slot_addr(7));
	assert_true(pmd_none(pmd_get(t)));
	assert_ptr_equal(pte_alloc(mm, slot_addr(7) + 5 * PAGE_SIZE), t);
	assert_true(pmd_is_table(pmd_get(t)));
	l->state[7] = S_TABLE;
	walk_checked(mm, l, slot_addr(5), slot_addr(9), 0, true, 0);
	dmm_mm_exit(mm);
	free(l);
	CHECK_OK(f->sys);
}

/* dmm_check sees the slot word: a NONE slot with an entry, and a leaf,
 * are reported; NONE and TABLE slots as they should be are not. */
static void test_check_slot_word(void **state)
{
	struct fx *f = *state;
	static char report[4096];
	struct dmm_pte_table *t;

	MAP_ANON(f->mm, TBASE, 2 * PTRS_PER_TABLE);
	FILL(f->mm, TBASE, 3 * PG, 0x33);
	t = pmd_alloc(f->mm, TBASE + SPAN1); /* a NONE slot inside the VMA */
	assert_non_null(t);
	assert_true(pmd_none(pmd_get(t)));
	CHECK_OK(f->sys);

	pte_set(&t->ent[3], entry_for(TBASE + SPAN1 + 3 * PG));
	assert_int_not_equal(dmm_check(f->sys, report, sizeof(report)), 0);
	assert_non_null(strstr(report, "under a NONE PMD slot"));
	pte_set(&t->ent[3], 0);
	CHECK_OK(f->sys);

	ptl_lock(t);
	pmd_set(t, leaf_for(TBASE + SPAN1));
	ptl_unlock(t);
	report[0] = '\0';
	assert_int_not_equal(dmm_check(f->sys, report, sizeof(report)), 0);
	assert_non_null(strstr(report, "not the head of a live order-9 anon folio"));
	ptl_lock(t);
	pmd_set(t, PMD_NONE);
	ptl_unlock(t);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, 3 * PG, 0x33);
}

/* The split point: a walk that goes down into a PMD leaf (a walker with
 * a pte_entry, or a pmd_entry that leaves the leaf to the walker) splits
 * it (split_huge_pmd) and walks the 512 PTEs; a walker with neither
 * callback passes over it. */
static int count_pte(_Atomic pte_t *pte, pte_t e, uint64_t addr, struct mm_walk *walk)
{
	(void)pte, (void)addr;
	*(unsigned int *)walk->private += pte_present(e);
	return 0;
}

static int subtree_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t next, struct mm_walk *walk)
{
	(void)t, (void)pmd, (void)addr, (void)next, (void)walk;
	return 0; /* ACTION_SUBTREE, as a walker that leaves leaves to the walker */
}

static void test_split_point(void **state)
{
	struct fx *f = *state;
	static const struct mm_walk_ops pte_only = { .pte_entry = count_pte };
	static const struct mm_walk_ops pmd_and_pte = { .pmd_entry = subtree_pmd, .pte_entry = count_pte };
	static const struct mm_walk_ops nothing = { 0 };
	struct dmm_pte_table *t;
	unsigned int n = 0;
	uint32_t w = 1;
	pte_t pmd;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 2 * PTRS_PER_TABLE);
	FILL(f->mm, TBASE, PG, 0x44);	       /* a THP */
	OK(dmm_load32(f->mm, TBASE + SPAN1, &w)); /* the huge zero PMD */
	assert_int_equal(w, 0);
	t = pmd_lookup(f->mm, TBASE, &pmd);
	assert_true(t && pmd_leaf_present(pmd));
	mmap_read_lock(f->mm);
	assert_int_equal(walk_page_range(f->mm, TBASE, TBASE + 2 * SPAN1, &nothing, NULL), 0);
	assert_true(pmd_is_leaf(pmd_get(t)));
	assert_int_equal(walk_page_range(f->mm, TBASE, TBASE + PAGE_SIZE, &pte_only, &n), 0);
	assert_int_equal(n, 1);
	assert_true(pmd_is_table(pmd_get(t)));
	assert_int_equal(walk_page_range(f->mm, TBASE + SPAN1, TBASE + 2 * SPAN1, &pmd_and_pte, &n), 0);
	assert_int_equal(n, 1 + PTRS_PER_TABLE);
	mmap_read_unlock(f->mm);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, PG, 0x44);
	OK(dmm_load32(f->mm, TBASE + SPAN1 + 8, &w));
	assert_int_equal(w, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slot_states, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_random_walks, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_check_slot_word, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_split_point, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
