/* SPDX-License-Identifier: MIT */
/*
 * The mirror device driver (drivers/mirror, /work/shared/spec/mirror-device.md):
 * every command with its exact cpages, fault passes and errors (§3), the
 * snapshot bytes (§4), two devices seeing each other's pages, fork with
 * pages on the device, exclusive access and how it is lost, atomics,
 * release across processes, fail-next-alloc in each direction, the pool,
 * and close / reopen.
 *
 * As the kernel's hmm selftests do with FIXTURE_VARIANT, every test runs
 * once per device type: the prestate is a variant (private, coherent),
 * and the setup creates a system, one address space and a mirror device of
 * that type (DEV_PAGES pages in chunks of CHUNK_PAGES, so chunks are added
 * and released), with its mirror of the address space open. The
 * two-device tests run for each pair of types (the second device "B" may
 * be of the same type as "A" or of the other one).
 *
 * CHECK_OK (dmm_check) runs after every step.
 */
#include <stdatomic.h>

#include "helpers.h"
#include "mirror.h"

#define DEV_PAGES 64
#define CHUNK_PAGES 16
#define NFRAMES 4096

#define PRIV DMM_MEMORY_DEVICE_PRIVATE
#define COH DMM_MEMORY_DEVICE_COHERENT

/* A buffer byte that no command may produce by accident. */
#define CANARY 0xcd

/* ------------------------------------------------------------------------ */
/* Fixtures and variants                                                     */

struct mvariant {
	enum dmm_memory_type type;  /* device A */
	enum dmm_memory_type type2; /* device B, in the two-device fixture */
};

static const struct mvariant V_PRIVATE = { PRIV, PRIV };
static const struct mvariant V_COHERENT = { COH, COH };
static const struct mvariant V_PP = { PRIV, PRIV };
static const struct mvariant V_PC = { PRIV, COH };
static const struct mvariant V_CP = { COH, PRIV };
static const struct mvariant V_CC = { COH, COH };

struct mfx {
	const struct mvariant *v;
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct mirror_device *dev, *dev2; /* A, and B (two-device fixture only) */
	struct mirror *m, *m2;		  /* their mirrors of mm */
};

static bool is_variant(void *p)
{
	return p == &V_PRIVATE || p == &V_COHERENT || p == &V_PP || p == &V_PC || p == &V_CP ||
	       p == &V_CC;
}

static int new_device(struct dmm_system *sys, const char *name, enum dmm_memory_type type,
		      struct mirror_device **out)
{
	struct mirror_device_config cfg = {
		.type = type, .pages = DEV_PAGES, .chunk_pages = CHUNK_PAGES, .cow = MIRROR_COW_SYSTEM,
	};

	return mirror_device_create(sys, name, &cfg, out);
}

static int setup_n(void **state, int ndev)
{
	const struct mvariant *v = *state;
	struct mfx *f = calloc(1, sizeof(*f));

	if (!f || !v)
		goto fail;
	f->v = v;
	f->sys = sys_new(NFRAMES);
	if (!f->sys || dmm_mm_create(f->sys, &f->mm))
		goto fail;
	if (new_device(f->sys, "mirrorA", v->type, &f->dev) || mirror_open(f->dev, f->mm, &f->m))
		goto fail;
	if (ndev > 1 &&
	    (new_device(f->sys, "mirrorB", v->type2, &f->dev2) || mirror_open(f->dev2, f->mm, &f->m2)))
		goto fail;
	*state = f;
	return 0;
fail:
	if (f) {
		mirror_device_destroy(f->dev2);
		mirror_device_destroy(f->dev);
		if (f->sys)
			dmm_system_destroy(f->sys);
		free(f);
	}
	return -1;
}

static int setup1(void **state) { return setup_n(state, 1); }
static int setup2(void **state) { return setup_n(state, 2); }

static void buf_free_all(void);

static int teardown(void **state)
{
	struct mfx *f = *state;

	buf_free_all();
	if (!f || is_variant(f))
		return 0;
	/* Release evicts every page and closes every mirror still open. */
	mirror_device_destroy(f->dev2);
	mirror_device_destroy(f->dev);
	dmm_system_destroy(f->sys);
	free(f);
	*state = NULL;
	return 0;
}

#define T_NAMED(fn, var, vname, su) { #fn "/" vname, fn, su, teardown, (void *)&(var) }
/* Both device types. */
#define T2(fn) T_NAMED(fn, V_PRIVATE, "private", setup1), T_NAMED(fn, V_COHERENT, "coherent", setup1)
#define TC(fn) T_NAMED(fn, V_COHERENT, "coherent", setup1)
/* Every pair of types (A, B). */
#define T4(fn)                                                                            \
	T_NAMED(fn, V_PP, "A-private,B-private", setup2),                                 \
	T_NAMED(fn, V_PC, "A-private,B-coherent", setup2),                                \
	T_NAMED(fn, V_CP, "A-coherent,B-private", setup2),                                \
	T_NAMED(fn, V_CC, "A-coherent,B-coherent", setup2)

static bool a_private(const struct mfx *f) { return f->v->type == PRIV; }
static bool b_private(const struct mfx *f) { return f->v->type2 == PRIV; }

/* ------------------------------------------------------------------------ */
/* Buffers                                                                   */

/*
 * Data buffers, filled with the canary. They are tracked so that a test
 * that fails half-way (cmocka longjmps out of it) leaks none: the
 * teardown frees what is left.
 */
#define MAX_BUFS 16
static void *live_bufs[MAX_BUFS];

static void *buf_new(uint64_t npages)
{
	void *b = malloc(npages * PG);

	assert_non_null(b);
	memset(b, CANARY, npages * PG);
	for (int i = 0; i < MAX_BUFS; i++) {
		if (!live_bufs[i]) {
			live_bufs[i] = b;
			return b;
		}
	}
	fail_msg("more than %d live buffers", MAX_BUFS);
	return NULL;
}

static void buf_free(void *b)
{
	for (int i = 0; i < MAX_BUFS; i++)
		if (live_bufs[i] == b)
			live_bufs[i] = NULL;
	free(b);
}

static void buf_free_all(void)
{
	for (int i = 0; i < MAX_BUFS; i++) {
		free(live_bufs[i]);
		live_bufs[i] = NULL;
	}
}

static void buf_fill(void *buf, uint64_t npages, uint32_t seed)
{
	uint32_t *w = buf;

	for (uint64_t k = 0; k < npages * WORDS_PER_PAGE; k++)
		w[k] = seed + (uint32_t)k;
}

/* Word k of buf holds seed + k (zero: holds 0). */
static void buf_expect_at(const char *file, int line, const void *buf, uint64_t npages, uint32_t seed,
			  bool zero)
{
	const uint32_t *w = buf;

	for (uint64_t k = 0; k < npages * WORDS_PER_PAGE; k++) {
		uint32_t want = zero ? 0 : seed + (uint32_t)k;

		if (w[k] != want)
			h_fail(file, line, "buffer word %" PRIu64 " (page %" PRIu64 ") = %#" PRIx32
			       ", expected %#" PRIx32, k, k / WORDS_PER_PAGE, w[k], want);
	}
}
#define BUF_EXPECT(buf, npages, seed) buf_expect_at(__FILE__, __LINE__, buf, npages, seed, false)
#define BUF_ZERO(buf, npages) buf_expect_at(__FILE__, __LINE__, buf, npages, 0, true)

/* The buffer still holds the canary: the failed command left it alone. */
static void buf_untouched_at(const char *file, int line, const void *buf, uint64_t npages)
{
	const uint8_t *b = buf;

	for (uint64_t i = 0; i < npages * PG; i++)
		if (b[i] != CANARY)
			h_fail(file, line, "buffer byte %" PRIu64 " = %#x: written by a command that failed",
			       i, b[i]);
}
#define BUF_UNTOUCHED(buf, npages) buf_untouched_at(__FILE__, __LINE__, buf, npages)

/* ------------------------------------------------------------------------ */
/* Commands with their results                                               */

#define GARBAGE_RESULT { .cpages = 12345, .faults = 6789 }

/* A successful read/write/exclusive with exact cpages and fault passes. */
#define READ_OK(m, addr, n, buf, nfaults)                                                 \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		OK(mirror_read(m, addr, n, buf, &r_));                                    \
		EQ(r_.cpages, n);                                                         \
		EQ(r_.faults, nfaults);                                                   \
	} while (0)
#define WRITE_OK(m, addr, n, buf, nfaults)                                                \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		OK(mirror_write(m, addr, n, buf, &r_));                                   \
		EQ(r_.cpages, n);                                                         \
		EQ(r_.faults, nfaults);                                                   \
	} while (0)
#define TODEV_OK(m, addr, n, buf)                                                         \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		OK(mirror_migrate_to_dev(m, addr, n, buf, &r_));                          \
		EQ(r_.cpages, n);                                                         \
		EQ(r_.faults, 0);                                                         \
	} while (0)
#define TOSYS_OK(m, addr, n, moved)                                                       \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		OK(mirror_migrate_to_sys(m, addr, n, &r_));                               \
		EQ(r_.cpages, moved);                                                     \
	} while (0)
#define EXCL_OK(m, addr, n, buf, nfaults)                                                 \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		OK(mirror_exclusive(m, addr, n, buf, &r_));                               \
		EQ(r_.cpages, n);                                                         \
		EQ(r_.faults, nfaults);                                                   \
	} while (0)
#define ADD_OK(m, addr, n, value, nfaults)                                                \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		OK(mirror_atomic_add(m, addr, n, value, &r_));                            \
		EQ(r_.cpages, n);                                                         \
		EQ(r_.faults, nfaults);                                                   \
	} while (0)

/* A command that must fail with err, leaving the buffer alone. */
#define READ_FAILS(err, m, addr, n)                                                       \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		void *b_ = buf_new(n);                                                    \
		EXPECT_RC(err, mirror_read(m, addr, n, b_, &r_));                         \
		BUF_UNTOUCHED(b_, n);                                                     \
		buf_free(b_);                                                                 \
	} while (0)
#define TODEV_FAILS(err, m, addr, n)                                                      \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		void *b_ = buf_new(n);                                                    \
		EXPECT_RC(err, mirror_migrate_to_dev(m, addr, n, b_, &r_));               \
		BUF_UNTOUCHED(b_, n);                                                     \
		buf_free(b_);                                                                 \
	} while (0)
#define EXCL_FAILS(err, m, addr, n)                                                       \
	do {                                                                              \
		struct mirror_result r_ = GARBAGE_RESULT;                                 \
		void *b_ = buf_new(n);                                                    \
		EXPECT_RC(err, mirror_exclusive(m, addr, n, b_, &r_));                    \
		BUF_UNTOUCHED(b_, n);                                                     \
		buf_free(b_);                                                                 \
	} while (0)

/* The same with a scratch buffer. */
#define TODEV(m, addr, n)                                                                 \
	do {                                                                              \
		void *s_ = buf_new(n);                                                    \
		TODEV_OK(m, addr, n, s_);                                                 \
		buf_free(s_);                                                                 \
	} while (0)
#define EXCL(m, addr, n, nfaults)                                                         \
	do {                                                                              \
		void *s_ = buf_new(n);                                                    \
		EXCL_OK(m, addr, n, s_, nfaults);                                         \
		buf_free(s_);                                                                 \
	} while (0)

