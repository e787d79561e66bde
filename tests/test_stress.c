/* SPDX-License-Identifier: MIT */
/*
 * Concurrency stress (the 'concurrency' suite, also run under TSan).
 *
 * One address space, NTHREADS threads. Each thread owns a range of pages
 * and keeps a shadow copy of what every word of it must hold; all threads
 * also fetch_add distinct amounts into a shared page of counters:
 *
 *   TBASE
 *   | counters | thread 0: RANGE pages | thread 1 | thread 2 | thread 3 |
 *     (shared)
 *
 * On its own range a thread writes, reads, cmpxchgs, mprotects, munmaps and
 * remaps, MADV_DONTNEEDs, pins, and forks (the child checks the range
 * against the shadow, writes to its copy, and exits). Since the ranges are
 * adjacent they start as one VMA, so every mprotect/munmap/mmap splits or
 * merges VMAs that the other threads are faulting in at the same time, and
 * every fork write-protects the other threads' pages and the counters under
 * their feet.
 *
 * The run is a number of rounds; between rounds (threads joined, system
 * quiescent) every word of every range and every counter is checked and
 * dmm_check must pass. The seed is printed; set DEVMM_SEED to repeat a run
 * (thread interleavings still vary). DEVMM_STRESS_OPS overrides the number
 * of operations per thread.
 */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define NTHREADS 4
#define RANGE 16 /* pages per thread */
#define RANGE_WORDS (RANGE * WORDS_PER_PAGE)
#define NCOUNTERS 64
#define ROUNDS 8

#define COUNTERS TBASE
#define RANGE_BASE(t) (TBASE + (1 + (uint64_t)(t) * RANGE) * DMM_PAGE_SIZE)

struct worker {
	pthread_t th;
	pthread_barrier_t *start; /* all threads of a round begin together */
	int id;
	uint64_t rng;
	struct dmm_system *sys;
	struct dmm_mm *mm;
	long ops; /* per round */
	uint32_t shadow[RANGE_WORDS];
	uint32_t added[NCOUNTERS]; /* sum of this thread's fetch_adds per counter */
	unsigned long nr_fork, nr_pin, nr_mprotect, nr_remap, nr_dontneed;
	char err[512]; /* first failure, reported by the main thread */
};

