/* SPDX-License-Identifier: MIT */
/*
 * The internal interface between devmm's layers (see docs/design.md):
 *
 *   frames:      system.c frame.c page.c memremap.c (device) stats.c inject.c
 *                rcu.c (grace periods for lockless readers)
 *   page tables: pgtable.c
 *   mm objects:  vma.c rmap.c file.c notifier.c
 *   operations:  fault.c memory.c (zap, exit) mmap.c mprotect.c madvise.c
 *                mremap.c fork.c access.c gup.c exclusive.c
 *   protocols:   migrate_device.c hmm.c
 *   observers:   check.c query.c
 *
 * A file calls down or sideways in its own layer. The exceptions are
 * deliberate and few: freeing a frame drops its anon_vma reference
 * (page.c -> vma.c), rmap walks fire invalidations (rmap.c -> notifier.c),
 * a long-term pin migrates (gup.c -> migrate_device.c), and destroying a
 * system ends its address spaces (system.c -> memory.c).
 */
#ifndef DEVMM_INTERNAL_H
#define DEVMM_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pte.h"
#include "types.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DMM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DMM_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PAGE_ALIGNED(x) (((x) & (PAGE_SIZE - 1)) == 0)

/* Cheap internal assertion that stays on in every build: an inconsistency
 * here means data could be lost, so stop at once. */
#define DMM_BUG_ON(cond)                                                                     \
	do {                                                                                 \
		if (unlikely(cond))                                                          \
			dmm_bug(__FILE__, __LINE__, #cond);                                  \
	} while (0)
__attribute__((visibility("hidden"))) _Noreturn void dmm_bug(const char *file, int line,
								 const char *what);

/* ------------------------------------------------------------------------ */
/* Lists                                                                     */

static inline void list_init(struct dmm_list *h) { h->prev = h->next = h; }
static inline bool list_empty(const struct dmm_list *h) { return h->next == h; }
static inline void list_add_tail(struct dmm_list *n, struct dmm_list *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void list_del(struct dmm_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define list_for_each(pos, head) for (pos = (head)->next; pos != (head); pos = pos->next)

/* ------------------------------------------------------------------------ */
/* Per-thread shard and statistics (stats.c)                                 */

__attribute__((visibility("hidden"))) unsigned int dmm_shard(void);
#define dmm_stat_add(sys, name, n) \
	atomic_fetch_add_explicit(&(sys)->stats[dmm_shard()].name, (uint64_t)(n), memory_order_relaxed)
#define dmm_stat_inc(sys, name) dmm_stat_add(sys, name, 1)

/* ------------------------------------------------------------------------ */
/* Grace periods for lockless readers (rcu.c; docs/locking.md lists them)   */

/* Enter / leave a read section: objects reached through a published
 * pointer stay allocated until the section ends. Cheap (a store and a
 * fence on the thread's own cache line), nestable, never blocks. */
void rcu_read_lock(void);
void rcu_read_unlock(void);
bool rcu_read_lock_held(void);
/* Wait until every read section that began before the call has ended.
 * Not from inside a read section. */
void synchronize_rcu(void);
/* Run func(head) after a grace period (it may only free memory). Only
 * queues, so it may be called under any lock: the queue is drained by
 * rcu_drain_if_due or rcu_barrier. */
void call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head));
/* Drain the queue (one grace period) once it holds a batch. Called by the
 * public calls that queue frees, on their way out, holding no devmm lock;
 * not from inside a read section (it then does nothing). */
void rcu_drain_if_due(void);
/* Wait a grace period and run every callback queued before the call. Not
 * from inside a read section. */
void rcu_barrier(void);
/* Callbacks queued and not yet run; reader slots ever created; the
 * grace-period counter, which each synchronize_rcu advances as it begins
 * (tests). */
unsigned long rcu_pending(void);
unsigned int rcu_nr_slots(void);
uint64_t rcu_gp_seq(void);

/* ------------------------------------------------------------------------ */
/* Fault injection (inject.c)                                                */

bool should_fail_slow(struct dmm_system *sys, enum dmm_inject_site site);
/* Should this allocation at site fail? Cheap when nothing is armed. */
static inline bool should_fail(struct dmm_system *sys, enum dmm_inject_site site)
{
	struct dmm_inject_state *st = &sys->inject[site];

	if (likely(!atomic_load_explicit(&st->countdown, memory_order_relaxed) &&
		   !atomic_load_explicit(&st->ppm, memory_order_relaxed)))
		return false;
	return should_fail_slow(sys, site);
}
/* calloc/malloc that honour the META injection site. */
void *meta_calloc(struct dmm_system *sys, size_t n, size_t size);

/* ------------------------------------------------------------------------ */
/* Frames (system.c, frame.c, page.c)                                        */

static inline struct dmm_page *pfn_to_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_section *s;

	if (pfn >> MAX_PFN_BITS)
		return NULL;
	s = atomic_load_explicit(&sys->sections[pfn >> SECTION_SHIFT], memory_order_acquire);
	if (!s || (pfn & (PAGES_PER_SECTION - 1)) >= s->nr)
		return NULL;
	return &s->pages[pfn & (PAGES_PER_SECTION - 1)];
}
uint64_t page_to_pfn(struct dmm_system *sys, const struct dmm_page *page);
/* The CPU-addressable contents of a frame; NULL for device-private frames. */
void *page_address(struct dmm_system *sys, const struct dmm_page *page);

/*
 * Folios (types.h, docs/large-folios.md). page_folio() is the head of the
 * folio a frame belongs to: one load and a branch that order-0 frames
 * always take the same way. Tails are stable while the caller holds a
 * reference on the folio, its lock, or the PTL of an entry mapping it.
 */
