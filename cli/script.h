/* SPDX-License-Identifier: MIT */
/*
 * The front end of `devmm run`: lexer, parser and AST of the scenario
 * language, version 1 (shared/spec/scenario-language.md). Nothing here
 * touches the library: a script is parsed and checked whole before anything
 * runs, and the runner only ever sees concrete, fully parsed steps.
 *
 * Protocol:
 *
 *   struct script *s;
 *   struct diag d;
 *   if (script_parse(path, text, len, &s, &d))      // syntax error: print d.text
 *           ...;
 *   for (size_t c = 0; c < script_combo_count(s); c++) {
 *           script_combo_name(s, c, name, sizeof(name)); // "FILE[NAME=V,...]"
 *           struct script_iter *it;
 *           if (script_iter_start(s, c, &it, &d))        // e.g. too many steps
 *                   ...;
 *           const struct step *st;
 *           while ((rc = script_iter_next(it, &st, &d)) > 0)
 *                   run(st);                             // st->text, st->line
 *           script_iter_free(it);                        // rc < 0: print d.text
 *   }
 *   script_free(s);
 *
 * script_parse() builds a tree of raw lines and repeat blocks and checks the
 * syntax of every line for every combination of the variant values the line
 * uses (loop variables stand at 0 there; for hostile files a budget cuts
 * this short, see cli/README.md). The iterator substitutes $VAR for
 * one combination and the current loop values, and unrolls repeat blocks
 * lazily, so a long repeat costs no memory. The only errors left for the
 * iterator are those a particular loop value shows (`map A$c 4` cannot fail,
 * `write A[$c..3] 1` does once c > 3) and the step limit; a runner that
 * wants every error before anything runs calls script_check() first.
 *
 * Every function returns 0 (or a count where documented) or a negative errno:
 * -EINVAL for a script error, -ENOMEM when memory ran out. Either way the
 * diag, when given, says where and why.
 */
#ifndef DEVMM_CLI_SCRIPT_H
#define DEVMM_CLI_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Limits (each one turns a hostile input into an error, never a crash)      */

#define SCRIPT_MAX_FILE_SIZE (16u << 20) /* bytes in one script */
#define SCRIPT_MAX_DEPTH 64 /* nested repeat blocks */
#define SCRIPT_MAX_COMBOS 65536 /* variant combinations of one file */
#define SCRIPT_MAX_VARIANTS 256 /* variant lines of one file */
#define SCRIPT_MAX_VALUES 1024 /* values of one variant */
#define SCRIPT_MAX_VALUE_LEN 256 /* bytes of one variant value */
#define SCRIPT_MAX_GROWTH (1u << 20) /* bytes substitution may add to a line */
#define SCRIPT_MAX_STEPS 10000000ull /* steps + repeat iterations of one combination */
/* Page numbers and counts: page * 4096 still fits in 64 bits. */
#define SCRIPT_MAX_PAGE ((1ull << 52) - 1)

/* ------------------------------------------------------------------------ */
/* Diagnostics                                                               */

/*
 * The first error found. text is what the user sees:
 * "FILE:LINE:COL: message" (or "FILE: message" when line is 0, as for a file
 * that is too large). msg is the message alone, for tests.
 */
struct diag {
	unsigned int line; /* 1-based, 0 = no position */
	unsigned int col; /* 1-based column of the offending token */
	char msg[384];
	char text[512];
};

/* ------------------------------------------------------------------------ */
/* Values                                                                    */

/*
 * A pattern of 32-bit words: word k (counted from the region or file start)
 * holds mul * k + add, modulo 2^32. kind only records how it was written.
 */
enum pattern_kind {
	PAT_CONST, /* C: mul 0, add C */
	PAT_BYTE, /* byte:0xNN: mul 0, add 0xNNNNNNNN */
	PAT_INDEX, /* i, -i, i+C, i-C, -i+C, -i-C: mul +1 or -1 */
};

struct pattern {
	enum pattern_kind kind;
	int32_t mul; /* 0, 1 or -1 */
	uint32_t add;
};

/* The word of pattern p at word index k. */
uint32_t pattern_word(const struct pattern *p, uint64_t k);

/*
 * Pages relative to a region start, inclusive (R, R[a], R[a..b], R[a..]).
 * SPAN_WHOLE and SPAN_FROM end at the region's (or command range's) last
 * page, which only the runner knows; last is meaningful for PAGE and RANGE.
 */
enum span_kind {
	SPAN_WHOLE, /* R          first 0 */
	SPAN_PAGE, /* R[a]       first = last = a */
	SPAN_RANGE, /* R[a..b]    first a, last b, a <= b */
	SPAN_FROM, /* R[a..]     first a, to the end */
};

