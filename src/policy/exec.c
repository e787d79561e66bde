/* SPDX-License-Identifier: MIT */
/*
 * Executing moves: every page the engine moves goes through the core's
 * migrate_vma protocol (setup, copy into locked destinations, pages,
 * finalize), one contiguous run per source processor, exactly as a driver
 * does it. Right after setup, before any copy, every device mapping of the
 * collected pages is dropped (our notifier ignores our own migrations): a
 * device write to the old page after its copy would be lost. The new
 * mapping is made between pages and finalize, while the pages are still
 * locked (nobody can change their entries then). Each
 * run is one transfer on the link lane of its direction, and each moved
 * page one MIGRATE event with its cause and origin.
 *
 * Called with eng->service_lock (or from migrate_to_ram) and the mm's
 * mmap_lock held for read; eng->lock is taken only around the bookkeeping,
 * never across dmm_migrate_vma_setup (which fires our notifier).
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

#define PAGE DMM_PAGE_SIZE

struct run {
	struct mblock *b;
	unsigned int src, dst, first, n;
	uint64_t src_mpfn[DMM_MBLOCK_PAGES], dst_mpfn[DMM_MBLOCK_PAGES];
};

static void *owner_of(struct dmm_engine *eng, unsigned int p)
{
	return p == DMM_PROC_CPU ? NULL : eng->procs[p].desc.pgmap_owner;
}

/* A locked system page for a copy from a device, 0 when none is left. */
static uint64_t system_page(struct dmm_engine *eng)
{
	uint64_t pfn;

	if (dmm_alloc_page(eng->sys, &pfn))
		return 0;
	dmm_trylock_page(eng->sys, pfn); /* fresh: nobody else knows it */
	return pfn;
}

/*
 * Allocate and fill the destination of entry i (no engine lock held). A
 * metadata-only system (DMM_SYS_NO_CONTENTS) has no bytes to copy: the
 * destination is allocated and every state change made, the copy skipped.
 */
static int fill_dst(struct dmm_engine *eng, struct run *r, unsigned long i, void *bounce)
{
	uint64_t s = r->src_mpfn[i], spfn = dmm_migrate_pfn_to_pfn(s), dpfn;
	bool bytes = dmm_system_has_contents(eng->sys);
	const void *from = NULL;

	if (bytes && (s & DMM_MIGRATE_PFN_VALID) && r->src == DMM_PROC_CPU) {
		from = dmm_page_address(eng->sys, spfn);
	} else if (bytes && (s & DMM_MIGRATE_PFN_VALID)) {
		eng->procs[r->src].ops.copy_from_dev(eng->procs[r->src].desc.drv, spfn, bounce);
		from = bounce;
	}
	if (r->dst == DMM_PROC_CPU) {
		dpfn = system_page(eng);
		if (!dpfn)
			return -ENOMEM;
		if (bytes && from)
			memcpy(dmm_page_address(eng->sys, dpfn), from, PAGE);
		else if (bytes)
			memset(dmm_page_address(eng->sys, dpfn), 0, PAGE);
	} else {
		struct proc *d = &eng->procs[r->dst];

		if (d->ops.alloc_page(d->desc.drv, &dpfn))
			return -ENOMEM;
		if (bytes)
			d->ops.copy_to_dev(d->desc.drv, dpfn, from);
	}
	r->dst_mpfn[i] = dmm_migrate_pfn(dpfn) | (s & DMM_MIGRATE_PFN_WRITE);
	return 0;
}

