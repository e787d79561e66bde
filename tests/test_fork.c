/* SPDX-License-Identifier: MIT */
/*
 * fork and copy-on-write.
 *
 * The first part is a matrix run once per mapping kind (anonymous private,
 * shmem, private file, shared file). Each scenario starts from the same
 * picture:
 *
 *   TBASE      +1 page     +2        +3
 *   | p0       | p1       | p2       | p3       |
 *     written    read       untouched  untouched   (by the parent, before fork)
 *     PSEED      initial
 *
 * "initial" is what the object holds: zeros for anonymous memory and shmem,
 * the file's data (FSEED) for file mappings. The parent then forks, and the
 * scenario writes or reads from one side, before or after the other side
 * exits, and checks the data both sides see, which pfns they map (a copy
 * shows as a new pfn), the page counts, and the cow_copy / cow_reuse
 * statistics.
 *
 * The second part covers the rest of fork: pinned pages copied eagerly,
 * references that are not pins, the zero page, DONTFORK, exit orders,
 * grandchildren, failure for lack of memory, and interactions of fork with
 * mprotect, munmap, madvise and cmpxchg.
 */
#include "helpers.h"

#define NP 4
#define PSEED 0x10000u /* the parent's data in p0 before fork */
#define QSEED 0x20000u /* data written after fork */
#define RSEED 0x30000u
#define FSEED 0xf0000u /* the file's data */

enum kind { K_ANON, K_SHMEM, K_FILE_PRIVATE, K_FILE_SHARED };

struct variant {
	enum kind kind;
};

static struct variant variants[] = {
	[K_ANON] = { K_ANON },
	[K_SHMEM] = { K_SHMEM },
	[K_FILE_PRIVATE] = { K_FILE_PRIVATE },
	[K_FILE_SHARED] = { K_FILE_SHARED },
};

struct mx {
	struct fx fx;
	enum kind kind;
	struct dmm_mm *parent, *child;
	uint64_t pfn0; /* the parent's p0 before fork */
	uint64_t pfn1; /* the parent's p1 before fork */
};

static bool is_private(const struct mx *m)
{
	return m->kind == K_ANON || m->kind == K_FILE_PRIVATE;
}

static bool is_file(const struct mx *m)
{
	return m->kind == K_FILE_PRIVATE || m->kind == K_FILE_SHARED;
}

/* What page i holds when nobody wrote it through a mapping. */
static void verify_initial(struct mx *m, struct dmm_mm *mm, int i)
{
	if (is_file(m))
		VERIFY(mm, PAGE_ADDR(TBASE, i), PG, FSEED + (uint32_t)i * WORDS_PER_PAGE);
	else
		VERIFY_ZERO(mm, PAGE_ADDR(TBASE, i), PG);
}

static int mx_setup(void **state)
{
	const struct variant *v = *state;
	struct mx *m = calloc(1, sizeof(*m));
	void *fxs = NULL;
	int flags = 0;

	if (!m || fx_setup(&fxs) != 0) {
		free(m);
		return -1;
	}
	m->fx = *(struct fx *)fxs;
	free(fxs);
	m->kind = v->kind;
	m->parent = m->fx.mm;

	switch (m->kind) {
	case K_ANON: flags = ANON_PRIVATE; break;
	case K_SHMEM: flags = ANON_SHARED; break;
	case K_FILE_PRIVATE: flags = DMM_MAP_PRIVATE; break;
	case K_FILE_SHARED: flags = DMM_MAP_SHARED; break;
	}
	if (is_file(m)) {
		uint32_t *buf = malloc(NP * PG);

		if (!buf || dmm_file_create(m->fx.sys, NP, &m->fx.file) != 0)
			return -1;
		for (size_t k = 0; k < NP * WORDS_PER_PAGE; k++)
			buf[k] = FSEED + (uint32_t)k;
		if (dmm_file_pwrite(m->fx.file, buf, NP * PG, 0) != 0)
			return -1;
		free(buf);
	}
	*state = m;
	if (dmm_mmap(m->parent, TBASE, NP * PG, RW, flags | DMM_MAP_FIXED, m->fx.file, 0, NULL) != 0)
		return -1;
	return 0;
}

static int mx_teardown(void **state)
{
	struct mx *m = *state;

	if (m) {
		dmm_system_destroy(m->fx.sys);
		free(m);
	}
	return 0;
}

