/* SPDX-License-Identifier: MIT */
/*
 * The core types of devmm: frames (struct dmm_page), page tables, VMAs,
 * address spaces, anon_vmas, files and the system that owns them.
 *
 * Lock order, outermost first: a lock may be taken while holding any lock
 * above it on its path, never the other way round. docs/locking.md has the
 * same tree, word for word (change both together), and the rules.
 *
 * sys->mm_list_lock                  mutex: the list of mms (registration, exit, dmm_check)
 *  └ mm->mmap_lock                   16 per-thread-shard rwlocks: the VMAs
 *     ├ a second mmap_lock          fork: the child's, for write inside the parent's
 *     │                             (as dup_mmap), invisible to others
 *     └ folio lock (PG_locked)       sleeping bit lock per frame (hashed waits)
 *        ├ mm->anon_lock             mutex: anon_vma_prepare (faults, CoW, and
 *        │  │                        migrate_vma_pages' holes under folio locks)
 *        │  └ anon_vma->lock (write)
 *        └ anon_vma->lock            rwlock: an anon_vma's VMAs (rmap walks, VMA changes)
 *           └ file->i_mmap_lock      rwlock: a file's VMAs (rmap walks, VMA changes)
 *              ├ PTL                 mutex per PTE table: its entries
 *              │  └ a second PTL     mremap (same mm, mmap_lock write) or fork (the
 *              │                     child's, invisible to others)
 *              ├ notifier state lock per mm (leaf): subscriptions, active, deferred list;
 *              │                     never held while a callback runs
 *              └ driver locks        taken only by a driver's callbacks (invalidate,
 *                                    folio_free, migrate_to_ram, cow_alloc), so under
 *                                    whatever devmm holds when it calls them, at most
 *                                    down to the rmap locks (try_to_migrate's
 *                                    invalidations); never under a PTL or the notifier
 *                                    state lock. Inside one, a driver calls devmm only
 *                                    for what takes leaves (the getters, set_seq,
 *                                    read_retry, dmm_zone_device_page_init,
 *                                    dmm_alloc_page, dmm_memremap_pages)
 *
 * policy engine (src/policy/engine.h), a driver of the core:
 *   eng->service_lock               mutex, outside mm->mmap_lock: the service loop, range
 *    │                              add and remove, dmm_engine_check
 *    └ eng->lock                    a driver lock: taken in its notifier callback and in
 *       │                           migrate_to_ram; never held across a call that can fire
 *       │                           a notifier (dmm_migrate_vma_setup, dmm_munmap, ...)
 *       └ drivers/managed dev->lock leaf: the device's table and free list
 *
 * leaves (nothing is taken inside them):
 *   file->lock, allocator shard     may be taken under a PTL (file->lock is not, in
 *   locks, wait-table bucket locks  practice: page-cache lookups come before the PTL)
 *   sys->large_free.lock            the free large blocks (frame.c); as the shard locks
 *   sys->deferred_split.lock        the deferred-split queue; taken under a PTL
 *   sys->pgmap_lock                 under the mmap_lock or a driver lock (a driver adding
 *                                   memory); never held while taking an mmap_lock or
 *                                   calling a driver
 *   pgmap done_lock                 wherever a dying pgmap's last reference is dropped
 *   sys->file_list_lock             under mmap_lock write (dmm_file_put from a VMA
 *                                   unlink); dmm_check alone takes file->lock inside it
 *
 * A CPU access holds the PTL of the entry it uses while it touches the
 * frame: that is the model's TLB. Clearing or changing an entry under the
 * PTL therefore guarantees that no access goes on with the old entry, as a
 * TLB flush does in the kernel.
 */
#ifndef DEVMM_TYPES_H
#define DEVMM_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <devmm/devmm.h>

#include "itree.h"
#include "lockdep.h"
#include "vma_tree.h"

