/* SPDX-License-Identifier: MIT */
/*
 * One concrete step: tokens (variables already substituted) -> struct step.
 *
 *   [PROC:] COMMAND ARGS... [-> EXPECTATIONS...]
 *   [PROC:] D VERB ARGS...  [-> EXPECTATIONS...]      (a device command)
 *   together STEP || STEP [|| STEP...]
 *
 * Each command is a row of a table: its word, its argument parser (the
 * positional arguments, then its option words in any order), and what it
 * accepts after "->". A line whose first word is no command is a device
 * command when its second word is a device verb; the device need not be
 * declared yet (that is the runner's check), but a declared device followed
 * by a wrong verb gets a message that says so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "script_int.h"

#define MAX_PAGE SCRIPT_MAX_PAGE
#define K(x) (1u << EXP_##x)

/* ------------------------------------------------------------------------ */
/* Positional arguments                                                      */

static int take_name(struct cursor *c, const char *what, const char **out)
{
	const struct token *t = cur_take(c, what);

	return t ? arg_name(c->p, t, what, out) : c->p->err;
}

static int take_u64(struct cursor *c, const char *what, uint64_t max, uint64_t *out)
{
	const struct token *t = cur_take(c, what);

	return t ? arg_u64(c->p, t, t->s, t->len, what, max, out) : c->p->err;
}

static int take_range(struct cursor *c, struct range *out)
{
	const struct token *t = cur_take(c, "a range (R, R[a], R[a..b] or R[a..])");

	return t ? arg_range(c->p, t, out) : c->p->err;
}

static int take_pattern(struct cursor *c, struct pattern *out)
{
	const struct token *t = cur_take(c, "a pattern");

	return t ? arg_pattern(c->p, t, t->s, t->len, out) : c->p->err;
}

static int take_word(struct cursor *c, const char *what, uint32_t *out)
{
	const struct token *t = cur_take(c, what);

	return t ? arg_word(c->p, t, t->s, t->len, what, out) : c->p->err;
}

static int opt_u64(struct cursor *c, const struct opts *o, int i, const char *what,
		   uint64_t max, uint64_t *out)
{
	return arg_u64(c->p, o->vtok[i], o->val[i], o->vlen[i], what, max, out);
}

/* The index of the option of spec[first..first+n) that was given, or -1. */
static int opt_which(const struct opts *o, int first, int n)
{
	for (int i = first; i < first + n; i++)
		if (o->tok[i])
			return i - first;
	return -1;
}

