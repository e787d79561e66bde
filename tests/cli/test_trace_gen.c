/* SPDX-License-Identifier: MIT */
/*
 * The trace generator (`devmm trace gen`, cli/trace_gen.c): the same seed
 * gives the same bytes and the seed is printed; every pattern's output
 * parses without an error under many option sets; and each pattern has
 * the shape managed-memory.md §3.1 asks for (streaming touches each page
 * once per pass in order, strided walks columns, random stays in its table
 * with Zipf's ranks, the stencil reads its halo and writes each output
 * element once, ping-pong alternates processors with the requested period).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trace.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

struct out {
	int rc;
	char *text, *err;
	size_t len, elen;
};

/* Run trace gen with the NULL-terminated arguments (pattern first). */
static struct out gen_v(const char *const *args)
{
	struct out o = { 0 };
	char *argv[64];
	int argc = 0;
	FILE *f, *e;

	while (args[argc]) {
		assert_true(argc < 63);
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	f = open_memstream(&o.text, &o.len);
	e = open_memstream(&o.err, &o.elen);
	assert_non_null(f);
	assert_non_null(e);
	o.rc = trace_gen_main(argc, argv, f, e);
	fclose(f);
	fclose(e);
	return o;
}

#define GEN(...) gen_v((const char *const[]){ __VA_ARGS__, NULL })

static void out_free(struct out *o)
{
	free(o->text);
	free(o->err);
}

struct recs {
	struct trace_rec *r;
	size_t n, cap;
	unsigned long long alloc[8]; /* addresses of the ALLOCs, in order */
	size_t nalloc;
};

/* Parse a generated trace; it must have no error at all. */
static struct recs parse(const struct out *o)
{
	struct recs rs = { 0 };
	struct trace_reader *r;
	struct trace_rec rec;
	struct diag d;
	int rc;

	assert_int_equal(o->rc, 0);
	assert_int_equal(trace_open_mem("gen.trace", o->text, o->len, &r), 0);
	while ((rc = trace_next(r, &rec, &d)) == 1) {
		if (rs.n == rs.cap) {
			rs.cap = rs.cap ? 2 * rs.cap : 256;
			rs.r = realloc(rs.r, rs.cap * sizeof(*rs.r));
			assert_non_null(rs.r);
		}
		if (rec.kind == TRACE_ALLOC && rs.nalloc < 8)
			rs.alloc[rs.nalloc++] = rec.addr;
		rec.name = NULL;
		rs.r[rs.n++] = rec;
	}
	if (rc)
		fail_msg("generated trace: %s", d.text);
	trace_close(r);
	return rs;
}

static size_t count_kind(const struct recs *rs, enum trace_kind k)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->n; i++)
		n += rs->r[i].kind == k;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Determinism and the seed                                                  */

static void test_same_seed_same_bytes(void **state)
{
	static const char *const pats[] = { "streaming", "strided", "random", "stencil",
					    "pingpong" };

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		struct out a = GEN(pats[i], "--seed", "42", "--mix", "r=2,w=1,a=1");
		struct out b = GEN(pats[i], "--seed", "42", "--mix", "r=2,w=1,a=1");

		if (i == 3) { /* the stencil has no --mix */
			out_free(&a);
			out_free(&b);
			a = GEN(pats[i], "--seed", "42");
			b = GEN(pats[i], "--seed", "42");
		}
		assert_int_equal(a.rc, 0);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.text, b.text, a.len);
		assert_non_null(strstr(a.text, "\n# seed 42\n"));
		assert_string_equal(a.err, "trace gen: seed 42\n");
		out_free(&a);
		out_free(&b);
	}
}

static void test_seed_changes_choices(void **state)
{
	struct out a = GEN("random", "--seed", "1", "--pages", "64");
	struct out b = GEN("random", "--seed", "2", "--pages", "64");
	struct out c = GEN("streaming", "--seed", "1", "--mix", "r=1,w=1", "--bytes", "65536");
	struct out d = GEN("streaming", "--seed", "2", "--mix", "r=1,w=1", "--bytes", "65536");

	(void)state;
	assert_true(a.len != b.len || memcmp(a.text, b.text, a.len));
	/* Only the op choices and the seed lines differ. */
	assert_int_equal(c.len, d.len);
	assert_true(memcmp(c.text, d.text, c.len));
	out_free(&a);
	out_free(&b);
	out_free(&c);
	out_free(&d);
}

