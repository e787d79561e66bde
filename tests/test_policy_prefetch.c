/* SPDX-License-Identifier: MIT */
/*
 * The tree prefetcher (src/policy/uvm_prefetch.c, spec section 1.3) on
 * hand-worked bitmaps. Pages are 4 KiB; a big page (BB) is 16 pages, a
 * 2 MiB block 512 pages. The tree over a full block has 10 levels: a node
 * at height h covers an aligned run of 2^h pages.
 *
 *   block  |BB0 |BB1 |BB2 |BB3 |BB4 ...BB7|BB8 ...  BB15|BB16 ...  BB31|
 *   pages   0    16   32   48   64        128           256          511
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy/uvm.h"

#define CPU 0
#define G1 1
#define BB 16u

struct pf {
	struct uvm_params params;
	struct uvm_prefetch_info info;
	struct pmask faulted, resident, readable, thrashing;
	struct uvm_prefetch_query q;
	struct uvm_prefetch_hint hint;
};

static void pf_init(struct pf *f, uvm_proc_t dest, unsigned int va_page, unsigned int npages)
{
	memset(f, 0, sizeof(*f));
	uvm_params_default(&f->params);
	uvm_prefetch_info_init(&f->info);
	f->q.va_page = va_page;
	f->q.first = 0;
	f->q.npages = npages;
	f->q.dest = dest;
	f->q.preferred = UVM_PROC_NONE;
	f->q.faulted = &f->faulted;
	f->q.dest_resident = &f->resident;
	f->q.cpu_readable = &f->readable;
	f->q.thrashing = &f->thrashing;
}

static bool hint(struct pf *f)
{
	return uvm_prefetch_get_hint(&f->params, &f->info, &f->q, &f->hint);
}

/* One batch faulting the pages of `faults`: the number of pages that move
 * (faulted plus prefetched, less those already on dest), which then become
 * resident on dest. */
static unsigned int batch(struct pf *f, const unsigned int *faults, unsigned int n)
{
	struct pmask moved;

	pmask_zero(&f->faulted);
	for (unsigned int i = 0; i < n; i++)
		pmask_set(&f->faulted, faults[i]);
	f->q.block_empty = pmask_empty(&f->resident);
	if (hint(f)) {
		assert_int_equal(f->hint.residency, f->q.dest);
		assert_int_equal(pmask_count_range(&f->hint.pages, 0, PMASK_PAGES), pmask_count(&f->hint.pages));
	}
	pmask_or(&moved, &f->faulted, &f->hint.pages);
	pmask_andnot(&moved, &moved, &f->resident);
	pmask_or(&f->resident, &f->resident, &moved);
	return pmask_count(&moved);
}

static unsigned int one_fault(struct pf *f, unsigned int page)
{
	return batch(f, &page, 1);
}

static bool range_is(const struct pmask *m, unsigned int first, unsigned int n)
{
	struct pmask r;

	pmask_zero(&r);
	pmask_set_range(&r, first, n);
	return pmask_equal(m, &r);
}

/*
 * The worked example of section 1.3: touches of BB0, BB1, BB2, BB4, BB8,
 * BB16, one fault per batch: 64K, 64K, 128K, 256K, 512K, 1M.
 */
static void worked_example(void **state)
{
	static const unsigned int touched[] = { 0, 1, 2, 4, 8, 16 };
	static const unsigned int kib[] = { 64, 64, 128, 256, 512, 1024 };
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	for (unsigned int i = 0; i < 6; i++)
		assert_int_equal(one_fault(&f, touched[i] * BB) * 4, kib[i]);
	assert_int_equal(pmask_count(&f.resident), 512);
	assert_int_equal(f.info.last_dest, G1);
	assert_int_equal(f.info.fault_count, 6);
}

/* Its derivation, node by node: at BB2 the 256 KiB node holds 48 of 64
 * leaves (75%), the 512 KiB node 48 of 128; BB3 is prefetched. */
