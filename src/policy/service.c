/* SPDX-License-Identifier: MIT */
/*
 * The fault service (managed-memory.md §1.1 and §5.4): the device bottom
 * half that fetches a batch, coalesces and sorts it, services it one 2 MiB
 * block at a time (the policy's fault and prefetch hooks decide, the engine
 * moves pages through exec.c), charges virtual time and replays; and the
 * CPU side, migrate_to_ram on a managed device page, where the policy's
 * cpu_fault hook decides. Also the block resync (learn residency from the
 * page tables after an invalidation the engine did not cause) and the pin
 * deadlines.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

#define PAGE DMM_PAGE_SIZE

/* The decisions of one block. */
struct block_work {
	struct mblock *b;
	struct dmm_pmask to[DMM_MAX_PROCS];     /* pages to move, per destination */
	struct dmm_pmask faulted, remap[DMM_MAX_PROCS];
	enum dmm_cause cause[DMM_MBLOCK_PAGES];
	struct dmm_origin origin[DMM_MBLOCK_PAGES];
	bool for_fault[DMM_MBLOCK_PAGES];
	unsigned int serviced, throttled, cancelled, far;
	unsigned int prefetched;                /* pages prefetch added to the group */
};

/* ------------------------------------------------------------------------ */
/* Resync and pins                                                           */

/* Learn where @b's pages are from the page tables. mmap_lock held (read),
 * eng->lock not held. */
void block_resync(struct dmm_engine *eng, struct mblock *b)
{
	unsigned char where[DMM_MBLOCK_PAGES];
	bool wr[DMM_MBLOCK_PAGES];
	unsigned int nr = eng->nr_procs;

	for (unsigned int i = b->first; i < b->first + b->npages; i++) {
		struct dmm_pte_info pi;
		struct dmm_pgmap *pg;

		where[i] = 0xff;
		wr[i] = false;
		if (dmm_pte_query_locked(eng->mm, b->start + (uint64_t)i * PAGE, &pi))
			continue;
		if (pi.kind == DMM_PTE_PRESENT && !pi.special) {
			where[i] = DMM_PROC_CPU;
		} else if (pi.kind == DMM_PTE_DEVICE_PRIVATE_READ || pi.kind == DMM_PTE_DEVICE_PRIVATE_WRITE) {
			pg = dmm_page_pgmap(eng->sys, pi.pfn);
			for (unsigned int p = 1; p < nr && pg; p++)
				if (eng->procs[p].desc.pgmap_owner == dmm_pgmap_owner(pg))
					where[i] = (unsigned char)p;
		}
	}
	pthread_mutex_lock(&eng->lock);
	for (unsigned int p = 0; p < nr; p++) {
		for (unsigned int i = b->first; i < b->first + b->npages; i++) {
			bool here = where[i] == p;

			if (here)
				dpm_set(blk_res(b, p), i);
			else
				dpm_clear(blk_res(b, p), i);
			if (!here)
				dpm_clear(blk_map(b, nr, p), i);
			else if (p == DMM_PROC_CPU)
				dpm_set(blk_map(b, nr, p), i);
		}
	}
	for (unsigned int i = b->first; i < b->first + b->npages; i++) {
		if (where[i] != 0xff)
			dpm_set(&b->populated, i);
		else
			dpm_clear(&b->populated, i);
		if (dmm_pmask_test(&b->pinned, i) && where[i] != b->pin_proc[i])
			block_unpin(b, i); /* it moved away: the pin is gone */
	}
	(void)wr;
	b->stale = false;
	pthread_mutex_unlock(&eng->lock);
}