/* Without --seed it picks one, prints it, and the trace says how to
 * reproduce it byte for byte. */
static void test_seed_printed(void **state)
{
	struct out a = GEN("random", "--pages", "32", "--dist", "zipf"), b;
	unsigned long long seed;
	char s[32];

	(void)state;
	assert_int_equal(a.rc, 0);
	assert_int_equal(sscanf(a.err, "trace gen: seed %llu", &seed), 1);
	snprintf(s, sizeof(s), "%llu", seed);
	{
		char head[160];

		snprintf(head, sizeof(head),
			 "# devmm trace v1\n# devmm trace gen random --pages 32 --dist zipf "
			 "--seed %s\n# seed %s\n", s, s);
		assert_memory_equal(a.text, head, strlen(head));
	}
	b = GEN("random", "--pages", "32", "--dist", "zipf", "--seed", s);
	/* a's second line appends the clock's seed as --seed S, which b passes
	 * last: the same arguments in the same order, so every byte is equal. */
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.text, b.text, a.len);
	out_free(&a);
	out_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Every pattern parses                                                      */

static void test_outputs_parse(void **state)
{
	static const char *const sets[][12] = {
		{ "streaming", "--arrays", "3", "--bytes", "10000", "--passes", "2" },
		{ "streaming", "--layout", "chunk", "--streams", "5", "--bytes", "0x11000",
		  "--cpu-init", "--compute", "100" },
		{ "streaming", "--proc", "cpu", "--mix", "a=1", "--base", "0x400000" },
		{ "strided", "--rows", "33", "--stride", "12", "--elem", "3", "--streams", "4" },
		{ "strided", "--passes", "3", "--proc", "gpu63", "--mix", "w=1" },
		{ "random", "--dist", "zipf", "--alpha", "0", "--pages", "7", "--rmw" },
		{ "random", "--elem", "4096", "--accesses", "100", "--streams", "65536" },
		{ "random", "--dist", "zipf", "--alpha", "16", "--mix", "r=1,a=3" },
		{ "stencil", "--height", "9", "--width", "13", "--tile", "4", "--halo", "5" },
		{ "stencil", "--tile", "1000", "--halo", "0", "--iters", "3", "--elem", "8" },
		{ "pingpong", "--procs", "gpu1,cpu,gpu0", "--rounds", "7", "--pages", "3" },
		{ "pingpong", "--procs", "cpu", "--mix", "r=1,w=1", "--streams", "100" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		const char *args[16] = { 0 };
		struct out o;
		struct recs rs;
		size_t n = 0;

		while (n < 12 && sets[i][n]) {
			args[n] = sets[i][n];
			n++;
		}
		args[n++] = "--seed";
		args[n++] = "9";
		o = gen_v(args);
		if (o.rc)
			fail_msg("set %zu: %s", i, o.err);
		rs = parse(&o);
		assert_true(count_kind(&rs, TRACE_ACCESS) > 0);
		assert_int_equal(count_kind(&rs, TRACE_ALLOC), count_kind(&rs, TRACE_FREE));
		free(rs.r);
		out_free(&o);
	}
}

/* ------------------------------------------------------------------------ */
/* Shapes                                                                    */

/* 11 pages (the last one 100 bytes), two arrays, three passes: each pass
 * is a kernel that touches every page of both arrays once, in page order,
 * in lockstep, page i on stream i mod 3. */
static void test_streaming_grid(void **state)
{
	struct out o = GEN("streaming", "--seed", "1", "--bytes", "41060", "--arrays", "2",
			   "--passes", "3", "--streams", "3");
	struct recs rs = parse(&o);
	size_t i = 0;

	(void)state;
	assert_int_equal(rs.nalloc, 2);
	assert_int_equal(rs.alloc[1] - rs.alloc[0], 2u << 20); /* 2 MiB aligned */
	assert_int_equal(rs.r[i++].kind, TRACE_ALLOC);
	assert_int_equal(rs.r[i++].kind, TRACE_ALLOC);
	for (uint64_t pass = 0; pass < 3; pass++) {
		assert_int_equal(rs.r[i].kind, TRACE_KERNEL_BEGIN);
		assert_int_equal(rs.r[i++].id, pass);
		for (uint64_t pg = 0; pg < 11; pg++)
			for (size_t a = 0; a < 2; a++, i++) {
				assert_int_equal(rs.r[i].kind, TRACE_ACCESS);
				assert_int_equal(rs.r[i].op, TRACE_READ);
				assert_int_equal(rs.r[i].addr, rs.alloc[a] + pg * 4096);
				assert_int_equal(rs.r[i].bytes, pg < 10 ? 4096 : 100);
				assert_int_equal(rs.r[i].stream, pg % 3);
				assert_true(rs.r[i].proc.is_gpu);
			}
		assert_int_equal(rs.r[i].kind, TRACE_KERNEL_END);
		assert_int_equal(rs.r[i++].id, pass);
	}
	assert_int_equal(rs.r[i++].kind, TRACE_FREE);
	assert_int_equal(rs.r[i++].kind, TRACE_FREE);
	assert_int_equal(i, rs.n);
	free(rs.r);
	out_free(&o);
}

/* Chunked: stream s owns pages [s*4, s*4+4) and walks them in order; every
 * page once per pass; the CPU writes every page first, then SYNC. */
static void test_streaming_chunk(void **state)
{
	struct out o = GEN("streaming", "--seed", "1", "--bytes", "0xe000", "--layout", "chunk",
			   "--streams", "4", "--cpu-init", "--passes", "2");
	struct recs rs = parse(&o);
	size_t i = 1, seen[2][14] = { { 0 } };
	uint64_t next[4];

	(void)state;
	for (uint64_t pg = 0; pg < 14; pg++, i++) {
		assert_false(rs.r[i].proc.is_gpu);
		assert_int_equal(rs.r[i].op, TRACE_WRITE);
		assert_int_equal(rs.r[i].addr, rs.alloc[0] + pg * 4096);
	}
	assert_int_equal(rs.r[i++].kind, TRACE_SYNC);
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(rs.r[i++].kind, TRACE_KERNEL_BEGIN);
		for (int s = 0; s < 4; s++)
			next[s] = (uint64_t)s * 4;
		for (; rs.r[i].kind == TRACE_ACCESS; i++) {
			uint64_t pg = (rs.r[i].addr - rs.alloc[0]) / 4096;
			uint32_t s = rs.r[i].stream;

			assert_true(s < 4);
			assert_int_equal(pg, next[s]++); /* its own chunk, in order */
			seen[pass][pg]++;
		}
		assert_int_equal(rs.r[i++].kind, TRACE_KERNEL_END);
		for (int pg = 0; pg < 14; pg++)
			assert_int_equal(seen[pass][pg], 1);
	}
	free(rs.r);
	out_free(&o);
}

