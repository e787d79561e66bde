/* SPDX-License-Identifier: MIT */
/*
 * Judging a step: the status first (success, `ok`, `any` or one errno),
 * then, when the step succeeded, every KEY=VALUE item and bare pattern in
 * source order. The first mismatch becomes "expected X, got Y".
 */
#include "runner.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#define WORDS_PER_PAGE (DMM_PAGE_SIZE / 4)

__attribute__((format(printf, 3, 4))) static bool mismatch(char *msg, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, size, fmt, ap);
	va_end(ap);
	return false;
}

static const char *err_text(int err, char *buf, size_t size)
{
	const char *n;

	if (!err)
		return "ok";
	n = script_errno_name(-err);
	if (n)
		return n;
	snprintf(buf, size, "error %d", -err);
	return buf;
}

static bool check_status(const struct expect *e, int err, char *msg, size_t size)
{
	char b[32];

	switch (e->status) {
	case EXPECT_ANY:
		return true;
	case EXPECT_ERRNO:
		if (err == -e->err)
			return true;
		return mismatch(msg, size, "expected %s, got %s", e->errname, err_text(err, b, sizeof(b)));
	default:
		if (!err)
			return true;
		return mismatch(msg, size, "expected ok, got %s", err_text(err, b, sizeof(b)));
	}
}

/* Words [from, to) of the data buffer (word indices counted like the
 * region) against a pattern. */
static bool check_words(const uint8_t *data, uint64_t word0, uint64_t from, uint64_t to, const struct pattern *p,
			const char *what, char *msg, size_t size)
{
	const uint32_t *w = (const uint32_t *)data;

	for (uint64_t k = from; k < to; k++) {
		uint32_t want = pattern_word(p, k), got = w[k - word0];

		if (want != got)
			return mismatch(msg, size, "expected %s word %llu (page %llu) = %#x, got %#x", what,
					(unsigned long long)k, (unsigned long long)(k / WORDS_PER_PAGE), want, got);
	}
	return true;
}

static bool check_data(const struct outcome *o, const struct expect_item *it, char *msg, size_t size)
{
	uint64_t first = o->data_first, last = o->data_first + o->data_pages - 1;
	const struct span *sp = &it->u.data.span;

	if (!o->data)
		return mismatch(msg, size, "expected %s, got no data", it->text);
	if (sp->kind != SPAN_WHOLE) {
		uint64_t a = sp->first, b = sp->kind == SPAN_FROM ? last : sp->last;

		if (a < first || b > last || a > b)
			return mismatch(msg, size, "expected %s, but the command covered pages %llu..%llu", it->text,
					(unsigned long long)first, (unsigned long long)last);
		first = a;
		last = b;
	}
	return check_words(o->data, o->data_word0, first * WORDS_PER_PAGE, (last + 1) * WORDS_PER_PAGE,
			   &it->u.data.pat, "data", msg, size);
}

static bool check_snap(const struct outcome *o, const struct expect_item *it, char *msg, size_t size)
{
	uint64_t i = 0;

	if (it->u.snap.total != o->nsnap)
		return mismatch(msg, size, "expected %llu snapshot bytes, got %llu",
				(unsigned long long)it->u.snap.total, (unsigned long long)o->nsnap);
	for (size_t r = 0; r < it->u.snap.nruns; r++) {
		for (uint64_t c = 0; c < it->u.snap.runs[r].count; c++, i++) {
			if (o->snap[i] != it->u.snap.runs[r].byte)
				return mismatch(msg, size, "expected snap[%llu] = %02x, got %02x", (unsigned long long)i,
						it->u.snap.runs[r].byte, o->snap[i]);
		}
	}
	return true;
}

static const char *loc_text(const struct loc *l)
{
	static const char *const names[] = { "none", "zero", "sys", "?", "excl", "migrating", "thp", "hzero", "pmd", "pte" };

	return l->kind == LOC_DEVICE ? l->dev : names[l->kind];
}

static bool check_where(const struct outcome *o, const struct expect_item *it, char *msg, size_t size)
{
	uint64_t i = 0;

	if (it->u.where.total != o->nlocs)
		return mismatch(msg, size, "expected %llu locations, got %llu", (unsigned long long)it->u.where.total,
				(unsigned long long)o->nlocs);
	for (size_t r = 0; r < it->u.where.nruns; r++) {
		const struct loc_run *lr = &it->u.where.runs[r];

		for (uint64_t c = 0; c < lr->count; c++, i++) {
			const struct loc *got = &o->locs[i];
			bool same = (int)lr->kind == got->kind &&
				    (lr->kind != LOC_DEVICE || !strcmp(lr->dev, got->dev));

			if (!same)
				return mismatch(msg, size, "expected page %llu at %s, got %s", (unsigned long long)i,
						lr->kind == LOC_DEVICE ? lr->dev
								       : loc_text(&(struct loc){ .kind = (int)lr->kind }),
						loc_text(got));
		}
	}
	return true;
}

