/* SPDX-License-Identifier: MIT */
/*
 * Residency selection (src/policy/uvm_residency.c, spec section 1.2). Each
 * rule has a test whose query meets that rule and as many of the later
 * rules as can hold at once: the rule must win. Then, one at a time, the
 * condition of every earlier rule is added to the same query: the earlier
 * rule must win. So each test shows its rule beating the later ones and
 * losing to the earlier ones.
 *
 * Processors: 0 CPU, 1 and 2 GPUs. Unless a test says otherwise every
 * processor can map every other's memory (a coherent system), so that
 * "can access" never hides a rule; the PCIe tests use uvm_topology_pcie.
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
#define R (1u << UVM_ACCESS_READ)
#define W (1u << UVM_ACCESS_WRITE)
#define A (1u << UVM_ACCESS_ATOMIC)

struct sel {
	struct uvm_topology topo;
	struct uvm_policy_attrs pol;
	struct uvm_params params;
	struct uvm_res_query q;
};

static void coherent(struct sel *s, uvm_proc_t requester, unsigned int access, uvm_procmask_t resident)
{
	memset(s, 0, sizeof(*s));
	s->topo.nprocs = 3;
	s->topo.has_memory = 0x7;
	for (unsigned int p = 0; p < 3; p++)
		s->topo.can_access[p] = 0x7;
	s->pol.preferred = UVM_PROC_NONE;
	s->pol.read_dup = UVM_READ_DUP_UNSET;
	uvm_params_default(&s->params);
	s->q.requester = requester;
	s->q.access_mask = access;
	s->q.resident = resident;
	s->q.hint = UVM_THRASH_HINT_NONE;
	s->q.pin_residency = UVM_PROC_NONE;
}

static struct uvm_res_decision run(const struct sel *s)
{
	struct uvm_res_decision d;

	uvm_select_residency(&s->topo, &s->pol, &s->params, &s->q, &d);
	return d;
}

/* Make rule j's condition hold in s. */
static void meet(struct sel *s, enum uvm_res_rule j)
{
	uvm_proc_t p = s->q.requester;

	switch (j) {
	case UVM_RES_FORCED_CPU:
		s->q.forced_cpu = true;
		break;
	case UVM_RES_READ_DUP:
		s->pol.read_dup = UVM_READ_DUP_ENABLED;
		break;
	case UVM_RES_PREFERRED_REQUESTER:
		s->pol.preferred = p;
		break;
	case UVM_RES_HMM_CPU_FAULT:
		s->q.hmm = true;
		s->q.requester = CPU;
		if (s->pol.preferred == CPU)
			s->pol.preferred = G2;
		break;
	case UVM_RES_THRASH_PIN:
		s->q.hint = UVM_THRASH_HINT_PIN;
		s->q.pin_residency = G2;
		break;
	case UVM_RES_FIRST_TOUCH:
		s->q.resident = 0;
		break;
	case UVM_RES_ACCESSED_BY:
		s->pol.accessed_by |= UVM_PROCMASK(p);
		s->q.access_counter = false;
		break;
	case UVM_RES_NATIVE_ATOMICS:
		s->params.map_remote_on_native_atomics_fault = 1;
		s->q.access_mask |= A;
		s->topo.native_atomics[p] = 0x7;
		break;
	case UVM_RES_PREFERRED_REMOTE:
		s->pol.preferred = p == CPU ? G2 : CPU;
		if (uvm_procmask_test(s->q.resident, p))
			s->q.resident = UVM_PROCMASK(p == G1 ? G2 : G1);
		break;
	case UVM_RES_REMOTE_CPU:
		s->q.remote_cpu = true;
		s->q.requester = CPU;
		s->q.resident = UVM_PROCMASK(G1);
		break;
	case UVM_RES_REQUESTER:
		break;
	}
}

/* s must be decided by rule k; every earlier rule, added, must win. */
static void check_order(const struct sel *s, enum uvm_res_rule k, uvm_proc_t expect)
{
	struct uvm_res_decision d = run(s);

	assert_int_equal(d.rule, k);
	assert_int_equal(d.proc, expect);
	for (enum uvm_res_rule j = UVM_RES_FORCED_CPU; j < k; j++) {
		struct sel t = *s;

		meet(&t, j);
		d = run(&t);
		if (d.rule != j)
			fail_msg("rule %d added to a rule-%d query: decided by rule %d", j, k, d.rule);
	}
}

