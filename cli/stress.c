/* SPDX-License-Identifier: MIT */
/*
 * devmm stress: a seeded, multi-threaded torture test with a shadow model.
 *
 * A pool of processes holds regions; each region is backed by an object
 * whose shadow says what every 32-bit word must hold: private memory has
 * one object per process (fork copies it), shared memory (shmem) one object
 * for every process that maps it. Worker threads pick random operations:
 * CPU reads, writes and atomics; device reads, writes and atomic-adds
 * through two mirror devices (one private, one coherent); migrations to and
 * from both; exclusive access; short- and long-term pins; mprotect; munmap
 * and mmap; mremap; fork and exit.
 *
 * Locking of the model: `world` (read for ordinary operations, write for
 * fork and exit), then a region slot (read for operations that keep the
 * data — reads, migrations, exclusive, pins —, write for those that change
 * data or layout), then the object (same mode; shmem objects are shared by
 * slots of several processes). So migrations race CPU and device reads on
 * the same pages, and layout changes race everything in other regions of
 * the same address space.
 *
 * Every read is compared with the shadow as it goes; at the end every word
 * of every live mapping is, and dmm_check runs. The last line is
 *   stress: seed=S ops=N words=N lost=N
 * and the exit status is 0 only when nothing was lost and every check held.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <devmm/devmm.h>

#include "mirror.h"

#define PAGE DMM_PAGE_SIZE
#define WPP (PAGE / 4)
#define MAX_PROCS 4
#define NREG 6
#define REG_PAGES 8
#define MAX_PINS 8
#define MAX_THREADS 16

#define STRESS_OPS(X)                                                                              \
	X(cpu_read) X(cpu_write) X(cpu_atomic) X(dev_read) X(dev_write) X(dev_atomic) X(to_dev)     \
	X(to_sys) X(exclusive) X(pin) X(unpin) X(mprotect) X(remap) X(mremap) X(fork) X(exit)

enum op {
#define OP_ENUM(n) OP_##n,
	STRESS_OPS(OP_ENUM)
#undef OP_ENUM
	NR_OPS
};

static const char *const op_names[] = {
#define OP_NAME(n) #n,
	STRESS_OPS(OP_NAME)
#undef OP_NAME
};

struct object {
	pthread_rwlock_t lock;
	uint32_t *shadow; /* REG_PAGES * WPP words */
	_Atomic int refs;
	bool shared;
};

struct slot {
	pthread_rwlock_t lock;
	uint64_t start;	  /* 0: nothing mapped here */
	bool writable;
	struct object *obj;
};

struct sproc {
	struct dmm_mm *mm;
	struct slot slots[NREG];
	_Atomic uint64_t next_addr;
};

struct pin {
	uint64_t pfn;
	bool used;
};

struct stress {
	struct dmm_system *sys;
	struct mirror_device *devs[2];
	pthread_rwlock_t world;
	struct sproc *procs[MAX_PROCS];
	uint64_t seed;
	unsigned long max_ops;
	double deadline;
	_Atomic unsigned long ops, counts[NR_OPS];
	_Atomic uint64_t words, lost;
	_Atomic unsigned long failed, enomem;
	bool injecting; /* DEVMM_INJECT is armed: ENOMEM is an expected outcome */
	uint64_t injected;
	_Atomic bool stop;
};

struct worker {
	struct stress *st;
	unsigned int id;
	uint64_t rng;
	struct pin pins[MAX_PINS];
};

static uint64_t rnd(struct worker *w)
{
	uint64_t x = w->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return w->rng = x;
}

