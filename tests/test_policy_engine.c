/* SPDX-License-Identifier: MIT */
/*
 * The policy engine (include/devmm/policy.h) with the managed device and
 * the ondemand policy: the API's errors, the fault buffer (fetch,
 * coalesce, sort, replay policies and the per-service limits) on
 * hand-built fault sequences, ondemand moving exactly the faulted pages
 * (far faults == FAULT migrations, §5.9), a CPU access and a munmap in the
 * middle of a run, and a small example of driving the engine. Both
 * validators (dmm_engine_check and dmm_check) run after every batch.
 *
 * The managed range is two blocks at TBASE:
 *
 *   TBASE                      TBASE + 2 MiB               TBASE + 4 MiB
 *   |-- block 0: pages 0..511 --|-- block 1: pages 512..1023 --|
 */
#include "policy_helpers.h"

#include "policy/engine.h"

static int setup(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);

	if (!p || dmm_engine_set(p->eng, "fault_max_batches_per_service", 1))
		return -1;
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	pfx_free(*state);
	return 0;
}

static struct dmm_fault_entry fe(uint64_t addr, enum dmm_access a, uint32_t utlb)
{
	return (struct dmm_fault_entry){ .addr = addr, .access = a, .stream = utlb, .utlb = utlb };
}

/* ------------------------------------------------------------------------ */
/* API errors                                                                */

static void test_api_errors(void **state)
{
	struct pfx *p = *state;
	struct dmm_engine_config bad = { .policy_name = "no-such-policy" };
	struct dmm_range_attrs attrs = { .preferred = 7 };
	struct dmm_engine *e = NULL;
	unsigned int proc;
	int64_t v;

	EXPECT_RC(-EINVAL, dmm_engine_create(NULL, NULL, &e));
	EXPECT_RC(-EINVAL, dmm_engine_create(p->mm, &bad, &e));
	EQ(e, NULL);
	STREQ(dmm_engine_policy_name(p->eng), "ondemand");
	/* Tunables by name, with bounds. */
	OK(dmm_engine_get(p->eng, "fault_batch_count", &v));
	EQ(v, 256);
	EXPECT_RC(-ERANGE, dmm_engine_set(p->eng, "fault_batch_count", 0));
	EXPECT_RC(-ENOENT, dmm_engine_set(p->eng, "no_such_tunable", 1));
	EXPECT_RC(-ENOENT, dmm_engine_range_set(p->eng, TBASE, "fault_batch_count", 2));
	OK(dmm_engine_get(p->eng, "fault_batch_count", &v));
	EQ(v, 256);
	/* Ranges. */
	EXPECT_RC(-EINVAL, dmm_engine_range_add(p->eng, TBASE + 1, PG));
	EXPECT_RC(-EINVAL, dmm_engine_range_add(p->eng, TBASE + 64 * 1024 * 1024, PG)); /* no mapping */
	EXPECT_RC(-EEXIST, dmm_engine_range_add(p->eng, TBASE, PG));
	EXPECT_RC(-ENOENT, dmm_engine_range_remove(p->eng, TBASE + PG));
	EXPECT_RC(-EINVAL, dmm_engine_add_device(p->eng, &(struct dmm_managed_dev_desc){ 0 }, &proc));
	/* Advice: bad processor, not a whole range. */
	EXPECT_RC(-EINVAL, dmm_engine_advise(p->eng, TBASE, PFX_RANGE_PAGES * PG, &attrs));
	attrs.preferred = p->gpu;
	EXPECT_RC(-ENOENT, dmm_engine_advise(p->eng, TBASE, PG, &attrs));
	OK(dmm_engine_advise(p->eng, TBASE, PFX_RANGE_PAGES * PG, &attrs));
	/* Faults: not a device, bad access. */
	EXPECT_RC(-EINVAL, dmm_engine_fault(p->eng, DMM_PROC_CPU, &(struct dmm_fault_entry){ .addr = TBASE }));
	EXPECT_RC(-EINVAL, dmm_engine_fault(p->eng, p->gpu, &(struct dmm_fault_entry){ .addr = TBASE, .access = 9 }));
	EXPECT_RC(-EINVAL, dmm_engine_service(p->eng, 5, NULL));
	ENGINE_CHECK(p->eng);
}

