/* SPDX-License-Identifier: MIT */
/*
 * The grace-period mechanism (src/rcu.c) on its own, white-box:
 *
 *  - a grace period waits for a read section that was running when it
 *    began, and for nothing else: not for sections that begin later, not
 *    for threads that have left theirs;
 *  - call_rcu callbacks run only after such a grace period, once each, in
 *    a batch or at rcu_barrier;
 *  - a thread that exits gives its reader slot back for the next one;
 *  - readers that dereference a shared pointer while a writer replaces it
 *    and frees the old object through call_rcu never touch freed memory
 *    (ASan and TSan check this: the test is in the concurrency suite).
 *
 * "Still waiting" is observed after the waiter has visibly started and a
 * short sleep: a correct grace period can never have ended then, so the
 * test cannot fail spuriously; a broken one is caught with high
 * probability.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "helpers.h"
#include "internal.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A reader thread that enters a section, says so, and leaves when told. */
struct reader {
	pthread_t t;
	atomic_int in, leave;
};

static void *reader_fn(void *arg)
{
	struct reader *r = arg;

	rcu_read_lock();
	rcu_read_lock(); /* nested */
	rcu_read_unlock();
	atomic_store(&r->in, 1);
	while (!atomic_load(&r->leave))
		sched_yield();
	rcu_read_unlock();
	return NULL;
}

static void reader_start(struct reader *r)
{
	atomic_store(&r->in, 0);
	atomic_store(&r->leave, 0);
	assert_int_equal(pthread_create(&r->t, NULL, reader_fn, r), 0);
	while (!atomic_load(&r->in))
		sched_yield();
}

static void reader_stop(struct reader *r)
{
	atomic_store(&r->leave, 1);
	pthread_join(r->t, NULL);
}

static atomic_int sync_started, sync_done;

static void *synchronizer(void *arg)
{
	(void)arg;
	atomic_store(&sync_started, 1);
	synchronize_rcu();
	atomic_store(&sync_done, 1);
	return NULL;
}

static void *barrier_fn(void *arg)
{
	(void)arg;
	atomic_store(&sync_started, 1);
	rcu_barrier();
	atomic_store(&sync_done, 1);
	return NULL;
}

/* Start fn in a thread, let it run a while: it must still be waiting. */
static pthread_t start_waiter(void *(*fn)(void *))
{
	pthread_t t;

	atomic_store(&sync_started, 0);
	atomic_store(&sync_done, 0);
	assert_int_equal(pthread_create(&t, NULL, fn, NULL), 0);
	while (!atomic_load(&sync_started))
		sched_yield();
	sleep_ms(50);
	return t;
}

static void test_nesting_and_idle(void **state)
{
	(void)state;
	TRUE(!rcu_read_lock_held());
	rcu_read_lock();
	rcu_read_lock();
	TRUE(rcu_read_lock_held());
	rcu_read_unlock();
	TRUE(rcu_read_lock_held());
	rcu_read_unlock();
	TRUE(!rcu_read_lock_held());
	/* Nobody reads: a grace period ends at once. */
	synchronize_rcu();
	synchronize_rcu();
}

static void test_waits_for_running_reader(void **state)
{
	struct reader r;
	pthread_t t;

	(void)state;
	reader_start(&r);
	t = start_waiter(synchronizer);
	EQ(atomic_load(&sync_done), 0);
	reader_stop(&r);
	pthread_join(t, NULL);
	EQ(atomic_load(&sync_done), 1);
}

/* A section that begins after the grace period began does not hold it up
 * (else a busy reader would starve every writer). */
static void test_later_reader_does_not_block(void **state)
{
	struct reader old, late;
	pthread_t t;

	uint64_t g0;

	(void)state;
	reader_start(&old);
	g0 = rcu_gp_seq();
	t = start_waiter(synchronizer);
	/* The grace period has begun (the counter advanced): a section that
	 * enters now is not waited for. */
	while (rcu_gp_seq() == g0)
		sched_yield();
	reader_start(&late);
	reader_stop(&old);
	pthread_join(t, NULL); /* ends while late is still inside */
	EQ(atomic_load(&sync_done), 1);
	reader_stop(&late);
}

struct counted {
	struct rcu_head rcu;
	atomic_int *runs;
};

static void counted_free(struct rcu_head *h)
{
	struct counted *c = container_of(h, struct counted, rcu);

	atomic_fetch_add(c->runs, 1);
	free(c);
}

