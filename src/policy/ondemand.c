/* SPDX-License-Identifier: MIT */
/*
 * The `ondemand` policy (managed-memory.md §5.5): the baseline. Every
 * fault moves exactly its 4 KiB page to the faulting processor; nothing is
 * prefetched, nothing is throttled or pinned. It needs no hook: the
 * engine's default action for a device fault is MIGRATE to the requester
 * (cause FAULT, rule 0), and for a CPU fault MIGRATE to the CPU. Its one
 * hook names the rule, so that provenance says which policy decided.
 */
#include "engine.h"

/* Rule ids of ondemand (the origin's rule field). */
#define ONDEMAND_RULE_REQUESTER 1

static void ondemand_fault(void *ctx, const struct dmm_block_view *blk, const struct dmm_fault_info *f,
			   struct dmm_action *act)
{
	(void)ctx;
	(void)blk;
	act->type = DMM_ACT_MIGRATE;
	act->cause = DMM_CAUSE_FAULT;
	act->dst = f->proc;
	act->origin.rule = ONDEMAND_RULE_REQUESTER;
}

const struct dmm_policy_ops dmm_policy_ondemand = {
	.name = "ondemand",
	.fault = ondemand_fault,
	.cpu_fault = ondemand_fault,
};