/* Column walks: stream s reads element s of row r at r*stride + s*elem. */
static void test_strided(void **state)
{
	struct out o = GEN("strided", "--seed", "1", "--rows", "5", "--stride", "8192",
			   "--streams", "2", "--elem", "16");
	struct recs rs = parse(&o);
	size_t i = 2;

	(void)state;
	assert_int_equal(rs.r[0].bytes, 5 * 8192);
	for (uint64_t r = 0; r < 5; r++)
		for (uint32_t s = 0; s < 2; s++, i++) {
			assert_int_equal(rs.r[i].addr, rs.alloc[0] + r * 8192 + s * 16);
			assert_int_equal(rs.r[i].bytes, 16);
			assert_int_equal(rs.r[i].stream, s);
		}
	assert_int_equal(rs.r[i].kind, TRACE_KERNEL_END);
	free(rs.r);
	out_free(&o);
}

static void page_counts(const struct recs *rs, size_t *count, size_t pages, size_t *total)
{
	memset(count, 0, pages * sizeof(*count));
	*total = 0;
	for (size_t i = 0; i < rs->n; i++) {
		const struct trace_rec *r = &rs->r[i];

		if (r->kind != TRACE_ACCESS)
			continue;
		assert_true(r->addr >= rs->alloc[0]);
		assert_true(r->addr + r->bytes <= rs->alloc[0] + pages * 4096);
		assert_int_equal(r->addr % 8, 0);
		assert_int_equal(r->bytes, 8);
		count[(r->addr - rs->alloc[0]) / 4096]++;
		(*total)++;
	}
}

