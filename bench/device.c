/* SPDX-License-Identifier: MIT */
/*
 * The device-side benchmarks: migration (the core alone, through a tiny
 * driver of this file, and through the mirror driver), hmm snapshots and
 * device reads through the mirror, pin/unpin, first-touch fault scaling
 * over two threads, frame metadata, and copy-on-write of device-coherent
 * memory after fork (cow=device against Linux's cow=system).
 *
 * Each benchmark keeps one pre-touched system (and its devices) for all of
 * its rounds, so that frames and device memory stay warm; the first rounds
 * are untimed warm-ups. Everything but meta.c is on the public API.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "mirror.h"

/* ---------------------------------------------------------------------- */
/* A tiny device-private driver: the core's migrate_vma alone               */

/*
 * One pgmap of device-private memory with pre-touched backing storage and
 * a free list. Migration copies one 4 KiB page at a time with memcpy, as
 * the baseline does; everything else in a round is devmm's migrate_vma
 * (collect, unmap, migration entries, move the metadata, install, free)
 * plus the frame allocations a driver must make.
 */
struct bdrv {
	struct dmm_system *sys;
	struct dmm_pgmap *pgmap;
	uint64_t first, npages;
	uint8_t *backing;
	pthread_mutex_t lock; /* free_list, nfree: folio_free may come from any thread */
	uint64_t *free_list, nfree;
	uint64_t *src, *dst;  /* one batch */
};

static void bdrv_folio_free(struct dmm_pgmap *pgmap, uint64_t pfn)
{
	struct bdrv *d = dmm_pgmap_driver_data(pgmap);

	pthread_mutex_lock(&d->lock);
	d->free_list[d->nfree++] = pfn;
	pthread_mutex_unlock(&d->lock);
}

static void *bdrv_data(struct bdrv *d, uint64_t pfn)
{
	return d->backing + (pfn - d->first) * PAGE;
}

/* Never called here (nothing touches the range while it is on the
 * device), but a device-private pgmap must have one. */
static unsigned int bdrv_migrate_to_ram(struct dmm_vm_fault *vmf)
{
	struct bdrv *d = dmm_pgmap_driver_data(vmf->pgmap);
	uint64_t src = 0, dst = 0, pfn;
	struct dmm_migrate_vma args = {
		.mm = vmf->mm, .start = vmf->address, .end = vmf->address + PAGE,
		.src = &src, .dst = &dst, .pgmap_owner = d,
		.flags = DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE, .fault_page = vmf->page,
	};

	if (dmm_migrate_vma_setup(&args))
		return DMM_VM_FAULT_SIGBUS;
	if (src & DMM_MIGRATE_PFN_MIGRATE) {
		if (dmm_alloc_page(d->sys, &pfn)) {
			dmm_migrate_vma_finalize(&args);
			return DMM_VM_FAULT_OOM;
		}
		dmm_lock_page(d->sys, pfn);
		memcpy(dmm_page_address(d->sys, pfn), bdrv_data(d, vmf->page), PAGE);
		dst = dmm_migrate_pfn(pfn);
		dmm_migrate_vma_pages(&args);
	}
	dmm_migrate_vma_finalize(&args);
	return 0;
}

static const struct dmm_pgmap_ops bdrv_ops = {
	.folio_free = bdrv_folio_free,
	.migrate_to_ram = bdrv_migrate_to_ram,
};

static struct bdrv *bdrv_create(struct dmm_system *sys, uint64_t npages, uint64_t batch)
{
	struct bdrv *d = calloc(1, sizeof(*d));
	struct dmm_pgmap_desc desc = {
		.type = DMM_MEMORY_DEVICE_PRIVATE, .nr_pages = npages, .ops = &bdrv_ops,
	};

	if (!d)
		bench_die("calloc", ENOMEM);
	desc.owner = desc.driver_data = d;
	d->sys = sys;
	d->npages = npages;
	d->backing = bench_buffer(npages * PAGE);
	d->free_list = bench_buffer(npages * sizeof(uint64_t));
	d->src = bench_buffer(batch * sizeof(uint64_t));
	d->dst = bench_buffer(batch * sizeof(uint64_t));
	pthread_mutex_init(&d->lock, NULL);
	bench_must(dmm_memremap_pages(sys, &desc, &d->pgmap), "dmm_memremap_pages");
	d->first = dmm_pgmap_pfn_first(d->pgmap);
	for (uint64_t i = 0; i < npages; i++)
		d->free_list[i] = d->first + npages - 1 - i;
	d->nfree = npages;
	return d;
}