struct span {
	enum span_kind kind;
	uint64_t first; /* <= SCRIPT_MAX_PAGE */
	uint64_t last; /* <= SCRIPT_MAX_PAGE */
};

struct range {
	const char *region;
	struct span span;
};

/* R+OFF: a byte address. */
struct addr {
	const char *region;
	uint64_t offset; /* a multiple of 4 */
};

/* ------------------------------------------------------------------------ */
/* Expectations (what follows "->")                                          */

enum expect_status {
	EXPECT_SUCCESS, /* no status item: the step must succeed */
	EXPECT_OK, /* "ok": the same, said explicitly */
	EXPECT_ANY, /* "any": success or any error */
	EXPECT_ERRNO, /* "EFAULT"...: exactly that error */
};

enum expect_kind {
	EXP_CPAGES, /* cpages=N */
	EXP_FAULTS, /* faults=N */
	EXP_USED, /* used=N (D pool) */
	EXP_FREE, /* free=N (D pool) */
	EXP_PINNED, /* pinned=N (gup) */
	EXP_REFS, /* refs=N (stat) */
	EXP_MAPS, /* maps=N (stat) */
	EXP_PINS, /* pins=N (stat) */
	EXP_WRITABLE, /* writable=0|1 (stat): u.num is 0 or 1 */
	EXP_ORDER, /* order=N (stat): the folio's order */
	EXP_FMAPS, /* fmaps=N (stat): the folio mapcount */
	EXP_PMDMAPS, /* pmdmaps=N (stat): the entire (PMD) mapcount */
	EXP_PARTIAL, /* partial=0|1 (stat): the folio is partially mapped */
	EXP_SPLIT, /* split=N (split-deferred): folios split */
	EXP_DATA, /* data=P, data[a]=P, data[a..b]=P, data[a..]=P */
	EXP_SNAP, /* snap=B,B*N,... */
	EXP_PATTERN, /* a bare pattern: read, pread, rmw (the old words) */
	EXP_VALUE, /* a bare value: load */
	EXP_WHERE, /* a bare location list: where */
	EXP_SAME, /* a bare yes/no list: same */
};

/* A run of equal snapshot bytes: snap=42*3 is { 0x42, 3 }. */
struct snap_run {
	uint8_t byte;
	uint64_t count; /* >= 1 */
};

/* where: LOC_NONE..LOC_MIGRATING, LOC_THP, LOC_HZERO; level: LOC_NONE,
 * LOC_PMD, LOC_PTE. */
enum loc_kind { LOC_NONE, LOC_ZERO, LOC_SYS, LOC_DEVICE, LOC_EXCL, LOC_MIGRATING, LOC_THP, LOC_HZERO, LOC_PMD, LOC_PTE };

/* A run of pages in one location: gpu*4 is { LOC_DEVICE, "gpu", 4 }. */
struct loc_run {
	enum loc_kind kind;
	const char *dev; /* LOC_DEVICE only */
	uint64_t count; /* >= 1 */
};

/* A run of equal answers of `same`: yes*3 is { true, 3 }. */
struct same_run {
	bool same;
	uint64_t count; /* >= 1 */
};

struct expect_item {
	enum expect_kind kind;
	unsigned int col; /* of the item's token */
	const char *text; /* the item as written (after substitution) */
	union {
		uint64_t num; /* the counts */
		uint32_t value; /* EXP_VALUE */
		struct pattern pat; /* EXP_PATTERN */
		struct {
			struct span span; /* SPAN_WHOLE for "data=" */
			struct pattern pat;
		} data;
		struct {
			const struct snap_run *runs;
			size_t nruns;
			uint64_t total; /* bytes = sum of counts */
		} snap;
		struct {
			const struct loc_run *runs;
			size_t nruns;
			uint64_t total; /* pages = sum of counts */
		} where;
		struct {
			const struct same_run *runs;
			size_t nruns;
			uint64_t total; /* pages = sum of counts */
		} same;
	} u;
};

struct expect {
	enum expect_status status;
	int err; /* EXPECT_ERRNO: the positive errno value */
	const char *errname; /* EXPECT_ERRNO: "EFAULT" */
	size_t nitems;
	const struct expect_item *items; /* in source order */
};

/* The errno value of a name of the fixed table ("EFAULT" -> EFAULT), or 0. */
int script_errno_value(const char *name);
/* The table name of an errno value (EFAULT -> "EFAULT"), or NULL. */
const char *script_errno_name(int err);

/* ------------------------------------------------------------------------ */
/* Steps                                                                     */

