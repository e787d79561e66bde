/* SPDX-License-Identifier: MIT */
/*
 * The policy engine's virtual clock (managed-memory.md §5.6): the link
 * presets against the numbers of §2.2, one transfer in flight per
 * direction, the fault-service costs charged per batch, stalls and
 * replays on per-stream clocks.
 */
#include "policy_helpers.h"

#include "policy/engine.h"

#define NEAR(actual, expected, tol)                                                                  \
	do {                                                                                         \
		long long a_ = (long long)(actual), e_ = (long long)(expected);                       \
		if (a_ < e_ - (long long)(tol) || a_ > e_ + (long long)(tol))                         \
			h_fail(__FILE__, __LINE__, "%s = %lld, expected %lld +- %lld", #actual, a_, e_, \
			       (long long)(tol));                                                     \
	} while (0)

/* §2.2's table: the atan model at 4 KiB ... 1 MiB. */
static void test_uvmsmart_curve(void **state)
{
	struct dmm_timing t;

	(void)state;
	OK(dmm_timing_parse("uvmsmart-pcie3", &t));
	NEAR(dmm_timing_transfer_ns(&t, 4096), 1760, 10);
	NEAR(dmm_timing_transfer_ns(&t, 64 * 1024), 5880, 10);
	NEAR(dmm_timing_transfer_ns(&t, 128 * 1024), 10910, 10);
	NEAR(dmm_timing_transfer_ns(&t, 256 * 1024), 21060, 10);
	NEAR(dmm_timing_transfer_ns(&t, 512 * 1024), 41400, 50);
	NEAR(dmm_timing_transfer_ns(&t, 1024 * 1024), 82100, 50);
}

