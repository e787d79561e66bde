/* SPDX-License-Identifier: MIT */
/*
 * devmm — Linux-style heterogeneous (device) memory management in user space.
 *
 * This is the one public header. Every call returns 0 (or a non-negative
 * count where documented) on success and a negative errno on failure, and
 * never touches errno. A call that fails because of bad input changes
 * nothing. Every call may run concurrently from any thread unless its
 * comment says otherwise.
 *
 * Objects:
 *   struct dmm_system  a machine: simulated physical memory (4 KiB frames with
 *                      real contents), the shared zero page, files, processes.
 *   struct dmm_mm      an address space (a process): VMAs and a 4-level page
 *                      table. Created empty or by dmm_fork(); ended by
 *                      dmm_mm_exit().
 *   struct dmm_file    a page-cache file object, mappable shared or private.
 *
 * Addresses are 64-bit virtual addresses inside [DMM_MMAP_MIN, DMM_TASK_SIZE).
 */
#ifndef DEVMM_DEVMM_H
#define DEVMM_DEVMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <devmm/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The library is built with -fvisibility=hidden: what this header declares
 * is its whole interface, and only that is visible outside it.
 */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#endif

#define DMM_PAGE_SHIFT 12
#define DMM_PAGE_SIZE (1UL << DMM_PAGE_SHIFT)
#define DMM_PAGE_MASK (~(DMM_PAGE_SIZE - 1))

/* Lowest mappable address and the end of the user address space (47 bits). */
#define DMM_MMAP_MIN 0x10000UL
#define DMM_TASK_SIZE (1UL << 47)

/* The pfn of the shared zero page. */
#define DMM_ZERO_PFN 0UL

/* Run-time version, for comparison with DEVMM_VERSION_* at compile time. */
const char *dmm_version(void);

/* ------------------------------------------------------------------------ */
/* Systems                                                                   */

struct dmm_system;
struct dmm_mm;
struct dmm_file;

/* dmm_system_config.flags */
#define DMM_SYS_PRETOUCH 0x1 /* touch every frame's memory at creation */
/* Metadata only ("contents=none"): no frame of the system, nor of its
 * device memory, carries data; no arena is reserved. Faults, fork, CoW,
 * migration, pins, notifiers and dmm_check behave exactly as with
 * contents (the copies and clears are skipped, every state change is
 * kept); every data operation fails with -EOPNOTSUPP (the CPU accesses,
 * dmm_file_pread/pwrite) or finds no contents (dmm_page_address returns
 * NULL). Fault pages in with dmm_madvise(MADV_POPULATE_READ/WRITE). */
#define DMM_SYS_NO_CONTENTS 0x2

struct dmm_system_config {
	uint64_t nr_frames; /* system RAM in 4 KiB frames; 0 = 262144 (1 GiB) */
	unsigned int flags; /* DMM_SYS_* */
	unsigned int mthp_orders; /* enabled mTHP orders, as dmm_system_set_mthp */
	unsigned int thp_mode; /* enum dmm_thp_mode, as dmm_system_set_thp */
	unsigned int thp_flags; /* DMM_THP_*, as dmm_system_set_thp */
};

/*
 * dmm_system_create - create a machine with cfg->nr_frames frames of RAM.
 * The arena is reserved lazily: frames never used cost no memory.
 * cfg may be NULL for the defaults.
 * Errors: -EINVAL (nr_frames above DMM_MAX_SYSTEM_FRAMES, unknown flags,
 *         mthp_orders not allowed by dmm_system_set_mthp, thp_mode or
 *         thp_flags not allowed by dmm_system_set_thp), -ENOMEM.
 */
#define DMM_MAX_SYSTEM_FRAMES (1UL << 28) /* 1 TiB; the pfn space is 4 TiB */
int dmm_system_create(const struct dmm_system_config *cfg, struct dmm_system **out);

/*
 * dmm_system_destroy - end every live address space, drop every file, and
 * free the machine. Nothing else may use the system concurrently.
 */
void dmm_system_destroy(struct dmm_system *sys);

/* dmm_system_prefault - touch the memory of the first n frames so that
 * benchmarks run warm. Returns 0. */
int dmm_system_prefault(struct dmm_system *sys, uint64_t n);

/* What a FOLL_LONGTERM pin does to a device-coherent page (semantics §5.2). */
enum dmm_longterm_coherent {
	DMM_LONGTERM_COHERENT_MIGRATE = 0, /* mainline since 6.0: migrate, then pin (default) */
	DMM_LONGTERM_COHERENT_FAIL = 1,    /* the 2022 v6 series: the pin fails */
};
/* Errors: -EINVAL (NULL or unknown mode). */
int dmm_system_set_longterm_coherent(struct dmm_system *sys, enum dmm_longterm_coherent mode);

/*
 * dmm_system_set_mthp - enable anonymous multi-size THP (large-folios.md
 * §1.5 "mTHP"): @orders has bit O set for each enabled order O, 2..8
 * (DMM_MTHP_ORDERS_ALLOWED; 0 = none, the default). From then on a write
 * fault on an empty PTE of an anonymous VMA without VM_NOHUGEPAGE maps a
 * zeroed folio of the highest enabled order whose aligned range lies in
 * the VMA with every PTE empty, by PTEs (all writable iff VM_WRITE, every
 * page exclusive); if none fits or the allocation fails, an order-0 page.
 * Read faults keep mapping the zero page. Existing folios are unaffected.
 * Errors: -EINVAL (NULL, or a bit outside DMM_MTHP_ORDERS_ALLOWED).
 */
#define DMM_MTHP_ORDERS_ALLOWED 0x1fcu /* orders 2..8 */
int dmm_system_set_mthp(struct dmm_system *sys, unsigned int orders);

/*
 * dmm_deferred_split_scan - run the deferred-split queue once
 * (large-folios.md §1.4; the kernel's deferred_split_scan, which only a
 * shrinker runs): each queued large anon folio that is partially mapped
 * and whose lock can be taken without waiting is split into order-0
 * folios (pages no longer mapped are freed, zero-filled ones map the
 * shared zero page); a folio that cannot be locked or split (extra
 * references) stays queued; a queued folio that is not partially mapped
 * leaves the queue. @nr_split (may be NULL) receives the number of folios
 * split. Any thread, no locks held.
 * Errors: -EINVAL (NULL sys), -ENOMEM (no memory for the scan's batch:
 * nothing was split).
 */
int dmm_deferred_split_scan(struct dmm_system *sys, unsigned long *nr_split);

/*
 * dmm_system_set_thp - PMD-size transparent huge pages (large-folios.md
 * §1.5, transparent_hugepage/enabled and use_zero_page). A fault on an
 * address of a private anonymous VMA whose 2 MiB-aligned range lies inside
 * the VMA and whose PMD slot is still empty (no PTE table) maps a whole
 * 2 MiB folio by one PMD when @mode allows it: ALWAYS unless the VMA has
 * VM_NOHUGEPAGE, MADVISE only with VM_HUGEPAGE (dmm_madvise HUGEPAGE),
 * NEVER (the default) not at all. A write fault (or a read fault with
 * DMM_THP_NO_HUGE_ZERO) maps a new zeroed exclusive folio, writable iff
 * VM_WRITE; a read fault maps the one global huge zero folio read-only.
 * When the 2 MiB allocation fails the fault maps 4 KiB as before. Existing
 * mappings are unaffected.
 * Errors: -EINVAL (NULL, unknown mode or flags).
 */