enum step_kind {
	STEP_SYSTEM,
	STEP_DEVICE,
	STEP_FORK,
	STEP_EXIT,
	STEP_MAP,
	STEP_MUNMAP,
	STEP_MPROTECT,
	STEP_MADVISE,
	STEP_MREMAP,
	STEP_FILE,
	STEP_PWRITE,
	STEP_PREAD,
	STEP_WRITE,
	STEP_READ,
	STEP_STORE,
	STEP_LOAD,
	STEP_RMW,
	STEP_DEV_READ, /* "D read": dev names D, for every STEP_DEV_* */
	STEP_DEV_WRITE,
	STEP_DEV_MIGRATE_TO_DEV,
	STEP_DEV_MIGRATE_TO_SYS,
	STEP_DEV_SNAPSHOT,
	STEP_DEV_EXCLUSIVE,
	STEP_DEV_CHECK_EXCLUSIVE,
	STEP_DEV_ATOMIC_ADD,
	STEP_DEV_RELEASE,
	STEP_DEV_FAIL_NEXT_ALLOC,
	STEP_DEV_CLOSE,
	STEP_DEV_POOL,
	STEP_GUP,
	STEP_UNPIN,
	STEP_READPIN,
	STEP_WRITEPIN,
	STEP_WHERE,
	STEP_LEVEL,
	STEP_STAT,
	STEP_SAME,
	STEP_CHECK,
	STEP_SHOW,
	STEP_EXPECT_FREED,
	STEP_INJECT, /* devmm extension: arm or disarm a fault-injection site */
	STEP_SPLIT_DEFERRED, /* run the deferred-split queue once (large-folios.md §1.4) */
	STEP_TOGETHER,
};

enum dev_type { DEV_PRIVATE, DEV_COHERENT };
enum dev_cow { COW_SYSTEM, COW_DEVICE };
enum map_backing { BACK_ANON, BACK_SHARED, BACK_FILE };
enum step_prot { SPROT_RW, SPROT_R, SPROT_NONE };
enum step_advice { ADV_DONTNEED, ADV_FREE, ADV_DONTFORK, ADV_DOFORK, ADV_HUGEPAGE, ADV_NOHUGEPAGE,
		   ADV_POPULATE_READ, ADV_POPULATE_WRITE };

/*
 * One concrete step. Strings are NUL-terminated and owned by the script or
 * the iterator that produced the step. Fields not listed for a kind are zero.
 */
struct step {
	enum step_kind kind;
	unsigned int line; /* 1-based source line */
	unsigned int col; /* column of the command word */
	const char *text; /* the line after substitution, comment dropped,
			     tokens joined by one space (for together parts:
			     the part) */
	const char *proc; /* performing process: "main" without PROC: */
	const char *dev; /* device: STEP_DEV_*, STEP_DEVICE, STEP_EXPECT_FREED */
	struct range range; /* commands with a RANGE argument */
	union {
		struct {
			uint64_t pages;	   /* 0: not given (the default size) */
			bool has_mthp;
			unsigned int mthp; /* enabled mTHP orders, bit O = order O */
			bool has_thp, has_hzero, hzero_off;
			unsigned int thp; /* enum dmm_thp_mode */
			bool has_fail_thp;
			uint64_t fail_thp; /* fail-thp-alloc N */
			bool no_contents;  /* contents=none */
		} system;
		struct {
			enum dev_type type;
			bool has_pages;
			uint64_t pages; /* when has_pages */
			enum dev_cow cow; /* COW_SYSTEM unless cow=device */
			bool no_contents; /* contents=none */
		} device;
		struct { const char *child; } fork;
		struct {
			const char *region;
			uint64_t pages;
			enum map_backing backing;
			const char *file; /* BACK_FILE */
			uint64_t pgoff; /* BACK_FILE */
			bool shared_file; /* shared-file (else private COW) */
			int thp;	  /* 1: thp (VM_HUGEPAGE), -1: nothp, 0: neither */
			enum step_prot prot;
			uint64_t align; /* pages, 1 unless align= */
		} map;
		struct { enum step_prot prot; } mprotect;
		struct { enum step_advice advice; } madvise;
		struct {
			const char *to_region; /* to=R2+PAGES */
			uint64_t to_pages;
			bool dontunmap;
			const char *as; /* the new region name */
		} mremap;
		struct {
			const char *name; /* file, pwrite, pread */
			uint64_t pages; /* file */
			bool has_pattern; /* file: PATTERN given; pwrite: always */
			struct pattern pat;
		} file;
		/* write, D write: the words to store; rmw: the new words */
		struct { struct pattern pat; } write;
		struct {
			struct addr addr;
			uint32_t value; /* store */
		} word; /* store, load */
		struct { uint32_t value; } atomic_add;
		struct {
			bool write, fast, pin, longterm;
			const char *as; /* NULL: released at the end of the step */
		} gup;
		struct { const char *handle; } unpin;
		struct {
			const char *handle;
			struct pattern pat; /* writepin */
		} pinio; /* readpin, writepin */
		struct {
			/* RANGE2 of `same RANGE [PROC:]RANGE2`, in process proc2
			 * (NULL: the performing process) */
			const char *proc2;
			struct range range2;
		} same;
		struct { const char *proc; } show; /* NULL when not given */
		struct { uint64_t count; } expect_freed;
		struct {
			const char *site;
			uint64_t countdown, probability, seed; /* all 0: disarm */
		} inject;
		struct {
			const struct step *parts;
			size_t nparts; /* >= 2 */
		} together;
	} u;
	struct expect expect;
};