/* NAME or NAME+N in an option value (file:F+PGOFF, to=R2+PAGES). */
static int name_plus(struct cursor *c, const struct opts *o, int i, const char *what,
		     const char **name, uint64_t *n)
{
	const char *s = o->val[i], *plus = memchr(s, '+', o->vlen[i]);
	size_t nlen = plus ? (size_t)(plus - s) : o->vlen[i];

	*n = 0;
	if (!is_name(s, nlen))
		return perr(c->p, o->vtok[i]->col, "expected %s, found %s", what, Q(s, nlen));
	*name = arena_strndup(c->p->arena, s, nlen);
	if (!*name)
		return poom(c->p);
	if (plus)
		return arg_u64(c->p, o->vtok[i], plus + 1, o->vlen[i] - nlen - 1, "a page count",
			       MAX_PAGE, n);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Commands: machine, processes, mappings                                    */

static int parse_none(struct cursor *c, struct step *st)
{
	(void)c;
	(void)st;
	return 0;
}

/* mthp=O,O,... (orders 2..8) or mthp=none. */
static int parse_mthp(struct cursor *c, const struct opts *o, int i, unsigned int *out)
{
	const char *v = o->val[i];
	size_t n = o->vlen[i], k = 0;

	*out = 0;
	if (n == 4 && !memcmp(v, "none", 4))
		return 0;
	while (k < n) {
		if (v[k] < '2' || v[k] > '8' || (k + 1 < n && v[k + 1] != ','))
			break;
		*out |= 1u << (v[k] - '0');
		if (k + 1 == n)
			return 0;
		k += 2;
	}
	return perr(c->p, o->vtok[i]->col, "expected mthp=none or orders 2..8 separated by commas, found %s",
		    Q(v, n));
}

/* contents=none (the only value): metadata-only memory. */
static int parse_contents(struct cursor *c, const struct opts *o, int k, bool *none)
{
	if (!o->tok[k])
		return 0;
	if (o->vlen[k] != 4 || memcmp(o->val[k], "none", 4))
		return perr(c->p, o->tok[k]->col, "expected none after contents=, found %s",
			    Q(o->val[k], o->vlen[k]));
	*none = true;
	return 0;
}

/* system fail-thp-alloc [N]: the next N (default 1) order-9 allocations. */
static int parse_fail_thp_alloc(struct cursor *c, struct step *st)
{
	st->u.system.has_fail_thp = true;
	st->u.system.fail_thp = 1;
	if (c->pos == c->n)
		return 0;
	return take_u64(c, "a count", UINT32_MAX, &st->u.system.fail_thp);
}

/* thp=always|madvise|never, hzero=on|off. */
static int parse_thp_mode(struct cursor *c, const struct opts *o, int i, int k, struct step *st)
{
	static const char *const modes[] = { "never", "madvise", "always" };

	st->u.system.has_thp = o->tok[i] != NULL;
	st->u.system.has_hzero = o->tok[k] != NULL;
	if (o->tok[i]) {
		unsigned int m = 0;

		while (m < 3 && !(strlen(modes[m]) == o->vlen[i] && !memcmp(modes[m], o->val[i], o->vlen[i])))
			m++;
		if (m == 3)
			return perr(c->p, o->vtok[i]->col, "expected thp=always, thp=madvise or thp=never, found %s",
				    Q(o->val[i], o->vlen[i]));
		st->u.system.thp = m;
	}
	if (o->tok[k]) {
		if (o->vlen[k] == 2 && !memcmp(o->val[k], "on", 2))
			st->u.system.hzero_off = false;
		else if (o->vlen[k] == 3 && !memcmp(o->val[k], "off", 3))
			st->u.system.hzero_off = true;
		else
			return perr(c->p, o->vtok[k]->col, "expected hzero=on or hzero=off, found %s",
				    Q(o->val[k], o->vlen[k]));
	}
	return 0;
}

static int parse_system(struct cursor *c, struct step *st)
{
	enum { SO_PAGES, SO_MTHP, SO_CONTENTS, SO_THP, SO_HZERO };
	static const struct opt_spec spec[] = {
		[SO_PAGES] = { "pages", OPT_KEY, 0, "pages=N" },
		[SO_MTHP] = { "mthp", OPT_KEY, 0, "mthp=O,O,..." },
		[SO_CONTENTS] = { "contents", OPT_KEY, 0, "contents=none" },
		[SO_THP] = { "thp", OPT_KEY, 0, "thp=MODE" },
		[SO_HZERO] = { "hzero", OPT_KEY, 0, "hzero=on|off" },
	};
	struct opts o;

	if (c->pos < c->n && c->t[c->pos].len == 14 && !memcmp(c->t[c->pos].s, "fail-thp-alloc", 14)) {
		c->pos++;
		return parse_fail_thp_alloc(c, st);
	}
	if (opts_parse(c, spec, ARRAY_SIZE(spec), &o))
		return c->p->err;
	if (!o.tok[SO_PAGES] && !o.tok[SO_MTHP] && !o.tok[SO_CONTENTS] && !o.tok[SO_THP] && !o.tok[SO_HZERO])
		return cur_missing(c, "pages=N, mthp=O,O,..., thp=MODE, hzero=on|off, fail-thp-alloc or contents=none");
	if (o.tok[SO_PAGES] && opt_u64(c, &o, SO_PAGES, "a page count", MAX_PAGE, &st->u.system.pages))
		return c->p->err;
	if (parse_contents(c, &o, SO_CONTENTS, &st->u.system.no_contents) ||
	    parse_thp_mode(c, &o, SO_THP, SO_HZERO, st))
		return c->p->err;
	st->u.system.has_mthp = o.tok[SO_MTHP] != NULL;
	return st->u.system.has_mthp ? parse_mthp(c, &o, SO_MTHP, &st->u.system.mthp) : 0;
}

enum { DO_PRIVATE, DO_COHERENT, DO_PAGES, DO_COW, DO_CONTENTS };

static const struct opt_spec device_opts[] = {
	[DO_PRIVATE] = { "private", OPT_WORD, 1, "private" },
	[DO_COHERENT] = { "coherent", OPT_WORD, 1, "coherent" },
	[DO_PAGES] = { "pages", OPT_KEY, 0, "pages=N" },
	[DO_COW] = { "cow", OPT_KEY, 0, "cow=system|device" },
	[DO_CONTENTS] = { "contents", OPT_KEY, 0, "contents=none" },
};

static int parse_device(struct cursor *c, struct step *st)
{
	const struct token *name = cur_take(c, "a device name");
	struct opts o;

	if (!name || arg_name(c->p, name, "a device name", &st->dev))
		return c->p->err;
	if (is_reserved_device_name(name->s, name->len))
		return perr(c->p, name->col, "%s cannot name a device (it is a reserved word)",
			    Q(name->s, name->len));
	if (opts_parse(c, device_opts, ARRAY_SIZE(device_opts), &o))
		return c->p->err;
	if (opt_which(&o, DO_PRIVATE, 2) < 0)
		return cur_missing(c, "private or coherent");
	st->u.device.type = o.tok[DO_COHERENT] ? DEV_COHERENT : DEV_PRIVATE;
	st->u.device.has_pages = o.tok[DO_PAGES] != NULL;
	if (o.tok[DO_PAGES] && opt_u64(c, &o, DO_PAGES, "a page count", MAX_PAGE,
				       &st->u.device.pages))
		return c->p->err;
	if (parse_contents(c, &o, DO_CONTENTS, &st->u.device.no_contents))
		return c->p->err;
	if (!o.tok[DO_COW])
		return 0;
	if (o.vlen[DO_COW] == 6 && !memcmp(o.val[DO_COW], "device", 6))
		st->u.device.cow = COW_DEVICE;
	else if (!(o.vlen[DO_COW] == 6 && !memcmp(o.val[DO_COW], "system", 6)))
		return perr(c->p, o.tok[DO_COW]->col, "expected system or device after cow=, found %s",
			    Q(o.val[DO_COW], o.vlen[DO_COW]));
	return 0;
}

static int parse_fork(struct cursor *c, struct step *st)
{
	return take_name(c, "a process name", &st->u.fork.child);
}

enum { MO_ANON, MO_SHARED, MO_FILE, MO_PRIVATE, MO_SHARED_FILE, MO_RW, MO_R, MO_NONE, MO_ALIGN, MO_THP, MO_NOTHP };

static const struct opt_spec map_opts[] = {
	[MO_ANON] = { "anon", OPT_WORD, 1, "anon" },
	[MO_SHARED] = { "shared", OPT_WORD, 1, "shared" },
	[MO_FILE] = { "file", OPT_PREFIX, 1, "file:F[+PGOFF]" },
	[MO_PRIVATE] = { "private", OPT_WORD, 2, "private" },
	[MO_SHARED_FILE] = { "shared-file", OPT_WORD, 2, "shared-file" },
	[MO_RW] = { "rw", OPT_WORD, 3, "rw" },
	[MO_R] = { "r", OPT_WORD, 3, "r" },
	[MO_NONE] = { "none", OPT_WORD, 3, "none" },
	[MO_ALIGN] = { "align", OPT_KEY, 0, "align=A" },
	[MO_THP] = { "thp", OPT_WORD, 4, "thp" },
	[MO_NOTHP] = { "nothp", OPT_WORD, 4, "nothp" },
};

/* The sharing words say how a file is mapped; anonymous memory is private
 * by nature (so "anon private" is fine) and "shared" is shared by nature. */
static int map_sharing(struct cursor *c, const struct opts *o, struct step *st)
{
	const struct token *t = o->tok[MO_SHARED_FILE];

	if (t && !o->tok[MO_FILE])
		return perr(c->p, t->col, "'shared-file' needs file:F");
	t = o->tok[MO_PRIVATE];
	if (t && o->tok[MO_SHARED])
		return perr(c->p, t->col, "'private' conflicts with 'shared' (shared memory)");
	st->u.map.shared_file = o->tok[MO_SHARED_FILE] != NULL;
	return 0;
}

static int parse_map(struct cursor *c, struct step *st)
{
	struct opts o;
	int prot;

	if (take_name(c, "a region name", &st->u.map.region) ||
	    take_u64(c, "a page count", MAX_PAGE, &st->u.map.pages) ||
	    opts_parse(c, map_opts, ARRAY_SIZE(map_opts), &o) || map_sharing(c, &o, st))
		return c->p->err;
	st->u.map.backing = o.tok[MO_SHARED] ? BACK_SHARED : o.tok[MO_FILE] ? BACK_FILE : BACK_ANON;
	if (o.tok[MO_FILE] && name_plus(c, &o, MO_FILE, "a file name after file:",
					&st->u.map.file, &st->u.map.pgoff))
		return c->p->err;
	prot = opt_which(&o, MO_RW, 3);
	st->u.map.prot = prot < 0 ? SPROT_RW : (enum step_prot)prot;
	st->u.map.align = 1;
	if (o.tok[MO_ALIGN] && opt_u64(c, &o, MO_ALIGN, "an alignment in pages", MAX_PAGE,
				       &st->u.map.align))
		return c->p->err;
	if (!st->u.map.align)
		return perr(c->p, o.tok[MO_ALIGN]->col, "align= must be at least 1 page");
	st->u.map.thp = o.tok[MO_THP] ? 1 : o.tok[MO_NOTHP] ? -1 : 0;
	return 0;
}

static int parse_range(struct cursor *c, struct step *st)
{
	return take_range(c, &st->range);
}

static const struct opt_spec prot_opts[] = {
	{ "rw", OPT_WORD, 1, "rw" }, { "r", OPT_WORD, 1, "r" }, { "none", OPT_WORD, 1, "none" },
};

static int parse_mprotect(struct cursor *c, struct step *st)
{
	struct opts o;
	int prot;

	if (take_range(c, &st->range) || opts_parse(c, prot_opts, ARRAY_SIZE(prot_opts), &o))
		return c->p->err;
	prot = opt_which(&o, 0, 3);
	if (prot < 0)
		return cur_missing(c, "rw, r or none");
	st->u.mprotect.prot = (enum step_prot)prot;
	return 0;
}

static const struct opt_spec advice_opts[] = {
	[ADV_DONTNEED] = { "dontneed", OPT_WORD, 1, "dontneed" },
	[ADV_FREE] = { "free", OPT_WORD, 1, "free" },
	[ADV_DONTFORK] = { "dontfork", OPT_WORD, 1, "dontfork" },
	[ADV_DOFORK] = { "dofork", OPT_WORD, 1, "dofork" },
	[ADV_HUGEPAGE] = { "hugepage", OPT_WORD, 1, "hugepage" },
	[ADV_NOHUGEPAGE] = { "nohugepage", OPT_WORD, 1, "nohugepage" },
	[ADV_POPULATE_READ] = { "populate-read", OPT_WORD, 1, "populate-read" },
	[ADV_POPULATE_WRITE] = { "populate-write", OPT_WORD, 1, "populate-write" },
};

static int parse_madvise(struct cursor *c, struct step *st)
{
	struct opts o;
	int adv;

	if (take_range(c, &st->range) || opts_parse(c, advice_opts, ARRAY_SIZE(advice_opts), &o))
		return c->p->err;
	adv = opt_which(&o, 0, (int)ARRAY_SIZE(advice_opts));
	if (adv < 0)
		return cur_missing(c, "dontneed, free, dontfork, dofork, hugepage, nohugepage, populate-read or "
				      "populate-write");
	st->u.madvise.advice = (enum step_advice)adv;
	return 0;
}

enum { RO_TO, RO_DONTUNMAP, RO_AS };

static const struct opt_spec mremap_opts[] = {
	[RO_TO] = { "to", OPT_KEY, 0, "to=R2+PAGES" },
	[RO_DONTUNMAP] = { "dontunmap", OPT_WORD, 0, "dontunmap" },
	[RO_AS] = { "as", OPT_NEXT, 0, "as NAME" },
};

static int parse_mremap(struct cursor *c, struct step *st)
{
	struct opts o;

	if (take_range(c, &st->range) || opts_parse(c, mremap_opts, ARRAY_SIZE(mremap_opts), &o))
		return c->p->err;
	if (!o.tok[RO_TO])
		return cur_missing(c, "to=R2+PAGES");
	if (!o.tok[RO_AS])
		return cur_missing(c, "as NAME");
	st->u.mremap.dontunmap = o.tok[RO_DONTUNMAP] != NULL;
	if (name_plus(c, &o, RO_TO, "a region name after to=", &st->u.mremap.to_region,
		      &st->u.mremap.to_pages))
		return c->p->err;
	return arg_name(c->p, o.vtok[RO_AS], "a region name after 'as'", &st->u.mremap.as);
}

/* ------------------------------------------------------------------------ */
/* Commands: files, CPU access, pins, observation                            */

static int parse_file(struct cursor *c, struct step *st)
{
	if (take_name(c, "a file name", &st->u.file.name) ||
	    take_u64(c, "a page count", MAX_PAGE, &st->u.file.pages))
		return c->p->err;
	st->u.file.has_pattern = c->pos < c->n;
	return st->u.file.has_pattern ? take_pattern(c, &st->u.file.pat) : 0;
}

static int parse_pwrite(struct cursor *c, struct step *st)
{
	st->u.file.has_pattern = true;
	if (take_name(c, "a file name", &st->u.file.name))
		return c->p->err;
	return take_pattern(c, &st->u.file.pat);
}

static int parse_pread(struct cursor *c, struct step *st)
{
	return take_name(c, "a file name", &st->u.file.name);
}

/* write RANGE PATTERN, rmw RANGE NEWPATTERN, D write RANGE PATTERN */
static int parse_range_pattern(struct cursor *c, struct step *st)
{
	if (take_range(c, &st->range))
		return c->p->err;
	return take_pattern(c, &st->u.write.pat);
}

static int parse_addr(struct cursor *c, struct step *st)
{
	const struct token *t = cur_take(c, "an address (R+OFF)");

	return t ? arg_addr(c->p, t, &st->u.word.addr) : c->p->err;
}

static int parse_store(struct cursor *c, struct step *st)
{
	if (parse_addr(c, st))
		return c->p->err;
	return take_word(c, "a value", &st->u.word.value);
}

static int parse_atomic_add(struct cursor *c, struct step *st)
{
	if (take_range(c, &st->range))
		return c->p->err;
	return take_word(c, "a value", &st->u.atomic_add.value);
}

enum { GO_WRITE, GO_FAST, GO_PIN, GO_LONGTERM, GO_AS };

static const struct opt_spec gup_opts[] = {
	[GO_WRITE] = { "write", OPT_WORD, 0, "write" },
	[GO_FAST] = { "fast", OPT_WORD, 0, "fast" },
	[GO_PIN] = { "pin", OPT_WORD, 0, "pin" },
	[GO_LONGTERM] = { "longterm", OPT_WORD, 0, "longterm" },
	[GO_AS] = { "as", OPT_NEXT, 0, "as H" },
};

static int parse_gup(struct cursor *c, struct step *st)
{
	struct opts o;

	if (take_range(c, &st->range) || opts_parse(c, gup_opts, ARRAY_SIZE(gup_opts), &o))
		return c->p->err;
	if (o.tok[GO_LONGTERM] && !o.tok[GO_PIN])
		return perr(c->p, o.tok[GO_LONGTERM]->col, "'longterm' needs 'pin'");
	st->u.gup.write = o.tok[GO_WRITE] != NULL;
	st->u.gup.fast = o.tok[GO_FAST] != NULL;
	st->u.gup.pin = o.tok[GO_PIN] != NULL;
	st->u.gup.longterm = o.tok[GO_LONGTERM] != NULL;
	if (!o.tok[GO_AS])
		return 0;
	return arg_name(c->p, o.vtok[GO_AS], "a handle name after 'as'", &st->u.gup.as);
}

static int parse_unpin(struct cursor *c, struct step *st)
{
	return take_name(c, "a handle name", &st->u.unpin.handle);
}

/* The pages of a span, when the line alone says (R[a], R[a..b]); else 0. */
static uint64_t span_pages(const struct span *sp)
{
	if (sp->kind == SPAN_PAGE || sp->kind == SPAN_RANGE)
		return sp->last - sp->first + 1;
	return 0;
}

/* same RANGE [PROC:]RANGE2: PROC must be a process that can exist here,
 * and two ranges whose sizes the line states must have the same. */
static int parse_same(struct cursor *c, struct step *st)
{
	const struct token *t;
	struct token rest;
	const char *colon;
	uint64_t n1, n2;

	if (take_range(c, &st->range))
		return c->p->err;
	t = cur_take(c, "a second range ([PROC:]R, R[a], R[a..b] or R[a..])");
	if (!t)
		return c->p->err;
	rest = *t;
	colon = memchr(t->s, ':', t->len);
	if (colon) {
		size_t plen = (size_t)(colon - t->s);

		if (!is_name(t->s, plen))
			return perr(c->p, t->col, "expected a process name before ':', found %s",
				    Q(t->s, t->len));
		if (!script_knows_process(c->p->script, t->s, plen))
			return perr(c->p, t->col,
				    "no process %s here (main and the children of the fork lines "
				    "above are)", Q(t->s, plen));
		st->u.same.proc2 = arena_strndup(c->p->arena, t->s, plen);
		if (!st->u.same.proc2)
			return poom(c->p);
		rest.s = colon + 1;
		rest.len = t->len - plen - 1;
	}
	if (arg_range(c->p, &rest, &st->u.same.range2))
		return c->p->err;
	n1 = span_pages(&st->range.span);
	n2 = span_pages(&st->u.same.range2.span);
	if (n1 && n2 && n1 != n2)
		return perr(c->p, t->col, "the two ranges differ in size: %s has %llu pages, %s has %llu",
			    Q(c->t[c->pos - 2].s, c->t[c->pos - 2].len), (unsigned long long)n1,
			    Q(t->s, t->len), (unsigned long long)n2);
	return 0;
}

static int parse_readpin(struct cursor *c, struct step *st)
{
	return take_name(c, "a handle name", &st->u.pinio.handle);
}

static int parse_writepin(struct cursor *c, struct step *st)
{
	if (take_name(c, "a handle name", &st->u.pinio.handle))
		return c->p->err;
	return take_pattern(c, &st->u.pinio.pat);
}

static int parse_show(struct cursor *c, struct step *st)
{
	if (c->pos == c->n)
		return 0;
	return take_name(c, "a process name", &st->u.show.proc);
}

static int parse_expect_freed(struct cursor *c, struct step *st)
{
	if (take_name(c, "a device name", &st->dev))
		return c->p->err;
	return take_u64(c, "a count", UINT64_MAX, &st->u.expect_freed.count);
}

/* inject SITE [countdown=N] [probability=PPM] [seed=S] (a devmm extension:
 * no option disarms the site). The site name is the runner's to check. */
enum { IO_COUNTDOWN, IO_PROBABILITY, IO_SEED };

static int parse_inject(struct cursor *c, struct step *st)
{
	static const struct opt_spec spec[] = {
		[IO_COUNTDOWN] = { "countdown", OPT_KEY, 0, "countdown=N" },
		[IO_PROBABILITY] = { "probability", OPT_KEY, 0, "probability=PPM" },
		[IO_SEED] = { "seed", OPT_KEY, 0, "seed=S" },
	};
	struct opts o;

	if (take_name(c, "an injection site (frame, pgtable, meta, migrate_to_ram, cow_alloc, thp_alloc, policy)",
		      &st->u.inject.site))
		return c->p->err;
	if (opts_parse(c, spec, ARRAY_SIZE(spec), &o))
		return c->p->err;
	if (o.tok[IO_COUNTDOWN] && opt_u64(c, &o, IO_COUNTDOWN, "a countdown", UINT32_MAX, &st->u.inject.countdown))
		return c->p->err;
	if (o.tok[IO_PROBABILITY] &&
	    opt_u64(c, &o, IO_PROBABILITY, "a probability in parts per million", 1000000,
		    &st->u.inject.probability))
		return c->p->err;
	if (o.tok[IO_SEED] && opt_u64(c, &o, IO_SEED, "a seed", UINT64_MAX, &st->u.inject.seed))
		return c->p->err;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The tables                                                                */

#define CMD_NO_PROC 1u /* machine-wide: no PROC: prefix */
#define CMD_NO_EXPECT 2u /* no "->" at all */

struct command {
	const char *word;
	const char *show; /* in messages: "map", "D read" (NULL: the word) */
	enum step_kind kind;
	int (*parse)(struct cursor *c, struct step *st);
	struct expect_rules rules;
	unsigned int flags;
};

#define NOKEYS { 0, -1, false }

static const struct command commands[] = {
	{ "system", NULL, STEP_SYSTEM, parse_system, NOKEYS, CMD_NO_PROC },
	{ "device", NULL, STEP_DEVICE, parse_device, NOKEYS, CMD_NO_PROC },
	{ "fork", NULL, STEP_FORK, parse_fork, NOKEYS, 0 },
	{ "exit", NULL, STEP_EXIT, parse_none, NOKEYS, 0 },
	{ "map", NULL, STEP_MAP, parse_map, NOKEYS, 0 },
	{ "munmap", NULL, STEP_MUNMAP, parse_range, NOKEYS, 0 },
	{ "mprotect", NULL, STEP_MPROTECT, parse_mprotect, NOKEYS, 0 },
	{ "madvise", NULL, STEP_MADVISE, parse_madvise, NOKEYS, 0 },
	{ "mremap", NULL, STEP_MREMAP, parse_mremap, NOKEYS, 0 },
	{ "file", NULL, STEP_FILE, parse_file, NOKEYS, 0 },
	{ "pwrite", NULL, STEP_PWRITE, parse_pwrite, NOKEYS, 0 },
	{ "pread", NULL, STEP_PREAD, parse_pread, { 0, EXP_PATTERN, false }, 0 },
	{ "write", NULL, STEP_WRITE, parse_range_pattern, NOKEYS, 0 },
	{ "read", NULL, STEP_READ, parse_range, { 0, EXP_PATTERN, false }, 0 },
	{ "store", NULL, STEP_STORE, parse_store, NOKEYS, 0 },
	{ "load", NULL, STEP_LOAD, parse_addr, { 0, EXP_VALUE, false }, 0 },
	{ "rmw", NULL, STEP_RMW, parse_range_pattern, { 0, EXP_PATTERN, true }, 0 },
	{ "gup", NULL, STEP_GUP, parse_gup, { K(PINNED), -1, false }, 0 },
	{ "unpin", NULL, STEP_UNPIN, parse_unpin, NOKEYS, 0 },
	{ "readpin", NULL, STEP_READPIN, parse_readpin, { 0, EXP_PATTERN, true }, 0 },
	{ "writepin", NULL, STEP_WRITEPIN, parse_writepin, NOKEYS, 0 },
	{ "where", NULL, STEP_WHERE, parse_range, { 0, EXP_WHERE, false }, 0 },
	{ "level", NULL, STEP_LEVEL, parse_range, { 0, EXP_WHERE, false }, 0 },
	{ "same", NULL, STEP_SAME, parse_same, { 0, EXP_SAME, true }, 0 },
	{ "stat", NULL, STEP_STAT, parse_range,
	  { K(REFS) | K(MAPS) | K(PINS) | K(WRITABLE) | K(ORDER) | K(FMAPS) | K(PMDMAPS) | K(PARTIAL), -1, false },
	  0 },
	{ "check", NULL, STEP_CHECK, parse_none, NOKEYS, 0 },
	{ "show", NULL, STEP_SHOW, parse_show, NOKEYS, CMD_NO_EXPECT },
	{ "expect-freed", NULL, STEP_EXPECT_FREED, parse_expect_freed, NOKEYS, 0 },
	{ "inject", NULL, STEP_INJECT, parse_inject, NOKEYS, CMD_NO_PROC },
	{ "split-deferred", NULL, STEP_SPLIT_DEFERRED, parse_none, { K(SPLIT), -1, false }, CMD_NO_PROC },
};

static const struct command device_verbs[] = {
	{ "read", "D read", STEP_DEV_READ, parse_range,
	  { K(CPAGES) | K(FAULTS) | K(DATA), -1, false }, 0 },
	{ "write", "D write", STEP_DEV_WRITE, parse_range_pattern,
	  { K(CPAGES) | K(FAULTS), -1, false }, 0 },
	{ "migrate-to-dev", "D migrate-to-dev", STEP_DEV_MIGRATE_TO_DEV, parse_range,
	  { K(CPAGES) | K(DATA), -1, false }, 0 },
	{ "migrate-to-sys", "D migrate-to-sys", STEP_DEV_MIGRATE_TO_SYS, parse_range,
	  { K(CPAGES), -1, false }, 0 },
	{ "snapshot", "D snapshot", STEP_DEV_SNAPSHOT, parse_range, { K(SNAP), -1, false }, 0 },
	{ "exclusive", "D exclusive", STEP_DEV_EXCLUSIVE, parse_range,
	  { K(CPAGES) | K(DATA), -1, false }, 0 },
	{ "check-exclusive", "D check-exclusive", STEP_DEV_CHECK_EXCLUSIVE, parse_range, NOKEYS,
	  0 },
	{ "atomic-add", "D atomic-add", STEP_DEV_ATOMIC_ADD, parse_atomic_add,
	  { K(CPAGES) | K(FAULTS), -1, false }, 0 },
	{ "release", "D release", STEP_DEV_RELEASE, parse_none, NOKEYS, 0 },
	{ "fail-next-alloc", "D fail-next-alloc", STEP_DEV_FAIL_NEXT_ALLOC, parse_none, NOKEYS,
	  0 },
	{ "close", "D close", STEP_DEV_CLOSE, parse_none, NOKEYS, 0 },
	{ "pool", "D pool", STEP_DEV_POOL, parse_none, { K(USED) | K(FREE), -1, false }, 0 },
};

#define DEVICE_VERBS                                                                 \
	"read, write, migrate-to-dev, migrate-to-sys, snapshot, exclusive, "         \
	"check-exclusive, atomic-add, release, fail-next-alloc, close or pool"

/* Words that shape the file rather than name a command. */
static const char *const structure_words[] = { "if", "repeat", "end", "variant" };

static const struct command *find(const struct command *tab, size_t n, const struct token *t)
{
	for (size_t i = 0; i < n; i++)
		if (tok_is(t, tab[i].word))
			return &tab[i];
	return NULL;
}

static bool in_list(const char *const *words, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == len && !memcmp(words[i], s, len))
			return true;
	return false;
}

bool is_command_word(const char *s, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strlen(commands[i].word) == len && !memcmp(commands[i].word, s, len))
			return true;
	return in_list(structure_words, ARRAY_SIZE(structure_words), s, len) ||
	       (len == 8 && !memcmp(s, "together", 8));
}