enum dmm_thp_mode {
	DMM_THP_NEVER = 0,
	DMM_THP_MADVISE = 1,
	DMM_THP_ALWAYS = 2,
};
#define DMM_THP_NO_HUGE_ZERO 0x1 /* use_zero_page = 0: read faults allocate too */
int dmm_system_set_thp(struct dmm_system *sys, enum dmm_thp_mode mode, unsigned int flags);

/*
 * dmm_system_fail_thp_alloc - the next @n order-9 allocations by the core
 * (a THP fault, ...) fail, as a failed THP allocation or charge would; the
 * caller falls back to 4 KiB pages. 0 disarms. Counted in
 * frames_alloc_fail and by the THP_ALLOC injection site.
 * Errors: -EINVAL (NULL).
 */
int dmm_system_fail_thp_alloc(struct dmm_system *sys, unsigned int n);

/* Frame accounting: total allocatable frames and frames free now. */
uint64_t dmm_system_nr_frames(const struct dmm_system *sys);
/* false for a metadata-only system (DMM_SYS_NO_CONTENTS) and for NULL. */
bool dmm_system_has_contents(const struct dmm_system *sys);
uint64_t dmm_system_nr_free(const struct dmm_system *sys);

/* ------------------------------------------------------------------------ */
/* Address spaces                                                            */

/*
 * dmm_mm_create - create an empty address space (a new process).
 * Errors: -EINVAL (NULL argument), -ENOMEM.
 */
int dmm_mm_create(struct dmm_system *sys, struct dmm_mm **out);

/*
 * dmm_fork - duplicate @parent into a new address space, with Linux's
 * copy-on-write rules: private writable mappings become read-only shared
 * in both, maybe-pinned exclusive anonymous pages are copied eagerly,
 * DONTFORK mappings are left out, shared mappings are shared.
 * Errors: -EINVAL, -ENOMEM (the parent is unchanged apart from write
 * protection, as in Linux; the child does not exist).
 */
int dmm_fork(struct dmm_mm *parent, struct dmm_mm **child);

/*
 * dmm_mm_exit - tear the address space down (the process exits): interval
 * subscribers get a RELEASE invalidation, then every mapping is zapped and
 * every page reference dropped. The caller must not use @mm again; the
 * structure itself lives on while interval subscriptions hold it.
 */
void dmm_mm_exit(struct dmm_mm *mm);

/* The system an address space belongs to. */
struct dmm_system *dmm_mm_system(const struct dmm_mm *mm);

/* An address space's id (unique within its system, 1 for the first). */
unsigned int dmm_mm_id(const struct dmm_mm *mm);

/* rss counters, as the kernel keeps them per mm. */
enum dmm_rss_type { DMM_MM_FILEPAGES, DMM_MM_ANONPAGES, DMM_MM_SHMEMPAGES, DMM_NR_MM_COUNTERS };
long dmm_mm_rss(const struct dmm_mm *mm, enum dmm_rss_type type);

/* ------------------------------------------------------------------------ */
/* Files                                                                     */

/*
 * dmm_file_create - create a page-cache file of @npages pages (all zero).
 * The caller holds one reference; mappings hold their own.
 * Errors: -EINVAL (npages 0 or above DMM_MAX_FILE_PAGES), -ENOMEM.
 */
#define DMM_MAX_FILE_PAGES (1UL << 24) /* 64 GiB */
int dmm_file_create(struct dmm_system *sys, uint64_t npages, struct dmm_file **out);

/* dmm_file_put - drop the caller's reference. */
void dmm_file_put(struct dmm_file *file);

/* The size of the file in pages. */
uint64_t dmm_file_npages(const struct dmm_file *file);

/*
 * dmm_file_pread / dmm_file_pwrite - copy @len bytes at byte offset @off
 * through the page cache (not a mapping). Returns 0 when every byte moved.
 * Errors: -EINVAL (NULL buffer with len > 0, or a range past the end of
 * the file), -ENOMEM (page-cache allocation failed; nothing past the
 * failing page was copied), -EOPNOTSUPP (a metadata-only system:
 * nothing is copied).
 */
int dmm_file_pread(struct dmm_file *file, void *buf, size_t len, uint64_t off);
int dmm_file_pwrite(struct dmm_file *file, const void *buf, size_t len, uint64_t off);

/* ------------------------------------------------------------------------ */
/* Mappings (the system calls)                                               */

#define DMM_PROT_NONE 0x0
#define DMM_PROT_READ 0x1
#define DMM_PROT_WRITE 0x2

#define DMM_MAP_SHARED 0x01
#define DMM_MAP_PRIVATE 0x02
#define DMM_MAP_FIXED 0x10
#define DMM_MAP_ANONYMOUS 0x20
#define DMM_MAP_FIXED_NOREPLACE 0x100000

/*
 * dmm_mmap - map @len bytes. Exactly one of MAP_SHARED / MAP_PRIVATE.
 * MAP_ANONYMOUS|MAP_PRIVATE is anonymous private memory;
 * MAP_ANONYMOUS|MAP_SHARED is shared memory (an internal shmem object,
 * shared with children across fork); otherwise @file is mapped from page
 * @pgoff. Without MAP_FIXED*, @addr is a hint; the chosen start is stored
 * in *@out (may be NULL). MAP_FIXED replaces what was mapped there.
 * Errors: -EINVAL (len 0, unaligned addr with FIXED, bad flags or prot,
 *         file missing or given with ANONYMOUS, range overflow or outside
 *         [DMM_MMAP_MIN, DMM_TASK_SIZE)), -EEXIST (FIXED_NOREPLACE over a
 *         mapping), -ENOMEM (no room in the address space, or no memory).
 * Mapping beyond the end of a file is allowed; access there is -EFAULT.
 */
int dmm_mmap(struct dmm_mm *mm, uint64_t addr, uint64_t len, int prot, int flags,
	     struct dmm_file *file, uint64_t pgoff, uint64_t *out);

/*
 * dmm_munmap - unmap [addr, addr+len). Unmapped parts are fine.
 * Errors: -EINVAL (unaligned addr, len 0, overflow or outside user space).
 */
int dmm_munmap(struct dmm_mm *mm, uint64_t addr, uint64_t len);

/*
 * dmm_mprotect - change the protection of [addr, addr+len) to @prot.
 * As in Linux, the VMAs are changed one after the other from addr; the
 * first hole or forbidden VMA stops the walk with its error, and the VMAs
 * before it keep their new protection (a range that starts in a hole
 * changes nothing).
 * Errors: -EINVAL (unaligned addr, bad prot, overflow; nothing changes),
 *         -ENOMEM (part of the range is not mapped), -EACCES (PROT_WRITE on
 *         a shared mapping that may not be written).
 */
int dmm_mprotect(struct dmm_mm *mm, uint64_t addr, uint64_t len, int prot);

#define DMM_MADV_DONTNEED 4
#define DMM_MADV_FREE 8
#define DMM_MADV_DONTFORK 10
#define DMM_MADV_DOFORK 11
#define DMM_MADV_HUGEPAGE 14
#define DMM_MADV_NOHUGEPAGE 15
#define DMM_MADV_POPULATE_READ 22
#define DMM_MADV_POPULATE_WRITE 23

