/* SPDX-License-Identifier: MIT */
/*
 * vma-vs-kernel: run the same random sequence of mmap, munmap, mprotect,
 * mremap, madvise, CPU reads and writes and forks on this process (the
 * live kernel) and on a devmm address space, and compare after every step:
 *
 *   - the result (0 or the errno);
 *   - the VMAs of a small window: bounds, r/w/shared and VM_ACCOUNT
 *     (/proc/self/smaps VmFlags "ac" against dmm_vma_query);
 *   - each page's state: none, the zero page or a page of its own
 *     (/proc/self/pagemap and, as root, /proc/kpageflags; without root
 *     only present or not), and the first word of every readable page;
 *   - after a fork, the same states in the child (fork copies the page
 *     tables only of VMAs with an anon_vma).
 *
 * A read fault on shared memory also maps the neighbouring pages that are
 * in the page cache already (fault-around); devmm does not, so a page of
 * a shared VMA that only the kernel maps is not a difference.
 *
 * MADV_FREE leaves lazily freeable pages mapped until reclaim; devmm frees
 * them at once, as reclaim would, so the kernel side follows it with
 * MADV_PAGEOUT, which reclaims them now (there is no swap to put other
 * pages in; without swap they stay). The process stays on one CPU, so
 * that no page waits in another CPU's LRU batch where PAGEOUT cannot see
 * it.
 *
 *   vma-vs-kernel [--seed S] [--runs N] [--steps N] [-v]
 *
 * Exit status 0 when every run agreed, 1 at the first difference (the
 * steps of that run are printed), 2 for usage errors. Not part of the test
 * suites: it needs a Linux kernel >= 6.17 (moves across several VMAs) and,
 * for the zero page, root.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <devmm/devmm.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PG 4096UL
#define W 32			 /* pages in the window */
#define BASE 0x600000000000UL	 /* the window, in both address spaces */
#define KPF_ZERO_PAGE 24
#define MAX_V 64
#define MAX_STEPS 1000

enum { PS_NONE, PS_ZERO, PS_PAGE };

struct vview {
	uint64_t s, e;
	bool r, w, sh, ac;
};

static struct dmm_system *sys;
static struct dmm_mm *mm;
static int kpageflags = -1;
static bool verbose;
static uint64_t rng;
static char steps[MAX_STEPS][96];
static int nsteps;
static uint64_t cur_seed;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static uint64_t addr(uint64_t page) { return BASE + page * PG; }

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("steps of the run with seed %" PRIu64 " (rerun: --seed %" PRIu64 " --runs 1 -v):\n", cur_seed,
	       cur_seed);
	for (int i = 0; i < nsteps; i++)
		printf("  %3d %s\n", i, steps[i]);
	printf("DIFFERENCE after step %d: ", nsteps - 1);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(1);
}

/* ---- the kernel side ---------------------------------------------------- */

/* CPU access that may fault (SIGBUS past the end of shared memory that
 * mremap grew): -EFAULT, as devmm reports it. */
static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	siglongjmp(fault_jmp, sig);
}

static int kload(uint64_t a, uint32_t *w)
{
	if (sigsetjmp(fault_jmp, 1))
		return -EFAULT;
	*w = *(volatile uint32_t *)a;
	return 0;
}

static int kstore(uint64_t a, uint32_t w)
{
	if (sigsetjmp(fault_jmp, 1))
		return -EFAULT;
	*(volatile uint32_t *)a = w;
	return 0;
}

static int kernel_vmas(struct vview *v)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int n = 0;
	bool in = false;

	if (!f) {
		perror("/proc/self/smaps");
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
			in = s >= BASE && e <= addr(W) && n < MAX_V;
			if (in)
				v[n++] = (struct vview){ s, e, perms[0] == 'r', perms[1] == 'w', perms[3] == 's', false };
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			v[n - 1].ac = strstr(line, " ac") != NULL;
		}
	}
	fclose(f);
	return n;
}

static int kernel_page_state(int pagemap, uint64_t a)
{
	uint64_t e = 0, fl = 0;

	if (pread(pagemap, &e, 8, (a / PG) * 8) != 8)
		return PS_NONE;
	if (!(e >> 63))
		return PS_NONE;
	if (kpageflags < 0)
		return PS_PAGE;
	if (pread(kpageflags, &fl, 8, (e & ((1ULL << 55) - 1)) * 8) != 8)
		return PS_PAGE;
	return (fl >> KPF_ZERO_PAGE) & 1 ? PS_ZERO : PS_PAGE;
}

