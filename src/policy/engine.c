/* SPDX-License-Identifier: MIT */
/*
 * The policy engine's front: creation and teardown, devices, managed
 * ranges and their interval notifiers, advice, tunables by name, the
 * fault-buffer entry point, streams, statistics and the built-in policy
 * registry. The service loop is service.c, moves are exec.c.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "engine.h"
#include "../inject.h"

#define PAGE DMM_PAGE_SIZE

const struct dmm_tunable_desc engine_tunables[NR_ETUN] = {
	[ETUN_BATCH_COUNT] = { "fault_batch_count", 256, 1, 8192, "faults fetched per batch" },
	[ETUN_REPLAY_POLICY] = { "fault_replay_policy", DMM_REPLAY_BATCH_FLUSH, 0, 3,
				 "0 BLOCK, 1 BATCH, 2 BATCH_FLUSH, 3 ONCE" },
	[ETUN_MAX_BATCHES] = { "fault_max_batches_per_service", 20, 1, 1000000, "batches per service call" },
	[ETUN_MAX_THROTTLE] = { "fault_max_throttle_per_service", 5, 1, 1000000,
				"batches with throttled faults per service call" },
	[ETUN_COALESCE] = { "fault_coalesce", 1, 0, 1, "merge entries on the same page" },
	[ETUN_FIRST_TOUCH] = { "first_touch_transfer", 1, 0, 1,
			       "a device first touch costs an HtoD page (UVMSmart) or is zero-filled in place (0)" },
	[ETUN_BUFFER_ENTRIES] = { "fault_buffer_entries", 8192, 1, 1 << 20,
				  "fault-buffer capacity of devices added later" },
};

static const struct dmm_policy_ops *const builtin[] = {
	&dmm_policy_ondemand,
	&dmm_policy_uvm,
};

void *eng_calloc(struct dmm_engine *eng, size_t n, size_t size)
{
	if (inject_should_fail(eng->sys, DMM_INJECT_POLICY))
		return NULL;
	return calloc(n, size);
}

const struct dmm_policy_ops *dmm_policy_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (!strcmp(builtin[i]->name, name))
			return builtin[i];
	return NULL;
}

const char *dmm_policy_name_at(unsigned int i)
{
	return i < sizeof(builtin) / sizeof(builtin[0]) ? builtin[i]->name : NULL;
}

const char *dmm_action_name(enum dmm_action_type type)
{
	static const char *const n[DMM_NR_ACTS] = { "migrate", "duplicate", "map_remote", "throttle",
						    "pin", "unpin", "skip", "evict" };

	return (unsigned int)type < DMM_NR_ACTS ? n[type] : NULL;
}

const char *dmm_cause_name(enum dmm_cause cause)
{
	static const char *const n[DMM_NR_CAUSES] = { "fault", "prefetch", "eviction", "advice",
						      "user_prefetch", "coherence", "access_counter",
						      "thrash_pin", "read_dup_invalidate" };

	return (unsigned int)cause < DMM_NR_CAUSES ? n[cause] : NULL;
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */

static int policy_of(const struct dmm_engine_config *cfg, const struct dmm_policy_ops **ops)
{
	*ops = cfg && cfg->policy ? cfg->policy : dmm_policy_find(cfg && cfg->policy_name ? cfg->policy_name
											  : "ondemand");
	if (!*ops || !(*ops)->name || (*ops)->nr_tunables > MAX_POLICY_TUNABLES ||
	    ((*ops)->nr_tunables && !(*ops)->tunables))
		return -EINVAL;
	return 0;
}

