/* SPDX-License-Identifier: MIT */
/*
 * Large folios (large-folios.md §1.1, §1.2, §4.1, §4.3, §4.4): the shape
 * of a folio in struct dmm_page, references and the lock acting on the
 * folio through any page, the allocator's large blocks, and dmm_check
 * noticing a broken folio. White box: no mapping path creates large
 * folios yet, so the tests allocate them through the internal interface.
 */
#include "helpers.h"

#include "internal.h"

static char report_buf[8192];

/* dmm_check must fail and say @what. */
#define CHECK_FAILS(sys, what)                                                              \
	do {                                                                                \
		EXPECT_RC(-EUCLEAN, dmm_check((sys), report_buf, sizeof(report_buf)));      \
		if (!strstr(report_buf, (what)))                                            \
			h_fail(__FILE__, __LINE__, "report lacks \"%s\":\n%s", (what), report_buf); \
	} while (0)

static uint64_t pfn_of(struct fx *f, struct dmm_page *p) { return page_to_pfn(f->sys, p); }

static void test_the_metadata_fits_the_budget(void **state)
{
	(void)state;
	TRUE(sizeof(struct dmm_page) <= 56);
}

static void test_every_large_order_is_aligned_and_whole(void **state)
{
	struct fx *f = *state;

	for (unsigned int order = FOLIO_MIN_LARGE_ORDER; order <= FOLIO_MAX_ORDER; order++) {
		struct dmm_page *h = folio_alloc(f->sys, order, GFP_ZERO);
		uint64_t n = 1ull << order;

		assert_non_null(h);
		EQ(pfn_of(f, h) & (n - 1), 0);
		EQ(folio_order(h), order);
		EQ(folio_nr_pages(h), n);
		TRUE(folio_test_large(h));
		TRUE(!page_is_tail(h));
		for (uint64_t i = 0; i < n; i++) {
			TRUE(page_folio(&h[i]) == h);
			TRUE(i == 0 || page_is_tail(&h[i]));
			EQ(page_ref_count(&h[i]), 1);
			EQ(atomic_load(&h[i].refcount), i == 0);
			for (uint64_t b = 0; b < PAGE_SIZE; b += 512)
				EQ(((uint8_t *)page_address(f->sys, &h[i]))[b], 0);
		}
		EQS(folio_mapcount(h), 0);
		EQS(folio_entire_mapcount(h), 0);
		CHECK_OK(f->sys);
		put_page(f->sys, h);
		CHECK_OK(f->sys);
	}
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_refs_and_lock_through_a_tail_act_on_the_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h = folio_alloc(f->sys, 4, 0);
	struct dmm_page *t = &h[9], *g = NULL;
	struct dmm_page_info pi;

	assert_non_null(h);
	get_page(t);
	EQ(atomic_load(&h->refcount), 2);
	EQ(atomic_load(&t->refcount), 0);
	OK(try_get_folio(f->sys, t, 3, &g));
	TRUE(g == h);
	EQ(page_ref_count(h), 5);
	TRUE(get_page_unless_zero(f->sys, &h[15]) == h);
	EQ(page_ref_count(t), 6);
	put_page_refs(f->sys, &h[1], 5);
	EQ(page_ref_count(h), 1);

	lock_page(f->sys, t);
	TRUE(page_locked(h));
	TRUE(page_locked(&h[3]));
	TRUE(!trylock_page(h));
	TRUE(!trylock_page(&h[15]));
	unlock_page(f->sys, &h[2]);
	TRUE(!page_locked(h));
	TRUE(trylock_page(&h[7]));
	unlock_page(f->sys, h);

	/* The query reports the folio's state on every page. */
	get_page(h);
	OK(dmm_page_query(f->sys, pfn_of(f, t), &pi));
	EQ(pi.refcount, 2);
	EQ(pi.order, 4);
	EQ(pi.head_pfn, pfn_of(f, h));
	EQS(pi.folio_mapcount, 0);
	put_page(f->sys, h);
	CHECK_OK(f->sys);

	/* The last reference, dropped through a tail, frees all 16 frames. */
	put_page(f->sys, &h[12]);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	EQ(atomic_load(&h[12].compound_head), 0);
	CHECK_OK(f->sys);
}

