/* SPDX-License-Identifier: MIT */
/*
 * Read duplication and advice as decisions (shared/spec/managed-memory.md
 * sections 1.6 and 1.7): given a block's residency and mappings, which
 * copies to drop, which mappings to remove and which to add. The engine
 * carries them out through the core's paths.
 */
#include <string.h>

#include "uvm.h"

void uvm_block_change_init(struct uvm_block_change *c)
{
	memset(c, 0, sizeof(*c));
}

uvm_procmask_t uvm_block_residents(const struct uvm_block_view *v, unsigned int i)
{
	uvm_procmask_t m = 0;

	for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++)
		if (pmask_test(&v->resident[p], i))
			m |= UVM_PROCMASK(p);
	return m;
}

/* Pages of the block held by some processor. */
static void populated(const struct uvm_block_view *v, struct pmask *out)
{
	pmask_zero(out);
	for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++)
		pmask_or(out, out, &v->resident[p]);
}

void uvm_rdup_break(const struct uvm_block_view *v, uvm_proc_t owner, const struct pmask *pages,
		    struct uvm_block_change *c)
{
	struct pmask m;

	for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++) {
		if (p == owner)
			continue;
		pmask_and(&m, &v->resident[p], pages);
		pmask_or(&c->drop[p], &c->drop[p], &m);
		pmask_and(&m, &v->mapped[p], pages);
		pmask_or(&c->unmap[p], &c->unmap[p], &m);
	}
	pmask_and(&m, v->read_dup, pages);
	pmask_or(&c->read_dup_clear, &c->read_dup_clear, &m);
}

void uvm_rdup_enable(const struct uvm_block_view *v, struct uvm_block_change *c)
{
	struct pmask m;

	for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++) {
		pmask_andnot(&m, &v->mapped[p], &v->resident[p]);
		pmask_or(&c->unmap[p], &c->unmap[p], &m);
	}
}

/* The processor whose copy of page i survives a collapse. */
static uvm_proc_t survivor(const struct uvm_policy_attrs *pol, uvm_procmask_t residents)
{
	if (uvm_procmask_test(residents, pol->preferred))
		return pol->preferred;
	return (uvm_proc_t)__builtin_ctz(residents);
}

void uvm_rdup_disable(const struct uvm_block_view *v, const struct uvm_topology *topo,
		      const struct uvm_policy_attrs *pol, struct uvm_block_change *c)
{
	struct pmask all;
	unsigned int i;

	populated(v, &all);
	pmask_for_each(&all, i) {
		uvm_procmask_t res = uvm_block_residents(v, i);
		uvm_proc_t keep;

		if (!(res & (res - 1)))
			continue;
		keep = survivor(pol, res);
		for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++) {
			if (p == keep || !uvm_procmask_test(res, (uvm_proc_t)p))
				continue;
			pmask_set(&c->drop[p], i);
			if (pmask_test(&v->mapped[p], i))
				pmask_set(&c->unmap[p], i);
		}
	}
	pmask_or(&c->read_dup_clear, &c->read_dup_clear, v->read_dup);
	/* AccessedBy again, against the residency after the collapse. */
	for (unsigned int p = 0; p < v->nprocs && p < UVM_MAX_PROCS; p++) {
		if (!uvm_procmask_test(pol->accessed_by, (uvm_proc_t)p))
			continue;
		pmask_for_each(&all, i) {
			uvm_procmask_t res = uvm_block_residents(v, i);
			uvm_proc_t keep = survivor(pol, res);

			bool mapped = pmask_test(&v->mapped[p], i) && !pmask_test(&c->unmap[p], i);

			if (keep != p && !mapped && uvm_can_access(topo, (uvm_proc_t)p, keep))
				pmask_set(&c->map[p], i);
		}
	}
}

void uvm_advise_preferred(const struct uvm_block_view *v, const struct uvm_policy_attrs *pol,
			  struct uvm_block_change *c)
{
	struct pmask m;

	if (pol->preferred >= v->nprocs || pol->read_dup == UVM_READ_DUP_ENABLED)
		return;
	pmask_andnot(&m, &v->mapped[pol->preferred], &v->resident[pol->preferred]);
	pmask_or(&c->unmap[pol->preferred], &c->unmap[pol->preferred], &m);
}

void uvm_advise_accessed_by(const struct uvm_block_view *v, const struct uvm_topology *topo,
			    uvm_proc_t proc, const struct pmask *pages, struct uvm_block_change *c)
{
	struct pmask cand;
	unsigned int i;

	if (proc >= v->nprocs)
		return;
	populated(v, &cand);
	pmask_and(&cand, &cand, pages);
	pmask_andnot(&cand, &cand, &v->resident[proc]);
	pmask_andnot(&cand, &cand, v->read_dup);
	pmask_for_each(&cand, i)
		if (uvm_can_access(topo, proc, uvm_closest_resident(topo, proc, uvm_block_residents(v, i))))
			pmask_set(&c->map[proc], i);
}