/* The common start: parent writes p0, reads p1, forks. */
static void start(struct mx *m)
{
	FILL(m->parent, TBASE, PG, PSEED);
	verify_initial(m, m->parent, 1);
	CHECK_OK(m->fx.sys);
	m->pfn0 = PFN(m->parent, TBASE);
	m->pfn1 = PFN(m->parent, PAGE_ADDR(TBASE, 1));
	if (is_private(m))
		FLAGS(PAGE(m->fx.sys, m->pfn0).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	OK(dmm_fork(m->parent, &m->child));
	CHECK_OK(m->fx.sys);
}

/* Exit what is left, drop the file, and check that every frame came back. */
static void finish(struct mx *m)
{
	if (m->child)
		dmm_mm_exit(m->child);
	m->child = NULL;
	CHECK_OK(m->fx.sys);
	if (m->parent)
		dmm_mm_exit(m->parent);
	m->parent = m->fx.mm = NULL;
	CHECK_OK(m->fx.sys);
	if (m->fx.file)
		dmm_file_put(m->fx.file);
	m->fx.file = NULL;
	CHECK_OK(m->fx.sys);
	EQ(dmm_system_nr_free(m->fx.sys), m->fx.free0);
}

static void exit_parent(struct mx *m)
{
	dmm_mm_exit(m->parent);
	m->parent = m->fx.mm = NULL;
	CHECK_OK(m->fx.sys);
}

static void exit_child(struct mx *m)
{
	dmm_mm_exit(m->child);
	m->child = NULL;
	CHECK_OK(m->fx.sys);
}

/* ------------------------------------------------------------------------ */
/* The matrix                                                                */

static void test_child_sees_parent_data_after_fork(void **state)
{
	struct mx *m = *state;
	struct dmm_stats s0 = STATS(m->fx.sys);

	start(m);
	EQ(STAT_DELTA(m->fx.sys, s0, fork), 1);
	if (is_private(m)) {
		/* Both entries write-protected before anyone touches the page. */
		struct dmm_pte_info pp = PTE(m->parent, TBASE), cp = PTE(m->child, TBASE);

		EQ(pp.kind, DMM_PTE_PRESENT);
		TRUE(!pp.write);
		EQ(cp.kind, DMM_PTE_PRESENT);
		TRUE(!cp.write);
		EQ(cp.pfn, m->pfn0);
		COUNTS(m->fx.sys, m->pfn0, 2, 2);
		FLAGS(PAGE(m->fx.sys, m->pfn0).flags, DMM_PAGE_ANON, DMM_PAGE_ANON_EXCLUSIVE);
		EQ(dmm_mm_rss(m->child, DMM_MM_ANONPAGES), 1);
	} else {
		/* A shared mapping is not write-protected in the parent. */
		TRUE(PTE(m->parent, TBASE).write);
	}

	VERIFY(m->child, TBASE, PG, PSEED);
	verify_initial(m, m->child, 1);
	verify_initial(m, m->child, 2);
	verify_initial(m, m->child, 3);
	CHECK_OK(m->fx.sys);
	VERIFY(m->parent, TBASE, PG, PSEED);
	verify_initial(m, m->parent, 1);
	EQ(PFN(m->child, TBASE), m->pfn0);
	EQ(PFN(m->parent, TBASE), m->pfn0);
	EQ(PFN(m->child, PAGE_ADDR(TBASE, 1)), m->pfn1);
	if (is_private(m)) {
		COUNTS(m->fx.sys, m->pfn0, 2, 2);
	} else {
		COUNTS(m->fx.sys, m->pfn0, 3, 2); /* the object's reference + two mappings */
		FLAGS(PAGE(m->fx.sys, m->pfn0).flags, 0, DMM_PAGE_ANON);
	}
	finish(m);
}

/* One side writes p0 while the other is alive: a private page is copied by
 * the writer, a shared one is written for both. */
static void run_write_after_fork(struct mx *m, bool parent_writes)
{
	struct dmm_stats s0;
	struct dmm_mm *writer, *other;
	uint64_t npfn;

	start(m);
	writer = parent_writes ? m->parent : m->child;
	other = parent_writes ? m->child : m->parent;
	s0 = STATS(m->fx.sys);
	FILL(writer, TBASE, PG, QSEED);
	CHECK_OK(m->fx.sys);
	npfn = PFN(writer, TBASE);
	VERIFY(writer, TBASE, PG, QSEED);
	if (is_private(m)) {
		/* The writer copied; the other side keeps the original. */
		NE(npfn, m->pfn0);
		EQ(STAT_DELTA(m->fx.sys, s0, cow_copy), 1);
		EQ(STAT_DELTA(m->fx.sys, s0, cow_reuse), 0);
		TRUE(PTE(writer, TBASE).write);
		COUNTS(m->fx.sys, npfn, 1, 1);
		FLAGS(PAGE(m->fx.sys, npfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
		COUNTS(m->fx.sys, m->pfn0, 1, 1);
		VERIFY(other, TBASE, PG, PSEED);
		CHECK_OK(m->fx.sys);
		EQ(PFN(other, TBASE), m->pfn0);
		if (is_file(m))
			FILE_VERIFY(m->fx.file, 0, PG, FSEED);
	} else {
		EQ(npfn, m->pfn0);
		EQ(STAT_DELTA(m->fx.sys, s0, cow_copy), 0);
		VERIFY(other, TBASE, PG, QSEED);
		CHECK_OK(m->fx.sys);
		EQ(PFN(other, TBASE), m->pfn0);
		if (is_file(m))
			FILE_VERIFY(m->fx.file, 0, PG, QSEED);
	}
	/* The untouched pages are what they were, on both sides. */
	verify_initial(m, writer, 2);
	verify_initial(m, other, 3);
	CHECK_OK(m->fx.sys);

	/* The other side writes too. In a private mapping its page is no
	 * longer shared with anyone, so it is reused in place. */
	s0 = STATS(m->fx.sys);
	FILL(other, TBASE, PG, RSEED);
	CHECK_OK(m->fx.sys);
	EQ(PFN(other, TBASE), m->pfn0);
	if (is_private(m)) {
		EQ(STAT_DELTA(m->fx.sys, s0, cow_reuse), 1);
		EQ(STAT_DELTA(m->fx.sys, s0, cow_copy), 0);
		COUNTS(m->fx.sys, m->pfn0, 1, 1);
		FLAGS(PAGE(m->fx.sys, m->pfn0).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
		VERIFY(writer, TBASE, PG, QSEED);
	} else {
		VERIFY(writer, TBASE, PG, RSEED);
	}
	CHECK_OK(m->fx.sys);
	finish(m);
}

static void test_write_after_fork_in_parent(void **state)
{
	run_write_after_fork(*state, true);
}

static void test_write_after_fork_in_child(void **state)
{
	run_write_after_fork(*state, false);
}

/* One side writes p0 after the other exited: a private page is reused in
 * place (same pfn), a shared one simply written. */
static void run_write_after_other_exits(struct mx *m, bool parent_writes)
{
	struct dmm_stats s0;
	struct dmm_mm *writer;

	start(m);
	if (parent_writes) {
		exit_child(m);
		writer = m->parent;
	} else {
		exit_parent(m);
		writer = m->child;
	}
	if (is_private(m)) {
		COUNTS(m->fx.sys, m->pfn0, 1, 1);
		TRUE(!PTE(writer, TBASE).write);
	}
	/* (A child's shared mapping may have no entry yet: fork need not copy
	 * the entries of shared mappings, the child refaults them.) */
	s0 = STATS(m->fx.sys);
	FILL(writer, TBASE, PG, QSEED);
	CHECK_OK(m->fx.sys);
	EQ(PFN(writer, TBASE), m->pfn0);
	TRUE(PTE(writer, TBASE).write);
	EQ(STAT_DELTA(m->fx.sys, s0, cow_copy), 0);
	if (is_private(m)) {
		EQ(STAT_DELTA(m->fx.sys, s0, cow_reuse), 1);
		COUNTS(m->fx.sys, m->pfn0, 1, 1);
		FLAGS(PAGE(m->fx.sys, m->pfn0).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
		if (is_file(m))
			FILE_VERIFY(m->fx.file, 0, PG, FSEED);
	} else {
		EQ(STAT_DELTA(m->fx.sys, s0, cow_reuse), 0);
		COUNTS(m->fx.sys, m->pfn0, 2, 1);
		if (is_file(m))
			FILE_VERIFY(m->fx.file, 0, PG, QSEED);
	}
	VERIFY(writer, TBASE, PG, QSEED);
	verify_initial(m, writer, 1);
	CHECK_OK(m->fx.sys);
	finish(m);
}

static void test_write_after_fork_in_parent_after_child_exits(void **state)
{
	run_write_after_other_exits(*state, true);
}

static void test_write_after_fork_in_child_after_parent_exits(void **state)
{
	run_write_after_other_exits(*state, false);
}

static void run_read_after_other_exits(struct mx *m, bool parent_reads)
{
	struct dmm_mm *reader;

	start(m);
	if (parent_reads) {
		exit_child(m);
		reader = m->parent;
	} else {
		exit_parent(m);
		reader = m->child;
	}
	VERIFY(reader, TBASE, PG, PSEED);
	for (int i = 1; i < NP; i++)
		verify_initial(m, reader, i);
	CHECK_OK(m->fx.sys);
	EQ(PFN(reader, TBASE), m->pfn0);
	COUNTS(m->fx.sys, m->pfn0, is_private(m) ? 1 : 2, 1);
	if (is_private(m))
		EQ(dmm_mm_rss(reader, DMM_MM_ANONPAGES), 1);
	finish(m);
}

static void test_read_after_fork_in_parent_after_child_exits(void **state)
{
	run_read_after_other_exits(*state, true);
}

static void test_read_after_fork_in_child_after_parent_exits(void **state)
{
	run_read_after_other_exits(*state, false);
}

/* The child writes p1, which the parent had only read before fork (the zero
 * page, or the page-cache page of a file). */
static void test_child_write_to_a_page_the_parent_only_read(void **state)
{
	struct mx *m = *state;
	uint64_t cpfn;

	start(m);
	FILL(m->child, PAGE_ADDR(TBASE, 1), PG, QSEED);
	CHECK_OK(m->fx.sys);
	cpfn = PFN(m->child, PAGE_ADDR(TBASE, 1));
	VERIFY(m->child, PAGE_ADDR(TBASE, 1), PG, QSEED);
	if (is_private(m)) {
		NE(cpfn, m->pfn1);
		COUNTS(m->fx.sys, cpfn, 1, 1);
		FLAGS(PAGE(m->fx.sys, cpfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE,
		      DMM_PAGE_PAGECACHE);
		verify_initial(m, m->parent, 1);
		CHECK_OK(m->fx.sys);
		EQ(PFN(m->parent, PAGE_ADDR(TBASE, 1)), m->pfn1);
		if (is_file(m))
			FILE_VERIFY(m->fx.file, PG, PG, FSEED + WORDS_PER_PAGE);
	} else {
		EQ(cpfn, m->pfn1);
		VERIFY(m->parent, PAGE_ADDR(TBASE, 1), PG, QSEED);
		if (is_file(m))
			FILE_VERIFY(m->fx.file, PG, PG, QSEED);
	}
	/* p0, written before fork, is untouched by this on both sides. */
	VERIFY(m->child, TBASE, PG, PSEED);
	VERIFY(m->parent, TBASE, PG, PSEED);
	CHECK_OK(m->fx.sys);
	finish(m);
}

/* ------------------------------------------------------------------------ */
/* Beyond the matrix                                                         */

/*
 * A pinned anonymous page at fork is copied for the child at once, so that
 * the parent's DMA target stays the parent's page:
 *
 *   parent p0 (pinned, writable, exclusive) ---- stays
 *   child  p0 -> fresh copy, writable
 *   parent p1 (not pinned) -> shared read-only as usual
 */
static void test_pinned_page_is_copied_for_the_child_at_fork(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	struct dmm_mm *child;
	struct dmm_page_info pi;
	uint64_t pfn = 0, cpfn, pfn1;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 0x100);
	CHECK_OK(f->sys);
	EQS(dmm_get_user_pages(f->mm, TBASE, 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, &pfn), 1);
	CHECK_OK(f->sys);
	EQ(pfn, PFN(f->mm, TBASE));
	pfn1 = PFN(f->mm, PAGE_ADDR(TBASE, 1));
	COUNTS(f->sys, pfn, 1024 + 1, 1);
	EQ(PAGE(f->sys, pfn).pincount, 1);

	s0 = STATS(f->sys);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, fork_page_copied), 1);

	/* The parent's pinned page is untouched: same pfn, writable, exclusive. */
	EQ(PFN(f->mm, TBASE), pfn);
	TRUE(PTE(f->mm, TBASE).write);
	pi = PAGE(f->sys, pfn);
	TRUE(pi.refcount >= 1024);
	EQ(pi.refcount, 1024 + 1);
	EQS(pi.mapcount, 1);
	EQ(pi.pincount, 1);
	FLAGS(pi.flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);

	/* The child has its own copy with the same data. */
	cpfn = PFN(child, TBASE);
	NE(cpfn, pfn);
	TRUE(PTE(child, TBASE).write);
	TRUE(PTE(child, TBASE).dirty);
	COUNTS(f->sys, cpfn, 1, 1);
	FLAGS(PAGE(f->sys, cpfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	VERIFY(child, TBASE, PG, 0x100);

	/* The unpinned page is shared as usual. */
	EQ(PFN(child, PAGE_ADDR(TBASE, 1)), pfn1);
	COUNTS(f->sys, pfn1, 2, 2);
	TRUE(!PTE(f->mm, PAGE_ADDR(TBASE, 1)).write);
	VERIFY(child, PAGE_ADDR(TBASE, 1), PG, 0x100 + WORDS_PER_PAGE);
	CHECK_OK(f->sys);

	/* Writes on either side stay on their side, without further copies. */
	s0 = STATS(f->sys);
	OK(dmm_store32(f->mm, TBASE, 0xaaaa));
	OK(dmm_store32(child, TBASE, 0xbbbb));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, cow_copy), 0);
	EQ(PFN(f->mm, TBASE), pfn);
	EQ(PFN(child, TBASE), cpfn);
	EQ(LOAD(f->mm, TBASE), 0xaaaa);
	EQ(LOAD(child, TBASE), 0xbbbb);

	dmm_unpin_user_pages(f->sys, &pfn, 1);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 1, 1);
	EQ(PAGE(f->sys, pfn).pincount, 0);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* A plain reference (FOLL_GET) does not make a page "maybe pinned". */
static void test_page_with_a_get_reference_is_shared_at_fork(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	struct dmm_mm *child;
	uint64_t pfn = 0;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0x200);
	EQS(dmm_get_user_pages(f->mm, TBASE, 1, DMM_FOLL_GET, &pfn), 1);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 2, 1);
	s0 = STATS(f->sys);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, fork_page_copied), 0);
	EQ(PFN(child, TBASE), pfn);
	COUNTS(f->sys, pfn, 3, 2);
	TRUE(!PTE(f->mm, TBASE).write);

	/* The parent's write copies (the page is shared); the reference stays
	 * with the old page, which the child still maps. */
	OK(dmm_store32(f->mm, TBASE, 1));
	CHECK_OK(f->sys);
	NE(PFN(f->mm, TBASE), pfn);
	COUNTS(f->sys, pfn, 2, 1);
	dmm_put_user_pages(f->sys, &pfn, 1);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 1, 1);
	VERIFY(child, TBASE, PG, 0x200);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void test_zero_page_mapping_across_fork(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;

	MAP_ANON(f->mm, TBASE, 2);
	VERIFY_ZERO(f->mm, TBASE, 2 * PG);
	CHECK_OK(f->sys);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), DMM_ZERO_PFN);
	VERIFY_ZERO(child, TBASE, 2 * PG);
	CHECK_OK(f->sys);
	EQ(PFN(child, TBASE), DMM_ZERO_PFN);
	EQ(PFN(child, PAGE_ADDR(TBASE, 1)), DMM_ZERO_PFN);
	COUNTS(f->sys, DMM_ZERO_PFN, 0, 0);
	EQ(dmm_system_nr_free(f->sys), f->free0);

	OK(dmm_store32(child, TBASE, 0xc0));
	CHECK_OK(f->sys);
	NE(PFN(child, TBASE), DMM_ZERO_PFN);
	EQ(PFN(f->mm, TBASE), DMM_ZERO_PFN);
	EQ(LOAD(f->mm, TBASE), 0);
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, 1), 0xd0));
	CHECK_OK(f->sys);
	EQ(PFN(child, PAGE_ADDR(TBASE, 1)), DMM_ZERO_PFN);
	EQ(LOAD(child, PAGE_ADDR(TBASE, 1)), 0);
	EQ(LOAD(f->mm, PAGE_ADDR(TBASE, 1)), 0xd0);
	EQ(LOAD(child, TBASE), 0xc0);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 2);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 1);
}

