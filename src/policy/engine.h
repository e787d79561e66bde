/* SPDX-License-Identifier: MIT */
/*
 * The policy engine's internal types: the engine, its managed ranges and
 * blocks, the fault buffers, streams and the virtual clock. Shared by
 * engine.c (API, tunables, ranges, notifier, streams), block.c (block state),
 * faultbuf.c (fetch, coalesce, sort), service.c (batches and actions),
 * exec.c (migrations through migrate_vma), clock.c (time), events.c
 * (provenance) and the built-in policies.
 *
 * Locks (a driver lock in src/types.h's tree):
 *   eng->service_lock   mutex, outermost: one service loop, range add and
 *                       remove, destroy. Taken before the mm's mmap_lock.
 *    └ mmap_lock, folio locks (the core's)
 *       └ eng->lock     mutex: everything below marked "eng->lock". Taken in
 *                       the notifier callback and in migrate_to_ram; never
 *                       held across a core call that can fire a notifier
 *                       (dmm_migrate_vma_setup, dmm_munmap, ...). The
 *                       device ops called under it take only driver locks.
 */
#ifndef DEVMM_POLICY_ENGINE_H
#define DEVMM_POLICY_ENGINE_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <devmm/devmm.h>
#include <devmm/policy.h>

#include "pmask.h"

struct dmm_system;

/* Engine tunables (indexes in eng->etun). */
enum {
	ETUN_BATCH_COUNT = 0,
	ETUN_REPLAY_POLICY,
	ETUN_MAX_BATCHES,
	ETUN_MAX_THROTTLE,
	ETUN_COALESCE,
	ETUN_FIRST_TOUCH,
	ETUN_BUFFER_ENTRIES,
	NR_ETUN
};
extern const struct dmm_tunable_desc engine_tunables[NR_ETUN];

#define MAX_POLICY_TUNABLES 64

/* A managed range. Fields under eng->lock unless said otherwise. */
struct mrange {
	uint64_t start, end;
	struct dmm_range_attrs attrs;
	int64_t *tun;                     /* effective policy tunables (copy + overrides) */
	uint64_t tun_set;                 /* bit i: tun[i] overridden for this range */
	struct dmm_mmu_interval_notifier notifier;
	struct dmm_engine *eng;
	unsigned long seq;                /* set by the callback, under eng->lock */
	struct mrange *next;
};

/* A 2 MiB managed block (block.c). Under eng->lock. */
struct mblock {
	uint64_t start;                   /* 2 MiB aligned */
	unsigned int first, npages;       /* the managed pages */
	struct mrange *range;
	struct dmm_pmask populated, pinned;
	struct dmm_pmask moving;          /* collected by a move, not yet accounted: no device maps them */
	unsigned int users;               /* CPU faults using it without eng->lock (block_put) */
	bool removed;                     /* out of the table; the last user frees it */
	bool stale;                       /* an invalidation we did not cause touched it */
	void *policy_data;
	uint64_t pin_until;               /* earliest pin deadline, UINT64_MAX: none */
	uint64_t *pin_deadline;           /* [DMM_MBLOCK_PAGES], allocated with the first pin */
	unsigned char *pin_proc;          /* [DMM_MBLOCK_PAGES] */
	struct dmm_pmask masks[];         /* resident[nr_procs], then mapped[nr_procs] */
};

static inline struct dmm_pmask *blk_res(struct mblock *b, unsigned int p) { return &b->masks[p]; }
static inline struct dmm_pmask *blk_map(struct mblock *b, unsigned int nr, unsigned int p)
{
	return &b->masks[nr + p];
}

/* The hash of blocks (block.c), keyed by (range, start >> 21). */
struct block_table {
	struct mblock **slots;
	size_t cap, nr;
};

/* A fault-buffer record (faultbuf.c). */
struct fentry {
	uint64_t addr;                    /* page aligned */
	uint64_t t;
	uint64_t id;
	uint32_t stream, utlb;
	uint8_t access, access_mask;
	uint16_t instances;
	bool filtered;                    /* coalesced into an earlier entry */
};

