/* SPDX-License-Identifier: MIT */
/*
 * The processor model the uvm algorithms share: who can map whose memory,
 * which copy of a page is closest to a processor, and the ordering of
 * access types (shared/spec/managed-memory.md sections 1.1 and 1.2).
 */
#include <string.h>

#include "uvm.h"

void uvm_topology_pcie(struct uvm_topology *topo, unsigned int ndevs)
{
	memset(topo, 0, sizeof(*topo));
	if (ndevs > UVM_MAX_PROCS - 1)
		ndevs = UVM_MAX_PROCS - 1;
	topo->nprocs = ndevs + 1;
	for (unsigned int p = 0; p < topo->nprocs; p++) {
		topo->has_memory |= UVM_PROCMASK(p);
		topo->can_access[p] = UVM_PROCMASK(p) | UVM_PROCMASK(UVM_PROC_CPU);
	}
}

static uvm_proc_t lowest(uvm_procmask_t m)
{
	return m ? (uvm_proc_t)__builtin_ctz(m) : UVM_PROC_NONE;
}

uvm_proc_t uvm_closest_resident(const struct uvm_topology *topo, uvm_proc_t p, uvm_procmask_t resident)
{
	if (uvm_procmask_test(resident, p))
		return p;
	if (p < topo->nprocs && (resident & topo->fast_access[p]))
		return lowest(resident & topo->fast_access[p]);
	if (uvm_procmask_test(resident, UVM_PROC_CPU))
		return UVM_PROC_CPU;
	return lowest(resident);
}

enum uvm_access uvm_access_highest(unsigned int access_mask)
{
	access_mask &= (1u << (UVM_ACCESS_ATOMIC + 1)) - 1;
	if (!access_mask)
		return UVM_ACCESS_PREFETCH;
	return (enum uvm_access)(31 - __builtin_clz(access_mask));
}