int dmm_engine_create(struct dmm_mm *mm, const struct dmm_engine_config *cfg, struct dmm_engine **out)
{
	const struct dmm_policy_ops *ops;
	struct dmm_engine *eng;
	int err;

	if (!mm || !out || policy_of(cfg, &ops))
		return -EINVAL;
	if (cfg && (cfg->timing.preset > DMM_TIMING_CUSTOM ||
		    (cfg->timing.preset == DMM_TIMING_CUSTOM && !cfg->timing.beta_bytes_per_us)))
		return -EINVAL;
	if (inject_should_fail(dmm_mm_system(mm), DMM_INJECT_POLICY) || !(eng = calloc(1, sizeof(*eng))))
		return -ENOMEM;
	eng->mm = mm;
	eng->sys = dmm_mm_system(mm);
	eng->ops = ops;
	eng->seed = cfg ? cfg->seed : 0;
	if (cfg)
		eng->timing = cfg->timing;
	eng->nr_procs = 1;
	eng->procs[DMM_PROC_CPU].present = true;
	for (unsigned int i = 0; i < NR_ETUN; i++)
		eng->etun[i] = engine_tunables[i].def;
	eng->ptun = eng_calloc(eng, ops->nr_tunables + 1, sizeof(*eng->ptun));
	if (!eng->ptun) {
		free(eng);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < ops->nr_tunables; i++)
		eng->ptun[i] = ops->tunables[i].def;
	pthread_mutex_init(&eng->service_lock, NULL);
	pthread_mutex_init(&eng->lock, NULL);
	if (ops->init && (err = ops->init(eng, &eng->pctx))) {
		pthread_mutex_destroy(&eng->lock);
		pthread_mutex_destroy(&eng->service_lock);
		free(eng->ptun);
		free(eng);
		return err;
	}
	*out = eng;
	return 0;
}

static void range_free(struct mrange *r)
{
	free(r->tun);
	free(r);
}

void dmm_engine_destroy(struct dmm_engine *eng)
{
	if (!eng)
		return;
	/*
	 * Every device page of a range must be home before the engine goes:
	 * the device's migrate_to_ram leads here. A failed evacuation (no
	 * memory, a page briefly locked by someone else) leaves the range in
	 * place with its remaining pages; try again, as a driver's release
	 * keeps evicting until its memory is free.
	 */
	while (eng->ranges)
		if (dmm_engine_range_remove(eng, eng->ranges->start))
			sched_yield();
	if (eng->ops->fini)
		eng->ops->fini(eng->pctx);
	blocks_free(eng);
	for (unsigned int p = 1; p < eng->nr_procs; p++)
		faultbuf_fini(&eng->procs[p].fb);
	streams_free(eng);
	free(eng->batch_htod);
	free(eng->ptun);
	pthread_mutex_destroy(&eng->lock);
	pthread_mutex_destroy(&eng->service_lock);
	free(eng);
}