#define PAGE_SHIFT DMM_PAGE_SHIFT
#define PAGE_SIZE DMM_PAGE_SIZE
#define PAGE_MASK DMM_PAGE_MASK
#define CACHELINE 64
#define NR_SHARDS 16 /* allocator and statistics shards, picked per thread */

/* ------------------------------------------------------------------------ */
/* Deferred freeing (rcu.c)                                                  */

/* Embedded in an object freed after a grace period (call_rcu). */
struct rcu_head {
	struct rcu_head *next;
	void (*func)(struct rcu_head *head);
};

struct dmm_list {
	struct dmm_list *prev, *next;
};

/* ------------------------------------------------------------------------ */
/* Frames                                                                    */

/* struct dmm_page.flags bits */
#define PG_locked (1u << 0)
#define PG_waiters (1u << 1)	 /* someone sleeps on this frame's lock */
#define PG_anon (1u << 2)	 /* mapping is an anon_vma */
#define PG_anon_exclusive (1u << 3) /* mapped by exactly one process, may be made writable */
#define PG_dirty (1u << 4)
#define PG_uptodate (1u << 5)
#define PG_reserved (1u << 6)	 /* the zero page, the huge zero folio's pages */
#define PG_pagecache (1u << 7)	 /* mapping is a file, the page cache holds a ref */
#define PG_free (1u << 8)	 /* on the allocator's free list (debug, checked) */
#define PG_zone_device (1u << 9)
#define PG_swapbacked (1u << 10)
#define PG_lru (1u << 11)	 /* a system page the core may migrate (LRU model) */
#define PG_migrate_local (1u << 12) /* under migration (locked): its one migration
				     * entry is at its own address in the range */
/* Bits 16..31 (PG_OWNER_MASK, lockdep.h): with the lock assertions, the tag of the
 * thread holding PG_locked; always 0 without DMM_LOCKDEP (meson
 * -Dlockdep=true). */

#define PG_partially_mapped (1u << 13) /* head of a large anon folio: some pages lost
					* their mapping (large-folios.md §1.4) */

/*
 * One frame's metadata (56 bytes, within the kernel's 64 of struct page;
 * static_assert below). refcount, mapcount, pincount and flags are
 * atomics, changed under the rules of docs/design.md. mapping/index are
 * written while the frame is private to its allocator or under the folio
 * lock, and read under the PTL of an entry that maps the frame.
 *
 * A folio is one frame (order 0) or 2^order frames with an order-aligned
 * head pfn (a large folio, docs/large-folios.md). compound_head tells them
 * apart in one word: 0 for an order-0 folio (and a free frame), order << 1
 * for the head of a large folio, the head's address | 1 for a tail.
 * Folio-wide state lives on the head (refcount, pincount, the folio lock
 * and the other folio flags, mapping, index) or, where the head has no
 * room, on the first two tails, whose mapping/index words are free (as the
 * kernel keeps its large-folio counters on the first tails):
 *   first tail:  large_mapcount (entries mapping any page, a PMD counts 1),
 *                entire_mapcount (PMD entries), nr_pages_mapped (pages
 *                mapped by a PTE);
 *   second tail: deferred_list (the deferred-split queue, §1.4).
 * Per page: mapcount (for order 0 every entry; in a large folio the PTEs
 * mapping that page), PG_anon_exclusive, PG_zone_device, PG_free, pgmap.
 * A tail's refcount and pincount stay 0.
 */
