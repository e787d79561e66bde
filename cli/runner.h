/* SPDX-License-Identifier: MIT */
/*
 * The runner of `devmm run`: executes the concrete steps the front end
 * (script.h) produces against devmm and the mirror driver, and checks each
 * step's expectations. It uses only the public headers.
 */
#ifndef DEVMM_CLI_RUNNER_H
#define DEVMM_CLI_RUNNER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include <devmm/devmm.h>

#include "mirror.h"
#include "script.h"

struct region {
	char *name;
	uint64_t start, npages;
};

struct proc {
	char *name;
	struct dmm_mm *mm;
	struct region *regions;
	size_t nregions;
	uint64_t high; /* every address below is "used" */
};

struct rdevice {
	char *name;
	struct mirror_device *dev;
};

struct rfile {
	char *name;
	struct dmm_file *file;
};

struct handle {
	char *name;
	uint64_t *pfns;
	long n;
	bool pin;
	bool write;	/* taken with FOLL_WRITE: writepin may write through it */
	uint64_t word0;	/* pattern index k of the first word (range start page * 1024) */
};

struct runner_opts {
	bool verbose;	 /* print every step with its result */
	bool check_each; /* dmm_check after every step */
	/* --contents=none: every system metadata-only, and the data steps run
	 * without their data (see cli/README.md): what they would have
	 * compared is counted in runner.unverified and reported. */
	bool no_contents;
	/* The demo: text printed before the step of each line (NULL: none),
	 * and every step echoed. */
	const char *const *notes;
	size_t nnotes;
};

struct runner {
	struct runner_opts opts;
	FILE *out;
	const char *path;
	/* The tables below. Steps of `together` run concurrently: steps that
	 * change the tables hold it for writing, all others for reading. */
	pthread_rwlock_t lock;
	struct dmm_system *sys;
	struct proc **procs;
	size_t nprocs;
	struct rdevice *devs;
	size_t ndevs;
	struct rfile *files;
	size_t nfiles;
	struct handle *handles;
	size_t nhandles;
	bool no_data;	/* the data steps run without data (--contents=none) */
	unsigned int thp_mode, thp_flags; /* the last `system thp= hzero=` */
	_Atomic unsigned long unverified; /* then: the data checks not made */
};

/* Run one variant combination of a script. Returns 0 if it passed. */
int runner_run_combo(const struct script *s, size_t combo, FILE *out, const struct runner_opts *opts);

/* Steps (run.c) and their checks (expect.c). */
struct outcome;
int run_step(struct runner *r, const struct step *st, struct outcome *o);
/* Check o against st's expectations; on mismatch write "expected X, got Y"
 * into msg and return false. */
bool check_expect(struct runner *r, const struct step *st, const struct outcome *o, char *msg, size_t size);

void release_handle(struct runner *r, struct handle *h);

/* show (show.c) */
void runner_show(struct runner *r, FILE *out, const char *proc);

/* Name lookups (run.c); lock held. */
struct proc *find_proc(struct runner *r, const char *name);
struct region *find_region(struct proc *p, const char *name);
const char *device_name_of_pfn(struct runner *r, uint64_t pfn);

/* Everything a step observed. */
struct outcome {
	int err;			/* 0 or -errno */
	char why[160];			/* a runner-level failure (unknown name ...) */
	struct mirror_result res;	/* device commands */
	uint8_t *data;			/* the command's data buffer, or the words read */
	uint64_t data_first;		/* region page of data's first page */
	uint64_t data_pages;
	uint64_t data_word0;		/* word index (pattern k) of data's first word */
	uint64_t data_words;		/* words in data (read, rmw, pread) */
	uint8_t *snap;
	uint64_t nsnap;
	long pinned;
	uint32_t value;			/* load */
	uint64_t used, free;		/* pool */
	uint64_t refs, maps, pins;	/* stat */
	uint64_t order, fmaps, pmdmaps, partial; /* stat: the folio's */
	uint64_t split;			/* split-deferred: folios split */
	uint64_t writable;		/* stat: the entry allows writes (0 or 1) */
	struct loc { int kind; const char *dev; } *locs; /* where */
	uint64_t nlocs;
	bool *same;			/* same: per page, the two map one frame */
	uint64_t nsame;
	uint64_t freed;			/* expect-freed: folio_free count */
	bool checked_inline;		/* the step checked its own expectation (pread...) */
};

void outcome_free(struct outcome *o);

#endif
