/* SPDX-License-Identifier: MIT */
/*
 * Running one variant combination: a fresh system per combination, steps
 * in order (the parts of `together` on their own threads), the judgement of
 * each step, --check-each, -v, and the teardown that gives everything back
 * (pins, devices, processes, files) so nothing leaks from one test to the
 * next.
 */
#include "runner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Steps that change the runner's tables run alone. */
static bool step_mutates(const struct step *st)
{
	switch (st->kind) {
	case STEP_SYSTEM:
	case STEP_DEVICE:
	case STEP_FORK:
	case STEP_EXIT:
	case STEP_MAP:
	case STEP_MREMAP:
	case STEP_FILE:
	case STEP_UNPIN:
	case STEP_DEV_CLOSE:
	case STEP_SHOW:
	case STEP_CHECK: /* dmm_check needs a quiescent system */
		return true;
	case STEP_GUP:
		return st->u.gup.as != NULL;
	default:
		return false;
	}
}

struct part {
	struct runner *r;
	const struct step *st;
	bool ok;
	char msg[512];
};

/* Run and judge one step; on failure msg says why. */
static bool run_one(struct runner *r, const struct step *st, char *msg, size_t size)
{
	struct outcome o;
	bool ok;
	int e;

	if (step_mutates(st))
		pthread_rwlock_wrlock(&r->lock);
	else
		pthread_rwlock_rdlock(&r->lock);
	e = run_step(r, st, &o);
	pthread_rwlock_unlock(&r->lock);
	if (e) {
		snprintf(msg, size, "%s", o.why);
		ok = false;
	} else {
		ok = check_expect(r, st, &o, msg, size);
	}
	outcome_free(&o);
	return ok;
}

static void *part_thread(void *arg)
{
	struct part *p = arg;

	p->ok = run_one(p->r, p->st, p->msg, sizeof(p->msg));
	return NULL;
}

/* Run the parts concurrently; report each failure. */
static bool run_together(struct runner *r, const struct step *st)
{
	size_t n = st->u.together.nparts;
	struct part *parts = calloc(n, sizeof(*parts));
	pthread_t *th = calloc(n, sizeof(*th));
	bool ok = true;

	if (!parts || !th) {
		free(parts);
		free(th);
		fprintf(r->out, "%s:%u: %s: out of memory\n", r->path, st->line, st->text);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		parts[i] = (struct part){ .r = r, .st = &st->u.together.parts[i] };
		if (pthread_create(&th[i], NULL, part_thread, &parts[i]))
			part_thread(&parts[i]), th[i] = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (th[i])
			pthread_join(th[i], NULL);
		if (!parts[i].ok) {
			fprintf(r->out, "%s:%u: %s: %s\n", r->path, st->line, parts[i].st->text, parts[i].msg);
			ok = false;
		}
	}
	free(parts);
	free(th);
	return ok;
}

static bool check_after(struct runner *r, const struct step *st)
{
	char report[2048];

	if (!r->sys || !dmm_check(r->sys, report, sizeof(report)))
		return true;
	fprintf(r->out, "%s:%u: %s: invariant violated after the step:\n%s", r->path, st->line, st->text, report);
	return false;
}

static bool run_step_judged(struct runner *r, const struct step *st)
{
	char msg[512];
	bool ok;

	if (r->opts.notes) {
		if (st->line < r->opts.nnotes && r->opts.notes[st->line])
			fprintf(r->out, "\n%s\n", r->opts.notes[st->line]);
		fprintf(r->out, "  $ %s\n", st->text);
	}
	if (st->kind == STEP_TOGETHER) {
		ok = run_together(r, st);
	} else {
		ok = run_one(r, st, msg, sizeof(msg));
		if (!ok)
			fprintf(r->out, "%s:%u: %s: %s\n", r->path, st->line, st->text, msg);
	}
	if (r->opts.verbose)
		fprintf(r->out, "  %4u  %-60s %s\n", st->line, st->text, ok ? "ok" : "FAILED");
	if (ok && r->opts.check_each)
		ok = check_after(r, st);
	return ok;
}

static void teardown(struct runner *r)
{
	while (r->nhandles)
		release_handle(r, &r->handles[0]);
	for (size_t i = 0; i < r->ndevs; i++) {
		mirror_device_destroy(r->devs[i].dev);
		free(r->devs[i].name);
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		dmm_file_put(r->files[i].file);
		free(r->files[i].name);
	}
	for (size_t i = 0; i < r->nprocs; i++) {
		struct proc *p = r->procs[i];

		dmm_mm_exit(p->mm);
		for (size_t j = 0; j < p->nregions; j++)
			free(p->regions[j].name);
		free(p->regions);
		free(p->name);
		free(p);
	}
	dmm_system_destroy(r->sys);
	free(r->handles);
	free(r->devs);
	free(r->files);
	free(r->procs);
	pthread_rwlock_destroy(&r->lock);
}

int runner_run_combo(const struct script *s, size_t combo, FILE *out, const struct runner_opts *opts)
{
	struct runner r = { .opts = *opts, .out = out, .path = script_path(s) };
	struct script_iter *it;
	const struct step *st;
	struct diag d;
	bool ok = true;
	int rc;

	pthread_rwlock_init(&r.lock, NULL);
	if (script_iter_start(s, combo, &it, &d)) {
		fprintf(out, "%s\n", d.text);
		pthread_rwlock_destroy(&r.lock);
		return 1;
	}
	while (ok && (rc = script_iter_next(it, &st, &d)) > 0)
		ok = run_step_judged(&r, st);
	if (ok && rc < 0) {
		fprintf(out, "%s\n", d.text);
		ok = false;
	}
	script_iter_free(it);
	teardown(&r);
	if (ok && r.unverified)
		fprintf(out, "%s: passed without its %lu data checks (contents=none)\n", r.path,
			(unsigned long)r.unverified);
	return ok ? 0 : 1;
}
