/* SPDX-License-Identifier: MIT */
/*
 * The whole file: lines -> the block tree. Structure is fixed by literal
 * words at the start of a line, never by a variable:
 *
 *   variant NAME V1 V2 ...     top level only; no $ in it
 *   repeat N [as VAR] ... end  a block (N may use variables); nests to 64
 *   if NAME=V: [if ...:] STEP  conditions on variants, in front of a step
 *   anything else              a step
 *
 * One pass, in line order, so the first error reported is the first in the
 * file: every line is checked as it is read (validate.c), a block is closed
 * by its end, and what is open at the end of the file is an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_int.h"

#define VALIDATE_BUDGET (16ul << 20) /* bytes of extra validation parses */

struct block {
	struct vec nodes; /* struct node */
	struct node head; /* the repeat that opened it (not for the top level) */
};

struct builder {
	struct parse_ctx *p;
	struct script *s;
	struct lexer lx;
	struct block stack[SCRIPT_MAX_DEPTH + 1];
	size_t depth; /* open repeat blocks */
	struct scope scope; /* the named loops among them */
	bool seen_step; /* a step or a repeat came: system is too late */
};

/* FNV-1a: substitution looks variants up once per reference. */
uint32_t name_hash(const char *name, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	return h;
}

long script_find_variant(const struct script *s, const char *name, size_t len)
{
	uint32_t h = name_hash(name, len);

	for (size_t i = 0; i < s->variants.n; i++) {
		const struct variant *v = script_variant(s, i);

		if (v->hash == h && v->name_len == len && !memcmp(v->name, name, len))
			return (long)i;
	}
	return -1;
}

bool script_knows_device(const struct script *s, const char *name, size_t len)
{
	const char *const *dev = s ? s->devices.data : NULL;

	for (size_t i = 0; s && i < s->devices.n; i++)
		if (strlen(dev[i]) == len && !memcmp(dev[i], name, len))
			return true;
	return false;
}

bool script_knows_process(const struct script *s, const char *name, size_t len)
{
	const char *const *proc = s ? s->procs.data : NULL;

	if (!s || s->procs_open || (len == 4 && !memcmp(name, "main", 4)))
		return true;
	for (size_t i = 0; i < s->procs.n; i++)
		if (strlen(proc[i]) == len && !memcmp(proc[i], name, len))
			return true;
	return false;
}

bool cond_holds(const struct env *e, const struct cond *c)
{
	bool equal = strcmp(e->vvals[c->variant], c->value) == 0;

	return equal != c->negate;
}

/* ------------------------------------------------------------------------ */
/* variant                                                                   */

/* The values of a variant line. Its limits keep the duplicate check
 * (quadratic, on at most SCRIPT_MAX_VALUES values) and the substituted
 * lines small. */
static int variant_values(struct builder *b, const struct rawline *l, struct variant *v)
{
	const struct token *t = l->tok;

	v->nvalues = l->ntok - 2;
	if (v->nvalues > SCRIPT_MAX_VALUES)
		return perr(b->p, t[2 + SCRIPT_MAX_VALUES].col,
			    "too many values of variant '%s' (more than %u)", v->name,
			    SCRIPT_MAX_VALUES);
	v->values = arena_alloc(&b->s->arena, v->nvalues * sizeof(*v->values));
	if (!v->values)
		return poom(b->p);
	for (size_t i = 2; i < l->ntok; i++) {
		if (t[i].var)
			return perr(b->p, t[i].col, "a variant value cannot use a variable, found %s",
				    Q(t[i].s, t[i].len));
		if (t[i].len > SCRIPT_MAX_VALUE_LEN)
			return perr(b->p, t[i].col, "variant value too long (more than %u bytes)",
				    SCRIPT_MAX_VALUE_LEN);
		for (size_t j = 2; j < i; j++)
			if (!strcmp(t[j].s, t[i].s))
				return perr(b->p, t[i].col, "duplicate value %s of variant '%s'",
					    Q(t[i].s, t[i].len), v->name);
		v->values[i - 2] = t[i].s;
	}
	return 0;
}

