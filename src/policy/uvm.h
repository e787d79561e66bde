/* SPDX-License-Identifier: MIT */
/*
 * NVIDIA UVM's algorithms as pure functions (docs/managed-memory.md, "UVM
 * algorithms"; the reference is shared/spec/managed-memory.md section 1).
 * The engine's `uvm` policy calls them: it gathers plain inputs (the
 * per-processor residency masks of a block, the faulted pages, the
 * thrashing pages, the range's policy attributes, the virtual time) and
 * acts on the outputs (masks and decisions). Nothing here takes a lock,
 * reads the core's state or keeps global state; the same inputs give the
 * same outputs.
 *
 * Processors: 0 is the CPU, 1..N are devices (at most UVM_MAX_PROCS in
 * all). A struct uvm_topology says which processor can map which
 * processor's memory and which processors have memory.
 */
#ifndef DEVMM_POLICY_UVM_H
#define DEVMM_POLICY_UVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pmask.h"

#define UVM_MAX_PROCS 32u
#define UVM_PROC_CPU 0u
#define UVM_PROC_NONE 0xffu /* "no processor": an unset preferred location */

typedef uint8_t uvm_proc_t;
typedef uint32_t uvm_procmask_t; /* bit p: processor p */

#define UVM_PROCMASK(p) ((uvm_procmask_t)1u << (p))

static inline bool uvm_procmask_test(uvm_procmask_t m, uvm_proc_t p)
{
	return p < UVM_MAX_PROCS && ((m >> p) & 1u);
}

/*
 * Who can reach whom. can_access[p] has bit q when p can map q's memory
 * (a device can always map its own memory and, on PCIe, system memory; the
 * CPU cannot map device memory). fast_access[p] has bit q when p reaches q
 * over a fast link with native atomics (NVLink, SMC peers); it orders the
 * search for the closest copy and decides thrashing pins (section 1.4,
 * step 8.2). native_atomics[p] has bit q when p has native atomics to q's
 * memory (rule 8 of the residency order).
 */
struct uvm_topology {
	unsigned int nprocs;
	uvm_procmask_t has_memory;
	uvm_procmask_t can_access[UVM_MAX_PROCS];
	uvm_procmask_t fast_access[UVM_MAX_PROCS];
	uvm_procmask_t native_atomics[UVM_MAX_PROCS];
};

/* A PCIe system: the CPU and ndevs devices with memory; each device maps
 * its own memory and system memory, the CPU maps only its own. */
void uvm_topology_pcie(struct uvm_topology *topo, unsigned int ndevs);

static inline bool uvm_can_access(const struct uvm_topology *topo, uvm_proc_t p, uvm_proc_t q)
{
	return p < topo->nprocs && uvm_procmask_test(topo->can_access[p], q);
}

/*
 * The processor of `resident` closest to p: p itself, else the lowest
 * processor p reaches over a fast link, else the CPU, else the lowest
 * resident processor. UVM_PROC_NONE when resident is empty.
 */
uvm_proc_t uvm_closest_resident(const struct uvm_topology *topo, uvm_proc_t p, uvm_procmask_t resident);

/* Access types, least to most intrusive; masks have bit 1 << type. */
enum uvm_access {
	UVM_ACCESS_PREFETCH,
	UVM_ACCESS_READ,
	UVM_ACCESS_WRITE,
	UVM_ACCESS_ATOMIC,
};

/* The most intrusive access in a non-empty mask. */
enum uvm_access uvm_access_highest(unsigned int access_mask);

enum uvm_read_dup {
	UVM_READ_DUP_UNSET,
	UVM_READ_DUP_ENABLED,
	UVM_READ_DUP_DISABLED,
};

/* The policy attributes of a range (cudaMemAdvise). */
struct uvm_policy_attrs {
	uvm_proc_t preferred; /* UVM_PROC_NONE: unset */
	uvm_procmask_t accessed_by;
	enum uvm_read_dup read_dup;
};

/* The thrashing module's hint for one fault (section 1.4). */
enum uvm_thrash_hint_type {
	UVM_THRASH_HINT_NONE,
	UVM_THRASH_HINT_THROTTLE,
	UVM_THRASH_HINT_PIN,
};

/* ---- Tunables (uvm_params.c) -------------------------------------------- */

/*
 * Every tunable of the uvm policy, under NVIDIA's module-parameter name
 * without the uvm_perf_ prefix (lapse_adapt is devmm's own switch).
 * Defaults and valid ranges are in uvm_param_table.
 */