/* Charge the run's transfer (eng->lock held); returns its [start, end). */
static void charge(struct dmm_engine *eng, struct move_req *req, const struct run *r, uint64_t bytes,
		   uint64_t *start, uint64_t *end)
{
	struct proc *s = &eng->procs[r->src], *d = &eng->procs[r->dst];
	uint64_t t = req->t;

	*start = t;
	if (!bytes) {
		*end = t;
		return;
	}
	if (r->src != DMM_PROC_CPU) {
		t = lane_transfer(&eng->timing, &s->dtoh, t, bytes);
		eng->st.dtoh_bytes += bytes;
		eng->st.lane_bytes += bytes;
	}
	if (r->dst != DMM_PROC_CPU) {
		t = lane_transfer(&eng->timing, &d->htod, t, bytes);
		eng->st.htod_bytes += bytes;
		eng->st.lane_bytes += bytes;
	}
	*start = t - dmm_timing_transfer_ns(&eng->timing, bytes);
	*end = t;
	eng->st.t_transfer += *end - *start;
}

/* The bookkeeping of one run after migrate_vma_pages (eng->lock held). */
static void account_run(struct dmm_engine *eng, struct move_req *req, struct run *r, bool dst_write)
{
	struct mblock *b = r->b;
	unsigned int nr = eng->nr_procs, moved = 0, data = 0;
	uint64_t start, end;

	for (unsigned int i = 0; i < r->n; i++)
		dpm_clear(&b->moving, r->first + i);
	for (unsigned int i = 0; i < r->n; i++) {
		bool ok = (r->src_mpfn[i] & DMM_MIGRATE_PFN_MIGRATE) && r->dst_mpfn[i];
		unsigned int pg = r->first + i;

		if (!ok) {
			req->failed++;
			if (req->for_fault && req->for_fault[pg])
				eng->st.fault_migrate_failed++;
			continue;
		}
		moved++;
		if ((r->src_mpfn[i] & DMM_MIGRATE_PFN_VALID) || eng->etun[ETUN_FIRST_TOUCH])
			data++;
	}
	charge(eng, req, r, (uint64_t)data * PAGE, &start, &end);
	if (end > req->t_end)
		req->t_end = end;
	for (unsigned int i = 0; i < r->n; i++) {
		unsigned int pg = r->first + i;
		uint64_t addr = b->start + (uint64_t)pg * PAGE;
		struct dmm_event ev = {
			.type = DMM_EV_MIGRATE, .t = start, .t_end = end, .addr = addr, .npages = 1,
			.from = (r->src_mpfn[i] & DMM_MIGRATE_PFN_VALID) ? r->src : DMM_PROC_NONE, .to = r->dst,
		};

		if (!(r->src_mpfn[i] & DMM_MIGRATE_PFN_MIGRATE) || !r->dst_mpfn[i])
			continue;
		if (dmm_pmask_test(&b->pinned, pg) && b->pin_proc[pg] != r->dst) {
			/* A move away from its pin (a CPU fault, which must be
			 * served whatever the policy said) ends the pin. */
			struct dmm_event un = { .type = DMM_EV_UNPIN, .t = start, .addr = addr, .npages = 1,
						.from = b->pin_proc[pg], .to = b->pin_proc[pg],
						.cause = req->cause ? req->cause[pg] : DMM_CAUSE_FAULT };

			if (req->origin)
				un.origin = req->origin[pg];
			block_unpin(b, pg);
			eng->st.unpins++;
			emit(eng, &un);
		}
		dpm_clear(blk_res(b, r->src), pg);
		dpm_clear(blk_map(b, nr, r->src), pg);
		if (r->src != DMM_PROC_CPU)
			eng->procs[r->src].ops.unmap(eng->procs[r->src].desc.drv, addr, addr + PAGE);
		dpm_set(blk_res(b, r->dst), pg);
		dpm_set(blk_map(b, nr, r->dst), pg);
		dpm_set(&b->populated, pg);
		if (r->dst != DMM_PROC_CPU)
			eng->procs[r->dst].ops.map(eng->procs[r->dst].desc.drv, addr,
						  dmm_migrate_pfn_to_pfn(r->dst_mpfn[i]),
						  (r->src_mpfn[i] & DMM_MIGRATE_PFN_VALID)
							  ? !!(r->src_mpfn[i] & DMM_MIGRATE_PFN_WRITE)
							  : dst_write);
		ev.cause = req->cause ? req->cause[pg] : DMM_CAUSE_FAULT;
		if (req->origin)
			ev.origin = req->origin[pg];
		eng->st.pages_by_cause[ev.cause]++;
		if (req->for_fault && req->for_fault[pg])
			eng->fault_pages_moved++;
		if ((r->src_mpfn[i] & DMM_MIGRATE_PFN_VALID) || eng->etun[ETUN_FIRST_TOUCH]) {
			if (r->src != DMM_PROC_CPU)
				eng->procs[r->src].dtoh_pages++;
			if (r->dst != DMM_PROC_CPU)
				eng->procs[r->dst].htod_pages++;
		}
		if (r->src == DMM_PROC_CPU)
			eng->st.htod_pages++;
		else if (r->dst == DMM_PROC_CPU)
			eng->st.dtoh_pages++;
		else
			eng->st.dtod_pages++;
		req->moved++;
		emit(eng, &ev);
	}
}