static void rule1_forced_cpu(void **state)
{
	struct sel s;

	(void)state;
	coherent(&s, G1, R, UVM_PROCMASK(G2));
	for (enum uvm_res_rule j = UVM_RES_READ_DUP; j <= UVM_RES_REQUESTER; j++)
		if (j != UVM_RES_HMM_CPU_FAULT && j != UVM_RES_REMOTE_CPU && j != UVM_RES_FIRST_TOUCH)
			meet(&s, j);
	meet(&s, UVM_RES_FORCED_CPU);
	check_order(&s, UVM_RES_FORCED_CPU, CPU);
	assert_false(run(&s).read_duplicate);
}

static void rule2_read_duplication(void **state)
{
	struct sel s;
	struct uvm_res_decision d;

	(void)state;
	coherent(&s, G1, R, UVM_PROCMASK(CPU));
	meet(&s, UVM_RES_THRASH_PIN);
	meet(&s, UVM_RES_ACCESSED_BY);
	meet(&s, UVM_RES_READ_DUP);
	s.pol.preferred = G2;
	check_order(&s, UVM_RES_READ_DUP, G1);
	assert_true(run(&s).read_duplicate);

	/* A prefetch access duplicates too; a write or atomic moves. */
	s.q.access_mask = 1u << UVM_ACCESS_PREFETCH;
	assert_true(run(&s).read_duplicate);
	s.q.access_mask = R | W;
	d = run(&s);
	assert_int_equal(d.rule, UVM_RES_READ_DUP);
	assert_int_equal(d.proc, G1);
	assert_false(d.read_duplicate);
	assert_false(d.keep_residency);
	s.q.access_mask = A;
	assert_false(run(&s).read_duplicate);
}

static void rule2_may_read_duplicate(void **state)
{
	struct uvm_policy_attrs pol = { .preferred = UVM_PROC_NONE };

	(void)state;
	pol.read_dup = UVM_READ_DUP_ENABLED;
	assert_true(uvm_may_read_duplicate(&pol, false, UVM_THRASH_HINT_PIN));
	pol.read_dup = UVM_READ_DUP_UNSET;
	assert_false(uvm_may_read_duplicate(&pol, false, UVM_THRASH_HINT_NONE));
	assert_true(uvm_may_read_duplicate(&pol, true, UVM_THRASH_HINT_NONE));
	assert_true(uvm_may_read_duplicate(&pol, true, UVM_THRASH_HINT_THROTTLE));
	assert_false(uvm_may_read_duplicate(&pol, true, UVM_THRASH_HINT_PIN));
	pol.read_dup = UVM_READ_DUP_DISABLED;
	assert_false(uvm_may_read_duplicate(&pol, true, UVM_THRASH_HINT_NONE));
}

/* An already duplicated page under an unset policy: rule 2, unless PIN. */
static void rule2_already_duplicated(void **state)
{
	struct sel s;

	(void)state;
	coherent(&s, G1, R, UVM_PROCMASK(CPU) | UVM_PROCMASK(G2));
	s.q.read_duplicated = true;
	check_order(&s, UVM_RES_READ_DUP, G1);
	s.q.hint = UVM_THRASH_HINT_PIN;
	s.q.pin_residency = CPU;
	assert_int_equal(run(&s).rule, UVM_RES_THRASH_PIN);
	s.q.hint = UVM_THRASH_HINT_NONE;
	s.pol.read_dup = UVM_READ_DUP_DISABLED;
	assert_int_equal(run(&s).rule, UVM_RES_REQUESTER);
}

static void rule3_requester_is_preferred(void **state)
{
	struct sel s;

	(void)state;
	coherent(&s, G1, W, UVM_PROCMASK(CPU));
	meet(&s, UVM_RES_THRASH_PIN);
	meet(&s, UVM_RES_ACCESSED_BY);
	meet(&s, UVM_RES_NATIVE_ATOMICS);
	meet(&s, UVM_RES_PREFERRED_REQUESTER);
	check_order(&s, UVM_RES_PREFERRED_REQUESTER, G1);
	/* An already duplicated page: rule 2, unless the hint is PIN. */
	s.q.read_duplicated = true;
	assert_int_equal(run(&s).rule, UVM_RES_PREFERRED_REQUESTER);
	s.q.hint = UVM_THRASH_HINT_NONE;
	assert_int_equal(run(&s).rule, UVM_RES_READ_DUP);
}