struct dmm_page {
	_Atomic uint32_t refcount; /* 0 = free; FOLL_PIN adds 1024 (order 0) */
	_Atomic int32_t mapcount;  /* present + device-private + exclusive entries */
	_Atomic uint32_t flags;	   /* PG_* */
	_Atomic uint32_t pincount; /* exact FOLL_PIN pins (devmm keeps it for order 0 too) */
	_Atomic uintptr_t compound_head; /* 0, order << 1 (head), head | 1 (tail) */
	union {
		struct { /* an order-0 folio or the head of a large one */
			void *mapping;	/* struct dmm_anon_vma * (PG_anon) or struct dmm_file * */
			uint64_t index; /* linear page index in mapping */
		};
		struct { /* the first tail of a large folio */
			_Atomic int32_t large_mapcount;
			_Atomic int32_t entire_mapcount;
			_Atomic int32_t nr_pages_mapped;
			uint32_t _tail1_unused;
		};
		struct dmm_list deferred_list; /* the second tail of a large folio */
	};
	struct dmm_pgmap *pgmap;   /* zone-device frames only */
	union {
		void *zone_device_data; /* driver-private (device-private frames) */
		uint64_t next_free;	/* free list link (pfn), allocator only */
	};
};
_Static_assert(sizeof(struct dmm_page) <= 56, "struct dmm_page outgrew its metadata budget");

/* Folio orders: order 1 is never used (large-folios.md §1.1); 9 is the PMD order. */
#define FOLIO_MIN_LARGE_ORDER 2
#define FOLIO_MAX_ORDER 9

#define GUP_PIN_COUNTING_BIAS 1024u
/*
 * The most references that GUP (or a driver, through dmm_get_page) may
 * bring a frame to: half the counter, where Linux's signed count turns
 * negative. Those references are the caller's to take without bound, so
 * folio_ref_try_add refuses to pass this. The other half is headroom for
 * the references that are taken unchecked because their number is bounded
 * by memory (one per mapping) or by threads (transient ones).
 */
#define PAGE_REF_MAX 0x7fffffffu

/* ------------------------------------------------------------------------ */
/* Page tables                                                               */

#define PT_BITS 9
#define PTRS_PER_TABLE (1u << PT_BITS)
#define PT_LEVELS 4

typedef uint64_t pte_t;

/*
 * The last level: a PMD slot (an entry of a level-1 directory) points at
 * one of these, allocated by CAS and kept until free_pgtables or exit.
 * @pmd is the slot's state (pte.h, "PMD slot word"): PMD_NONE, the slot
 * maps nothing and ent[] is all none (the struct is only the slot's lock
 * and the table a PMD leaf would deposit); PMD_TABLE, ent[] is a PTE
 * table; anything else a PMD leaf, with ent[] all none. A NULL directory
 * entry is the same as PMD_NONE. A PMD leaf is made only by a THP fault
 * into a NONE slot (huge_memory.c). The PMD lock and the PTL are the same lock: ptl.
 */
struct dmm_pte_table {
	_Atomic pte_t ent[PTRS_PER_TABLE]; /* written under ptl; read locklessly too */
	_Atomic pte_t pmd;		   /* written under ptl; read locklessly (acquire) */
	pthread_mutex_t ptl;
#ifdef DMM_LOCKDEP
	_Atomic uint32_t ptl_owner; /* the holder's lockdep_thread_tag(), 0 = none */
#endif
	struct rcu_head rcu;	/* freed a grace period after munmap unlinks it */
};

/* Upper levels: 512 pointers to the next level, populated by CAS under
 * mmap_lock (read), cleared only under mmap_lock (write) by munmap once
 * no VMA is left under the whole table; an unlinked table is freed after
 * a grace period (GUP-fast walks without the mmap_lock, inside an RCU
 * read section, as it does in the kernel). */
struct dmm_pt_dir {
	_Atomic(void *) ent[PTRS_PER_TABLE];
	struct rcu_head rcu;
	int level;		/* 1: entries are PTE tables; PT_LEVELS - 1: the pgd */
};

/* ------------------------------------------------------------------------ */
/* Reverse mapping                                                           */

/*
 * An anon_vma: the reverse-map identity of anonymous pages. A process's
 * anonymous VMA gets one on its first anonymous page; fork makes the child's
 * copy of the VMA join the same anon_vma, so one anon_vma serves a whole
 * fork family (a simpler scheme than the kernel's anon_vma chains: rmap
 * walks may visit VMAs that do not map the page, and skip them after
 * looking at the page table).
 */
