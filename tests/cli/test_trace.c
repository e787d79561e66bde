/* SPDX-License-Identifier: MIT */
/*
 * The trace reader (cli/trace.h, trace format v1): every record kind and
 * its fields, numbers in both bases, comments and separators, every error
 * message with its LINE:COL, that a bad line changes nothing and reading
 * goes on after it, the semantic checks (overlaps, FREE, accesses outside
 * the allocations, kernels), the limits, reading a file through the
 * streaming buffer, and every allocation-failure path.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "trace.h"

#define PATH "t.trace"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

#define MAX_RECS 64

/* Every record and error of a trace. */
struct result {
	struct trace_rec rec[MAX_RECS];
	char names[MAX_RECS][64];
	size_t n;
	struct diag err[MAX_RECS];
	size_t nerr;
	int last; /* the final return of trace_next: 0 or a fatal error */
};

static void read_all(struct trace_reader *r, struct result *res)
{
	struct diag d;
	int rc;

	memset(res, 0, sizeof(*res));
	while ((rc = trace_next(r, &res->rec[res->n], &d)) != 0) {
		if (rc == 1) {
			assert_true(res->n < MAX_RECS);
			if (res->rec[res->n].name) {
				snprintf(res->names[res->n], 64, "%s", res->rec[res->n].name);
				res->rec[res->n].name = res->names[res->n];
			}
			res->n++;
		} else if (rc == -EINVAL) {
			assert_true(res->nerr < MAX_RECS);
			res->err[res->nerr++] = d;
		} else {
			break;
		}
	}
	res->last = rc;
}

static void parse_text(const char *text, struct result *res)
{
	struct trace_reader *r;

	assert_int_equal(trace_open_mem(PATH, text, strlen(text), &r), 0);
	read_all(r, res);
	trace_close(r);
	assert_int_equal(res->last, 0);
}

/* text parses without an error into exactly one record past @skip. */
static const struct trace_rec *one(struct result *res, const char *text, size_t skip)
{
	parse_text(text, res);
	if (res->nerr)
		fail_msg("\"%s\": %s", text, res->err[0].text);
	if (res->n != skip + 1)
		fail_msg("\"%s\" gave %zu records", text, res->n);
	return &res->rec[skip];
}

struct err_case {
	const char *text;
	unsigned int line, col;
	const char *msg;
};

/* The first error of each text is at LINE:COL with exactly that message. */
static void errors(const struct err_case *c, size_t n)
{
	static struct result res;

	for (size_t i = 0; i < n; i++) {
		char want[512];

		parse_text(c[i].text, &res);
		snprintf(want, sizeof(want), PATH ":%u:%u: %s", c[i].line, c[i].col, c[i].msg);
		if (!res.nerr)
			fail_msg("\"%s\": no error, expected %s", c[i].text, want);
		if (strcmp(res.err[0].text, want))
			fail_msg("\"%s\":\n  expected %s\n  got      %s", c[i].text, want,
				 res.err[0].text);
		assert_int_equal(res.err[0].line, c[i].line);
	}
}

#define ERRORS(cases) errors(cases, sizeof(cases) / sizeof(cases[0]))

#define A1 "ALLOC a 0x10000 8192\n"

/* ------------------------------------------------------------------------ */
/* Records                                                                   */

