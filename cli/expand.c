/* SPDX-License-Identifier: MIT */
/*
 * Expansion: one variant combination of a parsed script -> its concrete
 * steps, one at a time. The iterator walks the block tree with a stack of
 * frames, one per open repeat, binding each named loop's index as text in
 * its frame; a step whose line has no variable comes out of the parse made
 * by script_parse(), any other is substituted and parsed into the
 * iterator's arena, which the next step reuses. Memory is therefore
 * bounded by the depth of nesting, not by the number of iterations.
 *
 * Before the first step, script_iter_start() counts the steps and loop
 * iterations the combination will produce, so a script that would run
 * for ever (repeat 100000 / repeat 100000) fails at once, and checks that
 * at most one system step runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_int.h"

struct frame {
	const struct node *nodes;
	size_t n, pos;
	const struct node *repeat; /* NULL: the top level */
	uint64_t i, count;
	char val[24]; /* i as text, when the loop is named */
};

struct script_iter {
	const struct script *s;
	const char **vvals; /* the combination's value of each variant */
	struct env env;
	struct frame stack[SCRIPT_MAX_DEPTH + 1];
	size_t depth;
	struct arena arena; /* the current step (every step with keep) */
	bool keep;
	int err; /* sticky: after an error, every call fails */
	struct parse_ctx p;
	struct diag scratch;
};

/* ------------------------------------------------------------------------ */
/* Combinations                                                              */

size_t script_combo_count(const struct script *s)
{
	return s->ncombos;
}

/* The index of the value variant v takes in combination combo. */
static size_t combo_pick(const struct script *s, size_t combo, size_t v)
{
	size_t stride = 1;

	for (size_t j = v + 1; j < s->variants.n; j++)
		stride *= script_variant(s, j)->nvalues;
	return combo / stride % script_variant(s, v)->nvalues;
}

size_t script_combo_name(const struct script *s, size_t combo, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "%s", s->path);

	for (size_t v = 0; v < s->variants.n; v++) {
		const struct variant *var = script_variant(s, v);

		o += (size_t)snprintf(o < size ? buf + o : NULL, o < size ? size - o : 0, "%c%s=%s",
				      v ? ',' : '[', var->name,
				      var->values[combo_pick(s, combo, v)]);
	}
	if (s->variants.n)
		o += (size_t)snprintf(o < size ? buf + o : NULL, o < size ? size - o : 0, "]");
	return o;
}

const char *script_combo_value(const struct script *s, size_t combo, const char *name)
{
	long v = script_find_variant(s, name, strlen(name));

	if (v < 0 || combo >= s->ncombos)
		return NULL;
	return script_variant(s, (size_t)v)->values[combo_pick(s, combo, (size_t)v)];
}

/* ------------------------------------------------------------------------ */
/* Loops                                                                     */

static bool conds_hold(const struct env *e, const struct node *nd)
{
	for (size_t i = 0; i < nd->nconds; i++)
		if (!cond_holds(e, &nd->conds[i]))
			return false;
	return true;
}

/* A repeat's count now, with a scratch arena (loops may evaluate it often). */
static int eval_count(struct script_iter *it, const struct node *nd, uint64_t *count)
{
	struct arena scratch = { NULL };
	struct arena *keep = it->p.arena;
	int rc;

	it->p.arena = &scratch;
	rc = repeat_count(&it->p, &it->env, nd, count);
	it->p.arena = keep;
	arena_free(&scratch);
	return rc;
}

static void bind(struct script_iter *it, const char *name, char *val)
{
	it->env.loop_name[it->env.nloops] = name;
	it->env.loop_val[it->env.nloops++] = val;
}

/*
 * Counting saturates at SCRIPT_MAX_STEPS + 1, and the error names the
 * top-level repeat that crossed the limit: the block the user has to
 * shrink, whichever inner loop happened to add the last step.
 */
#define COUNT_CAP (SCRIPT_MAX_STEPS + 1)

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b > COUNT_CAP ? COUNT_CAP : a + b; /* a, b <= COUNT_CAP */
}