/* A driver's speculative reference by pfn (dmm_get_page) reads the page's
 * folio, then counts on it. In between, the hook frees that folio and
 * splits its block into two new folios: the folio pointer read is G's
 * head now, the page is H's. The reference must go to H, and G must get
 * back exactly what was added to it. */
static struct fx *reuse_fx;
static struct dmm_page *reuse_old, *reuse_g, *reuse_h;

static void free_and_reuse(struct dmm_page *page, struct dmm_page *folio)
{
	(void)page;
	if (folio != reuse_old || reuse_g)
		return;
	put_page(reuse_fx->sys, reuse_old);
	reuse_g = folio_alloc(reuse_fx->sys, 2, 0);
	reuse_h = folio_alloc(reuse_fx->sys, 3, 0);
}

static void test_a_pfn_reference_rechecks_the_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h = folio_alloc(f->sys, 4, 0);

	assert_non_null(h);
	reuse_fx = f;
	reuse_old = h;
	reuse_g = reuse_h = NULL;
	atomic_store(&try_get_folio_hook, free_and_reuse);
	OK(dmm_get_page(f->sys, pfn_of(f, &h[8])));
	atomic_store(&try_get_folio_hook, NULL);
	TRUE(reuse_g == h);
	TRUE(reuse_h == &h[8]);
	EQ(page_ref_count(reuse_g), 1);
	EQ(page_ref_count(reuse_h), 2);
	CHECK_OK(f->sys);
	dmm_put_page(f->sys, pfn_of(f, reuse_h));
	put_page(f->sys, reuse_g);
	put_page(f->sys, reuse_h);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	CHECK_OK(f->sys);
}

static void test_folio_flags_live_on_the_head(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h = folio_alloc(f->sys, 2, 0);

	assert_non_null(h);
	page_set(&h[3], PG_dirty | PG_anon_exclusive);
	TRUE(page_flags(h) & PG_dirty);
	TRUE(!(page_flags(&h[3]) & PG_dirty));
	TRUE(page_test(&h[1], PG_dirty));
	/* Exclusivity is per page. */
	TRUE(page_test(&h[3], PG_anon_exclusive));
	TRUE(!page_test(h, PG_anon_exclusive));
	TRUE(!page_test(&h[2], PG_anon_exclusive));
	page_clear(&h[2], PG_dirty);
	TRUE(!page_test(h, PG_dirty));
	page_clear(&h[3], PG_anon_exclusive);
	put_page(f->sys, h);
	CHECK_OK(f->sys);
}

static void test_small_frames_fill_the_alignment_gap(void **state)
{
	struct fx *f = *state;
	struct dmm_page *p = folio_alloc(f->sys, 0, 0), *h, *q;

	/* The first order-0 frame takes the start of the never-used memory:
	 * an order-9 block must skip to the next 512-aligned pfn. */
	assert_non_null(p);
	h = folio_alloc(f->sys, 9, 0);
	assert_non_null(h);
	EQ(pfn_of(f, h) & 511, 0);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 1 - 512);
	CHECK_OK(f->sys);
	q = folio_alloc(f->sys, 0, 0);
	assert_non_null(q);
	TRUE(pfn_of(f, q) < pfn_of(f, h));
	put_page(f->sys, q);
	put_page(f->sys, p);
	put_page(f->sys, h);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	CHECK_OK(f->sys);
}