/* Read n pages through the mirror and expect the pattern. */
#define READ_EXPECT(m, addr, n, seed, nfaults)                                            \
	do {                                                                              \
		void *b_ = buf_new(n);                                                    \
		READ_OK(m, addr, n, b_, nfaults);                                         \
		BUF_EXPECT(b_, n, seed);                                                  \
		buf_free(b_);                                                                 \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Snapshots, pool, where pages live                                         */

static void snap_expect_at(const char *file, int line, struct mirror *m, uint64_t addr, uint64_t n,
			   const uint8_t *want)
{
	uint8_t *got = malloc(n);
	struct mirror_result r = GARBAGE_RESULT;
	int rc;

	if (!got)
		h_fail(file, line, "out of memory");
	memset(got, 0xee, n);
	rc = mirror_snapshot(m, addr, n, got, &r);
	if (rc != 0) {
		free(got);
		h_fail(file, line, "mirror_snapshot = %d (%s)", rc, errname(rc));
	}
	if (r.cpages != n || r.faults != 0) {
		uint64_t c = r.cpages, fl = r.faults;

		free(got);
		h_fail(file, line, "snapshot cpages %" PRIu64 " faults %" PRIu64 ", expected %" PRIu64 " and 0",
		       c, fl, n);
	}
	for (uint64_t i = 0; i < n; i++) {
		if (got[i] != want[i]) {
			uint8_t g = got[i];

			free(got);
			h_fail(file, line, "snapshot byte of page %" PRIu64 " = %#04x, expected %#04x", i, g,
			       want[i]);
		}
	}
	free(got);
}
#define SNAP(m, addr, ...)                                                                \
	do {                                                                              \
		const uint8_t w_[] = { __VA_ARGS__ };                                     \
		snap_expect_at(__FILE__, __LINE__, m, addr, sizeof(w_), w_);              \
	} while (0)
/* n pages, all with the same byte. */
static void snap_all_at(const char *file, int line, struct mirror *m, uint64_t addr, uint64_t n, uint8_t b)
{
	uint8_t *w = malloc(n);

	if (!w)
		h_fail(file, line, "out of memory");
	memset(w, b, n);
	snap_expect_at(file, line, m, addr, n, w);
	free(w);
}
#define SNAP_ALL(m, addr, n, b) snap_all_at(__FILE__, __LINE__, m, addr, n, b)

/* Snapshot bytes. */
#define S_NOVMA 0xff
#define S_NONE 0x00
#define S_ZERO 0x11
#define S_SYS_RO 0x01
#define S_SYS_RW 0x02
static uint8_t own_byte(enum dmm_memory_type t, bool w)
{
	return (uint8_t)((t == PRIV ? 0x20 : 0x40) | (w ? 0x02 : 0x01));
}
/* Another device's page of type t, seen from a mirror. */
static uint8_t other_byte(enum dmm_memory_type t, bool w)
{
	return t == PRIV ? 0x00 : (uint8_t)(0x50 | (w ? 0x02 : 0x01));
}
#define OWN_A(f, w) own_byte((f)->v->type, w)
#define OWN_B(f, w) own_byte((f)->v->type2, w)
#define A_SEEN_BY_B(f, w) other_byte((f)->v->type, w)
#define B_SEEN_BY_A(f, w) other_byte((f)->v->type2, w)

static void pool_at(const char *file, int line, struct mirror_device *dev, uint64_t used)
{
	uint64_t u = 999, fr = 999;

	mirror_pool(dev, &u, &fr);
	if (u != used || fr != DEV_PAGES - used)
		h_fail(file, line, "pool of %s: used %" PRIu64 " free %" PRIu64 ", expected used %" PRIu64
		       " free %" PRIu64, dev->name, u, fr, used, (uint64_t)DEV_PAGES - used);
}
#define POOL(dev, used) pool_at(__FILE__, __LINE__, dev, used)

/* The page at addr lives on dev: a device-private entry (writable or not)
 * or a present entry of a coherent page; the frame belongs to dev.
 * Returns the pfn. */
static uint64_t on_dev_at(const char *file, int line, struct mirror_device *dev, struct dmm_mm *mm,
			  uint64_t addr, bool writable)
{
	struct dmm_pte_info p = pte_at(file, line, mm, addr);
	struct dmm_pgmap *pg;

	if (dev->type == PRIV) {
		enum dmm_pte_kind want = writable ? DMM_PTE_DEVICE_PRIVATE_WRITE : DMM_PTE_DEVICE_PRIVATE_READ;

		if (p.kind != want)
			h_fail(file, line, "pte at %#" PRIx64 " is %s, expected %s on %s", addr,
			       dmm_pte_kind_name(p.kind), dmm_pte_kind_name(want), dev->name);
	} else if (p.kind != DMM_PTE_PRESENT || p.write != writable) {
		h_fail(file, line, "pte at %#" PRIx64 " is %s%s, expected present%s on %s", addr,
		       dmm_pte_kind_name(p.kind), p.write ? " W" : "", writable ? " W" : " RO", dev->name);
	}
	pg = dmm_page_pgmap(dev->sys, p.pfn);
	if (!pg || dmm_pgmap_owner(pg) != dev)
		h_fail(file, line, "pte at %#" PRIx64 " maps pfn %" PRIu64 ", not a page of %s", addr, p.pfn,
		       dev->name);
	return p.pfn;
}
#define ON_DEV(dev, mm, addr, w) on_dev_at(__FILE__, __LINE__, dev, mm, addr, w)

/* The page at addr is a present system page (RAM, not the zero page). */
static uint64_t in_sys_at(const char *file, int line, struct dmm_system *sys, struct dmm_mm *mm,
			  uint64_t addr)
{
	struct dmm_pte_info p = pte_at(file, line, mm, addr);
	struct dmm_page_info pi;

	if (p.kind != DMM_PTE_PRESENT)
		h_fail(file, line, "pte at %#" PRIx64 " is %s, expected a present system page", addr,
		       dmm_pte_kind_name(p.kind));
	pi = page_at(file, line, sys, p.pfn);
	if (pi.location != DMM_LOC_SYSTEM)
		h_fail(file, line, "pte at %#" PRIx64 " maps pfn %" PRIu64 " in location %d, expected system",
		       addr, p.pfn, (int)pi.location);
	return p.pfn;
}
#define IN_SYS(sys, mm, addr) in_sys_at(__FILE__, __LINE__, sys, mm, addr)

static enum dmm_page_location location_of(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page_info pi;

	memset(&pi, 0, sizeof(pi));
	assert_int_equal(dmm_page_query(sys, pfn, &pi), 0);
	return pi.location;
}

#define B(i) PAGE_ADDR(TBASE, i)

/* ------------------------------------------------------------------------ */
/* Common checks                                                             */

static void commands_reject_count_zero_overflow_and_unaligned_start(void **state)
{
	struct mfx *f = *state;
	struct mirror_result r;
	uint8_t snap[4];
	void *buf = buf_new(2);
	/* count 0; a range past the end of the address space; a count whose
	 * byte size overflows; an unaligned start. */
	const struct { uint64_t addr, n; } bad[] = {
		{ B(0), 0 },
		{ DMM_TASK_SIZE - PG, 2 },
		{ B(0), 1ULL << 62 },
		{ 0xfffffffffffff000ULL, 1 },
		{ B(0) + 8, 1 },
	};

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x100);
	CHECK_OK(f->sys);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t a = bad[i].addr, n = bad[i].n;

#define REJECTS(call)                                                                     \
	do {                                                                              \
		r = (struct mirror_result)GARBAGE_RESULT;                                 \
		EXPECT_RC(-EINVAL, call);                                                 \
		EQ(r.cpages, 0);                                                          \
		EQ(r.faults, 0);                                                          \
	} while (0)
		REJECTS(mirror_read(f->m, a, n, buf, &r));
		REJECTS(mirror_write(f->m, a, n, buf, &r));
		REJECTS(mirror_migrate_to_dev(f->m, a, n, buf, &r));
		REJECTS(mirror_migrate_to_sys(f->m, a, n, &r));
		REJECTS(mirror_snapshot(f->m, a, n, snap, &r));
		REJECTS(mirror_exclusive(f->m, a, n, buf, &r));
		REJECTS(mirror_atomic_add(f->m, a, n, 1, &r));
#undef REJECTS
		EXPECT_RC(-EINVAL, mirror_check_exclusive(f->m, a, n));
		BUF_UNTOUCHED(buf, 2);
		CHECK_OK(f->sys);
	}
	/* Nothing happened to memory or the device. */
	VERIFY(f->mm, B(0), 4 * PG, 0x100);
	POOL(f->dev, 0);
	SNAP_ALL(f->m, B(0), 4, S_SYS_RW);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void mirror_open_finds_the_open_mirror(void **state)
{
	struct mfx *f = *state;
	struct mirror *again = NULL;

	TRUE(mirror_find(f->dev, f->mm) == f->m);
	OK(mirror_open(f->dev, f->mm, &again));
	TRUE(again == f->m);
	EXPECT_RC(-EINVAL, mirror_open(NULL, f->mm, &again));
	EXPECT_RC(-EINVAL, mirror_open(f->dev, NULL, &again));
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* read                                                                      */

static void read_of_unpopulated_range_takes_exactly_one_fault_pass(void **state)
{
	struct mfx *f = *state;
	const uint64_t n = 80; /* three fault windows of 32 pages */
	void *buf = buf_new(n);

	MAP_ANON(f->mm, B(0), n);
	READ_OK(f->m, B(0), n, buf, 1);
	BUF_ZERO(buf, n);
	CHECK_OK(f->sys);
	/* A read fault maps the zero page, read-only. */
	SNAP_ALL(f->m, B(0), n, S_ZERO);
	POOL(f->dev, 0);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void read_of_mirrored_range_takes_no_fault_pass(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 40);
	FILL(f->mm, B(0), 40 * PG, 0x1000);
	READ_EXPECT(f->m, B(0), 40, 0x1000, 1);
	CHECK_OK(f->sys);
	READ_EXPECT(f->m, B(0), 40, 0x1000, 0);
	/* A sub-range of it as well. */
	READ_EXPECT(f->m, B(8), 4, 0x1000 + 8 * WORDS_PER_PAGE, 0);
	CHECK_OK(f->sys);
}

static void read_after_cpu_write_takes_a_fault_pass_and_sees_the_new_data(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	READ_OK(f->m, B(0), 4, buf, 1); /* the zero page, mirrored */
	BUF_ZERO(buf, 4);
	/* The CPU's write replaces page 2's zero page (copy-on-write): the
	 * mirror must drop its entry. */
	FILL(f->mm, B(2), PG, 0x2000);
	CHECK_OK(f->sys);
	memset(buf, CANARY, 4 * PG);
	READ_OK(f->m, B(0), 4, buf, 1);
	BUF_ZERO(buf, 2);
	BUF_EXPECT((uint8_t *)buf + 2 * PG, 1, 0x2000);
	BUF_ZERO((uint8_t *)buf + 3 * PG, 1);
	CHECK_OK(f->sys);
	READ_OK(f->m, B(0), 4, buf, 0);
	SNAP(f->m, B(0), S_ZERO, S_ZERO, S_SYS_RW, S_ZERO);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void read_of_prot_none_fails_efault(void **state)
{
	struct mfx *f = *state;

	MAP_FIXED(f->mm, B(0), 4 * PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	READ_FAILS(-EFAULT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	SNAP_ALL(f->m, B(0), 4, S_NOVMA);
	CHECK_OK(f->sys);
}

static void read_without_vma_fails_efault(void **state)
{
	struct mfx *f = *state;

	READ_FAILS(-EFAULT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	/* Half mapped: the mapped half is faulted, the rest fails. */
	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x30);
	READ_FAILS(-EFAULT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	/* The failed fault pass entered nothing: the mapped half still
	 * takes one. Then unmapped: the entries go with the mapping. */
	READ_EXPECT(f->m, B(0), 2, 0x30, 1);
	READ_EXPECT(f->m, B(0), 2, 0x30, 0);
	OK(dmm_munmap(f->mm, B(0), 2 * PG));
	CHECK_OK(f->sys);
	READ_FAILS(-EFAULT, f->m, B(0), 2);
	READ_FAILS(-EFAULT, f->m, B(1), 1);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* write                                                                     */

static void write_to_unpopulated_range_takes_one_fault_pass_and_the_cpu_sees_it(void **state)
{
	struct mfx *f = *state;
	const uint64_t n = 40;
	void *buf = buf_new(n);

	MAP_ANON(f->mm, B(0), n);
	buf_fill(buf, n, 0x4000);
	WRITE_OK(f->m, B(0), n, buf, 1);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), n * PG, 0x4000);
	SNAP_ALL(f->m, B(0), n, S_SYS_RW);
	CHECK_OK(f->sys);
	/* The entries are writable now: no fault pass the second time. */
	buf_fill(buf, n, 0x5000);
	WRITE_OK(f->m, B(0), n, buf, 0);
	VERIFY(f->mm, B(0), n * PG, 0x5000);
	READ_EXPECT(f->m, B(0), n, 0x5000, 0);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void write_after_read_takes_one_fault_pass_for_write_access(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	READ_OK(f->m, B(0), 4, buf, 1); /* read-only entries (zero page) */
	buf_fill(buf, 4, 0x6000);
	WRITE_OK(f->m, B(0), 4, buf, 1);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 4 * PG, 0x6000);
	READ_EXPECT(f->m, B(0), 4, 0x6000, 0);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void write_to_read_only_vma_fails_eperm(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);
	struct mirror_result r = GARBAGE_RESULT;

	MAP_FIXED(f->mm, B(0), 4 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	buf_fill(buf, 4, 0x7000);
	EXPECT_RC(-EPERM, mirror_write(f->m, B(0), 4, buf, &r));
	CHECK_OK(f->sys);
	VERIFY_ZERO(f->mm, B(0), 4 * PG);
	/* Populated (and mirrored) read-only: still EPERM. */
	READ_OK(f->m, B(0), 4, buf, 1);
	BUF_ZERO(buf, 4);
	buf_fill(buf, 4, 0x7000);
	EXPECT_RC(-EPERM, mirror_write(f->m, B(0), 4, buf, &r));
	CHECK_OK(f->sys);
	VERIFY_ZERO(f->mm, B(0), 4 * PG);
	SNAP_ALL(f->m, B(0), 4, S_ZERO);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void write_to_prot_none_or_no_vma_fails_efault(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(2);
	struct mirror_result r = GARBAGE_RESULT;

	buf_fill(buf, 2, 0x8000);
	EXPECT_RC(-EFAULT, mirror_write(f->m, B(0), 2, buf, &r));
	MAP_FIXED(f->mm, B(0), 2 * PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	EXPECT_RC(-EFAULT, mirror_write(f->m, B(0), 2, buf, &r));
	CHECK_OK(f->sys);
	OK(dmm_mprotect(f->mm, B(0), 2 * PG, RW));
	VERIFY_ZERO(f->mm, B(0), 2 * PG);
	CHECK_OK(f->sys);
	buf_free(buf);
}

/* ------------------------------------------------------------------------ */
/* migrate-to-dev                                                            */

static void migrate_to_dev_moves_written_pages_and_reads_them_back(void **state)
{
	struct mfx *f = *state;
	const uint64_t n = 20; /* more than one chunk */
	void *buf = buf_new(n);

	MAP_ANON(f->mm, B(0), n);
	FILL(f->mm, B(0), n * PG, 0x9000);
	CHECK_OK(f->sys);
	TODEV_OK(f->m, B(0), n, buf);
	BUF_EXPECT(buf, n, 0x9000);
	CHECK_OK(f->sys);
	POOL(f->dev, n);
	for (uint64_t i = 0; i < n; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	SNAP_ALL(f->m, B(0), n, OWN_A(f, true));
	/* The device reads its own pages without faulting. */
	READ_EXPECT(f->m, B(0), n, 0x9000, 0);
	CHECK_OK(f->sys);
}

static void cpu_access_to_migrated_pages_follows_the_memory_type(void **state)
{
	struct mfx *f = *state;
	struct dmm_stats s0;
	unsigned long moved0 = atomic_load(&f->dev->migrations_to_ram);

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0xa000);
	TODEV(f->m, B(0), 4);
	CHECK_OK(f->sys);
	s0 = STATS(f->sys);
	EQ(LOAD(f->mm, B(1)), 0xa000 + WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	if (a_private(f)) {
		/* The CPU cannot address it: migrate_to_ram brought it back,
		 * writable, and the device page was freed. */
		EQ(STAT_DELTA(f->sys, s0, fault_device_private), 1);
		EQ(atomic_load(&f->dev->migrations_to_ram), moved0 + 1);
		IN_SYS(f->sys, f->mm, B(1));
		TRUE(PTE(f->mm, B(1)).write);
		POOL(f->dev, 3);
		SNAP(f->m, B(0), OWN_A(f, true), S_SYS_RW, OWN_A(f, true), OWN_A(f, true));
		/* The mirror dropped that page and refaults it. */
		READ_EXPECT(f->m, B(0), 4, 0xa000, 1);
	} else {
		/* Coherent memory is read and written in place. */
		OK(dmm_store32(f->mm, B(2), 77));
		EQ(STAT_DELTA(f->sys, s0, fault_device_private), 0);
		ON_DEV(f->dev, f->mm, B(1), true);
		ON_DEV(f->dev, f->mm, B(2), true);
		POOL(f->dev, 4);
		SNAP_ALL(f->m, B(0), 4, OWN_A(f, true));
		OK(dmm_store32(f->mm, B(2), 0xa000 + 2 * WORDS_PER_PAGE));
		READ_EXPECT(f->m, B(0), 4, 0xa000, 0);
	}
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 4 * PG, 0xa000);
	CHECK_OK(f->sys);
}

static void migrate_to_dev_fills_holes_and_zero_pages_with_zeros(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(8);

	MAP_ANON(f->mm, B(0), 8);
	/* Pages 0-3 holes, 4-7 the zero page. */
	for (int i = 4; i < 8; i++)
		EQ(LOAD(f->mm, B(i)), 0);
	SNAP(f->m, B(0), S_NONE, S_NONE, S_NONE, S_NONE, S_ZERO, S_ZERO, S_ZERO, S_ZERO);
	CHECK_OK(f->sys);
	TODEV_OK(f->m, B(0), 8, buf);
	BUF_ZERO(buf, 8);
	CHECK_OK(f->sys);
	POOL(f->dev, 8);
	for (int i = 0; i < 8; i++)
		ON_DEV(f->dev, f->mm, B(i), true); /* the VMA is writable */
	SNAP_ALL(f->m, B(0), 8, OWN_A(f, true));
	VERIFY_ZERO(f->mm, B(0), 8 * PG);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void migrate_to_dev_counts_pages_already_on_the_device(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(8);
	uint64_t pfn[4];

	MAP_ANON(f->mm, B(0), 8);
	FILL(f->mm, B(0), 8 * PG, 0xb000);
	TODEV_OK(f->m, B(0), 4, buf);
	BUF_EXPECT(buf, 4, 0xb000);
	for (int i = 0; i < 4; i++)
		pfn[i] = ON_DEV(f->dev, f->mm, B(i), true);
	CHECK_OK(f->sys);
	memset(buf, CANARY, 8 * PG);
	TODEV_OK(f->m, B(0), 8, buf);
	BUF_EXPECT(buf, 8, 0xb000);
	CHECK_OK(f->sys);
	/* Not migrated twice. */
	POOL(f->dev, 8);
	for (int i = 0; i < 4; i++)
		EQ(ON_DEV(f->dev, f->mm, B(i), true), pfn[i]);
	/* Everything already there: all of it counts. */
	memset(buf, CANARY, 8 * PG);
	TODEV_OK(f->m, B(0), 8, buf);
	BUF_EXPECT(buf, 8, 0xb000);
	POOL(f->dev, 8);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void migrate_to_dev_of_read_only_vma_maps_read_only(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);
	struct mirror_result r = GARBAGE_RESULT;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 2 * PG, 0xc000); /* pages 0-1 data, 2-3 holes */
	OK(dmm_mprotect(f->mm, B(0), 4 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	TODEV_OK(f->m, B(0), 4, buf);
	BUF_EXPECT(buf, 2, 0xc000);
	BUF_ZERO((uint8_t *)buf + 2 * PG, 2);
	CHECK_OK(f->sys);
	POOL(f->dev, 4);
	for (int i = 0; i < 4; i++)
		ON_DEV(f->dev, f->mm, B(i), false);
	SNAP_ALL(f->m, B(0), 4, OWN_A(f, false));
	READ_OK(f->m, B(0), 4, buf, 0);
	EXPECT_RC(-EPERM, mirror_write(f->m, B(0), 4, buf, &r));
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 2 * PG, 0xc000);
	VERIFY_ZERO(f->mm, B(2), 2 * PG);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void migrate_to_dev_without_vma_fails_einval(void **state)
{
	struct mfx *f = *state;

	TODEV_FAILS(-EINVAL, f->m, B(0), 4);
	CHECK_OK(f->sys);
	/* A mapped VMA then a gap: the VMA is migrated, the gap fails. */
	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0xd000);
	TODEV_FAILS(-EINVAL, f->m, B(0), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 2);
	SNAP(f->m, B(0), OWN_A(f, true), OWN_A(f, true), S_NOVMA, S_NOVMA);
	VERIFY(f->mm, B(0), 2 * PG, 0xd000);
	CHECK_OK(f->sys);
}

static void migrate_to_dev_of_prot_none_fails_einval(void **state)
{
	struct mfx *f = *state;

	MAP_FIXED(f->mm, B(0), 4 * PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	TODEV_FAILS(-EINVAL, f->m, B(0), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	for (int i = 0; i < 4; i++)
		PTE_NONE(f->mm, B(i));
	CHECK_OK(f->sys);
}

static void migrate_to_dev_of_shared_memory_fails_enoent_migrating_nothing(void **state)
{
	struct mfx *f = *state;

	MAP_FIXED(f->mm, B(0), 4 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, B(0), 2 * PG, 0xe000); /* pages 2-3 unpopulated */
	CHECK_OK(f->sys);
	TODEV_FAILS(-ENOENT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	IN_SYS(f->sys, f->mm, B(0));
	IN_SYS(f->sys, f->mm, B(1));
	PTE_NONE(f->mm, B(2));
	SNAP(f->m, B(0), S_SYS_RW, S_SYS_RW, S_NONE, S_NONE);
	VERIFY(f->mm, B(0), 2 * PG, 0xe000);
	VERIFY_ZERO(f->mm, B(2), 2 * PG);
	CHECK_OK(f->sys);
}

static void migrate_to_dev_of_shared_memory_faulted_into_mirror_reads_back(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_FIXED(f->mm, B(0), 4 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, B(0), 4 * PG, 0xe100);
	READ_EXPECT(f->m, B(0), 4, 0xe100, 1);
	CHECK_OK(f->sys);
	/* Nothing moves, but every page is in the table: read back. */
	TODEV_OK(f->m, B(0), 4, buf);
	BUF_EXPECT(buf, 4, 0xe100);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	for (int i = 0; i < 4; i++)
		IN_SYS(f->sys, f->mm, B(i));
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void migrate_to_dev_of_file_mappings_moves_only_private_copies(void **state)
{
	struct mfx *f = *state;
	struct dmm_file *file;

	OK(dmm_file_create(f->sys, 4, &file));
	FILE_FILL(file, 0, 4 * PG, 0xf000);
	/* Shared file mapping, populated by the CPU: ENOENT, nothing moves. */
	MAP_FIXED(f->mm, B(0), 4 * PG, RW, DMM_MAP_SHARED, file, 0);
	VERIFY(f->mm, B(0), 4 * PG, 0xf000);
	CHECK_OK(f->sys);
	TODEV_FAILS(-ENOENT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	for (int i = 0; i < 4; i++)
		IN_SYS(f->sys, f->mm, B(i));

	/* Private file mapping: the pages the CPU wrote are anonymous copies
	 * and move; unwritten file pages do not (ENOENT). */
	MAP_FIXED(f->mm, B(8), 4 * PG, RW, DMM_MAP_PRIVATE, file, 0);
	FILL(f->mm, B(8), 2 * PG, 0xf800);
	CHECK_OK(f->sys);
	TODEV_FAILS(-ENOENT, f->m, B(8), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 2);
	ON_DEV(f->dev, f->mm, B(8), true);
	ON_DEV(f->dev, f->mm, B(9), true);
	SNAP(f->m, B(8), OWN_A(f, true), OWN_A(f, true), S_NONE, S_NONE);
	VERIFY(f->mm, B(8), 2 * PG, 0xf800);
	VERIFY(f->mm, B(10), 2 * PG, 0xf000 + 2 * WORDS_PER_PAGE);
	FILE_VERIFY(file, 0, 4 * PG, 0xf000);
	CHECK_OK(f->sys);
	dmm_file_put(file);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* migrate-to-sys                                                            */

static void migrate_to_sys_brings_own_pages_back_without_cpu_faults(void **state)
{
	struct mfx *f = *state;
	const uint64_t n = 20;
	struct dmm_stats s0;

	MAP_ANON(f->mm, B(0), n);
	FILL(f->mm, B(0), n * PG, 0x11000);
	TODEV(f->m, B(0), n);
	POOL(f->dev, n);
	CHECK_OK(f->sys);
	TOSYS_OK(f->m, B(0), n, n);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	for (uint64_t i = 0; i < n; i++) {
		IN_SYS(f->sys, f->mm, B(i));
		TRUE(PTE(f->mm, B(i)).write);
	}
	SNAP_ALL(f->m, B(0), n, S_SYS_RW);
	s0 = STATS(f->sys);
	VERIFY(f->mm, B(0), n * PG, 0x11000);
	EQ(STAT_DELTA(f->sys, s0, fault_device_private), 0);
	/* The mirror's entries went with the device pages. */
	READ_EXPECT(f->m, B(0), n, 0x11000, 1);
	/* Nothing left to move. */
	TOSYS_OK(f->m, B(0), n, 0);
	CHECK_OK(f->sys);
}

static void migrate_to_sys_moves_only_own_pages(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 8);
	FILL(f->mm, B(0), 6 * PG, 0x12000); /* 6-7 holes */
	TODEV(f->m, B(2), 3); /* 2, 3, 4 on the device */
	EQ(LOAD(f->mm, B(7)), 0); /* 7: zero page */
	CHECK_OK(f->sys);
	TOSYS_OK(f->m, B(0), 8, 3);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	SNAP(f->m, B(0), S_SYS_RW, S_SYS_RW, S_SYS_RW, S_SYS_RW, S_SYS_RW, S_SYS_RW, S_NONE, S_ZERO);
	VERIFY(f->mm, B(0), 6 * PG, 0x12000);
	CHECK_OK(f->sys);
	/* System memory only: nothing moves. */
	TOSYS_OK(f->m, B(0), 8, 0);
	CHECK_OK(f->sys);
}

static void migrate_to_sys_without_vma_fails_einval(void **state)
{
	struct mfx *f = *state;
	struct mirror_result r = GARBAGE_RESULT;

	EXPECT_RC(-EINVAL, mirror_migrate_to_sys(f->m, B(0), 4, &r));
	MAP_FIXED(f->mm, B(0), 4 * PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	EXPECT_RC(-EINVAL, mirror_migrate_to_sys(f->m, B(0), 4, &r));
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* snapshot                                                                  */

static void snapshot_reports_every_kind_of_page(void **state)
{
	struct mfx *f = *state;

	/* 0: no VMA. 1-4: anonymous RW: untouched, zero page, system RW, own
	 * device page. 5-7: no VMA. 8-10: read-only: written before the
	 * mprotect (system RO), zero page, untouched. 11: PROT_NONE. */
	MAP_ANON(f->mm, B(1), 4);
	EQ(LOAD(f->mm, B(2)), 0);
	FILL(f->mm, B(3), 2 * PG, 0x13000);
	TODEV(f->m, B(4), 1);
	MAP_ANON(f->mm, B(8), 3);
	FILL(f->mm, B(8), PG, 0x13800);
	OK(dmm_mprotect(f->mm, B(8), 3 * PG, DMM_PROT_READ));
	EQ(LOAD(f->mm, B(9)), 0);
	MAP_FIXED(f->mm, B(11), PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	CHECK_OK(f->sys);
	SNAP(f->m, B(0), S_NOVMA, S_NONE, S_ZERO, S_SYS_RW, OWN_A(f, true), S_NOVMA, S_NOVMA, S_NOVMA,
	     S_SYS_RO, S_ZERO, S_NONE, S_NOVMA);
	CHECK_OK(f->sys);
	/* Snapshots never fault. */
	PTE_NONE(f->mm, B(1));
	PTE_NONE(f->mm, B(10));
	ON_DEV(f->dev, f->mm, B(4), true);
	CHECK_OK(f->sys);
}

static void snapshot_never_faults_and_spans_windows(void **state)
{
	struct mfx *f = *state;
	const uint64_t n = 70;
	struct dmm_stats s0;

	SNAP_ALL(f->m, B(0), n, S_NOVMA);
	MAP_ANON(f->mm, B(0), n);
	s0 = STATS(f->sys);
	SNAP_ALL(f->m, B(0), n, S_NONE);
	EQ(STAT_DELTA(f->sys, s0, hmm_faults), 0);
	for (uint64_t i = 0; i < n; i++)
		PTE_NONE(f->mm, B(i));
	CHECK_OK(f->sys);
	/* A snapshot does not mirror: the next read still faults once. */
	{
		void *b = buf_new(2);

		READ_OK(f->m, B(0), 2, b, 1);
		BUF_ZERO(b, 2);
		buf_free(b);
	}
	CHECK_OK(f->sys);
}

static void snapshot_after_fork_reports_shared_device_pages_read_only(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;
	struct mirror *mc;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x14000);
	TODEV(f->m, B(0), 2);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	SNAP_ALL(f->m, B(0), 2, OWN_A(f, false)); /* 0x21 / 0x41 */
	OK(mirror_open(f->dev, child, &mc));
	SNAP_ALL(mc, B(0), 2, OWN_A(f, false));
	CHECK_OK(f->sys);
	mirror_close(mc);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* exclusive and check-exclusive                                             */

static void exclusive_makes_pages_device_exclusive_and_reads_them_back(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 3 * PG, 0x15000); /* page 3 unpopulated */
	OK(mirror_check_exclusive(f->m, B(0), 4));
	EXCL_OK(f->m, B(0), 4, buf, 0);
	BUF_EXPECT(buf, 3, 0x15000);
	BUF_ZERO((uint8_t *)buf + 3 * PG, 1);
	CHECK_OK(f->sys);
	for (int i = 0; i < 4; i++)
		EQ(PTE(f->mm, B(i)).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(0), 4));
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(3), 1));
	OK(mirror_check_exclusive(f->m, B(4), 4));
	/* Exclusive entries are not valid for a snapshot. */
	SNAP_ALL(f->m, B(0), 4, S_NONE);
	READ_EXPECT(f->m, B(0), 3, 0x15000, 0);
	POOL(f->dev, 0);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void exclusive_is_lost_to_a_cpu_touch(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x16000);
	EXCL(f->m, B(0), 2, 0);
	CHECK_OK(f->sys);
	EQ(LOAD(f->mm, B(1)), 0x16000 + WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(1), 1));
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(0), 2));
	OK(dmm_store32(f->mm, B(0), 5));
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 2));
	EQ(PTE(f->mm, B(0)).kind, DMM_PTE_PRESENT);
	TRUE(PTE(f->mm, B(0)).write);
	EQ(LOAD(f->mm, B(0)), 5);
	CHECK_OK(f->sys);
}

static void exclusive_is_lost_to_a_pin(void **state)
{
	struct mfx *f = *state;
	uint64_t pfn = 0;

	MAP_ANON(f->mm, B(0), 1);
	FILL(f->mm, B(0), PG, 0x17000);
	EXCL(f->m, B(0), 1, 0);
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(0), 1));
	EXPECT_RC(1, dmm_get_user_pages(f->mm, B(0), 1, DMM_FOLL_PIN, &pfn));
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 1));
	EQ(PFN(f->mm, B(0)), pfn);
	dmm_unpin_user_pages(f->sys, &pfn, 1);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), PG, 0x17000);
	CHECK_OK(f->sys);
}

static void exclusive_is_lost_to_fork(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x18000);
	EXCL(f->m, B(0), 2, 0);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 2));
	for (int i = 0; i < 2; i++) {
		EQ(PTE(f->mm, B(i)).kind, DMM_PTE_PRESENT);
		EQ(PFN(f->mm, B(i)), PFN(child, B(i)));
	}
	VERIFY(child, B(0), 2 * PG, 0x18000);
	VERIFY(f->mm, B(0), 2 * PG, 0x18000);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void exclusive_is_lost_to_mprotect_and_restores_read_only(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(1);
	struct mirror_result r = GARBAGE_RESULT;

	MAP_ANON(f->mm, B(0), 1);
	FILL(f->mm, B(0), PG, 0x19000);
	EXCL_OK(f->m, B(0), 1, buf, 0);
	OK(dmm_mprotect(f->mm, B(0), PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 1));
	/* mprotect leaves the exclusive entry; the restore uses the new
	 * protection. */
	EQ(PTE(f->mm, B(0)).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	EQ(LOAD(f->mm, B(0)), 0x19000);
	CHECK_OK(f->sys);
	EQ(PTE(f->mm, B(0)).kind, DMM_PTE_PRESENT);
	TRUE(!PTE(f->mm, B(0)).write);
	buf_fill(buf, 1, 0x19800);
	EXPECT_RC(-EPERM, mirror_write(f->m, B(0), 1, buf, &r));
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), PG, 0x19000);
	buf_free(buf);
}