struct dmm_anon_vma {
	pthread_rwlock_t lock;	  /* protects vmas */
	struct dmm_list vmas;	  /* dmm_vma.anon_node */
	_Atomic long refcount;	  /* one per linked VMA, plus one per anon page */
	unsigned int mm_id;	  /* the address space that created it (constant) */
};

/* ------------------------------------------------------------------------ */
/* VMAs and address spaces                                                   */

#define VM_READ DMM_VM_READ
#define VM_WRITE DMM_VM_WRITE
#define VM_SHARED DMM_VM_SHARED
#define VM_MAYREAD DMM_VM_MAYREAD
#define VM_MAYWRITE DMM_VM_MAYWRITE
#define VM_MAYSHARE DMM_VM_MAYSHARE
#define VM_DONTCOPY DMM_VM_DONTCOPY
#define VM_ACCOUNT DMM_VM_ACCOUNT
#define VM_HUGEPAGE DMM_VM_HUGEPAGE
#define VM_NOHUGEPAGE DMM_VM_NOHUGEPAGE
#define VM_IO 0x00004000UL
#define VM_PFNMAP 0x00000400UL
#define VM_ACCESS_FLAGS (VM_READ | VM_WRITE)

struct dmm_mm;
struct dmm_file;

/* A mapping region. All fields are protected by mm->mmap_lock (write to
 * change); anon_vma may also be set under mmap_lock read + mm->anon_lock. */
struct dmm_vma {
	struct dmm_mm *mm;
	uint64_t start, end;	/* [start, end), page aligned */
	uint64_t pgoff;		/* page offset of start in its object (anon: linear index) */
	unsigned long flags;	/* VM_*; once linked, changed with vma_flags_write
				 * (rmap walkers of other mms read it) */
	struct dmm_file *file;	/* shmem or file; holds a file reference */
	struct dmm_anon_vma *anon_vma;
	struct dmm_list anon_node; /* in anon_vma->vmas, under anon_vma->lock */
	struct dmm_list file_node; /* in file->i_mmap, under file->i_mmap_lock */
};

/*
 * Interval-notifier state of an address space (semantics.md §3.14).
 * seq starts at 2 and is odd while an invalidation that overlapped some
 * subscription, or one that was in flight when a subscription was
 * inserted, runs; active counts every invalidation in flight. While seq is
 * odd, inserts and removes are deferred, so invalidations walk subs
 * without the lock. While nsubs is 0 an invalidation touches only the
 * atomics (active, seq, the counters) and never the lock: see notifier.c
 * for the ordering that makes that safe against a concurrent insert.
 */
struct dmm_notifier_state {
	pthread_mutex_t lock;	/* protects subs and deferred; serialises
				   every change of seq and nsubs */
	pthread_cond_t wq;	/* woken when seq becomes even */
	_Atomic unsigned long seq;
	_Atomic unsigned long active;	/* changed without the lock */
	_Atomic unsigned long nsubs;	/* subscriptions inserted, not yet removed */
	struct itree subs;	  /* subscriptions in effect */
	struct dmm_list deferred; /* pending adds and removes */
	_Atomic unsigned long starts, ends, refused;
};

