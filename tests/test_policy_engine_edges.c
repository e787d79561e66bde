/* SPDX-License-Identifier: MIT */
/*
 * The policy engine at the edges of its ranges and blocks: VMA splits
 * inside a managed range, several ranges in one 2 MiB block, page
 * contents on a metadata-only system, and the invariant checker finding
 * device pages the engine lost.
 */
#include <pthread.h>

#include "policy_helpers.h"
#include "policy/engine.h"

static int setup(void **state)
{
	struct pfx *p = pfx_new(NULL, 0);

	*state = p;
	return p ? 0 : -1;
}

static int teardown(void **state)
{
	pfx_free(*state);
	return 0;
}

/* mprotect splits the range's VMA between device pages: removing the range
 * brings every one of them back, across the edge. */
static void test_vma_split_remove(void **state)
{
	struct pfx *p = *state;

	for (uint32_t i = 0; i < 4; i++) {
		uint32_t v = 0x1230 + i;

		OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 10 + i), DMM_ACCESS_WRITE, &v, 4));
	}
	EQ(managed_dev_used(p->dev), 4);
	OK(dmm_mprotect(p->mm, PAGE_ADDR(TBASE, 12), PG, DMM_PROT_READ));
	ENGINE_CHECK(p->eng);
	OK(dmm_engine_range_remove(p->eng, TBASE));
	EQ(managed_dev_used(p->dev), 0);
	for (uint32_t i = 0; i < 4; i++)
		EQ(LOAD(p->mm, PAGE_ADDR(TBASE, 10 + i)), 0x1230 + i);
	CHECK_OK(p->sys);
	/* pfx_free removes no range: put one back. */
	OK(dmm_engine_range_add(p->eng, TBASE, 8 * PG));
}

/* A device access spanning a VMA edge inside the range completes, and a
 * CPU fault brings back pages on both sides. */
static void test_vma_split_service(void **state)
{
	struct pfx *p = *state;
	uint8_t buf[64], in[64];

	for (unsigned int i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i + 1);
	OK(dmm_write(p->mm, PAGE_ADDR(TBASE, 21) - 32, in, sizeof(in)));
	OK(dmm_mprotect(p->mm, PAGE_ADDR(TBASE, 21), PG, DMM_PROT_READ));
	OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 21) - 32, DMM_ACCESS_READ, buf, sizeof(buf)));
	TRUE(!memcmp(buf, in, sizeof(buf)));
	EQ(managed_dev_used(p->dev), 2);
	memset(buf, 0, sizeof(buf));
	OK(dmm_read(p->mm, PAGE_ADDR(TBASE, 21) - 32, buf, sizeof(buf)));
	TRUE(!memcmp(buf, in, sizeof(buf)));
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

/* Two ranges inside one 2 MiB block (two small allocations): each has its
 * own block; faults on both in one batch are both serviced, and removing
 * one range leaves the other's pages where they are. */
static void test_two_ranges_one_block(void **state)
{
	struct pfx *p = *state;
	uint64_t a = TBASE + 8 * DMM_MBLOCK_SIZE, b = a + 256 * PG;
	uint32_t va = 5, vb = 6;

	MAP_ANON(p->mm, a, 512);
	OK(dmm_engine_range_add(p->eng, a, 256 * PG));
	OK(dmm_engine_range_add(p->eng, b, 256 * PG));
	/* Both faults in one batch. */
	EQ(managed_access(p->dev, 0, a, DMM_ACCESS_WRITE, &va, 4), -EAGAIN);
	EQ(managed_access(p->dev, 1, b, DMM_ACCESS_WRITE, &vb, 4), -EAGAIN);
	SERVICE_CHECKED(p);
	OK(managed_access(p->dev, 0, a, DMM_ACCESS_WRITE, &va, 4));
	OK(managed_access(p->dev, 1, b, DMM_ACCESS_WRITE, &vb, 4));
	EQ(stats_of(p->eng).cancelled, 0);
	EQ(managed_dev_used(p->dev), 2);
	/* The second range first, in a batch of its own. */
	OK(GPU_RUN(p, 2, b + PG, DMM_ACCESS_WRITE, &vb, 4));
	OK(GPU_RUN(p, 3, a + PG, DMM_ACCESS_WRITE, &va, 4));
	EQ(managed_dev_used(p->dev), 4);
	ENGINE_CHECK(p->eng);
	/* Removing b brings back b's pages only. */
	OK(dmm_engine_range_remove(p->eng, b));
	EQ(managed_dev_used(p->dev), 2);
	ENGINE_CHECK(p->eng);
	EQ(LOAD(p->mm, b), 6);
	EQ(LOAD(p->mm, b + PG), 6);
	EQ(stats_of(p->eng).cpu_faults, 0);
	EQ(LOAD(p->mm, a + PG), 5);
	EQ(stats_of(p->eng).cpu_faults, 1);
	OK(dmm_engine_range_remove(p->eng, a));
	EQ(managed_dev_used(p->dev), 0);
	CHECK_OK(p->sys);
}