static void exclusive_of_shared_or_file_memory_fails_eopnotsupp(void **state)
{
	struct mfx *f = *state;
	struct dmm_file *file;

	MAP_FIXED(f->mm, B(0), 2 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, B(0), 2 * PG, 0x1a000);
	EXCL_FAILS(-EOPNOTSUPP, f->m, B(0), 2);
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 2));
	OK(dmm_file_create(f->sys, 2, &file));
	MAP_FIXED(f->mm, B(4), 2 * PG, RW, DMM_MAP_SHARED, file, 0);
	EXCL_FAILS(-EOPNOTSUPP, f->m, B(4), 2);
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(4), 2));
	VERIFY(f->mm, B(0), 2 * PG, 0x1a000);
	VERIFY_ZERO(f->mm, B(4), 2 * PG);
	dmm_file_put(file);
	CHECK_OK(f->sys);
}

static void exclusive_of_read_only_vma_fails_efault(void **state)
{
	struct mfx *f = *state;

	MAP_FIXED(f->mm, B(0), 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EXCL_FAILS(-EFAULT, f->m, B(0), 2);
	EXCL_FAILS(-EFAULT, f->m, B(4), 1); /* no VMA */
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 2));
}

static void exclusive_stops_at_the_first_failing_page(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 2);
	MAP_FIXED(f->mm, B(2), 2 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, B(0), 4 * PG, 0x1b000);
	EXCL_FAILS(-EOPNOTSUPP, f->m, B(0), 4);
	CHECK_OK(f->sys);
	/* The pages before the failure were taken. */
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(0), 1));
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(1), 1));
	OK(mirror_check_exclusive(f->m, B(2), 2));
	EQ(PTE(f->mm, B(1)).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	VERIFY(f->mm, B(0), 4 * PG, 0x1b000);
	CHECK_OK(f->sys);
}

