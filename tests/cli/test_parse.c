/* SPDX-License-Identifier: MIT */
/*
 * The scenario-language front end (cli/script.h): every command form, every
 * class of syntax error with its exact LINE:COL, variants and their
 * combination names, repeat blocks, the limits that keep hostile input from
 * crashing or exhausting the parser, every allocation-failure path, and the
 * sample scripts of tests/cli/dmm/ (the spec's §5 example among them).
 *
 * Build: see meson.build.snippet (the front end's eleven .c files of cli/
 * and this one, -Icli -lcmocka -DTEST_DMM_DIR='"tests/cli/dmm"').
 * The random test prints its seed and takes another as TEST_PARSE_SEED.
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

#include "script.h"

#ifndef TEST_DMM_DIR
#define TEST_DMM_DIR "tests/cli/dmm"
#endif

#define PATH "t.dmm"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static struct script *parse_len(const char *text, size_t len)
{
	struct script *s = NULL;
	struct diag d;
	int rc = script_parse(PATH, text, len, &s, &d);

	if (rc)
		fail_msg("parse of \"%s\" failed (%d): %s", text, rc, d.text);
	return s;
}

static struct script *parse(const char *text)
{
	return parse_len(text, strlen(text));
}

/* A parsed script and the steps of one of its combinations. */
struct fx {
	struct script *s;
	struct step_list l;
};

static void fx_load(struct fx *f, const char *text, size_t combo)
{
	struct diag d;

	f->s = parse(text);
	if (script_expand(f->s, combo, &f->l, &d))
		fail_msg("expansion of \"%s\" failed: %s", text, d.text);
}

static void fx_free(struct fx *f)
{
	step_list_free(&f->l);
	script_free(f->s);
}

/* The single step of a one-line script (freed by fx_free). */
static const struct step *one(struct fx *f, const char *text)
{
	fx_load(f, text, 0);
	if (f->l.n != 1)
		fail_msg("\"%s\" gave %zu steps", text, f->l.n);
	return f->l.steps[0];
}

static void check_diag(const char *text, const struct diag *d, unsigned int line,
		       unsigned int col, const char *msg)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), PATH ":%u:%u: ", line, col);
	if (d->line != line || d->col != col || !strstr(d->msg, msg) ||
	    strncmp(d->text, prefix, strlen(prefix)))
		fail_msg("\"%s\": expected %s...%s, got \"%s\"", text, prefix, msg, d->text);
}

/* Parsing text fails at LINE:COL with a message containing msg. */
static void parse_error(const char *text, unsigned int line, unsigned int col, const char *msg)
{
	struct script *s = NULL;
	struct diag d;
	int rc = script_parse(PATH, text, strlen(text), &s, &d);

	if (rc != -EINVAL || s) {
		script_free(s);
		fail_msg("\"%s\": expected a syntax error, got %d", text, rc);
	}
	check_diag(text, &d, line, col, msg);
}

/* text parses, but expanding it fails at LINE:COL (a loop value's error). */
static void expand_error(const char *text, unsigned int line, unsigned int col, const char *msg)
{
	struct script *s = parse(text);
	struct diag d;
	int rc = script_check(s, &d);

	script_free(s);
	if (rc != -EINVAL)
		fail_msg("\"%s\": expected an expansion error, got %d", text, rc);
	check_diag(text, &d, line, col, msg);
}

struct err_case {
	const char *text;
	unsigned int line, col;
	const char *msg;
};

static void parse_errors(const struct err_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		parse_error(c[i].text, c[i].line, c[i].col, c[i].msg);
}

#define PARSE_ERRORS(cases) parse_errors(cases, sizeof(cases) / sizeof(cases[0]))

static const struct expect_item *item(const struct step *st, size_t i)
{
	assert_true(i < st->expect.nitems);
	return &st->expect.items[i];
}

/* ------------------------------------------------------------------------ */
/* Lexing                                                                    */

static void test_empty_file_has_no_steps(void **state)
{
	static const char *const empty[] = { "", "\n\n\n", "# only a comment\n", "  \t \r\n#x\n" };
	char name[64];
	struct fx f;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		fx_load(&f, empty[i], 0);
		assert_int_equal(f.l.n, 0);
		assert_int_equal(script_combo_count(f.s), 1);
		assert_int_equal(script_combo_name(f.s, 0, name, sizeof(name)), strlen(PATH));
		assert_string_equal(name, PATH);
		fx_free(&f);
	}
}

static void test_comments_blanks_tabs_crlf(void **state)
{
	struct fx f;

	(void)state;
	fx_load(&f, "# head\r\n\r\n\tmap\tA  4#tail\r\n   read A -> i   # why\nexit", 0);
	assert_int_equal(f.l.n, 3);
	assert_int_equal(f.l.steps[0]->line, 3);
	assert_int_equal(f.l.steps[0]->col, 2);
	assert_string_equal(f.l.steps[0]->text, "map A 4");
	assert_int_equal(f.l.steps[0]->u.map.pages, 4);
	assert_int_equal(f.l.steps[1]->line, 4);
	assert_int_equal(f.l.steps[1]->col, 4);
	assert_string_equal(f.l.steps[1]->text, "read A -> i");
	assert_int_equal(f.l.steps[2]->kind, STEP_EXIT); /* no final newline */
	fx_free(&f);
}

static void test_utf8_in_comments_only(void **state)
{
	struct fx f;

	(void)state;
	one(&f, "check   # caf\xc3\xa9 \x01 control bytes are fine in comments\n");
	fx_free(&f);
	parse_error("map A\xc3\xa9 4\n", 1, 5, "expected a region name, found 'A\\xc3\\xa9'");
}

static void test_bad_bytes(void **state)
{
	static const char nul[] = "map A 4\nread A\0 -> i\n";
	static const char nul_comment[] = "check # \0\n";
	struct script *s = NULL;
	struct diag d;

	(void)state;
	assert_int_equal(script_parse(PATH, nul, sizeof(nul) - 1, &s, &d), -EINVAL);
	check_diag("nul", &d, 2, 7, "unexpected NUL byte");
	assert_int_equal(script_parse(PATH, nul_comment, sizeof(nul_comment) - 1, &s, &d), -EINVAL);
	check_diag("nul in comment", &d, 1, 9, "unexpected NUL byte");
	parse_error("map A 4\x01\n", 1, 8, "unexpected control character '\\x01'");
	parse_error("check\x7f\n", 1, 6, "unexpected control character");
	assert_null(s);
}

static void test_file_too_large(void **state)
{
	struct script *s = NULL;
	struct diag d;
	static const char text[] = "check\n";

	(void)state;
	/* The length is checked before a byte is read. */
	assert_int_equal(script_parse(PATH, text, (size_t)SCRIPT_MAX_FILE_SIZE + 1, &s, &d),
			 -EINVAL);
	assert_int_equal(d.line, 0);
	assert_non_null(strstr(d.text, PATH ": file too large"));
	assert_null(s);
}

static void test_very_long_lines(void **state)
{
	size_t n = 1u << 20;
	char *text = malloc(n + 32);
	struct script *s = NULL;
	struct diag d;

	(void)state;
	if (!text)
		abort(); /* (not an assert: gcc must see that text is not NULL) */
	/* A megabyte-long token: the message quotes a short, escaped prefix. */
	memcpy(text, "map ", 4);
	memset(text + 4, 'x', n);
	memcpy(text + 4 + n, "! 4\n", 5);
	assert_int_equal(script_parse(PATH, text, strlen(text), &s, &d), -EINVAL);
	check_diag("long token", &d, 1, 5, "expected a region name, found 'xxxx");
	assert_true(strlen(d.text) < 200);
	/* A megabyte of valid tokens on one line is just slow to read. */
	for (size_t i = 0; i < n; i += 2)
		memcpy(text + i, "w ", 2);
	memcpy(text, "check", 5);
	text[n] = '\0';
	assert_int_equal(script_parse(PATH, text, n, &s, &d), -EINVAL);
	check_diag("many tokens", &d, 1, 7, "unexpected 'w' after the arguments of 'check'");
	free(text);
}

/* ------------------------------------------------------------------------ */
/* Numbers and values                                                        */

static void test_numbers(void **state)
{
	struct fx f;

	(void)state;
	assert_int_equal(one(&f, "map A 0x10")->u.map.pages, 16);
	fx_free(&f);
	assert_int_equal(one(&f, "map A 0XfF")->u.map.pages, 255);
	fx_free(&f);
	assert_int_equal(one(&f, "map A 0")->u.map.pages, 0); /* mmap says EINVAL */
	fx_free(&f);
	assert_int_equal(one(&f, "map A 4503599627370495")->u.map.pages, SCRIPT_MAX_PAGE);
	fx_free(&f);
	assert_int_equal(one(&f, "expect-freed gpu 18446744073709551615")->u.expect_freed.count,
			 UINT64_MAX);
	fx_free(&f);
}

static void test_number_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "map A 99999999999999999999999", 1, 7, "number out of range: '9999" },
		{ "map A 4503599627370496", 1, 7, "number out of range" },
		{ "expect-freed gpu 18446744073709551616", 1, 18, "number out of range" },
		{ "map A -1", 1, 7, "expected a page count, found '-1'" },
		{ "map A 4k", 1, 7, "expected a page count, found '4k'" },
		{ "map A 0x", 1, 7, "expected a page count, found '0x'" },
		{ "map A 0x1g", 1, 7, "expected a page count" },
		{ "map A +4", 1, 7, "expected a page count" },
		{ "store A+0 -0x1", 1, 11, "expected a value, found '-0x1'" },
		{ "store A+0 4294967296", 1, 11, "number out of range: '4294967296' (a word is 32 bits" },
		{ "store A+0 -2147483649", 1, 11, "number out of range" },
		{ "store A+0 x", 1, 11, "expected a value, found 'x'" },
		{ "write A 0x100000000", 1, 9, "number out of range" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_word_values(void **state)
{
	struct fx f;

	(void)state;
	assert_int_equal(one(&f, "store A+0 -1")->u.word.value, 0xffffffffu);
	fx_free(&f);
	assert_int_equal(one(&f, "store A+0 -2147483648")->u.word.value, 0x80000000u);
	fx_free(&f);
	assert_int_equal(one(&f, "store A+0 4294967295")->u.word.value, 0xffffffffu);
	fx_free(&f);
	assert_int_equal(one(&f, "store A+0 0xdeadbeef")->u.word.value, 0xdeadbeefu);
	fx_free(&f);
}

/* ------------------------------------------------------------------------ */
/* Patterns                                                                  */

static struct pattern pat_of(struct fx *f, const char *pattern)
{
	char text[128];

	snprintf(text, sizeof(text), "write A %s", pattern);
	return one(f, text)->u.write.pat;
}

static void test_pattern_forms(void **state)
{
	static const struct {
		const char *text;
		enum pattern_kind kind;
		uint64_t k;
		uint32_t word;
	} cases[] = {
		{ "i", PAT_INDEX, 5, 5 },
		{ "i", PAT_INDEX, 4096, 4096 },
		{ "i", PAT_INDEX, (1ull << 32) + 7, 7 }, /* modulo 2^32 */
		{ "-i", PAT_INDEX, 1, 0xffffffffu },
		{ "-i", PAT_INDEX, 0, 0 },
		{ "i+1", PAT_INDEX, 2, 3 },
		{ "i+0x10", PAT_INDEX, 1, 17 },
		{ "i-3", PAT_INDEX, 0, 0xfffffffdu },
		{ "i-3", PAT_INDEX, 10, 7 },
		{ "-i+3", PAT_INDEX, 1, 2 },
		{ "-i-3", PAT_INDEX, 1, 0xfffffffcu },
		{ "i+4294967295", PAT_INDEX, 1, 0 },
		{ "0", PAT_CONST, 99, 0 },
		{ "3", PAT_CONST, 99, 3 },
		{ "-1", PAT_CONST, 99, 0xffffffffu },
		{ "0xdeadbeef", PAT_CONST, 1, 0xdeadbeefu },
		{ "byte:0xab", PAT_BYTE, 9, 0xababababu },
		{ "byte:0x5", PAT_BYTE, 9, 0x05050505u },
		{ "byte:255", PAT_BYTE, 9, 0xffffffffu },
	};
	struct fx f;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pattern p = pat_of(&f, cases[i].text);

		if (p.kind != cases[i].kind || pattern_word(&p, cases[i].k) != cases[i].word)
			fail_msg("%s at %llu: kind %d word %#x", cases[i].text,
				 (unsigned long long)cases[i].k, p.kind, pattern_word(&p, cases[i].k));
		fx_free(&f);
	}
}

