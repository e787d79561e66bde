/* SPDX-License-Identifier: MIT */
/*
 * Grace periods for lockless readers: a small user-space RCU.
 *
 * Lockless walkers (GUP-fast, pfn lookups on behalf of drivers; the list
 * is in docs/locking.md) follow pointers to objects that another thread
 * may unpublish at any moment: page-table pages unlinked by munmap, the
 * page metadata of an unregistered pgmap. A walker brackets its walk with
 * rcu_read_lock() / rcu_read_unlock(); whoever unpublishes an object frees
 * it only after a grace period, an interval in which every read section
 * that was running when the object was unpublished has ended, either by
 * waiting (synchronize_rcu) or by queueing the free (call_rcu).
 *
 * The scheme is the "memory-barrier" flavour of userspace RCU:
 *
 *  - each thread owns a reader slot, a cache line of its own on a
 *    push-only list of slots (a thread that exits gives its slot back for
 *    the next new thread, so the list is as long as the most threads ever
 *    alive at once). The slot holds 0 while the thread is outside any read
 *    section, else the grace-period counter it read on entry;
 *  - rcu_read_lock stores that counter into the thread's own slot and
 *    issues a full fence (store -> load order: the slot is visible before
 *    any pointer the section reads); rcu_read_unlock is one release store
 *    of 0. Nothing is shared-written by readers, nothing blocks; sections
 *    nest;
 *  - synchronize_rcu unpublishes nothing itself: its caller already did.
 *    It advances the counter to a new value G (full fence again), then
 *    waits, slot by slot, until each slot is 0 or holds a value >= G. A
 *    reader holding an older value may have read the old pointer; one that
 *    is at 0 when looked at, or that entered after the advance, cannot
 *    (its fence orders its loads after the unpublishing store: Dekker's
 *    argument, both sides fenced). A reader that keeps re-entering
 *    therefore never delays a grace period beyond its current section.
 *
 * The happens-before edge that ThreadSanitizer needs (every access of the
 * section before the free) is the release store that ends the section,
 * read by the waiter's acquire load.
 *
 * Rules: a read section never sleeps on a lock and never waits for a grace
 * period (synchronize_rcu and rcu_barrier refuse to run inside one: that
 * would deadlock); a call_rcu callback only frees memory. call_rcu only
 * queues: the queue is drained, one grace period per batch, by
 * rcu_drain_if_due, which the public calls that queue frees run on their
 * way out, holding no devmm lock (munmap, mremap, mmap, memunmap), and by
 * rcu_barrier (dmm_system_destroy drains everything). So no thread waits
 * for a grace period while it holds an mmap_lock.
 *
 * The domain is the whole process: one set of slots and one callback queue
 * serve every dmm_system, as one RCU serves the whole kernel.
 */
#include <sched.h>
#include <time.h>

#include "internal.h"

/* rcu_drain_if_due drains the queue once it holds this many callbacks. */
#define RCU_BATCH 64

struct rcu_slot {
	_Atomic uint64_t ctr;	/* 0: quiescent; else the grace-period counter at entry */
	_Atomic bool used;	/* owned by a live thread */
	struct rcu_slot *next;	/* immutable once the slot is on the list */
} __attribute__((aligned(CACHELINE)));

/* The slots, newest first: pushed with CAS, never removed. */
static _Atomic(struct rcu_slot *) slot_list;
/* Grace-period counter, starts at 1 (0 means "quiescent" in a slot). */
static _Atomic uint64_t gp_ctr = 1;
/* Readers of threads that could not get a slot (out of memory): counted. */
static _Atomic long slotless_readers;

static _Thread_local struct rcu_reader {
	struct rcu_slot *slot;
	unsigned int nest;
	bool slotless; /* this section is counted in slotless_readers */
} me;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;

/* The callback queue (call_rcu), in order of queueing; cb_lock protects
 * it. process_lock serialises the grace periods that drain it, so that
 * rcu_barrier also waits for a batch another thread has taken. */
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t process_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rcu_head *cb_head;
static struct rcu_head **cb_tail = &cb_head;
static unsigned long cb_count;

/* A full fence. gcc's ThreadSanitizer does not model fences (and warns
 * about them); there the seq_cst operations beside each use carry the
 * order TSan can see. */
static inline void full_fence(void)
{
#ifndef DMM_TSAN
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* The thread exits: give its slot back. */
static void slot_release(void *arg)
{
	struct rcu_slot *s = arg;

	atomic_store_explicit(&s->ctr, 0, memory_order_release);
	atomic_store_explicit(&s->used, false, memory_order_release);
	/* A destructor of another key may still enter a section: it will
	 * register again (and this destructor runs again for it). */
	me.slot = NULL;
}

static void make_key(void)
{
	if (pthread_key_create(&slot_key, slot_release))
		slot_key = (pthread_key_t)-1;
}

static struct rcu_slot *slot_get(void)
{
	struct rcu_slot *s;

	for (s = atomic_load_explicit(&slot_list, memory_order_acquire); s; s = s->next) {
		bool expected = false;

		if (!atomic_load_explicit(&s->used, memory_order_relaxed) &&
		    atomic_compare_exchange_strong(&s->used, &expected, true))
			return s;
	}
	s = aligned_alloc(CACHELINE, sizeof(*s));
	if (!s)
		return NULL;
	atomic_init(&s->ctr, 0);
	atomic_init(&s->used, true);
	s->next = atomic_load_explicit(&slot_list, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&slot_list, &s->next, s, memory_order_release,
						      memory_order_relaxed))
		;
	return s;
}

