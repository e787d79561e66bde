/* SPDX-License-Identifier: MIT */
/*
 * The HMM guarantee under concurrency (semantics.md §3.13, §3.14, invariants
 * 9-11): a device mirror that follows the interval-notifier protocol never
 * keeps a translation the CPU no longer has.
 *
 * The "shadow mirror" is a small device page table for one address space:
 * per page a pfn and a writable bit, under the mirror's mutex, with a
 * version that changes whenever the entry is programmed or erased. Its
 * interval notifier's callback takes the mutex, calls set_seq and erases
 * the entries in the range. Mirror threads run the collision-retry loop of
 * §3.13 over random windows:
 *
 *   read_begin; mmap_read_lock; hmm_range_fault(REQ_FAULT [|REQ_WRITE]);
 *   unlock; -EBUSY -> retry (bounded by a 1 s timeout, as the kernel's
 *   test driver does); lock mutex; read_retry -> retry; program; unlock
 *
 * while other threads munmap+mmap pieces of the range, mprotect them, fork
 * (the child writes to its copy and exits later), write through the CPU,
 * migrate pages to and from a device-private testdrv, and make pages
 * device-exclusive.
 *
 * The check: take a snapshot of the mirror under its mutex, read every
 * mapped entry's CPU PTE with dmm_pte_query (no lock of ours held, so no
 * lock-order inversion with the callbacks), then under the mutex again
 * compare each entry whose version did not change meanwhile: the CPU maps
 * the same pfn (present, or the device-private page the mirror owns), and
 * the mirror is writable only if the CPU entry is. An unchanged version
 * proves no invalidation touched the entry while its PTE was read: since
 * the callback runs before any PTE change that removes access, such a
 * change would have bumped it.
 *
 * Every CPU write is made under a per-page test lock after a read that
 * must match a shadow of the data; at the end of each round (threads
 * joined) every word is checked against the shadow, the mirror is checked
 * once more, and dmm_check must pass.
 *
 * The seed is printed; DEVMM_SEED repeats a run (interleavings still vary).
 * DEVMM_MIRROR_MS sets the length of a round (default 600 ms);
 * DEVMM_MIRROR_THREADS, a bit mask in the order of fns[] below, runs a
 * subset of the threads (for bisecting a failure). A watchdog turns a
 * thread that does not stop (a livelock, e.g. a migration entry left on an
 * unlocked page, or a deadlock) into a failure that names what each stuck
 * thread was doing.
 *
 * A second test races the first subscription of an mm with a driver's
 * eviction, whose rmap walk changes the mm's entries without its mmap_lock:
 * every invalidation's start and end must still pair up.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "testdrv.h"

#define NPAGES 64
#define PIECE 4 /* pages per munmap/mmap/mprotect piece */
#define NPIECES (NPAGES / PIECE)
#define BASE TBASE
#define ADDR(i) (BASE + (uint64_t)(i) * DMM_PAGE_SIZE)
#define DEV_PAGES 128
#define NMIRROR 2
#define ROUNDS 3
#define MAXWIN 8

/* ------------------------------------------------------------------------ */
/* The shadow mirror                                                         */

struct mentry {
	bool valid, write;
	uint64_t pfn;
	uint64_t ver;
};

struct mirror {
	struct dmm_mmu_interval_notifier sub; /* first */
	pthread_mutex_t lock;
	struct mentry e[NPAGES];
	uint64_t invalidations;
};

struct ctx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct testdrv *drv;
	struct mirror mir;
	pthread_mutex_t plock[NPAGES]; /* CPU data of page i, and shadow[i] */
	uint32_t shadow[NPAGES][WORDS_PER_PAGE];
	atomic_bool stop;
	atomic_bool failed;
	pthread_mutex_t err_lock;
	char err[1024];
	uint64_t seed;
	/* counters */
	atomic_ulong programmed, ebusy, retries, timeouts, hmm_err, checks, compared;
	atomic_ulong writes, remaps, mprotects, forks, fork_fail, migrations, exclusives;
};

static void cfail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cfail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->err_lock);
	if (!atomic_load(&c->failed)) {
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
		atomic_store(&c->failed, true);
	}
	pthread_mutex_unlock(&c->err_lock);
	atomic_store(&c->stop, true);
}

