/* SPDX-License-Identifier: MIT */
/*
 * The policy engine under failure and as a witness: fault injection at
 * every engine allocation (the POLICY site) through a whole run — create,
 * device, range, device faults, a CPU fault, destroy — for N = 1, 2, ...
 * until a run sees no failure, with no leak (the system's free frames and
 * the device's pages come back) and both validators clean; and the
 * provenance events, as JSON lines, that say why each page moved.
 */
#include <jansson.h>

#include "policy_helpers.h"

/* One run; returns the first error. Everything is torn down either way. */
static int one_run(struct dmm_system *sys, struct dmm_mm *mm, const char *policy, uint64_t *dev_used)
{
	struct dmm_engine_config cfg = { .policy_name = policy };
	struct dmm_engine *eng = NULL;
	struct managed_dev *dev = NULL;
	uint32_t v = 7, r = 0;
	int err;

	*dev_used = 0;
	err = dmm_engine_create(mm, &cfg, &eng);
	if (!err)
		err = managed_dev_create(sys, eng, 64, 0, &dev);
	if (!err)
		err = dmm_engine_range_add(eng, TBASE, 16 * PG);
	for (unsigned int i = 0; !err && i < 4; i++)
		err = managed_run(dev, i, TBASE + i * 3 * PG, DMM_ACCESS_WRITE, &v, sizeof(v));
	if (!err)
		err = dmm_load32(mm, TBASE + 3 * PG, &r);
	if (!err && r != 7)
		err = -EIO;
	if (eng && !err) {
		char report[4096];

		err = dmm_engine_check(eng, report, sizeof(report));
		if (err)
			print_error("%s", report);
	}
	dmm_engine_destroy(eng);
	if (dev) {
		*dev_used = managed_dev_used(dev);
		managed_dev_destroy(dev);
	}
	return err;
}

static void inject_sweep(const char *policy)
{
	struct dmm_system *sys = sys_new(1024);
	struct dmm_mm *mm;
	uint64_t free0, used;
	unsigned int failures = 0;
	int n;

	OK(dmm_mm_create(sys, &mm));
	MAP_ANON(mm, TBASE, 16);
	free0 = dmm_system_nr_free(sys);
	for (n = 1; n < 1000; n++) {
		struct dmm_inject_config ic = { .countdown = (unsigned long)n };
		struct dmm_inject_config off = { 0 };
		int err;

		OK(dmm_inject_set(sys, DMM_INJECT_POLICY, &ic));
		err = one_run(sys, mm, policy, &used);
		OK(dmm_inject_set(sys, DMM_INJECT_POLICY, &off));
		EQ(used, 0); /* every device page came home */
		CHECK_OK(sys);
		/* No frame leaked: unmapped, the range gives back all it took. */
		OK(dmm_munmap(mm, TBASE, 16 * PG));
		MAP_ANON(mm, TBASE, 16);
		EQ(dmm_system_nr_free(sys), free0);
		if (dmm_inject_count(sys, DMM_INJECT_POLICY) == failures) {
			OK(err); /* no failure was injected: the run must succeed */
			break;
		}
		failures++;
		/* 0: an allocation the engine can do without (a per-batch
		 * record, the CPU stream's clock) failed and the run went on. */
		if (err && err != -ENOMEM && err != -EBUSY)
			h_fail(__FILE__, __LINE__, "N=%d: the run failed with %d (%s)", n, err, errname(err));
	}
	TRUE(failures > 5);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
}

static void test_inject_sweep(void **state)
{
	(void)state;
	inject_sweep("ondemand");
}

/* The uvm policy's own allocations (its context, the per-block state)
 * come from the engine's allocator too. */
static void test_inject_sweep_uvm(void **state)
{
	(void)state;
	inject_sweep("uvm");
}

/* No memory for the batch buffer: the service says so, the fault stays
 * pending and the next service call serves it. */
