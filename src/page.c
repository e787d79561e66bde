/* SPDX-License-Identifier: MIT */
/*
 * Frame references and the folio lock.
 *
 * The folio lock is the PG_locked bit. A contended locker sets PG_waiters
 * and sleeps on one of WAIT_TABLE_SIZE hashed condition variables; the
 * unlocker clears both bits at once and, if PG_waiters was set, wakes the
 * bucket. The waiter sets PG_waiters while holding the bucket mutex, so the
 * wake-up can not be missed. This is the kernel's page wait table.
 *
 * Debug builds also record the locking thread in the flags' upper bits
 * (lockdep.h), cleared by the unlock, whichever thread unlocks.
 *
 * References and the lock are the folio's: every call here takes the
 * page's folio first (page_folio), so a tail page locks and counts its
 * head.
 */
#include "internal.h"

void wait_table_init(struct dmm_system *sys)
{
	for (unsigned int i = 0; i < WAIT_TABLE_SIZE; i++) {
		pthread_mutex_init(&sys->waits[i].lock, NULL);
		pthread_cond_init(&sys->waits[i].cond, NULL);
	}
}

void wait_table_destroy(struct dmm_system *sys)
{
	for (unsigned int i = 0; i < WAIT_TABLE_SIZE; i++) {
		pthread_mutex_destroy(&sys->waits[i].lock);
		pthread_cond_destroy(&sys->waits[i].cond);
	}
}

static struct dmm_wait_bucket *page_waitq(struct dmm_system *sys, struct dmm_page *p)
{
	uintptr_t h = (uintptr_t)p / sizeof(*p);

	h ^= h >> 8;
	return &sys->waits[h % WAIT_TABLE_SIZE];
}

bool trylock_page(struct dmm_page *p)
{
	p = page_folio(p);
#ifdef DMM_LOCKDEP
	/* The lock bit and its owner in one atomic step. */
	uint32_t old = atomic_load_explicit(&p->flags, memory_order_relaxed);

	do {
		if (old & PG_locked)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&p->flags, &old, old | PG_locked | page_lock_owner_bits(),
							memory_order_acquire, memory_order_relaxed));
	return true;
#else
	return !(atomic_fetch_or_explicit(&p->flags, PG_locked, memory_order_acquire) & PG_locked);
#endif
}

/*
 * Sleep until PG_locked is clear; with @take, also take the lock. Returns
 * with the bucket mutex dropped.
 */
static void page_wait(struct dmm_system *sys, struct dmm_page *p, bool take)
{
	struct dmm_wait_bucket *b = page_waitq(sys, p);

	pthread_mutex_lock(&b->lock);
	for (;;) {
		uint32_t old = atomic_load_explicit(&p->flags, memory_order_acquire);

		if (!(old & PG_locked)) {
			if (!take)
				break;
			if (atomic_compare_exchange_weak_explicit(&p->flags, &old,
								  old | PG_locked | page_lock_owner_bits(),
								  memory_order_acquire, memory_order_relaxed))
				break;
			continue;
		}
		if (!(old & PG_waiters) &&
		    !atomic_compare_exchange_weak(&p->flags, &old, old | PG_waiters))
			continue;
		pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

void lock_page(struct dmm_system *sys, struct dmm_page *p)
{
	p = page_folio(p);
	if (likely(trylock_page(p)))
		return;
	page_wait(sys, p, true);
}

void unlock_page(struct dmm_system *sys, struct dmm_page *p)
{
	uint32_t old;

	p = page_folio(p);
	old = atomic_fetch_and_explicit(&p->flags, ~(PG_locked | PG_waiters | PG_OWNER_MASK),
						 memory_order_release);

	DMM_BUG_ON(!(old & PG_locked));
	if (old & PG_waiters) {
		struct dmm_wait_bucket *b = page_waitq(sys, p);

		pthread_mutex_lock(&b->lock);
		pthread_cond_broadcast(&b->cond);
		pthread_mutex_unlock(&b->lock);
	}
}

void wait_on_page_locked(struct dmm_system *sys, struct dmm_page *p)
{
	p = page_folio(p);
	if (!page_locked(p))
		return;
	page_wait(sys, p, false);
}

_Atomic(folio_get_hook_fn) try_get_folio_hook;

struct dmm_page *get_page_unless_zero(struct dmm_system *sys, struct dmm_page *p)
{
	struct dmm_page *f;

	return try_get_folio(sys, p, 1, &f) ? NULL : f;
}

/* The last reference to folio @p is gone: give it back (to the allocator,
 * or to the device driver through folio_free). */
static void free_page_final(struct dmm_system *sys, struct dmm_page *p)
{
	struct dmm_anon_vma *av = NULL;

	DMM_BUG_ON(folio_mapcount(p) != 0);
	if (page_is_anon(p))
		av = p->mapping;
	if (page_is_zone_device(p))
		free_zone_device_page(sys, p);
	else if (unlikely(folio_test_large(p))) {
		folio_unqueue_deferred_split(sys, p);
		folio_free_large(sys, p);
	}
	else
		frame_free(sys, p);
	if (av)
		anon_vma_put(av);
}

void put_page_refs(struct dmm_system *sys, struct dmm_page *p, uint32_t n)
{
	uint32_t old;

	if (unlikely(page_is_zero(sys, p)))
		return;
	p = page_folio(p);
	old = atomic_fetch_sub_explicit(&p->refcount, n, memory_order_acq_rel);
	DMM_BUG_ON(old < n);
	if (old == n)
		free_page_final(sys, p);
}

/* ------------------------------------------------------------------------ */
/* Frames for drivers (public): by pfn.                                      */

static struct dmm_page *driver_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = sys ? pfn_to_page(sys, pfn) : NULL;

	return p && !page_is_zero(sys, p) ? p : NULL;
}

int dmm_alloc_page(struct dmm_system *sys, uint64_t *pfn)
{
	struct dmm_page *p;

	if (!sys || !pfn)
		return -EINVAL;
	p = frame_alloc(sys, 0);
	if (!p)
		return -ENOMEM;
	*pfn = page_to_pfn(sys, p);
	return 0;
}

/* A speculative reference, as GUP-fast takes: the frame may be free and
 * its pgmap going away, so the lookup is a lockless reader. */
int dmm_get_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p, *f;
	int r = -EINVAL;

	rcu_read_lock();
	p = driver_page(sys, pfn);
	if (p)
		r = try_get_folio(sys, p, 1, &f);
	rcu_read_unlock();
	return r == -EAGAIN ? -EINVAL : r;
}

void dmm_put_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = driver_page(sys, pfn);

	if (p)
		put_page(sys, p);
}

int dmm_lock_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = driver_page(sys, pfn);

	if (!p)
		return -EINVAL;
	lock_page(sys, p);
	return 0;
}

int dmm_trylock_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = driver_page(sys, pfn);

	if (!p)
		return -EINVAL;
	return trylock_page(p) ? 1 : 0;
}

void dmm_unlock_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = driver_page(sys, pfn);

	if (p)
		unlock_page(sys, p);
}

void *dmm_page_address(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = sys ? pfn_to_page(sys, pfn) : NULL;

	if (!p || page_is_device_private(p) || !sys->arena)
		return NULL;
	return page_address(sys, p);
}