static void kernel_states(int *st)
{
	int pm = open("/proc/self/pagemap", O_RDONLY);

	for (int i = 0; i < W; i++)
		st[i] = kernel_page_state(pm, addr(i));
	close(pm);
}

/* ---- the devmm side ----------------------------------------------------- */

static int devmm_vmas(struct vview *v)
{
	struct dmm_vma_info i;
	int n = 0;

	for (uint64_t a = BASE; n < MAX_V && !dmm_vma_query(mm, a, &i) && i.start < addr(W); a = i.end)
		v[n++] = (struct vview){ i.start, i.end, i.flags & DMM_VM_READ, i.flags & DMM_VM_WRITE,
					 i.flags & DMM_VM_SHARED, i.flags & DMM_VM_ACCOUNT };
	return n;
}

static void devmm_states(struct dmm_mm *m, int *st)
{
	for (int i = 0; i < W; i++) {
		struct dmm_pte_info p;

		if (dmm_pte_query(m, addr(i), &p) || p.kind == DMM_PTE_NONE)
			st[i] = PS_NONE;
		else
			st[i] = p.special ? PS_ZERO : PS_PAGE;
		if (kpageflags < 0 && st[i] == PS_ZERO)
			st[i] = PS_PAGE; /* not root: present is all we can see */
	}
}

static const struct vview *vma_at(const struct vview *v, int n, uint64_t a)
{
	for (int i = 0; i < n; i++)
		if (v[i].s <= a && a < v[i].e)
			return &v[i];
	return NULL;
}

/* ---- comparing ---------------------------------------------------------- */

static void vview_str(const struct vview *v, int n, char *b, size_t size)
{
	size_t o = 0;

	b[0] = '\0';
	for (int i = 0; i < n && o < size; i++)
		o += snprintf(b + o, size - o, " [%lu,%lu)%c%c%c%s", (unsigned long)((v[i].s - BASE) / PG),
			      (unsigned long)((v[i].e - BASE) / PG), v[i].r ? 'r' : '-', v[i].w ? 'w' : '-',
			      v[i].sh ? 's' : 'p', v[i].ac ? "+ac" : "");
}

static void compare(void)
{
	struct vview kv[MAX_V], dv[MAX_V];
	int kn = kernel_vmas(kv), dn = devmm_vmas(dv);
	int ks[W], ds[W];
	char a[2048], b[2048];

	vview_str(kv, kn, a, sizeof(a));
	vview_str(dv, dn, b, sizeof(b));
	if (kn != dn || strcmp(a, b))
		fail("VMAs differ\n  kernel:%s\n  devmm: %s", a, b);
	kernel_states(ks);
	devmm_states(mm, ds);
	for (int i = 0; i < W; i++) {
		const struct vview *v = vma_at(kv, kn, addr(i));
		uint32_t kw, dw = 0;

		/* A read fault on shared memory maps the neighbours already in
		 * the page cache too (fault-around), which devmm does not model. */
		if (v && v->sh && ks[i] == PS_PAGE && ds[i] == PS_NONE)
			continue;
		if (ks[i] != ds[i])
			fail("page %d: kernel state %d, devmm %d (0 none, 1 zero, 2 page)", i, ks[i], ds[i]);
		if (ks[i] == PS_NONE || !v || !v->r)
			continue;
		kw = *(volatile uint32_t *)addr(i);
		if (dmm_load32(mm, addr(i), &dw))
			fail("page %d: devmm load failed", i);
		if (kw != dw)
			fail("page %d: kernel word %#x, devmm %#x", i, kw, dw);
	}
}

static void fork_compare(void)
{
	int fd[2], ks[W], ds[W];
	struct dmm_mm *child = NULL;
	pid_t pid;
	int r;

	if (pipe(fd))
		exit(2);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		kernel_states(ks);
		(void)!write(fd[1], ks, sizeof(ks));
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], ks, sizeof(ks)) != (ssize_t)sizeof(ks))
		fail("the child sent nothing");
	close(fd[0]);
	waitpid(pid, NULL, 0);
	r = dmm_fork(mm, &child);
	if (r)
		fail("dmm_fork: %d", r);
	devmm_states(child, ds);
	dmm_mm_exit(child);
	for (int i = 0; i < W; i++)
		if (ks[i] != ds[i])
			fail("child page %d: kernel state %d, devmm %d (0 none, 1 zero, 2 page)", i, ks[i], ds[i]);
}

