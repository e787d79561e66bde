/* SPDX-License-Identifier: MIT */
/*
 * Shared test code for the cmocka suites: fixtures (a system of N frames
 * with one address space), the invariant check that every test runs after
 * every step (CHECK_OK), assertions that print decimal values and errno
 * names, and helpers that fill and verify memory with a pattern (word k of
 * a range holds seed + k).
 *
 * Everything here is static inline so that each test program may use any
 * subset of it without unused-function warnings.
 */
#ifndef DEVMM_TESTS_HELPERS_H
#define DEVMM_TESTS_HELPERS_H

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <devmm/devmm.h>

#define PG DMM_PAGE_SIZE
#define WORDS_PER_PAGE (DMM_PAGE_SIZE / sizeof(uint32_t))

/* A 2 MiB aligned place for test mappings, far from where the kernel-style
 * bottom-up placement puts non-fixed mappings. */
#define TBASE 0x200000000UL

/* Address of page i of a mapping at base. */
#define PAGE_ADDR(base, i) ((base) + (uint64_t)(i) * DMM_PAGE_SIZE)

/* Common mmap flag sets. */
#define ANON_PRIVATE (DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS)
#define ANON_SHARED (DMM_MAP_SHARED | DMM_MAP_ANONYMOUS)
#define RW (DMM_PROT_READ | DMM_PROT_WRITE)

/* ------------------------------------------------------------------------ */
/* Errors and plain assertions                                               */

static inline const char *errname(long e)
{
	switch (e) {
	case 0: return "0";
	case -EINVAL: return "-EINVAL";
	case -ENOMEM: return "-ENOMEM";
	case -EFAULT: return "-EFAULT";
	case -EEXIST: return "-EEXIST";
	case -EACCES: return "-EACCES";
	case -ENOENT: return "-ENOENT";
	case -ENXIO: return "-ENXIO";
	case -EBUSY: return "-EBUSY";
	case -EPERM: return "-EPERM";
	case -EUCLEAN: return "-EUCLEAN";
	case -EOPNOTSUPP: return "-EOPNOTSUPP";
	default: return e < 0 ? "-E?" : "(count)";
	}
}

/* Fail at the caller's line with a formatted message. */
static inline void h_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline void h_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("ERROR: %s\n", msg);
	_fail(file, line);
}