static void test_service_enomem(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	struct dmm_inject_config ic = { .countdown = 1 }, off = { 0 };
	struct dmm_service_result res;
	uint32_t v = 9;

	(void)state;
	TRUE(p != NULL);
	EQ(managed_access(p->dev, 0, TBASE, DMM_ACCESS_WRITE, &v, 4), -EAGAIN);
	OK(dmm_inject_set(p->sys, DMM_INJECT_POLICY, &ic));
	EQ(dmm_engine_service(p->eng, p->gpu, &res), -ENOMEM);
	OK(dmm_inject_set(p->sys, DMM_INJECT_POLICY, &off));
	EQ(dmm_inject_count(p->sys, DMM_INJECT_POLICY), 1);
	EQ(res.serviced, 0);
	EQ(res.pending, 1);
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.serviced, 1);
	OK(managed_access(p->dev, 0, TBASE, DMM_ACCESS_WRITE, &v, 4));
	ENGINE_CHECK(p->eng);
	pfx_free(p);
}

/*
 * A CPU fault on a device page with each of its engine allocations failing
 * in turn (the fault's work, the CPU stream, the move's run and bounce
 * page: all through the POLICY site): the access fails with -ENOMEM or
 * succeeds, never anything else, and the data is intact after.
 */
static void test_cpu_fault_policy_sweep(void **state)
{
	unsigned int failures = 0;

	(void)state;
	for (unsigned long n = 1; n < 64; n++) {
		struct pfx *p = pfx_new(NULL, 0);
		struct dmm_inject_config ic = { .countdown = n }, off = { 0 };
		uint32_t v = 0xabc, x = 0;
		uint64_t injected;
		int err;

		TRUE(p != NULL);
		OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 3), DMM_ACCESS_WRITE, &v, 4));
		OK(dmm_inject_set(p->sys, DMM_INJECT_POLICY, &ic));
		err = dmm_load32(p->mm, PAGE_ADDR(TBASE, 3), &x);
		injected = dmm_inject_count(p->sys, DMM_INJECT_POLICY);
		OK(dmm_inject_set(p->sys, DMM_INJECT_POLICY, &off));
		if (err)
			EQ(err, -ENOMEM);
		else
			EQ(x, 0xabc);
		EQ(LOAD(p->mm, PAGE_ADDR(TBASE, 3)), 0xabc);
		ENGINE_CHECK(p->eng);
		CHECK_OK(p->sys);
		pfx_free(p);
		if (!injected)
			break;
		if (err)
			failures++;
	}
	/* the work, the run, the bounce page at least */
	TRUE(failures >= 3);
}

/*
 * Destroy while system frames run out: the device pages must all come home
 * before the engine is freed (their migrate_to_ram leads to it), for a
 * failure at each frame allocation destroy makes.
 */
static void test_destroy_frame_sweep(void **state)
{
	unsigned int failures = 0;

	(void)state;
	for (unsigned long n = 1; n < 64; n++) {
		struct pfx *p = pfx_new(NULL, 0);
		struct dmm_inject_config ic = { .countdown = n }, off = { 0 };
		uint64_t injected;

		TRUE(p != NULL);
		for (uint32_t i = 0; i < 6; i++) {
			uint32_t v = 0x100 + i;

			OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 10 + 2 * i), DMM_ACCESS_WRITE, &v, 4));
		}
		EQ(managed_dev_used(p->dev), 6);
		OK(dmm_inject_set(p->sys, DMM_INJECT_FRAME, &ic));
		dmm_engine_destroy(p->eng);
		p->eng = NULL;
		injected = dmm_inject_count(p->sys, DMM_INJECT_FRAME);
		OK(dmm_inject_set(p->sys, DMM_INJECT_FRAME, &off));
		EQ(managed_dev_used(p->dev), 0);
		for (uint32_t i = 0; i < 6; i++)
			EQ(LOAD(p->mm, PAGE_ADDR(TBASE, 10 + 2 * i)), 0x100 + i);
		CHECK_OK(p->sys);
		pfx_free(p);
		if (!injected)
			break;
		failures++;
	}
	TRUE(failures >= 6);
}

/* ------------------------------------------------------------------------ */
/* Provenance                                                                */

/* Every line is a JSON object; each migration has a cause and an origin
 * that leads to the fault that caused it. */
