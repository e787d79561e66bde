/* SPDX-License-Identifier: MIT */
/*
 * Page masks of the policy layer: one bit per 4 KiB page of a managed
 * block (at most 512 pages, 2 MiB), as NVIDIA UVM's uvm_page_mask_t. Every
 * residency, mapping, fault and prefetch set of a block is one of these.
 * Bits at or above a block's page count are never set by the helpers that
 * take a count; ranges are [first, first + n).
 */
#ifndef DEVMM_POLICY_PMASK_H
#define DEVMM_POLICY_PMASK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define PMASK_PAGES 512u
#define PMASK_WORDS (PMASK_PAGES / 64u)

struct pmask {
	uint64_t w[PMASK_WORDS];
};

static inline void pmask_zero(struct pmask *m) { memset(m, 0, sizeof(*m)); }
static inline bool pmask_test(const struct pmask *m, unsigned int i) { return (m->w[i / 64] >> (i % 64)) & 1; }
static inline void pmask_set(struct pmask *m, unsigned int i) { m->w[i / 64] |= 1ULL << (i % 64); }
static inline void pmask_clear(struct pmask *m, unsigned int i) { m->w[i / 64] &= ~(1ULL << (i % 64)); }

/* The bits of word wi that fall in [first, first + n). */
static inline uint64_t pmask_word_range(unsigned int wi, unsigned int first, unsigned int n)
{
	unsigned int lo = wi * 64, hi = lo + 64, end = first + n;
	unsigned int a = first > lo ? first : lo, b = end < hi ? end : hi;

	if (a >= b)
		return 0;
	uint64_t bits = (b - a == 64) ? ~0ULL : ((1ULL << (b - a)) - 1);
	return bits << (a - lo);
}

static inline void pmask_set_range(struct pmask *m, unsigned int first, unsigned int n)
{
	for (unsigned int wi = 0; wi < PMASK_WORDS; wi++)
		m->w[wi] |= pmask_word_range(wi, first, n);
}
static inline void pmask_clear_range(struct pmask *m, unsigned int first, unsigned int n)
{
	for (unsigned int wi = 0; wi < PMASK_WORDS; wi++)
		m->w[wi] &= ~pmask_word_range(wi, first, n);
}
/* Set bits in [first, first + n). */
static inline unsigned int pmask_count_range(const struct pmask *m, unsigned int first, unsigned int n)
{
	unsigned int c = 0;

	for (unsigned int wi = 0; wi < PMASK_WORDS; wi++)
		c += (unsigned int)__builtin_popcountll(m->w[wi] & pmask_word_range(wi, first, n));
	return c;
}
static inline unsigned int pmask_count(const struct pmask *m) { return pmask_count_range(m, 0, PMASK_PAGES); }
static inline bool pmask_empty(const struct pmask *m)
{
	for (unsigned int wi = 0; wi < PMASK_WORDS; wi++)
		if (m->w[wi])
			return false;
	return true;
}
static inline bool pmask_equal(const struct pmask *a, const struct pmask *b) { return !memcmp(a, b, sizeof(*a)); }
static inline void pmask_or(struct pmask *d, const struct pmask *a, const struct pmask *b)
{
	for (unsigned int wi = 0; wi < PMASK_WORDS; wi++)
		d->w[wi] = a->w[wi] | b->w[wi];
}
static inline void pmask_and(struct pmask *d, const struct pmask *a, const struct pmask *b)
{
	for (unsigned int wi = 0; wi < PMASK_WORDS; wi++)
		d->w[wi] = a->w[wi] & b->w[wi];
}
/* d = a & ~b */
static inline void pmask_andnot(struct pmask *d, const struct pmask *a, const struct pmask *b)
{
	for (unsigned int wi = 0; wi < PMASK_WORDS; wi++)
		d->w[wi] = a->w[wi] & ~b->w[wi];
}
/* The first set bit at or after i, or PMASK_PAGES. */
static inline unsigned int pmask_next(const struct pmask *m, unsigned int i)
{
	while (i < PMASK_PAGES) {
		uint64_t w = m->w[i / 64] >> (i % 64);

		if (w)
			return i + (unsigned int)__builtin_ctzll(w);
		i = (i / 64 + 1) * 64;
	}
	return PMASK_PAGES;
}
#define pmask_for_each(m, i) for ((i) = pmask_next((m), 0); (i) < PMASK_PAGES; (i) = pmask_next((m), (i) + 1))

#endif /* DEVMM_POLICY_PMASK_H */