static void test_pattern_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "write A j", 1, 9, "expected a pattern (i, -i, i+C, i-C, -i+C, -i-C, a number or byte:0xNN), found 'j'" },
		{ "write A i*2", 1, 9, "expected a pattern" },
		{ "write A ii", 1, 9, "expected a pattern" },
		{ "write A i+", 1, 9, "expected a constant C after i+ or i-, found ''" },
		{ "write A i+x", 1, 9, "expected a constant C after i+ or i-, found 'x'" },
		{ "write A i+-1", 1, 9, "expected a constant C" },
		{ "write A i+4294967296", 1, 9, "number out of range" },
		{ "write A byte:0x100", 1, 9, "number out of range: '0x100' (a byte after byte: is at most 255)" },
		{ "write A byte:", 1, 9, "expected a pattern" },
		{ "write A byte:zz", 1, 9, "expected a byte after byte:, found 'zz'" },
		{ "write A", 1, 8, "expected a pattern, found end of line" },
		{ "write A -> ok", 1, 9, "expected a pattern, found '->'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

/* ------------------------------------------------------------------------ */
/* Ranges and addresses                                                      */

static void test_ranges(void **state)
{
	static const struct {
		const char *text;
		const char *region;
		enum span_kind kind;
		uint64_t first, last;
	} cases[] = {
		{ "munmap A", "A", SPAN_WHOLE, 0, 0 },
		{ "munmap A[2]", "A", SPAN_PAGE, 2, 2 },
		{ "munmap A[2..3]", "A", SPAN_RANGE, 2, 3 },
		{ "munmap A[2..2]", "A", SPAN_RANGE, 2, 2 },
		{ "munmap A[2..]", "A", SPAN_FROM, 2, 2 },
		{ "munmap Big_1.x-y[0x10..0x1f]", "Big_1.x-y", SPAN_RANGE, 16, 31 },
		{ "munmap A[100000]", "A", SPAN_PAGE, 100000, 100000 }, /* beyond: a hole */
	};
	struct fx f;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct range *r = &one(&f, cases[i].text)->range;

		assert_string_equal(r->region, cases[i].region);
		assert_int_equal(r->span.kind, cases[i].kind);
		assert_int_equal(r->span.first, cases[i].first);
		if (cases[i].kind != SPAN_WHOLE && cases[i].kind != SPAN_FROM)
			assert_int_equal(r->span.last, cases[i].last);
		fx_free(&f);
	}
}

static void test_range_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "munmap", 1, 7, "expected a range (R, R[a], R[a..b] or R[a..]), found end of line" },
		{ "munmap A[]", 1, 8, "expected a range" },
		{ "munmap A[1", 1, 8, "expected a range" },
		{ "munmap A[1]x", 1, 8, "expected a range" },
		{ "munmap [1]", 1, 8, "expected a range" },
		{ "munmap 9A", 1, 8, "expected a range (R, R[a], R[a..b] or R[a..]), found '9A'" },
		{ "munmap A[x]", 1, 8, "expected a page number, found 'x'" },
		{ "munmap A[3..2]", 1, 8, "bad range 'A[3..2]': last page 2 is before first page 3" },
		{ "munmap A[..2]", 1, 8, "expected a page number, found ''" },
		{ "munmap A[1..2..3]", 1, 8, "expected a page number, found '2..3'" },
		{ "munmap A[-1]", 1, 8, "expected a page number, found '-1'" },
		{ "munmap A[4503599627370496]", 1, 8, "number out of range" },
		{ "munmap A B", 1, 10, "unexpected 'B' after the arguments of 'munmap'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_addresses(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "load A+0x10 -> 7");
	assert_string_equal(st->u.word.addr.region, "A");
	assert_int_equal(st->u.word.addr.offset, 16);
	assert_int_equal(item(st, 0)->kind, EXP_VALUE);
	assert_int_equal(item(st, 0)->u.value, 7);
	fx_free(&f);
	st = one(&f, "load A -> -1");
	assert_int_equal(st->u.word.addr.offset, 0);
	assert_int_equal(item(st, 0)->u.value, 0xffffffffu);
	fx_free(&f);
	st = one(&f, "store B+4096 0");
	assert_int_equal(st->u.word.addr.offset, 4096);
	fx_free(&f);
}

static void test_address_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "load A+3", 1, 6, "offset '3' is not a multiple of 4 (a word address)" },
		{ "load A+", 1, 6, "expected a byte offset, found ''" },
		{ "load A+x", 1, 6, "expected a byte offset, found 'x'" },
		{ "load +4", 1, 6, "expected an address (R+OFF), found '+4'" },
		{ "load A[1]+4", 1, 6, "expected an address" },
		{ "load", 1, 5, "expected an address (R+OFF), found end of line" },
		{ "store A+4", 1, 10, "expected a value, found end of line" },
		{ "load A+4 -> i", 1, 13, "expected a value, found 'i'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

/* ------------------------------------------------------------------------ */
/* Commands: machine, processes, mappings                                    */

static void test_system(void **state)
{
	struct fx f;

	(void)state;
	assert_int_equal(one(&f, "system pages=1024")->u.system.pages, 1024);
	fx_free(&f);
	fx_load(&f, "variant a 1 2\nsystem pages=8\n# a comment\nmap A 1", 1);
	assert_int_equal(f.l.steps[0]->kind, STEP_SYSTEM);
	fx_free(&f);
	/* One system per combination, chosen by a variant. */
	fx_load(&f, "variant a 1 2\nif a=1: system pages=8\nif a=2: system pages=16\ncheck", 1);
	assert_int_equal(f.l.n, 2);
	assert_int_equal(f.l.steps[0]->u.system.pages, 16);
	fx_free(&f);
	/* mthp= may come anywhere, more than once. */
	fx_load(&f, "system pages=8\nmap A 1\nsystem mthp=2,4,8\nsystem mthp=none", 0);
	assert_true(f.l.steps[2]->u.system.has_mthp);
	assert_int_equal(f.l.steps[2]->u.system.mthp, (1u << 2) | (1u << 4) | (1u << 8));
	assert_int_equal(f.l.steps[2]->u.system.pages, 0);
	assert_int_equal(f.l.steps[3]->u.system.mthp, 0);
	fx_free(&f);
	/* thp= / hzero= / fail-thp-alloc [N] come anywhere too. */
	fx_load(&f, "system pages=8\nmap A 512 align=512 thp\nsystem thp=madvise hzero=off\n"
		    "system fail-thp-alloc\nsystem fail-thp-alloc 3\nmap B 1 nothp\nsystem hzero=on", 0);
	assert_int_equal(f.l.steps[1]->u.map.thp, 1);
	assert_true(f.l.steps[2]->u.system.has_thp && f.l.steps[2]->u.system.has_hzero);
	assert_int_equal(f.l.steps[2]->u.system.thp, 1); /* madvise */
	assert_true(f.l.steps[2]->u.system.hzero_off);
	assert_true(f.l.steps[3]->u.system.has_fail_thp);
	assert_int_equal(f.l.steps[3]->u.system.fail_thp, 1);
	assert_int_equal(f.l.steps[4]->u.system.fail_thp, 3);
	assert_int_equal(f.l.steps[5]->u.map.thp, -1);
	assert_true(!f.l.steps[6]->u.system.has_thp && f.l.steps[6]->u.system.has_hzero);
	assert_true(!f.l.steps[6]->u.system.hzero_off);
	fx_free(&f);
}

static void test_system_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "system", 1, 7, "expected pages=N, mthp=O,O,..., thp=MODE, hzero=on|off, fail-thp-alloc or contents=none, found end of line" },
		{ "system thp=sometimes", 1, 8, "expected thp=always, thp=madvise or thp=never, found 'sometimes'" },
		{ "system hzero=yes", 1, 8, "expected hzero=on or hzero=off, found 'yes'" },
		{ "system fail-thp-alloc x", 1, 23, "expected a count, found 'x'" },
		{ "map A 512 thp nothp", 1, 15, "'nothp' conflicts" },
		{ "system contents=all", 1, 8, "expected none after contents=, found 'all'" },
		{ "system 8", 1, 8, "unexpected '8' (expected pages=N, mthp=O,O,..., contents=none, thp=MODE or hzero=on|off)" },
		{ "system mthp=1", 1, 8, "expected mthp=none or orders 2..8 separated by commas, found '1'" },
		{ "system mthp=2,9", 1, 8, "expected mthp=none or orders 2..8 separated by commas, found '2,9'" },
		{ "system mthp=4,", 1, 8, "expected mthp=none or orders 2..8" },
		{ "system mthp=4\nsystem pages=8", 2, 1, "'system' must come before every other step" },
		{ "system pages=", 1, 8, "expected a page count, found ''" },
		{ "system pages=8 pages=9", 1, 16, "duplicate 'pages=9' (already given at column 8)" },
		{ "map A 1\nsystem pages=8", 2, 1, "'system' must come before every other step" },
		{ "repeat 1\nend\nsystem pages=8", 3, 1, "'system' must come before" },
		{ "child: system pages=8", 1, 1, "'system' does not take a process prefix" },
		{ "together system pages=8 || check", 1, 10, "'system' is not allowed inside 'together'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
	expand_error("system pages=8\nsystem pages=9\n", 2, 1, "'system' given twice (first at line 1)");
}

static void test_device(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "device gpu private");
	assert_int_equal(st->kind, STEP_DEVICE);
	assert_string_equal(st->dev, "gpu");
	assert_int_equal(st->u.device.type, DEV_PRIVATE);
	assert_false(st->u.device.has_pages);
	assert_int_equal(st->u.device.cow, COW_SYSTEM);
	fx_free(&f);
	/* Optional words in any order, even before the type. */
	st = one(&f, "device dev-2 cow=device pages=16 coherent");
	assert_string_equal(st->dev, "dev-2");
	assert_int_equal(st->u.device.type, DEV_COHERENT);
	assert_true(st->u.device.has_pages);
	assert_int_equal(st->u.device.pages, 16);
	assert_int_equal(st->u.device.cow, COW_DEVICE);
	fx_free(&f);
	assert_int_equal(one(&f, "device g coherent cow=system")->u.device.cow, COW_SYSTEM);
	fx_free(&f);
	assert_false(one(&f, "device g coherent")->u.device.no_contents);
	fx_free(&f);
	assert_true(one(&f, "device g contents=none private")->u.device.no_contents);
	fx_free(&f);
	st = one(&f, "system contents=none");
	assert_true(st->u.system.no_contents);
	assert_int_equal(st->u.system.pages, 0);
	fx_free(&f);
	st = one(&f, "system pages=8 contents=none");
	assert_true(st->u.system.no_contents);
	assert_int_equal(st->u.system.pages, 8);
	fx_free(&f);
	assert_int_equal(one(&f, "madvise A populate-write")->u.madvise.advice, ADV_POPULATE_WRITE);
	fx_free(&f);
}

