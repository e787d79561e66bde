/* SPDX-License-Identifier: MIT */
/*
 * Torture for the lifetimes of what lockless readers read (docs/locking.md
 * section 6): device page metadata and page-table pages, freed after a
 * grace period while GUP-fast and hmm snapshots run over them.
 *
 *   TBASE             R: 64 pages, one VMA, one PTE table; its pages move
 *   |<-- R -->|          between system memory and a set of device chunks
 *   TBASE + 1 GiB     Q: 4 x 2 MiB; one chunk at a time is unmapped (its
 *   |<-- Q0 -->|<-- Q1 -->|<-- Q2 -->|<-- Q3 -->|   PTE table freed), mapped
 *                                                   again and touched
 *
 * Threads, until the time is up:
 *  - 2 GUP-fast readers: random windows of R or Q, FOLL_GET or FOLL_PIN;
 *    each page they get must be a live frame (refcount > 0, a system or
 *    coherent page); they let it go at once;
 *  - 1 hmm reader: snapshots of R and of Q (hmm_range_fault with no fault
 *    requested) under the interval-notifier protocol;
 *  - 1 device thread: registers 4 chunks (device-private or coherent,
 *    alternately), migrates slices of R into them, then unregisters them
 *    all in a row (each eviction brings the pages back to system memory),
 *    like the mirror's release; and registers and unregisters a few empty
 *    chunks besides;
 *  - 1 munmap thread: unmaps a chunk of Q, maps it again, touches it.
 *
 * ASan (use-after-free of a pgmap or a table) and TSan (the grace period's
 * happens-before) do most of the checking; the test itself checks what the
 * readers got, and at the end dmm_check, the page-table count and the
 * device bookkeeping. The seed is printed; DEVMM_SEED repeats a run and
 * DEVMM_GRACE_MS sets its length (default 1500 ms).
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "helpers.h"
#include "internal.h"
#include "testdrv.h"

#define RPAGES 64
#define QCHUNKS 4
#define QCHUNK (2UL << 20)
#define QBASE (TBASE + (1UL << 30))
#define NCHUNKS 4
#define EMPTY_CHUNKS 3

struct torture {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	atomic_int stop;
	atomic_long errors, gup_pages, snapshots, chunk_rounds, q_rounds;
	_Atomic(void *) owner; /* the device-private owner hmm asks about */
	pthread_mutex_t msg_lock;
	char msg[256]; /* the first error */
	struct testdrv *stuck[16]; /* chunks that could not be emptied */
	atomic_int nr_stuck;
	uint64_t seed;
};

/* A subscription that only moves its sequence. */
struct tsub {
	struct dmm_mmu_interval_notifier sub;
	pthread_mutex_t lock;
};

