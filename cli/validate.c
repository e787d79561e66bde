/* SPDX-License-Identifier: MIT */
/*
 * Checking a raw line before anything runs. A line's syntax may depend on
 * the values of the variables it uses (`gpu $op A` is a read or a write),
 * so the line is substituted and parsed once for every combination of the
 * values of the variants it names, skipping those its if-conditions rule
 * out. Loop variables stand at 0, a value every loop with a body run takes.
 * So an error reported here is always real, and the iterator meets only the
 * errors of other loop values (and none at all for most scripts).
 *
 * A line that uses no variable is parsed once, into the script's arena,
 * and the iterator hands out that parse. Hostile files (thousands of long
 * lines each using many variants) are bounded by a budget of bytes parsed
 * beyond each line's first combination; past it lines are checked in their
 * first combination only, and the iterator still checks every step it
 * produces.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "script_int.h"

unsigned int later_variant(const struct lexer *lx, const char *name, size_t len)
{
	const char *s = lx->text + lx->pos, *end = lx->text + lx->len;
	unsigned int line = lx->line;

	for (; s < end; line++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (e - s > 8 && !memcmp(s, "variant", 7) && (s[7] == ' ' || s[7] == '\t')) {
			for (s += 7; s < e && (*s == ' ' || *s == '\t'); s++)
				;
			if ((size_t)(e - s) >= len && !memcmp(s, name, len) &&
			    ((size_t)(e - s) == len || s[len] == ' ' || s[len] == '\t' ||
			     s[len] == '\r' || s[len] == '#'))
				return line + 1;
		}
		s = e + 1;
	}
	return 0;
}

static bool scope_has(const struct scope *sc, const char *name, size_t len)
{
	for (size_t i = 0; i < sc->nloops; i++)
		if (strlen(sc->loop_name[i]) == len && !memcmp(sc->loop_name[i], name, len))
			return true;
	return false;
}

int check_refs(struct parse_ctx *p, const struct script *s, const struct scope *sc,
	       const struct lexer *rest, const struct token *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct varref ref;
		size_t pos = 0;
		unsigned int later;

		while (t[i].var && varref_next(t[i].s, t[i].len, &pos, &ref) > 0) {
			if (scope_has(sc, ref.name, ref.name_len) ||
			    script_find_variant(s, ref.name, ref.name_len) >= 0)
				continue;
			later = later_variant(rest, ref.name, ref.name_len);
			if (later)
				return perr(p, t[i].col + (unsigned int)ref.start,
					    "variable $%.*s is used before its 'variant' line (line %u)",
					    (int)ref.name_len, ref.name, later);
			return perr(p, t[i].col + (unsigned int)ref.start,
				    "undefined variable $%.*s (not a variant declared above, nor "
				    "the variable of an enclosing repeat)",
				    (int)ref.name_len, ref.name);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Enumerating the combinations a line can take                              */

struct walk {
	struct parse_ctx *p;
	struct script *s;
	struct vec vars; /* size_t: the variants the line uses */
	size_t *pick; /* per used variant: the index of its current value */
	const char **vvals; /* per variant of the script */
	struct env env;
};

static int add_var(struct walk *w, size_t v)
{
	const size_t *have = w->vars.data;

	for (size_t i = 0; i < w->vars.n; i++)
		if (have[i] == v)
			return 0;
	return vec_push(&w->vars, &v) ? poom(w->p) : 0;
}

static int collect_vars(struct walk *w, const struct token *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct varref ref;
		size_t pos = 0;
		long v;

		while (t[i].var && varref_next(t[i].s, t[i].len, &pos, &ref) > 0) {
			v = script_find_variant(w->s, ref.name, ref.name_len);
			if (v >= 0 && add_var(w, (size_t)v))
				return w->p->err;
		}
	}
	return 0;
}

static int walk_init(struct walk *w, struct parse_ctx *p, struct script *s,
		     const struct scope *sc)
{
	memset(w, 0, sizeof(*w));
	w->p = p;
	w->s = s;
	w->vars.elem = sizeof(size_t);
	w->vvals = script_malloc((s->variants.n + 1) * sizeof(*w->vvals));
	if (!w->vvals)
		return poom(p);
	w->env.script = s;
	w->env.vvals = w->vvals;
	w->env.nloops = sc->nloops;
	for (size_t i = 0; i < sc->nloops; i++) {
		w->env.loop_name[i] = sc->loop_name[i];
		w->env.loop_val[i] = "0";
	}
	return 0;
}

static void walk_fini(struct walk *w)
{
	vec_free(&w->vars);
	free(w->pick);
	free(w->vvals);
}

/* Give the used variants the values that pick selects. */
static void walk_set(struct walk *w)
{
	const size_t *vars = w->vars.data;

	for (size_t i = 0; i < w->vars.n; i++)
		w->vvals[vars[i]] = script_variant(w->s, vars[i])->values[w->pick[i]];
}