static void test_random_uniform(void **state)
{
	struct out o = GEN("random", "--seed", "5", "--pages", "16", "--accesses", "8000");
	struct recs rs = parse(&o);
	size_t count[16], total;

	(void)state;
	page_counts(&rs, count, 16, &total);
	assert_int_equal(total, 8000);
	for (int p = 0; p < 16; p++) /* 500 expected each; this seed's spread */
		assert_true(count[p] > 350 && count[p] < 650);
	for (size_t i = 0; i < rs.n; i++)
		if (rs.r[i].kind == TRACE_ACCESS)
			assert_int_equal(rs.r[i].stream, (i - 2) % 4);
	free(rs.r);
	out_free(&o);
}

/* Zipf(1.2): page k has weight (k+1)^-1.2, so page 0 is 2^1.2 = 2.3 times
 * as popular as page 1 and the counts fall with the rank. */
static void test_random_zipf(void **state)
{
	struct out o = GEN("random", "--seed", "5", "--pages", "64", "--accesses", "20000",
			   "--dist", "zipf", "--alpha", "1.2");
	struct recs rs = parse(&o);
	size_t count[64], total;

	(void)state;
	page_counts(&rs, count, 64, &total);
	assert_int_equal(total, 20000);
	assert_true(count[0] > 2 * count[1] && count[0] < 3 * count[1]);
	assert_true(count[1] > count[4] && count[4] > count[16] && count[16] > count[63]);
	free(rs.r);
	out_free(&o);
}

/* --rmw: each access is a read and a write of the same element. */
static void test_random_rmw(void **state)
{
	struct out o = GEN("random", "--seed", "3", "--pages", "4", "--accesses", "50", "--rmw");
	struct recs rs = parse(&o);
	size_t i = 2, n = 0;

	(void)state;
	for (; rs.r[i].kind == TRACE_ACCESS; i += 2, n++) {
		assert_int_equal(rs.r[i].op, TRACE_READ);
		assert_int_equal(rs.r[i + 1].op, TRACE_WRITE);
		assert_int_equal(rs.r[i].addr, rs.r[i + 1].addr);
		assert_int_equal(rs.r[i].stream, rs.r[i + 1].stream);
	}
	assert_int_equal(n, 50);
	free(rs.r);
	out_free(&o);
}

/* 8 x 8 grid of 4-byte elements, 4 x 4 tiles, halo 1, two iterations: each
 * tile reads its rows and columns widened by the halo (clipped at the
 * edges) from the input and writes its own elements of the output once;
 * the buffers swap between iterations. */