static void exclusive_of_own_device_page(void **state)
{
	struct mfx *f = *state;
	struct dmm_pte_info p;

	MAP_ANON(f->mm, B(0), 1);
	FILL(f->mm, B(0), PG, 0x1c000);
	TODEV(f->m, B(0), 1);
	CHECK_OK(f->sys);
	/* Private memory is migrated back first (the CPU must address it);
	 * a coherent page is made exclusive where it is. */
	{
		void *b = buf_new(1);
		struct mirror_result r = GARBAGE_RESULT;

		OK(mirror_exclusive(f->m, B(0), 1, b, &r));
		EQ(r.cpages, 1);
		BUF_EXPECT(b, 1, 0x1c000);
		buf_free(b);
	}
	CHECK_OK(f->sys);
	p = PTE(f->mm, B(0));
	EQ(p.kind, DMM_PTE_DEVICE_EXCLUSIVE);
	EQ(location_of(f->sys, p.pfn), a_private(f) ? DMM_LOC_SYSTEM : DMM_LOC_DEVICE_COHERENT);
	POOL(f->dev, a_private(f) ? 0 : 1);
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(0), 1));
	ADD_OK(f->m, B(0), 1, 2, 0);
	VERIFY(f->mm, B(0), PG, 0x1c000 + 2);
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 1));
}

