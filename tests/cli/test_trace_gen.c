/* SPDX-License-Identifier: MIT */
/*
 * The trace generator (`devmm trace gen`, cli/trace_gen.c): the same seed
 * gives the same bytes and the seed is printed; every pattern's output
 * parses without an error under many option sets; usage errors write
 * nothing.
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
	/* The second line names its arguments in another order; the rest is equal. */
	assert_int_equal(a.len, b.len);
	assert_memory_equal(strstr(a.text, "# seed"), strstr(b.text, "# seed"),
			    a.len - (size_t)(strstr(a.text, "# seed") - a.text));
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
		cmocka_unit_test(test_usage_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