/* pascal-pcie3: max(1.7 µs, 0.72 µs + B / 12.2 GB/s); custom: α + B/β. */
static void test_affine_presets(void **state)
{
	struct dmm_timing t;

	(void)state;
	OK(dmm_timing_parse("pascal-pcie3", &t));
	EQ(dmm_timing_transfer_ns(&t, 4096), 1700);
	EQ(dmm_timing_transfer_ns(&t, 1024 * 1024), 720 + 1048576ULL * 1000 / 12200);
	EQ(dmm_timing_transfer_ns(&t, 0), 0);
	OK(dmm_timing_parse("custom:500:25000", &t));
	EQ(t.preset, DMM_TIMING_CUSTOM);
	EQ(dmm_timing_transfer_ns(&t, 1000000), 500 + 40000);
	EXPECT_RC(-EINVAL, dmm_timing_parse("custom:500", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse("custom:500:0", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse("custom:x:1", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse("custom:-1:5", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse("custom:5:-1", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse("custom:+5:1", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse("custom: 5:1", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse("pcie9", &t));
	EXPECT_RC(-EINVAL, dmm_timing_parse(NULL, &t));
}

/* One transfer in flight per lane: the second waits for the first; the
 * other direction does not. */
static void test_lanes(void **state)
{
	struct dmm_timing t = { .preset = DMM_TIMING_PASCAL_PCIE3 };
	struct lane htod = { 0 }, dtoh = { 0 };
	uint64_t d = dmm_timing_transfer_ns(&t, 65536);

	(void)state;
	EQ(lane_transfer(&t, &htod, 100, 65536), 100 + d);
	EQ(lane_transfer(&t, &htod, 100, 65536), 100 + 2 * d);
	EQ(lane_transfer(&t, &dtoh, 100, 65536), 100 + d);
	EQ(lane_transfer(&t, &htod, 10 * d, 65536), 11 * d); /* idle lane: starts at once */
	EQ(htod.bytes, 3 * 65536);
	EQ(htod.busy_ns, 3 * d);
}

/* A device fault: the stream stalls from its fault to the replay after
 * the page's transfer; the batch costs 11.6 µs per block + 0.22 µs per
 * page before the transfer (pascal). */
static void test_fault_stall_time(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	struct dmm_stream_info si;
	struct dmm_timing t = { .preset = DMM_TIMING_PASCAL_PCIE3 };
	uint64_t expect;
	uint32_t v = 1;

	(void)state;
	TRUE(p != NULL);
	OK(dmm_engine_compute(p->eng, p->gpu, 0, 5000));
	EXPECT_RC(-EAGAIN, managed_access(p->dev, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	OK(dmm_engine_stream(p->eng, p->gpu, 0, &si));
	TRUE(si.stalled);
	EQ(si.clock, 5000);
	OK(dmm_engine_service(p->eng, p->gpu, NULL));
	OK(dmm_engine_stream(p->eng, p->gpu, 0, &si));
	TRUE(!si.stalled);
	expect = 5000 + 11600 + 220 + dmm_timing_transfer_ns(&t, PG);
	EQ(si.clock, expect);
	EQ(stats_of(p->eng).t_fault_stall, expect - 5000);
	EQ(stats_of(p->eng).t_compute, 5000);
	EQ(stats_of(p->eng).sim_time_ns, expect);
	OK(managed_access(p->dev, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	/* Another stream, not stalled, kept its own clock. */
	OK(dmm_engine_stream(p->eng, p->gpu, 1, &si));
	EQ(si.clock, 0);
	ENGINE_CHECK(p->eng);
	pfx_free(p);
}

static uint32_t prefetch_next3(void *ctx, const struct dmm_block_view *blk, unsigned int dst,
			       const struct dmm_pmask *faulted, struct dmm_pmask *out)
{
	(void)ctx;
	(void)blk;
	(void)dst;
	for (unsigned int i = 0; i < DMM_MBLOCK_PAGES; i++)
		if (dmm_pmask_test(faulted, i))
			for (unsigned int k = 1; k <= 3 && i + k < DMM_MBLOCK_PAGES; k++)
				out->w[(i + k) / 64] |= 1ULL << ((i + k) % 64);
	return 7;
}

/* The 0.22 µs per page is per page of the fault group: the three pages a
 * policy prefetches with one fault cost like faulted ones (§2.2). */
static void test_fault_group_pages(void **state)
{
	static const struct dmm_policy_ops ops = { .name = "next3", .prefetch = prefetch_next3 };
	struct dmm_engine_config cfg = { .policy = &ops };
	struct dmm_timing t = { .preset = DMM_TIMING_PASCAL_PCIE3 };
	struct dmm_stream_info si;
	struct dmm_system *sys = sys_new(1024);
	struct dmm_engine *eng;
	struct managed_dev *dev;
	struct dmm_mm *mm;
	uint32_t v = 1;

	(void)state;
	OK(dmm_mm_create(sys, &mm));
	OK(dmm_engine_create(mm, &cfg, &eng));
	OK(managed_dev_create(sys, eng, 64, 0, &dev));
	MAP_ANON(mm, TBASE, 16);
	OK(dmm_engine_range_add(eng, TBASE, 16 * PG));
	EXPECT_RC(-EAGAIN, managed_access(dev, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	OK(dmm_engine_service(eng, managed_dev_proc(dev), NULL));
	EQ(managed_dev_used(dev), 4);
	OK(dmm_engine_stream(eng, managed_dev_proc(dev), 0, &si));
	EQ(si.clock, 11600 + 4 * 220 + dmm_timing_transfer_ns(&t, 4 * PG));
	dmm_engine_destroy(eng);
	managed_dev_destroy(dev);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
}

/* A CPU fault on a page the device got is not earlier than the batch
 * that moved it there, whatever the CPU stream's own clock says. */
static void test_cpu_fault_after_device_batch(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	struct dmm_timing t = { .preset = DMM_TIMING_PASCAL_PCIE3 };
	struct dmm_stream_info gpu, cpu;
	uint32_t v = 1;

	(void)state;
	TRUE(p != NULL);
	OK(managed_run(p->dev, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	OK(dmm_engine_stream(p->eng, p->gpu, 0, &gpu));
	EQ(LOAD(p->mm, TBASE), 1);
	OK(dmm_engine_stream(p->eng, DMM_PROC_CPU, 0, &cpu));
	EQ(cpu.clock, gpu.clock + 11600 + dmm_timing_transfer_ns(&t, PG));
	ENGINE_CHECK(p->eng);
	pfx_free(p);
}

/* A wait moves a stream's clock forward only, as idle time: the breakdown
 * does not change; sim time follows. */
static void test_wait(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	struct dmm_stream_info si;

	(void)state;
	TRUE(p != NULL);
	OK(dmm_engine_compute(p->eng, p->gpu, 3, 1000));
	OK(dmm_engine_wait(p->eng, p->gpu, 3, 7000));
	OK(dmm_engine_stream(p->eng, p->gpu, 3, &si));
	EQ(si.clock, 7000);
	OK(dmm_engine_wait(p->eng, p->gpu, 3, 2000)); /* never backwards */
	OK(dmm_engine_stream(p->eng, p->gpu, 3, &si));
	EQ(si.clock, 7000);
	OK(dmm_engine_wait(p->eng, DMM_PROC_CPU, 1, 9000));
	OK(dmm_engine_stream(p->eng, DMM_PROC_CPU, 1, &si));
	EQ(si.clock, 9000);
	EQ(stats_of(p->eng).t_compute, 1000);
	EQ(stats_of(p->eng).t_fault_stall, 0);
	EQ(stats_of(p->eng).sim_time_ns, 9000);
	EXPECT_RC(-EINVAL, dmm_engine_wait(p->eng, p->gpu + 1, 0, 1));
	EXPECT_RC(-EINVAL, dmm_engine_wait(NULL, p->gpu, 0, 1));
	pfx_free(p);
}

/* The tunables by index: the engine's, then the policy's, then NULL; each
 * name is one dmm_engine_get knows. */
static void test_tunable_names(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	unsigned int i;
	int64_t v;

	(void)state;
	TRUE(p != NULL);
	STREQ(dmm_engine_tunable_name_at(p->eng, 0), "fault_batch_count");
	for (i = 0; dmm_engine_tunable_name_at(p->eng, i); i++)
		OK(dmm_engine_get(p->eng, dmm_engine_tunable_name_at(p->eng, i), &v));
	EQ(i, 7 + dmm_policy_find("ondemand")->nr_tunables);
	TRUE(dmm_engine_tunable_name_at(NULL, 0) == NULL);
	pfx_free(p);
}

/* Per-batch HtoD bytes: one entry per serviced batch. */
static void test_per_batch_htod(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	uint64_t b[4] = { 0 };
	uint32_t v = 0;

	(void)state;
	TRUE(p != NULL);
	OK(managed_run(p->dev, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	OK(managed_run(p->dev, 0, TBASE + 8 * PG, DMM_ACCESS_READ, &v, sizeof(v)));
	OK(managed_run(p->dev, 0, TBASE + 16 * PG, DMM_ACCESS_PREFETCH, NULL, 3 * PG));
	EQ(dmm_engine_batch_htod(p->eng, b, 4), 3);
	EQ(b[0], PG);
	EQ(b[1], PG);
	EQ(b[2], 3 * PG);
	/* first_touch_transfer=0: a first touch on the device is zero-filled
	 * there, without a transfer. */
	OK(dmm_engine_set(p->eng, "first_touch_transfer", 0));
	OK(managed_run(p->dev, 0, TBASE + 40 * PG, DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(dmm_engine_batch_htod(p->eng, b, 4), 4);
	EQ(b[3], 0);
	EQ(stats_of(p->eng).htod_pages, 6);
	ENGINE_CHECK(p->eng);
	pfx_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uvmsmart_curve),
		cmocka_unit_test(test_affine_presets),
		cmocka_unit_test(test_lanes),
		cmocka_unit_test(test_fault_stall_time),
		cmocka_unit_test(test_fault_group_pages),
		cmocka_unit_test(test_cpu_fault_after_device_batch),
		cmocka_unit_test(test_per_batch_htod),
		cmocka_unit_test(test_wait),
		cmocka_unit_test(test_tunable_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
