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
 *
 * The subscriptions are an interval tree (itree.c): a start finds the
 * ones it overlaps in O(log n + k). An mm without subscriptions (nsubs 0,
 * the common case) does its accounting with atomics alone and never takes
 * the lock. That is safe because every access to active, nsubs and seq is
 * sequentially consistent and the lock still serialises every change of
 * nsubs and seq:
 *
 * (1) A lockless start adds to active, then reads nsubs == 0. An insert
 *     adds to nsubs, then reads active. In the single order of seq_cst
 *     operations one of them comes second and sees the other: either the
 *     start sees the subscription and takes the locked path, or the insert
 *     sees the start in active and treats it as in flight. So insert sees
 *     every invalidation in flight, with or without the lock.
 *
 * (2) An insert that finds seq even provisionally makes it odd and only
 *     then reads active; an end subtracts from active and then reads seq.
 *     If the insert saw active > 0 the end that takes it to 0 comes later
 *     in that order and sees seq odd, so it takes the lock and makes seq
 *     even (after the insert is done: the insert holds the lock). If the
 *     insert saw 0 it puts back the even value itself, and an end that saw
 *     the provisional odd value finds seq even under the lock and does
 *     nothing. (Nothing else reads seq without the lock, and no
 *     subscription can have been given the provisional value, so putting
 *     the old value back is not an ABA hazard.)
 *
 * (3) The last end makes seq even under the lock only if it still reads
 *     active == 0 there; an invalidation that started meanwhile will make
 *     its own end take that step. A start that passes the lock after it
 *     reads nsubs as of then, so it cannot miss a deferred add applied
 *     there, by the argument of (1).
 *
 * (4) seq odd implies a non-empty tree (it is made odd by a start that
 *     found a subscription, or by an insert that added one, and nothing
 *     leaves the tree while it is odd), hence nsubs > 0: the starts and
 *     ends of such a period take the lock, and walk the tree knowing it
 *     does not change until seq is even again.
 */
#include "internal.h"

struct dmm_notifier_link {
	struct itree_node node;
	struct dmm_list deferred;
};

_Static_assert(sizeof(struct dmm_notifier_link) <=
		       sizeof(((struct dmm_mmu_interval_notifier *)0)->_link),
	       "the opaque _link area of dmm_mmu_interval_notifier is too small");

#define sub_link(sub) ((struct dmm_notifier_link *)(void *)(sub)->_link)
#define sub_node(sub) (&sub_link(sub)->node)
#define sub_deferred_node(sub) (&sub_link(sub)->deferred)
#define node_sub(n) container_of((uint64_t *)(void *)(n), struct dmm_mmu_interval_notifier, _link[0])
#define deferred_sub(n)                                                                            \
	node_sub(container_of((n), struct dmm_notifier_link, deferred))

void notifier_state_init(struct dmm_notifier_state *st)
{
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->wq, NULL);
	atomic_store(&st->seq, 2);
	atomic_store(&st->active, 0);
	atomic_store(&st->nsubs, 0);
	itree_init(&st->subs);
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

static void tree_add(struct dmm_notifier_state *st, struct dmm_mmu_interval_notifier *sub)
{
	sub_node(sub)->start = sub->start;
	sub_node(sub)->last = sub->last;
	itree_insert(&st->subs, sub_node(sub));
	sub->_in_tree = true;
}

static void tree_del(struct dmm_notifier_state *st, struct dmm_mmu_interval_notifier *sub)
{
	itree_remove(&st->subs, sub_node(sub));
	sub->_in_tree = false;
	atomic_fetch_sub(&st->nsubs, 1);
}

/* Apply deferred adds and removes (lock held, no invalidation active). */
static void apply_deferred(struct dmm_notifier_state *st)
{
	while (!list_empty(&st->deferred)) {
		struct dmm_list *n = st->deferred.next;
		struct dmm_mmu_interval_notifier *sub = deferred_sub(n);

		list_del(n);
		sub->_deferred = false;
		if (sub->_in_tree)
			tree_del(st, sub);
		else
			tree_add(st, sub);
	}
}

