/* SPDX-License-Identifier: MIT */
/*
 * Device-memory concurrency stress (the 'concurrency' suite, also run under
 * TSan).
 *
 * 1. Fault storm: many rounds of "migrate a page to a device-private
 *    testdrv device, then NTHREADS threads fault on it at once" (reads and
 *    writes of distinct words, some threads reading first, some writing
 *    first). Per round: exactly one migrate_to_ram call moved the page
 *    (testdrv's fault_migrations), the device page was freed once, every
 *    thread saw the data, and the run finishes (no livelock: a watchdog
 *    aborts the test if a round hangs).
 *
 * 2. Mixed run, per variant (DEVICE_PRIVATE, DEVICE_COHERENT): threads
 *    migrating their own pages and shared pages to the device and back
 *    while reading and writing their own words and fetch_adding distinct
 *    amounts into shared words; a shadow model per thread. At the end
 *    every word is checked (own words against the shadow, shared words
 *    against the sum of everybody's adds) and dmm_check must pass.
 *
 * The seed is printed; DEVMM_SEED repeats a run (interleavings still
 * vary). The run is bounded well under 30 s under TSan.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "device_helpers.h"

#define NTHREADS 4
#define STORM_ROUNDS 150
#define WATCHDOG_S 120

static uint64_t g_seed;

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t stress_seed(void)
{
	const char *s = getenv("DEVMM_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
}

static void watchdog(int sig)
{
	static const char msg[] = "test_stress_device: watchdog expired (livelock or deadlock?)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do */
	}
	_exit(99);
}

/* ------------------------------------------------------------------------ */
/* 1. Fault storm                                                            */

#define STORM_ADDR TBASE
/* Words: thread t reads word t (and the pattern words) and writes word
 * 64 + t. */
#define STORM_WRITE_WORD(t) (64 + (t))

struct storm {
	struct dmm_mm *mm;
	pthread_barrier_t start, done;
	_Atomic int stop;
	_Atomic uint32_t go; /* round + 1: all threads spin on it, then fault together */
	uint32_t round_seed; /* written by main between rounds */
	uint32_t round;
};

struct storm_worker {
	pthread_t th;
	struct storm *s;
	int id;
	char err[256];
};

static void *storm_main(void *arg)
{
	struct storm_worker *w = arg;
	struct storm *s = w->s;

	for (;;) {
		uint32_t seed, round, v = 0, want;
		int rc;

		pthread_barrier_wait(&s->start);
		if (atomic_load(&s->stop))
			break;
		seed = s->round_seed;
		round = s->round;
		while (atomic_load(&s->go) != round + 1)
			;
		want = round * 16 + (uint32_t)w->id;
		/* Odd threads write first, even ones read first; the order
		 * flips every round. */
		if ((w->id + round) & 1) {
			rc = dmm_store32(s->mm, STORM_ADDR + STORM_WRITE_WORD(w->id) * 4, want);
			if (rc && !w->err[0])
				snprintf(w->err, sizeof(w->err), "round %u: store = %d", round, rc);
			rc = dmm_load32(s->mm, STORM_ADDR + (uint64_t)w->id * 4, &v);
		} else {
			rc = dmm_load32(s->mm, STORM_ADDR + (uint64_t)w->id * 4, &v);
			if (!rc)
				rc = dmm_store32(s->mm, STORM_ADDR + STORM_WRITE_WORD(w->id) * 4, want);
		}
		if (rc && !w->err[0])
			snprintf(w->err, sizeof(w->err), "round %u: access = %d", round, rc);
		if (!rc && v != seed + (uint32_t)w->id && !w->err[0])
			snprintf(w->err, sizeof(w->err), "round %u: word %d = %#x, expected %#x", round,
				 w->id, v, seed + (uint32_t)w->id);
		/* Its own write is visible to it. */
		rc = dmm_load32(s->mm, STORM_ADDR + STORM_WRITE_WORD(w->id) * 4, &v);
		if ((rc || v != want) && !w->err[0])
			snprintf(w->err, sizeof(w->err), "round %u: own word reads %#x (rc %d), expected %#x",
				 round, v, rc, want);
		pthread_barrier_wait(&s->done);
	}
	return NULL;
}