static int line_variant(struct builder *b, const struct rawline *l)
{
	const struct token *t = l->tok;
	struct variant v = { .line = l->line };
	long old;

	if (b->depth)
		return perr(b->p, t[0].col, "'variant' must be at the top level, not inside 'repeat'");
	if (b->s->variants.n == SCRIPT_MAX_VARIANTS)
		return perr(b->p, t[0].col, "too many variant lines (more than %u)",
			    SCRIPT_MAX_VARIANTS);
	if (l->ntok < 2)
		return perr(b->p, l->eol_col, "expected a variant name, found end of line");
	if (t[1].var || !is_ident(t[1].s, t[1].len))
		return perr(b->p, t[1].col, "expected a variant name (letters, digits, _), found %s",
			    Q(t[1].s, t[1].len));
	old = script_find_variant(b->s, t[1].s, t[1].len);
	if (old >= 0)
		return perr(b->p, t[1].col, "variant '%s' is already defined at line %u", t[1].s,
			    script_variant(b->s, (size_t)old)->line);
	if (l->ntok < 3)
		return perr(b->p, l->eol_col, "expected a value of variant '%s', found end of line",
			    t[1].s);
	v.name = t[1].s;
	v.name_len = t[1].len;
	v.hash = name_hash(v.name, v.name_len);
	if (b->s->ncombos > SCRIPT_MAX_COMBOS / (l->ntok - 2))
		return perr(b->p, t[0].col, "too many variant combinations (more than %u)",
			    SCRIPT_MAX_COMBOS);
	if (variant_values(b, l, &v))
		return b->p->err;
	b->s->ncombos *= v.nvalues;
	return vec_push(&b->s->variants, &v) ? poom(b->p) : 0;
}

/* ------------------------------------------------------------------------ */
/* repeat ... end                                                            */

static int loop_var(struct builder *b, const struct rawline *l, const char **out)
{
	const struct token *t = l->tok;
	long v;

	*out = NULL;
	if (l->ntok < 3)
		return 0;
	if (!tok_is(&t[2], "as"))
		return perr(b->p, t[2].col, "expected 'as' or end of line, found %s",
			    Q(t[2].s, t[2].len));
	if (l->ntok < 4)
		return perr(b->p, l->eol_col, "expected a loop variable name, found end of line");
	if (t[3].var || !is_ident(t[3].s, t[3].len))
		return perr(b->p, t[3].col, "expected a loop variable name (letters, digits, _), found %s",
			    Q(t[3].s, t[3].len));
	if (l->ntok > 4)
		return perr(b->p, t[4].col, "unexpected %s after the loop variable",
			    Q(t[4].s, t[4].len));
	v = script_find_variant(b->s, t[3].s, t[3].len);
	if (v >= 0)
		return perr(b->p, t[3].col, "loop variable '%s' would hide the variant of line %u",
			    t[3].s, script_variant(b->s, (size_t)v)->line);
	for (size_t i = 0; i < b->scope.nloops; i++)
		if (!strcmp(b->scope.loop_name[i], t[3].s))
			return perr(b->p, t[3].col, "loop variable '%s' is already used by the repeat of line %u",
				    t[3].s, b->scope.loop_line[i]);
	*out = t[3].s;
	return 0;
}

static int line_repeat(struct builder *b, const struct rawline *l)
{
	const struct token *t = l->tok;
	struct node *head;

	if (b->depth == SCRIPT_MAX_DEPTH)
		return perr(b->p, t[0].col, "repeat blocks nested too deeply (more than %d levels)",
			    SCRIPT_MAX_DEPTH);
	head = &b->stack[b->depth + 1].head;
	if (l->ntok < 2)
		return perr(b->p, l->eol_col, "expected a repeat count, found end of line");
	memset(head, 0, sizeof(*head));
	head->kind = NODE_REPEAT;
	head->line = l->line;
	head->eol_col = l->eol_col;
	head->tok = t;
	head->ntok = l->ntok;
	head->var = t[1].var;
	if (loop_var(b, l, &head->loop_var) ||
	    check_refs(b->p, b->s, &b->scope, &b->lx, &t[1], 1) ||
	    validate_count(b->p, b->s, &b->scope, head))
		return b->p->err;
	b->seen_step = true;
	b->depth++;
	b->stack[b->depth].nodes = (struct vec)VEC_INIT(struct node);
	if (head->loop_var) {
		b->scope.loop_name[b->scope.nloops] = head->loop_var;
		b->scope.loop_line[b->scope.nloops++] = l->line;
	}
	return 0;
}

