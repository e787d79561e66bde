/* SPDX-License-Identifier: MIT */
/*
 * The reference-count limit (semantics.md §3.7: a reference or pin that
 * would overflow the count fails with ENOMEM instead of wrapping). White
 * box: bringing a count near 2^31 through the API would take millions of
 * pins, so the tests set it directly through the internal headers, check
 * the limit on both GUP paths and on dmm_get_page, and put the count back
 * before the invariant check.
 */
#include "helpers.h"

#include "internal.h"

#define GET DMM_FOLL_GET
#define PIN DMM_FOLL_PIN
#define WR DMM_FOLL_WRITE
#define LT DMM_FOLL_LONGTERM

typedef long (*gup_fn)(struct dmm_mm *, uint64_t, unsigned long, unsigned int, uint64_t *);

static struct dmm_page *frame(struct fx *f, uint64_t pfn)
{
	struct dmm_page *p = pfn_to_page(f->sys, pfn);

	assert_non_null(p);
	return p;
}

/* Add @delta to the frame's count behind the API's back; returns the old count. */
static uint32_t bump(struct fx *f, uint64_t pfn, uint32_t delta)
{
	return atomic_fetch_add(&frame(f, pfn)->refcount, delta);
}

static void unbump(struct fx *f, uint64_t pfn, uint32_t delta)
{
	atomic_fetch_sub(&frame(f, pfn)->refcount, delta);
}

/* Nothing taken: count, pins and statistics as they were. */
#define UNCHANGED(f, pfn, ref, s0)                                                         \
	do {                                                                               \
		COUNTS((f)->sys, pfn, ref, 1);                                             \
		EQ(PAGE((f)->sys, pfn).pincount, 0);                                       \
		EQ(STAT_DELTA((f)->sys, s0, pin_pages), 0);                                \
		EQ(STAT_DELTA((f)->sys, s0, gup_pages), 0);                                \
	} while (0)

static void pin_and_get_stop_at_the_limit(struct fx *f, gup_fn gup)
{
	uint64_t pfn, got = 0;
	uint32_t bias;
	struct dmm_stats s0;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0x40);
	pfn = PFN(f->mm, TBASE);

	/* A pin needs 1024 references; 1000 are left below the limit. */
	bias = PAGE_REF_MAX - 1000 - 1;
	bump(f, pfn, bias);
	s0 = STATS(f->sys);
	EXPECT_RC(-ENOMEM, gup(f->mm, TBASE, 1, PIN, &got));
	EXPECT_RC(-ENOMEM, gup(f->mm, TBASE, 1, PIN | WR | LT, &got));
	UNCHANGED(f, pfn, 1 + bias, s0);
	TRUE(PTE(f->mm, TBASE).write);
	/* One more reference fits. */
	EQS(gup(f->mm, TBASE, 1, GET | WR, &got), 1);
	EQ(got, pfn);
	COUNTS(f->sys, pfn, 1 + bias + 1, 1);
	dmm_put_user_pages(f->sys, &got, 1);
	unbump(f, pfn, bias);

	/* A pin that lands exactly on the limit is fine. */
	bias = PAGE_REF_MAX - 1024 - 1;
	bump(f, pfn, bias);
	EQS(gup(f->mm, TBASE, 1, PIN, &got), 1);
	COUNTS(f->sys, pfn, PAGE_REF_MAX, 1);
	EQ(PAGE(f->sys, pfn).pincount, 1);
	/* At the limit nothing more is taken, not even one reference. */
	s0 = STATS(f->sys);
	EXPECT_RC(-ENOMEM, gup(f->mm, TBASE, 1, GET, &got));
	EXPECT_RC(-ENOMEM, dmm_get_page(f->sys, pfn));
	COUNTS(f->sys, pfn, PAGE_REF_MAX, 1);
	EQ(PAGE(f->sys, pfn).pincount, 1);
	EQ(STAT_DELTA(f->sys, s0, gup_pages), 0);
	dmm_unpin_user_pages(f->sys, &pfn, 1);
	unbump(f, pfn, bias);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 1, 1);
	VERIFY(f->mm, TBASE, PG, 0x40);
}

static void test_slow_gup_refuses_to_overflow_the_refcount(void **state)
{
	pin_and_get_stop_at_the_limit(*state, dmm_get_user_pages);
}

static void test_fast_gup_refuses_to_overflow_the_refcount(void **state)
{
	pin_and_get_stop_at_the_limit(*state, dmm_get_user_pages_fast);
}

/* A range stops at the page that is full: the pages before it are taken. */
static void test_a_full_page_ends_a_range_with_partial_success(void **state)
{
	struct fx *f = *state;
	uint64_t a, b, got[2] = { 0 };
	const uint32_t bias = PAGE_REF_MAX - 100 - 1;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 0x80);
	a = PFN(f->mm, TBASE);
	b = PFN(f->mm, TBASE + PG);
	bump(f, b, bias);
	EQS(dmm_get_user_pages(f->mm, TBASE, 2, PIN, got), 1);
	EQ(got[0], a);
	dmm_unpin_user_pages(f->sys, got, 1);
	EQS(dmm_get_user_pages_fast(f->mm, TBASE, 2, PIN, got), 1);
	EQ(got[0], a);
	dmm_unpin_user_pages(f->sys, got, 1);
	COUNTS(f->sys, b, 1 + bias, 1);
	EQ(PAGE(f->sys, b).pincount, 0);
	unbump(f, b, bias);
	CHECK_OK(f->sys);
	COUNTS(f->sys, a, 1, 1);
	COUNTS(f->sys, b, 1, 1);
}

/* A driver's dmm_get_page obeys the same limit. */
static void test_get_page_refuses_to_overflow_the_refcount(void **state)
{
	struct fx *f = *state;
	uint64_t pfn;
	const uint32_t bias = PAGE_REF_MAX - 1;

	OK(dmm_alloc_page(f->sys, &pfn));
	bump(f, pfn, bias);
	EXPECT_RC(-ENOMEM, dmm_get_page(f->sys, pfn));
	EQ(PAGE(f->sys, pfn).refcount, PAGE_REF_MAX);
	unbump(f, pfn, 1);
	OK(dmm_get_page(f->sys, pfn));
	EQ(PAGE(f->sys, pfn).refcount, PAGE_REF_MAX);
	unbump(f, pfn, bias);
	dmm_put_page(f->sys, pfn);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_slow_gup_refuses_to_overflow_the_refcount),
		T(test_fast_gup_refuses_to_overflow_the_refcount),
		T(test_a_full_page_ends_a_range_with_partial_success),
		T(test_get_page_refuses_to_overflow_the_refcount),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
