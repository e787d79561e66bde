/* SPDX-License-Identifier: MIT */
/*
 * Variables: $NAME (the longest identifier after '$') or ${NAME} (to end a
 * name inside a token, as in A${c}_x), replaced textually inside tokens by a
 * variant's value or a repeat loop's index. Substitution works token by
 * token and a value never holds a space, so a substituted line has the same
 * tokens at the same source columns: errors still point into the file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "script_int.h"

/* The length of the identifier at the start of s[0..len), 0 if none. */
static size_t ident_len(const char *s, size_t len)
{
	size_t n = 0;

	if (!len || !is_ident(s, 1))
		return 0;
	while (n < len && (is_ident(s + n, 1) || (s[n] >= '0' && s[n] <= '9')))
		n++;
	return n;
}

int varref_next(const char *s, size_t len, size_t *pos, struct varref *ref)
{
	const char *d = *pos < len ? memchr(s + *pos, '$', len - *pos) : NULL;
	size_t i, n;

	if (!d)
		return 0;
	i = (size_t)(d - s);
	ref->start = i;
	if (i + 1 < len && s[i + 1] == '{') {
		const char *close = memchr(s + i + 2, '}', len - i - 2);

		n = close ? (size_t)(close - (s + i + 2)) : 0;
		if (!close || !is_ident(s + i + 2, n))
			return -1;
		ref->name = s + i + 2;
		ref->name_len = n;
		ref->end = i + 3 + n;
	} else {
		n = ident_len(s + i + 1, len - i - 1);
		if (!n)
			return -1;
		ref->name = s + i + 1;
		ref->name_len = n;
		ref->end = i + 1 + n;
	}
	*pos = ref->end;
	return 1;
}

const char *env_lookup(const struct env *e, const char *name, size_t len)
{
	long v;

	for (size_t i = e->nloops; i-- > 0;)
		if (strlen(e->loop_name[i]) == len && !memcmp(e->loop_name[i], name, len))
			return e->loop_val[i];
	v = script_find_variant(e->script, name, len);
	return v >= 0 ? e->vvals[v] : NULL;
}

/* Remember that name had value val in this line, for error messages (the
 * first few names only: a message needs no more). */
static void note_with(struct parse_ctx *p, const char *name, size_t len, const char *val)
{
	for (size_t i = 0; i < p->nwith; i++)
		if (p->with[i].len == len && !memcmp(p->with[i].name, name, len))
			return;
	if (p->nwith < ARRAY_SIZE(p->with))
		p->with[p->nwith++] = (struct with_item){ name, val, len };
}

/* The substituted length of t, or an error for an undefined variable. */
static int subst_len(struct parse_ctx *p, const struct env *e, const struct token *t,
		     size_t *out)
{
	struct varref ref;
	size_t pos = 0, len = t->len;
	const char *val;

	while (varref_next(t->s, t->len, &pos, &ref) > 0) {
		val = env_lookup(e, ref.name, ref.name_len);
		if (!val)
			return perr(p, t->col + (unsigned int)ref.start, "undefined variable %s",
				    Q(ref.name, ref.name_len));
		note_with(p, ref.name, ref.name_len, val);
		len += strlen(val) - (ref.end - ref.start);
	}
	*out = len;
	return 0;
}

static int subst_one(struct parse_ctx *p, const struct env *e, const struct token *t,
		     struct token *out)
{
	struct varref ref;
	size_t pos = 0, prev = 0, o = 0, len = 0;
	char *s;

	if (subst_len(p, e, t, &len))
		return p->err;
	s = arena_alloc(p->arena, len + 1);
	if (!s)
		return poom(p);
	while (varref_next(t->s, t->len, &pos, &ref) > 0) {
		const char *val = env_lookup(e, ref.name, ref.name_len);
		size_t vlen = strlen(val);

		memcpy(s + o, t->s + prev, ref.start - prev);
		o += ref.start - prev;
		memcpy(s + o, val, vlen);
		o += vlen;
		prev = ref.end;
	}
	memcpy(s + o, t->s + prev, t->len - prev);
	o += t->len - prev;
	s[o] = '\0';
	*out = *t;
	out->s = s;
	out->len = o;
	return 0;
}

int subst_tokens(struct parse_ctx *p, const struct env *e, const struct token *in, size_t n,
		 struct token **out)
{
	struct token *t = arena_alloc(p->arena, n * sizeof(*t));
	size_t raw = 0, len = 0;

	if (!t)
		return poom(p);
	p->nwith = 0;
	for (size_t i = 0; i < n; i++) {
		if (!in[i].var)
			t[i] = in[i];
		else if (subst_one(p, e, &in[i], &t[i]))
			return p->err;
		raw += in[i].len;
		len += t[i].len;
		/* Values are short, but a line may repeat one a million times. */
		if (len > raw + SCRIPT_MAX_GROWTH)
			return perr(p, in[i].col,
				    "line too long after substitution (it grows by more than %u bytes)",
				    SCRIPT_MAX_GROWTH);
	}
	p->subst_len = len;
	*out = t;
	return 0;
}