static void rule4_hmm_cpu_fault(void **state)
{
	struct sel s;

	(void)state;
	coherent(&s, CPU, R, UVM_PROCMASK(G1));
	meet(&s, UVM_RES_THRASH_PIN);
	meet(&s, UVM_RES_ACCESSED_BY);
	meet(&s, UVM_RES_PREFERRED_REMOTE);
	s.q.remote_cpu = true;
	meet(&s, UVM_RES_HMM_CPU_FAULT);
	check_order(&s, UVM_RES_HMM_CPU_FAULT, CPU);
	/* Only a CPU requester. */
	s.q.requester = G1;
	assert_int_equal(run(&s).rule, UVM_RES_THRASH_PIN);
}

static void rule5_thrash_pin(void **state)
{
	struct sel s;
	struct uvm_res_decision d;

	(void)state;
	coherent(&s, G1, R, 0);
	s.pol.preferred = CPU;
	meet(&s, UVM_RES_THRASH_PIN);
	check_order(&s, UVM_RES_THRASH_PIN, G2);
	/* Over every later rule on a resident page too. */
	s.q.resident = UVM_PROCMASK(CPU);
	meet(&s, UVM_RES_ACCESSED_BY);
	meet(&s, UVM_RES_NATIVE_ATOMICS);
	check_order(&s, UVM_RES_THRASH_PIN, G2);
	/* A pin residency without memory becomes the CPU. */
	s.topo.has_memory = UVM_PROCMASK(CPU) | UVM_PROCMASK(G1);
	d = run(&s);
	assert_int_equal(d.rule, UVM_RES_THRASH_PIN);
	assert_int_equal(d.proc, CPU);
}

static void rule6_first_touch(void **state)
{
	struct sel s;
	struct uvm_res_decision d;

	(void)state;
	coherent(&s, G1, A, 0);
	meet(&s, UVM_RES_ACCESSED_BY);
	meet(&s, UVM_RES_NATIVE_ATOMICS);
	meet(&s, UVM_RES_PREFERRED_REMOTE); /* preferred = CPU */
	check_order(&s, UVM_RES_FIRST_TOUCH, CPU);
	assert_false(run(&s).keep_residency);
	/* A preferred location P cannot access: P. */
	uvm_topology_pcie(&s.topo, 2);
	s.pol.preferred = G2;
	d = run(&s);
	assert_int_equal(d.rule, UVM_RES_FIRST_TOUCH);
	assert_int_equal(d.proc, G1);
	/* No preferred location: P. */
	s.pol.preferred = UVM_PROC_NONE;
	assert_int_equal(run(&s).proc, G1);
}

static void rule7_accessed_by(void **state)
{
	struct sel s;
	struct uvm_res_decision d;

	(void)state;
	coherent(&s, G1, R, UVM_PROCMASK(G2));
	meet(&s, UVM_RES_NATIVE_ATOMICS);
	meet(&s, UVM_RES_PREFERRED_REMOTE);
	meet(&s, UVM_RES_ACCESSED_BY);
	check_order(&s, UVM_RES_ACCESSED_BY, G2);
	assert_true(run(&s).keep_residency);
	/* Not for an access-counter operation. */
	s.q.access_counter = true;
	assert_int_equal(run(&s).rule, UVM_RES_NATIVE_ATOMICS);
	/* Not when P cannot access the closest copy. */
	s.q.access_counter = false;
	s.params.map_remote_on_native_atomics_fault = 0;
	s.topo.can_access[G1] = UVM_PROCMASK(G1) | UVM_PROCMASK(CPU);
	d = run(&s);
	assert_int_equal(d.rule, UVM_RES_PREFERRED_REMOTE);
	assert_int_equal(d.proc, CPU);
}

