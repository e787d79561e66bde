/* SPDX-License-Identifier: MIT */
/*
 * The trace benchmarks: serviced far faults per second of host time when
 * the trace runner (cli/trace_run.c) replays a generated trace on the
 * policy engine, beside the core's own migrate throughput (pages/s
 * through migrate_vma, measured in the same run) as the baseline. A far
 * fault costs at least one page through migrate_vma, plus the engine's
 * fault buffer, batching, policy and the driver; the ratio is the share
 * of the core's speed the managed-memory layer keeps.
 *
 *   trace_streaming  `trace gen streaming --bytes 1 GiB` under ondemand:
 *                    every page faults once.
 *   trace_random     `trace gen random --pages 262144 --dist uniform` under
 *                    uvm (ondemand when the build has no uvm policy).
 *
 * --quick shrinks both to 16 MiB. They are slow (seconds), so only
 * `--only trace_streaming,trace_random` runs them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devmm/policy.h>

#include "bench.h"
#include "trace.h"
#include "trace_run.h"

/* The generator's output for @argv, in memory. */
static char *generate(char **argv, int argc, size_t *len)
{
	char *text = NULL, *etext = NULL;
	size_t elen = 0;
	FILE *out = open_memstream(&text, len), *err = open_memstream(&etext, &elen);
	int rc;

	if (!out || !err)
		bench_die("open_memstream", ENOMEM);
	rc = trace_gen_main(argc, argv, out, err);
	fclose(out);
	fclose(err);
	if (rc) {
		fprintf(stderr, "devmm bench: trace gen: %s", etext ? etext : "failed\n");
		exit(1);
	}
	free(etext);
	return text;
}

static void run_trace(const struct bench_opts *o, struct bench_result *r, char **argv, int argc,
		      const char *policy, uint64_t pages)
{
	struct trace_run_opts ro = { .policy = policy };
	struct trace_run_result res;
	size_t len;
	char *text = generate(argv, argc, &len);
	double t0, t, migrate;
	int rc;

	(void)o;
	t0 = bench_now_ns();
	rc = trace_run_mem(&ro, r->name, text, len, &res, stderr);
	t = bench_now_ns() - t0;
	free(text);
	if (rc) {
		fprintf(stderr, "devmm bench: %s: the trace run failed (%d)\n", r->name, rc);
		exit(1);
	}
	migrate = bench_migrate_pages_per_s(pages < 65536 ? pages : 65536, DMM_MBLOCK_PAGES);
	r->devmm = (double)res.st.far_faults / (t / 1e9);
	r->baseline = migrate;
	r->ratio = r->devmm / r->baseline;
	bench_note(r, "%s: %llu far faults (%llu pages, %llu batches) in %.2f s of host time, sim time "
		   "%.3f s; baseline: migrate_vma to the device and back, 512-page calls, pages/s",
		   policy, (unsigned long long)res.st.far_faults,
		   (unsigned long long)(res.st.htod_pages + res.st.dtoh_pages),
		   (unsigned long long)res.st.batches, t / 1e9, (double)res.st.sim_time_ns / 1e9);
	bench_extra(r, "far_faults", (double)res.st.far_faults);
	bench_extra(r, "batches", (double)res.st.batches);
	bench_extra(r, "host_s", t / 1e9);
	bench_extra(r, "sim_s", (double)res.st.sim_time_ns / 1e9);
	trace_run_result_free(&res);
}

static uint64_t trace_bytes(const struct bench_opts *o)
{
	return o->quick ? 16ull << 20 : 1ull << 30;
}

void bench_trace_streaming(const struct bench_opts *o, struct bench_result *r)
{
	char bytes[32];
	char *argv[] = { "streaming", "--bytes", bytes, "--seed", "1" };

	snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)trace_bytes(o));
	run_trace(o, r, argv, 5, "ondemand", trace_bytes(o) / PAGE);
}

void bench_trace_random(const struct bench_opts *o, struct bench_result *r)
{
	char pages[32], accesses[32];
	char *argv[] = { "random", "--pages", pages, "--accesses", accesses, "--dist", "uniform", "--seed", "1" };
	uint64_t n = trace_bytes(o) / PAGE;

	snprintf(pages, sizeof(pages), "%llu", (unsigned long long)n);
	snprintf(accesses, sizeof(accesses), "%llu", (unsigned long long)(2 * n));
	run_trace(o, r, argv, 9, dmm_policy_find("uvm") ? "uvm" : "ondemand", n);
}