/* trace_proc_parse, shared by the reader and trace gen's --proc/--procs. */
static void test_proc_parse(void **state)
{
	static const struct {
		const char *s;
		bool ok, gpu;
		unsigned int n;
	} cases[] = {
		{ "cpu", true, false, 0 },   { "gpu0", true, true, 0 },  { "gpu9", true, true, 9 },
		{ "gpu63", true, true, 63 }, { "gpu64", false, false, 0 }, { "gpu01", false, false, 0 },
		{ "gpu", false, false, 0 },  { "GPU0", false, false, 0 }, { "cpu0", false, false, 0 },
		{ "gpu100", false, false, 0 }, { "gpux", false, false, 0 }, { "", false, false, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct trace_proc p = { true, 77 };
		bool ok = trace_proc_parse(cases[i].s, strlen(cases[i].s), &p);

		assert_int_equal(ok, cases[i].ok);
		if (ok) {
			assert_int_equal(p.is_gpu, cases[i].gpu);
			assert_int_equal(p.gpu, cases[i].n);
		} else {
			/* unchanged on failure */
			assert_true(p.is_gpu);
			assert_int_equal(p.gpu, 77);
		}
	}
}

static void test_alloc_free(void **state)
{
	static struct result res;
	const struct trace_rec *r;

	(void)state;
	r = one(&res, "ALLOC buf.x-1 0x10000 12288\n", 0);
	assert_int_equal(r->kind, TRACE_ALLOC);
	assert_string_equal(r->name, "buf.x-1");
	assert_int_equal(r->addr, 0x10000);
	assert_int_equal(r->bytes, 12288);
	assert_int_equal(r->line, 1);
	r = one(&res, "ALLOC b 0x10000 100\nFREE 0x10000\n", 1);
	assert_int_equal(r->kind, TRACE_FREE);
	assert_int_equal(r->addr, 0x10000);
	assert_string_equal(r->name, "b");
	assert_int_equal(r->bytes, 100); /* the size freed */
	assert_int_equal(r->line, 2);
	/* Freed space can be allocated again. */
	parse_text("ALLOC a 0x10000 1\nFREE 0x10000\nALLOC b 0x10000 1\n", &res);
	assert_int_equal(res.nerr, 0);
	assert_int_equal(res.n, 3);
}

static void test_access(void **state)
{
	static struct result res;
	const struct trace_rec *r;

	(void)state;
	r = one(&res, A1 "gpu0 R 0x10000 4096\n", 1);
	assert_int_equal(r->kind, TRACE_ACCESS);
	assert_true(r->proc.is_gpu);
	assert_int_equal(r->proc.gpu, 0);
	assert_int_equal(r->op, TRACE_READ);
	assert_int_equal(r->addr, 0x10000);
	assert_int_equal(r->bytes, 4096);
	assert_int_equal(r->stream, 0);
	r = one(&res, A1 "cpu W 0x10ffc 8 s=7\n", 1);
	assert_false(r->proc.is_gpu);
	assert_int_equal(r->op, TRACE_WRITE);
	assert_int_equal(r->stream, 7);
	assert_int_equal(r->bytes, 8); /* spans two pages */
	r = one(&res, A1 "gpu63 A 0x11fff 1 s=0x10\n", 1);
	assert_int_equal(r->proc.gpu, 63);
	assert_int_equal(r->op, TRACE_ATOMIC);
	assert_int_equal(r->stream, 16);
	/* The whole allocation, and two adjacent ones at once. */
	one(&res, A1 "gpu1 R 0x10000 8192\n", 1);
	r = one(&res, A1 "ALLOC b 0x12000 4096\ncpu R 0x11000 8192\n", 2);
	assert_int_equal(r->bytes, 8192);
}

static void test_compute_kernel_sync(void **state)
{
	static struct result res;
	const struct trace_rec *r;

	(void)state;
	r = one(&res, "gpu2 COMPUTE 1500 s=3\n", 0);
	assert_int_equal(r->kind, TRACE_COMPUTE);
	assert_int_equal(r->proc.gpu, 2);
	assert_int_equal(r->ns, 1500);
	assert_int_equal(r->stream, 3);
	r = one(&res, "cpu COMPUTE 0\n", 0);
	assert_false(r->proc.is_gpu);
	assert_int_equal(r->ns, 0);
	assert_int_equal(r->stream, 0);
	parse_text("KERNEL_BEGIN 7\nKERNEL_BEGIN 8\nKERNEL_END 0x7\nKERNEL_END 8\nSYNC\n", &res);
	assert_int_equal(res.nerr, 0);
	assert_int_equal(res.n, 5);
	assert_int_equal(res.rec[0].kind, TRACE_KERNEL_BEGIN);
	assert_int_equal(res.rec[0].id, 7);
	assert_int_equal(res.rec[2].kind, TRACE_KERNEL_END);
	assert_int_equal(res.rec[2].id, 7);
	assert_int_equal(res.rec[4].kind, TRACE_SYNC);
	/* An ID may be used again once its kernel ended. */
	parse_text("KERNEL_BEGIN 1\nKERNEL_END 1\nKERNEL_BEGIN 1\nKERNEL_END 1\n", &res);
	assert_int_equal(res.nerr, 0);
}

static void test_advise_prefetch(void **state)
{
	static struct result res;
	const struct trace_rec *r;

	(void)state;
	r = one(&res, A1 "ADVISE 0x10000 8192 preferred=gpu1\n", 1);
	assert_int_equal(r->kind, TRACE_ADVISE);
	assert_int_equal(r->advice, TRACE_ADV_PREFERRED);
	assert_true(r->proc.is_gpu);
	assert_int_equal(r->proc.gpu, 1);
	assert_int_equal(r->bytes, 8192);
	r = one(&res, A1 "ADVISE 0x10000 1 accessed_by=cpu\n", 1);
	assert_int_equal(r->advice, TRACE_ADV_ACCESSED_BY);
	assert_false(r->proc.is_gpu);
	r = one(&res, A1 "ADVISE 0x10000 1 read_mostly=on\n", 1);
	assert_int_equal(r->advice, TRACE_ADV_READ_MOSTLY);
	assert_true(r->on);
	r = one(&res, A1 "ADVISE 0x10000 1 read_mostly=off\n", 1);
	assert_false(r->on);
	r = one(&res, A1 "PREFETCH 0x11000 4096 gpu5\n", 1);
	assert_int_equal(r->kind, TRACE_PREFETCH);
	assert_int_equal(r->addr, 0x11000);
	assert_int_equal(r->proc.gpu, 5);
}

static void test_numbers(void **state)
{
	static struct result res;
	const struct trace_rec *r;

	(void)state;
	r = one(&res, "ALLOC a 65536 0X2000\n", 0);
	assert_int_equal(r->addr, 0x10000);
	assert_int_equal(r->bytes, 8192);
	r = one(&res, "ALLOC a 0x00010000 0x2aBc\n", 0);
	assert_int_equal(r->addr, 65536);
	assert_int_equal(r->bytes, 0x2abc);
	r = one(&res, "KERNEL_BEGIN 18446744073709551615\nKERNEL_END 0xffffffffffffffff\n", 1);
	assert_int_equal(r->id, UINT64_MAX);
	r = one(&res, "cpu COMPUTE 1000000000000000 s=65535\n", 0);
	assert_int_equal(r->ns, TRACE_MAX_NS);
	assert_int_equal(r->stream, TRACE_MAX_STREAM);
}

static void test_comments_and_separators(void **state)
{
	static struct result res;

	(void)state;
	parse_text("# a trace\n\n   \n\t# indented comment\nALLOC a 0x10000 4096 # trailing\r\n"
		   "gpu0\tR \t0x10000  1\ts=1\r\n#SYNC\nSYNC#glued\n   ",
		   &res);
	assert_int_equal(res.nerr, 0);
	assert_int_equal(res.n, 3);
	assert_int_equal(res.rec[0].line, 5);
	assert_int_equal(res.rec[1].line, 6);
	assert_int_equal(res.rec[1].stream, 1);
	assert_int_equal(res.rec[2].kind, TRACE_SYNC);
	assert_int_equal(res.rec[2].line, 8);
	/* A '\r' anywhere separates fields, not only before the '\n'. */
	parse_text("ALLOC a 0x10000 4096\ncpu\rW\r0x10000\r\r8\rs=2\n", &res);
	assert_int_equal(res.nerr, 0);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.rec[1].op, TRACE_WRITE);
	assert_int_equal(res.rec[1].bytes, 8);
	assert_int_equal(res.rec[1].stream, 2);
	/* No '\n' at the end; UTF-8 in a comment. */
	one(&res, "SYNC # caf\xc3\xa9", 0);
	parse_text("", &res);
	assert_int_equal(res.n + res.nerr, 0);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

static void test_syntax_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "alloc a 1 1", 1, 1,
		  "expected a record (ALLOC, FREE, KERNEL_BEGIN, KERNEL_END, ADVISE, PREFETCH, "
		  "SYNC, or a processor cpu|gpuN followed by R, W, A or COMPUTE), found 'alloc'" },
		{ "\n\nALLOC", 3, 6, "ALLOC NAME ADDR BYTES: expected NAME, found end of line" },
		{ "ALLOC 1a 0x10000 1", 1, 7,
		  "ALLOC NAME ADDR BYTES: expected NAME (a letter or '_', then letters, digits, "
		  "'_', '.' or '-'), found '1a'" },
		{ "ALLOC a 0x10000", 1, 16, "ALLOC NAME ADDR BYTES: expected BYTES, found end of line" },
		{ "ALLOC a 0x1000g 1", 1, 9,
		  "ALLOC NAME ADDR BYTES: expected ADDR (a decimal or 0x number), found '0x1000g'" },
		{ "ALLOC a -4096 1", 1, 9,
		  "ALLOC NAME ADDR BYTES: expected ADDR (a decimal or 0x number), found '-4096'" },
		{ "ALLOC a 0x 1", 1, 9,
		  "ALLOC NAME ADDR BYTES: expected ADDR (a decimal or 0x number), found '0x'" },
		{ "ALLOC a 0x10000 18446744073709551616", 1, 17,
		  "ALLOC NAME ADDR BYTES: BYTES '18446744073709551616' is out of range (at most "
		  "18446744073709551615)" },
		{ "ALLOC a 0x10000 1 x", 1, 19,
		  "ALLOC NAME ADDR BYTES: unexpected 'x' after the record's last field" },
		{ "FREE", 1, 5, "FREE ADDR: expected ADDR, found end of line" },
		{ "FREE 0x10000 1", 1, 14, "FREE ADDR: unexpected '1' after the record's last field" },
		{ "gpu0", 1, 5,
		  "PROC OP ADDR BYTES [s=STREAM]: expected an operation (R, W, A or COMPUTE), found "
		  "end of line" },
		{ "gpu0 r 0x10000 1", 1, 6,
		  "PROC OP ADDR BYTES [s=STREAM]: expected an operation (R, W, A or COMPUTE), "
		  "found 'r'" },
		{ "gpu64 R 0x10000 1", 1, 1,
		  "PROC OP ADDR BYTES [s=STREAM]: expected a processor (cpu, or gpu0 to gpu63), "
		  "found 'gpu64'" },
		{ "gpu01 R 0x10000 1", 1, 1,
		  "PROC OP ADDR BYTES [s=STREAM]: expected a processor (cpu, or gpu0 to gpu63), "
		  "found 'gpu01'" },
		{ "gpu R 0x10000 1", 1, 1,
		  "PROC OP ADDR BYTES [s=STREAM]: expected a processor (cpu, or gpu0 to gpu63), "
		  "found 'gpu'" },
		{ A1 "cpu W 0x10000", 2, 14,
		  "PROC OP ADDR BYTES [s=STREAM]: expected BYTES, found end of line" },
		{ A1 "cpu W 0x10000 0", 2, 15,
		  "PROC OP ADDR BYTES [s=STREAM]: BYTES must be at least 1, found 0" },
		{ A1 "cpu W 0xffffffffffffffff 2", 2, 26,
		  "PROC OP ADDR BYTES [s=STREAM]: ADDR + BYTES (0xffffffffffffffff + 2) overflows "
		  "64 bits" },
		/* Ending exactly at 2^64 is an overflow too (the docs' "< 2^64"). */
		{ A1 "cpu W 0xffffffffffffffff 1", 2, 26,
		  "PROC OP ADDR BYTES [s=STREAM]: ADDR + BYTES (0xffffffffffffffff + 1) overflows "
		  "64 bits" },
		{ A1 "cpu W 0x10000 1 t=1", 2, 17,
		  "PROC OP ADDR BYTES [s=STREAM]: expected s=STREAM or the end of the line, found "
		  "'t=1'" },
		{ A1 "cpu W 0x10000 1 s=", 2, 17,
		  "PROC OP ADDR BYTES [s=STREAM]: expected STREAM (a decimal or 0x number), found "
		  "''" },
		{ A1 "cpu W 0x10000 1 s=65536", 2, 17,
		  "PROC OP ADDR BYTES [s=STREAM]: STREAM '65536' is out of range (at most 65535)" },
		{ A1 "cpu W 0x10000 1 s=1 s=2", 2, 21,
		  "PROC OP ADDR BYTES [s=STREAM]: unexpected 's=2' after the record's last field" },
		{ "cpu COMPUTE", 1, 12, "PROC COMPUTE NS [s=STREAM]: expected NS, found end of line" },
		{ "cpu COMPUTE 1000000000000001", 1, 13,
		  "PROC COMPUTE NS [s=STREAM]: NS '1000000000000001' is out of range (at most "
		  "1000000000000000)" },
		{ "gpu0 COMPUTE 5 s=1 x", 1, 20,
		  "PROC COMPUTE NS [s=STREAM]: unexpected 'x' after the record's last field" },
		{ "KERNEL_BEGIN", 1, 13, "KERNEL_BEGIN ID: expected ID, found end of line" },
		{ "KERNEL_END k1", 1, 12,
		  "KERNEL_END ID: expected ID (a decimal or 0x number), found 'k1'" },
		{ "KERNEL_BEGIN 1 2", 1, 16, "KERNEL_BEGIN ID: unexpected '2' after the record's last field" },
		{ A1 "ADVISE 0x10000 1", 2, 17,
		  "ADVISE ADDR BYTES KEY=VALUE: expected KEY=VALUE (preferred=PROC, accessed_by=PROC "
		  "or read_mostly=on|off), found end of line" },
		{ A1 "ADVISE 0x10000 1 prefered=gpu0", 2, 18,
		  "ADVISE ADDR BYTES KEY=VALUE: expected preferred=PROC, accessed_by=PROC or "
		  "read_mostly=on|off, found 'prefered=gpu0'" },
		{ A1 "ADVISE 0x10000 1 preferred", 2, 18,
		  "ADVISE ADDR BYTES KEY=VALUE: expected preferred=PROC, accessed_by=PROC or "
		  "read_mostly=on|off, found 'preferred'" },
		{ A1 "ADVISE 0x10000 1 preferred=tpu", 2, 18,
		  "ADVISE ADDR BYTES KEY=VALUE: expected a processor (cpu, or gpu0 to gpu63), "
		  "found 'tpu'" },
		{ A1 "ADVISE 0x10000 1 accessed_by=", 2, 18,
		  "ADVISE ADDR BYTES KEY=VALUE: expected a processor (cpu, or gpu0 to gpu63), "
		  "found ''" },
		{ A1 "ADVISE 0x10000 1 read_mostly=yes", 2, 18,
		  "ADVISE ADDR BYTES KEY=VALUE: expected read_mostly=on or read_mostly=off, found "
		  "'read_mostly=yes'" },
		{ A1 "ADVISE 0x10000 1 read_mostly=on x", 2, 33,
		  "ADVISE ADDR BYTES KEY=VALUE: unexpected 'x' after the record's last field" },
		{ A1 "PREFETCH 0x10000 1", 2, 19,
		  "PREFETCH ADDR BYTES PROC: expected PROC (the destination), found end of line" },
		{ A1 "PREFETCH 0x10000 1 GPU0", 2, 20,
		  "PREFETCH ADDR BYTES PROC: expected a processor (cpu, or gpu0 to gpu63), found "
		  "'GPU0'" },
		{ "SYNC now", 1, 6, "SYNC: unexpected 'now' after the record's last field" },
		{ "SYNC\nSYNC \x01", 2, 6, "unexpected control character '\\x01'" },
		{ "SYNC $x", 1, 6, "SYNC: unexpected '$x' after the record's last field" },
		{ "ALLOC a\xff 0x10000 1", 1, 7,
		  "ALLOC NAME ADDR BYTES: expected NAME (a letter or '_', then letters, digits, "
		  "'_', '.' or '-'), found 'a\\xff'" },
	};

	(void)state;
	ERRORS(cases);
}