static void test_no_block_left_is_a_null(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h[8];
	unsigned int n = 0;

	/* 4096 frames hold seven 512-aligned blocks above pfn 0's block. */
	while (n < 8 && (h[n] = folio_alloc(f->sys, 9, 0)))
		n++;
	EQ(n, 7);
	CHECK_OK(f->sys);
	while (n)
		put_page(f->sys, h[--n]);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_check_finds_a_broken_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h = folio_alloc(f->sys, 3, 0);
	uintptr_t ch;

	assert_non_null(h);
	CHECK_OK(f->sys);

	/* A tail with a reference of its own. */
	atomic_store(&h[5].refcount, 1);
	CHECK_FAILS(f->sys, "not a clean tail");
	atomic_store(&h[5].refcount, 0);

	/* A tail pointing at another head. */
	ch = atomic_load(&h[6].compound_head);
	atomic_store(&h[6].compound_head, (uintptr_t)&h[1] | 1);
	CHECK_FAILS(f->sys, "not a clean tail");
	atomic_store(&h[6].compound_head, ch);

	/* A folio mapcount that no entry accounts for. */
	atomic_store(&h[1].large_mapcount, 1);
	CHECK_FAILS(f->sys, "folio mapcount 1 but 0 entries");
	atomic_store(&h[1].large_mapcount, 0);

	/* A page mapcount without an entry. */
	atomic_store(&h[2].mapcount, 1);
	CHECK_FAILS(f->sys, "page mapcount 1 but 0 entries");
	atomic_store(&h[2].mapcount, 0);

	/* An entire mapcount without a PMD. */
	atomic_store(&h[1].entire_mapcount, 1);
	CHECK_FAILS(f->sys, "entire mapcount 1");
	atomic_store(&h[1].entire_mapcount, 0);

	/* An order that the pfn is not aligned to. */
	atomic_store(&h->compound_head, (uintptr_t)9 << 1);
	CHECK_FAILS(f->sys, "does not fit");
	atomic_store(&h->compound_head, (uintptr_t)3 << 1);

	/* Pins of a large folio are exact: the refcount must cover them. */
	atomic_store(&h->pincount, 2);
	CHECK_FAILS(f->sys, "below mapcount 0 + pins 2");
	atomic_store(&h->pincount, 0);

	CHECK_OK(f->sys);
	put_page(f->sys, h);
	CHECK_OK(f->sys);
}

