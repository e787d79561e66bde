/* SPDX-License-Identifier: MIT */
/*
 * devmm-bench - devmm's memory-management paths beside the real kernel's.
 *
 * Each benchmark times one operation over a range of pages, once through the
 * public devmm API and once through the kernel (mmap, page faults, fork,
 * munmap, mprotect) in the same process, and reports the median over several
 * rounds in nanoseconds per page. Both sides run warm: the devmm system is
 * created with DMM_SYS_PRETOUCH and each side gets warm-up rounds first. The
 * kernel side runs while no devmm system exists, so that its forks copy only
 * the benchmark's own memory. Kernel mappings are MADV_NOHUGEPAGE, as devmm
 * maps only 4 KiB pages. After its rounds every devmm system must pass
 * dmm_check(). Nothing here compares against a threshold.
 *
 * Usage: devmm-bench [--quick] [--json FILE] [--pages N] [--rounds N]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <devmm/devmm.h>

#define PAGE DMM_PAGE_SIZE
#define WARMUP_ROUNDS 1
#define MAX_ROUNDS 101

/* ---------------------------------------------------------------------- */
/* Plumbing                                                                */

static void die(const char *what, int err)
{
	fprintf(stderr, "devmm-bench: %s: %s\n", what, strerror(err));
	exit(1);
}

/* devmm calls return 0 (or a count) or -errno. */
static void must(long ret, const char *what)
{
	if (ret < 0)
		die(what, (int)-ret);
}