/*
 *   TBASE        A: anon, forked normally
 *   TBASE+16     B: anon, DONTFORK
 *   TBASE+32     C: shmem, DONTFORK
 */
static void test_fork_leaves_out_dontfork_ranges(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	struct vma_list l;
	uint64_t pfn_b;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 16), 2);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 32), 2 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, TBASE, 2 * PG, 1);
	FILL(f->mm, PAGE_ADDR(TBASE, 16), 2 * PG, 2);
	FILL(f->mm, PAGE_ADDR(TBASE, 32), 2 * PG, 3);
	OK(dmm_madvise(f->mm, PAGE_ADDR(TBASE, 16), 2 * PG, DMM_MADV_DONTFORK));
	OK(dmm_madvise(f->mm, PAGE_ADDR(TBASE, 32), 2 * PG, DMM_MADV_DONTFORK));
	CHECK_OK(f->sys);
	pfn_b = PFN(f->mm, PAGE_ADDR(TBASE, 16));

	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	VMAS(child, &l);
	EQS(l.n, 1);
	EQ(l.v[0].start, TBASE);
	EQ(l.v[0].end, PAGE_ADDR(TBASE, 2));
	EQ(dmm_mm_rss(child, DMM_MM_ANONPAGES), 2);
	EQ(dmm_mm_rss(child, DMM_MM_SHMEMPAGES), 0);
	VERIFY(child, TBASE, 2 * PG, 1);
	/* The parent's DONTFORK pages were not touched by fork. */
	TRUE(PTE(f->mm, PAGE_ADDR(TBASE, 16)).write);
	COUNTS(f->sys, pfn_b, 1, 1);
	FLAGS(PAGE(f->sys, pfn_b).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	/* The child may map something else there. */
	OK(dmm_mmap(child, PAGE_ADDR(TBASE, 16), PG, RW, ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL,
		    0, NULL));
	CHECK_OK(f->sys);
	VERIFY_ZERO(child, PAGE_ADDR(TBASE, 16), PG);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 16), 2 * PG, 2);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 32), 2 * PG, 3);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void test_exit_of_parent_then_child_frees_everything(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys), s1;
	struct dmm_mm *child;
	uint64_t pfns[4];

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 0x300);
	for (int i = 0; i < 4; i++)
		pfns[i] = PFN(f->mm, PAGE_ADDR(TBASE, i));
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	OK(dmm_store32(child, TBASE, 7)); /* the child copies p0 */
	CHECK_OK(f->sys);
	NE(PFN(child, TBASE), pfns[0]);

	dmm_mm_exit(f->mm);
	f->mm = NULL;
	CHECK_OK(f->sys);
	/* The parent's private copy of p0 is gone; p1..p3 are the child's alone. */
	EQ(dmm_system_nr_free(f->sys), f->free0 - 4);
	for (int i = 1; i < 4; i++)
		COUNTS(f->sys, pfns[i], 1, 1);
	VERIFY(child, PAGE_ADDR(TBASE, 1), 3 * PG, 0x300 + WORDS_PER_PAGE);
	EQ(LOAD(child, TBASE), 7);
	FILL(child, PAGE_ADDR(TBASE, 1), 3 * PG, 0x400);
	CHECK_OK(f->sys);
	for (int i = 1; i < 4; i++)
		EQ(PFN(child, PAGE_ADDR(TBASE, i)), pfns[i]);

	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	s1 = STATS(f->sys);
	EQ(s1.frames_alloc - s0.frames_alloc, 5);
	EQ(s1.frames_free - s0.frames_free, 5);
	EQ(s1.cow_copy - s0.cow_copy, 1);
	EQ(s1.cow_reuse - s0.cow_reuse, 3);
}

