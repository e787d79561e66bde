/* SPDX-License-Identifier: MIT */
/*
 * devmm beside the kernel: each benchmark times one operation over a range
 * of pages, once through the public devmm API and once through the kernel
 * (mmap, page faults, fork, munmap, mprotect) in this process, in ns per
 * page. The kernel side runs first, while no devmm system exists, so that
 * its forks copy only the benchmark's own memory; its mappings are
 * MADV_NOHUGEPAGE, as devmm maps only 4 KiB pages. The devmm side runs in
 * one pre-touched system kept for all of its rounds, each round in a fresh
 * address space; the system must pass dmm_check() afterwards.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define THP_PAGES 512ULL /* one PMD range */

/* ---------------------------------------------------------------------- */
/* devmm side                                                              */

static void bench_touch(struct dmm_mm *mm, uint64_t base, uint64_t npages, bool write)
{
	unsigned char byte = 1;

	for (uint64_t i = 0; i < npages; i++) {
		if (write)
			bench_must(dmm_write(mm, base + i * PAGE, &byte, 1), "dmm_write");
		else
			bench_must(dmm_read(mm, base + i * PAGE, &byte, 1), "dmm_read");
	}
}

static double dmm_fault_first_touch(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys);
	uint64_t base = bench_map_anon(mm, npages, false);
	double t0 = bench_now_ns();

	bench_touch(mm, base, npages, true);
	double t = bench_now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

/* A 2 MiB-aligned anonymous range of @npages (a multiple of 512) inside a
 * larger mapping, so that every PMD range of it lies in the VMA. */
static uint64_t dmm_map_thp_range(struct dmm_mm *mm, uint64_t npages)
{
	uint64_t base = bench_map_anon(mm, npages + THP_PAGES, false);

	return (base + THP_PAGES * PAGE - 1) & ~(THP_PAGES * PAGE - 1);
}

/* fault_thp: with thp=always, the first write to each 2 MiB range maps a
 * THP by a PMD; the other 511 writes go through it. Per 4 KiB page. */
static double dmm_fault_thp(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys);
	uint64_t base;

	bench_must(dmm_system_set_thp(sys, DMM_THP_ALWAYS, 0), "dmm_system_set_thp");
	base = dmm_map_thp_range(mm, npages);
	double t0 = bench_now_ns();

	bench_touch(mm, base, npages, true);
	double t = bench_now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

static double dmm_fault_zero_read(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys);
	uint64_t base = bench_map_anon(mm, npages, false);
	double t0 = bench_now_ns();

	bench_touch(mm, base, npages, false);
	double t = bench_now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

static double dmm_cow_fault(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys), *child;
	uint64_t base = bench_map_anon(mm, npages, true);

	bench_must(dmm_fork(mm, &child), "dmm_fork");
	double t0 = bench_now_ns();
	bench_touch(mm, base, npages, true);
	double t = bench_now_ns() - t0;
	dmm_mm_exit(child);
	dmm_mm_exit(mm);
	return t;
}

/* dmm_map_thp_range with every page written: THPs with thp=always. */
static uint64_t dmm_map_thp(struct dmm_mm *mm, uint64_t npages)
{
	uint64_t base = dmm_map_thp_range(mm, npages);

	for (uint64_t i = 0; i < npages; i++)
		bench_must(dmm_store32(mm, base + i * PAGE, (uint32_t)i), "dmm_store32");
	return base;
}

/* fork, then the parent writes one page of each THP: a PMD split and one
 * 4 KiB copy each (large-folios.md §3.2). */