/* Kernel calls return -1 and set errno. */
static void must_sys(long ret, const char *what)
{
	if (ret < 0)
		die(what, errno);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---------------------------------------------------------------------- */
/* devmm side: each round gets a fresh address space in a warm system      */

static uint64_t dmm_map_anon(struct dmm_mm *mm, uint64_t npages, bool populate)
{
	uint64_t base;

	must(dmm_mmap(mm, 0, npages * PAGE, DMM_PROT_READ | DMM_PROT_WRITE,
		      DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS, NULL, 0, &base),
	     "dmm_mmap");
	for (uint64_t i = 0; populate && i < npages; i++)
		must(dmm_store32(mm, base + i * PAGE, (uint32_t)i), "dmm_store32");
	return base;
}

static struct dmm_mm *dmm_new_mm(struct dmm_system *sys)
{
	struct dmm_mm *mm;

	must(dmm_mm_create(sys, &mm), "dmm_mm_create");
	return mm;
}

static void dmm_touch(struct dmm_mm *mm, uint64_t base, uint64_t npages, bool write)
{
	unsigned char byte = 1;

	for (uint64_t i = 0; i < npages; i++) {
		if (write)
			must(dmm_write(mm, base + i * PAGE, &byte, 1), "dmm_write");
		else
			must(dmm_read(mm, base + i * PAGE, &byte, 1), "dmm_read");
	}
}

static double dmm_fault_first_touch(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = dmm_new_mm(sys);
	uint64_t base = dmm_map_anon(mm, npages, false);
	double t0 = now_ns();

	dmm_touch(mm, base, npages, true);
	double t = now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

static double dmm_fault_zero_read(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = dmm_new_mm(sys);
	uint64_t base = dmm_map_anon(mm, npages, false);
	double t0 = now_ns();

	dmm_touch(mm, base, npages, false);
	double t = now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

static double dmm_cow_fault(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = dmm_new_mm(sys), *child;
	uint64_t base = dmm_map_anon(mm, npages, true);

	must(dmm_fork(mm, &child), "dmm_fork");
	double t0 = now_ns();
	dmm_touch(mm, base, npages, true);
	double t = now_ns() - t0;
	dmm_mm_exit(child);
	dmm_mm_exit(mm);
	return t;
}

static double dmm_fork_pages(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = dmm_new_mm(sys), *child;

	dmm_map_anon(mm, npages, true);
	double t0 = now_ns();
	must(dmm_fork(mm, &child), "dmm_fork");
	double t = now_ns() - t0;
	dmm_mm_exit(child);
	dmm_mm_exit(mm);
	return t;
}

static double dmm_munmap_pages(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = dmm_new_mm(sys);
	uint64_t base = dmm_map_anon(mm, npages, true);
	double t0 = now_ns();

	must(dmm_munmap(mm, base, npages * PAGE), "dmm_munmap");
	double t = now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

static double dmm_mprotect_pages(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = dmm_new_mm(sys);
	uint64_t base = dmm_map_anon(mm, npages, true);
	double t0 = now_ns();

	must(dmm_mprotect(mm, base, npages * PAGE, DMM_PROT_READ), "dmm_mprotect");
	double t = now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

/* ---------------------------------------------------------------------- */
/* Kernel side: the same operations on real memory                         */

static volatile unsigned char *k_map_anon(uint64_t npages, bool populate)
{
	void *p = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		die("mmap", errno);
	/* devmm maps 4 KiB pages only: keep transparent huge pages out. */
	madvise(p, npages * PAGE, MADV_NOHUGEPAGE);
	volatile unsigned char *m = p;
	for (uint64_t i = 0; populate && i < npages; i++)
		m[i * PAGE] = (unsigned char)i;
	return m;
}

static void k_unmap(volatile unsigned char *m, uint64_t npages)
{
	must_sys(munmap((void *)m, npages * PAGE), "munmap");
}

static void k_touch(volatile unsigned char *m, uint64_t npages, bool write)
{
	for (uint64_t i = 0; i < npages; i++) {
		if (write)
			m[i * PAGE] = 1;
		else
			(void)m[i * PAGE]; /* a volatile load: the compiler keeps it */
	}
}

static void k_wait(pid_t pid)
{
	int status;

	must_sys(waitpid(pid, &status, 0), "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "devmm-bench: child process failed\n");
		exit(1);
	}
}

static double k_fault_first_touch(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, false);
	double t0 = now_ns();

	k_touch(m, npages, true);
	double t = now_ns() - t0;
	k_unmap(m, npages);
	return t;
}

static double k_fault_zero_read(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, false);
	double t0 = now_ns();

	k_touch(m, npages, false);
	double t = now_ns() - t0;
	k_unmap(m, npages);
	return t;
}

/* The child shares the pages and waits on a pipe until the parent is done. */
static double k_cow_fault(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	int fds[2];
	char c;

	must_sys(pipe(fds), "pipe");
	pid_t pid = fork();
	must_sys(pid, "fork");
	if (pid == 0) {
		close(fds[1]);
		while (read(fds[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(fds[0]);
	double t0 = now_ns();
	k_touch(m, npages, true);
	double t = now_ns() - t0;
	close(fds[1]);
	k_wait(pid);
	k_unmap(m, npages);
	return t;
}

static double k_fork_pages(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	double t0 = now_ns();
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	double t = now_ns() - t0;
	must_sys(pid, "fork");
	k_wait(pid);
	k_unmap(m, npages);
	return t;
}

static double k_munmap_pages(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	double t0 = now_ns();

	k_unmap(m, npages);
	return now_ns() - t0;
}

static double k_mprotect_pages(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	double t0 = now_ns();

	must_sys(mprotect((void *)m, npages * PAGE, PROT_READ), "mprotect");
	double t = now_ns() - t0;
	k_unmap(m, npages);
	return t;
}

/* ---------------------------------------------------------------------- */
/* The benchmarks                                                          */

struct bench {
	const char *name;
	const char *unit;
	double (*devmm)(struct dmm_system *sys, uint64_t npages);
	double (*kernel)(uint64_t npages);
};

static const struct bench benches[] = {
	{ "fault_first_touch", "ns/page", dmm_fault_first_touch, k_fault_first_touch },
	{ "fault_zero_read", "ns/page", dmm_fault_zero_read, k_fault_zero_read },
	{ "cow_fault", "ns/page", dmm_cow_fault, k_cow_fault },
	{ "fork", "ns/page", dmm_fork_pages, k_fork_pages },
	{ "munmap", "ns/page", dmm_munmap_pages, k_munmap_pages },
	{ "mprotect", "ns/page", dmm_mprotect_pages, k_mprotect_pages },
};
#define NR_BENCHES (sizeof(benches) / sizeof(benches[0]))

struct result {
	const char *name;
	const char *unit;
	double devmm, baseline, ratio;
};

struct options {
	uint64_t npages;
	int rounds;
	const char *json;
};

/* Frames for one round's worst case (a CoW copy of every page) plus room
 * for page tables. */
static uint64_t frames_needed(uint64_t npages)
{
	return 2 * npages + npages / 8 + 1024;
}

static double kernel_median(const struct bench *b, const struct options *o)
{
	double t[MAX_ROUNDS];

	for (int i = 0; i < WARMUP_ROUNDS; i++)
		b->kernel(o->npages);
	for (int i = 0; i < o->rounds; i++)
		t[i] = b->kernel(o->npages) / (double)o->npages;
	return median(t, o->rounds);
}

static double devmm_median(const struct bench *b, const struct options *o)
{
	struct dmm_system_config cfg = {
		.nr_frames = frames_needed(o->npages),
		.flags = DMM_SYS_PRETOUCH,
	};
	struct dmm_system *sys;
	double t[MAX_ROUNDS];
	char report[4096];

	must(dmm_system_create(&cfg, &sys), "dmm_system_create");
	for (int i = 0; i < WARMUP_ROUNDS; i++)
		b->devmm(sys, o->npages);
	for (int i = 0; i < o->rounds; i++)
		t[i] = b->devmm(sys, o->npages) / (double)o->npages;
	if (dmm_check(sys, report, sizeof(report))) {
		fprintf(stderr, "devmm-bench: %s: dmm_check failed:\n%s\n", b->name, report);
		exit(1);
	}
	dmm_system_destroy(sys);
	return median(t, o->rounds);
}

static void write_json(const char *path, const struct result *r, size_t n)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die(path, errno);
	fputs("[\n", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f,
			"  {\"name\": \"%s\", \"unit\": \"%s\", \"devmm\": %.1f, \"baseline\": %.1f, "
			"\"ratio\": %.3f}%s\n",
			r[i].name, r[i].unit, r[i].devmm, r[i].baseline, r[i].ratio,
			i + 1 < n ? "," : "");
	fputs("]\n", f);
	if (fclose(f))
		die(path, errno);
}

static void usage(FILE *f)
{
	fputs("usage: devmm-bench [--quick] [--json FILE] [--pages N] [--rounds N]\n"
	      "  --quick      small ranges and 3 rounds (a smoke run, a few seconds)\n"
	      "  --json FILE  also write the results as a JSON array to FILE\n"
	      "  --pages N    pages per round (default 16384, 1024 with --quick)\n"
	      "  --rounds N   timed rounds per side, median reported (default 7, 3 with --quick)\n",
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

static struct options parse_args(int argc, char **argv)
{
	struct options o = { .npages = 16384, .rounds = 7 };
	long pages = 0, rounds = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			o.npages = 1024;
			o.rounds = 3;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			o.json = argv[++i];
		} else if (!strcmp(argv[i], "--pages")) {
			pages = parse_count(argv[++i], 1L << 22);
		} else if (!strcmp(argv[i], "--rounds")) {
			rounds = parse_count(argv[++i], MAX_ROUNDS);
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		} else {
			usage(stderr);
			exit(2);
		}
	}
	if (pages)
		o.npages = (uint64_t)pages;
	if (rounds)
		o.rounds = (int)rounds;
	return o;
}

int main(int argc, char **argv)
{
	struct options o = parse_args(argc, argv);
	struct result r[NR_BENCHES];

	printf("devmm-bench: devmm %s, %" PRIu64 " pages (%" PRIu64 " KiB) per round, "
	       "median of %d rounds after %d warm-up\n",
	       dmm_version(), o.npages, o.npages * PAGE / 1024, o.rounds, WARMUP_ROUNDS);
	printf("%-18s %-8s %12s %12s %8s\n", "name", "unit", "devmm", "baseline", "ratio");
	for (size_t i = 0; i < NR_BENCHES; i++) {
		const struct bench *b = &benches[i];

		/* Kernel first: no devmm system is alive while it forks. */
		r[i].name = b->name;
		r[i].unit = b->unit;
		r[i].baseline = kernel_median(b, &o);
		r[i].devmm = devmm_median(b, &o);
		r[i].ratio = r[i].baseline > 0 ? r[i].devmm / r[i].baseline : 0;
		printf("%-18s %-8s %12.1f %12.1f %8.2f\n", r[i].name, r[i].unit, r[i].devmm,
		       r[i].baseline, r[i].ratio);
		fflush(stdout);
	}
	printf("(baseline: the kernel on this machine; ratio = devmm / baseline)\n");
	if (o.json)
		write_json(o.json, r, NR_BENCHES);
	return 0;
}