static bool check_same(const struct outcome *o, const struct expect_item *it, char *msg, size_t size)
{
	uint64_t i = 0;

	if (it->u.same.total != o->nsame)
		return mismatch(msg, size, "expected %llu answers, got %llu pages", (unsigned long long)it->u.same.total,
				(unsigned long long)o->nsame);
	for (size_t r = 0; r < it->u.same.nruns; r++) {
		for (uint64_t c = 0; c < it->u.same.runs[r].count; c++, i++) {
			if (o->same[i] != it->u.same.runs[r].same)
				return mismatch(msg, size, "expected page %llu %s, got %s", (unsigned long long)i,
						it->u.same.runs[r].same ? "yes" : "no", o->same[i] ? "yes" : "no");
		}
	}
	return true;
}

static bool check_num(const char *key, uint64_t want, uint64_t got, char *msg, size_t size)
{
	if (want == got)
		return true;
	return mismatch(msg, size, "expected %s=%llu, got %s=%llu", key, (unsigned long long)want, key,
			(unsigned long long)got);
}

static bool check_item(const struct step *st, const struct outcome *o, const struct expect_item *it, char *msg,
		       size_t size)
{
	switch (it->kind) {
	case EXP_CPAGES:
		return check_num("cpages", it->u.num, o->res.cpages, msg, size);
	case EXP_FAULTS:
		return check_num("faults", it->u.num, o->res.faults, msg, size);
	case EXP_USED:
		return check_num("used", it->u.num, o->used, msg, size);
	case EXP_FREE:
		return check_num("free", it->u.num, o->free, msg, size);
	case EXP_PINNED:
		return check_num("pinned", it->u.num, (uint64_t)o->pinned, msg, size);
	case EXP_REFS:
		return check_num("refs", it->u.num, o->refs, msg, size);
	case EXP_MAPS:
		return check_num("maps", it->u.num, o->maps, msg, size);
	case EXP_PINS:
		return check_num("pins", it->u.num, o->pins, msg, size);
	case EXP_WRITABLE:
		return check_num("writable", it->u.num, o->writable, msg, size);
	case EXP_ORDER:
		return check_num("order", it->u.num, o->order, msg, size);
	case EXP_FMAPS:
		return check_num("fmaps", it->u.num, o->fmaps, msg, size);
	case EXP_PMDMAPS:
		return check_num("pmdmaps", it->u.num, o->pmdmaps, msg, size);
	case EXP_PARTIAL:
		return check_num("partial", it->u.num, o->partial, msg, size);
	case EXP_SPLIT:
		return check_num("split", it->u.num, o->split, msg, size);
	case EXP_DATA:
		return check_data(o, it, msg, size);
	case EXP_SNAP:
		return check_snap(o, it, msg, size);
	case EXP_WHERE:
		return check_where(o, it, msg, size);
	case EXP_SAME:
		return check_same(o, it, msg, size);
	case EXP_VALUE:
		if (o->value == it->u.value)
			return true;
		return mismatch(msg, size, "expected %#x, got %#x", it->u.value, o->value);
	case EXP_PATTERN:
		/* read, rmw (the old words), pread, readpin */
		return check_words(o->data, o->data_word0, o->data_word0, o->data_word0 + o->data_words, &it->u.pat,
				   st->kind == STEP_RMW ? "old" : st->kind == STEP_READPIN ? "pinned" : "", msg, size);
	}
	return true;
}

bool check_expect(struct runner *r, const struct step *st, const struct outcome *o, char *msg, size_t size)
{
	if (st->kind == STEP_EXPECT_FREED)
		return check_num("freed", st->u.expect_freed.count, o->freed, msg, size);
	if (!check_status(&st->expect, o->err, msg, size))
		return false;
	if (o->err)
		return true; /* outputs of a failed step are not observable */
	for (size_t i = 0; i < st->expect.nitems; i++) {
		enum expect_kind k = st->expect.items[i].kind;

		/* --contents=none ran the step without its data: what it would
		 * have compared is counted, and reported, not judged. */
		if (r->no_data && !o->data && (k == EXP_DATA || k == EXP_PATTERN || k == EXP_VALUE)) {
			atomic_fetch_add(&r->unverified, 1);
			continue;
		}
		if (!check_item(st, o, &st->expect.items[i], msg, size))
			return false;
	}
	return true;
}