/* After dmm_system_destroy, which hands every device page back. */
static void bdrv_free(struct bdrv *d)
{
	pthread_mutex_destroy(&d->lock);
	free(d->backing);
	free(d->free_list);
	free(d->src);
	free(d->dst);
	free(d);
}

/* One migrate_vma call over [start, start + n pages), system -> device. */
static uint64_t bdrv_to_dev(struct bdrv *d, struct dmm_mm *mm, uint64_t start, uint64_t n)
{
	struct dmm_migrate_vma args = {
		.mm = mm, .start = start, .end = start + n * PAGE, .src = d->src, .dst = d->dst,
		.pgmap_owner = d, .flags = DMM_MIGRATE_VMA_SELECT_SYSTEM,
	};
	uint64_t moved = 0, *src = d->src, *dst = d->dst;

	dmm_mmap_read_lock(mm);
	bench_must(dmm_migrate_vma_setup(&args), "dmm_migrate_vma_setup");
	pthread_mutex_lock(&d->lock); /* the destinations, all at once */
	for (unsigned long i = 0; i < args.npages; i++) {
		dst[i] = 0;
		if ((src[i] & DMM_MIGRATE_PFN_MIGRATE) && d->nfree)
			dst[i] = d->free_list[--d->nfree];
	}
	pthread_mutex_unlock(&d->lock);
	for (unsigned long i = 0; i < args.npages; i++) {
		uint64_t dpfn = dst[i];

		if (!dpfn)
			continue;
		bench_must(dmm_zone_device_page_init(d->sys, dpfn), "dmm_zone_device_page_init");
		if (src[i] & DMM_MIGRATE_PFN_VALID)
			memcpy(bdrv_data(d, dpfn), dmm_page_address(d->sys, dmm_migrate_pfn_to_pfn(src[i])),
			       PAGE);
		else
			memset(bdrv_data(d, dpfn), 0, PAGE);
		dst[i] = dmm_migrate_pfn(dpfn) | (src[i] & DMM_MIGRATE_PFN_WRITE);
	}
	dmm_migrate_vma_pages(&args);
	for (unsigned long i = 0; i < args.npages; i++)
		moved += !!(src[i] & DMM_MIGRATE_PFN_MIGRATE);
	dmm_migrate_vma_finalize(&args);
	dmm_mmap_read_unlock(mm);
	return moved;
}

/* One migrate_vma call, device -> system. */
static uint64_t bdrv_to_sys(struct bdrv *d, struct dmm_mm *mm, uint64_t start, uint64_t n)
{
	struct dmm_migrate_vma args = {
		.mm = mm, .start = start, .end = start + n * PAGE, .src = d->src, .dst = d->dst,
		.pgmap_owner = d, .flags = DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
	};
	uint64_t moved = 0, *src = d->src, *dst = d->dst;

	dmm_mmap_read_lock(mm);
	bench_must(dmm_migrate_vma_setup(&args), "dmm_migrate_vma_setup");
	for (unsigned long i = 0; i < args.npages; i++) {
		uint64_t pfn;

		dst[i] = 0;
		if ((src[i] & (DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_VALID)) !=
		    (DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_VALID))
			continue;
		bench_must(dmm_alloc_page(d->sys, &pfn), "dmm_alloc_page");
		dmm_lock_page(d->sys, pfn);
		memcpy(dmm_page_address(d->sys, pfn), bdrv_data(d, dmm_migrate_pfn_to_pfn(src[i])), PAGE);
		dst[i] = dmm_migrate_pfn(pfn);
	}
	dmm_migrate_vma_pages(&args);
	for (unsigned long i = 0; i < args.npages; i++)
		moved += !!(src[i] & DMM_MIGRATE_PFN_MIGRATE);
	dmm_migrate_vma_finalize(&args);
	dmm_mmap_read_unlock(mm);
	return moved;
}

/* Every page of the range holds its index (bench_map_anon's populate). */
static void verify_index(struct dmm_mm *mm, uint64_t base, uint64_t npages, const char *what)
{
	for (uint64_t i = 0; i < npages; i++) {
		uint32_t v;

		bench_must(dmm_load32(mm, base + i * PAGE, &v), "dmm_load32");
		if (v != (uint32_t)i) {
			fprintf(stderr, "devmm bench: %s: page %llu holds %u\n", what, (unsigned long long)i, v);
			exit(1);
		}
	}
}

