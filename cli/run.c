/* SPDX-License-Identifier: MIT */
/*
 * Executing one step: names are resolved in the runner's tables and the
 * operation runs with r->lock held by runner.c (for writing by steps that
 * change the tables, for reading by all others, so that the parts of
 * `together` run concurrently), and what it observed goes into a struct
 * outcome for expect.c to judge. A step never crashes the program: unknown names,
 * out-of-range pages and impossible sizes become failures with a reason.
 */
#include "runner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PAGE DMM_PAGE_SIZE
#define WORDS_PER_PAGE (PAGE / 4)
#define MAX_BUFFER_PAGES (1ULL << 18) /* 1 GiB of data per step at most */
#define MAP_BASE 0x10000000ULL

__attribute__((format(printf, 2, 3))) static int fail(struct outcome *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->why, sizeof(o->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */

struct proc *find_proc(struct runner *r, const char *name)
{
	for (size_t i = 0; i < r->nprocs; i++)
		if (!strcmp(r->procs[i]->name, name))
			return r->procs[i];
	return NULL;
}

struct region *find_region(struct proc *p, const char *name)
{
	for (size_t i = 0; i < p->nregions; i++)
		if (!strcmp(p->regions[i].name, name))
			return &p->regions[i];
	return NULL;
}

static struct rdevice *find_dev(struct runner *r, const char *name)
{
	for (size_t i = 0; i < r->ndevs; i++)
		if (!strcmp(r->devs[i].name, name))
			return &r->devs[i];
	return NULL;
}

static struct rfile *find_file(struct runner *r, const char *name)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (!strcmp(r->files[i].name, name))
			return &r->files[i];
	return NULL;
}

static struct handle *find_handle(struct runner *r, const char *name)
{
	for (size_t i = 0; i < r->nhandles; i++)
		if (!strcmp(r->handles[i].name, name))
			return &r->handles[i];
	return NULL;
}

const char *device_name_of_pfn(struct runner *r, uint64_t pfn)
{
	struct dmm_pgmap *pg = dmm_page_pgmap(r->sys, pfn);

	for (size_t i = 0; pg && i < r->ndevs; i++)
		if (dmm_pgmap_owner(pg) == r->devs[i].dev)
			return r->devs[i].name;
	return NULL;
}

static int set_region(struct proc *p, const char *name, uint64_t start, uint64_t npages)
{
	struct region *rg = find_region(p, name), *nr;

	if (!rg) {
		nr = realloc(p->regions, (p->nregions + 1) * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		p->regions = nr;
		rg = &p->regions[p->nregions++];
		rg->name = strdup(name);
		if (!rg->name)
			return -ENOMEM;
	}
	rg->start = start;
	rg->npages = npages;
	return 0;
}

static struct proc *new_proc(struct runner *r, const char *name, struct dmm_mm *mm, const struct proc *from)
{
	struct proc *p = calloc(1, sizeof(*p)), **np;

	if (!p || !(p->name = strdup(name)))
		goto fail;
	p->mm = mm;
	p->high = from ? from->high : MAP_BASE;
	for (size_t i = 0; from && i < from->nregions; i++)
		if (set_region(p, from->regions[i].name, from->regions[i].start, from->regions[i].npages))
			goto fail;
	np = realloc(r->procs, (r->nprocs + 1) * sizeof(*np));
	if (!np)
		goto fail;
	r->procs = np;
	r->procs[r->nprocs++] = p;
	return p;
fail:
	if (p) {
		for (size_t i = 0; i < p->nregions; i++)
			free(p->regions[i].name);
		free(p->regions);
		free(p->name);
		free(p);
	}
	return NULL;
}

static void free_proc(struct proc *p)
{
	for (size_t i = 0; i < p->nregions; i++)
		free(p->regions[i].name);
	free(p->regions);
	free(p->name);
	free(p);
}

/* The system exists from the first step on (default size unless `system`). */
static int ensure_system(struct runner *r, uint64_t pages, bool no_contents)
{
	struct dmm_system_config cfg = { .nr_frames = pages };
	struct dmm_mm *mm;
	int e;

	if (r->sys)
		return 0;
	/* --contents=none runs the data steps without data, unless the
	 * script itself asked for a metadata-only system: then they fail
	 * with EOPNOTSUPP as the script expects. */
	r->no_data = r->opts.no_contents && !no_contents;
	if (no_contents || r->opts.no_contents)
		cfg.flags |= DMM_SYS_NO_CONTENTS;
	e = dmm_system_create(&cfg, &r->sys);
	if (e)
		return e;
	e = dmm_mm_create(r->sys, &mm);
	if (e)
		return e;
	return new_proc(r, "main", mm, NULL) ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* Ranges                                                                    */

struct span_addr {
	struct proc *proc;
	struct region *region;
	uint64_t addr;	 /* first byte */
	uint64_t first;	 /* region page of the first page */
	uint64_t npages;
};

/* Range @rg in process @proc. */
static int resolve(struct runner *r, const char *proc, const struct range *rg, struct span_addr *sa,
		   struct outcome *o)
{
	const struct span *sp = &rg->span;
	uint64_t last;

	sa->proc = find_proc(r, proc);
	if (!sa->proc)
		return fail(o, "no process '%s'", proc);
	sa->region = find_region(sa->proc, rg->region);
	if (!sa->region)
		return fail(o, "no region '%s' in process '%s'", rg->region, proc);
	sa->first = sp->kind == SPAN_WHOLE ? 0 : sp->first;
	last = (sp->kind == SPAN_WHOLE || sp->kind == SPAN_FROM) ? sa->region->npages - 1 : sp->last;
	if (sa->region->npages == 0 || last < sa->first)
		return fail(o, "range %s is empty", rg->region);
	sa->npages = last - sa->first + 1;
	if (sa->first > (DMM_TASK_SIZE >> DMM_PAGE_SHIFT) ||
	    sa->region->start + sa->first * PAGE >= DMM_TASK_SIZE)
		return fail(o, "range %s is outside the address space", rg->region);
	sa->addr = sa->region->start + sa->first * PAGE;
	return 0;
}

static int resolve_range(struct runner *r, const struct step *st, struct span_addr *sa, struct outcome *o)
{
	return resolve(r, st->proc, &st->range, sa, o);
}

static uint8_t *alloc_pages(uint64_t npages, struct outcome *o)
{
	uint8_t *b;

	if (npages > MAX_BUFFER_PAGES) {
		fail(o, "range of %llu pages is too large for a data buffer", (unsigned long long)npages);
		return NULL;
	}
	b = malloc(npages * PAGE);
	if (!b)
		fail(o, "out of memory for a data buffer");
	return b;
}

static void fill_pattern(uint8_t *buf, uint64_t words, uint64_t word0, const struct pattern *p)
{
	uint32_t *w = (uint32_t *)buf;

	for (uint64_t i = 0; i < words; i++)
		w[i] = pattern_word(p, word0 + i);
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

static int prot_of(enum step_prot p)
{
	return p == SPROT_RW ? DMM_PROT_READ | DMM_PROT_WRITE : p == SPROT_R ? DMM_PROT_READ : DMM_PROT_NONE;
}

/* system thp= / hzero=: either may be given alone; the other keeps its
 * current value, which the runner remembers. */
static int set_thp(struct runner *r, const struct step *st)
{
	if (st->u.system.has_thp)
		r->thp_mode = st->u.system.thp;
	if (st->u.system.has_hzero)
		r->thp_flags = st->u.system.hzero_off ? DMM_THP_NO_HUGE_ZERO : 0;
	return dmm_system_set_thp(r->sys, (enum dmm_thp_mode)r->thp_mode, r->thp_flags);
}

static int do_map(struct runner *r, const struct step *st, struct proc *p, struct outcome *o)
{
	const typeof(st->u.map) *m = &st->u.map;
	uint64_t align = (m->align ? m->align : 1) * PAGE, addr, out;
	struct dmm_file *file = NULL;
	int flags = DMM_MAP_FIXED_NOREPLACE;

	if (m->pages == 0 || m->pages > (DMM_TASK_SIZE >> DMM_PAGE_SHIFT) || align == 0)
		return fail(o, "bad size");
	addr = (p->high + align - 1) / align * align;
	if (addr >= DMM_TASK_SIZE || m->pages * PAGE > DMM_TASK_SIZE - addr)
		return fail(o, "no room for %llu pages", (unsigned long long)m->pages);
	if (m->backing == BACK_FILE) {
		struct rfile *f = find_file(r, m->file);

		if (!f)
			return fail(o, "no file '%s'", m->file);
		file = f->file;
		flags |= m->shared_file ? DMM_MAP_SHARED : DMM_MAP_PRIVATE;
	} else {
		flags |= DMM_MAP_ANONYMOUS | (m->backing == BACK_SHARED ? DMM_MAP_SHARED : DMM_MAP_PRIVATE);
	}
	o->err = dmm_mmap(p->mm, addr, m->pages * PAGE, prot_of(m->prot), flags, file, m->pgoff, &out);
	if (o->err)
		return 0;
	/* thp / nothp: the VMA is born with VM_HUGEPAGE / VM_NOHUGEPAGE. */
	if (m->thp && (o->err = dmm_madvise(p->mm, addr, m->pages * PAGE,
					    m->thp > 0 ? DMM_MADV_HUGEPAGE : DMM_MADV_NOHUGEPAGE)))
		return fail(o, "cannot advise the new mapping (%d)", o->err);
	p->high = addr + m->pages * PAGE;
	if (set_region(p, m->region, addr, m->pages))
		return fail(o, "out of memory");
	return 0;
}

static int do_mremap(struct runner *r, const struct step *st, struct span_addr *sa, struct outcome *o)
{
	struct region *to = find_region(sa->proc, st->u.mremap.to_region);
	uint64_t dst, len = sa->npages * PAGE;
	int flags = DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED;

	(void)r;
	if (!to)
		return fail(o, "no region '%s'", st->u.mremap.to_region);
	dst = to->start + st->u.mremap.to_pages * PAGE;
	if (st->u.mremap.dontunmap)
		flags |= DMM_MREMAP_DONTUNMAP;
	o->err = dmm_mremap(sa->proc->mm, sa->addr, len, len, flags, dst);
	if (o->err)
		return 0;
	if (dst + len > sa->proc->high)
		sa->proc->high = dst + len;
	if (set_region(sa->proc, st->u.mremap.as, dst, sa->npages))
		return fail(o, "out of memory");
	return 0;
}

static int do_file(struct runner *r, const struct step *st, struct outcome *o)
{
	const typeof(st->u.file) *f = &st->u.file;
	struct rfile *rf = find_file(r, f->name), *nf;
	struct dmm_file *file;
	uint8_t *buf;

	if (rf)
		return fail(o, "file '%s' exists already", f->name);
	o->err = dmm_file_create(r->sys, f->pages, &file);
	if (o->err)
		return 0;
	nf = realloc(r->files, (r->nfiles + 1) * sizeof(*nf));
	if (!nf) {
		dmm_file_put(file);
		return fail(o, "out of memory");
	}
	r->files = nf;
	r->files[r->nfiles].name = strdup(f->name);
	r->files[r->nfiles++].file = file;
	if (!f->has_pattern)
		return 0;
	if (!(buf = alloc_pages(f->pages, o)))
		return -1;
	fill_pattern(buf, f->pages * WORDS_PER_PAGE, 0, &f->pat);
	o->err = dmm_file_pwrite(file, buf, f->pages * PAGE, 0);
	free(buf);
	return 0;
}

static int do_pfile(struct runner *r, const struct step *st, struct outcome *o)
{
	struct rfile *rf = find_file(r, st->u.file.name);
	uint64_t pages;

	if (!rf)
		return fail(o, "no file '%s'", st->u.file.name);
	pages = dmm_file_npages(rf->file);
	if (!(o->data = alloc_pages(pages, o)))
		return -1;
	o->data_words = pages * WORDS_PER_PAGE;
	if (st->kind == STEP_PWRITE) {
		fill_pattern(o->data, o->data_words, 0, &st->u.file.pat);
		o->err = dmm_file_pwrite(rf->file, o->data, pages * PAGE, 0);
	} else {
		o->err = dmm_file_pread(rf->file, o->data, pages * PAGE, 0);
	}
	return 0;
}

/* CPU write / read / rmw over a range. */
static int do_cpu_range(struct runner *r, const struct step *st, struct span_addr *sa, struct outcome *o)
{
	uint64_t words = sa->npages * WORDS_PER_PAGE, word0 = sa->first * WORDS_PER_PAGE;
	const struct expect_item *old = NULL;

	if (r->no_data) { /* the faults alone: no data to compare */
		o->err = dmm_touch(sa->proc->mm, sa->addr, sa->npages * PAGE, st->kind != STEP_READ);
		return 0;
	}
	if (!(o->data = alloc_pages(sa->npages, o)))
		return -1;
	o->data_word0 = word0;
	o->data_words = words;
	if (st->kind == STEP_WRITE) {
		fill_pattern(o->data, words, word0, &st->u.write.pat);
		o->err = dmm_write(sa->proc->mm, sa->addr, o->data, sa->npages * PAGE);
		return 0;
	}
	if (st->kind == STEP_READ) {
		o->err = dmm_read(sa->proc->mm, sa->addr, o->data, sa->npages * PAGE);
		return 0;
	}
	for (size_t i = 0; i < st->expect.nitems; i++)
		if (st->expect.items[i].kind == EXP_PATTERN)
			old = &st->expect.items[i];
	for (uint64_t i = 0; i < words; i++) {
		uint32_t exp = old ? pattern_word(&old->u.pat, word0 + i) : 0, got;

		o->err = dmm_cmpxchg32(sa->proc->mm, sa->addr + i * 4, exp,
				       pattern_word(&st->u.write.pat, word0 + i), &got);
		if (o->err) {
			o->data_words = i;
			break;
		}
		((uint32_t *)o->data)[i] = got;
	}
	return 0;
}

static int do_word(struct runner *r, const struct step *st, struct outcome *o)
{
	struct proc *p = find_proc(r, st->proc);
	struct region *rg = p ? find_region(p, st->u.word.addr.region) : NULL;
	uint64_t addr;

	if (!p || !rg)
		return fail(o, "no %s '%s'", p ? "region" : "process", p ? st->u.word.addr.region : st->proc);
	addr = rg->start + st->u.word.addr.offset;
	if (st->u.word.addr.offset >= DMM_TASK_SIZE || addr >= DMM_TASK_SIZE)
		return fail(o, "address outside the address space");
	if (r->no_data)
		o->err = dmm_touch(p->mm, addr, 4, st->kind == STEP_STORE);
	else if (st->kind == STEP_STORE)
		o->err = dmm_store32(p->mm, addr, st->u.word.value);
	else
		o->err = dmm_load32(p->mm, addr, &o->value);
	return 0;
}

static int do_fork(struct runner *r, const struct step *st, struct proc *p, struct outcome *o)
{
	struct dmm_mm *child;

	if (find_proc(r, st->u.fork.child))
		return fail(o, "process '%s' exists already", st->u.fork.child);
	o->err = dmm_fork(p->mm, &child);
	if (o->err)
		return 0;
	if (!new_proc(r, st->u.fork.child, child, p)) {
		dmm_mm_exit(child);
		return fail(o, "out of memory");
	}
	return 0;
}

static void close_mirrors_of(struct runner *r, struct dmm_mm *mm)
{
	for (size_t i = 0; i < r->ndevs; i++) {
		struct mirror *m = mirror_find(r->devs[i].dev, mm);

		if (m)
			mirror_close(m);
	}
}

static int do_exit(struct runner *r, struct proc *p)
{
	for (size_t i = 0; i < r->nprocs; i++) {
		if (r->procs[i] == p) {
			r->procs[i] = r->procs[--r->nprocs];
			break;
		}
	}
	close_mirrors_of(r, p->mm);
	dmm_mm_exit(p->mm);
	free_proc(p);
	return 0;
}

static int do_device(struct runner *r, const struct step *st, struct outcome *o)
{
	struct mirror_device_config cfg = {
		.type = st->u.device.type == DEV_PRIVATE ? DMM_MEMORY_DEVICE_PRIVATE : DMM_MEMORY_DEVICE_COHERENT,
		.pages = st->u.device.has_pages ? st->u.device.pages : 0,
		.cow = st->u.device.cow == COW_DEVICE ? MIRROR_COW_DEVICE : MIRROR_COW_SYSTEM,
		.no_contents = st->u.device.no_contents,
	};
	struct rdevice *nd;
	struct mirror_device *dev;

	if (find_dev(r, st->dev))
		return fail(o, "device '%s' exists already", st->dev);
	if (st->u.device.has_pages && st->u.device.pages == 0)
		return fail(o, "a device needs at least one page");
	o->err = mirror_device_create(r->sys, st->dev, &cfg, &dev);
	if (o->err)
		return 0;
	nd = realloc(r->devs, (r->ndevs + 1) * sizeof(*nd));
	if (!nd) {
		mirror_device_destroy(dev);
		return fail(o, "out of memory");
	}
	r->devs = nd;
	r->devs[r->ndevs].name = strdup(st->dev);
	r->devs[r->ndevs++].dev = dev;
	return 0;
}

/* The performing process's mirror of device D (opened on first use). */
static struct mirror *mirror_of(struct runner *r, const struct step *st, struct proc *p, struct outcome *o)
{
	struct rdevice *d = find_dev(r, st->dev);
	struct mirror *m;

	if (!d) {
		fail(o, "no device '%s'", st->dev);
		return NULL;
	}
	o->err = mirror_open(d->dev, p->mm, &m);
	return o->err ? NULL : m;
}

static int do_dev_range(struct runner *r, const struct step *st, struct span_addr *sa, struct outcome *o)
{
	struct mirror *m = mirror_of(r, st, sa->proc, o);
	bool data = st->kind == STEP_DEV_READ || st->kind == STEP_DEV_WRITE ||
		    st->kind == STEP_DEV_MIGRATE_TO_DEV || st->kind == STEP_DEV_EXCLUSIVE;

	if (!m)
		return o->why[0] ? -1 : 0;
	/* Metadata only: migrate-to-dev moves the pages and reads nothing
	 * back, so that a data= expectation finds no data and fails. */
	if ((st->kind == STEP_DEV_MIGRATE_TO_DEV && !dmm_system_has_contents(r->sys)) || r->no_data)
		data = false;
	if (data) {
		if (!(o->data = alloc_pages(sa->npages, o)))
			return -1;
		o->data_first = sa->first;
		o->data_pages = sa->npages;
		o->data_word0 = sa->first * WORDS_PER_PAGE;
		o->data_words = sa->npages * WORDS_PER_PAGE;
	}
	switch (st->kind) {
	case STEP_DEV_READ:
		o->err = mirror_read(m, sa->addr, sa->npages, o->data, &o->res);
		break;
	case STEP_DEV_WRITE:
		if (o->data)
			fill_pattern(o->data, o->data_words, o->data_word0, &st->u.write.pat);
		o->err = mirror_write(m, sa->addr, sa->npages, o->data, &o->res);
		break;
	case STEP_DEV_MIGRATE_TO_DEV:
		o->err = mirror_migrate_to_dev(m, sa->addr, sa->npages, o->data, &o->res);
		break;
	case STEP_DEV_MIGRATE_TO_SYS:
		o->err = mirror_migrate_to_sys(m, sa->addr, sa->npages, &o->res);
		break;
	case STEP_DEV_SNAPSHOT:
		if (!(o->snap = alloc_pages((sa->npages + PAGE - 1) / PAGE, o)))
			return -1;
		o->nsnap = sa->npages;
		o->err = mirror_snapshot(m, sa->addr, sa->npages, o->snap, &o->res);
		break;
	case STEP_DEV_EXCLUSIVE:
		o->err = mirror_exclusive(m, sa->addr, sa->npages, o->data, &o->res);
		break;
	case STEP_DEV_CHECK_EXCLUSIVE:
		o->err = mirror_check_exclusive(m, sa->addr, sa->npages);
		break;
	case STEP_DEV_ATOMIC_ADD:
		o->err = mirror_atomic_add(m, sa->addr, sa->npages, st->u.atomic_add.value, &o->res);
		break;
	default:
		return fail(o, "internal: not a ranged device command");
	}
	return 0;
}

static int do_dev_whole(struct runner *r, const struct step *st, struct outcome *o)
{
	struct rdevice *d = find_dev(r, st->dev);
	struct proc *p;
	struct mirror *m;

	if (!d)
		return fail(o, "no device '%s'", st->dev);
	switch (st->kind) {
	case STEP_DEV_RELEASE:
		o->err = mirror_release(d->dev);
		break;
	case STEP_DEV_FAIL_NEXT_ALLOC:
		mirror_fail_next_alloc(d->dev);
		break;
	case STEP_DEV_POOL:
		mirror_pool(d->dev, &o->used, &o->free);
		break;
	case STEP_EXPECT_FREED:
		o->freed = atomic_load(&d->dev->frees);
		break;
	case STEP_DEV_CLOSE:
		p = find_proc(r, st->proc);
		if (!p)
			return fail(o, "no process '%s'", st->proc);
		m = mirror_find(d->dev, p->mm);
		if (m)
			mirror_close(m);
		break;
	default:
		return fail(o, "internal: not a device command");
	}
	return 0;
}

static int do_gup(struct runner *r, const struct step *st, struct span_addr *sa, struct outcome *o)
{
	const typeof(st->u.gup) *g = &st->u.gup;
	unsigned int flags = (g->pin ? DMM_FOLL_PIN : DMM_FOLL_GET) | (g->write ? DMM_FOLL_WRITE : 0) |
			     (g->longterm ? DMM_FOLL_LONGTERM : 0);
	struct handle *h, *nh;
	uint64_t *pfns;
	long n;

	if (g->as && find_handle(r, g->as))
		return fail(o, "handle '%s' exists already", g->as);
	if (sa->npages > MAX_BUFFER_PAGES)
		return fail(o, "range too large");
	pfns = calloc(sa->npages, sizeof(*pfns));
	if (!pfns)
		return fail(o, "out of memory");
	n = g->fast ? dmm_get_user_pages_fast(sa->proc->mm, sa->addr, sa->npages, flags, pfns)
		    : dmm_get_user_pages(sa->proc->mm, sa->addr, sa->npages, flags, pfns);
	if (n < 0) {
		o->err = (int)n;
		free(pfns);
		return 0;
	}
	o->pinned = n;
	if (!g->as) {
		if (g->pin)
			dmm_unpin_user_pages(r->sys, pfns, (unsigned long)n);
		else
			dmm_put_user_pages(r->sys, pfns, (unsigned long)n);
		free(pfns);
		return 0;
	}
	nh = realloc(r->handles, (r->nhandles + 1) * sizeof(*nh));
	if (!nh) {
		(g->pin ? dmm_unpin_user_pages : dmm_put_user_pages)(r->sys, pfns, (unsigned long)n);
		free(pfns);
		return fail(o, "out of memory");
	}
	r->handles = nh;
	h = &r->handles[r->nhandles++];
	h->name = strdup(g->as);
	h->pfns = pfns;
	h->n = n;
	h->pin = g->pin;
	h->write = g->write;
	h->word0 = sa->first * WORDS_PER_PAGE;
	return 0;
}

void release_handle(struct runner *r, struct handle *h)
{
	(h->pin ? dmm_unpin_user_pages : dmm_put_user_pages)(r->sys, h->pfns, (unsigned long)h->n);
	free(h->pfns);
	free(h->name);
	*h = r->handles[--r->nhandles];
}

static int do_unpin(struct runner *r, const struct step *st, struct outcome *o)
{
	struct handle *h = find_handle(r, st->u.unpin.handle);

	if (!h)
		return fail(o, "no handle '%s'", st->u.unpin.handle);
	release_handle(r, h);
	return 0;
}

/*
 * readpin H / writepin H PATTERN: the pages H holds, through the references
 * themselves (a device's DMA), not through any page table. Word k of the
 * handle's page i is k = word0 + i * 1024 + w, as for the range H was taken
 * on. GUP never returns device-private pages, and a write GUP never returns
 * the zero page; a frame without contents is a runner failure.
 */
static int do_pinio(struct runner *r, const struct step *st, struct outcome *o)
{
	struct handle *h = find_handle(r, st->u.pinio.handle);
	bool write = st->kind == STEP_WRITEPIN;

	if (!h)
		return fail(o, "no handle '%s'", st->u.pinio.handle);
	if (write && !h->write) {
		o->err = -EPERM;
		return 0;
	}
	/* No contents to read or write: --contents=none leaves the read
	 * unverified (no data), a metadata-only script gets the error. */
	if (!dmm_system_has_contents(r->sys)) {
		o->err = r->no_data ? 0 : -EOPNOTSUPP;
		return 0;
	}
	if (!write) {
		if (!(o->data = alloc_pages((uint64_t)h->n, o)))
			return -1;
		o->data_word0 = h->word0;
		o->data_words = (uint64_t)h->n * WORDS_PER_PAGE;
	}
	for (long i = 0; i < h->n; i++) {
		uint8_t *mem = dmm_page_address(r->sys, h->pfns[i]);
		uint64_t k0 = h->word0 + (uint64_t)i * WORDS_PER_PAGE;

		if (!mem || (write && h->pfns[i] == DMM_ZERO_PFN))
			return fail(o, "handle '%s' page %ld: frame %#llx cannot be %s", h->name, i,
				    (unsigned long long)h->pfns[i], write ? "written" : "read");
		if (write)
			fill_pattern(mem, WORDS_PER_PAGE, k0, &st->u.pinio.pat);
		else
			memcpy(o->data + (uint64_t)i * PAGE, mem, PAGE);
	}
	return 0;
}

/* Where one page is, as `where` names it. */
static void locate(struct runner *r, struct dmm_mm *mm, uint64_t addr, struct loc *l)
{
	struct dmm_pte_info pi;
	struct dmm_page_info gi;

	l->dev = NULL;
	if (dmm_pte_query(mm, addr, &pi) || pi.kind == DMM_PTE_NONE) {
		l->kind = LOC_NONE;
		return;
	}
	switch (pi.kind) {
	case DMM_PTE_DEVICE_EXCLUSIVE:
		l->kind = LOC_EXCL;
		return;
	case DMM_PTE_MIGRATION_READ:
	case DMM_PTE_MIGRATION_READ_EXCLUSIVE:
	case DMM_PTE_MIGRATION_WRITE:
		l->kind = LOC_MIGRATING;
		return;
	default:
		break;
	}
	if (pi.special || pi.pfn == DMM_ZERO_PFN) {
		l->kind = pi.pmd ? LOC_HZERO : LOC_ZERO;
		return;
	}
	if (!dmm_page_query(r->sys, pi.pfn, &gi) &&
	    (gi.location == DMM_LOC_DEVICE_PRIVATE || gi.location == DMM_LOC_DEVICE_COHERENT)) {
		l->kind = LOC_DEVICE;
		l->dev = device_name_of_pfn(r, pi.pfn);
		if (!l->dev)
			l->dev = "?";
		return;
	}
	l->kind = pi.pmd ? LOC_THP : LOC_SYS;
}

static int do_where(struct runner *r, struct span_addr *sa, struct outcome *o)
{
	if (sa->npages > MAX_BUFFER_PAGES)
		return fail(o, "range too large");
	o->locs = calloc(sa->npages, sizeof(*o->locs));
	if (!o->locs)
		return fail(o, "out of memory");
	o->nlocs = sa->npages;
	for (uint64_t i = 0; i < sa->npages; i++)
		locate(r, sa->proc->mm, sa->addr + i * PAGE, &o->locs[i]);
	return 0;
}

/* level: which level of the page table maps each page (pmd, pte, none). */
static int do_level(struct span_addr *sa, struct outcome *o)
{
	if (sa->npages > MAX_BUFFER_PAGES)
		return fail(o, "range too large");
	o->locs = calloc(sa->npages, sizeof(*o->locs));
	if (!o->locs)
		return fail(o, "out of memory");
	o->nlocs = sa->npages;
	for (uint64_t i = 0; i < sa->npages; i++) {
		struct dmm_pte_info pi;

		if (dmm_pte_query(sa->proc->mm, sa->addr + i * PAGE, &pi) || pi.kind == DMM_PTE_NONE)
			o->locs[i].kind = LOC_NONE;
		else
			o->locs[i].kind = pi.pmd ? LOC_PMD : LOC_PTE;
	}
	return 0;
}

static int do_stat(struct runner *r, struct span_addr *sa, struct outcome *o)
{
	struct dmm_pte_info pi;
	struct dmm_page_info gi;

	if (dmm_pte_query(sa->proc->mm, sa->addr, &pi) || pi.kind == DMM_PTE_NONE)
		return 0;
	o->writable = pi.write;
	if (pi.special)
		return 0;
	if (dmm_page_query(r->sys, pi.pfn, &gi))
		return 0;
	o->refs = gi.refcount;
	o->maps = gi.mapcount < 0 ? 0 : (uint64_t)gi.mapcount;
	o->pins = gi.pincount;
	o->order = gi.order;
	o->fmaps = gi.folio_mapcount < 0 ? 0 : (uint64_t)gi.folio_mapcount;
	o->pmdmaps = gi.entire_mapcount < 0 ? 0 : (uint64_t)gi.entire_mapcount;
	o->partial = !!(gi.flags & DMM_PAGE_PARTIALLY_MAPPED);
	return 0;
}

/*
 * The frame an entry maps, for `same`: a present entry's page (the zero
 * page included), a device-private entry's device page, a device-exclusive
 * entry's page. No entry, and a migration entry (which maps nothing: the
 * page is in flight), have none: false.
 */
static bool mapped_frame(struct dmm_mm *mm, uint64_t addr, uint64_t *pfn)
{
	struct dmm_pte_info pi;

	if (dmm_pte_query(mm, addr, &pi))
		return false;
	switch (pi.kind) {
	case DMM_PTE_PRESENT:
	case DMM_PTE_DEVICE_PRIVATE_READ:
	case DMM_PTE_DEVICE_PRIVATE_WRITE:
	case DMM_PTE_DEVICE_EXCLUSIVE:
		*pfn = pi.pfn;
		return true;
	default:
		return false;
	}
}

/* same RANGE [PROC:]RANGE2: frame identity page by page. */
static int do_same(struct runner *r, const struct step *st, struct span_addr *sa, struct outcome *o)
{
	const char *proc2 = st->u.same.proc2 ? st->u.same.proc2 : st->proc;
	struct span_addr sb = { 0 };

	if (resolve(r, proc2, &st->u.same.range2, &sb, o))
		return -1;
	if (sa->npages != sb.npages)
		return fail(o, "the two ranges differ in size: %llu pages and %llu",
			    (unsigned long long)sa->npages, (unsigned long long)sb.npages);
	if (sa->npages > MAX_BUFFER_PAGES)
		return fail(o, "range too large");
	o->same = calloc(sa->npages, sizeof(*o->same));
	if (!o->same)
		return fail(o, "out of memory");
	o->nsame = sa->npages;
	for (uint64_t i = 0; i < sa->npages; i++) {
		uint64_t a, b;

		o->same[i] = mapped_frame(sa->proc->mm, sa->addr + i * PAGE, &a) &&
			     mapped_frame(sb.proc->mm, sb.addr + i * PAGE, &b) && a == b;
	}
	return 0;
}

static int do_range_step(struct runner *r, const struct step *st, struct outcome *o)
{
	struct span_addr sa = { 0 };

	if (resolve_range(r, st, &sa, o))
		return -1;
	switch (st->kind) {
	case STEP_MUNMAP:
		o->err = dmm_munmap(sa.proc->mm, sa.addr, sa.npages * PAGE);
		return 0;
	case STEP_MPROTECT:
		o->err = dmm_mprotect(sa.proc->mm, sa.addr, sa.npages * PAGE, prot_of(st->u.mprotect.prot));
		return 0;
	case STEP_MADVISE: {
		static const int adv[] = { DMM_MADV_DONTNEED, DMM_MADV_FREE, DMM_MADV_DONTFORK,
					   DMM_MADV_DOFORK, DMM_MADV_HUGEPAGE, DMM_MADV_NOHUGEPAGE,
					   DMM_MADV_POPULATE_READ, DMM_MADV_POPULATE_WRITE };

		o->err = dmm_madvise(sa.proc->mm, sa.addr, sa.npages * PAGE, adv[st->u.madvise.advice]);
		return 0;
	}
	case STEP_MREMAP:
		return do_mremap(r, st, &sa, o);
	case STEP_WRITE:
	case STEP_READ:
	case STEP_RMW:
		return do_cpu_range(r, st, &sa, o);
	case STEP_GUP:
		return do_gup(r, st, &sa, o);
	case STEP_WHERE:
		return do_where(r, &sa, o);
	case STEP_LEVEL:
		return do_level(&sa, o);
	case STEP_STAT:
		return do_stat(r, &sa, o);
	case STEP_SAME:
		return do_same(r, st, &sa, o);
	default:
		return do_dev_range(r, st, &sa, o);
	}
}

/* inject SITE ...: arm (or disarm) fault injection in the system. */
static int do_inject(struct runner *r, const struct step *st, struct outcome *o)
{
	struct dmm_inject_config cfg = {
		.countdown = st->u.inject.countdown,
		.probability = (unsigned int)st->u.inject.probability,
		.seed = st->u.inject.seed,
	};
	int site = dmm_inject_site_by_name(st->u.inject.site);

	if (site < 0)
		return fail(o, "no injection site '%s'", st->u.inject.site);
	o->err = dmm_inject_set(r->sys, (enum dmm_inject_site)site, &cfg);
	return 0;
}

static int do_check(struct runner *r, struct outcome *o)
{
	char report[2048];

	if (dmm_check(r->sys, report, sizeof(report))) {
		char *nl = strchr(report, '\n');

		if (nl)
			*nl = '\0';
		return fail(o, "invariant violated: %s", report);
	}
	return 0;
}

int run_step(struct runner *r, const struct step *st, struct outcome *o)
{
	struct proc *p;
	int e;

	memset(o, 0, sizeof(*o));
	if (st->kind == STEP_SYSTEM) {
		if (ensure_system(r, st->u.system.pages, st->u.system.no_contents))
			return fail(o, "cannot create the system");
		if (st->u.system.has_mthp)
			o->err = dmm_system_set_mthp(r->sys, st->u.system.mthp);
		if (!o->err && (st->u.system.has_thp || st->u.system.has_hzero))
			o->err = set_thp(r, st);
		if (!o->err && st->u.system.has_fail_thp)
			o->err = dmm_system_fail_thp_alloc(r->sys, (unsigned int)st->u.system.fail_thp);
		return 0;
	}
	e = ensure_system(r, 0, false);
	if (e)
		return fail(o, "cannot create the system (%d)", e);
	switch (st->kind) {
	case STEP_DEVICE:
		return do_device(r, st, o);
	case STEP_FILE:
		return do_file(r, st, o);
	case STEP_PWRITE:
	case STEP_PREAD:
		return do_pfile(r, st, o);
	case STEP_STORE:
	case STEP_LOAD:
		return do_word(r, st, o);
	case STEP_DEV_RELEASE:
	case STEP_DEV_FAIL_NEXT_ALLOC:
	case STEP_DEV_POOL:
	case STEP_DEV_CLOSE:
	case STEP_EXPECT_FREED:
		return do_dev_whole(r, st, o);
	case STEP_UNPIN:
		return do_unpin(r, st, o);
	case STEP_READPIN:
	case STEP_WRITEPIN:
		return do_pinio(r, st, o);
	case STEP_CHECK:
		return do_check(r, o);
	case STEP_INJECT:
		return do_inject(r, st, o);
	case STEP_SPLIT_DEFERRED: {
		unsigned long n = 0;

		o->err = dmm_deferred_split_scan(r->sys, &n);
		o->split = n;
		return 0;
	}
	case STEP_SHOW:
		runner_show(r, r->out, st->u.show.proc);
		return 0;
	case STEP_TOGETHER:
		return fail(o, "internal: together reached run_step");
	default:
		break;
	}
	p = find_proc(r, st->proc);
	if (!p)
		return fail(o, "no process '%s'", st->proc);
	if (st->kind == STEP_MAP)
		return do_map(r, st, p, o);
	if (st->kind == STEP_FORK)
		return do_fork(r, st, p, o);
	if (st->kind == STEP_EXIT)
		return do_exit(r, p);
	return do_range_step(r, st, o);
}

void outcome_free(struct outcome *o)
{
	free(o->data);
	free(o->snap);
	free(o->locs);
	free(o->same);
	o->data = o->snap = NULL;
	o->locs = NULL;
	o->same = NULL;
}
