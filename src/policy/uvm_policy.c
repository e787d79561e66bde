/* SPDX-License-Identifier: MIT */
/*
 * The `uvm` policy (docs/managed-memory.md, "The uvm policy"): NVIDIA
 * UVM's algorithms (uvm.h, pure functions) wired to the engine's hooks.
 *
 *   fault      the thrashing hint (uvm_thrash_get_hint), then residency
 *              selection (uvm_select_residency) with the hint; THROTTLE
 *              and PIN carry their deadlines.
 *   cpu_fault  the same for the CPU as requester (the engine always
 *              brings the page back; a THROTTLE makes the thread nap).
 *   prefetch   the tree prefetcher (uvm_prefetch_get_hint), for device
 *              and CPU destinations alike.
 *   on_event   MIGRATE events feed the thrashing detector
 *              (uvm_thrash_event); UNPIN events reset the pin there.
 *   block_free the per-block state (uvm_thrash_block_fini).
 *
 * What the engine cannot execute yet (DUPLICATE, MAP_REMOTE: read
 * duplication, AccessedBy mappings, remote mappings of a page that stays
 * elsewhere) is not asked for: the decision falls through to the next
 * rule of the residency order, and a device fault is always answered by a
 * page on the requester (the only mapping a device can have today). The
 * origin's rule says what was skipped (UVM_RULE_SKIPPED).
 *
 * Tunables: the non-fault_* entries of uvm_param_table (uvm_params.c),
 * per run and per range through the engine; the fault_* ones are the
 * engine's. Per-block state comes from the engine's allocator so that its
 * fault injection reaches it; without it a fault gets the default action.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "engine.h"
#include "uvm.h"

/* Rule ids in the origin: residency rules are enum uvm_res_rule (1..11);
 * thrashing throttles UVM_RULE_THROTTLE + enum uvm_thrash_step; the
 * prefetcher UVM_RULE_PREFETCH_TREE / _FIRST_TOUCH. A residency rule the
 * engine could not execute is kept in bits 8..15 (UVM_RULE_SKIPPED). */
#define UVM_RULE_THROTTLE 32u
#define UVM_RULE_PREFETCH_TREE 64u
#define UVM_RULE_PREFETCH_FIRST_TOUCH 65u
#define UVM_RULE_SKIPPED(rule) ((uint32_t)(rule) << 8)

/* The policy's tunables as the engine sees them: the POL entries of the
 * one list (uvm.h), in its order, and where each goes in struct uvm_params. */
#define TUN(field, d, lo, hi, text) { #field, d, lo, hi, text },
#define OFF(field, d, lo, hi, text) (unsigned int)offsetof(struct uvm_params, field),
#define NONE(field, d, lo, hi, text)
static const struct dmm_tunable_desc uvm_tunables[] = { UVM_PARAM_LIST(TUN, NONE) };
static const unsigned int uvm_tunable_offset[] = { UVM_PARAM_LIST(OFF, NONE) };
#define NR_TUNABLES (sizeof(uvm_tunables) / sizeof(uvm_tunables[0]))

struct uvm_ctx {
	struct dmm_engine *eng;
	struct uvm_thrash_space sp;
};

static void *ctx_alloc(void *c, size_t size)
{
	return eng_calloc(((struct uvm_ctx *)c)->eng, 1, size);
}

static void ctx_free(void *c, void *p)
{
	(void)c;
	free(p);
}

static int uvm_init(struct dmm_engine *eng, void **out)
{
	struct uvm_ctx *c = eng_calloc(eng, 1, sizeof(*c));
	struct uvm_params p;

	if (!c)
		return -ENOMEM;
	c->eng = eng;
	uvm_params_default(&p);
	uvm_thrash_space_init(&c->sp, &p);
	c->sp.alloc = ctx_alloc;
	c->sp.free = ctx_free;
	c->sp.alloc_ctx = c;
	*out = c;
	return 0;
}

static void uvm_fini(void *ctx)
{
	free(ctx);
}

