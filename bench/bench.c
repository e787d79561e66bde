/* SPDX-License-Identifier: MIT */
/*
 * devmm bench - devmm's memory-management paths beside a baseline measured
 * in the same run: the real kernel (faults, fork, munmap, mprotect), memcpy
 * (migration, device reads), one thread (fault scaling), the kernel's
 * struct page (metadata), Linux's copy-on-write placement (fork_coherent),
 * one notifier subscription (notifier_10k, notifier_none), the same phases
 * at 64 MiB (scale_64g, by name only; scale_sweep draws the curve), the
 * core's own migrate_vma pages/s (trace_streaming and trace_random, the
 * trace runner's far faults per second; by name only).
 *
 * Every benchmark runs warm: devmm systems are created with
 * DMM_SYS_PRETOUCH and kept alive across a benchmark's rounds, so that the
 * frames stay backed; each side gets untimed warm-up rounds before its
 * timed ones; the median of the timed rounds is reported. On the VMs this
 * runs on, memory the guest has left free for ~2 s is handed back to the
 * host and costs ~6 us per page to touch again: warm-up rounds right before
 * the timed ones keep both sides off that path. Nothing here compares
 * against a threshold: the targets are printed and written to the JSON, and
 * docs/performance.md discusses them.
 *
 * This file is the plumbing, the table and the entry point; vm.c,
 * device.c, notifier.c, scale.c and trace.c hold the benchmarks, meta.c the one
 * white-box number.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* ---------------------------------------------------------------------- */
/* Plumbing                                                                */

_Noreturn void bench_die(const char *what, int err)
{
	fprintf(stderr, "devmm bench: %s: %s\n", what, strerror(err));
	exit(1);
}

void bench_must(long ret, const char *what)
{
	if (ret < 0)
		bench_die(what, (int)-ret);
}

void bench_must_sys(long ret, const char *what)
{
	if (ret < 0)
		bench_die(what, errno);
}

/*
 * This is a shared two-CPU VM: other processes (and other VMs) take the
 * CPU away in the middle of a round. A single-threaded round is timed with
 * the thread's CPU time, user and system (kernel faults and system calls
 * included), which leaves out the time it sat preempted; --wall times it
 * with the wall clock instead. Multi-threaded rounds always use the wall
 * clock.
 */
static bool use_wall_clock;

static double clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double bench_now_ns(void)
{
	return clock_ns(use_wall_clock ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID);
}

double bench_wall_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_rounds(double (*round)(void *ctx), void *ctx, const struct bench_opts *o)
{
	double t[MAX_ROUNDS];

	for (int i = 0; i < o->warmup; i++)
		round(ctx);
	for (int i = 0; i < o->rounds; i++)
		t[i] = round(ctx);
	return bench_median(t, o->rounds);
}

struct dmm_system *bench_system(uint64_t nr_frames)
{
	struct dmm_system_config cfg = { .nr_frames = nr_frames, .flags = DMM_SYS_PRETOUCH };
	struct dmm_system *sys;

	bench_must(dmm_system_create(&cfg, &sys), "dmm_system_create");
	return sys;
}

void bench_system_done(struct dmm_system *sys, const char *name)
{
	char report[4096];

	if (dmm_check(sys, report, sizeof(report))) {
		fprintf(stderr, "devmm bench: %s: dmm_check failed:\n%s\n", name, report);
		exit(1);
	}
	dmm_system_destroy(sys);
}

struct dmm_mm *bench_mm(struct dmm_system *sys)
{
	struct dmm_mm *mm;

	bench_must(dmm_mm_create(sys, &mm), "dmm_mm_create");
	return mm;
}

uint64_t bench_map_anon(struct dmm_mm *mm, uint64_t npages, bool populate)
{
	uint64_t base;

	bench_must(dmm_mmap(mm, 0, npages * PAGE, DMM_PROT_READ | DMM_PROT_WRITE,
			    DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS, NULL, 0, &base),
		   "dmm_mmap");
	for (uint64_t i = 0; populate && i < npages; i++)
		bench_must(dmm_store32(mm, base + i * PAGE, (uint32_t)i), "dmm_store32");
	return base;
}

