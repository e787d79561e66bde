/* SPDX-License-Identifier: MIT */
/*
 * devmm policy engine — managed memory (CUDA-managed-style) on top of the
 * core's device-memory paths.
 *
 * The policy decides, the engine acts. A policy is an ops table whose every
 * hook is optional; its hooks look at a read-only view of a 2 MiB managed
 * block and return actions. The engine alone takes locks, executes the
 * actions through the core's own calls (dmm_migrate_vma_*, interval
 * notifiers, dmm_pte_query, the driver's pgmap ops), charges virtual time
 * and records provenance. A run is therefore also a Linux-semantics run:
 * CPU faults, fork, munmap, pins and dmm_check stay valid in the middle of
 * it. docs/managed-memory.md describes the model.
 *
 * Objects:
 *   struct dmm_engine   one per address space (NVIDIA's VA space): managed
 *                       ranges, their 2 MiB blocks, the processors (CPU = 0,
 *                       devices 1..), a fault buffer per device, a virtual
 *                       clock, the policy instance and its tunables.
 *   processors          DMM_PROC_CPU, then one id per dmm_engine_add_device.
 *   managed range       [start, end) of an anonymous mapping registered with
 *                       dmm_engine_range_add; attributes per range.
 *
 * Errors: every call returns 0 (or a documented non-negative value) or a
 * negative errno, never touches errno, and changes nothing when it fails
 * on bad input.
 *
 * Threads and locks. Every call may run from any thread, with these rules:
 * dmm_engine_service of one engine runs one at a time (it takes the
 * engine's service mutex, then the mm's mmap_lock); the engine's state
 * lock is a driver lock in the core's order (src/types.h): it is taken
 * inside the engine's notifier callback and inside migrate_to_ram, never
 * held across a call that can fire a notifier. A device's ops are called
 * with the state lock held (map, unmap), with the mmap_lock and the pages
 * being moved locked (alloc_page, copy_*) or with nothing held (replay,
 * cancel); they must not call back into the engine.
 */
#ifndef DEVMM_POLICY_H
#define DEVMM_POLICY_H

#include <devmm/devmm.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#endif

/* ------------------------------------------------------------------------ */
/* Units                                                                     */

#define DMM_MBLOCK_SHIFT 21
#define DMM_MBLOCK_SIZE (1UL << DMM_MBLOCK_SHIFT)               /* a managed block: 2 MiB */
#define DMM_MBLOCK_PAGES (DMM_MBLOCK_SIZE / DMM_PAGE_SIZE)      /* 512 */
#define DMM_BIG_PAGE_SIZE (64UL * 1024)                         /* NVIDIA's big page */

#define DMM_PROC_CPU 0u
#define DMM_MAX_PROCS 8u   /* the CPU and up to 7 devices */
#define DMM_PROC_NONE (~0u)

/* A page mask of one block: bit i is page i (layout of src/policy/pmask.h). */
#define DMM_PMASK_WORDS (DMM_MBLOCK_PAGES / 64)
struct dmm_pmask {
	uint64_t w[DMM_PMASK_WORDS];
};
static inline bool dmm_pmask_test(const struct dmm_pmask *m, unsigned int i)
{
	return (m->w[i / 64] >> (i % 64)) & 1;
}

/* Access types, in increasing intrusiveness (the order coalescing keeps). */
enum dmm_access {
	DMM_ACCESS_PREFETCH = 0,
	DMM_ACCESS_READ,
	DMM_ACCESS_WRITE,
	DMM_ACCESS_ATOMIC,
};

/* ------------------------------------------------------------------------ */
/* Actions                                                                   */

/*
 * What a hook returns for a page. MIGRATE moves the page to dst (the only
 * copy afterwards). PIN is a MIGRATE to dst that also pins the page there
 * until @until (virtual ns; faults by others are the policy's to answer).
 * THROTTLE skips the fault and stalls the requester until @until. SKIP
 * ignores the fault (the requester retries after replay). UNPIN is what
 * the engine does at a pin's deadline. DUPLICATE (read duplication) and
 * MAP_REMOTE (the requester maps the page where it is) and EVICT are part
 * of the interface for issue 16's policies; this engine refuses them
 * (-EOPNOTSUPP, counted in stats.refused; the fault is cancelled).
 */