static inline struct dmm_page *page_folio(const struct dmm_page *p)
{
	uintptr_t h = atomic_load_explicit(&((struct dmm_page *)p)->compound_head, memory_order_relaxed);

	if (likely(!(h & 1)))
		return (struct dmm_page *)p;
	return (struct dmm_page *)(h - 1);
}
static inline bool page_is_tail(const struct dmm_page *p)
{
	return atomic_load_explicit(&((struct dmm_page *)p)->compound_head, memory_order_relaxed) & 1;
}
/* The order of folio @f (a head or an order-0 frame). */
static inline unsigned int folio_order(const struct dmm_page *f)
{
	return (unsigned int)(atomic_load_explicit(&((struct dmm_page *)f)->compound_head, memory_order_relaxed) >> 1);
}
static inline bool folio_test_large(const struct dmm_page *f)
{
	return atomic_load_explicit(&((struct dmm_page *)f)->compound_head, memory_order_relaxed) != 0;
}
static inline uint64_t folio_nr_pages(const struct dmm_page *f) { return 1ull << folio_order(f); }
/* Page @i of folio @f. */
static inline struct dmm_page *folio_page(struct dmm_page *f, uint64_t i) { return f + i; }
static inline uint64_t folio_page_idx(const struct dmm_page *f, const struct dmm_page *p)
{
	return (uint64_t)(p - f);
}

/*
 * Flags: the folio-wide bits live on the head, the per-page bits below on
 * each frame. page_test/page_set/page_clear send each bit where it lives
 * (the split is a constant for constant @f); page_flags reads one frame's
 * word as it is.
 */
#define PG_PER_PAGE (PG_anon_exclusive | PG_free | PG_zone_device | PG_reserved)
static inline uint32_t page_flags(const struct dmm_page *p)
{
	return atomic_load_explicit(&((struct dmm_page *)p)->flags, memory_order_acquire);
}
static inline bool page_test(const struct dmm_page *p, uint32_t f)
{
	uint32_t r = 0;

	if (f & PG_PER_PAGE)
		r |= page_flags(p) & f & PG_PER_PAGE;
	if (f & ~PG_PER_PAGE)
		r |= page_flags(page_folio(p)) & f & ~PG_PER_PAGE;
	return r;
}
static inline void page_set(struct dmm_page *p, uint32_t f)
{
	if (f & PG_PER_PAGE)
		atomic_fetch_or(&p->flags, f & PG_PER_PAGE);
	if (f & ~PG_PER_PAGE)
		atomic_fetch_or(&page_folio(p)->flags, f & ~PG_PER_PAGE);
}
static inline void page_clear(struct dmm_page *p, uint32_t f)
{
	if (f & PG_PER_PAGE)
		atomic_fetch_and(&p->flags, ~(f & PG_PER_PAGE));
	if (f & ~PG_PER_PAGE)
		atomic_fetch_and(&page_folio(p)->flags, ~(f & ~PG_PER_PAGE));
}
static inline bool page_is_anon(const struct dmm_page *p) { return page_test(p, PG_anon); }
static inline bool page_is_zone_device(const struct dmm_page *p) { return page_test(p, PG_zone_device); }
/* The zero page or a page of the huge zero folio: never counted. */
static inline bool page_is_zero(struct dmm_system *sys, const struct dmm_page *p)
{
	return p == &sys->frames[0] ||
	       unlikely(atomic_load_explicit(&((struct dmm_page *)p)->flags, memory_order_relaxed) & PG_reserved);
}
/* The identity of a frame: its folio's mapping, and its own index in it. */
static inline void *page_mapping(const struct dmm_page *p) { return page_folio(p)->mapping; }
static inline uint64_t page_index(const struct dmm_page *p)
{
	const struct dmm_page *f = page_folio(p);

	return f->index + folio_page_idx(f, p);
}

/* References are the folio's, whichever page they are taken through. */
static inline uint32_t folio_ref_count(const struct dmm_page *f)
{
	return atomic_load_explicit(&((struct dmm_page *)f)->refcount, memory_order_acquire);
}
static inline uint32_t page_ref_count(const struct dmm_page *p) { return folio_ref_count(page_folio(p)); }
/* Entries mapping any page of folio @f (a PMD counts 1). */
static inline int32_t folio_mapcount(const struct dmm_page *f)
{
	if (likely(!folio_test_large(f)))
		return atomic_load_explicit(&((struct dmm_page *)f)->mapcount, memory_order_acquire);
	return atomic_load_explicit(&((struct dmm_page *)f)[1].large_mapcount, memory_order_acquire);
}
static inline int32_t folio_entire_mapcount(const struct dmm_page *f)
{
	if (!folio_test_large(f))
		return 0;
	return atomic_load_explicit(&((struct dmm_page *)f)[1].entire_mapcount, memory_order_acquire);
}
static inline int32_t folio_nr_pages_mapped(const struct dmm_page *f)
{
	if (!folio_test_large(f))
		return 0;
	return atomic_load_explicit(&((struct dmm_page *)f)[1].nr_pages_mapped, memory_order_acquire);
}
static inline uint32_t folio_pincount(const struct dmm_page *f)
{
	return atomic_load_explicit(&((struct dmm_page *)f)->pincount, memory_order_acquire);
}
/* The entries mapping page @p: its PTEs, plus the PMDs mapping its whole
 * folio (folio_precise_page_mapcount). For order 0, the folio's. */
static inline int32_t page_mapcount(const struct dmm_page *p)
{
	int32_t n = atomic_load_explicit(&((struct dmm_page *)p)->mapcount, memory_order_acquire);
	const struct dmm_page *f = page_folio(p);

	if (unlikely(folio_test_large(f)))
		n += folio_entire_mapcount(f);
	return n;
}
static inline void page_ref_add(struct dmm_page *p, uint32_t n) { atomic_fetch_add(&page_folio(p)->refcount, n); }
static inline void get_page(struct dmm_page *p) { page_ref_add(p, 1); }
/* Take a reference on @p's folio unless the frame is free (lockless
 * lookups; try_get_folio's recheck included): the folio, or NULL. */
struct dmm_page *get_page_unless_zero(struct dmm_system *sys, struct dmm_page *p);
/* Add @n references to folio @f itself unless it is free (-EAGAIN) or the
 * count would pass PAGE_REF_MAX (-ENOMEM); on failure nothing changed.
 * @f must be a folio the caller knows stays one (it holds a reference, or
 * the lock of something that does): a lockless caller that only has a
 * page uses try_get_folio. */