/* A device added once a range exists is refused: blocks size their masks
 * by the number of processors. */
static void test_add_device_after_range(void **state)
{
	struct pfx *p = *state;
	struct managed_dev *d2 = NULL;

	EXPECT_RC(-EBUSY, managed_dev_create(p->sys, p->eng, 16, 0, &d2));
	EQ(d2, NULL);
}

/* ------------------------------------------------------------------------ */
/* Fault buffer: coalescing and sorting (white box)                          */

static struct fentry ent(uint64_t addr, enum dmm_access a, uint32_t utlb, uint64_t id)
{
	return (struct fentry){ .addr = addr, .access = (uint8_t)a, .access_mask = (uint8_t)(1u << a),
				.utlb = utlb, .stream = utlb, .instances = 1, .id = id };
}

/*
 * uTLB 0: R A, W A      -> merged (same uTLB, same page), access W
 * uTLB 1: R A           -> merged into the batch's last (A, W): no more intrusive
 * uTLB 2: A A (atomic)  -> kept: more intrusive than the batch's last
 * uTLB 0: R B           -> kept
 */
static void test_coalesce_rules(void **state)
{
	const uint64_t A = TBASE, B = TBASE + PG;
	struct fentry e[5] = {
		ent(A, DMM_ACCESS_READ, 0, 1), ent(A, DMM_ACCESS_WRITE, 0, 2), ent(A, DMM_ACCESS_READ, 1, 3),
		ent(A, DMM_ACCESS_ATOMIC, 2, 4), ent(B, DMM_ACCESS_READ, 0, 5),
	};
	uint32_t scratch[10];
	unsigned int n = fault_coalesce(e, 5, scratch);

	(void)state;
	EQ(n, 3);
	EQ(e[0].id, 1);
	EQ(e[0].access, DMM_ACCESS_WRITE);
	EQ(e[0].instances, 3);
	EQ(e[0].access_mask, (1u << DMM_ACCESS_READ) | (1u << DMM_ACCESS_WRITE));
	EQ(e[1].id, 4);
	EQ(e[1].instances, 1);
	EQ(e[2].id, 5);
}

/* A different page in between breaks the "batch's last" rule but not the
 * uTLB rule. */
static void test_coalesce_interleaved(void **state)
{
	const uint64_t A = TBASE, B = TBASE + PG;
	struct fentry e[4] = {
		ent(A, DMM_ACCESS_READ, 0, 1), ent(B, DMM_ACCESS_READ, 1, 2), ent(A, DMM_ACCESS_READ, 1, 3),
		ent(B, DMM_ACCESS_READ, 1, 4),
	};

	(void)state;
	/* id 3: uTLB 1's last is B, batch's last is B: kept. id 4: uTLB 1's
	 * last is now A (id 3): batch's last is A too: kept. */
	uint32_t scratch[8];

	EQ(fault_coalesce(e, 4, scratch), 4);
}

static void test_sort_order(void **state)
{
	const uint64_t A = TBASE, B = TBASE + PG;
	struct fentry e[4] = {
		ent(B, DMM_ACCESS_READ, 0, 1), ent(A, DMM_ACCESS_READ, 1, 2), ent(A, DMM_ACCESS_ATOMIC, 2, 3),
		ent(A, DMM_ACCESS_READ, 3, 4),
	};

	(void)state;
	fault_sort(e, 4);
	EQ(e[0].id, 3); /* A, most intrusive first */
	EQ(e[1].id, 2); /* A, read, by fault id */
	EQ(e[2].id, 4);
	EQ(e[3].id, 1); /* B */
}

