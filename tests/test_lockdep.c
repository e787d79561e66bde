/* SPDX-License-Identifier: MIT */
/*
 * The debug builds' lock assertions (src/lockdep.h) fire: each violation
 * runs in a fork()ed child of the test, which must die by SIGABRT with the
 * assertion's message on stderr; the correct use runs in a child too and
 * must exit normally. Without the assertions (meson -Dlockdep=false, the
 * plain meson default) the death tests are skipped; every `make check`
 * build has them.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

/* ------------------------------------------------------------------------ */
/* Death tests                                                               */

/* What a child did: exited with a status, or was killed by a signal; and
 * what it wrote to stderr. */
struct child_result {
	bool signaled;
	int code; /* the signal or the exit status */
	char err[2048];
};

static void run_in_child(void (*fn)(void *), void *arg, struct child_result *res)
{
	int fds[2];
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int status;

	memset(res, 0, sizeof(*res));
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], res->err + len, sizeof(res->err) - 1 - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	res->signaled = WIFSIGNALED(status);
	res->code = res->signaled ? WTERMSIG(status) : WEXITSTATUS(status);
}

/* fn(arg) must abort with @msg in its report. */
static void expect_abort_at(const char *file, int line, void (*fn)(void *), void *arg, const char *msg)
{
	struct child_result res;

#ifndef DMM_LOCKDEP
	(void)file, (void)line, (void)fn, (void)arg, (void)msg, (void)res;
	skip();
#else
	run_in_child(fn, arg, &res);
	if (!res.signaled || res.code != SIGABRT)
		h_fail(file, line, "the child %s %d instead of aborting; stderr: %s",
		       res.signaled ? "was killed by signal" : "exited with", res.code, res.err);
	if (!strstr(res.err, "devmm: lock assertion failed") || !strstr(res.err, msg))
		h_fail(file, line, "the child aborted, but its report lacks \"%s\": %s", msg, res.err);
#endif
}
#define EXPECT_ABORT(fn, arg, msg) expect_abort_at(__FILE__, __LINE__, fn, arg, msg)

/* fn(arg) must return normally (exit status 0) and report nothing. */
static void expect_clean_at(const char *file, int line, void (*fn)(void *), void *arg)
{
	struct child_result res;

	run_in_child(fn, arg, &res);
	if (res.signaled || res.code != 0 || res.err[0])
		h_fail(file, line, "the child %s %d; stderr: %s",
		       res.signaled ? "was killed by signal" : "exited with", res.code, res.err);
}
#define EXPECT_CLEAN(fn, arg) expect_clean_at(__FILE__, __LINE__, fn, arg)

/* ------------------------------------------------------------------------ */
/* The mmap_lock record                                                      */

static void read_lock_twice(void *arg)
{
	struct dmm_mm *mm = arg;

	dmm_mmap_read_lock(mm);
	dmm_mmap_read_lock(mm);
}

static void read_lock_under_write(void *arg)
{
	struct dmm_mm *mm = arg;

	mmap_write_lock(mm);
	mmap_read_lock(mm);
}

static void write_lock_under_read(void *arg)
{
	struct dmm_mm *mm = arg;

	mmap_read_lock(mm);
	mmap_write_lock(mm);
}

static void unlock_not_held(void *arg)
{
	dmm_mmap_read_unlock(arg);
}

static void read_unlock_of_write(void *arg)
{
	struct dmm_mm *mm = arg;

	mmap_write_lock(mm);
	mmap_read_unlock(mm);
}

/* Correct nesting: one lock at a time, again and again; two different
 * address spaces at once; the assertions see what is held. */