enum dmm_action_type {
	DMM_ACT_MIGRATE = 0,
	DMM_ACT_DUPLICATE,
	DMM_ACT_MAP_REMOTE,
	DMM_ACT_THROTTLE,
	DMM_ACT_PIN,
	DMM_ACT_UNPIN,
	DMM_ACT_SKIP,
	DMM_ACT_EVICT,
	DMM_NR_ACTS
};

/* Why a page moved (or was pinned, throttled, ...). */
enum dmm_cause {
	DMM_CAUSE_FAULT = 0,
	DMM_CAUSE_PREFETCH,
	DMM_CAUSE_EVICTION,
	DMM_CAUSE_ADVICE,
	DMM_CAUSE_USER_PREFETCH,
	DMM_CAUSE_COHERENCE,
	DMM_CAUSE_ACCESS_COUNTER,
	DMM_CAUSE_THRASH_PIN,
	DMM_CAUSE_READ_DUP_INVALIDATE,
	DMM_NR_CAUSES
};

/* Which decision: the batch (0 = none: a CPU fault or an API call), the
 * fault (engine-wide sequence number, 0 = none) and the policy's rule
 * (policy-defined number; 0 = the default action). */
struct dmm_origin {
	uint64_t batch;
	uint64_t fault;
	uint32_t rule;
};

struct dmm_action {
	enum dmm_action_type type;
	enum dmm_cause cause;
	unsigned int dst;      /* MIGRATE, PIN, DUPLICATE: the destination processor */
	uint64_t until;        /* THROTTLE, PIN: virtual-time deadline (ns) */
	struct dmm_origin origin;
};

/* The names used in events and JSON ("migrate", "fault", ...); NULL when
 * out of range. */
const char *dmm_action_name(enum dmm_action_type type);
const char *dmm_cause_name(enum dmm_cause cause);

/* ------------------------------------------------------------------------ */
/* What hooks see                                                            */

enum dmm_read_mostly {
	DMM_READ_MOSTLY_UNSET = 0,
	DMM_READ_MOSTLY_ON,
	DMM_READ_MOSTLY_OFF,
};

/* Per-range attributes (advice). */
struct dmm_range_attrs {
	unsigned int preferred;      /* a processor, or DMM_PROC_NONE */
	uint32_t accessed_by;        /* bit p: processor p */
	enum dmm_read_mostly read_mostly;
};

/*
 * A read-only view of one managed block, valid during the hook call. Masks
 * are indexed by processor. @populated: pages that have been resident
 * somewhere since the last munmap; a page not in it has no copy.
 * @policy_data: the policy's own per-block state (starts NULL; freed by
 * ops->block_free when the block goes away). @tunables: the values in
 * effect for this block's range, indexed as the policy declared them.
 */
struct dmm_block_view {
	uint64_t start;                        /* address of page 0 (2 MiB aligned) */
	unsigned int first, npages;            /* the managed pages: [first, first + npages) */
	unsigned int nr_procs;
	const struct dmm_pmask *resident;      /* [nr_procs] */
	const struct dmm_pmask *mapped;        /* [nr_procs]: the processor has a mapping */
	const struct dmm_pmask *populated;
	const struct dmm_pmask *pinned;
	const struct dmm_range_attrs *attrs;
	const int64_t *tunables;
	void **policy_data;
	uint64_t now;                          /* virtual ns */
};

/* One (coalesced) fault as a hook sees it. */
struct dmm_fault_info {
	uint64_t addr;              /* page aligned */
	unsigned int page;          /* index in the block */
	unsigned int proc;          /* the requester */
	enum dmm_access access;     /* the most intrusive of the coalesced entries */
	unsigned int access_mask;   /* bit a: some entry had access a */
	unsigned int instances;     /* entries coalesced into this one */
	uint32_t stream;
	uint64_t id;                /* fault id */
	uint64_t batch;             /* batch id; 0 for a CPU fault */
	uint64_t t;                 /* virtual time of the fault (ns) */
};