/* Whether a repeat count somewhere in nodes[0..n) uses $name. */
static bool counts_use(const struct node *nodes, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		const struct node *nd = &nodes[i];
		struct varref ref;
		size_t pos = 0;

		if (nd->kind != NODE_REPEAT)
			continue;
		while (nd->var && varref_next(nd->tok[1].s, nd->tok[1].len, &pos, &ref) > 0)
			if (strlen(name) == ref.name_len && !memcmp(name, ref.name, ref.name_len))
				return true;
		if (counts_use(nd->body, nd->nbody, name))
			return true;
	}
	return false;
}

/* Move a block's nodes from its vector into the arena. */
static int block_seal(struct builder *b, struct block *blk, const struct node **nodes,
		      size_t *n)
{
	struct node *copy = NULL;

	if (blk->nodes.n) {
		copy = arena_alloc(&b->s->arena, blk->nodes.n * sizeof(*copy));
		if (!copy)
			return poom(b->p);
		memcpy(copy, blk->nodes.data, blk->nodes.n * sizeof(*copy));
	}
	*nodes = copy;
	*n = blk->nodes.n;
	vec_free(&blk->nodes);
	return 0;
}

static int line_end(struct builder *b, const struct rawline *l)
{
	struct block *blk = &b->stack[b->depth];
	struct node *head = &blk->head;

	if (!b->depth)
		return perr(b->p, l->tok[0].col, "'end' without 'repeat'");
	if (l->ntok > 1)
		return perr(b->p, l->tok[1].col, "unexpected %s after 'end'",
			    Q(l->tok[1].s, l->tok[1].len));
	if (block_seal(b, blk, &head->body, &head->nbody))
		return b->p->err;
	if (head->loop_var) {
		head->count_uses_outer = counts_use(head->body, head->nbody, head->loop_var);
		b->scope.nloops--;
	}
	b->depth--;
	return vec_push(&b->stack[b->depth].nodes, head) ? poom(b->p) : 0;
}

/* ------------------------------------------------------------------------ */
/* Steps and their conditions                                                */

static int cond_variant(struct builder *b, const struct token *t, const char *name, size_t len,
			struct cond *c)
{
	unsigned int later = 0;
	long v = script_find_variant(b->s, name, len);

	if (v < 0) {
		later = later_variant(&b->lx, name, len);
		if (later)
			return perr(b->p, t->col, "variant '%.*s' is used before its 'variant' line (line %u)",
				    (int)len, name, later);
		return perr(b->p, t->col, "'if' on an unknown variant %s", Q(name, len));
	}
	c->variant = (size_t)v;
	return 0;
}

/* NAME=V: or NAME!=V: */
static int parse_cond(struct builder *b, const struct token *t, struct cond *c)
{
	const char *eq = memchr(t->s, '=', t->len);
	size_t nlen = eq ? (size_t)(eq - t->s) : 0;
	const struct variant *v;

	if (t->var || !eq || t->s[t->len - 1] != ':' || t->len < (size_t)(eq - t->s) + 3)
		return perr(b->p, t->col, "expected NAME=VALUE: or NAME!=VALUE: after 'if', found %s",
			    Q(t->s, t->len));
	c->negate = nlen && t->s[nlen - 1] == '!';
	nlen -= c->negate;
	if (!is_ident(t->s, nlen))
		return perr(b->p, t->col, "expected a variant name in 'if', found %s",
			    Q(t->s, nlen));
	if (cond_variant(b, t, t->s, nlen, c))
		return b->p->err;
	v = script_variant(b->s, c->variant);
	c->value = arena_strndup(&b->s->arena, eq + 1, t->len - (size_t)(eq - t->s) - 2);
	if (!c->value)
		return poom(b->p);
	for (size_t i = 0; i < v->nvalues; i++)
		if (!strcmp(v->values[i], c->value))
			return 0;
	return perr(b->p, t->col, "variant '%s' has no value %s", v->name,
		    Q(c->value, strlen(c->value)));
}

