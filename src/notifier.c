/* SPDX-License-Identifier: MIT */
/*
 * MMU interval notifiers (semantics.md §3.14): subscriptions to
 * invalidations of address ranges, the even/odd sequence protocol that
 * lets a driver mirror a range without ever keeping a translation the CPU
 * no longer has, and the invalidate_range_start/end pair that every
 * operation removing or downgrading access brackets its changes with.
 *
 * seq is odd while an invalidation that overlapped some subscription at
 * its start is in flight; active counts every invalidation in flight,
 * overlapping or not. Every invalidation does that accounting, subscribers
 * or not, and insert decides on active, not on the parity: an
 * invalidation that overlapped nothing leaves seq even but may still be
 * about to change entries in the new subscription's range (its own mm's,
 * or another process's through an rmap walk). So an insert with any
 * invalidation in flight makes seq odd and gives the subscription that
 * seq: its read_begin sleeps until every invalidation in flight has ended,
 * when the last end makes seq even again.
 *
 * Callbacks run with whatever the invalidating operation holds (mmap_lock,
 * possibly a folio lock and an rmap lock), never a PTL. They may take the
 * driver's lock and nothing of devmm's.
 */
#include "internal.h"

#define sub_node(sub) ((struct dmm_list *)&(sub)->_link[0])
#define sub_deferred_node(sub) ((struct dmm_list *)&(sub)->_link[2])
#define node_sub(n) container_of((void **)(n), struct dmm_mmu_interval_notifier, _link[0])
#define deferred_sub(n) container_of((void **)(n), struct dmm_mmu_interval_notifier, _link[2])

void notifier_state_init(struct dmm_notifier_state *st)
{
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->wq, NULL);
	atomic_store(&st->seq, 2);
	list_init(&st->subs);
	list_init(&st->deferred);
}

void notifier_state_destroy(struct dmm_notifier_state *st)
{
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->wq);
}

static unsigned long sub_seq(struct dmm_mmu_interval_notifier *sub)
{
	return __atomic_load_n(&sub->invalidate_seq, __ATOMIC_ACQUIRE);
}

static bool overlaps(const struct dmm_mmu_interval_notifier *sub, uint64_t start, uint64_t end)
{
	return sub->start <= end - 1 && start <= sub->last;
}

/* Apply deferred adds and removes (lock held, no invalidation active). */
static void apply_deferred(struct dmm_notifier_state *st)
{
	while (!list_empty(&st->deferred)) {
		struct dmm_list *n = st->deferred.next;
		struct dmm_mmu_interval_notifier *sub = deferred_sub(n);

		list_del(n);
		sub->_deferred = false;
		if (sub->_in_tree) {
			list_del(sub_node(sub));
			sub->_in_tree = false;
		} else {
			list_add_tail(sub_node(sub), &st->subs);
			sub->_in_tree = true;
		}
	}
}

static void inv_end(struct dmm_notifier_state *st)
{
	pthread_mutex_lock(&st->lock);
	if (--st->active == 0 && (atomic_load(&st->seq) & 1)) {
		atomic_fetch_add(&st->seq, 1);
		apply_deferred(st);
		pthread_cond_broadcast(&st->wq);
	}
	pthread_mutex_unlock(&st->lock);
	atomic_fetch_add_explicit(&st->ends, 1, memory_order_relaxed);
}

int mmu_notifier_invalidate_range_start(struct dmm_mmu_notifier_range *r)
{
	struct dmm_notifier_state *st = &r->mm->notif;
	unsigned long cur = 0;
	bool any = false;
	struct dmm_list *pos;

	pthread_mutex_lock(&st->lock);
	st->active++;
	list_for_each(pos, &st->subs) {
		if (overlaps(node_sub(pos), r->start, r->end)) {
			any = true;
			break;
		}
	}
	if (any)
		atomic_fetch_or(&st->seq, 1);
	cur = atomic_load(&st->seq);
	pthread_mutex_unlock(&st->lock);
	atomic_fetch_add_explicit(&st->starts, 1, memory_order_relaxed);
	if (!any)
		return 0;
	/* The list can't change while seq is odd and we are active. */
	list_for_each(pos, &st->subs) {
		struct dmm_mmu_interval_notifier *sub = node_sub(pos);

		if (!overlaps(sub, r->start, r->end))
			continue;
		if (!sub->ops->invalidate(sub, r, cur)) {
			DMM_BUG_ON(r->flags & DMM_MMU_NOTIFIER_RANGE_BLOCKABLE);
			atomic_fetch_add(&st->refused, 1);
			inv_end(st);
			return -EAGAIN;
		}
	}
	return 0;
}

void mmu_notifier_invalidate_range_end(const struct dmm_mmu_notifier_range *r)
{
	inv_end(&r->mm->notif);
}

void mmu_notifier_range_init(struct dmm_mmu_notifier_range *r, enum dmm_mmu_notifier_event ev,
			     struct dmm_mm *mm, uint64_t start, uint64_t end, void *owner)
{
	r->mm = mm;
	r->start = start;
	r->end = end;
	r->flags = DMM_MMU_NOTIFIER_RANGE_BLOCKABLE;
	r->event = ev;
	r->owner = owner;
}