bool is_device_verb(const char *s, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(device_verbs); i++)
		if (strlen(device_verbs[i].word) == len && !memcmp(device_verbs[i].word, s, len))
			return true;
	return false;
}

const char *step_kind_name(enum step_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].kind == kind)
			return commands[i].word;
	for (size_t i = 0; i < ARRAY_SIZE(device_verbs); i++)
		if (device_verbs[i].kind == kind)
			return device_verbs[i].word;
	return kind == STEP_TOGETHER ? "together" : "?";
}

/* ------------------------------------------------------------------------ */
/* A step                                                                    */

/* The command of t[0..n): a command word, or a device and its verb. */
static const struct command *lookup(struct parse_ctx *p, const struct token *t, size_t n,
				    struct cursor *c, struct step *st)
{
	const struct command *cmd = find(commands, ARRAY_SIZE(commands), &t[0]);

	if (cmd)
		return cmd;
	if (n > 1 && (cmd = find(device_verbs, ARRAY_SIZE(device_verbs), &t[1])))
		return arg_name(p, &t[0], "a device name", &st->dev) ? NULL : cmd;
	if (script_knows_device(p->script, t[0].s, t[0].len)) {
		if (n > 1)
			perr(p, t[1].col, "expected a device command (" DEVICE_VERBS
			     ") after %s, found %s", Q(t[0].s, t[0].len), Q(t[1].s, t[1].len));
		else
			cur_missing(c, "a device command (" DEVICE_VERBS ")");
		return NULL;
	}
	perr(p, t[0].col, "unknown command %s", Q(t[0].s, t[0].len));
	return NULL;
}

