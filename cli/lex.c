/* SPDX-License-Identifier: MIT */
/*
 * The lexer: script text -> lines of tokens. A line ends at '\n'; '#' starts
 * a comment (no token of version 1 contains '#', so "outside a pattern"
 * needs no special case); tokens are separated by spaces, tabs or '\r' (so
 * CRLF files work). Columns count bytes from 1: a tab is one column.
 *
 * Bytes that cannot belong to a script are errors here, at their column: a
 * NUL anywhere (the file is binary, or truncated text would hide the rest
 * of the line), and other control bytes outside comments. Bytes >= 0x80 are
 * left to the parser, which quotes them escaped when it rejects a token;
 * comments may hold UTF-8.
 */
#include <errno.h>
#include <string.h>

#include "script_int.h"

static bool is_sep(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool is_bad_byte(unsigned char c)
{
	return (c < 0x20 && !is_sep((char)c)) || c == 0x7f;
}

bool is_ident(const char *s, size_t len)
{
	if (!len || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/*
 * The content of the line at s[0..len): its length without the comment,
 * or an error for a NUL (anywhere) or a control byte (before the comment).
 */
static int line_content(struct parse_ctx *p, const char *s, size_t len, size_t *content)
{
	size_t i, end = len;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0')
			return perr(p, (unsigned int)i + 1, "unexpected NUL byte");
		if (end == len && c == '#')
			end = i;
		if (end == len && is_bad_byte(c))
			return perr(p, (unsigned int)i + 1, "unexpected control character %s",
				    Q(s + i, 1));
	}
	*content = end;
	return 0;
}

static size_t count_tokens(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (!is_sep(s[i]) && (i == 0 || is_sep(s[i - 1])))
			n++;
	return n;
}

/* A '$' must start a reference: catch "$", "$1", "${x" at lex time (for
 * scenario lines; a trace has no variables and leaves '$' to its parser). */
static int check_dollars(struct parse_ctx *p, struct token *t)
{
	struct varref ref;
	size_t pos = 0;
	int rc;

	while ((rc = varref_next(t->s, t->len, &pos, &ref)) != 0) {
		if (rc < 0)
			return perr(p, t->col + (unsigned int)ref.start,
				    "expected a variable name after '$', found %s",
				    Q(t->s + ref.start, t->len - ref.start));
		t->var = true;
	}
	return 0;
}

/* Split the copy @buf (len bytes, modified in place) into tokens. */
static int split_tokens(struct parse_ctx *p, char *buf, size_t len, bool dollars,
			struct rawline *out)
{
	size_t i = 0, n = 0;

	while (i < len) {
		struct token *t;
		size_t start;

		while (i < len && is_sep(buf[i]))
			buf[i++] = '\0';
		if (i == len)
			break;
		start = i;
		while (i < len && !is_sep(buf[i]))
			i++;
		t = &out->tok[n++];
		t->s = buf + start;
		t->len = i - start;
		t->col = (unsigned int)start + 1;
		t->var = false;
		out->eol_col = (unsigned int)i + 1;
		if (dollars && check_dollars(p, t))
			return p->err;
	}
	for (; i < len; i++)
		buf[i] = '\0';
	out->ntok = n;
	return 0;
}

int lex_text_line(struct parse_ctx *p, const char *s, size_t len, bool dollars,
		  struct rawline *out)
{
	size_t content = 0, n;
	char *buf;

	if (line_content(p, s, len, &content))
		return p->err;
	n = count_tokens(s, content);
	out->ntok = 0;
	if (!n)
		return 0;
	buf = arena_strndup(p->arena, s, content);
	out->tok = arena_alloc(p->arena, n * sizeof(*out->tok));
	if (!buf || !out->tok)
		return poom(p);
	return split_tokens(p, buf, content, dollars, out);
}

int lex_line(struct lexer *lx, struct parse_ctx *p, struct rawline *out)
{
	while (lx->pos < lx->len) {
		const char *s = lx->text + lx->pos;
		const char *nl = memchr(s, '\n', lx->len - lx->pos);
		size_t len = nl ? (size_t)(nl - s) : lx->len - lx->pos;

		lx->pos += len + (nl ? 1 : 0);
		lx->line++;
		p->line = lx->line;
		out->line = lx->line;
		if (lex_text_line(p, s, len, true, out))
			return p->err;
		if (out->ntok)
			return 1;
	}
	return 0;
}

char *join_tokens(struct arena *a, const struct token *t, size_t n)
{
	size_t len = 0, o = 0;
	char *s;

	for (size_t i = 0; i < n; i++)
		len += t[i].len + 1;
	s = arena_alloc(a, len + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (i)
			s[o++] = ' ';
		memcpy(s + o, t[i].s, t[i].len);
		o += t[i].len;
	}
	s[o] = '\0';
	return s;
}