static bool mirror_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			      unsigned long cur_seq)
{
	struct mirror *m = (struct mirror *)sub;
	uint64_t s = r->start < BASE ? BASE : r->start;
	uint64_t e = r->end > ADDR(NPAGES) ? ADDR(NPAGES) : r->end;

	pthread_mutex_lock(&m->lock);
	dmm_mmu_interval_set_seq(sub, cur_seq);
	m->invalidations++;
	for (uint64_t a = s & DMM_PAGE_MASK; a < e; a += DMM_PAGE_SIZE) {
		struct mentry *me = &m->e[(a - BASE) >> DMM_PAGE_SHIFT];

		if (me->valid) {
			me->valid = false;
			me->ver++;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops mirror_ops = { .invalidate = mirror_invalidate };

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void tiny_sleep(uint64_t *rng)
{
	struct timespec ts = { 0, (long)(rnd(rng) % 200) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * The HMM guarantee, checked without holding the mirror's mutex across
 * dmm_pte_query (which takes mmap_lock: holding the mutex there could
 * deadlock against an invalidation holding mmap_lock for write).
 */
static void mirror_check(struct ctx *c, const char *when)
{
	struct mentry snap[NPAGES];
	struct dmm_pte_info pte[NPAGES];
	struct mirror *m = &c->mir;

	pthread_mutex_lock(&m->lock);
	memcpy(snap, m->e, sizeof(snap));
	pthread_mutex_unlock(&m->lock);
	for (int i = 0; i < NPAGES; i++) {
		memset(&pte[i], 0, sizeof(pte[i]));
		if (snap[i].valid && dmm_pte_query(c->mm, ADDR(i), &pte[i])) {
			cfail(c, "%s: dmm_pte_query(page %d) failed", when, i);
			return;
		}
	}
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < NPAGES; i++) {
		const struct mentry *now = &m->e[i];
		const struct dmm_pte_info *p = &pte[i];
		bool cpu_write, same;

		if (!snap[i].valid || !now->valid || now->ver != snap[i].ver)
			continue; /* erased or reprogrammed meanwhile: not comparable */
		atomic_fetch_add(&c->compared, 1);
		switch (p->kind) {
		case DMM_PTE_PRESENT:
			cpu_write = p->write;
			same = p->pfn == snap[i].pfn;
			break;
		case DMM_PTE_DEVICE_PRIVATE_READ:
		case DMM_PTE_DEVICE_PRIVATE_WRITE:
			/* Only the mirror's own device page, reported by hmm. */
			cpu_write = p->kind == DMM_PTE_DEVICE_PRIVATE_WRITE;
			same = p->pfn == snap[i].pfn && testdrv_owns(c->drv, p->pfn);
			break;
		default:
			cpu_write = false;
			same = false;
			break;
		}
		if (!same || (snap[i].write && !cpu_write)) {
			pthread_mutex_unlock(&m->lock);
			cfail(c,
			     "%s: HMM guarantee broken at page %d (%#" PRIx64 "): mirror maps pfn %" PRIu64
			     "%s, the CPU entry is %s pfn %" PRIu64 "%s",
			     when, i, ADDR(i), snap[i].pfn, snap[i].write ? " writable" : " read-only",
			     dmm_pte_kind_name(p->kind), p->pfn, cpu_write ? " writable" : "");
			return;
		}
	}
	pthread_mutex_unlock(&m->lock);
	atomic_fetch_add(&c->checks, 1);
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                   */

typedef void *(*thread_fn)(void *);

struct thr {
	struct ctx *c;
	int id;
	uint64_t rng;
	pthread_t th;
	thread_fn fn;
	const char *name;
	_Atomic(const char *) op; /* what it is doing now, for the watchdog */
	atomic_bool done;
};

#define DOING(t, what) atomic_store(&(t)->op, (const char *)(what))

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	t->fn(arg);
	DOING(t, "finished");
	atomic_store(&t->done, true);
	return NULL;
}

/* One window through the collision-retry loop. */
static void mirror_fault_window(struct thr *t, struct ctx *c, uint64_t *rng)
{
	uint64_t pfns[MAXWIN];
	unsigned int n = 1 + (unsigned int)(rnd(rng) % MAXWIN);
	unsigned int first = (unsigned int)(rnd(rng) % (NPAGES - n + 1));
	bool write = rnd(rng) % 2;
	void *owner = rnd(rng) % 4 ? (void *)c->drv : NULL;
	uint64_t req = DMM_HMM_PFN_REQ_FAULT | (write ? DMM_HMM_PFN_REQ_WRITE : 0);
	uint64_t t0 = now_ms();
	struct dmm_hmm_range r = {
		.notifier = &c->mir.sub, .start = ADDR(first), .end = ADDR(first + n),
		.hmm_pfns = pfns, .default_flags = req, .pfn_flags_mask = 0, .dev_private_owner = owner,
	};

	for (;;) {
		int rc;

		if (now_ms() - t0 > 1000) {
			atomic_fetch_add(&c->timeouts, 1);
			return;
		}
		memset(pfns, 0, sizeof(pfns));
		DOING(t, "mirror: read_begin");
		r.notifier_seq = dmm_mmu_interval_read_begin(&c->mir.sub);
		DOING(t, "mirror: hmm_range_fault");
		dmm_mmap_read_lock(c->mm);
		rc = dmm_hmm_range_fault(&r);
		dmm_mmap_read_unlock(c->mm);
		DOING(t, "mirror: programming");
		if (rc == -EBUSY) {
			atomic_fetch_add(&c->ebusy, 1);
			continue;
		}
		if (rc == -EFAULT || rc == -EPERM) {
			/* A piece unmapped or read-only right now. */
			atomic_fetch_add(&c->hmm_err, 1);
			return;
		}
		if (rc) {
			cfail(c, "hmm_range_fault([%u, %u)) = %d", first, first + n, rc);
			return;
		}
		/* Invariant 11, checked on the raw result. */
		for (unsigned int i = 0; i < n; i++) {
			uint64_t w = pfns[i], pfn = dmm_hmm_pfn_to_pfn(w);
			bool dev = testdrv_owns(c->drv, pfn);

			if (!(w & DMM_HMM_PFN_VALID) || (w & DMM_HMM_PFN_ERROR)) {
				cfail(c, "hmm page %u: %#" PRIx64 " not valid after a successful fault", first + i, w);
				return;
			}
			if (dev && owner != c->drv) {
				cfail(c, "hmm page %u: device pfn %" PRIu64 " returned to a non-owner", first + i, pfn);
				return;
			}
			if (write && !(w & DMM_HMM_PFN_WRITE) && !dev) {
				cfail(c, "hmm page %u: %#" PRIx64 " not writable after REQ_WRITE", first + i, w);
				return;
			}
		}
		pthread_mutex_lock(&c->mir.lock);
		if (dmm_mmu_interval_read_retry(&c->mir.sub, r.notifier_seq)) {
			pthread_mutex_unlock(&c->mir.lock);
			atomic_fetch_add(&c->retries, 1);
			continue;
		}
		for (unsigned int i = 0; i < n; i++) {
			struct mentry *me = &c->mir.e[first + i];

			me->valid = true;
			me->pfn = dmm_hmm_pfn_to_pfn(pfns[i]);
			me->write = pfns[i] & DMM_HMM_PFN_WRITE;
			me->ver++;
		}
		pthread_mutex_unlock(&c->mir.lock);
		atomic_fetch_add(&c->programmed, n);
		return;
	}
}

static void *mirror_thread(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;

	for (unsigned long k = 0; !atomic_load(&c->stop); k++) {
		mirror_fault_window(t, c, &t->rng);
		if (k % 8 == 7) {
			DOING(t, "mirror: check");
			mirror_check(c, "mirror thread");
		}
	}
	return NULL;
}

/* CPU writes, each after a read that must match the shadow. */
static void *writer_thread(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;

	while (!atomic_load(&c->stop)) {
		int i = (int)(rnd(&t->rng) % NPAGES);
		unsigned int w = (unsigned int)(rnd(&t->rng) % WORDS_PER_PAGE);
		uint64_t addr = ADDR(i) + w * 4;
		uint32_t v = 0, nv = (uint32_t)rnd(&t->rng);
		int r;

		DOING(t, "writer: page lock");
		pthread_mutex_lock(&c->plock[i]);
		DOING(t, "writer: load32/store32");
		r = dmm_load32(c->mm, addr, &v);
		if (r || v != c->shadow[i][w]) {
			pthread_mutex_unlock(&c->plock[i]);
			cfail(c, "load of page %d word %u = %d, %#x, expected %#x", i, w, r, v, c->shadow[i][w]);
			break;
		}
		r = dmm_store32(c->mm, addr, nv);
		if (r == 0)
			c->shadow[i][w] = nv;
		pthread_mutex_unlock(&c->plock[i]);
		if (r && r != -EFAULT) { /* -EFAULT: read-only right now */
			cfail(c, "store to page %d = %d", i, r);
			break;
		}
		atomic_fetch_add(&c->writes, 1);
	}
	return NULL;
}

/* munmap + mmap (or MAP_FIXED over) a piece: new zero memory. */
static void *remap_thread(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;

	while (!atomic_load(&c->stop)) {
		int p = (int)(rnd(&t->rng) % NPIECES);
		uint64_t a = ADDR(p * PIECE), out = 0;
		int r = 0;

		DOING(t, "remap: page locks");
		for (int i = 0; i < PIECE; i++)
			pthread_mutex_lock(&c->plock[p * PIECE + i]);
		DOING(t, "remap: munmap/mmap");
		if (rnd(&t->rng) % 2)
			r = dmm_munmap(c->mm, a, PIECE * DMM_PAGE_SIZE);
		if (!r)
			r = dmm_mmap(c->mm, a, PIECE * DMM_PAGE_SIZE, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, &out);
		if (!r)
			memset(c->shadow[p * PIECE], 0, sizeof(c->shadow[0]) * PIECE);
		for (int i = PIECE - 1; i >= 0; i--)
			pthread_mutex_unlock(&c->plock[p * PIECE + i]);
		if (r) {
			cfail(c, "remap of piece %d = %d", p, r);
			break;
		}
		atomic_fetch_add(&c->remaps, 1);
		tiny_sleep(&t->rng);
	}
	return NULL;
}

static void *mprotect_thread(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;

	while (!atomic_load(&c->stop)) {
		int p = (int)(rnd(&t->rng) % NPIECES);
		uint64_t a = ADDR(p * PIECE);
		int r;

		DOING(t, "mprotect");
		r = dmm_mprotect(c->mm, a, PIECE * DMM_PAGE_SIZE, DMM_PROT_READ);

		if (r && r != -ENOMEM) { /* -ENOMEM: the piece is being remapped */
			cfail(c, "mprotect(READ) of piece %d = %d", p, r);
			break;
		}
		tiny_sleep(&t->rng);
		r = dmm_mprotect(c->mm, a, PIECE * DMM_PAGE_SIZE, RW);
		if (r && r != -ENOMEM) {
			cfail(c, "mprotect(RW) of piece %d = %d", p, r);
			break;
		}
		atomic_fetch_add(&c->mprotects, 1);
		tiny_sleep(&t->rng);
	}
	return NULL;
}

/* fork; the child writes to its copy (CoW in the child only), reads some
 * pages (device-private pages come back), then exits. */
static void *fork_thread(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;

	while (!atomic_load(&c->stop)) {
		struct dmm_mm *child = NULL;
		int r;

		DOING(t, "fork");
		r = dmm_fork(c->mm, &child);

		if (r == -ENOMEM) { /* a device-exclusive page was locked */
			atomic_fetch_add(&c->fork_fail, 1);
			tiny_sleep(&t->rng);
			continue;
		}
		if (r) {
			cfail(c, "fork = %d", r);
			break;
		}
		DOING(t, "fork: child access");
		for (int k = 0; k < 8; k++) {
			uint64_t a = ADDR(rnd(&t->rng) % NPAGES);
			uint32_t v;

			if (k % 2)
				(void)dmm_store32(child, a, 0xc0ffee);
			else
				(void)dmm_load32(child, a, &v);
		}
		tiny_sleep(&t->rng);
		DOING(t, "fork: child exit");
		dmm_mm_exit(child);
		atomic_fetch_add(&c->forks, 1);
	}
	return NULL;
}

static void *migrate_thread(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;

	while (!atomic_load(&c->stop)) {
		unsigned long n = 1 + rnd(&t->rng) % PIECE;
		uint64_t a = ADDR(rnd(&t->rng) % (NPAGES - n + 1));
		unsigned long moved = 0;
		int r;

		DOING(t, "migrate");
		if (rnd(&t->rng) % 3)
			r = testdrv_migrate_to_dev(c->drv, c->mm, a, n, &moved);
		else
			r = testdrv_migrate_to_sys(c->drv, c->mm, a, n, &moved);
		/* -EINVAL: the window crosses a VMA boundary or a hole now;
		 * -ENOMEM: no system page for the way back. */
		if (r && r != -EINVAL && r != -ENOMEM) {
			cfail(c, "migration of %lu pages at %#" PRIx64 " = %d", n, a, r);
			break;
		}
		atomic_fetch_add(&c->migrations, moved);
		tiny_sleep(&t->rng);
	}
	return NULL;
}

/* Device atomics: make a page exclusive and give it back at once. */
static void *exclusive_thread(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;
	int token;

	while (!atomic_load(&c->stop)) {
		uint64_t a = ADDR(rnd(&t->rng) % NPAGES), pfn = 0;
		int r;

		DOING(t, "make_device_exclusive");
		dmm_mmap_read_lock(c->mm);
		r = dmm_make_device_exclusive(c->mm, a, &token, &pfn);
		dmm_mmap_read_unlock(c->mm);
		if (r == 0) {
			DOING(t, "exclusive: holding the page lock");
			tiny_sleep(&t->rng); /* "programming the device" with the page locked */
			dmm_unlock_page(c->sys, pfn);
			dmm_put_page(c->sys, pfn);
			atomic_fetch_add(&c->exclusives, 1);
		} else if (r != -EFAULT) { /* -EFAULT: read-only or unmapped now */
			cfail(c, "make_device_exclusive(%#" PRIx64 ") = %d", a, r);
			break;
		}
		tiny_sleep(&t->rng);
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */

static uint64_t mirror_seed(void)
{
	const char *s = getenv("DEVMM_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static uint64_t round_ms(void)
{
	const char *s = getenv("DEVMM_MIRROR_MS");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return 600;
}

/*
 * The threads were told to stop: give them WATCHDOG_MS to do so. A thread
 * that doesn't is stuck (a livelock or a deadlock, in devmm or here): fail
 * with what each thread is doing and the seed, rather than hang until the
 * test harness kills the run without a word.
 */
#define WATCHDOG_MS 60000

static void watchdog(struct ctx *c, struct thr *thr, int n, int round)
{
	uint64_t t0 = now_ms();
	char msg[1024];
	size_t len = 0;
	bool all;

	do {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		all = true;
		for (int i = 0; i < n; i++)
			all = all && atomic_load(&thr[i].done);
		if (all)
			return;
		nanosleep(&ts, NULL);
	} while (now_ms() - t0 < WATCHDOG_MS);
	for (int i = 0; i < n && len < sizeof(msg); i++)
		if (!atomic_load(&thr[i].done))
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s: %s", len ? "; " : "",
						thr[i].name, atomic_load(&thr[i].op));
	fprintf(stderr, "test_concurrency_mirror: round %d (seed %" PRIu64 "): threads stuck %d s after stop: %s\n",
		round, c->seed, WATCHDOG_MS / 1000, msg);
	fflush(NULL);
	/* The stuck threads still use the system and this frame: no cmocka
	 * unwinding, end the process here (a failure for meson). */
	_exit(1);
}

/* DEVMM_MIRROR_THREADS: a bit mask of the threads to run (debugging). */
static unsigned int thread_mask(void)
{
	const char *s = getenv("DEVMM_MIRROR_THREADS");

	return s && *s ? (unsigned int)strtoul(s, NULL, 0) : ~0u;
}

/* Quiescent: every word against the shadow. */
static void verify_data(struct ctx *c, int round)
{
	static uint32_t buf[WORDS_PER_PAGE];

	for (int i = 0; i < NPAGES; i++) {
		OK(dmm_read(c->mm, ADDR(i), buf, sizeof(buf)));
		for (size_t k = 0; k < WORDS_PER_PAGE; k++)
			if (buf[k] != c->shadow[i][k])
				fail_msg("round %d (seed %" PRIu64 "): page %d word %zu = %#x, expected %#x", round,
					 c->seed, i, k, buf[k], c->shadow[i][k]);
	}
}

static void test_mirror_never_keeps_a_translation_the_cpu_no_longer_has(void **state)
{
	static const thread_fn fns[] = { mirror_thread, mirror_thread, writer_thread, remap_thread,
					 mprotect_thread, fork_thread, migrate_thread, exclusive_thread };
	static const char *const names[] = { "mirror 0", "mirror 1", "writer", "remap",
					     "mprotect", "fork", "migrate", "exclusive" };
	enum { NTHR = sizeof(fns) / sizeof(fns[0]) };
	struct ctx *c = calloc(1, sizeof(*c));
	struct thr thr[NTHR];
	uint64_t ms = round_ms();
	struct dmm_notifier_stats ns;

	(void)state;
	assert_non_null(c);
	c->seed = mirror_seed();
	printf("test_concurrency_mirror: seed %" PRIu64 " (set DEVMM_SEED=%" PRIu64 " to repeat), %d rounds of %" PRIu64
	       " ms\n",
	       c->seed, c->seed, ROUNDS, ms);
	c->sys = sys_new(8192);
	assert_non_null(c->sys);
	OK(dmm_mm_create(c->sys, &c->mm));
	OK(testdrv_create(c->sys, DMM_MEMORY_DEVICE_PRIVATE, DEV_PAGES, &c->drv));
	pthread_mutex_init(&c->mir.lock, NULL);
	pthread_mutex_init(&c->err_lock, NULL);
	for (int i = 0; i < NPAGES; i++)
		pthread_mutex_init(&c->plock[i], NULL);
	MAP_ANON(c->mm, BASE, NPAGES);
	OK(dmm_mmu_interval_notifier_insert(&c->mir.sub, c->mm, BASE, NPAGES * PG, &mirror_ops));

	for (int round = 0; round < ROUNDS && !atomic_load(&c->failed); round++) {
		atomic_store(&c->stop, false);
		for (int i = 0; i < NTHR; i++) {
			thr[i].c = c;
			thr[i].id = i;
			thr[i].rng = splitmix(c->seed + (uint64_t)round * 131 + (uint64_t)i) | 1;
			thr[i].fn = fns[i];
			thr[i].name = names[i];
			atomic_store(&thr[i].op, "starting");
			atomic_store(&thr[i].done, !(thread_mask() & (1u << i)));
			if (thread_mask() & (1u << i))
				assert_int_equal(pthread_create(&thr[i].th, NULL, thread_main, &thr[i]), 0);
		}
		for (uint64_t t0 = now_ms(); now_ms() - t0 < ms && !atomic_load(&c->stop);) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
		atomic_store(&c->stop, true);
		watchdog(c, thr, NTHR, round);
		for (int i = 0; i < NTHR; i++)
			if (thread_mask() & (1u << i))
				pthread_join(thr[i].th, NULL);
		if (atomic_load(&c->failed))
			break;
		/* Quiescent: protections back to RW, then every check. */
		OK(dmm_mprotect(c->mm, BASE, NPAGES * PG, RW));
		mirror_check(c, "end of round");
		if (atomic_load(&c->failed))
			break;
		verify_data(c, round);
		CHECK_OK(c->sys);
		OK(dmm_mm_notifier_stats(c->mm, &ns));
		EQ(ns.invalidate_seq & 1, 0);
		EQ(ns.starts, ns.ends);
	}
	if (atomic_load(&c->failed))
		fail_msg("seed %" PRIu64 ": %s", c->seed, c->err);
	printf("test_concurrency_mirror: %lu pages programmed, %lu -EBUSY, %lu read_retry, %lu timeouts, %lu hmm "
	       "errors, %lu invalidations, %lu checks (%lu entries compared); %lu writes, %lu remaps, %lu "
	       "mprotects, %lu forks (%lu failed), %lu pages migrated, %lu exclusives\n",
	       atomic_load(&c->programmed), atomic_load(&c->ebusy), atomic_load(&c->retries),
	       atomic_load(&c->timeouts), atomic_load(&c->hmm_err), (unsigned long)c->mir.invalidations,
	       atomic_load(&c->checks), atomic_load(&c->compared), atomic_load(&c->writes),
	       atomic_load(&c->remaps), atomic_load(&c->mprotects), atomic_load(&c->forks),
	       atomic_load(&c->fork_fail), atomic_load(&c->migrations), atomic_load(&c->exclusives));
	TRUE(atomic_load(&c->programmed) > 0);
	TRUE(atomic_load(&c->compared) > 0);

	/* Exit with the subscription in place: RELEASE empties the mirror. */
	dmm_mm_exit(c->mm);
	for (int i = 0; i < NPAGES; i++)
		TRUE(!c->mir.e[i].valid);
	dmm_mmu_interval_notifier_remove(&c->mir.sub);
	CHECK_OK(c->sys);
	EQ(testdrv_used(c->drv), 0);
	testdrv_destroy(c->drv);
	dmm_system_destroy(c->sys);
	for (int i = 0; i < NPAGES; i++)
		pthread_mutex_destroy(&c->plock[i]);
	pthread_mutex_destroy(&c->mir.lock);
	pthread_mutex_destroy(&c->err_lock);
	free(c);
}

/* ------------------------------------------------------------------------ */
/* The first subscription against an invalidation that holds no mmap_lock    */

/*
 * A driver's eviction (dmm_migrate_device_range) unmaps its pages through
 * the rmap (try_to_migrate) without the mmap_lock of the processes that map
 * them, firing CLEAR invalidate_range_start/end pairs. The first
 * subscription of an mm may be inserted right then. Linux excludes rmap
 * walkers while it registers the first notifier (mm_take_all_locks); the
 * start and end of one invalidation must in any case agree on whether the
 * notifier machinery is on, or an end without a start underflows the count
 * of active invalidations and leaves the sequence odd for good (remove()
 * and read_begin() then sleep forever).
 */
#define RACE_PAGES 64

struct race {
	pthread_barrier_t bar;
	struct testdrv *drv;
	unsigned int spins;
};

/* Static: a failed trial leaves its subscription inserted (removing it
 * would never return), and system teardown still calls it. */
static struct dmm_mmu_interval_notifier race_sub;

static bool race_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			    unsigned long cur_seq)
{
	(void)r;
	dmm_mmu_interval_set_seq(sub, cur_seq);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops race_ops = { .invalidate = race_invalidate };

static void *evict_thread(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(&r->bar);
	for (unsigned int i = 0; i < r->spins; i++)
		sched_yield();
	testdrv_evict_all(r->drv);
	return NULL;
}

static void test_first_subscription_racing_with_a_driver_eviction_keeps_starts_and_ends_paired(void **state)
{
	struct dmm_system *sys = sys_new(4096);
	struct race rc = { .spins = 0 };
	uint64_t t0 = now_ms(), budget = round_ms() * 5;
	int trial;

	(void)state;
	assert_non_null(sys);
	OK(testdrv_create(sys, DMM_MEMORY_DEVICE_PRIVATE, RACE_PAGES, &rc.drv));
	pthread_barrier_init(&rc.bar, NULL, 2);
	for (trial = 0; trial < 20000 && now_ms() - t0 < budget; trial++) {
		struct dmm_notifier_stats ns;
		struct dmm_mm *mm;
		unsigned long moved = 0;
		pthread_t th;
		uint32_t v = 0;

		OK(dmm_mm_create(sys, &mm));
		MAP_ANON(mm, BASE, RACE_PAGES);
		for (int i = 0; i < RACE_PAGES; i++)
			OK(dmm_store32(mm, ADDR(i), (uint32_t)i + 1));
		OK(testdrv_migrate_to_dev(rc.drv, mm, BASE, RACE_PAGES, &moved));
		EQ(moved, RACE_PAGES);
		rc.spins = (unsigned int)trial % 7;
		assert_int_equal(pthread_create(&th, NULL, evict_thread, &rc), 0);
		pthread_barrier_wait(&rc.bar);
		OK(dmm_mmu_interval_notifier_insert(&race_sub, mm, BASE, RACE_PAGES * PG, &race_ops));
		pthread_join(th, NULL);
		OK(dmm_mm_notifier_stats(mm, &ns));
		if (ns.starts != ns.ends || (ns.invalidate_seq & 1))
			fail_msg("trial %d: the first subscription was inserted during a driver eviction "
				 "(try_to_migrate, no mmap_lock held): now quiescent with %lu invalidation starts "
				 "but %lu ends and seq %lu (odd): an invalidate_range_end ran without its start, "
				 "and remove()/read_begin() on this mm would sleep forever",
				 trial, ns.starts, ns.ends, ns.invalidate_seq);
		EQ(testdrv_used(rc.drv), 0);
		OK(dmm_load32(mm, ADDR(RACE_PAGES - 1), &v));
		EQ(v, RACE_PAGES);
		dmm_mmu_interval_notifier_remove(&race_sub);
		dmm_mm_exit(mm);
		if (trial % 64 == 0)
			CHECK_OK(sys);
	}
	printf("test_concurrency_mirror: %d insert/eviction races, all balanced\n", trial);
	CHECK_OK(sys);
	pthread_barrier_destroy(&rc.bar);
	testdrv_destroy(rc.drv);
	dmm_system_destroy(sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mirror_never_keeps_a_translation_the_cpu_no_longer_has),
		cmocka_unit_test(test_first_subscription_racing_with_a_driver_eviction_keeps_starts_and_ends_paired),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