/* EXPECT_RC(-EINVAL, dmm_munmap(...)): a return code, printed by name. */
#define EXPECT_RC(expected, expr)                                                          \
	do {                                                                               \
		long rc_ = (long)(expr);                                                   \
		long ex_ = (long)(expected);                                               \
		if (rc_ != ex_)                                                            \
			h_fail(__FILE__, __LINE__, "%s returned %ld (%s), expected %ld (%s)", \
			       #expr, rc_, errname(rc_), ex_, errname(ex_));               \
	} while (0)
#define OK(expr) EXPECT_RC(0, expr)

/* EQ(a, b): unsigned 64-bit equality, printed in decimal and hex. */
#define EQ(actual, expected)                                                               \
	do {                                                                               \
		uint64_t a_ = (uint64_t)(actual);                                          \
		uint64_t e_ = (uint64_t)(expected);                                        \
		if (a_ != e_)                                                              \
			h_fail(__FILE__, __LINE__,                                         \
			       "%s = %" PRIu64 " (%#" PRIx64 "), expected %s = %" PRIu64     \
			       " (%#" PRIx64 ")",                                          \
			       #actual, a_, a_, #expected, e_, e_);                        \
	} while (0)
#define NE(actual, other)                                                                  \
	do {                                                                               \
		uint64_t a_ = (uint64_t)(actual);                                          \
		uint64_t o_ = (uint64_t)(other);                                           \
		if (a_ == o_)                                                              \
			h_fail(__FILE__, __LINE__, "%s = %" PRIu64 " (%#" PRIx64           \
			       "), expected it to differ from %s",                         \
			       #actual, a_, a_, #other);                                   \
	} while (0)
/* Signed equality (mapcounts, rss). */
#define EQS(actual, expected)                                                              \
	do {                                                                               \
		long long a_ = (long long)(actual);                                        \
		long long e_ = (long long)(expected);                                      \
		if (a_ != e_)                                                              \
			h_fail(__FILE__, __LINE__, "%s = %lld, expected %s = %lld", #actual, \
			       a_, #expected, e_);                                         \
	} while (0)
#define TRUE(cond)                                                                         \
	do {                                                                               \
		if (!(cond))                                                               \
			h_fail(__FILE__, __LINE__, "expected %s", #cond);                  \
	} while (0)
/* Page-flag assertions: all of `set` present and none of `clear`. */
#define FLAGS(flags, set, clear)                                                           \
	do {                                                                               \
		uint64_t f_ = (uint64_t)(flags);                                           \
		if ((f_ & (uint64_t)(set)) != (uint64_t)(set) || (f_ & (uint64_t)(clear))) \
			h_fail(__FILE__, __LINE__,                                         \
			       "%s = %#" PRIx64 ": expected %s (%#" PRIx64                \
			       ") set and %s (%#" PRIx64 ") clear",                        \
			       #flags, f_, #set, (uint64_t)(set), #clear, (uint64_t)(clear)); \
	} while (0)

/* ------------------------------------------------------------------------ */
/* The invariant check: run after every step                                 */

static inline void check_ok_at(const char *file, int line, struct dmm_system *sys)
{
	static char report[16384];
	int rc;

	report[0] = '\0';
	rc = dmm_check(sys, report, sizeof(report));
	if (rc != 0)
		h_fail(file, line, "dmm_check returned %d (%s):\n%s", rc, errname(rc), report);
}
#define CHECK_OK(sys) check_ok_at(__FILE__, __LINE__, (sys))

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

struct fx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct dmm_file *file; /* optional, created by the test */
	uint64_t free0;	       /* nr_free right after creation */
};

static inline struct dmm_system *sys_new(uint64_t nr_frames)
{
	struct dmm_system_config cfg = { .nr_frames = nr_frames, .flags = 0 };
	struct dmm_system *sys = NULL;
	int rc = dmm_system_create(&cfg, &sys);

	if (rc != 0 || !sys) {
		print_error("dmm_system_create(%" PRIu64 " frames) = %d\n", nr_frames, rc);
		return NULL;
	}
	return sys;
}

static inline int fx_setup_frames(void **state, uint64_t nr_frames)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->sys = sys_new(nr_frames);
	if (!f->sys || dmm_mm_create(f->sys, &f->mm) != 0) {
		if (f->sys)
			dmm_system_destroy(f->sys);
		free(f);
		return -1;
	}
	f->free0 = dmm_system_nr_free(f->sys);
	*state = f;
	return 0;
}

/* Default fixture: 4096 frames (16 MiB) and one empty address space. */
static inline int fx_setup(void **state) { return fx_setup_frames(state, 4096); }
/* A small machine for out-of-memory tests. */
static inline int fx_setup_64(void **state) { return fx_setup_frames(state, 64); }

static inline int fx_teardown(void **state)
{
	struct fx *f = *state;

	if (f) {
		dmm_system_destroy(f->sys);
		free(f);
	}
	*state = NULL;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Mapping shorthands                                                        */

/* mmap at a fixed address, asserting success. */
static inline void map_fixed_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr,
				uint64_t len, int prot, int flags, struct dmm_file *f, uint64_t pgoff)
{
	uint64_t out = 0;
	int rc = dmm_mmap(mm, addr, len, prot, flags | DMM_MAP_FIXED, f, pgoff, &out);

	if (rc != 0)
		h_fail(file, line, "dmm_mmap(%#" PRIx64 ", %" PRIu64 " pages, prot %#x, flags %#x) = %d (%s)",
		       addr, len / PG, prot, flags, rc, errname(rc));
	if (out != addr)
		h_fail(file, line, "dmm_mmap FIXED returned %#" PRIx64 ", expected %#" PRIx64, out, addr);
}
#define MAP_FIXED(mm, addr, len, prot, flags, file, pgoff) \
	map_fixed_at(__FILE__, __LINE__, mm, addr, len, prot, flags, file, pgoff)
#define MAP_ANON(mm, addr, npages) \
	MAP_FIXED(mm, addr, (uint64_t)(npages) * PG, RW, ANON_PRIVATE, NULL, 0)

/* ------------------------------------------------------------------------ */
/* Patterns: word k of a range holds seed + k                                */

static inline void fill_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr,
			   uint64_t len, uint32_t seed)
{
	size_t n = len / sizeof(uint32_t);
	uint32_t *buf = malloc(len ? len : 1);
	int rc;

	if (!buf)
		h_fail(file, line, "out of memory");
	for (size_t k = 0; k < n; k++)
		buf[k] = seed + (uint32_t)k;
	rc = dmm_write(mm, addr, buf, len);
	free(buf);
	if (rc != 0)
		h_fail(file, line, "dmm_write(%#" PRIx64 ", %" PRIu64 " bytes) = %d (%s)", addr, len, rc,
		       errname(rc));
}
#define FILL(mm, addr, len, seed) fill_at(__FILE__, __LINE__, mm, addr, len, seed)

/* Verify a pattern; seed_is_zero selects "all zero" instead. */
static inline void verify_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr,
			     uint64_t len, uint32_t seed, bool zero)
{
	size_t n = len / sizeof(uint32_t);
	uint32_t *buf = malloc(len ? len : 1);
	int rc;

	if (!buf)
		h_fail(file, line, "out of memory");
	memset(buf, 0xa5, len);
	rc = dmm_read(mm, addr, buf, len);
	if (rc != 0) {
		free(buf);
		h_fail(file, line, "dmm_read(%#" PRIx64 ", %" PRIu64 " bytes) = %d (%s)", addr, len, rc,
		       errname(rc));
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t want = zero ? 0 : seed + (uint32_t)k;

		if (buf[k] != want) {
			uint32_t got = buf[k];

			free(buf);
			h_fail(file, line, "word at %#" PRIx64 " (word %zu of the range) = %#" PRIx32
			       ", expected %#" PRIx32,
			       addr + k * sizeof(uint32_t), k, got, want);
		}
	}
	free(buf);
}
#define VERIFY(mm, addr, len, seed) verify_at(__FILE__, __LINE__, mm, addr, len, seed, false)
#define VERIFY_ZERO(mm, addr, len) verify_at(__FILE__, __LINE__, mm, addr, len, 0, true)

/* The same for a file, through dmm_file_pread / dmm_file_pwrite. */
static inline void file_fill_at(const char *file, int line, struct dmm_file *f, uint64_t off,
				uint64_t len, uint32_t seed)
{
	size_t n = len / sizeof(uint32_t);
	uint32_t *buf = malloc(len ? len : 1);
	int rc;

	if (!buf)
		h_fail(file, line, "out of memory");
	for (size_t k = 0; k < n; k++)
		buf[k] = seed + (uint32_t)k;
	rc = dmm_file_pwrite(f, buf, len, off);
	free(buf);
	if (rc != 0)
		h_fail(file, line, "dmm_file_pwrite(off %" PRIu64 ", %" PRIu64 " bytes) = %d (%s)", off,
		       len, rc, errname(rc));
}
#define FILE_FILL(f, off, len, seed) file_fill_at(__FILE__, __LINE__, f, off, len, seed)

static inline void file_verify_at(const char *file, int line, struct dmm_file *f, uint64_t off,
				  uint64_t len, uint32_t seed, bool zero)
{
	size_t n = len / sizeof(uint32_t);
	uint32_t *buf = malloc(len ? len : 1);
	int rc;

	if (!buf)
		h_fail(file, line, "out of memory");
	memset(buf, 0xa5, len);
	rc = dmm_file_pread(f, buf, len, off);
	if (rc != 0) {
		free(buf);
		h_fail(file, line, "dmm_file_pread(off %" PRIu64 ", %" PRIu64 " bytes) = %d (%s)", off,
		       len, rc, errname(rc));
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t want = zero ? 0 : seed + (uint32_t)k;

		if (buf[k] != want) {
			uint32_t got = buf[k];

			free(buf);
			h_fail(file, line, "file word at offset %" PRIu64 " = %#" PRIx32
			       ", expected %#" PRIx32,
			       off + k * sizeof(uint32_t), got, want);
		}
	}
	free(buf);
}
#define FILE_VERIFY(f, off, len, seed) file_verify_at(__FILE__, __LINE__, f, off, len, seed, false)
#define FILE_VERIFY_ZERO(f, off, len) file_verify_at(__FILE__, __LINE__, f, off, len, 0, true)

/* One word through the CPU path. */
static inline uint32_t load_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr)
{
	uint32_t v = 0xdeadbeef;
	int rc = dmm_load32(mm, addr, &v);

	if (rc != 0)
		h_fail(file, line, "dmm_load32(%#" PRIx64 ") = %d (%s)", addr, rc, errname(rc));
	return v;
}
#define LOAD(mm, addr) load_at(__FILE__, __LINE__, mm, addr)

/* ------------------------------------------------------------------------ */
/* Page tables and frames                                                    */

/*
 * The mm whose mmap_lock this thread took with h_mmap_read_lock: the entry
 * helpers below then query with dmm_pte_query_locked, since the mmap_lock
 * is not recursive (debug builds abort on a second read lock).
 */
static _Thread_local struct dmm_mm *h_mmap_held;
static inline void h_mmap_read_lock(struct dmm_mm *mm)
{
	dmm_mmap_read_lock(mm);
	h_mmap_held = mm;
}
static inline void h_mmap_read_unlock(struct dmm_mm *mm)
{
	h_mmap_held = NULL;
	dmm_mmap_read_unlock(mm);
}

static inline struct dmm_pte_info pte_at(const char *file, int line, struct dmm_mm *mm,
					 uint64_t addr)
{
	struct dmm_pte_info p;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = mm == h_mmap_held ? dmm_pte_query_locked(mm, addr, &p) : dmm_pte_query(mm, addr, &p);
	if (rc != 0)
		h_fail(file, line, "dmm_pte_query(%#" PRIx64 ") = %d (%s)", addr, rc, errname(rc));
	return p;
}
#define PTE(mm, addr) pte_at(__FILE__, __LINE__, mm, addr)

/* The pfn of a PRESENT entry (fails when the entry is of another kind). */
static inline uint64_t pfn_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_pte_info p = pte_at(file, line, mm, addr);

	if (p.kind != DMM_PTE_PRESENT)
		h_fail(file, line, "pte at %#" PRIx64 " is %s, expected present", addr,
		       dmm_pte_kind_name(p.kind));
	return p.pfn;
}
#define PFN(mm, addr) pfn_at(__FILE__, __LINE__, mm, addr)

