/* SPDX-License-Identifier: MIT */
/*
 * Memory-access traces, format v1 (docs/trace-format.md): a streaming
 * reader that turns a trace into records and checks what a parser can
 * check, and the generator of synthetic traces (`devmm trace gen`). Like
 * the scenario front end (script.h) this uses only libc, never the library:
 * the trace runner (`devmm trace run`) connects the records to the policy
 * engine through the public headers.
 *
 * Reading protocol:
 *
 *   struct trace_reader *r;
 *   struct trace_rec rec;
 *   struct diag d;
 *   if (trace_open(path, &r, &d))               // cannot read: print d.text
 *           ...;
 *   while ((rc = trace_next(r, &rec, &d)) != 0) {
 *           if (rc == -EINVAL) {                 // a bad line: print d.text;
 *                   continue;                    // the line is skipped
 *           }
 *           if (rc < 0)                          // -ENOMEM, -EIO: stop
 *                   break;
 *           use(&rec);                           // rec.line, rec.kind, ...
 *   }
 *   trace_close(r);
 *
 * The reader holds one buffer of input and the live allocations, never the
 * whole trace: memory is bounded by TRACE_MAX_LINE, the live allocations
 * and the running kernels, whatever the trace's length.
 */
#ifndef DEVMM_CLI_TRACE_H
#define DEVMM_CLI_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "script.h" /* struct diag */

/* ------------------------------------------------------------------------ */
/* Limits (a hostile trace gets an error, never a crash or unbounded memory) */

#define TRACE_PAGE_SIZE 4096u
#define TRACE_MAX_LINE 4096u /* bytes of one line, '\n' excluded */
#define TRACE_ADDR_MIN 0x10000ull /* lowest allocation address */
#define TRACE_ADDR_END (1ull << 47) /* every allocation ends at or below it */
#define TRACE_MAX_GPUS 64u /* gpu0 .. gpu63 */
#define TRACE_MAX_STREAM 65535u /* s=0 .. s=65535 */
#define TRACE_MAX_ALLOCS 65536u /* live allocations at any time */
#define TRACE_MAX_KERNELS 1024u /* kernels running at any time */
#define TRACE_MAX_NS 1000000000000000ull /* one COMPUTE record: 10^15 ns */

/* ------------------------------------------------------------------------ */
/* Records                                                                   */

enum trace_kind {
	TRACE_ALLOC, /* ALLOC NAME ADDR BYTES */
	TRACE_FREE, /* FREE ADDR */
	TRACE_ACCESS, /* PROC R|W|A ADDR BYTES [s=STREAM] */
	TRACE_COMPUTE, /* PROC COMPUTE NS [s=STREAM] */
	TRACE_KERNEL_BEGIN, /* KERNEL_BEGIN ID */
	TRACE_KERNEL_END, /* KERNEL_END ID */
	TRACE_ADVISE, /* ADVISE ADDR BYTES KEY=VALUE */
	TRACE_PREFETCH, /* PREFETCH ADDR BYTES PROC */
	TRACE_SYNC, /* SYNC */
	TRACE_NR_KINDS
};

/* A processor: the CPU, or GPU number gpu (0 .. TRACE_MAX_GPUS - 1). */
struct trace_proc {
	bool is_gpu;
	unsigned int gpu;
};

enum trace_op { TRACE_READ, TRACE_WRITE, TRACE_ATOMIC };

enum trace_advice {
	TRACE_ADV_PREFERRED, /* preferred=PROC */
	TRACE_ADV_ACCESSED_BY, /* accessed_by=PROC */
	TRACE_ADV_READ_MOSTLY, /* read_mostly=on|off */
};

