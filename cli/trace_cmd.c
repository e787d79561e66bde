/* SPDX-License-Identifier: MIT */
/*
 * `devmm trace`: the command line of traces. gen writes a synthetic trace
 * (trace_gen.c); check reads traces with the streaming reader
 * (trace_parse.c), reports every bad line and prints a summary: records per
 * kind, allocations, bytes touched per processor and operation. run
 * replays traces on the policy engine (trace_run.c) and explain prints one
 * page's history from the engine's provenance events.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "trace.h"
#include "trace_run.h"

#define CHECK_MAX_ERRORS 20 /* per file; the rest are counted */

static int trace_usage(FILE *f)
{
	fprintf(f, "usage: devmm trace gen PATTERN [--seed S] [options] > FILE\n"
		   "       devmm trace check FILE...\n"
		   "       devmm trace run FILE... [run options] [--json OUT] [--events OUT.jsonl]\n"
		   "       devmm trace explain FILE ADDR [run options]\n"
		   "gen writes a synthetic trace (devmm trace gen --help lists the patterns\n"
		   "and their options); check parses and validates traces and summarises\n"
		   "them; run replays traces on the policy engine and prints what happened\n"
		   "(--json: the figures as JSON, an array for several files; --events: every\n"
		   "provenance event as a JSON line); explain prints the history of the page\n"
		   "holding ADDR: its faults, migrations, throttles and pins, with their\n"
		   "causes, origins and virtual times.\n"
		   "run options:\n"
		   "  --policy NAME          ondemand (default)");
	for (unsigned int i = 1; dmm_policy_name_at(i); i++)
		fprintf(f, ", %s", dmm_policy_name_at(i));
	fprintf(f, "\n"
		   "  --set KEY=VALUE        a tunable of the engine or the policy (repeatable)\n"
		   "  --timing PRESET        pascal-pcie3 (default), uvmsmart-pcie3, custom:ALPHA_NS:BETA_MBPS\n"
		   "  --device gpuN:pages=N  device memory of gpuN (default: the trace's peak allocation)\n"
		   "  --seed S               the seed of every random choice (default 0)\n"
		   "  --check                dmm_engine_check and dmm_check after every service\n"
		   "The format and the execution model are docs/trace-format.md; the engine\n"
		   "and its figures docs/managed-memory.md.\n");
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

/* ------------------------------------------------------------------------ */
/* run and explain                                                           */

struct run_args {
	struct trace_run_opts o;
	struct trace_run_set sets[TRACE_RUN_MAX_SETS];
	const char *json, *events;
	char **files;
	int nr_files;
};

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

static int bad_opt(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "devmm trace: %s %s: %s\n", opt, val ? val : "(missing)", why);
	return 2;
}

/* The options of run and explain; the rest of argv into a->files. */
static int parse_run_args(int argc, char **argv, struct run_args *a)
{
	memset(a, 0, sizeof(*a));
	a->o.sets = a->sets;
	a->files = calloc((size_t)argc + 1, sizeof(*a->files));
	if (!a->files)
		return 2;
	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v;

		if (strncmp(opt, "--", 2) || !strcmp(opt, "--")) {
			a->files[a->nr_files++] = argv[i];
			continue;
		}
		if (!strcmp(opt, "--check")) {
			a->o.check = true;
			continue;
		}
		if (!val)
			return bad_opt(opt, NULL, "needs a value");
		i++;
		if (!strcmp(opt, "--policy")) {
			a->o.policy = val;
		} else if (!strcmp(opt, "--timing")) {
			a->o.timing = val;
		} else if (!strcmp(opt, "--json")) {
			a->json = val;
		} else if (!strcmp(opt, "--events")) {
			a->events = val;
		} else if (!strcmp(opt, "--seed")) {
			if (parse_u64(val, &a->o.seed))
				return bad_opt(opt, val, "expected a number");
		} else if (!strcmp(opt, "--set")) {
			const char *eq = strchr(val, '=');
			char *end;
			long long x;

			if (!eq || eq == val)
				return bad_opt(opt, val, "expected KEY=VALUE");
			if (a->o.nr_sets == TRACE_RUN_MAX_SETS)
				return bad_opt(opt, val, "too many --set");
			errno = 0;
			x = strtoll(eq + 1, &end, 0);
			if (errno || !eq[1] || *end)
				return bad_opt(opt, val, "VALUE is not a number");
			((char *)eq)[0] = 0; /* argv is ours to cut */
			a->sets[a->o.nr_sets++] = (struct trace_run_set){ val, x };
		} else if (!strcmp(opt, "--device")) {
			unsigned int g;
			int n = 0;

			if (sscanf(val, "gpu%u:pages=%n", &g, &n) != 1 || !n || parse_u64(val + n, &v) || !v)
				return bad_opt(opt, val, "expected gpuN:pages=N (N at least 1)");
			if (g >= DMM_MAX_PROCS - 1)
				return bad_opt(opt, val, "the engine has devices gpu0 to gpu6");
			a->o.dev_pages[g] = v;
		} else {
			return bad_opt(opt, val, "unknown option");
		}
	}
	return 0;
}

static int write_json(const char *path, json_t *j)
{
	int rc = !strcmp(path, "-") ? json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
				    : json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!rc && !strcmp(path, "-"))
		putchar('\n');
	if (rc)
		fprintf(stderr, "devmm trace run: cannot write %s\n", path);
	return rc ? 2 : 0;
}