/*
 * Three generations share p0 until each writes:
 *
 *   parent ---fork---> child ---fork---> grandchild
 *     p0 ------------- p0 -------------- p0          refcount 3, mapcount 3
 */
static void test_grandchild_shares_and_copies_independently(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child, *grand;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0x500);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	OK(dmm_fork(child, &grand));
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 3, 3);
	EQ(PFN(grand, TBASE), pfn);
	TRUE(!PTE(child, TBASE).write);
	TRUE(!PTE(grand, TBASE).write);
	VERIFY(grand, TBASE, PG, 0x500);

	OK(dmm_store32(grand, TBASE, 0x6));
	CHECK_OK(f->sys);
	NE(PFN(grand, TBASE), pfn);
	COUNTS(f->sys, pfn, 2, 2);
	OK(dmm_store32(child, TBASE, 0x5));
	CHECK_OK(f->sys);
	NE(PFN(child, TBASE), pfn);
	NE(PFN(child, TBASE), PFN(grand, TBASE));
	COUNTS(f->sys, pfn, 1, 1);
	OK(dmm_store32(f->mm, TBASE, 0x4)); /* the last user reuses */
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), pfn);
	EQ(LOAD(f->mm, TBASE), 0x4);
	EQ(LOAD(child, TBASE), 0x5);
	EQ(LOAD(grand, TBASE), 0x6);
	VERIFY(grand, TBASE + 4, PG - 4, 0x501);
	VERIFY(child, TBASE + 4, PG - 4, 0x501);

	/* The middle generation exits first. */
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	EQ(LOAD(grand, TBASE), 0x6);
	dmm_mm_exit(grand);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 1);
}