static inline int folio_ref_try_add(struct dmm_page *f, uint32_t n)
{
	uint32_t old = atomic_load_explicit(&f->refcount, memory_order_relaxed);

	do {
		if (old == 0)
			return -EAGAIN;
		if (old > PAGE_REF_MAX || n > PAGE_REF_MAX - old)
			return -ENOMEM;
	} while (!atomic_compare_exchange_weak_explicit(&f->refcount, &old, old + n,
							memory_order_acquire, memory_order_relaxed));
	return 0;
}
/* Drop @n references; the last one frees the folio. */
void put_page_refs(struct dmm_system *sys, struct dmm_page *p, uint32_t n);
/* Tests only: runs in try_get_folio between reading the page's folio and
 * taking the references, the window the recheck closes. */
typedef void (*folio_get_hook_fn)(struct dmm_page *page, struct dmm_page *folio);
extern _Atomic(folio_get_hook_fn) try_get_folio_hook;
/*
 * Add @n references to the folio of page @p, for a caller that reached @p
 * without holding anything that pins its folio (GUP-fast, driver lookups
 * by pfn): 0 with *@foliop the folio that got them, -EAGAIN (the frame is
 * free) or -ENOMEM (overflow), nothing taken. Between page_folio() and the
 * add, the folio may be freed and its frames reused as other folios, so
 * the add can land on a folio that no longer holds @p: after it, @p must
 * still belong to that folio, else exactly what was added goes back and
 * the lookup starts over (the kernel's try_get_folio). Checking an entry
 * that mapped @p afterwards is not enough: it only says @p is mapped
 * again, not that the references went to @p's folio. Inline: GUP-fast
 * takes one per page.
 */
static inline int try_get_folio(struct dmm_system *sys, struct dmm_page *p, uint32_t n,
				struct dmm_page **foliop)
{
	for (;;) {
		struct dmm_page *f = page_folio(p);
		folio_get_hook_fn hook = atomic_load_explicit(&try_get_folio_hook, memory_order_relaxed);
		int r;

		if (unlikely(hook))
			hook(p, f);
		r = folio_ref_try_add(f, n);
		if (r)
			return r;
		if (likely(page_folio(p) == f)) {
			*foliop = f;
			return 0;
		}
		put_page_refs(sys, f, n);
	}
}
static inline void put_page(struct dmm_system *sys, struct dmm_page *p) { put_page_refs(sys, p, 1); }
/* "Maybe DMA-pinned" as the kernel decides it: order 0 by the 1024 bias
 * of the refcount, a large folio by its exact pincount. */
static inline bool page_maybe_dma_pinned(const struct dmm_page *p)
{
	const struct dmm_page *f = page_folio(p);

	if (unlikely(folio_test_large(f)))
		return folio_pincount(f) > 0;
	return folio_ref_count(f) >= GUP_PIN_COUNTING_BIAS;
}

/* The folio lock: a sleeping bit lock with hashed wait queues. */
bool trylock_page(struct dmm_page *p);
void lock_page(struct dmm_system *sys, struct dmm_page *p);
void unlock_page(struct dmm_system *sys, struct dmm_page *p);
/* Sleep until the frame is unlocked (without taking the lock). */
void wait_on_page_locked(struct dmm_system *sys, struct dmm_page *p);
static inline bool page_locked(const struct dmm_page *p) { return page_test(p, PG_locked); }
/* (They all act on the page's folio.) */

/* Allocate one system frame (refcount 1, no mapping), zeroed on request.
 * NULL when no frame is free. */
#define GFP_ZERO 0x1
struct dmm_page *frame_alloc(struct dmm_system *sys, unsigned int gfp);
/* Return a frame whose refcount reached 0 to the allocator. */
void frame_free(struct dmm_system *sys, struct dmm_page *p);
/* Allocate a folio of @order (0, or FOLIO_MIN_LARGE_ORDER..FOLIO_MAX_ORDER):
 * 2^order frames with an order-aligned head pfn, refcount 1 on the head,
 * zeroed on request. NULL when no such block is free. */
struct dmm_page *folio_alloc(struct dmm_system *sys, unsigned int order, unsigned int gfp);
/* Make [f, f + 2^order) one large folio (the frames are the caller's). */
void folio_prep_large(struct dmm_page *f, unsigned int order);
/* Return a large folio whose refcount reached 0 to the allocator. */
void folio_free_large(struct dmm_system *sys, struct dmm_page *f);
/* Walk the allocator's lists (check.c): calls fn for every free pfn. */
void frame_for_each_free(struct dmm_system *sys, void (*fn)(uint64_t pfn, bool fresh, void *arg), void *arg);
/* The free frames the lists' counters add up to (shards, large blocks,
 * never-used memory), for dmm_check to compare with the frames listed. */
uint64_t frame_nr_listed(struct dmm_system *sys);
/* The frames in the blocks on the large free lists, by walking them, and
 * what large_free.frames says, read under one hold of its lock. */
void frame_large_listed(struct dmm_system *sys, uint64_t *walked, uint64_t *counted);
/* Frames allocated now (a sum over the shards). */
int64_t frames_used(struct dmm_system *sys);
void frames_init(struct dmm_system *sys);
void wait_table_init(struct dmm_system *sys);
void wait_table_destroy(struct dmm_system *sys);

/* Device memory (memremap.c). */
void free_zone_device_page(struct dmm_system *sys, struct dmm_page *p);
void pgmaps_destroy(struct dmm_system *sys);
static inline bool page_is_device_private(const struct dmm_page *p)
{
	return page_is_zone_device(p) && p->pgmap->type == DMM_MEMORY_DEVICE_PRIVATE;
}
static inline bool page_is_device_coherent(const struct dmm_page *p)
{
	return page_is_zone_device(p) && p->pgmap->type == DMM_MEMORY_DEVICE_COHERENT;
}
/* Transient pgmap references (no page reference involved). */
void pgmap_ref_get(struct dmm_pgmap *pgmap);
void pgmap_ref_put(struct dmm_pgmap *pgmap);

/*
 * Simulated memory is shared like real memory: two processes may race on a
 * shared page (a CPU atomic against a copy-on-write copy, say), and the
 * hardware would give either value. Under ThreadSanitizer such copies go
 * through relaxed atomics so that TSan reports races of devmm's own data,
 * not the races it simulates; elsewhere they are plain copies.
 */
