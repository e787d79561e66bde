/* SPDX-License-Identifier: MIT */
/*
 * The benchmarks' shared plumbing (bench.c) and the benchmark bodies
 * (vm.c: devmm beside the kernel; device.c: devices, migration, scaling;
 * meta.c: the one white-box number). The entry point, devmm_bench_main, is
 * used by build/devmm-bench (bench/main.c) and by `devmm bench`.
 */
#ifndef DEVMM_BENCH_H
#define DEVMM_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include <devmm/devmm.h>

#define PAGE DMM_PAGE_SIZE
#define MAX_ROUNDS 101

/* devmm bench [--quick] [--json FILE] [--pages N] [--rounds N] [--only LIST] */
int devmm_bench_main(int argc, char **argv);

struct bench_opts {
	uint64_t npages;    /* pages per round */
	uint64_t big_batch; /* pages per migrate_vma call of migrate_64k */
	int rounds;	    /* timed rounds per side (median reported) */
	int warmup;	    /* untimed rounds before them */
	bool quick;
};

enum bench_target { TARGET_NONE, TARGET_LE, TARGET_GE };

#define BENCH_MAX_EXTRA 4

struct bench_result {
	const char *name, *unit;
	double devmm, baseline, ratio;	/* ratio 0 when there is no baseline */
	enum bench_target op;		/* the target for the ratio */
	double target;
	char note[384];			/* printed under the row */
	int nextra;			/* extra JSON fields */
	struct {
		const char *key;
		double val;
	} extra[BENCH_MAX_EXTRA];
	char json[2048];		/* more JSON members, each ", \"key\": value" */
};

/* One benchmark: fills r (name, unit and target are preset). */
typedef void (*bench_fn)(const struct bench_opts *o, struct bench_result *r);

/* bench.c: plumbing */
_Noreturn void bench_die(const char *what, int err);
void bench_must(long ret, const char *what);	  /* devmm: -errno */
void bench_must_sys(long ret, const char *what);  /* libc: -1 and errno */
/* The clock of single-threaded measurements: this thread's CPU time
 * (user + system), or wall-clock time with --wall (see bench.c). */
double bench_now_ns(void);
/* Wall-clock time, for measurements of several threads. */
double bench_wall_ns(void);
double bench_median(double *v, int n);
/* Run o->warmup untimed rounds, then o->rounds timed ones; the median. */
double bench_rounds(double (*round)(void *ctx), void *ctx, const struct bench_opts *o);
/* A pre-touched system of nr_frames frames. */
struct dmm_system *bench_system(uint64_t nr_frames);
/* dmm_check the system (exit on a violation), then destroy it. */
void bench_system_done(struct dmm_system *sys, const char *name);
struct dmm_mm *bench_mm(struct dmm_system *sys);
/* Map npages of private anonymous memory; populate: store to every page. */
uint64_t bench_map_anon(struct dmm_mm *mm, uint64_t npages, bool populate);
/* A buffer of bytes, touched (and so backed) now. */
void *bench_buffer(uint64_t bytes);
/* Keep freed malloc memory mapped (see bench.c). */
void bench_keep_malloc_warm(void);
/* Alternate rounds of a and b (warm-ups first), so that both sides see the
 * same machine; the medians go to *ma and *mb. */
void bench_rounds_pair(double (*a)(void *ctx), double (*b)(void *ctx), void *ctx,
		       const struct bench_opts *o, double *ma, double *mb);
/* The contents of the frames mapping [base, base + npages pages) of mm
 * (present entries only: exit otherwise). */
void bench_frame_ptrs(struct dmm_system *sys, struct dmm_mm *mm, uint64_t base, uint64_t npages,
		      void **ptrs);
void bench_note(struct bench_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bench_extra(struct bench_result *r, const char *key, double val);

/* vm.c: devmm beside the kernel */
void bench_fault_first_touch(const struct bench_opts *o, struct bench_result *r);
void bench_fault_zero_read(const struct bench_opts *o, struct bench_result *r);
void bench_cow_fault(const struct bench_opts *o, struct bench_result *r);
void bench_fault_thp(const struct bench_opts *o, struct bench_result *r);
void bench_cow_thp(const struct bench_opts *o, struct bench_result *r);
void bench_fault_first_touch_floor(const struct bench_opts *o, struct bench_result *r);
void bench_cow_fault_floor(const struct bench_opts *o, struct bench_result *r);
void bench_fork(const struct bench_opts *o, struct bench_result *r);
void bench_munmap(const struct bench_opts *o, struct bench_result *r);
void bench_mprotect(const struct bench_opts *o, struct bench_result *r);
void bench_vma_100k(const struct bench_opts *o, struct bench_result *r);

/* device.c */
void bench_migrate_512(const struct bench_opts *o, struct bench_result *r);
void bench_migrate_64k(const struct bench_opts *o, struct bench_result *r);
void bench_migrate_512_mirror(const struct bench_opts *o, struct bench_result *r);
void bench_hmm_snapshot(const struct bench_opts *o, struct bench_result *r);
void bench_device_read(const struct bench_opts *o, struct bench_result *r);
void bench_pin_unpin(const struct bench_opts *o, struct bench_result *r);
void bench_fault_scaling_2t(const struct bench_opts *o, struct bench_result *r);
void bench_metadata(const struct bench_opts *o, struct bench_result *r);
void bench_fork_coherent(const struct bench_opts *o, struct bench_result *r);

/* scale.c: ns/page against the size of a metadata-only working set (not in
 * the default set: --only names them) */
void bench_scale_64g(const struct bench_opts *o, struct bench_result *r);
void bench_scale_sweep(const struct bench_opts *o, struct bench_result *r);

/* device.c: pages/s through migrate_vma (to the device and back). */
double bench_migrate_pages_per_s(uint64_t npages, uint64_t batch);

/* trace.c: generated traces on the policy engine (not in the default set:
 * --only names them) */
void bench_trace_streaming(const struct bench_opts *o, struct bench_result *r);
void bench_trace_random(const struct bench_opts *o, struct bench_result *r);

/* notifier.c: invalidations in an mm with many subscriptions, or none */
void bench_notifier_10k(const struct bench_opts *o, struct bench_result *r);
void bench_notifier_none(const struct bench_opts *o, struct bench_result *r);

/* meta.c (white box: compiled against src/): the bytes devmm reserves for
 * frame metadata, and the frames they describe. */
uint64_t bench_meta_bytes(const struct dmm_system *sys);

#endif