static void test_nul_byte(void **state)
{
	static struct result res;
	struct trace_reader *r;

	(void)state;
	assert_int_equal(trace_open_mem(PATH, "SYNC\nSY\0NC\nSYNC\n", 16, &r), 0);
	read_all(r, &res);
	trace_close(r);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.nerr, 1);
	assert_string_equal(res.err[0].text, PATH ":2:3: unexpected NUL byte");
}

static void test_semantic_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "ALLOC a 0x10800 1", 1, 9,
		  "ALLOC NAME ADDR BYTES: ADDR 0x10800 is not a multiple of the page size (4096)" },
		{ "ALLOC a 0x10000 0", 1, 17, "ALLOC NAME ADDR BYTES: BYTES must be at least 1, found 0" },
		{ "ALLOC a 0xf000 1", 1, 9,
		  "ALLOC NAME ADDR BYTES: [0xf000, 0xf000 + 1) is outside the user address space "
		  "[0x10000, 0x800000000000)" },
		{ "ALLOC a 0x7ffffffff000 0x1001", 1, 9,
		  "ALLOC NAME ADDR BYTES: [0x7ffffffff000, 0x7ffffffff000 + 4097) is outside the "
		  "user address space [0x10000, 0x800000000000)" },
		{ "ALLOC a 0x900000000000 1", 1, 9,
		  "ALLOC NAME ADDR BYTES: [0x900000000000, 0x900000000000 + 1) is outside the user "
		  "address space [0x10000, 0x800000000000)" },
		/* Allocations own whole pages: b's first page is a's last. */
		{ "ALLOC a 0x10000 0x1001\nALLOC b 0x11000 1", 2, 9,
		  "ALLOC b [0x11000, 0x12000) overlaps allocation a [0x10000, 0x12000) of line 1 "
		  "(allocations own whole pages)" },
		{ "ALLOC a 0x20000 1\nALLOC b 0x10000 0x10001", 2, 9,
		  "ALLOC b [0x10000, 0x21000) overlaps allocation a [0x20000, 0x21000) of line 1 "
		  "(allocations own whole pages)" },
		{ "ALLOC a 0x20000 1\nALLOC a 0x20000 1", 2, 9,
		  "ALLOC a [0x20000, 0x21000) overlaps allocation a [0x20000, 0x21000) of line 1 "
		  "(allocations own whole pages)" },
		{ "FREE 0x10000", 1, 6, "FREE of 0x10000: no live allocation there" },
		{ A1 "FREE 0x12000", 2, 6, "FREE of 0x12000: no live allocation there" },
		{ A1 "FREE 0x10010", 2, 6,
		  "FREE of 0x10010: inside allocation a (line 1), which starts at 0x10000; FREE "
		  "takes an allocation's start" },
		{ A1 "FREE 0x10000\nFREE 0x10000", 3, 6, "FREE of 0x10000: no live allocation there" },
		{ "gpu0 R 0x10000 1", 1, 8, "gpu0 R at 0x10000: outside every live allocation" },
		{ A1 "cpu W 0xf000 0x2000", 2, 7, "cpu W at 0xf000: outside every live allocation" },
		{ A1 "cpu A 0x11fff 2", 2, 7,
		  "cpu A of [0x11fff, 0x12001): runs past the end of allocation a (line 1) into "
		  "unallocated 0x12000" },
		/* Within a's last page but past its bytes. */
		{ "ALLOC a 0x10000 100\ngpu3 R 0x10000 101", 2, 8,
		  "gpu3 R of [0x10000, 0x10065): runs past the end of allocation a (line 1) into "
		  "unallocated 0x10064" },
		{ A1 "ALLOC b 0x13000 4096\ngpu0 R 0x11000 0x3000", 3, 8,
		  "gpu0 R of [0x11000, 0x14000): runs past the end of allocation a (line 1) into "
		  "unallocated 0x12000" },
		{ A1 "FREE 0x10000\ngpu0 W 0x10000 1", 3, 8,
		  "gpu0 W at 0x10000: outside every live allocation" },
		{ A1 "ADVISE 0x20000 1 read_mostly=on", 2, 8,
		  "ADVISE at 0x20000: outside every live allocation" },
		{ A1 "PREFETCH 0x10000 0x2001 gpu0", 2, 10,
		  "PREFETCH of [0x10000, 0x12001): runs past the end of allocation a (line 1) into "
		  "unallocated 0x12000" },
		{ "KERNEL_END 3", 1, 12, "KERNEL_END 3 without KERNEL_BEGIN 3" },
		{ "KERNEL_BEGIN 3\nKERNEL_END 3\nKERNEL_END 3", 3, 12,
		  "KERNEL_END 3 without KERNEL_BEGIN 3" },
		{ "KERNEL_BEGIN 3\nKERNEL_BEGIN 0x3", 2, 14,
		  "KERNEL_BEGIN 3: kernel 3 is already running (begun at line 1)" },
		{ "SYNC\nKERNEL_BEGIN 9\nSYNC", 2, 1,
		  "KERNEL_BEGIN 9: the kernel never ends (no KERNEL_END 9 before the end of the "
		  "trace)" },
	};

	(void)state;
	ERRORS(cases);
}