/*
 * dmm_madvise - DONTNEED (zap; private anonymous memory reads as zero
 * afterwards, file and shared memory refault from their object), FREE
 * (private anonymous memory only; not a zap: devmm frees the anonymous
 * system pages that only this entry maps and nothing else holds at once,
 * as reclaim would, so they read as zero; the zero page, device-coherent
 * pages and device-private, device-exclusive and migration entries are
 * left alone, so device data survives), DONTFORK / DOFORK (leave the range
 * out of, or back in, future forks), HUGEPAGE / NOHUGEPAGE (set VM_HUGEPAGE
 * / VM_NOHUGEPAGE on the VMA, each clearing the other: see
 * dmm_system_set_thp and dmm_system_set_mthp), POPULATE_READ / POPULATE_WRITE (fault every page in as a CPU
 * read, resp. write, would, moving no data: untouched private anonymous
 * memory gets the zero page, resp. its own frame; works on metadata-only
 * systems). The VMAs of the range are advised in address order.
 * Errors: -EINVAL (unaligned, unknown advice, overflow; FREE over a file or
 *         shared mapping: the VMAs before it have been advised), -ENOMEM
 *         (part of the range is unmapped; as in Linux the mapped parts are
 *         advised).
 */
/*         POPULATE_*: -EFAULT (the access is not allowed, as a CPU access
 *         would find, or the fault fails as SIGBUS), -ENOMEM also when a
 *         fault finds no frame, -EINVAL (a VM_IO / VM_PFNMAP mapping);
 *         the pages before the failing one stay populated. */
int dmm_madvise(struct dmm_mm *mm, uint64_t addr, uint64_t len, int advice);

#define DMM_MREMAP_MAYMOVE 1
#define DMM_MREMAP_FIXED 2
#define DMM_MREMAP_DONTUNMAP 4

/*
 * dmm_mremap - move [old, old+old_len) to @new_addr (MREMAP_MAYMOVE|
 * MREMAP_FIXED; DONTUNMAP may be added). Page table entries of every kind
 * move verbatim. With DONTUNMAP the old range stays mapped and empty
 * (old_len must equal new_len); an old VMA moved whole loses its anon_vma
 * (a later fork does not copy it). A larger new_len extends the moved
 * mapping with empty pages; a smaller one unmaps the tail. Whatever was
 * mapped at the target is unmapped first. A never-faulted anonymous VMA
 * takes the pgoff of its new address and may merge with its neighbours.
 * When old_len == new_len the range may span several VMAs and holes (Linux
 * >= 6.17): each VMA piece moves to the same offset of the target, its
 * own part of the target unmapped first; holes move nothing and leave the
 * target beneath them alone. Resizing needs one VMA: the whole old range
 * when growing, [old, old+new_len) when shrinking.
 * Errors: -EINVAL (unaligned, zero length, overlapping ranges, flags other
 *         than MAYMOVE|FIXED[|DONTUNMAP]), -EFAULT (old starts in a hole,
 *         or a resize not inside one VMA; nothing changes), -ENOMEM (the
 *         pieces moved before it stay moved).
 */
int dmm_mremap(struct dmm_mm *mm, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
	       int flags, uint64_t new_addr);

/* ------------------------------------------------------------------------ */
/* CPU access                                                                */

/*
 * CPU loads and stores, performed as a CPU would: through the page table,
 * faulting where the entry does not allow the access. All data goes
 * through the real frames.
 * Errors: -EFAULT (no mapping, or no permission: the model's SIGSEGV, or
 *         SIGBUS beyond a file's end), -ENOMEM (no frame for a fault),
 *         -EINVAL (NULL buffer, or an address that is not 4-byte aligned for
 *         the 32-bit calls), -EOPNOTSUPP (a metadata-only system: refused
 *         before any fault, nothing changes).
 * dmm_read / dmm_write stop at the first failing byte; the bytes before it
 * have been transferred.
 */
int dmm_read(struct dmm_mm *mm, uint64_t addr, void *buf, size_t len);
int dmm_write(struct dmm_mm *mm, uint64_t addr, const void *buf, size_t len);
int dmm_load32(struct dmm_mm *mm, uint64_t addr, uint32_t *val);
int dmm_store32(struct dmm_mm *mm, uint64_t addr, uint32_t val);
/* Atomic compare-and-swap: *old receives the previous value; the store
 * happens only when it equals @expected (a write fault is taken either
 * way, as on x86). */
int dmm_cmpxchg32(struct dmm_mm *mm, uint64_t addr, uint32_t expected, uint32_t desired,
		  uint32_t *old);
/* Atomic fetch-and-add. */
int dmm_fetch_add32(struct dmm_mm *mm, uint64_t addr, uint32_t delta, uint32_t *old);
/* dmm_touch - the faults of a CPU read (write: a store) of every byte of
 * [addr, addr + len), moving no data: the same entries, counters and
 * errors as dmm_read / dmm_write (-EFAULT, -ENOMEM, -EINVAL for a NULL
 * mm), on any system, metadata-only ones included. */
int dmm_touch(struct dmm_mm *mm, uint64_t addr, size_t len, bool write);

/* ------------------------------------------------------------------------ */
/* get_user_pages / pin_user_pages                                           */

#define DMM_FOLL_WRITE 0x01
#define DMM_FOLL_GET 0x04
#define DMM_FOLL_FORCE 0x10
#define DMM_FOLL_LONGTERM 0x100
#define DMM_FOLL_PIN 0x40000

/*
 * dmm_get_user_pages - take a reference (FOLL_GET) or a pin (FOLL_PIN:
 * the 1024 bias on the refcount and one exact pin) on each of @nr pages
 * from @start, faulting them in as needed; their pfns go to @pfns.
 * Returns the number of pages taken (partial success returns the count);
 * 0 pages taken returns the error.
 * FOLL_WRITE needs a writable VMA, or FOLL_FORCE on a private one.
 * A read-only FOLL_PIN unshares a shared anonymous page first; a read-only
 * FOLL_PIN|FOLL_LONGTERM in a private mapping also unshares a page-cache
 * page or the zero page: an exclusive anonymous copy is mapped read-only
 * and pinned, so later writes through the mapping land in the pinned page.
 * FOLL_LONGTERM (with FOLL_PIN) never leaves a device-coherent page pinned:
 * mainline migrates it to system memory and pins that (-EBUSY if the
 * migration fails); with dmm_system_set_longterm_coherent(sys,
 * DMM_LONGTERM_COHERENT_FAIL), the 2022 v6 series' rule, the pin fails with
 * -EFAULT instead. Device-private pages are migrated back by the fault
 * (GUP never returns one); device-exclusive entries are restored.
 * Errors: -EINVAL (GET and PIN together or neither, LONGTERM without PIN,
 *         unknown flags, unaligned start, nr 0, NULL pfns), -EFAULT (no
 *         VMA, no permission, a writable long-term pin of a file that needs
 *         dirty tracking), -ENOMEM (no memory, or a page whose reference
 *         count would pass its limit of 2^31 - 1: it is not taken),
 *         -EBUSY (long-term migration failed).
 * Release with dmm_put_user_pages (GET) or dmm_unpin_user_pages (PIN).
 */
long dmm_get_user_pages(struct dmm_mm *mm, uint64_t start, unsigned long nr,
			unsigned int gup_flags, uint64_t *pfns);
/*
 * dmm_get_user_pages_fast - the lockless variant: no mmap_lock, no PTL;
 * it falls back to the slow path, for the rest of the range, where Linux
 * does (non-present or special entries, permission mismatches, an entry
 * that changed under it, a page that must be unshared, a FOLL_LONGTERM
 * pin of a page that is not long-term pinnable, a writable FOLL_LONGTERM
 * pin of a page that is neither anonymous nor shmem, a FOLL_PIN during a
 * fork's write-protect). Same flags, results and errors as
 * dmm_get_user_pages.
 */