void *bench_buffer(uint64_t bytes)
{
	unsigned char *p = malloc(bytes);

	if (!p)
		bench_die("malloc", ENOMEM);
	memset(p, 0x5a, bytes);
	return p;
}

/*
 * The mirror driver allocates a bounce buffer of the whole range for every
 * read and migrate-to-dev (its contract: the data is copied out only on
 * success). glibc serves large blocks with mmap and gives them back on free,
 * so every call would fault its bounce buffer in again through the kernel
 * (several microseconds a page on this VM): the benchmark would measure the
 * host's page faults, not the driver. Keep freed memory in the heap instead,
 * as a long-running process with a warm heap would have it. Called by the
 * device benchmarks only, after the kernel baselines (whose forks would
 * otherwise also copy the retained heap).
 */
void bench_keep_malloc_warm(void)
{
	mallopt(M_MMAP_MAX, 0);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void bench_rounds_pair(double (*a)(void *ctx), double (*b)(void *ctx), void *ctx,
		       const struct bench_opts *o, double *ma, double *mb)
{
	double ta[MAX_ROUNDS], tb[MAX_ROUNDS];

	for (int i = 0; i < o->warmup; i++) {
		a(ctx);
		b(ctx);
	}
	for (int i = 0; i < o->rounds; i++) {
		ta[i] = a(ctx);
		tb[i] = b(ctx);
	}
	*ma = bench_median(ta, o->rounds);
	*mb = bench_median(tb, o->rounds);
}

void bench_frame_ptrs(struct dmm_system *sys, struct dmm_mm *mm, uint64_t base, uint64_t npages,
		      void **ptrs)
{
	for (uint64_t i = 0; i < npages; i++) {
		struct dmm_pte_info pte;

		bench_must(dmm_pte_query(mm, base + i * PAGE, &pte), "dmm_pte_query");
		if (pte.kind != DMM_PTE_PRESENT || !(ptrs[i] = dmm_page_address(sys, pte.pfn)))
			bench_die("bench_frame_ptrs: page not present", EFAULT);
	}
}

void bench_note(struct bench_result *r, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(r->note);

	va_start(ap, fmt);
	vsnprintf(r->note + len, sizeof(r->note) - len, fmt, ap);
	va_end(ap);
}

void bench_extra(struct bench_result *r, const char *key, double val)
{
	if (r->nextra < BENCH_MAX_EXTRA) {
		r->extra[r->nextra].key = key;
		r->extra[r->nextra].val = val;
		r->nextra++;
	}
}

/* ---------------------------------------------------------------------- */
/* The table                                                               */

struct bench {
	const char *name;
	const char *unit;
	bench_fn fn;
	enum bench_target op;
	double target;
	bool by_name;	/* runs only when --only names it (it takes minutes) */
};

/*
 * The kernel-baseline benchmarks come first: they run before any device
 * benchmark has grown the heap (see bench_keep_malloc_warm), so that the
 * kernel's forks copy only the benchmark's own memory.
 */
static const struct bench benches[] = {
	{ "fault_first_touch", "ns/page", bench_fault_first_touch, TARGET_LE, 0.25, false },
	{ "fault_zero_read", "ns/page", bench_fault_zero_read, TARGET_LE, 0.1, false },
	{ "cow_fault", "ns/page", bench_cow_fault, TARGET_LE, 0.25, false },
	{ "fault_thp", "ns/page", bench_fault_thp, TARGET_LE, 0.25, false },
	{ "cow_thp", "ns/page", bench_cow_thp, TARGET_LE, 0.25, false },
	{ "fault_first_touch_floor", "ns/page", bench_fault_first_touch_floor, TARGET_LE, 2.0, false },
	{ "cow_fault_floor", "ns/page", bench_cow_fault_floor, TARGET_LE, 2.0, false },
	{ "fork", "ns/page", bench_fork, TARGET_LE, 0.25, false },
	{ "munmap", "ns/page", bench_munmap, TARGET_LE, 0.2, false },
	{ "mprotect", "ns/page", bench_mprotect, TARGET_LE, 0.1, false },
	{ "vma_100k", "ns/op", bench_vma_100k, TARGET_LE, 1.5, false },
	{ "migrate_512", "GB/s", bench_migrate_512, TARGET_GE, 0.7, false },
	{ "migrate_64k", "GB/s", bench_migrate_64k, TARGET_NONE, 0, false },
	{ "migrate_512_mirror", "GB/s", bench_migrate_512_mirror, TARGET_NONE, 0, false },
	{ "hmm_snapshot", "ns/page", bench_hmm_snapshot, TARGET_NONE, 0, false },
	{ "device_read", "GB/s", bench_device_read, TARGET_NONE, 0, false },
	{ "pin_unpin", "ns/page", bench_pin_unpin, TARGET_NONE, 0, false },
	{ "fault_scaling_2t", "Mpages/s", bench_fault_scaling_2t, TARGET_GE, 1.6, false },
	{ "metadata_bytes_per_frame", "bytes", bench_metadata, TARGET_LE, 1.0, false },
	{ "fork_coherent", "ns/page", bench_fork_coherent, TARGET_NONE, 0, false },
	{ "notifier_10k", "ns/munmap", bench_notifier_10k, TARGET_LE, 2.0, false },
	{ "notifier_none", "ns/munmap", bench_notifier_none, TARGET_NONE, 0, false },
	{ "scale_64g", "ns/page", bench_scale_64g, TARGET_LE, 2.0, true },
	{ "scale_sweep", "ns/page", bench_scale_sweep, TARGET_NONE, 0, true },
	{ "trace_streaming", "faults/s", bench_trace_streaming, TARGET_NONE, 0, true },
	{ "trace_random", "faults/s", bench_trace_random, TARGET_NONE, 0, true },
};
#define NR_BENCHES (sizeof(benches) / sizeof(benches[0]))

static bool target_met(const struct bench_result *r)
{
	if (r->op == TARGET_LE)
		return r->ratio <= r->target;
	return r->ratio >= r->target;
}

static const char *target_text(const struct bench_result *r, char *buf, size_t size)
{
	if (r->op == TARGET_NONE) {
		snprintf(buf, size, "-");
		return buf;
	}
	snprintf(buf, size, "%s%g %s", r->op == TARGET_LE ? "<=" : ">=", r->target,
		 target_met(r) ? "met" : "MISSED");
	return buf;
}

/* JSON numbers: finite, enough digits for every unit used here. */
static void json_num(FILE *f, double v)
{
	if (v != v || v > 1e300 || v < -1e300)
		v = 0;
	fprintf(f, "%.6g", v);
}

static void write_json(const char *path, const struct bench_result *r, size_t n)
{
	FILE *f = fopen(path, "w");

	if (!f)
		bench_die(path, errno);
	fputs("[\n", f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "  {\"name\": \"%s\", \"unit\": \"%s\", \"devmm\": ", r[i].name, r[i].unit);
		json_num(f, r[i].devmm);
		fputs(", \"baseline\": ", f);
		json_num(f, r[i].baseline);
		fputs(", \"ratio\": ", f);
		json_num(f, r[i].ratio);
		if (r[i].op != TARGET_NONE) {
			fprintf(f, ", \"target\": \"%s\", \"target_ratio\": ",
				r[i].op == TARGET_LE ? "<=" : ">=");
			json_num(f, r[i].target);
			fprintf(f, ", \"met\": %s", target_met(&r[i]) ? "true" : "false");
		}
		for (int k = 0; k < r[i].nextra; k++) {
			fprintf(f, ", \"%s\": ", r[i].extra[k].key);
			json_num(f, r[i].extra[k].val);
		}
		fputs(r[i].json, f);
		fprintf(f, "}%s\n", i + 1 < n ? "," : "");
	}
	fputs("]\n", f);
	if (fclose(f))
		bench_die(path, errno);
}