/*
 * The pages of @r that setup collected are about to be copied: no device
 * may write them any more. Drop their device mappings and mark them moving
 * (exec_remap leaves them alone) until account_run.
 */
static void unmap_collected(struct dmm_engine *eng, struct run *r)
{
	struct mblock *b = r->b;
	unsigned int nr;

	pthread_mutex_lock(&eng->lock);
	nr = eng->nr_procs;
	for (unsigned int i = 0; i < r->n; i++) {
		unsigned int pg = r->first + i;
		uint64_t addr = b->start + (uint64_t)pg * PAGE;

		if (!(r->src_mpfn[i] & DMM_MIGRATE_PFN_MIGRATE))
			continue;
		dpm_set(&b->moving, pg);
		for (unsigned int p = 1; p < nr; p++) {
			if (p != r->src && !dmm_pmask_test(blk_map(b, nr, p), pg))
				continue;
			eng->procs[p].ops.unmap(eng->procs[p].desc.drv, addr, addr + PAGE);
			dpm_clear(blk_map(b, nr, p), pg);
		}
	}
	pthread_mutex_unlock(&eng->lock);
}

/* One run through migrate_vma (no engine lock held on entry). */
static int move_run(struct dmm_engine *eng, struct move_req *req, struct run *r, void *bounce)
{
	uint64_t start = r->b->start + (uint64_t)r->first * PAGE;
	struct dmm_migrate_vma args = {
		.mm = eng->mm, .start = start, .end = start + (uint64_t)r->n * PAGE,
		.src = r->src_mpfn, .dst = r->dst_mpfn,
		.pgmap_owner = owner_of(eng, r->src != DMM_PROC_CPU ? r->src : r->dst),
		.flags = r->src == DMM_PROC_CPU ? DMM_MIGRATE_VMA_SELECT_SYSTEM
						 : DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
	};
	uint64_t fp = req->fault_page;
	int err;

	/* The caller of migrate_to_ram holds the fault page locked: setup must
	 * know it, whatever the run, or it would wait for that lock. */
	args.fault_page = fp;
	err = dmm_migrate_vma_setup(&args);
	if (err)
		return err;
	memset(r->dst_mpfn, 0, sizeof(r->dst_mpfn));
	r->n = (unsigned int)args.npages;
	unmap_collected(eng, r);
	for (unsigned long i = 0; i < args.npages; i++) {
		if (!(r->src_mpfn[i] & DMM_MIGRATE_PFN_MIGRATE))
			continue;
		if (fill_dst(eng, r, i, bounce)) {
			err = -ENOMEM; /* the rest stays where it is */
			break;
		}
	}
	dmm_migrate_vma_pages(&args);
	pthread_mutex_lock(&eng->lock);
	account_run(eng, req, r, req->vma_write);
	pthread_mutex_unlock(&eng->lock);
	dmm_migrate_vma_finalize(&args);
	return err;
}