/*
 * A 64-frame machine. B is filled until frames run out; the pinned page in
 * P then cannot be copied for the child, so fork fails with -ENOMEM:
 *
 *   TBASE                    TBASE + 1 GiB
 *   | B: 63 pages, full |    | P: pinned page |
 *
 * The parent survives with its data; its pages were only write-protected,
 * so writes reuse them without needing a frame.
 */
static void test_fork_fails_cleanly_when_a_pinned_copy_cannot_be_allocated(void **state)
{
	struct fx *f = *state;
	const uint64_t P = TBASE + 0x40000000UL;
	struct dmm_stats s0;
	struct dmm_mm *child = NULL;
	uint64_t pin = 0, pfns[64];
	int n;

	MAP_ANON(f->mm, P, 1);
	FILL(f->mm, P, PG, 0x700);
	EQS(dmm_get_user_pages(f->mm, P, 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, &pin), 1);
	MAP_ANON(f->mm, TBASE, 128);
	for (n = 0; n < 128; n++) {
		int rc = dmm_store32(f->mm, PAGE_ADDR(TBASE, n), 0x800u + (uint32_t)n);

		if (rc == -ENOMEM)
			break;
		OK(rc);
		pfns[n] = PFN(f->mm, PAGE_ADDR(TBASE, n));
	}
	EQS(n, 63);
	EQ(dmm_system_nr_free(f->sys), 0);
	CHECK_OK(f->sys);

	s0 = STATS(f->sys);
	EXPECT_RC(-ENOMEM, dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, fork_failed), 1);
	EQ(dmm_system_nr_free(f->sys), 0);
	for (int i = 0; i < n; i++)
		COUNTS(f->sys, pfns[i], 1, 1);
	COUNTS(f->sys, pin, 1024 + 1, 1);
	VERIFY(f->mm, P, PG, 0x700);

	/* Every page of B is writable again without a frame to spare. */
	for (int i = 0; i < n; i++) {
		OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, i) + 4, 0x900u + (uint32_t)i));
		EQ(PFN(f->mm, PAGE_ADDR(TBASE, i)), pfns[i]);
	}
	CHECK_OK(f->sys);
	for (int i = 0; i < n; i++) {
		EQ(LOAD(f->mm, PAGE_ADDR(TBASE, i)), 0x800u + (uint32_t)i);
		EQ(LOAD(f->mm, PAGE_ADDR(TBASE, i) + 4), 0x900u + (uint32_t)i);
	}
	OK(dmm_store32(f->mm, P, 1));
	EQ(PFN(f->mm, P), pin);

	/* With the pin gone the same fork succeeds (no copy needed). */
	dmm_unpin_user_pages(f->sys, &pin, 1);
	CHECK_OK(f->sys);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQ(LOAD(child, P), 1);
	EQ(LOAD(child, PAGE_ADDR(TBASE, 62)), 0x800u + 62);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* A private file page (page cache) is never reused in place: even the only
 * mapper copies it on write. */