/* The if-prefixes of a line: node->first is the step's first token. */
static int line_conds(struct builder *b, const struct rawline *l, struct node *node)
{
	size_t i = 0, n = 0;
	struct cond *conds;

	while (i < l->ntok && tok_is(&l->tok[i], "if"))
		i += 2, n++;
	if (!n)
		return 0;
	conds = arena_alloc(&b->s->arena, n * sizeof(*conds));
	if (!conds)
		return poom(b->p);
	for (size_t k = 0; k < n; k++) {
		if (2 * k + 1 >= l->ntok)
			return perr(b->p, l->eol_col,
				    "expected NAME=VALUE: after 'if', found end of line");
		if (parse_cond(b, &l->tok[2 * k + 1], &conds[k]))
			return b->p->err;
	}
	if (i >= l->ntok)
		return perr(b->p, l->eol_col, "expected a step after the condition, found end of line");
	node->conds = conds;
	node->nconds = n;
	node->first = i;
	return 0;
}

/* A `system` line that sizes the machine (pages=N) precedes every other
 * step; one that only sets modes (mthp=) may come anywhere, and is a step. */
static int system_first(struct builder *b, const struct token *t, size_t n)
{
	bool sizes = false;

	for (size_t i = 1; i < n; i++)
		sizes |= t[i].len >= 6 && !memcmp(t[i].s, "pages=", 6);
	if (tok_is(t, "system") && sizes && b->seen_step)
		return perr(b->p, t->col, "'system' must come before every other step");
	if (!tok_is(t, "system") || !sizes)
		b->seen_step = true;
	return 0;
}

/* Remember the name of "device NAME ..." (when NAME is literal), so that
 * "NAME frobnicate" can be reported as a bad device command. */
static int note_device(struct builder *b, const struct node *node)
{
	const struct token *t = &node->tok[node->first];

	if (!tok_is(t, "device") || node->ntok < node->first + 2 || t[1].var)
		return 0;
	return vec_push(&b->s->devices, &t[1].s) ? poom(b->p) : 0;
}

/* The processes a step of t[0..n) may create: "fork C" after an optional
 * PROC: prefix. A variable as the command word, or as the child, could
 * fork any process. */
static int note_fork_step(struct builder *b, const struct token *t, size_t n)
{
	if (n && t[0].len && t[0].s[t[0].len - 1] == ':') {
		t++;
		n--;
	}
	if (!n)
		return 0;
	if (t[0].var || (tok_is(&t[0], "fork") && n > 1 && t[1].var)) {
		b->s->procs_open = true;
		return 0;
	}
	if (!tok_is(&t[0], "fork") || n < 2)
		return 0;
	return vec_push(&b->s->procs, &t[1].s) ? poom(b->p) : 0;
}

/* Remember the processes a line may fork (in together, every part), so
 * that `same A C:A` can be checked against them. */
static int note_forks(struct builder *b, const struct node *node)
{
	const struct token *t = &node->tok[node->first];
	size_t n = node->ntok - node->first, start = 0;

	if (!tok_is(&t[0], "together"))
		return note_fork_step(b, t, n);
	for (size_t i = 1; i <= n; i++) {
		if (i < n && !tok_is(&t[i], "||"))
			continue;
		if (note_fork_step(b, t + start + 1, i - start - 1))
			return b->p->err;
		start = i;
	}
	return 0;
}

static int line_step(struct builder *b, const struct rawline *l)
{
	struct node node = { .kind = NODE_STEP, .line = l->line, .eol_col = l->eol_col };

	node.tok = l->tok;
	node.ntok = l->ntok;
	if (line_conds(b, l, &node) ||
	    check_refs(b->p, b->s, &b->scope, &b->lx, l->tok + node.first, l->ntok - node.first) ||
	    system_first(b, &l->tok[node.first], l->ntok - node.first))
		return b->p->err;
	for (size_t i = node.first; i < l->ntok; i++)
		node.var |= l->tok[i].var;
	if (validate_step(b->p, b->s, &b->scope, &node))
		return b->p->err;
	if (note_device(b, &node) || note_forks(b, &node))
		return b->p->err;
	return vec_push(&b->stack[b->depth].nodes, &node) ? poom(b->p) : 0;
}

/* ------------------------------------------------------------------------ */
/* The file                                                                  */