/* A metadata-only system: the engine moves pages both ways, keeps all its
 * state and copies no bytes. */
static void test_no_contents(void **state)
{
	struct dmm_system_config cfg = { .nr_frames = PFX_FRAMES, .flags = DMM_SYS_NO_CONTENTS };
	struct pfx q = { 0 }, *p = &q;
	uint32_t v = 1;

	(void)state;
	OK(dmm_system_create(&cfg, &p->sys));
	OK(dmm_mm_create(p->sys, &p->mm));
	OK(dmm_engine_create(p->mm, NULL, &p->eng));
	OK(managed_dev_create(p->sys, p->eng, 64, 0, &p->dev));
	p->gpu = managed_dev_proc(p->dev);
	MAP_ANON(p->mm, TBASE, 32);
	OK(dmm_engine_range_add(p->eng, TBASE, 32 * PG));
	OK(dmm_madvise(p->mm, TBASE, 8 * PG, DMM_MADV_POPULATE_WRITE));
	for (unsigned int i = 0; i < 6; i++) /* 0-3 populated, 20-21 not */
		OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, i < 4 ? i : 16 + i), DMM_ACCESS_WRITE, &v, 4));
	EQ(managed_dev_used(p->dev), 6);
	EQ(stats_of(p->eng).htod_pages, 6);
	ENGINE_CHECK(p->eng);
	/* A CPU fault brings one back (migrate_to_ram), removal the rest. */
	OK(dmm_madvise(p->mm, PAGE_ADDR(TBASE, 1), PG, DMM_MADV_POPULATE_WRITE));
	EQ(stats_of(p->eng).cpu_faults, 1);
	EQ(managed_dev_used(p->dev), 5);
	ENGINE_CHECK(p->eng);
	OK(dmm_engine_range_remove(p->eng, TBASE));
	EQ(managed_dev_used(p->dev), 0);
	EQ(stats_of(p->eng).dtoh_pages, 6);
	CHECK_OK(p->sys);
	dmm_engine_destroy(p->eng);
	managed_dev_destroy(p->dev);
	dmm_mm_exit(p->mm);
	dmm_system_destroy(p->sys);
}

struct copy_probe {
	struct pfx *p;
	uint64_t addr;
	int rc;
	unsigned int calls;
};

/* The device writes the page while the engine copies it out. */
static void write_during_copy(void *arg, uint64_t dpfn)
{
	struct copy_probe *c = arg;
	uint32_t v = 2;

	(void)dpfn;
	c->calls++;
	c->rc = managed_access(c->p->dev, 7, c->addr, DMM_ACCESS_WRITE, &v, 4);
}

/* A page the engine is moving off a device is unmapped there before its
 * copy: a device write in between faults (and is served after the move)
 * instead of landing in the old page and being lost. */
static void test_write_during_move(void **state)
{
	struct pfx *p = *state;
	struct copy_probe c = { .p = p, .addr = PAGE_ADDR(TBASE, 5), .rc = 1 };
	uint32_t v = 1;

	OK(GPU_RUN(p, 0, c.addr, DMM_ACCESS_WRITE, &v, 4));
	managed_dev_set_copy_hook(p->dev, write_during_copy, &c);
	EQ(LOAD(p->mm, c.addr), 1); /* migrate_to_ram copies the page out */
	managed_dev_set_copy_hook(p->dev, NULL, NULL);
	EQ(c.calls, 1);
	EQ(c.rc, -EAGAIN);
	SERVICE_CHECKED(p);
	v = 2;
	OK(GPU_RUN(p, 7, c.addr, DMM_ACCESS_WRITE, &v, 4));
	EQ(LOAD(p->mm, c.addr), 2);
	ENGINE_CHECK(p->eng);
}

struct remove_probe {
	struct pfx *p;
	unsigned int calls;
	int rc;
};

static void *remove_range(void *arg)
{
	struct remove_probe *c = arg;

	c->rc = dmm_engine_range_remove(c->p->eng, TBASE);
	return NULL;
}