struct migrate_ctx {
	struct bdrv *d;
	struct dmm_mm *mm;
	uint64_t base, npages, batch;
	const char *name;
	void **ptrs; /* the baseline's system side: the range's frames */
};

/*
 * The baseline: memcpy of the same bytes in 4 KiB pieces between the same
 * memory the migration copies between (the frames mapping the range now,
 * and the device's backing), to the device and back.
 */
static double migrate_memcpy_round(void *p)
{
	struct migrate_ctx *c = p;

	bench_frame_ptrs(c->d->sys, c->mm, c->base, c->npages, c->ptrs);
	double t0 = bench_now_ns();
	for (uint64_t i = 0; i < c->npages; i++)
		memcpy(c->d->backing + i * PAGE, c->ptrs[i], PAGE);
	for (uint64_t i = 0; i < c->npages; i++)
		memcpy(c->ptrs[i], c->d->backing + i * PAGE, PAGE);
	double t = bench_now_ns() - t0;
	__asm__ volatile("" : : : "memory");
	return 2.0 * (double)c->npages * PAGE / t; /* GB/s */
}

/* One round: the whole range to the device, then back, in batches. */
static double migrate_round(void *p)
{
	struct migrate_ctx *c = p;
	uint64_t moved = 0;
	double t0 = bench_now_ns();

	for (uint64_t off = 0; off < c->npages; off += c->batch) {
		uint64_t n = c->npages - off < c->batch ? c->npages - off : c->batch;

		moved += bdrv_to_dev(c->d, c->mm, c->base + off * PAGE, n);
	}
	for (uint64_t off = 0; off < c->npages; off += c->batch) {
		uint64_t n = c->npages - off < c->batch ? c->npages - off : c->batch;

		moved += bdrv_to_sys(c->d, c->mm, c->base + off * PAGE, n);
	}
	double t = bench_now_ns() - t0;
	if (moved != 2 * c->npages) {
		fprintf(stderr, "devmm bench: %s: %llu of %llu pages moved\n", c->name,
			(unsigned long long)moved, (unsigned long long)(2 * c->npages));
		exit(1);
	}
	return 2.0 * (double)c->npages * PAGE / t; /* GB/s */
}

/* The core's migrate throughput: pages/s through migrate_vma, @npages in
 * @batch-page calls to the device and back (one timed round after one
 * warm-up), for the benchmarks that compare against it. */
double bench_migrate_pages_per_s(uint64_t npages, uint64_t batch)
{
	struct migrate_ctx c = { .npages = npages, .batch = batch, .name = "migrate baseline" };
	struct dmm_system *sys;
	double gbps;

	sys = bench_system(2 * npages + 1024);
	c.d = bdrv_create(sys, npages, batch);
	c.mm = bench_mm(sys);
	c.base = bench_map_anon(c.mm, npages, true);
	migrate_round(&c);
	gbps = migrate_round(&c);
	verify_index(c.mm, c.base, npages, c.name);
	dmm_mm_exit(c.mm);
	bench_system_done(sys, c.name);
	bdrv_free(c.d);
	return gbps * 1e9 / PAGE;
}

static void run_migrate(const struct bench_opts *o, struct bench_result *r, uint64_t npages,
			uint64_t batch)
{
	struct migrate_ctx c = { .npages = npages, .batch = batch, .name = r->name };
	struct dmm_system *sys;

	bench_keep_malloc_warm();
	sys = bench_system(2 * npages + 1024);
	c.d = bdrv_create(sys, npages, batch);
	c.mm = bench_mm(sys);
	c.base = bench_map_anon(c.mm, npages, true);
	c.ptrs = bench_buffer(npages * sizeof(void *));
	bench_rounds_pair(migrate_round, migrate_memcpy_round, &c, o, &r->devmm, &r->baseline);
	verify_index(c.mm, c.base, npages, r->name);
	free(c.ptrs);
	dmm_mm_exit(c.mm);
	bench_system_done(sys, r->name);
	bdrv_free(c.d);
	r->ratio = r->devmm / r->baseline;
	bench_note(r, "core migrate_vma through a minimal driver: %llu pages, %llu-page batches, "
		   "to the device and back (2 x 4 KiB moved per page); baseline: memcpy between "
		   "the same frames and device backing",
		   (unsigned long long)npages, (unsigned long long)batch);
	bench_extra(r, "batch_pages", (double)batch);
	bench_extra(r, "pages", (double)npages);
}

