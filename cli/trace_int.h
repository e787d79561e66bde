/* SPDX-License-Identifier: MIT */
/*
 * Private to the trace files: the state the reader's semantic checks keep
 * (trace_check.c), between the syntax of one line (trace_parse.c) and the
 * next.
 */
#ifndef DEVMM_CLI_TRACE_INT_H
#define DEVMM_CLI_TRACE_INT_H

#include "script_int.h"
#include "trace.h"

/* What a trace has set up so far: live allocations and running kernels. */
struct trace_state {
	struct vec allocs; /* struct talloc, sorted by start, disjoint */
	size_t last; /* allocs index of the last hit: a hint, checked on use */
	struct vec kernels; /* struct tkernel, in KERNEL_BEGIN order */
	char name[TRACE_MAX_LINE + 1]; /* the name a FREE record points to */
};

void trace_state_init(struct trace_state *st);
void trace_state_free(struct trace_state *st);

/*
 * Check the parsed record @rec of line p->line against @st and apply it
 * (an ALLOC is added, a FREE removes its allocation and fills rec->name
 * and rec->bytes, kernels begin and end). @col is the column of the field
 * an error points at (ADDR or ID). On an error nothing changes.
 * Errors: -EINVAL (in p->diag), -ENOMEM.
 */
int trace_state_apply(struct trace_state *st, struct parse_ctx *p, struct trace_rec *rec,
		      unsigned int col);

/* At the end of the trace: -EINVAL for the first kernel still running
 * (forgotten, so the next call reports the next), 0 when none is left. */
int trace_state_end(struct trace_state *st, struct parse_ctx *p);

#endif /* DEVMM_CLI_TRACE_INT_H */
