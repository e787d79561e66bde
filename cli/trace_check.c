/* SPDX-License-Identifier: MIT */
/*
 * The trace reader's semantic checks: what a trace may do given what it
 * did before, checked without an engine. Allocations are page-aligned,
 * inside [TRACE_ADDR_MIN, TRACE_ADDR_END), own whole pages and do not
 * overlap; FREE names a live allocation's start; every byte an access,
 * ADVISE or PREFETCH names lies in live allocations; a kernel begins once
 * and ends once, after it began, and every kernel ends. A record that
 * breaks a rule is an error of its line and changes nothing.
 *
 * The live allocations are an array sorted by start (binary search, with
 * the last hit as a hint: consecutive accesses mostly hit the same
 * allocation); the running kernels a short array.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace_int.h"

struct talloc {
	uint64_t start, bytes, end; /* end: start + bytes rounded up to a page */
	unsigned int line;
	char *name;
};

struct tkernel {
	uint64_t id;
	unsigned int line;
};

void trace_state_init(struct trace_state *st)
{
	memset(st, 0, sizeof(*st));
	st->allocs = (struct vec)VEC_INIT(struct talloc);
	st->kernels = (struct vec)VEC_INIT(struct tkernel);
}

void trace_state_free(struct trace_state *st)
{
	for (size_t i = 0; i < st->allocs.n; i++)
		free(((struct talloc *)st->allocs.data)[i].name);
	vec_free(&st->allocs);
	vec_free(&st->kernels);
}

/* ------------------------------------------------------------------------ */
/* Allocations                                                               */

static struct talloc *alloc_at(struct trace_state *st, size_t i)
{
	return &((struct talloc *)st->allocs.data)[i];
}