#if defined(__SANITIZE_THREAD__)
#define DMM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DMM_TSAN 1
#endif
#endif

/* A full fence (smp_mb), for store-then-load handshakes between lockless
 * paths. gcc's ThreadSanitizer does not model fences (and refuses them);
 * TSan checks happens-before, which these fences do not provide, so TSan
 * builds leave them out (the read-modify-writes beside each use are full
 * barriers on the hardware these builds run on). */
static inline void smp_mb(void)
{
#ifndef DMM_TSAN
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

static inline void sim_memcpy(void *dst, const void *src, size_t n)
{
#ifdef DMM_TSAN
	if (!(((uintptr_t)dst | (uintptr_t)src | n) & 3)) {
		for (size_t i = 0; i < n / 4; i++)
			__atomic_store_n((uint32_t *)dst + i, __atomic_load_n((const uint32_t *)src + i, __ATOMIC_RELAXED),
					 __ATOMIC_RELAXED);
		return;
	}
	for (size_t i = 0; i < n; i++)
		__atomic_store_n((uint8_t *)dst + i, __atomic_load_n((const uint8_t *)src + i, __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
#else
	memcpy(dst, src, n);
#endif
}

static inline void sim_memset0(void *dst, size_t n)
{
#ifdef DMM_TSAN
	for (size_t i = 0; i < n; i++)
		__atomic_store_n((uint8_t *)dst + i, 0, __ATOMIC_RELAXED);
#else
	memset(dst, 0, n);
#endif
}

/* Copy or clear a page of memory (page aligned), streaming where possible. */
void copy_page_mem(void *dst, const void *src);
void clear_page_mem(void *dst);
/* Copy a frame's contents (both must be CPU-addressable). */
void copy_page_contents(struct dmm_system *sys, struct dmm_page *dst, struct dmm_page *src);

/* ------------------------------------------------------------------------ */
/* Page tables (pgtable.c)                                                   */

static inline unsigned int pt_index(uint64_t addr, int level)
{
	return (addr >> (PAGE_SHIFT + PT_BITS * level)) & (PTRS_PER_TABLE - 1);
}
/* Span of one entry of a level-@level directory (1: a PMD slot, 2 MiB). */
static inline uint64_t pt_level_span(int level) { return PAGE_SIZE << (PT_BITS * level); }

/* A PMD range: 2 MiB, 512 pages (large-folios.md §0). */
#define HPAGE_PMD_ORDER FOLIO_MAX_ORDER
#define HPAGE_PMD_NR (1u << HPAGE_PMD_ORDER)
#define HPAGE_PMD_SIZE (PAGE_SIZE << HPAGE_PMD_ORDER)
#define HPAGE_PMD_MASK (~(HPAGE_PMD_SIZE - 1))
#define PTE_TABLE_SPAN (PAGE_SIZE * PTRS_PER_TABLE) /* 2 MiB */
static inline uint64_t pte_table_end(uint64_t addr, uint64_t end)
{
	uint64_t next = (addr & ~(PTE_TABLE_SPAN - 1)) + PTE_TABLE_SPAN;
	return next < end ? next : end;
}

/*
 * PMD slots (types.h struct dmm_pte_table, pte.h "PMD slot word"). The
 * tables found stay while the caller holds the mmap_lock, or walks inside
 * a VMA it found under an rmap lock, or is in an RCU read section
 * (GUP-fast): munmap frees tables only under the mmap_lock (write), only
 * where no VMA is left, and only after a grace period. All lockless.
 *
 * pmd_lookup: the slot's table (NULL: none) and, in *pmd, its word read
 * with acquire (PMD_NONE where there is no table).
 * pte_lookup: the PTE table of a single-address user, NULL where the slot
 * is NONE; a PMD leaf there is split first (split_huge_pmd). rmap
 * callbacks, which must not split other processes' leaves, use pmd_lookup.
 * pte_alloc: the PTE table covering @addr, allocated if missing, its slot
 * turned from NONE into TABLE under the PTL; NULL: out of memory.
 * pmd_alloc: the slot's table, allocated if missing, its word unchanged
 * (a new one is NONE): the lock holder of a slot that may get a leaf.
 */
static inline pte_t pmd_get(struct dmm_pte_table *t) { return atomic_load_explicit(&t->pmd, memory_order_acquire); }
/* ptl held */
static inline void pmd_set(struct dmm_pte_table *t, pte_t pmd) { atomic_store_explicit(&t->pmd, pmd, memory_order_release); }
struct dmm_pte_table *pmd_lookup(struct dmm_mm *mm, uint64_t addr, pte_t *pmd);
struct dmm_pte_table *pmd_alloc(struct dmm_mm *mm, uint64_t addr);
struct dmm_pte_table *pte_alloc(struct dmm_mm *mm, uint64_t addr);
/* A PMD leaf where a PTE-level user meets one is split (see above). */
struct dmm_pte_table *pte_lookup(struct dmm_mm *mm, uint64_t addr);
static inline _Atomic pte_t *pte_slot(struct dmm_pte_table *t, uint64_t addr)
{
	return &t->ent[pt_index(addr, 0)];
}
static inline pte_t pte_get(_Atomic pte_t *slot) { return atomic_load_explicit(slot, memory_order_acquire); }
static inline void pte_set(_Atomic pte_t *slot, pte_t e) { atomic_store_explicit(slot, e, memory_order_release); }
static inline void ptl_lock(struct dmm_pte_table *t)
{
	pthread_mutex_lock(&t->ptl);
#ifdef DMM_LOCKDEP
	atomic_store_explicit(&t->ptl_owner, lockdep_thread_tag(), memory_order_relaxed);
#endif
}
static inline void ptl_unlock(struct dmm_pte_table *t)
{
#ifdef DMM_LOCKDEP
	atomic_store_explicit(&t->ptl_owner, 0, memory_order_relaxed);
#endif
	pthread_mutex_unlock(&t->ptl);
}

/*
 * The page walker (pagewalk.c), in the kernel's mm_walk_ops style:
 * walk_page_range(mm, start, end, ops, private) visits [start, end) in
 * address order and returns the first non-zero return of a callback (0
 * when the walk ran to the end).
 *
 * pte_hole(addr, next, level, walk): [addr, next) has nothing under it:
 *   no entry in a level-@level directory (PT_LEVELS - 1 .. 2), or a PMD
 *   slot (@level 1) that has no table or whose word is PMD_NONE. Once per
 *   empty entry, clipped to the range; adjacent holes are not merged.
 * pmd_entry(t, pmd, addr, next, walk): a PMD slot over [addr, next) whose
 *   word @pmd (read with acquire, no lock held) is TABLE or a leaf. It
 *   sets walk->action: ACTION_SUBTREE (the default) goes down to the PTEs,
 *   ACTION_CONTINUE goes on to the next slot (the callback handled this
 *   one, e.g. by walking the PTEs itself under the PTL, as zap does),
 *   ACTION_AGAIN reads the slot again and calls pmd_entry again (the word
 *   changed under the callback). A word other than TABLE can change until
 *   the PTL is taken: a callback that acts on it re-reads it under t's PTL.
 * pte_entry(pte, e, addr, walk): each entry of a TABLE slot the walk goes
 *   down into, none entries included; @e was read with acquire. With
 *   MM_WALK_PTL in ops->flags the walker holds t's PTL around the calls
 *   for [addr, next) of the table and @e was read under it: the callback
 *   may change the entry (pte_set) and try a folio lock (trylock_page, as
 *   migrate_vma's collect does under the PTL), but must not sleep, fault,
 *   or take the mmap_lock, a folio lock or another PTL (lock order); the
 *   walker drops the PTL before it returns a non-zero value. Without the
 *   flag no lock is held and the callback may take t's PTL itself
 *   (GUP-fast, which holds none, runs inside an RCU read section).
 *
 * Going down into a PMD leaf (ACTION_SUBTREE on a leaf, or a walker with a
 * pte_entry and no pmd_entry meeting one) is the one place where a walker
 * meets a leaf it does not handle: the walk splits it (split_huge_pmd)
 * and walks the slot again, at PTE level. A pmd_entry
 * that walks the PTEs itself leaves a leaf to that place by returning with
 * ACTION_SUBTREE.
 *
 * The caller holds the mmap_lock (read or write) or, without it, walks
 * only inside an RCU read section (GUP-fast) or inside a VMA found under an
 * rmap lock: tables stay (see pte_lookup). Callbacks run without the
 * mmap_lock being taken by the walker; a callback that faults returns
 * non-zero, and the caller faults and walks again.
 */
enum page_walk_action {
	ACTION_SUBTREE = 0,  /* go down to this slot's PTEs */
	ACTION_CONTINUE = 1, /* done with this slot: on to the next one */
	ACTION_AGAIN = 2,    /* read the slot again and call pmd_entry again */
};
#define MM_WALK_PTL (1u << 0) /* pte_entry runs under the table's PTL */
struct mm_walk;
struct mm_walk_ops {
	int (*pmd_entry)(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t next, struct mm_walk *walk);
	int (*pte_entry)(_Atomic pte_t *pte, pte_t e, uint64_t addr, struct mm_walk *walk);
	int (*pte_hole)(uint64_t addr, uint64_t next, int level, struct mm_walk *walk);
	unsigned int flags; /* MM_WALK_* */
};
struct mm_walk {
	const struct mm_walk_ops *ops;
	struct dmm_mm *mm;
	void *private;		     /* the caller's, as passed to walk_page_range */
	enum page_walk_action action; /* set by pmd_entry */
};
int walk_page_range(struct dmm_mm *mm, uint64_t start, uint64_t end, const struct mm_walk_ops *ops,
		    void *private);

void pgtable_free_all(struct dmm_mm *mm);
/* The end of the address space the four levels translate. */
#define PGTABLE_TOP (PAGE_SIZE << (PT_BITS * PT_LEVELS))
/* Unlink every table that covers part of [start, end) and lies wholly
 * inside [floor, ceiling), the hole between the VMAs left around it, and
 * free it after a grace period. mmap_lock held for write; the VMAs that
 * were there already unlinked from their anon_vma and file; every entry
 * in the hole zapped. */
void free_pgtables(struct dmm_mm *mm, uint64_t start, uint64_t end, uint64_t floor, uint64_t ceiling);
/* Visit every table below the pgd (dmm_check): fn gets the table (a
 * struct dmm_pte_table at level 0, a struct dmm_pt_dir above), the span of
 * addresses it translates and its level (0: a PMD slot's table, whatever
 * its word). Returns the number of tables. mmap_lock held. */
typedef void (*pgtable_fn)(void *arg, void *table, uint64_t start, uint64_t end, int level);
unsigned long walk_pgtables(struct dmm_mm *mm, pgtable_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* VMAs, anon_vma, rmap (vma.c, rmap.c)                                      */

static inline bool vma_is_anonymous(const struct dmm_vma *v) { return v->file == NULL; }
static inline bool is_cow_mapping(unsigned long flags)
{
	return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}
/* The protection bits of a present entry under @vm_flags (vm_page_prot):
 * a PROT_NONE VMA gets PROT_NONE entries, a write-only VMA not-readable
 * ones, so that GUP-fast and anything else that looks at the entry alone
 * sees the VMA's permissions. Whoever makes a present entry adds them: a
 * fault (FOLL_FORCE included), fork, a migration, mprotect. */
static inline uint64_t vm_prot_bits(unsigned long vm_flags)
{
	if (!(vm_flags & VM_ACCESS_FLAGS))
		return _PTE_PROTNONE;
	return (vm_flags & VM_READ) ? 0 : _PTE_NOREAD;
}
/* A VMA's flags change under its mm's mmap_lock (write), but rmap walkers
 * from other mms read them (remove_migration_pte makes entries with
 * vma_prot_bits) holding only the PTL, as the kernel reads vm_page_prot: the
 * writer stores before it walks the page tables under the PTL, so a reader
 * either sees the new flags or makes an entry that the walk then changes.
 * Both sides are single-copy atomic (READ_ONCE/WRITE_ONCE). */
static inline unsigned long vma_flags_read(const struct dmm_vma *v)
{
	return __atomic_load_n(&v->flags, __ATOMIC_RELAXED);
}
static inline void vma_flags_write(struct dmm_vma *v, unsigned long flags)
{
	__atomic_store_n(&v->flags, flags, __ATOMIC_RELAXED);
}
static inline uint64_t vma_prot_bits(const struct dmm_vma *v) { return vm_prot_bits(vma_flags_read(v)); }
static inline uint64_t vma_pages(const struct dmm_vma *v) { return (v->end - v->start) >> PAGE_SHIFT; }
static inline uint64_t linear_page_index(const struct dmm_vma *v, uint64_t addr)
{
	return v->pgoff + ((addr - v->start) >> PAGE_SHIFT);
}

/* The VMA containing addr, or the first one above it, or NULL. O(log n). */
struct dmm_vma *find_vma(struct dmm_mm *mm, uint64_t addr);
/* The VMA after / before vma in address order, or NULL. O(log n). */
struct dmm_vma *vma_next(struct dmm_mm *mm, const struct dmm_vma *vma);
struct dmm_vma *vma_prev(struct dmm_mm *mm, const struct dmm_vma *vma);
/* Each VMA v of mm that overlaps [start, end), in address order. The body
 * must not unlink v (take the next one first where it does). */
#define for_each_vma_range(mm, v, from, to)                                     \
	for ((v) = find_vma((mm), (from)); (v) && (v)->start < (to); (v) = vma_next((mm), (v)))
/* Each VMA of mm, in address order. */
#define for_each_vma(mm, v) for_each_vma_range((mm), (v), 0, UINT64_MAX)
/* The VMA containing addr or NULL. */
struct dmm_vma *vma_lookup(struct dmm_mm *mm, uint64_t addr);
struct dmm_vma *vma_alloc(struct dmm_mm *mm, uint64_t start, uint64_t end, unsigned long flags,
			  struct dmm_file *file, uint64_t pgoff);
/* Link a new VMA into mm's tree, its anon_vma and its file. */
int vma_link(struct dmm_mm *mm, struct dmm_vma *vma);
/* Unlink from mm, anon_vma and file, and free. */
void vma_unlink_free(struct dmm_mm *mm, struct dmm_vma *vma);
void vma_drop_anon_vma(struct dmm_vma *vma);
/* Hold the rmap locks (anon_vma, i_mmap) of a VMA for writing: bounds and
 * entries that rmap walkers look at change atomically for them. */
void rmap_lock_vma(struct dmm_vma *v);
void rmap_unlock_vma(struct dmm_vma *v);
/* Split vma at addr; vma keeps [start, addr), the returned one [addr, end). */
struct dmm_vma *split_vma(struct dmm_mm *mm, struct dmm_vma *vma, uint64_t addr);
/* Split so that VMAs begin at start and end at end (when inside them). */
int vma_split_range(struct dmm_mm *mm, uint64_t start, uint64_t end);
/* Merge the VMAs around [start, end) with compatible neighbours. */
void vma_merge_range(struct dmm_mm *mm, uint64_t start, uint64_t end);
/* Make sure vma->anon_vma exists (mmap_lock read is enough). 0 / -ENOMEM. */
int anon_vma_prepare(struct dmm_vma *vma);
void anon_vma_get(struct dmm_anon_vma *av);
void anon_vma_put(struct dmm_anon_vma *av);
void file_get(struct dmm_file *f);

/*
 * rmap accounting (rmap.c), in the kernel's shape: @folio is page_folio(@page),
 * @nr consecutive pages of it from @page are mapped or unmapped by PTEs; the
 * _pmd variants account a PMD mapping the whole (order-9) folio. Callers
 * hold the PTL of the entries they change. They keep the counters of
 * large-folios.md §1.2 and queue a large anon folio that becomes partially
 * mapped for deferred split (§1.4).
 */
#define RMAP_NONE 0u
#define RMAP_EXCLUSIVE 1u /* the new mapping is exclusive (AnonExclusive) */
/* A new anon folio's first mapping: PTEs on every page (order < 9) or one
 * PMD (order 9); sets the identity from @vma at @addr. */
void folio_add_new_anon_rmap(struct dmm_page *folio, struct dmm_vma *vma, uint64_t addr, unsigned int flags);
void folio_add_anon_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
			      struct dmm_vma *vma, uint64_t addr, unsigned int flags);
void folio_add_anon_rmap_pmd(struct dmm_page *folio, struct dmm_vma *vma, uint64_t addr, unsigned int flags);
void folio_add_file_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
			      struct dmm_vma *vma);
/* fork: a second mapping of @nr anon pages, which become shared; -EBUSY
 * (nothing changed) when one is exclusive and the folio may be pinned
 * (not for device-private folios): the caller copies instead. */
int folio_try_dup_anon_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
				 struct dmm_vma *src_vma);
/* fork of a PMD mapping: the same for the whole folio, whose head's
 * exclusivity is the one that counts. */
int folio_try_dup_anon_rmap_pmd(struct dmm_page *folio, struct dmm_vma *src_vma);
void folio_dup_file_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr);
void folio_remove_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
			    struct dmm_vma *vma);