static void uvm_block_free(void *ctx, void *data)
{
	struct uvm_ctx *c = ctx;
	struct uvm_block_policy_state *st = data;

	uvm_thrash_block_fini(&c->sp, &st->thrash);
	free(st);
}

/* The tunables in effect for the view's range. With a fixed lapse the
 * space's lapse follows the range's thrashing_lapse_usec. */
static void params_of(struct uvm_ctx *c, const struct dmm_block_view *v, struct uvm_params *p)
{
	uvm_params_default(p);
	for (unsigned int i = 0; i < NR_TUNABLES; i++)
		*(uint32_t *)((char *)p + uvm_tunable_offset[i]) = (uint32_t)v->tunables[i];
	if (!p->lapse_adapt)
		c->sp.lapse_ns = (uint64_t)p->thrashing_lapse_usec * 1000;
}

static struct uvm_block_policy_state *state_of(struct uvm_ctx *c, const struct dmm_block_view *v)
{
	struct uvm_block_policy_state *st = *v->policy_data;

	if (st)
		return st;
	st = eng_calloc(c->eng, 1, sizeof(*st));
	if (!st)
		return NULL;
	uvm_prefetch_info_init(&st->prefetch);
	uvm_thrash_block_init(&st->thrash, DMM_MBLOCK_PAGES);
	*v->policy_data = st;
	return st;
}

static void attrs_of(const struct dmm_block_view *v, struct uvm_policy_attrs *pol)
{
	pol->preferred = v->attrs->preferred < v->nr_procs ? (uvm_proc_t)v->attrs->preferred : UVM_PROC_NONE;
	pol->accessed_by = v->attrs->accessed_by;
	pol->read_dup = v->attrs->read_mostly == DMM_READ_MOSTLY_ON    ? UVM_READ_DUP_ENABLED
			: v->attrs->read_mostly == DMM_READ_MOSTLY_OFF ? UVM_READ_DUP_DISABLED
								       : UVM_READ_DUP_UNSET;
}

static uvm_procmask_t residents(const struct dmm_block_view *v, unsigned int page)
{
	uvm_procmask_t m = 0;

	for (unsigned int p = 0; p < v->nr_procs; p++)
		if (dmm_pmask_test(&v->resident[p], page))
			m |= UVM_PROCMASK(p);
	return m;
}

/*
 * Residency selection with the rules the engine cannot execute taken out:
 * read duplication (rule 2's copy), the remote mappings of rules 7, 8, 10
 * and, for a device requester, any residency but its own (the device
 * would have to map the page remotely). Returns the rule that decided and
 * sets *skipped to the first one passed over (0: none).
 */
static enum uvm_res_rule select_executable(const struct uvm_topology *topo, struct uvm_policy_attrs pol,
					   struct uvm_params params, struct uvm_res_query *q,
					   uvm_proc_t *dst, uint32_t *skipped)
{
	struct uvm_res_decision d;

	*skipped = 0;
	for (int tries = 0; tries < 4; tries++) {
		uvm_select_residency(topo, &pol, &params, q, &d);
		if (d.read_duplicate) {
			pol.read_dup = UVM_READ_DUP_DISABLED;
		} else if (d.keep_residency && d.rule == UVM_RES_ACCESSED_BY) {
			pol.accessed_by &= ~UVM_PROCMASK(q->requester);
		} else if (d.keep_residency && d.rule == UVM_RES_NATIVE_ATOMICS) {
			params.map_remote_on_native_atomics_fault = 0;
		} else if (d.keep_residency) {
			q->remote_cpu = false;
		} else {
			break;
		}
		if (!*skipped)
			*skipped = d.rule;
	}
	if (q->requester != UVM_PROC_CPU && d.proc != q->requester) {
		if (!*skipped)
			*skipped = d.rule;
		d.proc = q->requester;
		d.rule = UVM_RES_REQUESTER;
	}
	*dst = d.proc;
	return d.rule;
}