static void test_device_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "device", 1, 7, "expected a device name, found end of line" },
		{ "device gpu", 1, 11, "expected private or coherent, found end of line" },
		{ "device gpu pages=4", 1, 19, "expected private or coherent, found end of line" },
		{ "device gpu private coherent", 1, 20, "'coherent' conflicts with 'private'" },
		{ "device gpu shiny", 1, 12, "unexpected 'shiny' (expected private, coherent, pages=N, cow=system|device or contents=none)" },
		{ "device gpu private contents=some", 1, 20, "expected none after contents=, found 'some'" },
		{ "device gpu coherent cow=host", 1, 21, "expected system or device after cow=, found 'host'" },
		{ "device gpu coherent pages=x", 1, 21, "expected a page count, found 'x'" },
		{ "device read private", 1, 8, "'read' cannot name a device (it is a reserved word)" },
		{ "device sys private", 1, 8, "'sys' cannot name a device" },
		{ "device EIO private", 1, 8, "'EIO' cannot name a device" },
		{ "device ok private", 1, 8, "'ok' cannot name a device" },
		{ "device 1gpu private", 1, 8, "expected a device name, found '1gpu'" },
		{ "child: device gpu private", 1, 1, "'device' does not take a process prefix" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_processes(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	fx_load(&f, "fork child\nchild: fork grandchild -> ENOMEM\ngrandchild: exit\nmain: exit", 0);
	assert_int_equal(f.l.n, 4);
	st = f.l.steps[0];
	assert_int_equal(st->kind, STEP_FORK);
	assert_string_equal(st->proc, "main");
	assert_string_equal(st->u.fork.child, "child");
	st = f.l.steps[1];
	assert_string_equal(st->proc, "child");
	assert_int_equal(st->col, 8);
	assert_string_equal(st->u.fork.child, "grandchild");
	assert_int_equal(st->expect.status, EXPECT_ERRNO);
	assert_int_equal(st->expect.err, ENOMEM);
	assert_string_equal(st->expect.errname, "ENOMEM");
	assert_int_equal(f.l.steps[2]->kind, STEP_EXIT);
	assert_string_equal(f.l.steps[2]->proc, "grandchild");
	assert_string_equal(f.l.steps[3]->proc, "main");
	fx_free(&f);
}

static void test_process_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "fork", 1, 5, "expected a process name, found end of line" },
		{ "fork a b", 1, 8, "unexpected 'b' after the arguments of 'fork'" },
		{ "exit now", 1, 6, "unexpected 'now' after the arguments of 'exit'" },
		{ "child:", 1, 7, "expected a command after the process prefix, found end of line" },
		{ "child: -> ok", 1, 8, "unknown command '->'" },
		{ ":", 1, 1, "expected a process name before ':', found ':'" },
		{ "a[1]: exit", 1, 1, "expected a process name before ':'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_map(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "map A 4");
	assert_int_equal(st->kind, STEP_MAP);
	assert_string_equal(st->u.map.region, "A");
	assert_int_equal(st->u.map.pages, 4);
	assert_int_equal(st->u.map.backing, BACK_ANON);
	assert_int_equal(st->u.map.prot, SPROT_RW);
	assert_int_equal(st->u.map.align, 1);
	assert_false(st->u.map.shared_file);
	assert_null(st->u.map.file);
	fx_free(&f);
	st = one(&f, "map S 2 none shared");
	assert_int_equal(st->u.map.backing, BACK_SHARED);
	assert_int_equal(st->u.map.prot, SPROT_NONE);
	fx_free(&f);
	st = one(&f, "map F 8 align=0x10 r shared-file file:data+3");
	assert_int_equal(st->u.map.backing, BACK_FILE);
	assert_string_equal(st->u.map.file, "data");
	assert_int_equal(st->u.map.pgoff, 3);
	assert_true(st->u.map.shared_file);
	assert_int_equal(st->u.map.prot, SPROT_R);
	assert_int_equal(st->u.map.align, 16);
	fx_free(&f);
	st = one(&f, "map P 1 private file:f");
	assert_int_equal(st->u.map.pgoff, 0);
	assert_false(st->u.map.shared_file);
	fx_free(&f);
	st = one(&f, "map P 1 anon private rw");
	assert_int_equal(st->u.map.backing, BACK_ANON);
	fx_free(&f);
}

static void test_map_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "map", 1, 4, "expected a region name, found end of line" },
		{ "map A", 1, 6, "expected a page count, found end of line" },
		{ "map A 4 anon shared", 1, 14, "'shared' conflicts with 'anon'" },
		{ "map A 4 file:f shared", 1, 16, "'shared' conflicts with 'file:f'" },
		{ "map A 4 r rw", 1, 11, "'rw' conflicts with 'r'" },
		{ "map A 4 r r", 1, 11, "duplicate 'r' (already given at column 9)" },
		{ "map A 4 shared-file", 1, 9, "'shared-file' needs file:F" },
		{ "map A 4 shared private", 1, 16, "'private' conflicts with 'shared'" },
		{ "map A 4 file:", 1, 9, "expected a file name after file:, found ''" },
		{ "map A 4 file:f+", 1, 9, "expected a page count, found ''" },
		{ "map A 4 file:f+x", 1, 9, "expected a page count, found 'x'" },
		{ "map A 4 align=0", 1, 9, "align= must be at least 1 page" },
		{ "map A 4 align", 1, 9, "unexpected 'align' (expected anon, shared, file:F[+PGOFF], private, shared-file, rw, r, none, align=A, thp or nothp)" },
		{ "map A 4 wx", 1, 9, "unexpected 'wx'" },
		{ "map A 4 -> i", 1, 12, "unexpected 'i' after '->' of 'map' (expected ok, any, an error name)" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_munmap_mprotect_madvise(void **state)
{
	static const char *const advice[] = { "dontneed", "free", "dontfork",
					      "dofork", "hugepage", "nohugepage" };
	static const char *const prot[] = { "rw", "r", "none" };
	char text[64];
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "munmap A[1..2]");
	assert_int_equal(st->kind, STEP_MUNMAP);
	assert_int_equal(st->range.span.last, 2);
	fx_free(&f);
	for (int i = 0; i < 3; i++) {
		snprintf(text, sizeof(text), "mprotect A[1..] %s -> ENOMEM", prot[i]);
		st = one(&f, text);
		assert_int_equal(st->kind, STEP_MPROTECT);
		assert_int_equal(st->u.mprotect.prot, (enum step_prot)i);
		assert_int_equal(st->expect.err, ENOMEM);
		fx_free(&f);
	}
	for (int i = 0; i < 6; i++) {
		snprintf(text, sizeof(text), "madvise A %s", advice[i]);
		st = one(&f, text);
		assert_int_equal(st->kind, STEP_MADVISE);
		assert_int_equal(st->u.madvise.advice, (enum step_advice)i);
		fx_free(&f);
	}
	parse_error("mprotect A", 1, 11, "expected rw, r or none, found end of line");
	parse_error("mprotect A x", 1, 12, "unexpected 'x' (expected rw, r or none)");
	parse_error("madvise A", 1, 10,
		    "expected dontneed, free, dontfork, dofork, hugepage, nohugepage, populate-read or populate-write, found end of line");
	parse_error("madvise A free dontneed", 1, 16, "'dontneed' conflicts with 'free'");
}

static void test_mremap(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "mremap A[0..1] to=B+2 dontunmap as C");
	assert_int_equal(st->kind, STEP_MREMAP);
	assert_string_equal(st->range.region, "A");
	assert_string_equal(st->u.mremap.to_region, "B");
	assert_int_equal(st->u.mremap.to_pages, 2);
	assert_true(st->u.mremap.dontunmap);
	assert_string_equal(st->u.mremap.as, "C");
	fx_free(&f);
	st = one(&f, "mremap A as C to=B -> EFAULT");
	assert_int_equal(st->u.mremap.to_pages, 0);
	assert_false(st->u.mremap.dontunmap);
	fx_free(&f);
	parse_error("mremap A as C", 1, 14, "expected to=R2+PAGES, found end of line");
	parse_error("mremap A to=B+1", 1, 16, "expected as NAME, found end of line");
	parse_error("mremap A to=B+1 as", 1, 19, "expected a name after 'as', found end of line");
	parse_error("mremap A to=B+1 as C[1]", 1, 20, "expected a region name after 'as', found 'C[1]'");
	parse_error("mremap A to=+1 as C", 1, 10, "expected a region name after to=, found ''");
	parse_error("mremap A to=B+-1 as C", 1, 10, "expected a page count, found '-1'");
}

/* ------------------------------------------------------------------------ */
/* Commands: files, CPU access                                               */

static void test_files(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	fx_load(&f, "file f 8\nfile g 2 i+100\npwrite g byte:0x5a\npread g -> byte:0x5a\npread f", 0);
	st = f.l.steps[0];
	assert_int_equal(st->kind, STEP_FILE);
	assert_string_equal(st->u.file.name, "f");
	assert_int_equal(st->u.file.pages, 8);
	assert_false(st->u.file.has_pattern);
	st = f.l.steps[1];
	assert_true(st->u.file.has_pattern);
	assert_int_equal(pattern_word(&st->u.file.pat, 1), 101);
	st = f.l.steps[2];
	assert_int_equal(st->kind, STEP_PWRITE);
	assert_true(st->u.file.has_pattern);
	assert_int_equal(st->u.file.pat.add, 0x5a5a5a5a);
	st = f.l.steps[3];
	assert_int_equal(st->kind, STEP_PREAD);
	assert_int_equal(item(st, 0)->kind, EXP_PATTERN);
	assert_int_equal(item(st, 0)->u.pat.add, 0x5a5a5a5a);
	assert_int_equal(f.l.steps[4]->expect.nitems, 0);
	fx_free(&f);
	parse_error("file f", 1, 7, "expected a page count, found end of line");
	parse_error("file f 2 i i", 1, 12, "unexpected 'i' after the arguments of 'file'");
	parse_error("pwrite g", 1, 9, "expected a pattern, found end of line");
	parse_error("pread g i", 1, 9, "unexpected 'i' after the arguments of 'pread'");
	parse_error("pread g -> cpages=1", 1, 12, "unknown expectation key 'cpages' for 'pread'");
}

static void test_cpu_access(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	fx_load(&f, "write A[1] i+1\nread A -> i\nread A[3..] -> EFAULT\n"
		    "rmw A[0] 7 -> -i\nrmw A 1 -> 0 EFAULT\nstore A+8 5\nload A+8 -> 0x5",
		0);
	assert_int_equal(f.l.n, 7);
	st = f.l.steps[0];
	assert_int_equal(st->kind, STEP_WRITE);
	assert_int_equal(st->range.span.first, 1);
	assert_int_equal(pattern_word(&st->u.write.pat, 1024), 1025);
	st = f.l.steps[1];
	assert_int_equal(st->kind, STEP_READ);
	assert_int_equal(st->expect.status, EXPECT_SUCCESS);
	assert_int_equal(item(st, 0)->kind, EXP_PATTERN);
	assert_int_equal(item(st, 0)->col, 11);
	assert_string_equal(item(st, 0)->text, "i");
	st = f.l.steps[2];
	assert_int_equal(st->expect.status, EXPECT_ERRNO);
	assert_int_equal(st->expect.err, EFAULT);
	assert_int_equal(st->expect.nitems, 0);
	st = f.l.steps[3];
	assert_int_equal(st->kind, STEP_RMW);
	assert_int_equal(st->u.write.pat.add, 7);
	assert_int_equal(item(st, 0)->u.pat.mul, -1);
	st = f.l.steps[4];
	assert_int_equal(st->expect.err, EFAULT);
	assert_int_equal(item(st, 0)->kind, EXP_PATTERN);
	assert_int_equal(f.l.steps[5]->kind, STEP_STORE);
	assert_int_equal(f.l.steps[5]->u.word.value, 5);
	assert_int_equal(f.l.steps[6]->kind, STEP_LOAD);
	assert_int_equal(item(f.l.steps[6], 0)->u.value, 5);
	fx_free(&f);
}