static void rule8_native_atomics(void **state)
{
	struct sel s;

	(void)state;
	coherent(&s, G1, R, UVM_PROCMASK(CPU));
	meet(&s, UVM_RES_PREFERRED_REMOTE); /* preferred = CPU */
	meet(&s, UVM_RES_NATIVE_ATOMICS);
	check_order(&s, UVM_RES_NATIVE_ATOMICS, CPU);
	assert_true(run(&s).keep_residency);
	/* Off by default (map_remote_on_native_atomics_fault = 0). */
	s.params.map_remote_on_native_atomics_fault = 0;
	assert_int_equal(run(&s).rule, UVM_RES_PREFERRED_REMOTE);
	/* Only atomic faults. */
	s.params.map_remote_on_native_atomics_fault = 1;
	s.q.access_mask = R | W;
	assert_int_equal(run(&s).rule, UVM_RES_PREFERRED_REMOTE);
	/* Only with native atomics to the closest copy. */
	s.q.access_mask = A;
	s.topo.native_atomics[G1] = UVM_PROCMASK(G2);
	assert_int_equal(run(&s).rule, UVM_RES_PREFERRED_REMOTE);
}

static void rule9_preferred_remote(void **state)
{
	struct sel s;
	struct uvm_res_decision d;

	(void)state;
	coherent(&s, CPU, R, UVM_PROCMASK(G1));
	s.q.remote_cpu = true;
	meet(&s, UVM_RES_PREFERRED_REMOTE); /* preferred = G2 */
	check_order(&s, UVM_RES_PREFERRED_REMOTE, G2);
	assert_false(run(&s).keep_residency);
	/* A GPU fault on a page preferring the CPU maps sysmem (PCIe). */
	uvm_topology_pcie(&s.topo, 2);
	s.q.requester = G1;
	s.q.resident = UVM_PROCMASK(CPU);
	s.pol.preferred = CPU;
	d = run(&s);
	assert_int_equal(d.rule, UVM_RES_PREFERRED_REMOTE);
	assert_int_equal(d.proc, CPU);
	/* Not when P is the closest resident. */
	s.q.resident = UVM_PROCMASK(G1) | UVM_PROCMASK(CPU);
	assert_int_equal(run(&s).rule, UVM_RES_REQUESTER);
	/* On PCIe a CPU fault on a page preferring a GPU migrates to the CPU. */
	s.q.remote_cpu = false;
	s.q.requester = CPU;
	s.q.resident = UVM_PROCMASK(G1);
	s.pol.preferred = G1;
	d = run(&s);
	assert_int_equal(d.rule, UVM_RES_REQUESTER);
	assert_int_equal(d.proc, CPU);
}

static void rule10_remote_cpu(void **state)
{
	struct sel s;

	(void)state;
	coherent(&s, CPU, W, UVM_PROCMASK(G1));
	meet(&s, UVM_RES_REMOTE_CPU);
	check_order(&s, UVM_RES_REMOTE_CPU, G1);
	assert_true(run(&s).keep_residency);
	/* Only for the CPU. */
	s.q.requester = G2;
	assert_int_equal(run(&s).rule, UVM_RES_REQUESTER);
}

static void rule11_requester(void **state)
{
	struct sel s;
	struct uvm_res_decision d;

	(void)state;
	coherent(&s, G1, W, UVM_PROCMASK(CPU));
	s.q.remote_cpu = true; /* a GPU fault: rule 10 does not apply */
	check_order(&s, UVM_RES_REQUESTER, G1);
	d = run(&s);
	assert_false(d.keep_residency);
	assert_false(d.read_duplicate);
	/* A requester without memory: the CPU. */
	s.topo.has_memory = UVM_PROCMASK(CPU) | UVM_PROCMASK(G2);
	d = run(&s);
	assert_int_equal(d.rule, UVM_RES_REQUESTER);
	assert_int_equal(d.proc, CPU);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rule1_forced_cpu),
		cmocka_unit_test(rule2_read_duplication),
		cmocka_unit_test(rule2_may_read_duplicate),
		cmocka_unit_test(rule2_already_duplicated),
		cmocka_unit_test(rule3_requester_is_preferred),
		cmocka_unit_test(rule4_hmm_cpu_fault),
		cmocka_unit_test(rule5_thrash_pin),
		cmocka_unit_test(rule6_first_touch),
		cmocka_unit_test(rule7_accessed_by),
		cmocka_unit_test(rule8_native_atomics),
		cmocka_unit_test(rule9_preferred_remote),
		cmocka_unit_test(rule10_remote_cpu),
		cmocka_unit_test(rule11_requester),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