static void mmap_locks_correct(void *arg)
{
	struct dmm_mm *mm = arg, *other;

	if (dmm_mm_create(dmm_mm_system(mm), &other))
		_exit(3);
	for (int i = 0; i < 3; i++) {
		dmm_mmap_read_lock(mm);
		mmap_assert_locked(mm);
		mmap_read_lock(other);
		mmap_assert_locked(other);
		mmap_read_unlock(other);
		dmm_mmap_read_unlock(mm);
		mmap_write_lock(mm);
		mmap_assert_write_locked(mm);
		mmap_assert_locked(mm);
		mmap_write_unlock(mm);
	}
	dmm_mm_exit(other);
}

static void assert_locked_without_lock(void *arg)
{
	mmap_assert_locked((struct dmm_mm *)arg);
}

static void assert_write_locked_under_read(void *arg)
{
	struct dmm_mm *mm = arg;

	mmap_read_lock(mm);
	mmap_assert_write_locked(mm);
}

/* Another thread's hold is not this thread's. */
static void *hold_read(void *arg)
{
	mmap_read_lock((struct dmm_mm *)arg);
	return NULL; /* the thread ends holding it: only its record goes */
}

static void assert_locked_by_other_thread(void *arg)
{
	pthread_t t;

	if (pthread_create(&t, NULL, hold_read, arg) || pthread_join(t, NULL))
		_exit(3);
	mmap_assert_locked((struct dmm_mm *)arg);
}

static void test_recursive_mmap_read_lock_aborts(void **state)
{
	struct fx *f = *state;

	EXPECT_ABORT(read_lock_twice, f->mm, "recursive read lock of the mmap_lock");
}

static void test_mmap_lock_under_own_lock_aborts(void **state)
{
	struct fx *f = *state;

	EXPECT_ABORT(read_lock_under_write, f->mm, "already held for write");
	EXPECT_ABORT(write_lock_under_read, f->mm, "recursive write lock of the mmap_lock");
}

static void test_mmap_unlock_not_held_aborts(void **state)
{
	struct fx *f = *state;

	EXPECT_ABORT(unlock_not_held, f->mm, "which this thread does not hold");
	EXPECT_ABORT(read_unlock_of_write, f->mm, "which this thread holds for write");
}

static void test_mmap_assert_locked(void **state)
{
	struct fx *f = *state;

	EXPECT_CLEAN(mmap_locks_correct, f->mm);
	EXPECT_ABORT(assert_locked_without_lock, f->mm, "is not held by this thread");
	EXPECT_ABORT(assert_write_locked_under_read, f->mm, "is not held for write by this thread");
	EXPECT_ABORT(assert_locked_by_other_thread, f->mm, "is not held by this thread");
}

/* ------------------------------------------------------------------------ */
/* The folio lock                                                            */

struct page_arg {
	struct dmm_system *sys;
	struct dmm_page *page;
};

static void page_assert_unlocked(void *arg)
{
	struct page_arg *a = arg;

	lockdep_assert_page_locked(a->page);
}

static void page_locked_correct(void *arg)
{
	struct page_arg *a = arg;

	lock_page(a->sys, a->page);
	lockdep_assert_page_locked(a->page);
	unlock_page(a->sys, a->page);
	if (!trylock_page(a->page))
		_exit(3);
	lockdep_assert_page_locked(a->page);
	unlock_page(a->sys, a->page);
	/* The owner goes with the unlock: the flags are as before. */
	if (page_flags(a->page) & (PG_locked | PG_OWNER_MASK))
		_exit(4);
}

static void *lock_it(void *arg)
{
	struct page_arg *a = arg;

	lock_page(a->sys, a->page);
	return NULL;
}

static void page_locked_by_other_thread(void *arg)
{
	struct page_arg *a = arg;
	pthread_t t;

	if (pthread_create(&t, NULL, lock_it, a) || pthread_join(t, NULL))
		_exit(3);
	lockdep_assert_page_locked(a->page);
}

/* The lock was taken by the slow path, after waiting for its holder. */
static void *unlock_later(void *arg)
{
	struct page_arg *a = arg;

	usleep(20000);
	unlock_page(a->sys, a->page);
	return NULL;
}

