/* SPDX-License-Identifier: MIT */
/*
 * Interval notifiers: what subscriptions cost an invalidation that does not
 * concern them. Each round munmaps pages one at a time (one invalidation
 * each) in a fresh address space, timed per munmap, beside a baseline
 * measured in the same run (rounds alternate):
 *
 *   notifier_10k   one subscription over the unmapped pages plus 9 999
 *                  one-page subscriptions elsewhere (999 with --quick),
 *                  against that one subscription alone: the cost of
 *                  finding the overlapping subscriptions among many;
 *   notifier_none  no subscription at all, against one subscription
 *                  elsewhere: the cost of the notifier lock and the lookup
 *                  that an mm without subscriptions skips.
 */
#include <errno.h>
#include <stdlib.h>

#include "bench.h"

/* Far above anything bench_map_anon places: subscriptions need no mapping. */
#define FAR_AWAY 0x600000000000ULL

struct notif_ctx {
	struct dmm_system *sys;
	uint64_t npages;	/* munmaps per round */
	unsigned long nsubs;	/* subscriptions of the "many" side */
	struct dmm_mmu_interval_notifier *subs;
};

static bool bench_invalidate(struct dmm_mmu_interval_notifier *sub,
			     const struct dmm_mmu_notifier_range *r, unsigned long cur_seq)
{
	(void)r;
	dmm_mmu_interval_set_seq(sub, cur_seq);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops bench_ops = { .invalidate = bench_invalidate };

/*
 * One round: map and populate npages, subscribe (over the range when
 * @over, plus @others one-page subscriptions far away), then munmap the
 * pages one by one; ns per munmap.
 */
static double notif_round(struct notif_ctx *c, bool over, unsigned long others)
{
	struct dmm_mm *mm = bench_mm(c->sys);
	uint64_t base = bench_map_anon(mm, c->npages, true);
	struct dmm_mmu_interval_notifier *s = c->subs;
	unsigned long n = 0;

	if (over)
		bench_must(dmm_mmu_interval_notifier_insert(&s[n++], mm, base, c->npages * PAGE,
							    &bench_ops),
			   "dmm_mmu_interval_notifier_insert");
	for (unsigned long i = 0; i < others; i++)
		bench_must(dmm_mmu_interval_notifier_insert(&s[n++], mm, FAR_AWAY + 2 * i * PAGE, PAGE,
							    &bench_ops),
			   "dmm_mmu_interval_notifier_insert");
	double t0 = bench_now_ns();
	for (uint64_t i = 0; i < c->npages; i++)
		bench_must(dmm_munmap(mm, base + i * PAGE, PAGE), "dmm_munmap");
	double t = bench_now_ns() - t0;
	while (n)
		dmm_mmu_interval_notifier_remove(&s[--n]);
	dmm_mm_exit(mm);
	return t / (double)c->npages;
}

static double many_round(void *p)
{
	struct notif_ctx *c = p;

	return notif_round(c, true, c->nsubs - 1);
}

static double one_over_round(void *p) { return notif_round(p, true, 0); }
static double none_round(void *p) { return notif_round(p, false, 0); }
static double one_elsewhere_round(void *p) { return notif_round(p, false, 1); }

static void notif_pair(const struct bench_opts *o, struct bench_result *r, double (*a)(void *),
		       double (*b)(void *))
{
	struct notif_ctx c = {
		.npages = o->npages < 1024 ? o->npages : 1024,
		.nsubs = o->quick ? 1000 : 10000,
	};

	c.subs = calloc(c.nsubs, sizeof(*c.subs));
	if (!c.subs)
		bench_die("calloc", ENOMEM);
	c.sys = bench_system(c.npages + 4096);
	bench_rounds_pair(a, b, &c, o, &r->devmm, &r->baseline);
	bench_system_done(c.sys, r->name);
	free(c.subs);
	r->ratio = r->devmm / r->baseline;
	bench_extra(r, "subscriptions", (double)c.nsubs);
	bench_extra(r, "munmaps_per_round", (double)c.npages);
}

void bench_notifier_10k(const struct bench_opts *o, struct bench_result *r)
{
	notif_pair(o, r, many_round, one_over_round);
	bench_note(r, "%g subscriptions, one of them over the unmapped pages; baseline: that one alone",
		   r->extra[0].val);
}

void bench_notifier_none(const struct bench_opts *o, struct bench_result *r)
{
	notif_pair(o, r, none_round, one_elsewhere_round);
	bench_note(r, "no subscription; baseline: one subscription elsewhere in the address space");
}