/* ---- the steps ---------------------------------------------------------- */

static int kerr(long r) { return r < 0 ? -errno : 0; }

static void result(const char *what, int kr, int dr)
{
	if (kr != dr)
		fail("%s: kernel %d (%s), devmm %d (%s)", what, kr, strerror(-kr), dr, strerror(-dr));
}

static void step(int opno)
{
	struct vview v[MAX_V];
	int n = devmm_vmas(v);
	uint64_t a = rnd(W), len = 1 + rnd(5), b;
	char *s = steps[nsteps++];
	int kr, dr, prot;

	if (a + len > W)
		len = W - a;
	switch (rnd(10)) {
	case 0:
	case 1: { /* map */
		int kind = (int)rnd(4), flags = kind == 3 ? MAP_SHARED : MAP_PRIVATE;
		uint64_t out = 0;

		prot = kind == 0 || kind == 3 ? PROT_READ | PROT_WRITE : kind == 1 ? PROT_READ : PROT_NONE;
		snprintf(s, 96, "mmap %lu+%lu %s", (unsigned long)a, (unsigned long)len,
			 (const char *[]){ "anon rw", "anon r", "anon none", "shared rw" }[kind]);
		void *p = mmap((void *)addr(a), len * PG, prot, flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		kr = p == MAP_FAILED ? -errno : 0;
		dr = dmm_mmap(mm, addr(a), len * PG, prot, (kind == 3 ? DMM_MAP_SHARED : DMM_MAP_PRIVATE) |
			      DMM_MAP_ANONYMOUS | DMM_MAP_FIXED_NOREPLACE, NULL, 0, &out);
		result("mmap", kr, dr);
		break;
	}
	case 2: /* munmap */
		snprintf(s, 96, "munmap %lu+%lu", (unsigned long)a, (unsigned long)len);
		result("munmap", kerr(munmap((void *)addr(a), len * PG)), dmm_munmap(mm, addr(a), len * PG));
		break;
	case 3: /* mprotect */
		prot = (int)rnd(3) == 0 ? PROT_NONE : rnd(2) ? PROT_READ : PROT_READ | PROT_WRITE;
		snprintf(s, 96, "mprotect %lu+%lu %d", (unsigned long)a, (unsigned long)len, prot);
		result("mprotect", kerr(mprotect((void *)addr(a), len * PG, prot)),
		       dmm_mprotect(mm, addr(a), len * PG, prot));
		break;
	case 4:
	case 5: { /* CPU write or read of one page, only where it cannot fault */
		const struct vview *vv = vma_at(v, n, addr(a));
		uint32_t w;

		if (vv && vv->w && rnd(3)) {
			snprintf(s, 96, "write %lu = %d", (unsigned long)a, opno);
			kr = kstore(addr(a), (uint32_t)opno);
			result("store", kr, dmm_store32(mm, addr(a), (uint32_t)opno));
		} else if (vv && vv->r) {
			snprintf(s, 96, "read %lu", (unsigned long)a);
			kr = kload(addr(a), &w);
			result("load", kr, dmm_load32(mm, addr(a), &w));
		} else {
			snprintf(s, 96, "(no access at %lu)", (unsigned long)a);
		}
		break;
	}
	case 6:
	case 7: { /* mremap to a fixed place in the window */
		bool dontunmap = rnd(3) == 0;
		uint64_t nlen = len;
		int fl = MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0);

		if (!dontunmap && rnd(4) == 0)
			nlen = len + (rnd(2) ? 1 : (len > 1 ? -1 : 1));
		b = rnd(W - nlen + 1);
		snprintf(s, 96, "mremap %lu+%lu -> %lu+%lu%s", (unsigned long)a, (unsigned long)len,
			 (unsigned long)b, (unsigned long)nlen, dontunmap ? " dontunmap" : "");
		void *p = mremap((void *)addr(a), len * PG, nlen * PG, fl, (void *)addr(b));
		kr = p == MAP_FAILED ? -errno : 0;
		dr = dmm_mremap(mm, addr(a), len * PG, nlen * PG,
				DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED | (dontunmap ? DMM_MREMAP_DONTUNMAP : 0),
				addr(b));
		result("mremap", kr, dr);
		break;
	}
	case 8: { /* madvise */
		bool free_ = rnd(2);

		snprintf(s, 96, "madvise %lu+%lu %s", (unsigned long)a, (unsigned long)len,
			 free_ ? "free" : "dontneed");
		kr = kerr(madvise((void *)addr(a), len * PG, free_ ? MADV_FREE : MADV_DONTNEED));
		/* Reclaim what MADV_FREE marked: the private pieces up to the
		 * first shared VMA, where it stopped (PAGEOUT would unmap a
		 * shmem page it cannot write out). */
		for (int i = 0; free_ && i < n && v[i].s < addr(a + len); i++) {
			if (v[i].e <= addr(a))
				continue;
			if (v[i].sh)
				break;
			uint64_t ps = v[i].s > addr(a) ? v[i].s : addr(a);
			uint64_t pe = v[i].e < addr(a + len) ? v[i].e : addr(a + len);

			(void)madvise((void *)ps, pe - ps, MADV_PAGEOUT);
		}
		dr = dmm_madvise(mm, addr(a), len * PG, free_ ? DMM_MADV_FREE : DMM_MADV_DONTNEED);
		result("madvise", kr, dr);
		break;
	}
	default:
		snprintf(s, 96, "fork and compare the child");
		fork_compare();
		break;
	}
	compare();
	if (verbose) {
		struct vview kv[MAX_V];
		int kn = kernel_vmas(kv), ks[W];
		char b[2048];

		vview_str(kv, kn, b, sizeof(b));
		kernel_states(ks);
		printf("  %-40s|", s);
		for (int i = 0; i < W; i++)
			printf("%c", ".zP"[ks[i]]);
		printf("|%s\n", b);
	}
}