static void test_a_freed_large_folio_is_reused_whole(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h = folio_alloc(f->sys, 9, 0), *g;
	uint64_t pfn;

	assert_non_null(h);
	pfn = pfn_of(f, h);
	memset(page_address(f->sys, &h[77]), 0xab, PAGE_SIZE);
	put_page(f->sys, h);
	CHECK_OK(f->sys);
	g = folio_alloc(f->sys, 9, GFP_ZERO);
	assert_non_null(g);
	EQ(pfn_of(f, g), pfn);
	EQ(((uint8_t *)page_address(f->sys, &g[77]))[100], 0);
	put_page(f->sys, g);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_a_larger_block_is_split_buddy_fashion(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h = folio_alloc(f->sys, 9, 0), *a, *b, *c;
	uint64_t pfn;

	assert_non_null(h);
	pfn = pfn_of(f, h);
	put_page(f->sys, h);
	a = folio_alloc(f->sys, 2, 0);
	b = folio_alloc(f->sys, 2, 0);
	c = folio_alloc(f->sys, 8, 0);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	EQ(pfn_of(f, a), pfn);
	EQ(pfn_of(f, b), pfn + 4);
	EQ(pfn_of(f, c), pfn + 256);
	EQ(folio_order(c), 8);
	CHECK_OK(f->sys);
	put_page(f->sys, b);
	put_page(f->sys, a);
	put_page(f->sys, c);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_small_allocations_break_a_free_block_last(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h[7], **small;
	uint64_t n = 0, nfree;

	/* Use up the never-used memory with large folios, then free one. */
	for (unsigned int i = 0; i < 7; i++) {
		h[i] = folio_alloc(f->sys, 9, 0);
		assert_non_null(h[i]);
	}
	put_page(f->sys, h[3]);
	nfree = dmm_system_nr_free(f->sys);
	small = calloc(nfree + 1, sizeof(*small));
	assert_non_null(small);
	while (n <= nfree && (small[n] = folio_alloc(f->sys, 0, 0)))
		n++;
	/* Every free frame was handed out, the free block's last. */
	EQ(n, nfree);
	TRUE(small[n - 1] >= h[3] && small[n - 1] < h[3] + 512);
	TRUE(small[0] < h[3] || small[0] >= h[3] + 512);
	CHECK_OK(f->sys);
	TRUE(folio_alloc(f->sys, 2, 0) == NULL);
	while (n)
		put_page(f->sys, small[--n]);
	free(small);
	for (unsigned int i = 0; i < 7; i++)
		if (i != 3)
			put_page(f->sys, h[i]);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_large_allocations_have_their_own_injection_site(void **state)
{
	struct fx *f = *state;
	struct dmm_inject_config cfg = { .countdown = 2 };
	struct dmm_page *a, *b, *c, *p;

	EQ(dmm_inject_site_by_name("thp_alloc"), DMM_INJECT_THP_ALLOC);
	OK(dmm_inject_set(f->sys, DMM_INJECT_THP_ALLOC, &cfg));
	a = folio_alloc(f->sys, 4, 0);
	p = folio_alloc(f->sys, 0, 0); /* order 0 does not count */
	b = folio_alloc(f->sys, 9, 0);
	c = folio_alloc(f->sys, 9, 0);
	assert_non_null(a);
	assert_non_null(p);
	TRUE(b == NULL);
	assert_non_null(c);
	EQ(dmm_inject_count(f->sys, DMM_INJECT_THP_ALLOC), 1);
	put_page(f->sys, a);
	put_page(f->sys, c);
	put_page(f->sys, p);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* A large folio mapped by PTEs (white box: what an mTHP fault will do)      */

/* Map a new order-@order anon folio at @addr (aligned) in f->mm, every
 * page exclusive, writable; returns its head. */
static struct dmm_page *map_folio(struct fx *f, uint64_t addr, unsigned int order)
{
	struct dmm_page *h = folio_alloc(f->sys, order, GFP_ZERO);
	uint64_t n = 1ull << order, pfn;
	struct dmm_pte_table *t;
	struct dmm_vma *v;

	assert_non_null(h);
	pfn = pfn_of(f, h);
	mmap_read_lock(f->mm);
	v = vma_lookup(f->mm, addr);
	assert_non_null(v);
	OK(anon_vma_prepare(v));
	t = pte_alloc(f->mm, addr);
	assert_non_null(t);
	ptl_lock(t);
	folio_add_new_anon_rmap(h, v, addr, RMAP_EXCLUSIVE);
	page_ref_add(h, (uint32_t)n - 1); /* one reference per PTE */
	for (uint64_t i = 0; i < n; i++)
		pte_set(pte_slot(t, addr + i * PG),
			pfn_pte(pfn + i, _PTE_WRITE | _PTE_DIRTY | _PTE_YOUNG | vma_prot_bits(v)));
	add_mm_counter(f->mm, DMM_MM_ANONPAGES, (long)n);
	ptl_unlock(t);
	mmap_read_unlock(f->mm);
	return h;
}

static struct dmm_page_info query(struct fx *f, uint64_t pfn)
{
	struct dmm_page_info pi;

	OK(dmm_page_query(f->sys, pfn, &pi));
	return pi;
}

static long queued(struct fx *f)
{
	long n;

	pthread_mutex_lock(&f->sys->deferred_split.lock);
	n = f->sys->deferred_split.len;
	pthread_mutex_unlock(&f->sys->deferred_split.lock);
	return n;
}

static void test_a_pte_mapped_folio_counts_each_pte(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 32);
	h = map_folio(f, TBASE + 16 * PG, 4);
	pfn = pfn_of(f, h);
	CHECK_OK(f->sys);
	EQ(query(f, pfn + 5).order, 4);
	EQS(query(f, pfn + 5).folio_mapcount, 16);
	EQS(query(f, pfn + 5).mapcount, 1);
	EQ(query(f, pfn + 5).refcount, 16);
	EQS(folio_nr_pages_mapped(h), 16);
	FLAGS(query(f, pfn + 5).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_PARTIALLY_MAPPED);
	EQ(PFN(f->mm, TBASE + 21 * PG), pfn + 5);
	/* Exclusive and writable: written in place. */
	FILL(f->mm, TBASE + 16 * PG, 16 * PG, 0x100);
	VERIFY(f->mm, TBASE + 16 * PG, 16 * PG, 0x100);
	EQ(PFN(f->mm, TBASE + 21 * PG), pfn + 5);
	CHECK_OK(f->sys);
}

static void test_partial_munmap_queues_the_folio_and_keeps_it_large(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h;
	uint64_t pfn, nfree;

	MAP_ANON(f->mm, TBASE, 32);
	h = map_folio(f, TBASE + 16 * PG, 4);
	pfn = pfn_of(f, h);
	FILL(f->mm, TBASE + 16 * PG, 16 * PG, 0x200);
	nfree = dmm_system_nr_free(f->sys);
	OK(dmm_munmap(f->mm, TBASE + 20 * PG, 4 * PG));
	CHECK_OK(f->sys);
	/* Nothing is freed: the folio stays large, partially mapped, queued. */
	EQ(dmm_system_nr_free(f->sys), nfree);
	EQ(query(f, pfn).order, 4);
	EQS(query(f, pfn).folio_mapcount, 12);
	EQ(query(f, pfn).refcount, 12);
	EQS(query(f, pfn + 4).mapcount, 0);
	EQS(folio_nr_pages_mapped(h), 12);
	FLAGS(query(f, pfn + 9).flags, DMM_PAGE_PARTIALLY_MAPPED, 0);
	EQ(queued(f), 1);
	VERIFY(f->mm, TBASE + 24 * PG, 8 * PG, 0x200 + 8 * PG / 4);
	/* A second partial unmap does not queue it twice. */
	OK(dmm_munmap(f->mm, TBASE + 16 * PG, 2 * PG));
	EQ(queued(f), 1);
	CHECK_OK(f->sys);
	/* The last mapping gone, the folio is freed whole and leaves the queue. */
	OK(dmm_munmap(f->mm, TBASE, 32 * PG));
	EQ(queued(f), 0);
	FLAGS(query(f, pfn + 9).flags, DMM_PAGE_FREE, DMM_PAGE_PARTIALLY_MAPPED);
	CHECK_OK(f->sys);
}

static void test_dontneed_of_the_whole_folio_queues_nothing(void **state)
{
	struct fx *f = *state;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 16);
	pfn = pfn_of(f, map_folio(f, TBASE, 3));
	OK(dmm_madvise(f->mm, TBASE, 8 * PG, DMM_MADV_DONTNEED));
	EQ(queued(f), 0);
	FLAGS(query(f, pfn).flags, DMM_PAGE_FREE, 0);
	CHECK_OK(f->sys);
}

static void test_fork_shares_every_page_of_the_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 16);
	pfn = pfn_of(f, map_folio(f, TBASE, 2));
	FILL(f->mm, TBASE, 4 * PG, 0x300);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQS(query(f, pfn + 2).folio_mapcount, 8);
	EQS(query(f, pfn + 2).mapcount, 2);
	EQ(query(f, pfn + 2).refcount, 8);
	FLAGS(query(f, pfn + 2).flags, 0, DMM_PAGE_ANON_EXCLUSIVE);
	VERIFY(child, TBASE, 4 * PG, 0x300);
	/* The child's partial unmap leaves every page mapped by the parent:
	 * the folio is not partially mapped. */
	OK(dmm_munmap(child, TBASE, PG));
	EQS(query(f, pfn).folio_mapcount, 7);
	EQ(queued(f), 0);
	dmm_mm_exit(child);
	EQS(query(f, pfn + 2).folio_mapcount, 4);
	EQ(query(f, pfn + 2).refcount, 4);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, 4 * PG, 0x300);
}