static bool tsub_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			    unsigned long cur_seq)
{
	struct tsub *t = (struct tsub *)sub;

	(void)r;
	pthread_mutex_lock(&t->lock);
	dmm_mmu_interval_set_seq(sub, cur_seq);
	pthread_mutex_unlock(&t->lock);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops tsub_ops = { .invalidate = tsub_invalidate };

static void report(struct torture *t, const char *what, long v)
{
	pthread_mutex_lock(&t->msg_lock);
	if (!atomic_load(&t->errors))
		snprintf(t->msg, sizeof(t->msg), "%s (%ld)", what, v);
	atomic_fetch_add(&t->errors, 1);
	pthread_mutex_unlock(&t->msg_lock);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ------------------------------------------------------------------------ */

struct reader_arg {
	struct torture *t;
	uint64_t seed;
};

static void *gup_reader(void *arg)
{
	struct reader_arg *ra = arg;
	struct torture *t = ra->t;
	uint64_t s = ra->seed, pfns[8];

	while (!atomic_load(&t->stop)) {
		bool in_q = rnd(&s) & 1, pin = rnd(&s) & 1;
		unsigned long n = 1 + rnd(&s) % 8;
		uint64_t span = in_q ? QCHUNKS * QCHUNK / PG : RPAGES;
		uint64_t addr = (in_q ? QBASE : TBASE) + (rnd(&s) % (span - n + 1)) * PG;
		long got = dmm_get_user_pages_fast(t->mm, addr, n, pin ? DMM_FOLL_PIN : DMM_FOLL_GET, pfns);

		if (got < 0) {
			if (got != -EFAULT && got != -ENOMEM)
				report(t, "gup_fast failed", got);
			continue;
		}
		for (long i = 0; i < got; i++) {
			struct dmm_page_info pi;

			if (dmm_page_query(t->sys, pfns[i], &pi))
				report(t, "gup returned no frame", (long)pfns[i]);
			else if (pi.location != DMM_LOC_ZERO &&
				 (pi.refcount == 0 || pi.location == DMM_LOC_DEVICE_PRIVATE))
				report(t, "gup returned a free or device-private frame", (long)pfns[i]);
		}
		if (pin)
			dmm_unpin_user_pages(t->sys, pfns, (unsigned long)got);
		else
			dmm_put_user_pages(t->sys, pfns, (unsigned long)got);
		atomic_fetch_add(&t->gup_pages, got);
	}
	return NULL;
}

struct hmm_arg {
	struct torture *t;
	struct tsub *r, *q;
};

static void snapshot(struct torture *t, struct tsub *sub, uint64_t start, unsigned long n)
{
	uint64_t words[RPAGES] = { 0 };
	struct dmm_hmm_range r = {
		.notifier = &sub->sub, .start = start, .end = start + n * PG, .hmm_pfns = words,
		.dev_private_owner = atomic_load(&t->owner),
	};
	int rc;

	r.notifier_seq = dmm_mmu_interval_read_begin(&sub->sub);
	dmm_mmap_read_lock(t->mm);
	rc = dmm_hmm_range_fault(&r);
	dmm_mmap_read_unlock(t->mm);
	if (rc && rc != -EBUSY)
		report(t, "hmm snapshot failed", rc);
	atomic_fetch_add(&t->snapshots, 1);
}

static void *hmm_reader(void *arg)
{
	struct hmm_arg *ha = arg;
	struct torture *t = ha->t;
	uint64_t s = t->seed ^ 0x4d4d;

	while (!atomic_load(&t->stop)) {
		uint64_t chunk = rnd(&s) % QCHUNKS;

		snapshot(t, ha->r, TBASE, RPAGES);
		snapshot(t, ha->q, QBASE + chunk * QCHUNK, RPAGES);
	}
	return NULL;
}

/* Evict and unregister a chunk. Readers may hold a page for a moment
 * (a migration skips a page with an extra reference): evict until the
 * chunk is empty. */
static void chunk_destroy(struct torture *t, struct testdrv *drv)
{
	for (int tries = 0; testdrv_used(drv); tries++) {
		testdrv_evict_all(drv);
		if (tries == 100) {
			uint64_t first = dmm_pgmap_pfn_first(drv->pgmap);

			for (uint64_t i = 0; i < drv->npages; i++) {
				struct dmm_page_info pi;

				if (!dmm_page_query(t->sys, first + i, &pi) && pi.refcount)
					fprintf(stderr, "stuck pfn %#lx ref %u map %d pin %u flags %#x\n",
						(unsigned long)(first + i), pi.refcount, pi.mapcount, pi.pincount, pi.flags);
			}
			report(t, "a chunk could not be emptied", (long)testdrv_used(drv));
			atomic_store(&t->stop, 1);
			/* dmm_system_destroy frees its pgmap; the driver goes after. */
			if (atomic_load(&t->nr_stuck) < 16)
				t->stuck[atomic_fetch_add(&t->nr_stuck, 1)] = drv;
			return;
		}
	}
	testdrv_destroy(drv);
}

/* Register NCHUNKS chunks, fill them with slices of R, unregister them
 * all; and a few empty ones besides. */
static void *device_thread(void *arg)
{
	struct torture *t = arg;

	/* At least one round, however late this thread gets to run. */
	for (unsigned int round = 0; round == 0 || !atomic_load(&t->stop); round++) {
		enum dmm_memory_type type = round & 1 ? DMM_MEMORY_DEVICE_COHERENT : DMM_MEMORY_DEVICE_PRIVATE;
		struct testdrv *chunk[NCHUNKS + EMPTY_CHUNKS] = { 0 };

		for (unsigned int i = 0; i < NCHUNKS + EMPTY_CHUNKS; i++) {
			int rc = testdrv_create(t->sys, type, RPAGES / NCHUNKS, &chunk[i]);

			if (rc) {
				report(t, "registering a chunk failed", rc);
				chunk[i] = NULL;
			}
		}
		for (unsigned int i = 0; i < NCHUNKS; i++) {
			unsigned long moved = 0;
			int rc;

			if (!chunk[i])
				continue;
			atomic_store(&t->owner, chunk[i]);
			rc = testdrv_migrate_to_dev(chunk[i], t->mm, TBASE + i * (RPAGES / NCHUNKS) * PG,
						    RPAGES / NCHUNKS, &moved);
			if (rc && rc != -EBUSY && rc != -ENOMEM)
				report(t, "migration to a chunk failed", rc);
		}
		atomic_store(&t->owner, NULL);
		for (unsigned int i = 0; i < NCHUNKS + EMPTY_CHUNKS; i++)
			if (chunk[i])
				chunk_destroy(t, chunk[i]);
		atomic_fetch_add(&t->chunk_rounds, 1);
	}
	return NULL;
}

static void *munmap_thread(void *arg)
{
	struct torture *t = arg;
	uint64_t s = t->seed ^ 0x5151;

	do { /* at least one round, however late this thread gets to run */
		uint64_t at = QBASE + (rnd(&s) % QCHUNKS) * QCHUNK;
		int rc = dmm_munmap(t->mm, at, QCHUNK);

		if (!rc)
			rc = dmm_mmap(t->mm, at, QCHUNK, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL);
		for (uint64_t a = at; !rc && a < at + QCHUNK; a += 64 * PG)
			rc = dmm_store32(t->mm, a, (uint32_t)a);
		if (rc)
			report(t, "munmap/mmap/touch failed", rc);
		atomic_fetch_add(&t->q_rounds, 1);
	} while (!atomic_load(&t->stop));
	return NULL;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

static void test_unregister_and_unmap_under_lockless_readers(void **state)
{
	struct torture t = { 0 };
	struct tsub rsub = { 0 }, qsub = { 0 };
	struct reader_arg ra[2];
	struct hmm_arg ha = { &t, &rsub, &qsub };
	pthread_t th[5];
	long ms = env_long("DEVMM_GRACE_MS", 1500);
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	struct dmm_stats st;

	(void)state;
	t.seed = (uint64_t)env_long("DEVMM_SEED", (long)time(NULL)) | 1;
	print_message("test_stress_grace: seed %" PRIu64 " (DEVMM_SEED), %ld ms\n", t.seed, ms);
	pthread_mutex_init(&t.msg_lock, NULL);
	pthread_mutex_init(&rsub.lock, NULL);
	pthread_mutex_init(&qsub.lock, NULL);
	t.sys = sys_new(8192);
	TRUE(t.sys != NULL);
	OK(dmm_mm_create(t.sys, &t.mm));
	OK(dmm_mmap(t.mm, TBASE, RPAGES * PG, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	OK(dmm_mmap(t.mm, QBASE, QCHUNKS * QCHUNK, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	for (uint64_t i = 0; i < RPAGES; i++)
		OK(dmm_store32(t.mm, TBASE + i * PG, (uint32_t)i));
	OK(dmm_mmu_interval_notifier_insert(&rsub.sub, t.mm, TBASE, RPAGES * PG, &tsub_ops));
	OK(dmm_mmu_interval_notifier_insert(&qsub.sub, t.mm, QBASE, QCHUNKS * QCHUNK, &tsub_ops));

	for (int i = 0; i < 2; i++) {
		ra[i] = (struct reader_arg){ &t, t.seed * (uint64_t)(i + 3) | 1 };
		assert_int_equal(pthread_create(&th[i], NULL, gup_reader, &ra[i]), 0);
	}
	assert_int_equal(pthread_create(&th[2], NULL, hmm_reader, &ha), 0);
	assert_int_equal(pthread_create(&th[3], NULL, device_thread, &t), 0);
	assert_int_equal(pthread_create(&th[4], NULL, munmap_thread, &t), 0);
	nanosleep(&ts, NULL);
	atomic_store(&t.stop, 1);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	print_message("  %ld GUP pages, %ld snapshots, %ld chunk rounds, %ld unmap rounds\n",
		      atomic_load(&t.gup_pages), atomic_load(&t.snapshots), atomic_load(&t.chunk_rounds),
		      atomic_load(&t.q_rounds));
	if (atomic_load(&t.errors)) {
		dmm_system_destroy(t.sys);
		for (int i = 0; i < atomic_load(&t.nr_stuck); i++)
			testdrv_free(t.stuck[i]);
		fail_msg("%ld errors; the first: %s (seed %" PRIu64 ")", atomic_load(&t.errors), t.msg, t.seed);
	}
	TRUE(atomic_load(&t.chunk_rounds) > 0 && atomic_load(&t.q_rounds) > 0);

	/* R's data survived every round trip. */
	for (uint64_t i = 0; i < RPAGES; i++) {
		uint32_t v = ~0u;

		OK(dmm_load32(t.mm, TBASE + i * PG, &v));
		EQ(v, i);
	}
	dmm_mmu_interval_notifier_remove(&rsub.sub);
	dmm_mmu_interval_notifier_remove(&qsub.sub);
	CHECK_OK(t.sys);
	OK(dmm_stats_get(t.sys, &st));
	EQ(st.pgtable_alloc - st.pgtable_free, (uint64_t)atomic_load(&t.mm->nr_pgtables));
	EQ(st.dev_page_alloc, st.dev_page_free);
	OK(dmm_munmap(t.mm, TBASE, RPAGES * PG));
	OK(dmm_munmap(t.mm, QBASE, QCHUNKS * QCHUNK));
	EQ(atomic_load(&t.mm->nr_pgtables), 0);
	dmm_system_destroy(t.sys);
	pthread_mutex_destroy(&t.msg_lock);
	pthread_mutex_destroy(&rsub.lock);
	pthread_mutex_destroy(&qsub.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unregister_and_unmap_under_lockless_readers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
