/* SPDX-License-Identifier: MIT */
/*
 * The trace reader: trace format v1 (docs/trace-format.md), one line at a
 * time, into records. Lines are read through a fixed buffer, tokenized by
 * the scenario lexer (lex_text_line: the same comments, separators, bad-byte
 * and column rules) and reported through the same diagnostics (diag.c:
 * "FILE:LINE:COL: message", found text quoted). Numbers are read by
 * lex_num, so "decimal or 0x hex, no sign" means the same in both
 * languages.
 *
 * Each record that parses is then checked against what the trace set up
 * before (trace_check.c: allocations, FREE, accesses outside them,
 * kernels). A line that fails either is an error of its own and changes
 * nothing, so a caller may report it and go on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trace_int.h"

#define READ_CHUNK (64u << 10)

struct trace_reader {
	char *path;
	FILE *f; /* NULL for a memory trace */
	bool own; /* f was opened by trace_open: trace_close closes it */
	const char *data; /* the buffered input: data[pos..end) is unread */
	char *buf; /* data's storage when reading a file */
	size_t pos, end;
	bool eof; /* nothing left to read beyond data[end] */
	int fatal; /* -ENOMEM or -EIO once the reader cannot go on */
	int read_errno; /* the errno of the read error behind -EIO */
	unsigned int line;
	struct arena arena; /* one line's tokens */
	struct diag diag;
	struct trace_state state; /* allocations and kernels (trace_check.c) */
};

static const char *const kind_names[TRACE_NR_KINDS] = {
	[TRACE_ALLOC] = "ALLOC",
	[TRACE_FREE] = "FREE",
	[TRACE_ACCESS] = "access",
	[TRACE_COMPUTE] = "COMPUTE",
	[TRACE_KERNEL_BEGIN] = "KERNEL_BEGIN",
	[TRACE_KERNEL_END] = "KERNEL_END",
	[TRACE_ADVISE] = "ADVISE",
	[TRACE_PREFETCH] = "PREFETCH",
	[TRACE_SYNC] = "SYNC",
};

const char *trace_kind_name(enum trace_kind k)
{
	return (unsigned int)k < TRACE_NR_KINDS ? kind_names[k] : "?";
}

const char *trace_op_name(enum trace_op op)
{
	return op == TRACE_READ ? "R" : op == TRACE_WRITE ? "W" : "A";
}