static void test_cpu_access_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "write A", 1, 8, "expected a pattern, found end of line" },
		{ "write A i -> i", 1, 14, "unexpected 'i' after '->' of 'write'" },
		{ "read A i", 1, 8, "unexpected 'i' after the arguments of 'read'" },
		{ "read A -> i i+1", 1, 13, "a second pattern after '->': 'i+1'" },
		{ "rmw A 1", 1, 8, "expected '->' and a pattern, found end of line" },
		{ "rmw A 1 -> EFAULT", 1, 18, "expected a pattern, found end of line" },
		{ "rmw A -> 1", 1, 7, "expected a pattern, found '->'" },
		{ "load A+0 -> 1 2", 1, 15, "a second value after '->': '2'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

/* ------------------------------------------------------------------------ */
/* Commands: devices                                                         */

static void test_device_commands(void **state)
{
	static const struct {
		const char *text;
		enum step_kind kind;
	} cases[] = {
		{ "gpu read A", STEP_DEV_READ },
		{ "gpu write A i", STEP_DEV_WRITE },
		{ "gpu migrate-to-dev A", STEP_DEV_MIGRATE_TO_DEV },
		{ "gpu migrate-to-sys A", STEP_DEV_MIGRATE_TO_SYS },
		{ "gpu snapshot A", STEP_DEV_SNAPSHOT },
		{ "gpu exclusive A", STEP_DEV_EXCLUSIVE },
		{ "gpu check-exclusive A", STEP_DEV_CHECK_EXCLUSIVE },
		{ "gpu atomic-add A 1", STEP_DEV_ATOMIC_ADD },
		{ "gpu release", STEP_DEV_RELEASE },
		{ "gpu fail-next-alloc", STEP_DEV_FAIL_NEXT_ALLOC },
		{ "gpu close", STEP_DEV_CLOSE },
		{ "gpu pool", STEP_DEV_POOL },
	};
	struct fx f;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct step *st = one(&f, cases[i].text);

		assert_int_equal(st->kind, cases[i].kind);
		assert_string_equal(st->dev, "gpu");
		assert_string_equal(st->proc, "main");
		assert_memory_equal(step_kind_name(st->kind), cases[i].text + 4,
				    strcspn(cases[i].text + 4, " "));
		fx_free(&f);
	}
}

static void test_device_command_args(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "c1: gpu atomic-add A[2] -5 -> cpages=1 faults=0");
	assert_string_equal(st->proc, "c1");
	assert_string_equal(st->dev, "gpu");
	assert_int_equal(st->col, 5);
	assert_int_equal(st->range.span.first, 2);
	assert_int_equal(st->u.atomic_add.value, (uint32_t)-5);
	assert_int_equal(item(st, 0)->kind, EXP_CPAGES);
	assert_int_equal(item(st, 0)->u.num, 1);
	assert_int_equal(item(st, 1)->kind, EXP_FAULTS);
	assert_int_equal(item(st, 1)->u.num, 0);
	fx_free(&f);
	st = one(&f, "gpu write A[1..2] -i -> faults=2 cpages=2");
	assert_int_equal(st->u.write.pat.mul, -1);
	assert_int_equal(item(st, 0)->kind, EXP_FAULTS);
	fx_free(&f);
	st = one(&f, "gpu pool -> free=60 used=4");
	assert_int_equal(item(st, 0)->kind, EXP_FREE);
	assert_int_equal(item(st, 0)->u.num, 60);
	assert_int_equal(item(st, 1)->kind, EXP_USED);
	fx_free(&f);
	st = one(&f, "gpu check-exclusive A -> EPERM");
	assert_int_equal(st->expect.err, EPERM);
	fx_free(&f);
}

static void test_data_expectations(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "gpu read A[2..5] -> data=i data[2]=i data[3..4]=0 data[5..]=-1 cpages=4");
	assert_int_equal(st->expect.nitems, 5);
	assert_int_equal(item(st, 0)->kind, EXP_DATA);
	assert_int_equal(item(st, 0)->u.data.span.kind, SPAN_WHOLE);
	assert_int_equal(item(st, 0)->u.data.pat.kind, PAT_INDEX);
	assert_int_equal(item(st, 1)->u.data.span.kind, SPAN_PAGE);
	assert_int_equal(item(st, 1)->u.data.span.first, 2);
	assert_int_equal(item(st, 2)->u.data.span.kind, SPAN_RANGE);
	assert_int_equal(item(st, 2)->u.data.span.last, 4);
	assert_int_equal(item(st, 2)->u.data.pat.add, 0);
	assert_int_equal(item(st, 3)->u.data.span.kind, SPAN_FROM);
	assert_int_equal(item(st, 3)->u.data.span.first, 5);
	assert_int_equal(item(st, 3)->u.data.pat.add, 0xffffffffu);
	assert_int_equal(item(st, 3)->col, 51);
	assert_string_equal(item(st, 3)->text, "data[5..]=-1");
	fx_free(&f);
	assert_int_equal(one(&f, "gpu migrate-to-dev A -> data=7")->expect.nitems, 1);
	fx_free(&f);
	assert_int_equal(one(&f, "gpu exclusive A -> data[0]=7 cpages=1")->expect.nitems, 2);
	fx_free(&f);
}

static void test_snap_expectations(void **state)
{
	struct fx f;
	const struct step *st;
	const struct expect_item *it;

	(void)state;
	st = one(&f, "gpu snapshot A -> snap=0x42,22*3,ff,0XaB*0x10,01");
	it = item(st, 0);
	assert_int_equal(it->kind, EXP_SNAP);
	assert_int_equal(it->u.snap.nruns, 5);
	assert_int_equal(it->u.snap.total, 1 + 3 + 1 + 16 + 1);
	assert_int_equal(it->u.snap.runs[0].byte, 0x42);
	assert_int_equal(it->u.snap.runs[0].count, 1);
	assert_int_equal(it->u.snap.runs[1].byte, 0x22);
	assert_int_equal(it->u.snap.runs[1].count, 3);
	assert_int_equal(it->u.snap.runs[2].byte, 0xff);
	assert_int_equal(it->u.snap.runs[3].byte, 0xab);
	assert_int_equal(it->u.snap.runs[3].count, 16);
	assert_int_equal(it->u.snap.runs[4].byte, 0x01);
	fx_free(&f);
	/* A long run costs one entry, not a byte per page. */
	st = one(&f, "gpu snapshot A -> snap=00*1000000000");
	assert_int_equal(item(st, 0)->u.snap.nruns, 1);
	assert_int_equal(item(st, 0)->u.snap.total, 1000000000);
	fx_free(&f);
}

static void test_device_command_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "gpu read", 1, 9, "expected a range (R, R[a], R[a..b] or R[a..]), found end of line" },
		{ "gpu read A -> snap=00", 1, 15, "unknown expectation key 'snap' for 'D read' (expected ok, any, an error name, cpages=, faults=, data=)" },
		{ "gpu write A i -> data=i", 1, 18, "unknown expectation key 'data' for 'D write'" },
		{ "gpu migrate-to-sys A -> faults=1", 1, 25, "unknown expectation key 'faults'" },
		{ "gpu snapshot A -> cpages=1", 1, 19, "unknown expectation key 'cpages' for 'D snapshot' (expected ok, any, an error name, snap=)" },
		{ "gpu pool -> cpages=1", 1, 13, "unknown expectation key 'cpages' for 'D pool'" },
		{ "gpu release -> used=0", 1, 16, "unknown expectation key 'used'" },
		{ "gpu read A -> cpages=1 cpages=2", 1, 24, "duplicate expectation 'cpages'" },
		{ "gpu read A -> data=1 data=2", 1, 22, "duplicate expectation 'data'" },
		{ "gpu read A -> data[1=2", 1, 15, "unknown expectation key 'data[1'" },
		{ "gpu read A -> data[]=2", 1, 15, "expected a page number, found ''" },
		{ "gpu read A -> data[2..1]=2", 1, 15, "bad range" },
		{ "gpu read A -> cpages=", 1, 15, "expected a count, found ''" },
		{ "gpu read A -> cpages=-1", 1, 15, "expected a count, found '-1'" },
		{ "gpu read A -> CPAGES=1", 1, 15, "unknown expectation key 'CPAGES'" },
		{ "gpu snapshot A -> snap=", 1, 19, "expected a snapshot byte (two hex digits, as 42 or 0x42), found ''" },
		{ "gpu snapshot A -> snap=4", 1, 19, "expected a snapshot byte" },
		{ "gpu snapshot A -> snap=0x4", 1, 19, "expected a snapshot byte" },
		{ "gpu snapshot A -> snap=123", 1, 19, "expected a snapshot byte" },
		{ "gpu snapshot A -> snap=4g", 1, 19, "found '4g'" },
		{ "gpu snapshot A -> snap=42,,42", 1, 19, "expected a snapshot byte" },
		{ "gpu snapshot A -> snap=42,", 1, 19, "expected a snapshot byte" },
		{ "gpu snapshot A -> snap=42*0", 1, 19, "a repeat count after '*' must be at least 1, found '0'" },
		{ "gpu snapshot A -> snap=42*", 1, 19, "expected a repeat count after '*', found ''" },
		{ "gpu snapshot A -> snap=42*4503599627370495,00", 1, 19, "number out of range: the list" },
		{ "gpu atomic-add A", 1, 17, "expected a value, found end of line" },
		{ "gpu atomic-add A i", 1, 18, "expected a value, found 'i'" },
		{ "gpu close A", 1, 11, "unexpected 'A' after the arguments of 'D close'" },
		{ "device gpu private\ngpu frob A", 2, 5, "expected a device command (read, write, migrate-to-dev, migrate-to-sys, snapshot, exclusive, check-exclusive, atomic-add, release, fail-next-alloc, close or pool) after 'gpu', found 'frob'" },
		{ "device gpu private\ngpu", 2, 4, "expected a device command (read, write" },
		{ "device gpu private\ngpu -> ok", 2, 5, "expected a device command (read, write" },
		{ "gpu frob A", 1, 1, "unknown command 'gpu'" },
		{ "1gpu read A", 1, 1, "expected a device name, found '1gpu'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

/* ------------------------------------------------------------------------ */
/* Commands: pins, observation                                               */

static void test_gup_unpin(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "gup A");
	assert_int_equal(st->kind, STEP_GUP);
	assert_false(st->u.gup.write || st->u.gup.fast || st->u.gup.pin || st->u.gup.longterm);
	assert_null(st->u.gup.as);
	fx_free(&f);
	st = one(&f, "gup A[0..1] as H longterm fast pin write -> pinned=2");
	assert_true(st->u.gup.write && st->u.gup.fast && st->u.gup.pin && st->u.gup.longterm);
	assert_string_equal(st->u.gup.as, "H");
	assert_int_equal(item(st, 0)->kind, EXP_PINNED);
	assert_int_equal(item(st, 0)->u.num, 2);
	fx_free(&f);
	st = one(&f, "unpin H");
	assert_int_equal(st->kind, STEP_UNPIN);
	assert_string_equal(st->u.unpin.handle, "H");
	fx_free(&f);
	parse_error("gup A longterm", 1, 7, "'longterm' needs 'pin'");
	parse_error("gup A pin pin", 1, 11, "duplicate 'pin'");
	parse_error("gup A as", 1, 9, "expected a name after 'as', found end of line");
	parse_error("gup A as -> ok", 1, 10, "expected a name after 'as', found '->'");
	parse_error("gup A get", 1, 7, "unexpected 'get' (expected write, fast, pin, longterm or as H)");
	parse_error("gup A -> pins=1", 1, 10, "unknown expectation key 'pins' for 'gup' (expected ok, any, an error name, pinned=)");
	parse_error("unpin", 1, 6, "expected a handle name, found end of line");
}

