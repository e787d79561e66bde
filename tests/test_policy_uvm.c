/* SPDX-License-Identifier: MIT */
/*
 * The `uvm` policy through the engine (docs/managed-memory.md, "The uvm
 * policy"): the worked example of managed-memory.md §1.3 (per-batch HtoD
 * bytes 64K, 64K, 128K, 256K, 512K, 1M), the CPU fault that pulls back a
 * whole 64 KiB big page, the tunables by their NVIDIA names per run and
 * per range, and the thrashing demonstration of §1.4 (a CPU<->GPU
 * ping-pong on 64 pages: detected, throttled and pinned at 100 µs, far
 * fewer migrations than with thrashing_enable=0; nothing at 1 ms). Both
 * validators (dmm_engine_check, dmm_check) run after every batch and after
 * every CPU access.
 */
#include "policy_helpers.h"

#define KIB 1024ULL
#define BIG (64 * KIB)
#define ROUNDS 200

static int setup(void **state)
{
	struct pfx *p = pfx_new("uvm", 0);

	if (!p)
		return -1;
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	pfx_free(*state);
	return 0;
}

/* §1.3: one fault per batch on 64 KiB blocks 0, 1, 2, 4, 8, 16 of a
 * 2 MiB block; the tree prefetcher doubles what it brings. */