static void page_locked_after_wait(void *arg)
{
	struct page_arg *a = arg;
	pthread_t t;

	lock_page(a->sys, a->page);
	if (pthread_create(&t, NULL, unlock_later, a))
		_exit(3);
	lock_page(a->sys, a->page); /* sleeps until the other thread unlocks */
	if (pthread_join(t, NULL))
		_exit(3);
	lockdep_assert_page_locked(a->page);
	unlock_page(a->sys, a->page);
}

static void test_page_lock_assertion(void **state)
{
	struct fx *f = *state;
	struct page_arg a = { .sys = f->sys, .page = frame_alloc(f->sys, 0) };

	assert_non_null(a.page);
	EXPECT_CLEAN(page_locked_correct, &a);
	EXPECT_CLEAN(page_locked_after_wait, &a);
	EXPECT_ABORT(page_assert_unlocked, &a, "the folio lock of page");
	EXPECT_ABORT(page_locked_by_other_thread, &a, "not by this thread");
	put_page(f->sys, a.page);
}

/* ------------------------------------------------------------------------ */
/* The PTL                                                                   */

static void ptl_correct(void *arg)
{
	struct dmm_pte_table *t = arg;

	ptl_lock(t);
	lockdep_assert_ptl_held(t);
	ptl_unlock(t);
}

static void ptl_not_held(void *arg)
{
	lockdep_assert_ptl_held((struct dmm_pte_table *)arg);
}

static void *lock_ptl(void *arg)
{
	ptl_lock(arg);
	return NULL;
}

static void ptl_held_by_other_thread(void *arg)
{
	pthread_t t;

	if (pthread_create(&t, NULL, lock_ptl, arg) || pthread_join(t, NULL))
		_exit(3);
	lockdep_assert_ptl_held((struct dmm_pte_table *)arg);
}

static void test_ptl_assertion(void **state)
{
	struct fx *f = *state;
	struct dmm_pte_table *t = pte_alloc(f->mm, TBASE);

	assert_non_null(t);
	EXPECT_CLEAN(ptl_correct, t);
	EXPECT_ABORT(ptl_not_held, t, "the PTL of PTE table");
	EXPECT_ABORT(ptl_held_by_other_thread, t, "the PTL of PTE table");
}

/* ------------------------------------------------------------------------ */
/* The assertions at the entries of devmm's functions                        */

/* One written anonymous page at TBASE. */
static struct dmm_page *mapped_page(struct fx *f)
{
	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0x1000);
	return pfn_to_page(f->sys, PFN(f->mm, TBASE));
}

struct entry_arg {
	struct fx *f;
	struct dmm_page *page;
	bool lock; /* the variant that holds what it must */
};

/* restore_exclusive_pte with the PTL (and the mmap_lock) but not the page. */
static void restore_exclusive_unlocked_page(void *arg)
{
	struct entry_arg *a = arg;
	struct dmm_mm *mm = a->f->mm;
	struct dmm_pte_table *t;

	mmap_read_lock(mm);
	t = pte_lookup(mm, TBASE);
	ptl_lock(t);
	restore_exclusive_pte(vma_lookup(mm, TBASE), a->page, t, TBASE, pte_get(pte_slot(t, TBASE)));
}

/* remove_migration_pte_locked with the page locked but not the PTL. */
static void remove_migration_pte_without_ptl(void *arg)
{
	struct entry_arg *a = arg;
	struct dmm_mm *mm = a->f->mm;
	struct dmm_pte_table *t = pte_lookup(mm, TBASE);

	mmap_read_lock(mm);
	lock_page(a->f->sys, a->page);
	remove_migration_pte_locked(a->f->sys, vma_lookup(mm, TBASE), t, TBASE, a->page, a->page);
}

static void try_to_migrate_unlocked(void *arg)
{
	struct entry_arg *a = arg;

	try_to_migrate(a->f->sys, a->page);
}