struct uvm_params {
	uint32_t prefetch_enable;
	uint32_t prefetch_threshold;    /* percent */
	uint32_t prefetch_min_faults;
	uint32_t thrashing_enable;
	uint32_t thrashing_threshold;
	uint32_t thrashing_pin_threshold;
	uint32_t thrashing_lapse_usec;
	uint32_t thrashing_nap;         /* multiples of the lapse */
	uint32_t thrashing_epoch;       /* multiples of the lapse */
	uint32_t thrashing_pin;         /* multiples of the lapse; 0: forever */
	uint32_t thrashing_max_resets;
	uint32_t lapse_vote_threshold;
	uint32_t lapse_adapt;           /* 1: adapt the lapse (grow and shrink) */
	uint32_t fault_batch_count;
	uint32_t fault_replay_policy;   /* enum uvm_replay_policy */
	uint32_t fault_max_batches_per_service;
	uint32_t fault_max_throttle_per_service;
	uint32_t fault_coalesce;
	uint32_t fault_replay_update_put_ratio;
	uint32_t reenable_prefetch_faults_lapse_msec;
	uint32_t map_remote_on_native_atomics_fault;
};

enum uvm_replay_policy {
	UVM_REPLAY_BLOCK,
	UVM_REPLAY_BATCH,
	UVM_REPLAY_BATCH_FLUSH,
	UVM_REPLAY_ONCE,
};

/*
 * The one list of tunables, from which uvm_param_table (both kinds)
 * and the uvm policy's engine tunables (POL only, uvm_policy.c) are
 * built. POL entries are the uvm policy's own (the
 * engine's `uvm` policy declares them, in this order); FLT entries are the
 * fault-service tunables, which the engine owns under the same names (its
 * table in engine.c) and which this table keeps for the pure modules'
 * tests and for uvm_param_parse.
 */
#define UVM_PARAM_LIST(POL, FLT)                                                                        \
	POL(prefetch_enable, 1, 0, 1, "tree prefetcher on")                                             \
	POL(prefetch_threshold, 51, 1, 100, "percent of a tree node that must be set for it to qualify") \
	POL(prefetch_min_faults, 1, 1, 20, "faults to the same destination before prefetching")         \
	POL(thrashing_enable, 1, 0, 1, "thrashing detection and mitigation on")                         \
	POL(thrashing_threshold, 3, 1, 7, "events within the lapse that make a page thrash (3-bit counter)") \
	POL(thrashing_pin_threshold, 10, 1, 255, "throttlings before the page is pinned")               \
	POL(thrashing_lapse_usec, 500, 5, 500000, "the lapse, microseconds")                            \
	POL(thrashing_nap, 1, 1, 100, "throttling period, in lapses")                                   \
	POL(thrashing_epoch, 2000, 1, 100000, "quiet time before a block's state is reset, in lapses")  \
	POL(thrashing_pin, 300, 0, 100000, "pin time, in lapses; 0: pinned forever")                    \
	POL(thrashing_max_resets, 4, 0, 255, "epoch resets per block")                                  \
	POL(lapse_vote_threshold, 32, 1, 127, "votes that move the adaptive lapse")                     \
	POL(lapse_adapt, 0, 0, 1, "adapt the lapse to the observed gaps (devmm switch)")                \
	FLT(fault_batch_count, 256, 1, 8192, "fault entries fetched per batch")                         \
	FLT(fault_replay_policy, UVM_REPLAY_BATCH_FLUSH, UVM_REPLAY_BLOCK, UVM_REPLAY_ONCE,             \
	    "0 block, 1 batch, 2 batch_flush, 3 once")                                                  \
	FLT(fault_max_batches_per_service, 20, 1, 1000, "batches per service round")                    \
	FLT(fault_max_throttle_per_service, 5, 1, 1000, "batches with throttled faults per service round") \
	FLT(fault_coalesce, 1, 0, 1, "coalesce duplicate fault entries")                                \
	FLT(fault_replay_update_put_ratio, 50, 0, 100, "duplicate percent that re-reads PUT before a flush") \
	POL(reenable_prefetch_faults_lapse_msec, 1000, 0, 1000000, "hardware prefetch faults back on after, ms") \
	POL(map_remote_on_native_atomics_fault, 0, 0, 1, "atomic faults map remotely with native atomics")

struct uvm_param_desc {
	const char *name;
	uint32_t def, min, max;
	unsigned int offset; /* of the field in struct uvm_params */
	const char *doc;
};

