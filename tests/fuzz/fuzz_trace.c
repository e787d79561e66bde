/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the trace reader (cli/trace_parse.c): any byte
 * string is read to its end, every bad line reported with a position and
 * skipped, without a crash, a leak or a hang; each record it returns obeys
 * the checks the reader promises (sizes at least 1, no wrap-around,
 * processors and streams within their limits).
 *
 * The input is read twice: from memory (trace_open_mem) and as a stream
 * through fmemopen (trace_open_stream, the path trace_open takes), so the
 * buffer refill and the skipping of overlong lines are fuzzed too, and the
 * two must give the same records and the same messages, in order.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

static void check_rec(const struct trace_rec *rec)
{
	if (rec->proc.gpu >= TRACE_MAX_GPUS || rec->stream > TRACE_MAX_STREAM)
		abort();
	if (rec->kind == TRACE_ACCESS || rec->kind == TRACE_ADVISE ||
	    rec->kind == TRACE_PREFETCH || rec->kind == TRACE_ALLOC)
		if (!rec->bytes || rec->addr + rec->bytes < rec->addr)
			abort();
}

/* The same result from both readers, or abort. */
static void same(int ra, const struct trace_rec *a, const struct diag *da, int rb,
		 const struct trace_rec *b, const struct diag *db)
{
	if (ra != rb)
		abort();
	if (ra == 1) {
		if (a->kind != b->kind || a->line != b->line || a->addr != b->addr ||
		    a->bytes != b->bytes || a->proc.is_gpu != b->proc.is_gpu ||
		    a->proc.gpu != b->proc.gpu || a->stream != b->stream || a->op != b->op ||
		    a->ns != b->ns || a->id != b->id || !a->name != !b->name ||
		    (a->name && strcmp(a->name, b->name)))
			abort();
	} else if (ra < 0 && strcmp(da->text, db->text)) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace_reader *r, *rs = NULL;
	struct trace_rec rec, srec;
	struct diag d, sd;
	FILE *f = NULL;
	int rc, src;

	if (trace_open_mem("fuzz.trace", (const char *)data, size, &r))
		return 0;
	/* fmemopen needs a size of at least 1 in older C libraries. */
	if (size) {
		f = fmemopen((void *)data, size, "r");
		if (f && trace_open_stream(f, "fuzz.trace", &rs)) {
			fclose(f);
			f = NULL;
		}
	}
	for (;;) {
		rc = trace_next(r, &rec, &d);
		if (rs) {
			src = trace_next(rs, &srec, &sd);
			same(rc, &rec, &d, src, &srec, &sd);
		}
		if (!rc)
			break;
		if (rc == -EINVAL) {
			if (!d.line || !d.text[0])
				abort();
			continue;
		}
		if (rc < 0)
			break;
		check_rec(&rec);
	}
	trace_close(r);
	trace_close(rs);
	if (f)
		fclose(f);
	return 0;
}