/* First read section of this thread: find it a slot. Without one (no
 * memory, no key) the thread's sections are counted in slotless_readers. */
static void reader_register(void)
{
	pthread_once(&key_once, make_key);
	if (slot_key == (pthread_key_t)-1)
		return;
	me.slot = slot_get();
	if (me.slot && pthread_setspecific(slot_key, me.slot)) {
		atomic_store_explicit(&me.slot->used, false, memory_order_release);
		me.slot = NULL;
	}
}

void rcu_read_lock(void)
{
	if (me.nest++)
		return;
	if (unlikely(!me.slot))
		reader_register();
	if (likely(me.slot)) {
		uint64_t g = atomic_load_explicit(&gp_ctr, memory_order_acquire);

#ifdef DMM_TSAN
		atomic_store_explicit(&me.slot->ctr, g, memory_order_seq_cst);
#else
		atomic_store_explicit(&me.slot->ctr, g, memory_order_relaxed);
#endif
		full_fence();
	} else {
		me.slotless = true;
		atomic_fetch_add_explicit(&slotless_readers, 1, memory_order_seq_cst);
	}
}

void rcu_read_unlock(void)
{
	DMM_BUG_ON(me.nest == 0);
	if (--me.nest)
		return;
	if (unlikely(me.slotless)) {
		me.slotless = false;
		atomic_fetch_sub_explicit(&slotless_readers, 1, memory_order_release);
		return;
	}
	atomic_store_explicit(&me.slot->ctr, 0, memory_order_release);
}

bool rcu_read_lock_held(void)
{
	return me.nest != 0;
}

static void backoff(unsigned int *spins)
{
	if (++*spins < 64) {
		sched_yield();
	} else {
		struct timespec ts = { 0, 50000 }; /* 50 us: a reader is descheduled */

		nanosleep(&ts, NULL);
	}
}

void synchronize_rcu(void)
{
	uint64_t g;

	DMM_BUG_ON(me.nest != 0); /* waiting for our own section */
	full_fence(); /* the caller's unpublishing stores before the advance */
	g = atomic_fetch_add_explicit(&gp_ctr, 1, memory_order_seq_cst) + 1;
	full_fence();
	for (struct rcu_slot *s = atomic_load_explicit(&slot_list, memory_order_acquire); s; s = s->next) {
		unsigned int spins = 0;

		for (;;) {
#ifdef DMM_TSAN
			uint64_t c = atomic_load_explicit(&s->ctr, memory_order_seq_cst);
#else
			uint64_t c = atomic_load_explicit(&s->ctr, memory_order_acquire);
#endif
			if (c == 0 || c >= g)
				break;
			backoff(&spins);
		}
	}
	for (unsigned int spins = 0; atomic_load_explicit(&slotless_readers, memory_order_acquire);)
		backoff(&spins);
}

/* Take the whole queue, wait a grace period, run it. process_lock held. */
static void process_callbacks_locked(void)
{
	struct rcu_head *list;

	pthread_mutex_lock(&cb_lock);
	list = cb_head;
	cb_head = NULL;
	cb_tail = &cb_head;
	cb_count = 0;
	pthread_mutex_unlock(&cb_lock);
	if (!list)
		return;
	synchronize_rcu();
	while (list) {
		struct rcu_head *next = list->next;

		list->func(list);
		list = next;
	}
}

void call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head))
{
	head->func = func;
	head->next = NULL;
	pthread_mutex_lock(&cb_lock);
	*cb_tail = head;
	cb_tail = &head->next;
	++cb_count;
	pthread_mutex_unlock(&cb_lock);
}

void rcu_drain_if_due(void)
{
	unsigned long n;

	pthread_mutex_lock(&cb_lock);
	n = cb_count;
	pthread_mutex_unlock(&cb_lock);
	/* One grace period for many frees; never from inside a section, and
	 * never waiting for another drainer. */
	if (n >= RCU_BATCH && !me.nest && !pthread_mutex_trylock(&process_lock)) {
		process_callbacks_locked();
		pthread_mutex_unlock(&process_lock);
	}
}

void rcu_barrier(void)
{
	DMM_BUG_ON(me.nest != 0);
	pthread_mutex_lock(&process_lock);
	process_callbacks_locked();
	pthread_mutex_unlock(&process_lock);
}

unsigned long rcu_pending(void)
{
	unsigned long n;

	pthread_mutex_lock(&cb_lock);
	n = cb_count;
	pthread_mutex_unlock(&cb_lock);
	return n;
}

unsigned int rcu_nr_slots(void)
{
	unsigned int n = 0;

	for (struct rcu_slot *s = atomic_load_explicit(&slot_list, memory_order_acquire); s; s = s->next)
		n++;
	return n;
}

uint64_t rcu_gp_seq(void)
{
	return atomic_load_explicit(&gp_ctr, memory_order_seq_cst);
}
