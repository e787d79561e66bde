/* SPDX-License-Identifier: MIT */
/*
 * The mirror device under concurrency (run again under ThreadSanitizer as
 * part of the 'concurrency' suite):
 *
 *  - a device read (or a migration to the device) racing an munmap of
 *    half its range, many rounds, for each device type: never a crash,
 *    and either success with every byte right or a clean error (EFAULT,
 *    or for a migration EINVAL / ENOENT) with the buffer untouched;
 *
 *  - worker threads on disjoint ranges of one address space, half of
 *    them on a device-private mirror and half on a device-coherent one,
 *    mixing device reads, writes, migrations both ways, atomics,
 *    exclusive access, snapshots and CPU reads and writes, each checking
 *    against its own shadow copy; at the end every word is verified by
 *    the CPU and through the mirrors, dmm_check runs, and a release of
 *    both devices leaves the data intact.
 *
 * The seed is printed; set DEVMM_SEED to repeat a run. The work is
 * bounded so that a TSan run stays well under 30 s.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "mirror.h"

#define DEV_PAGES 64
#define CHUNK_PAGES 16
#define CANARY 0xcd

#if defined(__SANITIZE_THREAD__)
#define SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLOW_BUILD 1
#endif
#endif
#ifndef SLOW_BUILD
#define SLOW_BUILD 0
#endif

static uint64_t stress_seed(void)
{
	const char *s = getenv("DEVMM_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	*s = splitmix(*s);
	return *s;
}

static uint64_t g_seed;

static int seed_setup(void **state)
{
	(void)state;
	g_seed = stress_seed();
	printf("test_stress_mirror: seed %" PRIu64 " (set DEVMM_SEED=%" PRIu64 " to repeat)\n", g_seed,
	       g_seed);
	fflush(stdout);
	return 0;
}

static int new_device(struct dmm_system *sys, const char *name, enum dmm_memory_type type,
		      struct mirror_device **out)
{
	struct mirror_device_config cfg = {
		.type = type, .pages = DEV_PAGES, .chunk_pages = CHUNK_PAGES, .cow = MIRROR_COW_SYSTEM,
	};

	return mirror_device_create(sys, name, &cfg, out);
}

static void pool_used_at(const char *file, int line, struct mirror_device *dev, uint64_t used)
{
	uint64_t u = 999, fr = 999;

	mirror_pool(dev, &u, &fr);
	if (u != used || u + fr != DEV_PAGES)
		h_fail(file, line, "pool of %s: used %" PRIu64 " free %" PRIu64 ", expected used %" PRIu64,
		       dev->name, u, fr, used);
}
#define POOL(dev, used) pool_used_at(__FILE__, __LINE__, dev, used)

/* ------------------------------------------------------------------------ */
/* A device command racing munmap of half its range                          */

#define RACE_PAGES 16
#define RACE_BASE TBASE

enum race_op { RACE_READ, RACE_MIGRATE };

struct race {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct mirror_device *dev;
	struct mirror *m;
	pthread_barrier_t go, done;
	enum race_op op;
	bool stop;		/* set by the main thread before a "go" */
	int rc, unmap_rc;	/* results of the round */
	uint8_t *buf;
	unsigned int spin_device, spin_unmap; /* tiny random delays */
};

static void spin(unsigned int n)
{
	for (volatile unsigned int i = 0; i < n; i++)
		;
}

static void *race_device(void *arg)
{
	struct race *r = arg;

	for (;;) {
		struct mirror_result res;

		pthread_barrier_wait(&r->go);
		if (r->stop)
			return NULL;
		spin(r->spin_device);
		if (r->op == RACE_READ)
			r->rc = mirror_read(r->m, RACE_BASE, RACE_PAGES, r->buf, &res);
		else
			r->rc = mirror_migrate_to_dev(r->m, RACE_BASE, RACE_PAGES, r->buf, &res);
		pthread_barrier_wait(&r->done);
	}
}