int main(int argc, char **argv)
{
	struct dmm_system_config cfg = { .nr_frames = 4096 };
	uint64_t seed = (uint64_t)getpid() * 2654435761u;
	int runs = 200, nsteps_per = 60;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			nsteps_per = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else {
			fprintf(stderr, "usage: %s [--seed S] [--runs N] [--steps N] [-v]\n", argv[0]);
			return 2;
		}
	}
	if (nsteps_per < 1 || nsteps_per > MAX_STEPS || runs < 1) {
		fprintf(stderr, "--steps 1..%d, --runs >= 1\n", MAX_STEPS);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_fault };

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	/* One CPU: MADV_PAGEOUT drains only this CPU's LRU batches, and a
	 * page still in another CPU's batch could not be reclaimed. */
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
	sched_setaffinity(0, sizeof(one), &one);
	kpageflags = open("/proc/kpageflags", O_RDONLY);
	if (kpageflags < 0)
		printf("no /proc/kpageflags (not root?): the zero page counts as a page\n");
	if (dmm_system_create(&cfg, &sys)) {
		fprintf(stderr, "dmm_system_create failed\n");
		return 2;
	}
	for (int run = 0; run < runs; run++) {
		uint64_t s = seed + (uint64_t)run;

		cur_seed = s;
		rng = s * 0x9e3779b97f4a7c15ULL | 1;
		nsteps = 0;
		if (dmm_mm_create(sys, &mm)) {
			fprintf(stderr, "dmm_mm_create failed\n");
			return 2;
		}
		if (verbose)
			printf("run %d (seed %" PRIu64 ")\n", run, s);
		for (int i = 0; i < nsteps_per; i++)
			step(i + 1);
		munmap((void *)BASE, W * PG);
		dmm_mm_exit(mm);
		if (dmm_check(sys, NULL, 0) != 0) {
			fprintf(stderr, "dmm_check failed after run %d (seed %" PRIu64 ")\n", run, s);
			return 1;
		}
	}
	printf("%d runs of %d steps agree (seeds %" PRIu64 "..%" PRIu64 ")\n", runs, nsteps_per, seed,
	       seed + (uint64_t)runs - 1);
	dmm_system_destroy(sys);
	return 0;
}
