/* SPDX-License-Identifier: MIT */
/*
 * The trace runner (trace_run.h): a trace's records on the policy engine,
 * through the public headers only. The model (docs/trace-format.md §4):
 *
 *  - A first pass checks the whole trace with the reader (a bad line
 *    stops the run before it starts) and learns the GPUs it names and its
 *    peak of live allocation bytes, which size the system and, by default,
 *    each device (this engine does not evict: issue 16).
 *  - Records of a (PROC, stream) queue on that stream; every other record
 *    (ALLOC, FREE, ADVISE, PREFETCH, KERNEL_BEGIN, KERNEL_END, SYNC) is a
 *    barrier: the stream records above it all run first. Between barriers
 *    the runner always advances the runnable stream with the earliest
 *    virtual clock, ties to the record earlier in the file. The pick is
 *    made with LOOKAHEAD stream records read ahead (or the whole stretch,
 *    when shorter), and a stream that has run in the stretch and might
 *    have more records below is waited for (the reader reads on) before a
 *    later one is picked.
 *  - A device access goes to the managed device a block (2 MiB) at a time:
 *    a page it cannot access becomes a fault record and stalls the stream.
 *    A device's fault buffer is serviced when it holds a batch
 *    (fault_batch_count) or when none of that device's streams can run.
 *  - A CPU access is dmm_read / dmm_write / dmm_fetch_add32 on the process:
 *    a CPU fault through the core, which brings device pages back through
 *    the driver's migrate_to_ram and so the engine's policy.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include <devmm/devmm.h>
#include <devmm/policy.h>

#include "managed.h"
#include "trace.h"
#include "trace_run.h"

#define PAGE 4096ull
#define NO_PROGRESS_SERVICES 64
#define SCRATCH (2ull << 20)
/* Stream records read ahead of the pick: a stream that first appears
 * within this many records of the stretch is known when the pick is made. */
#define LOOKAHEAD 4096

/* ------------------------------------------------------------------------ */
/* A set of page addresses with a small value (open addressing, linear
 * probing, backward-shift deletion).                                        */

struct pset {
	uint64_t *key; /* 0: empty (page 0 is never managed) */
	uint8_t *val;
	size_t cap, nr;
};

static size_t pset_slot(const struct pset *s, uint64_t k)
{
	return (size_t)((k / PAGE) * 0x9e3779b97f4a7c15ull >> 20) & (s->cap - 1);
}

static int pset_put(struct pset *s, uint64_t k, uint8_t v)
{
	size_t i;

	if ((s->nr + 1) * 2 > s->cap) {
		struct pset n = { 0 };

		n.cap = s->cap ? s->cap * 2 : 1024;
		n.key = calloc(n.cap, sizeof(*n.key));
		n.val = calloc(n.cap, 1);
		if (!n.key || !n.val) {
			free(n.key);
			free(n.val);
			return -ENOMEM;
		}
		for (size_t j = 0; j < s->cap; j++)
			if (s->key[j])
				pset_put(&n, s->key[j], s->val[j]);
		free(s->key);
		free(s->val);
		*s = n;
	}
	for (i = pset_slot(s, k); s->key[i] && s->key[i] != k; i = (i + 1) & (s->cap - 1))
		;
	if (!s->key[i])
		s->nr++;
	s->key[i] = k;
	s->val[i] = v;
	return 0;
}

static int pset_get(const struct pset *s, uint64_t k)
{
	if (!s->nr)
		return -1;
	for (size_t i = pset_slot(s, k); s->key[i]; i = (i + 1) & (s->cap - 1))
		if (s->key[i] == k)
			return s->val[i];
	return -1;
}

static void pset_del(struct pset *s, uint64_t k)
{
	size_t i, j;

	if (!s->nr)
		return;
	for (i = pset_slot(s, k); s->key[i] && s->key[i] != k; i = (i + 1) & (s->cap - 1))
		;
	if (!s->key[i])
		return;
	s->key[i] = 0;
	s->nr--;
	for (j = (i + 1) & (s->cap - 1); s->key[j]; j = (j + 1) & (s->cap - 1)) {
		size_t h = pset_slot(s, s->key[j]);

		/* Move j back to the hole i when its home is not in (i, j]. */
		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			s->key[i] = s->key[j];
			s->val[i] = s->val[j];
			s->key[j] = 0;
			i = j;
		}
	}
}

