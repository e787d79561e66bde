/* SPDX-License-Identifier: MIT */
/*
 * `show`: the page tables and page states of each process as a table, and
 * each device's pool. For people: stable from run to run of the same
 * single-threaded script.
 */
#include "runner.h"

#include <string.h>

#define PAGE DMM_PAGE_SIZE

static const char *vma_type(enum dmm_vma_type t)
{
	return t == DMM_VMA_ANON ? "anon" : t == DMM_VMA_SHMEM ? "shmem" : "file";
}

static void vma_prot(unsigned long f, char *b)
{
	b[0] = (f & DMM_VM_READ) ? 'r' : '-';
	b[1] = (f & DMM_VM_WRITE) ? 'w' : '-';
	b[2] = (f & DMM_VM_SHARED) ? 's' : 'p';
	b[3] = '\0';
}

/* The region (and page in it) an address belongs to, for the reader. */
static void region_of(const struct proc *p, uint64_t addr, char *b, size_t size)
{
	for (size_t i = 0; i < p->nregions; i++) {
		const struct region *rg = &p->regions[i];

		if (addr >= rg->start && addr < rg->start + rg->npages * PAGE) {
			snprintf(b, size, "%s[%llu]", rg->name, (unsigned long long)((addr - rg->start) / PAGE));
			return;
		}
	}
	snprintf(b, size, "-");
}

static void location(struct runner *r, const struct dmm_pte_info *pi, const struct dmm_page_info *gi, char *b,
		     size_t size)
{
	const char *dev;

	if (pi->special || pi->pfn == DMM_ZERO_PFN) {
		snprintf(b, size, "zero");
		return;
	}
	switch (gi->location) {
	case DMM_LOC_DEVICE_PRIVATE:
	case DMM_LOC_DEVICE_COHERENT:
		dev = device_name_of_pfn(r, pi->pfn);
		snprintf(b, size, "%s:%s", dev ? dev : "?",
			 gi->location == DMM_LOC_DEVICE_PRIVATE ? "private" : "coherent");
		return;
	default:
		snprintf(b, size, "sys");
	}
}

static void show_page(struct runner *r, FILE *out, const struct proc *p, uint64_t addr)
{
	struct dmm_pte_info pi;
	struct dmm_page_info gi = { 0 };
	char reg[48], loc[48], kind[32];

	if (dmm_pte_query(p->mm, addr, &pi) || pi.kind == DMM_PTE_NONE)
		return;
	dmm_page_query(r->sys, pi.pfn, &gi);
	region_of(p, addr, reg, sizeof(reg));
	location(r, &pi, &gi, loc, sizeof(loc));
	snprintf(kind, sizeof(kind), "%s%s", dmm_pte_kind_name(pi.kind),
		 pi.kind == DMM_PTE_PRESENT ? (pi.write ? " rw" : " ro") : "");
	fprintf(out, "    %#14llx %-12s %-20s %#10llx %-18s %5u %5d %5u\n", (unsigned long long)addr, reg, kind,
		(unsigned long long)pi.pfn, loc, gi.refcount, gi.mapcount, gi.pincount);
}

static void show_proc(struct runner *r, FILE *out, const struct proc *p)
{
	struct dmm_vma_info v;

	fprintf(out, "process %s (mm %u)\n", p->name, dmm_mm_id(p->mm));
	for (uint64_t a = 0; !dmm_vma_query(p->mm, a, &v); a = v.end) {
		char prot[4];

		vma_prot(v.flags, prot);
		fprintf(out, "  vma [%#llx, %#llx) %s %s pgoff %llu%s%s\n", (unsigned long long)v.start,
			(unsigned long long)v.end, vma_type(v.type), prot, (unsigned long long)v.pgoff,
			(v.flags & DMM_VM_ACCOUNT) ? " account" : "",
			(v.flags & DMM_VM_DONTCOPY) ? " dontfork" : "");
		fprintf(out, "    %14s %-12s %-20s %10s %-18s %5s %5s %5s\n", "address", "region", "entry", "frame",
			"location", "refs", "maps", "pins");
		for (uint64_t addr = v.start; addr < v.end; addr += PAGE)
			show_page(r, out, p, addr);
	}
}

void runner_show(struct runner *r, FILE *out, const char *proc)
{
	for (size_t i = 0; i < r->nprocs; i++)
		if (!proc || !strcmp(proc, r->procs[i]->name))
			show_proc(r, out, r->procs[i]);
	for (size_t i = 0; i < r->ndevs; i++) {
		uint64_t used, free_pages;

		mirror_pool(r->devs[i].dev, &used, &free_pages);
		fprintf(out, "device %s (%s%s): used %llu, free %llu, freed %lu\n", r->devs[i].name,
			r->devs[i].dev->type == DMM_MEMORY_DEVICE_PRIVATE ? "private" : "coherent",
			r->devs[i].dev->cow == MIRROR_COW_DEVICE ? ", cow=device" : "", (unsigned long long)used,
			(unsigned long long)free_pages, (unsigned long)atomic_load(&r->devs[i].dev->frees));
	}
}
