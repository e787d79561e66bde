/* SPDX-License-Identifier: MIT */
/*
 * Residency selection for one faulted page (shared/spec/managed-memory.md
 * section 1.2; NVIDIA's block_select_processor_residency): eleven rules
 * checked in a fixed order, the first that applies decides, then a chosen
 * processor without memory becomes the CPU. The decision also says whether
 * the page is copied (read duplication) and whether the residency stays
 * where it is and the requester only gains a mapping.
 */
#include <string.h>

#include "uvm.h"

bool uvm_may_read_duplicate(const struct uvm_policy_attrs *pol, bool read_duplicated,
			    enum uvm_thrash_hint_type hint)
{
	if (pol->read_dup == UVM_READ_DUP_ENABLED)
		return true;
	return pol->read_dup != UVM_READ_DUP_DISABLED && read_duplicated && hint != UVM_THRASH_HINT_PIN;
}

static void decide(struct uvm_res_decision *out, uvm_proc_t proc, enum uvm_res_rule rule)
{
	out->proc = proc;
	out->rule = rule;
}

/* Rules 1 to 6: the ones that do not look at where the page lives now
 * (rule 6 only asks whether it lives anywhere). */
static bool select_early(const struct uvm_topology *topo, const struct uvm_policy_attrs *pol,
			 const struct uvm_res_query *q, struct uvm_res_decision *out)
{
	uvm_proc_t p = q->requester;

	if (q->forced_cpu) {
		decide(out, UVM_PROC_CPU, UVM_RES_FORCED_CPU);
		return true;
	}
	if (uvm_may_read_duplicate(pol, q->read_duplicated, q->hint)) {
		/* A read copies onto P; a write or atomic moves to P and the
		 * other copies are invalidated (section 1.6). */
		out->read_duplicate = uvm_access_highest(q->access_mask) <= UVM_ACCESS_READ;
		decide(out, p, UVM_RES_READ_DUP);
		return true;
	}
	if (pol->preferred == p) {
		decide(out, p, UVM_RES_PREFERRED_REQUESTER);
		return true;
	}
	if (q->hmm && p == UVM_PROC_CPU) {
		decide(out, UVM_PROC_CPU, UVM_RES_HMM_CPU_FAULT);
		return true;
	}
	if (q->hint == UVM_THRASH_HINT_PIN) {
		decide(out, q->pin_residency, UVM_RES_THRASH_PIN);
		return true;
	}
	if (!q->resident) {
		bool pref = pol->preferred != UVM_PROC_NONE && uvm_can_access(topo, p, pol->preferred);

		decide(out, pref ? pol->preferred : p, UVM_RES_FIRST_TOUCH);
		return true;
	}
	return false;
}

/* Rules 7 to 11, for a page resident somewhere. */
static void select_late(const struct uvm_topology *topo, const struct uvm_policy_attrs *pol,
			const struct uvm_params *params, const struct uvm_res_query *q,
			struct uvm_res_decision *out)
{
	uvm_proc_t p = q->requester;
	uvm_proc_t closest = uvm_closest_resident(topo, p, q->resident);

	if (uvm_procmask_test(pol->accessed_by, p) && uvm_can_access(topo, p, closest) &&
	    !q->access_counter) {
		out->keep_residency = true;
		decide(out, closest, UVM_RES_ACCESSED_BY);
		return;
	}
	if (params->map_remote_on_native_atomics_fault &&
	    uvm_access_highest(q->access_mask) == UVM_ACCESS_ATOMIC && p < topo->nprocs &&
	    uvm_procmask_test(topo->native_atomics[p], closest)) {
		out->keep_residency = true;
		decide(out, closest, UVM_RES_NATIVE_ATOMICS);
		return;
	}
	if (pol->preferred != UVM_PROC_NONE && closest != p && uvm_can_access(topo, p, pol->preferred)) {
		decide(out, pol->preferred, UVM_RES_PREFERRED_REMOTE);
		return;
	}
	if (q->remote_cpu && p == UVM_PROC_CPU) {
		out->keep_residency = true;
		decide(out, closest, UVM_RES_REMOTE_CPU);
		return;
	}
	decide(out, p, UVM_RES_REQUESTER);
}

void uvm_select_residency(const struct uvm_topology *topo, const struct uvm_policy_attrs *pol,
			  const struct uvm_params *params, const struct uvm_res_query *q,
			  struct uvm_res_decision *out)
{
	memset(out, 0, sizeof(*out));
	if (!select_early(topo, pol, q, out))
		select_late(topo, pol, params, q, out);
	if (out->proc >= topo->nprocs || !uvm_procmask_test(topo->has_memory, out->proc))
		out->proc = UVM_PROC_CPU;
}
