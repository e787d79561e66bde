/* SPDX-License-Identifier: MIT */
/* build/devmm-bench: the benchmarks on their own (the same as `devmm bench`). */
#include "bench.h"

int main(int argc, char **argv)
{
	return devmm_bench_main(argc, argv);
}