const char *trace_proc_name(struct trace_proc p, char buf[8])
{
	if (!p.is_gpu)
		return "cpu";
	snprintf(buf, 8, "gpu%u", p.gpu % TRACE_MAX_GPUS);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Opening, closing, lines                                                   */

static struct trace_reader *reader_new(const char *path)
{
	struct trace_reader *r = script_malloc(sizeof(*r));

	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	trace_state_init(&r->state);
	r->path = script_malloc(strlen(path) + 1);
	if (!r->path) {
		free(r);
		return NULL;
	}
	strcpy(r->path, path);
	return r;
}

int trace_open_mem(const char *path, const char *text, size_t len, struct trace_reader **out)
{
	struct trace_reader *r = reader_new(path);

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->data = text;
	r->end = len;
	r->eof = true;
	*out = r;
	return 0;
}

int trace_open_stream(FILE *f, const char *path, struct trace_reader **out)
{
	struct trace_reader *r = reader_new(path);

	*out = NULL;
	if (r)
		r->buf = script_malloc(TRACE_MAX_LINE + 1 + READ_CHUNK);
	if (!r || !r->buf) {
		trace_close(r);
		return -ENOMEM;
	}
	r->f = f;
	r->data = r->buf;
	*out = r;
	return 0;
}

int trace_open(const char *path, struct trace_reader **out, struct diag *diag)
{
	bool in = !strcmp(path, "-");
	struct stat st;
	FILE *f;
	int e;

	*out = NULL;
	errno = 0;
	f = in ? stdin : fopen(path, "r");
	if (!f) {
		e = errno ? errno : EIO;
		diag_set(diag, path, 0, 0, "cannot read: %s", strerror(e));
		return -e;
	}
	/* A directory opens, then fails every read: refuse it here, like a
	 * file that does not exist. */
	if (!fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) {
		if (!in)
			fclose(f);
		diag_set(diag, path, 0, 0, "cannot read: %s", strerror(EISDIR));
		return -EISDIR;
	}
	if (trace_open_stream(f, path, out)) {
		if (!in)
			fclose(f);
		diag_set(diag, path, 0, 0, "out of memory");
		return -ENOMEM;
	}
	(*out)->own = !in;
	return 0;
}

void trace_close(struct trace_reader *r)
{
	if (!r)
		return;
	if (r->own)
		fclose(r->f);
	trace_state_free(&r->state);
	arena_free(&r->arena);
	free(r->buf);
	free(r->path);
	free(r);
}

unsigned int trace_line(const struct trace_reader *r)
{
	return r->line;
}

/* Move the unread bytes to the front and read more. A read error is
 * -EIO, its errno kept in r->read_errno for the message; the caller makes
 * it final, so a stream that keeps failing is not read again. */
static int refill(struct trace_reader *r)
{
	size_t keep = r->end - r->pos, n;

	memmove(r->buf, r->buf + r->pos, keep);
	r->pos = 0;
	r->end = keep;
	errno = 0;
	n = fread(r->buf + keep, 1, TRACE_MAX_LINE + 1 + READ_CHUNK - keep, r->f);
	r->end += n;
	if (n == 0) {
		if (ferror(r->f)) {
			r->read_errno = errno ? errno : EIO;
			return -EIO;
		}
		r->eof = true;
	}
	return 0;
}

/*
 * The next line into *s, *len (without '\n'). 1: a line, 0: end of input,
 * -EINVAL: the line is longer than TRACE_MAX_LINE (consumed, reported),
 * -EIO. A line is at most TRACE_MAX_LINE bytes, so a buffer of that much
 * plus one chunk always holds a whole line or proves it too long.
 */
static int next_line(struct trace_reader *r, const char **s, size_t *len)
{
	bool too_long = false;

	for (;;) {
		const char *p = r->data + r->pos;
		size_t avail = r->end - r->pos;
		const char *nl = memchr(p, '\n', avail);

		if (nl || (r->eof && avail)) {
			size_t l = nl ? (size_t)(nl - p) : avail;

			r->pos += l + (nl ? 1 : 0);
			if (too_long || l > TRACE_MAX_LINE)
				return -EINVAL;
			*s = p;
			*len = l;
			return 1;
		}
		if (r->eof)
			return too_long ? -EINVAL : 0;
		if (avail > TRACE_MAX_LINE) {
			/* Skip what is read of an overlong line. */
			too_long = true;
			r->pos = r->end;
		}
		if (refill(r))
			return -EIO;
	}
}

struct line {
	struct parse_ctx *p;
	const struct token *t;
	size_t n, pos;
	unsigned int eol_col;
	const char *form; /* "ALLOC NAME ADDR BYTES", for messages */
	struct trace_rec *rec;
	unsigned int col; /* the field a semantic error points at: ADDR or ID */
};

/* ------------------------------------------------------------------------ */
/* Fields                                                                    */

/* The next token, or "FORM: expected WHAT, found end of line". */
static const struct token *take(struct line *l, const char *what)
{
	if (l->pos < l->n)
		return &l->t[l->pos++];
	perr(l->p, l->eol_col, "%s: expected %s, found end of line", l->form, what);
	return NULL;
}

/* The number s[0..len) of token t, the field @what, at most @max. */
static int num_in(struct line *l, const struct token *t, const char *s, size_t len,
		  const char *what, uint64_t max, uint64_t *out)
{
	int rc = lex_num(s, len, out);

	if (rc == NUM_SYNTAX)
		return perr(l->p, t->col, "%s: expected %s (a decimal or 0x number), found %s",
			    l->form, what, Q(s, len));
	if (rc == NUM_RANGE || *out > max)
		return perr(l->p, t->col, "%s: %s %s is out of range (at most %llu)", l->form,
			    what, Q(s, len), (unsigned long long)max);
	return 0;
}

static int num(struct line *l, const char *what, uint64_t max, uint64_t *out,
	       const struct token **tok)
{
	const struct token *t = take(l, what);

	if (!t)
		return l->p->err;
	if (tok)
		*tok = t;
	return num_in(l, t, t->s, t->len, what, max, out);
}

/* cpu | gpuN (N decimal, no leading zero, < TRACE_MAX_GPUS). */
bool trace_proc_parse(const char *s, size_t len, struct trace_proc *out)
{
	unsigned int v = 0;

	if (len == 3 && !memcmp(s, "cpu", 3)) {
		*out = (struct trace_proc){ false, 0 };
		return true;
	}
	if (len < 4 || len > 5 || memcmp(s, "gpu", 3) || (len == 5 && s[3] == '0'))
		return false;
	for (size_t i = 3; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v >= TRACE_MAX_GPUS)
		return false;
	*out = (struct trace_proc){ true, v };
	return true;
}

#define PROC_WHAT "a processor (cpu, or gpu0 to gpu63)"

static int proc_arg(struct line *l, const struct token *t, const char *s, size_t len,
		    struct trace_proc *out)
{
	if (!trace_proc_parse(s, len, out))
		return perr(l->p, t->col, "%s: expected %s, found %s", l->form, PROC_WHAT,
			    Q(s, len));
	return 0;
}

/* ADDR BYTES with 1 <= BYTES and ADDR + BYTES < 2^64: the end of the range
 * must itself be a 64-bit number, so a range ending exactly at 2^64 is an
 * error too. */
static int addr_bytes(struct line *l, const struct token **at)
{
	struct trace_rec *rec = l->rec;
	const struct token *bt;

	if (num(l, "ADDR", UINT64_MAX, &rec->addr, at) ||
	    num(l, "BYTES", UINT64_MAX, &rec->bytes, &bt))
		return l->p->err;
	if (!rec->bytes)
		return perr(l->p, bt->col, "%s: BYTES must be at least 1, found 0", l->form);
	if (rec->bytes > UINT64_MAX - rec->addr)
		return perr(l->p, bt->col, "%s: ADDR + BYTES (0x%llx + %llu) overflows 64 bits",
			    l->form, (unsigned long long)rec->addr,
			    (unsigned long long)rec->bytes);
	return 0;
}

/* The optional s=STREAM, last on the line. */
static int stream_opt(struct line *l)
{
	const struct token *t;
	uint64_t v;

	l->rec->stream = 0;
	if (l->pos == l->n)
		return 0;
	t = &l->t[l->pos];
	if (t->len < 2 || memcmp(t->s, "s=", 2))
		return perr(l->p, t->col, "%s: expected s=STREAM or the end of the line, found %s",
			    l->form, Q(t->s, t->len));
	l->pos++;
	if (num_in(l, t, t->s + 2, t->len - 2, "STREAM", TRACE_MAX_STREAM, &v))
		return l->p->err;
	l->rec->stream = (uint32_t)v;
	return 0;
}

/* Nothing may follow the record's fields. */
static int no_more(struct line *l)
{
	const struct token *t;

	if (l->pos == l->n)
		return 0;
	t = &l->t[l->pos];
	return perr(l->p, t->col, "%s: unexpected %s after the record's last field", l->form,
		    Q(t->s, t->len));
}

/* ------------------------------------------------------------------------ */
/* Records                                                                   */

static int rec_alloc(struct line *l)
{
	struct trace_rec *rec = l->rec;
	const struct token *nt = take(l, "NAME"), *at = NULL;

	if (!nt)
		return l->p->err;
	if (!is_name(nt->s, nt->len))
		return perr(l->p, nt->col, "%s: expected NAME (a letter or '_', then letters, "
			    "digits, '_', '.' or '-'), found %s", l->form, Q(nt->s, nt->len));
	rec->name = nt->s;
	if (addr_bytes(l, &at) || no_more(l))
		return l->p->err;
	l->col = at->col;
	return 0;
}

static int rec_free(struct line *l)
{
	const struct token *at = NULL;

	if (num(l, "ADDR", UINT64_MAX, &l->rec->addr, &at) || no_more(l))
		return l->p->err;
	l->col = at->col;
	return 0;
}

static int rec_kernel(struct line *l)
{
	const struct token *it = NULL;

	if (num(l, "ID", UINT64_MAX, &l->rec->id, &it) || no_more(l))
		return l->p->err;
	l->col = it->col;
	return 0;
}

static int advice_value(struct line *l, const struct token *t)
{
	struct trace_rec *rec = l->rec;
	const char *eq = memchr(t->s, '=', t->len);
	size_t klen = eq ? (size_t)(eq - t->s) : t->len, vlen = eq ? t->len - klen - 1 : 0;
	const char *v = eq ? eq + 1 : "";

	if (eq && klen == 9 && !memcmp(t->s, "preferred", 9)) {
		rec->advice = TRACE_ADV_PREFERRED;
		return proc_arg(l, t, v, vlen, &rec->proc);
	}
	if (eq && klen == 11 && !memcmp(t->s, "accessed_by", 11)) {
		rec->advice = TRACE_ADV_ACCESSED_BY;
		return proc_arg(l, t, v, vlen, &rec->proc);
	}
	if (eq && klen == 11 && !memcmp(t->s, "read_mostly", 11)) {
		rec->advice = TRACE_ADV_READ_MOSTLY;
		rec->on = vlen == 2 && !memcmp(v, "on", 2);
		if (rec->on || (vlen == 3 && !memcmp(v, "off", 3)))
			return 0;
		return perr(l->p, t->col, "%s: expected read_mostly=on or read_mostly=off, "
			    "found %s", l->form, Q(t->s, t->len));
	}
	return perr(l->p, t->col, "%s: expected preferred=PROC, accessed_by=PROC or "
		    "read_mostly=on|off, found %s", l->form, Q(t->s, t->len));
}

static int rec_advise(struct line *l)
{
	const struct token *at = NULL, *kt;

	if (addr_bytes(l, &at))
		return l->p->err;
	kt = take(l, "KEY=VALUE (preferred=PROC, accessed_by=PROC or read_mostly=on|off)");
	if (!kt || advice_value(l, kt) || no_more(l))
		return l->p->err;
	l->col = at->col;
	return 0;
}

static int rec_prefetch(struct line *l)
{
	const struct token *at = NULL, *pt;

	if (addr_bytes(l, &at))
		return l->p->err;
	pt = take(l, "PROC (the destination)");
	if (!pt || proc_arg(l, pt, pt->s, pt->len, &l->rec->proc) || no_more(l))
		return l->p->err;
	l->col = at->col;
	return 0;
}

static int rec_sync(struct line *l)
{
	return no_more(l);
}

/* PROC R|W|A ADDR BYTES [s=STREAM] and PROC COMPUTE NS [s=STREAM]. */
static int rec_proc(struct line *l, const struct token *pt)
{
	struct trace_rec *rec = l->rec;
	const struct token *ot, *at = NULL;

	l->form = "PROC OP ADDR BYTES [s=STREAM]";
	if (proc_arg(l, pt, pt->s, pt->len, &rec->proc))
		return l->p->err;
	ot = take(l, "an operation (R, W, A or COMPUTE)");
	if (!ot)
		return l->p->err;
	if (tok_is(ot, "COMPUTE")) {
		rec->kind = TRACE_COMPUTE;
		l->form = "PROC COMPUTE NS [s=STREAM]";
		if (num(l, "NS", TRACE_MAX_NS, &rec->ns, NULL) ||
		    stream_opt(l))
			return l->p->err;
		return no_more(l);
	}
	rec->kind = TRACE_ACCESS;
	l->form = "PROC OP ADDR BYTES [s=STREAM]";
	if (tok_is(ot, "R"))
		rec->op = TRACE_READ;
	else if (tok_is(ot, "W"))
		rec->op = TRACE_WRITE;
	else if (tok_is(ot, "A"))
		rec->op = TRACE_ATOMIC;
	else
		return perr(l->p, ot->col, "%s: expected an operation (R, W, A or COMPUTE), "
			    "found %s", l->form, Q(ot->s, ot->len));
	if (addr_bytes(l, &at) ||
	    stream_opt(l) || no_more(l))
		return l->p->err;
	l->col = at->col;
	return 0;
}

struct rec_form {
	const char *word;
	enum trace_kind kind;
	const char *form;
	int (*parse)(struct line *l);
};

static const struct rec_form forms[] = {
	{ "ALLOC", TRACE_ALLOC, "ALLOC NAME ADDR BYTES", rec_alloc },
	{ "FREE", TRACE_FREE, "FREE ADDR", rec_free },
	{ "KERNEL_BEGIN", TRACE_KERNEL_BEGIN, "KERNEL_BEGIN ID", rec_kernel },
	{ "KERNEL_END", TRACE_KERNEL_END, "KERNEL_END ID", rec_kernel },
	{ "ADVISE", TRACE_ADVISE, "ADVISE ADDR BYTES KEY=VALUE", rec_advise },
	{ "PREFETCH", TRACE_PREFETCH, "PREFETCH ADDR BYTES PROC", rec_prefetch },
	{ "SYNC", TRACE_SYNC, "SYNC", rec_sync },
};

static int parse_record(struct line *l)
{
	const struct token *w = &l->t[l->pos++];
	struct trace_proc dummy;

	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		if (!tok_is(w, forms[i].word))
			continue;
		l->rec->kind = forms[i].kind;
		l->form = forms[i].form;
		return forms[i].parse(l);
	}
	if (trace_proc_parse(w->s, w->len, &dummy) || (w->len >= 3 && !memcmp(w->s, "gpu", 3)))
		return rec_proc(l, w);
	return perr(l->p, w->col, "expected a record (ALLOC, FREE, KERNEL_BEGIN, KERNEL_END, "
		    "ADVISE, PREFETCH, SYNC, or a processor cpu|gpuN followed by R, W, A or "
		    "COMPUTE), found %s", Q(w->s, w->len));
}