extern const struct uvm_param_desc uvm_param_table[];
extern const unsigned int uvm_param_count;

/* Every tunable at its default. */
void uvm_params_default(struct uvm_params *p);
/* The table entry of a name, or NULL. */
const struct uvm_param_desc *uvm_param_find(const char *name);
/* Set one tunable: 0, -EINVAL (unknown name), -ERANGE (outside the valid
 * range); nothing changes on error. */
int uvm_param_set(struct uvm_params *p, const char *name, int64_t value);
/* Read one tunable: 0 or -EINVAL (unknown name). */
int uvm_param_get(const struct uvm_params *p, const char *name, int64_t *value);
/* Set from "NAME=VALUE" (VALUE decimal or 0x hex; fault_replay_policy also
 * takes block, batch, batch_flush, once): 0, -EINVAL (no '=', unknown name,
 * not a number), -ERANGE. */
int uvm_param_parse(struct uvm_params *p, const char *assignment);

/* ---- Residency selection (uvm_residency.c; section 1.2) ---------------- */

/* The rule that decided a residency, in the order they are checked. */
enum uvm_res_rule {
	UVM_RES_FORCED_CPU = 1,
	UVM_RES_READ_DUP,
	UVM_RES_PREFERRED_REQUESTER,
	UVM_RES_HMM_CPU_FAULT,
	UVM_RES_THRASH_PIN,
	UVM_RES_FIRST_TOUCH,
	UVM_RES_ACCESSED_BY,
	UVM_RES_NATIVE_ATOMICS,
	UVM_RES_PREFERRED_REMOTE,
	UVM_RES_REMOTE_CPU,
	UVM_RES_REQUESTER,
};

/* One page's fault, as residency selection sees it. */
struct uvm_res_query {
	uvm_proc_t requester;
	unsigned int access_mask;  /* enum uvm_access bits, not empty */
	uvm_procmask_t resident;   /* processors that hold the page */
	bool read_duplicated;      /* the page is in read_duplicated_pages */
	bool forced_cpu;           /* rule 1: forced sysmem, HMM page that cannot migrate, sysmem VMA */
	bool hmm;                  /* the range is HMM (rule 4 for a CPU requester) */
	bool access_counter;       /* an access-counter operation (no rule 7) */
	bool remote_cpu;           /* a CPU fault from another mm (rule 10) */
	enum uvm_thrash_hint_type hint;
	uvm_proc_t pin_residency;  /* with hint PIN */
};

struct uvm_res_decision {
	uvm_proc_t proc;          /* the new residency (or the residency to map) */
	bool read_duplicate;      /* copy onto proc; the other copies stay */
	bool keep_residency;      /* rules 7, 8, 10: map proc remotely, move nothing */
	enum uvm_res_rule rule;
};

/*
 * Select the residency of one faulted page: the eleven rules of section
 * 1.2 in order, then the no-memory fallback to the CPU. Only
 * params->map_remote_on_native_atomics_fault is read.
 */
void uvm_select_residency(const struct uvm_topology *topo, const struct uvm_policy_attrs *pol,
			  const struct uvm_params *params, const struct uvm_res_query *q,
			  struct uvm_res_decision *out);

/* Whether a page may be read-duplicated (rule 2's may_read_duplicate). */
bool uvm_may_read_duplicate(const struct uvm_policy_attrs *pol, bool read_duplicated,
			    enum uvm_thrash_hint_type hint);

/* ---- Tree prefetcher (uvm_prefetch.c; section 1.3) --------------------- */

#define UVM_BIG_PAGE_PAGES 16u /* 64 KiB */

/* A block's prefetch_info: the last destination and the faults to it. */
struct uvm_prefetch_info {
	uvm_proc_t last_dest; /* UVM_PROC_NONE before the first call */
	uint32_t fault_count;
};

static inline void uvm_prefetch_info_init(struct uvm_prefetch_info *pi)
{
	pi->last_dest = UVM_PROC_NONE;
	pi->fault_count = 0;
}

/*
 * One block's faults of one batch, all going to dest. Bit i of every mask
 * is page i of the block; the block's page 0 is page va_page (0..511) of
 * its 2 MiB-aligned frame, which fixes where the 64 KiB big pages fall.
 * The prefetch region is pages [first, first + npages) of the block (the
 * whole block, or less where an HMM range clips it).
 */
