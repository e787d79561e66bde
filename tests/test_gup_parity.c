/* SPDX-License-Identifier: MIT */
/*
 * GUP-fast never succeeds where the slow path would fail or act
 * differently (semantics.md §3.7). Each case below builds one page in one
 * state (an entry kind in a kind of mapping); for every flag combination
 * the case is built twice, in two fresh and identical systems, and
 * dmm_get_user_pages runs in one while dmm_get_user_pages_fast runs in the
 * other. The two outcomes must be the same: the return value, the role of
 * the returned page (the zero page, the page mapped before, the file's
 * page-cache page, a page mapped in the child, or a new page) and its
 * location, the counts and flags of that page and of the page mapped
 * before, the entry left behind, and all of it again after the release.
 *
 * Not covered: a migration entry (both paths would sleep until the
 * migration ends, which a single-threaded table can not arrange; the fast
 * path falls back on every non-present entry).
 */
#include "helpers.h"
#include "testdrv.h"

#define GET DMM_FOLL_GET
#define PIN DMM_FOLL_PIN
#define WR DMM_FOLL_WRITE
#define LT DMM_FOLL_LONGTERM
#define FORCE DMM_FOLL_FORCE
#define DEV_PAGES 8
#define NO_PFN UINT64_MAX
#define ADDR TBASE
#define SIDE (TBASE + 64 * PG) /* a shared read-only view of the file, to learn its page */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct world {
	struct dmm_system *sys;
	struct dmm_mm *mm, *child;
	struct testdrv *priv, *coh;
	struct dmm_file *file;
	uint64_t orig;	/* the pfn at ADDR before GUP (any entry kind), or NO_PFN */
	uint64_t cache; /* the file's page behind ADDR, or NO_PFN */
	uint64_t held;	/* a pin the setup keeps, or NO_PFN */
};

/* ------------------------------------------------------------------------ */
/* The cases                                                                 */

static void map_file(struct world *w, int prot, int flags)
{
	OK(dmm_file_create(w->sys, 1, &w->file));
	FILE_FILL(w->file, 0, PG, 0x3000);
	MAP_FIXED(w->mm, SIDE, PG, DMM_PROT_READ, DMM_MAP_SHARED, w->file, 0);
	(void)LOAD(w->mm, SIDE);
	w->cache = PFN(w->mm, SIDE);
	MAP_FIXED(w->mm, ADDR, PG, prot, flags, w->file, 0);
}

static void fork_child(struct world *w) { OK(dmm_fork(w->mm, &w->child)); }