struct trace_rec {
	enum trace_kind kind;
	unsigned int line; /* 1-based line in the file */
	/* ACCESS, COMPUTE: who; PREFETCH: the destination; ADVISE: the value
	 * of preferred= and accessed_by= */
	struct trace_proc proc;
	uint32_t stream; /* ACCESS, COMPUTE: s=STREAM, 0 when absent */
	enum trace_op op; /* ACCESS */
	uint64_t addr; /* ALLOC, FREE, ACCESS, ADVISE, PREFETCH */
	uint64_t bytes; /* ALLOC, ACCESS, ADVISE, PREFETCH: at least 1; FREE:
			 * the size of the allocation freed */
	uint64_t ns; /* COMPUTE */
	uint64_t id; /* KERNEL_BEGIN, KERNEL_END */
	enum trace_advice advice; /* ADVISE */
	bool on; /* ADVISE read_mostly= */
	/* ALLOC: its name; FREE: the name of the allocation freed. Valid
	 * until the next trace_next() call. */
	const char *name;
};

/* "ALLOC", "FREE", "R" ... for messages and summaries. */
const char *trace_kind_name(enum trace_kind k);
const char *trace_op_name(enum trace_op op);
/* "cpu", "gpu3": buf must hold 8 bytes. */
const char *trace_proc_name(struct trace_proc p, char buf[8]);
/* s[0..len) as a processor: cpu, or gpuN with N decimal, no leading zero,
 * below TRACE_MAX_GPUS. False (and *out unchanged) for anything else. */
bool trace_proc_parse(const char *s, size_t len, struct trace_proc *out);

/* ------------------------------------------------------------------------ */
/* The reader                                                                */

struct trace_reader;

/*
 * trace_open - read the trace at @path ("-": standard input), streaming.
 * Errors: -errno of fopen, -EISDIR for a directory (diag "FILE: cannot
 * read: ..."), -ENOMEM.
 */
int trace_open(const char *path, struct trace_reader **out, struct diag *diag);

/* The same from the open stream @f, named @path in messages; the reader
 * does not close @f (trace_open's own stream is closed by trace_close).
 * Errors: -ENOMEM. */
int trace_open_stream(FILE *f, const char *path, struct trace_reader **out);

/* The same over text[0..len) (not copied; keep it alive until trace_close),
 * named @path in messages. Errors: -ENOMEM. */
int trace_open_mem(const char *path, const char *text, size_t len, struct trace_reader **out);

/*
 * trace_next - the next record into @rec.
 * Returns 1 with a record, 0 at the end of the trace, or:
 *   -EINVAL  a bad line, or a semantic error (see docs/trace-format.md):
 *            @diag (may be NULL) holds "FILE:LINE:COL: message". The line
 *            is skipped and changes nothing: the next call goes on with
 *            the next line. At the end, each kernel still running is one
 *            such error (at its KERNEL_BEGIN line) before 0.
 *   -ENOMEM, -EIO  the reader cannot go on; every later call returns it
 *            (and reads nothing more). A read error is -EIO whatever its
 *            errno (so it is never taken for a bad line); @diag holds
 *            "FILE: read error after line N: <strerror of that errno>".
 */
int trace_next(struct trace_reader *r, struct trace_rec *rec, struct diag *diag);

/* Lines read so far (the line of the last record or error). */
unsigned int trace_line(const struct trace_reader *r);

void trace_close(struct trace_reader *r);

/* ------------------------------------------------------------------------ */
/* The generator                                                             */

/*
 * trace_gen_main - `devmm trace gen PATTERN [options]`: argv[0] is the
 * pattern. Writes the trace to @out and "seed S" (plus usage errors) to
 * @err. Returns the exit status: 0, 2 for a usage error, 1 when out of
 * memory (nothing is written to @out in either case: the pattern's memory
 * is allocated before the first byte) or on a write error. Same arguments
 * and seed: the same bytes.
 */
int trace_gen_main(int argc, char **argv, FILE *out, FILE *err);

/* The usage text of trace gen (its patterns and options) to @f. */
void trace_gen_usage(FILE *f);

#endif /* DEVMM_CLI_TRACE_H */