/* ------------------------------------------------------------------------ */
/* atomic-add                                                                */

static void atomic_add_on_system_memory_takes_exclusive_access_first(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 5);
	FILL(f->mm, B(0), 4 * PG, 0x1d000); /* page 4 unpopulated */
	READ_EXPECT(f->m, B(0), 2, 0x1d000, 1); /* 0-1 mirrored with WRITE */
	/* One page: one fault pass (make it device-exclusive). */
	ADD_OK(f->m, B(0), 1, 7, 1);
	CHECK_OK(f->sys);
	EQ(PTE(f->mm, B(0)).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(0), 1));
	/* Each system page needs its own exclusive access. */
	ADD_OK(f->m, B(1), 4, 7, 4);
	CHECK_OK(f->sys);
	for (int i = 0; i < 5; i++)
		EQ(PTE(f->mm, B(i)).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	/* Still exclusive: no fault pass. */
	ADD_OK(f->m, B(0), 5, 1, 0);
	CHECK_OK(f->sys);
	/* The CPU sees the sums (and takes the pages back). */
	VERIFY(f->mm, B(0), 4 * PG, 0x1d000 + 8);
	{
		uint32_t w[WORDS_PER_PAGE];

		OK(dmm_read(f->mm, B(4), w, PG));
		for (size_t k = 0; k < WORDS_PER_PAGE; k++)
			EQ(w[k], 8);
	}
	CHECK_OK(f->sys);
	OK(mirror_check_exclusive(f->m, B(0), 5));
	POOL(f->dev, 0);
}

static void atomic_add_on_own_device_pages_needs_only_a_write_entry(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x1e000);
	TODEV(f->m, B(0), 4);
	CHECK_OK(f->sys);
	ADD_OK(f->m, B(0), 4, 3, 0);
	CHECK_OK(f->sys);
	/* Still on the device, not device-exclusive. */
	for (int i = 0; i < 4; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	POOL(f->dev, 4);
	OK(mirror_check_exclusive(f->m, B(0), 4));
	READ_EXPECT(f->m, B(0), 4, 0x1e000 + 3, 0);
	VERIFY(f->mm, B(0), 4 * PG, 0x1e000 + 3);
	CHECK_OK(f->sys);
}

static void atomic_add_after_fork_changes_only_this_process(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;
	struct mirror_result r = GARBAGE_RESULT;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x1f000);
	TODEV(f->m, B(0), 2);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	/* The shared read-only device page must be copied for this process. */
	OK(mirror_atomic_add(f->m, B(0), 2, 9, &r));
	EQ(r.cpages, 2);
	TRUE(r.faults >= 2);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 2 * PG, 0x1f000 + 9);
	VERIFY(child, B(0), 2 * PG, 0x1f000);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void atomic_add_without_write_access_fails_efault(void **state)
{
	struct mfx *f = *state;
	struct mirror_result r = GARBAGE_RESULT;

	EXPECT_RC(-EFAULT, mirror_atomic_add(f->m, B(0), 1, 1, &r));
	MAP_FIXED(f->mm, B(0), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EXPECT_RC(-EFAULT, mirror_atomic_add(f->m, B(0), 1, 1, &r));
	CHECK_OK(f->sys);
	VERIFY_ZERO(f->mm, B(0), PG);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* release                                                                   */

static void release_evicts_pages_mapped_in_several_processes(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child, *other;
	struct mirror *mo;
	void *buf = buf_new(8);

	/* Parent and child share 8 device pages; another process has 4. */
	MAP_ANON(f->mm, B(0), 8);
	FILL(f->mm, B(0), 8 * PG, 0x20000);
	TODEV_OK(f->m, B(0), 8, buf);
	OK(dmm_fork(f->mm, &child));
	OK(dmm_mm_create(f->sys, &other));
	MAP_ANON(other, B(0), 4);
	FILL(other, B(0), 4 * PG, 0x21000);
	OK(mirror_open(f->dev, other, &mo));
	TODEV_OK(mo, B(0), 4, buf);
	BUF_EXPECT(buf, 4, 0x21000);
	CHECK_OK(f->sys);
	POOL(f->dev, 12);

	OK(mirror_release(f->dev));
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	for (int i = 0; i < 8; i++) {
		IN_SYS(f->sys, f->mm, B(i));
		IN_SYS(f->sys, child, B(i));
		EQ(PFN(f->mm, B(i)), PFN(child, B(i)));
	}
	for (int i = 0; i < 4; i++)
		IN_SYS(f->sys, other, B(i));
	VERIFY(f->mm, B(0), 8 * PG, 0x20000);
	VERIFY(child, B(0), 8 * PG, 0x20000);
	VERIFY(other, B(0), 4 * PG, 0x21000);
	CHECK_OK(f->sys);
	/* The mirrors lost their entries: a read faults again. */
	READ_EXPECT(f->m, B(0), 8, 0x20000, 1);
	READ_EXPECT(mo, B(0), 4, 0x21000, 1);
	CHECK_OK(f->sys);

	/* The device works again: new chunks. */
	memset(buf, CANARY, 8 * PG);
	TODEV_OK(f->m, B(0), 8, buf);
	BUF_EXPECT(buf, 8, 0x20000);
	POOL(f->dev, 8);
	for (int i = 0; i < 8; i++)
		ON_DEV(f->dev, f->mm, B(i), false); /* shared with the child */
	memset(buf, CANARY, 8 * PG);
	TODEV_OK(mo, B(0), 4, buf);
	POOL(f->dev, 12);
	CHECK_OK(f->sys);
	VERIFY(child, B(0), 8 * PG, 0x20000);
	VERIFY(other, B(0), 4 * PG, 0x21000);
	CHECK_OK(f->sys);
	mirror_close(mo);
	dmm_mm_exit(other);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 8 * PG, 0x20000);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void release_of_an_unused_device_succeeds(void **state)
{
	struct mfx *f = *state;

	OK(mirror_release(f->dev));
	POOL(f->dev, 0);
	CHECK_OK(f->sys);
	OK(mirror_release(f->dev));
	MAP_ANON(f->mm, B(0), 2);
	TODEV(f->m, B(0), 2);
	POOL(f->dev, 2);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* fail-next-alloc                                                           */

static void fail_next_alloc_leaves_one_page_unmigrated_to_dev(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x22000);
	mirror_fail_next_alloc(f->dev);
	/* Page 0's allocation fails; it was never faulted into the mirror. */
	TODEV_FAILS(-ENOENT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 3);
	IN_SYS(f->sys, f->mm, B(0));
	for (int i = 1; i < 4; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	SNAP(f->m, B(0), S_SYS_RW, OWN_A(f, true), OWN_A(f, true), OWN_A(f, true));
	/* Only once. */
	TODEV_OK(f->m, B(0), 4, buf);
	BUF_EXPECT(buf, 4, 0x22000);
	POOL(f->dev, 4);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 4 * PG, 0x22000);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void fail_next_alloc_to_dev_of_a_mirrored_page_still_reads_it_back(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x23000);
	READ_EXPECT(f->m, B(0), 4, 0x23000, 1);
	mirror_fail_next_alloc(f->dev);
	TODEV_OK(f->m, B(0), 4, buf);
	BUF_EXPECT(buf, 4, 0x23000);
	CHECK_OK(f->sys);
	POOL(f->dev, 3);
	IN_SYS(f->sys, f->mm, B(0));
	SNAP(f->m, B(0), S_SYS_RW, OWN_A(f, true), OWN_A(f, true), OWN_A(f, true));
	READ_EXPECT(f->m, B(0), 4, 0x23000, 0);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void fail_next_alloc_makes_migrate_to_sys_fail_enomem_with_window_untouched(void **state)
{
	struct mfx *f = *state;
	struct mirror_result r = GARBAGE_RESULT;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x24000);
	TODEV(f->m, B(0), 4);
	mirror_fail_next_alloc(f->dev);
	EXPECT_RC(-ENOMEM, mirror_migrate_to_sys(f->m, B(0), 4, &r));
	CHECK_OK(f->sys);
	POOL(f->dev, 4);
	for (int i = 0; i < 4; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	SNAP_ALL(f->m, B(0), 4, OWN_A(f, true));
	/* The table was left alone too. */
	READ_EXPECT(f->m, B(0), 4, 0x24000, 0);
	CHECK_OK(f->sys);
	TOSYS_OK(f->m, B(0), 4, 4);
	POOL(f->dev, 0);
	VERIFY(f->mm, B(0), 4 * PG, 0x24000);
	CHECK_OK(f->sys);
}

static void fail_next_alloc_makes_a_cpu_fault_back_fail_enomem_once(void **state)
{
	struct mfx *f = *state;
	uint32_t v = 0;
	struct dmm_stats s0;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x25000);
	TODEV(f->m, B(0), 2);
	mirror_fail_next_alloc(f->dev);
	s0 = STATS(f->sys);
	if (a_private(f)) {
		EXPECT_RC(-ENOMEM, dmm_load32(f->mm, B(0), &v));
		CHECK_OK(f->sys);
		EQ(STAT_DELTA(f->sys, s0, fault_oom), 1);
		ON_DEV(f->dev, f->mm, B(0), true);
		POOL(f->dev, 2);
		READ_EXPECT(f->m, B(0), 2, 0x25000, 0);
		/* The next time it works. */
		EQ(LOAD(f->mm, B(0)), 0x25000);
		CHECK_OK(f->sys);
		IN_SYS(f->sys, f->mm, B(0));
		POOL(f->dev, 1);
		/* And the failure is spent: the next migration succeeds. */
		TODEV(f->m, B(0), 2);
		POOL(f->dev, 2);
	} else {
		/* Coherent pages never fault back: the failure waits for the
		 * next device allocation. */
		EQ(LOAD(f->mm, B(0)), 0x25000);
		OK(dmm_store32(f->mm, B(1), 1));
		EQ(STAT_DELTA(f->sys, s0, fault_device_private), 0);
		CHECK_OK(f->sys);
		MAP_ANON(f->mm, B(4), 1);
		TODEV_FAILS(-ENOENT, f->m, B(4), 1);
		POOL(f->dev, 2);
		TODEV(f->m, B(4), 1);
		POOL(f->dev, 3);
		OK(dmm_store32(f->mm, B(1), 0x25000 + WORDS_PER_PAGE));
	}
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 2 * PG, 0x25000);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* pool                                                                      */

static void pool_follows_allocations_and_frees(void **state)
{
	struct mfx *f = *state;
	unsigned long frees0 = atomic_load(&f->dev->frees);

	POOL(f->dev, 0);
	MAP_ANON(f->mm, B(0), 32);
	FILL(f->mm, B(0), 32 * PG, 0x26000);
	TODEV(f->m, B(0), 10);
	POOL(f->dev, 10);
	CHECK_OK(f->sys);
	/* munmap frees device pages (folio_free). */
	OK(dmm_munmap(f->mm, B(0), 3 * PG));
	POOL(f->dev, 7);
	EQ(atomic_load(&f->dev->frees), frees0 + 3);
	CHECK_OK(f->sys);
	TOSYS_OK(f->m, B(3), 2, 2);
	POOL(f->dev, 5);
	CHECK_OK(f->sys);
	EQ(LOAD(f->mm, B(5)), 0x26000 + 5 * WORDS_PER_PAGE);
	POOL(f->dev, a_private(f) ? 4 : 5);
	CHECK_OK(f->sys);
	/* MADV_DONTNEED zaps and frees too. */
	OK(dmm_madvise(f->mm, B(6), PG, DMM_MADV_DONTNEED));
	POOL(f->dev, a_private(f) ? 3 : 4);
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, B(0), 32 * PG));
	POOL(f->dev, 0);
	CHECK_OK(f->sys);
}