/* The command word of a kind ("map", "migrate-to-dev", ...). */
const char *step_kind_name(enum step_kind kind);

/* ------------------------------------------------------------------------ */
/* Scripts                                                                   */

struct script;

/*
 * script_parse - parse @len bytes of @text (a whole .dmm file; need not be
 * NUL-terminated and may contain any byte) named @path in messages. On
 * success *@out owns a copy of everything it needs and @text may go.
 * Errors: -EINVAL (syntax error, limit exceeded), -ENOMEM. @diag (may be
 * NULL) receives the first error.
 */
int script_parse(const char *path, const char *text, size_t len, struct script **out,
		 struct diag *diag);

/* script_load - read the file at @path and script_parse() it. Errors as
 * script_parse(), and -errno of open/read (diag "FILE: cannot read: ..."). */
int script_load(const char *path, struct script **out, struct diag *diag);

/* Free a script (NULL is fine). Iterators over it must be freed first. */
void script_free(struct script *s);

/* The path given to script_parse(). */
const char *script_path(const struct script *s);

/*
 * Variant combinations: the product of the value counts of every variant
 * line (1 when there is none). Combination c picks value
 * (c / stride_v) % nvalues_v of variant v, the last variant line varying
 * fastest.
 */
size_t script_combo_count(const struct script *s);

/*
 * Write the name of combination @combo, "FILE[NAME=V,...]" with the
 * variants in declaration order, or just "FILE" without variants, into
 * @buf (always NUL-terminated when size > 0). Returns the full length, as
 * snprintf does.
 */
size_t script_combo_name(const struct script *s, size_t combo, char *buf, size_t size);

/* The value of variant @name in @combo, or NULL when there is no such variant. */
const char *script_combo_value(const struct script *s, size_t combo, const char *name);

/* ------------------------------------------------------------------------ */
/* Expansion                                                                 */

struct script_iter;

/*
 * script_iter_start - begin the steps of combination @combo. Counts the
 * steps and repeat iterations first: more than SCRIPT_MAX_STEPS is -EINVAL
 * at the top-level repeat responsible; so is a second system step.
 * Errors: -EINVAL (also a bad repeat count from a loop variable, @combo out
 * of range), -ENOMEM. A parsed script is read-only: iterators over it may
 * run in different threads at once.
 */
int script_iter_start(const struct script *s, size_t combo, struct script_iter **out,
		      struct diag *diag);

/*
 * script_iter_next - the next step, in *@out, owned by the iterator and
 * valid until the next call or script_iter_free(). Returns 1 with a step,
 * 0 at the end (and again after), -EINVAL when the step's line does not
 * parse with the current loop values, -ENOMEM; after an error every call
 * returns it again.
 */
int script_iter_next(struct script_iter *it, const struct step **out, struct diag *diag);

void script_iter_free(struct script_iter *it);

/*
 * All steps of one combination at once (for tests and small scripts). The
 * list owns the steps. Errors as script_iter_start/next.
 */
struct step_list {
	const struct step **steps;
	size_t n;
	struct script_iter *owner; /* private */
};
int script_expand(const struct script *s, size_t combo, struct step_list *out,
		  struct diag *diag);
void step_list_free(struct step_list *list);

/*
 * script_check - expand every combination without keeping the steps: after
 * a 0 here, no iterator over @s can fail except for memory. Cost: every
 * step of every combination is produced once (combinations x steps
 * parses of the lines with variables; a line without is parsed once).
 */
int script_check(const struct script *s, struct diag *diag);

/* ------------------------------------------------------------------------ */
/* Testing                                                                   */

/*
 * script_fail_alloc - make the @nth allocation of this front end from now on
 * fail (1 = the next one); 0 turns it off. Not thread safe: for tests that
 * sweep every allocation-failure path.
 */
void script_fail_alloc(unsigned long nth);

#endif /* DEVMM_CLI_SCRIPT_H */
