/* SPDX-License-Identifier: MIT */
/*
 * The uvm policy's tunables (src/policy/uvm_params.c): NVIDIA's defaults,
 * set and read by name, refused names and values leave everything as it
 * was; and the processor model (src/policy/uvm_topology.c): the PCIe
 * topology, the closest resident copy, the most intrusive access.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/uvm.h"

static void defaults_are_nvidias(void **state)
{
	struct uvm_params p;

	(void)state;
	uvm_params_default(&p);
	assert_int_equal(p.prefetch_enable, 1);
	assert_int_equal(p.prefetch_threshold, 51);
	assert_int_equal(p.prefetch_min_faults, 1);
	assert_int_equal(p.thrashing_enable, 1);
	assert_int_equal(p.thrashing_threshold, 3);
	assert_int_equal(p.thrashing_pin_threshold, 10);
	assert_int_equal(p.thrashing_lapse_usec, 500);
	assert_int_equal(p.thrashing_nap, 1);
	assert_int_equal(p.thrashing_epoch, 2000);
	assert_int_equal(p.thrashing_pin, 300);
	assert_int_equal(p.thrashing_max_resets, 4);
	assert_int_equal(p.lapse_vote_threshold, 32);
	assert_int_equal(p.lapse_adapt, 0);
	assert_int_equal(p.fault_batch_count, 256);
	assert_int_equal(p.fault_replay_policy, UVM_REPLAY_BATCH_FLUSH);
	assert_int_equal(p.fault_max_batches_per_service, 20);
	assert_int_equal(p.fault_max_throttle_per_service, 5);
	assert_int_equal(p.fault_coalesce, 1);
	assert_int_equal(p.fault_replay_update_put_ratio, 50);
	assert_int_equal(p.reenable_prefetch_faults_lapse_msec, 1000);
	assert_int_equal(p.map_remote_on_native_atomics_fault, 0);
}

/* Every field of struct uvm_params has exactly one table entry. */
static void table_covers_every_field(void **state)
{
	unsigned int seen[sizeof(struct uvm_params) / sizeof(uint32_t)] = { 0 };

	(void)state;
	assert_int_equal(uvm_param_count, sizeof(seen) / sizeof(seen[0]));
	for (unsigned int i = 0; i < uvm_param_count; i++) {
		const struct uvm_param_desc *d = &uvm_param_table[i];

		assert_true(d->min <= d->def && d->def <= d->max);
		assert_int_equal(d->offset % sizeof(uint32_t), 0);
		seen[d->offset / sizeof(uint32_t)]++;
		assert_ptr_equal(uvm_param_find(d->name), d);
		assert_null(strstr(d->name, "uvm_perf_"));
	}
	for (unsigned int i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
		assert_int_equal(seen[i], 1);
}

static void set_and_get_by_name(void **state)
{
	struct uvm_params p;
	int64_t v;

	(void)state;
	uvm_params_default(&p);
	assert_int_equal(uvm_param_set(&p, "prefetch_threshold", 100), 0);
	assert_int_equal(p.prefetch_threshold, 100);
	assert_int_equal(uvm_param_set(&p, "prefetch_threshold", 1), 0);
	assert_int_equal(uvm_param_get(&p, "prefetch_threshold", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(uvm_param_set(&p, "thrashing_pin", 0), 0);
	assert_int_equal(p.thrashing_pin, 0);
	assert_int_equal(uvm_param_parse(&p, "thrashing_lapse_usec=0x3e8"), 0);
	assert_int_equal(p.thrashing_lapse_usec, 1000);
	assert_int_equal(uvm_param_parse(&p, "fault_replay_policy=once"), 0);
	assert_int_equal(p.fault_replay_policy, UVM_REPLAY_ONCE);
	assert_int_equal(uvm_param_parse(&p, "fault_replay_policy=0"), 0);
	assert_int_equal(p.fault_replay_policy, UVM_REPLAY_BLOCK);
}

static void bad_names_and_values_change_nothing(void **state)
{
	struct uvm_params p, before;
	int64_t v;

	(void)state;
	uvm_params_default(&p);
	before = p;
	assert_int_equal(uvm_param_set(&p, "uvm_perf_prefetch_threshold", 60), -EINVAL);
	assert_int_equal(uvm_param_set(&p, "prefetch", 60), -EINVAL);
	assert_int_equal(uvm_param_set(&p, NULL, 60), -EINVAL);
	assert_int_equal(uvm_param_get(&p, "nope", &v), -EINVAL);
	assert_int_equal(uvm_param_set(&p, "prefetch_threshold", 0), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "prefetch_threshold", 101), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "prefetch_min_faults", 21), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "thrashing_threshold", 8), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "thrashing_pin_threshold", 256), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "thrashing_nap", 101), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "fault_replay_policy", 4), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "prefetch_enable", -1), -ERANGE);
	assert_int_equal(uvm_param_set(&p, "thrashing_epoch", INT64_MAX), -ERANGE);
	assert_int_equal(uvm_param_parse(&p, "prefetch_threshold"), -EINVAL);
	assert_int_equal(uvm_param_parse(&p, "prefetch_threshold="), -EINVAL);
	assert_int_equal(uvm_param_parse(&p, "prefetch_threshold=5x"), -EINVAL);
	assert_int_equal(uvm_param_parse(&p, "prefetch_threshold=+5"), -EINVAL);
	assert_int_equal(uvm_param_parse(&p, "prefetch_threshold=200"), -ERANGE);
	assert_int_equal(uvm_param_parse(&p, "prefetch_threshold=99999999999999999999"), -ERANGE);
	assert_int_equal(uvm_param_parse(&p, "fault_replay_policy=flush"), -EINVAL);
	assert_int_equal(uvm_param_parse(&p, "=1"), -EINVAL);
	assert_int_equal(uvm_param_parse(&p, NULL), -EINVAL);
	assert_memory_equal(&p, &before, sizeof(p));
}