struct dmm_batch_info {
	uint64_t id;
	unsigned int proc;          /* the device */
	unsigned int fetched, coalesced, duplicates;
	unsigned int serviced, throttled, cancelled;
	uint64_t t_begin, t_end;
};

/* ------------------------------------------------------------------------ */
/* Events (provenance)                                                       */

enum dmm_event_type {
	DMM_EV_FAULT = 0,      /* a device fault entered the service (fault id, access) */
	DMM_EV_CPU_FAULT,      /* a CPU fault on a managed device page */
	DMM_EV_MIGRATE,        /* one page moved from -> to, with cause and origin */
	DMM_EV_THROTTLE,       /* a fault was throttled until t_end */
	DMM_EV_PIN,
	DMM_EV_UNPIN,
	DMM_EV_CANCEL,         /* a fatal fault (no VMA, refused action, no memory) */
	DMM_EV_BATCH,          /* a batch was serviced (addr 0) */
	DMM_EV_REPLAY,
	DMM_EV_UNMAP,          /* the core invalidated managed pages (munmap, ...) */
	DMM_NR_EVENTS
};

struct dmm_event {
	enum dmm_event_type type;
	uint64_t t, t_end;          /* virtual ns: start and end (transfers, throttles) */
	uint64_t addr;              /* page address (or range start for UNMAP) */
	uint64_t npages;
	unsigned int from, to;      /* processors (DMM_PROC_NONE: none, e.g. a first touch) */
	enum dmm_cause cause;
	enum dmm_access access;
	struct dmm_origin origin;
	int error;                  /* CANCEL: the -errno */
};

const char *dmm_event_name(enum dmm_event_type type);

/* ------------------------------------------------------------------------ */
/* Policies                                                                  */

/* A tunable a policy declares: name (NVIDIA's module parameter without the
 * uvm_perf_ prefix), default, inclusive bounds. */
struct dmm_tunable_desc {
	const char *name;
	int64_t def, min, max;
	const char *help;
};

struct dmm_engine;

/*
 * The ops table. Every hook is optional. Hooks run with the engine's state
 * lock held: they may read the view and their own state and must not call
 * the engine or devmm. They must be deterministic (use dmm_engine_seed for
 * randomness).
 *
 * init      - create the policy's context (*ctx); an error fails engine creation.
 * fini      - free it.
 * batch_begin / batch_end - around each serviced device fault batch.
 * fault     - decide one coalesced device fault (sorted order, per block).
 *             *act comes preset to the default: MIGRATE to the requester,
 *             cause FAULT, rule 0. This one hook replaces §5.3's
 *             thrash_hint + select_residency pair: the hint is the policy's
 *             own business, and any policy can answer with any action.
 * prefetch  - after a block's faults are decided, when every migrating fault
 *             of it goes to one processor @dst: set in @out the extra pages
 *             to bring to @dst (cause PREFETCH). The engine drops from @out
 *             the faulted pages, pages already on @dst, pinned pages and
 *             pages outside the block's managed part. Returns a rule id
 *             recorded in the origin.
 * cpu_fault - decide a CPU fault on a page a device holds (*act preset to
 *             MIGRATE to the CPU, cause FAULT). prefetch is then asked with
 *             dst = CPU, as NVIDIA's CPU path uses the same hint.
 * on_event  - every event, after the engine has applied it (the thrashing
 *             detector's input: MIGRATE with its cause, UNMAP, UNPIN).
 *             @blk is the view of the block the event is about (its
 *             policy_data included) when the event's pages lie in one
 *             block the engine tracks; NULL otherwise (BATCH, REPLAY, an
 *             UNMAP across blocks, a fault outside every block).
 * on_advice - the attributes of [start, end) changed from @old to @new.
 * block_free - free a block's policy_data.
 */
struct dmm_policy_ops {
	const char *name;
	const struct dmm_tunable_desc *tunables;
	unsigned int nr_tunables;

