/* SPDX-License-Identifier: MIT */
/*
 * One argument at a time: names, numbers, word values, patterns, ranges,
 * addresses and the lists of where and snap=. Each function takes the
 * token (for the column and the message) and the part of it to read (an
 * argument may be the tail of a token, as in pages=4 or file:f+2), and
 * reports what it expected and what it found. Errors point at the token.
 */
#include <errno.h>
#include <string.h>

#include "script_int.h"

/* Names of regions, processes, devices, files and handles. '+', '[', ',',
 * '*', '=', ':' and '$' are excluded: they end a name inside a token. */
bool is_name(const char *s, size_t len)
{
	if (!len || !is_ident(s, 1))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];

		if (!is_ident(&c, 1) && !(c >= '0' && c <= '9') && c != '-' && c != '.')
			return false;
	}
	return true;
}

int arg_name(struct parse_ctx *p, const struct token *t, const char *what, const char **out)
{
	if (!is_name(t->s, t->len))
		return perr(p, t->col, "expected %s, found %s", what, Q(t->s, t->len));
	*out = t->s;
	return 0;
}

/* A copy of the name s[0..len) in the step's arena, checked. */
static int sub_name(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
		    const char *what, const char **out)
{
	if (!is_name(s, len))
		return perr(p, t->col, "expected %s, found %s", what, Q(s, len));
	*out = arena_strndup(p->arena, s, len);
	return *out ? 0 : poom(p);
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                   */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decimal, or hex after 0x / 0X; digits only, no sign. */
int lex_num(const char *s, size_t len, uint64_t *out)
{
	unsigned int base = 10;
	uint64_t v = 0;
	bool range = false;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (!len)
		return NUM_SYNTAX;
	for (size_t i = 0; i < len; i++) {
		int d = hex_digit(s[i]);

		if (d < 0 || (unsigned int)d >= base)
			return NUM_SYNTAX;
		if (v > (UINT64_MAX - (unsigned int)d) / base)
			range = true;
		v = v * base + (unsigned int)d;
	}
	*out = v;
	return range ? NUM_RANGE : NUM_OK;
}

static bool starts_numeric(const char *s, size_t len)
{
	if (len && s[0] == '-') {
		s++;
		len--;
	}
	return len && s[0] >= '0' && s[0] <= '9';
}

int arg_u64(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	    const char *what, uint64_t max, uint64_t *out)
{
	int rc = lex_num(s, len, out);

	if (rc == NUM_SYNTAX)
		return perr(p, t->col, "expected %s, found %s", what, Q(s, len));
	if (rc == NUM_RANGE || *out > max)
		return perr(p, t->col, "number out of range: %s (%s is at most %llu)", Q(s, len),
			    what, (unsigned long long)max);
	return 0;
}

/* A 32-bit word value: -2147483648 ... 4294967295, negatives decimal only. */
int arg_word(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	     const char *what, uint32_t *out)
{
	bool neg = len && s[0] == '-';
	uint64_t v;
	int rc;

	rc = lex_num(s + neg, len - neg, &v);
	if (rc == NUM_SYNTAX || (neg && len > 2 && (s[2] == 'x' || s[2] == 'X')))
		return perr(p, t->col, "expected %s, found %s", what, Q(s, len));
	if (rc == NUM_RANGE || v > (neg ? 0x80000000ull : 0xffffffffull))
		return perr(p, t->col,
			    "number out of range: %s (a word is 32 bits: -2147483648 to 4294967295)",
			    Q(s, len));
	*out = neg ? (uint32_t)(0u - (uint32_t)v) : (uint32_t)v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Patterns                                                                  */

#define PATTERN_FORMS "a pattern (i, -i, i+C, i-C, -i+C, -i-C, a number or byte:0xNN)"

uint32_t pattern_word(const struct pattern *p, uint64_t k)
{
	return (uint32_t)p->mul * (uint32_t)k + p->add;
}

/* i, -i, i+C, i-C, -i+C, -i-C. false if s is not of that shape. */
static bool index_pattern(struct parse_ctx *p, const struct token *t, const char *s,
			  size_t len, struct pattern *out, int *rc)
{
	size_t o = (len && s[0] == '-') ? 1 : 0;
	uint64_t c = 0;

	if (len <= o || s[o] != 'i' || (len > o + 1 && s[o + 1] != '+' && s[o + 1] != '-'))
		return false;
	out->kind = PAT_INDEX;
	out->mul = o ? -1 : 1;
	out->add = 0;
	*rc = 0;
	if (len == o + 1)
		return true;
	*rc = arg_u64(p, t, s + o + 2, len - o - 2, "a constant C after i+ or i-", 0xffffffffu,
		      &c);
	out->add = s[o + 1] == '+' ? (uint32_t)c : (uint32_t)(0u - (uint32_t)c);
	return true;
}

int arg_pattern(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
		struct pattern *out)
{
	uint64_t b;
	int rc;

	if (index_pattern(p, t, s, len, out, &rc))
		return rc;
	if (len > 5 && !memcmp(s, "byte:", 5)) {
		if (arg_u64(p, t, s + 5, len - 5, "a byte after byte:", 0xff, &b))
			return p->err;
		out->kind = PAT_BYTE;
		out->mul = 0;
		out->add = (uint32_t)b * 0x01010101u;
		return 0;
	}
	if (!starts_numeric(s, len))
		return perr(p, t->col, "expected " PATTERN_FORMS ", found %s", Q(s, len));
	out->kind = PAT_CONST;
	out->mul = 0;
	return arg_word(p, t, s, len, PATTERN_FORMS, &out->add);
}

/* ------------------------------------------------------------------------ */
/* Ranges and addresses                                                      */

#define RANGE_FORMS "a range (R, R[a], R[a..b] or R[a..])"

int arg_span(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	     struct span *out)
{
	const char *dots = NULL;

	for (size_t i = 0; i + 1 < len && !dots; i++)
		if (s[i] == '.' && s[i + 1] == '.')
			dots = s + i;
	if (arg_u64(p, t, s, dots ? (size_t)(dots - s) : len, "a page number", SCRIPT_MAX_PAGE,
		    &out->first))
		return p->err;
	out->kind = SPAN_PAGE;
	out->last = out->first;
	if (!dots)
		return 0;
	len -= (size_t)(dots + 2 - s);
	s = dots + 2;
	out->kind = len ? SPAN_RANGE : SPAN_FROM;
	if (!len)
		return 0;
	if (arg_u64(p, t, s, len, "a page number", SCRIPT_MAX_PAGE, &out->last))
		return p->err;
	if (out->last < out->first)
		return perr(p, t->col, "bad range %s: last page %llu is before first page %llu",
			    Q(t->s, t->len), (unsigned long long)out->last,
			    (unsigned long long)out->first);
	return 0;
}

int arg_range(struct parse_ctx *p, const struct token *t, struct range *out)
{
	const char *br = memchr(t->s, '[', t->len);
	size_t nlen = br ? (size_t)(br - t->s) : t->len;

	if (!is_name(t->s, nlen))
		return perr(p, t->col, "expected " RANGE_FORMS ", found %s", Q(t->s, t->len));
	if (!br) {
		out->region = t->s;
		out->span.kind = SPAN_WHOLE;
		out->span.first = out->span.last = 0;
		return 0;
	}
	if (t->s[t->len - 1] != ']' || br + 1 == t->s + t->len - 1)
		return perr(p, t->col, "expected " RANGE_FORMS ", found %s", Q(t->s, t->len));
	if (sub_name(p, t, t->s, nlen, "a region name", &out->region))
		return p->err;
	return arg_span(p, t, br + 1, t->len - nlen - 2, &out->span);
}

int arg_addr(struct parse_ctx *p, const struct token *t, struct addr *out)
{
	const char *plus = memchr(t->s, '+', t->len);
	size_t nlen = plus ? (size_t)(plus - t->s) : t->len;

	if (!is_name(t->s, nlen))
		return perr(p, t->col, "expected an address (R+OFF), found %s", Q(t->s, t->len));
	if (sub_name(p, t, t->s, nlen, "a region name", &out->region))
		return p->err;
	out->offset = 0;
	if (plus && arg_u64(p, t, plus + 1, t->len - nlen - 1, "a byte offset", UINT64_MAX,
			    &out->offset))
		return p->err;
	if (out->offset % 4)
		return perr(p, t->col, "offset %s is not a multiple of 4 (a word address)",
			    Q(plus + 1, t->len - nlen - 1));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Lists: B,B*N,..., L,L*N,... and yes,no*N,...                              */

/* The next comma-separated item of s[*pos..len), split at '*' into the
 * item and its repeat count (1 without '*'). */
static int list_item(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
		     size_t *pos, const char **item, size_t *ilen, uint64_t *count)
{
	const char *start = s + *pos;
	const char *comma = memchr(start, ',', len - *pos);
	size_t n = comma ? (size_t)(comma - start) : len - *pos;
	const char *star = memchr(start, '*', n);

	*pos += n + (comma ? 1 : 0);
	*item = start;
	*ilen = star ? (size_t)(star - start) : n;
	*count = 1;
	if (!star)
		return 0;
	if (arg_u64(p, t, star + 1, n - *ilen - 1, "a repeat count after '*'", SCRIPT_MAX_PAGE,
		    count))
		return p->err;
	if (!*count)
		return perr(p, t->col, "a repeat count after '*' must be at least 1, found %s",
			    Q(star + 1, n - *ilen - 1));
	return 0;
}

static size_t count_items(const char *s, size_t len)
{
	size_t n = 1;

	for (size_t i = 0; i < len; i++)
		n += s[i] == ',';
	return n;
}

static int add_total(struct parse_ctx *p, const struct token *t, uint64_t *total, uint64_t n)
{
	*total += n; /* both <= SCRIPT_MAX_PAGE: no overflow */
	if (*total > SCRIPT_MAX_PAGE)
		return perr(p, t->col, "number out of range: the list %s is longer than %llu pages",
			    Q(t->s, t->len), (unsigned long long)SCRIPT_MAX_PAGE);
	return 0;
}

static int snap_byte(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
		     uint8_t *out)
{
	if (len == 4 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (len != 2 || hex_digit(s[0]) < 0 || hex_digit(s[1]) < 0)
		return perr(p, t->col, "expected a snapshot byte (two hex digits, as 42 or 0x42), found %s",
			    Q(s, len));
	*out = (uint8_t)(hex_digit(s[0]) * 16 + hex_digit(s[1]));
	return 0;
}

int arg_snap(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	     struct expect_item *out)
{
	size_t n = count_items(s, len), pos = 0, ilen, i;
	struct snap_run *runs = arena_alloc(p->arena, n * sizeof(*runs));
	const char *item;

	if (!runs)
		return poom(p);
	out->u.snap.total = 0;
	for (i = 0; i < n; i++) {
		if (list_item(p, t, s, len, &pos, &item, &ilen, &runs[i].count) ||
		    snap_byte(p, t, item, ilen, &runs[i].byte) ||
		    add_total(p, t, &out->u.snap.total, runs[i].count))
			return p->err;
	}
	out->u.snap.runs = runs;
	out->u.snap.nruns = n;
	return 0;
}

static const char *const loc_words[] = {
	[LOC_NONE] = "none", [LOC_ZERO] = "zero", [LOC_SYS] = "sys",
	[LOC_DEVICE] = NULL, [LOC_EXCL] = "excl", [LOC_MIGRATING] = "migrating",
	[LOC_THP] = "thp", [LOC_HZERO] = "hzero", [LOC_PMD] = "pmd", [LOC_PTE] = "pte",
};

static int where_loc(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
		     struct loc_run *out)
{
	for (size_t k = 0; k < ARRAY_SIZE(loc_words); k++) {
		if (loc_words[k] && strlen(loc_words[k]) == len && !memcmp(loc_words[k], s, len)) {
			out->kind = (enum loc_kind)k;
			return 0;
		}
	}
	if (!is_name(s, len) || is_reserved_device_name(s, len))
		return perr(p, t->col,
			    "expected a location (none, zero, sys, thp, hzero, excl, migrating, a device; pmd, pte), found %s",
			    Q(s, len));
	out->kind = LOC_DEVICE;
	out->dev = arena_strndup(p->arena, s, len);
	return out->dev ? 0 : poom(p);
}

int arg_where(struct parse_ctx *p, const struct token *t, struct expect_item *out)
{
	size_t n = count_items(t->s, t->len), pos = 0, ilen, i;
	struct loc_run *runs = arena_alloc(p->arena, n * sizeof(*runs));
	const char *item;

	if (!runs)
		return poom(p);
	out->u.where.total = 0;
	for (i = 0; i < n; i++) {
		if (list_item(p, t, t->s, t->len, &pos, &item, &ilen, &runs[i].count) ||
		    where_loc(p, t, item, ilen, &runs[i]) ||
		    add_total(p, t, &out->u.where.total, runs[i].count))
			return p->err;
	}
	out->u.where.runs = runs;
	out->u.where.nruns = n;
	return 0;
}

int arg_same(struct parse_ctx *p, const struct token *t, struct expect_item *out)
{
	size_t n = count_items(t->s, t->len), pos = 0, ilen, i;
	struct same_run *runs = arena_alloc(p->arena, n * sizeof(*runs));
	const char *item;

	if (!runs)
		return poom(p);
	out->u.same.total = 0;
	for (i = 0; i < n; i++) {
		if (list_item(p, t, t->s, t->len, &pos, &item, &ilen, &runs[i].count))
			return p->err;
		if (ilen == 3 && !memcmp(item, "yes", 3))
			runs[i].same = true;
		else if (!(ilen == 2 && !memcmp(item, "no", 2)))
			return perr(p, t->col, "expected yes or no, found %s", Q(item, ilen));
		if (add_total(p, t, &out->u.same.total, runs[i].count))
			return p->err;
	}
	out->u.same.runs = runs;
	out->u.same.nruns = n;
	return 0;
}

bool is_reserved_device_name(const char *s, size_t len)
{
	static const char *const words[] = { "ok", "any", "none", "zero", "sys", "excl",
					     "migrating", "if", "thp", "hzero", "pmd", "pte" };

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strlen(words[i]) == len && !memcmp(words[i], s, len))
			return true;
	return looks_like_errname(s, len) || is_command_word(s, len) || is_device_verb(s, len);
}