/* The pages of @mask whose current holder is @src (eng->lock held). */
static struct dmm_pmask from_proc(struct dmm_engine *eng, struct mblock *b, const struct dmm_pmask *mask,
				  unsigned int src)
{
	struct dmm_pmask m = { 0 };
	unsigned int i;

	dpm_for_each(mask, i) {
		unsigned int w = block_where(eng, b, i);

		if (w == src || (w == DMM_PROC_NONE && src == DMM_PROC_CPU))
			dpm_set(&m, i);
	}
	return m;
}

/*
 * Move pages [first, first + n) of the block. migrate_vma_setup takes one
 * VMA: a span that crosses a VMA edge (mprotect split the range) gets
 * -EINVAL, and is halved until each part lies in one VMA; a single page
 * with -EINVAL has no VMA. Nobody here may look the VMAs up instead
 * (migrate_to_ram already holds the mmap_lock), and the halving finds the
 * edges in a few calls.
 */
static int move_span(struct dmm_engine *eng, struct move_req *req, struct run *r, unsigned int first,
		     unsigned int n, void *bounce)
{
	int e, e2;

	r->first = first;
	r->n = n;
	e = move_run(eng, req, r, bounce);
	if (e != -EINVAL || n == 1)
		return e;
	e = move_span(eng, req, r, first, n / 2, bounce);
	e2 = move_span(eng, req, r, first + n / 2, n - n / 2, bounce);
	return e ? e : e2;
}

/* Move the maximal runs of set bits of m. */
static int move_mask(struct dmm_engine *eng, struct move_req *req, struct run *r, const struct dmm_pmask *m,
		     void *bounce)
{
	unsigned int i = dpm_next(m, 0);
	int err = 0;

	while (i < DMM_MBLOCK_PAGES) {
		unsigned int j = i;
		int e;

		while (j + 1 < DMM_MBLOCK_PAGES && dmm_pmask_test(m, j + 1))
			j++;
		e = move_span(eng, req, r, i, j - i + 1, bounce);
		if (e && !err)
			err = e;
		i = dpm_next(m, j + 1);
	}
	return err;
}

/*
 * Move the pages of req->mask in block req->b to req->dst. Pages already
 * there are left alone. req->moved and req->failed count the pages,
 * req->error is the first error (-EINVAL no VMA, -ENOMEM).
 */
void exec_move(struct dmm_engine *eng, struct move_req *req)
{
	struct run *r = eng_calloc(eng, 1, sizeof(*r));
	void *bounce = eng_calloc(eng, 1, PAGE);
	struct dmm_pmask by_src[DMM_MAX_PROCS];
	unsigned int nr;

	req->moved = req->failed = 0;
	req->error = 0;
	req->t_end = req->t;
	if (!r || !bounce) {
		free(r);
		free(bounce);
		unsigned int i;

		req->error = -ENOMEM;
		req->failed = dpm_count(&req->mask);
		pthread_mutex_lock(&eng->lock);
		dpm_for_each(&req->mask, i)
			if (req->for_fault && req->for_fault[i])
				eng->st.fault_migrate_failed++;
		pthread_mutex_unlock(&eng->lock);
		return;
	}
	pthread_mutex_lock(&eng->lock);
	nr = eng->nr_procs;
	for (unsigned int s = 0; s < nr; s++)
		by_src[s] = s == req->dst ? (struct dmm_pmask){ { 0 } } : from_proc(eng, req->b, &req->mask, s);
	pthread_mutex_unlock(&eng->lock);
	for (unsigned int s = 0; s < nr; s++) {
		int e;

		if (!dpm_count(&by_src[s]))
			continue;
		r->b = req->b;
		r->src = s;
		r->dst = req->dst;
		e = move_mask(eng, req, r, &by_src[s], bounce);
		if (e && !req->error)
			req->error = e;
	}
	free(r);
	free(bounce);
}

/* @page is resident on device @proc but the device lost its mapping (an
 * invalidation that did not move it): map it again from the page table.
 * mmap_lock held, eng->lock not held. */
