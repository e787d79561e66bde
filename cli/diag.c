/* SPDX-License-Identifier: MIT */
/*
 * Error reports of the front end. Only the first error of a parse is kept
 * (later ones are usually its consequences), formatted as the spec wants:
 * "FILE:LINE:COL: message", the message saying what was expected and what
 * was found. Found text is quoted, escaped and cut short, so that a NUL
 * byte or a megabyte-long token cannot garble or flood the report.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "script_int.h"

static void diag_fill(struct diag *d, const char *path, unsigned int line, unsigned int col,
		      const char *fmt, va_list ap)
{
	d->line = line;
	d->col = col;
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	if (!line)
		snprintf(d->text, sizeof(d->text), "%s: %s", path, d->msg);
	else
		snprintf(d->text, sizeof(d->text), "%s:%u:%u: %s", path, line, col, d->msg);
}

void diag_set(struct diag *d, const char *path, unsigned int line, unsigned int col,
	      const char *fmt, ...)
{
	va_list ap;

	if (!d)
		return;
	va_start(ap, fmt);
	diag_fill(d, path, line, col, fmt, ap);
	va_end(ap);
}

/* " (with a=1, b=x)": the values that explain an error only some of them
 * cause. Names and values are cut at 40 bytes. */
static void with_text(const struct parse_ctx *p, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->nwith && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%.*s=%.40s%s", i ? ", " : " (with ",
				      (int)(p->with[i].len > 40 ? 40 : p->with[i].len),
				      p->with[i].name, p->with[i].val,
				      strlen(p->with[i].val) > 40 ? "..." : "");
	if (p->nwith && o < size)
		snprintf(buf + o, size - o, ")");
}

static int perr_va(struct parse_ctx *p, unsigned int line, unsigned int col, const char *fmt,
		   va_list ap)
{
	char msg[sizeof(p->diag->msg)], with[256];

	if (p->err)
		return p->err;
	p->err = -EINVAL;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	with_text(p, with, sizeof(with));
	diag_set(p->diag, p->path, line, col, "%s%s", msg, with);
	return p->err;
}

int perr(struct parse_ctx *p, unsigned int col, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = perr_va(p, p->line, col, fmt, ap);
	va_end(ap);
	return rc;
}

int perr_at(struct parse_ctx *p, unsigned int line, unsigned int col, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = perr_va(p, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

int poom(struct parse_ctx *p)
{
	if (p->err)
		return p->err;
	p->err = -ENOMEM;
	diag_set(p->diag, p->path, 0, 0, "out of memory");
	return p->err;
}

struct quoted quote(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	struct quoted q;
	size_t o = 0, i;

	q.s[o++] = '\'';
	for (i = 0; i < len && o < 48; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
			q.s[o++] = (char)c;
			continue;
		}
		q.s[o++] = '\\';
		q.s[o++] = 'x';
		q.s[o++] = hex[c >> 4];
		q.s[o++] = hex[c & 15];
	}
	if (i < len) {
		memcpy(q.s + o, "...", 3);
		o += 3;
	}
	q.s[o++] = '\'';
	q.s[o] = '\0';
	return q;
}