	int (*init)(struct dmm_engine *eng, void **ctx);
	void (*fini)(void *ctx);
	void (*batch_begin)(void *ctx, const struct dmm_batch_info *b);
	void (*fault)(void *ctx, const struct dmm_block_view *blk, const struct dmm_fault_info *f,
		      struct dmm_action *act);
	uint32_t (*prefetch)(void *ctx, const struct dmm_block_view *blk, unsigned int dst,
			     const struct dmm_pmask *faulted, struct dmm_pmask *out);
	void (*batch_end)(void *ctx, const struct dmm_batch_info *b);
	void (*cpu_fault)(void *ctx, const struct dmm_block_view *blk, const struct dmm_fault_info *f,
			  struct dmm_action *act);
	void (*on_event)(void *ctx, const struct dmm_block_view *blk, const struct dmm_event *ev);
	void (*on_advice)(void *ctx, uint64_t start, uint64_t end, const struct dmm_range_attrs *old,
			  const struct dmm_range_attrs *new_attrs);
	void (*block_free)(void *ctx, void *policy_data);
};

/*
 * dmm_policy_find - a built-in policy by name ("ondemand", ...), or NULL.
 * dmm_policy_name_at - the i-th built-in policy's name, NULL past the end.
 */
const struct dmm_policy_ops *dmm_policy_find(const char *name);
const char *dmm_policy_name_at(unsigned int i);

/* ------------------------------------------------------------------------ */
/* Devices                                                                   */

/*
 * What the engine asks of a device driver (drivers/managed is one). The
 * engine owns no device memory: the driver registers its device-private
 * pgmap with dmm_memremap_pages and hands pages out.
 *
 * alloc_page - a free device page, locked with refcount 1
 *              (dmm_zone_device_page_init): 0 or -ENOMEM. Called with the
 *              mm's mmap_lock held and the source pages locked, not the
 *              state lock.
 * copy_to_dev / copy_from_dev - page contents (src NULL: zero-fill); as alloc_page.
 * map        - the device maps @addr to @pfn (its page). State lock held.
 * unmap      - the device drops its mappings in [start, end). State lock held;
 *              also called from the engine's notifier callback.
 * replay     - replay: stalled accesses may retry (the GPU re-executes them) at
 *              virtual time @t. Nothing held.
 * cancel     - the fault of @stream at @addr is fatal (-errno): fail the access.
 *              Nothing held.
 */
struct dmm_managed_dev_ops {
	int (*alloc_page)(void *drv, uint64_t *pfn);
	void (*copy_to_dev)(void *drv, uint64_t dpfn, const void *src);
	void (*copy_from_dev)(void *drv, uint64_t dpfn, void *dst);
	void (*map)(void *drv, uint64_t addr, uint64_t pfn, bool writable);
	void (*unmap)(void *drv, uint64_t start, uint64_t end);
	void (*replay)(void *drv, uint64_t t);
	void (*cancel)(void *drv, uint64_t addr, uint32_t stream, int error);
};

struct dmm_managed_dev_desc {
	const struct dmm_managed_dev_ops *ops;  /* every op required */
	void *drv;
	void *pgmap_owner;          /* the owner of the driver's device-private pgmap */
	unsigned int fault_buffer_entries;  /* 0: 8192 */
};

/* ------------------------------------------------------------------------ */
/* Timing                                                                    */

enum dmm_timing_preset {
	DMM_TIMING_PASCAL_PCIE3 = 0,   /* affine link, 11.6 µs per block + 0.22 µs per page */
	DMM_TIMING_UVMSMART_PCIE3,     /* atan link, 45 µs per far fault */
	DMM_TIMING_CUSTOM,             /* affine α + bytes/β; fault costs as given */
};

struct dmm_timing {
	enum dmm_timing_preset preset;
	/* CUSTOM (ignored otherwise): link t = alpha_ns + bytes / beta (beta in
	 * bytes per µs, i.e. MB/s), at least min_ns. */
	uint64_t alpha_ns, beta_bytes_per_us, min_ns;
	/* CUSTOM: fault-service costs. */
	uint64_t fault_block_ns, fault_page_ns, far_fault_ns, cpu_fault_ns;
};

/* Parse "pascal-pcie3", "uvmsmart-pcie3" or "custom:ALPHA_NS:BETA_MBPS":
 * 0 or -EINVAL. */