static void *race_unmap(void *arg)
{
	struct race *r = arg;

	for (;;) {
		pthread_barrier_wait(&r->go);
		if (r->stop)
			return NULL;
		spin(r->spin_unmap);
		r->unmap_rc = dmm_munmap(r->mm, PAGE_ADDR(RACE_BASE, RACE_PAGES / 2), RACE_PAGES / 2 * PG);
		pthread_barrier_wait(&r->done);
	}
}

static void race_round_check(struct race *r, uint32_t seed, uint64_t round)
{
	const uint32_t *w = (const uint32_t *)r->buf;
	bool ok_rc = r->rc == 0 || r->rc == -EFAULT ||
		     (r->op == RACE_MIGRATE && (r->rc == -EINVAL || r->rc == -ENOENT));

	if (!ok_rc)
		fail_msg("round %" PRIu64 " (%s): rc %d (%s)", round,
			 r->op == RACE_READ ? "read" : "migrate-to-dev", r->rc, errname(r->rc));
	if (r->rc == 0) {
		for (uint64_t k = 0; k < RACE_PAGES * WORDS_PER_PAGE; k++)
			if (w[k] != seed + (uint32_t)k)
				fail_msg("round %" PRIu64 ": succeeded but word %" PRIu64 " = %#x, expected %#x",
					 round, k, w[k], seed + (uint32_t)k);
	} else {
		for (uint64_t i = 0; i < RACE_PAGES * PG; i++)
			if (r->buf[i] != CANARY)
				fail_msg("round %" PRIu64 ": failed with %s but wrote byte %" PRIu64, round,
					 errname(r->rc), i);
	}
}

static void device_command_racing_munmap_of_half_its_range(enum dmm_memory_type type)
{
	struct race r;
	pthread_t t1, t2;
	uint64_t s = g_seed ^ (uint64_t)type;
	const uint64_t rounds = SLOW_BUILD ? 200 : 2000;
	uint64_t successes = 0, failures = 0;

	memset(&r, 0, sizeof(r));
	r.sys = sys_new(4096);
	assert_non_null(r.sys);
	OK(dmm_mm_create(r.sys, &r.mm));
	OK(new_device(r.sys, "race", type, &r.dev));
	OK(mirror_open(r.dev, r.mm, &r.m));
	r.buf = malloc(RACE_PAGES * PG);
	assert_non_null(r.buf);
	TRUE(pthread_barrier_init(&r.go, NULL, 3) == 0);
	TRUE(pthread_barrier_init(&r.done, NULL, 3) == 0);
	TRUE(pthread_create(&t1, NULL, race_device, &r) == 0);
	TRUE(pthread_create(&t2, NULL, race_unmap, &r) == 0);

	for (uint64_t round = 0; round < rounds; round++) {
		uint32_t seed = (uint32_t)rnd(&s);
		uint64_t how = rnd(&s);
		struct mirror_result res;

		MAP_ANON(r.mm, RACE_BASE, RACE_PAGES);
		FILL(r.mm, RACE_BASE, RACE_PAGES * PG, seed);
		/* Some rounds start with the range mirrored, or partly on the
		 * device. */
		if (how & 1)
			OK(mirror_read(r.m, RACE_BASE, RACE_PAGES, r.buf, &res));
		if (how & 2)
			OK(mirror_migrate_to_dev(r.m, PAGE_ADDR(RACE_BASE, (how >> 8) % 8), 8, r.buf, &res));
		r.op = (how & 4) ? RACE_MIGRATE : RACE_READ;
		r.spin_device = (unsigned int)((how >> 16) % 2000);
		r.spin_unmap = (unsigned int)((how >> 32) % 2000);
		memset(r.buf, CANARY, RACE_PAGES * PG);
		r.rc = 12345;
		pthread_barrier_wait(&r.go);
		pthread_barrier_wait(&r.done);
		OK(r.unmap_rc);
		race_round_check(&r, seed, round);
		if (r.rc == 0)
			successes++;
		else
			failures++;
		CHECK_OK(r.sys);
		VERIFY(r.mm, RACE_BASE, RACE_PAGES / 2 * PG, seed);
		OK(dmm_munmap(r.mm, RACE_BASE, RACE_PAGES * PG));
		POOL(r.dev, 0);
		CHECK_OK(r.sys);
	}
	r.stop = true;
	pthread_barrier_wait(&r.go);
	TRUE(pthread_join(t1, NULL) == 0);
	TRUE(pthread_join(t2, NULL) == 0);
	printf("  %s: %" PRIu64 " rounds, %" PRIu64 " succeeded, %" PRIu64 " failed cleanly\n",
	       type == DMM_MEMORY_DEVICE_PRIVATE ? "private" : "coherent", rounds, successes, failures);
	pthread_barrier_destroy(&r.go);
	pthread_barrier_destroy(&r.done);
	free(r.buf);
	mirror_device_destroy(r.dev);
	CHECK_OK(r.sys);
	dmm_system_destroy(r.sys);
}

