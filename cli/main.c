/* SPDX-License-Identifier: MIT */
/*
 * devmm: the command-line tool.
 *
 *   devmm run [-v] [--check-each] [--contents=none] FILE...   run scenario scripts
 *   devmm demo                              the guided walkthrough
 *   devmm bench [--quick] [--json FILE] ... the benchmarks (bench/bench.c)
 *   devmm trace gen|check ...                traces (cli/trace_cmd.c)
 *   devmm version
 *
 * Exit status of run: 0 if every test passed, 1 if any failed, 2 for usage
 * errors or unreadable files.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runner.h"

int devmm_demo(int argc, char **argv);
int devmm_stress(int argc, char **argv);
int devmm_bench_main(int argc, char **argv);
int devmm_trace(int argc, char **argv);

static int usage(FILE *f)
{
	fprintf(f, "usage: devmm run [-v] [--check-each] [--contents=none] FILE...\n"
		   "       devmm demo\n"
		   "       devmm stress [--seconds N] [--ops N] [--seed S] [--threads N]\n"
		   "       devmm bench [--quick] [--json FILE] [--pages N] [--rounds N] [--only LIST] [--wall]\n"
		   "       devmm trace gen PATTERN [--seed S] [options] > FILE\n"
		   "       devmm trace check FILE...\n"
		   "       devmm version\n");
	return 2;
}

/* Run every combination of one file; count passes and failures. */
static int run_file(const char *path, const struct runner_opts *opts, unsigned long *passed,
		    unsigned long *failed)
{
	struct script *s;
	struct diag d;
	int e = script_load(path, &s, &d);

	if (e) {
		fprintf(stdout, "%s\n", d.text);
		if (e != -EINVAL && e != -ENOMEM)
			return 2; /* unreadable */
		(*failed)++;
		return 0;
	}
	for (size_t c = 0; c < script_combo_count(s); c++) {
		char name[512];
		int r;

		script_combo_name(s, c, name, sizeof(name));
		if (opts->verbose)
			printf("%s\n", name);
		r = runner_run_combo(s, c, stdout, opts);
		if (r)
			(*failed)++;
		else
			(*passed)++;
		if (opts->verbose || r)
			printf("%s: %s\n", name, r ? "FAILED" : "passed");
		fflush(stdout);
	}
	script_free(s);
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct runner_opts opts = { 0 };
	unsigned long passed = 0, failed = 0;
	int i, status = 0, files = 0;

	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v"))
			opts.verbose = true;
		else if (!strcmp(argv[i], "--check-each"))
			opts.check_each = true;
		else if (!strcmp(argv[i], "--contents=none"))
			opts.no_contents = true;
		else if (!strcmp(argv[i], "--"))
			break;
		else
			return usage(stderr);
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	for (; i < argc; i++, files++)
		if (run_file(argv[i], &opts, &passed, &failed) == 2)
			status = 2;
	if (!files)
		return usage(stderr);
	printf("%lu passed, %lu failed\n", passed, failed);
	if (status)
		return status;
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "demo"))
		return devmm_demo(argc - 2, argv + 2);
	if (!strcmp(argv[1], "trace"))
		return devmm_trace(argc - 2, argv + 2);
	if (!strcmp(argv[1], "stress"))
		return devmm_stress(argc - 2, argv + 2);
	/* Its option parser starts at argv[1], as a program's does. */
	if (!strcmp(argv[1], "bench"))
		return devmm_bench_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version")) {
		printf("devmm %s\n", dmm_version());
		return 0;
	}
	return usage(stderr);
}