struct uvm_prefetch_query {
	unsigned int va_page;
	unsigned int first, npages;
	uvm_proc_t dest;
	uvm_proc_t preferred;              /* UVM_PROC_NONE: unset */
	bool block_empty;                  /* no processor holds any page of the block */
	const struct pmask *faulted;       /* faulted in this batch, to dest */
	const struct pmask *dest_resident; /* resident on dest */
	const struct pmask *cpu_readable;  /* resident and readable on the CPU; may be NULL */
	const struct pmask *thrashing;     /* may be NULL */
};

/* The pages to prefetch to residency (never a faulted page). */
struct uvm_prefetch_hint {
	struct pmask pages;
	uvm_proc_t residency;
	bool first_touch; /* step 3: the whole region at the preferred location */
};

/*
 * The prefetch hint of one block's batch: true when out->pages is not empty.
 * Updates *pi (destination tracking and fault counter). With
 * prefetch_enable = 0 it returns false and changes nothing. For a device
 * destination the mask may hold pages already resident there: the engine
 * migrates only the others.
 */
bool uvm_prefetch_get_hint(const struct uvm_params *params, struct uvm_prefetch_info *pi,
			   const struct uvm_prefetch_query *q, struct uvm_prefetch_hint *out);

/*
 * The leaf bitmap of the tree walk (step 4a and 4b): the resident and
 * faulted pages of the region, with every big page (and the unaligned
 * prefix and suffix, each one unit) that holds a faulted page and no
 * thrashing page filled. Exposed for tests.
 */
void uvm_prefetch_leaves(const struct uvm_prefetch_query *q, struct pmask *leaves);

/* ---- Thrashing detection and mitigation (uvm_thrash.c; section 1.4) ----- */

/* Why pages moved, as the thrashing module tells causes apart. */
enum uvm_migration_cause {
	UVM_CAUSE_REPLAYABLE_FAULT,
	UVM_CAUSE_NON_REPLAYABLE_FAULT,
	UVM_CAUSE_ACCESS_COUNTER,
	UVM_CAUSE_PREFETCH,
	UVM_CAUSE_EVICTION,
	UVM_CAUSE_API, /* user prefetch, advice, coherence */
};

enum uvm_thrash_event_kind {
	UVM_THRASH_EV_MIGRATION,
	UVM_THRASH_EV_REVOCATION,
};

/* Timestamps in the per-page state have 64 ns resolution. */
#define UVM_THRASH_STAMP_SHIFT 6
#define UVM_THRASH_COUNT_MAX 7u /* the 3-bit event counter */
#define UVM_THRASH_NO_DEADLINE UINT64_MAX

/* One page's thrashing state (NVIDIA's layout; 40 bytes). */
struct uvm_thrash_page {
	uint64_t last_stamp : 58; /* time of the last event, ns >> 6 */
	uint64_t has_migration_events : 1;
	uint64_t has_revocation_events : 1;
	uint64_t num_thrashing_events : 3;
	uint64_t pinned : 1;
	uint64_t throttling_end;  /* ns */
	uint64_t pin_deadline;    /* ns; UVM_THRASH_NO_DEADLINE: pinned forever */
	uvm_procmask_t processors;
	uvm_procmask_t throttled;
	uint8_t throttling_count;
	uvm_proc_t pinned_residency;
	uvm_proc_t do_not_throttle; /* UVM_PROC_NONE: nobody */
};

/* One block's thrashing state; the per-page array exists only once two
 * consecutive events on the block came from different processors within
 * one lapse. */
struct uvm_thrash_block {
	struct uvm_thrash_page *pages; /* NULL until needed; npages entries */
	unsigned int npages;
	struct pmask thrashing;
	unsigned int num_thrashing;
	struct pmask pinned;
	unsigned int num_pinned;
	bool has_last;
	uvm_proc_t last_proc;
	uint64_t last_ns;
	uint64_t last_thrashing_ns;
	uint8_t num_resets;
};

/*
 * The VA space's share: the (adaptive) lapse, the counters, and the
 * allocator of the per-page arrays (the engine's, so that its fault
 * injection reaches them; calloc and free when left NULL). alloc returns
 * zeroed memory or NULL.
 */
struct uvm_thrash_space {
	uint64_t lapse_ns;
	int8_t vote;
	uint64_t pages_detected, throttles, pins, unpins, block_resets;
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p);
	void *alloc_ctx;
};

/* A MIGRATION or REVOCATION event on some pages of a block. */
struct uvm_thrash_event {
	enum uvm_thrash_event_kind kind;
	enum uvm_migration_cause cause;
	bool copy;             /* a duplicate (read-dup) transfer */
	bool staged_first_hop; /* the first hop of a staged copy */
	bool read_dup_enabled; /* the range has read duplication enabled */
	uvm_proc_t proc;       /* the destination; for a revocation, the processor that asked */
	const struct pmask *pages;
	uint64_t t;            /* ns */
};