static bool is_device_step(enum step_kind kind)
{
	return kind >= STEP_DEV_READ && kind <= STEP_DEV_POOL;
}

static size_t find_arrow(const struct token *t, size_t from, size_t n)
{
	while (from < n && !tok_is(&t[from], "->"))
		from++;
	return from;
}

static int parse_command(struct parse_ctx *p, const struct token *t, size_t n,
			 const struct token *stop, unsigned int eol_col,
			 const struct token *proc, struct step *st)
{
	size_t arrow = find_arrow(t, 1, n);
	struct cursor c = { p, t, arrow, 1, arrow < n ? &t[arrow] : stop, eol_col };
	const struct command *cmd = lookup(p, t, arrow, &c, st);
	const char *name;

	if (!cmd)
		return p->err;
	if (proc && (cmd->flags & CMD_NO_PROC))
		return perr(p, proc->col, "'%s' does not take a process prefix", cmd->word);
	st->kind = cmd->kind;
	c.pos = is_device_step(cmd->kind) ? 2 : 1;
	name = cmd->show ? cmd->show : cmd->word;
	if (cmd->parse(&c, st))
		return p->err;
	if (c.pos < c.n && arrow == n && cmd->rules.bare_required)
		return perr(p, t[c.pos].col,
			    "unexpected %s after the arguments of '%s' (expected '->' before it)",
			    Q(t[c.pos].s, t[c.pos].len), name);
	if (c.pos < c.n)
		return perr(p, t[c.pos].col, "unexpected %s after the arguments of '%s'",
			    Q(t[c.pos].s, t[c.pos].len), name);
	if (arrow < n && (cmd->flags & CMD_NO_EXPECT))
		return perr(p, t[arrow].col, "'%s' takes no expectations", name);
	c = (struct cursor){ p, t, n, arrow < n ? arrow + 1 : n, stop, eol_col };
	return expect_parse(&c, arrow < n ? &t[arrow] : NULL, &cmd->rules, name, &st->expect);
}