static void worked_example_bb2_leaves(void **state)
{
	struct pf f;
	struct pmask leaves;

	(void)state;
	pf_init(&f, G1, 0, 512);
	pmask_set_range(&f.resident, 0, 32);
	pmask_set(&f.faulted, 32);
	uvm_prefetch_leaves(&f.q, &leaves);
	assert_true(range_is(&leaves, 0, 48));
	assert_true(hint(&f));
	/* The node [0, 64) less the faulted page; 0..31 are already resident. */
	assert_int_equal(pmask_count(&f.hint.pages), 63);
	assert_false(pmask_test(&f.hint.pages, 32));
	assert_true(pmask_test(&f.hint.pages, 63));
	assert_false(pmask_test(&f.hint.pages, 64));
}

/* The CPU fault path: D = CPU, the page comes back with its big page,
 * 4K faulted + 60K prefetched. */
static void cpu_fault_pulls_back_a_big_page(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, CPU, 0, 512);
	pmask_set(&f.faulted, 40);
	assert_true(hint(&f));
	assert_int_equal(pmask_count(&f.hint.pages), 15);
	for (unsigned int i = 32; i < 48; i++)
		assert_int_equal(pmask_test(&f.hint.pages, i), i != 40);
	/* Pages already resident and readable on the CPU are dropped. */
	pmask_set_range(&f.readable, 32, 4);
	assert_true(hint(&f));
	assert_int_equal(pmask_count(&f.hint.pages), 11);
	assert_false(pmask_test(&f.hint.pages, 33));
}

/* The walk does not stop at a failing level: [0,32) holds 16/32 (fails),
 * [0,64) 48/64 (qualifies) with 32..63 already resident. */
static void walk_skips_failing_levels(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	pmask_set_range(&f.resident, 32, 32);
	pmask_set(&f.faulted, 0);
	assert_true(hint(&f));
	assert_true(pmask_equal(&f.hint.pages, &(struct pmask){ { ~1ULL, 0 } }));
}

/* Several faults: each walks; the union is prefetched. */
static void several_faults(void **state)
{
	static const unsigned int faults[] = { 0, 300 };
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	assert_int_equal(batch(&f, faults, 2), 32);
	assert_true(pmask_test(&f.resident, 15));
	assert_true(pmask_test(&f.resident, 288));
	assert_true(pmask_test(&f.resident, 303));
	assert_false(pmask_test(&f.resident, 304));
}

/* Threshold 100: no node ever qualifies (count x 100 > pages x 100 never
 * holds), so only the faulted page moves. Threshold 1: one big page of a
 * block is 16/512 > 1%, the whole block comes. */
static void threshold_100_and_1(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	f.params.prefetch_threshold = 100;
	assert_int_equal(one_fault(&f, 0), 1);
	assert_false(hint(&f));
	assert_int_equal(one_fault(&f, 1), 1);

	pf_init(&f, G1, 0, 512);
	f.params.prefetch_threshold = 1;
	assert_int_equal(one_fault(&f, 200), 512);
	/* At 50, BB0 alone: 16/32 is not > 50%. */
	pf_init(&f, G1, 0, 512);
	f.params.prefetch_threshold = 50;
	assert_int_equal(one_fault(&f, 0), 16);
	assert_int_equal(one_fault(&f, 16), 16);
	assert_int_equal(one_fault(&f, 32), 32);
}

/* A block of 100 pages (the end of a range): six big pages and a 4-page
 * suffix unit. A fault at 97 grows the suffix; the walk stops at the
 * region's end. */
static void edge_block_suffix(void **state)
{
	struct pf f;
	struct pmask leaves;

	(void)state;
	pf_init(&f, G1, 0, 100);
	pmask_set(&f.faulted, 97);
	uvm_prefetch_leaves(&f.q, &leaves);
	assert_true(range_is(&leaves, 96, 4));
	assert_true(hint(&f));
	assert_int_equal(pmask_count(&f.hint.pages), 3);
	assert_true(pmask_test(&f.hint.pages, 99));
	/* Never past the region. */
	pf_init(&f, G1, 0, 100);
	f.params.prefetch_threshold = 1;
	assert_int_equal(one_fault(&f, 5), 100);
}