int dmm_timing_parse(const char *spec, struct dmm_timing *out);
/* The virtual duration of one transfer of @bytes on a link of @t. */
uint64_t dmm_timing_transfer_ns(const struct dmm_timing *t, uint64_t bytes);

/* ------------------------------------------------------------------------ */
/* The engine                                                                */

struct dmm_engine_config {
	const struct dmm_policy_ops *policy;   /* NULL: policy_name */
	const char *policy_name;               /* NULL (and policy NULL): "ondemand" */
	struct dmm_timing timing;              /* zeroed: pascal-pcie3 */
	uint64_t seed;
};

/*
 * dmm_engine_create - an engine for @mm; destroy it before dmm_mm_exit(@mm).
 * Errors: -EINVAL (NULL, unknown policy name, bad timing),
 * -ENOMEM, the policy's init error.
 */
int dmm_engine_create(struct dmm_mm *mm, const struct dmm_engine_config *cfg, struct dmm_engine **out);

/*
 * dmm_engine_destroy - migrate every device-resident managed page back to
 * the CPU, unregister the ranges and free the engine. The devices' drivers
 * must still be alive; no other engine call may be in flight. A page that
 * cannot come back yet (no memory) is retried until it does: the engine is
 * never freed while a device page of its ranges, whose migrate_to_ram
 * leads to it, is still mapped.
 */
void dmm_engine_destroy(struct dmm_engine *eng);

/*
 * dmm_engine_add_device - register a device processor; *proc gets its id
 * (1, 2, ...). Devices are added before the first range.
 * Errors: -EINVAL (NULL, an op missing, owner NULL), -EBUSY (a range
 *         exists), -ENOSPC (DMM_MAX_PROCS reached), -ENOMEM.
 */
int dmm_engine_add_device(struct dmm_engine *eng, const struct dmm_managed_dev_desc *desc,
			  unsigned int *proc);

/*
 * dmm_engine_range_add - manage [addr, addr + len) of an existing private
 * anonymous mapping of the engine's mm. Pages start where they are
 * (unpopulated ones have no copy). Errors: -EINVAL (NULL, unaligned, len 0,
 * overflow, not inside one private anonymous mapping), -EEXIST (overlaps a
 * managed range), -ENOMEM.
 */
int dmm_engine_range_add(struct dmm_engine *eng, uint64_t addr, uint64_t len);

/*
 * dmm_engine_range_remove - stop managing the range that starts at @addr:
 * its device-resident pages come back to the CPU first (when the mapping
 * still exists). Errors: -EINVAL (NULL), -ENOENT (no range starts there),
 * -ENOMEM (a page could not come back for want of memory), -EBUSY (a page
 * could not come back, e.g. someone held it locked); after either error
 * the range stays managed and the call may be repeated.
 */
int dmm_engine_range_remove(struct dmm_engine *eng, uint64_t addr);

/*
 * dmm_engine_advise - set attributes of the pages [addr, addr + len) of
 * one managed range (the whole range only: splitting ranges is issue 16).
 * Errors: -EINVAL (NULL, unknown processor), -ENOENT (not exactly a managed
 * range).
 */
int dmm_engine_advise(struct dmm_engine *eng, uint64_t addr, uint64_t len,
		      const struct dmm_range_attrs *attrs);

/*
 * Tunables, by name: the engine's own (fault_batch_count,
 * fault_replay_policy (0 BLOCK, 1 BATCH, 2 BATCH_FLUSH, 3 ONCE),
 * fault_max_batches_per_service, fault_max_throttle_per_service,
 * fault_coalesce) and the policy's. dmm_engine_set sets the run's value,
 * dmm_engine_range_set one range's (the range starting at @addr).
 * Errors: -EINVAL (NULL), -ENOENT (no such name, no such range), -ERANGE
 *         (outside the tunable's bounds).
 */
int dmm_engine_set(struct dmm_engine *eng, const char *name, int64_t value);
int dmm_engine_get(struct dmm_engine *eng, const char *name, int64_t *value);
int dmm_engine_range_set(struct dmm_engine *eng, uint64_t addr, const char *name, int64_t value);
/* The name of the @i-th tunable: the engine's, then the policy's; NULL
 * past the end (or for a NULL engine). For listing a run's parameters. */