static void test_concurrent_faults_on_one_device_page_migrate_it_exactly_once(void **state)
{
	struct dfx *d = *state;
	struct storm s = { .mm = d->mm };
	struct storm_worker ws[NTHREADS];
	uint64_t rng = splitmix(g_seed);
	unsigned long noops = 0, faults = 0;
	struct dmm_stats st0 = STATS(d->sys);

	MAP_ANON(d->mm, STORM_ADDR, 1);
	pthread_barrier_init(&s.start, NULL, NTHREADS + 1);
	pthread_barrier_init(&s.done, NULL, NTHREADS + 1);
	memset(ws, 0, sizeof(ws));
	for (int t = 0; t < NTHREADS; t++) {
		ws[t].s = &s;
		ws[t].id = t;
		TRUE(pthread_create(&ws[t].th, NULL, storm_main, &ws[t]) == 0);
	}
	for (uint32_t round = 0; round < STORM_ROUNDS; round++) {
		unsigned long mig0, frees0, faults0, noops0;
		uint32_t seed = (uint32_t)xorshift(&rng) & 0x7fffff00u;
		uint64_t dev;

		FILL(d->mm, STORM_ADDR, PG, seed);
		TO_DEV(d, d->mm, STORM_ADDR, 1, 1);
		dev = DEV_ENTRY(d, d->mm, STORM_ADDR, true);
		s.round_seed = seed;
		s.round = round;
		/* A third of the rounds plain, a third with the fault holding
		 * the device page locked for a while, a third holding the
		 * migration entry. */
		atomic_store(&d->drv->fault_delay_us, round % 3 == 1 ? 300 : 0);
		atomic_store(&d->drv->fault_delay_collected_us, round % 3 == 2 ? 300 : 0);
		mig0 = atomic_load(&d->drv->fault_migrations);
		noops0 = atomic_load(&d->drv->fault_noops);
		frees0 = atomic_load(&d->drv->folio_frees);
		faults0 = atomic_load(&d->drv->faults);
		pthread_barrier_wait(&s.start);
		atomic_store(&s.go, round + 1);
		pthread_barrier_wait(&s.done);
		faults += atomic_load(&d->drv->faults) - faults0;
		for (int t = 0; t < NTHREADS; t++)
			if (ws[t].err[0])
				fail_msg("seed %" PRIu64 ", thread %d: %s", g_seed, t, ws[t].err);
		CHECK_OK(d->sys);
		EQ(atomic_load(&d->drv->fault_migrations) - mig0, 1);
		EQ(atomic_load(&d->drv->folio_frees) - frees0, 1);
		TRUE(atomic_load(&d->drv->faults) - faults0 >= 1);
		noops += atomic_load(&d->drv->fault_noops) - noops0;
		EQ(testdrv_used(d->drv), 0);
		COUNTS(d->sys, dev, 0, 0);
		COUNTS(d->sys, SYS_ENTRY(d->sys, d->mm, STORM_ADDR, true), 1, 1);
		/* Every word: the pattern, with each thread's write. */
		for (uint32_t k = 0; k < WORDS_PER_PAGE; k++) {
			uint32_t want = seed + k;

			if (k >= STORM_WRITE_WORD(0) && k < STORM_WRITE_WORD(NTHREADS))
				want = round * 16 + (k - STORM_WRITE_WORD(0));
			if (k % 61 == 0 || (k >= STORM_WRITE_WORD(0) && k < STORM_WRITE_WORD(NTHREADS)))
				EQ(LOAD(d->mm, STORM_ADDR + k * 4), want);
		}
	}
	atomic_store(&d->drv->fault_delay_us, 0);
	atomic_store(&d->drv->fault_delay_collected_us, 0);
	atomic_store(&s.stop, 1);
	pthread_barrier_wait(&s.start);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(ws[t].th, NULL);
	pthread_barrier_destroy(&s.start);
	pthread_barrier_destroy(&s.done);
	print_message("fault storm: %d rounds, %lu faults, %lu of them found the page gone; "
		      "%" PRIu64 " waits for a locked device page, %" PRIu64 " fault retries\n",
		      STORM_ROUNDS, faults, noops, STAT_DELTA(d->sys, st0, fault_device_wait),
		      STAT_DELTA(d->sys, st0, fault_retry));
	OK(dmm_munmap(d->mm, STORM_ADDR, PG));
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* 2. Mixed run                                                              */

#define OWN_PAGES 6
#define SHARED_PAGES 4
#define SHARED_WORDS 32 /* counters per shared page used */
#define MIXED_OPS 1500
#define OWN_BASE(t) (TBASE + 0x100000UL * (uint64_t)((t) + 1))
#define SHARED_BASE TBASE

struct mixed;

struct mworker {
	pthread_t th;
	struct mixed *m;
	int id;
	uint64_t rng;
	uint32_t shadow[OWN_PAGES * WORDS_PER_PAGE];
	uint32_t added[SHARED_PAGES][SHARED_WORDS];
	unsigned long nr_to_dev, nr_to_sys, moved_dev, moved_sys;
	char err[256];
};

struct mixed {
	struct dfx *d;
	pthread_barrier_t start;
	long ops;
};

#define MFAIL(w, ...)                                                                      \
	do {                                                                               \
		if (!(w)->err[0])                                                          \
			snprintf((w)->err, sizeof((w)->err), __VA_ARGS__);                 \
		return NULL;                                                               \
	} while (0)

static void *mixed_main(void *arg)
{
	struct mworker *w = arg;
	struct dfx *d = w->m->d;
	uint64_t own = OWN_BASE(w->id);

	pthread_barrier_wait(&w->m->start);
	for (long op = 0; op < w->m->ops; op++) {
		uint64_t r = xorshift(&w->rng);
		unsigned int kind = (unsigned int)(r % 100);
		unsigned long moved = 0;
		uint32_t v;
		int rc;

		r >>= 8;
		if (kind < 12) {
			/* Own pages to the device. */
			unsigned int p = (unsigned int)(r % OWN_PAGES), n = 1 + (unsigned int)((r >> 8) % 3);

			if (p + n > OWN_PAGES)
				n = OWN_PAGES - p;
			rc = testdrv_migrate_to_dev(d->drv, d->mm, PAGE_ADDR(own, p), n, &moved);
			if (rc)
				MFAIL(w, "op %ld: migrate_to_dev(own page %u, %u) = %d", op, p, n, rc);
			w->nr_to_dev++;
			w->moved_dev += moved;
		} else if (kind < 20) {
			unsigned int p = (unsigned int)(r % OWN_PAGES), n = 1 + (unsigned int)((r >> 8) % 3);

			if (p + n > OWN_PAGES)
				n = OWN_PAGES - p;
			rc = testdrv_migrate_to_sys(d->drv, d->mm, PAGE_ADDR(own, p), n, &moved);
			if (rc)
				MFAIL(w, "op %ld: migrate_to_sys(own page %u, %u) = %d", op, p, n, rc);
			w->nr_to_sys++;
			w->moved_sys += moved;
		} else if (kind < 26) {
			/* Shared pages, either way. */
			unsigned int p = (unsigned int)(r % SHARED_PAGES);

			if ((r >> 8) & 1)
				rc = testdrv_migrate_to_dev(d->drv, d->mm, PAGE_ADDR(SHARED_BASE, p), 1, &moved);
			else
				rc = testdrv_migrate_to_sys(d->drv, d->mm, PAGE_ADDR(SHARED_BASE, p), 1, &moved);
			if (rc)
				MFAIL(w, "op %ld: migrating shared page %u = %d", op, p, rc);
		} else if (kind < 50) {
			/* Write an own word. */
			unsigned int k = (unsigned int)(r % (OWN_PAGES * WORDS_PER_PAGE));
			uint32_t val = (uint32_t)(r >> 20);

			rc = dmm_store32(d->mm, own + k * 4, val);
			if (rc)
				MFAIL(w, "op %ld: store own word %u = %d", op, k, rc);
			w->shadow[k] = val;
		} else if (kind < 72) {
			/* Read an own word. */
			unsigned int k = (unsigned int)(r % (OWN_PAGES * WORDS_PER_PAGE));

			rc = dmm_load32(d->mm, own + k * 4, &v);
			if (rc)
				MFAIL(w, "op %ld: load own word %u = %d", op, k, rc);
			if (v != w->shadow[k])
				MFAIL(w, "op %ld: own word %u = %#x, expected %#x", op, k, v, w->shadow[k]);
		} else if (kind < 94) {
			/* Add a distinct amount to a shared word. */
			unsigned int p = (unsigned int)(r % SHARED_PAGES);
			unsigned int k = (unsigned int)((r >> 4) % SHARED_WORDS);
			uint32_t amt = (uint32_t)(w->id + 1) * 0x10000u + (uint32_t)((r >> 12) & 0xff) + 1;

			rc = dmm_fetch_add32(d->mm, PAGE_ADDR(SHARED_BASE, p) + k * 4, amt, &v);
			if (rc)
				MFAIL(w, "op %ld: fetch_add shared %u/%u = %d", op, p, k, rc);
			w->added[p][k] += amt;
		} else {
			/* Read a shared word (the value races; the access must work). */
			unsigned int p = (unsigned int)(r % SHARED_PAGES);

			rc = dmm_load32(d->mm, PAGE_ADDR(SHARED_BASE, p) + (r >> 4) % SHARED_WORDS * 4, &v);
			if (rc)
				MFAIL(w, "op %ld: load shared page %u = %d", op, p, rc);
		}
	}
	return NULL;
}

static void test_mixed_migrations_and_cpu_access_keep_every_word(void **state)
{
	struct dfx *d = *state;
	struct mixed m = { .d = d, .ops = MIXED_OPS };
	struct mworker *ws = calloc(NTHREADS, sizeof(*ws));
	unsigned long to_dev = 0, to_sys = 0, mdev = 0, msys = 0;
	const char *ops_env = getenv("DEVMM_STRESS_OPS");

	TRUE(ws != NULL);
	if (ops_env && *ops_env)
		m.ops = strtol(ops_env, NULL, 0);
	MAP_ANON(d->mm, SHARED_BASE, SHARED_PAGES);
	for (int t = 0; t < NTHREADS; t++) {
		MAP_ANON(d->mm, OWN_BASE(t), OWN_PAGES);
		ws[t].m = &m;
		ws[t].id = t;
		ws[t].rng = splitmix(g_seed + 0x1000 + (uint64_t)t + (dfx_private(d) ? 0 : 0x100)) | 1;
		/* Start from a pattern, half of it on the device. */
		for (uint32_t k = 0; k < OWN_PAGES * WORDS_PER_PAGE; k++)
			ws[t].shadow[k] = (uint32_t)t * 0x1000000u + k;
		FILL(d->mm, OWN_BASE(t), OWN_PAGES * PG, (uint32_t)t * 0x1000000u);
		TO_DEV(d, d->mm, OWN_BASE(t), OWN_PAGES / 2, OWN_PAGES / 2);
	}
	TO_DEV(d, d->mm, SHARED_BASE, SHARED_PAGES / 2, SHARED_PAGES / 2);
	CHECK_OK(d->sys);
	pthread_barrier_init(&m.start, NULL, NTHREADS);
	for (int t = 0; t < NTHREADS; t++)
		TRUE(pthread_create(&ws[t].th, NULL, mixed_main, &ws[t]) == 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(ws[t].th, NULL);
	pthread_barrier_destroy(&m.start);
	for (int t = 0; t < NTHREADS; t++) {
		if (ws[t].err[0]) {
			char msg[300];

			snprintf(msg, sizeof(msg), "%s", ws[t].err);
			free(ws);
			fail_msg("%s, seed %" PRIu64 ", thread %d: %s", d->type == DMM_MEMORY_DEVICE_PRIVATE ? "private" : "coherent",
				 g_seed, t, msg);
		}
		to_dev += ws[t].nr_to_dev;
		to_sys += ws[t].nr_to_sys;
		mdev += ws[t].moved_dev;
		msys += ws[t].moved_sys;
	}
	CHECK_OK(d->sys);
	/* Every own word against the shadow, as the device sees it where the
	 * page is on the device, then through the CPU. */
	for (int t = 0; t < NTHREADS; t++) {
		for (int p = 0; p < OWN_PAGES; p++) {
			uint64_t a = PAGE_ADDR(OWN_BASE(t), p);
			struct dmm_pte_info pi = PTE(d->mm, a);
			const uint32_t *sh = &ws[t].shadow[p * WORDS_PER_PAGE];

			if (pi.kind != DMM_PTE_NONE && testdrv_owns(d->drv, pi.pfn)) {
				const uint32_t *dw = testdrv_page_data(d->drv, pi.pfn);

				for (uint32_t k = 0; k < WORDS_PER_PAGE; k++)
					if (dw[k] != sh[k])
						fail_msg("seed %" PRIu64 ": thread %d page %d word %u on the device = %#x, expected %#x",
							 g_seed, t, p, k, dw[k], sh[k]);
			}
			for (uint32_t k = 0; k < WORDS_PER_PAGE; k++) {
				uint32_t v = LOAD(d->mm, a + k * 4);

				if (v != sh[k])
					fail_msg("seed %" PRIu64 ": thread %d page %d word %u = %#x, expected %#x",
						 g_seed, t, p, k, v, sh[k]);
			}
		}
	}
	/* Shared words: the sum of everybody's adds; the rest still zero. */
	for (int p = 0; p < SHARED_PAGES; p++) {
		for (uint32_t k = 0; k < WORDS_PER_PAGE; k++) {
			uint32_t want = 0, v = LOAD(d->mm, PAGE_ADDR(SHARED_BASE, p) + k * 4);

			if (k < SHARED_WORDS)
				for (int t = 0; t < NTHREADS; t++)
					want += ws[t].added[p][k];
			if (v != want)
				fail_msg("seed %" PRIu64 ": shared page %d word %u = %#x, expected %#x", g_seed, p, k,
					 v, want);
		}
	}
	CHECK_OK(d->sys);
	print_message("mixed (%s): %lu migrations to the device (%lu pages), %lu back (%lu pages), %lu faults (%lu moved)\n",
		      dfx_private(d) ? "private" : "coherent", to_dev, mdev, to_sys, msys,
		      atomic_load(&d->drv->faults), atomic_load(&d->drv->fault_migrations));
	free(ws);
	OK(dmm_munmap(d->mm, TBASE, 0x1000000UL));
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		DTP(test_concurrent_faults_on_one_device_page_migrate_it_exactly_once),
		DT2(test_mixed_migrations_and_cpu_access_keep_every_word),
	};

	g_seed = stress_seed();
	printf("test_stress_device: seed %" PRIu64 " (set DEVMM_SEED=%" PRIu64 " to repeat)\n", g_seed, g_seed);
	fflush(stdout);
	signal(SIGALRM, watchdog);
	alarm(WATCHDOG_S);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
