/* SPDX-License-Identifier: MIT */
/*
 * Private to the scenario-language front end (the cli/ sources): memory,
 * tokens, the parse context, the block tree, and the functions the files
 * share.
 *
 * The files, bottom up; each calls the ones listed before it, except for
 * four look-ups of tables that live higher (is_command_word,
 * script_find_variant, script_knows_device, script_knows_process):
 *   alloc.c      malloc with a fault-injection hook, arenas, vectors
 *   diag.c       error messages with FILE:LINE:COL
 *   lex.c        text -> lines of tokens
 *   subst.c      $VAR references and their substitution
 *   errname.c    the fixed table of errno names
 *   parse_arg.c  one argument: numbers, names, ranges, patterns, lists
 *   parse_opt.c  option words and expectations of a step
 *   parse.c      one concrete line -> struct step
 *   validate.c   one raw line checked for every combination it can take
 *   script.c     the whole file -> blocks, variants, conditions
 *   expand.c     combinations and the step iterator
 */
#ifndef DEVMM_CLI_SCRIPT_INT_H
#define DEVMM_CLI_SCRIPT_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "script.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* alloc.c                                                                   */

void *script_malloc(size_t n);
void *script_realloc(void *p, size_t n);

/* A bump allocator: everything of a script (or of one iterator step) is
 * freed at once, so the parser never has to unwind partial structures. */
struct arena_chunk;
struct arena {
	struct arena_chunk *head;
};
void *arena_alloc(struct arena *a, size_t n); /* zeroed; NULL on OOM */
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_free(struct arena *a); /* and ready for reuse */
/* Forget everything but keep one chunk: the iterator's per-step arena. */
void arena_reset(struct arena *a);

/* A growable array of elem-sized items (malloc'd, freed by vec_free). */
struct vec {
	void *data;
	size_t n, cap, elem;
};
#define VEC_INIT(type) { NULL, 0, 0, sizeof(type) }
int vec_push(struct vec *v, const void *item); /* 0 or -ENOMEM */
void vec_free(struct vec *v);

/* ------------------------------------------------------------------------ */
/* diag.c: the parse context and its errors                                  */

struct parse_ctx {
	const char *path;
	struct diag *diag; /* never NULL here */
	struct arena *arena; /* where steps and substituted text go */
	const struct script *script; /* device names, for messages; may be NULL */
	unsigned int line; /* the line being parsed */
	struct with_item {
		const char *name, *val;
		size_t len;
	} with[8]; /* the variables substituted into the line, for messages */
	size_t nwith;
	size_t subst_len; /* bytes of the last subst_tokens() result */
	unsigned long budget; /* validate.c: bytes of extra parses left */
	int err; /* 0, -EINVAL or -ENOMEM: the first error wins */
};