void bench_migrate_512(const struct bench_opts *o, struct bench_result *r)
{
	run_migrate(o, r, o->npages < 512 ? 512 : o->npages, 512);
}

void bench_migrate_64k(const struct bench_opts *o, struct bench_result *r)
{
	run_migrate(o, r, o->big_batch, o->big_batch);
}

/* ---------------------------------------------------------------------- */
/* Through the mirror driver                                               */

struct mirror_setup {
	struct dmm_system *sys;
	struct mirror_device *dev;
	struct dmm_mm *mm;
	struct mirror *m;
	uint64_t base, npages;
};

static void mirror_setup(struct mirror_setup *s, uint64_t npages, const struct mirror_device_config *cfg,
			 uint64_t nr_frames)
{
	bench_keep_malloc_warm();
	s->npages = npages;
	s->sys = bench_system(nr_frames);
	bench_must(mirror_device_create(s->sys, "bench", cfg, &s->dev), "mirror_device_create");
	s->mm = bench_mm(s->sys);
	s->base = bench_map_anon(s->mm, npages, true);
	bench_must(mirror_open(s->dev, s->mm, &s->m), "mirror_open");
}

static void mirror_teardown(struct mirror_setup *s, const char *name)
{
	mirror_close(s->m);
	dmm_mm_exit(s->mm);
	mirror_device_destroy(s->dev);
	bench_system_done(s->sys, name);
}

struct mirror_migrate_ctx {
	struct mirror_setup *s;
	uint8_t *buf; /* one batch's read-back */
	uint64_t batch;
	void **ptrs;  /* the baseline: the range's frames, */
	uint8_t *dev; /* and a device-sized buffer */
};

static double mirror_memcpy_round(void *p)
{
	struct mirror_migrate_ctx *c = p;
	uint64_t n = c->s->npages;

	bench_frame_ptrs(c->s->sys, c->s->mm, c->s->base, n, c->ptrs);
	double t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++)
		memcpy(c->dev + i * PAGE, c->ptrs[i], PAGE);
	for (uint64_t i = 0; i < n; i++)
		memcpy(c->ptrs[i], c->dev + i * PAGE, PAGE);
	double t = bench_now_ns() - t0;
	__asm__ volatile("" : : : "memory");
	return 2.0 * (double)n * PAGE / t; /* GB/s */
}

static double mirror_migrate_round(void *p)
{
	struct mirror_migrate_ctx *c = p;
	struct mirror_setup *s = c->s;
	struct mirror_result res;
	uint64_t moved = 0;
	double t0 = bench_now_ns();

	for (uint64_t off = 0; off < s->npages; off += c->batch) {
		uint64_t n = s->npages - off < c->batch ? s->npages - off : c->batch;

		bench_must(mirror_migrate_to_dev(s->m, s->base + off * PAGE, n, c->buf, &res),
			   "mirror_migrate_to_dev");
		moved += res.cpages;
	}
	for (uint64_t off = 0; off < s->npages; off += c->batch) {
		uint64_t n = s->npages - off < c->batch ? s->npages - off : c->batch;

		bench_must(mirror_migrate_to_sys(s->m, s->base + off * PAGE, n, &res), "mirror_migrate_to_sys");
		moved += res.cpages;
	}
	double t = bench_now_ns() - t0;
	if (moved != 2 * s->npages || *(uint32_t *)c->buf != (uint32_t)((s->npages - 1) / c->batch * c->batch)) {
		fprintf(stderr, "devmm bench: migrate_512_mirror: %llu of %llu pages moved\n",
			(unsigned long long)moved, (unsigned long long)(2 * s->npages));
		exit(1);
	}
	return 2.0 * (double)s->npages * PAGE / t; /* GB/s */
}