static int cmd_run(int argc, char **argv)
{
	struct run_args a;
	json_t *all = NULL;
	FILE *ev = NULL;
	int status = parse_run_args(argc, argv, &a);

	if (!status && !a.nr_files)
		status = trace_usage(stderr);
	if (!status && a.json && !(all = json_array()))
		status = 2;
	if (!status && a.events && !(ev = fopen(a.events, "w"))) {
		fprintf(stderr, "devmm trace run: cannot write %s: %s\n", a.events, strerror(errno));
		status = 2;
	}
	a.o.events = ev;
	for (int i = 0; !status && i < a.nr_files; i++) {
		struct trace_run_result res;
		int rc = trace_run_file(&a.o, a.files[i], &res, stderr);

		if (rc) {
			status = rc;
			break;
		}
		/* --json -: the JSON alone on stdout, the summary on stderr. */
		trace_run_print(a.json && !strcmp(a.json, "-") ? stderr : stdout, a.files[i], &res);
		if (all && json_array_append_new(all, trace_run_json(&res)))
			status = 2;
		trace_run_result_free(&res);
	}
	if (!status && all)
		status = write_json(a.json, a.nr_files == 1 ? json_array_get(all, 0) : all);
	if (ev && fclose(ev) && !status) {
		fprintf(stderr, "devmm trace run: cannot write %s\n", a.events);
		status = 2;
	}
	json_decref(all);
	free(a.files);
	return status;
}

/* explain: the events of one page, kept in order. */
struct history {
	uint64_t page;
	struct dmm_event *ev;
	size_t nr, cap;
	bool nomem;
};

static void history_cb(void *arg, const struct dmm_event *e)
{
	struct history *h = arg;
	uint64_t n = e->npages ? e->npages : 1;

	switch (e->type) {
	case DMM_EV_BATCH:
	case DMM_EV_REPLAY:
		return;
	default:
		break;
	}
	if (h->page < (e->addr & ~4095ull) || h->page >= (e->addr & ~4095ull) + n * 4096)
		return;
	if (h->nr == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct dmm_event *ne = realloc(h->ev, cap * sizeof(*ne));

		if (!ne) {
			h->nomem = true;
			return;
		}
		h->ev = ne;
		h->cap = cap;
	}
	h->ev[h->nr++] = *e;
}

static const char *pname(unsigned int p, char buf[16])
{
	if (p == DMM_PROC_NONE)
		return "nowhere";
	if (p == DMM_PROC_CPU)
		return "cpu";
	snprintf(buf, 16, "gpu%u", p - 1);
	return buf;
}

static void print_event(const struct dmm_event *e)
{
	static const char *const access[] = { "prefetch", "read", "write", "atomic" };
	char b1[16], b2[16];

	printf("%12" PRIu64 "  %-9s ", e->t, dmm_event_name(e->type));
	switch (e->type) {
	case DMM_EV_FAULT:
	case DMM_EV_CPU_FAULT:
		printf("%s %s", pname(e->type == DMM_EV_FAULT ? e->from : DMM_PROC_CPU, b1),
		       (unsigned int)e->access <= DMM_ACCESS_ATOMIC ? access[e->access] : "?");
		if (e->type == DMM_EV_CPU_FAULT)
			printf(" (page on %s)", pname(e->from, b2));
		break;
	case DMM_EV_MIGRATE:
	case DMM_EV_PIN:
	case DMM_EV_UNPIN:
		printf("%s -> %s, cause %s", pname(e->from, b1), pname(e->to, b2), dmm_cause_name(e->cause));
		break;
	case DMM_EV_THROTTLE:
		printf("%s throttled, cause %s", pname(e->to, b1), dmm_cause_name(e->cause));
		break;
	case DMM_EV_CANCEL:
		printf("%s, error %d", pname(e->from, b1), e->error);
		break;
	case DMM_EV_UNMAP:
		printf("%" PRIu64 " pages from %#" PRIx64, e->npages, e->addr);
		break;
	default:
		break;
	}
	if (e->type != DMM_EV_UNMAP)
		printf(", batch %" PRIu64 " fault %" PRIu64 " rule %u", e->origin.batch, e->origin.fault,
		       e->origin.rule);
	if (e->t_end > e->t)
		printf(", until %" PRIu64, e->t_end);
	putchar('\n');
}

static int cmd_explain(int argc, char **argv)
{
	struct run_args a;
	struct history h = { 0 };
	struct trace_run_result res;
	uint64_t addr;
	int status = parse_run_args(argc, argv, &a);

	if (status)
		goto out;
	if (a.nr_files != 2 || a.json || a.events) {
		status = trace_usage(stderr);
		goto out;
	}
	if (parse_u64(a.files[1], &addr)) {
		status = bad_opt("ADDR", a.files[1], "expected a decimal or 0x number");
		goto out;
	}
	h.page = addr & ~4095ull;
	a.o.cb = history_cb;
	a.o.cb_arg = &h;
	status = trace_run_file(&a.o, a.files[0], &res, stderr);
	if (status)
		goto out;
	if (h.nomem) {
		fprintf(stderr, "devmm trace explain: out of memory\n");
		status = 2;
	} else {
		printf("page %#" PRIx64 " in %s (policy %s, timing %s): %zu events\n", h.page, a.files[0],
		       res.policy, res.timing, h.nr);
		printf("%12s  %-9s what, origin\n", "t (ns)", "event");
		for (size_t i = 0; i < h.nr; i++)
			print_event(&h.ev[i]);
	}
	trace_run_result_free(&res);
out:
	free(h.ev);
	free(a.files);
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
	if (!strcmp(argv[0], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[0], "explain"))
		return cmd_explain(argc - 1, argv + 1);
	return trace_usage(stderr);
}