static void migrate_to_dev_beyond_device_size_leaves_the_rest_in_system_memory(void **state)
{
	struct mfx *f = *state;
	const uint64_t n = DEV_PAGES + 6;

	MAP_ANON(f->mm, B(0), n);
	FILL(f->mm, B(0), n * PG, 0x27000);
	TODEV_FAILS(-ENOENT, f->m, B(0), n);
	CHECK_OK(f->sys);
	POOL(f->dev, DEV_PAGES);
	for (uint64_t i = 0; i < DEV_PAGES; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	for (uint64_t i = DEV_PAGES; i < n; i++)
		IN_SYS(f->sys, f->mm, B(i));
	READ_EXPECT(f->m, B(0), DEV_PAGES, 0x27000, 0);
	CHECK_OK(f->sys);
	/* Free some: they are used again. */
	OK(dmm_munmap(f->mm, B(0), 4 * PG));
	POOL(f->dev, DEV_PAGES - 4);
	{
		void *buf = buf_new(4);
		struct mirror_result r = GARBAGE_RESULT;

		/* The last pages still in system memory: 4 of the 6 move. */
		EXPECT_RC(-ENOENT, mirror_migrate_to_dev(f->m, B(DEV_PAGES), 6, buf, &r));
		buf_free(buf);
	}
	POOL(f->dev, DEV_PAGES);
	IN_SYS(f->sys, f->mm, B(n - 2));
	IN_SYS(f->sys, f->mm, B(n - 1));
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(4), (n - 4) * PG, 0x27000 + 4 * WORDS_PER_PAGE);
	POOL(f->dev, a_private(f) ? 0 : DEV_PAGES);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* close                                                                     */

static void close_then_reopen_keeps_device_pages_mapped(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x28000);
	TODEV_OK(f->m, B(0), 4, buf);
	mirror_close(f->m);
	f->m = NULL;
	TRUE(mirror_find(f->dev, f->mm) == NULL);
	CHECK_OK(f->sys);
	/* Device memory stays valid and mapped. */
	POOL(f->dev, 4);
	for (int i = 0; i < 4; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	/* A CPU fault still brings a page back (through the pgmap). */
	EQ(LOAD(f->mm, B(0)), 0x28000);
	CHECK_OK(f->sys);
	if (a_private(f)) {
		IN_SYS(f->sys, f->mm, B(0));
		POOL(f->dev, 3);
	} else {
		ON_DEV(f->dev, f->mm, B(0), true);
	}
	/* Reopen: a new, empty table. */
	OK(mirror_open(f->dev, f->mm, &f->m));
	TRUE(mirror_find(f->dev, f->mm) == f->m);
	SNAP(f->m, B(0), a_private(f) ? S_SYS_RW : OWN_A(f, true), OWN_A(f, true), OWN_A(f, true),
	     OWN_A(f, true));
	memset(buf, CANARY, 4 * PG);
	READ_OK(f->m, B(0), 4, buf, 1);
	BUF_EXPECT(buf, 4, 0x28000);
	CHECK_OK(f->sys);
	/* The device still maps its own pages after the read. */
	for (int i = 1; i < 4; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	memset(buf, CANARY, 4 * PG);
	TODEV_OK(f->m, B(0), 4, buf);
	BUF_EXPECT(buf, 4, 0x28000);
	POOL(f->dev, 4);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 4 * PG, 0x28000);
	CHECK_OK(f->sys);
	buf_free(buf);
}

/* ------------------------------------------------------------------------ */
/* fork                                                                      */

static void fork_shares_device_pages_without_copying_them(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;
	struct mirror *mc;
	uint64_t pfn[4];
	unsigned long moved0;
	struct dmm_stats s0;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x29000);
	TODEV(f->m, B(0), 4);
	for (int i = 0; i < 4; i++)
		pfn[i] = ON_DEV(f->dev, f->mm, B(i), true);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	/* Not duplicated: the same device pages, read-only in both. */
	POOL(f->dev, 4);
	for (int i = 0; i < 4; i++) {
		EQ(ON_DEV(f->dev, f->mm, B(i), false), pfn[i]);
		EQ(ON_DEV(f->dev, child, B(i), false), pfn[i]);
		COUNTS(f->sys, pfn[i], 2, 2);
	}
	/* Both processes' devices see the data. */
	READ_EXPECT(f->m, B(0), 4, 0x29000, 1);
	OK(mirror_open(f->dev, child, &mc));
	READ_EXPECT(mc, B(0), 4, 0x29000, 1);
	SNAP_ALL(mc, B(0), 4, OWN_A(f, false));
	CHECK_OK(f->sys);

	/* The first CPU touch, in the child. */
	moved0 = atomic_load(&f->dev->migrations_to_ram);
	s0 = STATS(f->sys);
	EQ(LOAD(child, B(0)), 0x29000);
	CHECK_OK(f->sys);
	if (a_private(f)) {
		/* Migrated once, for both processes. */
		EQ(atomic_load(&f->dev->migrations_to_ram), moved0 + 1);
		IN_SYS(f->sys, child, B(0));
		EQ(PFN(f->mm, B(0)), PFN(child, B(0)));
		TRUE(!PTE(f->mm, B(0)).write);
		POOL(f->dev, 3);
		EQ(LOAD(f->mm, B(0)), 0x29000);
		EQ(atomic_load(&f->dev->migrations_to_ram), moved0 + 1);
		EQ(STAT_DELTA(f->sys, s0, fault_device_private), 1);
		/* Both mirrors dropped the moved page. */
		SNAP(f->m, B(0), S_SYS_RO, OWN_A(f, false), OWN_A(f, false), OWN_A(f, false));
		READ_EXPECT(f->m, B(0), 4, 0x29000, 1);
		READ_EXPECT(mc, B(0), 4, 0x29000, 1);
	} else {
		/* CPU-addressable: nothing moves. */
		EQ(ON_DEV(f->dev, child, B(0), false), pfn[0]);
		POOL(f->dev, 4);
		READ_EXPECT(f->m, B(0), 4, 0x29000, 0);
	}
	CHECK_OK(f->sys);

	/* The parent's first touch of page 2: the child's mirror must not
	 * keep the device page (it is freed for private memory). */
	READ_EXPECT(mc, B(0), 4, 0x29000, 0);
	EQ(LOAD(f->mm, B(2)), 0x29000 + 2 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	if (a_private(f)) {
		IN_SYS(f->sys, child, B(2));
		EQ(PFN(f->mm, B(2)), PFN(child, B(2)));
		POOL(f->dev, 2);
		SNAP(mc, B(2), S_SYS_RO, OWN_A(f, false));
		READ_EXPECT(mc, B(0), 4, 0x29000, 1);
	} else {
		READ_EXPECT(mc, B(0), 4, 0x29000, 0);
	}
	CHECK_OK(f->sys);
	/* A write in the child copies into system memory; the parent keeps
	 * its data. */
	OK(dmm_store32(child, B(1), 0xdead));
	CHECK_OK(f->sys);
	IN_SYS(f->sys, child, B(1));
	EQ(LOAD(child, B(1)), 0xdead);
	EQ(LOAD(f->mm, B(1)), 0x29000 + WORDS_PER_PAGE);
	POOL(f->dev, a_private(f) ? 1 : 4);
	READ_EXPECT(f->m, B(0), 4, 0x29000, a_private(f) ? 1 : 0);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 4 * PG, 0x29000);
	mirror_close(mc);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 4 * PG, 0x29000);
	CHECK_OK(f->sys);
}