static void test_readpin_writepin(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "readpin H -> i+1");
	assert_int_equal(st->kind, STEP_READPIN);
	assert_string_equal(st->u.pinio.handle, "H");
	assert_int_equal(item(st, 0)->kind, EXP_PATTERN);
	assert_int_equal(item(st, 0)->u.pat.mul, 1);
	assert_int_equal(item(st, 0)->u.pat.add, 1);
	fx_free(&f);
	st = one(&f, "c: readpin pin.0 -> ok byte:0xab");
	assert_string_equal(st->proc, "c");
	assert_string_equal(st->u.pinio.handle, "pin.0");
	assert_int_equal(st->expect.status, EXPECT_OK);
	assert_int_equal(item(st, 0)->u.pat.add, 0xabababab);
	fx_free(&f);
	st = one(&f, "writepin H -i-3");
	assert_int_equal(st->kind, STEP_WRITEPIN);
	assert_string_equal(st->u.pinio.handle, "H");
	assert_int_equal(st->u.pinio.pat.kind, PAT_INDEX);
	assert_int_equal(st->u.pinio.pat.mul, -1);
	assert_int_equal(st->u.pinio.pat.add, (uint32_t)-3);
	assert_int_equal(st->expect.nitems, 0);
	fx_free(&f);
	st = one(&f, "writepin H 0xdeadbeef -> EPERM");
	assert_int_equal(st->u.pinio.pat.add, 0xdeadbeef);
	assert_int_equal(st->expect.err, EPERM);
	fx_free(&f);
	fx_load(&f, "variant h a b\ngup A pin as $h\nreadpin $h -> 0\nwritepin ${h} 1", 1);
	assert_string_equal(f.l.steps[1]->u.pinio.handle, "b");
	assert_string_equal(f.l.steps[2]->u.pinio.handle, "b");
	fx_free(&f);

	static const struct err_case cases[] = {
		{ "readpin", 1, 8, "expected a handle name, found end of line" },
		{ "readpin -> i", 1, 9, "expected a handle name, found '->'" },
		{ "readpin 1H -> i", 1, 9, "expected a handle name, found '1H'" },
		{ "readpin A[0] -> i", 1, 9, "expected a handle name, found 'A[0]'" },
		{ "readpin H", 1, 10, "expected '->' and a pattern, found end of line" },
		{ "readpin H i", 1, 11, "unexpected 'i' after the arguments of 'readpin' (expected '->' before it)" },
		{ "readpin H ->", 1, 13, "expected an expectation after '->', found end of line" },
		{ "readpin H -> EFAULT", 1, 20, "expected a pattern, found end of line" },
		{ "readpin H -> i 1", 1, 16, "a second pattern after '->': '1'" },
		{ "readpin H -> j", 1, 14, "expected a pattern" },
		{ "readpin H -> pins=1", 1, 14, "unknown expectation key 'pins' for 'readpin' (expected ok, any, an error name or a pattern)" },
		{ "writepin", 1, 9, "expected a handle name, found end of line" },
		{ "writepin H", 1, 11, "expected a pattern, found end of line" },
		{ "writepin H -> i", 1, 12, "expected a pattern, found '->'" },
		{ "writepin $x 1", 1, 10, "undefined variable $x" },
		{ "writepin H: 1", 1, 10, "expected a handle name, found 'H:'" },
		{ "writepin H i j", 1, 14, "unexpected 'j' after the arguments of 'writepin'" },
		{ "writepin H i -> i", 1, 17, "unexpected 'i' after '->' of 'writepin' (expected ok, any, an error name)" },
		{ "together readpin H || writepin H 1", 1, 20, "expected '->' and a pattern, found '||'" },
	};
	PARSE_ERRORS(cases);
}

static void test_where(void **state)
{
	struct fx f;
	const struct step *st;
	const struct expect_item *it;

	(void)state;
	st = one(&f, "where A[1..] -> none,zero*2,sys,gpu*0x3,excl,migrating");
	assert_int_equal(st->kind, STEP_WHERE);
	it = item(st, 0);
	assert_int_equal(it->kind, EXP_WHERE);
	assert_int_equal(it->u.where.nruns, 6);
	assert_int_equal(it->u.where.total, 9);
	assert_int_equal(it->u.where.runs[0].kind, LOC_NONE);
	assert_int_equal(it->u.where.runs[1].kind, LOC_ZERO);
	assert_int_equal(it->u.where.runs[1].count, 2);
	assert_int_equal(it->u.where.runs[2].kind, LOC_SYS);
	assert_int_equal(it->u.where.runs[3].kind, LOC_DEVICE);
	assert_string_equal(it->u.where.runs[3].dev, "gpu");
	assert_int_equal(it->u.where.runs[3].count, 3);
	assert_int_equal(it->u.where.runs[4].kind, LOC_EXCL);
	assert_int_equal(it->u.where.runs[5].kind, LOC_MIGRATING);
	fx_free(&f);
	st = one(&f, "where A -> gpu");
	assert_int_equal(item(st, 0)->u.where.runs[0].kind, LOC_DEVICE);
	fx_free(&f);
	st = one(&f, "where A -> any");
	assert_int_equal(st->expect.status, EXPECT_ANY);
	assert_int_equal(st->expect.nitems, 0);
	fx_free(&f);
	st = one(&f, "where A");
	assert_int_equal(st->expect.nitems, 0);
	fx_free(&f);
	parse_error("where A -> sys gpu", 1, 16, "a second location list after '->': 'gpu'");
	parse_error("where A -> sys,,gpu", 1, 12, "expected a location (none, zero, sys, thp, hzero, excl, migrating, a device; pmd, pte), found ''");
	parse_error("where A -> sys,read", 1, 12, "found 'read'");
	parse_error("where A -> gpu*0", 1, 12, "must be at least 1");
	parse_error("where A -> sys,EFAULT", 1, 12, "found 'EFAULT'");
	parse_error("where A -> EFAUL", 1, 12, "unknown error name 'EFAUL'");
	parse_error("where A -> data=1", 1, 12, "unknown expectation key 'data' for 'where' (expected ok, any, an error name or a location list)");
}

static void test_same(void **state)
{
	struct fx f;
	const struct step *st;
	const struct expect_item *it;

	(void)state;
	st = one(&f, "same A[1..4] A[5..8] -> yes,no*2,yes");
	assert_int_equal(st->kind, STEP_SAME);
	assert_string_equal(st->range.region, "A");
	assert_null(st->u.same.proc2);
	assert_string_equal(st->u.same.range2.region, "A");
	assert_int_equal(st->u.same.range2.span.kind, SPAN_RANGE);
	assert_int_equal(st->u.same.range2.span.first, 5);
	assert_int_equal(st->u.same.range2.span.last, 8);
	it = item(st, 0);
	assert_int_equal(it->kind, EXP_SAME);
	assert_int_equal(it->u.same.nruns, 3);
	assert_int_equal(it->u.same.total, 4);
	assert_true(it->u.same.runs[0].same);
	assert_false(it->u.same.runs[1].same);
	assert_int_equal(it->u.same.runs[1].count, 2);
	assert_true(it->u.same.runs[2].same);
	fx_free(&f);
	/* PROC: on the second range, a process a fork line above creates */
	fx_load(&f, "fork c\nc: same B c:A[2..] -> no*0x3", 0);
	st = f.l.steps[1];
	assert_string_equal(st->proc, "c");
	assert_string_equal(st->u.same.proc2, "c");
	assert_string_equal(st->u.same.range2.region, "A");
	assert_int_equal(st->u.same.range2.span.kind, SPAN_FROM);
	assert_int_equal(item(st, 0)->u.same.total, 3);
	fx_free(&f);
	fx_load(&f, "main: fork c\nsame A main:A -> yes\nsame A c:A -> yes", 0);
	assert_string_equal(f.l.steps[1]->u.same.proc2, "main");
	fx_free(&f);
	/* forks inside together, and under if */
	fx_load(&f, "variant v 1 2\ntogether check || fork d\nif v=1: fork e\nsame A d:A -> yes\n"
		    "same A e:A -> no", 0);
	fx_free(&f);
	/* a child named through a variable could be any process */
	fx_load(&f, "variant who a b\nfork $who\nsame A x:A -> yes", 0);
	fx_free(&f);
	fx_load(&f, "variant op fork show\n$op z\nsame A q:A -> yes", 0);
	fx_free(&f);
	/* sizes the line does not state are the runner's to compare */
	fx_load(&f, "same A B[2] -> yes\nsame A[1..] B[0..1] -> yes,no", 0);
	fx_free(&f);
	st = one(&f, "same A A -> ENOMEM yes");
	assert_int_equal(st->expect.status, EXPECT_ERRNO);
	fx_free(&f);

	static const struct err_case cases[] = {
		{ "same A", 1, 7, "expected a second range ([PROC:]R, R[a], R[a..b] or R[a..]), found end of line" },
		{ "same A -> yes", 1, 8, "expected a second range" },
		{ "same A B", 1, 9, "expected '->' and a yes/no list, found end of line" },
		{ "same A B yes", 1, 10, "unexpected 'yes' after the arguments of 'same' (expected '->' before it)" },
		{ "same A B -> ok", 1, 15, "expected a yes/no list, found end of line" },
		{ "same A B -> yes no", 1, 17, "a second yes/no list after '->': 'no'" },
		{ "same A B -> yes,maybe", 1, 13, "expected yes or no, found 'maybe'" },
		{ "same A B -> yes*0", 1, 13, "a repeat count after '*' must be at least 1" },
		{ "same A B -> Yes", 1, 13, "expected yes or no, found 'Yes'" },
		{ "same A B -> refs=1", 1, 13, "unknown expectation key 'refs' for 'same' (expected ok, any, an error name or a yes/no list)" },
		{ "same ghost:A A -> yes", 1, 6, "expected a range" },
		{ "same A ghost:A -> yes", 1, 8, "no process 'ghost' here (main and the children of the fork lines above are)" },
		{ "same A c:A -> yes\nfork c", 1, 8, "no process 'c' here" },
		{ "fork c\nsame A d:A[0] -> yes", 2, 8, "no process 'd' here" },
		{ "same A 1c:A -> yes", 1, 8, "expected a process name before ':', found '1c:A'" },
		{ "same A :A -> yes", 1, 8, "expected a process name before ':', found ':A'" },
		{ "same A main: -> yes", 1, 8, "expected a range (R, R[a], R[a..b] or R[a..]), found ''" },
		{ "same A main:A[2..1] -> yes", 1, 8, "bad range 'A[2..1]'" },
		{ "same A[0..1] A[2] -> yes", 1, 14, "the two ranges differ in size: 'A[0..1]' has 2 pages, 'A[2]' has 1" },
		{ "fork c\nc: same A[0..1] main:B[2..4] -> yes*2", 2, 17, "the two ranges differ in size: 'A[0..1]' has 2 pages, 'main:B[2..4]' has 3" },
		{ "same A B C -> yes", 1, 10, "unexpected 'C' after the arguments of 'same'" },
	};
	PARSE_ERRORS(cases);
}

static void test_stat_check_show_expect_freed(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	st = one(&f, "stat A[3] -> pins=1 refs=1026 maps=1");
	assert_int_equal(st->kind, STEP_STAT);
	assert_int_equal(item(st, 0)->kind, EXP_PINS);
	assert_int_equal(item(st, 1)->kind, EXP_REFS);
	assert_int_equal(item(st, 1)->u.num, 1026);
	assert_int_equal(item(st, 2)->kind, EXP_MAPS);
	fx_free(&f);
	st = one(&f, "c: stat A[1] -> writable=0 refs=1");
	assert_string_equal(st->proc, "c");
	assert_int_equal(item(st, 0)->kind, EXP_WRITABLE);
	assert_int_equal(item(st, 0)->u.num, 0);
	assert_int_equal(item(st, 1)->kind, EXP_REFS);
	fx_free(&f);
	st = one(&f, "stat A -> writable=1");
	assert_int_equal(item(st, 0)->kind, EXP_WRITABLE);
	assert_int_equal(item(st, 0)->u.num, 1);
	fx_free(&f);
	st = one(&f, "stat A -> order=9 fmaps=512 pmdmaps=0 partial=1");
	assert_int_equal(item(st, 0)->kind, EXP_ORDER);
	assert_int_equal(item(st, 0)->u.num, 9);
	assert_int_equal(item(st, 1)->kind, EXP_FMAPS);
	assert_int_equal(item(st, 1)->u.num, 512);
	assert_int_equal(item(st, 2)->kind, EXP_PMDMAPS);
	assert_int_equal(item(st, 3)->kind, EXP_PARTIAL);
	assert_int_equal(item(st, 3)->u.num, 1);
	fx_free(&f);
	st = one(&f, "check");
	assert_int_equal(st->kind, STEP_CHECK);
	fx_free(&f);
	st = one(&f, "show");
	assert_int_equal(st->kind, STEP_SHOW);
	assert_null(st->u.show.proc);
	fx_free(&f);
	st = one(&f, "show child");
	assert_string_equal(st->u.show.proc, "child");
	fx_free(&f);
	st = one(&f, "expect-freed gpu 0x10");
	assert_int_equal(st->kind, STEP_EXPECT_FREED);
	assert_string_equal(st->dev, "gpu");
	assert_int_equal(st->u.expect_freed.count, 16);
	fx_free(&f);
	parse_error("stat A -> pinned=1", 1, 11, "unknown expectation key 'pinned' for 'stat' (expected ok, any, an error name, refs=, maps=, pins=, writable=, order=, fmaps=, pmdmaps=, partial=)");
	parse_error("stat A -> partial=2", 1, 11, "expected 0 or 1 after partial=, found '2'");
	parse_error("stat A -> writable=2", 1, 11, "expected 0 or 1 after writable=, found '2'");
	parse_error("stat A -> writable=yes", 1, 11, "expected 0 or 1 after writable=, found 'yes'");
	parse_error("stat A -> writable=", 1, 11, "expected 0 or 1 after writable=, found ''");
	parse_error("stat A -> writable=0x1", 1, 11, "expected 0 or 1 after writable=, found '0x1'");
	parse_error("stat A -> writable=1 writable=0", 1, 22, "duplicate expectation 'writable'");
	parse_error("read A -> writable=1", 1, 11, "unknown expectation key 'writable' for 'read'");
	parse_error("show -> ok", 1, 6, "'show' takes no expectations");
	parse_error("show a b", 1, 8, "unexpected 'b' after the arguments of 'show'");
	parse_error("check A", 1, 7, "unexpected 'A'");
	parse_error("expect-freed gpu", 1, 17, "expected a count, found end of line");
	parse_error("expect-freed", 1, 13, "expected a device name, found end of line");
}