/* ---------------------------------------------------------------------- */
/* Options                                                                 */

static void usage(FILE *f)
{
	fputs("usage: devmm bench [--quick] [--json FILE] [--pages N] [--rounds N] [--only LIST] [--wall]\n"
	      "  --quick      small ranges, fewer rounds (a smoke run of a few seconds)\n"
	      "  --json FILE  also write the results as a JSON array to FILE\n"
	      "  --pages N    pages per round (default 16384, 1024 with --quick)\n"
	      "  --rounds N   timed rounds per side, median reported (default 7, 3 with --quick)\n"
	      "  --only LIST  run only these benchmarks (comma-separated names); scale_64g,\n"
	      "               scale_sweep (about a minute each), trace_streaming and\n"
	      "               trace_random (seconds each) run only when named here\n"
	      "  --wall       time single-threaded rounds with the wall clock, not CPU time\n"
	      "  --list       print the benchmarks' names\n",
	      f);
}

static long parse_count(const char *s, long max)
{
	char *end;
	long v = strtol(s ? s : "", &end, 10);

	if (!s || *end || v < 1 || v > max) {
		usage(stderr);
		exit(2);
	}
	return v;
}

static bool selected(const char *only, const char *name)
{
	size_t n = strlen(name);

	if (!only)
		return true;
	for (const char *p = only; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return true;
		p += len + (comma != NULL);
	}
	return false;
}