/* The index of the first allocation whose start is > addr. */
static size_t alloc_upper(struct trace_state *st, uint64_t addr)
{
	size_t lo = 0, hi = st->allocs.n;

	if (st->last < st->allocs.n && alloc_at(st, st->last)->start <= addr &&
	    (st->last + 1 == st->allocs.n || alloc_at(st, st->last + 1)->start > addr))
		return st->last + 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (alloc_at(st, mid)->start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t page_up(uint64_t x)
{
	return (x + TRACE_PAGE_SIZE - 1) & ~(uint64_t)(TRACE_PAGE_SIZE - 1);
}

#define ALLOC_FORM "ALLOC NAME ADDR BYTES"

static int alloc_add(struct trace_state *st, struct parse_ctx *p, const struct trace_rec *rec,
		     unsigned int col)
{
	uint64_t end = page_up(rec->addr + rec->bytes);
	size_t i = alloc_upper(st, rec->addr);
	struct talloc a = { rec->addr, rec->bytes, end, rec->line, NULL };
	const struct talloc *o = NULL;

	if (rec->addr % TRACE_PAGE_SIZE)
		return perr(p, col, ALLOC_FORM ": ADDR 0x%llx is not a multiple of the page "
			    "size (4096)", (unsigned long long)rec->addr);
	if (rec->addr < TRACE_ADDR_MIN || rec->addr >= TRACE_ADDR_END ||
	    rec->bytes > TRACE_ADDR_END - rec->addr)
		return perr(p, col, ALLOC_FORM ": [0x%llx, 0x%llx + %llu) is outside the user "
			    "address space [0x%llx, 0x%llx)", (unsigned long long)rec->addr,
			    (unsigned long long)rec->addr, (unsigned long long)rec->bytes,
			    TRACE_ADDR_MIN, TRACE_ADDR_END);
	if (i > 0 && alloc_at(st, i - 1)->end > rec->addr)
		o = alloc_at(st, i - 1);
	else if (i < st->allocs.n && alloc_at(st, i)->start < end)
		o = alloc_at(st, i);
	if (o)
		return perr(p, col,
			    "ALLOC %s [0x%llx, 0x%llx) overlaps allocation %s [0x%llx, 0x%llx) "
			    "of line %u (allocations own whole pages)",
			    rec->name, (unsigned long long)rec->addr, (unsigned long long)end,
			    o->name, (unsigned long long)o->start, (unsigned long long)o->end,
			    o->line);
	if (st->allocs.n >= TRACE_MAX_ALLOCS)
		return perr(p, col, "too many live allocations (at most %u)", TRACE_MAX_ALLOCS);
	a.name = script_malloc(strlen(rec->name) + 1);
	if (!a.name || vec_push(&st->allocs, &a)) {
		free(a.name);
		return poom(p);
	}
	strcpy(a.name, rec->name);
	memmove(alloc_at(st, i + 1), alloc_at(st, i), (st->allocs.n - 1 - i) * sizeof(a));
	*alloc_at(st, i) = a;
	st->last = i;
	return 0;
}

static int alloc_free(struct trace_state *st, struct parse_ctx *p, struct trace_rec *rec,
		      unsigned int col)
{
	uint64_t addr = rec->addr;
	size_t i = alloc_upper(st, addr);
	struct talloc *a = i ? alloc_at(st, i - 1) : NULL;

	if (!a || a->start + a->bytes <= addr)
		return perr(p, col, "FREE of 0x%llx: no live allocation there",
			    (unsigned long long)addr);
	if (a->start != addr)
		return perr(p, col,
			    "FREE of 0x%llx: inside allocation %s (line %u), which starts at "
			    "0x%llx; FREE takes an allocation's start",
			    (unsigned long long)addr, a->name, a->line,
			    (unsigned long long)a->start);
	snprintf(st->name, sizeof(st->name), "%s", a->name);
	rec->name = st->name;
	rec->bytes = a->bytes;
	free(a->name);
	memmove(a, a + 1, (st->allocs.n - i) * sizeof(*a));
	st->allocs.n--;
	st->last = 0;
	return 0;
}

/* "gpu0 W", "ADVISE", "PREFETCH": the record, in coverage errors. */
static const char *rec_label(const struct trace_rec *rec, char buf[16])
{
	char pb[8];

	if (rec->kind != TRACE_ACCESS)
		return trace_kind_name(rec->kind);
	snprintf(buf, 16, "%s %s", trace_proc_name(rec->proc, pb), trace_op_name(rec->op));
	return buf;
}

/* Every byte of [addr, addr + bytes) lies in live allocations. */
static int check_covered(struct trace_state *st, struct parse_ctx *p,
			 const struct trace_rec *rec, unsigned int col)
{
	uint64_t addr = rec->addr, end = addr + rec->bytes;
	size_t i = alloc_upper(st, addr);
	const struct talloc *a = i ? alloc_at(st, i - 1) : NULL;
	char lb[16];

	if (!a || a->start + a->bytes <= addr)
		return perr(p, col, "%s at 0x%llx: outside every live allocation",
			    rec_label(rec, lb), (unsigned long long)addr);
	st->last = i - 1;
	while (a->start + a->bytes < end) {
		uint64_t hole = a->start + a->bytes;

		if (i == st->allocs.n || alloc_at(st, i)->start != hole)
			return perr(p, col,
				    "%s of [0x%llx, 0x%llx): runs past the end of allocation %s "
				    "(line %u) into unallocated 0x%llx",
				    rec_label(rec, lb), (unsigned long long)addr,
				    (unsigned long long)end, a->name, a->line,
				    (unsigned long long)hole);
		a = alloc_at(st, i++);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Kernels                                                                   */

static struct tkernel *kernel_find(struct trace_state *st, uint64_t id)
{
	struct tkernel *k = st->kernels.data;

	for (size_t i = 0; i < st->kernels.n; i++)
		if (k[i].id == id)
			return &k[i];
	return NULL;
}

static int kernel_begin(struct trace_state *st, struct parse_ctx *p,
			const struct trace_rec *rec, unsigned int col)
{
	struct tkernel k = { rec->id, rec->line }, *o = kernel_find(st, k.id);

	if (o)
		return perr(p, col, "KERNEL_BEGIN %llu: kernel %llu is already running "
			    "(begun at line %u)", (unsigned long long)k.id,
			    (unsigned long long)k.id, o->line);
	if (st->kernels.n >= TRACE_MAX_KERNELS)
		return perr(p, col, "too many running kernels (at most %u)", TRACE_MAX_KERNELS);
	return vec_push(&st->kernels, &k) ? poom(p) : 0;
}

static int kernel_end(struct trace_state *st, struct parse_ctx *p, const struct trace_rec *rec,
		      unsigned int col)
{
	struct tkernel *k = kernel_find(st, rec->id), *all = st->kernels.data;

	if (!k)
		return perr(p, col, "KERNEL_END %llu without KERNEL_BEGIN %llu",
			    (unsigned long long)rec->id, (unsigned long long)rec->id);
	memmove(k, k + 1, (size_t)(all + st->kernels.n - (k + 1)) * sizeof(*k));
	st->kernels.n--;
	return 0;
}

/* ------------------------------------------------------------------------ */

int trace_state_apply(struct trace_state *st, struct parse_ctx *p, struct trace_rec *rec,
		      unsigned int col)
{
	switch (rec->kind) {
	case TRACE_ALLOC:
		return alloc_add(st, p, rec, col);
	case TRACE_FREE:
		return alloc_free(st, p, rec, col);
	case TRACE_ACCESS:
	case TRACE_ADVISE:
	case TRACE_PREFETCH:
		return check_covered(st, p, rec, col);
	case TRACE_KERNEL_BEGIN:
		return kernel_begin(st, p, rec, col);
	case TRACE_KERNEL_END:
		return kernel_end(st, p, rec, col);
	default:
		return 0;
	}
}

int trace_state_end(struct trace_state *st, struct parse_ctx *p)
{
	struct tkernel *k = st->kernels.data;

	if (!st->kernels.n)
		return 0;
	perr_at(p, k[0].line, 1, "KERNEL_BEGIN %llu: the kernel never ends (no KERNEL_END %llu "
		"before the end of the trace)", (unsigned long long)k[0].id,
		(unsigned long long)k[0].id);
	memmove(k, k + 1, (st->kernels.n - 1) * sizeof(*k));
	st->kernels.n--;
	return -EINVAL;
}