static void worked_example(struct pfx *p, const uint64_t *want)
{
	static const unsigned int big[] = { 0, 1, 2, 4, 8, 16 };
	uint64_t got[8];
	uint32_t v = 0;

	for (unsigned int i = 0; i < 6; i++)
		OK(GPU_RUN(p, 0, TBASE + big[i] * BIG, DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(dmm_engine_batch_htod(p->eng, got, 8), 6);
	for (unsigned int i = 0; i < 6; i++)
		EQ(got[i], want[i]);
}

static void test_worked_example(void **state)
{
	static const uint64_t want[] = { 64 * KIB, 64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB, 1024 * KIB };
	struct pfx *p = *state;
	struct dmm_engine_stats st;

	STREQ(dmm_engine_policy_name(p->eng), "uvm");
	worked_example(p, want);
	st = stats_of(p->eng);
	EQ(st.far_faults, 6);
	EQ(st.pages_by_cause[DMM_CAUSE_FAULT], 6);
	EQ(st.htod_bytes, 2048 * KIB);
	EQ(st.pages_by_cause[DMM_CAUSE_PREFETCH], 512 - 6);
	EQ(p->batches_checked, 6);
}

/* The same touches with the prefetcher off, per run or for the range
 * only: a page per fault. */
static void test_worked_example_prefetch_off(void **state)
{
	static const uint64_t want[] = { 4 * KIB, 4 * KIB, 4 * KIB, 4 * KIB, 4 * KIB, 4 * KIB };
	struct pfx *p = *state;

	OK(dmm_engine_range_set(p->eng, TBASE, "prefetch_enable", 0));
	worked_example(p, want);
}

static void test_worked_example_threshold(void **state)
{
	/* A node qualifies with strictly more than threshold percent of its
	 * leaves set: at 100 none does, and every fault moves its page only. */
	static const uint64_t want[] = { 4 * KIB, 4 * KIB, 4 * KIB, 4 * KIB, 4 * KIB, 4 * KIB };
	struct pfx *p = *state;

	OK(dmm_engine_set(p->eng, "prefetch_threshold", 100));
	worked_example(p, want);
}

/* After the example, a CPU read of one page of a device big page brings
 * back that page and its 15 neighbours: 4K + 60K, the same hint with
 * D = CPU. */
static void test_cpu_fault_pulls_big_page(void **state)
{
	static const uint64_t want[] = { 64 * KIB, 64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB, 1024 * KIB };
	struct pfx *p = *state;
	struct dmm_engine_stats st0, st;

	worked_example(p, want);
	st0 = stats_of(p->eng);
	EQ(LOAD(p->mm, TBASE + 4 * BIG + 5 * PG), 0);
	st = stats_of(p->eng);
	EQ(st.cpu_faults - st0.cpu_faults, 1);
	EQ(st.dtoh_bytes - st0.dtoh_bytes, 64 * KIB);
	EQ(st.pages_by_cause[DMM_CAUSE_FAULT] - st0.pages_by_cause[DMM_CAUSE_FAULT], 1);
	EQ(st.pages_by_cause[DMM_CAUSE_PREFETCH] - st0.pages_by_cause[DMM_CAUSE_PREFETCH], 15);
	for (unsigned int i = 0; i < 16; i++)
		EQ(PTE(p->mm, TBASE + 4 * BIG + i * PG).kind, DMM_PTE_PRESENT);
	EQ(PTE(p->mm, TBASE + 5 * BIG).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

/* Every tunable under its NVIDIA name: NVIDIA's default, settable per run
 * and per range within bounds; the fault_* ones are the engine's (per run
 * only); no name is declared twice. */
static void test_tunables(void **state)
{
	static const struct {
		const char *name;
		int64_t def, bad;
	} t[] = {
		{ "prefetch_enable", 1, 2 },         { "prefetch_threshold", 51, 101 },
		{ "prefetch_min_faults", 1, 21 },    { "thrashing_enable", 1, 2 },
		{ "thrashing_threshold", 3, 8 },     { "thrashing_pin_threshold", 10, 256 },
		{ "thrashing_lapse_usec", 500, 4 },  { "thrashing_nap", 1, 0 },
		{ "thrashing_epoch", 2000, 0 },      { "thrashing_pin", 300, -1 },
		{ "thrashing_max_resets", 4, 256 },
	};
	struct pfx *p = *state;
	int64_t v;

	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		OK(dmm_engine_get(p->eng, t[i].name, &v));
		EQ(v, t[i].def);
		TRUE(dmm_engine_tunable_index(p->eng, t[i].name) >= 0);
		EXPECT_RC(-ERANGE, dmm_engine_set(p->eng, t[i].name, t[i].bad));
		EXPECT_RC(-ERANGE, dmm_engine_range_set(p->eng, TBASE, t[i].name, t[i].bad));
		OK(dmm_engine_range_set(p->eng, TBASE, t[i].name, t[i].def));
		OK(dmm_engine_set(p->eng, t[i].name, t[i].def));
	}
	OK(dmm_engine_set(p->eng, "thrashing_lapse_usec", 1000));
	OK(dmm_engine_get(p->eng, "thrashing_lapse_usec", &v));
	EQ(v, 1000);
	/* The engine's fault_* tunables: one of each, per run only. */
	OK(dmm_engine_get(p->eng, "fault_batch_count", &v));
	EQ(v, 256);
	EQ(dmm_engine_tunable_index(p->eng, "fault_batch_count"), -ENOENT);
	EXPECT_RC(-ENOENT, dmm_engine_range_set(p->eng, TBASE, "fault_batch_count", 1));
	EXPECT_RC(-ENOENT, dmm_engine_set(p->eng, "uvm_perf_prefetch_enable", 1));
}

/*
 * §1.4's demonstration: the GPU and the CPU each write the same 64 pages
 * @rounds times, one write of all 64 every @period ns of their own
 * compute; the stream with the earlier clock runs next (ties: the GPU), as
 * the trace runner orders streams. A throttled GPU stream waits in virtual
 * time while the CPU runs on. Returns the engine's statistics.
 */
static struct dmm_engine_stats pingpong(struct pfx *p, uint64_t period, unsigned int rounds)
{
	static uint8_t buf[64 * DMM_PAGE_SIZE];
	const uint64_t base = TBASE + DMM_MBLOCK_SIZE; /* the second block, untouched so far */
	unsigned int gpu_done = 0, cpu_done = 0, steps = 0;

	while (gpu_done < rounds || cpu_done < rounds) {
		struct dmm_stream_info gs, cs;

		if (++steps > 100 * rounds)
			fail_msg("no progress: gpu %u cpu %u rounds", gpu_done, cpu_done);

		OK(dmm_engine_stream(p->eng, p->gpu, 0, &gs));
		OK(dmm_engine_stream(p->eng, DMM_PROC_CPU, 0, &cs));
		if (gpu_done < rounds && (cpu_done == rounds || gs.clock <= cs.clock)) {
			int rc;

			memset(buf, (int)gpu_done, sizeof(buf));
			rc = managed_access(p->dev, 0, base, DMM_ACCESS_WRITE, buf, sizeof(buf));
			if (rc == -EAGAIN) {
				SERVICE_CHECKED(p);
				continue;
			}
			OK(rc);
			gpu_done++;
			OK(dmm_engine_compute(p->eng, p->gpu, 0, period));
		} else {
			for (unsigned int i = 0; i < 64; i++)
				OK(dmm_store32(p->mm, base + i * PG, cpu_done));
			ENGINE_CHECK(p->eng);
			CHECK_OK(p->sys);
			cpu_done++;
			OK(dmm_engine_compute(p->eng, DMM_PROC_CPU, 0, period));
		}
	}
	/* Whoever wrote last, the contents are one of the two writers'. */
	for (unsigned int i = 0; i < 64; i++) {
		uint32_t v = LOAD(p->mm, base + i * PG);

		TRUE(v == cpu_done - 1 || v == (rounds - 1) * 0x01010101u);
	}
	return stats_of(p->eng);
}

static uint64_t migrations(const struct dmm_engine_stats *st)
{
	return st->htod_pages + st->dtoh_pages;
}

/*
 * Every 100 µs (inside the 500 µs lapse): the pages are detected as
 * thrashing, faults are throttled, pages get pinned, and fewer pages move
 * than with thrashing_enable=0. (With remote mappings, which the engine
 * cannot make yet, a page pinned on the CPU would stop moving for the
 * whole pin; here the GPU naps instead, and a CPU fault ends a GPU pin.)
 */
static void test_thrashing_100us(void **state)
{
	struct pfx *p = *state, *q;
	struct dmm_engine_stats on, off;

	on = pingpong(p, 100000, ROUNDS);
	TRUE(on.throttled > 0);
	TRUE(on.pins > 0);
	TRUE(on.t_throttle > 0);
	q = pfx_new("uvm", 0);
	TRUE(q != NULL);
	OK(dmm_engine_set(q->eng, "thrashing_enable", 0));
	off = pingpong(q, 100000, ROUNDS);
	EQ(off.throttled, 0);
	EQ(off.pins, 0);
	TRUE(migrations(&on) < migrations(&off));
	print_message("100 us, %u rounds: thrashing_enable=1: %" PRIu64 " pages moved, %" PRIu64
		      " throttled, %" PRIu64 " pins; thrashing_enable=0: %" PRIu64 " pages moved\n",
		      ROUNDS, migrations(&on), on.throttled, on.pins, migrations(&off));
	pfx_free(q);
}

/* Every 1 ms (beyond the lapse): nothing is detected, nothing throttled. */
static void test_thrashing_1ms(void **state)
{
	struct pfx *p = *state;
	struct dmm_engine_stats st = pingpong(p, 1000000, ROUNDS);

	EQ(st.throttled, 0);
	EQ(st.pins, 0);
	EQ(st.t_throttle, 0);
	print_message("1 ms, %u rounds: %" PRIu64 " pages moved, no throttling\n", ROUNDS, migrations(&st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_worked_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worked_example_prefetch_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worked_example_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpu_fault_pulls_big_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tunables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thrashing_100us, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thrashing_1ms, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