/* A bad line is reported and skipped; it changes nothing; reading goes on. */
static void test_bad_line_changes_nothing(void **state)
{
	static struct result res;

	(void)state;
	parse_text("ALLOC a 0x10000 4096\n"
		   "ALLOC b 0x10000 4096\n" /* overlaps: b never exists */
		   "FREE 0x10010\n" /* not a's start: a stays */
		   "gpu0 R 0x10000 1 s=99999\n"
		   "gpu0 R 0x10000 1\n"
		   "KERNEL_BEGIN 1 x\n" /* not begun */
		   "KERNEL_END 1\n"
		   "KERNEL_BEGIN 2\n"
		   "KERNEL_END 2 x\n" /* not ended */
		   "FREE 0x10000\n"
		   "KERNEL_BEGIN 5\n",
		   &res);
	assert_int_equal(res.n, 5);
	assert_int_equal(res.rec[0].kind, TRACE_ALLOC);
	assert_int_equal(res.rec[1].kind, TRACE_ACCESS);
	assert_int_equal(res.rec[1].line, 5);
	assert_int_equal(res.rec[2].kind, TRACE_KERNEL_BEGIN);
	assert_int_equal(res.rec[3].kind, TRACE_FREE);
	assert_string_equal(res.rec[3].name, "a");
	assert_int_equal(res.rec[4].kind, TRACE_KERNEL_BEGIN);
	/* Lines 2, 3, 4, 6, 7, 9, then kernels 2 and 5 never end, in order. */
	assert_int_equal(res.nerr, 8);
	assert_int_equal(res.err[0].line, 2);
	assert_int_equal(res.err[1].line, 3);
	assert_int_equal(res.err[2].line, 4);
	assert_int_equal(res.err[3].line, 6);
	assert_int_equal(res.err[4].line, 7);
	assert_int_equal(res.err[5].line, 9);
	assert_int_equal(res.err[6].line, 8);
	assert_int_equal(res.err[7].line, 11);
	assert_non_null(strstr(res.err[7].msg, "KERNEL_BEGIN 5: the kernel never ends"));
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */

static void test_line_length(void **state)
{
	static struct result res;
	char *text = malloc(3 * TRACE_MAX_LINE + 64);
	size_t o;

	(void)state;
	assert_non_null(text);
	/* "SYNC" padded with spaces to exactly TRACE_MAX_LINE bytes: fine. */
	memset(text, ' ', TRACE_MAX_LINE);
	memcpy(text, "SYNC", 4);
	o = TRACE_MAX_LINE;
	text[o++] = '\n';
	/* One byte more: an error at line 2, then line 3 reads. */
	memset(text + o, ' ', TRACE_MAX_LINE + 1);
	memcpy(text + o, "SYNC", 4);
	o += TRACE_MAX_LINE + 1;
	memcpy(text + o, "\nSYNC\n", 7);
	parse_text(text, &res);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.rec[1].line, 3);
	assert_int_equal(res.nerr, 1);
	assert_string_equal(res.err[0].text, PATH ":2:4097: line longer than 4096 bytes");
	free(text);
}