/* In the middle of a CPU fault's move, another thread removes the range. */
static void remove_during_copy(void *arg, uint64_t dpfn)
{
	struct remove_probe *c = arg;
	pthread_t t;

	(void)dpfn;
	if (c->calls++)
		return; /* the remover's own copies */
	TRUE(!pthread_create(&t, NULL, remove_range, c));
	TRUE(!pthread_join(t, NULL));
}

/* range_remove racing a CPU fault: the fault's page is already collected
 * (a migration entry), so the removal sees nothing of it on the device,
 * brings page 9 home and frees the range's blocks, while the fault still
 * moves page 5 in the block it looked up: that block must stay valid until
 * the fault is done (AddressSanitizer sees the use after free without the
 * reference). */
static void test_remove_during_cpu_fault(void **state)
{
	struct pfx *p = *state;
	struct remove_probe c = { .p = p, .rc = 1 };
	uint32_t v = 0x77;

	OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 5), DMM_ACCESS_WRITE, &v, 4));
	OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 9), DMM_ACCESS_WRITE, &v, 4));
	managed_dev_set_copy_hook(p->dev, remove_during_copy, &c);
	EQ(LOAD(p->mm, PAGE_ADDR(TBASE, 5)), 0x77);
	managed_dev_set_copy_hook(p->dev, NULL, NULL);
	TRUE(c.calls >= 1);
	OK(c.rc);
	ENGINE_CHECK(p->eng);
	EQ(managed_dev_used(p->dev), 0); /* the remover brought page 9 home */
	EQ(LOAD(p->mm, PAGE_ADDR(TBASE, 9)), 0x77);
	CHECK_OK(p->sys);
}

static int check_rc(struct dmm_engine *eng, char *rep, size_t size)
{
	int rc = dmm_engine_check(eng, rep, size);

	if (rc)
		print_message("%s", rep);
	return rc;
}

/* White box: a transfer charged with a page too many on one lane (and in
 * every byte counter alike, as a charging bug would) is found by counting
 * the pages each lane carried. */
static void test_check_lane_pages(void **state)
{
	struct pfx *p = *state;
	struct dmm_engine *eng = p->eng;
	uint32_t v = 3;
	char rep[2048];

	OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 2), DMM_ACCESS_WRITE, &v, 4));
	OK(check_rc(eng, rep, sizeof(rep)));
	pthread_mutex_lock(&eng->lock);
	eng->procs[p->gpu].htod.bytes += PG;
	eng->st.htod_bytes += PG;
	eng->st.lane_bytes += PG;
	pthread_mutex_unlock(&eng->lock);
	EQ(check_rc(eng, rep, sizeof(rep)), -EUCLEAN);
	TRUE(strstr(rep, "lanes carried") != NULL);
	pthread_mutex_lock(&eng->lock);
	eng->procs[p->gpu].htod.bytes -= PG;
	eng->st.htod_bytes -= PG;
	eng->st.lane_bytes -= PG;
	pthread_mutex_unlock(&eng->lock);
	OK(check_rc(eng, rep, sizeof(rep)));
}

/* White box: a device page of a range that the engine lost track of (its
 * block gone) is found by scanning the range's page table. */
static void test_check_lost_device_page(void **state)
{
	struct pfx *p = *state;
	struct dmm_engine *eng = p->eng;
	uint32_t v = 4;
	char rep[2048];
	struct mblock *b;

	OK(GPU_RUN(p, 0, PAGE_ADDR(TBASE, 600), DMM_ACCESS_WRITE, &v, 4));
	pthread_mutex_lock(&eng->lock);
	b = block_lookup(eng, eng->ranges, PAGE_ADDR(TBASE, 600));
	TRUE(b != NULL);
	block_remove(eng, b);
	pthread_mutex_unlock(&eng->lock);
	EQ(check_rc(eng, rep, sizeof(rep)), -EUCLEAN);
	TRUE(strstr(rep, "in no block") != NULL);
	/* Give the engine its block back, learnt from the page table. */
	pthread_mutex_lock(&eng->lock);
	b = block_get(eng, eng->ranges, PAGE_ADDR(TBASE, 600));
	pthread_mutex_unlock(&eng->lock);
	TRUE(b != NULL);
	dmm_mmap_read_lock(p->mm);
	block_resync(eng, b);
	dmm_mmap_read_unlock(p->mm);
	OK(check_rc(eng, rep, sizeof(rep)));
	EQ(LOAD(p->mm, PAGE_ADDR(TBASE, 600)), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vma_split_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vma_split_service, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_ranges_one_block, setup, teardown),
		cmocka_unit_test(test_no_contents),
		cmocka_unit_test_setup_teardown(test_write_during_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_during_cpu_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_lane_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_lost_device_page, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