/*
 * A block starting at page 8 of its frame (a range starting 32 KiB into a
 * 2 MiB frame): block page 0..7 is the prefix unit, big pages start at
 * block page 8. The tree is offset by 8 leaves so that its runs of 16 line
 * up with big pages: a fault at page 8 grows 8..23, the node of leaves
 * [0,32) holds the pages 0..23 and 16 of them are set (66%).
 *
 *   VA page    8      16               32               48
 *   block pg   0      8                24               40
 *              |prefix|  BB (8..23)     |  BB (24..39)   |
 */
static void edge_block_unaligned_start(void **state)
{
	struct pf f;
	struct pmask leaves;

	(void)state;
	pf_init(&f, G1, 8, 504);
	pmask_set(&f.faulted, 8);
	uvm_prefetch_leaves(&f.q, &leaves);
	assert_true(range_is(&leaves, 8, 16));
	assert_true(hint(&f));
	pmask_set(&f.hint.pages, 8);
	assert_true(range_is(&f.hint.pages, 0, 24));

	/* A fault in the prefix grows the prefix unit only. */
	pf_init(&f, G1, 8, 504);
	pmask_set(&f.faulted, 3);
	uvm_prefetch_leaves(&f.q, &leaves);
	assert_true(range_is(&leaves, 0, 8));
	assert_int_equal(one_fault(&f, 3), 8);
}

/* A region without a whole big page is one unit: filled by a fault. */
static void region_without_big_page(void **state)
{
	struct pf f;
	struct pmask leaves;

	(void)state;
	pf_init(&f, G1, 10, 12); /* VA pages 10..21: crosses a boundary, no whole BB */
	pmask_set(&f.faulted, 0);
	uvm_prefetch_leaves(&f.q, &leaves);
	assert_true(range_is(&leaves, 0, 12));
	assert_int_equal(one_fault(&f, 11), 12);
}

/* Step 3: the first touch of an empty block at the preferred location
 * takes the whole region; not when the block holds pages somewhere. */
static void first_touch_at_preferred(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	f.q.preferred = G1;
	pmask_set(&f.faulted, 77);
	f.q.block_empty = true;
	assert_true(hint(&f));
	assert_true(f.hint.first_touch);
	assert_int_equal(pmask_count(&f.hint.pages), 511);
	f.q.block_empty = false;
	assert_true(hint(&f));
	assert_false(f.hint.first_touch);
	assert_int_equal(pmask_count(&f.hint.pages), 15);
}

/* Step 4: no prefetching away from a preferred location. */
static void not_allowed_away_from_preferred(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	f.q.preferred = CPU;
	f.q.block_empty = true;
	pmask_set(&f.faulted, 0);
	assert_false(hint(&f));
	assert_true(pmask_empty(&f.hint.pages));
	assert_int_equal(f.info.fault_count, 1);
}

/* Thrashing pages: no growth of their big page, no walk from them, and
 * never prefetched. */
static void thrashing_pages_excluded(void **state)
{
	struct pf f;
	struct pmask leaves;

	(void)state;
	pf_init(&f, G1, 0, 512);
	pmask_set(&f.faulted, 0);
	pmask_set(&f.thrashing, 5);
	uvm_prefetch_leaves(&f.q, &leaves);
	assert_true(range_is(&leaves, 0, 1));
	assert_true(hint(&f) == false);
	/* A fault elsewhere: its big page grows; page 5 is removed from a
	 * prefetch that covers it. */
	f.params.prefetch_threshold = 1;
	pmask_zero(&f.faulted);
	pmask_set(&f.faulted, 20);
	assert_true(hint(&f));
	assert_false(pmask_test(&f.hint.pages, 5));
	assert_int_equal(pmask_count(&f.hint.pages), 510);
	/* A faulted thrashing page is not walked from. */
	pmask_zero(&f.faulted);
	pmask_set(&f.faulted, 5);
	assert_false(hint(&f));
}