/* Words that may not stand where they are: structure words, which only
 * shape the file as the first word of a line, and system / together in
 * the places where they make no sense. */
static int misplaced(struct parse_ctx *p, const struct token *w, const struct token *proc,
		     enum step_ctx ctx)
{
	bool structure = in_list(structure_words, ARRAY_SIZE(structure_words), w->s, w->len);
	bool together = tok_is(w, "together");

	if (!structure && !together && !tok_is(w, "system"))
		return 0;
	if (w->var && !together)
		return perr(p, w->col, "%s cannot come from a variable", Q(w->s, w->len));
	if (ctx == CTX_PART && together)
		return perr(p, w->col, "'together' cannot be nested");
	if (ctx == CTX_PART)
		return perr(p, w->col, "%s is not allowed inside 'together'", Q(w->s, w->len));
	if (proc && together)
		return perr(p, proc->col, "'together' does not take a process prefix");
	if (!structure)
		return 0;
	if (proc)
		return perr(p, proc->col, "%s does not take a process prefix", Q(w->s, w->len));
	if (ctx == CTX_IF)
		return perr(p, w->col, "%s cannot follow 'if'", Q(w->s, w->len));
	return perr(p, w->col, "%s is not allowed here", Q(w->s, w->len));
}

static int parse_together(struct parse_ctx *p, const struct token *t, size_t n,
			  const struct token *stop, unsigned int eol_col, struct step *st)
{
	size_t nparts = 1, k = 0, start = 0;
	struct cursor c = { p, t, n, n, stop, eol_col };
	struct step *parts;

	for (size_t i = 0; i < n; i++)
		nparts += tok_is(&t[i], "||");
	if (nparts < 2)
		return cur_missing(&c, n ? "'||' and another step" : "a step after 'together'");
	parts = arena_alloc(p->arena, nparts * sizeof(*parts));
	if (!parts)
		return poom(p);
	for (size_t i = 0; i <= n; i++) {
		const struct token *end = i < n ? &t[i] : stop;
		char *text;

		if (i < n && !tok_is(&t[i], "||"))
			continue;
		c.stop = end;
		if (i == start)
			return cur_missing(&c, "a step");
		text = join_tokens(p->arena, t + start, i - start);
		if (!text)
			return poom(p);
		if (step_parse(p, t + start, i - start, end, eol_col, text, CTX_PART, &parts[k++]))
			return p->err;
		start = i + 1;
	}
	st->kind = STEP_TOGETHER;
	st->u.together.parts = parts;
	st->u.together.nparts = nparts;
	return 0;
}