/* The ring: capacity 4, a fifth fault overflows and is lost. */
static void test_buffer_overflow(void **state)
{
	struct pfx *p = pfx_new(NULL, 4);
	struct dmm_service_result res;

	(void)state;
	TRUE(p != NULL);
	for (int i = 0; i < 4; i++)
		OK(dmm_engine_fault(p->eng, p->gpu, &(struct dmm_fault_entry){ .addr = TBASE + i * PG, .stream = (uint32_t)i }));
	EXPECT_RC(-ENOSPC, dmm_engine_fault(p->eng, p->gpu, &(struct dmm_fault_entry){ .addr = TBASE + 4 * PG }));
	EQ(stats_of(p->eng).overflows, 1);
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.serviced, 4);
	EQ(stats_of(p->eng).far_faults, 4);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
	pfx_free(p);
}

/* ------------------------------------------------------------------------ */
/* Batches and replay policies                                               */

/* Push @n faults on distinct pages, alternating the two blocks. */
static void push_faults(struct pfx *p, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t a = TBASE + (uint64_t)(i % 2) * DMM_MBLOCK_SIZE + (i / 2) * PG;

		OK(dmm_engine_fault(p->eng, p->gpu, &(struct dmm_fault_entry){ .addr = a, .stream = i }));
	}
}

static void test_batch_limit_20(void **state)
{
	struct pfx *p = *state;
	struct dmm_service_result res;

	OK(dmm_engine_set(p->eng, "fault_max_batches_per_service", 20));
	OK(dmm_engine_set(p->eng, "fault_batch_count", 2));
	OK(dmm_engine_set(p->eng, "fault_replay_policy", DMM_REPLAY_BATCH));
	push_faults(p, 50);
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.batches, 20); /* the limit, with entries left */
	EQ(res.replays, 20); /* BATCH: one per batch */
	EQ(res.pending, 10);
	EQ(res.serviced, 40);
	ENGINE_CHECK(p->eng);
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.batches, 5);
	EQ(res.pending, 0);
	EQ(stats_of(p->eng).far_faults, 50);
	EQ(stats_of(p->eng).batches, 25);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

static void test_replay_batch_flush(void **state)
{
	struct pfx *p = *state;
	struct dmm_service_result res;

	OK(dmm_engine_set(p->eng, "fault_max_batches_per_service", 20));
	OK(dmm_engine_set(p->eng, "fault_batch_count", 4));
	push_faults(p, 10);
	OK(dmm_engine_service(p->eng, p->gpu, &res)); /* BATCH_FLUSH is the default */
	EQ(res.batches, 1);
	EQ(res.serviced, 4);
	EQ(res.flushed, 6); /* they fault again after the replay */
	EQ(res.replays, 1);
	EQ(res.pending, 0);
	EQ(stats_of(p->eng).flushed, 6);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

static void test_replay_block_and_once(void **state)
{
	struct pfx *p = *state;
	struct dmm_service_result res;

	OK(dmm_engine_set(p->eng, "fault_max_batches_per_service", 20));
	OK(dmm_engine_set(p->eng, "fault_replay_policy", DMM_REPLAY_BLOCK));
	push_faults(p, 6); /* one batch, two blocks */
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.batches, 1);
	EQ(res.replays, 2); /* one per block */
	OK(dmm_engine_set(p->eng, "fault_replay_policy", DMM_REPLAY_ONCE));
	OK(dmm_engine_set(p->eng, "fault_batch_count", 1));
	for (unsigned int i = 0; i < 3; i++)
		OK(dmm_engine_fault(p->eng, p->gpu, &(struct dmm_fault_entry){ .addr = TBASE + (100 + i) * PG }));
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.batches, 3);
	EQ(res.replays, 1); /* once, at the end */
	/* An empty buffer still gets its replay. */
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.batches, 0);
	EQ(res.replays, 1);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

/* Duplicates: the same page from two uTLBs with the more intrusive one
 * second is not coalesced, but serviced once. */
static void test_duplicates_serviced_once(void **state)
{
	struct pfx *p = *state;
	struct dmm_service_result res;
	struct dmm_fault_entry a = fe(TBASE, DMM_ACCESS_READ, 0), b = fe(TBASE, DMM_ACCESS_WRITE, 1);

	OK(dmm_engine_fault(p->eng, p->gpu, &a));
	OK(dmm_engine_fault(p->eng, p->gpu, &b));
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(stats_of(p->eng).duplicates, 1);
	EQ(stats_of(p->eng).far_faults, 1);
	EQ(stats_of(p->eng).htod_pages, 1);
	ENGINE_CHECK(p->eng);
}