/* One fault asking for a hint. */
struct uvm_thrash_query {
	unsigned int page;
	uvm_proc_t requester;
	uvm_proc_t preferred;    /* UVM_PROC_NONE: unset */
	uvm_procmask_t resident; /* processors that hold the page */
	uint64_t t;
};

/* Which step of the hint decided (for provenance). */
enum uvm_thrash_step {
	UVM_THRASH_STEP_OFF,            /* disabled, or no per-page state */
	UVM_THRASH_STEP_EPOCH_RESET,    /* 1 */
	UVM_THRASH_STEP_BELOW_THRESHOLD,/* 2 */
	UVM_THRASH_STEP_THROTTLE_WINDOW,/* 3 */
	UVM_THRASH_STEP_GAP,            /* 5 */
	UVM_THRASH_STEP_REVOCATION,     /* 7 */
	UVM_THRASH_STEP_PREFERRED_ALL,  /* 8.1 */
	UVM_THRASH_STEP_FAST_ACCESS,    /* 8.2 */
	UVM_THRASH_STEP_REQ_PREFERRED,  /* 8.3 */
	UVM_THRASH_STEP_PINNED,         /* 8.4 */
	UVM_THRASH_STEP_OTHER,          /* 8.5 */
};

struct uvm_thrash_hint {
	enum uvm_thrash_hint_type type;
	enum uvm_thrash_step step;
	uvm_proc_t pin_residency; /* PIN */
	uint64_t pin_deadline;    /* PIN: when the page is unpinned */
	uint64_t throttle_end;    /* THROTTLE: the end of the requester's nap */
};

/* The lapse from params, counters at zero, the default allocator (set
 * alloc, free and alloc_ctx afterwards to use another). */
void uvm_thrash_space_init(struct uvm_thrash_space *sp, const struct uvm_params *params);
void uvm_thrash_block_init(struct uvm_thrash_block *blk, unsigned int npages);
/* Free the per-page state. */
void uvm_thrash_block_fini(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk);

/*
 * Detection: account one MIGRATION or REVOCATION event. 0, or -ENOMEM when
 * the per-page state could not be allocated (detection then waits for the
 * next pair of events). The only allocation of the module.
 */
int uvm_thrash_event(const struct uvm_params *params, struct uvm_thrash_space *sp,
		     struct uvm_thrash_block *blk, const struct uvm_thrash_event *ev);

/* Mitigation: the hint for one fault, called before residency selection. */
void uvm_thrash_get_hint(const struct uvm_params *params, struct uvm_thrash_space *sp,
			 const struct uvm_topology *topo, struct uvm_thrash_block *blk,
			 const struct uvm_thrash_query *q, struct uvm_thrash_hint *out);

/* The earliest pin deadline of the block, or UVM_THRASH_NO_DEADLINE. */
uint64_t uvm_thrash_next_deadline(const struct uvm_thrash_block *blk);

/* Unpin (and reset) every page whose deadline is <= t; the pages go to
 * *unpinned (the engine removes their remote mappings). Their count. */
unsigned int uvm_thrash_unpin_due(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk,
				  uint64_t t, struct pmask *unpinned);

/* A throttled CPU thread sleeps for [*lo, *hi]: the rest of the nap to
 * 1.5 times that. */
void uvm_thrash_cpu_nap(const struct uvm_thrash_hint *hint, uint64_t t, uint64_t *lo, uint64_t *hi);

/* The block's invariants: pinned pages are thrashing pages, throttled
 * processors are among the page's processors, counts match the masks. */
bool uvm_thrash_block_check(const struct uvm_thrash_block *blk);

/* ---- Read duplication and advice (uvm_advice.c; sections 1.6, 1.7) ----- */

/* A block as the read-duplication and advice decisions see it: per
 * processor (nprocs entries each) the resident pages and the mapped pages
 * (any protection), and the read-duplicated pages. */
struct uvm_block_view {
	unsigned int nprocs;
	unsigned int npages;
	const struct pmask *resident;
	const struct pmask *mapped;
	const struct pmask *read_dup;
};

/* What a decision asks the engine to do, in this order: free the copies in
 * drop, remove the mappings in unmap, add the mappings in map (each page
 * to its closest resident copy), then update the read-duplicated mask. */