static int proc_prefix(struct parse_ctx *p, const struct token *t, struct step *st)
{
	if (!is_name(t->s, t->len - 1))
		return perr(p, t->col, "expected a process name before ':', found %s",
			    Q(t->s, t->len));
	st->proc = arena_strndup(p->arena, t->s, t->len - 1);
	return st->proc ? 0 : poom(p);
}

int step_parse(struct parse_ctx *p, const struct token *t, size_t n, const struct token *stop,
	       unsigned int eol_col, const char *text, enum step_ctx ctx, struct step *st)
{
	const struct token *proc = NULL;
	struct cursor c = { p, t, n, n, stop, eol_col };

	memset(st, 0, sizeof(*st));
	st->line = p->line;
	st->col = t[0].col;
	st->text = text;
	st->proc = "main";
	if (t[0].len && t[0].s[t[0].len - 1] == ':') {
		proc = t;
		if (proc_prefix(p, proc, st))
			return p->err;
		if (n == 1)
			return cur_missing(&c, "a command after the process prefix");
		t++;
		n--;
		st->col = t[0].col;
	}
	if (misplaced(p, &t[0], proc, ctx))
		return p->err;
	if (tok_is(&t[0], "together"))
		return parse_together(p, t + 1, n - 1, stop, eol_col, st);
	return parse_command(p, t, n, stop, eol_col, proc, st);
}