static void device_read_racing_munmap_never_crashes_private(void **state)
{
	(void)state;
	device_command_racing_munmap_of_half_its_range(DMM_MEMORY_DEVICE_PRIVATE);
}

static void device_read_racing_munmap_never_crashes_coherent(void **state)
{
	(void)state;
	device_command_racing_munmap_of_half_its_range(DMM_MEMORY_DEVICE_COHERENT);
}

/* ------------------------------------------------------------------------ */
/* Workers on disjoint ranges with a shadow model                            */

#define NWORKERS 4
#define WPAGES 8 /* pages per worker: NWORKERS / 2 * WPAGES <= DEV_PAGES per device */
#define WWORDS (WPAGES * WORDS_PER_PAGE)
#define WSTRIDE 16 /* pages between workers' ranges */
#define MAX_RETRIES 200

struct worker {
	int id;
	pthread_t th;
	pthread_barrier_t *start;
	struct dmm_mm *mm;
	struct mirror *m;
	uint64_t base;
	uint64_t rng;
	long ops;
	uint32_t shadow[WWORDS];
	uint8_t buf[WPAGES * DMM_PAGE_SIZE];
	unsigned long counts[10];
	unsigned long busy;   /* EBUSY retries */
	unsigned long enoent; /* migrate-to-dev ENOENT on own pages (see op_to_dev) */
	char err[512];
};