static void test_allocation_limit(void **state)
{
	size_t n = TRACE_MAX_ALLOCS + 1, o = 0;
	char *text = malloc(n * 40 + 64);
	static struct result res;
	struct trace_reader *r;
	struct trace_rec rec;
	struct diag d;
	size_t ok = 0;
	int rc;

	(void)state;
	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(text + o, "ALLOC a 0x%zx 1\n", 0x10000 + i * 4096);
	assert_int_equal(trace_open_mem(PATH, text, o, &r), 0);
	while ((rc = trace_next(r, &rec, &d)) == 1)
		ok++;
	assert_int_equal(ok, TRACE_MAX_ALLOCS);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(d.line, TRACE_MAX_ALLOCS + 1);
	assert_string_equal(d.msg, "too many live allocations (at most 65536)");
	assert_int_equal(trace_next(r, &rec, &d), 0);
	trace_close(r);
	free(text);
	(void)res;
}

static void test_kernel_limit(void **state)
{
	char *text = malloc((TRACE_MAX_KERNELS + 1) * 24);
	struct trace_reader *r;
	struct trace_rec rec;
	struct diag d;
	size_t o = 0, ok = 0, errs = 0;
	int rc;

	(void)state;
	assert_non_null(text);
	for (unsigned int i = 0; i <= TRACE_MAX_KERNELS; i++)
		o += (size_t)sprintf(text + o, "KERNEL_BEGIN %u\n", i);
	assert_int_equal(trace_open_mem(PATH, text, o, &r), 0);
	while ((rc = trace_next(r, &rec, &d)) == 1)
		ok++;
	assert_int_equal(ok, TRACE_MAX_KERNELS);
	assert_string_equal(d.msg, "too many running kernels (at most 1024)");
	/* Then one "never ends" per running kernel, and the end. */
	while ((rc = trace_next(r, &rec, &d)) == -EINVAL)
		errs++;
	assert_int_equal(rc, 0);
	assert_int_equal(errs, TRACE_MAX_KERNELS);
	trace_close(r);
	free(text);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                     */

static void test_file_streaming(void **state)
{
	char path[] = "/tmp/test_trace_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	struct trace_reader *r;
	struct trace_rec rec;
	struct diag d;
	unsigned long n = 0, errs = 0, lines = 0;
	int rc;

	(void)state;
	assert_non_null(f);
	/* Enough lines of varied lengths to cross many buffer refills, with a
	 * long bad line straddling them and one at the very end. */
	fprintf(f, "ALLOC a 0x10000 0x100000\n");
	for (unsigned long i = 0; i < 40000; i++) {
		fprintf(f, "gpu%lu R 0x%lx %lu s=%lu%*s\n", i % 4, 0x10000 + (i % 256) * 4096,
			1 + i % 4096, i % 7, (int)(i % 50), "");
		if (i % 9999 == 5000)
			fprintf(f, "%*s\n", 70000, "#");
	}
	fprintf(f, "FREE 0x10000\n%*s", 5000, "SYNC");
	assert_int_equal(fclose(f), 0);
	assert_int_equal(trace_open(path, &r, &d), 0);
	while ((rc = trace_next(r, &rec, &d)) != 0) {
		if (rc == -EINVAL) {
			errs++;
			assert_non_null(strstr(d.msg, "line longer than 4096 bytes"));
			continue;
		}
		assert_int_equal(rc, 1);
		if (rec.kind == TRACE_ACCESS) {
			assert_int_equal(rec.bytes, 1 + n % 4096);
			assert_int_equal(rec.stream, n % 7);
			n++;
		}
	}
	lines = trace_line(r);
	trace_close(r);
	unlink(path);
	assert_int_equal(n, 40000);
	assert_int_equal(errs, 5);
	assert_int_equal(lines, 1 + 40000 + 4 + 2);
}

/* trace_open_stream over fmemopen gives what trace_open_mem gives, across
 * buffer refills and overlong lines, and leaves the stream open. */
static void test_stream_same_as_mem(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *w = open_memstream(&text, &len), *f;
	struct trace_reader *rm, *rs;
	struct trace_rec a, b;
	struct diag da, db;
	unsigned long recs = 0, errs = 0;
	int ra, rb;

	(void)state;
	assert_non_null(w);
	fprintf(w, "ALLOC a 0x10000 0x100000\n");
	for (unsigned long i = 0; i < 6000; i++) {
		fprintf(w, "cpu W 0x%lx %lu s=%lu\n", 0x10000 + (i % 256) * 4096, 1 + i % 4096,
			i % 5);
		if (i % 2000 == 1000)
			fprintf(w, "%*s\n", 9000, "#");
	}
	fprintf(w, "FREE 0x10000\n%*s", 5000, "SYNC");
	assert_int_equal(fclose(w), 0);
	assert_true(len > 2 * (4096 + (64 << 10)));
	f = fmemopen(text, len, "r");
	assert_non_null(f);
	assert_int_equal(trace_open_stream(f, "s.trace", &rs), 0);
	assert_int_equal(trace_open_mem("s.trace", text, len, &rm), 0);
	do {
		ra = trace_next(rm, &a, &da);
		rb = trace_next(rs, &b, &db);
		assert_int_equal(ra, rb);
		if (ra == 1) {
			assert_int_equal(a.kind, b.kind);
			assert_int_equal(a.line, b.line);
			assert_int_equal(a.addr, b.addr);
			assert_int_equal(a.bytes, b.bytes);
			assert_int_equal(a.stream, b.stream);
			recs++;
		} else if (ra) {
			assert_int_equal(ra, -EINVAL);
			assert_string_equal(da.text, db.text);
			errs++;
		}
	} while (ra);
	assert_int_equal(recs, 1 + 6000 + 1);
	assert_int_equal(errs, 3 + 1);
	trace_close(rs);
	trace_close(rm);
	/* still open: trace_close left it to us */
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	assert_int_equal(fgetc(f), 'A');
	assert_int_equal(fclose(f), 0);
	free(text);
}

static void test_file_unreadable(void **state)
{
	struct trace_reader *r;
	struct diag d;

	(void)state;
	assert_int_equal(trace_open("/nonexistent/t.trace", &r, &d), -ENOENT);
	assert_null(r);
	assert_string_equal(d.text, "/nonexistent/t.trace: cannot read: No such file or directory");
}

/* A stream that gives @text, then fails every read with @err. */
struct failing {
	const char *text;
	size_t len, pos;
	int err;
	unsigned int reads, failed;
};

static ssize_t failing_read(void *cookie, char *buf, size_t size)
{
	struct failing *c = cookie;
	size_t n = c->len - c->pos < size ? c->len - c->pos : size;

	c->reads++;
	if (!n) {
		c->failed++;
		errno = c->err;
		return -1;
	}
	memcpy(buf, c->text + c->pos, n);
	c->pos += n;
	return (ssize_t)n;
}

/* A read error: -EIO after the lines read so far, its own errno in the
 * message, and final: later calls read nothing more. Even a read error
 * whose errno is EINVAL is -EIO, never taken for a bad line. */
static void test_read_error(void **state)
{
	static const int errs[] = { EIO, EINVAL };

	(void)state;
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct failing c = { .text = "ALLOC a 0x10000 4096\ncpu R 0x10000 1\n",
				     .err = errs[i] };
		cookie_io_functions_t io = { .read = failing_read };
		struct trace_reader *r;
		struct trace_rec rec;
		struct diag d;
		char want[128];
		FILE *f;

		c.len = strlen(c.text);
		f = fopencookie(&c, "r", io);
		assert_non_null(f);
		assert_int_equal(trace_open_stream(f, "c.trace", &r), 0);
		assert_int_equal(trace_next(r, &rec, &d), 1);
		assert_int_equal(trace_next(r, &rec, &d), 1);
		assert_int_equal(trace_next(r, &rec, &d), -EIO);
		snprintf(want, sizeof(want), "c.trace: read error after line 2: %s",
			 strerror(errs[i]));
		assert_string_equal(d.text, want);
		assert_int_equal(trace_line(r), 2);
		c.reads = 0;
		for (int k = 0; k < 3; k++) {
			memset(&d, 0, sizeof(d));
			assert_int_equal(trace_next(r, &rec, &d), -EIO);
			assert_string_equal(d.text, want);
		}
		assert_int_equal(c.reads, 0);
		trace_close(r);
		fclose(f);
	}
}