static unsigned int pick(struct worker *w, unsigned int n)
{
	return (unsigned int)(rnd(w) % n);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void lost(struct stress *st, const char *what, uint64_t addr, uint32_t want, uint32_t got)
{
	if (atomic_fetch_add(&st->lost, 1) < 10)
		fprintf(stderr, "stress: LOST %s at %#" PRIx64 ": expected %#x, got %#x\n", what, addr, want, got);
}

/* ------------------------------------------------------------------------ */
/* Objects, slots, processes                                                 */

static struct object *obj_new(bool shared, const struct object *copy)
{
	struct object *o = calloc(1, sizeof(*o));

	if (!o || !(o->shadow = calloc(REG_PAGES * WPP, 4))) {
		free(o);
		return NULL;
	}
	pthread_rwlock_init(&o->lock, NULL);
	atomic_store(&o->refs, 1);
	o->shared = shared;
	if (copy)
		memcpy(o->shadow, copy->shadow, REG_PAGES * PAGE);
	return o;
}

static void obj_put(struct object *o)
{
	if (o && atomic_fetch_sub(&o->refs, 1) == 1) {
		pthread_rwlock_destroy(&o->lock);
		free(o->shadow);
		free(o);
	}
}

/* Map a fresh region in slot s (slot write-locked, or private to us). */
static int slot_map(struct stress *st, struct sproc *p, struct slot *s, bool shared)
{
	uint64_t addr = atomic_fetch_add(&p->next_addr, (REG_PAGES + 1) * PAGE), got;
	int flags = DMM_MAP_ANONYMOUS | DMM_MAP_FIXED_NOREPLACE | (shared ? DMM_MAP_SHARED : DMM_MAP_PRIVATE);
	int r;

	(void)st;
	s->obj = obj_new(shared, NULL);
	if (!s->obj)
		return -ENOMEM;
	r = dmm_mmap(p->mm, addr, REG_PAGES * PAGE, DMM_PROT_READ | DMM_PROT_WRITE, flags, NULL, 0, &got);
	if (r) {
		obj_put(s->obj);
		s->obj = NULL;
		s->start = 0;
		return r;
	}
	s->start = addr;
	s->writable = true;
	return 0;
}

static struct sproc *proc_new(struct dmm_mm *mm, uint64_t next_addr)
{
	struct sproc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->mm = mm;
	atomic_store(&p->next_addr, next_addr);
	for (int i = 0; i < NREG; i++)
		pthread_rwlock_init(&p->slots[i].lock, NULL);
	return p;
}

static void proc_free(struct stress *st, struct sproc *p)
{
	for (int d = 0; d < 2; d++) {
		struct mirror *m = mirror_find(st->devs[d], p->mm);

		if (m)
			mirror_close(m);
	}
	dmm_mm_exit(p->mm);
	for (int i = 0; i < NREG; i++) {
		obj_put(p->slots[i].obj);
		pthread_rwlock_destroy(&p->slots[i].lock);
	}
	free(p);
}

/* A live process at random (world held). */
static struct sproc *any_proc(struct worker *w, unsigned int *idx)
{
	for (unsigned int tries = 0; tries < 4 * MAX_PROCS; tries++) {
		unsigned int i = pick(w, MAX_PROCS);

		if (w->st->procs[i]) {
			if (idx)
				*idx = i;
			return w->st->procs[i];
		}
	}
	if (idx)
		*idx = 0;
	return w->st->procs[0];
}

static void lock_slot(struct slot *s, bool write)
{
	if (write)
		pthread_rwlock_wrlock(&s->lock);
	else
		pthread_rwlock_rdlock(&s->lock);
	if (s->obj) {
		if (write)
			pthread_rwlock_wrlock(&s->obj->lock);
		else
			pthread_rwlock_rdlock(&s->obj->lock);
	}
}

static void unlock_slot(struct slot *s, struct object *obj)
{
	if (obj)
		pthread_rwlock_unlock(&obj->lock);
	pthread_rwlock_unlock(&s->lock);
}

/* ------------------------------------------------------------------------ */
/* Data operations (slot locked)                                             */

static void verify_words(struct stress *st, const uint32_t *got, const uint32_t *want, uint64_t n, uint64_t addr,
			 const char *what)
{
	for (uint64_t i = 0; i < n; i++)
		if (got[i] != want[i])
			lost(st, what, addr + i * 4, want[i], got[i]);
	atomic_fetch_add(&st->words, n);
}

static int op_cpu_read(struct worker *w, struct sproc *p, struct slot *s)
{
	uint64_t pg = pick(w, REG_PAGES), n = 1 + pick(w, 2);
	uint32_t buf[2 * WPP];
	int r;

	if (pg + n > REG_PAGES)
		n = REG_PAGES - pg;
	r = dmm_read(p->mm, s->start + pg * PAGE, buf, n * PAGE);
	if (!r)
		verify_words(w->st, buf, s->obj->shadow + pg * WPP, n * WPP, s->start + pg * PAGE, "cpu read");
	return r;
}

static int op_cpu_write(struct worker *w, struct sproc *p, struct slot *s)
{
	uint64_t pg = pick(w, REG_PAGES), off = pick(w, WPP - 64), n = 1 + pick(w, 64);
	uint32_t buf[64];
	int r;

	for (uint64_t i = 0; i < n; i++)
		buf[i] = (uint32_t)rnd(w);
	r = dmm_write(p->mm, s->start + pg * PAGE + off * 4, buf, n * 4);
	if (r == -EFAULT && !s->writable)
		return 0;
	if (!r)
		memcpy(s->obj->shadow + pg * WPP + off, buf, n * 4);
	return r;
}

static int op_cpu_atomic(struct worker *w, struct sproc *p, struct slot *s)
{
	uint64_t word = pick(w, REG_PAGES * WPP);
	uint32_t add = (uint32_t)rnd(w), old;
	int r = dmm_fetch_add32(p->mm, s->start + word * 4, add, &old);

	if (r == -EFAULT && !s->writable)
		return 0;
	if (!r) {
		if (old != s->obj->shadow[word])
			lost(w->st, "cpu atomic", s->start + word * 4, s->obj->shadow[word], old);
		s->obj->shadow[word] += add;
		atomic_fetch_add(&w->st->words, 1);
	}
	return r;
}

static struct mirror *mirror_for(struct mirror_device *dev, struct sproc *p)
{
	struct mirror *m;

	return mirror_open(dev, p->mm, &m) ? NULL : m;
}

static int op_dev_read(struct worker *w, struct sproc *p, struct slot *s, struct mirror *m)
{
	uint64_t pg = pick(w, REG_PAGES);
	uint32_t buf[WPP];
	struct mirror_result res;
	int r = mirror_read(m, s->start + pg * PAGE, 1, buf, &res);

	(void)p;
	if (!r)
		verify_words(w->st, buf, s->obj->shadow + pg * WPP, WPP, s->start + pg * PAGE, "device read");
	return r == -EBUSY ? 0 : r;
}

static int op_dev_write(struct worker *w, struct sproc *p, struct slot *s, struct mirror *m)
{
	uint64_t pg = pick(w, REG_PAGES);
	uint32_t buf[WPP];
	struct mirror_result res;
	int r;

	(void)p;
	for (unsigned int i = 0; i < WPP; i++)
		buf[i] = (uint32_t)rnd(w);
	r = mirror_write(m, s->start + pg * PAGE, 1, buf, &res);
	if (!r)
		memcpy(s->obj->shadow + pg * WPP, buf, PAGE);
	if ((r == -EPERM && !s->writable) || r == -EBUSY)
		return 0; /* EBUSY: nothing was written (one page, one window) */
	return r;
}

static int op_dev_atomic(struct worker *w, struct sproc *p, struct slot *s, struct mirror *m)
{
	uint64_t pg = pick(w, REG_PAGES);
	uint32_t add = (uint32_t)rnd(w);
	struct mirror_result res;
	int r;

	(void)p;
	if (s->obj->shared)
		return 0; /* device atomics need anonymous private memory */
	r = mirror_atomic_add(m, s->start + pg * PAGE, 1, add, &res);
	if (!r)
		for (unsigned int i = 0; i < WPP; i++)
			s->obj->shadow[pg * WPP + i] += add;
	if ((r == -EFAULT || r == -EPERM) && !s->writable)
		return 0;
	/* EBUSY: the mirror's bounded retries ran out while other threads kept
	 * invalidating this address space (one page: nothing was added). */
	return r == -EBUSY ? 0 : r;
}

/* Migrations, exclusive access and pins keep the data: read lock. */
static int op_keep(struct worker *w, enum op op, struct sproc *p, struct slot *s, struct mirror *m)
{
	uint64_t pg = pick(w, REG_PAGES), n = 1 + pick(w, REG_PAGES - (unsigned int)pg);
	struct mirror_result res;
	uint8_t *buf;
	int r = 0;

	switch (op) {
	case OP_to_dev:
		buf = malloc(n * PAGE);
		if (!buf)
			return -ENOMEM;
		r = mirror_migrate_to_dev(m, s->start + pg * PAGE, n, buf, &res);
		if (!r)
			verify_words(w->st, (uint32_t *)buf, s->obj->shadow + pg * WPP, n * WPP, s->start + pg * PAGE,
				     "migrate read-back");
		free(buf);
		return (r == -ENOENT || r == -EBUSY) ? 0 : r; /* shared memory, or device full */
	case OP_to_sys:
		r = mirror_migrate_to_sys(m, s->start + pg * PAGE, n, &res);
		return r == -ENOMEM ? 0 : r;
	case OP_exclusive:
		if (s->obj->shared || !s->writable)
			return 0;
		buf = malloc(PAGE);
		if (!buf)
			return -ENOMEM;
		r = mirror_exclusive(m, s->start + pg * PAGE, 1, buf, &res);
		if (!r)
			verify_words(w->st, (uint32_t *)buf, s->obj->shadow + pg * WPP, WPP, s->start + pg * PAGE,
				     "exclusive read-back");
		free(buf);
		return r == -EBUSY ? 0 : r;
	case OP_pin: {
		unsigned int slot = pick(w, MAX_PINS);
		unsigned int flags = DMM_FOLL_PIN | (pick(w, 2) ? DMM_FOLL_LONGTERM : 0);
		long got;

		if (w->pins[slot].used)
			return 0;
		got = dmm_get_user_pages(p->mm, s->start + pg * PAGE, 1, flags, &w->pins[slot].pfn);
		if (got == 1)
			w->pins[slot].used = true;
		return (got == 1 || got == -EBUSY) ? 0 : (int)got;
	}
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------------ */
/* Layout operations (slot write-locked)                                     */

static int op_mprotect(struct worker *w, struct sproc *p, struct slot *s)
{
	bool writable = pick(w, 3) != 0;
	int r = dmm_mprotect(p->mm, s->start, REG_PAGES * PAGE,
			     DMM_PROT_READ | (writable ? DMM_PROT_WRITE : 0));

	if (!r)
		s->writable = writable;
	return r;
}

/* The old object stays locked by the caller: it is put after unlocking. */
static int op_remap(struct worker *w, struct stress *st, struct sproc *p, struct slot *s)
{
	int r = dmm_munmap(p->mm, s->start, REG_PAGES * PAGE);

	if (r)
		return r;
	s->obj = NULL;
	return slot_map(st, p, s, pick(w, 4) == 0);
}

static int op_mremap(struct worker *w, struct sproc *p, struct slot *s)
{
	uint64_t to = atomic_fetch_add(&p->next_addr, (REG_PAGES + 1) * PAGE);
	bool dontunmap = pick(w, 2);
	int r;

	r = dmm_mremap(p->mm, s->start, REG_PAGES * PAGE, REG_PAGES * PAGE,
		       DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED | (dontunmap ? DMM_MREMAP_DONTUNMAP : 0), to);
	if (r)
		return r;
	if (dontunmap)
		r = dmm_munmap(p->mm, s->start, REG_PAGES * PAGE);
	s->start = to;
	return r;
}

/* fork and exit hold the world for writing. */
static int op_fork(struct worker *w)
{
	struct stress *st = w->st;
	unsigned int pi, ci;
	struct sproc *p = any_proc(w, &pi), *c;
	struct dmm_mm *mm;
	int r;

	for (ci = 0; ci < MAX_PROCS && st->procs[ci]; ci++)
		;
	if (ci == MAX_PROCS)
		return 0;
	r = dmm_fork(p->mm, &mm);
	if (r)
		return r == -ENOMEM ? 0 : r; /* ENOMEM: an exclusive page was busy */
	c = proc_new(mm, atomic_load(&p->next_addr));
	if (!c) {
		dmm_mm_exit(mm);
		return -ENOMEM;
	}
	for (int i = 0; i < NREG; i++) {
		struct slot *ps = &p->slots[i], *cs = &c->slots[i];

		if (!ps->start)
			continue;
		cs->start = ps->start;
		cs->writable = ps->writable;
		if (ps->obj->shared) {
			atomic_fetch_add(&ps->obj->refs, 1);
			cs->obj = ps->obj;
		} else {
			cs->obj = obj_new(false, ps->obj);
			if (!cs->obj) {
				proc_free(st, c);
				return -ENOMEM;
			}
		}
	}
	st->procs[ci] = c;
	return 0;
}

static int op_exit(struct worker *w)
{
	struct stress *st = w->st;
	unsigned int i;
	struct sproc *p = any_proc(w, &i);

	if (i == 0 || !p)
		return 0; /* the first process stays */
	st->procs[i] = NULL;
	proc_free(st, p);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                  */

static const unsigned int weights[NR_OPS] = {
	[OP_cpu_read] = 12, [OP_cpu_write] = 12, [OP_cpu_atomic] = 6, [OP_dev_read] = 10,
	[OP_dev_write] = 6, [OP_dev_atomic] = 4, [OP_to_dev] = 8, [OP_to_sys] = 6,
	[OP_exclusive] = 4, [OP_pin] = 3, [OP_unpin] = 3, [OP_mprotect] = 3,
	[OP_remap] = 2, [OP_mremap] = 2, [OP_fork] = 1, [OP_exit] = 1,
};

static enum op pick_op(struct worker *w)
{
	unsigned int total = 0, x;

	for (int i = 0; i < NR_OPS; i++)
		total += weights[i];
	x = pick(w, total);
	for (int i = 0; i < NR_OPS; i++) {
		if (x < weights[i])
			return (enum op)i;
		x -= weights[i];
	}
	return OP_cpu_read;
}

static bool op_writes_slot(enum op op)
{
	return op == OP_cpu_write || op == OP_cpu_atomic || op == OP_dev_write || op == OP_dev_atomic ||
	       op == OP_mprotect || op == OP_remap || op == OP_mremap;
}

/* One operation on a slot of a process (world held for reading). */
static int slot_op(struct worker *w, enum op op)
{
	struct stress *st = w->st;
	struct sproc *p = any_proc(w, NULL);
	struct slot *s = &p->slots[pick(w, NREG)];
	struct mirror *m = NULL;
	struct object *obj;
	bool replaced;
	int r = 0;

	/* A shared object is locked through every slot that maps it, so a
	 * write through one process excludes reads through another. */
	lock_slot(s, op_writes_slot(op));
	obj = s->obj;
	if (!s->start) {
		/* An empty slot (a remap that could not map again, under fault
		 * injection) is mapped again by the next remap. */
		if (op == OP_remap)
			r = slot_map(st, p, s, pick(w, 4) == 0);
		unlock_slot(s, obj);
		return r;
	}
	if (op >= OP_dev_read && op <= OP_exclusive) {
		m = mirror_for(st->devs[pick(w, 2)], p);
		if (!m) {
			unlock_slot(s, obj);
			return -ENOMEM;
		}
	}
	switch (op) {
	case OP_cpu_read: r = op_cpu_read(w, p, s); break;
	case OP_cpu_write: r = op_cpu_write(w, p, s); break;
	case OP_cpu_atomic: r = op_cpu_atomic(w, p, s); break;
	case OP_dev_read: r = op_dev_read(w, p, s, m); break;
	case OP_dev_write: r = op_dev_write(w, p, s, m); break;
	case OP_dev_atomic: r = op_dev_atomic(w, p, s, m); break;
	case OP_to_dev: case OP_to_sys: case OP_exclusive: case OP_pin:
		r = op_keep(w, op, p, s, m);
		break;
	case OP_mprotect: r = op_mprotect(w, p, s); break;
	case OP_remap: r = op_remap(w, st, p, s); break;
	case OP_mremap: r = op_mremap(w, p, s); break;
	default: break;
	}
	replaced = s->obj != obj; /* remap: the old object goes after unlocking */
	unlock_slot(s, obj);
	if (obj && replaced)
		obj_put(obj);
	return r;
}

static void unpin_one(struct worker *w, unsigned int i)
{
	if (w->pins[i].used) {
		dmm_unpin_user_pages(w->st->sys, &w->pins[i].pfn, 1);
		w->pins[i].used = false;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;

	while (!atomic_load(&st->stop)) {
		unsigned long n = atomic_fetch_add(&st->ops, 1);
		enum op op = pick_op(w);
		int r = 0;

		if ((st->max_ops && n >= st->max_ops) || (n % 64 == 0 && now_s() > st->deadline)) {
			atomic_store(&st->stop, true);
			break;
		}
		if (op == OP_fork || op == OP_exit) {
			pthread_rwlock_wrlock(&st->world);
			r = op == OP_fork ? op_fork(w) : op_exit(w);
			pthread_rwlock_unlock(&st->world);
		} else if (op == OP_unpin) {
			unpin_one(w, pick(w, MAX_PINS));
		} else {
			pthread_rwlock_rdlock(&st->world);
			r = slot_op(w, op);
			pthread_rwlock_unlock(&st->world);
		}
		atomic_fetch_add(&st->counts[op], 1);
		if (r == -ENOMEM && st->injecting) {
			/* An injected failure: every operation fails cleanly (one
			 * page at most changes), the model is untouched. */
			atomic_fetch_add(&st->enomem, 1);
		} else if (r) {
			fprintf(stderr, "stress: %s failed: %s\n", op_names[op], strerror(-r));
			atomic_fetch_add(&st->failed, 1);
			atomic_store(&st->stop, true);
		}
	}
	for (unsigned int i = 0; i < MAX_PINS; i++)
		unpin_one(w, i);
	return NULL;
}

/* The final comparison: every word of every live mapping. */
static void verify_all(struct stress *st)
{
	uint32_t *buf = malloc(REG_PAGES * PAGE);

	for (int i = 0; buf && i < MAX_PROCS; i++) {
		struct sproc *p = st->procs[i];

		for (int j = 0; p && j < NREG; j++) {
			struct slot *s = &p->slots[j];

			if (!s->start)
				continue;
			if (dmm_read(p->mm, s->start, buf, REG_PAGES * PAGE)) {
				lost(st, "final read failed", s->start, 0, 0);
				continue;
			}
			verify_words(st, buf, s->obj->shadow, REG_PAGES * WPP, s->start, "final");
		}
	}
	free(buf);
}

/* Disarm every injection site (setup and the final check must not fail). */
static void inject_off(struct dmm_system *sys)
{
	const struct dmm_inject_config off = { 0 };

	for (int i = 0; i < DMM_NR_INJECT_SITES; i++)
		dmm_inject_set(sys, (enum dmm_inject_site)i, &off);
}

static int setup(struct stress *st)
{
	struct dmm_system_config cfg = { .nr_frames = 65536 };
	struct mirror_device_config pc = { .type = DMM_MEMORY_DEVICE_PRIVATE, .pages = 256, .chunk_pages = 64 };
	struct mirror_device_config cc = { .type = DMM_MEMORY_DEVICE_COHERENT, .pages = 256, .chunk_pages = 64 };
	struct dmm_mm *mm;
	struct sproc *p;

	if (dmm_system_create(&cfg, &st->sys))
		return -1;
	inject_off(st->sys); /* DEVMM_INJECT is armed again once the model is set up */
	if (mirror_device_create(st->sys, "npu", &pc, &st->devs[0]) ||
	    mirror_device_create(st->sys, "gpu", &cc, &st->devs[1]) || dmm_mm_create(st->sys, &mm))
		return -1;
	p = proc_new(mm, 0x10000000ULL);
	if (!p)
		return -1;
	st->procs[0] = p;
	for (int i = 0; i < NREG; i++)
		if (slot_map(st, p, &p->slots[i], i == NREG - 1))
			return -1;
	pthread_rwlock_init(&st->world, NULL);
	if (st->injecting)
		dmm_inject_parse(st->sys, getenv("DEVMM_INJECT"));
	return 0;
}

static void teardown(struct stress *st)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (st->procs[i])
			proc_free(st, st->procs[i]);
	mirror_device_destroy(st->devs[0]);
	mirror_device_destroy(st->devs[1]);
	dmm_system_destroy(st->sys);
	pthread_rwlock_destroy(&st->world);
}

int devmm_stress(int argc, char **argv)
{
	struct stress st = { .seed = (uint64_t)time(NULL) };
	unsigned int threads = 4;
	double seconds = 10;
	struct worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	bool joined[MAX_THREADS] = { false };
	char report[4096];
	bool checked;

	for (int i = 0; i + 1 < argc + 1; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (i >= argc)
			break;
		if (!v)
			goto usage;
		if (!strcmp(argv[i], "--seconds"))
			seconds = strtod(v, NULL);
		else if (!strcmp(argv[i], "--ops"))
			st.max_ops = strtoul(v, NULL, 0);
		else if (!strcmp(argv[i], "--seed"))
			st.seed = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i], "--threads"))
			threads = (unsigned int)strtoul(v, NULL, 0);
		else
			goto usage;
	}
	if (threads == 0 || threads > MAX_THREADS || seconds <= 0)
		goto usage;
	printf("stress: seed=%" PRIu64 " threads=%u seconds=%g ops=%lu\n", st.seed, threads, seconds, st.max_ops);
	fflush(stdout);
	st.injecting = getenv("DEVMM_INJECT") != NULL;
	if (setup(&st)) {
		fprintf(stderr, "stress: setup failed\n");
		return 1;
	}
	st.deadline = now_s() + seconds;
	for (unsigned int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .st = &st, .id = i, .rng = st.seed * 0x9e3779b97f4a7c15ULL + i * 7919 + 1 };
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	/* A watchdog: workers that have not stopped a minute after the end
	 * are stuck (a lost wake-up, a livelock): say so and fail, rather
	 * than hang a test run. */
	for (bool all_done = false; !all_done && now_s() < st.deadline + 60;) {
		all_done = true;
		for (unsigned int i = 0; i < threads; i++) {
			if (!joined[i] && pthread_tryjoin_np(th[i], NULL) == 0)
				joined[i] = true;
			all_done &= joined[i];
		}
		if (!all_done)
			sleep_ms(100);
	}
	for (unsigned int i = 0; i < threads; i++) {
		if (!joined[i]) {
			fprintf(stderr, "stress: seed=%" PRIu64 ": worker %u HUNG after %lu operations\n", st.seed, i,
				atomic_load(&st.ops));
			fflush(stdout);
			_exit(1);
		}
	}
	if (st.injecting) {
		for (int i = 0; i < DMM_NR_INJECT_SITES; i++)
			st.injected += dmm_inject_count(st.sys, (enum dmm_inject_site)i);
		inject_off(st.sys);
	}
	verify_all(&st);
	checked = dmm_check(st.sys, report, sizeof(report)) == 0;
	if (!checked)
		fprintf(stderr, "stress: dmm_check failed:\n%s", report);
	for (int i = 0; i < NR_OPS; i++)
		printf("  %-12s %lu\n", op_names[i], atomic_load(&st.counts[i]));
	if (st.injecting)
		printf("  injected     %" PRIu64 " failures (%lu operations ended in ENOMEM)\n", st.injected,
		       atomic_load(&st.enomem));
	if (atomic_load(&st.failed))
		printf("  FAILED       %lu operations failed unexpectedly\n", atomic_load(&st.failed));
	printf("stress: seed=%" PRIu64 " ops=%lu words=%" PRIu64 " lost=%" PRIu64 "\n", st.seed,
	       atomic_load(&st.ops) < st.max_ops || !st.max_ops ? atomic_load(&st.ops) : st.max_ops,
	       atomic_load(&st.words), atomic_load(&st.lost));
	teardown(&st);
	return (atomic_load(&st.lost) == 0 && !atomic_load(&st.failed) && checked) ? 0 : 1;
usage:
	fprintf(stderr, "usage: devmm stress [--seconds N] [--ops N] [--seed S] [--threads N]\n");
	return 2;
}