static void anon_written(struct world *w)
{
	MAP_ANON(w->mm, ADDR, 1);
	FILL(w->mm, ADDR, PG, 0x1000);
}
static void anon_none(struct world *w) { MAP_ANON(w->mm, ADDR, 1); }
static void anon_zero(struct world *w)
{
	MAP_ANON(w->mm, ADDR, 1);
	(void)LOAD(w->mm, ADDR);
}
static void anon_ro_vma_zero(struct world *w)
{
	MAP_FIXED(w->mm, ADDR, PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	(void)LOAD(w->mm, ADDR);
}
static void anon_ro_vma_exclusive(struct world *w)
{
	anon_written(w);
	OK(dmm_mprotect(w->mm, ADDR, PG, DMM_PROT_READ));
}
static void anon_shared_with_child(struct world *w)
{
	anon_written(w);
	fork_child(w);
}
static void anon_zero_shared_with_child(struct world *w)
{
	anon_zero(w);
	fork_child(w);
}
/* After fork and the child's exit: read-only, alone, not marked exclusive. */
static void anon_unshared_after_child_exit(struct world *w)
{
	anon_shared_with_child(w);
	dmm_mm_exit(w->child);
	w->child = NULL;
}
static void anon_write_only(struct world *w)
{
	MAP_FIXED(w->mm, ADDR, PG, DMM_PROT_WRITE, ANON_PRIVATE, NULL, 0);
	OK(dmm_store32(w->mm, ADDR, 0x1100));
}
/* Written while read-write, then made write-only. */
static void anon_made_write_only(struct world *w)
{
	anon_written(w);
	OK(dmm_mprotect(w->mm, ADDR, PG, DMM_PROT_WRITE));
}
static void anon_prot_none(struct world *w)
{
	anon_written(w);
	OK(dmm_mprotect(w->mm, ADDR, PG, DMM_PROT_NONE));
}
/* A debugger's FOLL_FORCE populated a PROT_NONE mapping. */
static void forced(struct world *w, unsigned int flags)
{
	uint64_t pfn;

	EQS(dmm_get_user_pages(w->mm, ADDR, 1, flags | FORCE, &pfn), 1);
	dmm_put_user_pages(w->sys, &pfn, 1);
}
static void anon_prot_none_forced_write(struct world *w)
{
	MAP_FIXED(w->mm, ADDR, PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	forced(w, GET | WR);
}
static void file_private_prot_none_forced_read(struct world *w)
{
	map_file(w, DMM_PROT_NONE, DMM_MAP_PRIVATE);
	forced(w, GET);
}
static void file_shared_prot_none_forced_read(struct world *w)
{
	map_file(w, DMM_PROT_NONE, DMM_MAP_SHARED);
	forced(w, GET);
}
static void anon_pinned(struct world *w)
{
	anon_written(w);
	EQS(dmm_get_user_pages(w->mm, ADDR, 1, PIN | WR, &w->held), 1);
}
static void anon_pinned_then_fork(struct world *w)
{
	anon_pinned(w);
	fork_child(w);
}

/* The child of a fork that copied a pinned page in a PROT_NONE mapping:
 * the GUP runs in the child. */
static void anon_pinned_prot_none_child(struct world *w)
{
	struct dmm_mm *parent = w->mm;

	anon_pinned(w);
	OK(dmm_mprotect(w->mm, ADDR, PG, DMM_PROT_NONE));
	fork_child(w);
	w->mm = w->child;
	w->child = parent;
}

static void file_shared_dirty(struct world *w)
{
	map_file(w, RW, DMM_MAP_SHARED);
	FILL(w->mm, ADDR, PG, 0x2000);
}
static void file_shared_clean(struct world *w)
{
	map_file(w, RW, DMM_MAP_SHARED);
	(void)LOAD(w->mm, ADDR);
}
static void file_shared_write_only(struct world *w)
{
	map_file(w, DMM_PROT_WRITE, DMM_MAP_SHARED);
	OK(dmm_store32(w->mm, ADDR, 0x2200));
}
static void file_shared_none(struct world *w) { map_file(w, RW, DMM_MAP_SHARED); }
static void file_shared_ro_vma(struct world *w)
{
	map_file(w, DMM_PROT_READ, DMM_MAP_SHARED);
	(void)LOAD(w->mm, ADDR);
}
static void file_private_read(struct world *w)
{
	map_file(w, RW, DMM_MAP_PRIVATE);
	(void)LOAD(w->mm, ADDR);
}
static void file_private_none(struct world *w) { map_file(w, RW, DMM_MAP_PRIVATE); }
static void file_private_written(struct world *w)
{
	map_file(w, RW, DMM_MAP_PRIVATE);
	FILL(w->mm, ADDR, PG, 0x2000);
}
static void file_private_ro_vma(struct world *w)
{
	map_file(w, DMM_PROT_READ, DMM_MAP_PRIVATE);
	(void)LOAD(w->mm, ADDR);
}
static void file_private_read_then_fork(struct world *w)
{
	file_private_read(w);
	fork_child(w);
}

static void shmem_written(struct world *w)
{
	MAP_FIXED(w->mm, ADDR, PG, RW, ANON_SHARED, NULL, 0);
	FILL(w->mm, ADDR, PG, 0x4000);
}
static void shmem_read(struct world *w)
{
	MAP_FIXED(w->mm, ADDR, PG, RW, ANON_SHARED, NULL, 0);
	(void)LOAD(w->mm, ADDR);
}
static void shmem_ro_vma(struct world *w)
{
	MAP_FIXED(w->mm, ADDR, PG, DMM_PROT_READ, ANON_SHARED, NULL, 0);
	(void)LOAD(w->mm, ADDR);
}
static void shmem_shared_with_child(struct world *w)
{
	shmem_written(w);
	fork_child(w);
}

static void coherent(struct world *w)
{
	unsigned long moved = 0;

	anon_written(w);
	OK(testdrv_migrate_to_dev(w->coh, w->mm, ADDR, 1, &moved));
	EQ(moved, 1);
}
static void coherent_shared_with_child(struct world *w)
{
	coherent(w);
	fork_child(w);
}
static void device_private(struct world *w)
{
	unsigned long moved = 0;

	anon_written(w);
	OK(testdrv_migrate_to_dev(w->priv, w->mm, ADDR, 1, &moved));
	EQ(moved, 1);
}
static void device_private_shared_with_child(struct world *w)
{
	device_private(w);
	fork_child(w);
}
static void device_exclusive(struct world *w)
{
	uint64_t pfn = 0;
	int r;

	anon_written(w);
	dmm_mmap_read_lock(w->mm);
	r = dmm_make_device_exclusive(w->mm, ADDR, w, &pfn);
	dmm_mmap_read_unlock(w->mm);
	OK(r);
	dmm_unlock_page(w->sys, pfn);
	dmm_put_page(w->sys, pfn);
}
/* A coherent page inserted by migration into a PROT_NONE hole. */
static void coherent_prot_none_hole(struct world *w)
{
	unsigned long moved = 0;

	MAP_FIXED(w->mm, ADDR, PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	OK(testdrv_migrate_to_dev(w->coh, w->mm, ADDR, 1, &moved));
	EQ(moved, 1);
}
/* A page migrated (to a coherent device) while its mapping is PROT_NONE. */
static void coherent_prot_none_migrated(struct world *w)
{
	unsigned long moved = 0;

	anon_prot_none(w);
	OK(testdrv_migrate_to_dev(w->coh, w->mm, ADDR, 1, &moved));
	EQ(moved, 1);
}
/* mprotect leaves the exclusive entry; a forced GUP restores it. */
static void device_exclusive_prot_none_forced_read(struct world *w)
{
	device_exclusive(w);
	OK(dmm_mprotect(w->mm, ADDR, PG, DMM_PROT_NONE));
	forced(w, GET);
}
static void unmapped(struct world *w) { (void)w; }

/* ------------------------------------------------------------------------ */
/* Worlds and outcomes                                                       */

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->sys = sys_new(512);
	assert_non_null(w->sys);
	OK(dmm_mm_create(w->sys, &w->mm));
	OK(testdrv_create(w->sys, DMM_MEMORY_DEVICE_PRIVATE, DEV_PAGES, &w->priv));
	OK(testdrv_create(w->sys, DMM_MEMORY_DEVICE_COHERENT, DEV_PAGES, &w->coh));
	w->orig = w->cache = w->held = NO_PFN;
	return w;
}

static void world_free(struct world *w)
{
	if (w->held != NO_PFN)
		dmm_unpin_user_pages(w->sys, &w->held, 1);
	if (w->child)
		dmm_mm_exit(w->child);
	CHECK_OK(w->sys);
	if (w->file)
		dmm_file_put(w->file);
	dmm_system_destroy(w->sys);
	testdrv_free(w->priv);
	testdrv_free(w->coh);
	free(w);
}

enum role { R_NONE, R_ZERO, R_ORIG, R_CACHE, R_CHILD, R_NEW };
static const char *const role_names[] = { "none", "zero", "orig", "cache", "child", "new" };

static enum role role_of(struct world *w, uint64_t pfn)
{
	struct dmm_pte_info c;

	if (pfn == NO_PFN)
		return R_NONE;
	if (pfn == DMM_ZERO_PFN)
		return R_ZERO;
	if (pfn == w->orig)
		return R_ORIG;
	if (pfn == w->cache)
		return R_CACHE;
	if (w->child && dmm_pte_query(w->child, ADDR, &c) == 0 && c.kind != DMM_PTE_NONE && c.pfn == pfn)
		return R_CHILD;
	return R_NEW;
}

/* What is compared of a page: counts, flags (but the lock bit), location. */
struct page_state {
	bool valid;
	uint32_t refcount, pincount, flags;
	int32_t mapcount;
	enum dmm_page_location location;
	uint32_t word0;
};

static struct page_state page_state(struct world *w, uint64_t pfn)
{
	struct page_state s = { 0 };
	struct dmm_page_info pi;
	const uint32_t *mem;

	if (pfn == NO_PFN || dmm_page_query(w->sys, pfn, &pi))
		return s;
	s.valid = true;
	s.refcount = pi.refcount;
	s.mapcount = pi.mapcount;
	s.pincount = pi.pincount;
	s.flags = pi.flags & ~(uint32_t)DMM_PAGE_LOCKED;
	s.location = pi.location;
	mem = pi.location == DMM_LOC_DEVICE_PRIVATE ? NULL : dmm_page_address(w->sys, pfn);
	s.word0 = mem ? mem[0] : 0;
	return s;
}

struct outcome {
	long rc;
	enum role got;
	struct page_state page, orig;
	enum dmm_pte_kind kind;
	bool write, dirty;
	enum role mapped;
	struct page_state page_after, orig_after; /* after the release */
	uint64_t nr_free_after;
};

static void observe(struct world *w, struct outcome *o, uint64_t pfn, bool after)
{
	struct dmm_pte_info e;

	if (after) {
		o->page_after = page_state(w, pfn);
		o->orig_after = page_state(w, w->orig);
		o->nr_free_after = dmm_system_nr_free(w->sys);
		return;
	}
	o->page = page_state(w, pfn);
	o->orig = page_state(w, w->orig);
	OK(dmm_pte_query(w->mm, ADDR, &e));
	o->kind = e.kind;
	o->write = e.write;
	o->dirty = e.dirty;
	o->mapped = e.kind == DMM_PTE_NONE ? R_NONE : role_of(w, e.pfn);
}

static struct outcome run(void (*setup)(struct world *), unsigned int flags, bool fast)
{
	struct world *w = world_new();
	struct outcome o;
	struct dmm_pte_info e;
	uint64_t pfn = NO_PFN;

	memset(&o, 0, sizeof(o));
	setup(w);
	OK(dmm_pte_query(w->mm, ADDR, &e));
	if (e.kind != DMM_PTE_NONE)
		w->orig = e.pfn;
	CHECK_OK(w->sys);
	o.rc = fast ? dmm_get_user_pages_fast(w->mm, ADDR, 1, flags, &pfn)
		    : dmm_get_user_pages(w->mm, ADDR, 1, flags, &pfn);
	CHECK_OK(w->sys);
	if (o.rc != 1)
		pfn = NO_PFN;
	o.got = role_of(w, pfn);
	observe(w, &o, pfn, false);
	if (pfn != NO_PFN) {
		if (flags & PIN)
			dmm_unpin_user_pages(w->sys, &pfn, 1);
		else
			dmm_put_user_pages(w->sys, &pfn, 1);
		CHECK_OK(w->sys);
	}
	observe(w, &o, pfn, true);
	world_free(w);
	return o;
}

static void flag_name(unsigned int f, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s%s", (f & PIN) ? "PIN" : "GET", (f & WR) ? "|WRITE" : "",
		 (f & LT) ? "|LONGTERM" : "", (f & FORCE) ? "|FORCE" : "");
}

#define DIFF(field, fmt, ...)                                                              \
	do {                                                                               \
		if (s->field != f->field) {                                                \
			print_error("%s, %s: %s differs: slow " fmt ", fast " fmt "\n", name, fl, \
				    #field, __VA_ARGS__);                                  \
			bad++;                                                             \
		}                                                                          \
	} while (0)
#define DIFF_U(field) DIFF(field, "%lld", (long long)s->field, (long long)f->field)
#define DIFF_PAGE(p)                                                                       \
	do {                                                                               \
		DIFF_U(p.valid);                                                           \
		DIFF_U(p.refcount);                                                        \
		DIFF_U(p.mapcount);                                                        \
		DIFF_U(p.pincount);                                                        \
		DIFF(p.flags, "%#x", s->p.flags, f->p.flags);                              \
		DIFF_U(p.location);                                                        \
		DIFF(p.word0, "%#x", s->p.word0, f->p.word0);                              \
	} while (0)

static int compare(const char *name, const char *fl, const struct outcome *s, const struct outcome *f)
{
	int bad = 0;

	DIFF(rc, "%ld (%s)", s->rc, errname(s->rc), f->rc, errname(f->rc));
	DIFF(got, "%s", role_names[s->got], role_names[f->got]);
	DIFF_PAGE(page);
	DIFF_PAGE(orig);
	DIFF(kind, "%s", dmm_pte_kind_name(s->kind), dmm_pte_kind_name(f->kind));
	DIFF_U(write);
	DIFF_U(dirty);
	DIFF(mapped, "%s", role_names[s->mapped], role_names[f->mapped]);
	DIFF_PAGE(page_after);
	DIFF_PAGE(orig_after);
	DIFF_U(nr_free_after);
	return bad;
}

static const unsigned int flag_sets[] = {
	GET,	      GET | WR,		  GET | FORCE,	      GET | WR | FORCE,
	PIN,	      PIN | WR,		  PIN | FORCE,	      PIN | WR | FORCE,
	PIN | LT,     PIN | LT | WR,	  PIN | LT | FORCE,   PIN | LT | WR | FORCE,
};

static void both_paths_agree(const char *name, void (*setup)(struct world *))
{
	int bad = 0;

	for (size_t i = 0; i < ARRAY_SIZE(flag_sets); i++) {
		struct outcome s = run(setup, flag_sets[i], false);
		struct outcome f = run(setup, flag_sets[i], true);
		char fl[64];

		flag_name(flag_sets[i], fl, sizeof(fl));
		bad += compare(name, fl, &s, &f);
	}
	if (bad)
		fail_msg("%s: %d difference(s) between the slow and the fast path", name, bad);
}

#define CASE(setup)                                                                        \
	static void test_##setup(void **state)                                             \
	{                                                                                  \
		(void)state;                                                               \
		both_paths_agree(#setup, setup);                                           \
	}
CASE(anon_written)
CASE(anon_none)
CASE(anon_zero)
CASE(anon_ro_vma_zero)
CASE(anon_ro_vma_exclusive)
CASE(anon_shared_with_child)
CASE(anon_zero_shared_with_child)
CASE(anon_unshared_after_child_exit)
CASE(anon_write_only)
CASE(anon_made_write_only)
CASE(anon_prot_none)
CASE(anon_prot_none_forced_write)
CASE(file_private_prot_none_forced_read)
CASE(file_shared_prot_none_forced_read)
CASE(anon_pinned)
CASE(anon_pinned_then_fork)
CASE(anon_pinned_prot_none_child)
CASE(file_shared_dirty)
CASE(file_shared_clean)
CASE(file_shared_write_only)
CASE(file_shared_none)
CASE(file_shared_ro_vma)
CASE(file_private_read)
CASE(file_private_none)
CASE(file_private_written)
CASE(file_private_ro_vma)
CASE(file_private_read_then_fork)
CASE(shmem_written)
CASE(shmem_read)
CASE(shmem_ro_vma)
CASE(shmem_shared_with_child)
CASE(coherent)
CASE(coherent_shared_with_child)
CASE(device_private)
CASE(device_private_shared_with_child)
CASE(device_exclusive)
CASE(coherent_prot_none_hole)
CASE(coherent_prot_none_migrated)
CASE(device_exclusive_prot_none_forced_read)
CASE(unmapped)
#undef CASE

int main(void)
{
#define T(setup) cmocka_unit_test(test_##setup)
	const struct CMUnitTest tests[] = {
		T(anon_written),
		T(anon_none),
		T(anon_zero),
		T(anon_ro_vma_zero),
		T(anon_ro_vma_exclusive),
		T(anon_shared_with_child),
		T(anon_zero_shared_with_child),
		T(anon_unshared_after_child_exit),
		T(anon_write_only),
		T(anon_made_write_only),
		T(anon_prot_none),
		T(anon_prot_none_forced_write),
		T(file_private_prot_none_forced_read),
		T(file_shared_prot_none_forced_read),
		T(anon_pinned),
		T(anon_pinned_then_fork),
		T(anon_pinned_prot_none_child),
		T(file_shared_dirty),
		T(file_shared_clean),
		T(file_shared_write_only),
		T(file_shared_none),
		T(file_shared_ro_vma),
		T(file_private_read),
		T(file_private_none),
		T(file_private_written),
		T(file_private_ro_vma),
		T(file_private_read_then_fork),
		T(shmem_written),
		T(shmem_read),
		T(shmem_ro_vma),
		T(shmem_shared_with_child),
		T(coherent),
		T(coherent_shared_with_child),
		T(device_private),
		T(device_private_shared_with_child),
		T(device_exclusive),
		T(coherent_prot_none_hole),
		T(coherent_prot_none_migrated),
		T(device_exclusive_prot_none_forced_read),
		T(unmapped),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