static void test_stencil(void **state)
{
	struct out o = GEN("stencil", "--seed", "1", "--height", "8", "--width", "8", "--tile", "4",
			   "--halo", "1", "--streams", "3");
	struct recs rs = parse(&o);
	size_t i = 2;

	(void)state;
	for (int it = 0; it < 2; it++) {
		uint64_t in = rs.alloc[it & 1], outb = rs.alloc[!(it & 1)];
		unsigned int written[64] = { 0 };

		assert_int_equal(rs.r[i++].kind, TRACE_KERNEL_BEGIN);
		for (unsigned int t = 0; t < 4; t++) {
			unsigned int y = t / 2 * 4, x = t % 2 * 4;
			unsigned int y0 = y ? y - 1 : 0, y1 = y + 5 > 8 ? 8 : y + 5;
			unsigned int x0 = x ? x - 1 : 0, x1 = x + 5 > 8 ? 8 : x + 5;

			for (unsigned int r = y0; r < y1; r++, i++) {
				assert_int_equal(rs.r[i].op, TRACE_READ);
				assert_int_equal(rs.r[i].addr, in + (r * 8 + x0) * 4);
				assert_int_equal(rs.r[i].bytes, (x1 - x0) * 4);
				assert_int_equal(rs.r[i].stream, t % 3);
			}
			for (unsigned int r = y; r < y + 4; r++, i++) {
				assert_int_equal(rs.r[i].op, TRACE_WRITE);
				assert_int_equal(rs.r[i].stream, t % 3);
				assert_true(rs.r[i].addr >= outb);
				for (uint64_t e = (rs.r[i].addr - outb) / 4;
				     e < (rs.r[i].addr - outb + rs.r[i].bytes) / 4; e++)
					written[e]++;
			}
		}
		assert_int_equal(rs.r[i++].kind, TRACE_KERNEL_END);
		for (int e = 0; e < 64; e++)
			assert_int_equal(written[e], 1);
	}
	free(rs.r);
	out_free(&o);
}

/* Turns alternate cpu, gpu0, cpu ...: each writes every page once, then
 * computes for the period on each of its streams, then SYNC; GPU turns are
 * kernels. */
static void test_pingpong(void **state)
{
	struct out o = GEN("pingpong", "--seed", "1", "--pages", "8", "--period", "250000",
			   "--rounds", "6", "--streams", "2");
	struct recs rs = parse(&o);
	size_t i = 1;

	(void)state;
	assert_int_equal(rs.r[0].bytes, 8 * 4096);
	for (uint64_t k = 0; k < 6; k++) {
		bool gpu = k % 2 == 1;

		if (gpu) {
			assert_int_equal(rs.r[i].kind, TRACE_KERNEL_BEGIN);
			assert_int_equal(rs.r[i++].id, k);
		}
		for (uint64_t pg = 0; pg < 8; pg++, i++) {
			assert_int_equal(rs.r[i].kind, TRACE_ACCESS);
			assert_int_equal(rs.r[i].proc.is_gpu, gpu);
			assert_int_equal(rs.r[i].op, TRACE_WRITE);
			assert_int_equal(rs.r[i].addr, rs.alloc[0] + pg * 4096);
			assert_int_equal(rs.r[i].stream, pg % 2);
		}
		for (uint32_t s = 0; s < 2; s++, i++) {
			assert_int_equal(rs.r[i].kind, TRACE_COMPUTE);
			assert_int_equal(rs.r[i].proc.is_gpu, gpu);
			assert_int_equal(rs.r[i].ns, 250000);
			assert_int_equal(rs.r[i].stream, s);
		}
		if (gpu)
			assert_int_equal(rs.r[i++].kind, TRACE_KERNEL_END);
		assert_int_equal(rs.r[i++].kind, TRACE_SYNC);
	}
	assert_int_equal(rs.r[i++].kind, TRACE_FREE);
	assert_int_equal(i, rs.n);
	free(rs.r);
	out_free(&o);
}

/* --procs sets the rotation. */
static void test_pingpong_procs(void **state)
{
	struct out o = GEN("pingpong", "--seed", "1", "--pages", "1", "--rounds", "5", "--procs",
			   "gpu2,cpu,gpu0");
	struct recs rs = parse(&o);
	static const int want[5] = { 2, -1, 0, 2, -1 };
	size_t k = 0;

	(void)state;
	for (size_t i = 0; i < rs.n; i++) {
		if (rs.r[i].kind != TRACE_ACCESS)
			continue;
		assert_true(k < 5);
		assert_int_equal(rs.r[i].proc.is_gpu, want[k] >= 0);
		if (want[k] >= 0)
			assert_int_equal(rs.r[i].proc.gpu, (unsigned int)want[k]);
		k++;
	}
	assert_int_equal(k, 5);
	free(rs.r);
	out_free(&o);
}

/* --proc cpu: the CPU runs no kernels, so no pattern writes kernel
 * markers for it (as ping-pong writes none for a CPU turn); a GPU gets
 * one kernel per pass or iteration. */