/* Record an error at (p->line, col) unless one is recorded; returns -EINVAL. */
int perr(struct parse_ctx *p, unsigned int col, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same at an explicit line (0: no position). */
int perr_at(struct parse_ctx *p, unsigned int line, unsigned int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Record "out of memory"; returns -ENOMEM. */
int poom(struct parse_ctx *p);
/* Fill a diag without a context (the limits checked outside parsing). */
void diag_set(struct diag *d, const char *path, unsigned int line, unsigned int col,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Quote s[0..len) for a message: 'text', escaped, cut short with "...". */
struct quoted {
	char s[64];
};
struct quoted quote(const char *s, size_t len);
#define Q(str, len) (quote((str), (len)).s)

/* ------------------------------------------------------------------------ */
/* lex.c                                                                     */

struct token {
	const char *s; /* NUL-terminated */
	size_t len;
	unsigned int col; /* 1-based source column of the first byte */
	bool var; /* contains a $reference (before substitution) */
};

/* One non-blank line, comment dropped. */
struct rawline {
	unsigned int line;
	unsigned int eol_col; /* the column just past the last token */
	struct token *tok;
	size_t ntok; /* >= 1 */
};

struct lexer {
	const char *text;
	size_t len, pos;
	unsigned int line;
};

/* The next non-blank line, its tokens in p->arena. 1: a line, 0: end of
 * text, < 0: error (a NUL or control byte, a bad $reference). */
int lex_line(struct lexer *lx, struct parse_ctx *p, struct rawline *out);

/* The tokens of one line s[0..len) (without its '\n') into @out, in p->arena
 * (out->ntok 0 for a blank or comment line). Errors: a NUL or control byte;
 * with @dollars (scenario lines), a '$' that starts no reference. The trace
 * parser (trace_parse.c) shares it, with @dollars false. */
int lex_text_line(struct parse_ctx *p, const char *s, size_t len, bool dollars,
		  struct rawline *out);

/* Tokens t[0..n) joined by single spaces, in @a. NULL on OOM. */
char *join_tokens(struct arena *a, const struct token *t, size_t n);

static inline bool tok_is(const struct token *t, const char *word)
{
	size_t i = 0;

	for (; i < t->len && word[i]; i++)
		if (t->s[i] != word[i])
			return false;
	return i == t->len && !word[i];
}

bool is_ident(const char *s, size_t len); /* [A-Za-z_][A-Za-z0-9_]* */

/* ------------------------------------------------------------------------ */
/* subst.c                                                                   */

/* A $NAME or ${NAME} inside a token. */
struct varref {
	size_t start, end; /* offsets of '$' and just past the reference */
	const char *name;
	size_t name_len;
};

/* Find the first reference at or after s[*pos]; advance *pos past it.
 * 1: found, 0: none, -1: a '$' not followed by a name (ref->start set). */
int varref_next(const char *s, size_t len, size_t *pos, struct varref *ref);

/* Values of the variables at one point of the expansion. */
struct env {
	const struct script *script;
	const char *const *vvals; /* per variant, in declaration order */
	size_t nloops;
	const char *loop_name[SCRIPT_MAX_DEPTH];
	const char *loop_val[SCRIPT_MAX_DEPTH];
};

const char *env_lookup(const struct env *e, const char *name, size_t len);

/* Substitute every reference of in[0..n) into *out (in p->arena); notes
 * the values used in p->with. Tokens without references are copied. */
int subst_tokens(struct parse_ctx *p, const struct env *e, const struct token *in, size_t n,
		 struct token **out);

/* ------------------------------------------------------------------------ */
/* errname.c                                                                 */

/* ^E[A-Z0-9]+$: read as an error name, never as a name or pattern. */
bool looks_like_errname(const char *s, size_t len);

/* ------------------------------------------------------------------------ */
/* parse_arg.c                                                               */

bool is_name(const char *s, size_t len);
/* A number s[0..len): decimal, or hex after 0x / 0X, no sign, into *out.
 * NUM_OK, NUM_SYNTAX (not a number) or NUM_RANGE (over 64 bits). */
enum { NUM_OK, NUM_SYNTAX, NUM_RANGE };
int lex_num(const char *s, size_t len, uint64_t *out);
int arg_name(struct parse_ctx *p, const struct token *t, const char *what, const char **out);
int arg_u64(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	    const char *what, uint64_t max, uint64_t *out);
int arg_word(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	     const char *what, uint32_t *out);
int arg_pattern(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
		struct pattern *out);
int arg_span(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	     struct span *out);
int arg_range(struct parse_ctx *p, const struct token *t, struct range *out);
int arg_addr(struct parse_ctx *p, const struct token *t, struct addr *out);
int arg_snap(struct parse_ctx *p, const struct token *t, const char *s, size_t len,
	     struct expect_item *out);
int arg_where(struct parse_ctx *p, const struct token *t, struct expect_item *out);
/* yes,no*N,...: the answers of `same`. */
int arg_same(struct parse_ctx *p, const struct token *t, struct expect_item *out);
/* A name that may not be given to a device: a command or location word, ok,
 * any, or an error name (they would make lines ambiguous). */
bool is_reserved_device_name(const char *s, size_t len);

/* ------------------------------------------------------------------------ */
/* parse_opt.c: cursors, option words, expectations                          */

/* The argument tokens of one step, t[pos..n), and what ends them. */
struct cursor {
	struct parse_ctx *p;
	const struct token *t;
	size_t n, pos;
	const struct token *stop; /* "->" or "||" after them; NULL: end of line */
	unsigned int eol_col;
};

/* "expected WHAT, found <stop or end of line>"; returns -EINVAL. */
int cur_missing(struct cursor *c, const char *what);
/* The next token, or NULL after cur_missing(c, what). */
const struct token *cur_take(struct cursor *c, const char *what);

/* Option words of a command, matched in any order. */
enum opt_form {
	OPT_WORD, /* write */
	OPT_KEY, /* align=A: the value follows '=' */
	OPT_PREFIX, /* file:F: the value follows ':' */
	OPT_NEXT, /* as NAME: the value is the next token */
};

struct opt_spec {
	const char *word;
	enum opt_form form;
	unsigned char group; /* at most one option per nonzero group */
	const char *show; /* for messages: "align=A" */
};

#define OPT_MAX 12

struct opts {
	const struct token *tok[OPT_MAX]; /* the option's token, NULL if absent */
	const struct token *vtok[OPT_MAX]; /* the token holding its value */
	const char *val[OPT_MAX];
	size_t vlen[OPT_MAX];
};

/* Match every remaining token of @c against spec[0..n); indexes of o are
 * those of spec. Unknown, repeated or conflicting words are errors. */
int opts_parse(struct cursor *c, const struct opt_spec *spec, size_t n, struct opts *o);

/* What a command accepts after "->". */
struct expect_rules {
	unsigned int keys; /* 1u << EXP_* for the KEY=VALUE items allowed */
	int bare; /* EXP_PATTERN, EXP_VALUE, EXP_WHERE, or -1 for none */
	bool bare_required; /* rmw: the old pattern */
};

/* Parse t[0..n) (the tokens after "->"; arrow is that token or NULL when
 * the step had none) into @e. @cmd names the command in messages. */
int expect_parse(struct cursor *c, const struct token *arrow, const struct expect_rules *r,
		 const char *cmd, struct expect *e);

/* ------------------------------------------------------------------------ */
/* parse.c                                                                   */

/* Where a step stands, for the words that may not stand there. */
enum step_ctx {
	CTX_LINE, /* a line of its own */
	CTX_IF, /* after if NAME=V: */
	CTX_PART, /* a part of together */
};

/*
 * Parse t[0..n) (substituted, n >= 1) into @out. @stop is the token that
 * ends the step ("||" in together) or NULL at the end of the line, whose
 * column is @eol_col. @text is the step's text. Errors: -EINVAL, -ENOMEM.
 */
int step_parse(struct parse_ctx *p, const struct token *t, size_t n, const struct token *stop,
	       unsigned int eol_col, const char *text, enum step_ctx ctx, struct step *out);

bool is_command_word(const char *s, size_t len);
bool is_device_verb(const char *s, size_t len);

/* ------------------------------------------------------------------------ */
/* script.c: the block tree                                                  */

struct variant {
	const char *name;
	size_t name_len;
	uint32_t hash; /* name_hash(name): lookups compare it first */
	const char **values;
	size_t nvalues;
	unsigned int line;
};

/* if NAME=V: (negate: NAME!=V:) */
struct cond {
	size_t variant;
	const char *value;
	bool negate;
};

enum node_kind { NODE_STEP, NODE_REPEAT };

struct node {
	enum node_kind kind;
	unsigned int line;
	unsigned int eol_col;
	const struct token *tok; /* the whole line */
	size_t ntok;
	bool var; /* a token (after the if-prefixes) holds a $reference */
	/* NODE_STEP */
	size_t first; /* the step's first token, after the if-prefixes */
	const struct cond *conds;
	size_t nconds;
	const struct step *cached; /* parsed once when !var */
	/* NODE_REPEAT: tok[1] is the count */
	const char *loop_var; /* NULL without "as VAR" */
	const struct node *body;
	size_t nbody;
	bool count_uses_outer; /* the count of a nested repeat uses loop_var */
};

struct script {
	char *path;
	struct arena arena;
	struct vec variants; /* struct variant, in declaration order */
	size_t ncombos;
	const struct node *nodes;
	size_t nnodes;
	struct vec devices; /* const char *: names of literal device lines */
	struct vec procs; /* const char *: children of literal fork lines so far */
	bool procs_open; /* a fork line so far names its child through a variable */
};

static inline const struct variant *script_variant(const struct script *s, size_t i)
{
	return &((const struct variant *)s->variants.data)[i];
}

bool script_knows_device(const struct script *s, const char *name, size_t len);
/* Whether process name[0..len) can exist at the line being parsed: main, a
 * child of a fork line above, or any name once a fork line above names its
 * child (or its command) through a variable. True without a script. */
bool script_knows_process(const struct script *s, const char *name, size_t len);
uint32_t name_hash(const char *name, size_t len);
/* The index of variant name[0..len) declared so far, or -1. */
long script_find_variant(const struct script *s, const char *name, size_t len);
bool cond_holds(const struct env *e, const struct cond *c);

/* ------------------------------------------------------------------------ */
/* validate.c                                                                */

/* The loop variables enclosing a line while the file is parsed. */
struct scope {
	size_t nloops;
	const char *loop_name[SCRIPT_MAX_DEPTH];
	unsigned int loop_line[SCRIPT_MAX_DEPTH];
};

/* The line of a later "variant NAME" line in the text @lx has not read
 * yet, or 0: to tell "used too early" from "undefined". */
unsigned int later_variant(const struct lexer *lx, const char *name, size_t len);

/* Check every $reference of t[0..n) names a variant declared before or an
 * enclosing loop variable (p->line is the line). */
int check_refs(struct parse_ctx *p, const struct script *s, const struct scope *sc,
	       const struct lexer *rest, const struct token *t, size_t n);

/* Parse a step node for every combination of the variants it uses (loop
 * variables at "0"); when it uses none, keep the parse in node->cached. */
int validate_step(struct parse_ctx *p, struct script *s, const struct scope *sc,
		  struct node *node);
/* Same for the count of a repeat node. */
int validate_count(struct parse_ctx *p, struct script *s, const struct scope *sc,
		   const struct node *node);

/* Substitute and parse step @node under @e into @st (in p->arena). */
int node_parse(struct parse_ctx *p, const struct env *e, const struct node *node,
	       struct step *st);

/* The count of repeat @node under @e (p->arena gets the substitution). */
int repeat_count(struct parse_ctx *p, const struct env *e, const struct node *node,
		 uint64_t *out);

#endif /* DEVMM_CLI_SCRIPT_INT_H */