void bench_migrate_512_mirror(const struct bench_opts *o, struct bench_result *r)
{
	uint64_t npages = o->npages < 512 ? 512 : o->npages;
	struct mirror_device_config cfg = { .type = DMM_MEMORY_DEVICE_PRIVATE, .pages = npages + 1024 };
	struct mirror_setup s;
	struct mirror_migrate_ctx c = { .s = &s, .batch = 512 };

	mirror_setup(&s, npages, &cfg, 2 * npages + 1024);
	c.buf = bench_buffer(c.batch * PAGE);
	c.ptrs = bench_buffer(npages * sizeof(void *));
	c.dev = bench_buffer(npages * PAGE);
	bench_rounds_pair(mirror_migrate_round, mirror_memcpy_round, &c, o, &r->devmm, &r->baseline);
	verify_index(s.mm, s.base, npages, r->name);
	free(c.buf);
	free(c.ptrs);
	free(c.dev);
	mirror_teardown(&s, r->name);
	r->ratio = r->devmm / r->baseline;
	bench_note(r, "mirror_migrate_to_dev + _to_sys, 512-page calls; includes the mirror's "
		   "read-back of each batch into the caller's buffer (a third copy); baseline: "
		   "memcpy between the range's frames and a buffer, both ways");
	bench_extra(r, "batch_pages", 512);
	bench_extra(r, "pages", (double)npages);
}

struct snapshot_ctx {
	struct mirror_setup *s;
	uint8_t *bytes;
};

static double snapshot_round(void *p)
{
	struct snapshot_ctx *c = p;
	struct mirror_result res;
	double t0 = bench_now_ns();

	bench_must(mirror_snapshot(c->s->m, c->s->base, c->s->npages, c->bytes, &res), "mirror_snapshot");
	double t = bench_now_ns() - t0;
	if (c->bytes[0] != MIRROR_SNAP_WRITE || c->bytes[c->s->npages - 1] != MIRROR_SNAP_WRITE) {
		fprintf(stderr, "devmm bench: hmm_snapshot: unexpected snapshot byte 0x%02x\n", c->bytes[0]);
		exit(1);
	}
	return t / (double)c->s->npages;
}

void bench_hmm_snapshot(const struct bench_opts *o, struct bench_result *r)
{
	struct mirror_device_config cfg = { .type = DMM_MEMORY_DEVICE_PRIVATE };
	struct mirror_setup s;
	struct snapshot_ctx c = { .s = &s };

	mirror_setup(&s, o->npages, &cfg, o->npages + 1024);
	c.bytes = bench_buffer(o->npages);
	r->devmm = bench_rounds(snapshot_round, &c, o);
	free(c.bytes);
	mirror_teardown(&s, r->name);
	bench_note(r, "mirror_snapshot of a populated range (hmm_range_fault without faulting, "
		   "32-page windows, a temporary interval notifier each); no baseline");
}

struct read_ctx {
	struct mirror_setup *s;
	uint8_t *buf;
	void **ptrs;
};

/* The baseline: the same bytes, from the range's frames to the same buffer. */
static double read_memcpy_round(void *p)
{
	struct read_ctx *c = p;
	uint64_t n = c->s->npages;

	bench_frame_ptrs(c->s->sys, c->s->mm, c->s->base, n, c->ptrs);
	double t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++)
		memcpy(c->buf + i * PAGE, c->ptrs[i], PAGE);
	double t = bench_now_ns() - t0;
	__asm__ volatile("" : : : "memory");
	return (double)n * PAGE / t; /* GB/s */
}

static double read_round(void *p)
{
	struct read_ctx *c = p;
	struct mirror_result res;
	double t0 = bench_now_ns();

	bench_must(mirror_read(c->s->m, c->s->base, c->s->npages, c->buf, &res), "mirror_read");
	double t = bench_now_ns() - t0;
	if (res.faults || *(uint32_t *)(c->buf + (c->s->npages - 1) * PAGE) != (uint32_t)(c->s->npages - 1)) {
		fprintf(stderr, "devmm bench: device_read: %llu fault passes in the steady state\n",
			(unsigned long long)res.faults);
		exit(1);
	}
	return (double)c->s->npages * PAGE / t; /* GB/s */
}