void folio_remove_rmap_pmd(struct dmm_page *folio, struct dmm_vma *vma);
#define folio_add_anon_rmap_pte(folio, page, vma, addr, flags) \
	folio_add_anon_rmap_ptes(folio, page, 1, vma, addr, flags)
#define folio_add_file_rmap_pte(folio, page, vma) folio_add_file_rmap_ptes(folio, page, 1, vma)
#define folio_try_dup_anon_rmap_pte(folio, page, src_vma) folio_try_dup_anon_rmap_ptes(folio, page, 1, src_vma)
#define folio_dup_file_rmap_pte(folio, page) folio_dup_file_rmap_ptes(folio, page, 1)
#define folio_remove_rmap_pte(folio, page, vma) folio_remove_rmap_ptes(folio, page, 1, vma)
/* The deferred-split queue (sys->deferred_split): add (marking the folio
 * partially mapped on request), and take off (a folio being freed or
 * split). */
void deferred_split_folio(struct dmm_system *sys, struct dmm_page *folio, bool partially_mapped);
void folio_unqueue_deferred_split(struct dmm_system *sys, struct dmm_page *folio);
/* Migration (rmap.c): the page is locked by the caller. */
pte_t make_migration_entry_from(struct dmm_page *p, pte_t e, bool anon_exclusive);
void try_to_migrate(struct dmm_system *sys, struct dmm_page *p);
void remove_migration_ptes(struct dmm_system *sys, struct dmm_page *src, struct dmm_page *dst);
/* As remove_migration_ptes; RMP_USE_SHARED_ZEROPAGE (src == dst, an
 * order-0 piece of a split folio): a zero-filled page is mapped as the
 * shared zero page instead (rss -1). */