static void mirror_write_after_fork_copies_the_shared_device_page(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;
	void *buf = buf_new(2);
	struct mirror_result r = GARBAGE_RESULT;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x2a000);
	TODEV_OK(f->m, B(0), 2, buf);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	buf_fill(buf, 2, 0x2b000);
	OK(mirror_write(f->m, B(0), 2, buf, &r));
	EQ(r.cpages, 2);
	TRUE(r.faults >= 1);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 2 * PG, 0x2b000);
	VERIFY(child, B(0), 2 * PG, 0x2a000);
	READ_EXPECT(f->m, B(0), 2, 0x2b000, 0);
	CHECK_OK(f->sys);
	/* The child exits with the parent's mirror still open. */
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 2 * PG, 0x2b000);
	buf_free(buf);
}

static void child_exit_with_its_mirror_open_frees_its_device_pages(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;
	struct mirror *mc;

	OK(dmm_fork(f->mm, &child));
	MAP_ANON(child, B(0), 4);
	FILL(child, B(0), 4 * PG, 0x2c000);
	OK(mirror_open(f->dev, child, &mc));
	TODEV(mc, B(0), 4);
	POOL(f->dev, 4);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	/* Its mirror is still open; closing it later is fine. */
	TRUE(mirror_find(f->dev, child) == mc);
	mirror_close(mc);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* Two devices                                                               */

static void exclusive_after_fork_copies_the_page_for_this_process(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x38000);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	/* Shared read-only: exclusive access breaks copy-on-write first. */
	EXCL(f->m, B(0), 2, 0);
	CHECK_OK(f->sys);
	for (int i = 0; i < 2; i++) {
		EQ(PTE(f->mm, B(i)).kind, DMM_PTE_DEVICE_EXCLUSIVE);
		NE(PTE(f->mm, B(i)).pfn, PFN(child, B(i)));
	}
	ADD_OK(f->m, B(0), 2, 4, 0);
	CHECK_OK(f->sys);
	VERIFY(child, B(0), 2 * PG, 0x38000);
	VERIFY(f->mm, B(0), 2 * PG, 0x38000 + 4);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

static void device_write_to_exclusive_pages_needs_no_fault_pass(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(2);

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x39000);
	EXCL(f->m, B(0), 2, 0);
	buf_fill(buf, 2, 0x39800);
	WRITE_OK(f->m, B(0), 2, buf, 0);
	CHECK_OK(f->sys);
	EXPECT_RC(-EPERM, mirror_check_exclusive(f->m, B(0), 2));
	VERIFY(f->mm, B(0), 2 * PG, 0x39800);
	OK(mirror_check_exclusive(f->m, B(0), 2));
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void mremap_moves_device_pages_and_the_mirror_refaults(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x3a000);
	TODEV(f->m, B(0), 4);
	OK(dmm_mremap(f->mm, B(0), 4 * PG, 4 * PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, B(16)));
	CHECK_OK(f->sys);
	POOL(f->dev, 4);
	for (int i = 0; i < 4; i++)
		ON_DEV(f->dev, f->mm, B(16 + i), true);
	/* The old range is gone from the mirror; the new one is faulted in
	 * once (the device's own pages are reported, not migrated). */
	READ_FAILS(-EFAULT, f->m, B(0), 4);
	READ_EXPECT(f->m, B(16), 4, 0x3a000, 1);
	POOL(f->dev, 4);
	SNAP_ALL(f->m, B(16), 4, OWN_A(f, true));
	TODEV_OK(f->m, B(16), 4, buf);
	BUF_EXPECT(buf, 4, 0x3a000);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(16), 4 * PG, 0x3a000);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void device_write_after_mprotect_of_device_pages_still_works(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(2);
	struct mirror_result r = GARBAGE_RESULT;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x3b000);
	TODEV(f->m, B(0), 2);
	/* Any protection change downgrades a writable device-private entry,
	 * even one back to read-write. */
	OK(dmm_mprotect(f->mm, B(0), 2 * PG, DMM_PROT_READ));
	OK(dmm_mprotect(f->mm, B(0), 2 * PG, RW));
	CHECK_OK(f->sys);
	if (a_private(f)) {
		for (int i = 0; i < 2; i++)
			ON_DEV(f->dev, f->mm, B(i), false);
		SNAP_ALL(f->m, B(0), 2, OWN_A(f, false));
	}
	READ_EXPECT(f->m, B(0), 2, 0x3b000, 1);
	/* hmm reports an owned read-only private page without faulting it:
	 * the mirror must migrate it instead of failing. */
	buf_fill(buf, 2, 0x3b800);
	OK(mirror_write(f->m, B(0), 2, buf, &r));
	EQ(r.cpages, 2);
	if (a_private(f))
		TRUE(r.faults >= 1);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 2 * PG, 0x3b800);
	READ_EXPECT(f->m, B(0), 2, 0x3b800, 0);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void read_of_device_pages_made_prot_none_fails_efault_and_data_survives(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x3c000);
	TODEV(f->m, B(0), 2);
	OK(dmm_mprotect(f->mm, B(0), 2 * PG, DMM_PROT_NONE));
	CHECK_OK(f->sys);
	READ_FAILS(-EFAULT, f->m, B(0), 2);
	TODEV_FAILS(-EINVAL, f->m, B(0), 2);
	SNAP_ALL(f->m, B(0), 2, S_NOVMA);
	POOL(f->dev, 2);
	OK(dmm_mprotect(f->mm, B(0), 2 * PG, DMM_PROT_READ));
	READ_EXPECT(f->m, B(0), 2, 0x3c000, 1);
	VERIFY(f->mm, B(0), 2 * PG, 0x3c000);
	CHECK_OK(f->sys);
}

static void migrate_to_dev_spans_vmas_and_windows_reading_back_the_table(void **state)
{
	struct mfx *f = *state;
	const uint64_t n = 600; /* two migrate windows, far more than the device holds */
	void *buf = buf_new(n);

	MAP_ANON(f->mm, B(0), n - 8);
	MAP_FIXED(f->mm, B(n - 8), 8 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	FILL(f->mm, B(0), (n - 8) * PG, 0x40000);
	/* Everything mirrored first: pages the device has no room for are
	 * still in the table and read back. */
	READ_OK(f->m, B(0), n, buf, 1);
	CHECK_OK(f->sys);
	memset(buf, CANARY, n * PG);
	TODEV_OK(f->m, B(0), n, buf);
	BUF_EXPECT(buf, n - 8, 0x40000);
	BUF_ZERO((uint8_t *)buf + (n - 8) * PG, 8);
	CHECK_OK(f->sys);
	POOL(f->dev, DEV_PAGES);
	for (uint64_t i = 0; i < DEV_PAGES; i++)
		ON_DEV(f->dev, f->mm, B(i), true);
	IN_SYS(f->sys, f->mm, B(DEV_PAGES));
	READ_EXPECT(f->m, B(0), n - 8, 0x40000, 0);
	VERIFY(f->mm, B(0), (n - 8) * PG, 0x40000);
	CHECK_OK(f->sys);
	buf_free(buf);
}

/*
 * "Pages already on this device are not migrated again but are in the
 * table, so they count" (§3 migrate-to-dev): also when the mirror's entry
 * for such a page was invalidated while the page stayed on the device —
 * here by fork's write-protect (PROTECTION_PAGE).
 */
static void migrate_to_dev_counts_own_pages_after_fork_invalidated_the_table(void **state)
{
	struct mfx *f = *state;
	struct dmm_mm *child;
	void *buf = buf_new(2);

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x3d000);
	TODEV(f->m, B(0), 2);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	ON_DEV(f->dev, f->mm, B(0), false);
	TODEV_OK(f->m, B(0), 2, buf);
	BUF_EXPECT(buf, 2, 0x3d000);
	POOL(f->dev, 2);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	buf_free(buf);
}

/* The same after mprotect (PROTECTION_VMA) of device pages. */
static void migrate_to_dev_counts_own_pages_after_mprotect_invalidated_the_table(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(2);

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x3e000);
	TODEV(f->m, B(0), 2);
	OK(dmm_mprotect(f->mm, B(0), 2 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	ON_DEV(f->dev, f->mm, B(0), false);
	TODEV_OK(f->m, B(0), 2, buf);
	BUF_EXPECT(buf, 2, 0x3e000);
	POOL(f->dev, 2);
	CHECK_OK(f->sys);
	buf_free(buf);
}

/* The same after close and reopen (a new, empty table). */
static void migrate_to_dev_counts_own_pages_after_reopen(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(2);

	MAP_ANON(f->mm, B(0), 2);
	FILL(f->mm, B(0), 2 * PG, 0x3f000);
	TODEV(f->m, B(0), 2);
	mirror_close(f->m);
	f->m = NULL;
	OK(mirror_open(f->dev, f->mm, &f->m));
	CHECK_OK(f->sys);
	TODEV_OK(f->m, B(0), 2, buf);
	BUF_EXPECT(buf, 2, 0x3f000);
	POOL(f->dev, 2);
	CHECK_OK(f->sys);
	buf_free(buf);
}

/* The same for a coherent page whose exclusive access the CPU revoked
 * (the restore's CLEAR erased the entry; the page stayed on the device). */
static void migrate_to_dev_counts_own_coherent_page_after_exclusive_restore(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(1);

	MAP_ANON(f->mm, B(0), 1);
	FILL(f->mm, B(0), PG, 0x3f800);
	TODEV(f->m, B(0), 1);
	EXCL(f->m, B(0), 1, 0);
	EQ(LOAD(f->mm, B(0)), 0x3f800);
	CHECK_OK(f->sys);
	ON_DEV(f->dev, f->mm, B(0), true);
	TODEV_OK(f->m, B(0), 1, buf);
	BUF_EXPECT(buf, 1, 0x3f800);
	POOL(f->dev, 1);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void two_devices_snapshot_each_others_pages(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x30000);
	TODEV(f->m, B(0), 2);
	TODEV(f->m2, B(2), 2);
	CHECK_OK(f->sys);
	SNAP(f->m, B(0), OWN_A(f, true), OWN_A(f, true), B_SEEN_BY_A(f, true), B_SEEN_BY_A(f, true));
	SNAP(f->m2, B(0), A_SEEN_BY_B(f, true), A_SEEN_BY_B(f, true), OWN_B(f, true), OWN_B(f, true));
	/* Snapshots move nothing. */
	POOL(f->dev, 2);
	POOL(f->dev2, 2);
	ON_DEV(f->dev, f->mm, B(0), true);
	ON_DEV(f->dev2, f->mm, B(2), true);
	CHECK_OK(f->sys);
	VERIFY(f->mm, B(0), 4 * PG, 0x30000);
	CHECK_OK(f->sys);
}

static void migrate_to_dev_does_not_take_another_devices_pages(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x31000);
	TODEV(f->m2, B(0), 4);
	CHECK_OK(f->sys);
	/* Not system memory, not faulted into A's mirror: ENOENT. */
	TODEV_FAILS(-ENOENT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	POOL(f->dev2, 4);
	for (int i = 0; i < 4; i++)
		ON_DEV(f->dev2, f->mm, B(i), true);
	/* Half of it back in system memory: that half moves to A, then the
	 * read-back fails on B's pages. */
	TOSYS_OK(f->m2, B(0), 2, 2);
	TODEV_FAILS(-ENOENT, f->m, B(0), 4);
	CHECK_OK(f->sys);
	POOL(f->dev, 2);
	POOL(f->dev2, 2);
	SNAP(f->m, B(0), OWN_A(f, true), OWN_A(f, true), B_SEEN_BY_A(f, true), B_SEEN_BY_A(f, true));
	VERIFY(f->mm, B(0), 4 * PG, 0x31000);
	CHECK_OK(f->sys);
}

static void migrate_to_dev_reads_back_another_devices_page_once_faulted(void **state)
{
	struct mfx *f = *state;
	void *buf = buf_new(4);

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x32000);
	TODEV_OK(f->m2, B(0), 4, buf);
	/* A's read faults B's pages in: private ones come back to system
	 * memory (B's migrate_to_ram), coherent ones are read in place. */
	READ_EXPECT(f->m, B(0), 4, 0x32000, 1);
	CHECK_OK(f->sys);
	if (b_private(f)) {
		POOL(f->dev2, 0);
		for (int i = 0; i < 4; i++)
			IN_SYS(f->sys, f->mm, B(i));
	} else {
		POOL(f->dev2, 4);
		SNAP_ALL(f->m, B(0), 4, B_SEEN_BY_A(f, true));
	}
	memset(buf, CANARY, 4 * PG);
	TODEV_OK(f->m, B(0), 4, buf);
	BUF_EXPECT(buf, 4, 0x32000);
	CHECK_OK(f->sys);
	if (b_private(f)) {
		POOL(f->dev, 4);
		for (int i = 0; i < 4; i++)
			ON_DEV(f->dev, f->mm, B(i), true);
	} else {
		/* Still B's: read back from A's table, nothing migrated. */
		POOL(f->dev, 0);
		POOL(f->dev2, 4);
		for (int i = 0; i < 4; i++)
			ON_DEV(f->dev2, f->mm, B(i), true);
	}
	VERIFY(f->mm, B(0), 4 * PG, 0x32000);
	CHECK_OK(f->sys);
	buf_free(buf);
}

