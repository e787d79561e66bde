/* SPDX-License-Identifier: MIT */
/*
 * The debug builds' lock assertions (lockdep.h): per-thread tags for the
 * folio-lock and PTL owners, and each thread's record of the mmap_locks it
 * holds. Nothing here exists with NDEBUG.
 */
#include "internal.h"

#ifdef DMM_LOCKDEP

#include <stdarg.h>
#include <stdio.h>

static _Atomic uint32_t next_tag;
static _Thread_local uint32_t my_tag;

uint32_t lockdep_thread_tag(void)
{
	while (unlikely(my_tag == 0))
		my_tag = atomic_fetch_add_explicit(&next_tag, 1, memory_order_relaxed) % 65536;
	return my_tag;
}

_Noreturn void lockdep_fail(const char *file, int line, const char *func, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "devmm: lock assertion failed in %s() at %s:%d: ", func, file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void lockdep_page_fail(const char *file, int line, const char *func, const struct dmm_page *p,
		       uint32_t flags)
{
	if (!(flags & PG_locked))
		lockdep_fail(file, line, func, "the folio lock of page %p is not held", (const void *)p);
	lockdep_fail(file, line, func,
		     "the folio lock of page %p is held by thread tag %u, not by this thread (%u)",
		     (const void *)p, flags >> PG_OWNER_SHIFT, lockdep_thread_tag());
}

/* The mmap_locks this thread holds. A thread holds one or two at a time
 * (fork: the parent's and the child's); more is a leak. */
#define MMAP_HELD_MAX 8
static _Thread_local struct mmap_held {
	const struct dmm_mm *mm;
	bool write;
	const char *file; /* where it was taken */
	int line;
} mmap_held[MMAP_HELD_MAX];

static struct mmap_held *mmap_held_find(const struct dmm_mm *mm)
{
	for (unsigned int i = 0; i < MMAP_HELD_MAX; i++)
		if (mmap_held[i].mm == mm)
			return &mmap_held[i];
	return NULL;
}

void lockdep_mmap_acquire(const struct dmm_mm *mm, bool write, const char *file, int line,
			  const char *func)
{
	struct mmap_held *h = mmap_held_find(mm);

	if (unlikely(h))
		lockdep_fail(file, line, func,
			     "recursive %s lock of the mmap_lock of mm %u, already held for %s since "
			     "%s:%d (with a writer queued in between, the kernel deadlocks here)",
			     write ? "write" : "read", mm->id, h->write ? "write" : "read", h->file,
			     h->line);
	h = mmap_held_find(NULL);
	if (unlikely(!h))
		lockdep_fail(file, line, func, "more than %d mmap_locks held by one thread",
			     MMAP_HELD_MAX);
	*h = (struct mmap_held){ .mm = mm, .write = write, .file = file, .line = line };
}

void lockdep_mmap_release(const struct dmm_mm *mm, bool write, const char *file, int line,
			  const char *func)
{
	struct mmap_held *h = mmap_held_find(mm);

	if (unlikely(!h || h->write != write))
		lockdep_fail(file, line, func,
			     "%s unlock of the mmap_lock of mm %u, which this thread %s",
			     write ? "write" : "read", mm->id,
			     !h ? "does not hold" : h->write ? "holds for write" : "holds for read");
	*h = (struct mmap_held){ 0 };
}

int lockdep_mmap_held(const struct dmm_mm *mm)
{
	struct mmap_held *h = mmap_held_find(mm);

	return !h ? 0 : h->write ? 2 : 1;
}

#else

/* ISO C wants something in every translation unit. */
typedef int lockdep_disabled;

#endif /* DMM_LOCKDEP */