static uint64_t rnd(struct worker *w)
{
	uint64_t x = w->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#define WFAIL(w, ...)                                                                      \
	do {                                                                               \
		if (!(w)->err[0])                                                          \
			snprintf((w)->err, sizeof((w)->err), __VA_ARGS__);                 \
		return false;                                                              \
	} while (0)

#define WCALL(w, expected, expr)                                                           \
	do {                                                                               \
		long r_ = (long)(expr);                                                    \
		if (r_ != (long)(expected))                                                \
			WFAIL(w, "thread %d line %d: %s = %ld (%s), expected %ld", (w)->id, \
			      __LINE__, #expr, r_, errname(r_), (long)(expected));         \
	} while (0)

static uint64_t waddr(struct worker *w, size_t word)
{
	return RANGE_BASE(w->id) + word * sizeof(uint32_t);
}

/* Compare words [first, first + n) of the range in mm with the shadow. */
static bool check_span(struct worker *w, struct dmm_mm *mm, size_t first, size_t n,
		       const char *what)
{
	uint32_t buf[RANGE_WORDS];

	WCALL(w, 0, dmm_read(mm, waddr(w, first), buf, n * sizeof(uint32_t)));
	for (size_t k = 0; k < n; k++)
		if (buf[k] != w->shadow[first + k])
			WFAIL(w, "thread %d (%s): word %zu of its range (%#" PRIx64 ") = %#x, expected %#x",
			      w->id, what, first + k, waddr(w, first + k), buf[k], w->shadow[first + k]);
	return true;
}

static void zero_shadow_pages(struct worker *w, size_t page, size_t npages)
{
	memset(&w->shadow[page * WORDS_PER_PAGE], 0, npages * PG);
}

/* A random run of pages inside the thread's range. */
static void pick_pages(struct worker *w, size_t *page, size_t *npages)
{
	*npages = 1 + rnd(w) % 4;
	*page = rnd(w) % (RANGE - *npages + 1);
}

static bool op_store(struct worker *w)
{
	size_t k = rnd(w) % RANGE_WORDS;
	uint32_t v = (uint32_t)rnd(w);

	WCALL(w, 0, dmm_store32(w->mm, waddr(w, k), v));
	w->shadow[k] = v;
	return true;
}

static bool op_load(struct worker *w)
{
	size_t k = rnd(w) % RANGE_WORDS;
	uint32_t v = 0;

	WCALL(w, 0, dmm_load32(w->mm, waddr(w, k), &v));
	if (v != w->shadow[k])
		WFAIL(w, "thread %d: load32 of word %zu = %#x, expected %#x", w->id, k, v, w->shadow[k]);
	return true;
}

static bool op_write_span(struct worker *w)
{
	uint32_t buf[64];
	size_t n = 1 + rnd(w) % 64;
	size_t k = rnd(w) % (RANGE_WORDS - n + 1);

	for (size_t i = 0; i < n; i++)
		buf[i] = (uint32_t)rnd(w);
	WCALL(w, 0, dmm_write(w->mm, waddr(w, k), buf, n * sizeof(uint32_t)));
	memcpy(&w->shadow[k], buf, n * sizeof(uint32_t));
	return true;
}

static bool op_read_span(struct worker *w)
{
	size_t n = 1 + rnd(w) % 2048;
	size_t k = rnd(w) % (RANGE_WORDS - n + 1);

	return check_span(w, w->mm, k, n, "read");
}

static bool op_cmpxchg(struct worker *w)
{
	size_t k = rnd(w) % RANGE_WORDS;
	bool hit = rnd(w) & 1;
	uint32_t expected = hit ? w->shadow[k] : w->shadow[k] ^ 0x80000000u;
	uint32_t desired = (uint32_t)rnd(w), old = 0;

	WCALL(w, 0, dmm_cmpxchg32(w->mm, waddr(w, k), expected, desired, &old));
	if (old != w->shadow[k])
		WFAIL(w, "thread %d: cmpxchg32 of word %zu returned old %#x, expected %#x", w->id, k, old,
		      w->shadow[k]);
	if (hit)
		w->shadow[k] = desired;
	return true;
}

static bool op_counter_add(struct worker *w)
{
	size_t c = rnd(w) % NCOUNTERS;
	uint32_t delta = (uint32_t)(w->id + 1) * 0x01010101u, old;

	WCALL(w, 0, dmm_fetch_add32(w->mm, COUNTERS + c * sizeof(uint32_t), delta, &old));
	w->added[c] += delta;
	return true;
}

/* mprotect part of the range read-only, check that writes fault and reads
 * see the data, then make it writable again. */
static bool op_mprotect(struct worker *w)
{
	size_t page, np, k;
	uint32_t v = 0;

	pick_pages(w, &page, &np);
	k = page * WORDS_PER_PAGE + rnd(w) % (np * WORDS_PER_PAGE);
	WCALL(w, 0, dmm_mprotect(w->mm, waddr(w, page * WORDS_PER_PAGE), np * PG, DMM_PROT_READ));
	WCALL(w, -EFAULT, dmm_store32(w->mm, waddr(w, k), ~w->shadow[k]));
	WCALL(w, 0, dmm_load32(w->mm, waddr(w, k), &v));
	if (v != w->shadow[k])
		WFAIL(w, "thread %d: word %zu read-only = %#x, expected %#x", w->id, k, v, w->shadow[k]);
	WCALL(w, 0, dmm_mprotect(w->mm, waddr(w, page * WORDS_PER_PAGE), np * PG, RW));
	w->nr_mprotect++;
	return true;
}

/* munmap part of the range and map fresh anonymous memory there. */
static bool op_remap(struct worker *w)
{
	size_t page, np;
	uint64_t a, out = 0;
	uint32_t v;

	pick_pages(w, &page, &np);
	a = waddr(w, page * WORDS_PER_PAGE);
	WCALL(w, 0, dmm_munmap(w->mm, a, np * PG));
	WCALL(w, -EFAULT, dmm_load32(w->mm, a, &v));
	WCALL(w, 0, dmm_mmap(w->mm, a, np * PG, RW, ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL, 0,
			     &out));
	if (out != a)
		WFAIL(w, "thread %d: mmap at %#" PRIx64 " returned %#" PRIx64, w->id, a, out);
	zero_shadow_pages(w, page, np);
	w->nr_remap++;
	return true;
}

static bool op_dontneed(struct worker *w)
{
	size_t page, np;

	pick_pages(w, &page, &np);
	WCALL(w, 0, dmm_madvise(w->mm, waddr(w, page * WORDS_PER_PAGE), np * PG, DMM_MADV_DONTNEED));
	zero_shadow_pages(w, page, np);
	w->nr_dontneed++;
	return true;
}

static bool op_fork(struct worker *w);

/* Pin a page for writing, sometimes fork, write through the CPU, check that
 * the CPU wrote the pinned frame (no fork, ours or another thread's, may
 * have moved it: a pinned exclusive page is copied for the child instead),
 * unpin. */
static bool op_pin(struct worker *w)
{
	size_t page = rnd(w) % RANGE, k = page * WORDS_PER_PAGE + rnd(w) % WORDS_PER_PAGE;
	uint32_t v = (uint32_t)rnd(w);
	uint64_t pfn = 0;
	struct dmm_pte_info pte;

	WCALL(w, 1, dmm_get_user_pages(w->mm, waddr(w, page * WORDS_PER_PAGE), 1,
				       DMM_FOLL_PIN | DMM_FOLL_WRITE, &pfn));
	if ((rnd(w) & 3) == 0 && !op_fork(w)) {
		dmm_unpin_user_pages(w->sys, &pfn, 1);
		return false;
	}
	WCALL(w, 0, dmm_store32(w->mm, waddr(w, k), v));
	w->shadow[k] = v;
	WCALL(w, 0, dmm_pte_query(w->mm, waddr(w, k), &pte));
	if (pte.kind != DMM_PTE_PRESENT || pte.pfn != pfn) {
		dmm_unpin_user_pages(w->sys, &pfn, 1);
		WFAIL(w, "thread %d: pinned pfn %" PRIu64 " but the CPU wrote through %s pfn %" PRIu64,
		      w->id, pfn, dmm_pte_kind_name(pte.kind), pte.pfn);
	}
	dmm_unpin_user_pages(w->sys, &pfn, 1);
	w->nr_pin++;
	return true;
}

/* Fork; the child checks this thread's range, writes to its copy, exits. */
static bool op_fork(struct worker *w)
{
	struct dmm_mm *child = NULL;
	size_t k = rnd(w) % RANGE_WORDS;
	uint32_t v = 0;
	bool ok;

	WCALL(w, 0, dmm_fork(w->mm, &child));
	ok = check_span(w, child, 0, RANGE_WORDS, "fork child");
	if (ok && dmm_store32(child, waddr(w, k), ~w->shadow[k]) != 0) {
		snprintf(w->err, sizeof(w->err), "thread %d: store32 in the fork child failed", w->id);
		ok = false;
	}
	if (ok && (dmm_load32(w->mm, waddr(w, k), &v) != 0 || v != w->shadow[k])) {
		snprintf(w->err, sizeof(w->err),
			 "thread %d: the child's write to word %zu showed in the parent (%#x, expected %#x)",
			 w->id, k, v, w->shadow[k]);
		ok = false;
	}
	if (ok && (dmm_load32(child, waddr(w, k), &v) != 0 || v != ~w->shadow[k])) {
		snprintf(w->err, sizeof(w->err), "thread %d: the child lost its own write to word %zu",
			 w->id, k);
		ok = false;
	}
	dmm_mm_exit(child);
	w->nr_fork++;
	return ok;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->ops; i++) {
		unsigned int r = (unsigned int)(rnd(w) % 1000);
		bool ok;

		if (r < 250)
			ok = op_store(w);
		else if (r < 400)
			ok = op_load(w);
		else if (r < 500)
			ok = op_write_span(w);
		else if (r < 560)
			ok = op_read_span(w);
		else if (r < 660)
			ok = op_cmpxchg(w);
		else if (r < 880)
			ok = op_counter_add(w);
		else if (r < 910)
			ok = op_mprotect(w);
		else if (r < 940)
			ok = op_remap(w);
		else if (r < 965)
			ok = op_dontneed(w);
		else if (r < 990)
			ok = op_pin(w);
		else
			ok = op_fork(w);
		if (!ok)
			break;
	}
	return NULL;
}

static uint64_t stress_seed(void)
{
	const char *s = getenv("DEVMM_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static long stress_ops(void)
{
	const char *s = getenv("DEVMM_STRESS_OPS");

	if (s && *s)
		return atol(s);
#if defined(__SANITIZE_THREAD__)
	return 20000;
#elif defined(__SANITIZE_ADDRESS__)
	return 50000;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return 20000;
#elif __has_feature(address_sanitizer)
	return 50000;
#endif
#endif
	return 100000;
}

/* Main thread, system quiescent: every word of every range, the counters,
 * and the invariants. */
static void verify_all(struct dmm_system *sys, struct dmm_mm *mm, struct worker *ws)
{
	uint32_t counters[NCOUNTERS];

	for (int t = 0; t < NTHREADS; t++) {
		if (!check_span(&ws[t], mm, 0, RANGE_WORDS, "final check"))
			fail_msg("%s", ws[t].err);
	}
	OK(dmm_read(mm, COUNTERS, counters, sizeof(counters)));
	for (int c = 0; c < NCOUNTERS; c++) {
		uint32_t want = 0;

		for (int t = 0; t < NTHREADS; t++)
			want += ws[t].added[c];
		if (counters[c] != want)
			fail_msg("counter %d = %#x, expected %#x (a fetch_add was lost)", c, counters[c],
				 want);
	}
	CHECK_OK(sys);
}

static void test_threads_mixing_access_mprotect_munmap_madvise_pin_and_fork(void **state)
{
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct worker *ws;
	uint64_t seed = stress_seed();
	long ops = stress_ops();
	struct dmm_stats s0, s1;
	unsigned long forks = 0, pins = 0;
	pthread_barrier_t start;

	(void)state;
	printf("test_stress: seed %" PRIu64 " (set DEVMM_SEED=%" PRIu64 " to repeat), %ld ops per thread\n",
	       seed, seed, ops);
	fflush(stdout);
	sys = sys_new(1 << 16);
	TRUE(sys != NULL);
	OK(dmm_mm_create(sys, &mm));
	s0 = STATS(sys);
	MAP_ANON(mm, COUNTERS, 1 + NTHREADS * RANGE);
	CHECK_OK(sys);
	ws = calloc(NTHREADS, sizeof(*ws));
	TRUE(ws != NULL);
	TRUE(pthread_barrier_init(&start, NULL, NTHREADS) == 0);
	for (int t = 0; t < NTHREADS; t++) {
		ws[t].start = &start;
		ws[t].id = t;
		ws[t].rng = splitmix(seed + (uint64_t)t) | 1;
		ws[t].sys = sys;
		ws[t].mm = mm;
		ws[t].ops = ops / ROUNDS;
	}

	for (int round = 0; round < ROUNDS; round++) {
		for (int t = 0; t < NTHREADS; t++)
			TRUE(pthread_create(&ws[t].th, NULL, worker_main, &ws[t]) == 0);
		for (int t = 0; t < NTHREADS; t++)
			TRUE(pthread_join(ws[t].th, NULL) == 0);
		for (int t = 0; t < NTHREADS; t++)
			if (ws[t].err[0])
				fail_msg("round %d (seed %" PRIu64 "): %s", round, seed, ws[t].err);
		verify_all(sys, mm, ws);
	}

	for (int t = 0; t < NTHREADS; t++) {
		forks += ws[t].nr_fork;
		pins += ws[t].nr_pin;
		printf("test_stress: thread %d: %lu forks, %lu pins, %lu mprotects, %lu remaps, %lu dontneeds\n",
		       t, ws[t].nr_fork, ws[t].nr_pin, ws[t].nr_mprotect, ws[t].nr_remap,
		       ws[t].nr_dontneed);
	}
	s1 = STATS(sys);
	EQ(s1.fork - s0.fork, forks);
	EQ(s1.fork_failed - s0.fork_failed, 0);
	EQ(s1.pin_pages - s0.pin_pages, pins);
	EQ(s1.unpin_pages - s0.unpin_pages, pins);

	dmm_mm_exit(mm);
	CHECK_OK(sys);
	EQ(dmm_system_nr_free(sys), dmm_system_nr_frames(sys));
	s1 = STATS(sys);
	EQ(s1.frames_alloc - s0.frames_alloc, s1.frames_free - s0.frames_free);
	free(ws);
	pthread_barrier_destroy(&start);
	dmm_system_destroy(sys);
}

/*
 * Several processes fault the same file pages in at once and fetch_add into
 * them through shared mappings, while others map it privately and write
 * their own copies. The file must hold exactly the sum of the adds.
 */
#define FILE_PAGES 8
#define FILE_WORDS (FILE_PAGES * WORDS_PER_PAGE)

struct filer {
	pthread_t th;
	pthread_barrier_t *start;
	int id;
	struct dmm_system *sys;
	struct dmm_file *file;
	long rounds;
	char err[256];
};

static void *filer_main(void *arg)
{
	struct filer *fw = arg;
	struct dmm_mm *mm = NULL;
	const uint64_t S = TBASE, P = TBASE + 0x100000;
	uint32_t old;

	if (dmm_mm_create(fw->sys, &mm) != 0 ||
	    dmm_mmap(mm, S, FILE_PAGES * PG, RW, DMM_MAP_SHARED | DMM_MAP_FIXED, fw->file, 0, NULL) ||
	    dmm_mmap(mm, P, FILE_PAGES * PG, RW, DMM_MAP_PRIVATE | DMM_MAP_FIXED, fw->file, 0, NULL)) {
		snprintf(fw->err, sizeof(fw->err), "filer %d: setup failed", fw->id);
		pthread_barrier_wait(fw->start);
		return NULL;
	}
	pthread_barrier_wait(fw->start);
	for (long r = 0; r < fw->rounds; r++) {
		for (size_t k = 0; k < FILE_WORDS; k += 61) {
			if (dmm_fetch_add32(mm, S + 4 * k, 1, &old) != 0) {
				snprintf(fw->err, sizeof(fw->err), "filer %d: fetch_add32 failed", fw->id);
				goto out;
			}
		}
		/* A private write: this process's copy only. */
		if (dmm_store32(mm, P + 4 * (size_t)(r % FILE_WORDS), 0xdead0000u + (uint32_t)fw->id) != 0) {
			snprintf(fw->err, sizeof(fw->err), "filer %d: private store failed", fw->id);
			goto out;
		}
		if (r % 8 == 7 && dmm_madvise(mm, S, FILE_PAGES * PG, DMM_MADV_DONTNEED) != 0) {
			snprintf(fw->err, sizeof(fw->err), "filer %d: madvise failed", fw->id);
			goto out;
		}
	}
out:
	dmm_mm_exit(mm);
	return NULL;
}

static void test_processes_sharing_a_file_lose_no_fetch_add(void **state)
{
	struct dmm_system *sys = sys_new(1 << 14);
	struct filer fws[NTHREADS];
	struct dmm_file *file;
	long rounds = stress_ops() / 200;
	uint32_t *words;
	pthread_barrier_t start;

	(void)state;
	TRUE(sys != NULL);
	TRUE(pthread_barrier_init(&start, NULL, NTHREADS) == 0);
	OK(dmm_file_create(sys, FILE_PAGES, &file));
	for (int t = 0; t < NTHREADS; t++) {
		memset(&fws[t], 0, sizeof(fws[t]));
		fws[t].start = &start;
		fws[t].id = t;
		fws[t].sys = sys;
		fws[t].file = file;
		fws[t].rounds = rounds;
		TRUE(pthread_create(&fws[t].th, NULL, filer_main, &fws[t]) == 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		TRUE(pthread_join(fws[t].th, NULL) == 0);
	for (int t = 0; t < NTHREADS; t++)
		if (fws[t].err[0])
			fail_msg("%s", fws[t].err);
	CHECK_OK(sys);
	words = malloc(FILE_PAGES * PG);
	TRUE(words != NULL);
	OK(dmm_file_pread(file, words, FILE_PAGES * PG, 0));
	for (size_t k = 0; k < FILE_WORDS; k++) {
		uint32_t want = k % 61 == 0 ? (uint32_t)(NTHREADS * rounds) : 0;

		if (words[k] != want)
			fail_msg("file word %zu = %u, expected %u", k, words[k], want);
	}
	free(words);
	pthread_barrier_destroy(&start);
	dmm_file_put(file);
	CHECK_OK(sys);
	EQ(dmm_system_nr_free(sys), dmm_system_nr_frames(sys));
	dmm_system_destroy(sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_mixing_access_mprotect_munmap_madvise_pin_and_fork),
		cmocka_unit_test(test_processes_sharing_a_file_lose_no_fetch_add),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