long dmm_get_user_pages_fast(struct dmm_mm *mm, uint64_t start, unsigned long nr,
			     unsigned int gup_flags, uint64_t *pfns);
void dmm_put_user_pages(struct dmm_system *sys, const uint64_t *pfns, unsigned long nr);
void dmm_unpin_user_pages(struct dmm_system *sys, const uint64_t *pfns, unsigned long nr);

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */

enum dmm_pte_kind {
	DMM_PTE_NONE,
	DMM_PTE_PRESENT,
	DMM_PTE_DEVICE_PRIVATE_READ,
	DMM_PTE_DEVICE_PRIVATE_WRITE,
	DMM_PTE_DEVICE_EXCLUSIVE,
	DMM_PTE_MIGRATION_READ,
	DMM_PTE_MIGRATION_READ_EXCLUSIVE,
	DMM_PTE_MIGRATION_WRITE,
};

/* Returns the kind's name ("none", "present", "dev-private-r", ...). */
const char *dmm_pte_kind_name(enum dmm_pte_kind kind);

struct dmm_pte_info {
	enum dmm_pte_kind kind;
	uint64_t pfn;  /* meaningful unless kind == DMM_PTE_NONE */
	bool write;    /* the entry allows writes: PRESENT with W, DEVICE_PRIVATE_WRITE,
			  MIGRATION_WRITE, DEVICE_EXCLUSIVE (implicitly writable) */
	bool dirty;
	bool young;
	bool special;  /* PRESENT special (the zero page, the huge zero folio) */
	bool pmd;      /* a PMD leaf maps @addr (pfn is @addr's page in it) */
};

/*
 * dmm_pte_query - the page-table entry mapping @addr (any alignment).
 * An address with no page table or no VMA reports DMM_PTE_NONE. It takes
 * the mmap_lock for read: a caller that holds it (a driver between
 * dmm_mmap_read_lock and unlock) calls dmm_pte_query_locked instead.
 * Errors: -EINVAL (NULL argument, address outside user space).
 */
int dmm_pte_query(struct dmm_mm *mm, uint64_t addr, struct dmm_pte_info *out);
/* dmm_pte_query_locked - the same, for a caller that holds @mm's mmap_lock
 * (read or write). */
int dmm_pte_query_locked(struct dmm_mm *mm, uint64_t addr, struct dmm_pte_info *out);

/* Page flags reported by dmm_page_query(). */
#define DMM_PAGE_LOCKED 0x0001
#define DMM_PAGE_ANON 0x0002
#define DMM_PAGE_ANON_EXCLUSIVE 0x0004
#define DMM_PAGE_DIRTY 0x0008
#define DMM_PAGE_UPTODATE 0x0010
#define DMM_PAGE_RESERVED 0x0020  /* the zero page */
#define DMM_PAGE_PAGECACHE 0x0040 /* belongs to a file's page cache */
#define DMM_PAGE_FREE 0x0080      /* on the frame allocator's free list */
#define DMM_PAGE_ZONE_DEVICE 0x0100
#define DMM_PAGE_PARTIALLY_MAPPED 0x0200 /* large folio: queued by a partial unmap */

enum dmm_page_location {
	DMM_LOC_SYSTEM,
	DMM_LOC_ZERO,
	DMM_LOC_DEVICE_PRIVATE,
	DMM_LOC_DEVICE_COHERENT,
	DMM_LOC_HUGE_ZERO, /* a page of the huge zero folio: no counts, as the zero page */
};

struct dmm_page_info {
	uint32_t refcount; /* the folio's; pins included, each FOLL_PIN of an
			    * order-0 folio counting 1024, of a large one 1 */
	int32_t mapcount;  /* entries mapping this page (PTEs + the folio's PMDs) */
	uint32_t pincount; /* the folio's exact number of FOLL_PIN pins */
	uint32_t flags;    /* DMM_PAGE_*: the folio's, and this page's exclusivity */
	enum dmm_page_location location;
	uint32_t order;		 /* of the folio holding the frame (0: a small page) */
	int32_t folio_mapcount;	 /* entries mapping any page of the folio, a PMD 1 */
	int32_t entire_mapcount; /* PMD entries mapping the whole folio */
	uint64_t head_pfn;	 /* the folio's first frame */
};

/*
 * dmm_page_query - the state of frame @pfn and of the folio that holds it
 * (large-folios.md §1.2). The zero page reports 0 counts.
 * Errors: -EINVAL (NULL argument), -ENXIO (no such frame).
 */
int dmm_page_query(struct dmm_system *sys, uint64_t pfn, struct dmm_page_info *out);

/* VMA flags reported by dmm_vma_query(). */
#define DMM_VM_READ 0x0001
#define DMM_VM_WRITE 0x0002
#define DMM_VM_SHARED 0x0008
#define DMM_VM_MAYREAD 0x0010
#define DMM_VM_MAYWRITE 0x0020
#define DMM_VM_MAYSHARE 0x0080
#define DMM_VM_DONTCOPY 0x00020000
/* Committed memory is charged for the VMA (Linux VM_ACCOUNT): set at mmap
 * on a private writable mapping, and by mprotect when a private mapping
 * first becomes writable; kept when it becomes read-only again, except on
 * an anonymous VMA that has no anonymous pages yet. Shared and read-only
 * private mappings are not accounted. VMAs merge only with equal flags,
 * this one included. */
#define DMM_VM_ACCOUNT 0x00100000
#define DMM_VM_HUGEPAGE 0x20000000
#define DMM_VM_NOHUGEPAGE 0x40000000

enum dmm_vma_type { DMM_VMA_ANON, DMM_VMA_SHMEM, DMM_VMA_FILE };

struct dmm_vma_info {
	uint64_t start, end;   /* [start, end) */
	uint64_t pgoff;        /* in pages */
	unsigned long flags;   /* DMM_VM_* */
	enum dmm_vma_type type;
	const struct dmm_file *file; /* FILE and SHMEM: the object */
};

/*
 * dmm_vma_query - the VMA containing @addr, or else the first VMA above it.
 * Errors: -EINVAL (NULL argument), -ENOENT (no VMA at or above addr).
 * Iterate with: for (a = 0; !dmm_vma_query(mm, a, &v); a = v.end) ...
 */
int dmm_vma_query(struct dmm_mm *mm, uint64_t addr, struct dmm_vma_info *out);

/* ------------------------------------------------------------------------ */
/* Locking for drivers                                                       */

/*
 * The address space's mmap_lock, for drivers: dmm_migrate_vma_setup,
 * _pages and _finalize, dmm_hmm_range_fault and dmm_make_device_exclusive
 * must be called with it held for read (a driver's migrate_to_ram
 * callback already runs with it held).
 *
 * It is not recursive: as in the kernel, where a second read lock
 * deadlocks once a writer waits between the two, a thread that holds it
 * must not take it again, directly or through a call that takes it.
 * Calls that take it themselves, and so must not be made while holding
 * it: dmm_mmap_read_lock, the mapping calls (dmm_mmap, dmm_munmap,
 * dmm_mprotect, dmm_madvise, dmm_mremap), dmm_fork, dmm_mm_exit, CPU
 * access (dmm_read, dmm_write, dmm_load32, dmm_store32, dmm_cmpxchg32,
 * dmm_fetch_add32), dmm_get_user_pages and dmm_get_user_pages_fast (its
 * fallback), dmm_pte_query (use dmm_pte_query_locked), dmm_vma_query,
 * dmm_oom_reap and dmm_check. Everything else may be called with it
 * held, within the other rules of docs/locking.md (a folio lock is taken
 * inside it, never the other way round). Builds with the lock assertions
 * (meson -Dlockdep=true; off by default) abort on a recursive lock, and
 * on a call that needs the lock without it.
 */