/* A driver migrates the page to a system page it allocated: locked as
 * the contract says (a->lock), or not, which migrate_page_meta catches. */
static void migrate_to_new_page(void *arg)
{
	struct entry_arg *a = arg;
	struct dmm_system *sys = a->f->sys;
	struct dmm_mm *mm = a->f->mm;
	uint64_t src = 0, dst = 0, pfn;
	struct dmm_migrate_vma m = {
		.mm = mm, .start = TBASE, .end = TBASE + PG, .src = &src, .dst = &dst,
		.flags = DMM_MIGRATE_VMA_SELECT_SYSTEM,
	};

	dmm_mmap_read_lock(mm);
	if (dmm_migrate_vma_setup(&m) || m.cpages != 1 || dmm_alloc_page(sys, &pfn))
		_exit(3);
	if (a->lock)
		dmm_lock_page(sys, pfn);
	memcpy(dmm_page_address(sys, pfn), dmm_page_address(sys, dmm_migrate_pfn_to_pfn(src)), PG);
	dst = dmm_migrate_pfn(pfn);
	dmm_migrate_vma_pages(&m);
	dmm_migrate_vma_finalize(&m);
	dmm_mmap_read_unlock(mm);
	if (!(src & DMM_MIGRATE_PFN_MIGRATE) || PFN(mm, TBASE) != pfn)
		_exit(4);
	VERIFY(mm, TBASE, PG, 0x1000);
}

static void test_page_lock_required_by_callee(void **state)
{
	struct fx *f = *state;
	struct entry_arg a = { .f = f, .page = mapped_page(f), .lock = true };

	EXPECT_CLEAN(migrate_to_new_page, &a);
	EXPECT_ABORT(restore_exclusive_unlocked_page, &a, "the folio lock of page");
	EXPECT_ABORT(try_to_migrate_unlocked, &a, "the folio lock of page");
	EXPECT_ABORT(remove_migration_pte_without_ptl, &a, "the PTL of PTE table");
	a.lock = false;
	EXPECT_ABORT(migrate_to_new_page, &a, "in migrate_page_meta()");
}

/* Public calls whose caller must hold the mmap_lock, called without it. */
static void migrate_setup_unlocked(void *arg)
{
	struct entry_arg *a = arg;
	uint64_t src, dst;
	struct dmm_migrate_vma m = {
		.mm = a->f->mm, .start = TBASE, .end = TBASE + PG, .src = &src, .dst = &dst,
		.flags = DMM_MIGRATE_VMA_SELECT_SYSTEM,
	};

	dmm_migrate_vma_setup(&m);
}

static bool ignore_invalidate(struct dmm_mmu_interval_notifier *sub,
			      const struct dmm_mmu_notifier_range *range, unsigned long cur_seq)
{
	(void)range;
	dmm_mmu_interval_set_seq(sub, cur_seq);
	return true;
}

static void hmm_unlocked(void *arg)
{
	static const struct dmm_mmu_interval_notifier_ops ops = { .invalidate = ignore_invalidate };
	struct entry_arg *a = arg;
	struct dmm_mmu_interval_notifier sub;
	uint64_t pfns[1] = { 0 };
	struct dmm_hmm_range range = {
		.notifier = &sub, .start = TBASE, .end = TBASE + PG, .hmm_pfns = pfns,
		.default_flags = DMM_HMM_PFN_REQ_FAULT,
	};

	if (dmm_mmu_interval_notifier_insert(&sub, a->f->mm, TBASE, PG, &ops))
		_exit(3);
	range.notifier_seq = dmm_mmu_interval_read_begin(&sub);
	if (a->lock)
		dmm_mmap_read_lock(a->f->mm);
	if (dmm_hmm_range_fault(&range) || !(pfns[0] & DMM_HMM_PFN_VALID))
		_exit(4);
	if (a->lock)
		dmm_mmap_read_unlock(a->f->mm);
	dmm_mmu_interval_notifier_remove(&sub);
}

