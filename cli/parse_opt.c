/* SPDX-License-Identifier: MIT */
/*
 * The unordered words of a step: the option words after a command's
 * positional arguments (write, pin, align=4, file:f, as H, ...) and the
 * expectation items after "->" (ok, any, ERRNAME, KEY=VALUE, a bare
 * pattern, value or location list). Both may come in any order; each word
 * may come once (data[a..b]= may repeat), and words of one group exclude
 * each other. Commands describe theirs with tables (parse.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "script_int.h"

int cur_missing(struct cursor *c, const char *what)
{
	if (c->stop)
		return perr(c->p, c->stop->col, "expected %s, found %s", what,
			    Q(c->stop->s, c->stop->len));
	return perr(c->p, c->eol_col, "expected %s, found end of line", what);
}

const struct token *cur_take(struct cursor *c, const char *what)
{
	if (c->pos < c->n)
		return &c->t[c->pos++];
	cur_missing(c, what);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

/* "a, b or c" of the spec's display forms, for messages. */
static void opt_list(const struct opt_spec *spec, size_t n, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s",
				      i == 0 ? "" : i + 1 == n ? " or " : ", ", spec[i].show);
}

static bool opt_match(const struct opt_spec *sp, const struct token *t, size_t *vstart)
{
	size_t wl = strlen(sp->word);

	switch (sp->form) {
	case OPT_WORD:
	case OPT_NEXT:
		*vstart = t->len;
		return tok_is(t, sp->word);
	case OPT_KEY:
	case OPT_PREFIX:
		*vstart = wl + 1;
		return t->len > wl && !memcmp(t->s, sp->word, wl) &&
		       t->s[wl] == (sp->form == OPT_KEY ? '=' : ':');
	}
	return false;
}

/* Record option i of token t; errors for a repeat or a group conflict. */
static int opt_take(struct cursor *c, const struct opt_spec *spec, size_t n, struct opts *o,
		    size_t i, const struct token *t)
{
	if (o->tok[i])
		return perr(c->p, t->col, "duplicate %s (already given at column %u)",
			    Q(t->s, t->len), o->tok[i]->col);
	for (size_t j = 0; j < n; j++)
		if (o->tok[j] && spec[j].group && spec[j].group == spec[i].group)
			return perr(c->p, t->col, "%s conflicts with %s", Q(t->s, t->len),
				    Q(o->tok[j]->s, o->tok[j]->len));
	o->tok[i] = t;
	o->vtok[i] = t;
	return 0;
}