static int count_block(struct script_iter *it, const struct node *nodes, size_t n,
		       uint64_t *acc, unsigned int *system_line, bool top);

/* Add the steps and iterations of repeat nd to *acc. */
static int count_repeat(struct script_iter *it, const struct node *nd, uint64_t *acc,
			unsigned int *system_line)
{
	uint64_t count, body = 0;
	char val[24] = "0";
	int rc = 0;

	if (eval_count(it, nd, &count) || !count)
		return it->p.err;
	if (nd->loop_var)
		bind(it, nd->loop_var, val);
	if (!nd->count_uses_outer) {
		/* Every iteration is the same size: count one. */
		rc = count_block(it, nd->body, nd->nbody, &body, system_line, false);
		body = count * (body + 1); /* <= 10^7 * (10^7 + 2) */
		*acc = sat_add(*acc, body > COUNT_CAP ? COUNT_CAP : body);
	}
	for (uint64_t k = 0; nd->count_uses_outer && k < count && !rc && *acc < COUNT_CAP; k++) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)k);
		*acc = sat_add(*acc, 1);
		rc = count_block(it, nd->body, nd->nbody, acc, system_line, false);
	}
	it->env.nloops -= nd->loop_var ? 1 : 0;
	return rc;
}


/* A `system` step that sizes the machine (pages=N): one per run. Mode
 * settings (mthp=) may repeat. */
static bool system_sizes(const struct node *nd)
{
	for (size_t i = nd->first + 1; i < nd->ntok; i++)
		if (nd->tok[i].len >= 6 && !memcmp(nd->tok[i].s, "pages=", 6))
			return true;
	return false;
}

