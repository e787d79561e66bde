/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the trace reader (cli/trace_parse.c): any byte
 * string is read to its end, every bad line reported with a position and
 * skipped, without a crash, a leak or a hang; each record it returns obeys
 * the checks the reader promises (sizes at least 1, no wrap-around,
 * processors and streams within their limits).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace_reader *r;
	struct trace_rec rec;
	struct diag d;
	int rc;

	if (trace_open_mem("fuzz.trace", (const char *)data, size, &r))
		return 0;
	while ((rc = trace_next(r, &rec, &d)) != 0) {
		if (rc == -EINVAL) {
			if (!d.line || !d.text[0])
				abort();
			continue;
		}
		if (rc < 0)
			break;
		if (rec.proc.gpu >= TRACE_MAX_GPUS || rec.stream > TRACE_MAX_STREAM)
			abort();
		if (rec.kind == TRACE_ACCESS || rec.kind == TRACE_ADVISE ||
		    rec.kind == TRACE_PREFETCH || rec.kind == TRACE_ALLOC)
			if (!rec.bytes || rec.addr + rec.bytes < rec.addr)
				abort();
	}
	trace_close(r);
	return 0;
}