int dmm_engine_add_device(struct dmm_engine *eng, const struct dmm_managed_dev_desc *desc, unsigned int *proc)
{
	const struct dmm_managed_dev_ops *o = desc ? desc->ops : NULL;
	struct proc *d;
	int err;

	if (!eng || !desc || !proc || !o || !o->alloc_page || !o->copy_to_dev || !o->copy_from_dev ||
	    !o->map || !o->unmap || !o->replay || !o->cancel || !desc->pgmap_owner)
		return -EINVAL;
	pthread_mutex_lock(&eng->service_lock);
	pthread_mutex_lock(&eng->lock);
	err = eng->ranges ? -EBUSY : eng->nr_procs == DMM_MAX_PROCS ? -ENOSPC : 0;
	if (!err) {
		d = &eng->procs[eng->nr_procs];
		memset(d, 0, sizeof(*d));
		err = faultbuf_init(eng, &d->fb,
				    desc->fault_buffer_entries ? desc->fault_buffer_entries
							       : (unsigned int)eng->etun[ETUN_BUFFER_ENTRIES]);
	}
	if (!err) {
		d->desc = *desc;
		d->ops = *o;
		d->present = true;
		*proc = eng->nr_procs++;
	}
	pthread_mutex_unlock(&eng->lock);
	pthread_mutex_unlock(&eng->service_lock);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Ranges and their notifier                                                 */

/*
 * The core changed the page tables of [start, end) of a range. Our own
 * migrations (MIGRATE events whose owner is one of our devices) are
 * accounted by exec.c. Anything else: the devices drop their mappings in
 * the range, its blocks are resynced from the page tables before their
 * next use, and an UNMAP forgets the pages at once.
 */
static bool range_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *nr,
			     unsigned long cur_seq)
{
	struct mrange *r = (struct mrange *)((char *)sub - offsetof(struct mrange, notifier));
	struct dmm_engine *eng = r->eng;
	uint64_t start = nr->start > r->start ? nr->start : r->start;
	uint64_t end = nr->end < r->end ? nr->end : r->end;
	bool own = false;

	pthread_mutex_lock(&eng->lock);
	dmm_mmu_interval_set_seq(sub, cur_seq);
	for (unsigned int p = 1; p < eng->nr_procs; p++)
		if (nr->event == DMM_MMU_NOTIFY_MIGRATE && nr->owner == eng->procs[p].desc.pgmap_owner)
			own = true;
	if (!own && start < end) {
		for (unsigned int p = 1; p < eng->nr_procs; p++)
			eng->procs[p].ops.unmap(eng->procs[p].desc.drv, start, end);
		for (uint64_t a = start & ~(DMM_MBLOCK_SIZE - 1); a < end; a += DMM_MBLOCK_SIZE) {
			struct mblock *b = block_lookup(eng, r, a);
			uint64_t s = a > start ? a : start, e = a + DMM_MBLOCK_SIZE < end ? a + DMM_MBLOCK_SIZE : end;

			if (!b)
				continue;
			b->stale = true;
			for (uint64_t x = s; x < e; x += PAGE) {
				unsigned int i = (unsigned int)((x - b->start) / PAGE);

				for (unsigned int p = 0; p < eng->nr_procs; p++) {
					if (p)
						dpm_clear(blk_map(b, eng->nr_procs, p), i);
					if (nr->event == DMM_MMU_NOTIFY_UNMAP || nr->event == DMM_MMU_NOTIFY_RELEASE) {
						dpm_clear(blk_res(b, p), i);
						dpm_clear(blk_map(b, eng->nr_procs, p), i);
					}
				}
				if (nr->event == DMM_MMU_NOTIFY_UNMAP || nr->event == DMM_MMU_NOTIFY_RELEASE) {
					dpm_clear(&b->populated, i);
					if (dmm_pmask_test(&b->pinned, i))
						block_unpin(b, i);
				}
			}
		}
		if (nr->event == DMM_MMU_NOTIFY_UNMAP || nr->event == DMM_MMU_NOTIFY_RELEASE) {
			struct dmm_event ev = { .type = DMM_EV_UNMAP, .t = engine_now(eng), .addr = start,
						.npages = (end - start) / PAGE, .from = DMM_PROC_NONE,
						.to = DMM_PROC_NONE };
			emit(eng, &ev);
		}
	}
	pthread_mutex_unlock(&eng->lock);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops range_ops = { .invalidate = range_invalidate };

int dmm_engine_range_add(struct dmm_engine *eng, uint64_t addr, uint64_t len)
{
	struct dmm_vma_info vi;
	struct mrange *r;
	int err = 0;

	if (!eng || !len || (addr | len) & (PAGE - 1) || addr + len < addr)
		return -EINVAL;
	if (dmm_vma_query(eng->mm, addr, &vi) || vi.start > addr || vi.end < addr + len ||
	    vi.type != DMM_VMA_ANON || (vi.flags & DMM_VM_SHARED))
		return -EINVAL;
	r = eng_calloc(eng, 1, sizeof(*r));
	if (r)
		r->tun = eng_calloc(eng, eng->ops->nr_tunables + 1, sizeof(*r->tun));
	if (!r || !r->tun) {
		free(r);
		return -ENOMEM;
	}
	r->start = addr;
	r->end = addr + len;
	r->eng = eng;
	r->attrs.preferred = DMM_PROC_NONE;
	pthread_mutex_lock(&eng->service_lock);
	pthread_mutex_lock(&eng->lock);
	for (struct mrange *o = eng->ranges; o; o = o->next)
		if (o->start < r->end && r->start < o->end)
			err = -EEXIST;
	memcpy(r->tun, eng->ptun, eng->ops->nr_tunables * sizeof(*r->tun));
	pthread_mutex_unlock(&eng->lock);
	if (!err)
		err = dmm_mmu_interval_notifier_insert(&r->notifier, eng->mm, addr, len, &range_ops);
	if (err) {
		pthread_mutex_unlock(&eng->service_lock);
		range_free(r);
		return err == -EOVERFLOW ? -EINVAL : err;
	}
	pthread_mutex_lock(&eng->lock);
	r->next = eng->ranges;
	eng->ranges = r;
	pthread_mutex_unlock(&eng->lock);
	pthread_mutex_unlock(&eng->service_lock);
	return 0;
}

/*
 * Bring the device-resident pages of @r back (service_lock held). The
 * blocks are resynced from the page tables first, so that a page whose
 * mapping an invalidation touched is not missed. Any page left on a device
 * fails the evacuation: -ENOMEM when memory ran out, else -EBUSY (someone
 * held a page locked).
 */
static int range_evacuate(struct dmm_engine *eng, struct mrange *r)
{
	int err = 0;

	for (uint64_t a = r->start & ~(DMM_MBLOCK_SIZE - 1); a < r->end; a += DMM_MBLOCK_SIZE) {
		struct move_req req = { .dst = DMM_PROC_CPU };
		enum dmm_cause c[DMM_MBLOCK_PAGES];

		pthread_mutex_lock(&eng->lock);
		req.b = block_lookup(eng, r, a);
		pthread_mutex_unlock(&eng->lock);
		if (!req.b)
			continue;
		dmm_mmap_read_lock(eng->mm);
		block_resync(eng, req.b);
		pthread_mutex_lock(&eng->lock);
		for (unsigned int p = 1; p < eng->nr_procs; p++)
			for (unsigned int w = 0; w < DMM_PMASK_WORDS; w++)
				req.mask.w[w] |= blk_res(req.b, p)->w[w];
		req.t = engine_now(eng);
		pthread_mutex_unlock(&eng->lock);
		if (!dpm_count(&req.mask)) {
			dmm_mmap_read_unlock(eng->mm);
			continue;
		}
		/* cause COHERENCE: the pages come home because the range goes. */
		for (unsigned int i = 0; i < DMM_MBLOCK_PAGES; i++)
			c[i] = DMM_CAUSE_COHERENCE;
		req.cause = c;
		exec_move(eng, &req);
		dmm_mmap_read_unlock(eng->mm);
		if (req.failed && !err)
			err = req.error == -ENOMEM ? -ENOMEM : -EBUSY;
	}
	return err;
}

int dmm_engine_range_remove(struct dmm_engine *eng, uint64_t addr)
{
	struct mrange **pp, *r;
	int err;

	if (!eng)
		return -EINVAL;
	pthread_mutex_lock(&eng->service_lock);
	pthread_mutex_lock(&eng->lock);
	for (pp = &eng->ranges; *pp && (*pp)->start != addr; pp = &(*pp)->next)
		;
	r = *pp;
	pthread_mutex_unlock(&eng->lock);
	if (!r) {
		pthread_mutex_unlock(&eng->service_lock);
		return -ENOENT;
	}
	err = range_evacuate(eng, r);
	if (err) {
		pthread_mutex_unlock(&eng->service_lock);
		return err;
	}
	dmm_mmu_interval_notifier_remove(&r->notifier);
	pthread_mutex_lock(&eng->lock);
	for (pp = &eng->ranges; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
	for (uint64_t a = r->start & ~(DMM_MBLOCK_SIZE - 1); a < r->end; a += DMM_MBLOCK_SIZE) {
		struct mblock *b = block_lookup(eng, r, a);

		if (b)
			block_remove(eng, b);
	}
	pthread_mutex_unlock(&eng->lock);
	pthread_mutex_unlock(&eng->service_lock);
	range_free(r);
	return 0;
}

struct mrange *range_of(struct dmm_engine *eng, uint64_t addr)
{
	for (struct mrange *r = eng->ranges; r; r = r->next)
		if (addr >= r->start && addr < r->end)
			return r;
	return NULL;
}

static struct mrange *range_at(struct dmm_engine *eng, uint64_t addr)
{
	for (struct mrange *r = eng->ranges; r; r = r->next)
		if (r->start == addr)
			return r;
	return NULL;
}

int dmm_engine_advise(struct dmm_engine *eng, uint64_t addr, uint64_t len, const struct dmm_range_attrs *attrs)
{
	struct dmm_range_attrs old;
	struct mrange *r;
	int err = 0;

	if (!eng || !attrs)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	r = range_at(eng, addr);
	if ((attrs->preferred != DMM_PROC_NONE && attrs->preferred >= eng->nr_procs) ||
	    (attrs->accessed_by >> eng->nr_procs) || attrs->read_mostly > DMM_READ_MOSTLY_OFF)
		err = -EINVAL;
	else if (!r || r->end - r->start != len)
		err = -ENOENT;
	if (!err) {
		old = r->attrs;
		r->attrs = *attrs;
		if (eng->ops->on_advice)
			eng->ops->on_advice(eng->pctx, r->start, r->end, &old, attrs);
	}
	pthread_mutex_unlock(&eng->lock);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Tunables                                                                  */

static int find_tunable(struct dmm_engine *eng, const char *name, const struct dmm_tunable_desc **d, bool *policy)
{
	for (int i = 0; i < NR_ETUN; i++)
		if (!strcmp(engine_tunables[i].name, name)) {
			*d = &engine_tunables[i];
			*policy = false;
			return i;
		}
	for (unsigned int i = 0; i < eng->ops->nr_tunables; i++)
		if (!strcmp(eng->ops->tunables[i].name, name)) {
			*d = &eng->ops->tunables[i];
			*policy = true;
			return (int)i;
		}
	return -ENOENT;
}

const char *dmm_engine_tunable_name_at(const struct dmm_engine *eng, unsigned int i)
{
	if (!eng)
		return NULL;
	if (i < NR_ETUN)
		return engine_tunables[i].name;
	i -= NR_ETUN;
	return i < eng->ops->nr_tunables ? eng->ops->tunables[i].name : NULL;
}

int dmm_engine_set(struct dmm_engine *eng, const char *name, int64_t value)
{
	const struct dmm_tunable_desc *d;
	bool policy;
	int i;

	if (!eng || !name)
		return -EINVAL;
	i = find_tunable(eng, name, &d, &policy);
	if (i < 0)
		return i;
	if (value < d->min || value > d->max)
		return -ERANGE;
	pthread_mutex_lock(&eng->lock);
	if (!policy) {
		eng->etun[i] = value;
	} else {
		eng->ptun[i] = value;
		for (struct mrange *r = eng->ranges; r; r = r->next)
			if (!(r->tun_set & (1ULL << i)))
				r->tun[i] = value;
	}
	pthread_mutex_unlock(&eng->lock);
	return 0;
}

int dmm_engine_get(struct dmm_engine *eng, const char *name, int64_t *value)
{
	const struct dmm_tunable_desc *d;
	bool policy;
	int i;

	if (!eng || !name || !value)
		return -EINVAL;
	i = find_tunable(eng, name, &d, &policy);
	if (i < 0)
		return i;
	pthread_mutex_lock(&eng->lock);
	*value = policy ? eng->ptun[i] : eng->etun[i];
	pthread_mutex_unlock(&eng->lock);
	return 0;
}

int dmm_engine_range_set(struct dmm_engine *eng, uint64_t addr, const char *name, int64_t value)
{
	const struct dmm_tunable_desc *d;
	struct mrange *r;
	bool policy;
	int i;

	if (!eng || !name)
		return -EINVAL;
	i = find_tunable(eng, name, &d, &policy);
	if (i < 0 || !policy)
		return -ENOENT; /* the engine's own tunables are per run */
	if (value < d->min || value > d->max)
		return -ERANGE;
	pthread_mutex_lock(&eng->lock);
	r = range_at(eng, addr);
	if (r) {
		r->tun[i] = value;
		r->tun_set |= 1ULL << i;
	}
	pthread_mutex_unlock(&eng->lock);
	return r ? 0 : -ENOENT;
}

int dmm_engine_tunable_index(struct dmm_engine *eng, const char *name)
{
	for (unsigned int i = 0; eng && name && i < eng->ops->nr_tunables; i++)
		if (!strcmp(eng->ops->tunables[i].name, name))
			return (int)i;
	return -ENOENT;
}

uint64_t dmm_engine_seed(const struct dmm_engine *eng)
{
	return eng ? eng->seed : 0;
}

const char *dmm_engine_policy_name(const struct dmm_engine *eng)
{
	return eng ? eng->ops->name : NULL;
}

/* ------------------------------------------------------------------------ */
/* Faults and streams                                                        */

/* The stream (proc, id); a new one starts at time 0. NULL: no
 * memory. eng->lock held. */
struct stream *stream_get(struct dmm_engine *eng, unsigned int proc, uint32_t id)
{
	struct stream *s;

	for (s = eng->streams; s; s = s->next)
		if (s->proc == proc && s->id == id)
			return s;
	s = eng_calloc(eng, 1, sizeof(*s));
	if (!s)
		return NULL;
	s->proc = proc;
	s->id = id;
	s->next = eng->streams;
	eng->streams = s;
	return s;
}

void streams_free(struct dmm_engine *eng)
{
	while (eng->streams) {
		struct stream *s = eng->streams;

		eng->streams = s->next;
		free(s);
	}
}

/* The latest time anything reached: streams, lanes, bottom halves. */
uint64_t engine_now(struct dmm_engine *eng)
{
	uint64_t t = 0;

	for (struct stream *s = eng->streams; s; s = s->next)
		if (s->clock > t)
			t = s->clock;
	for (unsigned int p = 1; p < eng->nr_procs; p++) {
		const struct proc *d = &eng->procs[p];
		uint64_t m = d->htod.busy_until;

		if (d->dtoh.busy_until > m)
			m = d->dtoh.busy_until;
		if (d->service_clock > m)
			m = d->service_clock;
		if (m > t)
			t = m;
	}
	return t;
}

int dmm_engine_fault(struct dmm_engine *eng, unsigned int proc, const struct dmm_fault_entry *e)
{
	struct fentry f = { 0 };
	struct stream *s;
	int err;

	if (!eng || !e || (unsigned int)e->access > DMM_ACCESS_ATOMIC)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	if (!proc_is_dev(eng, proc)) {
		pthread_mutex_unlock(&eng->lock);
		return -EINVAL;
	}
	s = stream_get(eng, proc, e->stream);
	if (!s) {
		pthread_mutex_unlock(&eng->lock);
		return -ENOMEM;
	}
	f.addr = e->addr & DMM_PAGE_MASK;
	f.t = s->clock;
	f.stream = e->stream;
	f.utlb = e->utlb;
	f.access = (uint8_t)e->access;
	f.access_mask = (uint8_t)(1u << e->access);
	f.instances = 1;
	f.id = eng->next_fault_id + 1;
	err = faultbuf_push(&eng->procs[proc].fb, &f);
	if (err) {
		eng->st.overflows++;
	} else {
		eng->next_fault_id++;
		if (!s->stalled) {
			s->stalled = true;
			s->stall_since = s->clock;
		}
	}
	pthread_mutex_unlock(&eng->lock);
	return err;
}

static int stream_op(struct dmm_engine *eng, unsigned int proc, uint32_t id, uint64_t ns,
		     struct dmm_stream_info *out)
{
	struct stream *s;

	if (!eng || (proc != DMM_PROC_CPU && !proc_is_dev(eng, proc)))
		return -EINVAL;
	s = stream_get(eng, proc, id);
	if (!s)
		return -ENOMEM;
	s->clock += ns;
	eng->st.t_compute += ns;
	if (out) {
		out->clock = s->clock;
		out->stalled = s->stalled;
	}
	return 0;
}

int dmm_engine_compute(struct dmm_engine *eng, unsigned int proc, uint32_t stream, uint64_t ns)
{
	int err;

	if (!eng)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	err = stream_op(eng, proc, stream, ns, NULL);
	pthread_mutex_unlock(&eng->lock);
	return err;
}

int dmm_engine_stream(struct dmm_engine *eng, unsigned int proc, uint32_t stream, struct dmm_stream_info *out)
{
	int err;

	if (!eng || !out)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	err = stream_op(eng, proc, stream, 0, out);
	pthread_mutex_unlock(&eng->lock);
	return err;
}

int dmm_engine_wait(struct dmm_engine *eng, unsigned int proc, uint32_t stream, uint64_t until)
{
	struct stream *s;
	int err = 0;

	if (!eng)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	if (proc != DMM_PROC_CPU && !proc_is_dev(eng, proc))
		err = -EINVAL;
	else if (!(s = stream_get(eng, proc, stream)))
		err = -ENOMEM;
	else if (until > s->clock)
		s->clock = until;
	pthread_mutex_unlock(&eng->lock);
	return err;
}

int dmm_engine_set_cpu_stream(struct dmm_engine *eng, uint32_t stream)
{
	if (!eng)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	eng->cpu_stream = stream;
	pthread_mutex_unlock(&eng->lock);
	return 0;
}

int dmm_engine_stats(struct dmm_engine *eng, struct dmm_engine_stats *out)
{
	if (!eng || !out)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	*out = eng->st;
	out->sim_time_ns = engine_now(eng);
	pthread_mutex_unlock(&eng->lock);
	return 0;
}

long dmm_engine_batch_htod(struct dmm_engine *eng, uint64_t *out, size_t max)
{
	long n;

	if (!eng || (max && !out))
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	n = (long)eng->nr_batch_htod;
	if (max)
		memcpy(out, eng->batch_htod, (eng->nr_batch_htod < max ? eng->nr_batch_htod : max) * sizeof(*out));
	pthread_mutex_unlock(&eng->lock);
	return n;
}