static void test_events_jsonl(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	FILE *f = tmpfile();
	char line[1024];
	unsigned int migrations = 0, faults = 0, cpu_faults = 0;
	uint64_t fault_ids[16];
	uint32_t v = 3;

	(void)state;
	TRUE(p && f);
	OK(dmm_engine_events_jsonl(p->eng, f));
	OK(managed_run(p->dev, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	OK(managed_run(p->dev, 1, TBASE + 9 * PG, DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(LOAD(p->mm, TBASE), 3);
	OK(dmm_engine_events_jsonl(p->eng, NULL));
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		json_error_t jerr;
		json_t *o = json_loads(line, 0, &jerr);
		const char *ev;

		if (!o)
			h_fail(__FILE__, __LINE__, "not JSON: %s (%s)", line, jerr.text);
		ev = json_string_value(json_object_get(o, "ev"));
		TRUE(ev != NULL);
		TRUE(json_is_integer(json_object_get(o, "t")));
		if (!strcmp(ev, "fault")) {
			TRUE(faults < 16);
			fault_ids[faults++] = (uint64_t)json_integer_value(json_object_get(o, "fault"));
			TRUE(json_integer_value(json_object_get(o, "batch")) > 0);
		} else if (!strcmp(ev, "cpu_fault")) {
			cpu_faults++;
		} else if (!strcmp(ev, "migrate")) {
			uint64_t id = (uint64_t)json_integer_value(json_object_get(o, "fault"));
			bool known = false;

			STREQ(json_string_value(json_object_get(o, "cause")), "fault");
			EQ(json_integer_value(json_object_get(o, "rule")), 1); /* ondemand's rule */
			for (unsigned int i = 0; i < faults; i++)
				known |= fault_ids[i] == id;
			TRUE(known || !strcmp(json_string_value(json_object_get(o, "to")), "cpu"));
			migrations++;
		}
		json_decref(o);
	}
	EQ(faults, 2);
	EQ(cpu_faults, 1);
	EQ(migrations, 3);
	fclose(f);
	pfx_free(p);
}

static void collect(void *arg, const struct dmm_event *ev)
{
	unsigned int *n = arg;

	n[ev->type]++;
}

static void test_event_callback_and_format(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);
	unsigned int n[DMM_NR_EVENTS] = { 0 };
	struct dmm_event ev = { .type = DMM_EV_MIGRATE, .t = 5, .t_end = 9, .addr = 4096, .npages = 1,
				.from = DMM_PROC_CPU, .to = 1, .cause = DMM_CAUSE_PREFETCH,
				.origin = { .batch = 2, .fault = 3, .rule = 4 } };
	char buf[512];
	uint32_t v;

	(void)state;
	TRUE(p != NULL);
	OK(dmm_engine_set_event_cb(p->eng, collect, n));
	OK(managed_run(p->dev, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(n[DMM_EV_FAULT], 1);
	EQ(n[DMM_EV_MIGRATE], 1);
	EQ(n[DMM_EV_BATCH], 1);
	TRUE(n[DMM_EV_REPLAY] >= 1);
	TRUE(dmm_event_to_json(&ev, buf, sizeof(buf)) > 0);
	STREQ(buf, "{\"t\":5,\"ev\":\"migrate\",\"t_end\":9,\"addr\":4096,\"from\":\"cpu\",\"to\":\"gpu0\","
		 "\"cause\":\"prefetch\",\"batch\":2,\"fault\":3,\"rule\":4}");
	EXPECT_RC(-ENOSPC, dmm_event_to_json(&ev, buf, 10));
	STREQ(dmm_cause_name(DMM_CAUSE_READ_DUP_INVALIDATE), "read_dup_invalidate");
	STREQ(dmm_action_name(DMM_ACT_MAP_REMOTE), "map_remote");
	EQ(dmm_cause_name(DMM_NR_CAUSES), NULL);
	pfx_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inject_sweep),
		cmocka_unit_test(test_inject_sweep_uvm),
		cmocka_unit_test(test_destroy_frame_sweep),
		cmocka_unit_test(test_cpu_fault_policy_sweep),
		cmocka_unit_test(test_service_enomem),
		cmocka_unit_test(test_events_jsonl),
		cmocka_unit_test(test_event_callback_and_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