/* ------------------------------------------------------------------------ */

static int fail(struct trace_reader *r, int e, struct diag *diag)
{
	r->fatal = e;
	if (e == -ENOMEM)
		diag_set(&r->diag, r->path, 0, 0, "out of memory");
	else
		diag_set(&r->diag, r->path, 0, 0, "read error after line %u: %s", r->line,
			 strerror(r->read_errno));
	if (diag)
		*diag = r->diag;
	return e;
}

int trace_next(struct trace_reader *r, struct trace_rec *rec, struct diag *diag)
{
	struct parse_ctx p = { .path = r->path, .diag = &r->diag, .arena = &r->arena };
	struct line l = { .p = &p, .rec = rec };
	struct rawline rl;
	const char *s = NULL;
	size_t len = 0;
	int rc;

	if (r->fatal) {
		if (diag)
			*diag = r->diag;
		return r->fatal;
	}
	for (;;) {
		rc = next_line(r, &s, &len);
		if (rc == -EIO) /* after the last line read, not on a line of its own */
			return fail(r, -EIO, diag);
		if (rc != 0 && r->line == UINT32_MAX)
			rc = perr_at(&p, r->line, 0, "more than %u lines", UINT32_MAX);
		else if (rc != 0)
			p.line = ++r->line;
		if (rc == -EINVAL)
			perr(&p, TRACE_MAX_LINE + 1, "line longer than %u bytes", TRACE_MAX_LINE);
		if (rc == 0)
			rc = trace_state_end(&r->state, &p);
		if (rc <= 0)
			break;
		arena_reset(&r->arena);
		if (lex_text_line(&p, s, len, false, &rl))
			break;
		if (!rl.ntok)
			continue;
		memset(rec, 0, sizeof(*rec));
		rec->line = r->line;
		l.t = rl.tok;
		l.n = rl.ntok;
		l.pos = 0;
		l.eol_col = rl.eol_col;
		if (parse_record(&l) == 0 &&
		    trace_state_apply(&r->state, &p, rec, l.col) == 0)
			return 1;
		break;
	}
	if (p.err == -ENOMEM)
		return fail(r, -ENOMEM, diag);
	if (p.err && diag)
		*diag = r->diag;
	return p.err ? p.err : rc;
}
