/* SPDX-License-Identifier: MIT */
/*
 * Read-duplication invalidation and advice effects as decisions
 * (src/policy/uvm_advice.c, spec sections 1.6 and 1.7): which copies are
 * dropped, which mappings removed and added. Processors: 0 CPU, 1 and 2
 * GPUs on PCIe (each GPU maps its own memory and system memory).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/uvm.h"

#define CPU 0
#define G1 1
#define G2 2

struct adv {
	struct uvm_topology topo;
	struct pmask resident[3], mapped[3], read_dup;
	struct uvm_block_view v;
	struct uvm_block_change c;
	struct uvm_policy_attrs pol;
};

static struct adv *adv_new(void)
{
	static struct adv a;

	memset(&a, 0, sizeof(a));
	uvm_topology_pcie(&a.topo, 2);
	a.v.nprocs = 3;
	a.v.npages = 512;
	a.v.resident = a.resident;
	a.v.mapped = a.mapped;
	a.v.read_dup = &a.read_dup;
	a.pol.preferred = UVM_PROC_NONE;
	uvm_block_change_init(&a.c);
	return &a;
}

static bool is_range(const struct pmask *m, unsigned int first, unsigned int n)
{
	struct pmask r;

	pmask_zero(&r);
	pmask_set_range(&r, first, n);
	return pmask_equal(m, &r);
}

static bool is_page(const struct pmask *m, unsigned int i)
{
	return is_range(m, i, 1);
}

/* A write by G1 to a page copied on all three processors: G1 becomes the
 * sole owner; the other pages of the block are left alone. */
static void write_breaks_read_duplication(void **state)
{
	struct adv *a = adv_new();
	struct pmask pages;

	(void)state;
	for (unsigned int p = 0; p < 3; p++) {
		pmask_set_range(&a->resident[p], 4, 4);
		pmask_set_range(&a->mapped[p], 4, 4);
	}
	pmask_set_range(&a->read_dup, 4, 4);
	pmask_zero(&pages);
	pmask_set(&pages, 5);
	uvm_rdup_break(&a->v, G1, &pages, &a->c);
	assert_true(is_page(&a->c.drop[CPU], 5));
	assert_true(is_page(&a->c.drop[G2], 5));
	assert_true(pmask_empty(&a->c.drop[G1]));
	assert_true(is_page(&a->c.unmap[CPU], 5));
	assert_true(is_page(&a->c.unmap[G2], 5));
	assert_true(pmask_empty(&a->c.unmap[G1]));
	assert_true(is_page(&a->c.read_dup_clear, 5));
	for (unsigned int p = 0; p < 3; p++)
		assert_true(pmask_empty(&a->c.map[p]));
}

/* Enabling read duplication removes the mappings to copies elsewhere. */
static void enable_removes_remote_mappings(void **state)
{
	struct adv *a = adv_new();

	(void)state;
	pmask_set_range(&a->resident[CPU], 0, 10);
	pmask_set_range(&a->mapped[CPU], 0, 10);
	pmask_set_range(&a->resident[G1], 10, 10);
	pmask_set_range(&a->mapped[G1], 0, 20); /* 0..9 remotely (AccessedBy) */
	uvm_rdup_enable(&a->v, &a->c);
	assert_true(is_range(&a->c.unmap[G1], 0, 10));
	assert_true(pmask_empty(&a->c.unmap[CPU]));
	for (unsigned int p = 0; p < 3; p++)
		assert_true(pmask_empty(&a->c.drop[p]));
}

/*
 * Disabling collapses: page 0 (CPU, G1) keeps the preferred G1's copy;
 * page 1 (CPU, G2) has none at G1 and keeps the lowest, the CPU's; page 2
 * (G2 only) stays. AccessedBy G2 is mapped again where it can reach the
 * survivor: page 1 (system memory), not page 0 (G1's memory).
 */