/* Step 1 and 6: the counter, min_faults and the destination reset. */
static void min_faults_and_destination(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	f.params.prefetch_min_faults = 3;
	pmask_set(&f.faulted, 0);
	assert_false(hint(&f));
	assert_int_equal(f.info.fault_count, 1);
	assert_false(hint(&f));
	assert_true(hint(&f));
	assert_int_equal(f.info.fault_count, 3);
	/* A new destination starts from zero. */
	f.q.dest = CPU;
	assert_false(hint(&f));
	assert_int_equal(f.info.last_dest, CPU);
	assert_int_equal(f.info.fault_count, 1);
	/* Two faults in one batch count two. */
	pmask_set(&f.faulted, 100);
	assert_true(hint(&f));
	assert_int_equal(f.info.fault_count, 3);
}

static void disabled_changes_nothing(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	f.params.prefetch_enable = 0;
	pmask_set(&f.faulted, 0);
	assert_false(hint(&f));
	assert_int_equal(f.info.last_dest, UVM_PROC_NONE);
	assert_int_equal(f.info.fault_count, 0);
	assert_int_equal(one_fault(&f, 0), 1);
}

/* A clipped region (HMM): pages outside it neither count nor move. */
static void clipped_region(void **state)
{
	struct pf f;

	(void)state;
	pf_init(&f, G1, 0, 512);
	f.q.first = 64;
	f.q.npages = 64;
	f.params.prefetch_threshold = 1;
	pmask_set_range(&f.resident, 0, 64);
	pmask_set(&f.faulted, 70);
	assert_true(hint(&f));
	assert_true(pmask_count_range(&f.hint.pages, 0, 64) == 0);
	assert_int_equal(pmask_count(&f.hint.pages), 63);
}

/*
 * A reference model, page by page with plain arrays, against the bit-mask
 * implementation on random blocks (random frame offset, region, resident,
 * faulted and thrashing pages, threshold). The seed is printed;
 * DEVMM_SEED repeats a run.
 */
struct ref_case {
	unsigned int va_page, first, npages, threshold;
	bool res[PMASK_PAGES], flt[PMASK_PAGES], thr[PMASK_PAGES];
};

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1DULL;
}

/* The prefetch set of the reference model (a GPU destination, no
 * preferred location). */
static void ref_prefetch(const struct ref_case *c, bool out[PMASK_PAGES])
{
	bool leaf[PMASK_PAGES] = { false };
	unsigned int end = c->first + c->npages, off = (c->va_page + c->first) % BB;
	unsigned int leaves = c->npages + off, levels = 1;
	bool has_big = false;

	while ((1u << (levels - 1)) < leaves)
		levels++;
	for (unsigned int i = c->first; i + BB <= end + 0 && !has_big; i++)
		has_big = (c->va_page + i) % BB == 0;
	for (unsigned int i = c->first; i < end; i++)
		leaf[i] = c->res[i] || c->flt[i];
	/* Units: [a, b) cut at frame big-page boundaries, or the whole region. */
	for (unsigned int a = c->first; a < end;) {
		unsigned int b = a + 1;
		bool f = false, t = false;

		if (!has_big)
			b = end;
		else
			while (b < end && (c->va_page + b) % BB)
				b++;
		for (unsigned int i = a; i < b; i++) {
			f |= c->flt[i];
			t |= c->thr[i];
		}
		for (unsigned int i = a; f && !t && i < b; i++)
			leaf[i] = true;
		a = b;
	}
	memset(out, 0, PMASK_PAGES * sizeof(bool));
	for (unsigned int p = c->first; p < end; p++) {
		unsigned int best_a = 0, best_b = 0;

		if (!c->flt[p] || c->thr[p])
			continue;
		for (unsigned int h = 0; h < levels; h++) {
			unsigned int t = p - c->first + off, lo = t / (1u << h) * (1u << h), hi = lo + (1u << h);
			unsigned int set = 0;

			lo = lo < off ? off : lo;
			hi = hi > leaves ? leaves : hi;
			for (unsigned int x = lo; x < hi; x++)
				set += leaf[c->first + x - off];
			if (set * 100 > (hi - lo) * c->threshold) {
				best_a = c->first + lo - off;
				best_b = c->first + hi - off;
			}
		}
		for (unsigned int i = best_a; i < best_b; i++)
			out[i] = true;
	}
	for (unsigned int i = 0; i < PMASK_PAGES; i++)
		if (c->flt[i] || c->thr[i])
			out[i] = false;
}

