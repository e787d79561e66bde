/* SPDX-License-Identifier: MIT */
/*
 * The uvm policy's plan for one block's faults of one batch
 * (shared/spec/managed-memory.md section 1.1 step 5 and section 1.3's
 * entry condition): the thrashing hint and the residency of every fault,
 * then the tree prefetcher when all the serviced faults go to one
 * processor. It composes uvm_thrash.c, uvm_residency.c and
 * uvm_prefetch.c; it moves nothing.
 */
#include <string.h>

#include "uvm.h"

/* The thrashing hint and the residency of one fault. */
static void plan_fault(const struct uvm_params *params, const struct uvm_topology *topo,
		       const struct uvm_policy_attrs *pol, struct uvm_thrash_space *sp,
		       struct uvm_block_policy_state *st, const struct uvm_block_view *v,
		       const struct uvm_service_query *q, const struct uvm_fault_page *f,
		       struct uvm_service_plan *plan)
{
	struct uvm_thrash_query tq = {
		.page = f->page, .requester = q->requester, .preferred = pol->preferred,
		.resident = uvm_block_residents(v, f->page), .t = q->t,
	};
	struct uvm_thrash_hint hint;
	struct uvm_res_query rq;
	struct uvm_res_decision d;

	uvm_thrash_get_hint(params, sp, topo, &st->thrash, &tq, &hint);
	if (hint.type == UVM_THRASH_HINT_THROTTLE) {
		pmask_set(&plan->throttled, f->page);
		if (hint.throttle_end > plan->throttle_end)
			plan->throttle_end = hint.throttle_end;
		return;
	}
	if (hint.type == UVM_THRASH_HINT_PIN)
		pmask_set(&plan->pinned, f->page);
	memset(&rq, 0, sizeof(rq));
	rq.requester = q->requester;
	rq.access_mask = f->access_mask;
	rq.resident = tq.resident;
	rq.read_duplicated = pmask_test(v->read_dup, f->page);
	rq.hmm = q->hmm;
	rq.access_counter = q->access_counter;
	rq.remote_cpu = q->remote_cpu;
	rq.hint = hint.type;
	rq.pin_residency = hint.pin_residency;
	uvm_select_residency(topo, pol, params, &rq, &d);
	pmask_set(&plan->new_residency[d.proc], f->page);
	if (d.read_duplicate)
		pmask_set(&plan->read_dup, f->page);
	if (d.keep_residency)
		pmask_set(&plan->keep, f->page);
	plan->rule[f->page] = (uint8_t)d.rule;
}

/* The one processor every serviced fault goes to, or UVM_PROC_NONE. */
static uvm_proc_t single_destination(const struct uvm_block_view *v, const struct uvm_service_plan *plan)
{
	uvm_proc_t dest = UVM_PROC_NONE;

	for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++) {
		if (pmask_empty(&plan->new_residency[p]))
			continue;
		if (dest != UVM_PROC_NONE)
			return UVM_PROC_NONE;
		dest = (uvm_proc_t)p;
	}
	return dest;
}

static void plan_prefetch(const struct uvm_params *params, const struct uvm_policy_attrs *pol,
			  struct uvm_block_policy_state *st, const struct uvm_block_view *v,
			  const struct uvm_service_query *q, struct uvm_service_plan *plan)
{
	uvm_proc_t dest = single_destination(v, plan);
	struct pmask any, cpu_readable;
	struct uvm_prefetch_query pq;

	if (dest == UVM_PROC_NONE)
		return;
	pmask_zero(&any);
	for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++)
		pmask_or(&any, &any, &v->resident[p]);
	pmask_and(&cpu_readable, &v->resident[UVM_PROC_CPU], &v->mapped[UVM_PROC_CPU]);
	memset(&pq, 0, sizeof(pq));
	pq.va_page = q->va_page;
	pq.first = 0;
	pq.npages = v->npages;
	pq.dest = dest;
	pq.preferred = pol->preferred;
	pq.block_empty = pmask_empty(&any);
	pq.faulted = &plan->new_residency[dest];
	pq.dest_resident = &v->resident[dest];
	pq.cpu_readable = &cpu_readable;
	pq.thrashing = &st->thrash.thrashing;
	plan->has_prefetch = uvm_prefetch_get_hint(params, &st->prefetch, &pq, &plan->prefetch);
	plan->prefetch_read_dup = plan->has_prefetch && pol->read_dup == UVM_READ_DUP_ENABLED;
}

void uvm_service_block(const struct uvm_params *params, const struct uvm_topology *topo,
		       const struct uvm_policy_attrs *pol, struct uvm_thrash_space *sp,
		       struct uvm_block_policy_state *st, const struct uvm_block_view *v,
		       const struct uvm_service_query *q, struct uvm_service_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	for (unsigned int i = 0; i < q->nfaults; i++)
		if (q->faults[i].page < v->npages)
			plan_fault(params, topo, pol, sp, st, v, q, &q->faults[i], plan);
	plan_prefetch(params, pol, st, v, q, plan);
}