/* Unpin every page whose deadline passed (eng->lock held). */
void engine_unpin_expired(struct dmm_engine *eng, uint64_t now)
{
	struct mblock *b;
	size_t k;

	blocks_for_each(eng, b, k) {
		unsigned int i;

		if (b->pin_until > now)
			continue;
		dpm_for_each(&b->pinned, i) {
			struct dmm_event ev = { .type = DMM_EV_UNPIN, .t = b->pin_deadline[i], .npages = 1,
						.addr = b->start + (uint64_t)i * PAGE, .from = b->pin_proc[i],
						.to = b->pin_proc[i], .cause = DMM_CAUSE_THRASH_PIN };

			if (b->pin_deadline[i] > now)
				continue;
			block_unpin(b, i);
			eng->st.unpins++;
			emit(eng, &ev);
		}
	}
}

/* ------------------------------------------------------------------------ */
/* One block of a batch                                                      */

static void fault_info(const struct fentry *e, const struct mblock *b, unsigned int proc, uint64_t batch,
		       struct dmm_fault_info *f)
{
	*f = (struct dmm_fault_info){
		.addr = e->addr, .page = (unsigned int)((e->addr - b->start) / PAGE), .proc = proc,
		.access = e->access, .access_mask = e->access_mask, .instances = e->instances,
		.stream = e->stream, .id = e->id, .batch = batch, .t = e->t,
	};
}

static void throttle_stream(struct dmm_engine *eng, unsigned int proc, uint32_t stream, uint64_t until)
{
	struct stream *s = stream_get(eng, proc, stream);

	if (s && until > s->resume_at)
		s->resume_at = until;
}

/* Decide one fault (eng->lock held). Returns false when it is cancelled. */
static bool decide(struct dmm_engine *eng, struct block_work *w, const struct dmm_block_view *v,
		   const struct fentry *e, unsigned int proc, uint64_t batch, uint64_t now)
{
	struct mblock *b = w->b;
	struct dmm_fault_info f;
	struct dmm_action act = { .type = DMM_ACT_MIGRATE, .cause = DMM_CAUSE_FAULT, .dst = proc };
	struct dmm_event ev = { .type = DMM_EV_FAULT, .t = e->t, .addr = e->addr, .npages = 1,
				.from = proc, .to = proc, .access = e->access };

	fault_info(e, b, proc, batch, &f);
	act.origin = (struct dmm_origin){ .batch = batch, .fault = e->id };
	ev.origin = act.origin;
	emit(eng, &ev);
	if (dmm_pmask_test(blk_map(b, eng->nr_procs, proc), f.page))
		return true; /* the device already has it: a stale fault */
	if (eng->ops->fault)
		eng->ops->fault(eng->pctx, v, &f, &act);
	switch (act.type) {
	case DMM_ACT_PIN:
		if (act.dst >= eng->nr_procs || block_pin(eng, b, f.page, act.dst, act.until)) {
			act.type = DMM_ACT_THROTTLE; /* no pin memory: NVIDIA throttles */
			act.until = now;
			goto throttle;
		}
		eng->st.pins++;
		ev.type = DMM_EV_PIN;
		ev.to = act.dst;
		ev.t_end = act.until;
		ev.cause = act.cause;
		ev.origin = act.origin;
		emit(eng, &ev);
		/* a pin also brings the page there */
		__attribute__((fallthrough));
	case DMM_ACT_MIGRATE:
		if (act.dst >= eng->nr_procs)
			break;
		w->serviced++;
		if (dmm_pmask_test(blk_res(b, act.dst), f.page)) {
			if (act.dst == proc)
				dpm_set(&w->remap[proc], f.page);
			return true;
		}
		dpm_set(&w->to[act.dst], f.page);
		dpm_set(&w->faulted, f.page);
		w->cause[f.page] = act.cause;
		w->origin[f.page] = act.origin;
		w->for_fault[f.page] = true;
		w->far++;
		eng->st.far_faults++;
		return true;
	case DMM_ACT_THROTTLE:
	throttle:
		w->throttled++;
		eng->st.throttled++;
		throttle_stream(eng, proc, e->stream, act.until);
		ev.type = DMM_EV_THROTTLE;
		ev.t = now;
		ev.t_end = act.until;
		ev.cause = act.cause;
		ev.origin = act.origin;
		emit(eng, &ev);
		return true;
	case DMM_ACT_SKIP:
		return true;
	default:
		break;
	}
	eng->st.refused++;
	return false;
}