int devmm_bench_main(int argc, char **argv)
{
	struct bench_opts o = { .npages = 16384, .rounds = 7, .warmup = 2 };
	const char *json = NULL, *only = NULL;
	long pages = 0, rounds = 0;
	struct bench_result r[NR_BENCHES];
	size_t n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			o.quick = true;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(argv[i], "--pages")) {
			pages = parse_count(argv[++i], 1L << 20);
		} else if (!strcmp(argv[i], "--rounds")) {
			rounds = parse_count(argv[++i], MAX_ROUNDS);
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--wall")) {
			use_wall_clock = true;
		} else if (!strcmp(argv[i], "--list")) {
			for (size_t b = 0; b < NR_BENCHES; b++)
				puts(benches[b].name);
			return 0;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (o.quick) {
		o.npages = 1024;
		o.rounds = 3;
		o.warmup = 1;
	}
	if (pages)
		o.npages = (uint64_t)pages;
	if (rounds)
		o.rounds = (int)rounds;
	/* 65536-page batches in a full run; 4 x pages (at least 512) for
	 * smaller ones, so that --quick stays quick. */
	o.big_batch = o.npages * 4 < 65536 ? o.npages * 4 : 65536;
	if (o.big_batch < 512)
		o.big_batch = 512;

	printf("devmm bench: devmm %s, %" PRIu64 " pages (%" PRIu64 " KiB) per round, "
	       "median of %d rounds after %d warm-up, %s\n",
	       dmm_version(), o.npages, o.npages * PAGE / 1024, o.rounds, o.warmup,
	       use_wall_clock ? "wall-clock time" : "thread CPU time (2-thread rounds: wall clock)");
	printf("%-24s %-9s %12s %12s %8s  %s\n", "name", "unit", "devmm", "baseline", "ratio", "target");
	for (size_t i = 0; i < NR_BENCHES; i++) {
		const struct bench *b = &benches[i];
		struct bench_result *res = &r[n];
		char tt[32];

		if (!selected(only, b->name) || (b->by_name && !only))
			continue;
		memset(res, 0, sizeof(*res));
		res->name = b->name;
		res->unit = b->unit;
		res->op = b->op;
		res->target = b->target;
		b->fn(&o, res);
		printf("%-24s %-9s %12.3f %12.3f %8.3f  %s\n", res->name, res->unit, res->devmm,
		       res->baseline, res->ratio, target_text(res, tt, sizeof(tt)));
		if (res->note[0])
			printf("    %s\n", res->note);
		fflush(stdout);
		n++;
	}
	if (only && n == 0) {
		fprintf(stderr, "devmm bench: --only %s: no such benchmark (see --list)\n", only);
		return 2;
	}
	if (json)
		write_json(json, r, n);
	return 0;
}