static inline void pte_none_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_pte_info p = pte_at(file, line, mm, addr);

	if (p.kind != DMM_PTE_NONE)
		h_fail(file, line, "pte at %#" PRIx64 " is %s (pfn %" PRIu64 "), expected none", addr,
		       dmm_pte_kind_name(p.kind), p.pfn);
}
#define PTE_NONE(mm, addr) pte_none_at(__FILE__, __LINE__, mm, addr)

static inline struct dmm_page_info page_at(const char *file, int line, struct dmm_system *sys,
					   uint64_t pfn)
{
	struct dmm_page_info p;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = dmm_page_query(sys, pfn, &p);
	if (rc != 0)
		h_fail(file, line, "dmm_page_query(pfn %" PRIu64 ") = %d (%s)", pfn, rc, errname(rc));
	return p;
}
#define PAGE(sys, pfn) page_at(__FILE__, __LINE__, sys, pfn)

/* refcount and mapcount of a frame, exactly. */
#define COUNTS(sys, pfn, ref, map)                                                         \
	do {                                                                               \
		struct dmm_page_info pi_ = PAGE(sys, pfn);                                 \
		if (pi_.refcount != (uint32_t)(ref) || pi_.mapcount != (int32_t)(map))     \
			h_fail(__FILE__, __LINE__,                                         \
			       "pfn %" PRIu64 ": refcount %" PRIu32 " mapcount %" PRId32   \
			       ", expected refcount %u mapcount %d",                       \
			       (uint64_t)(pfn), pi_.refcount, pi_.mapcount, (unsigned)(ref), \
			       (int)(map));                                                \
	} while (0)