void exec_remap(struct dmm_engine *eng, struct mblock *b, unsigned int page, unsigned int proc)
{
	uint64_t addr = b->start + (uint64_t)page * PAGE;
	struct dmm_pte_info pi;

	if (dmm_pte_query_locked(eng->mm, addr, &pi) ||
	    (pi.kind != DMM_PTE_DEVICE_PRIVATE_READ && pi.kind != DMM_PTE_DEVICE_PRIVATE_WRITE) ||
	    dmm_page_pgmap(eng->sys, pi.pfn) == NULL ||
	    dmm_pgmap_owner(dmm_page_pgmap(eng->sys, pi.pfn)) != owner_of(eng, proc))
		return;
	pthread_mutex_lock(&eng->lock);
	/* The entry is stable under the mmap_lock only against munmap: look
	 * again under the lock, and never map a page a move has collected (its
	 * pfn is about to be copied and freed). */
	if (dmm_pmask_test(blk_res(b, proc), page) && !dmm_pmask_test(&b->moving, page)) {
		eng->procs[proc].ops.map(eng->procs[proc].desc.drv, addr, pi.pfn, pi.write);
		dpm_set(blk_map(b, eng->nr_procs, proc), page);
		eng->st.remaps++;
	}
	pthread_mutex_unlock(&eng->lock);
}

/*
 * A CPU fault from another address space on one of our pages (a fork
 * child sharing the parent's device page): bring that one page back in
 * the faulting mm. try_to_migrate's CLEAR invalidation tells our own
 * range about the parent's side, which resyncs. The caller holds
 * vmf->mm's mmap_lock, not eng->lock. Returns 0, -ENOMEM or -EFAULT.
 */
int exec_foreign_to_ram(struct dmm_engine *eng, struct dmm_vm_fault *vmf, unsigned int dev, uint64_t t,
			uint64_t fault_id)
{
	uint64_t src = 0, dst = 0, dpfn;
	struct dmm_migrate_vma args = {
		.mm = vmf->mm, .start = vmf->address, .end = vmf->address + PAGE, .src = &src, .dst = &dst,
		.pgmap_owner = owner_of(eng, dev), .flags = DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page = vmf->page,
	};
	struct dmm_event ev = { .type = DMM_EV_MIGRATE, .addr = vmf->address, .npages = 1, .from = dev,
				.to = DMM_PROC_CPU, .cause = DMM_CAUSE_FAULT, .origin = { .fault = fault_id } };

	if (dmm_migrate_vma_setup(&args))
		return -EFAULT;
	if (!(src & DMM_MIGRATE_PFN_MIGRATE)) {
		dmm_migrate_vma_finalize(&args);
		return 0; /* someone else moved it: the access retries */
	}
	dpfn = system_page(eng);
	if (!dpfn) {
		dmm_migrate_vma_finalize(&args);
		return -ENOMEM;
	}
	if (dmm_system_has_contents(eng->sys))
		eng->procs[dev].ops.copy_from_dev(eng->procs[dev].desc.drv, vmf->page,
						  dmm_page_address(eng->sys, dpfn));
	dst = dmm_migrate_pfn(dpfn);
	dmm_migrate_vma_pages(&args);
	if (src & DMM_MIGRATE_PFN_MIGRATE) {
		pthread_mutex_lock(&eng->lock);
		ev.t_end = lane_transfer(&eng->timing, &eng->procs[dev].dtoh, t, PAGE);
		ev.t = ev.t_end - dmm_timing_transfer_ns(&eng->timing, PAGE);
		eng->st.dtoh_bytes += PAGE;
		eng->st.lane_bytes += PAGE;
		eng->st.dtoh_pages++;
		eng->procs[dev].dtoh_pages++;
		eng->st.pages_by_cause[DMM_CAUSE_FAULT]++;
		eng->st.t_transfer += ev.t_end - ev.t;
		emit(eng, &ev);
		pthread_mutex_unlock(&eng->lock);
	}
	dmm_migrate_vma_finalize(&args);
	return 0;
}
