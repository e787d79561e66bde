/* SPDX-License-Identifier: MIT */
/*
 * The fault-injection sweep (issue 7): fail the Nth allocation of
 * representative operations for N = 1, 2, ... until the operation runs
 * without an injected failure, and check each time that the operation
 * either completed (the full, correct result) or failed cleanly with
 * nothing changed (or, where Linux documents partial effects, that every
 * page is in one of the allowed states with its data intact), that
 * dmm_check passes, and that after the scenario is torn down no frame
 * leaked, pins balance and every device page came back through folio_free.
 *
 * Each (operation, site) pair is one cmocka test; every N builds a fresh
 * system and address space, so page tables and metadata must be allocated
 * again. Sites: FRAME, PGTABLE and META everywhere, MIGRATE_TO_RAM for the
 * CPU fault-back of device-private pages and COW_ALLOC for the
 * copy-on-write of a coherent page on a cow=device mirror device.
 *
 * The operations (and what a failure may leave behind):
 *   fault/...         CPU write fault on a hole, on the zero page, CoW after
 *                     fork; page-cache faults (shared read, private write):
 *                     -ENOMEM and nothing changed
 *   fork              private, shared and device-private pages and a pinned
 *                     page (copied at fork): -ENOMEM, the parent unchanged
 *                     apart from write protection, no child
 *   migrate-to-dev    best effort: each page where it was or on the device
 *   migrate-to-sys    the drivers give the whole window back: unchanged
 *   fault-back        CPU read or write of a device-private page: -ENOMEM,
 *                     the page still on the device, the retry succeeds
 *   mremap            whole VMA or the middle of one, with and without
 *                     DONTUNMAP: -ENOMEM and nothing changed, VMAs included
 *   gup-longterm      FOLL_PIN|FOLL_LONGTERM on coherent pages: a count (a
 *                     partial one only under injection), or -EBUSY with no
 *                     pin held and each page on the device or in RAM
 *   mirror-release    must complete (eviction retries a failed allocation)
 *   cow-coherent      cow=device: COW_ALLOC failing falls back to RAM
 *
 * A test stops at the first N that violates a rule. The summary table
 * (operation, driver, site, failure points N exercised, how many of them
 * made the operation fail and how many it absorbed) is printed on stdout
 * at the end.
 */
#include <stdatomic.h>

#include "helpers.h"
#include "mirror.h"
#include "testdrv.h"

#define NFRAMES 512
#define DEV_PAGES 32
#define MAXN 200
#define NP 16 /* pages in a scenario's model, at most */

/* Four pages across a PTE-table boundary: the first two in one table, the
 * next two in another. */
#define A (TBASE + 0x200000UL - 2 * PG)
/* Other regions, each in its own PTE table. */
#define R2 (TBASE + 0x400000UL)
#define R3 (TBASE + 0x800000UL)
/* An mremap target across a PMD-table (1 GiB) boundary: three new tables
 * (a PTE table below the existing PMD table, a PMD and a PTE table above). */
#define B (0x240000000UL - 2 * PG)

#define FOLL_LT (DMM_FOLL_PIN | DMM_FOLL_LONGTERM | DMM_FOLL_WRITE)

/* ------------------------------------------------------------------------ */
/* Drivers                                                                   */

enum drv_kind { DRV_NONE, TD_PRIV, TD_COH, MR_PRIV, MR_COH, MR_COH_COWDEV };

static const char *const drv_names[] = {
	[DRV_NONE] = "", [TD_PRIV] = "testdrv-private", [TD_COH] = "testdrv-coherent",
	[MR_PRIV] = "mirror-private", [MR_COH] = "mirror-coherent", [MR_COH_COWDEV] = "mirror-coherent-cowdev",
};

static const char *const site_names[DMM_NR_INJECT_SITES] = {
	[DMM_INJECT_FRAME] = "FRAME", [DMM_INJECT_PGTABLE] = "PGTABLE", [DMM_INJECT_META] = "META",
	[DMM_INJECT_MIGRATE_TO_RAM] = "MIGRATE_TO_RAM", [DMM_INJECT_COW_ALLOC] = "COW_ALLOC",
	[DMM_INJECT_THP_ALLOC] = "THP_ALLOC",
	[DMM_INJECT_POLICY] = "POLICY",
};

/* ------------------------------------------------------------------------ */
/* The scenario                                                              */

struct pstate {
	enum dmm_pte_kind kind;
	uint64_t pfn;
	bool write, special;
};

/* One page of the model: where (parent or child, address), what it holds. */
struct mpage {
	int who; /* 0: s->mm, 1: s->child */
	uint64_t addr;
	uint32_t seed; /* expected data: word k = seed + k; 0 = zero page */
	struct pstate before;
};

struct opdef;

struct scn {
	const struct opdef *op;
	int site;
	unsigned long n;
	struct dmm_system *sys;
	struct dmm_mm *mm, *child;
	struct dmm_file *file;
	struct testdrv *drv;
	struct mirror_device *mdev;
	struct mirror *m;
	uint64_t free0;
	/* the model */
	struct mpage pg[NP];
	int npg;
	struct vma_list vmas0, cvmas0;
	bool had_child; /* a child existed at the snapshot */
	uint64_t pool0;
	/* pins to drop at teardown */
	uint64_t pins[NP];
	unsigned long npins;
	/* the operation's outcome */
	long rc;
	bool fired;
	unsigned long moved;
	uint64_t pfns[NP];
	uint8_t buf[NP * 4096];
};

struct opdef {
	const char *name;
	enum drv_kind drv;
	unsigned int sites; /* bit per site swept */
	int param;
	void (*setup)(struct scn *s);
	long (*op)(struct scn *s);
	void (*done)(struct scn *s);	  /* the op succeeded */
	void (*unchanged)(struct scn *s); /* the op failed */
};

static struct scn *cur; /* for cleanup when a check fails mid-sweep */
static char ctx[160];	/* "op/site N=.." for failure messages */