void dmm_mmap_read_lock(struct dmm_mm *mm);
void dmm_mmap_read_unlock(struct dmm_mm *mm);

/* ------------------------------------------------------------------------ */
/* Frames for drivers                                                        */

/*
 * Drivers name frames by pfn. A system frame comes from dmm_alloc_page
 * (refcount 1, unlocked, contents undefined); device frames from
 * dmm_zone_device_page_init. dmm_put_page drops a reference: the last one
 * frees a system frame, or hands a device frame back to its driver through
 * folio_free.
 * Errors: -EINVAL (NULL argument, no such frame, dmm_get_page of a free
 *         frame), -ENOMEM (dmm_alloc_page: no frame free; dmm_get_page:
 *         the reference count would pass its limit, 2^31 - 1).
 */
int dmm_alloc_page(struct dmm_system *sys, uint64_t *pfn);
int dmm_get_page(struct dmm_system *sys, uint64_t pfn);
void dmm_put_page(struct dmm_system *sys, uint64_t pfn);
/* The folio lock: dmm_lock_page sleeps; dmm_trylock_page returns 1 if it
 * took the lock, 0 if not, -EINVAL for a bad pfn. */
int dmm_lock_page(struct dmm_system *sys, uint64_t pfn);
int dmm_trylock_page(struct dmm_system *sys, uint64_t pfn);
void dmm_unlock_page(struct dmm_system *sys, uint64_t pfn);
/* The contents of a CPU-addressable frame (system RAM, device coherent);
 * NULL for device-private frames, the zero page excepted, bad pfns, and
 * every frame of a metadata-only system (DMM_SYS_NO_CONTENTS).
 * The zero page's contents must never be written. */
void *dmm_page_address(struct dmm_system *sys, uint64_t pfn);

/* ------------------------------------------------------------------------ */
/* Device memory (ZONE_DEVICE)                                               */

struct dmm_pgmap;

enum dmm_memory_type {
	DMM_MEMORY_DEVICE_PRIVATE = 1,  /* the CPU can never address it */
	DMM_MEMORY_DEVICE_COHERENT = 2, /* CPU-addressable, cache coherent */
};

/* What a device-private fault hands to the owner's migrate_to_ram. */
struct dmm_vm_fault {
	struct dmm_mm *mm;     /* the faulting address space; its mmap_lock is held for read */
	uint64_t address;      /* page-aligned faulting address */
	uint64_t page;         /* pfn of the device page: locked, with a reference */
	struct dmm_pgmap *pgmap; /* the page's pgmap (how a driver finds its device) */
	unsigned int flags;    /* DMM_FAULT_FLAG_* */
};
#define DMM_FAULT_FLAG_WRITE 0x1

/* Results of migrate_to_ram (a CPU access sees -EFAULT for SIGBUS and
 * -ENOMEM for OOM; so do GUP and hmm_range_fault). */
#define DMM_VM_FAULT_OOM 0x0001
#define DMM_VM_FAULT_SIGBUS 0x0002

struct dmm_pgmap_ops {
	/* The device page's refcount went from 1 to 0: give it back to the
	 * driver's free list. Called exactly once per such transition, from
	 * any thread, possibly with core locks held: it must not call back
	 * into devmm other than dmm_pgmap_* getters. */
	void (*folio_free)(struct dmm_pgmap *pgmap, uint64_t pfn);
	/* PRIVATE only: a CPU fault (or GUP, or an hmm fault) hit one of the
	 * device's pages: migrate at least vmf->page back to system memory
	 * with dmm_migrate_vma_* (fault_page = vmf->page). Returns 0,
	 * DMM_VM_FAULT_SIGBUS or DMM_VM_FAULT_OOM. */
	unsigned int (*migrate_to_ram)(struct dmm_vm_fault *vmf);
	/* COHERENT only, optional (a devmm extension; Linux always copies to
	 * system memory): copy-on-write of the device page @src_pfn is
	 * breaking; return 0 with *dst_pfn a page from
	 * dmm_zone_device_page_init (locked, refcount 1) of a COHERENT pgmap
	 * to receive the copy, or -ENOMEM to let the copy go to system memory
	 * as in Linux. Called with the faulting mm's mmap_lock held for read
	 * and no other devmm lock. */
	int (*cow_alloc)(struct dmm_pgmap *pgmap, uint64_t src_pfn, uint64_t *dst_pfn);
};

struct dmm_pgmap_desc {
	enum dmm_memory_type type;
	uint64_t nr_pages;       /* size of the range */
	uint64_t pfn_start;      /* 0: devmm places the range; else a fixed start,
				    aligned to DMM_PGMAP_ALIGN pages */
	const struct dmm_pgmap_ops *ops;
	void *owner;             /* "who manages this memory" (semantics §1.3) */
	void *driver_data;       /* returned by dmm_pgmap_driver_data() */
};
#define DMM_PGMAP_ALIGN (1UL << 15)
#define DMM_PGMAP_MAX_PAGES (1UL << 24)

/*
 * dmm_memremap_pages - register a range of device memory. Its pages start
 * free (refcount 0) and belong to the driver.
 * Errors: -EINVAL (nr_pages 0 or above DMM_PGMAP_MAX_PAGES, unknown type,
 *         ops NULL, folio_free NULL, migrate_to_ram NULL for PRIVATE,
 *         cow_alloc given for PRIVATE (the CPU cannot copy into it),
 *         owner NULL, unaligned pfn_start), -ENXIO (the fixed range
 *         intersects system RAM), -ENOMEM (the fixed range conflicts with
 *         another pgmap — "conflicting mapping" — or no memory), -ERANGE
 *         (the device pfn space is exhausted).
 */
int dmm_memremap_pages(struct dmm_system *sys, const struct dmm_pgmap_desc *desc,
		       struct dmm_pgmap **out);

/*
 * dmm_memunmap_pages - unregister: waits until every page of the pgmap has
 * been freed (the driver must evict its live pages first, or this blocks
 * forever, as in Linux), then frees the pgmap.
 * dmm_memunmap_pages_timeout waits at most @timeout_ms and returns -EBUSY
 * if pages are still in use; the pgmap then stays registered and usable.
 * Both may wait for a grace period of devmm's lockless readers (GUP-fast),
 * which may run folio_free: don't hold a lock that your folio_free takes
 * across them (nor across dmm_munmap, dmm_mremap or dmm_mmap).
 */
void dmm_memunmap_pages(struct dmm_pgmap *pgmap);
int dmm_memunmap_pages_timeout(struct dmm_pgmap *pgmap, unsigned int timeout_ms);

