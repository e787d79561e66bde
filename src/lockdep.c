/* SPDX-License-Identifier: MIT */
/*
 * The debug builds' lock assertions (lockdep.h): per-thread tags for the
 * folio-lock and PTL owners, and each thread's record of the mmap_locks it
 * holds. Nothing here exists without DMM_LOCKDEP (meson -Dlockdep=true).
 */
#include "internal.h"

#ifdef DMM_LOCKDEP

#include <stdarg.h>
#include <stdio.h>

static _Atomic uint32_t next_tag;
_Thread_local struct lockdep_thread lockdep_self __attribute__((tls_model("initial-exec")));

/* The first lockdep_thread_tag() of a thread. */
uint32_t lockdep_thread_tag_init(void)
{
	while (unlikely(lockdep_self.tag == 0))
		lockdep_self.tag = atomic_fetch_add_explicit(&next_tag, 1, memory_order_relaxed) % 65536;
	return lockdep_self.tag;
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

void lockdep_mmap_acquire_fail(const struct dmm_mm *mm, bool write, const char *file, int line,
			       const char *func)
{
	int i = lockdep_mmap_find(mm);

	if (i >= 0)
		lockdep_fail(file, line, func,
			     "recursive %s lock of the mmap_lock of mm %u, already held for %s since "
			     "%s:%d (with a writer queued in between, the kernel deadlocks here)",
			     write ? "write" : "read", mm->id, lockdep_self.mmap[i].write ? "write" : "read",
			     lockdep_self.mmap[i].file, lockdep_self.mmap[i].line);
	lockdep_fail(file, line, func, "more than %d mmap_locks held by one thread", LOCKDEP_MMAP_MAX);
}

void lockdep_mmap_release_fail(const struct dmm_mm *mm, bool write, const char *file, int line,
			       const char *func)
{
	int i = lockdep_mmap_find(mm);

	lockdep_fail(file, line, func, "%s unlock of the mmap_lock of mm %u, which this thread %s",
		     write ? "write" : "read", mm->id,
		     i < 0 ? "does not hold" : lockdep_self.mmap[i].write ? "holds for write" : "holds for read");
}

#else

/* ISO C wants something in every translation unit. */
typedef int lockdep_disabled;

#endif /* DMM_LOCKDEP */