static void test_cpu_no_kernels(void **state)
{
	static const char *const pats[][3] = {
		{ "streaming", "--bytes", "16384" }, { "strided", "--rows", "4" },
		{ "random", "--pages", "4" },        { "stencil", "--height", "8" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		struct out c = GEN(pats[i][0], pats[i][1], pats[i][2], "--seed", "1", "--proc",
				   "cpu");
		struct out gp = GEN(pats[i][0], pats[i][1], pats[i][2], "--seed", "1", "--proc",
				    "gpu1");
		struct recs rc = parse(&c), rg = parse(&gp);
		size_t n = 0;

		assert_int_equal(count_kind(&rc, TRACE_KERNEL_BEGIN), 0);
		assert_int_equal(count_kind(&rc, TRACE_KERNEL_END), 0);
		assert_int_equal(count_kind(&rg, TRACE_KERNEL_BEGIN),
				 !strcmp(pats[i][0], "stencil") ? 2 : 1);
		for (size_t k = 0; k < rc.n; k++)
			if (rc.r[k].kind == TRACE_ACCESS) {
				assert_false(rc.r[k].proc.is_gpu);
				n++;
			}
		/* the same accesses otherwise */
		assert_int_equal(n, count_kind(&rg, TRACE_ACCESS));
		assert_int_equal(rc.n + 2 * count_kind(&rg, TRACE_KERNEL_BEGIN), rg.n);
		free(rc.r);
		free(rg.r);
		out_free(&c);
		out_free(&gp);
	}
}

/* --compute NS: every access is followed by its stream's COMPUTE NS. */
static void test_compute_option(void **state)
{
	struct out o = GEN("strided", "--seed", "1", "--rows", "3", "--compute", "700",
			   "--proc", "gpu4");
	struct recs rs = parse(&o);
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < rs.n; i++) {
		if (rs.r[i].kind != TRACE_ACCESS)
			continue;
		assert_int_equal(rs.r[i + 1].kind, TRACE_COMPUTE);
		assert_int_equal(rs.r[i + 1].ns, 700);
		assert_int_equal(rs.r[i + 1].proc.gpu, 4);
		assert_int_equal(rs.r[i + 1].stream, rs.r[i].stream);
		n++;
	}
	assert_int_equal(n, 12);
	free(rs.r);
	out_free(&o);
}

/* Out of memory (the Zipf table, streaming's array list): status 1, a
 * message, and nothing on the output, not a header without its trace. */