static double dmm_cow_thp(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys), *child;
	uint64_t base;

	bench_must(dmm_system_set_thp(sys, DMM_THP_ALWAYS, 0), "dmm_system_set_thp");
	base = dmm_map_thp(mm, npages);
	double t0 = bench_now_ns();
	bench_must(dmm_fork(mm, &child), "dmm_fork");
	for (uint64_t i = 0; i < npages; i += THP_PAGES)
		bench_must(dmm_store32(mm, base + i * PAGE, 1), "dmm_store32");
	double t = bench_now_ns() - t0;
	dmm_mm_exit(child);
	dmm_mm_exit(mm);
	bench_must(dmm_system_set_thp(sys, DMM_THP_NEVER, 0), "dmm_system_set_thp");
	return t;
}

static double dmm_fork_pages(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys), *child;

	bench_map_anon(mm, npages, true);
	double t0 = bench_now_ns();
	bench_must(dmm_fork(mm, &child), "dmm_fork");
	double t = bench_now_ns() - t0;
	dmm_mm_exit(child);
	dmm_mm_exit(mm);
	return t;
}

static double dmm_munmap_pages(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys);
	uint64_t base = bench_map_anon(mm, npages, true);
	double t0 = bench_now_ns();

	bench_must(dmm_munmap(mm, base, npages * PAGE), "dmm_munmap");
	double t = bench_now_ns() - t0;
	dmm_mm_exit(mm);
	return t;
}

static double dmm_mprotect_pages(struct dmm_system *sys, uint64_t npages)
{
	struct dmm_mm *mm = bench_mm(sys);
	uint64_t base = bench_map_anon(mm, npages, true);
	double t0 = bench_now_ns();

	bench_must(dmm_mprotect(mm, base, npages * PAGE, DMM_PROT_READ), "dmm_mprotect");
	double t = bench_now_ns() - t0;
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
		bench_die("mmap", errno);
	/* devmm maps 4 KiB pages only: keep transparent huge pages out. */
	madvise(p, npages * PAGE, MADV_NOHUGEPAGE);
	volatile unsigned char *m = p;
	for (uint64_t i = 0; populate && i < npages; i++)
		m[i * PAGE] = (unsigned char)i;
	return m;
}

static void k_unmap(volatile unsigned char *m, uint64_t npages)
{
	bench_must_sys(munmap((void *)m, npages * PAGE), "munmap");
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

	bench_must_sys(waitpid(pid, &status, 0), "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "devmm bench: child process failed\n");
		exit(1);
	}
}

static double k_fault_first_touch(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, false);
	double t0 = bench_now_ns();

	k_touch(m, npages, true);
	double t = bench_now_ns() - t0;
	k_unmap(m, npages);
	return t;
}

/* The kernel side of fault_thp: a 2 MiB-aligned MADV_HUGEPAGE range. */
static double k_fault_thp(uint64_t npages)
{
	uint64_t len = (npages + THP_PAGES) * PAGE;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_die("mmap", errno);
	volatile unsigned char *m =
		(volatile unsigned char *)(((uintptr_t)p + THP_PAGES * PAGE - 1) & ~(uintptr_t)(THP_PAGES * PAGE - 1));
	madvise((void *)m, npages * PAGE, MADV_HUGEPAGE);
	double t0 = bench_now_ns();

	k_touch(m, npages, true);
	double t = bench_now_ns() - t0;
	bench_must_sys(munmap(p, len), "munmap");
	return t;
}

static double k_fault_zero_read(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, false);
	double t0 = bench_now_ns();

	k_touch(m, npages, false);
	double t = bench_now_ns() - t0;
	k_unmap(m, npages);
	return t;
}