static void disable_collapses_copies(void **state)
{
	struct adv *a = adv_new();

	(void)state;
	a->pol.preferred = G1;
	a->pol.accessed_by = UVM_PROCMASK(G2);
	pmask_set(&a->resident[CPU], 0);
	pmask_set(&a->resident[G1], 0);
	pmask_set(&a->resident[CPU], 1);
	pmask_set(&a->resident[G2], 1);
	pmask_set(&a->resident[G2], 2);
	for (unsigned int p = 0; p < 3; p++)
		a->mapped[p] = a->resident[p];
	pmask_set_range(&a->read_dup, 0, 2);
	uvm_rdup_disable(&a->v, &a->topo, &a->pol, &a->c);
	assert_true(is_page(&a->c.drop[CPU], 0));
	assert_true(pmask_empty(&a->c.drop[G1]));
	assert_true(is_page(&a->c.drop[G2], 1));
	assert_true(is_page(&a->c.unmap[CPU], 0));
	assert_true(is_page(&a->c.unmap[G2], 1));
	assert_true(is_range(&a->c.read_dup_clear, 0, 2));
	assert_true(is_page(&a->c.map[G2], 1));
	assert_true(pmask_empty(&a->c.map[CPU]));
	assert_true(pmask_empty(&a->c.map[G1]));
}

/* SetPreferredLocation unmaps the preferred processor's remote mappings;
 * nothing under read-mostly. */
static void preferred_unmaps_non_local(void **state)
{
	struct adv *a = adv_new();

	(void)state;
	a->pol.preferred = G1;
	pmask_set_range(&a->resident[G1], 0, 10);
	pmask_set_range(&a->resident[CPU], 10, 10);
	pmask_set_range(&a->mapped[G1], 0, 20);
	pmask_set_range(&a->mapped[CPU], 10, 10);
	uvm_advise_preferred(&a->v, &a->pol, &a->c);
	assert_true(is_range(&a->c.unmap[G1], 10, 10));
	assert_true(pmask_empty(&a->c.unmap[CPU]));
	uvm_block_change_init(&a->c);
	a->pol.read_dup = UVM_READ_DUP_ENABLED;
	uvm_advise_preferred(&a->v, &a->pol, &a->c);
	assert_true(pmask_empty(&a->c.unmap[G1]));
	/* Unset: nothing. */
	a->pol.read_dup = UVM_READ_DUP_UNSET;
	a->pol.preferred = UVM_PROC_NONE;
	uvm_advise_preferred(&a->v, &a->pol, &a->c);
	for (unsigned int p = 0; p < 3; p++)
		assert_true(pmask_empty(&a->c.unmap[p]));
}

/* SetAccessedBy G1: mapped to the populated pages it does not hold, can
 * reach, and that are not read-duplicated. */
static void accessed_by_maps(void **state)
{
	struct adv *a = adv_new();
	struct pmask all, expect;

	(void)state;
	pmask_set_range(&a->resident[CPU], 0, 10);
	pmask_set_range(&a->resident[G2], 10, 10);
	pmask_set_range(&a->resident[G1], 20, 10);
	pmask_set(&a->read_dup, 5);
	pmask_zero(&all);
	pmask_set_range(&all, 0, 512);
	uvm_advise_accessed_by(&a->v, &a->topo, G1, &all, &a->c);
	pmask_zero(&expect);
	pmask_set_range(&expect, 0, 10);
	pmask_clear(&expect, 5);
	assert_true(pmask_equal(&a->c.map[G1], &expect));
	/* With peer access G1 also maps G2's pages. */
	uvm_block_change_init(&a->c);
	a->topo.can_access[G1] |= UVM_PROCMASK(G2);
	uvm_advise_accessed_by(&a->v, &a->topo, G1, &all, &a->c);
	pmask_set_range(&expect, 10, 10);
	assert_true(pmask_equal(&a->c.map[G1], &expect));
	/* Only the pages asked about (after a migration of 0..3). */
	uvm_block_change_init(&a->c);
	pmask_zero(&all);
	pmask_set_range(&all, 0, 4);
	uvm_advise_accessed_by(&a->v, &a->topo, G1, &all, &a->c);
	assert_true(is_range(&a->c.map[G1], 0, 4));
	assert_int_equal(uvm_block_residents(&a->v, 25), UVM_PROCMASK(G1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(write_breaks_read_duplication),
		cmocka_unit_test(enable_removes_remote_mappings),
		cmocka_unit_test(disable_collapses_copies),
		cmocka_unit_test(preferred_unmaps_non_local),
		cmocka_unit_test(accessed_by_maps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