void bench_device_read(const struct bench_opts *o, struct bench_result *r)
{
	struct mirror_device_config cfg = { .type = DMM_MEMORY_DEVICE_PRIVATE };
	struct mirror_setup s;
	struct read_ctx c = { .s = &s };
	struct mirror_result res;

	mirror_setup(&s, o->npages, &cfg, o->npages + 1024);
	c.buf = bench_buffer(o->npages * PAGE);
	/* The first read faults the range into the device's table. */
	bench_must(mirror_read(s.m, s.base, s.npages, c.buf, &res), "mirror_read");
	c.ptrs = bench_buffer(o->npages * sizeof(void *));
	bench_rounds_pair(read_round, read_memcpy_round, &c, o, &r->devmm, &r->baseline);
	free(c.buf);
	free(c.ptrs);
	mirror_teardown(&s, r->name);
	r->ratio = r->devmm / r->baseline;
	bench_note(r, "mirror_read of a range already in the device's table (steady state): "
		   "copies into the mirror's bounce buffer, then into the caller's (two copies); "
		   "baseline: one memcpy of the frames into the caller's buffer");
}

/* ---------------------------------------------------------------------- */
/* pin_user_pages                                                          */

struct pin_ctx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	uint64_t base, npages, *pfns;
};

static double pin_round(void *p)
{
	struct pin_ctx *c = p;
	double t0 = bench_now_ns();
	long n = dmm_get_user_pages_fast(c->mm, c->base, c->npages, DMM_FOLL_PIN | DMM_FOLL_WRITE, c->pfns);

	if (n != (long)c->npages)
		bench_die("dmm_get_user_pages_fast", n < 0 ? (int)-n : EAGAIN);
	dmm_unpin_user_pages(c->sys, c->pfns, c->npages);
	return (bench_now_ns() - t0) / (double)c->npages;
}

void bench_pin_unpin(const struct bench_opts *o, struct bench_result *r)
{
	struct pin_ctx c = { .npages = o->npages };

	c.sys = bench_system(o->npages + 1024);
	c.mm = bench_mm(c.sys);
	c.base = bench_map_anon(c.mm, o->npages, true);
	c.pfns = bench_buffer(o->npages * sizeof(uint64_t));
	r->devmm = bench_rounds(pin_round, &c, o);
	free(c.pfns);
	dmm_mm_exit(c.mm);
	bench_system_done(c.sys, r->name);
	bench_note(r, "pin_user_pages_fast(FOLL_PIN | FOLL_WRITE) + unpin_user_pages of a populated "
		   "range in one call each; no baseline");
}

/* ---------------------------------------------------------------------- */
/* First-touch fault scaling: two threads, one address space               */

struct scaling_ctx {
	struct dmm_system *sys;
	uint64_t npages; /* per thread */
	bool two_threads;
	/* Per round: */
	struct dmm_mm *mm;
	uint64_t base[2];
	pthread_barrier_t start;
	double cpu_ns[2]; /* CPU time each thread spent on its range */
	/* CPU ns per page of every round, per mode (warm-ups included). */
	double cpu_per_page[2][2 * MAX_ROUNDS];
	int nr_cpu[2];
};