void mmu_notify(enum dmm_mmu_notifier_event ev, struct dmm_mm *mm, uint64_t start, uint64_t end,
		void *owner, struct dmm_mmu_notifier_range *r)
{
	mmu_notifier_range_init(r, ev, mm, start, end, owner);
	mmu_notifier_invalidate_range_start(r); /* blockable: never refused */
}

void mmu_notifier_release(struct dmm_mm *mm)
{
	struct dmm_mmu_notifier_range r;

	mmu_notify(DMM_MMU_NOTIFY_RELEASE, mm, 0, UINT64_MAX, NULL, &r);
	mmu_notifier_invalidate_range_end(&r);
}

int dmm_mmu_interval_notifier_insert(struct dmm_mmu_interval_notifier *sub, struct dmm_mm *mm,
				     uint64_t start, uint64_t length,
				     const struct dmm_mmu_interval_notifier_ops *ops)
{
	struct dmm_notifier_state *st;

	if (!sub || !mm || !ops || !ops->invalidate || atomic_load(&mm->dead))
		return -EINVAL;
	if (length == 0 || start + length < start)
		return -EOVERFLOW;
	st = &mm->notif;
	sub->start = start;
	sub->last = start + length - 1;
	sub->ops = ops;
	sub->mm = mm;
	sub->_deferred = false;
	sub->_in_tree = false;
	mmgrab(mm);
	pthread_mutex_lock(&st->lock);
	if (st->active) {
		/*
		 * Invalidations are in flight, whether or not they overlapped a
		 * subscription: any of them may still replace a page in this
		 * range, so read_begin must wait for them all. With seq odd
		 * someone may be walking subs without the lock: defer the add
		 * to the last end. With seq even nobody walks them: add at once
		 * and make seq odd so that the last end moves it on.
		 */
		if (atomic_load(&st->seq) & 1) {
			sub->_deferred = true;
			list_add_tail(sub_deferred_node(sub), &st->deferred);
		} else {
			atomic_fetch_or(&st->seq, 1);
			list_add_tail(sub_node(sub), &st->subs);
			sub->_in_tree = true;
		}
		__atomic_store_n(&sub->invalidate_seq, atomic_load(&st->seq), __ATOMIC_RELEASE);
	} else {
		DMM_BUG_ON(atomic_load(&st->seq) & 1);
		__atomic_store_n(&sub->invalidate_seq, atomic_load(&st->seq) - 1, __ATOMIC_RELEASE);
		list_add_tail(sub_node(sub), &st->subs);
		sub->_in_tree = true;
	}
	pthread_mutex_unlock(&st->lock);
	return 0;
}

void dmm_mmu_interval_notifier_remove(struct dmm_mmu_interval_notifier *sub)
{
	struct dmm_notifier_state *st;
	struct dmm_mm *mm;
	unsigned long wait_seq = 0;

	if (!sub || !sub->mm)
		return;
	mm = sub->mm;
	st = &mm->notif;
	pthread_mutex_lock(&st->lock);
	/*
	 * Parity, not active, decides here: with seq even no invalidation in
	 * flight overlapped a subscription at its start, so none walks subs
	 * or will call this one, and it can go at once.
	 */
	if (atomic_load(&st->seq) & 1) {
		if (sub->_deferred) { /* a pending add: simply forget it */
			list_del(sub_deferred_node(sub));
			sub->_deferred = false;
		} else if (sub->_in_tree) {
			sub->_deferred = true;
			list_add_tail(sub_deferred_node(sub), &st->deferred);
		}
		wait_seq = atomic_load(&st->seq);
	} else if (sub->_in_tree) {
		list_del(sub_node(sub));
		sub->_in_tree = false;
	}
	/* After this no callback runs: wait for the invalidation in flight. */
	while (wait_seq && atomic_load(&st->seq) == wait_seq)
		pthread_cond_wait(&st->wq, &st->lock);
	pthread_mutex_unlock(&st->lock);
	sub->mm = NULL;
	mmdrop(mm);
}

unsigned long dmm_mmu_interval_read_begin(struct dmm_mmu_interval_notifier *sub)
{
	struct dmm_notifier_state *st = &sub->mm->notif;
	unsigned long seq;

	pthread_mutex_lock(&st->lock);
	seq = sub_seq(sub);
	/* seq == mm seq: an invalidation touching sub is running; sleep. */
	while (seq == atomic_load(&st->seq))
		pthread_cond_wait(&st->wq, &st->lock);
	pthread_mutex_unlock(&st->lock);
	return seq;
}

bool dmm_mmu_interval_read_retry(struct dmm_mmu_interval_notifier *sub, unsigned long seq)
{
	return sub_seq(sub) != seq;
}

bool dmm_mmu_interval_check_retry(struct dmm_mmu_interval_notifier *sub, unsigned long seq)
{
	return sub_seq(sub) != seq;
}

void dmm_mmu_interval_set_seq(struct dmm_mmu_interval_notifier *sub, unsigned long cur_seq)
{
	__atomic_store_n(&sub->invalidate_seq, cur_seq, __ATOMIC_RELEASE);
}

int dmm_mm_notifier_stats(struct dmm_mm *mm, struct dmm_notifier_stats *out)
{
	if (!mm || !out)
		return -EINVAL;
	out->invalidate_seq = atomic_load(&mm->notif.seq);
	out->starts = atomic_load(&mm->notif.starts);
	out->ends = atomic_load(&mm->notif.ends);
	out->refused = atomic_load(&mm->notif.refused);
	return 0;
}