static int count_block(struct script_iter *it, const struct node *nodes, size_t n,
		       uint64_t *acc, unsigned int *system_line, bool top)
{
	for (size_t i = 0; i < n; i++) {
		const struct node *nd = &nodes[i];

		if (nd->kind == NODE_REPEAT) {
			if (count_repeat(it, nd, acc, system_line))
				return it->p.err;
			if (top && *acc > SCRIPT_MAX_STEPS)
				return perr_at(&it->p, nd->line, nd->tok[0].col,
					       "too many steps: the script expands to more than %llu "
					       "steps and repeat iterations", SCRIPT_MAX_STEPS);
			continue;
		}
		if (!conds_hold(&it->env, nd))
			continue;
		*acc = sat_add(*acc, 1);
		if (!tok_is(&nd->tok[nd->first], "system") || !system_sizes(nd))
			continue;
		if (*system_line)
			return perr_at(&it->p, nd->line, nd->tok[nd->first].col,
				       "'system' given twice (first at line %u)", *system_line);
		*system_line = nd->line;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The iterator                                                              */

static void iter_ctx(struct script_iter *it, struct diag *diag)
{
	it->p.path = it->s->path;
	it->p.diag = diag ? diag : &it->scratch;
	it->p.arena = &it->arena;
	it->p.script = it->s;
	it->p.nwith = 0;
	it->p.err = it->err;
}

static int iter_new(const struct script *s, size_t combo, struct script_iter **out)
{
	struct script_iter *it = script_malloc(sizeof(*it));

	*out = NULL;
	if (!it)
		return -ENOMEM;
	memset(it, 0, sizeof(*it));
	it->s = s;
	it->vvals = script_malloc((s->variants.n + 1) * sizeof(*it->vvals));
	if (!it->vvals) {
		free(it);
		return -ENOMEM;
	}
	for (size_t v = 0; v < s->variants.n; v++)
		it->vvals[v] = script_variant(s, v)->values[combo_pick(s, combo, v)];
	it->env.script = s;
	it->env.vvals = it->vvals;
	it->stack[0].nodes = s->nodes;
	it->stack[0].n = s->nnodes;
	*out = it;
	return 0;
}

int script_iter_start(const struct script *s, size_t combo, struct script_iter **out,
		      struct diag *diag)
{
	unsigned int system_line = 0;
	uint64_t steps = 0;
	int rc;

	*out = NULL;
	if (combo >= s->ncombos) {
		diag_set(diag, s->path, 0, 0, "combination %zu out of range (the script has %zu)",
			 combo, s->ncombos);
		return -EINVAL;
	}
	rc = iter_new(s, combo, out);
	if (rc) {
		diag_set(diag, s->path, 0, 0, "out of memory");
		return rc;
	}
	iter_ctx(*out, diag);
	rc = count_block(*out, s->nodes, s->nnodes, &steps, &system_line, true);
	if (rc) {
		script_iter_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Enter repeat nd (nothing to do when its count is 0). */
static int push(struct script_iter *it, const struct node *nd)
{
	struct frame *f;
	uint64_t count;

	if (eval_count(it, nd, &count) || !count)
		return it->p.err;
	f = &it->stack[++it->depth];
	*f = (struct frame){ nd->body, nd->nbody, 0, nd, 0, count, "0" };
	if (nd->loop_var)
		bind(it, nd->loop_var, f->val);
	return 0;
}

/* At the end of frame f: start its next iteration, or leave it. false: done. */
static bool loop_end(struct script_iter *it, struct frame *f)
{
	if (!it->depth)
		return false;
	if (++f->i < f->count) {
		f->pos = 0;
		snprintf(f->val, sizeof(f->val), "%llu", (unsigned long long)f->i);
		return true;
	}
	if (f->repeat->loop_var)
		it->env.nloops--;
	it->depth--;
	return true;
}

static int emit(struct script_iter *it, const struct node *nd, const struct step **out)
{
	struct step *st;

	if (nd->cached) {
		*out = nd->cached;
		return 1;
	}
	st = arena_alloc(&it->arena, sizeof(*st));
	if (!st)
		return poom(&it->p);
	if (node_parse(&it->p, &it->env, nd, st))
		return it->p.err;
	*out = st;
	return 1;
}

int script_iter_next(struct script_iter *it, const struct step **out, struct diag *diag)
{
	iter_ctx(it, diag);
	*out = NULL;
	if (it->err)
		return it->err;
	if (!it->keep)
		arena_reset(&it->arena);
	for (;;) {
		struct frame *f = &it->stack[it->depth];
		const struct node *nd;
		int rc;

		if (f->pos == f->n) {
			if (!loop_end(it, f))
				return 0;
			continue;
		}
		nd = &f->nodes[f->pos++];
		if (nd->kind == NODE_REPEAT)
			rc = push(it, nd);
		else
			rc = conds_hold(&it->env, nd) ? emit(it, nd, out) : 0;
		if (rc < 0)
			it->err = rc;
		if (rc)
			return rc;
	}
}

void script_iter_free(struct script_iter *it)
{
	if (!it)
		return;
	arena_free(&it->arena);
	free(it->vvals);
	free(it);
}

/* ------------------------------------------------------------------------ */
/* Whole expansions                                                          */

int script_expand(const struct script *s, size_t combo, struct step_list *out,
		  struct diag *diag)
{
	struct vec steps = VEC_INIT(const struct step *);
	const struct step *st;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = script_iter_start(s, combo, &out->owner, diag);
	if (rc)
		return rc;
	out->owner->keep = true;
	while ((rc = script_iter_next(out->owner, &st, diag)) > 0) {
		if (vec_push(&steps, &st)) {
			rc = poom(&out->owner->p);
			break;
		}
	}
	out->steps = steps.data;
	out->n = steps.n;
	if (rc < 0)
		step_list_free(out);
	return rc;
}

void step_list_free(struct step_list *list)
{
	free(list->steps);
	script_iter_free(list->owner);
	memset(list, 0, sizeof(*list));
}

int script_check(const struct script *s, struct diag *diag)
{
	for (size_t c = 0; c < s->ncombos; c++) {
		struct script_iter *it;
		const struct step *st;
		int rc = script_iter_start(s, c, &it, diag);

		if (rc)
			return rc;
		while ((rc = script_iter_next(it, &st, diag)) > 0)
			;
		script_iter_free(it);
		if (rc)
			return rc;
	}
	return 0;
}