static void test_private_file_page_is_copied_even_when_alone(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	uint64_t cache_pfn;

	OK(dmm_file_create(f->sys, 1, &f->file));
	FILE_FILL(f->file, 0, PG, 0xa00);
	MAP_FIXED(f->mm, TBASE, PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	VERIFY(f->mm, TBASE, PG, 0xa00);
	cache_pfn = PFN(f->mm, TBASE);
	dmm_file_put(f->file); /* the mapping keeps it */
	f->file = NULL;
	CHECK_OK(f->sys);
	s0 = STATS(f->sys);
	OK(dmm_store32(f->mm, TBASE, 0));
	CHECK_OK(f->sys);
	NE(PFN(f->mm, TBASE), cache_pfn);
	EQ(STAT_DELTA(f->sys, s0, cow_reuse), 0);
	COUNTS(f->sys, cache_pfn, 1, 0);
	VERIFY(f->mm, TBASE + 4, PG - 4, 0xa01);
}

/* After fork, mprotect(READ) then mprotect(RW) must not make the shared
 * page writable: the next write still copies. */
static void test_mprotect_after_fork_does_not_make_shared_pages_writable(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0xb00);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	OK(dmm_mprotect(f->mm, TBASE, PG, RW));
	CHECK_OK(f->sys);
	TRUE(!PTE(f->mm, TBASE).write);
	OK(dmm_store32(f->mm, TBASE, 1));
	CHECK_OK(f->sys);
	NE(PFN(f->mm, TBASE), pfn);
	EQ(LOAD(child, TBASE), 0xb00);
	EQ(PFN(child, TBASE), pfn);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* After fork, the parent unmaps its copy: the child is the only user and
 * reuses the page. */
static void test_write_after_fork_reuses_once_the_other_side_unmapped(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	struct dmm_mm *child;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 0xc00);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, TBASE, PG));
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 1, 1);
	s0 = STATS(f->sys);
	OK(dmm_store32(child, TBASE, 1));
	CHECK_OK(f->sys);
	EQ(PFN(child, TBASE), pfn);
	EQ(STAT_DELTA(f->sys, s0, cow_reuse), 1);

	/* DONTNEED in the child leaves the parent's data alone. */
	OK(dmm_madvise(child, PAGE_ADDR(TBASE, 1), PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	VERIFY_ZERO(child, PAGE_ADDR(TBASE, 1), PG);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 1), PG, 0xc00 + WORDS_PER_PAGE);
	COUNTS(f->sys, PFN(f->mm, PAGE_ADDR(TBASE, 1)), 1, 1);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* A cmpxchg whose compare fails still write-faults, so it breaks CoW. */