#define RMP_USE_SHARED_ZEROPAGE 1u
void remove_migration_ptes_flags(struct dmm_system *sys, struct dmm_page *src, struct dmm_page *dst,
				 unsigned int flags);
/* Folio split (huge_memory.c, large-folios.md §2.4): @folio is a large
 * anon folio, locked, and the caller holds a reference on it. Splits it
 * into order-0 folios; afterwards the piece holding @lock_at (a page of
 * the folio) keeps the caller's lock and reference, every other piece is
 * unlocked and holds only its mappings' references. 0, -EINVAL (not a
 * large anon folio that may split), -EBUSY (no anon_vma), -EAGAIN (extra
 * references: nothing changed, or the folio is remapped as it was). */
int split_folio_at(struct dmm_system *sys, struct dmm_page *folio, struct dmm_page *lock_at);
static inline int split_folio(struct dmm_system *sys, struct dmm_page *folio)
{
	return split_folio_at(sys, folio, folio);
}
/* Run the deferred-split queue once: the number of folios split, or
 * -ENOMEM (dmm_deferred_split_scan). No locks held. */
long deferred_split_scan(struct dmm_system *sys);
/* t's PTL held: replace src's migration entry at addr, in vma, by dst. */
bool remove_migration_pte_locked(struct dmm_system *sys, struct dmm_vma *vma, struct dmm_pte_table *t,
				 uint64_t addr, struct dmm_page *src, struct dmm_page *dst);