static void test_a_pin_of_a_large_folio_is_exact(void **state)
{
	struct fx *f = *state;
	uint64_t pfn, got[2];

	MAP_ANON(f->mm, TBASE, 16);
	pfn = pfn_of(f, map_folio(f, TBASE, 3));
	EQ(dmm_get_user_pages(f->mm, TBASE + 2 * PG, 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, &got[0]), 1);
	EQ(dmm_get_user_pages_fast(f->mm, TBASE + 5 * PG, 1, DMM_FOLL_PIN, &got[1]), 1);
	EQ(got[0], pfn + 2);
	EQ(got[1], pfn + 5);
	/* No 1024 bias: one reference and one pincount per page. */
	EQ(query(f, pfn + 7).refcount, 8 + 2);
	EQ(query(f, pfn + 7).pincount, 2);
	CHECK_OK(f->sys);
	dmm_unpin_user_pages(f->sys, got, 2);
	EQ(query(f, pfn).refcount, 8);
	EQ(query(f, pfn).pincount, 0);
	CHECK_OK(f->sys);
}

static void test_check_finds_a_bad_deferred_queue(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h;

	MAP_ANON(f->mm, TBASE, 16);
	h = map_folio(f, TBASE, 2);
	page_set(h, PG_partially_mapped);
	CHECK_FAILS(f->sys, "not queued for deferred split");
	page_clear(h, PG_partially_mapped);
	f->sys->deferred_split.len = 1;
	CHECK_FAILS(f->sys, "0 folios queued, the count says 1");
	f->sys->deferred_split.len = 0;
	CHECK_OK(f->sys);
}