/* A directory opens but cannot be read: refused by trace_open. */
static void test_open_directory(void **state)
{
	struct trace_reader *r;
	struct diag d;

	(void)state;
	assert_int_equal(trace_open("/", &r, &d), -EISDIR);
	assert_null(r);
	assert_string_equal(d.text, "/: cannot read: Is a directory");
}

/* ------------------------------------------------------------------------ */
/* Allocation failures                                                       */

static int read_some(const char *text)
{
	struct trace_reader *r;
	struct trace_rec rec;
	struct diag d;
	int rc;

	rc = trace_open_mem(PATH, text, strlen(text), &r);
	if (rc)
		return rc;
	while ((rc = trace_next(r, &rec, &d)) != 0 && rc != -ENOMEM)
		;
	if (rc == -ENOMEM) {
		assert_string_equal(d.text, PATH ": out of memory");
		/* It stays failed. */
		assert_int_equal(trace_next(r, &rec, &d), -ENOMEM);
	}
	trace_close(r);
	return rc;
}

static void test_out_of_memory(void **state)
{
	const char *text = "ALLOC a 0x10000 8192\nALLOC b 0x20000 1\nKERNEL_BEGIN 1\n"
			   "gpu0 R 0x10000 1\nFREE 0x10000\nKERNEL_END 1\nKERNEL_BEGIN 2\n";
	unsigned long n;
	int rc = -ENOMEM;

	(void)state;
	for (n = 1; rc == -ENOMEM; n++) {
		script_fail_alloc(n);
		rc = read_some(text);
		script_fail_alloc(0);
		if (rc != 0 && rc != -ENOMEM)
			fail_msg("allocation %lu: %d", n, rc);
	}
	assert_true(n > 3); /* the reader, its path, a line arena at least */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_parse),
		cmocka_unit_test(test_alloc_free),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_compute_kernel_sync),
		cmocka_unit_test(test_advise_prefetch),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_comments_and_separators),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_semantic_errors),
		cmocka_unit_test(test_bad_line_changes_nothing),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_allocation_limit),
		cmocka_unit_test(test_kernel_limit),
		cmocka_unit_test(test_file_streaming),
		cmocka_unit_test(test_stream_same_as_mem),
		cmocka_unit_test(test_file_unreadable),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_open_directory),
		cmocka_unit_test(test_out_of_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
