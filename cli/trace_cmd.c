/* SPDX-License-Identifier: MIT */
/*
 * `devmm trace`: the command line of traces. gen writes a synthetic trace
 * (trace_gen.c); check reads traces with the streaming reader
 * (trace_parse.c), reports every bad line and prints a summary: records per
 * kind, allocations, bytes touched per processor and operation. run and
 * explain replay a trace on the policy engine and come with it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "trace.h"

#define CHECK_MAX_ERRORS 20 /* per file; the rest are counted */

static int trace_usage(FILE *f)
{
	fprintf(f, "usage: devmm trace gen PATTERN [--seed S] [options] > FILE\n"
		   "       devmm trace check FILE...\n"
		   "gen writes a synthetic trace (devmm trace gen --help lists the patterns\n"
		   "and their options); check parses and validates traces and summarises\n"
		   "them. The format is docs/trace-format.md. Replaying a trace (trace run)\n"
		   "and a page's history (trace explain) come with the policy engine.\n");
	return 2;
}

struct summary {
	unsigned long long records, errors;
	unsigned long long kinds[TRACE_NR_KINDS];
	unsigned long long alloc_bytes, live, peak;
	/* [0]: cpu, [1 + N]: gpuN; by enum trace_op */
	unsigned long long bytes[1 + TRACE_MAX_GPUS][3], count[1 + TRACE_MAX_GPUS][3];
};

static void account(struct summary *s, const struct trace_rec *r)
{
	unsigned int p = r->proc.is_gpu ? 1 + r->proc.gpu : 0;

	s->records++;
	s->kinds[r->kind]++;
	switch (r->kind) {
	case TRACE_ALLOC:
		s->alloc_bytes += r->bytes;
		s->live += r->bytes;
		if (s->live > s->peak)
			s->peak = s->live;
		break;
	case TRACE_FREE:
		s->live -= r->bytes;
		break;
	case TRACE_ACCESS:
		s->bytes[p][r->op] += r->bytes;
		s->count[p][r->op]++;
		break;
	default:
		break;
	}
}

static void print_summary(const char *path, const struct summary *s)
{
	printf("%s: %llu records, %llu errors\n", path, s->records, s->errors);
	printf("  records:");
	for (int k = 0; k < TRACE_NR_KINDS; k++)
		printf(" %s %llu%s", trace_kind_name((enum trace_kind)k), s->kinds[k],
		       k + 1 < TRACE_NR_KINDS ? "," : "\n");
	printf("  allocations: %llu, %llu bytes, at most %llu bytes live at once\n",
	       s->kinds[TRACE_ALLOC], s->alloc_bytes, s->peak);
	for (unsigned int p = 0; p < 1 + TRACE_MAX_GPUS; p++) {
		struct trace_proc pr = { p > 0, p ? p - 1 : 0 };
		const unsigned long long *b = s->bytes[p], *c = s->count[p];
		char pb[8];

		if (!c[0] && !c[1] && !c[2])
			continue;
		printf("  %s touched %llu bytes: R %llu in %llu, W %llu in %llu, A %llu in %llu\n",
		       trace_proc_name(pr, pb), b[0] + b[1] + b[2], b[0], c[0], b[1], c[1], b[2],
		       c[2]);
	}
}

/* 0: valid, 1: bad lines, 2: unreadable or out of memory. */
static int check_file(const char *path)
{
	static struct summary s;
	struct trace_reader *r;
	struct trace_rec rec;
	struct diag d;
	int rc;

	memset(&s, 0, sizeof(s));
	if (trace_open(path, &r, &d)) {
		fprintf(stderr, "%s\n", d.text);
		return 2;
	}
	while ((rc = trace_next(r, &rec, &d)) != 0) {
		if (rc == 1) {
			account(&s, &rec);
			continue;
		}
		if (rc != -EINVAL) { /* unreadable: to stderr, like an open error */
			fprintf(stderr, "%s\n", d.text);
			break;
		}
		if (s.errors++ < CHECK_MAX_ERRORS)
			printf("%s\n", d.text);
	}
	trace_close(r);
	if (s.errors > CHECK_MAX_ERRORS)
		printf("%s: %llu more errors not shown\n", path, s.errors - CHECK_MAX_ERRORS);
	if (rc < 0 && rc != -EINVAL)
		return 2;
	print_summary(path, &s);
	return s.errors ? 1 : 0;
}

static int cmd_check(int argc, char **argv)
{
	int status = 0;

	if (argc < 1)
		return trace_usage(stderr);
	for (int i = 0; i < argc; i++) {
		int rc = check_file(argv[i]);

		if (rc > status)
			status = rc;
	}
	return status;
}

int devmm_trace(int argc, char **argv)
{
	if (argc < 1)
		return trace_usage(stderr);
	if (!strcmp(argv[0], "gen"))
		return trace_gen_main(argc - 1, argv + 1, stdout, stderr);
	if (!strcmp(argv[0], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		trace_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[0], "run") || !strcmp(argv[0], "explain")) {
		fprintf(stderr, "devmm trace %s: not available yet; it comes with the policy "
				"engine (issue 15)\n", argv[0]);
		return 2;
	}
	return trace_usage(stderr);
}