/* Touch the pages; returns the thread CPU time it took. */
static double touch_range(struct dmm_mm *mm, uint64_t base, uint64_t npages)
{
	unsigned char byte = 1;
	struct timespec a, b;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (uint64_t i = 0; i < npages; i++)
		bench_must(dmm_write(mm, base + i * PAGE, &byte, 1), "dmm_write");
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	return (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
}

static void *scaling_helper(void *p)
{
	struct scaling_ctx *c = p;

	pthread_barrier_wait(&c->start);
	c->cpu_ns[1] = touch_range(c->mm, c->base[1], c->npages);
	return NULL;
}

/* Throughput in Mpages/s of first-touch faults over both ranges. */
static double scaling_round(void *p)
{
	struct scaling_ctx *c = p;
	pthread_t th;
	double t0, t;

	c->mm = bench_mm(c->sys);
	c->base[0] = bench_map_anon(c->mm, c->npages, false);
	c->base[1] = bench_map_anon(c->mm, c->npages, false);
	if (c->two_threads) {
		int e = pthread_create(&th, NULL, scaling_helper, c);

		if (e)
			bench_die("pthread_create", e);
		/* Both start together; no one spins (the machine has two CPUs). */
		pthread_barrier_wait(&c->start);
		t0 = bench_wall_ns();
		c->cpu_ns[0] = touch_range(c->mm, c->base[0], c->npages);
		pthread_join(th, NULL);
		t = bench_wall_ns() - t0;
	} else {
		t0 = bench_wall_ns();
		c->cpu_ns[0] = touch_range(c->mm, c->base[0], c->npages);
		c->cpu_ns[1] = touch_range(c->mm, c->base[1], c->npages);
		t = bench_wall_ns() - t0;
	}
	c->cpu_per_page[c->two_threads][c->nr_cpu[c->two_threads]++] =
		(c->cpu_ns[0] + c->cpu_ns[1]) / (2.0 * (double)c->npages);
	dmm_mm_exit(c->mm);
	return 2.0 * (double)c->npages / t * 1e3; /* Mpages/s */
}

static double scaling_round_1t(void *p)
{
	((struct scaling_ctx *)p)->two_threads = false;
	return scaling_round(p);
}

static double scaling_round_2t(void *p)
{
	((struct scaling_ctx *)p)->two_threads = true;
	return scaling_round(p);
}

/*
 * The machine's own ceiling: a loop that touches no shared memory, two
 * units of work on one thread against one unit on each of two threads.
 * On a VM whose two vCPUs share a host core (or a loaded machine) this is
 * well below 2, and no fault path can scale better than it.
 */
static uint64_t spin_iters;

static void *spin(void *p)
{
	uint64_t x = 0;

	for (uint64_t i = 0; i < spin_iters; i++) {
		x += i;
		__asm__ volatile("" : "+r"(x)); /* keep the loop: one add per iteration */
	}
	return x == 1 ? NULL : p;
}

static double cpu_scaling_round(void *p)
{
	pthread_t th;
	double t0, t1, t2;
	int e;

	(void)p;
	t0 = bench_wall_ns();
	spin(NULL);
	spin(NULL);
	t1 = bench_wall_ns() - t0;
	t0 = bench_wall_ns();
	e = pthread_create(&th, NULL, spin, NULL);
	if (e)
		bench_die("pthread_create", e);
	spin(NULL);
	pthread_join(th, NULL);
	t2 = bench_wall_ns() - t0;
	return t1 / t2;
}

void bench_fault_scaling_2t(const struct bench_opts *o, struct bench_result *r)
{
	struct scaling_ctx c = { .npages = o->npages };
	double cpu, cpu1, cpu2;

	c.sys = bench_system(2 * o->npages + 1024);
	pthread_barrier_init(&c.start, NULL, 2);
	bench_rounds_pair(scaling_round_2t, scaling_round_1t, &c, o, &r->devmm, &r->baseline);
	pthread_barrier_destroy(&c.start);
	bench_system_done(c.sys, r->name);
	r->ratio = r->devmm / r->baseline;
	/* CPU cost per page in each mode (timed rounds only): contention
	 * (shared locks and counters bouncing between CPUs) makes the 2-thread
	 * pages dearer even where the machine cannot run both at once. */
	cpu1 = bench_median(c.cpu_per_page[0] + o->warmup, o->rounds);
	cpu2 = bench_median(c.cpu_per_page[1] + o->warmup, o->rounds);
	spin_iters = o->quick ? 2000000 : 20000000;
	cpu = bench_rounds(cpu_scaling_round, NULL, o);
	bench_extra(r, "cpu_loop_2t_over_1t", cpu);
	bench_extra(r, "cpu_ns_per_page_1t", cpu1);
	bench_extra(r, "cpu_ns_per_page_2t", cpu2);
	bench_note(r, "first-touch write faults on two %llu-page ranges of one address space: "
		   "two threads (one range each) against one thread doing both; this machine's "
		   "ceiling (a pure CPU loop, 2t/1t): %.2f; CPU time per page %.0f ns (1t), "
		   "%.0f ns (2t)",
		   (unsigned long long)o->npages, cpu, cpu1, cpu2);
}

/* ---------------------------------------------------------------------- */
/* Metadata per frame                                                      */

void bench_metadata(const struct bench_opts *o, struct bench_result *r)
{
	struct dmm_system *sys;

	(void)o;
	/* The default machine (1 GiB); the reservation is lazy, so this is cheap. */
	bench_must(dmm_system_create(NULL, &sys), "dmm_system_create");
	r->devmm = (double)bench_meta_bytes(sys) / (double)dmm_system_nr_frames(sys);
	dmm_system_destroy(sys);
	r->baseline = 64;
	r->ratio = r->devmm / r->baseline;
	bench_note(r, "the frame metadata array devmm reserves (struct dmm_page, read white-box) "
		   "over the frames; baseline: the kernel's 64-byte struct page");
}

/* ---------------------------------------------------------------------- */
/* fork of device-coherent memory: cow=device against cow=system            */

struct forkc_ctx {
	struct dmm_system *sys;
	struct mirror_device *dev;
	uint64_t npages;
	uint8_t *buf;
	uint64_t left; /* pages of the parent out of device memory after its writes */
};

static bool on_device(struct dmm_system *sys, struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_pte_info pte;
	struct dmm_page_info page;

	bench_must(dmm_pte_query(mm, addr, &pte), "dmm_pte_query");
	if (pte.kind != DMM_PTE_PRESENT)
		return false;
	bench_must(dmm_page_query(sys, pte.pfn, &page), "dmm_page_query");
	return page.location == DMM_LOC_DEVICE_COHERENT;
}

static double forkc_round(void *p)
{
	struct forkc_ctx *c = p;
	struct dmm_mm *mm = bench_mm(c->sys), *child;
	uint64_t base = bench_map_anon(mm, c->npages, true);
	struct mirror_result res;
	struct mirror *m;

	bench_must(mirror_open(c->dev, mm, &m), "mirror_open");
	bench_must(mirror_migrate_to_dev(m, base, c->npages, c->buf, &res), "mirror_migrate_to_dev");
	for (uint64_t i = 0; i < c->npages; i++)
		if (!on_device(c->sys, mm, base + i * PAGE)) {
			fprintf(stderr, "devmm bench: fork_coherent: page %llu not on the device\n",
				(unsigned long long)i);
			exit(1);
		}
	bench_must(dmm_fork(mm, &child), "dmm_fork");
	double t0 = bench_now_ns();
	for (uint64_t i = 0; i < c->npages; i++)
		bench_must(dmm_store32(mm, base + i * PAGE, ~(uint32_t)i), "dmm_store32");
	double t = bench_now_ns() - t0;
	c->left = 0;
	for (uint64_t i = 0; i < c->npages; i++) {
		uint32_t pv, cv;

		c->left += !on_device(c->sys, mm, base + i * PAGE);
		bench_must(dmm_load32(mm, base + i * PAGE, &pv), "dmm_load32");
		bench_must(dmm_load32(child, base + i * PAGE, &cv), "dmm_load32");
		if (pv != ~(uint32_t)i || cv != (uint32_t)i) {
			fprintf(stderr, "devmm bench: fork_coherent: page %llu: parent %#x, child %#x\n",
				(unsigned long long)i, pv, cv);
			exit(1);
		}
	}
	mirror_close(m);
	dmm_mm_exit(child);
	dmm_mm_exit(mm);
	return t / (double)c->npages;
}

static double run_forkc(const struct bench_opts *o, enum mirror_cow cow, uint64_t *left, const char *name)
{
	uint64_t n = o->npages;
	struct mirror_device_config cfg = {
		.type = DMM_MEMORY_DEVICE_COHERENT, .pages = 2 * n + 1024, .cow = cow,
	};
	struct forkc_ctx c = { .npages = n };
	double t;

	c.sys = bench_system(2 * n + 1024);
	bench_must(mirror_device_create(c.sys, "bench", &cfg, &c.dev), "mirror_device_create");
	c.buf = bench_buffer(n * PAGE);
	t = bench_rounds(forkc_round, &c, o);
	*left = c.left;
	free(c.buf);
	mirror_device_destroy(c.dev);
	bench_system_done(c.sys, name);
	return t;
}

void bench_fork_coherent(const struct bench_opts *o, struct bench_result *r)
{
	uint64_t left_dev, left_sys;

	bench_keep_malloc_warm();
	r->baseline = run_forkc(o, MIRROR_COW_SYSTEM, &left_sys, r->name);
	r->devmm = run_forkc(o, MIRROR_COW_DEVICE, &left_dev, r->name);
	r->ratio = r->devmm / r->baseline;
	bench_extra(r, "devmm_pages_left_device", (double)left_dev);
	bench_extra(r, "baseline_pages_left_device", (double)left_sys);
	bench_note(r, "parent's CPU writes after fork of %llu device-coherent pages: cow=device "
		   "(devmm) %llu pages left device memory, cow=system (Linux) %llu; data verified",
		   (unsigned long long)o->npages, (unsigned long long)left_dev,
		   (unsigned long long)left_sys);
}