/* ------------------------------------------------------------------------ */
/* VMAs                                                                      */

#define MAX_VMAS 64
struct vma_list {
	int n;
	struct dmm_vma_info v[MAX_VMAS];
};

static inline void vmas_at(const char *file, int line, struct dmm_mm *mm, struct vma_list *l)
{
	struct dmm_vma_info v;
	uint64_t a = 0;
	int rc;

	memset(l, 0, sizeof(*l));
	while ((rc = dmm_vma_query(mm, a, &v)) == 0) {
		if (l->n == MAX_VMAS)
			h_fail(file, line, "more than %d VMAs", MAX_VMAS);
		if (v.end <= a || v.start >= v.end)
			h_fail(file, line, "dmm_vma_query(%#" PRIx64 ") gave [%#" PRIx64 ", %#" PRIx64 ")",
			       a, v.start, v.end);
		l->v[l->n++] = v;
		a = v.end;
	}
	if (rc != -ENOENT)
		h_fail(file, line, "dmm_vma_query(%#" PRIx64 ") = %d (%s), expected -ENOENT at the end",
		       a, rc, errname(rc));
}
#define VMAS(mm, l) vmas_at(__FILE__, __LINE__, mm, l)

static inline void vmas_equal_at(const char *file, int line, const struct vma_list *a,
				 const struct vma_list *b)
{
	if (a->n != b->n)
		h_fail(file, line, "%d VMAs, expected %d", b->n, a->n);
	for (int i = 0; i < a->n; i++) {
		const struct dmm_vma_info *x = &a->v[i], *y = &b->v[i];

		if (x->start != y->start || x->end != y->end || x->pgoff != y->pgoff ||
		    x->flags != y->flags || x->type != y->type || x->file != y->file)
			h_fail(file, line,
			       "VMA %d changed: [%#" PRIx64 ", %#" PRIx64 ") pgoff %" PRIu64
			       " flags %#lx type %d -> [%#" PRIx64 ", %#" PRIx64 ") pgoff %" PRIu64
			       " flags %#lx type %d",
			       i, x->start, x->end, x->pgoff, x->flags, (int)x->type, y->start, y->end,
			       y->pgoff, y->flags, (int)y->type);
	}
}
/* The current VMA list equals a snapshot taken before. */
#define VMAS_UNCHANGED(mm, before)                                                         \
	do {                                                                               \
		struct vma_list now_;                                                      \
		VMAS(mm, &now_);                                                           \
		vmas_equal_at(__FILE__, __LINE__, (before), &now_);                        \
	} while (0)

