/* SPDX-License-Identifier: MIT */
/*
 * Lock assertions for debug builds: checks that the calling thread holds
 * what a function's contract requires, in the spirit of the kernel's
 * lockdep_assert_held() and mmap_assert_locked(), not a lock-order
 * validator. Like the kernel's lockdep they are a build option, off by
 * default: meson -Dlockdep=true defines DMM_LOCKDEP (the Makefile's test
 * builds: build, build-clang, build-asan, build-tsan); without it they
 * compile to nothing (the plain meson build, the installed library, the
 * build-release that `make bench` measures). They add about 14% to the
 * instructions of an anonymous page fault (docs/locking.md §5). A failed
 * assertion prints what was expected and where, then aborts.
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

struct dmm_mm;
struct dmm_page;
struct dmm_pte_table;

/* The upper 16 bits of struct dmm_page.flags: with DMM_LOCKDEP, the tag of
 * the thread that holds the folio lock (0 when unlocked). */
#define PG_OWNER_SHIFT 16
#define PG_OWNER_MASK 0xffff0000u

#ifdef DMM_LOCKDEP

/* The mmap_locks a thread holds, packed at the front of the array in the
 * order taken. A thread holds one or two at a time (fork: the parent's and
 * the child's); more is a leak. */
#define LOCKDEP_MMAP_MAX 8
struct lockdep_mmap_held {
	const struct dmm_mm *mm;
	bool write;
	const char *file; /* where it was taken */
	int line;
};

/* Everything lockdep keeps per thread. Initial-exec TLS, so that the hot
 * paths (every mmap_lock, every PTL, every folio lock) read it inline at a
 * fixed offset from the thread pointer rather than through
 * __tls_get_addr; the library is linked into programs, not dlopen()ed. */
struct lockdep_thread {
	uint32_t tag;        /* lockdep_thread_tag(); 0 until first used */
	unsigned int nr_mmap; /* entries in use in mmap[] */
	struct lockdep_mmap_held mmap[LOCKDEP_MMAP_MAX];
};
extern _Thread_local struct lockdep_thread lockdep_self __attribute__((tls_model("initial-exec")));

uint32_t lockdep_thread_tag_init(void);

/* This thread's tag: 1..65535, handed out in turn (threads beyond 65535
 * share tags, which can only hide a violation, never invent one). */
static inline uint32_t lockdep_thread_tag(void)
{
	uint32_t t = lockdep_self.tag;

	return __builtin_expect(t != 0, 1) ? t : lockdep_thread_tag_init();
}

/* Report a violated lock contract and abort. */
_Noreturn void lockdep_fail(const char *file, int line, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), cold));

/* The slot of @mm in this thread's record, or -1: a scan of the entries
 * in use only, nearly always none or one. */
static inline int lockdep_mmap_find(const struct dmm_mm *mm)
{
	unsigned int n = lockdep_self.nr_mmap;

	for (unsigned int i = 0; i < n; i++)
		if (lockdep_self.mmap[i].mm == mm)
			return (int)i;
	return -1;
}

_Noreturn void lockdep_mmap_acquire_fail(const struct dmm_mm *mm, bool write, const char *file,
					 int line, const char *func) __attribute__((cold));
_Noreturn void lockdep_mmap_release_fail(const struct dmm_mm *mm, bool write, const char *file,
					 int line, const char *func) __attribute__((cold));

/* The per-thread mmap_lock record. acquire checks and records before the
 * lock is taken (a recursion aborts instead of deadlocking); release checks
 * and forgets. One scan of the (usually one-entry) record each. */
static inline void lockdep_mmap_acquire(const struct dmm_mm *mm, bool write, const char *file,
					int line, const char *func)
{
	unsigned int n = lockdep_self.nr_mmap;

	if (__builtin_expect(lockdep_mmap_find(mm) >= 0 || n == LOCKDEP_MMAP_MAX, 0))
		lockdep_mmap_acquire_fail(mm, write, file, line, func);
	lockdep_self.mmap[n] = (struct lockdep_mmap_held){ .mm = mm, .write = write, .file = file, .line = line };
	lockdep_self.nr_mmap = n + 1;
}

static inline void lockdep_mmap_release(const struct dmm_mm *mm, bool write, const char *file,
					int line, const char *func)
{
	int i = lockdep_mmap_find(mm);
	unsigned int last;

	if (__builtin_expect(i < 0 || lockdep_self.mmap[i].write != write, 0))
		lockdep_mmap_release_fail(mm, write, file, line, func);
	last = --lockdep_self.nr_mmap;
	if ((unsigned int)i != last)
		lockdep_self.mmap[i] = lockdep_self.mmap[last];
}

/* 0: this thread does not hold mm's mmap_lock; 1: for read; 2: for write. */
static inline int lockdep_mmap_held(const struct dmm_mm *mm)
{
	int i = lockdep_mmap_find(mm);

	return i < 0 ? 0 : lockdep_self.mmap[i].write ? 2 : 1;
}

/* The folio-lock owner bits to store with PG_locked. */
static inline uint32_t page_lock_owner_bits(void) { return lockdep_thread_tag() << PG_OWNER_SHIFT; }

void lockdep_page_fail(const char *file, int line, const char *func, const struct dmm_page *p,
		       uint32_t flags) __attribute__((noreturn));

#define lockdep_assert_page_locked(p)                                                        \
	do {                                                                                 \
		uint32_t f_ = page_flags(page_folio(p));                                            \
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
		if (unlikely(lockdep_mmap_find(mm) < 0))                                     \
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