/* An address space. */
struct dmm_mm {
	struct dmm_system *sys;
	unsigned int id;
	/* mmap_lock as a "big reader" lock: one rwlock per shard; a reader
	 * takes its thread's shard, a writer takes them all in order, so
	 * faults on different CPUs never share a lock's cache line. */
	struct dmm_mmap_shard {
		pthread_rwlock_t lock;
	} __attribute__((aligned(CACHELINE))) mmap_lock[NR_SHARDS];
	struct vma_tree vmas;	/* by start, non-overlapping; mmap_lock (write to change) */
	struct dmm_pt_dir *pgd;	/* populated by CAS; freed at destroy */
	_Atomic long nr_pgtables; /* tables below the pgd (dmm_check counts them) */
	pthread_mutex_t anon_lock; /* serialises anon_vma_prepare under mmap_lock read */
	/* rss, sharded like the statistics: summed by dmm_mm_rss and dmm_check */
	struct dmm_rss_shard {
		_Atomic long v[DMM_NR_MM_COUNTERS];
	} __attribute__((aligned(CACHELINE))) rss[NR_SHARDS];
	_Atomic uint32_t write_protect_seq; /* odd while fork write-protects */
	struct dmm_list node;	/* in sys->mms, under sys->mm_list_lock */
	uint64_t mmap_base;	/* where bottom-up placement searches from */
	_Atomic long mm_count;	/* structure references: the process + subscriptions */
	_Atomic bool dead;	/* exited: no mappings any more */
	_Atomic bool huge_zero;	/* holds the huge zero folio (MMF_HUGE_ZERO_FOLIO) */
	struct dmm_notifier_state notif;
};

/* ------------------------------------------------------------------------ */
/* Files and shared memory                                                   */

struct dmm_file {
	struct dmm_system *sys;
	_Atomic long refcount;	/* caller + one per VMA */
	uint64_t npages;
	bool shmem;		/* backs MAP_SHARED|MAP_ANONYMOUS */
	pthread_mutex_t lock;	/* protects pages[] */
	struct dmm_page **pages; /* the page cache: one ref per cached page */
	pthread_rwlock_t i_mmap_lock; /* protects i_mmap */
	struct dmm_list i_mmap;	/* VMAs mapping the file (dmm_vma.file_node) */
	struct dmm_list node;	/* in sys->files, under sys->file_list_lock */
};

/* ------------------------------------------------------------------------ */
/* The system                                                                */

#define SECTION_SHIFT 15 /* 32768 frames = 128 MiB per section */
#define PAGES_PER_SECTION (1UL << SECTION_SHIFT)
/* 2^30 pfns = 4 TiB: room for DMM_MAX_SYSTEM_FRAMES of RAM (1 TiB) and
 * three times as much device memory above it. The two section arrays of
 * struct dmm_system (32 bytes per section, 1 MiB) are calloc'd: only the
 * entries of RAM and of registered pgmaps are ever written. */
#define MAX_PFN_BITS 30
#define NR_SECTIONS (1UL << (MAX_PFN_BITS - SECTION_SHIFT))

/* A section: the metadata and (for CPU-addressable memory) the contents of
 * PAGES_PER_SECTION consecutive pfns. Published once, read locklessly. */
struct dmm_section {
	struct dmm_page *pages;
	uint8_t *mem;	/* NULL for device-private memory */
	uint64_t nr;	/* valid pfns from the section's start */
};

/*
 * A range of device memory (dev_pagemap). Occupies whole sections of the
 * pfn space above RAM. Its pages' metadata is one array; coherent memory
 * also has contents (reserved lazily like RAM).
 */
struct dmm_pgmap {
	struct dmm_system *sys;
	enum dmm_memory_type type;
	uint64_t pfn_start, nr_pages;
	struct dmm_page *pages;
	uint8_t *mem;		/* COHERENT only */
	size_t mem_bytes;
	struct dmm_pgmap_ops ops;
	void *owner, *driver_data;
	_Atomic long ref;	/* allocated pages + transient get_dev_pagemap refs */
	_Atomic long transient;	/* of which transient (checked by dmm_check) */
	_Atomic bool dying;	/* memunmap in progress: no new pages or refs */
	pthread_mutex_t done_lock; /* with done_cond: wait for ref to reach 0 */
	pthread_cond_t done_cond;
	struct dmm_list node;	/* in sys->pgmaps, under sys->pgmap_lock */
	uint64_t check_base;	/* dmm_check's slot of the first page */
	/* Unregistered, the pgmap and its page metadata are freed a grace
	 * period later: a lockless walker (GUP-fast) may still look at a page
	 * whose entry it read before the page was freed. */
	struct rcu_head rcu;
	struct dmm_section sections[]; /* one per section covered */
};


