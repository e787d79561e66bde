/* SPDX-License-Identifier: MIT */
/*
 * Lock assertions for debug builds: cheap checks that the calling thread
 * holds what a function's contract requires, in the spirit of the kernel's
 * lockdep_assert_held() and mmap_assert_locked(), not a lock-order
 * validator. They are on whenever NDEBUG is not defined (the default
 * debugoptimized build, the sanitizer builds) and compile to nothing with
 * NDEBUG. A failed assertion prints what was expected and where, then
 * aborts.
 *
 *   lockdep_assert_page_locked(p)   the folio lock of p is held by this
 *                                   thread (debug builds record the locking
 *                                   thread in the upper bits of p->flags)
 *   lockdep_assert_ptl_held(t)      the PTL of PTE table t is held by this
 *                                   thread (debug builds record the owner)
 *   mmap_assert_locked(mm)          this thread holds mm's mmap_lock, read
 *                                   or write
 *   mmap_assert_write_locked(mm)    this thread holds it for write
 *
 * Each thread also keeps a record of the mmap_locks it holds (which mm, in
 * which mode, taken where). Taking an mmap_lock that the thread already
 * holds, in any mode, aborts at once: the kernel's mmap_lock is a fair
 * rwsem, so a recursive read lock deadlocks as soon as a writer queues
 * between the two (devmm's rwlocks prefer readers and would hide it).
 * Unlocking one that the thread does not hold aborts too.
 *
 * Where the assertions go: at the entry of every function whose contract
 * says "caller holds ..." (the comments, the _locked suffix,
 * docs/locking.md), and of every public call that requires the caller to
 * hold the mmap_lock (dmm_migrate_vma_*, dmm_hmm_range_fault,
 * dmm_make_device_exclusive), so a driver's misuse stops at once.
 */
#ifndef DEVMM_LOCKDEP_H
#define DEVMM_LOCKDEP_H

#include <stdbool.h>
#include <stdint.h>

#ifndef NDEBUG
#define DMM_LOCKDEP 1
#endif

struct dmm_mm;
struct dmm_page;
struct dmm_pte_table;

/* The upper 16 bits of struct dmm_page.flags: in debug builds, the tag of
 * the thread that holds the folio lock (0 when unlocked). */
#define PG_OWNER_SHIFT 16
#define PG_OWNER_MASK 0xffff0000u

#ifdef DMM_LOCKDEP

/* This thread's tag: 1..65535, handed out in turn (threads beyond 65535
 * share tags, which can only hide a violation, never invent one). */
uint32_t lockdep_thread_tag(void);

/* Report a violated lock contract and abort. */
_Noreturn void lockdep_fail(const char *file, int line, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The per-thread mmap_lock record (lockdep.c). acquire checks and records
 * before the lock is taken (a recursion aborts instead of deadlocking);
 * release checks and forgets. held: 0 (not held), 1 (read), 2 (write). */
void lockdep_mmap_acquire(const struct dmm_mm *mm, bool write, const char *file, int line,
			  const char *func);
void lockdep_mmap_release(const struct dmm_mm *mm, bool write, const char *file, int line,
			  const char *func);
int lockdep_mmap_held(const struct dmm_mm *mm);

/* The folio-lock owner bits to store with PG_locked. */
static inline uint32_t page_lock_owner_bits(void) { return lockdep_thread_tag() << PG_OWNER_SHIFT; }

void lockdep_page_fail(const char *file, int line, const char *func, const struct dmm_page *p,
		       uint32_t flags) __attribute__((noreturn));

#define lockdep_assert_page_locked(p)                                                        \
	do {                                                                                 \
		uint32_t f_ = page_flags(p);                                                  \
		if (unlikely(!(f_ & PG_locked) ||                                            \
			     (f_ >> PG_OWNER_SHIFT) != lockdep_thread_tag()))                \
			lockdep_page_fail(__FILE__, __LINE__, __func__, (p), f_);            \
	} while (0)

#define lockdep_assert_ptl_held(t)                                                           \
	do {                                                                                 \
		if (unlikely(atomic_load_explicit(&(t)->ptl_owner, memory_order_relaxed) !=  \
			     lockdep_thread_tag()))                                          \
			lockdep_fail(__FILE__, __LINE__, __func__,                           \
				     "the PTL of PTE table %p is not held by this thread",   \
				     (void *)(t));                                           \
	} while (0)

#define mmap_assert_locked(mm)                                                               \
	do {                                                                                 \
		if (unlikely(!lockdep_mmap_held(mm)))                                        \
			lockdep_fail(__FILE__, __LINE__, __func__,                           \
				     "the mmap_lock of mm %u is not held by this thread",    \
				     (mm)->id);                                              \
	} while (0)

#define mmap_assert_write_locked(mm)                                                         \
	do {                                                                                 \
		if (unlikely(lockdep_mmap_held(mm) != 2))                                    \
			lockdep_fail(__FILE__, __LINE__, __func__,                           \
				     "the mmap_lock of mm %u is not held for write by this "  \
				     "thread",                                               \
				     (mm)->id);                                              \
	} while (0)

#else /* !DMM_LOCKDEP */

static inline uint32_t page_lock_owner_bits(void) { return 0; }
/* Nothing is evaluated; sizeof keeps the arguments "used". */
#define lockdep_mmap_acquire(mm, write, file, line, func) \
	((void)(mm), (void)(write), (void)(file), (void)(line), (void)(func))
#define lockdep_mmap_release(mm, write, file, line, func) \
	((void)(mm), (void)(write), (void)(file), (void)(line), (void)(func))
#define lockdep_assert_page_locked(p) ((void)sizeof(p))
#define lockdep_assert_ptl_held(t) ((void)sizeof(t))
#define mmap_assert_locked(mm) ((void)sizeof(mm))
#define mmap_assert_write_locked(mm) ((void)sizeof(mm))

#endif /* DMM_LOCKDEP */

#endif /* DEVMM_LOCKDEP_H */