/* Getters: the pgmap's system, range, type, owner and driver data. */
struct dmm_system *dmm_pgmap_system(const struct dmm_pgmap *pgmap);
uint64_t dmm_pgmap_pfn_first(const struct dmm_pgmap *pgmap);
uint64_t dmm_pgmap_nr_pages(const struct dmm_pgmap *pgmap);
enum dmm_memory_type dmm_pgmap_type(const struct dmm_pgmap *pgmap);
void *dmm_pgmap_owner(const struct dmm_pgmap *pgmap);
void *dmm_pgmap_driver_data(const struct dmm_pgmap *pgmap);
/* Pages of the pgmap allocated now (refcount > 0). */
uint64_t dmm_pgmap_nr_allocated(const struct dmm_pgmap *pgmap);

/*
 * dmm_get_dev_pagemap - the pgmap of a device pfn with a reference, or
 * NULL (not a device pfn, or the pgmap is being torn down).
 * Drop the reference with dmm_put_dev_pagemap.
 */
struct dmm_pgmap *dmm_get_dev_pagemap(struct dmm_system *sys, uint64_t pfn);
void dmm_put_dev_pagemap(struct dmm_pgmap *pgmap);

/*
 * dmm_zone_device_page_init - hand out a free device page: it comes back
 * locked, with refcount 1 and a pgmap reference — exactly what a migration
 * destination must be.
 * Errors: -EINVAL (pfn not in a pgmap), -EBUSY (the page is not free),
 *         -ENODEV (the pgmap is being torn down).
 */
int dmm_zone_device_page_init(struct dmm_system *sys, uint64_t pfn);

/* A device-private page's driver pointer (backing storage). */
int dmm_page_set_zone_device_data(struct dmm_system *sys, uint64_t pfn, void *data);
void *dmm_page_zone_device_data(struct dmm_system *sys, uint64_t pfn);
/* The pgmap of a device pfn (no reference; NULL for other pfns). */
struct dmm_pgmap *dmm_page_pgmap(struct dmm_system *sys, uint64_t pfn);

/* ------------------------------------------------------------------------ */
/* Migration between system and device memory (migrate_vma)                 */

/* Migrate-pfn words (src[] / dst[]). */
#define DMM_MIGRATE_PFN_VALID 0x01UL
#define DMM_MIGRATE_PFN_MIGRATE 0x02UL
#define DMM_MIGRATE_PFN_WRITE 0x08UL
#define DMM_MIGRATE_PFN_COMPOUND 0x10UL
#define DMM_MIGRATE_PFN_SHIFT 6
static inline uint64_t dmm_migrate_pfn(uint64_t pfn)
{
	return (pfn << DMM_MIGRATE_PFN_SHIFT) | DMM_MIGRATE_PFN_VALID;
}
static inline uint64_t dmm_migrate_pfn_to_pfn(uint64_t mpfn)
{
	return mpfn >> DMM_MIGRATE_PFN_SHIFT;
}

#define DMM_MIGRATE_VMA_SELECT_SYSTEM 0x1
#define DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE 0x2
#define DMM_MIGRATE_VMA_SELECT_DEVICE_COHERENT 0x4
#define DMM_MIGRATE_VMA_SELECT_COMPOUND 0x8

struct dmm_migrate_vma {
	struct dmm_mm *mm;	/* the address space (the VMA is the one holding start) */
	uint64_t start, end;	/* rounded down to pages; setup may shorten end */
	uint64_t *src, *dst;	/* npages words each, sized by the caller */
	unsigned long npages;	/* out: entries of src/dst */
	unsigned long cpages;	/* out: entries collected for migration */
	void *pgmap_owner;	/* select device pages of this owner */
	unsigned long flags;	/* DMM_MIGRATE_VMA_SELECT_* */
	uint64_t fault_page;	/* pfn of the locked device-private fault page, or 0 */
};

/*
 * dmm_migrate_vma_setup - collect and unmap (semantics.md §3.8). The
 * caller holds the mm's mmap_lock for read from setup to finalize.
 * Best effort: pages that are locked, pinned or busy are left out silently;
 * the call still returns 0 ("cpages" says how many were taken).
 * After it, each src[] entry with VALID|MIGRATE is locked, unmapped
 * everywhere (migration entries) and stable; entries without MIGRATE are
 * untouched. The caller then allocates and locks destinations (in the
 * calling thread: -Dlockdep=true builds check that it holds them), copies the
 * data (zero for holes, src without VALID) and fills dst[] with
 * dmm_migrate_pfn(pfn); 0 skips an entry (not allowed for the fault page).
 * Errors: -EINVAL (args, mm, src or dst NULL; no pages; no VMA at start;
 *         a VM_IO/VM_PFNMAP VMA; start/end outside the VMA; a fault_page
 *         that is not a locked device-private page).
 */
int dmm_migrate_vma_setup(struct dmm_migrate_vma *args);

/* dmm_migrate_vma_pages - move the metadata (§3.9): afterwards src[i] has
 * MIGRATE iff that page will be replaced by dst[i]. */
void dmm_migrate_vma_pages(struct dmm_migrate_vma *args);

/* dmm_migrate_vma_finalize - install the destinations, or restore the
 * sources, unlock and release everything (§3.10). */
void dmm_migrate_vma_finalize(struct dmm_migrate_vma *args);

/*
 * Driver-side eviction (§3.12): collect the live pages of a pfn range
 * (dmm_migrate_device_range) or of a list of pfns (dmm_migrate_device_pfns:
 * src_pfns holds pfns on input), unmapping them from every process. Free
 * and locked pages are skipped (src 0): callers loop until the range is
 * empty. Then allocate locked system pages, copy, and call
 * dmm_migrate_device_pages and dmm_migrate_device_finalize.
 * Return 0 (-EINVAL for NULL arguments).
 */
int dmm_migrate_device_range(struct dmm_system *sys, uint64_t *src_pfns, uint64_t start_pfn,
			     unsigned long npages);
int dmm_migrate_device_pfns(struct dmm_system *sys, uint64_t *src_pfns, unsigned long npages);
void dmm_migrate_device_pages(struct dmm_system *sys, uint64_t *src_pfns, uint64_t *dst_pfns,
			      unsigned long npages);
void dmm_migrate_device_finalize(struct dmm_system *sys, uint64_t *src_pfns, uint64_t *dst_pfns,
				 unsigned long npages);

/* ------------------------------------------------------------------------ */
/* MMU notifiers (interval notifiers)                                        */

enum dmm_mmu_notifier_event {
	DMM_MMU_NOTIFY_UNMAP = 0,	  /* munmap, mremap's old range, exit's unmap */
	DMM_MMU_NOTIFY_CLEAR,		  /* zap, try_to_migrate, CoW replacement, exclusive restore, reap */
	DMM_MMU_NOTIFY_PROTECTION_VMA,	  /* mprotect */
	DMM_MMU_NOTIFY_PROTECTION_PAGE,	  /* fork's copy-on-write write-protect */
	DMM_MMU_NOTIFY_SOFT_DIRTY,
	DMM_MMU_NOTIFY_RELEASE,		  /* address-space teardown, [0, ULONG_MAX) */
	DMM_MMU_NOTIFY_MIGRATE,		  /* migrate_vma collect and hole insertion (owner = pgmap_owner) */
	DMM_MMU_NOTIFY_EXCLUSIVE,	  /* make_device_exclusive (owner = the caller's) */
};

#define DMM_MMU_NOTIFIER_RANGE_BLOCKABLE 0x1

struct dmm_mmu_notifier_range {
	struct dmm_mm *mm;
	uint64_t start, end;		/* [start, end) */
	unsigned int flags;		/* DMM_MMU_NOTIFIER_RANGE_* */
	enum dmm_mmu_notifier_event event;
	void *owner;			/* MIGRATE and EXCLUSIVE: who does it */
};