/* One fault of @f->proc (a device or the CPU): the hint, then the residency. */
static void uvm_decide(void *ctx, const struct dmm_block_view *v, const struct dmm_fault_info *f,
		       struct dmm_action *act)
{
	struct uvm_ctx *c = ctx;
	struct uvm_block_policy_state *st = state_of(c, v);
	struct uvm_topology topo;
	struct uvm_policy_attrs pol;
	struct uvm_params params;
	struct uvm_thrash_query tq;
	struct uvm_thrash_hint hint;
	struct uvm_res_query rq;
	enum uvm_res_rule rule;
	uvm_proc_t dst;
	uint32_t skipped;

	act->type = DMM_ACT_MIGRATE;
	act->cause = DMM_CAUSE_FAULT;
	act->dst = f->proc;
	act->origin.rule = UVM_RES_REQUESTER;
	if (!st || f->page >= DMM_MBLOCK_PAGES)
		return;
	params_of(c, v, &params);
	uvm_topology_pcie(&topo, v->nr_procs - 1);
	attrs_of(v, &pol);
	if (uvm_thrash_next_deadline(&st->thrash) <= v->now) {
		/* The unpin worker: pins the engine does not hold (at the
		 * CPU, which a CPU fault does not pin) end here. */
		struct pmask gone;

		uvm_thrash_unpin_due(&c->sp, &st->thrash, v->now, &gone);
	}
	tq = (struct uvm_thrash_query){ .page = f->page, .requester = (uvm_proc_t)f->proc,
					.preferred = pol.preferred, .resident = residents(v, f->page),
					.t = v->now };
	uvm_thrash_get_hint(&params, &c->sp, &topo, &st->thrash, &tq, &hint);
	if (hint.type == UVM_THRASH_HINT_THROTTLE) {
		act->type = DMM_ACT_THROTTLE;
		act->until = hint.throttle_end;
		act->origin.rule = UVM_RULE_THROTTLE + hint.step;
		return;
	}
	rq = (struct uvm_res_query){ .requester = (uvm_proc_t)f->proc,
				     .access_mask = f->access_mask ? f->access_mask : 1u << f->access,
				     .resident = tq.resident, .hint = hint.type,
				     .pin_residency = hint.pin_residency };
	rule = select_executable(&topo, pol, params, &rq, &dst, &skipped);
	act->origin.rule = rule | UVM_RULE_SKIPPED(skipped);
	if (hint.type == UVM_THRASH_HINT_PIN && skipped == UVM_RES_THRASH_PIN) {
		/* Pinned where the requester cannot map it (no remote
		 * mappings yet): the requester waits out a nap instead of
		 * taking the page away from its pin. */
		act->type = DMM_ACT_THROTTLE;
		act->until = v->now + c->sp.lapse_ns * params.thrashing_nap;
		act->origin.rule = UVM_RULE_THROTTLE + hint.step + UVM_RULE_SKIPPED(skipped);
		return;
	}
	act->dst = dst;
	if (rule == UVM_RES_THRASH_PIN && f->proc != DMM_PROC_CPU) {
		act->type = DMM_ACT_PIN;
		act->cause = DMM_CAUSE_THRASH_PIN;
		act->until = hint.pin_deadline;
	}
}