/* ------------------------------------------------------------------------ */
/* ondemand                                                                  */

/* Exactly the faulted pages move, with cause FAULT, their data intact; far
 * faults == FAULT migrations (prefetching off, §5.9). */
static void test_ondemand_moves_faulted_pages(void **state)
{
	static const unsigned int pages[] = { 0, 5, 7, 511, 512, 600 };
	struct pfx *p = *state;
	struct dmm_engine_stats st;
	uint32_t v;

	FILL(p->mm, TBASE, PFX_RANGE_PAGES * PG, 1000);
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		uint64_t a = PAGE_ADDR(TBASE, pages[i]);

		OK(GPU_RUN(p, 0, a + 8, DMM_ACCESS_READ, &v, sizeof(v)));
		EQ(v, 1000 + pages[i] * WORDS_PER_PAGE + 2);
		EQ(PTE(p->mm, a).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	}
	for (unsigned int i = 0; i < PFX_RANGE_PAGES; i++) {
		bool faulted = false;

		for (size_t k = 0; k < sizeof(pages) / sizeof(pages[0]); k++)
			faulted |= pages[k] == i;
		if (!faulted)
			EQ(PTE(p->mm, PAGE_ADDR(TBASE, i)).kind, DMM_PTE_PRESENT);
	}
	st = stats_of(p->eng);
	EQ(st.far_faults, 6);
	EQ(st.pages_by_cause[DMM_CAUSE_FAULT], st.far_faults);
	EQ(st.pages_by_cause[DMM_CAUSE_PREFETCH], 0);
	EQ(st.htod_pages, 6);
	EQ(st.htod_bytes, 6 * PG);
	EQ(managed_dev_used(p->dev), 6);
	TRUE(p->batches_checked >= 6);
	/* A second access hits the device table: no fault. */
	OK(managed_access(p->dev, 0, PAGE_ADDR(TBASE, 5), DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(stats_of(p->eng).far_faults, 6);
}

/* A write that spans two pages faults both, moves both, writes both. */
static void test_ondemand_spanning_write(void **state)
{
	struct pfx *p = *state;
	uint8_t buf[64];

	memset(buf, 0xab, sizeof(buf));
	OK(GPU_RUN(p, 3, TBASE + PG - 32, DMM_ACCESS_WRITE, buf, sizeof(buf)));
	EQ(stats_of(p->eng).far_faults, 2);
	EQ(LOAD(p->mm, TBASE + PG - 4), 0xabababab); /* CPU read: migrate_to_ram */
	EQ(LOAD(p->mm, TBASE + PG), 0xabababab);
	EQ(stats_of(p->eng).cpu_faults, 2);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

/* The CPU reads a page the device holds in the middle of a run: it comes
 * back through migrate_to_ram (the policy's cpu_fault), the device loses
 * its mapping, and the device's next access faults it over again. */
static void test_cpu_access_mid_run(void **state)
{
	struct pfx *p = *state;
	uint32_t v = 77, old;
	struct dmm_engine_stats st;

	OK(GPU_RUN(p, 0, TBASE + 16, DMM_ACCESS_WRITE, &v, sizeof(v)));
	OK(GPU_RUN(p, 0, TBASE + PG, DMM_ACCESS_WRITE, &v, sizeof(v)));
	EQ(LOAD(p->mm, TBASE + 16), 77);
	EQ(PTE(p->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(p->mm, TBASE + PG).kind, DMM_PTE_DEVICE_PRIVATE_WRITE); /* ondemand: one page */
	st = stats_of(p->eng);
	EQ(st.cpu_faults, 1);
	EQ(st.dtoh_pages, 1);
	EQ(st.dtoh_bytes, PG);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
	v = 5;
	OK(GPU_RUN(p, 0, TBASE + 16, DMM_ACCESS_ATOMIC, &v, sizeof(v)));
	EQ(v, 77); /* the old value */
	old = LOAD(p->mm, TBASE + 16);
	EQ(old, 82);
	EQ(stats_of(p->eng).far_faults, 3);
	EQ(stats_of(p->eng).cpu_faults, 2);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

/* munmap of part of a managed range mid-run: the device pages there are
 * freed by the core, the engine forgets them, later device accesses there
 * are cancelled (-EFAULT), the rest of the range runs on. */
static void test_munmap_mid_run(void **state)
{
	struct pfx *p = *state;
	uint32_t v = 9;

	for (unsigned int i = 0; i < 8; i++)
		OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, i * 100), DMM_ACCESS_WRITE, &v, sizeof(v)));
	EQ(managed_dev_used(p->dev), 8);
	OK(dmm_munmap(p->mm, TBASE, DMM_MBLOCK_SIZE)); /* pages 0, 100, ..., 500 */
	EQ(managed_dev_used(p->dev), 2);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
	EXPECT_RC(-EFAULT, GPU_RUN(p, 0, PAGE_ADDR(TBASE, 100), DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(stats_of(p->eng).cancelled, 1);
	OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 700), DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(v, 9);
	OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 701), DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(v, 0);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
	/* The range can go: its device pages come home first. */
	OK(dmm_engine_range_remove(p->eng, TBASE));
	EQ(managed_dev_used(p->dev), 0);
	EQ(LOAD(p->mm, PAGE_ADDR(TBASE, 700)), 9);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

/* fork in the middle of a run: the child shares the device pages (as in
 * Linux, device-private entries are copied write-protected); the parent's
 * device mappings are dropped by the notifier and come back on the next
 * fault; everyone reads the right data. */
static void test_fork_mid_run(void **state)
{
	struct pfx *p = *state;
	struct dmm_mm *child;
	uint32_t v = 31;

	OK(GPU_RUN(p, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	OK(dmm_fork(p->mm, &child));
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
	EQ(LOAD(child, TBASE), 31);
	v = 0;
	OK(GPU_RUN(p, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(v, 31);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
	dmm_mm_exit(child);
	CHECK_OK(p->sys);
}

/* Determinism: the same accesses give the same virtual time. */
static uint64_t run_pattern(void)
{
	struct pfx *p = pfx_new(NULL, 0);
	uint32_t v = 1;
	uint64_t t;

	if (!p)
		return 0;
	for (unsigned int i = 0; i < 32; i++) {
		OK(dmm_engine_compute(p->eng, p->gpu, i % 4, 1000));
		OK(managed_run(p->dev, i % 4, PAGE_ADDR(TBASE, i * 7), DMM_ACCESS_WRITE, &v, sizeof(v)));
	}
	t = stats_of(p->eng).sim_time_ns;
	pfx_free(p);
	return t;
}

static void test_deterministic_time(void **state)
{
	uint64_t a = run_pattern(), b = run_pattern();

	(void)state;
	TRUE(a > 32 * 1000 / 4);
	EQ(a, b);
}

/* ------------------------------------------------------------------------ */
/* The example                                                               */

/*
 * How a program drives managed memory through the engine: a managed
 * allocation, a few device accesses (each a fault serviced by the policy),
 * a CPU read back (a CPU fault, migrate_to_ram) — all on the core's own
 * paths, so dmm_check holds throughout.
 */
static void test_example_api(void **state)
{
	struct dmm_system *sys = sys_new(1024);
	struct dmm_engine_config cfg = { .policy_name = "ondemand" };
	struct dmm_engine *eng;
	struct managed_dev *gpu;
	uint64_t buf = 0x100000000UL, out;
	uint32_t x = 0, y;
	struct dmm_mm *mm;

	(void)state;
	OK(dmm_mm_create(sys, &mm));
	OK(dmm_engine_create(mm, &cfg, &eng));
	OK(managed_dev_create(sys, eng, 256, 0, &gpu));
	/* cudaMallocManaged(&buf, 64 KiB) */
	OK(dmm_mmap(mm, buf, 16 * PG, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, &out));
	OK(dmm_engine_range_add(eng, buf, 16 * PG));
	/* The kernel: buf[i] = i for 4 words of 4 pages. */
	for (x = 0; x < 4; x++)
		OK(managed_run(gpu, 0, buf + x * PG, DMM_ACCESS_WRITE, &x, sizeof(x)));
	/* The host reads back. */
	for (x = 0; x < 4; x++) {
		OK(dmm_load32(mm, buf + x * PG, &y));
		EQ(y, x);
	}
	EQ(stats_of(eng).far_faults, 4);
	EQ(stats_of(eng).cpu_faults, 4);
	ENGINE_CHECK(eng);
	CHECK_OK(sys);
	dmm_engine_destroy(eng);
	managed_dev_destroy(gpu);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
}

/* A user prefetch moves the pages to the processor with cause
 * USER_PREFETCH, without a fault or a batch: the device then hits; back to
 * the CPU; holes are not given to the CPU; bad arguments change nothing. */
static void test_user_prefetch(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	struct dmm_timing tm = { .preset = DMM_TIMING_PASCAL_PCIE3 };
	struct dmm_engine_stats st;
	uint64_t end = 0;
	uint32_t v = 7;

	(void)state;
	TRUE(p != NULL);
	OK(dmm_engine_prefetch(p->eng, TBASE + 1, 3 * PG - 1, p->gpu, 1000, &end));
	EQ(end, 1000 + dmm_timing_transfer_ns(&tm, 3 * PG)); /* one run of three pages */
	st = stats_of(p->eng);
	EQ(st.pages_by_cause[DMM_CAUSE_USER_PREFETCH], 3);
	EQ(st.htod_pages, 3);
	EQ(st.far_faults, 0);
	EQ(st.batches, 0);
	OK(managed_access(p->dev, 0, TBASE + 2 * PG, DMM_ACCESS_WRITE, &v, sizeof(v)));
	EXPECT_RC(-EAGAIN, managed_access(p->dev, 0, TBASE + 3 * PG, DMM_ACCESS_READ, &v, sizeof(v)));
	SERVICE_CHECKED(p);
	/* Again: nothing to move. */
	OK(dmm_engine_prefetch(p->eng, TBASE, 3 * PG, p->gpu, 5000, &end));
	EQ(end, 5000);
	/* Back to the CPU: the four device pages; the rest have no copy. */
	OK(dmm_engine_prefetch(p->eng, TBASE, 16 * PG, DMM_PROC_CPU, 9000, NULL));
	st = stats_of(p->eng);
	EQ(st.pages_by_cause[DMM_CAUSE_USER_PREFETCH], 7);
	EQ(st.dtoh_pages, 4);
	EQ(LOAD(p->mm, TBASE + 2 * PG), 7);
	EXPECT_RC(-ENOENT, dmm_engine_prefetch(p->eng, TBASE + PFX_RANGE_PAGES * PG - PG, 2 * PG, p->gpu, 0, NULL));
	EXPECT_RC(-EINVAL, dmm_engine_prefetch(p->eng, TBASE, PG, p->gpu + 1, 0, NULL));
	EXPECT_RC(-EINVAL, dmm_engine_prefetch(p->eng, TBASE, 0, p->gpu, 0, NULL));
	EXPECT_RC(-EINVAL, dmm_engine_prefetch(NULL, TBASE, PG, p->gpu, 0, NULL));
	EQ(stats_of(p->eng).pages_by_cause[DMM_CAUSE_USER_PREFETCH], 7);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
	pfx_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_api_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_device_after_range, setup, teardown),
		cmocka_unit_test(test_coalesce_rules),
		cmocka_unit_test(test_coalesce_interleaved),
		cmocka_unit_test(test_sort_order),
		cmocka_unit_test(test_buffer_overflow),
		cmocka_unit_test_setup_teardown(test_batch_limit_20, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_batch_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_block_and_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates_serviced_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ondemand_moves_faulted_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ondemand_spanning_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpu_access_mid_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_munmap_mid_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_mid_run, setup, teardown),
		cmocka_unit_test(test_deterministic_time),
		cmocka_unit_test(test_example_api),
		cmocka_unit_test(test_user_prefetch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