static void pset_free(struct pset *s)
{
	free(s->key);
	free(s->val);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------------ */
/* State                                                                     */

struct qrec {
	struct trace_rec rec;
	uint64_t seq; /* file order */
	struct qrec *next;
};

struct rstream {
	unsigned int proc; /* engine processor: 0 CPU, 1 + N gpuN */
	uint32_t id;
	struct qrec *head, *tail;
	uint64_t done; /* bytes of the head record done */
	uint64_t clock;
	bool stalled;
	bool active; /* has had a record since the last barrier */
	uint64_t last_seq; /* the seq of its latest record */
	struct rstream *hnext;
};

struct alloc {
	uint64_t addr, len; /* len: whole pages */
	struct dmm_range_attrs attrs;
};

struct kernel {
	uint64_t id, begin_seq;
};

#define STREAM_BUCKETS 1024

struct run {
	const struct trace_run_opts *o;
	const char *path;
	FILE *err;
	struct trace_reader *r;
	struct trace_run_result *res;
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct dmm_engine *eng;
	struct managed_dev *dev[DMM_MAX_PROCS - 1];
	unsigned int nr_gpus;
	int64_t batch_count;
	/* per device: fault records in its buffer, as far as the runner knows */
	uint64_t pending[DMM_MAX_PROCS], faults_seen[DMM_MAX_PROCS];
	unsigned int idle_services[DMM_MAX_PROCS];
	uint64_t progress_seen[DMM_MAX_PROCS];
	bool force[DMM_MAX_PROCS];
	struct rstream *buckets[STREAM_BUCKETS];
	struct rstream **streams;
	size_t nr_streams, cap_streams;
	struct qrec *free_q;
	struct trace_rec barrier; /* the record that ended the stretch */
	bool have_barrier, eof;
	uint64_t queued; /* stream records read and not yet run */
	uint64_t seq, sync_time;
	uint64_t floor[DMM_MAX_PROCS]; /* the end of the last PREFETCH to each processor */
	struct alloc *allocs;
	size_t nr_allocs, cap_allocs;
	struct kernel kernels[TRACE_MAX_KERNELS];
	unsigned int nr_kernels;
	uint8_t *scratch;
	struct pset prefetched; /* page -> the processor it was prefetched to */
	struct pset thrashed;
	int failed; /* an event could not be recorded: -ENOMEM */
};

static int fail(struct run *R, unsigned int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct run *R, unsigned int line, const char *fmt, ...)
{
	va_list ap;

	if (line)
		fprintf(R->err, "%s:%u: ", R->path, line);
	else
		fprintf(R->err, "%s: ", R->path);
	va_start(ap, fmt);
	vfprintf(R->err, fmt, ap);
	va_end(ap);
	fputc('\n', R->err);
	return 2;
}

static unsigned int proc_of(struct trace_proc p)
{
	return p.is_gpu ? 1 + p.gpu : DMM_PROC_CPU;
}

/* ------------------------------------------------------------------------ */
/* Events: prefetch usefulness and thrashing, observed                       */

static void on_event(void *arg, const struct dmm_event *ev)
{
	struct run *R = arg;

	switch (ev->type) {
	case DMM_EV_MIGRATE:
		for (uint64_t i = 0; i < (ev->npages ? ev->npages : 1); i++) {
			uint64_t a = ev->addr + i * PAGE;

			if (ev->cause == DMM_CAUSE_PREFETCH) {
				if (pset_put(&R->prefetched, a, (uint8_t)ev->to))
					R->failed = -ENOMEM;
			} else {
				pset_del(&R->prefetched, a);
			}
		}
		break;
	case DMM_EV_UNMAP:
		if (R->prefetched.nr)
			for (uint64_t i = 0; i < ev->npages; i++)
				pset_del(&R->prefetched, ev->addr + i * PAGE);
		break;
	case DMM_EV_THROTTLE:
	case DMM_EV_PIN:
		if (ev->type == DMM_EV_THROTTLE)
			R->res->throttles++;
		if (pset_put(&R->thrashed, ev->addr & ~(PAGE - 1), 1))
			R->failed = -ENOMEM;
		break;
	default:
		break;
	}
	if (R->o->cb)
		R->o->cb(R->o->cb_arg, ev);
}

/* @proc completed an access of [addr, addr + len). */
static void accessed(struct run *R, unsigned int proc, uint64_t addr, uint64_t len)
{
	if (!R->prefetched.nr)
		return;
	for (uint64_t a = addr & ~(PAGE - 1); a < addr + len; a += PAGE)
		if (pset_get(&R->prefetched, a) == (int)proc) {
			R->res->prefetch_useful++;
			pset_del(&R->prefetched, a);
		}
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

static struct rstream *stream_of(struct run *R, unsigned int proc, uint32_t id)
{
	unsigned int h = (proc * 65599u + id) % STREAM_BUCKETS;
	struct rstream *s;
	struct dmm_stream_info si;

	for (s = R->buckets[h]; s; s = s->hnext)
		if (s->proc == proc && s->id == id)
			return s;
	if (R->nr_streams == R->cap_streams) {
		size_t cap = R->cap_streams ? R->cap_streams * 2 : 16;
		struct rstream **n = realloc(R->streams, cap * sizeof(*n));

		if (!n)
			return NULL;
		R->streams = n;
		R->cap_streams = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->proc = proc;
	s->id = id;
	/* A stream that first appears after a SYNC starts at it, and after
	 * a PREFETCH to its processor at the prefetch's end. */
	if (dmm_engine_wait(R->eng, proc, id, R->sync_time > R->floor[proc] ? R->sync_time : R->floor[proc]) ||
	    dmm_engine_stream(R->eng, proc, id, &si)) {
		free(s);
		return NULL;
	}
	s->clock = si.clock;
	s->hnext = R->buckets[h];
	R->buckets[h] = s;
	R->streams[R->nr_streams++] = s;
	return s;
}

static void stream_refresh(struct run *R, struct rstream *s)
{
	struct dmm_stream_info si;

	if (!dmm_engine_stream(R->eng, s->proc, s->id, &si)) {
		s->clock = si.clock;
		s->stalled = si.stalled;
	}
}

/* Read the next record: a stream record is queued, any other becomes the
 * barrier. 1: read one; 0: the stretch has ended (barrier or end). */
static int read_one(struct run *R)
{
	struct trace_rec rec;
	struct diag d;
	struct qrec *q;
	struct rstream *s;
	int rc;

	if (R->have_barrier || R->eof)
		return 0;
	rc = trace_next(R->r, &rec, &d);
	if (rc == 0) {
		R->eof = true;
		return 0;
	}
	if (rc < 0) { /* the first pass saw every line valid: only -ENOMEM, -EIO */
		fprintf(R->err, "%s\n", d.text);
		return -EIO;
	}
	R->seq++;
	if (rec.kind != TRACE_ACCESS && rec.kind != TRACE_COMPUTE) {
		R->barrier = rec;
		R->have_barrier = true;
		return 0;
	}
	s = stream_of(R, proc_of(rec.proc), rec.stream);
	q = R->free_q;
	if (q)
		R->free_q = q->next;
	else
		q = malloc(sizeof(*q));
	if (!s || !q) {
		free(q);
		return -ENOMEM;
	}
	q->rec = rec;
	q->rec.name = NULL;
	q->seq = R->seq;
	q->next = NULL;
	if (s->tail)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	s->active = true;
	s->last_seq = R->seq;
	R->queued++;
	return 1;
}

static bool before(const struct rstream *a, const struct rstream *b)
{
	return a->clock < b->clock || (a->clock == b->clock && a->head->seq < b->head->seq);
}

/* The runnable stream to advance, reading on as the rule needs; NULL when
 * none can run. <0: a read error. */
static int pick(struct run *R, struct rstream **out)
{
	for (;;) {
		struct rstream *best = NULL;
		bool wait_for_more = false;
		int rc;

		for (size_t i = 0; i < R->nr_streams; i++) {
			struct rstream *s = R->streams[i];

			if (s->stalled || !s->head)
				continue;
			if (!best || before(s, best))
				best = s;
		}
		/* An active stream with nothing queued, earlier than the pick,
		 * may have its next record below: read on first. */
		if (!R->have_barrier && !R->eof)
			for (size_t i = 0; i < R->nr_streams && !wait_for_more; i++) {
				struct rstream *s = R->streams[i];

				if (s->active && !s->stalled && !s->head && (!best || s->clock <= best->clock))
					wait_for_more = true;
			}
		if (!R->have_barrier && !R->eof && (!best || R->queued < LOOKAHEAD))
			wait_for_more = true;
		if (!wait_for_more) {
			*out = best;
			return 0;
		}
		rc = read_one(R);
		if (rc < 0)
			return rc;
	}
}

/* ------------------------------------------------------------------------ */
/* Service                                                                   */

static uint64_t dev_faults(struct run *R, unsigned int proc)
{
	struct managed_stats ms;

	managed_dev_stats(R->dev[proc - 1], &ms);
	return ms.faults;
}

static void count_faults(struct run *R, unsigned int proc)
{
	uint64_t f = dev_faults(R, proc);

	R->pending[proc] += f - R->faults_seen[proc];
	R->faults_seen[proc] = f;
}

static uint64_t progress(const struct dmm_engine_stats *st)
{
	return st->htod_pages + st->dtoh_pages + st->dtod_pages + st->remaps + st->throttled + st->cancelled +
	       st->pins;
}

static int service(struct run *R, unsigned int proc)
{
	struct dmm_service_result res;
	struct dmm_engine_stats st;
	char report[2048];
	int err;

	count_faults(R, proc);
	err = dmm_engine_service(R->eng, proc, &res);
	if (err)
		return fail(R, trace_line(R->r), "gpu%u: dmm_engine_service: %s", proc - 1, strerror(-err));
	if (R->o->check) {
		if (dmm_engine_check(R->eng, report, sizeof(report)))
			return fail(R, trace_line(R->r), "dmm_engine_check after a service:\n%s", report);
		if (dmm_check(R->sys, report, sizeof(report)))
			return fail(R, trace_line(R->r), "dmm_check after a service:\n%s", report);
	}
	R->pending[proc] = res.pending;
	R->force[proc] = false;
	for (size_t i = 0; i < R->nr_streams; i++)
		if (R->streams[i]->proc == proc)
			stream_refresh(R, R->streams[i]);
	dmm_engine_stats(R->eng, &st);
	if (progress(&st) != R->progress_seen[proc]) {
		R->progress_seen[proc] = progress(&st);
		R->idle_services[proc] = 0;
	} else if (++R->idle_services[proc] >= NO_PROGRESS_SERVICES) {
		return fail(R, trace_line(R->r),
			    "gpu%u: the engine makes no progress (is the device full? --device gpu%u:pages=N)",
			    proc - 1, proc - 1);
	}
	return 0;
}

/* Service what the rule says: a device whose buffer holds a batch (or
 * overflowed), or none of whose streams can run. 1: serviced something. */
static int service_due(struct run *R, bool *did)
{
	*did = false;
	for (unsigned int p = 1; p <= R->nr_gpus; p++) {
		bool stuck = false, runnable = false;

		for (size_t i = 0; i < R->nr_streams; i++) {
			const struct rstream *s = R->streams[i];

			if (s->proc != p)
				continue;
			if (s->stalled)
				stuck = true;
			else if (s->head)
				runnable = true;
		}
		count_faults(R, p);
		if (R->force[p] || (int64_t)R->pending[p] >= R->batch_count ||
		    ((stuck || R->pending[p]) && !runnable)) {
			int rc = service(R, p);

			if (rc)
				return rc;
			*did = true;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Records                                                                   */

static enum dmm_access access_of(enum trace_op op)
{
	return op == TRACE_READ ? DMM_ACCESS_READ : op == TRACE_WRITE ? DMM_ACCESS_WRITE : DMM_ACCESS_ATOMIC;
}

/* The next piece of an access from @off: at most to the next 2 MiB
 * boundary; an atomic is one 32-bit word per page. */
static void piece(const struct trace_rec *rec, uint64_t off, uint64_t *a, uint64_t *n, uint64_t *adv)
{
	uint64_t at = rec->addr + off, end = rec->addr + rec->bytes;
	uint64_t bound = (at | (SCRATCH - 1)) + 1;

	if (rec->op == TRACE_ATOMIC) {
		uint64_t pend = (at | (PAGE - 1)) + 1;

		*a = at & ~3ull;
		*n = 4;
		*adv = (pend < end ? pend : end) - at;
		return;
	}
	*a = at;
	*n = (bound < end ? bound : end) - at;
	*adv = *n;
}

/* Run (or go on with) the head record of @s. */
static int run_record(struct run *R, struct rstream *s)
{
	struct qrec *q = s->head;
	const struct trace_rec *rec = &q->rec;
	int err = 0;

	if (rec->kind == TRACE_COMPUTE) {
		err = dmm_engine_compute(R->eng, s->proc, s->id, rec->ns);
		if (err)
			return fail(R, rec->line, "COMPUTE: %s", strerror(-err));
	} else if (s->proc == DMM_PROC_CPU) {
		err = dmm_engine_set_cpu_stream(R->eng, s->id);
		while (!err && s->done < rec->bytes) {
			uint64_t a, n, adv;
			uint32_t old;

			piece(rec, s->done, &a, &n, &adv);
			if (rec->op == TRACE_READ)
				err = dmm_read(R->mm, a, R->scratch, n);
			else if (rec->op == TRACE_WRITE)
				err = dmm_write(R->mm, a, R->scratch, n);
			else
				err = dmm_fetch_add32(R->mm, a, 1, &old);
			if (!err)
				accessed(R, DMM_PROC_CPU, a, n);
			s->done += adv;
		}
		if (err)
			return fail(R, rec->line, "cpu %s at %#" PRIx64 ": %s", trace_op_name(rec->op),
				    rec->addr + s->done, strerror(-err));
	} else {
		struct managed_dev *dev = R->dev[s->proc - 1];

		while (s->done < rec->bytes) {
			uint64_t a, n, adv;

			piece(rec, s->done, &a, &n, &adv);
			err = managed_access(dev, s->id, a, access_of(rec->op), R->scratch, n);
			if (err == -EAGAIN || err == -ENOSPC) {
				/* Stalled on its faults (or the buffer is full:
				 * service it, then this piece runs again). */
				if (err == -ENOSPC)
					R->force[s->proc] = true;
				count_faults(R, s->proc);
				stream_refresh(R, s);
				return 0;
			}
			if (err)
				return fail(R, rec->line, "gpu%u %s at %#" PRIx64 ": the access failed: %s",
					    s->proc - 1, trace_op_name(rec->op), a, strerror(-err));
			accessed(R, s->proc, a, n);
			s->done += adv;
		}
	}
	if (R->failed)
		return fail(R, rec->line, "out of memory recording events");
	stream_refresh(R, s);
	s->head = q->next;
	if (!s->head)
		s->tail = NULL;
	s->done = 0;
	q->next = R->free_q;
	R->free_q = q;
	R->queued--;
	R->res->records++;
	return 0;
}

/* Run every queued stream record (the stretch up to the barrier). */
static int drain(struct run *R)
{
	for (;;) {
		struct rstream *s;
		bool did;
		int rc = pick(R, &s);

		if (rc)
			return fail(R, trace_line(R->r), "reading the trace: %s", strerror(-rc));
		rc = service_due(R, &did);
		if (rc)
			return rc;
		if (did)
			continue;
		if (!s)
			break;
		rc = run_record(R, s);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < R->nr_streams; i++)
		if (R->streams[i]->stalled || R->streams[i]->head)
			return fail(R, trace_line(R->r), "gpu%u stream %u never ran again", R->streams[i]->proc - 1,
				    R->streams[i]->id);
	return 0;
}

static struct alloc *alloc_at(struct run *R, uint64_t addr, size_t *idx)
{
	for (size_t i = 0; i < R->nr_allocs; i++)
		if (addr >= R->allocs[i].addr && addr < R->allocs[i].addr + R->allocs[i].len) {
			if (idx)
				*idx = i;
			return &R->allocs[i];
		}
	return NULL;
}

static uint64_t max_clock(struct run *R, bool kernel_only, uint64_t begin_seq)
{
	uint64_t t = 0;

	for (size_t i = 0; i < R->nr_streams; i++) {
		const struct rstream *s = R->streams[i];

		if (kernel_only && (s->proc == DMM_PROC_CPU || s->last_seq <= begin_seq))
			continue;
		if (s->clock > t)
			t = s->clock;
	}
	for (unsigned int p = 0; !kernel_only && p < DMM_MAX_PROCS; p++)
		if (R->floor[p] > t)
			t = R->floor[p];
	return t;
}

static int wait_all(struct run *R, uint64_t t, bool kernel_only, uint64_t begin_seq)
{
	for (size_t i = 0; i < R->nr_streams; i++) {
		struct rstream *s = R->streams[i];

		if (kernel_only && (s->proc == DMM_PROC_CPU || s->last_seq <= begin_seq))
			continue;
		if (dmm_engine_wait(R->eng, s->proc, s->id, t))
			return -ENOMEM;
		stream_refresh(R, s);
	}
	return 0;
}

static int run_barrier(struct run *R, const struct trace_rec *rec)
{
	struct alloc *al;
	size_t idx;
	int err = 0;

	switch (rec->kind) {
	case TRACE_ALLOC: {
		uint64_t len = (rec->bytes + PAGE - 1) & ~(PAGE - 1);

		if (R->nr_allocs == R->cap_allocs) {
			size_t cap = R->cap_allocs ? R->cap_allocs * 2 : 16;
			struct alloc *n = realloc(R->allocs, cap * sizeof(*n));

			if (!n)
				return fail(R, rec->line, "ALLOC: out of memory");
			R->allocs = n;
			R->cap_allocs = cap;
		}
		err = dmm_mmap(R->mm, rec->addr, len, DMM_PROT_READ | DMM_PROT_WRITE,
			       DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS | DMM_MAP_FIXED_NOREPLACE, NULL, 0, NULL);
		if (!err) {
			err = dmm_engine_range_add(R->eng, rec->addr, len);
			if (err)
				dmm_munmap(R->mm, rec->addr, len);
		}
		if (err)
			return fail(R, rec->line, "ALLOC %s: %s", rec->name, strerror(-err));
		R->allocs[R->nr_allocs++] = (struct alloc){
			.addr = rec->addr,
			.len = len,
			.attrs = { .preferred = DMM_PROC_NONE },
		};
		break;
	}
	case TRACE_FREE:
		al = alloc_at(R, rec->addr, &idx);
		if (!al)
			return fail(R, rec->line, "FREE: no allocation at %#" PRIx64, rec->addr);
		/* cudaFree: the mapping goes (the engine forgets the pages
		 * on the invalidation), then the range. */
		err = dmm_munmap(R->mm, al->addr, al->len);
		if (!err)
			err = dmm_engine_range_remove(R->eng, al->addr);
		if (err)
			return fail(R, rec->line, "FREE: %s", strerror(-err));
		R->allocs[idx] = R->allocs[--R->nr_allocs];
		break;
	case TRACE_ADVISE:
		/* The engine advises whole ranges: every allocation the
		 * record touches takes the advice. */
		for (uint64_t a = rec->addr; a < rec->addr + rec->bytes;) {
			struct dmm_range_attrs at;

			al = alloc_at(R, a, NULL);
			if (!al)
				break;
			at = al->attrs;
			if (rec->advice == TRACE_ADV_PREFERRED)
				at.preferred = proc_of(rec->proc);
			else if (rec->advice == TRACE_ADV_ACCESSED_BY)
				at.accessed_by |= 1u << proc_of(rec->proc);
			else
				at.read_mostly = rec->on ? DMM_READ_MOSTLY_ON : DMM_READ_MOSTLY_OFF;
			err = dmm_engine_advise(R->eng, al->addr, al->len, &at);
			if (err)
				return fail(R, rec->line, "ADVISE: %s", strerror(-err));
			al->attrs = at;
			a = al->addr + al->len;
		}
		break;
	case TRACE_PREFETCH: {
		/* Issued after everything above (the latest clock); the
		 * destination's streams wait for it, as work queued behind a
		 * cudaMemPrefetchAsync does. One call per allocation touched. */
		unsigned int dst = proc_of(rec->proc);
		uint64_t t = max_clock(R, false, 0), end = t;

		for (uint64_t a = rec->addr; a < rec->addr + rec->bytes;) {
			uint64_t lim, e = t;

			al = alloc_at(R, a, NULL);
			if (!al)
				break;
			lim = al->addr + al->len < rec->addr + rec->bytes ? al->addr + al->len : rec->addr + rec->bytes;
			err = dmm_engine_prefetch(R->eng, a, lim - a, dst, t, &e);
			if (err)
				return fail(R, rec->line, "PREFETCH: %s", strerror(-err));
			if (e > end)
				end = e;
			a = lim;
		}
		if (end > R->floor[dst])
			R->floor[dst] = end;
		for (size_t i = 0; i < R->nr_streams; i++) {
			struct rstream *s = R->streams[i];

			if (s->proc != dst)
				continue;
			if (dmm_engine_wait(R->eng, s->proc, s->id, end))
				return fail(R, rec->line, "PREFETCH: out of memory");
			stream_refresh(R, s);
		}
		break;
	}
	case TRACE_KERNEL_BEGIN:
		R->kernels[R->nr_kernels++] = (struct kernel){ .id = rec->id, .begin_seq = R->seq };
		break;
	case TRACE_KERNEL_END:
		for (unsigned int i = 0; i < R->nr_kernels; i++) {
			if (R->kernels[i].id != rec->id)
				continue;
			/* The kernel ends when its last stream does. */
			if (wait_all(R, max_clock(R, true, R->kernels[i].begin_seq), true, R->kernels[i].begin_seq))
				return fail(R, rec->line, "KERNEL_END: out of memory");
			R->kernels[i] = R->kernels[--R->nr_kernels];
			break;
		}
		break;
	case TRACE_SYNC:
		R->sync_time = max_clock(R, false, 0);
		if (wait_all(R, R->sync_time, false, 0))
			return fail(R, rec->line, "SYNC: out of memory");
		break;
	default:
		break;
	}
	R->res->records++;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The first pass                                                            */

struct prescan {
	uint64_t live, peak;
	unsigned int gpus; /* 1 + the highest gpu named */
	unsigned long errors;
};

static int prescan(const char *path, struct trace_reader *r, struct prescan *ps, FILE *err)
{
	struct trace_rec rec;
	struct diag d;
	int rc;

	memset(ps, 0, sizeof(*ps));
	while ((rc = trace_next(r, &rec, &d)) != 0) {
		if (rc < 0) {
			fprintf(err, "%s\n", d.text);
			if (rc != -EINVAL)
				return 2;
			ps->errors++;
			continue;
		}
		if (rec.kind == TRACE_ALLOC) {
			ps->live += (rec.bytes + PAGE - 1) / PAGE;
			if (ps->live > ps->peak)
				ps->peak = ps->live;
		} else if (rec.kind == TRACE_FREE) {
			ps->live -= (rec.bytes + PAGE - 1) / PAGE;
		}
		if ((rec.kind == TRACE_ACCESS || rec.kind == TRACE_COMPUTE || rec.kind == TRACE_PREFETCH ||
		     (rec.kind == TRACE_ADVISE && rec.advice != TRACE_ADV_READ_MOSTLY)) &&
		    rec.proc.is_gpu && rec.proc.gpu + 1 > ps->gpus)
			ps->gpus = rec.proc.gpu + 1;
	}
	(void)path;
	return ps->errors ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* A run                                                                     */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int setup(struct run *R, const struct prescan *ps)
{
	const struct trace_run_opts *o = R->o;
	struct dmm_engine_config cfg = { .policy_name = o->policy ? o->policy : "ondemand", .seed = o->seed };
	struct dmm_system_config sc = { 0 };
	const char *timing = o->timing ? o->timing : "pascal-pcie3";
	unsigned int gpus = ps->gpus;
	int err;

	for (unsigned int i = 0; i < DMM_MAX_PROCS - 1; i++)
		if (o->dev_pages[i] && i + 1 > gpus)
			gpus = i + 1;
	if (gpus > DMM_MAX_PROCS - 1)
		return fail(R, 0, "the trace names gpu%u: the engine has at most %u devices", gpus - 1,
			    DMM_MAX_PROCS - 1);
	if (!dmm_policy_find(cfg.policy_name)) {
		fprintf(R->err, "%s: unknown policy '%s' (policies:", R->path, cfg.policy_name);
		for (unsigned int i = 0; dmm_policy_name_at(i); i++)
			fprintf(R->err, " %s", dmm_policy_name_at(i));
		fprintf(R->err, ")\n");
		return 2;
	}
	if (dmm_timing_parse(timing, &cfg.timing))
		return fail(R, 0, "unknown timing '%s' (pascal-pcie3, uvmsmart-pcie3, custom:ALPHA_NS:BETA_MBPS)",
			    timing);
	snprintf(R->res->policy, sizeof(R->res->policy), "%s", cfg.policy_name);
	snprintf(R->res->timing, sizeof(R->res->timing), "%s", timing);
	sc.nr_frames = ps->peak + 4096;
	if (sc.nr_frames > DMM_MAX_SYSTEM_FRAMES)
		return fail(R, 0, "the trace's allocations need %" PRIu64 " pages, more than devmm's %lu", ps->peak,
			    (unsigned long)DMM_MAX_SYSTEM_FRAMES);
	if ((err = dmm_system_create(&sc, &R->sys)) || (err = dmm_mm_create(R->sys, &R->mm)) ||
	    (err = dmm_engine_create(R->mm, &cfg, &R->eng)))
		return fail(R, 0, "creating the engine: %s", strerror(-err));
	for (unsigned int i = 0; i < o->nr_sets; i++) {
		err = dmm_engine_set(R->eng, o->sets[i].name, o->sets[i].value);
		if (err == -ENOENT)
			return fail(R, 0, "--set %s: no such tunable in the engine or policy %s", o->sets[i].name,
				    cfg.policy_name);
		if (err)
			return fail(R, 0, "--set %s=%" PRId64 ": %s", o->sets[i].name, o->sets[i].value,
				    err == -ERANGE ? "out of range" : strerror(-err));
	}
	for (unsigned int i = 0; i < gpus; i++) {
		uint64_t pages = o->dev_pages[i] ? o->dev_pages[i] : (ps->peak ? ps->peak : 1);

		err = managed_dev_create(R->sys, R->eng, pages, 0, &R->dev[i]);
		if (err)
			return fail(R, 0, "gpu%u: creating the device (%" PRIu64 " pages): %s", i, pages,
				    strerror(-err));
		R->res->gpu_pages[i] = pages;
	}
	R->nr_gpus = R->res->nr_gpus = gpus;
	dmm_engine_get(R->eng, "fault_batch_count", &R->batch_count);
	R->scratch = calloc(1, SCRATCH);
	if (!R->scratch)
		return fail(R, 0, "out of memory");
	memset(R->scratch, 0x5a, SCRATCH);
	dmm_engine_set_event_cb(R->eng, on_event, R);
	if (o->events)
		dmm_engine_events_jsonl(R->eng, o->events);
	return 0;
}

static void collect(struct run *R)
{
	struct trace_run_result *res = R->res;
	struct rusage ru;
	long n;
	unsigned int i;

	dmm_engine_stats(R->eng, &res->st);
	n = dmm_engine_batch_htod(R->eng, NULL, 0);
	if (n > 0 && (res->batch_htod = calloc((size_t)n, sizeof(uint64_t)))) {
		dmm_engine_batch_htod(R->eng, res->batch_htod, (size_t)n);
		res->nr_batches = (size_t)n;
	}
	res->thrash_pages = R->thrashed.nr;
	for (i = 0; dmm_engine_tunable_name_at(R->eng, i); i++)
		;
	res->params = calloc(i ? i : 1, sizeof(*res->params));
	if (res->params)
		for (res->nr_params = i, i = 0; i < res->nr_params; i++) {
			res->params[i].name = dmm_engine_tunable_name_at(R->eng, i);
			dmm_engine_get(R->eng, res->params[i].name, &res->params[i].value);
		}
	if (!getrusage(RUSAGE_SELF, &ru))
		res->host_peak_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
}

static void teardown(struct run *R)
{
	if (R->eng) {
		dmm_engine_set_event_cb(R->eng, NULL, NULL);
		dmm_engine_events_jsonl(R->eng, NULL);
		dmm_engine_destroy(R->eng);
	}
	for (unsigned int i = 0; i < DMM_MAX_PROCS - 1; i++)
		managed_dev_destroy(R->dev[i]);
	if (R->mm)
		dmm_mm_exit(R->mm);
	if (R->sys)
		dmm_system_destroy(R->sys);
	for (size_t i = 0; i < R->nr_streams; i++) {
		struct rstream *s = R->streams[i];

		while (s->head) {
			struct qrec *q = s->head;

			s->head = q->next;
			free(q);
		}
		free(s);
	}
	while (R->free_q) {
		struct qrec *q = R->free_q;

		R->free_q = q->next;
		free(q);
	}
	free(R->streams);
	free(R->allocs);
	free(R->scratch);
	pset_free(&R->prefetched);
	pset_free(&R->thrashed);
}

/* Open the trace a second time (the first pass consumed the first). */
typedef int (*reopen_fn)(void *arg, struct trace_reader **r, FILE *err);

static int run_trace(const struct trace_run_opts *o, const char *path, reopen_fn reopen, void *arg,
		     struct trace_run_result *res, FILE *err)
{
	struct run R = { .o = o, .path = path, .err = err, .res = res };
	struct prescan ps;
	uint64_t t0;
	int rc;

	memset(res, 0, sizeof(*res));
	if (reopen(arg, &R.r, err))
		return 2;
	rc = prescan(path, R.r, &ps, err);
	trace_close(R.r);
	R.r = NULL;
	if (rc)
		return rc;
	if (reopen(arg, &R.r, err))
		return 2;
	t0 = now_ns();
	rc = setup(&R, &ps);
	while (!rc) {
		rc = drain(&R);
		if (rc || !R.have_barrier)
			break;
		R.have_barrier = false;
		for (size_t i = 0; i < R.nr_streams; i++)
			R.streams[i]->active = false;
		rc = run_barrier(&R, &R.barrier);
	}
	if (!rc) {
		res->host_time_ns = now_ns() - t0;
		collect(&R);
	}
	teardown(&R);
	trace_close(R.r);
	if (rc)
		trace_run_result_free(res);
	return rc;
}

struct mem_src {
	const char *path, *text;
	size_t len;
};

static int reopen_mem(void *arg, struct trace_reader **r, FILE *err)
{
	struct mem_src *m = arg;

	if (trace_open_mem(m->path, m->text, m->len, r)) {
		fprintf(err, "%s: out of memory\n", m->path);
		return -ENOMEM;
	}
	return 0;
}

static int reopen_file(void *arg, struct trace_reader **r, FILE *err)
{
	struct diag d;

	if (trace_open(arg, r, &d)) {
		fprintf(err, "%s\n", d.text);
		return -EIO;
	}
	return 0;
}

int trace_run_mem(const struct trace_run_opts *o, const char *path, const char *text, size_t len,
		  struct trace_run_result *res, FILE *err)
{
	struct mem_src m = { path, text, len };

	return run_trace(o, path, reopen_mem, &m, res, err);
}

int trace_run_file(const struct trace_run_opts *o, const char *path, struct trace_run_result *res, FILE *err)
{
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	int rc;

	if (strcmp(path, "-"))
		return run_trace(o, path, reopen_file, (void *)path, res, err);
	/* Standard input is read twice: keep it. */
	do {
		if (len == cap) {
			char *t = realloc(text, cap = cap ? cap * 2 : 1 << 16);

			if (!t) {
				free(text);
				fprintf(err, "-: out of memory\n");
				return 2;
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len, stdin);
		len += n;
	} while (n);
	rc = trace_run_mem(o, "-", text ? text : "", len, res, err);
	free(text);
	return rc;
}

void trace_run_result_free(struct trace_run_result *res)
{
	free(res->batch_htod);
	free(res->params);
	res->batch_htod = NULL;
	res->params = NULL;
	res->nr_batches = res->nr_params = 0;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */

#define J(v) json_integer((json_int_t)(v))

void *trace_run_json(const struct trace_run_result *res)
{
	const struct dmm_engine_stats *st = &res->st;
	json_t *o = json_object(), *a = json_array(), *mig = json_object(), *cause = json_object();
	json_t *params = json_object();
	int bad = !o || !a || !mig || !cause || !params;

	if (bad) {
		json_decref(o);
		json_decref(a);
		json_decref(mig);
		json_decref(cause);
		json_decref(params);
		return NULL;
	}
	for (size_t i = 0; i < res->nr_batches; i++)
		bad |= json_array_append_new(a, J(res->batch_htod[i]));
	for (int c = 0; c < DMM_NR_CAUSES; c++)
		bad |= json_object_set_new(cause, dmm_cause_name((enum dmm_cause)c), J(st->pages_by_cause[c]));
	bad |= json_object_set_new(mig, "htod_pages", J(st->htod_pages));
	bad |= json_object_set_new(mig, "dtoh_pages", J(st->dtoh_pages));
	bad |= json_object_set_new(mig, "htod_bytes", J(st->htod_bytes));
	bad |= json_object_set_new(mig, "dtoh_bytes", J(st->dtoh_bytes));
	bad |= json_object_set_new(mig, "by_cause", cause);
	for (unsigned int i = 0; i < res->nr_params; i++)
		bad |= json_object_set_new(params, res->params[i].name, J(res->params[i].value));
	bad |= json_object_set_new(o, "far_faults", J(st->far_faults));
	bad |= json_object_set_new(o, "cpu_faults", J(st->cpu_faults));
	bad |= json_object_set_new(o, "batches", J(st->batches));
	bad |= json_object_set_new(o, "per_batch_htod_bytes", a);
	bad |= json_object_set_new(o, "duplicates", J(st->duplicates));
	bad |= json_object_set_new(o, "throttled", J(st->throttled));
	bad |= json_object_set_new(o, "migrations", mig);
	bad |= json_object_set_new(o, "prefetch",
				   json_pack("{sIsI}", "pages", (json_int_t)st->pages_by_cause[DMM_CAUSE_PREFETCH],
					     "useful_pages", (json_int_t)res->prefetch_useful));
	bad |= json_object_set_new(o, "thrashing",
				   json_pack("{sIsIsIsI}", "pages_detected", (json_int_t)res->thrash_pages, "throttles",
					     (json_int_t)res->throttles, "pins", (json_int_t)st->pins, "unpins",
					     (json_int_t)st->unpins));
	/* DUPLICATE and MAP_REMOTE are refused by this engine (issue 16):
	 * the copies and maps it made are none. */
	bad |= json_object_set_new(o, "read_dup",
				   json_pack("{sIsI}", "copies", (json_int_t)0, "invalidations",
					     (json_int_t)st->pages_by_cause[DMM_CAUSE_READ_DUP_INVALIDATE]));
	bad |= json_object_set_new(o, "remote", json_pack("{sIsI}", "maps", (json_int_t)0, "accesses", (json_int_t)0));
	bad |= json_object_set_new(o, "sim_time_ns", J(st->sim_time_ns));
	bad |= json_object_set_new(o, "sim_time_breakdown",
				   json_pack("{sIsIsIsI}", "compute", (json_int_t)st->t_compute, "fault_stall",
					     (json_int_t)st->t_fault_stall, "transfer", (json_int_t)st->t_transfer,
					     "throttle", (json_int_t)st->t_throttle));
	bad |= json_object_set_new(o, "host_time_ns", J(res->host_time_ns));
	bad |= json_object_set_new(o, "host_peak_rss_bytes", J(res->host_peak_rss_bytes));
	bad |= json_object_set_new(o, "policy", json_string(res->policy));
	bad |= json_object_set_new(o, "params", params);
	bad |= json_object_set_new(o, "timing", json_string(res->timing));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void trace_run_print(FILE *f, const char *path, const struct trace_run_result *res)
{
	const struct dmm_engine_stats *st = &res->st;
	bool any = false;

	fprintf(f, "%s: %" PRIu64 " records, policy %s, timing %s, %u device%s", path, res->records, res->policy,
		res->timing, res->nr_gpus, res->nr_gpus == 1 ? "" : "s");
	for (unsigned int i = 0; i < res->nr_gpus; i++)
		fprintf(f, "%s gpu%u %" PRIu64 " pages", i ? "," : ":", i, res->gpu_pages[i]);
	fprintf(f, "\n  far faults %" PRIu64 ", cpu faults %" PRIu64 ", batches %" PRIu64 ", duplicates %" PRIu64
		   ", throttled %" PRIu64 "\n",
		st->far_faults, st->cpu_faults, st->batches, st->duplicates, st->throttled);
	fprintf(f, "  migrations: htod %" PRIu64 " pages (%" PRIu64 " bytes), dtoh %" PRIu64 " pages (%" PRIu64
		   " bytes); by cause:",
		st->htod_pages, st->htod_bytes, st->dtoh_pages, st->dtoh_bytes);
	for (int c = 0; c < DMM_NR_CAUSES; c++)
		if (st->pages_by_cause[c]) {
			fprintf(f, " %s %" PRIu64, dmm_cause_name((enum dmm_cause)c), st->pages_by_cause[c]);
			any = true;
		}
	fprintf(f, "%s\n", any ? "" : " none");
	fprintf(f, "  prefetch %" PRIu64 " pages (%" PRIu64 " useful); thrashing %" PRIu64 " pages, %" PRIu64
		   " throttles, %" PRIu64 " pins, %" PRIu64 " unpins\n",
		st->pages_by_cause[DMM_CAUSE_PREFETCH], res->prefetch_useful, res->thrash_pages, res->throttles,
		st->pins, st->unpins);
	fprintf(f, "  sim time %" PRIu64 " ns: compute %" PRIu64 ", fault stall %" PRIu64 ", transfer %" PRIu64
		   ", throttle %" PRIu64 "\n",
		st->sim_time_ns, st->t_compute, st->t_fault_stall, st->t_transfer, st->t_throttle);
	fprintf(f, "  host time %.3f ms, peak rss %.1f MiB\n", (double)res->host_time_ns / 1e6,
		(double)res->host_peak_rss_bytes / 1048576.0);
}