struct dmm_frame_shard {
	pthread_mutex_t lock;
	uint64_t head;	/* pfn of the first free frame, 0 = empty */
	uint64_t count; /* frames on this list */
	uint64_t fresh_next, fresh_end; /* never-used frames taken from next_fresh */
	_Atomic int64_t used; /* frames allocated here minus frames freed here */
} __attribute__((aligned(CACHELINE)));

struct dmm_stat_shard {
#define DMM_STAT_ATOMIC(name, desc) _Atomic uint64_t name;
	DMM_STAT_LIST(DMM_STAT_ATOMIC)
#undef DMM_STAT_ATOMIC
} __attribute__((aligned(CACHELINE)));

/* Fault injection at one site (inject.c). */
struct dmm_inject_state {
	_Atomic long countdown;	 /* > 0: the countdown-th call from now fails */
	_Atomic uint32_t ppm;	 /* probability of failure, parts per million */
	_Atomic uint64_t rng;	 /* xorshift state for the probability mode */
	_Atomic uint64_t calls, injected;
};

#define WAIT_TABLE_SIZE 256

struct dmm_wait_bucket {
	pthread_mutex_t lock;
	pthread_cond_t cond;
} __attribute__((aligned(CACHELINE)));

struct dmm_system {
	uint64_t nr_frames;		/* allocatable frames: pfns 1..nr_frames */
	struct dmm_page *frames;	/* metadata of pfns 0..nr_frames */
	uint8_t *arena;			/* contents of pfns 0..nr_frames (pfn 0 = zero page) */
	size_t arena_bytes, meta_bytes;
	_Atomic(struct dmm_section *) sections[NR_SECTIONS];
	struct dmm_section sys_sections[NR_SECTIONS]; /* storage for RAM sections */

	struct dmm_frame_shard shards[NR_SHARDS];
	_Atomic uint64_t next_fresh;	/* first never-used pfn not in a shard */
	/* Free large blocks, by order (frame.c): a leaf lock, like the shards'. */
	struct dmm_large_free {
		pthread_mutex_t lock;
		uint64_t head[FOLIO_MAX_ORDER + 1]; /* first block's head pfn, 0 = none */
		uint64_t frames;		    /* frames in all the blocks */
	} large_free;
	/* Large anon folios queued for deferred split (large-folios.md §1.4):
	 * linked through their second tail's deferred_list. A leaf lock,
	 * taken under a PTL by rmap removals. */
	struct dmm_deferred_split {
		pthread_mutex_t lock;
		struct dmm_list queue;
		long len;
	} deferred_split;

	struct dmm_stat_shard stats[NR_SHARDS];
	struct dmm_wait_bucket waits[WAIT_TABLE_SIZE];

	pthread_mutex_t mm_list_lock;
	struct dmm_list mms;
	unsigned int next_mm_id;	/* under mm_list_lock */
	pthread_mutex_t file_list_lock;
	struct dmm_list files;

	pthread_mutex_t pgmap_lock;	/* protects pgmaps and pfn placement */
	struct dmm_list pgmaps;
	uint64_t device_pfn_base;	/* first section above RAM */

	struct dmm_inject_state inject[DMM_NR_INJECT_SITES];
	_Atomic int longterm_coherent;	/* enum dmm_longterm_coherent */
	_Atomic unsigned int mthp_orders; /* enabled mTHP orders (bit O = order O) */
	_Atomic unsigned int thp_mode;	/* enum dmm_thp_mode */
	_Atomic bool thp_huge_zero;	/* use_zero_page */
	_Atomic unsigned int thp_fail_next; /* order-9 core allocations left to fail */
	_Atomic(struct dmm_page *) huge_zero; /* the huge zero folio, made on first use */
	_Atomic long huge_zero_mms;	/* mms holding it (mm->huge_zero) */
};

#endif /* DEVMM_TYPES_H */