/* migrate_device.c: move a device-coherent page to system RAM for a
 * long-term pin; consumes the caller's reference. 0 or -EBUSY. */
int migrate_device_coherent_page(struct dmm_system *sys, struct dmm_page *p);

/* The rss counter of a page mapped in vma. */
enum dmm_rss_type mm_counter(struct dmm_vma *vma, struct dmm_page *p);
static inline void add_mm_counter(struct dmm_mm *mm, enum dmm_rss_type t, long n)
{
	atomic_fetch_add_explicit(&mm->rss[dmm_shard()].v[t], n, memory_order_relaxed);
}
long mm_rss_sum(struct dmm_mm *mm, enum dmm_rss_type t);

/* ------------------------------------------------------------------------ */
/* Files (file.c)                                                            */

struct dmm_file *file_alloc(struct dmm_system *sys, uint64_t npages, bool shmem);
/* The page-cache page at index (created zeroed if absent), with a ref for
 * the caller. 0, -ENOMEM, or -EFAULT beyond the end of the file. */
int filemap_get_page(struct dmm_file *f, uint64_t index, struct dmm_page **out);
/* Drop every page-cache page (the file is being freed). */
void filemap_release(struct dmm_file *f);

/* ------------------------------------------------------------------------ */
/* Faults (fault.c)                                                          */

typedef unsigned int vm_fault_t;
#define VM_FAULT_OOM 0x0001
#define VM_FAULT_SIGBUS 0x0002
#define VM_FAULT_SIGSEGV 0x0004
#define VM_FAULT_RETRY 0x0008
#define VM_FAULT_ERROR (VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)

#define FAULT_FLAG_WRITE 0x1
#define FAULT_FLAG_UNSHARE 0x2
#define FAULT_FLAG_REMOTE 0x4

/* Resolve one fault at addr in vma (mmap_lock held for read). The caller
 * checked the VMA's permissions. 0 means "retry the access". */
vm_fault_t handle_mm_fault(struct dmm_vma *vma, uint64_t addr, unsigned int flags);
/* Restore the device-exclusive entry e at addr (t's PTL held, page locked). */
void restore_exclusive_pte(struct dmm_vma *vma, struct dmm_page *p, struct dmm_pte_table *t,
			   uint64_t addr, pte_t e);
/* gup_one only (no public flag): split a PMD leaf first and take the page
 * from its PTE (make_device_exclusive). */
#define FOLL_SPLIT_PMD 0x80000000u
/* One page of get_user_pages (mmap_lock held for read): 0 and the pfn
 * with a GET or PIN reference taken, or -errno. */
int gup_one(struct dmm_mm *mm, uint64_t addr, unsigned int gup_flags, uint64_t *pfn);

/* Tests only: called by GUP-fast between pfn_to_page and taking the
 * reference, where a stalled reader holds a pointer and no reference. */
typedef void (*gup_fast_hook_fn)(struct dmm_page *p);
extern _Atomic(gup_fast_hook_fn) gup_fast_hook;

/* Fault [start, end) in as a CPU read or write would, touching no data
 * (MADV_POPULATE_READ/WRITE); mmap_lock held for read. 0 or the access's
 * -errno (-EFAULT, -ENOMEM). */
int populate_locked(struct dmm_mm *mm, uint64_t start, uint64_t end, bool write);

/* Errno for a fault result. */
int vm_fault_to_errno(vm_fault_t r);

/* ------------------------------------------------------------------------ */
/* PMD-size THP (huge_memory.c)                                              */

/* May a fault at @addr in @vma map a PMD (large-folios.md §1.5)? All but
 * "the slot is empty", which the fault checks under the PTL. */
bool thp_vma_allowable_pmd(const struct dmm_vma *vma, uint64_t addr);
/* The first-touch PMD fault (§3.1) on the empty slot of @t: 0 (retry the
 * access), VM_FAULT_OOM, or VM_FAULT_FALLBACK (map at PTE level). */