struct dmm_mmu_interval_notifier;

struct dmm_mmu_interval_notifier_ops {
	/*
	 * The range [start, last] of the subscription overlaps an
	 * invalidation: stop using device mappings in the range before
	 * returning, and call dmm_mmu_interval_set_seq(sub, cur_seq) under
	 * the same driver lock that guards dmm_mmu_interval_read_retry. May
	 * return false only when the range is not blockable (the driver would
	 * have to sleep); the operation then backs off.
	 */
	bool (*invalidate)(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *range,
			   unsigned long cur_seq);
};

/* A subscription; embed it in the driver's own structure. Its fields are
 * devmm's: read none of them directly. (Layout change within 0.1: _link
 * grew from four pointers to 64 bytes when the subscriptions moved from a
 * list to an interval tree; code that embeds the structure must be
 * rebuilt.) */
struct dmm_mmu_interval_notifier {
	uint64_t start, last;		/* inclusive */
	const struct dmm_mmu_interval_notifier_ops *ops;
	struct dmm_mm *mm;
	unsigned long invalidate_seq;	/* always odd */
	uint64_t _link[8];		/* devmm's interval-tree node and deferred-list linkage */
	bool _deferred, _in_tree;
};

/*
 * dmm_mmu_interval_notifier_insert - subscribe to invalidations of
 * [start, start + length) of @mm. The subscription holds a reference on the
 * mm structure (not on its mappings). It may not be in effect yet on
 * return if an invalidation is running: always use read_begin/read_retry.
 * Until every invalidation that was in flight at insert time has ended,
 * whatever its range, read_begin on it sleeps.
 * Errors: -EINVAL (NULL argument, or the mm has exited), -EOVERFLOW
 *         (length 0 or start + length overflowing).
 */
int dmm_mmu_interval_notifier_insert(struct dmm_mmu_interval_notifier *sub, struct dmm_mm *mm,
				     uint64_t start, uint64_t length,
				     const struct dmm_mmu_interval_notifier_ops *ops);
/* Unsubscribe; waits for a running invalidation to end, after which no
 * callback runs. Must not be called from a callback. */
void dmm_mmu_interval_notifier_remove(struct dmm_mmu_interval_notifier *sub);
/* Begin a read side critical section: sleeps while an invalidation that
 * touches @sub is running; returns the sequence to pass to read_retry. */
unsigned long dmm_mmu_interval_read_begin(struct dmm_mmu_interval_notifier *sub);
/* Under the driver lock: true if an invalidation touched @sub since
 * read_begin returned @seq (the caller must retry). */
bool dmm_mmu_interval_read_retry(struct dmm_mmu_interval_notifier *sub, unsigned long seq);
/* Lockless early hint of read_retry. */
bool dmm_mmu_interval_check_retry(struct dmm_mmu_interval_notifier *sub, unsigned long seq);
/* From the invalidate callback, under the driver lock. */
void dmm_mmu_interval_set_seq(struct dmm_mmu_interval_notifier *sub, unsigned long cur_seq);

/* The address space's invalidation counters (for tests of the protocol). */
struct dmm_notifier_stats {
	unsigned long invalidate_seq;	/* even when idle */
	unsigned long starts, ends;	/* invalidations begun and ended */
	unsigned long refused;		/* non-blockable invalidations a callback refused */
};
int dmm_mm_notifier_stats(struct dmm_mm *mm, struct dmm_notifier_stats *out);

/*
 * dmm_oom_reap - what the OOM reaper does to a victim: zap its private
 * anonymous memory with non-blockable CLEAR invalidations; a VMA whose
 * subscriber refuses is skipped. Returns 0, or -EBUSY if some VMA was
 * skipped, -EINVAL for NULL.
 */
int dmm_oom_reap(struct dmm_mm *mm);

/* ------------------------------------------------------------------------ */
/* hmm_range_fault                                                           */

#define DMM_HMM_PFN_VALID (1ULL << 63)
#define DMM_HMM_PFN_WRITE (1ULL << 62)
#define DMM_HMM_PFN_ERROR (1ULL << 61)
#define DMM_HMM_PFN_DMA_MAPPED (1ULL << 60)
#define DMM_HMM_PFN_P2PDMA (1ULL << 59)
#define DMM_HMM_PFN_P2PDMA_BUS (1ULL << 58)
#define DMM_HMM_PFN_ORDER_SHIFT 53
#define DMM_HMM_PFN_ORDER_MASK (0x1fULL << DMM_HMM_PFN_ORDER_SHIFT)
#define DMM_HMM_PFN_INOUT_FLAGS (DMM_HMM_PFN_DMA_MAPPED | DMM_HMM_PFN_P2PDMA | DMM_HMM_PFN_P2PDMA_BUS)
#define DMM_HMM_PFN_FLAGS (0x7ffULL << DMM_HMM_PFN_ORDER_SHIFT)
/* Input aliases. */
#define DMM_HMM_PFN_REQ_FAULT DMM_HMM_PFN_VALID
#define DMM_HMM_PFN_REQ_WRITE DMM_HMM_PFN_WRITE

static inline uint64_t dmm_hmm_pfn_to_pfn(uint64_t w)
{
	return w & ~DMM_HMM_PFN_FLAGS;
}
static inline unsigned int dmm_hmm_pfn_to_map_order(uint64_t w)
{
	return (unsigned int)((w & DMM_HMM_PFN_ORDER_MASK) >> DMM_HMM_PFN_ORDER_SHIFT);
}

struct dmm_hmm_range {
	struct dmm_mmu_interval_notifier *notifier; /* covering the range, of the mm */
	unsigned long notifier_seq;	/* from dmm_mmu_interval_read_begin */
	uint64_t start, end;		/* page aligned */
	uint64_t *hmm_pfns;		/* one word per page: input requests, output pfn | flags */
	uint64_t default_flags;
	uint64_t pfn_flags_mask;
	void *dev_private_owner;	/* device-private pages of this owner are reported, not faulted */
};

/*
 * dmm_hmm_range_fault - snapshot and/or fault a range for a device mirror
 * (semantics.md §3.13). The caller holds the mm's mmap_lock for read
 * (dmm_mmap_read_lock) and follows the read_begin / read_retry protocol.
 * Per page, req = (input & pfn_flags_mask) | default_flags; REQ_FAULT asks
 * for a valid entry, REQ_WRITE (with REQ_FAULT) a writable one.
 * Errors: -EINVAL (NULL or unaligned range), -EBUSY (the range was
 *         invalidated: retry), -EFAULT (a requested page can not be made
 *         valid: no VMA, no access, SIGBUS), -EPERM (write requested on a
 *         read-only VMA), -ENOMEM.
 */
int dmm_hmm_range_fault(struct dmm_hmm_range *range);

/* ------------------------------------------------------------------------ */
/* Device-exclusive access                                                   */

/*
 * dmm_make_device_exclusive - make the anonymous page at @addr (faulted in
 * writable first) exclusively the device's, for device atomics
 * (semantics.md §3.15). Any CPU access, GUP, hmm fault, fork or
 * migration afterwards restores it and fires an invalidation. The caller
 * holds the mm's mmap_lock for read. On success *pfn is the page, locked
 * and with a reference: program the device mapping, then
 * dmm_unlock_page and dmm_put_page it.
 * Errors: those of get_user_pages (-EFAULT no VMA or not writable,
 *         -ENOMEM, ...), -EOPNOTSUPP (not anonymous memory), -EINVAL.
 */