/* The reverse rule: a partially mapped anon folio that was never flagged
 * or never queued. */
static void test_check_finds_an_unqueued_partial_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h;

	MAP_ANON(f->mm, TBASE, 16);
	h = map_folio(f, TBASE, 2);
	OK(dmm_munmap(f->mm, TBASE + PG, PG));
	CHECK_OK(f->sys);
	folio_unqueue_deferred_split(f->sys, h);
	CHECK_FAILS(f->sys, "3 of 4 pages mapped but not flagged and queued for deferred split");
	deferred_split_folio(f->sys, h, false);
	CHECK_FAILS(f->sys, "3 of 4 pages mapped but not flagged and queued for deferred split");
	page_set(h, PG_partially_mapped);
	CHECK_OK(f->sys);
}

/* The allocator's counters against its lists: the large free blocks'
 * frame count, and every list's count together. */
static void test_check_compares_the_free_counts_with_the_lists(void **state)
{
	struct fx *f = *state;
	struct dmm_page *h = folio_alloc(f->sys, 4, 0);

	assert_non_null(h);
	put_page(f->sys, h);
	EQ(f->sys->large_free.frames, 16);
	CHECK_OK(f->sys);
	f->sys->large_free.frames += 4;
	CHECK_FAILS(f->sys, "16 frames in large free blocks, their count says 20");
	f->sys->large_free.frames -= 4;
	CHECK_OK(f->sys);
	f->sys->shards[0].count++;
	CHECK_FAILS(f->sys, "frames free on the lists, their counts say");
	f->sys->shards[0].count--;
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_the_metadata_fits_the_budget),
		T(test_every_large_order_is_aligned_and_whole),
		T(test_refs_and_lock_through_a_tail_act_on_the_folio),
		T(test_a_pfn_reference_rechecks_the_folio),
		T(test_folio_flags_live_on_the_head),
		T(test_small_frames_fill_the_alignment_gap),
		T(test_no_block_left_is_a_null),
		T(test_check_finds_a_broken_folio),
		T(test_a_freed_large_folio_is_reused_whole),
		T(test_a_larger_block_is_split_buddy_fashion),
		T(test_small_allocations_break_a_free_block_last),
		T(test_large_allocations_have_their_own_injection_site),
		T(test_a_pte_mapped_folio_counts_each_pte),
		T(test_partial_munmap_queues_the_folio_and_keeps_it_large),
		T(test_dontneed_of_the_whole_folio_queues_nothing),
		T(test_fork_shares_every_page_of_the_folio),
		T(test_a_pin_of_a_large_folio_is_exact),
		T(test_check_finds_a_bad_deferred_queue),
		T(test_check_finds_an_unqueued_partial_folio),
		T(test_check_compares_the_free_counts_with_the_lists),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