static bool werr(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool werr(struct worker *w, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(w->err, sizeof(w->err), "worker %d: ", w->id);

	va_start(ap, fmt);
	vsnprintf(w->err + n, sizeof(w->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static bool check_buf(struct worker *w, const uint8_t *buf, uint64_t first, uint64_t npages, const char *what)
{
	const uint32_t *b = (const uint32_t *)buf;

	for (uint64_t k = 0; k < npages * WORDS_PER_PAGE; k++) {
		uint32_t want = w->shadow[first * WORDS_PER_PAGE + k];

		if (b[k] != want)
			return werr(w, "%s: page %" PRIu64 " word %" PRIu64 " = %#x, expected %#x", what,
				    first + k / WORDS_PER_PAGE, k % WORDS_PER_PAGE, b[k], want);
	}
	return true;
}

/* Retry a command while it reports -EBUSY (the fault pass timed out on
 * collisions with other threads' invalidations: legitimate). */
#define RETRY_BUSY(w, rc, call)                                                           \
	do {                                                                              \
		int tries_ = 0;                                                           \
		while (((rc) = (call)) == -EBUSY && ++tries_ < MAX_RETRIES)               \
			(w)->busy++;                                                      \
	} while (0)

static bool op_cpu_write(struct worker *w)
{
	uint64_t first = rnd(&w->rng) % WWORDS;
	uint64_t n = 1 + rnd(&w->rng) % (2 * WORDS_PER_PAGE);
	uint32_t v = (uint32_t)rnd(&w->rng);
	uint32_t tmp[2 * WORDS_PER_PAGE];
	int rc;

	if (first + n > WWORDS)
		n = WWORDS - first;
	for (uint64_t k = 0; k < n; k++)
		tmp[k] = v + (uint32_t)k;
	rc = dmm_write(w->mm, w->base + first * 4, tmp, n * 4);
	if (rc)
		return werr(w, "dmm_write = %s", errname(rc));
	memcpy(&w->shadow[first], tmp, n * 4);
	return true;
}

static bool op_cpu_read(struct worker *w)
{
	uint64_t p = rnd(&w->rng) % WPAGES;
	int rc = dmm_read(w->mm, PAGE_ADDR(w->base, p), w->buf, PG);

	if (rc)
		return werr(w, "dmm_read = %s", errname(rc));
	return check_buf(w, w->buf, p, 1, "cpu read");
}

static bool op_dev_read(struct worker *w)
{
	struct mirror_result res;
	int rc;

	RETRY_BUSY(w, rc, mirror_read(w->m, w->base, WPAGES, w->buf, &res));
	if (rc)
		return werr(w, "mirror_read = %s", errname(rc));
	if (res.cpages != WPAGES)
		return werr(w, "mirror_read cpages %" PRIu64, res.cpages);
	return check_buf(w, w->buf, 0, WPAGES, "device read");
}

static bool op_dev_write(struct worker *w)
{
	uint64_t p = rnd(&w->rng) % WPAGES, n = 1 + rnd(&w->rng) % 3;
	uint32_t v = (uint32_t)rnd(&w->rng);
	uint32_t *b = (uint32_t *)w->buf;
	struct mirror_result res;
	int rc;

	if (p + n > WPAGES)
		n = WPAGES - p;
	for (uint64_t k = 0; k < n * WORDS_PER_PAGE; k++)
		b[k] = v ^ (uint32_t)(k * 2654435761u);
	/* A failed write may have written some pages: retrying writes the
	 * same data, so the shadow is right once it succeeds. */
	RETRY_BUSY(w, rc, mirror_write(w->m, PAGE_ADDR(w->base, p), n, w->buf, &res));
	if (rc)
		return werr(w, "mirror_write = %s", errname(rc));
	memcpy(&w->shadow[p * WORDS_PER_PAGE], b, n * PG);
	return true;
}

static bool op_to_dev(struct worker *w)
{
	uint64_t p = rnd(&w->rng) % WPAGES, n = 1 + rnd(&w->rng) % WPAGES;
	struct mirror_result res;
	int rc;

	if (p + n > WPAGES)
		n = WPAGES - p;
	memset(w->buf, CANARY, n * PG);
	rc = mirror_migrate_to_dev(w->m, PAGE_ADDR(w->base, p), n, w->buf, &res);
	if (rc == -ENOENT) {
		/*
		 * A page of this device whose table entry an invalidation
		 * erased (e.g. a coherent page after its exclusive access was
		 * revoked) is neither migrated nor read back: see
		 * test_mirror's migrate_to_dev_counts_own_* tests. Fault the
		 * range into the mirror; then the migration must succeed.
		 */
		w->enoent++;
		for (uint64_t i = 0; i < n * PG; i++)
			if (w->buf[i] != CANARY)
				return werr(w, "migrate_to_dev failed with -ENOENT but wrote its buffer");
		RETRY_BUSY(w, rc, mirror_read(w->m, PAGE_ADDR(w->base, p), n, w->buf, &res));
		if (rc)
			return werr(w, "mirror_read = %s", errname(rc));
		rc = mirror_migrate_to_dev(w->m, PAGE_ADDR(w->base, p), n, w->buf, &res);
	}
	if (rc)
		return werr(w, "migrate_to_dev(page %" PRIu64 ", %" PRIu64 ") = %s", p, n, errname(rc));
	if (res.cpages != n)
		return werr(w, "migrate_to_dev cpages %" PRIu64 ", expected %" PRIu64, res.cpages, n);
	return check_buf(w, w->buf, p, n, "migrate-to-dev read-back");
}

static bool op_to_sys(struct worker *w)
{
	uint64_t p = rnd(&w->rng) % WPAGES, n = 1 + rnd(&w->rng) % WPAGES;
	struct mirror_result res;
	int rc;

	if (p + n > WPAGES)
		n = WPAGES - p;
	rc = mirror_migrate_to_sys(w->m, PAGE_ADDR(w->base, p), n, &res);
	if (rc)
		return werr(w, "migrate_to_sys = %s", errname(rc));
	if (res.cpages > n)
		return werr(w, "migrate_to_sys cpages %" PRIu64 " > %" PRIu64, res.cpages, n);
	return true;
}

static bool op_atomic_add(struct worker *w)
{
	uint64_t p = rnd(&w->rng) % WPAGES;
	uint32_t v = 1 + (uint32_t)(rnd(&w->rng) % 1000);
	struct mirror_result res;
	int rc;

	/* One page: on -EBUSY nothing was added. */
	RETRY_BUSY(w, rc, mirror_atomic_add(w->m, PAGE_ADDR(w->base, p), 1, v, &res));
	if (rc)
		return werr(w, "atomic_add = %s", errname(rc));
	for (uint64_t k = 0; k < WORDS_PER_PAGE; k++)
		w->shadow[p * WORDS_PER_PAGE + k] += v;
	return true;
}

static bool op_exclusive(struct worker *w)
{
	uint64_t p = rnd(&w->rng) % WPAGES;
	struct mirror_result res;
	int rc;

	RETRY_BUSY(w, rc, mirror_exclusive(w->m, PAGE_ADDR(w->base, p), 1, w->buf, &res));
	if (rc)
		return werr(w, "exclusive = %s", errname(rc));
	return check_buf(w, w->buf, p, 1, "exclusive read-back");
}

static bool op_snapshot(struct worker *w)
{
	uint8_t bytes[WPAGES];
	struct mirror_result res;
	int rc;

	RETRY_BUSY(w, rc, mirror_snapshot(w->m, w->base, WPAGES, bytes, &res));
	if (rc)
		return werr(w, "snapshot = %s", errname(rc));
	for (int i = 0; i < WPAGES; i++) {
		uint8_t b = bytes[i];

		/* Mapped anonymous memory: never ERROR, never a PMD, and
		 * never another device's page (no one else touches it). */
		if (b == MIRROR_SNAP_ERROR || (b & (MIRROR_SNAP_PMD | MIRROR_SNAP_PUD)) ||
		    (b & 0x70) == MIRROR_SNAP_OTHER_PRIVATE || (b & 0x70) == MIRROR_SNAP_OTHER_COHERENT ||
		    (b != 0 && !(b & 3)))
			return werr(w, "snapshot byte of page %d = %#x", i, b);
	}
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	bool (*const ops[])(struct worker *) = {
		op_cpu_write, op_cpu_read, op_dev_read, op_dev_write, op_to_dev,
		op_to_sys,    op_atomic_add, op_exclusive, op_snapshot,
	};

	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->ops; i++) {
		unsigned int k = (unsigned int)(rnd(&w->rng) % (sizeof(ops) / sizeof(ops[0])));

		w->counts[k]++;
		if (!ops[k](w))
			break;
	}
	return NULL;
}

static void final_check(struct dmm_system *sys, struct worker *ws)
{
	for (int t = 0; t < NWORKERS; t++) {
		struct worker *w = &ws[t];

		if (w->err[0])
			fail_msg("%s", w->err);
		/* Through the mirror, then the CPU. */
		if (!op_dev_read(w))
			fail_msg("%s", w->err);
		OK(dmm_read(w->mm, w->base, w->buf, WPAGES * PG));
		if (!check_buf(w, w->buf, 0, WPAGES, "final cpu read"))
			fail_msg("%s", w->err);
	}
	CHECK_OK(sys);
}

static void workers_on_disjoint_ranges_agree_with_their_shadows(void **state)
{
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct mirror_device *dp, *dc;
	struct mirror *mp, *mc;
	struct worker *ws;
	pthread_barrier_t start;
	const long ops = SLOW_BUILD ? 800 : 20000;
	uint64_t used_p, used_c, fr;

	(void)state;
	sys = sys_new(8192);
	assert_non_null(sys);
	OK(dmm_mm_create(sys, &mm));
	OK(new_device(sys, "stress-private", DMM_MEMORY_DEVICE_PRIVATE, &dp));
	OK(new_device(sys, "stress-coherent", DMM_MEMORY_DEVICE_COHERENT, &dc));
	OK(mirror_open(dp, mm, &mp));
	OK(mirror_open(dc, mm, &mc));
	ws = calloc(NWORKERS, sizeof(*ws));
	assert_non_null(ws);
	TRUE(pthread_barrier_init(&start, NULL, NWORKERS) == 0);
	for (int t = 0; t < NWORKERS; t++) {
		struct worker *w = &ws[t];

		w->id = t;
		w->start = &start;
		w->mm = mm;
		w->m = (t & 1) ? mc : mp;
		w->base = PAGE_ADDR(TBASE, (uint64_t)t * WSTRIDE);
		w->rng = splitmix(g_seed + 0x1000 + (uint64_t)t) | 1;
		w->ops = ops;
		MAP_ANON(mm, w->base, WPAGES);
		/* Start from a known pattern, half populated. */
		for (uint64_t k = 0; k < WWORDS / 2; k++)
			w->shadow[k] = (uint32_t)(t << 24) + (uint32_t)k;
		OK(dmm_write(mm, w->base, w->shadow, WWORDS / 2 * 4));
	}
	CHECK_OK(sys);
	for (int t = 0; t < NWORKERS; t++)
		TRUE(pthread_create(&ws[t].th, NULL, worker_main, &ws[t]) == 0);
	for (int t = 0; t < NWORKERS; t++)
		TRUE(pthread_join(ws[t].th, NULL) == 0);
	pthread_barrier_destroy(&start);
	for (int t = 0; t < NWORKERS; t++) {
		struct worker *w = &ws[t];

		printf("  worker %d (%s): cpu-w %lu cpu-r %lu dev-r %lu dev-w %lu to-dev %lu to-sys %lu "
		       "add %lu excl %lu snap %lu, EBUSY retries %lu, to-dev ENOENT %lu\n",
		       t, (t & 1) ? "coherent" : "private", w->counts[0], w->counts[1], w->counts[2],
		       w->counts[3], w->counts[4], w->counts[5], w->counts[6], w->counts[7], w->counts[8],
		       w->busy, w->enoent);
	}
	final_check(sys, ws);
	mirror_pool(dp, &used_p, &fr);
	TRUE(used_p <= (uint64_t)NWORKERS / 2 * WPAGES);
	mirror_pool(dc, &used_c, &fr);
	TRUE(used_c <= (uint64_t)NWORKERS / 2 * WPAGES);

	/* Everything back to system memory: the data stays. */
	OK(mirror_release(dp));
	OK(mirror_release(dc));
	POOL(dp, 0);
	POOL(dc, 0);
	CHECK_OK(sys);
	final_check(sys, ws);
	mirror_device_destroy(dp);
	mirror_device_destroy(dc);
	CHECK_OK(sys);
	dmm_mm_exit(mm);
	CHECK_OK(sys);
	dmm_system_destroy(sys);
	free(ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(device_read_racing_munmap_never_crashes_private),
		cmocka_unit_test(device_read_racing_munmap_never_crashes_coherent),
		cmocka_unit_test(workers_on_disjoint_ranges_agree_with_their_shadows),
	};

	return cmocka_run_group_tests(tests, seed_setup, NULL);
}