const char *dmm_engine_tunable_name_at(const struct dmm_engine *eng, unsigned int i);
/* The index of a policy tunable in dmm_block_view.tunables, or -ENOENT. */
int dmm_engine_tunable_index(struct dmm_engine *eng, const char *name);
/* The engine's seed and its name of the policy. */
uint64_t dmm_engine_seed(const struct dmm_engine *eng);
const char *dmm_engine_policy_name(const struct dmm_engine *eng);

enum dmm_replay_policy {
	DMM_REPLAY_BLOCK = 0,
	DMM_REPLAY_BATCH,
	DMM_REPLAY_BATCH_FLUSH,
	DMM_REPLAY_ONCE,
};

/*
 * dmm_engine_prefetch - a user prefetch (cudaMemPrefetchAsync): bring the
 * pages of [addr, addr + len) to processor @dst through the engine's moves
 * (cause USER_PREFETCH, origin all zero), the transfers starting at virtual
 * time @t; *t_end (may be NULL) gets when the last one ends (@t when
 * nothing moved). Pages already on @dst and pinned pages stay; pages with
 * no copy are populated on a device, left alone for the CPU. The policy is
 * not asked: this is the user's decision. The range must lie in one
 * managed range. Errors: -EINVAL (NULL, len 0, overflow, unknown
 * processor), -ENOENT (not inside one managed range), -ENOMEM (pages
 * before the failure have moved).
 */
int dmm_engine_prefetch(struct dmm_engine *eng, uint64_t addr, uint64_t len, unsigned int dst, uint64_t t,
			uint64_t *t_end);

/* ------------------------------------------------------------------------ */
/* Device faults, CPU faults, streams                                        */

/* What a device writes into its fault buffer. */
struct dmm_fault_entry {
	uint64_t addr;             /* any alignment */
	enum dmm_access access;
	uint32_t stream;           /* the device stream that stalls on it */
	uint32_t utlb;             /* coalescing unit; devmm's drivers use the stream */
};

/*
 * dmm_engine_fault - write a fault record into @proc's fault buffer,
 * stamped with the stream's virtual time; the stream stalls until a replay.
 * Errors: -EINVAL (NULL, not a device, bad access), -ENOSPC (the buffer is
 *         full: the fault is lost, as a hardware overflow; stats.overflows).
 */
int dmm_engine_fault(struct dmm_engine *eng, unsigned int proc, const struct dmm_fault_entry *e);

/* One call of the service loop. */
struct dmm_service_result {
	unsigned int batches, throttled_batches, replays;
	unsigned int serviced, throttled, cancelled, flushed;
	unsigned int pending;      /* entries left in the buffer */
};

/*
 * dmm_engine_service - the fault-service bottom half of device @proc: fetch
 * up to fault_batch_count entries, coalesce, sort, service per 2 MiB block,
 * replay as fault_replay_policy says; stop when the buffer is empty, after
 * fault_max_batches_per_service batches, or after
 * fault_max_throttle_per_service batches with throttled faults.
 * Errors: -EINVAL (NULL, not a device), -ENOMEM (no memory for the batch:
 * nothing was fetched, the faults stay pending; the replay still goes out).
 * Per-fault failures are cancels, reported to the driver's cancel op, not
 * errors.
 */
int dmm_engine_service(struct dmm_engine *eng, unsigned int proc, struct dmm_service_result *res);

/*
 * dmm_engine_migrate_to_ram - a driver's pgmap migrate_to_ram delegates
 * here for pages of a managed device: the policy's cpu_fault decides,
 * the engine migrates (fault page first, with prefetched neighbours).
 * Returns 0, DMM_VM_FAULT_SIGBUS or DMM_VM_FAULT_OOM, as migrate_to_ram.
 */
unsigned int dmm_engine_migrate_to_ram(struct dmm_engine *eng, struct dmm_vm_fault *vmf);

/*
 * Streams: (processor, stream id) pairs, each with its own virtual clock.
 * dmm_engine_compute charges @ns of compute to a stream;
 * dmm_engine_set_cpu_stream names the CPU stream that the next CPU faults
 * are charged to (default 0). Errors: -EINVAL (NULL, bad processor),
 * -ENOMEM (a new stream).
 */