/* ------------------------------------------------------------------------ */
/* Expectations in general                                                   */

static void test_expect_status(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	assert_int_equal(one(&f, "check")->expect.status, EXPECT_SUCCESS);
	fx_free(&f);
	assert_int_equal(one(&f, "check -> ok")->expect.status, EXPECT_OK);
	fx_free(&f);
	assert_int_equal(one(&f, "check -> any")->expect.status, EXPECT_ANY);
	fx_free(&f);
	st = one(&f, "gpu read A -> cpages=0 EBUSY");
	assert_int_equal(st->expect.status, EXPECT_ERRNO);
	assert_int_equal(st->expect.err, EBUSY);
	assert_int_equal(st->expect.nitems, 1);
	fx_free(&f);
	assert_int_equal(script_errno_value("EOPNOTSUPP"), EOPNOTSUPP);
	assert_int_equal(script_errno_value("EHWPOISON"), 133);
	assert_int_equal(script_errno_value("EFUALT"), 0);
	assert_string_equal(script_errno_name(EFAULT), "EFAULT");
	assert_null(script_errno_name(-1));
}

static void test_expect_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "check ->", 1, 9, "expected an expectation after '->', found end of line" },
		{ "check -> ok any", 1, 13, "more than one result expected: 'any' after 'ok'" },
		{ "check -> EIO EPERM", 1, 14, "more than one result expected: 'EPERM' after 'EIO'" },
		{ "check -> EFUALT", 1, 10, "unknown error name 'EFUALT'" },
		{ "check -> E2BIG2", 1, 10, "unknown error name 'E2BIG2'" },
		{ "check -> ok -> ok", 1, 13, "unexpected second '->'" },
		{ "check -> OK", 1, 10, "unexpected 'OK' after '->' of 'check' (expected ok, any, an error name)" },
		{ "check -> x=1", 1, 10, "unknown expectation key 'x' for 'check'" },
		{ "read A -> =1", 1, 11, "unknown expectation key ''" },
		{ "together check -> || check", 1, 19, "expected an expectation after '->', found '||'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

/* ------------------------------------------------------------------------ */
/* together                                                                  */

static void test_together(void **state)
{
	struct fx f;
	const struct step *st, *parts;

	(void)state;
	st = one(&f, "together read A -> i || c: gpu write A 1 -> any || exit");
	assert_int_equal(st->kind, STEP_TOGETHER);
	assert_int_equal(st->col, 1);
	assert_string_equal(st->proc, "main");
	assert_int_equal(st->u.together.nparts, 3);
	parts = st->u.together.parts;
	assert_int_equal(parts[0].kind, STEP_READ);
	assert_string_equal(parts[0].text, "read A -> i");
	assert_int_equal(parts[0].col, 10);
	assert_int_equal(parts[0].line, 1);
	assert_int_equal(item(&parts[0], 0)->kind, EXP_PATTERN);
	assert_int_equal(parts[1].kind, STEP_DEV_WRITE);
	assert_string_equal(parts[1].proc, "c");
	assert_string_equal(parts[1].text, "c: gpu write A 1 -> any");
	assert_int_equal(parts[1].col, 28);
	assert_int_equal(parts[1].expect.status, EXPECT_ANY);
	assert_int_equal(parts[2].kind, STEP_EXIT);
	assert_string_equal(st->text, "together read A -> i || c: gpu write A 1 -> any || exit");
	fx_free(&f);
}

static void test_together_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "together", 1, 9, "expected a step after 'together', found end of line" },
		{ "together check", 1, 15, "expected '||' and another step, found end of line" },
		{ "together check ||", 1, 18, "expected a step, found end of line" },
		{ "together || check", 1, 10, "expected a step, found '||'" },
		{ "together check || || check", 1, 19, "expected a step, found '||'" },
		{ "together check || together check || check", 1, 19, "'together' cannot be nested" },
		{ "together check || repeat 2", 1, 19, "'repeat' is not allowed inside 'together'" },
		{ "together check || end", 1, 19, "'end' is not allowed inside 'together'" },
		{ "together check || variant a 1", 1, 19, "'variant' is not allowed inside 'together'" },
		{ "together check || if a=1: check", 1, 19, "'if' is not allowed inside 'together'" },
		{ "c: together check || check", 1, 1, "'together' does not take a process prefix" },
		{ "together map A || check", 1, 16, "expected a page count, found '||'" },
		{ "together check||check", 1, 22, "expected '||' and another step, found end of line" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

/* ------------------------------------------------------------------------ */
/* Misc syntax errors                                                        */

static void test_unknown_commands_and_misplaced_words(void **state)
{
	static const struct err_case cases[] = {
		{ "map A 4\n\n  frobnicate A", 3, 3, "unknown command 'frobnicate'" },
		{ "Map A 4", 1, 1, "unknown command 'Map'" },
		{ "c: repeat 2", 1, 1, "'repeat' does not take a process prefix" },
		{ "c: end", 1, 1, "'end' does not take a process prefix" },
		{ "c: variant a 1", 1, 1, "'variant' does not take a process prefix" },
		{ "c: if a=1: check", 1, 1, "'if' does not take a process prefix" },
		{ "variant a 1\nif a=1: repeat 2", 2, 9, "'repeat' cannot follow 'if'" },
		{ "variant a 1\nif a=1: end", 2, 9, "'end' cannot follow 'if'" },
		{ "variant a 1\nif a=1: variant b 2", 2, 9, "'variant' cannot follow 'if'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

/* ------------------------------------------------------------------------ */
/* Variants                                                                  */

static void test_variant_combinations(void **state)
{
	static const char text[] = "variant type private coherent\n"
				   "variant n 1 2 3\n"
				   "device gpu $type pages=${n}0\n"
				   "map A$n $n\n";
	static const char *const names[] = {
		PATH "[type=private,n=1]",	 PATH "[type=private,n=2]",
		PATH "[type=private,n=3]",	 PATH "[type=coherent,n=1]",
		PATH "[type=coherent,n=2]", PATH "[type=coherent,n=3]",
	};
	struct script *s = parse(text);
	struct step_list l;
	struct diag d;
	char name[128];

	(void)state;
	assert_int_equal(script_combo_count(s), 6);
	for (size_t c = 0; c < 6; c++) {
		assert_int_equal(script_combo_name(s, c, name, sizeof(name)), strlen(names[c]));
		assert_string_equal(name, names[c]);
		assert_int_equal(script_expand(s, c, &l, &d), 0);
		assert_int_equal(l.n, 2);
		assert_int_equal(l.steps[0]->u.device.type, c < 3 ? DEV_PRIVATE : DEV_COHERENT);
		assert_int_equal(l.steps[0]->u.device.pages, 10 * (c % 3 + 1));
		assert_int_equal(l.steps[1]->u.map.pages, c % 3 + 1);
		snprintf(name, sizeof(name), "map A%zu %zu", c % 3 + 1, c % 3 + 1);
		assert_string_equal(l.steps[1]->text, name);
		assert_int_equal(l.steps[1]->line, 4);
		step_list_free(&l);
	}
	assert_string_equal(script_combo_value(s, 4, "type"), "coherent");
	assert_string_equal(script_combo_value(s, 4, "n"), "2");
	assert_null(script_combo_value(s, 4, "m"));
	assert_null(script_combo_value(s, 6, "n"));
	/* A short buffer: cut, terminated, full length returned. */
	assert_int_equal(script_combo_name(s, 0, name, 8), strlen(names[0]));
	assert_string_equal(name, "t.dmm[t");
	assert_int_equal(script_combo_name(s, 0, NULL, 0), strlen(names[0]));
	assert_int_equal(script_expand(s, 6, &l, &d), -EINVAL);
	assert_non_null(strstr(d.text, "combination 6 out of range"));
	script_free(s);
	assert_string_equal(PATH, "t.dmm");
}

static void test_variables_inside_tokens(void **state)
{
	struct fx f;
	const struct step *st;

	(void)state;
	/* The command word, the process prefix and expectations may vary. */
	fx_load(&f, "variant who main c\nvariant op read migrate-to-sys\n"
		    "$who: gpu $op A${op}_$who[1] -> cpages=1\n", 3);
	st = f.l.steps[0];
	assert_string_equal(st->text, "c: gpu migrate-to-sys Amigrate-to-sys_c[1] -> cpages=1");
	assert_string_equal(st->proc, "c");
	assert_int_equal(st->kind, STEP_DEV_MIGRATE_TO_SYS);
	assert_string_equal(st->range.region, "Amigrate-to-sys_c");
	assert_int_equal(st->col, 7);
	fx_free(&f);
	/* $n followed by letters is a longer name: ${n} ends it. */
	parse_error("variant n 1\nmap A$nx 4", 2, 6, "undefined variable $nx");
	fx_load(&f, "variant n 1\nmap A${n}x 4", 0);
	assert_string_equal(f.l.steps[0]->u.map.region, "A1x");
	fx_free(&f);
}

static void test_variant_if(void **state)
{
	static const char text[] = "variant t private coherent\n"
				   "variant f no yes\n"
				   "if t=coherent: map C 1\n"
				   "if t!=coherent: map P 1\n"
				   "if t=private: if f=yes: fork child\n"
				   "if f=yes: child: exit\n"
				   "map A 1\n";
	struct script *s = parse(text);
	struct step_list l;
	struct diag d;

	(void)state;
	assert_int_equal(script_expand(s, 1, &l, &d), 0); /* private, yes */
	assert_int_equal(l.n, 4);
	assert_string_equal(l.steps[0]->u.map.region, "P");
	assert_int_equal(l.steps[1]->kind, STEP_FORK);
	assert_int_equal(l.steps[1]->col, 25);
	assert_string_equal(l.steps[1]->text, "if t=private: if f=yes: fork child");
	assert_string_equal(l.steps[2]->proc, "child");
	step_list_free(&l);
	assert_int_equal(script_expand(s, 2, &l, &d), 0); /* coherent, no */
	assert_int_equal(l.n, 2);
	assert_string_equal(l.steps[0]->u.map.region, "C");
	step_list_free(&l);
	script_free(s);
}

static void test_validation_covers_every_combination(void **state)
{
	struct fx f;

	(void)state;
	/* Reported at parse time, with the value that breaks the line. */
	parse_error("variant n 4 x\nmap A $n", 2, 7, "expected a page count, found 'x' (with n=x)");
	parse_error("variant op read frob\ngpu $op A", 2, 1, "unknown command 'gpu' (with op=frob)");
	parse_error("variant a 1 2\nvariant b 3 x\nmap A$a $b", 3, 9,
		    "found 'x' (with a=1, b=x)");
	/* A combination the line's condition rules out is not checked. */
	fx_load(&f, "variant n 4 x\nif n=4: map A $n\nif n!=4: map B 1", 1);
	assert_string_equal(f.l.steps[0]->u.map.region, "B");
	fx_free(&f);
	/* A structure word may not come from a variable. */
	parse_error("variant w repeat check\n$w 2", 2, 1, "'repeat' cannot come from a variable (with w=repeat)");
	parse_error("variant w system\n$w pages=1", 2, 1, "'system' cannot come from a variable");
	/* together may: it is an ordinary step. */
	fx_load(&f, "variant w together\n$w check || exit", 0);
	assert_int_equal(f.l.steps[0]->kind, STEP_TOGETHER);
	fx_free(&f);
}

static void test_variant_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "variant", 1, 8, "expected a variant name, found end of line" },
		{ "variant a", 1, 10, "expected a value of variant 'a', found end of line" },
		{ "variant 1a x", 1, 9, "expected a variant name (letters, digits, _), found '1a'" },
		{ "variant a-b x", 1, 9, "expected a variant name" },
		{ "variant $a x", 1, 9, "expected a variant name" },
		{ "variant a x $y", 1, 13, "a variant value cannot use a variable, found '$y'" },
		{ "variant a x y x", 1, 15, "duplicate value 'x' of variant 'a'" },
		{ "variant a x\nvariant a y", 2, 9, "variant 'a' is already defined at line 1" },
		{ "repeat 2\nvariant a x\nend", 2, 1, "'variant' must be at the top level, not inside 'repeat'" },
		{ "map A $x", 1, 7, "undefined variable $x (not a variant declared above, nor the variable of an enclosing repeat)" },
		{ "map A$x 4\n\n# variant x\nvariant x 1", 1, 6, "variable $x is used before its 'variant' line (line 4)" },
		{ "map A 4 $", 1, 9, "expected a variable name after '$', found '$'" },
		{ "map A 4x$1", 1, 9, "expected a variable name after '$', found '$1'" },
		{ "map A ${n", 1, 7, "expected a variable name after '$', found '${n'" },
		{ "map A ${}", 1, 7, "expected a variable name after '$'" },
		{ "variant n 1\nmap A ${n-1}", 2, 7, "expected a variable name after '$'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_if_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "if", 1, 3, "expected NAME=VALUE: after 'if', found end of line" },
		{ "variant a 1\nif a=1:", 2, 8, "expected a step after the condition, found end of line" },
		{ "variant a 1\nif a=1 check", 2, 4, "expected NAME=VALUE: or NAME!=VALUE: after 'if', found 'a=1'" },
		{ "variant a 1\nif a: check", 2, 4, "expected NAME=VALUE: or NAME!=VALUE:" },
		{ "variant a 1\nif a=: check", 2, 4, "expected NAME=VALUE: or NAME!=VALUE:" },
		{ "variant a 1\nif =1: check", 2, 4, "expected a variant name in 'if', found ''" },
		{ "variant a 1\nif b=1: check", 2, 4, "'if' on an unknown variant 'b'" },
		{ "if b=1: check\nvariant b 1", 1, 4, "variant 'b' is used before its 'variant' line (line 2)" },
		{ "variant a 1 2\nif a=3: check", 2, 4, "variant 'a' has no value '3'" },
		{ "variant a 1 2\nif a!=3: check", 2, 4, "variant 'a' has no value '3'" },
		{ "variant a 1\nif a=$a: check", 2, 4, "expected NAME=VALUE: or NAME!=VALUE:" },
		{ "repeat 2 as c\nif c=1: check\nend", 2, 4, "'if' on an unknown variant 'c'" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_variant_limits(void **state)
{
	char text[512] = "";

	(void)state;
	/* 2^16 combinations are fine, one more doubling is not. */
	for (int i = 0; i < 17; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "variant v%d a b\n", i);
	parse_error(text, 17, 1, "too many variant combinations (more than 65536)");
	text[strlen(text) - strlen("variant v16 a b\n")] = '\0';
	script_free(parse(text));
}

/* Limits that keep substitution and its checks linear in the file size. */
static void test_variable_size_limits(void **state)
{
	size_t n = 300 * 16 + 4 * 1100 + 1024 * 1024 + 64;
	char *text = malloc(n);
	size_t o = 0;

	(void)state;
	if (!text)
		abort();
	for (int i = 0; i < SCRIPT_MAX_VARIANTS + 1; i++)
		o += (size_t)sprintf(text + o, "variant v%d x\n", i);
	parse_error(text, 257, 1, "too many variant lines (more than 256)");
	o = (size_t)sprintf(text, "variant v");
	for (int i = 0; i < SCRIPT_MAX_VALUES + 1; i++)
		o += (size_t)sprintf(text + o, " %d", i);
	parse_error(text, 1, 4021, /* the column of value 1024 */
		    "too many values of variant 'v' (more than 1024)");
	memset(text, 'y', 300);
	memcpy(text, "variant v ", 10);
	text[300] = '\0';
	parse_error(text, 1, 11, "variant value too long (more than 256 bytes)");
	/* 256-byte values, 4200 references: the line would grow by over 1 MiB. */
	memset(text, 'z', 266);
	memcpy(text, "variant v ", 10);
	o = 266;
	o += (size_t)sprintf(text + o, "\nmap A ");
	for (int i = 0; i < 4200; i++)
		o += (size_t)sprintf(text + o, "$v");
	text[o] = '\0';
	parse_error(text, 2, 7, "line too long after substitution (it grows by more than 1048576 bytes)");
	free(text);
}

/* A line of 200000 data[...] items: checking for duplicates stays linear. */
static void test_many_expectation_items(void **state)
{
	size_t n = 200000, o;
	char *text = malloc(n * 16 + 64);
	struct fx f;

	(void)state;
	if (!text)
		abort();
	o = (size_t)sprintf(text, "gpu read A -> data=0");
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(text + o, " data[%zu]=i", i % 1000);
	assert_int_equal(one(&f, text)->expect.nitems, n + 1);
	fx_free(&f);
	free(text);
}

/* ------------------------------------------------------------------------ */
/* repeat                                                                    */

static void test_repeat_nesting(void **state)
{
	static const char text[] = "map Z 1\n"
				   "repeat 2 as a\n"
				   "  repeat 3 as b\n"
				   "    store A$a+0x${b}0 $b\n"
				   "  end\n"
				   "  repeat $a\n"
				   "    check\n"
				   "  end\n"
				   "end\n"
				   "repeat 0\n"
				   "  exit\n"
				   "end\n"
				   "munmap Z\n";
	struct fx f;

	(void)state;
	fx_load(&f, text, 0);
	/* map, (3 stores + a checks) for a = 0, 1, munmap */
	assert_int_equal(f.l.n, 1 + 3 + 3 + 1 + 1);
	assert_string_equal(f.l.steps[1]->text, "store A0+0x00 0");
	assert_int_equal(f.l.steps[1]->line, 4);
	assert_int_equal(f.l.steps[1]->col, 5);
	assert_string_equal(f.l.steps[3]->text, "store A0+0x20 2");
	assert_int_equal(f.l.steps[3]->u.word.addr.offset, 32);
	assert_string_equal(f.l.steps[4]->text, "store A1+0x00 0");
	assert_int_equal(f.l.steps[7]->kind, STEP_CHECK);
	assert_int_equal(f.l.steps[8]->kind, STEP_MUNMAP);
	fx_free(&f);
}

static void test_repeat_count_from_variables(void **state)
{
	static const char text[] = "variant n 0 2\n"
				   "repeat $n as i\n"
				   "  repeat $i as j\n" /* depends on the outer loop */
				   "    map A$i$j 1\n"
				   "  end\n"
				   "end\n";
	struct fx f;

	(void)state;
	fx_load(&f, text, 0);
	assert_int_equal(f.l.n, 0);
	fx_free(&f);
	fx_load(&f, text, 1);
	assert_int_equal(f.l.n, 1);
	assert_string_equal(f.l.steps[0]->u.map.region, "A10");
	fx_free(&f);
	parse_error("variant n 1 x\nrepeat $n\nend", 2, 8, "expected a repeat count, found 'x' (with n=x)");
}

static void test_repeat_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "repeat", 1, 7, "expected a repeat count, found end of line" },
		{ "repeat x\nend", 1, 8, "expected a repeat count, found 'x'" },
		{ "repeat -1\nend", 1, 8, "expected a repeat count, found '-1'" },
		{ "repeat 10000001\nend", 1, 8, "number out of range: '10000001' (a repeat count is at most 10000000)" },
		{ "repeat 2 for c\nend", 1, 10, "expected 'as' or end of line, found 'for'" },
		{ "repeat 2 as\nend", 1, 12, "expected a loop variable name, found end of line" },
		{ "repeat 2 as 1c\nend", 1, 13, "expected a loop variable name (letters, digits, _), found '1c'" },
		{ "repeat 2 as c d\nend", 1, 15, "unexpected 'd' after the loop variable" },
		{ "variant c 1\nrepeat 2 as c\nend", 2, 13, "loop variable 'c' would hide the variant of line 1" },
		{ "repeat 2 as c\n repeat 2 as c\n end\nend", 2, 14, "loop variable 'c' is already used by the repeat of line 1" },
		{ "end", 1, 1, "'end' without 'repeat'" },
		{ "repeat 1\nend\n  end", 3, 3, "'end' without 'repeat'" },
		{ "repeat 1\nend x", 2, 5, "unexpected 'x' after 'end'" },
		{ "map A 1\n  repeat 3\n    check\n", 2, 3, "'repeat' without 'end'" },
		{ "repeat 1\n repeat 2\n end\n", 1, 1, "'repeat' without 'end'" },
		{ "repeat 2 as c\nend\nmap A$c 1", 3, 6, "undefined variable $c" },
		{ "repeat $c as c\nend", 1, 8, "undefined variable $c" },
	};

	(void)state;
	PARSE_ERRORS(cases);
}

static void test_repeat_depth_limit(void **state)
{
	char text[2048] = "";

	(void)state;
	for (int i = 0; i < SCRIPT_MAX_DEPTH; i++)
		strcat(text, "repeat 1\n");
	strcat(text, "check\n");
	for (int i = 0; i < SCRIPT_MAX_DEPTH; i++)
		strcat(text, "end\n");
	script_free(parse(text));
	memmove(text + 9, text, strlen(text) + 1);
	memcpy(text, "repeat 1\n", 9);
	strcat(text, "end\n");
	parse_error(text, 65, 1, "repeat blocks nested too deeply (more than 64 levels)");
}

static void test_repeat_step_limit(void **state)
{
	struct script *s;
	struct script_iter *it;
	struct diag d;

	(void)state;
	/* 10^7 iterations of nothing and 5 * 10^6 steps: within the limit. */
	s = parse("repeat 9999999\nend\n");
	assert_int_equal(script_iter_start(s, 0, &it, &d), 0);
	script_iter_free(it);
	script_free(s);
	s = parse("repeat 3\nrepeat 4999999\ncheck\nend\nend");
	assert_int_equal(script_iter_start(s, 0, &it, &d), -EINVAL);
	assert_null(it);
	check_diag("3 x 5M", &d, 1, 1, "too many steps: the script expands to more than 10000000");
	script_free(s);
	/* The limit is met before a step runs, whatever the nesting. */
	expand_error("repeat 10000\n repeat 10000\n  check\n end\nend", 1, 1, "too many steps");
	expand_error("check\nrepeat 10000000\nend", 2, 1, "too many steps");
	expand_error("repeat 3 as a\n repeat ${a}00000000\n end\nend", 2, 9,
		     "number out of range: '100000000' (a repeat count is at most 10000000) (with a=1)");
	expand_error("repeat 100000 as a\n repeat $a\n end\nend", 1, 1, "too many steps");
}

static void test_errors_of_loop_values(void **state)
{
	struct script *s;
	struct script_iter *it;
	const struct step *st;
	struct diag d;

	(void)state;
	/* Valid for c = 0, which parsing checks; c = 1 is not. */
	s = parse("map A 2\nrepeat 2 as c\n  write A[$c..0] 1\nend\n");
	assert_int_equal(script_iter_start(s, 0, &it, &d), 0);
	assert_int_equal(script_iter_next(it, &st, &d), 1);
	assert_int_equal(script_iter_next(it, &st, &d), 1);
	assert_string_equal(st->text, "write A[0..0] 1");
	assert_int_equal(script_iter_next(it, &st, &d), -EINVAL);
	assert_null(st);
	check_diag("loop value", &d, 3, 9,
		   "bad range 'A[1..0]': last page 0 is before first page 1 (with c=1)");
	/* The error sticks. */
	assert_int_equal(script_iter_next(it, &st, &d), -EINVAL);
	script_iter_free(it);
	assert_int_equal(script_check(s, NULL), -EINVAL);
	script_free(s);
}

static void test_iterator_streams(void **state)
{
	struct script *s = parse("variant n 1 2\nrepeat 3 as c\n map A$c$n 1\n check\nend\n");
	struct script_iter *it;
	const struct step *st;
	char want[32];
	int rc, k = 0;

	(void)state;
	assert_int_equal(script_check(s, NULL), 0);
	assert_int_equal(script_iter_start(s, 1, &it, NULL), 0);
	while ((rc = script_iter_next(it, &st, NULL)) > 0) {
		if (k % 2 == 0) {
			snprintf(want, sizeof(want), "A%d2", k / 2);
			assert_string_equal(st->u.map.region, want);
		} else {
			assert_int_equal(st->kind, STEP_CHECK);
		}
		k++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(k, 6);
	assert_int_equal(script_iter_next(it, &st, NULL), 0); /* stays at the end */
	script_iter_free(it);
	script_free(s);
}

/* ------------------------------------------------------------------------ */
/* Sample scripts                                                            */

static struct script *load_sample(const char *name)
{
	char path[512];
	struct script *s = NULL;
	struct diag d;

	snprintf(path, sizeof(path), "%s/%s", TEST_DMM_DIR, name);
	if (script_load(path, &s, &d))
		fail_msg("%s: %s", path, d.text);
	if (script_check(s, &d))
		fail_msg("%s: %s", path, d.text);
	return s;
}

static void test_spec_example(void **state)
{
	struct script *s = load_sample("spec_example.dmm");
	struct step_list l;
	const struct step *st;

	(void)state;
	assert_int_equal(script_combo_count(s), 1);
	assert_int_equal(script_expand(s, 0, &l, NULL), 0);
	assert_int_equal(l.n, 13);
	st = l.steps[3];
	assert_int_equal(st->kind, STEP_DEV_MIGRATE_TO_DEV);
	assert_int_equal(st->line, 6);
	assert_string_equal(st->text, "gpu migrate-to-dev A -> cpages=4 data=i");
	st = l.steps[6];
	assert_int_equal(st->kind, STEP_WHERE);
	assert_string_equal(st->text, "where A -> gpu*4");
	st = l.steps[8];
	assert_int_equal(item(st, 0)->u.where.nruns, 4);
	st = l.steps[9];
	assert_string_equal(st->proc, "child");
	assert_int_equal(st->line, 12);
	assert_int_equal(l.steps[12]->kind, STEP_CHECK);
	step_list_free(&l);
	script_free(s);
}

static void test_sample_scripts(void **state)
{
	static const struct {
		const char *name;
		size_t combos, steps0;
	} samples[] = {
		{ "device_commands.dmm", 1, 21 },
		{ "memory.dmm", 1, 27 },
		{ "variants.dmm", 4, 7 },
		{ "repeat.dmm", 2, 1 + 2 * 6 + 2 * 2 + 3 },
		{ "pins.dmm", 2, 22 },
	};
	struct step_list l;

	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct script *s = load_sample(samples[i].name);

		assert_int_equal(script_combo_count(s), samples[i].combos);
		assert_int_equal(script_expand(s, 0, &l, NULL), 0);
		if (l.n != samples[i].steps0)
			fail_msg("%s: %zu steps", samples[i].name, l.n);
		step_list_free(&l);
		script_free(s);
	}
}

static void test_load_errors(void **state)
{
	struct script *s = (struct script *)1;
	struct diag d;

	(void)state;
	assert_int_equal(script_load(TEST_DMM_DIR "/no-such-file.dmm", &s, &d), -ENOENT);
	assert_null(s);
	assert_int_equal(d.line, 0);
	assert_non_null(strstr(d.text, "no-such-file.dmm: cannot read:"));
	assert_int_equal(script_load(TEST_DMM_DIR, &s, &d), -EISDIR);
}

/* ------------------------------------------------------------------------ */
/* Robustness                                                                */

static int run_everything(const char *text, size_t len)
{
	struct script *s = NULL;
	struct step_list l;
	struct diag d;
	int rc = script_parse(PATH, text, len, &s, &d);

	if (rc)
		return rc;
	for (size_t c = 0; !rc && c < script_combo_count(s); c++) {
		rc = script_expand(s, c, &l, &d);
		if (!rc)
			step_list_free(&l);
	}
	script_free(s);
	return rc;
}

static const char rich[] = "variant t private coherent\n"
			   "variant w read write\n"
			   "system pages=64\n"
			   "device gpu $t pages=8 cow=system\n"
			   "file f 2 i\n"
			   "map A 4 file:f+1 private r align=2\n"
			   "repeat 2 as c\n"
			   "  map B$c 2 shared\n"
			   "  if w=write: gpu $w B$c i -> cpages=2 faults=1\n"
			   "  if w=read: gpu $w B$c -> data[1..]=i+$c data=0\n"
			   "end\n"
			   "gpu snapshot A -> snap=00*2,0x42*2\n"
			   "together where A -> sys*4 || c: gup A pin as H -> pinned=4 EBUSY\n"
			   "stat A[1] -> refs=3 maps=1\n";

/* Every allocation of parse and expansion fails once in turn: -ENOMEM,
 * "out of memory", no leak (the sanitizer build checks that). */
static void test_every_allocation_failure(void **state)
{
	int rc = -ENOMEM;
	unsigned long n;

	(void)state;
	for (n = 1; rc == -ENOMEM; n++) {
		script_fail_alloc(n);
		rc = run_everything(rich, strlen(rich));
		script_fail_alloc(0);
		if (rc != 0 && rc != -ENOMEM)
			fail_msg("allocation %lu: %d", n, rc);
	}
	assert_true(n > 20);
	assert_int_equal(rc, 0);
	/* And an error path: the failure at each allocation before the error. */
	for (n = 1, rc = -ENOMEM; rc == -ENOMEM; n++) {
		script_fail_alloc(n);
		rc = run_everything("map A 4\nrepeat 2 as c\n map A$c 1\nend\nmap B x\n", 49);
		script_fail_alloc(0);
	}
	assert_int_equal(rc, -EINVAL);
}

static void test_out_of_memory_message(void **state)
{
	struct script *s = NULL;
	struct diag d;

	(void)state;
	script_fail_alloc(1);
	assert_int_equal(script_parse(PATH, "check", 5, &s, &d), -ENOMEM);
	script_fail_alloc(0);
	assert_null(s);
	assert_string_equal(d.text, PATH ": out of memory");
}

/* Random lines from the language's own vocabulary, mutated: nothing may
 * crash, leak or hang, and every failure is a positioned syntax error. */
static void test_random_scripts(void **state)
{
	static const char *const words[] = {
		"map", "A", "A[1..2]", "4", "->", "ok", "i+1", "gpu", "read", "write", "repeat",
		"end", "variant", "v", "$v", "${v}", "if", "v=1:", "together", "||", "c:", "snap=42*2",
		"data[1]=i", "cpages=1", "EFAULT", "-1", "0x", "99999999999999999999", "#", "\t",
		"file:f+1", "as", "H", "device", "private", "where", "gpu*2,sys", "$", "\n", "\n",
		"\n", "1", "x", "pin", "to=A+1", "system", "pages=4", "byte:0x11", "A+4", "store",
		"same", "c:A[1]", "yes,no*2", "writable=1", "fork", "readpin", "writepin",
	};
	const char *env = getenv("TEST_PARSE_SEED");
	unsigned int seed = env ? (unsigned int)strtoul(env, NULL, 0) : 20240601u;
	char text[512];

	(void)state;
	print_message("random scripts: TEST_PARSE_SEED=%u\n", seed);
	srand(seed);
	for (int round = 0; round < 20000; round++) {
		size_t o = 0;
		int n = rand() % 40;
		struct script *s = NULL;
		struct diag d;
		int rc;

		for (int i = 0; i < n && o < sizeof(text) - 32; i++) {
			const char *w = words[rand() % (int)(sizeof(words) / sizeof(words[0]))];

			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s", w,
					      rand() % 4 ? " " : "");
		}
		if (o && rand() % 8 == 0)
			text[rand() % (int)o] = (char)(rand() % 256);
		rc = script_parse(PATH, text, o, &s, &d);
		if (rc && (rc != -EINVAL || !d.line || !d.col))
			fail_msg("seed %u round %d: %d %s", seed, round, rc, d.text);
		if (!rc)
			rc = run_everything(text, o);
		script_free(s);
		assert_true(rc == 0 || rc == -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_file_has_no_steps),
		cmocka_unit_test(test_comments_blanks_tabs_crlf),
		cmocka_unit_test(test_utf8_in_comments_only),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_file_too_large),
		cmocka_unit_test(test_very_long_lines),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_number_errors),
		cmocka_unit_test(test_word_values),
		cmocka_unit_test(test_pattern_forms),
		cmocka_unit_test(test_pattern_errors),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_range_errors),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_address_errors),
		cmocka_unit_test(test_system),
		cmocka_unit_test(test_system_errors),
		cmocka_unit_test(test_device),
		cmocka_unit_test(test_device_errors),
		cmocka_unit_test(test_processes),
		cmocka_unit_test(test_process_errors),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_map_errors),
		cmocka_unit_test(test_munmap_mprotect_madvise),
		cmocka_unit_test(test_mremap),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_cpu_access),
		cmocka_unit_test(test_cpu_access_errors),
		cmocka_unit_test(test_device_commands),
		cmocka_unit_test(test_device_command_args),
		cmocka_unit_test(test_data_expectations),
		cmocka_unit_test(test_snap_expectations),
		cmocka_unit_test(test_device_command_errors),
		cmocka_unit_test(test_gup_unpin),
		cmocka_unit_test(test_readpin_writepin),
		cmocka_unit_test(test_where),
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_stat_check_show_expect_freed),
		cmocka_unit_test(test_expect_status),
		cmocka_unit_test(test_expect_errors),
		cmocka_unit_test(test_together),
		cmocka_unit_test(test_together_errors),
		cmocka_unit_test(test_unknown_commands_and_misplaced_words),
		cmocka_unit_test(test_variant_combinations),
		cmocka_unit_test(test_variables_inside_tokens),
		cmocka_unit_test(test_variant_if),
		cmocka_unit_test(test_validation_covers_every_combination),
		cmocka_unit_test(test_variant_errors),
		cmocka_unit_test(test_if_errors),
		cmocka_unit_test(test_variant_limits),
		cmocka_unit_test(test_variable_size_limits),
		cmocka_unit_test(test_many_expectation_items),
		cmocka_unit_test(test_repeat_nesting),
		cmocka_unit_test(test_repeat_count_from_variables),
		cmocka_unit_test(test_repeat_errors),
		cmocka_unit_test(test_repeat_depth_limit),
		cmocka_unit_test(test_repeat_step_limit),
		cmocka_unit_test(test_errors_of_loop_values),
		cmocka_unit_test(test_iterator_streams),
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_sample_scripts),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_every_allocation_failure),
		cmocka_unit_test(test_out_of_memory_message),
		cmocka_unit_test(test_random_scripts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