static void test_out_of_memory(void **state)
{
	struct out z, s;

	(void)state;
	script_fail_alloc(1);
	z = GEN("random", "--seed", "1", "--pages", "16", "--dist", "zipf");
	script_fail_alloc(1);
	s = GEN("streaming", "--seed", "1", "--bytes", "4096", "--arrays", "3");
	script_fail_alloc(0);
	assert_int_equal(z.rc, 1);
	assert_int_equal(z.len, 0);
	assert_non_null(strstr(z.err, "trace gen: out of memory"));
	assert_int_equal(s.rc, 1);
	assert_int_equal(s.len, 0);
	assert_non_null(strstr(s.err, "trace gen: out of memory"));
	out_free(&z);
	out_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Usage errors: status 2, a message, and nothing on the output            */

static void usage_error(const char *const *args, const char *msg)
{
	struct out o = gen_v(args);

	assert_int_equal(o.rc, 2);
	assert_int_equal(o.len, 0);
	if (!strstr(o.err, msg))
		fail_msg("expected \"%s\" in \"%s\"", msg, o.err);
	out_free(&o);
}

#define USAGE_ERROR(msg, ...) usage_error((const char *const[]){ __VA_ARGS__, NULL }, msg)

static void test_usage_errors(void **state)
{
	(void)state;
	USAGE_ERROR("unknown pattern 'zigzag'", "zigzag");
	USAGE_ERROR("option --alpha does not apply to pattern streaming", "streaming", "--alpha",
		    "1");
	USAGE_ERROR("option --mix does not apply to pattern stencil", "stencil", "--mix", "r=1");
	USAGE_ERROR("unknown option '--bogus'", "random", "--bogus", "1");
	USAGE_ERROR("--pages needs a value", "random", "--pages");
	USAGE_ERROR("--rmw takes no value", "random", "--rmw=1");
	USAGE_ERROR("unexpected argument 'x'", "random", "x");
	USAGE_ERROR("--seed: expected a decimal or 0x number, found '-1'", "random", "--seed",
		    "-1");
	USAGE_ERROR("--streams: expected 1 to 65536", "random", "--streams", "0");
	USAGE_ERROR("--streams: expected 1 to 65536", "random", "--streams=65537");
	USAGE_ERROR("--base: expected a multiple of 2 MiB", "random", "--base", "0x201000");
	USAGE_ERROR("--proc: expected cpu or gpu0 .. gpu63, found 'gpu64'", "random", "--proc",
		    "gpu64");
	USAGE_ERROR("--mix: expected r=N,w=N,a=N", "random", "--mix", "r=0,w=0");
	USAGE_ERROR("--mix: expected r=N,w=N,a=N", "random", "--mix", "r=1,");
	USAGE_ERROR("--mix: expected r=N,w=N,a=N", "random", "--mix", "x=1");
	USAGE_ERROR("--layout: expected grid or chunk, found 'rows'", "streaming", "--layout",
		    "rows");
	USAGE_ERROR("--dist: expected uniform or zipf, found 'normal'", "random", "--dist",
		    "normal");
	USAGE_ERROR("--alpha: expected a number from 0 to 16, found '-1'", "random", "--alpha",
		    "-1");
	USAGE_ERROR("--alpha: expected a number from 0 to 16, found 'nan'", "random", "--alpha",
		    "nan");
	USAGE_ERROR("--elem: random needs a divisor of 4096", "random", "--elem", "12");
	USAGE_ERROR("--stride: a row must hold an element per stream", "strided", "--stride",
		    "12", "--elem", "4");
	USAGE_ERROR("must be at least 1", "stencil", "--tile", "0");
	/* Unbounded, y + tile + halo wrapped and wrote a wrong trace that
	 * still passed the reader. */
	USAGE_ERROR("--tile and --halo: at most the larger of --height and --width", "stencil",
		    "--halo", "0xffffffffffffffff");
	USAGE_ERROR("--tile and --halo: at most the larger of --height and --width", "stencil",
		    "--tile", "0xfffffffffffffff0", "--height", "8", "--width", "8");
	USAGE_ERROR("--tile and --halo: at most the larger of --height and --width", "stencil",
		    "--height", "8", "--width", "16", "--halo", "17");
	USAGE_ERROR("--procs: expected up to 16 of cpu", "pingpong", "--procs", "cpu,,gpu0");
	USAGE_ERROR("--procs: expected up to 16 of cpu", "pingpong", "--procs", "cpu,gpu0,");
	USAGE_ERROR("--compute and --period: at most 10^15 ns", "pingpong", "--period",
		    "1000000000000001");
	USAGE_ERROR("the allocations do not fit below 2^47", "streaming", "--bytes",
		    "0x800000000000");
	USAGE_ERROR("the allocations do not fit below 2^47", "stencil", "--height",
		    "0x100000000", "--width", "0x100000000");
	USAGE_ERROR("--pages: zipf takes at most 2^24 pages", "random", "--dist", "zipf",
		    "--pages", "0x1000001");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_seed_same_bytes),
		cmocka_unit_test(test_seed_changes_choices),
		cmocka_unit_test(test_seed_printed),
		cmocka_unit_test(test_outputs_parse),
		cmocka_unit_test(test_streaming_grid),
		cmocka_unit_test(test_streaming_chunk),
		cmocka_unit_test(test_strided),
		cmocka_unit_test(test_random_uniform),
		cmocka_unit_test(test_random_zipf),
		cmocka_unit_test(test_random_rmw),
		cmocka_unit_test(test_stencil),
		cmocka_unit_test(test_pingpong),
		cmocka_unit_test(test_pingpong_procs),
		cmocka_unit_test(test_cpu_no_kernels),
		cmocka_unit_test(test_compute_option),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_usage_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