/* The prefetch hook, when every move of the block goes to one processor. */
static void prefetch(struct dmm_engine *eng, struct block_work *w, const struct dmm_block_view *v,
		     uint64_t batch, uint64_t first_id)
{
	struct mblock *b = w->b;
	unsigned int dst = DMM_PROC_NONE, n = 0, i;
	struct dmm_pmask out = { { 0 } };
	uint32_t rule;

	for (unsigned int p = 0; p < eng->nr_procs; p++)
		if (dpm_count(&w->to[p])) {
			dst = p;
			n++;
		}
	if (n != 1 || !eng->ops->prefetch)
		return;
	rule = eng->ops->prefetch(eng->pctx, v, dst, &w->faulted, &out);
	dpm_for_each(&out, i) {
		if (i < b->first || i >= b->first + b->npages || dmm_pmask_test(&w->faulted, i) ||
		    dmm_pmask_test(blk_res(b, dst), i) || dmm_pmask_test(&b->pinned, i))
			continue;
		dpm_set(&w->to[dst], i);
		w->prefetched++;
		w->cause[i] = DMM_CAUSE_PREFETCH;
		w->origin[i] = (struct dmm_origin){ .batch = batch, .fault = first_id, .rule = rule };
	}
}

/* A PIN whose page could not be moved to its pin (no device memory, a busy
 * page) is no pin: drop it, the fault will come again. */
static void unpin_unmoved(struct dmm_engine *eng, struct block_work *w)
{
	pthread_mutex_lock(&eng->lock);
	for (unsigned int p = 0; p < eng->nr_procs; p++) {
		unsigned int i;

		dpm_for_each(&w->to[p], i)
			if (dmm_pmask_test(&w->b->pinned, i) && w->b->pin_proc[i] == p &&
			    !dmm_pmask_test(blk_res(w->b, p), i))
				block_unpin(w->b, i);
	}
	pthread_mutex_unlock(&eng->lock);
}

static void cancel(struct dmm_engine *eng, unsigned int proc, const struct fentry *e, int err)
{
	struct dmm_event ev = { .type = DMM_EV_CANCEL, .t = e->t, .addr = e->addr, .npages = 1,
				.from = proc, .to = proc, .access = e->access, .error = err,
				.origin = { .fault = e->id } };

	pthread_mutex_lock(&eng->lock);
	eng->st.cancelled++;
	emit(eng, &ev);
	pthread_mutex_unlock(&eng->lock);
	eng->procs[proc].ops.cancel(eng->procs[proc].desc.drv, e->addr, e->stream, err);
}

/*
 * Service the faults e[0..n) of one block; @t is when the block's service
 * starts; returns when its transfers end (service_lock held, nothing else).
 */