static void migration_to_one_device_invalidates_the_other_mirror(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x33000);
	READ_EXPECT(f->m, B(0), 4, 0x33000, 1);
	READ_EXPECT(f->m, B(0), 4, 0x33000, 0);
	/* B takes the pages: A's entries for the old system pages go. */
	TODEV(f->m2, B(0), 4);
	CHECK_OK(f->sys);
	READ_EXPECT(f->m, B(0), 4, 0x33000, 1);
	CHECK_OK(f->sys);
	/* A's fault brought B's private pages back; coherent ones stay. */
	POOL(f->dev2, b_private(f) ? 0 : 4);
	/* A CPU write in place afterwards: A sees it through its entries. */
	FILL(f->mm, B(1), PG, 0x34000);
	CHECK_OK(f->sys);
	{
		void *b = buf_new(4);

		READ_OK(f->m, B(0), 4, b, 0);
		BUF_EXPECT(b, 1, 0x33000);
		BUF_EXPECT((uint8_t *)b + PG, 1, 0x34000);
		BUF_EXPECT((uint8_t *)b + 2 * PG, 2, 0x33000 + 2 * WORDS_PER_PAGE);
		buf_free(b);
	}
	CHECK_OK(f->sys);
	/* B migrating its coherent pages back to system memory invalidates
	 * A too. */
	if (!b_private(f)) {
		TOSYS_OK(f->m2, B(0), 4, 4);
		CHECK_OK(f->sys);
		POOL(f->dev2, 0);
		for (int i = 0; i < 4; i++)
			IN_SYS(f->sys, f->mm, B(i));
		{
			void *b = buf_new(4);

			READ_OK(f->m, B(0), 4, b, 1);
			BUF_EXPECT(b, 1, 0x33000);
			BUF_EXPECT((uint8_t *)b + PG, 1, 0x34000);
			buf_free(b);
		}
	}
	CHECK_OK(f->sys);
}

static void another_devices_fault_invalidates_the_owners_mirror(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x35000);
	TODEV(f->m, B(0), 4);
	READ_EXPECT(f->m, B(0), 4, 0x35000, 0);
	/* B reads A's pages. A private page is migrated back by A's
	 * migrate_to_ram, which must drop A's own entries. */
	READ_EXPECT(f->m2, B(0), 4, 0x35000, 1);
	CHECK_OK(f->sys);
	if (a_private(f)) {
		POOL(f->dev, 0);
		for (int i = 0; i < 4; i++)
			IN_SYS(f->sys, f->mm, B(i));
		READ_EXPECT(f->m, B(0), 4, 0x35000, 1);
	} else {
		POOL(f->dev, 4);
		READ_EXPECT(f->m, B(0), 4, 0x35000, 0);
	}
	/* B writes: A sees the new data. */
	{
		void *b = buf_new(4);

		buf_fill(b, 4, 0x36000);
		OK(mirror_write(f->m2, B(0), 4, b, &(struct mirror_result){ 0 }));
		buf_free(b);
	}
	CHECK_OK(f->sys);
	READ_EXPECT(f->m, B(0), 4, 0x36000, 0);
	VERIFY(f->mm, B(0), 4 * PG, 0x36000);
	CHECK_OK(f->sys);
}

static void migrate_to_sys_leaves_another_devices_pages(void **state)
{
	struct mfx *f = *state;

	MAP_ANON(f->mm, B(0), 4);
	FILL(f->mm, B(0), 4 * PG, 0x37000);
	TODEV(f->m, B(0), 2);
	TODEV(f->m2, B(2), 2);
	TOSYS_OK(f->m, B(0), 4, 2);
	CHECK_OK(f->sys);
	POOL(f->dev, 0);
	POOL(f->dev2, 2);
	ON_DEV(f->dev2, f->mm, B(2), true);
	ON_DEV(f->dev2, f->mm, B(3), true);
	TOSYS_OK(f->m2, B(0), 4, 2);
	POOL(f->dev2, 0);
	VERIFY(f->mm, B(0), 4 * PG, 0x37000);
	CHECK_OK(f->sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T2(commands_reject_count_zero_overflow_and_unaligned_start),
		T2(mirror_open_finds_the_open_mirror),
		T2(read_of_unpopulated_range_takes_exactly_one_fault_pass),
		T2(read_of_mirrored_range_takes_no_fault_pass),
		T2(read_after_cpu_write_takes_a_fault_pass_and_sees_the_new_data),
		T2(read_of_prot_none_fails_efault),
		T2(read_without_vma_fails_efault),
		T2(write_to_unpopulated_range_takes_one_fault_pass_and_the_cpu_sees_it),
		T2(write_after_read_takes_one_fault_pass_for_write_access),
		T2(write_to_read_only_vma_fails_eperm),
		T2(write_to_prot_none_or_no_vma_fails_efault),
		T2(migrate_to_dev_moves_written_pages_and_reads_them_back),
		T2(cpu_access_to_migrated_pages_follows_the_memory_type),
		T2(migrate_to_dev_fills_holes_and_zero_pages_with_zeros),
		T2(migrate_to_dev_counts_pages_already_on_the_device),
		T2(migrate_to_dev_of_read_only_vma_maps_read_only),
		T2(migrate_to_dev_without_vma_fails_einval),
		T2(migrate_to_dev_of_prot_none_fails_einval),
		T2(migrate_to_dev_of_shared_memory_fails_enoent_migrating_nothing),
		T2(migrate_to_dev_of_shared_memory_faulted_into_mirror_reads_back),
		T2(migrate_to_dev_of_file_mappings_moves_only_private_copies),
		T2(migrate_to_sys_brings_own_pages_back_without_cpu_faults),
		T2(migrate_to_sys_moves_only_own_pages),
		T2(migrate_to_sys_without_vma_fails_einval),
		T2(snapshot_reports_every_kind_of_page),
		T2(snapshot_never_faults_and_spans_windows),
		T2(snapshot_after_fork_reports_shared_device_pages_read_only),
		T2(exclusive_makes_pages_device_exclusive_and_reads_them_back),
		T2(exclusive_is_lost_to_a_cpu_touch),
		T2(exclusive_is_lost_to_a_pin),
		T2(exclusive_is_lost_to_fork),
		T2(exclusive_is_lost_to_mprotect_and_restores_read_only),
		T2(exclusive_of_shared_or_file_memory_fails_eopnotsupp),
		T2(exclusive_of_read_only_vma_fails_efault),
		T2(exclusive_stops_at_the_first_failing_page),
		T2(exclusive_of_own_device_page),
		T2(atomic_add_on_system_memory_takes_exclusive_access_first),
		T2(atomic_add_on_own_device_pages_needs_only_a_write_entry),
		T2(atomic_add_after_fork_changes_only_this_process),
		T2(atomic_add_without_write_access_fails_efault),
		T2(release_evicts_pages_mapped_in_several_processes),
		T2(release_of_an_unused_device_succeeds),
		T2(fail_next_alloc_leaves_one_page_unmigrated_to_dev),
		T2(fail_next_alloc_to_dev_of_a_mirrored_page_still_reads_it_back),
		T2(fail_next_alloc_makes_migrate_to_sys_fail_enomem_with_window_untouched),
		T2(fail_next_alloc_makes_a_cpu_fault_back_fail_enomem_once),
		T2(pool_follows_allocations_and_frees),
		T2(migrate_to_dev_beyond_device_size_leaves_the_rest_in_system_memory),
		T2(close_then_reopen_keeps_device_pages_mapped),
		T2(fork_shares_device_pages_without_copying_them),
		T2(mirror_write_after_fork_copies_the_shared_device_page),
		T2(child_exit_with_its_mirror_open_frees_its_device_pages),
		T2(exclusive_after_fork_copies_the_page_for_this_process),
		T2(device_write_to_exclusive_pages_needs_no_fault_pass),
		T2(mremap_moves_device_pages_and_the_mirror_refaults),
		T2(device_write_after_mprotect_of_device_pages_still_works),
		T2(read_of_device_pages_made_prot_none_fails_efault_and_data_survives),
		T2(migrate_to_dev_spans_vmas_and_windows_reading_back_the_table),
		T2(migrate_to_dev_counts_own_pages_after_fork_invalidated_the_table),
		T2(migrate_to_dev_counts_own_pages_after_mprotect_invalidated_the_table),
		T2(migrate_to_dev_counts_own_pages_after_reopen),
		TC(migrate_to_dev_counts_own_coherent_page_after_exclusive_restore),
		T4(two_devices_snapshot_each_others_pages),
		T4(migrate_to_dev_does_not_take_another_devices_pages),
		T4(migrate_to_dev_reads_back_another_devices_page_once_faulted),
		T4(migration_to_one_device_invalidates_the_other_mirror),
		T4(another_devices_fault_invalidates_the_owners_mirror),
		T4(migrate_to_sys_leaves_another_devices_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