static uint32_t uvm_prefetch(void *ctx, const struct dmm_block_view *v, unsigned int dst,
			     const struct dmm_pmask *faulted, struct dmm_pmask *out)
{
	struct uvm_ctx *c = ctx;
	struct uvm_block_policy_state *st = *v->policy_data;
	struct pmask any, fm = pm_in(faulted), dres = pm_in(&v->resident[dst]), cpu_res, cpu_map;
	struct uvm_prefetch_query pq;
	struct uvm_prefetch_hint h;
	struct uvm_policy_attrs pol;
	struct uvm_params params;

	if (!st)
		st = state_of(c, v);
	if (!st)
		return 0;
	params_of(c, v, &params);
	attrs_of(v, &pol);
	pmask_zero(&any);
	for (unsigned int p = 0; p < v->nr_procs; p++) {
		struct pmask r = pm_in(&v->resident[p]);

		pmask_or(&any, &any, &r);
	}
	cpu_res = pm_in(&v->resident[DMM_PROC_CPU]);
	cpu_map = pm_in(&v->mapped[DMM_PROC_CPU]);
	pmask_and(&cpu_res, &cpu_res, &cpu_map);
	pq = (struct uvm_prefetch_query){
		.va_page = 0, .first = v->first, .npages = v->npages, .dest = (uvm_proc_t)dst,
		.preferred = pol.preferred, .block_empty = pmask_empty(&any), .faulted = &fm,
		.dest_resident = &dres, .cpu_readable = &cpu_res, .thrashing = &st->thrash.thrashing,
	};
	if (!uvm_prefetch_get_hint(&params, &st->prefetch, &pq, &h) || h.residency != dst)
		return 0; /* (a first touch toward another preferred location: not executable) */
	*out = pm_out(&h.pages);
	return h.first_touch ? UVM_RULE_PREFETCH_FIRST_TOUCH : UVM_RULE_PREFETCH_TREE;
}

static enum uvm_migration_cause cause_of(enum dmm_cause cause)
{
	switch (cause) {
	case DMM_CAUSE_FAULT:
	case DMM_CAUSE_THRASH_PIN:
		return UVM_CAUSE_REPLAYABLE_FAULT;
	case DMM_CAUSE_PREFETCH:
		return UVM_CAUSE_PREFETCH;
	case DMM_CAUSE_EVICTION:
		return UVM_CAUSE_EVICTION;
	case DMM_CAUSE_ACCESS_COUNTER:
		return UVM_CAUSE_ACCESS_COUNTER;
	default:
		return UVM_CAUSE_API;
	}
}

static void uvm_event(void *ctx, const struct dmm_block_view *v, const struct dmm_event *ev)
{
	struct uvm_ctx *c = ctx;
	struct uvm_block_policy_state *st;
	struct uvm_params params;
	struct pmask m;
	unsigned int page;

	if (!v || ev->addr < v->start)
		return;
	page = (unsigned int)((ev->addr - v->start) / DMM_PAGE_SIZE);
	if (page >= DMM_MBLOCK_PAGES)
		return;
	if (ev->type == DMM_EV_MIGRATE && ev->from != DMM_PROC_NONE && ev->to < v->nr_procs) {
		struct uvm_thrash_event tev;

		st = state_of(c, v);
		if (!st)
			return;
		params_of(c, v, &params);
		pmask_zero(&m);
		pmask_set(&m, page);
		tev = (struct uvm_thrash_event){
			.kind = UVM_THRASH_EV_MIGRATION, .cause = cause_of(ev->cause),
			.read_dup_enabled = v->attrs->read_mostly == DMM_READ_MOSTLY_ON,
			.proc = (uvm_proc_t)ev->to, .pages = &m, .t = ev->t,
		};
		/* -ENOMEM: detection waits for the next pair of events. */
		(void)uvm_thrash_event(&params, &c->sp, &st->thrash, &tev);
	} else if (ev->type == DMM_EV_UNPIN && (st = *v->policy_data) != NULL && st->thrash.pages &&
		   st->thrash.pages[page].pinned) {
		/* At its deadline, or earlier when the engine moved the page
		 * off its pin (a CPU fault): unpin it at its deadline's time
		 * (pages of the block due by then go too). */
		uint64_t t = st->thrash.pages[page].pin_deadline;

		uvm_thrash_unpin_due(&c->sp, &st->thrash, t > ev->t ? t : ev->t, &m);
	}
}

const struct dmm_policy_ops dmm_policy_uvm = {
	.name = "uvm",
	.tunables = uvm_tunables,
	.nr_tunables = NR_TUNABLES,
	.init = uvm_init,
	.fini = uvm_fini,
	.fault = uvm_decide,
	.cpu_fault = uvm_decide,
	.prefetch = uvm_prefetch,
	.on_event = uvm_event,
	.block_free = uvm_block_free,
};