static uint64_t service_block(struct dmm_engine *eng, unsigned int proc, struct fentry *e, unsigned int n,
			      uint64_t batch, uint64_t t, struct dmm_batch_info *bi)
{
	struct block_work *w = eng_calloc(eng, 1, sizeof(*w));
	struct dmm_block_view v;
	struct dmm_vma_info vi;
	bool vma_ok, vma_write;
	struct mrange *r;
	uint64_t end = t;
	bool stale = false;

	vma_ok = !dmm_vma_query(eng->mm, e[0].addr, &vi) && vi.start <= e[0].addr;
	vma_write = vma_ok && (vi.flags & DMM_VM_WRITE);
	pthread_mutex_lock(&eng->lock);
	r = range_of(eng, e[0].addr);
	if (w && r && vma_ok)
		w->b = block_get(eng, r, e[0].addr);
	if (w && w->b)
		stale = w->b->stale;
	pthread_mutex_unlock(&eng->lock);
	if (!w || !w->b) {
		for (unsigned int i = 0; i < n; i++)
			cancel(eng, proc, &e[i], !w || (r && vma_ok) ? -ENOMEM : -EFAULT); /* no block memory, or no range/VMA */
		bi->cancelled += n;
		free(w);
		return t;
	}
	dmm_mmap_read_lock(eng->mm);
	if (stale)
		block_resync(eng, w->b);
	pthread_mutex_lock(&eng->lock);
	block_view(eng, w->b, t, &v);
	for (unsigned int i = 0; i < n; i++) {
		if (i && e[i].addr == e[i - 1].addr) {
			eng->st.duplicates++;
			bi->duplicates++;
			continue;
		}
		if (e[i].addr < r->start || e[i].addr >= r->end ||
		    !decide(eng, w, &v, &e[i], proc, batch, t)) {
			pthread_mutex_unlock(&eng->lock);
			cancel(eng, proc, &e[i], e[i].addr < r->start || e[i].addr >= r->end ? -EFAULT : -EOPNOTSUPP);
			w->cancelled++;
			pthread_mutex_lock(&eng->lock);
		}
	}
	prefetch(eng, w, &v, batch, e[0].id);
	pthread_mutex_unlock(&eng->lock);
	/* The per-page cost is per page of the fault group (§2.2: the nvprof
	 * group durations), prefetched pages included. */
	t += timing_batch_cost(&eng->timing, 1, w->serviced + w->prefetched, w->far);
	end = t;
	for (unsigned int p = 0; p < eng->nr_procs; p++) {
		unsigned int i;
		struct move_req req = { .b = w->b, .mask = w->to[p], .dst = p, .t = t, .cause = w->cause,
					.origin = w->origin, .for_fault = w->for_fault, .vma_write = vma_write };

		dpm_for_each(&w->remap[p], i)
			exec_remap(eng, w->b, i, p);
		if (!dpm_count(&req.mask))
			continue;
		exec_move(eng, &req);
		if (req.t_end > end)
			end = req.t_end;
	}
	dmm_mmap_read_unlock(eng->mm);
	unpin_unmoved(eng, w);
	bi->serviced += w->serviced;
	bi->throttled += w->throttled;
	bi->cancelled += w->cancelled;
	free(w);
	return end;
}

/* ------------------------------------------------------------------------ */
/* Batches and the service loop                                              */

/* Replay at @t: every stalled stream of @proc may run again (a throttled
 * one not before its throttle ends). eng->lock held. */
static void replay_streams(struct dmm_engine *eng, unsigned int proc, uint64_t t)
{
	struct dmm_event ev = { .type = DMM_EV_REPLAY, .t = t, .from = proc, .to = proc };

	for (struct stream *s = eng->streams; s; s = s->next) {
		uint64_t at = t;

		if (s->proc != proc || !s->stalled)
			continue;
		if (s->resume_at > at) {
			eng->st.t_throttle += s->resume_at - at;
			at = s->resume_at;
		}
		if (at > s->clock)
			s->clock = at;
		if (s->clock > s->stall_since)
			eng->st.t_fault_stall += s->clock - s->stall_since;
		s->stalled = false;
		s->resume_at = 0;
	}
	eng->st.replays++;
	emit(eng, &ev);
}

static void replay(struct dmm_engine *eng, unsigned int proc, uint64_t t, struct dmm_service_result *res)
{
	pthread_mutex_lock(&eng->lock);
	replay_streams(eng, proc, t);
	pthread_mutex_unlock(&eng->lock);
	res->replays++;
	eng->procs[proc].ops.replay(eng->procs[proc].desc.drv, t);
}