/* The fault buffer of a device: a ring. Under eng->lock. */
struct faultbuf {
	struct fentry *ring;
	unsigned int cap, get, put, count;
};

/* A link lane: one transfer in flight (clock.c). */
struct lane {
	uint64_t busy_until;
	uint64_t bytes, busy_ns;
};

struct proc {
	bool present;
	struct dmm_managed_dev_desc desc;
	struct dmm_managed_dev_ops ops;
	struct faultbuf fb;
	struct lane htod, dtoh;           /* the device's link (per direction) */
	uint64_t htod_pages, dtoh_pages;  /* data pages each lane carried, counted page by page */
	uint64_t service_clock;           /* when its bottom half is free */
};

struct stream {
	unsigned int proc;
	uint32_t id;
	uint64_t clock;
	bool stalled;
	uint64_t stall_since;
	uint64_t resume_at;               /* throttle: no earlier than this */
	struct stream *next;
};

struct dmm_engine {
	struct dmm_mm *mm;
	struct dmm_system *sys;
	pthread_mutex_t service_lock;
	pthread_mutex_t lock;
	const struct dmm_policy_ops *ops;
	void *pctx;
	uint64_t seed;
	struct dmm_timing timing;

	/* eng->lock: */
	unsigned int nr_procs;
	struct proc procs[DMM_MAX_PROCS];
	struct mrange *ranges;
	struct block_table blocks;
	int64_t etun[NR_ETUN];
	int64_t *ptun;                    /* the run's policy tunables */
	struct stream *streams;
	uint32_t cpu_stream;
	uint64_t next_fault_id, next_batch_id;
	struct dmm_engine_stats st;
	uint64_t fault_pages_moved;       /* pages moved for a fault decision (any cause) */
	uint64_t *batch_htod;
	size_t nr_batch_htod, cap_batch_htod;
	dmm_event_cb cb;
	void *cb_arg;
	FILE *jsonl;
};

/* Allocation through the POLICY injection site. */
void *eng_calloc(struct dmm_engine *eng, size_t n, size_t size);

/* block.c */
struct mblock *block_lookup(struct dmm_engine *eng, const struct mrange *r, uint64_t addr);
struct mblock *block_get(struct dmm_engine *eng, struct mrange *r, uint64_t addr);
void block_remove(struct dmm_engine *eng, struct mblock *b);
void block_put(struct dmm_engine *eng, struct mblock *b);
void blocks_free(struct dmm_engine *eng);
void block_view(struct dmm_engine *eng, struct mblock *b, uint64_t now, struct dmm_block_view *v);
int block_pin(struct dmm_engine *eng, struct mblock *b, unsigned int page, unsigned int proc, uint64_t until);
void block_unpin(struct mblock *b, unsigned int page);
unsigned int block_where(struct dmm_engine *eng, struct mblock *b, unsigned int page);
#define blocks_for_each(eng, b, i)                                                        \
	for ((i) = 0; (i) < (eng)->blocks.cap; (i)++)                                     \
		if (((b) = (eng)->blocks.slots[i]) != NULL)

/* faultbuf.c */
int faultbuf_init(struct dmm_engine *eng, struct faultbuf *fb, unsigned int cap);
void faultbuf_fini(struct faultbuf *fb);
int faultbuf_push(struct faultbuf *fb, const struct fentry *e);
unsigned int faultbuf_fetch(struct faultbuf *fb, struct fentry *out, unsigned int max);
unsigned int faultbuf_flush(struct faultbuf *fb);
unsigned int fault_coalesce(struct fentry *e, unsigned int n, uint32_t *scratch);
void fault_sort(struct fentry *e, unsigned int n);

/* clock.c */
uint64_t lane_transfer(const struct dmm_timing *t, struct lane *l, uint64_t at, uint64_t bytes);
uint64_t timing_batch_cost(const struct dmm_timing *t, unsigned int blocks, unsigned int pages,
			   unsigned int far_faults);
uint64_t timing_cpu_fault_cost(const struct dmm_timing *t);