/* Step pick like an odometer, the last variant fastest. false: wrapped. */
static bool walk_next(struct walk *w)
{
	const size_t *vars = w->vars.data;

	for (size_t i = w->vars.n; i-- > 0;) {
		if (++w->pick[i] < script_variant(w->s, vars[i])->nvalues)
			return true;
		w->pick[i] = 0;
	}
	return false;
}

typedef int (*walk_fn)(struct walk *w, const struct node *node);

/* What a parse costs beyond its bytes, in the budget's bytes: many short
 * lines with many combinations must exhaust it too. */
#define PARSE_OVERHEAD 256

/* Call fn for every combination of the used variants under which the
 * node's conditions hold, within the budget. */
static int walk_all(struct walk *w, const struct node *node, walk_fn fn)
{
	bool first = true;
	size_t cost;

	w->pick = script_malloc((w->vars.n + 1) * sizeof(*w->pick));
	if (!w->pick)
		return poom(w->p);
	memset(w->pick, 0, (w->vars.n + 1) * sizeof(*w->pick));
	do {
		bool run = true;

		walk_set(w);
		for (size_t i = 0; i < node->nconds && run; i++)
			run = cond_holds(&w->env, &node->conds[i]);
		if (!run)
			continue;
		if (!first && !w->p->budget)
			break;
		first = false;
		if (fn(w, node))
			return w->p->err;
		cost = w->p->subst_len + PARSE_OVERHEAD;
		w->p->budget -= w->p->budget < cost ? w->p->budget : cost;
	} while (walk_next(w));
	return 0;
}

/* ------------------------------------------------------------------------ */

int node_parse(struct parse_ctx *p, const struct env *e, const struct node *node,
	       struct step *st)
{
	struct token *sub;
	const char *text;

	p->line = node->line;
	if (subst_tokens(p, e, node->tok, node->ntok, &sub))
		return p->err;
	text = join_tokens(p->arena, sub, node->ntok);
	if (!text)
		return poom(p);
	step_parse(p, sub + node->first, node->ntok - node->first, NULL, node->eol_col, text,
		   node->first ? CTX_IF : CTX_LINE, st);
	p->nwith = 0; /* an error has been reported with them already */
	return p->err;
}

int repeat_count(struct parse_ctx *p, const struct env *e, const struct node *node,
		 uint64_t *out)
{
	const struct token *t = &node->tok[1];
	struct token *sub;

	p->line = node->line;
	p->subst_len = t->len;
	if (node->var) {
		if (subst_tokens(p, e, t, 1, &sub))
			return p->err;
		t = sub;
	}
	arg_u64(p, t, t->s, t->len, "a repeat count", SCRIPT_MAX_STEPS, out);
	p->nwith = 0;
	return p->err;
}

/* One combination of a step with variables: parse into a scratch arena. */
static int walk_step(struct walk *w, const struct node *node)
{
	struct arena scratch = { NULL };
	struct arena *keep = w->p->arena;
	struct step st;
	int rc;

	w->p->arena = &scratch;
	rc = node_parse(w->p, &w->env, node, &st);
	w->p->arena = keep;
	arena_free(&scratch);
	return rc;
}

static int walk_count(struct walk *w, const struct node *node)
{
	struct arena scratch = { NULL };
	struct arena *keep = w->p->arena;
	uint64_t n;
	int rc;

	w->p->arena = &scratch;
	rc = repeat_count(w->p, &w->env, node, &n);
	w->p->arena = keep;
	arena_free(&scratch);
	return rc;
}

static int validate(struct parse_ctx *p, struct script *s, const struct scope *sc,
		    const struct node *node, size_t first, walk_fn fn)
{
	struct walk w;
	int rc;

	if (walk_init(&w, p, s, sc))
		return p->err;
	rc = collect_vars(&w, node->tok + first, node->ntok - first);
	for (size_t i = 0; !rc && i < node->nconds; i++)
		rc = add_var(&w, node->conds[i].variant);
	if (!rc)
		rc = walk_all(&w, node, fn);
	walk_fini(&w);
	return rc;
}

int validate_step(struct parse_ctx *p, struct script *s, const struct scope *sc,
		  struct node *node)
{
	struct step *st;
	struct env env = { .script = s };

	if (node->var)
		return validate(p, s, sc, node, node->first, walk_step);
	st = arena_alloc(p->arena, sizeof(*st));
	if (!st)
		return poom(p);
	if (node_parse(p, &env, node, st))
		return p->err;
	node->cached = st;
	return 0;
}

int validate_count(struct parse_ctx *p, struct script *s, const struct scope *sc,
		   const struct node *node)
{
	return validate(p, s, sc, node, 1, walk_count);
}