static void random_against_reference(void **state)
{
	const char *env = getenv("DEVMM_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) | 1;
	uint64_t x = seed;

	(void)state;
	print_message("seed %llu (DEVMM_SEED repeats it)\n", (unsigned long long)seed);
	for (unsigned int n = 0; n < 3000; n++) {
		struct ref_case c;
		struct pf f;
		bool expect[PMASK_PAGES];
		unsigned int dens_r = rng_next(&x) % 100, dens_f = 1 + rng_next(&x) % 10, dens_t = rng_next(&x) % 3;

		memset(&c, 0, sizeof(c));
		c.va_page = rng_next(&x) % 2 ? 0 : rng_next(&x) % PMASK_PAGES;
		c.first = rng_next(&x) % 4 ? 0 : rng_next(&x) % (PMASK_PAGES - c.va_page);
		c.npages = 1 + rng_next(&x) % (PMASK_PAGES - c.va_page - c.first);
		c.threshold = rng_next(&x) % 3 ? 51 : 1 + rng_next(&x) % 100;
		pf_init(&f, G1, c.va_page, PMASK_PAGES - c.va_page);
		f.q.first = c.first;
		f.q.npages = c.npages;
		f.params.prefetch_threshold = c.threshold;
		for (unsigned int i = 0; i < PMASK_PAGES - c.va_page; i++) {
			c.res[i] = rng_next(&x) % 100 < dens_r;
			c.flt[i] = !c.res[i] && rng_next(&x) % 100 < dens_f;
			c.thr[i] = rng_next(&x) % 100 < dens_t;
			if (c.res[i])
				pmask_set(&f.resident, i);
			if (c.flt[i] && i >= c.first && i < c.first + c.npages)
				pmask_set(&f.faulted, i);
			else
				c.flt[i] = false;
			if (c.thr[i])
				pmask_set(&f.thrashing, i);
		}
		ref_prefetch(&c, expect);
		hint(&f);
		for (unsigned int i = 0; i < PMASK_PAGES; i++)
			if (pmask_test(&f.hint.pages, i) != expect[i])
				fail_msg("case %u: va_page %u region [%u, +%u) threshold %u: page %u is %d, model %d",
					 n, c.va_page, c.first, c.npages, c.threshold, i,
					 pmask_test(&f.hint.pages, i), expect[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(worked_example),
		cmocka_unit_test(worked_example_bb2_leaves),
		cmocka_unit_test(cpu_fault_pulls_back_a_big_page),
		cmocka_unit_test(walk_skips_failing_levels),
		cmocka_unit_test(several_faults),
		cmocka_unit_test(threshold_100_and_1),
		cmocka_unit_test(edge_block_suffix),
		cmocka_unit_test(edge_block_unaligned_start),
		cmocka_unit_test(region_without_big_page),
		cmocka_unit_test(first_touch_at_preferred),
		cmocka_unit_test(not_allowed_away_from_preferred),
		cmocka_unit_test(thrashing_pages_excluded),
		cmocka_unit_test(min_faults_and_destination),
		cmocka_unit_test(disabled_changes_nothing),
		cmocka_unit_test(clipped_region),
		cmocka_unit_test(random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