/* The child shares the pages and waits on a pipe until the parent is done. */
static double k_cow_fault(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	int fds[2];
	char c;

	bench_must_sys(pipe(fds), "pipe");
	pid_t pid = fork();
	bench_must_sys(pid, "fork");
	if (pid == 0) {
		close(fds[1]);
		while (read(fds[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(fds[0]);
	double t0 = bench_now_ns();
	k_touch(m, npages, true);
	double t = bench_now_ns() - t0;
	close(fds[1]);
	k_wait(pid);
	k_unmap(m, npages);
	return t;
}

/* The kernel's THPs: MADV_HUGEPAGE on a 2 MiB-aligned range, every page
 * written. Returns the aligned start; *map and *len what to unmap. */
static volatile unsigned char *k_map_thp(uint64_t npages, void **map, size_t *len)
{
	*len = (npages + THP_PAGES) * PAGE;
	*map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*map == MAP_FAILED)
		bench_die("mmap", errno);
	uintptr_t a = ((uintptr_t)*map + THP_PAGES * PAGE - 1) & ~(uintptr_t)(THP_PAGES * PAGE - 1);
	volatile unsigned char *m = (volatile unsigned char *)a;

	madvise((void *)m, npages * PAGE, MADV_HUGEPAGE);
	for (uint64_t i = 0; i < npages; i++)
		m[i * PAGE] = (unsigned char)i;
	return m;
}

static double k_cow_thp(uint64_t npages)
{
	void *map;
	size_t len;
	volatile unsigned char *m = k_map_thp(npages, &map, &len);
	int fds[2];
	char c;

	bench_must_sys(pipe(fds), "pipe");
	double t0 = bench_now_ns();
	pid_t pid = fork();
	bench_must_sys(pid, "fork");
	if (pid == 0) {
		close(fds[1]);
		while (read(fds[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	for (uint64_t i = 0; i < npages; i += THP_PAGES)
		m[i * PAGE] = 1;
	double t = bench_now_ns() - t0;
	close(fds[0]);
	close(fds[1]);
	k_wait(pid);
	bench_must_sys(munmap(map, len), "munmap");
	return t;
}

static double k_fork_pages(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	double t0 = bench_now_ns();
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	double t = bench_now_ns() - t0;
	bench_must_sys(pid, "fork");
	k_wait(pid);
	k_unmap(m, npages);
	return t;
}

static double k_munmap_pages(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	double t0 = bench_now_ns();

	k_unmap(m, npages);
	return bench_now_ns() - t0;
}

static double k_mprotect_pages(uint64_t npages)
{
	volatile unsigned char *m = k_map_anon(npages, true);
	double t0 = bench_now_ns();

	bench_must_sys(mprotect((void *)m, npages * PAGE, PROT_READ), "mprotect");
	double t = bench_now_ns() - t0;
	k_unmap(m, npages);
	return t;
}

/* ---------------------------------------------------------------------- */
/* The pairs                                                               */

struct vm_ctx {
	double (*devmm)(struct dmm_system *sys, uint64_t npages);
	double (*kernel)(uint64_t npages);
	struct dmm_system *sys;
	uint64_t npages;
};

static double kernel_round(void *p)
{
	struct vm_ctx *c = p;

	return c->kernel(c->npages) / (double)c->npages;
}

static double devmm_round(void *p)
{
	struct vm_ctx *c = p;

	return c->devmm(c->sys, c->npages) / (double)c->npages;
}

/* Frames for one round's worst case (a CoW copy of every page). */
static uint64_t frames_needed(uint64_t npages)
{
	return 2 * npages + npages / 8 + 1024;
}

static void run_pair(const struct bench_opts *o, struct bench_result *r,
		     double (*devmm)(struct dmm_system *, uint64_t), double (*kernel)(uint64_t))
{
	struct vm_ctx c = { .devmm = devmm, .kernel = kernel, .npages = o->npages };

	/* Kernel first: no devmm system is alive while it forks. */
	r->baseline = bench_rounds(kernel_round, &c, o);
	c.sys = bench_system(frames_needed(o->npages));
	r->devmm = bench_rounds(devmm_round, &c, o);
	bench_system_done(c.sys, r->name);
	r->ratio = r->devmm / r->baseline;
}

void bench_fault_first_touch(const struct bench_opts *o, struct bench_result *r)
{
	run_pair(o, r, dmm_fault_first_touch, k_fault_first_touch);
}

/* fault_thp: npages rounded up to whole 2 MiB ranges. */
void bench_fault_thp(const struct bench_opts *o, struct bench_result *r)
{
	struct bench_opts t = *o;

	t.npages = (o->npages + THP_PAGES - 1) / THP_PAGES * THP_PAGES;
	run_pair(&t, r, dmm_fault_thp, k_fault_thp);
}

void bench_fault_zero_read(const struct bench_opts *o, struct bench_result *r)
{
	run_pair(o, r, dmm_fault_zero_read, k_fault_zero_read);
}

void bench_cow_fault(const struct bench_opts *o, struct bench_result *r)
{
	run_pair(o, r, dmm_cow_fault, k_cow_fault);
}

void bench_cow_thp(const struct bench_opts *o, struct bench_result *r)
{
	struct bench_opts t = *o;

	t.npages = (o->npages + THP_PAGES - 1) / THP_PAGES * THP_PAGES;
	run_pair(&t, r, dmm_cow_thp, k_cow_thp);
}

void bench_fork(const struct bench_opts *o, struct bench_result *r)
{
	run_pair(o, r, dmm_fork_pages, k_fork_pages);
}

void bench_munmap(const struct bench_opts *o, struct bench_result *r)
{
	run_pair(o, r, dmm_munmap_pages, k_munmap_pages);
}

void bench_mprotect(const struct bench_opts *o, struct bench_result *r)
{
	run_pair(o, r, dmm_mprotect_pages, k_mprotect_pages);
}

/*
 * The hardware floor of a fault: fault_first_touch_floor and cow_fault_floor
 * time the same faults as fault_first_touch and cow_fault against the work
 * no page-fault handler can avoid: clearing (resp. copying) one 4 KiB frame
 * and storing one page-table entry. The floor's frames are a buffer as
 * large as the round's, cycled through round after round as devmm's
 * allocator recycles its frames, so they are as cold in the caches as the
 * frames a fault gets. Rounds alternate between the two sides.
 */
struct floor_ctx {
	struct vm_ctx vm;
	unsigned char *dst, *src; /* npages frames each; src only for the copy */
	volatile uint64_t *ptes;  /* one "entry" per page */
};

static double floor_round(void *p)
{
	struct floor_ctx *f = p;
	uint64_t n = f->vm.npages;
	double t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		unsigned char *frame = f->dst + i * PAGE;

		if (f->src)
			memcpy(frame, f->src + i * PAGE, PAGE);
		else
			memset(frame, 0, PAGE);
		__asm__ volatile("" : : "r"(frame) : "memory"); /* the frame is used */
		f->ptes[i] = (i << 12) | 1;
		frame[0] = 1; /* the faulting store itself, as the fault's caller does */
	}
	return (bench_now_ns() - t0) / (double)n;
}

static double floor_devmm_round(void *p)
{
	return devmm_round(&((struct floor_ctx *)p)->vm);
}

static void run_floor(const struct bench_opts *o, struct bench_result *r,
		      double (*devmm)(struct dmm_system *, uint64_t), bool copy)
{
	struct floor_ctx f = { .vm = { .devmm = devmm, .npages = o->npages } };

	f.dst = bench_buffer(o->npages * PAGE);
	f.src = copy ? bench_buffer(o->npages * PAGE) : NULL;
	f.ptes = bench_buffer(o->npages * sizeof(uint64_t));
	f.vm.sys = bench_system(frames_needed(o->npages));
	bench_rounds_pair(floor_devmm_round, floor_round, &f, o, &r->devmm, &r->baseline);
	bench_system_done(f.vm.sys, r->name);
	r->ratio = r->devmm / r->baseline;
	bench_note(r, "baseline: %s a cold 4 KiB frame plus one entry store, per page",
		   copy ? "copying" : "clearing");
	free(f.dst);
	free(f.src);
	free((void *)f.ptes);
}

void bench_fault_first_touch_floor(const struct bench_opts *o, struct bench_result *r)
{
	run_floor(o, r, dmm_fault_first_touch, false);
}

void bench_cow_fault_floor(const struct bench_opts *o, struct bench_result *r)
{
	run_floor(o, r, dmm_cow_fault, true);
}

/*
 * vma_100k: mmap + munmap of one page in an address space that holds many
 * VMAs, against the same in one that holds few (same run, alternate
 * rounds). The VMAs are single pages with a one-page hole after each, so
 * none merge; the measured page is mapped PROT_NONE (by hint, the usual
 * placement path) into the hole in the middle, so it merges with neither
 * neighbour and lands amid the others, where a sorted array would move
 * half of them. --quick: 10 000 against 100.
 */
#define VMA_BENCH_BASE 0x100000000ull

struct vma_bench {
	struct dmm_mm *mm[2]; /* many, few */
	uint64_t hole[2];     /* the middle hole of each */
	int ops;	      /* mmap + munmap pairs per round */
};

static uint64_t vma_bench_fill(struct dmm_mm *mm, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t at;

		bench_must(dmm_mmap(mm, VMA_BENCH_BASE + 2 * i * PAGE, PAGE, DMM_PROT_READ | DMM_PROT_WRITE,
				    DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS | DMM_MAP_FIXED_NOREPLACE, NULL, 0, &at),
			   "dmm_mmap (vma_100k fill)");
	}
	return VMA_BENCH_BASE + (2 * (n / 2) + 1) * PAGE;
}

static double vma_bench_round(struct vma_bench *b, int which)
{
	struct dmm_mm *mm = b->mm[which];
	double t0 = bench_now_ns();

	for (int i = 0; i < b->ops; i++) {
		uint64_t at;

		bench_must(dmm_mmap(mm, b->hole[which], PAGE, DMM_PROT_NONE,
				    DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS, NULL, 0, &at),
			   "dmm_mmap (vma_100k)");
		if (at != b->hole[which])
			bench_die("vma_100k: the page was not placed at its hint", EFAULT);
		bench_must(dmm_munmap(mm, at, PAGE), "dmm_munmap (vma_100k)");
	}
	return (bench_now_ns() - t0) / b->ops;
}

static double vma_bench_many(void *ctx)
{
	return vma_bench_round(ctx, 0);
}

static double vma_bench_few(void *ctx)
{
	return vma_bench_round(ctx, 1);
}

void bench_vma_100k(const struct bench_opts *o, struct bench_result *r)
{
	const uint64_t many = o->quick ? 10000 : 100000, few = o->quick ? 100 : 1000;
	struct dmm_system *sys = bench_system(1024);
	struct vma_bench b = { .ops = o->quick ? 200 : 2000 };
	struct dmm_vma_info vi;

	b.mm[0] = bench_mm(sys);
	b.mm[1] = bench_mm(sys);
	b.hole[0] = vma_bench_fill(b.mm[0], many);
	b.hole[1] = vma_bench_fill(b.mm[1], few);
	bench_rounds_pair(vma_bench_many, vma_bench_few, &b, o, &r->devmm, &r->baseline);
	r->ratio = r->devmm / r->baseline;
	/* Nothing merged: the VMA after the hole still starts right there. */
	bench_must(dmm_vma_query(b.mm[0], b.hole[0], &vi), "dmm_vma_query");
	if (vi.start != b.hole[0] + PAGE || vi.end != b.hole[0] + 2 * PAGE)
		bench_die("vma_100k: the VMAs merged", EINVAL);
	bench_extra(r, "vmas", (double)many);
	bench_extra(r, "baseline_vmas", (double)few);
	bench_note(r, "mmap + munmap of one page amid %llu VMAs, against amid %llu",
		   (unsigned long long)many, (unsigned long long)few);
	dmm_mm_exit(b.mm[0]);
	dmm_mm_exit(b.mm[1]);
	bench_system_done(sys, "vma_100k");
}