int dmm_make_device_exclusive(struct dmm_mm *mm, uint64_t addr, void *owner, uint64_t *pfn);

/* ------------------------------------------------------------------------ */
/* Fault injection                                                           */

/* Allocation sites that can be made to fail. */
#define DMM_INJECT_SITES(X)                                                  \
	X(FRAME, "frame", "system frame allocation")                        \
	X(PGTABLE, "pgtable", "page-table page allocation")                 \
	X(META, "meta", "metadata allocation (VMA, anon_vma, mm, file, pgmap)") \
	X(MIGRATE_TO_RAM, "migrate_to_ram", "a driver's migrate_to_ram fails with OOM") \
	X(COW_ALLOC, "cow_alloc", "a driver's cow_alloc finds no device page") \
	X(THP_ALLOC, "thp_alloc", "a large folio allocation by the core (order 2..9)") \
	X(POLICY, "policy", "policy-engine allocation (ranges, blocks, pins, fault buffers, streams)")

enum dmm_inject_site {
#define DMM_INJECT_ENUM(id, name, desc) DMM_INJECT_##id,
	DMM_INJECT_SITES(DMM_INJECT_ENUM)
#undef DMM_INJECT_ENUM
	DMM_NR_INJECT_SITES
};

struct dmm_inject_config {
	unsigned long countdown;  /* N > 0: the Nth call from now fails (once); 0: off */
	unsigned int probability; /* each call fails with this chance in 10^6; 0: off */
	uint64_t seed;            /* for the probability mode */
};

/*
 * dmm_inject_set - arm (or, with a zeroed config, disarm) failures at
 * @site. dmm_inject_site_by_name maps the names of DMM_INJECT_SITES
 * ("frame", "pgtable", ...) to sites.
 * Errors: -EINVAL (NULL, unknown site, probability above 10^6).
 *
 * The environment arms sites of every system at creation:
 *   DEVMM_INJECT="SITE:countdown=N;SITE:probability=PPM[:seed=S];..."
 * dmm_inject_parse applies such a string to a system (-EINVAL if it does
 * not parse; nothing is armed then).
 */
int dmm_inject_parse(struct dmm_system *sys, const char *spec);
int dmm_inject_set(struct dmm_system *sys, enum dmm_inject_site site,
		   const struct dmm_inject_config *cfg);
int dmm_inject_site_by_name(const char *name);
/* Failures injected at @site so far. */
uint64_t dmm_inject_count(struct dmm_system *sys, enum dmm_inject_site site);

/* ------------------------------------------------------------------------ */
/* Invariant checker                                                         */

/*
 * dmm_check - validate every invariant of the whole system: mapcounts
 * against page tables, refcounts and pins, anon-exclusive rules, rss,
 * page-table/VMA consistency, the frame allocator, the page cache, the
 * zero page. The system must be quiescent (no call in flight).
 * Violations are described in @report (up to @size bytes, NUL-terminated;
 * may be NULL) and, when @report is NULL, printed to stderr.
 * Returns 0 when everything holds, -EUCLEAN otherwise.
 */
int dmm_check(struct dmm_system *sys, char *report, size_t size);

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */

/*
 * One list generates the struct and its printout. X(name, description).
 */
#define DMM_STAT_LIST(X)                                                           \
	X(frames_alloc, "system frames allocated")                                \
	X(frames_free, "system frames freed")                                     \
	X(frames_alloc_fail, "system frame allocations that failed")              \
	X(fault_anon, "anonymous faults that allocated a page")                   \
	X(fault_mthp, "anonymous faults that mapped a large folio (mTHP)")          \
	X(thp_split, "large folios split into order-0 folios (split_folio)")        \
	X(fault_thp, "anonymous faults that mapped a new THP by a PMD")             \
	X(fault_huge_zero, "read faults that mapped the huge zero folio by a PMD")  \
	X(thp_split_pmd, "PMD leaves split into 512 PTEs (split_huge_pmd)")         \
	X(zap_pmd, "PMD leaves zapped whole (munmap, MADV_DONTNEED, exit)")          \
	X(fault_zero, "read faults that mapped the zero page")                    \
	X(fault_file, "file or shmem faults that mapped a page-cache page")       \
	X(fault_file_cow, "write faults that copied a file page privately")       \
	X(fault_wp_shared, "write faults that made a shared page writable")       \
	X(cow_copy, "copy-on-write faults that copied the page")                  \
	X(cow_reuse, "copy-on-write faults that reused an exclusive page")        \
	X(fault_segv, "accesses refused (the model's SIGSEGV or SIGBUS)")         \
	X(fault_oom, "faults that failed for lack of memory")                     \
	X(fault_retry, "faults that waited and retried")                          \
	X(fork, "forks")                                                          \
	X(fork_failed, "forks that failed")                                       \
	X(fork_pte_shared, "entries shared with a child at fork")                 \
	X(fork_page_copied, "maybe-pinned pages copied eagerly at fork")          \
	X(zap_page, "mapped entries zapped")                                      \
	X(munmap, "munmap calls")                                                 \
	X(mprotect, "mprotect calls")                                             \
	X(mprotect_pte, "entries changed by mprotect")                            \
	X(madvise, "madvise calls")                                               \
	X(mremap, "mremap calls")                                                 \
	X(mremap_pte, "entries moved by mremap")                                  \
	X(vma_split, "VMA splits")                                                \
	X(vma_merge, "VMA merges")                                                \
	X(pagecache_alloc, "page-cache pages allocated")                          \
	X(gup_pages, "pages referenced by get_user_pages")                        \
	X(pin_pages, "pages pinned (FOLL_PIN)")                                   \
	X(unpin_pages, "pages unpinned")                                          \
	X(dev_page_alloc, "device pages handed out (zone_device_page_init)")      \
	X(dev_page_free, "device pages given back (folio_free)")                  \
	X(fault_device_private, "faults that called migrate_to_ram")             \
	X(fault_device_wait, "faults that waited for a locked device page")       \
	X(migrate_collected, "pages collected for migration")                     \
	X(migrate_restored, "collected pages restored unmigrated")                \
	X(migrate_moved, "pages migrated to their destination")                   \
	X(migrate_holes, "holes populated by migration")                          \
	X(exclusive_made, "pages made device-exclusive")                          \
	X(exclusive_restored, "device-exclusive entries restored")                \
	X(gup_fast_fallback, "GUP-fast calls that fell back to the slow path")    \
	X(longterm_migrated, "coherent pages migrated for a long-term pin")       \
	X(hmm_faults, "pages faulted by hmm_range_fault")                         \
	X(cow_device, "copy-on-write copies placed in device memory by cow_alloc") \
	X(pgtable_alloc, "page-table pages allocated (below the pgd)")            \
	X(pgtable_free, "page-table pages freed (munmap, mremap, exit)")

struct dmm_stats {
#define DMM_STAT_FIELD(name, desc) uint64_t name;
	DMM_STAT_LIST(DMM_STAT_FIELD)
#undef DMM_STAT_FIELD
};

/* dmm_stats_get - a consistent-enough snapshot of the counters.
 * Errors: -EINVAL (NULL argument). */
int dmm_stats_get(struct dmm_system *sys, struct dmm_stats *out);

/* dmm_stats_print - one "name value  # description" line per counter. */
void dmm_stats_print(const struct dmm_stats *stats, FILE *f);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* DEVMM_DEVMM_H */