static void test_call_rcu_after_grace_period(void **state)
{
	atomic_int runs = 0;
	struct reader r;
	pthread_t t;

	(void)state;
	rcu_barrier();
	EQ(rcu_pending(), 0);
	reader_start(&r);
	for (int i = 0; i < 10; i++) {
		struct counted *c = malloc(sizeof(*c));

		TRUE(c != NULL);
		c->runs = &runs;
		call_rcu(&c->rcu, counted_free);
	}
	EQ(rcu_pending(), 10);
	t = start_waiter(barrier_fn);
	EQ(atomic_load(&sync_done), 0);
	EQ(atomic_load(&runs), 0);
	reader_stop(&r);
	pthread_join(t, NULL);
	EQ(atomic_load(&runs), 10);
	EQ(rcu_pending(), 0);
}

/* call_rcu only queues; rcu_drain_if_due drains once a batch is queued,
 * without rcu_barrier. */
static void test_call_rcu_batches(void **state)
{
	atomic_int runs = 0;
	int n = 0;

	(void)state;
	rcu_barrier();
	while (atomic_load(&runs) == 0) {
		struct counted *c = malloc(sizeof(*c));

		TRUE(c != NULL);
		c->runs = &runs;
		call_rcu(&c->rcu, counted_free);
		EQ(atomic_load(&runs), 0);
		rcu_drain_if_due();
		TRUE(++n <= 1000);
	}
	EQ(rcu_pending(), 0);
	EQ(atomic_load(&runs), n);
}

static void *enter_leave(void *arg)
{
	(void)arg;
	rcu_read_lock();
	rcu_read_unlock();
	return NULL;
}

static void test_exited_threads_give_slots_back(void **state)
{
	unsigned int before;

	(void)state;
	enter_leave(NULL); /* this thread has its slot */
	before = rcu_nr_slots();
	for (int i = 0; i < 50; i++) {
		pthread_t t;

		assert_int_equal(pthread_create(&t, NULL, enter_leave, NULL), 0);
		pthread_join(t, NULL);
	}
	/* One thread at a time: the same spare slot serves them all (another
	 * test thread of this program may have exited meanwhile too). */
	TRUE(rcu_nr_slots() <= before + 1);
	synchronize_rcu();
}

/* ------------------------------------------------------------------------ */
/* Readers against a writer that replaces and frees                         */

struct obj {
	struct rcu_head rcu;
	atomic_uint_fast64_t a, b; /* always equal while published */
};

static _Atomic(struct obj *) shared;
static atomic_int stop;
static atomic_long checked, bad;

static void obj_free(struct rcu_head *h)
{
	struct obj *o = container_of(h, struct obj, rcu);

	atomic_store(&o->a, 1); /* a freed-then-read object shows a != b */
	atomic_store(&o->b, 2);
	free(o);
}

static void *obj_reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		rcu_read_lock();
		for (int i = 0; i < 16; i++) {
			struct obj *o = atomic_load_explicit(&shared, memory_order_acquire);
			uint64_t a = atomic_load(&o->a);

			if (atomic_load(&o->b) != a)
				atomic_fetch_add(&bad, 1);
			atomic_fetch_add(&checked, 1);
		}
		rcu_read_unlock();
	}
	return NULL;
}

static struct obj *obj_new(uint64_t v)
{
	struct obj *o = malloc(sizeof(*o));

	TRUE(o != NULL);
	atomic_init(&o->a, v);
	atomic_init(&o->b, v);
	return o;
}

static void test_readers_never_see_freed(void **state)
{
	pthread_t t[3];

	(void)state;
	atomic_store(&shared, obj_new(100));
	atomic_store(&stop, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, obj_reader, NULL), 0);
	for (uint64_t v = 101; v < 3101; v++) {
		struct obj *old;

		/* Interleave: every 32 replacements, let the readers read. */
		if (v % 32 == 0)
			for (long seen = atomic_load(&checked); atomic_load(&checked) < seen + 64;)
				sched_yield();
		old = atomic_exchange_explicit(&shared, obj_new(v), memory_order_acq_rel);

		if (v % 500 == 0)
			synchronize_rcu(), obj_free(&old->rcu); /* the waiting form */
		else
			call_rcu(&old->rcu, obj_free);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	rcu_barrier();
	obj_free(&atomic_load(&shared)->rcu);
	TRUE(atomic_load(&checked) > 0);
	EQ(atomic_load(&bad), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nesting_and_idle),
		cmocka_unit_test(test_waits_for_running_reader),
		cmocka_unit_test(test_later_reader_does_not_block),
		cmocka_unit_test(test_call_rcu_after_grace_period),
		cmocka_unit_test(test_call_rcu_batches),
		cmocka_unit_test(test_exited_threads_give_slots_back),
		cmocka_unit_test(test_readers_never_see_freed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