static void pcie_topology(void **state)
{
	struct uvm_topology t;

	(void)state;
	uvm_topology_pcie(&t, 2);
	assert_int_equal(t.nprocs, 3);
	assert_true(uvm_can_access(&t, 1, 0));
	assert_true(uvm_can_access(&t, 1, 1));
	assert_false(uvm_can_access(&t, 1, 2));
	assert_false(uvm_can_access(&t, 0, 1));
	assert_true(uvm_can_access(&t, 0, 0));
	assert_false(uvm_can_access(&t, 5, 0));
	assert_int_equal(t.has_memory, 0x7);
}

static void closest_resident_order(void **state)
{
	struct uvm_topology t;

	(void)state;
	uvm_topology_pcie(&t, 4);
	t.fast_access[1] = UVM_PROCMASK(3);
	assert_int_equal(uvm_closest_resident(&t, 1, 0), UVM_PROC_NONE);
	/* Itself first. */
	assert_int_equal(uvm_closest_resident(&t, 1, 0xf), 1);
	/* Then a fast peer, before the CPU. */
	assert_int_equal(uvm_closest_resident(&t, 1, 0xd), 3);
	/* Then the CPU. */
	assert_int_equal(uvm_closest_resident(&t, 1, 0x5), 0);
	/* Then the lowest. */
	assert_int_equal(uvm_closest_resident(&t, 1, 0x14), 2);
	assert_int_equal(uvm_closest_resident(&t, 0, 0xc), 2);
}

static void access_order(void **state)
{
	(void)state;
	assert_int_equal(uvm_access_highest(1u << UVM_ACCESS_PREFETCH), UVM_ACCESS_PREFETCH);
	assert_int_equal(uvm_access_highest((1u << UVM_ACCESS_READ) | 1u), UVM_ACCESS_READ);
	assert_int_equal(uvm_access_highest((1u << UVM_ACCESS_WRITE) | 2u), UVM_ACCESS_WRITE);
	assert_int_equal(uvm_access_highest(0xf), UVM_ACCESS_ATOMIC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_nvidias),
		cmocka_unit_test(table_covers_every_field),
		cmocka_unit_test(set_and_get_by_name),
		cmocka_unit_test(bad_names_and_values_change_nothing),
		cmocka_unit_test(pcie_topology),
		cmocka_unit_test(closest_resident_order),
		cmocka_unit_test(access_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
