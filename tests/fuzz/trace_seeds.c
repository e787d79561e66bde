/* SPDX-License-Identifier: MIT */
/*
 * Writes generated traces (every pattern of `devmm trace gen`, a few option
 * sets, one over 100 KiB) and a trace with an overlong line into the
 * directory argv[1]: the seed corpus of fuzz_trace.
 * Built and run by `make fuzz`, which needs no configured build for it.
 */
#include <stdio.h>

#include "trace.h"

int main(int argc, char **argv)
{
	static char *const sets[][12] = {
		{ "streaming", "--bytes", "20000", "--arrays", "2", "--cpu-init" },
		{ "streaming", "--bytes", "16384", "--layout", "chunk", "--compute", "10" },
		{ "strided", "--rows", "6", "--stride", "8192", "--mix", "r=1,w=1,a=1" },
		{ "random", "--pages", "8", "--accesses", "12", "--dist", "zipf", "--rmw" },
		{ "stencil", "--height", "6", "--width", "6", "--tile", "3", "--iters", "1" },
		{ "pingpong", "--pages", "3", "--rounds", "4", "--procs", "gpu0,cpu,gpu1" },
		/* over 100 KiB: the stream reader refills its buffer mid-trace */
		{ "streaming", "--bytes", "12582912", "--streams", "3" },
	};
	char path[4096];
	int rc = 0;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: trace_seeds DIR\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		char *args[16] = { 0 };
		int n = 0;

		while (n < 12 && sets[i][n]) {
			args[n] = sets[i][n];
			n++;
		}
		args[n++] = "--seed";
		args[n++] = "1";
		snprintf(path, sizeof(path), "%s/gen-%s-%zu.trace", argv[1], sets[i][0], i);
		f = fopen(path, "w");
		if (!f || trace_gen_main(n, args, f, stderr) || fclose(f)) {
			perror(path);
			rc = 1;
		}
	}
	/* A line past TRACE_MAX_LINE between two good ones: skipped, reported. */
	snprintf(path, sizeof(path), "%s/overlong.trace", argv[1]);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "ALLOC a 0x10000 4096\n# ");
		for (unsigned int i = 0; i < TRACE_MAX_LINE + 100; i++)
			fputc('x', f);
		fprintf(f, "\ncpu W 0x10000 8\nFREE 0x10000\n");
	}
	if (!f || fclose(f)) {
		perror(path);
		rc = 1;
	}
	return rc;
}