struct dmm_stream_info {
	uint64_t clock;            /* virtual ns */
	bool stalled;              /* waiting for a replay */
};
int dmm_engine_compute(struct dmm_engine *eng, unsigned int proc, uint32_t stream, uint64_t ns);
int dmm_engine_stream(struct dmm_engine *eng, unsigned int proc, uint32_t stream,
		      struct dmm_stream_info *out);
int dmm_engine_set_cpu_stream(struct dmm_engine *eng, uint32_t stream);
/*
 * dmm_engine_wait - the stream waits until virtual time @until: its clock
 * moves there when it is earlier, and the wait is idle time, charged to
 * no part of the breakdown (a SYNC, the end of a kernel whose other streams
 * run longer). A stalled stream keeps its stall. Errors: as
 * dmm_engine_compute.
 */
int dmm_engine_wait(struct dmm_engine *eng, unsigned int proc, uint32_t stream, uint64_t until);

/* ------------------------------------------------------------------------ */
/* Results, events, invariants                                               */

struct dmm_engine_stats {
	uint64_t far_faults;        /* serviced device faults that needed a migration or pin */
	uint64_t cpu_faults;
	uint64_t faults_fetched, duplicates, coalesced, throttled, cancelled, refused;
	uint64_t overflows, flushed, remaps, batches, replays;
	uint64_t htod_pages, dtoh_pages, dtod_pages, htod_bytes, dtoh_bytes;
	uint64_t pages_by_cause[DMM_NR_CAUSES];
	uint64_t fault_migrate_failed;  /* FAULT pages that migrate_vma left behind */
	uint64_t pins, unpins;
	uint64_t lane_bytes;        /* bytes the link lanes carried (§5.9: == htod+dtoh bytes) */
	uint64_t sim_time_ns;       /* the latest clock */
	uint64_t t_compute, t_fault_stall, t_transfer, t_throttle;
};
int dmm_engine_stats(struct dmm_engine *eng, struct dmm_engine_stats *out);

/*
 * The bytes moved host-to-device by each serviced batch, in order: copies up
 * to @max entries into @out and returns the number of batches (which may
 * exceed @max). Errors: -EINVAL (NULL engine).
 */
long dmm_engine_batch_htod(struct dmm_engine *eng, uint64_t *out, size_t max);

/*
 * Provenance. dmm_engine_set_event_cb: @cb gets every event (NULL stops),
 * called with the state lock held (it must not call the engine).
 * dmm_engine_events_jsonl: write one JSON object per event to @f (NULL
 * stops); the caller keeps @f open until then or destroy.
 * Errors: -EINVAL (NULL engine).
 */
typedef void (*dmm_event_cb)(void *arg, const struct dmm_event *ev);
int dmm_engine_set_event_cb(struct dmm_engine *eng, dmm_event_cb cb, void *arg);
int dmm_engine_events_jsonl(struct dmm_engine *eng, FILE *f);
/* Format one event as a JSON object (no newline) into @buf: the length,
 * or -ENOSPC (too small), -EINVAL, -ENOMEM. */
int dmm_event_to_json(const struct dmm_event *ev, char *buf, size_t size);

/*
 * dmm_engine_check - the invariants of managed-memory.md §5.9 that this
 * engine can violate, plus agreement with the core: every page's residency
 * mask matches its page-table entry (device-private entries of device p <=>
 * resident on p; present <=> CPU; none <=> nowhere), each populated page has
 * exactly one copy, pinned pages are resident at their pin, device mappings
 * only of resident pages, bytes moved == bytes on the link lanes, and with
 * prefetching off (no prefetch migrations) FAULT migrations == far faults
 * minus FAULT pages left behind. Call it quiescent (no engine call in
 * flight). Violations go to @report (or stderr when NULL).
 * Returns 0 or -EUCLEAN (-EINVAL for NULL engine).
 */
int dmm_engine_check(struct dmm_engine *eng, char *report, size_t size);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* DEVMM_POLICY_H */