int opts_parse(struct cursor *c, const struct opt_spec *spec, size_t n, struct opts *o)
{
	char list[256];

	memset(o, 0, sizeof(*o));
	while (c->pos < c->n) {
		const struct token *t = &c->t[c->pos++];
		size_t i, v = 0;

		for (i = 0; i < n && !opt_match(&spec[i], t, &v); i++)
			;
		if (i == n) {
			opt_list(spec, n, list, sizeof(list));
			return perr(c->p, t->col, "unexpected %s (expected %s)", Q(t->s, t->len), list);
		}
		if (opt_take(c, spec, n, o, i, t))
			return c->p->err;
		if (spec[i].form == OPT_NEXT) {
			snprintf(list, sizeof(list), "a name after '%s'", spec[i].word);
			o->vtok[i] = cur_take(c, list);
			if (!o->vtok[i])
				return c->p->err;
			v = 0;
		}
		o->val[i] = o->vtok[i]->s + v;
		o->vlen[i] = o->vtok[i]->len - v;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Expectations                                                              */

static const char *const key_words[] = {
	[EXP_CPAGES] = "cpages", [EXP_FAULTS] = "faults", [EXP_USED] = "used",
	[EXP_FREE] = "free",	 [EXP_PINNED] = "pinned", [EXP_REFS] = "refs",
	[EXP_MAPS] = "maps",	 [EXP_PINS] = "pins",	  [EXP_DATA] = "data",
	[EXP_SNAP] = "snap",	 [EXP_WRITABLE] = "writable", [EXP_ORDER] = "order",
	[EXP_FMAPS] = "fmaps",	 [EXP_PMDMAPS] = "pmdmaps", [EXP_PARTIAL] = "partial",
	[EXP_SPLIT] = "split",
};

static const char *const bare_words[] = {
	[EXP_PATTERN] = "pattern",
	[EXP_VALUE] = "value",
	[EXP_WHERE] = "location list",
	[EXP_SAME] = "yes/no list",
};

/* "ok, any, an error name, cpages=N, data=P or a pattern". */
static void expect_list(const struct expect_rules *r, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "ok, any, an error name");

	for (size_t k = 0; k < ARRAY_SIZE(key_words) && o < size; k++)
		if (r->keys & (1u << k))
			o += (size_t)snprintf(buf + o, size - o, ", %s=", key_words[k]);
	if (r->bare >= 0 && o < size)
		snprintf(buf + o, size - o, " or a %s", bare_words[r->bare]);
}

/* The items parsed so far. */
struct expect_state {
	struct expect *e;
	struct expect_item *items;
	unsigned int seen; /* 1u << kind: an item of that kind (data: data=) */
};

static int expect_status(struct cursor *c, const struct token *t, struct expect *e)
{
	if (e->status != EXPECT_SUCCESS)
		return perr(c->p, t->col, "more than one result expected: %s after '%s'",
			    Q(t->s, t->len),
			    e->status == EXPECT_OK ? "ok" :
			    e->status == EXPECT_ANY ? "any" : e->errname);
	if (tok_is(t, "ok")) {
		e->status = EXPECT_OK;
	} else if (tok_is(t, "any")) {
		e->status = EXPECT_ANY;
	} else {
		e->err = script_errno_value(t->s);
		if (!e->err)
			return perr(c->p, t->col, "unknown error name %s", Q(t->s, t->len));
		e->status = EXPECT_ERRNO;
		e->errname = t->s;
	}
	return 0;
}

/* The KEY of KEY=VALUE (data[...] is key data), or -1. */
static int key_lookup(const char *s, size_t len)
{
	if (len > 5 && !memcmp(s, "data[", 5) && s[len - 1] == ']')
		return EXP_DATA;
	for (size_t k = 0; k < ARRAY_SIZE(key_words); k++)
		if (strlen(key_words[k]) == len && !memcmp(key_words[k], s, len))
			return (int)k;
	return -1;
}

static int key_value(struct cursor *c, const struct token *t, const char *key, size_t klen,
		     struct expect_item *it)
{
	const char *v = key + klen + 1;
	size_t vlen = t->len - klen - 1;

	switch (it->kind) {
	case EXP_DATA:
		it->u.data.span.kind = SPAN_WHOLE;
		if (klen > 4 && arg_span(c->p, t, key + 5, klen - 6, &it->u.data.span))
			return c->p->err;
		return arg_pattern(c->p, t, v, vlen, &it->u.data.pat);
	case EXP_SNAP:
		return arg_snap(c->p, t, v, vlen, it);
	case EXP_WRITABLE:
	case EXP_PARTIAL:
		if (vlen != 1 || (v[0] != '0' && v[0] != '1'))
			return perr(c->p, t->col, "expected 0 or 1 after %s=, found %s", key_words[it->kind],
				    Q(v, vlen));
		it->u.num = (uint64_t)(v[0] - '0');
		return 0;
	default:
		return arg_u64(c->p, t, v, vlen, "a count", UINT64_MAX, &it->u.num);
	}
}

/* Whether an item of kind k is there already (for data: whole asks about
 * data=; data[...] items may repeat). A bit mask: O(1) per item, however
 * long the line. */
static bool has_item(const struct expect_state *x, int k, bool whole)
{
	return (x->seen & (1u << k)) && (k != EXP_DATA || whole);
}

static int expect_key(struct cursor *c, const struct token *t, const struct expect_rules *r,
		      const char *cmd, struct expect_state *x, struct expect_item *it)
{
	const char *eq = memchr(t->s, '=', t->len);
	size_t klen = (size_t)(eq - t->s);
	int k = key_lookup(t->s, klen);
	char list[256];

	if (k < 0 || !(r->keys & (1u << k))) {
		expect_list(r, list, sizeof(list));
		return perr(c->p, t->col, "unknown expectation key %s for '%s' (expected %s)",
			    Q(t->s, klen), cmd, list);
	}
	if (has_item(x, k, klen == strlen(key_words[k])))
		return perr(c->p, t->col, "duplicate expectation %s", Q(t->s, klen));
	it->kind = (enum expect_kind)k;
	return key_value(c, t, t->s, klen, it);
}

static int expect_bare(struct cursor *c, const struct token *t, const struct expect_rules *r,
		       const char *cmd, struct expect_state *x, struct expect_item *it)
{
	char list[256];

	if (r->bare < 0) {
		expect_list(r, list, sizeof(list));
		return perr(c->p, t->col, "unexpected %s after '->' of '%s' (expected %s)",
			    Q(t->s, t->len), cmd, list);
	}
	if (has_item(x, r->bare, true))
		return perr(c->p, t->col, "a second %s after '->': %s", bare_words[r->bare],
			    Q(t->s, t->len));
	it->kind = (enum expect_kind)r->bare;
	if (r->bare == EXP_WHERE)
		return arg_where(c->p, t, it);
	if (r->bare == EXP_SAME)
		return arg_same(c->p, t, it);
	if (r->bare == EXP_VALUE)
		return arg_word(c->p, t, t->s, t->len, "a value", &it->u.value);
	return arg_pattern(c->p, t, t->s, t->len, &it->u.pat);
}

static int expect_item(struct cursor *c, const struct token *t, const struct expect_rules *r,
		       const char *cmd, struct expect_state *x)
{
	struct expect *e = x->e;
	struct expect_item *it = &x->items[e->nitems];
	int rc;

	if (tok_is(t, "->"))
		return perr(c->p, t->col, "unexpected second '->'");
	if (tok_is(t, "ok") || tok_is(t, "any") || looks_like_errname(t->s, t->len))
		return expect_status(c, t, e);
	it->col = t->col;
	it->text = t->s;
	if (memchr(t->s, '=', t->len))
		rc = expect_key(c, t, r, cmd, x, it);
	else
		rc = expect_bare(c, t, r, cmd, x, it);
	if (rc)
		return rc;
	e->nitems++;
	if (it->kind != EXP_DATA || it->u.data.span.kind == SPAN_WHOLE)
		x->seen |= 1u << it->kind;
	return 0;
}

int expect_parse(struct cursor *c, const struct token *arrow, const struct expect_rules *r,
		 const char *cmd, struct expect *e)
{
	struct expect_state x = { e, NULL, 0 };
	char what[64];

	memset(e, 0, sizeof(*e));
	if (arrow && c->pos == c->n)
		return cur_missing(c, "an expectation after '->'");
	if (c->n > c->pos) {
		x.items = arena_alloc(c->p->arena, (c->n - c->pos) * sizeof(*x.items));
		if (!x.items)
			return poom(c->p);
	}
	e->items = x.items;
	while (c->pos < c->n)
		if (expect_item(c, &c->t[c->pos++], r, cmd, &x))
			return c->p->err;
	if (r->bare_required && !has_item(&x, r->bare, true)) {
		snprintf(what, sizeof(what), "%sa %s", arrow ? "" : "'->' and ", bare_words[r->bare]);
		return cur_missing(c, what);
	}
	return 0;
}