#define VM_FAULT_FALLBACK 0x0100
vm_fault_t do_huge_pmd_anonymous_page(struct dmm_vma *vma, struct dmm_pte_table *t, uint64_t addr,
				      unsigned int flags);
/* A fault on the PMD leaf @pmd of @t: 0 (retry the access). */
vm_fault_t huge_pmd_fault(struct dmm_vma *vma, struct dmm_pte_table *t, uint64_t addr, unsigned int flags,
			  pte_t pmd);
/* Split the PMD leaf of @t, if it still is one, into 512 PTEs (§2.3):
 * NOTIFY(CLEAR, 2M) around it. No PTL held by the caller. */
void split_huge_pmd(struct dmm_mm *mm, struct dmm_pte_table *t, uint64_t addr);
/* The same with the PTL held, no notification (the caller sent it). */
void split_huge_pmd_locked(struct dmm_mm *mm, struct dmm_pte_table *t, uint64_t addr);
/* Is @pmd the huge zero folio's PMD? */
bool is_huge_zero_pmd(struct dmm_system *sys, pte_t pmd);
/* The page at @addr of the PMD leaf @pmd (present or not). */
static inline uint64_t pmd_pfn_at(pte_t pmd, uint64_t addr)
{
	return entry_pfn(pmd) + ((addr & ~HPAGE_PMD_MASK) >> PAGE_SHIFT);
}
/* The huge zero folio, made on first use, held by @mm from now on (NULL:
 * it could not be allocated); drop @mm's hold (exit). */
struct dmm_page *mm_get_huge_zero_folio(struct dmm_mm *mm);
void mm_put_huge_zero_folio(struct dmm_mm *mm);

/* ------------------------------------------------------------------------ */
/* Zap, unmap and teardown (memory.c, mmap.c)                                */

/* Tests only: called by MADV_FREE (PTL held) between clearing a candidate
 * entry and checking the page for other references. */
typedef void (*lazyfree_hook_fn)(void);
extern _Atomic(lazyfree_hook_fn) lazyfree_hook;
/* Clear every entry of [start, end) within vma, dropping references. */
void zap_page_range(struct dmm_vma *vma, uint64_t start, uint64_t end);
/* [start, end) has just lost its VMAs (mmap_lock held for write): free
 * the page-table pages under it that no VMA left around it needs. */
void free_pgtables_hole(struct dmm_mm *mm, uint64_t start, uint64_t end);
void lazyfree_page_range(struct dmm_vma *vma, uint64_t start, uint64_t end);
/* munmap with mmap_lock held for write. */
int do_munmap(struct dmm_mm *mm, uint64_t start, uint64_t len);
/* Free the mm structure itself (after teardown). */
void mm_free(struct dmm_mm *mm);
struct dmm_mm *mm_alloc(struct dmm_system *sys);
void mm_register(struct dmm_mm *mm);
void exit_mmap(struct dmm_mm *mm);

/* The mmap_lock (see struct dmm_mm): a thread always uses the same shard,
 * so read lock and unlock pair up. Debug builds record each hold per
 * thread (lockdep.h): a thread never takes an mmap_lock it holds. */
static inline void mmap_read_lock_at(struct dmm_mm *mm, const char *file, int line, const char *func)
{
	lockdep_mmap_acquire(mm, false, file, line, func);
	pthread_rwlock_rdlock(&mm->mmap_lock[dmm_shard()].lock);
}
static inline void mmap_read_unlock_at(struct dmm_mm *mm, const char *file, int line, const char *func)
{
	lockdep_mmap_release(mm, false, file, line, func);
	pthread_rwlock_unlock(&mm->mmap_lock[dmm_shard()].lock);
}
static inline void mmap_write_lock_at(struct dmm_mm *mm, const char *file, int line, const char *func)
{
	lockdep_mmap_acquire(mm, true, file, line, func);
	for (unsigned int i = 0; i < NR_SHARDS; i++)
		pthread_rwlock_wrlock(&mm->mmap_lock[i].lock);
}
static inline void mmap_write_unlock_at(struct dmm_mm *mm, const char *file, int line, const char *func)
{
	lockdep_mmap_release(mm, true, file, line, func);
	for (unsigned int i = NR_SHARDS; i-- > 0;)
		pthread_rwlock_unlock(&mm->mmap_lock[i].lock);
}
#define mmap_read_lock(mm) mmap_read_lock_at(mm, __FILE__, __LINE__, __func__)
#define mmap_read_unlock(mm) mmap_read_unlock_at(mm, __FILE__, __LINE__, __func__)
#define mmap_write_lock(mm) mmap_write_lock_at(mm, __FILE__, __LINE__, __func__)
#define mmap_write_unlock(mm) mmap_write_unlock_at(mm, __FILE__, __LINE__, __func__)

/* MMU notifiers (notifier.c). start returns 0, or -EAGAIN when a
 * non-blockable range was refused (then end must not be called). */
void notifier_state_init(struct dmm_notifier_state *st);
void notifier_state_destroy(struct dmm_notifier_state *st);
int mmu_notifier_invalidate_range_start(struct dmm_mmu_notifier_range *r);
void mmu_notifier_invalidate_range_end(const struct dmm_mmu_notifier_range *r);
void mmu_notifier_range_init(struct dmm_mmu_notifier_range *r, enum dmm_mmu_notifier_event ev,
			     struct dmm_mm *mm, uint64_t start, uint64_t end, void *owner);
/* init + blockable start, in one call; pair with ..._range_end(r). */
void mmu_notify(enum dmm_mmu_notifier_event ev, struct dmm_mm *mm, uint64_t start, uint64_t end,
		void *owner, struct dmm_mmu_notifier_range *r);
void mmu_notifier_release(struct dmm_mm *mm);
void mmgrab(struct dmm_mm *mm);
void mmdrop(struct dmm_mm *mm);

/* Validate a user range: page aligned start, non-zero length, no overflow,
 * inside user space. Returns the page-aligned length or 0 if invalid. */
uint64_t user_range_len(uint64_t addr, uint64_t len);

#endif /* DEVMM_INTERNAL_H */