static void inv_end(struct dmm_notifier_state *st)
{
	/* (2), (3): only the last end of an odd period takes the lock. */
	if (atomic_fetch_sub(&st->active, 1) == 1 && (atomic_load(&st->seq) & 1)) {
		pthread_mutex_lock(&st->lock);
		if (atomic_load(&st->active) == 0 && (atomic_load(&st->seq) & 1)) {
			atomic_fetch_add(&st->seq, 1);
			apply_deferred(st);
			pthread_cond_broadcast(&st->wq);
		}
		pthread_mutex_unlock(&st->lock);
	}
	atomic_fetch_add_explicit(&st->ends, 1, memory_order_relaxed);
}

struct inv_walk {
	struct dmm_mmu_notifier_range *r;
	unsigned long cur;
};

static int call_invalidate(struct itree_node *n, void *arg)
{
	struct dmm_mmu_interval_notifier *sub = node_sub(n);
	struct inv_walk *w = arg;

	return !sub->ops->invalidate(sub, w->r, w->cur);
}

int mmu_notifier_invalidate_range_start(struct dmm_mmu_notifier_range *r)
{
	struct dmm_notifier_state *st = &r->mm->notif;
	struct inv_walk w = {.r = r};
	bool any;

	atomic_fetch_add_explicit(&st->starts, 1, memory_order_relaxed);
	atomic_fetch_add(&st->active, 1);
	if (atomic_load(&st->nsubs) == 0)
		return 0; /* (1): no subscription, no lock */
	pthread_mutex_lock(&st->lock);
	any = itree_overlaps(&st->subs, r->start, r->end - 1);
	if (any)
		atomic_fetch_or(&st->seq, 1);
	w.cur = atomic_load(&st->seq);
	pthread_mutex_unlock(&st->lock);
	if (!any)
		return 0;
	/* The tree can't change while seq is odd and we are active. */
	if (itree_for_each(&st->subs, r->start, r->end - 1, call_invalidate, &w)) {
		DMM_BUG_ON(r->flags & DMM_MMU_NOTIFIER_RANGE_BLOCKABLE);
		atomic_fetch_add(&st->refused, 1);
		inv_end(st);
		return -EAGAIN;
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
	atomic_fetch_add(&st->nsubs, 1); /* before reading active: (1) */
	if (atomic_load(&st->seq) & 1) {
		/*
		 * An invalidation that overlapped a subscription is in flight
		 * and may be walking the tree without the lock: defer the add
		 * to the last end. read_begin waits for it, as for every
		 * invalidation in flight.
		 */
		sub->_deferred = true;
		list_add_tail(sub_deferred_node(sub), &st->deferred);
		__atomic_store_n(&sub->invalidate_seq, atomic_load(&st->seq), __ATOMIC_RELEASE);
	} else {
		/*
		 * Nobody walks the tree: add at once. Invalidations may still
		 * be in flight, whether or not they overlapped a subscription
		 * (and with or without the lock): any of them may still
		 * replace a page in this range, so read_begin must wait for
		 * them all. Make seq odd first, then look at active (2): with
		 * some in flight, the last end makes seq even again; with
		 * none, undo it here, and the subscription starts one below
		 * the even seq.
		 */
		unsigned long seq = atomic_fetch_or(&st->seq, 1);

		if (atomic_load(&st->active)) {
			seq |= 1;
		} else {
			atomic_store(&st->seq, seq);
			seq--;
		}
		__atomic_store_n(&sub->invalidate_seq, seq, __ATOMIC_RELEASE);
		tree_add(st, sub);
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
			atomic_fetch_sub(&st->nsubs, 1);
		} else if (sub->_in_tree) {
			sub->_deferred = true;
			list_add_tail(sub_deferred_node(sub), &st->deferred);
		}
		wait_seq = atomic_load(&st->seq);
	} else if (sub->_in_tree) {
		tree_del(st, sub);
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