static void sfail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfail(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	h_fail(file, line, "[%s] %s", ctx, msg);
}
#define SFAIL(...) sfail(__FILE__, __LINE__, __VA_ARGS__)
#define SASSERT(cond, ...)                                                                 \
	do {                                                                               \
		if (!(cond))                                                               \
			sfail(__FILE__, __LINE__, "expected " #cond ": " __VA_ARGS__);     \
	} while (0)

static void scheck_at(const char *file, int line, struct scn *s, const char *when)
{
	static char report[16384];
	int rc;

	report[0] = '\0';
	rc = dmm_check(s->sys, report, sizeof(report));
	if (rc)
		sfail(file, line, "dmm_check %s returned %d:\n%s", when, rc, report);
}
#define SCHECK(s, when) scheck_at(__FILE__, __LINE__, s, when)

static struct dmm_mm *mm_of(struct scn *s, int who)
{
	return who ? s->child : s->mm;
}

static struct pstate pst(struct scn *s, struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_pte_info p;
	struct pstate r;
	int rc;

	(void)s;
	memset(&p, 0, sizeof(p));
	rc = dmm_pte_query(mm, addr, &p);
	if (rc)
		SFAIL("dmm_pte_query(%#" PRIx64 ") = %d", addr, rc);
	r.kind = p.kind;
	r.pfn = p.kind == DMM_PTE_NONE ? 0 : p.pfn;
	r.write = p.kind == DMM_PTE_PRESENT && p.write;
	r.special = p.kind == DMM_PTE_PRESENT && p.special;
	return r;
}

static const char *pst_str(struct pstate p, char *buf, size_t n)
{
	snprintf(buf, n, "%s pfn %" PRIu64 "%s%s", dmm_pte_kind_name(p.kind), p.pfn, p.write ? " W" : "",
		 p.special ? " special" : "");
	return buf;
}

/* Same entry; allow_wp: a writable entry may have become read-only (a
 * present one losing W, a device-private one going from W to R). */
static bool pst_same(struct pstate now, struct pstate was, bool allow_wp)
{
	if (allow_wp && was.kind == DMM_PTE_DEVICE_PRIVATE_WRITE && now.kind == DMM_PTE_DEVICE_PRIVATE_READ)
		now.kind = was.kind;
	if (allow_wp && was.write && !now.write)
		now.write = true;
	return now.kind == was.kind && now.pfn == was.pfn && now.write == was.write &&
	       now.special == was.special;
}

static struct dmm_pgmap *dev_pgmap_of(struct scn *s, uint64_t pfn)
{
	struct dmm_pgmap *pg = dmm_page_pgmap(s->sys, pfn);

	if (!pg)
		return NULL;
	if (s->drv && dmm_pgmap_owner(pg) == s->drv)
		return pg;
	if (s->mdev && dmm_pgmap_owner(pg) == s->mdev)
		return pg;
	return NULL;
}

static bool dev_private(struct scn *s)
{
	return s->op->drv == TD_PRIV || s->op->drv == MR_PRIV;
}

/* The entry maps a page of the scenario's device, of the right kind. */
static bool on_device(struct scn *s, struct pstate p)
{
	if (dev_private(s)) {
		if (p.kind != DMM_PTE_DEVICE_PRIVATE_READ && p.kind != DMM_PTE_DEVICE_PRIVATE_WRITE)
			return false;
	} else if (p.kind != DMM_PTE_PRESENT || p.special) {
		return false;
	}
	return dev_pgmap_of(s, p.pfn) != NULL;
}

/* The entry maps a system frame (not the zero page). */
static bool on_system(struct scn *s, struct pstate p)
{
	struct dmm_page_info pi;

	if (p.kind != DMM_PTE_PRESENT || p.special || p.pfn == DMM_ZERO_PFN)
		return false;
	if (dmm_page_query(s->sys, p.pfn, &pi))
		return false;
	return pi.location == DMM_LOC_SYSTEM && !(pi.flags & DMM_PAGE_ZONE_DEVICE);
}

static uint64_t dev_used(struct scn *s)
{
	uint64_t used = 0, nfree = 0;

	if (s->drv)
		return testdrv_used(s->drv);
	if (s->mdev)
		mirror_pool(s->mdev, &used, &nfree);
	return used;
}

static unsigned long dev_frees(struct scn *s)
{
	if (s->drv)
		return atomic_load(&s->drv->folio_frees);
	if (s->mdev)
		return atomic_load(&s->mdev->frees);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Data                                                                      */

static uint32_t seed_of(int region, int i)
{
	return 0x01000000u * (uint32_t)(region + 1) + 0x10000u * (uint32_t)i + 1u;
}

static void pattern(void *buf, uint32_t seed)
{
	uint32_t *w = buf;

	for (size_t k = 0; k < WORDS_PER_PAGE; k++)
		w[k] = seed ? seed + (uint32_t)k : 0;
}

static int write_page(struct dmm_mm *mm, uint64_t addr, uint32_t seed)
{
	uint32_t w[WORDS_PER_PAGE];

	pattern(w, seed);
	return dmm_write(mm, addr, w, PG);
}

static void fill_page(struct scn *s, struct dmm_mm *mm, uint64_t addr, uint32_t seed)
{
	int rc = write_page(mm, addr, seed);

	(void)s;
	if (rc)
		SFAIL("setup: dmm_write(%#" PRIx64 ") = %d (%s)", addr, rc, errname(rc));
}

static void check_buf(struct scn *s, const void *buf, uint32_t seed, const char *what, uint64_t addr)
{
	const uint32_t *w = buf;

	(void)s;
	for (size_t k = 0; k < WORDS_PER_PAGE; k++) {
		uint32_t want = seed ? seed + (uint32_t)k : 0;

		if (w[k] != want)
			SFAIL("%s at %#" PRIx64 ": word %zu = %#x, expected %#x", what, addr, k, w[k], want);
	}
}

/* Read the page through the CPU (may fault: call after the entry checks). */
static void expect_data(struct scn *s, struct dmm_mm *mm, uint64_t addr, uint32_t seed)
{
	uint32_t w[WORDS_PER_PAGE];
	int rc;

	memset(w, 0xa5, sizeof(w));
	rc = dmm_read(mm, addr, w, PG);
	if (rc)
		SFAIL("dmm_read(%#" PRIx64 ") = %d (%s) after the operation", addr, rc, errname(rc));
	check_buf(s, w, seed, "data", addr);
}

/* ------------------------------------------------------------------------ */
/* The model                                                                 */

static struct mpage *add_page(struct scn *s, int who, uint64_t addr, uint32_t seed)
{
	struct mpage *p;

	if (s->npg == NP)
		SFAIL("model full");
	p = &s->pg[s->npg++];
	p->who = who;
	p->addr = addr;
	p->seed = seed;
	return p;
}

/* Fill and add n pages of region r at addr. */
static void add_filled(struct scn *s, int who, uint64_t addr, unsigned long n, int r)
{
	for (unsigned long i = 0; i < n; i++) {
		fill_page(s, mm_of(s, who), addr + i * PG, seed_of(r, (int)i));
		add_page(s, who, addr + i * PG, seed_of(r, (int)i));
	}
}

static void snapshot(struct scn *s)
{
	for (int i = 0; i < s->npg; i++)
		s->pg[i].before = pst(s, mm_of(s, s->pg[i].who), s->pg[i].addr);
	VMAS(s->mm, &s->vmas0);
	s->had_child = s->child != NULL;
	if (s->had_child)
		VMAS(s->child, &s->cvmas0);
	s->pool0 = dev_used(s);
}

static void expect_pte_same(struct scn *s, struct mpage *p, bool allow_wp)
{
	struct pstate now = pst(s, mm_of(s, p->who), p->addr);
	char b1[96], b2[96];

	if (!pst_same(now, p->before, allow_wp))
		SFAIL("%s entry at %#" PRIx64 " is %s, was %s", p->who ? "child" : "parent", p->addr,
		      pst_str(now, b1, sizeof(b1)), pst_str(p->before, b2, sizeof(b2)));
}

static void vmas_str(const struct vma_list *l, char *buf, size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < l->n && off < n; i++)
		off += (size_t)snprintf(buf + off, n - off, " [%#" PRIx64 ", %#" PRIx64 ") flags %#lx;", l->v[i].start,
					l->v[i].end, l->v[i].flags);
}

static void vmas_same_at(const char *file, int line, const char *who, const struct vma_list *was,
			 const struct vma_list *now)
{
	bool same = was->n == now->n;
	char b1[512], b2[512];

	for (int i = 0; same && i < was->n; i++) {
		const struct dmm_vma_info *x = &was->v[i], *y = &now->v[i];

		same = x->start == y->start && x->end == y->end && x->pgoff == y->pgoff && x->flags == y->flags &&
		       x->type == y->type && x->file == y->file;
	}
	if (!same) {
		vmas_str(was, b1, sizeof(b1));
		vmas_str(now, b2, sizeof(b2));
		sfail(file, line, "%s VMAs changed:\n  was:%s\n  now:%s", who, b1, b2);
	}
}

static void expect_vmas_same(struct scn *s)
{
	struct vma_list now;

	VMAS(s->mm, &now);
	vmas_same_at(__FILE__, __LINE__, "parent", &s->vmas0, &now);
	if (s->had_child) {
		VMAS(s->child, &now);
		vmas_same_at(__FILE__, __LINE__, "child", &s->cvmas0, &now);
	}
}

static void expect_all_data(struct scn *s)
{
	for (int i = 0; i < s->npg; i++)
		expect_data(s, mm_of(s, s->pg[i].who), s->pg[i].addr, s->pg[i].seed);
}

/* Nothing changed: entries, VMAs, device pool, then the data. */
static void expect_unchanged(struct scn *s, bool allow_wp)
{
	for (int i = 0; i < s->npg; i++)
		expect_pte_same(s, &s->pg[i], allow_wp);
	expect_vmas_same(s);
	SASSERT(dev_used(s) == s->pool0, "device pool %" PRIu64 " pages in use, was %" PRIu64, dev_used(s),
		s->pool0);
	expect_all_data(s);
}

static void unchanged_exact(struct scn *s)
{
	expect_unchanged(s, false);
}

/* ------------------------------------------------------------------------ */
/* Scenario lifetime                                                         */

static void scn_new(struct scn *s, const struct opdef *op, int site)
{
	struct dmm_system_config cfg = { .nr_frames = NFRAMES };
	int rc;

	memset(s, 0, sizeof(*s));
	s->op = op;
	s->site = site;
	cur = s;
	rc = dmm_system_create(&cfg, &s->sys);
	SASSERT(rc == 0, "dmm_system_create = %d", rc);
	s->free0 = dmm_system_nr_free(s->sys);
	rc = dmm_mm_create(s->sys, &s->mm);
	SASSERT(rc == 0, "dmm_mm_create = %d", rc);
	switch (op->drv) {
	case DRV_NONE:
		break;
	case TD_PRIV:
	case TD_COH:
		rc = testdrv_create(s->sys, op->drv == TD_PRIV ? DMM_MEMORY_DEVICE_PRIVATE : DMM_MEMORY_DEVICE_COHERENT,
				    DEV_PAGES, &s->drv);
		SASSERT(rc == 0, "testdrv_create = %d", rc);
		break;
	case MR_PRIV:
	case MR_COH:
	case MR_COH_COWDEV: {
		struct mirror_device_config mc = {
			.type = op->drv == MR_PRIV ? DMM_MEMORY_DEVICE_PRIVATE : DMM_MEMORY_DEVICE_COHERENT,
			.pages = DEV_PAGES, .chunk_pages = DEV_PAGES / 2,
			.cow = op->drv == MR_COH_COWDEV ? MIRROR_COW_DEVICE : MIRROR_COW_SYSTEM,
		};

		rc = mirror_device_create(s->sys, "sweep", &mc, &s->mdev);
		SASSERT(rc == 0, "mirror_device_create = %d", rc);
		rc = mirror_open(s->mdev, s->mm, &s->m);
		SASSERT(rc == 0, "mirror_open = %d", rc);
		break;
	}
	}
}

/* Tear the scenario down and check that nothing leaked. */
static void scn_finish(struct scn *s)
{
	struct dmm_stats st;
	unsigned long frees;

	if (s->npins)
		dmm_unpin_user_pages(s->sys, s->pins, s->npins);
	s->npins = 0;
	if (s->child)
		dmm_mm_exit(s->child);
	s->child = NULL;
	dmm_mm_exit(s->mm);
	s->mm = NULL;
	if (s->file)
		dmm_file_put(s->file);
	s->file = NULL;
	SCHECK(s, "after teardown");
	SASSERT(dev_used(s) == 0, "%" PRIu64 " device pages still in use after teardown", dev_used(s));
	if (s->drv) {
		SASSERT(dmm_pgmap_nr_allocated(s->drv->pgmap) == 0, "pgmap has %" PRIu64 " allocated pages",
			dmm_pgmap_nr_allocated(s->drv->pgmap));
		SASSERT(dmm_memunmap_pages_timeout(s->drv->pgmap, 1000) == 0, "memunmap_pages timed out");
		s->drv->pgmap = NULL;
	}
	frees = dev_frees(s);
	if (s->mdev) {
		mirror_device_destroy(s->mdev); /* closes the mirror; nothing to evict */
		s->mdev = NULL;
		s->m = NULL;
	}
	st = STATS(s->sys);
	SASSERT(dmm_system_nr_free(s->sys) == s->free0, "nr_free %" PRIu64 ", %" PRIu64 " at creation: frames leaked",
		dmm_system_nr_free(s->sys), s->free0);
	SASSERT(st.frames_alloc - st.frames_free == dmm_system_nr_frames(s->sys) - s->free0,
		"frames_alloc %" PRIu64 " - frames_free %" PRIu64 " do not balance", st.frames_alloc, st.frames_free);
	SASSERT(st.pin_pages == st.unpin_pages, "pin_pages %" PRIu64 " != unpin_pages %" PRIu64, st.pin_pages,
		st.unpin_pages);
	SASSERT(st.dev_page_alloc == st.dev_page_free, "dev_page_alloc %" PRIu64 " != dev_page_free %" PRIu64,
		st.dev_page_alloc, st.dev_page_free);
	SASSERT(frees == st.dev_page_free, "folio_free ran %lu times, dev_page_free %" PRIu64, frees,
		st.dev_page_free);
	dmm_system_destroy(s->sys);
	s->sys = NULL;
	testdrv_free(s->drv);
	s->drv = NULL;
	cur = NULL;
}

/* After a failed check: free what can be freed without hanging. */
static void scn_abort(struct scn *s)
{
	if (!s || !s->sys)
		return;
	for (int i = 0; i < DMM_NR_INJECT_SITES; i++) {
		struct dmm_inject_config off = { 0 };

		dmm_inject_set(s->sys, i, &off);
	}
	if (s->npins)
		dmm_unpin_user_pages(s->sys, s->pins, s->npins);
	if (s->child)
		dmm_mm_exit(s->child);
	if (s->mm)
		dmm_mm_exit(s->mm);
	if (s->file)
		dmm_file_put(s->file);
	if (s->drv && s->drv->pgmap) {
		testdrv_evict_all(s->drv);
		if (dmm_memunmap_pages_timeout(s->drv->pgmap, 100) == 0)
			s->drv->pgmap = NULL;
	}
	if (s->mdev && dev_used(s) == 0)
		mirror_device_destroy(s->mdev);
	/* else: the mirror device is leaked (its release would block) */
	dmm_system_destroy(s->sys);
	testdrv_free(s->drv);
	s->sys = NULL;
	cur = NULL;
}

/* ------------------------------------------------------------------------ */
/* Device helpers for setups                                                 */

static void setup_to_dev(struct scn *s, uint64_t addr, unsigned long n)
{
	if (s->drv) {
		unsigned long moved = 0;
		int rc = testdrv_migrate_to_dev(s->drv, s->mm, addr, n, &moved);

		SASSERT(rc == 0 && moved == n, "setup: testdrv_migrate_to_dev = %d, moved %lu of %lu", rc, moved, n);
	} else {
		struct mirror_result res;
		int rc = mirror_migrate_to_dev(s->m, addr, n, s->buf, &res);

		SASSERT(rc == 0 && res.cpages == n, "setup: mirror_migrate_to_dev = %d, cpages %" PRIu64, rc,
			res.cpages);
	}
	for (unsigned long i = 0; i < n; i++)
		SASSERT(on_device(s, pst(s, s->mm, addr + i * PG)), "setup: page %lu not on the device", i);
}

/* ------------------------------------------------------------------------ */
/* 1. CPU write fault on an anonymous hole / a zero-page mapping             */

#define NEW_SEED 0xa0000001u

static void setup_fault_hole(struct scn *s)
{
	MAP_ANON(s->mm, A, 1);
	add_page(s, 0, A, 0);
}

static void setup_fault_zero(struct scn *s)
{
	MAP_ANON(s->mm, A, 1);
	(void)LOAD(s->mm, A); /* maps the zero page */
	add_page(s, 0, A, 0);
}

static long op_write_first(struct scn *s)
{
	return write_page(mm_of(s, s->pg[0].who), s->pg[0].addr, NEW_SEED);
}

static void done_fault_anon(struct scn *s)
{
	struct pstate p = pst(s, s->mm, A);
	struct dmm_page_info pi = PAGE(s->sys, p.pfn);

	SASSERT(on_system(s, p) && p.write, "entry after the write fault: %s pfn %" PRIu64 " write %d",
		dmm_pte_kind_name(p.kind), p.pfn, p.write);
	SASSERT(pi.flags & DMM_PAGE_ANON, "the new page is not anonymous (flags %#x)", pi.flags);
	expect_vmas_same(s);
	expect_data(s, s->mm, A, NEW_SEED);
}

/* ------------------------------------------------------------------------ */
/* 2. Copy-on-write after fork                                               */

static void setup_cow_fork(struct scn *s)
{
	struct dmm_mm *child = NULL;
	int rc;

	MAP_ANON(s->mm, A, 2);
	fill_page(s, s->mm, A, seed_of(0, 0));
	fill_page(s, s->mm, A + PG, seed_of(0, 1));
	rc = dmm_fork(s->mm, &child);
	SASSERT(rc == 0, "setup: dmm_fork = %d", rc);
	s->child = child;
	/* The child's page first: the write goes to it. */
	add_page(s, 1, A, seed_of(0, 0));
	add_page(s, 1, A + PG, seed_of(0, 1));
	add_page(s, 0, A, seed_of(0, 0));
	add_page(s, 0, A + PG, seed_of(0, 1));
}

static void done_cow_fork(struct scn *s)
{
	struct pstate p = pst(s, s->child, A);

	SASSERT(on_system(s, p) && p.write, "child entry after CoW: %s write %d", dmm_pte_kind_name(p.kind), p.write);
	SASSERT(p.pfn != s->pg[2].before.pfn, "the child still maps the parent's page %" PRIu64, p.pfn);
	for (int i = 1; i < 4; i++)
		expect_pte_same(s, &s->pg[i], false);
	expect_vmas_same(s);
	s->pg[0].seed = NEW_SEED;
	expect_all_data(s);
}

/* ------------------------------------------------------------------------ */
/* 3. Page-cache faults                                                      */

static void setup_file(struct scn *s, int flags)
{
	int rc = dmm_file_create(s->sys, 2, &s->file);
	uint32_t w[WORDS_PER_PAGE];

	SASSERT(rc == 0, "setup: dmm_file_create = %d", rc);
	pattern(w, seed_of(1, 0));
	rc = dmm_file_pwrite(s->file, w, PG, 0); /* page 0 in the cache; page 1 not */
	SASSERT(rc == 0, "setup: pwrite = %d", rc);
	MAP_FIXED(s->mm, A, 2 * PG, RW, flags, s->file, 0);
	add_page(s, 0, A + PG, 0); /* the page the op faults (not cached yet) */
	add_page(s, 0, A, seed_of(1, 0));
}

static void expect_file(struct scn *s, uint32_t seed0, uint32_t seed1)
{
	uint32_t w[WORDS_PER_PAGE];
	int rc;

	rc = dmm_file_pread(s->file, w, PG, 0);
	SASSERT(rc == 0, "pread = %d", rc);
	check_buf(s, w, seed0, "file page 0", 0);
	rc = dmm_file_pread(s->file, w, PG, PG);
	SASSERT(rc == 0, "pread = %d", rc);
	check_buf(s, w, seed1, "file page 1", PG);
}

static void setup_file_shared(struct scn *s)
{
	setup_file(s, DMM_MAP_SHARED);
}

static void setup_file_private(struct scn *s)
{
	setup_file(s, DMM_MAP_PRIVATE);
}

static long op_read_first(struct scn *s)
{
	memset(s->buf, 0xa5, PG);
	return dmm_read(mm_of(s, s->pg[0].who), s->pg[0].addr, s->buf, PG);
}

static void done_file_read(struct scn *s)
{
	struct pstate p = pst(s, s->mm, A + PG);
	struct dmm_page_info pi = PAGE(s->sys, p.pfn);

	SASSERT(on_system(s, p) && (pi.flags & DMM_PAGE_PAGECACHE),
		"entry after the file fault: %s pfn %" PRIu64 " flags %#x", dmm_pte_kind_name(p.kind), p.pfn, pi.flags);
	check_buf(s, s->buf, 0, "bytes read", A + PG);
	expect_pte_same(s, &s->pg[1], false);
	expect_vmas_same(s);
	expect_all_data(s);
	expect_file(s, seed_of(1, 0), 0);
}

static void unchanged_file(struct scn *s)
{
	unchanged_exact(s);
	expect_file(s, seed_of(1, 0), 0);
}

static void done_file_cow(struct scn *s)
{
	struct pstate p = pst(s, s->mm, A + PG);
	struct dmm_page_info pi = PAGE(s->sys, p.pfn);

	SASSERT(on_system(s, p) && p.write && (pi.flags & DMM_PAGE_ANON) && !(pi.flags & DMM_PAGE_PAGECACHE),
		"entry after the private file write: %s pfn %" PRIu64 " W %d flags %#x", dmm_pte_kind_name(p.kind),
		p.pfn, p.write, pi.flags);
	expect_pte_same(s, &s->pg[1], false);
	expect_vmas_same(s);
	s->pg[0].seed = NEW_SEED;
	expect_all_data(s);
	expect_file(s, seed_of(1, 0), 0); /* a private write never reaches the file */
}

/* ------------------------------------------------------------------------ */
/* 4. fork of a process with private, shared and device-private pages        */

#define FORK_NPRIV 4
#define FORK_NSHARED 2
#define FORK_NDEV 2
#define FORK_PINNED 1 /* the pinned page of the private range: copied at fork */

static void setup_fork(struct scn *s)
{
	long n;

	MAP_ANON(s->mm, A, FORK_NPRIV);
	add_filled(s, 0, A, FORK_NPRIV, 0);
	MAP_FIXED(s->mm, R2, FORK_NSHARED * PG, RW, ANON_SHARED, NULL, 0);
	add_filled(s, 0, R2, FORK_NSHARED, 1);
	MAP_ANON(s->mm, R3, FORK_NDEV);
	add_filled(s, 0, R3, FORK_NDEV, 2);
	setup_to_dev(s, R3, FORK_NDEV);
	n = dmm_get_user_pages(s->mm, A + FORK_PINNED * PG, 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, s->pins);
	SASSERT(n == 1, "setup: pin = %ld", n);
	s->npins = 1;
}

static long op_fork(struct scn *s)
{
	struct dmm_mm *child = (struct dmm_mm *)(uintptr_t)0x1;
	int rc = dmm_fork(s->mm, &child);

	if (rc) {
		SASSERT(child == (struct dmm_mm *)(uintptr_t)0x1, "a failed fork wrote *child");
		return rc;
	}
	s->child = child;
	return 0;
}

static void done_fork(struct scn *s)
{
	struct vma_list cv;
	int nparent = s->npg;

	/* The parent: unchanged apart from write protection. */
	for (int i = 0; i < nparent; i++)
		expect_pte_same(s, &s->pg[i], true);
	expect_vmas_same(s);
	VMAS(s->child, &cv);
	vmas_same_at(__FILE__, __LINE__, "child (against the parent's)", &s->vmas0, &cv);
	SASSERT(dev_used(s) == s->pool0, "device pool changed by fork");
	/* The child's entries. */
	for (int i = 0; i < nparent; i++) {
		struct mpage *p = &s->pg[i];
		struct pstate c = pst(s, s->child, p->addr);
		char b1[96], b2[96];

		if (p->addr == A + FORK_PINNED * PG) {
			SASSERT(on_system(s, c) && c.pfn != p->before.pfn && c.write,
				"child of the pinned page: %s (parent %s): expected a fresh writable copy",
				pst_str(c, b1, sizeof(b1)), pst_str(p->before, b2, sizeof(b2)));
		} else if (p->addr >= A && p->addr < A + FORK_NPRIV * PG) {
			SASSERT(c.kind == DMM_PTE_PRESENT && c.pfn == p->before.pfn && !c.write,
				"child private entry %s, parent was %s", pst_str(c, b1, sizeof(b1)),
				pst_str(p->before, b2, sizeof(b2)));
		} else if (p->addr >= R3 && p->addr < R3 + FORK_NDEV * PG) {
			SASSERT(c.kind == DMM_PTE_DEVICE_PRIVATE_READ && c.pfn == p->before.pfn,
				"child device-private entry %s, parent was %s", pst_str(c, b1, sizeof(b1)),
				pst_str(p->before, b2, sizeof(b2)));
		} else {
			SASSERT(c.kind == DMM_PTE_NONE || (c.kind == DMM_PTE_PRESENT && c.pfn == p->before.pfn),
				"child shared entry %s, parent was %s", pst_str(c, b1, sizeof(b1)),
				pst_str(p->before, b2, sizeof(b2)));
		}
	}
	/* Data: both see everything; the shared range stays shared. */
	for (int i = 0; i < nparent; i++)
		add_page(s, 1, s->pg[i].addr, s->pg[i].seed);
	expect_all_data(s);
	OK(write_page(s->child, R2, NEW_SEED));
	expect_data(s, s->mm, R2, NEW_SEED);
	OK(write_page(s->child, A, NEW_SEED));
	expect_data(s, s->mm, A, seed_of(0, 0));
}

static void unchanged_fork(struct scn *s)
{
	struct dmm_page_info pi = PAGE(s->sys, s->pins[0]);

	SASSERT(s->rc == -ENOMEM, "fork failed with %ld (%s), expected -ENOMEM", s->rc, errname(s->rc));
	SASSERT(pi.pincount == 1, "the pinned page has pincount %u", pi.pincount);
	expect_unchanged(s, true); /* "unchanged apart from write protection" */
}

/* ------------------------------------------------------------------------ */
/* 5. Migration to the device (best effort)                                  */

/* Region A: pages 0-1 written, 2-3 holes in a PTE table not yet allocated.
 * Region R2: a fresh VMA never touched (no anon_vma, no tables). */
static void setup_to_dev_scn(struct scn *s)
{
	MAP_ANON(s->mm, A, 4);
	add_filled(s, 0, A, 2, 0);
	add_page(s, 0, A + 2 * PG, 0);
	add_page(s, 0, A + 3 * PG, 0);
	MAP_ANON(s->mm, R2, 2);
	add_page(s, 0, R2, 0);
	add_page(s, 0, R2 + PG, 0);
}

static long migrate_dev_range(struct scn *s, uint64_t addr, unsigned long n)
{
	if (s->drv) {
		unsigned long moved = 0;
		int rc = testdrv_migrate_to_dev(s->drv, s->mm, addr, n, &moved);

		s->moved += moved;
		return rc;
	} else {
		struct mirror_result res = { 0 };
		int rc;

		memset(s->buf, 0xa5, n * PG);
		rc = mirror_migrate_to_dev(s->m, addr, n, s->buf, &res);
		if (!rc) {
			for (unsigned long i = 0; i < n; i++)
				for (int j = 0; j < s->npg; j++)
					if (s->pg[j].addr == addr + i * PG)
						check_buf(s, s->buf + i * PG, s->pg[j].seed, "mirror buffer", s->pg[j].addr);
			s->moved += n;
		}
		return rc;
	}
}

static long op_to_dev(struct scn *s)
{
	long r1 = migrate_dev_range(s, A, 4);
	long r2 = migrate_dev_range(s, R2, 2);

	return r1 ? r1 : r2;
}

/* Every page is where it was or on the device; the pool counts the latter. */
static void check_to_dev(struct scn *s, bool all)
{
	uint64_t ondev = 0;

	for (int i = 0; i < s->npg; i++) {
		struct mpage *p = &s->pg[i];
		struct pstate now = pst(s, s->mm, p->addr);
		char b1[96], b2[96];

		if (on_device(s, now))
			ondev++;
		else if (all || !pst_same(now, p->before, false))
			SFAIL("page at %#" PRIx64 " is %s (was %s): expected %s", p->addr, pst_str(now, b1, sizeof(b1)),
			      pst_str(p->before, b2, sizeof(b2)), all ? "on the device" : "unchanged or on the device");
	}
	SASSERT(dev_used(s) == ondev, "device pool %" PRIu64 " in use, %" PRIu64 " pages mapped there", dev_used(s),
		ondev);
	expect_vmas_same(s);
	expect_all_data(s);
}

static void done_to_dev(struct scn *s)
{
	/* testdrv returns 0 for a partial migration: without an injected
	 * failure everything must have moved. */
	check_to_dev(s, !s->fired);
}

static void partial_to_dev(struct scn *s)
{
	check_to_dev(s, false);
}

/* ------------------------------------------------------------------------ */
/* 6. Migration back: migrate_to_sys and the CPU fault-back                  */

static void setup_on_dev(struct scn *s)
{
	MAP_ANON(s->mm, A, 4);
	add_filled(s, 0, A, 4, 0);
	setup_to_dev(s, A, 4);
}

static long op_to_sys(struct scn *s)
{
	if (s->drv)
		return testdrv_migrate_to_sys(s->drv, s->mm, A, 4, &s->moved);
	{
		struct mirror_result res = { 0 };
		int rc = mirror_migrate_to_sys(s->m, A, 4, &res);

		s->moved = res.cpages;
		return rc;
	}
}

static void done_to_sys(struct scn *s)
{
	SASSERT(s->moved == 4, "moved %lu of 4", s->moved);
	for (int i = 0; i < s->npg; i++) {
		struct pstate now = pst(s, s->mm, s->pg[i].addr);
		char b1[96];

		SASSERT(on_system(s, now), "page at %#" PRIx64 " is %s after migrate_to_sys", s->pg[i].addr,
			pst_str(now, b1, sizeof(b1)));
	}
	SASSERT(dev_used(s) == 0, "device pool %" PRIu64 " in use", dev_used(s));
	expect_vmas_same(s);
	expect_all_data(s);
}

static void unchanged_to_sys(struct scn *s)
{
	SASSERT(s->rc == -ENOMEM, "migrate_to_sys failed with %ld (%s)", s->rc, errname(s->rc));
	unchanged_exact(s);
}

/* The CPU touches page 1 of four device-private pages: a read, or (param
 * 1) a write of the whole page. */
static long op_fault_back(struct scn *s)
{
	if (s->op->param)
		return write_page(s->mm, A + PG, NEW_SEED);
	memset(s->buf, 0xa5, PG);
	return dmm_read(s->mm, A + PG, s->buf, PG);
}

static void done_fault_back(struct scn *s)
{
	struct pstate now = pst(s, s->mm, A + PG);
	char b1[96];

	SASSERT(on_system(s, now), "faulted page is %s", pst_str(now, b1, sizeof(b1)));
	if (s->op->param) {
		SASSERT(now.write, "written page is not writable: %s", pst_str(now, b1, sizeof(b1)));
		s->pg[1].seed = NEW_SEED;
	} else {
		check_buf(s, s->buf, seed_of(0, 1), "bytes read", A + PG);
	}
	for (int i = 0; i < s->npg; i++)
		if (i != 1)
			expect_pte_same(s, &s->pg[i], false);
	SASSERT(dev_used(s) == 3, "device pool %" PRIu64 " in use, expected 3", dev_used(s));
	expect_vmas_same(s);
	expect_all_data(s);
}

static void unchanged_fault_back(struct scn *s)
{
	int rc;

	SASSERT(s->rc == -ENOMEM, "the access failed with %ld (%s), expected -ENOMEM", s->rc, errname(s->rc));
	for (int i = 0; i < s->npg; i++)
		expect_pte_same(s, &s->pg[i], false);
	expect_vmas_same(s);
	SASSERT(dev_used(s) == s->pool0, "device pool changed");
	/* The page is intact on the device, and the retry succeeds. */
	rc = (int)op_fault_back(s);
	SASSERT(rc == 0, "retried access = %d (%s)", rc, errname(rc));
	if (s->op->param)
		s->pg[1].seed = NEW_SEED;
	else
		check_buf(s, s->buf, seed_of(0, 1), "bytes read on retry", A + PG);
	expect_all_data(s);
}

/* ------------------------------------------------------------------------ */
/* 7. mremap of a populated range                                            */

#define MR_DONTUNMAP 1
#define MR_PART 2 /* the moved range is the middle of a larger VMA */

/* A: present, device-private, zero page, hole; across a table boundary.
 * With MR_PART, the VMA has one more written page on each side. */
static void setup_mremap(struct scn *s)
{
	if (s->op->param & MR_PART)
		MAP_ANON(s->mm, A - PG, 6);
	else
		MAP_ANON(s->mm, A, 4);
	add_filled(s, 0, A, 2, 0);
	setup_to_dev(s, A + PG, 1);
	(void)LOAD(s->mm, A + 2 * PG);
	add_page(s, 0, A + 2 * PG, 0);
	add_page(s, 0, A + 3 * PG, 0);
	/* A neighbour that must stay as it is. */
	MAP_ANON(s->mm, R2, 1);
	add_filled(s, 0, R2, 1, 1);
	if (s->op->param & MR_PART) {
		add_filled(s, 0, A - PG, 1, 2);
		add_filled(s, 0, A + 4 * PG, 1, 3);
	}
}

static long op_mremap(struct scn *s)
{
	return dmm_mremap(s->mm, A, 4 * PG, 4 * PG,
			  DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED | ((s->op->param & MR_DONTUNMAP) ? DMM_MREMAP_DONTUNMAP : 0),
			  B);
}

static void done_mremap(struct scn *s)
{
	bool dontunmap = s->op->param & MR_DONTUNMAP, part = s->op->param & MR_PART;
	struct vma_list now;
	struct dmm_vma_info nv, ov;
	int nold = 0;

	for (int i = 0; i < 4; i++) {
		struct mpage *p = &s->pg[i];
		struct pstate at_new = pst(s, s->mm, B + (p->addr - A));
		struct pstate at_old = pst(s, s->mm, p->addr);
		char b1[96], b2[96];

		SASSERT(pst_same(at_new, p->before, false), "entry moved to %#" PRIx64 " is %s, was %s",
			B + (p->addr - A), pst_str(at_new, b1, sizeof(b1)), pst_str(p->before, b2, sizeof(b2)));
		SASSERT(at_old.kind == DMM_PTE_NONE, "old entry at %#" PRIx64 " is %s", p->addr,
			pst_str(at_old, b1, sizeof(b1)));
	}
	for (int i = 4; i < s->npg; i++)
		expect_pte_same(s, &s->pg[i], false);
	/* VMAs: the old one gone (or, with DONTUNMAP, still there) and one at B. */
	VMAS(s->mm, &now);
	nv = VMA(s->mm, B);
	SASSERT(nv.start == B && nv.end == B + 4 * PG, "new VMA [%#" PRIx64 ", %#" PRIx64 ")", nv.start, nv.end);
	if (dontunmap) {
		ov = VMA(s->mm, A);
		SASSERT(ov.start <= A && ov.end >= A + 4 * PG, "old VMA [%#" PRIx64 ", %#" PRIx64 ")", ov.start, ov.end);
		nold = 1;
	} else {
		UNMAPPED(s->mm, A);
		UNMAPPED(s->mm, A + 3 * PG);
	}
	if (part) {
		ov = VMA(s->mm, A - PG);
		SASSERT(ov.start == A - PG, "VMA below the moved range [%#" PRIx64 ", %#" PRIx64 ")", ov.start, ov.end);
		ov = VMA(s->mm, A + 4 * PG);
		SASSERT(ov.end == A + 5 * PG, "VMA above the moved range [%#" PRIx64 ", %#" PRIx64 ")", ov.start, ov.end);
		/* the old VMA merged back around the empty range, or split in two */
		nold = dontunmap ? 1 : 2;
	}
	SASSERT(now.n == s->vmas0.n + nold, "%d VMAs, expected %d", now.n, s->vmas0.n + nold);
	SASSERT(dev_used(s) == s->pool0, "device pool changed");
	for (int i = 0; i < 4; i++)
		expect_data(s, s->mm, B + (s->pg[i].addr - A), s->pg[i].seed);
	for (int i = 4; i < s->npg; i++)
		expect_data(s, s->mm, s->pg[i].addr, s->pg[i].seed);
	if (dontunmap)
		for (int i = 0; i < 4; i++)
			expect_data(s, s->mm, A + i * PG, 0);
}

static void unchanged_mremap(struct scn *s)
{
	SASSERT(s->rc == -ENOMEM, "mremap failed with %ld (%s)", s->rc, errname(s->rc));
	for (int i = 0; i < 4; i++) {
		struct pstate p = pst(s, s->mm, B + i * PG);

		SASSERT(p.kind == DMM_PTE_NONE, "target entry %d is %s", i, dmm_pte_kind_name(p.kind));
	}
	UNMAPPED(s->mm, B);
	unchanged_exact(s);
}

/* ------------------------------------------------------------------------ */
/* 8. FOLL_PIN | FOLL_LONGTERM on device-coherent pages                      */

static void setup_longterm(struct scn *s)
{
	MAP_ANON(s->mm, A, 3);
	add_filled(s, 0, A, 3, 0);
	setup_to_dev(s, A, 3);
}

/* Pages 0-1 on the coherent device, page 2 a hole in the next PTE table
 * (not allocated yet): the pin faults it in. */
static void setup_longterm_hole(struct scn *s)
{
	MAP_ANON(s->mm, A, 3);
	add_filled(s, 0, A, 2, 0);
	setup_to_dev(s, A, 2);
	add_page(s, 0, A + 2 * PG, 0);
}

static long op_longterm(struct scn *s)
{
	long n = dmm_get_user_pages(s->mm, A, 3, FOLL_LT, s->pfns);

	if (n > 0) {
		memcpy(s->pins, s->pfns, (size_t)n * sizeof(uint64_t));
		s->npins = (unsigned long)n;
		return 0;
	}
	return n;
}

/* Every page on the device (same page) or in system memory, data intact;
 * the first npinned pinned in system memory. */
static void check_longterm(struct scn *s, unsigned long npinned)
{
	uint64_t ondev = 0;

	for (int i = 0; i < s->npg; i++) {
		struct pstate now = pst(s, s->mm, s->pg[i].addr);
		struct dmm_page_info pi;
		char b1[96];

		if ((unsigned long)i < npinned) {
			SASSERT(on_system(s, now) && now.pfn == s->pins[i],
				"pinned page %d: entry %s, pin returned pfn %" PRIu64, i, pst_str(now, b1, sizeof(b1)),
				s->pins[i]);
		} else if (on_device(s, now)) {
			SASSERT(now.pfn == s->pg[i].before.pfn, "page %d moved to another device page", i);
			ondev++;
		} else {
			SASSERT(on_system(s, now) || pst_same(now, s->pg[i].before, false), "page %d is %s", i,
				pst_str(now, b1, sizeof(b1)));
		}
		pi = PAGE(s->sys, now.pfn);
		SASSERT(pi.pincount == ((unsigned long)i < npinned), "page %d pincount %u", i, pi.pincount);
	}
	SASSERT(dev_used(s) == ondev, "device pool %" PRIu64 " in use, %" PRIu64 " pages mapped there", dev_used(s),
		ondev);
	expect_vmas_same(s);
	expect_all_data(s);
}

static void done_longterm(struct scn *s)
{
	/* Partial success returns the count, but only an injected failure
	 * may cut the range short. */
	SASSERT(s->npins == 3 || (s->fired && s->npins > 0), "dmm_get_user_pages pinned %lu of 3", s->npins);
	check_longterm(s, s->npins);
}

static void unchanged_longterm(struct scn *s)
{
	SASSERT(s->rc == -EBUSY || s->rc == -ENOMEM, "long-term pin failed with %ld (%s)", s->rc, errname(s->rc));
	check_longterm(s, 0);
}

/* ------------------------------------------------------------------------ */
/* 9. mirror release                                                         */

/* Four pages on the device, shared with a child after fork. */
static void setup_release(struct scn *s)
{
	struct dmm_mm *child = NULL;
	int rc;

	MAP_ANON(s->mm, A, 4);
	add_filled(s, 0, A, 4, 0);
	setup_to_dev(s, A, 4);
	rc = dmm_fork(s->mm, &child);
	SASSERT(rc == 0, "setup: fork = %d", rc);
	s->child = child;
	for (int i = 0; i < 4; i++)
		add_page(s, 1, A + i * PG, seed_of(0, i));
}

static long op_release(struct scn *s)
{
	return mirror_release(s->mdev);
}

static void done_release(struct scn *s)
{
	for (int i = 0; i < s->npg; i++) {
		struct pstate now = pst(s, mm_of(s, s->pg[i].who), s->pg[i].addr);
		char b1[96];

		SASSERT(on_system(s, now), "%s page at %#" PRIx64 " is %s after release", s->pg[i].who ? "child" : "parent",
			s->pg[i].addr, pst_str(now, b1, sizeof(b1)));
	}
	SASSERT(dev_used(s) == 0, "device pool %" PRIu64 " in use after release", dev_used(s));
	expect_vmas_same(s);
	expect_all_data(s);
}

static void failed_release(struct scn *s)
{
	SFAIL("mirror_release failed with %ld (%s): a release must complete", s->rc, errname(s->rc));
}

/* ------------------------------------------------------------------------ */
/* 10. Copy-on-write of a coherent page (cow=device)                         */

static void setup_cow_coherent(struct scn *s)
{
	struct dmm_mm *child = NULL;
	int rc;

	MAP_ANON(s->mm, A, 2);
	fill_page(s, s->mm, A, seed_of(0, 0));
	fill_page(s, s->mm, A + PG, seed_of(0, 1));
	setup_to_dev(s, A, 2);
	rc = dmm_fork(s->mm, &child);
	SASSERT(rc == 0, "setup: fork = %d", rc);
	s->child = child;
	add_page(s, 1, A, seed_of(0, 0));
	add_page(s, 1, A + PG, seed_of(0, 1));
	add_page(s, 0, A, seed_of(0, 0));
	add_page(s, 0, A + PG, seed_of(0, 1));
}

static long op_cow_coherent(struct scn *s)
{
	struct dmm_inject_config always = { .probability = 1000000 }, off = { 0 };
	long r;

	if (s->op->param) /* the device has no room: cow_alloc always falls back */
		dmm_inject_set(s->sys, DMM_INJECT_COW_ALLOC, &always);
	r = op_write_first(s);
	if (s->op->param)
		dmm_inject_set(s->sys, DMM_INJECT_COW_ALLOC, &off);
	return r;
}

static void done_cow_coherent(struct scn *s)
{
	struct pstate p = pst(s, s->child, A);
	bool fallback = s->op->param || (s->site == DMM_INJECT_COW_ALLOC && s->fired);
	char b1[96];

	SASSERT(p.kind == DMM_PTE_PRESENT && p.write && p.pfn != s->pg[2].before.pfn,
		"child entry after CoW: %s", pst_str(p, b1, sizeof(b1)));
	if (fallback)
		SASSERT(on_system(s, p), "the copy should have fallen back to system memory: %s",
			pst_str(p, b1, sizeof(b1)));
	else
		SASSERT(on_device(s, p), "the copy should be on the device (cow=device): %s", pst_str(p, b1, sizeof(b1)));
	for (int i = 1; i < 4; i++)
		expect_pte_same(s, &s->pg[i], false);
	SASSERT(dev_used(s) == s->pool0 + !fallback, "device pool %" PRIu64 ", was %" PRIu64, dev_used(s), s->pool0);
	expect_vmas_same(s);
	s->pg[0].seed = NEW_SEED;
	expect_all_data(s);
}

/* ------------------------------------------------------------------------ */
/* The operations                                                            */

#define S_BASE ((1u << DMM_INJECT_FRAME) | (1u << DMM_INJECT_PGTABLE) | (1u << DMM_INJECT_META))
#define S_M2R (S_BASE | (1u << DMM_INJECT_MIGRATE_TO_RAM))
#define S_COW (S_BASE | (1u << DMM_INJECT_COW_ALLOC))

static const struct opdef ops[] = {
	{ "fault/anon-hole", DRV_NONE, S_BASE, 0, setup_fault_hole, op_write_first, done_fault_anon, unchanged_exact },
	{ "fault/zero-page", DRV_NONE, S_BASE, 0, setup_fault_zero, op_write_first, done_fault_anon, unchanged_exact },
	{ "fault/cow-after-fork", DRV_NONE, S_BASE, 0, setup_cow_fork, op_write_first, done_cow_fork, unchanged_exact },
	{ "fault/file-shared-read", DRV_NONE, S_BASE, 0, setup_file_shared, op_read_first, done_file_read, unchanged_file },
	{ "fault/file-private-write", DRV_NONE, S_BASE, 0, setup_file_private, op_write_first, done_file_cow,
	  unchanged_file },
	{ "fork", TD_PRIV, S_BASE, 0, setup_fork, op_fork, done_fork, unchanged_fork },
	{ "fork", MR_PRIV, S_BASE, 0, setup_fork, op_fork, done_fork, unchanged_fork },
	{ "migrate-to-dev", TD_PRIV, S_BASE, 0, setup_to_dev_scn, op_to_dev, done_to_dev, partial_to_dev },
	{ "migrate-to-dev", TD_COH, S_BASE, 0, setup_to_dev_scn, op_to_dev, done_to_dev, partial_to_dev },
	{ "migrate-to-dev", MR_PRIV, S_BASE, 0, setup_to_dev_scn, op_to_dev, done_to_dev, partial_to_dev },
	{ "migrate-to-dev", MR_COH, S_BASE, 0, setup_to_dev_scn, op_to_dev, done_to_dev, partial_to_dev },
	{ "migrate-to-sys", TD_PRIV, S_BASE, 0, setup_on_dev, op_to_sys, done_to_sys, unchanged_to_sys },
	{ "migrate-to-sys", TD_COH, S_BASE, 0, setup_on_dev, op_to_sys, done_to_sys, unchanged_to_sys },
	{ "migrate-to-sys", MR_PRIV, S_BASE, 0, setup_on_dev, op_to_sys, done_to_sys, unchanged_to_sys },
	{ "migrate-to-sys", MR_COH, S_BASE, 0, setup_on_dev, op_to_sys, done_to_sys, unchanged_to_sys },
	{ "fault-back", TD_PRIV, S_M2R, 0, setup_on_dev, op_fault_back, done_fault_back, unchanged_fault_back },
	{ "fault-back", MR_PRIV, S_M2R, 0, setup_on_dev, op_fault_back, done_fault_back, unchanged_fault_back },
	{ "fault-back/write", TD_PRIV, S_M2R, 1, setup_on_dev, op_fault_back, done_fault_back, unchanged_fault_back },
	{ "fault-back/write", MR_PRIV, S_M2R, 1, setup_on_dev, op_fault_back, done_fault_back, unchanged_fault_back },
	{ "mremap", TD_PRIV, S_BASE, 0, setup_mremap, op_mremap, done_mremap, unchanged_mremap },
	{ "mremap/dontunmap", TD_PRIV, S_BASE, MR_DONTUNMAP, setup_mremap, op_mremap, done_mremap, unchanged_mremap },
	{ "mremap/part", TD_PRIV, S_BASE, MR_PART, setup_mremap, op_mremap, done_mremap, unchanged_mremap },
	{ "mremap/part-dontunmap", TD_PRIV, S_BASE, MR_PART | MR_DONTUNMAP, setup_mremap, op_mremap, done_mremap,
	  unchanged_mremap },
	{ "gup-longterm", TD_COH, S_BASE, 0, setup_longterm, op_longterm, done_longterm, unchanged_longterm },
	{ "gup-longterm", MR_COH, S_BASE, 0, setup_longterm, op_longterm, done_longterm, unchanged_longterm },
	{ "gup-longterm/hole", TD_COH, S_BASE, 0, setup_longterm_hole, op_longterm, done_longterm, unchanged_longterm },
	{ "mirror-release", MR_PRIV, S_BASE, 0, setup_release, op_release, done_release, failed_release },
	{ "mirror-release", MR_COH, S_BASE, 0, setup_release, op_release, done_release, failed_release },
	{ "cow-coherent", MR_COH_COWDEV, S_COW, 0, setup_cow_coherent, op_cow_coherent, done_cow_coherent,
	  unchanged_exact },
	{ "cow-coherent/fallback", MR_COH_COWDEV, S_BASE, 1, setup_cow_coherent, op_cow_coherent, done_cow_coherent,
	  unchanged_exact },
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* ------------------------------------------------------------------------ */
/* The sweep                                                                 */

struct result {
	const struct opdef *op;
	int site;
	int points;   /* N at which a failure was injected */
	int failed;   /* ... and the operation returned an error */
	int absorbed; /* ... and the operation still succeeded */
	int status;   /* 0 not run, 1 passed, -1 failed */
	int at;       /* the N being run (the failing one when status < 0) */
	char name[96];
};

static struct result results[NOPS * DMM_NR_INJECT_SITES];
static int nresults;

static void sweep(struct result *res)
{
	const struct opdef *op = res->op;
	static struct scn scn;
	struct scn *s = &scn;
	int n;

	res->status = -1;
	for (n = 1; n <= MAXN; n++) {
		struct dmm_inject_config arm = { .countdown = (unsigned long)n }, off = { 0 };
		uint64_t inj0;

		res->at = n;
		snprintf(ctx, sizeof(ctx), "%s %s, site %s, N=%d", op->name, drv_names[op->drv], site_names[res->site], n);
		scn_new(s, op, res->site);
		s->n = (unsigned long)n;
		op->setup(s);
		SCHECK(s, "after setup");
		snapshot(s);
		inj0 = dmm_inject_count(s->sys, res->site);
		dmm_inject_set(s->sys, res->site, &arm);
		s->rc = op->op(s);
		dmm_inject_set(s->sys, res->site, &off);
		s->fired = dmm_inject_count(s->sys, res->site) != inj0;
		SCHECK(s, "after the operation");
		if (s->rc < 0) {
			SASSERT(s->fired, "the operation failed with %ld (%s) without an injected failure", s->rc,
				errname(s->rc));
			op->unchanged(s);
			res->failed++;
		} else {
			op->done(s);
			res->absorbed += s->fired;
		}
		SCHECK(s, "after verification");
		scn_finish(s);
		if (!s->fired)
			break;
		res->points++;
	}
	SASSERT(n <= MAXN, "still failing at N=%d", MAXN);
	res->status = 1;
}

static void test_sweep(void **state)
{
	sweep(*state);
}

static int sweep_teardown(void **state)
{
	(void)state;
	scn_abort(cur);
	return 0;
}

static void print_summary(void)
{
	int total = 0;

	printf("\nFault-injection sweep: failure points N exercised per operation and site\n");
	printf("%-28s %-24s %-15s %6s %6s %8s  %s\n", "operation", "driver", "site", "points", "failed", "absorbed",
	       "result");
	for (int i = 0; i < nresults; i++) {
		struct result *r = &results[i];

		printf("%-28s %-24s %-15s %6d %6d %8d  %s\n", r->op->name, drv_names[r->op->drv][0] ? drv_names[r->op->drv] : "-",
		       site_names[r->site], r->points, r->failed, r->absorbed,
		       r->status > 0 ? "ok" : r->status < 0 ? "FAIL" : "not run");
		if (r->status < 0)
			printf("%-28s %-24s %-15s   (failed at N=%d; points counts the N before it)\n", "", "", "", r->at);
		total += r->points;
	}
	printf("total failure points: %d\n", total);
	fflush(stdout);
}

int main(void)
{
	static struct CMUnitTest tests[NOPS * DMM_NR_INJECT_SITES];
	int rc;

	for (size_t i = 0; i < NOPS; i++) {
		for (int site = 0; site < DMM_NR_INJECT_SITES; site++) {
			struct result *r;

			if (!(ops[i].sites & (1u << site)))
				continue;
			r = &results[nresults];
			r->op = &ops[i];
			r->site = site;
			snprintf(r->name, sizeof(r->name), "%s%s%s/%s", ops[i].name, ops[i].drv ? "/" : "",
				 drv_names[ops[i].drv], site_names[site]);
			tests[nresults] = (struct CMUnitTest){ r->name, test_sweep, NULL, sweep_teardown, r };
			nresults++;
		}
	}
	rc = _cmocka_run_group_tests("sweep", tests, (size_t)nresults, NULL, NULL);
	print_summary();
	return rc;
}