struct uvm_block_change {
	struct pmask drop[UVM_MAX_PROCS];
	struct pmask unmap[UVM_MAX_PROCS];
	struct pmask map[UVM_MAX_PROCS];
	struct pmask read_dup_clear;
};

void uvm_block_change_init(struct uvm_block_change *c);

/* The processors holding page i. */
uvm_procmask_t uvm_block_residents(const struct uvm_block_view *v, unsigned int i);

/* Section 1.6: a write or atomic by owner to pages makes it the sole
 * owner: every other copy is dropped and unmapped, the read-duplicated
 * bits are cleared. (The engine moves the page to owner first when owner
 * holds no copy.) */
void uvm_rdup_break(const struct uvm_block_view *v, uvm_proc_t owner, const struct pmask *pages,
		    struct uvm_block_change *c);

/* Enabling read duplication: the resident copies become masters; remote
 * (AccessedBy and pinned) mappings are removed. */
void uvm_rdup_enable(const struct uvm_block_view *v, struct uvm_block_change *c);

/* Disabling read duplication: one copy per page survives, the preferred
 * location's if it has one, else the lowest-numbered resident processor's;
 * the others are dropped and unmapped; then the accessed_by processors are
 * mapped again. */
void uvm_rdup_disable(const struct uvm_block_view *v, const struct uvm_topology *topo,
		      const struct uvm_policy_attrs *pol, struct uvm_block_change *c);

/* Section 1.7, SetPreferredLocation: the preferred processor loses its
 * mappings to pages not resident on it (so its next touch faults toward
 * it); nothing with read duplication enabled. */
void uvm_advise_preferred(const struct uvm_block_view *v, const struct uvm_policy_attrs *pol,
			  struct uvm_block_change *c);

/* SetAccessedBy, and after every migration of `pages`: map proc to every
 * populated page of `pages` it does not hold, is not read-duplicated and
 * whose closest copy it can access. */
void uvm_advise_accessed_by(const struct uvm_block_view *v, const struct uvm_topology *topo,
			    uvm_proc_t proc, const struct pmask *pages, struct uvm_block_change *c);

/* ---- One block's faults of one batch (uvm_service.c; section 1.1 step 5) */

/* A coalesced fault on one page of the block. */
struct uvm_fault_page {
	unsigned int page;
	unsigned int access_mask; /* enum uvm_access bits */
};

/* A block's faults from one requester in one batch, sorted by page. */
struct uvm_service_query {
	uvm_proc_t requester;
	const struct uvm_fault_page *faults;
	unsigned int nfaults;
	unsigned int va_page; /* the block's page 0 in its 2 MiB frame */
	bool hmm, remote_cpu, access_counter;
	uint64_t t;
};

/* The state of the block the uvm policy keeps besides its masks. */
struct uvm_block_policy_state {
	struct uvm_prefetch_info prefetch;
	struct uvm_thrash_block thrash;
};

/* What to do with the block: per faulted page the thrashing hint and the
 * residency decision, then the prefetch hint. */
struct uvm_service_plan {
	struct pmask throttled;                    /* faults skipped (THROTTLE) */
	struct pmask pinned;                       /* faults with hint PIN */
	struct pmask new_residency[UVM_MAX_PROCS]; /* the other faults, by residency */
	struct pmask read_dup;                     /* of those: copied, not moved */
	struct pmask keep;                         /* of those: mapped only */
	uint8_t rule[PMASK_PAGES];                 /* enum uvm_res_rule of each */
	uint64_t throttle_end;                     /* the latest THROTTLE's end */
	bool has_prefetch;
	bool prefetch_read_dup;                    /* read-mostly: duplicate them */
	struct uvm_prefetch_hint prefetch;
};

/*
 * Plan the service of one block's faults (NVIDIA's
 * service_fault_batch_block_locked and the prefetch hint of
 * uvm_va_block_service_locked): for each fault the thrashing hint, then
 * residency selection; the prefetch hint when every serviced fault goes to
 * one processor. Updates the block's prefetch info and thrashing state
 * (hints start throttling periods and pins); the engine carries out the
 * plan and reports the migrations back with uvm_thrash_event.
 */
void uvm_service_block(const struct uvm_params *params, const struct uvm_topology *topo,
		       const struct uvm_policy_attrs *pol, struct uvm_thrash_space *sp,
		       struct uvm_block_policy_state *st, const struct uvm_block_view *v,
		       const struct uvm_service_query *q, struct uvm_service_plan *plan);

#endif /* DEVMM_POLICY_UVM_H */