/* The VMA containing addr (fails when addr is not mapped). */
static inline struct dmm_vma_info vma_at(const char *file, int line, struct dmm_mm *mm,
					 uint64_t addr)
{
	struct dmm_vma_info v;
	int rc = dmm_vma_query(mm, addr, &v);

	if (rc != 0)
		h_fail(file, line, "dmm_vma_query(%#" PRIx64 ") = %d (%s)", addr, rc, errname(rc));
	if (v.start > addr || v.end <= addr)
		h_fail(file, line, "no VMA contains %#" PRIx64 " (next is [%#" PRIx64 ", %#" PRIx64 "))",
		       addr, v.start, v.end);
	return v;
}
#define VMA(mm, addr) vma_at(__FILE__, __LINE__, mm, addr)

/* addr is in no VMA. */
static inline void unmapped_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_vma_info v;
	int rc = dmm_vma_query(mm, addr, &v);

	if (rc == 0 && v.start <= addr && addr < v.end)
		h_fail(file, line, "%#" PRIx64 " is mapped by [%#" PRIx64 ", %#" PRIx64 ")", addr,
		       v.start, v.end);
	if (rc != 0 && rc != -ENOENT)
		h_fail(file, line, "dmm_vma_query(%#" PRIx64 ") = %d (%s)", addr, rc, errname(rc));
}
#define UNMAPPED(mm, addr) unmapped_at(__FILE__, __LINE__, mm, addr)

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */

static inline struct dmm_stats stats_at(const char *file, int line, struct dmm_system *sys)
{
	struct dmm_stats s;
	int rc;

	memset(&s, 0, sizeof(s));
	rc = dmm_stats_get(sys, &s);
	if (rc != 0)
		h_fail(file, line, "dmm_stats_get = %d (%s)", rc, errname(rc));
	return s;
}
#define STATS(sys) stats_at(__FILE__, __LINE__, sys)
/* The change of one counter since a snapshot. */
#define STAT_DELTA(sys, before, name) (STATS(sys).name - (before).name)

#endif /* DEVMM_TESTS_HELPERS_H */