static int build_line(struct builder *b, const struct rawline *l)
{
	if (tok_is(&l->tok[0], "variant"))
		return line_variant(b, l);
	if (tok_is(&l->tok[0], "repeat"))
		return line_repeat(b, l);
	if (tok_is(&l->tok[0], "end"))
		return line_end(b, l);
	return line_step(b, l);
}

static int build(struct builder *b)
{
	struct rawline l;
	int rc;

	b->stack[0].nodes = (struct vec)VEC_INIT(struct node);
	while ((rc = lex_line(&b->lx, b->p, &l)) > 0)
		if (build_line(b, &l))
			return b->p->err;
	if (rc < 0)
		return rc;
	if (b->depth) {
		const struct node *head = &b->stack[b->depth].head;

		return perr_at(b->p, head->line, head->tok[0].col, "'repeat' without 'end'");
	}
	return block_seal(b, &b->stack[0], &b->s->nodes, &b->s->nnodes);
}

static struct script *script_new(const char *path)
{
	struct script *s = script_malloc(sizeof(*s));
	size_t len = strlen(path);

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->ncombos = 1;
	s->variants.elem = sizeof(struct variant);
	s->devices.elem = sizeof(const char *);
	s->procs.elem = sizeof(const char *);
	s->path = script_malloc(len + 1);
	if (!s->path) {
		free(s);
		return NULL;
	}
	memcpy(s->path, path, len + 1);
	return s;
}

void script_free(struct script *s)
{
	if (!s)
		return;
	arena_free(&s->arena);
	vec_free(&s->variants);
	vec_free(&s->devices);
	vec_free(&s->procs);
	free(s->path);
	free(s);
}

int script_parse(const char *path, const char *text, size_t len, struct script **out,
		 struct diag *diag)
{
	struct diag scratch;
	struct parse_ctx p = { .path = path, .diag = diag ? diag : &scratch };
	struct builder *b;
	int rc;

	memset(p.diag, 0, sizeof(*p.diag));
	*out = NULL;
	if (len > SCRIPT_MAX_FILE_SIZE) {
		diag_set(p.diag, path, 0, 0, "file too large (%zu bytes, at most %u)", len,
			 SCRIPT_MAX_FILE_SIZE);
		return -EINVAL;
	}
	b = script_malloc(sizeof(*b));
	p.script = b ? script_new(path) : NULL;
	if (!p.script) {
		free(b);
		return poom(&p);
	}
	*b = (struct builder){ .p = &p, .s = (struct script *)p.script, .lx = { text, len, 0, 0 } };
	p.arena = &b->s->arena;
	p.budget = VALIDATE_BUDGET;
	rc = build(b);
	for (size_t i = 0; i <= b->depth; i++)
		vec_free(&b->stack[i].nodes);
	if (rc)
		script_free(b->s);
	else
		*out = b->s;
	free(b);
	return rc;
}

const char *script_path(const struct script *s)
{
	return s->path;
}

/* Read the whole stream, refusing more than SCRIPT_MAX_FILE_SIZE bytes
 * (the parser reports those); buffers grow as the data comes. */
static int read_all(FILE *f, char **text, size_t *len)
{
	size_t cap = 0, n = 0, got;
	char *buf = NULL, *bigger;

	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			bigger = script_realloc(buf, cap);
			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got && n <= SCRIPT_MAX_FILE_SIZE);
	if (ferror(f)) {
		free(buf);
		return errno ? -errno : -EIO;
	}
	*text = buf;
	*len = n;
	return 0;
}

static int read_file(const char *path, char **text, size_t *len, struct diag *diag)
{
	FILE *f = fopen(path, "rb");
	int rc;

	if (!f) {
		rc = -errno;
		diag_set(diag, path, 0, 0, "cannot read: %s", strerror(-rc));
		return rc;
	}
	rc = read_all(f, text, len);
	fclose(f);
	if (rc)
		diag_set(diag, path, 0, 0, "cannot read: %s", strerror(-rc));
	return rc;
}

int script_load(const char *path, struct script **out, struct diag *diag)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = read_file(path, &text, &len, diag);
	if (rc)
		return rc;
	rc = script_parse(path, text, len, out, diag);
	free(text);
	return rc;
}
