/* SPDX-License-Identifier: MIT */
/*
 * The trace runner (`devmm trace run`, `devmm trace explain`, the trace
 * benchmarks): replays a trace of format v1 (trace.h,
 * docs/trace-format.md) on the policy engine through the public headers
 * only — devmm.h, policy.h and the managed device driver — and gathers
 * what `--json` reports. The execution model is docs/trace-format.md §4.
 */
#ifndef DEVMM_CLI_TRACE_RUN_H
#define DEVMM_CLI_TRACE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <devmm/policy.h>

#define TRACE_RUN_MAX_SETS 64

struct trace_run_set {
	const char *name;
	int64_t value;
};

struct trace_run_opts {
	const char *policy;           /* NULL: ondemand */
	const char *timing;           /* NULL: pascal-pcie3 */
	const struct trace_run_set *sets;
	unsigned int nr_sets;
	uint64_t dev_pages[DMM_MAX_PROCS - 1]; /* gpuN: N's pages; 0: the trace's peak */
	uint64_t seed;
	bool check;                   /* dmm_engine_check and dmm_check after every service */
	FILE *events;                 /* one JSON line per event, or NULL */
	dmm_event_cb cb;              /* also gets every event (under the engine's lock) */
	void *cb_arg;
};

struct trace_run_param {
	const char *name;             /* static: the engine's or the policy's table */
	int64_t value;
};

struct trace_run_result {
	struct dmm_engine_stats st;
	uint64_t *batch_htod;         /* [nr_batches], malloc'd */
	size_t nr_batches;
	uint64_t prefetch_useful;     /* prefetched pages accessed where they went */
	uint64_t thrash_pages;        /* distinct pages throttled or pinned */
	uint64_t throttles;           /* THROTTLE decisions (device and CPU) */
	uint64_t records;             /* records executed */
	uint64_t host_time_ns;
	uint64_t host_peak_rss_bytes;
	unsigned int nr_gpus;
	uint64_t gpu_pages[DMM_MAX_PROCS - 1];
	char policy[32], timing[32];
	struct trace_run_param *params; /* [nr_params], malloc'd */
	unsigned int nr_params;
};

/*
 * trace_run_file / trace_run_mem - run the trace at @path ("-": standard
 * input) or in text[0..len) (named @path in messages). Every bad line and
 * every failure goes to @err as "FILE:LINE: message" (or "FILE: ...").
 * Returns 0 (the run completed: *res filled), 1 (the trace has bad lines:
 * nothing was run), 2 (unreadable, bad options, or the run failed).
 */
int trace_run_file(const struct trace_run_opts *o, const char *path, struct trace_run_result *res,
		   FILE *err);
int trace_run_mem(const struct trace_run_opts *o, const char *path, const char *text, size_t len,
		  struct trace_run_result *res, FILE *err);
void trace_run_result_free(struct trace_run_result *res);

/* The --json object of one run (jansson's json_t *, as void * so that
 * users need not include jansson.h); NULL: no memory. */
void *trace_run_json(const struct trace_run_result *res);
/* The human summary. */
void trace_run_print(FILE *f, const char *path, const struct trace_run_result *res);

#endif /* DEVMM_CLI_TRACE_RUN_H */