static int record_batch_htod(struct dmm_engine *eng, uint64_t bytes)
{
	if (eng->nr_batch_htod == eng->cap_batch_htod) {
		size_t cap = eng->cap_batch_htod ? eng->cap_batch_htod * 2 : 64;
		uint64_t *n = eng_calloc(eng, cap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		if (eng->nr_batch_htod)
			memcpy(n, eng->batch_htod, eng->nr_batch_htod * sizeof(*n));
		free(eng->batch_htod);
		eng->batch_htod = n;
		eng->cap_batch_htod = cap;
	}
	eng->batch_htod[eng->nr_batch_htod++] = bytes;
	return 0;
}

/* Fetch, coalesce and sort one batch (eng->lock held). 0: buffer empty. */
static unsigned int fetch_batch(struct dmm_engine *eng, unsigned int proc, struct fentry *buf,
				struct dmm_batch_info *bi)
{
	struct proc *d = &eng->procs[proc];
	unsigned int n = faultbuf_fetch(&d->fb, buf, (unsigned int)eng->etun[ETUN_BATCH_COUNT]), c = n;

	if (!n)
		return 0;
	*bi = (struct dmm_batch_info){ .id = ++eng->next_batch_id, .proc = proc, .fetched = n };
	bi->t_begin = d->service_clock;
	for (unsigned int i = 0; i < n; i++)
		if (buf[i].t > bi->t_begin)
			bi->t_begin = buf[i].t;
	if (eng->etun[ETUN_COALESCE]) {
		uint32_t *scratch = eng_calloc(eng, 2 * (size_t)n, sizeof(*scratch));

		c = fault_coalesce(buf, n, scratch);
		free(scratch);
	}
	bi->coalesced = n - c;
	eng->st.faults_fetched += n;
	eng->st.coalesced += n - c;
	fault_sort(buf, c);
	engine_unpin_expired(eng, bi->t_begin);
	if (eng->ops->batch_begin)
		eng->ops->batch_begin(eng->pctx, bi);
	return c;
}

/* Service one fetched batch of @c representatives, block by block. */
static void service_batch(struct dmm_engine *eng, unsigned int proc, struct fentry *buf, unsigned int c,
			  struct dmm_batch_info *bi, struct dmm_service_result *res)
{
	int64_t policy = eng->etun[ETUN_REPLAY_POLICY];
	uint64_t t = bi->t_begin, end = t, htod0 = eng->procs[proc].htod.bytes;

	/* One group per block: the same 2 MiB index and the same range (the
	 * range list changes only under service_lock, which we hold). */
	for (unsigned int i = 0, j; i < c; i = j) {
		uint64_t blk = buf[i].addr >> DMM_MBLOCK_SHIFT, be;
		struct mrange *r = range_of(eng, buf[i].addr);

		for (j = i + 1; j < c && buf[j].addr >> DMM_MBLOCK_SHIFT == blk && range_of(eng, buf[j].addr) == r;
		     j++)
			;
		be = service_block(eng, proc, buf + i, j - i, bi->id, t, bi);
		t = be > t ? be : t;
		if (be > end)
			end = be;
		if (policy == DMM_REPLAY_BLOCK)
			replay(eng, proc, be, res);
	}
	bi->t_end = end;
	pthread_mutex_lock(&eng->lock);
	eng->procs[proc].service_clock = end;
	eng->st.batches++;
	if (record_batch_htod(eng, eng->procs[proc].htod.bytes - htod0))
		eng->st.refused++; /* the per-batch record is lost, nothing else */
	if (eng->ops->batch_end)
		eng->ops->batch_end(eng->pctx, bi);
	{
		struct dmm_event ev = { .type = DMM_EV_BATCH, .t = bi->t_begin, .t_end = end, .from = proc,
					.to = proc, .npages = bi->fetched, .origin = { .batch = bi->id } };
		emit(eng, &ev);
	}
	if (policy == DMM_REPLAY_BATCH_FLUSH) {
		unsigned int fl = faultbuf_flush(&eng->procs[proc].fb);

		eng->st.flushed += fl;
		res->flushed += fl;
	}
	pthread_mutex_unlock(&eng->lock);
	if (policy == DMM_REPLAY_BATCH || policy == DMM_REPLAY_BATCH_FLUSH)
		replay(eng, proc, end, res);
}

int dmm_engine_service(struct dmm_engine *eng, unsigned int proc, struct dmm_service_result *res)
{
	struct dmm_service_result local;
	struct fentry *buf = NULL;
	uint64_t last = 0;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (!eng)
		return -EINVAL;
	pthread_mutex_lock(&eng->service_lock);
	pthread_mutex_lock(&eng->lock);
	if (!proc_is_dev(eng, proc)) {
		pthread_mutex_unlock(&eng->lock);
		pthread_mutex_unlock(&eng->service_lock);
		return -EINVAL;
	}
	buf = eng_calloc(eng, (size_t)eng->etun[ETUN_BATCH_COUNT], sizeof(*buf));
	last = eng->procs[proc].service_clock;
	while (buf && res->batches < eng->etun[ETUN_MAX_BATCHES] &&
	       res->throttled_batches < eng->etun[ETUN_MAX_THROTTLE]) {
		struct dmm_batch_info bi;
		unsigned int c = fetch_batch(eng, proc, buf, &bi);

		if (!c)
			break;
		pthread_mutex_unlock(&eng->lock);
		service_batch(eng, proc, buf, c, &bi, res);
		res->batches++;
		res->serviced += bi.serviced;
		res->throttled += bi.throttled;
		res->cancelled += bi.cancelled;
		if (bi.throttled)
			res->throttled_batches++;
		last = bi.t_end;
		pthread_mutex_lock(&eng->lock);
	}
	res->pending = eng->procs[proc].fb.count;
	pthread_mutex_unlock(&eng->lock);
	/* At least one replay is always issued; ONCE issues exactly that one. */
	if (!res->replays)
		replay(eng, proc, last, res);
	pthread_mutex_unlock(&eng->service_lock);
	free(buf);
	return buf ? 0 : -ENOMEM; /* no batch buffer: nothing was fetched */
}

/* ------------------------------------------------------------------------ */
/* CPU faults                                                                */

static int proc_of_owner(struct dmm_engine *eng, void *owner)
{
	for (unsigned int p = 1; p < eng->nr_procs; p++)
		if (eng->procs[p].desc.pgmap_owner == owner)
			return (int)p;
	return -1;
}

/* Decide a CPU fault (eng->lock held): fills w->to[CPU] with the pages to
 * bring back (the fault page first), returns the CPU stream's time. */
static uint64_t cpu_decide(struct dmm_engine *eng, struct block_work *w, unsigned int dev, unsigned int page,
			   bool write)
{
	struct stream *s = stream_get(eng, DMM_PROC_CPU, eng->cpu_stream);
	uint64_t t = s ? s->clock : engine_now(eng), id = ++eng->next_fault_id;
	/* The page reached the device no later than the device's last batch
	 * ended: a CPU fault on it cannot be earlier (streams are clocked
	 * independently, causality is not). */
	if (t < eng->procs[dev].service_clock)
		t = eng->procs[dev].service_clock;
	struct dmm_fault_info f = { .addr = w->b->start + (uint64_t)page * PAGE, .page = page,
				    .proc = DMM_PROC_CPU, .access = write ? DMM_ACCESS_WRITE : DMM_ACCESS_READ,
				    .instances = 1, .stream = eng->cpu_stream, .id = id, .t = t };
	struct dmm_event ev = { .type = DMM_EV_CPU_FAULT, .t = t, .addr = f.addr, .npages = 1, .from = dev,
				.to = DMM_PROC_CPU, .access = f.access, .origin = { .fault = id } };
	struct dmm_block_view v;

	f.access_mask = 1u << f.access;
	eng->st.cpu_faults++;
	emit(eng, &ev);
	block_view(eng, w->b, t, &v);
	for (int tries = 0; eng->ops->cpu_fault && tries < 4; tries++) {
		struct dmm_action act = { .type = DMM_ACT_MIGRATE, .cause = DMM_CAUSE_FAULT,
					  .dst = DMM_PROC_CPU, .origin = { .fault = id } };

		eng->ops->cpu_fault(eng->pctx, &v, &f, &act);
		w->cause[page] = act.cause;
		w->origin[page] = act.origin;
		if (act.type != DMM_ACT_THROTTLE || act.until <= t)
			break;
		/* The thread sleeps (in virtual time), then faults again. */
		eng->st.throttled++;
		eng->st.t_throttle += act.until - t;
		t = f.t = v.now = act.until;
		if (s)
			s->clock = t;
	}
	/* Whatever the policy said, a CPU access to device-private memory can
	 * only be served by bringing the page back. */
	w->for_fault[page] = false;
	dpm_set(&w->to[DMM_PROC_CPU], page);
	dpm_set(&w->faulted, page);
	if (eng->ops->prefetch) {
		struct dmm_pmask out = { { 0 } };
		uint32_t rule = eng->ops->prefetch(eng->pctx, &v, DMM_PROC_CPU, &w->faulted, &out);
		unsigned int i;

		dpm_for_each(&out, i) {
			if (i < w->b->first || i >= w->b->first + w->b->npages || i == page ||
			    !dmm_pmask_test(blk_res(w->b, dev), i) || dmm_pmask_test(&w->b->pinned, i))
				continue;
			dpm_set(&w->to[DMM_PROC_CPU], i);
			w->cause[i] = DMM_CAUSE_PREFETCH;
			w->origin[i] = (struct dmm_origin){ .fault = id, .rule = rule };
		}
	}
	return t + timing_cpu_fault_cost(&eng->timing);
}

unsigned int dmm_engine_migrate_to_ram(struct dmm_engine *eng, struct dmm_vm_fault *vmf)
{
	struct block_work *w;
	struct move_req req = { 0 };
	unsigned int page;
	struct stream *s;
	int dev;

	if (!eng || !vmf)
		return DMM_VM_FAULT_SIGBUS;
	w = eng_calloc(eng, 1, sizeof(*w));
	if (!w)
		return DMM_VM_FAULT_OOM;
	pthread_mutex_lock(&eng->lock);
	dev = proc_of_owner(eng, dmm_pgmap_owner(vmf->pgmap));
	w->b = block_lookup(eng, range_of(eng, vmf->address), vmf->address);
	if (dev >= 0 && vmf->mm != eng->mm) {
		struct dmm_event ev = { .type = DMM_EV_CPU_FAULT, .addr = vmf->address, .npages = 1,
					.from = (unsigned int)dev, .to = DMM_PROC_CPU,
					.access = (vmf->flags & DMM_FAULT_FLAG_WRITE) ? DMM_ACCESS_WRITE : DMM_ACCESS_READ };
		int err;

		s = stream_get(eng, DMM_PROC_CPU, eng->cpu_stream);
		ev.t = s ? s->clock : engine_now(eng);
		ev.origin.fault = ++eng->next_fault_id;
		eng->st.cpu_faults++;
		emit(eng, &ev);
		pthread_mutex_unlock(&eng->lock);
		free(w);
		err = exec_foreign_to_ram(eng, vmf, (unsigned int)dev, ev.t + timing_cpu_fault_cost(&eng->timing),
					  ev.origin.fault);
		return err == -ENOMEM ? DMM_VM_FAULT_OOM : err ? DMM_VM_FAULT_SIGBUS : 0;
	}
	if (dev < 0 || !w->b) {
		/* Not one of ours, or outside every range: a range brings its
		 * pages back before it goes, so this is a driver bug. */
		pthread_mutex_unlock(&eng->lock);
		free(w);
		return DMM_VM_FAULT_SIGBUS;
	}
	page = (unsigned int)((vmf->address - w->b->start) / PAGE);
	req.t = cpu_decide(eng, w, (unsigned int)dev, page, vmf->flags & DMM_FAULT_FLAG_WRITE);
	/* The move runs without eng->lock: keep the block alive against a
	 * range_remove meanwhile (it cannot take our locked fault page home,
	 * and fails, but the block must not depend on that). */
	w->b->users++;
	pthread_mutex_unlock(&eng->lock);
	req.b = w->b;
	req.mask = w->to[DMM_PROC_CPU];
	req.dst = DMM_PROC_CPU;
	req.cause = w->cause;
	req.origin = w->origin;
	req.for_fault = w->for_fault;
	req.fault_page = vmf->page;
	req.fault_index = page;
	exec_move(eng, &req);
	pthread_mutex_lock(&eng->lock);
	s = stream_get(eng, DMM_PROC_CPU, eng->cpu_stream);
	if (s && req.t_end > s->clock)
		s->clock = req.t_end;
	block_put(eng, w->b);
	pthread_mutex_unlock(&eng->lock);
	free(w);
	if (req.error == -ENOMEM)
		return DMM_VM_FAULT_OOM;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* User prefetch                                                             */

int dmm_engine_prefetch(struct dmm_engine *eng, uint64_t addr, uint64_t len, unsigned int dst, uint64_t t,
			uint64_t *t_end)
{
	enum dmm_cause *cause = NULL;
	struct dmm_vma_info vi;
	uint64_t first, end, tend = t;
	struct mrange *r;
	bool vma_write;
	int err = 0;

	if (!eng || !len || addr + len < addr)
		return -EINVAL;
	first = addr & DMM_PAGE_MASK;
	end = ((addr + len - 1) & DMM_PAGE_MASK) + DMM_PAGE_SIZE;
	pthread_mutex_lock(&eng->service_lock);
	pthread_mutex_lock(&eng->lock);
	if (dst != DMM_PROC_CPU && !proc_is_dev(eng, dst))
		err = -EINVAL;
	else if (!(r = range_of(eng, first)) || end > r->end)
		err = -ENOENT;
	pthread_mutex_unlock(&eng->lock);
	if (!err && !(cause = malloc(DMM_MBLOCK_PAGES * sizeof(*cause))))
		err = -ENOMEM;
	if (err) {
		pthread_mutex_unlock(&eng->service_lock);
		return err;
	}
	for (unsigned int i = 0; i < DMM_MBLOCK_PAGES; i++)
		cause[i] = DMM_CAUSE_USER_PREFETCH;
	/* dmm_vma_query takes the mmap_lock itself (as service_block). */
	vma_write = !dmm_vma_query(eng->mm, first, &vi) && vi.start <= first && (vi.flags & DMM_VM_WRITE);
	dmm_mmap_read_lock(eng->mm);
	for (uint64_t blk = first & ~(DMM_MBLOCK_SIZE - 1); blk < end && !err; blk += DMM_MBLOCK_SIZE) {
		struct move_req req = { .dst = dst, .t = t, .cause = cause, .vma_write = vma_write };
		bool stale;

		pthread_mutex_lock(&eng->lock);
		req.b = block_get(eng, r, blk);
		stale = req.b && req.b->stale;
		pthread_mutex_unlock(&eng->lock);
		if (!req.b) {
			err = -ENOMEM;
			break;
		}
		if (stale)
			block_resync(eng, req.b);
		pthread_mutex_lock(&eng->lock);
		for (unsigned int i = req.b->first; i < req.b->first + req.b->npages; i++) {
			uint64_t a = req.b->start + (uint64_t)i * DMM_PAGE_SIZE;

			/* Pages already there and pinned ones stay; the CPU
			 * is not given pages that have no copy (its first
			 * touch populates them). */
			if (a < first || a >= end || dmm_pmask_test(blk_res(req.b, dst), i) ||
			    dmm_pmask_test(&req.b->pinned, i) ||
			    (dst == DMM_PROC_CPU && !dmm_pmask_test(&req.b->populated, i)))
				continue;
			dpm_set(&req.mask, i);
		}
		pthread_mutex_unlock(&eng->lock);
		if (!dpm_count(&req.mask))
			continue;
		exec_move(eng, &req);
		if (req.t_end > tend)
			tend = req.t_end;
		if (req.failed && req.error == -ENOMEM)
			err = -ENOMEM;
	}
	dmm_mmap_read_unlock(eng->mm);
	pthread_mutex_unlock(&eng->service_lock);
	free(cause);
	if (t_end)
		*t_end = tend;
	return err;
}