static void test_failing_cmpxchg_after_fork_copies_the_page(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn;
	uint32_t old = 0;

	MAP_ANON(f->mm, TBASE, 1);
	OK(dmm_store32(f->mm, TBASE, 42));
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	OK(dmm_cmpxchg32(child, TBASE, 1, 2, &old));
	CHECK_OK(f->sys);
	EQ(old, 42);
	NE(PFN(child, TBASE), pfn);
	TRUE(PTE(child, TBASE).write);
	EQ(PFN(f->mm, TBASE), pfn);
	EQ(LOAD(child, TBASE), 42);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void test_fork_of_an_empty_process(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	struct vma_list l;

	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	VMAS(child, &l);
	EQS(l.n, 0);
	NE(dmm_mm_id(child), dmm_mm_id(f->mm));
	EXPECT_RC(-EINVAL, dmm_fork(NULL, &child));
	EXPECT_RC(-EINVAL, dmm_fork(f->mm, NULL));
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* The child's VMAs are copies of the parent's, flags and offsets included. */
static void test_child_vmas_copy_the_parent_vmas(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	struct vma_list a, b;

	OK(dmm_file_create(f->sys, 8, &f->file));
	MAP_ANON(f->mm, TBASE, 3);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 8), 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 16), 4 * PG, RW, DMM_MAP_PRIVATE, f->file, 3);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 24), 2 * PG, DMM_PROT_NONE, ANON_SHARED, NULL, 0);
	OK(dmm_madvise(f->mm, TBASE, 3 * PG, DMM_MADV_HUGEPAGE));
	CHECK_OK(f->sys);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	VMAS(f->mm, &a);
	VMAS(child, &b);
	EQS(a.n, 4);
	EQS(b.n, 4);
	for (int i = 0; i < a.n; i++) {
		EQ(b.v[i].start, a.v[i].start);
		EQ(b.v[i].end, a.v[i].end);
		EQ(b.v[i].pgoff, a.v[i].pgoff);
		EQ(b.v[i].flags, a.v[i].flags);
		EQ(b.v[i].type, a.v[i].type);
		TRUE(b.v[i].file == a.v[i].file);
	}
	dmm_file_put(f->file);
	f->file = NULL;
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */

#define MX(fn, k, label) { #fn "[" label "]", fn, mx_setup, mx_teardown, &variants[k] }
#define MATRIX(fn)                                                                         \
	MX(fn, K_ANON, "anon_private"), MX(fn, K_SHMEM, "shmem"),                          \
		MX(fn, K_FILE_PRIVATE, "file_private"), MX(fn, K_FILE_SHARED, "file_shared")

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		MATRIX(test_child_sees_parent_data_after_fork),
		MATRIX(test_write_after_fork_in_parent),
		MATRIX(test_write_after_fork_in_child),
		MATRIX(test_write_after_fork_in_parent_after_child_exits),
		MATRIX(test_write_after_fork_in_child_after_parent_exits),
		MATRIX(test_read_after_fork_in_parent_after_child_exits),
		MATRIX(test_read_after_fork_in_child_after_parent_exits),
		MATRIX(test_child_write_to_a_page_the_parent_only_read),
		T(test_pinned_page_is_copied_for_the_child_at_fork),
		T(test_page_with_a_get_reference_is_shared_at_fork),
		T(test_zero_page_mapping_across_fork),
		T(test_fork_leaves_out_dontfork_ranges),
		T(test_exit_of_parent_then_child_frees_everything),
		T(test_grandchild_shares_and_copies_independently),
		cmocka_unit_test_setup_teardown(test_fork_fails_cleanly_when_a_pinned_copy_cannot_be_allocated,
						fx_setup_64, fx_teardown),
		T(test_private_file_page_is_copied_even_when_alone),
		T(test_mprotect_after_fork_does_not_make_shared_pages_writable),
		T(test_write_after_fork_reuses_once_the_other_side_unmapped),
		T(test_failing_cmpxchg_after_fork_copies_the_page),
		T(test_fork_of_an_empty_process),
		T(test_child_vmas_copy_the_parent_vmas),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