static void exclusive_unlocked(void *arg)
{
	struct entry_arg *a = arg;
	uint64_t pfn;

	dmm_make_device_exclusive(a->f->mm, TBASE, NULL, &pfn);
}

static void pte_query_locked_unlocked(void *arg)
{
	struct entry_arg *a = arg;
	struct dmm_pte_info pi;

	dmm_pte_query_locked(a->f->mm, TBASE, &pi);
}

static void fault_unlocked(void *arg)
{
	struct entry_arg *a = arg;
	struct dmm_vma *v;

	mmap_read_lock(a->f->mm);
	v = vma_lookup(a->f->mm, TBASE);
	mmap_read_unlock(a->f->mm);
	handle_mm_fault(v, TBASE, FAULT_FLAG_WRITE);
}

static void munmap_under_read_lock(void *arg)
{
	struct entry_arg *a = arg;

	mmap_read_lock(a->f->mm);
	do_munmap(a->f->mm, TBASE, PG);
}

static void test_mmap_lock_required_by_callee(void **state)
{
	struct fx *f = *state;
	struct entry_arg a = { .f = f, .page = mapped_page(f), .lock = true };

	EXPECT_CLEAN(hmm_unlocked, &a);
	a.lock = false;
	EXPECT_ABORT(hmm_unlocked, &a, "in dmm_hmm_range_fault()");
	EXPECT_ABORT(migrate_setup_unlocked, &a, "the mmap_lock of mm");
	EXPECT_ABORT(exclusive_unlocked, &a, "in dmm_make_device_exclusive()");
	EXPECT_ABORT(pte_query_locked_unlocked, &a, "in dmm_pte_query_locked()");
	EXPECT_ABORT(fault_unlocked, &a, "in handle_mm_fault()");
	EXPECT_ABORT(munmap_under_read_lock, &a, "is not held for write by this thread");
}

/* A driver that holds the mmap_lock calls something that takes it. */
static void pte_query_under_lock(void *arg)
{
	struct entry_arg *a = arg;
	struct dmm_pte_info pi;

	dmm_mmap_read_lock(a->f->mm);
	if (dmm_pte_query_locked(a->f->mm, TBASE, &pi) || pi.kind != DMM_PTE_PRESENT)
		_exit(3);
	if (a->lock)
		dmm_pte_query(a->f->mm, TBASE, &pi); /* the mirror's old mistake */
	dmm_mmap_read_unlock(a->f->mm);
}

static void load_under_lock(void *arg)
{
	struct entry_arg *a = arg;
	uint32_t v;

	dmm_mmap_read_lock(a->f->mm);
	dmm_load32(a->f->mm, TBASE, &v);
}

static void munmap_under_lock(void *arg)
{
	struct entry_arg *a = arg;

	dmm_mmap_read_lock(a->f->mm);
	dmm_munmap(a->f->mm, TBASE, PG);
}

static void test_mmap_lock_taken_by_callee_under_it(void **state)
{
	struct fx *f = *state;
	struct entry_arg a = { .f = f, .page = mapped_page(f), .lock = false };

	EXPECT_CLEAN(pte_query_under_lock, &a);
	a.lock = true;
	EXPECT_ABORT(pte_query_under_lock, &a, "recursive read lock of the mmap_lock");
	EXPECT_ABORT(load_under_lock, &a, "recursive read lock of the mmap_lock");
	EXPECT_ABORT(munmap_under_lock, &a, "recursive write lock of the mmap_lock");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recursive_mmap_read_lock_aborts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mmap_lock_under_own_lock_aborts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mmap_unlock_not_held_aborts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mmap_assert_locked, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_page_lock_assertion, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ptl_assertion, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_page_lock_required_by_callee, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mmap_lock_required_by_callee, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mmap_lock_taken_by_callee_under_it, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