/* engine.c: the range holding @addr, or NULL (eng->lock or service_lock held) */
struct mrange *range_of(struct dmm_engine *eng, uint64_t addr);

/* engine.c: the streams (per-stream virtual clocks) */
struct stream *stream_get(struct dmm_engine *eng, unsigned int proc, uint32_t id);
void streams_free(struct dmm_engine *eng);
uint64_t engine_now(struct dmm_engine *eng);

/* events.c */
void emit(struct dmm_engine *eng, const struct dmm_event *ev);

/* exec.c: move pages [first, first + n) of block b (all in mask) to dst.
 * Called with service_lock and the mmap_lock (read) held, eng->lock not
 * held. Returns the pages moved; *bytes_in/out get what each lane carried. */
struct move_req {
	struct mblock *b;
	struct dmm_pmask mask;            /* the pages to move */
	unsigned int dst;
	uint64_t t;                       /* when the transfers may start */
	uint64_t t_end;                   /* out: the last transfer's end */
	uint64_t fault_page;              /* migrate_to_ram: the locked device page */
	unsigned int fault_index;         /* ... and its index in the block */
	bool vma_write;                   /* holes become writable (the VMA's VM_WRITE) */
	/* per page provenance */
	enum dmm_cause *cause;            /* [DMM_MBLOCK_PAGES] */
	struct dmm_origin *origin;        /* [DMM_MBLOCK_PAGES] */
	bool *for_fault;                  /* [DMM_MBLOCK_PAGES]: a fault decision asked for it */
	unsigned int moved, failed;
	int error;
};
void exec_move(struct dmm_engine *eng, struct move_req *req);
void exec_remap(struct dmm_engine *eng, struct mblock *b, unsigned int page, unsigned int proc);
int exec_foreign_to_ram(struct dmm_engine *eng, struct dmm_vm_fault *vmf, unsigned int dev, uint64_t t,
			uint64_t fault_id);

/* service.c */
void engine_unpin_expired(struct dmm_engine *eng, uint64_t now);
void block_resync(struct dmm_engine *eng, struct mblock *b);

/* Built-in policies. */
extern const struct dmm_policy_ops dmm_policy_ondemand;
extern const struct dmm_policy_ops dmm_policy_uvm;

static inline bool proc_is_dev(const struct dmm_engine *eng, unsigned int p)
{
	return p > 0 && p < eng->nr_procs && eng->procs[p].present;
}

static inline struct pmask pm_in(const struct dmm_pmask *m)
{
	struct pmask r;

	memcpy(&r, m, sizeof(r));
	return r;
}
static inline struct dmm_pmask pm_out(const struct pmask *m)
{
	struct dmm_pmask r;

	memcpy(&r, m, sizeof(r));
	return r;
}
_Static_assert(sizeof(struct pmask) == sizeof(struct dmm_pmask), "page mask layouts");

/* The few mask operations the engine needs, on the public type. */
static inline void dpm_set(struct dmm_pmask *m, unsigned int i) { m->w[i / 64] |= 1ULL << (i % 64); }
static inline void dpm_clear(struct dmm_pmask *m, unsigned int i) { m->w[i / 64] &= ~(1ULL << (i % 64)); }
static inline unsigned int dpm_next(const struct dmm_pmask *m, unsigned int i)
{
	while (i < DMM_MBLOCK_PAGES) {
		uint64_t w = m->w[i / 64] >> (i % 64);

		if (w)
			return i + (unsigned int)__builtin_ctzll(w);
		i = (i / 64 + 1) * 64;
	}
	return DMM_MBLOCK_PAGES;
}
static inline unsigned int dpm_count(const struct dmm_pmask *m)
{
	unsigned int c = 0;

	for (unsigned int i = 0; i < DMM_PMASK_WORDS; i++)
		c += (unsigned int)__builtin_popcountll(m->w[i]);
	return c;
}
#define dpm_for_each(m, i) for ((i) = dpm_next((m), 0); (i) < DMM_MBLOCK_PAGES; (i) = dpm_next((m), (i) + 1))

#endif /* DEVMM_POLICY_ENGINE_H */
