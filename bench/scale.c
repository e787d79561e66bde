/* SPDX-License-Identifier: MIT */
/*
 * Scale: the cost per page of a working set against its size, on
 * metadata-only systems (DMM_SYS_NO_CONTENTS), where the cost is all
 * devmm's own.
 *
 * One run: a system of exactly as many frames as the mapping has pages
 * and a device-private mirror device of a quarter of that (4x
 * oversubscription); map the range, fault every page in for write
 * (MADV_POPULATE_WRITE), migrate the first quarter to the device and
 * back in 512-page batches through the mirror driver (no data read
 * back), unmap; each phase in ns per page it handled.
 *
 * scale_64g: that run at 64 GiB (2^24 pages over 16 GiB of device
 * memory), against the same at 64 MiB (median of the rounds) in the same
 * process; ratio = the largest per-phase ratio; peak_rss_bytes = the
 * process's resident high-water mark over the big run (reset just before
 * it). scale_sweep: the run at 2^14, 2^15 ... 2^24 pages, for the chart
 * of docs/performance.md. Neither is in the default set: name them with
 * --only (each takes about a minute).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "mirror.h"

#define SCALE_BATCH 512
#define SCALE_BASE 0x100000000ull
#define SCALE_SMALL_SHIFT 14 /* 64 MiB */
#define SCALE_BIG_SHIFT 24   /* 64 GiB */

enum { PH_TOUCH, PH_TO_DEV, PH_TO_SYS, PH_UNMAP, NR_PHASES };

static const char *const phase_names[NR_PHASES] = { "touch", "to_dev", "to_sys", "unmap" };

/* One run over 2^shift pages; ns per page of each phase into ns[]. */
static void scale_run(unsigned int shift, double ns[NR_PHASES])
{
	uint64_t npages = 1ull << shift, nmig = npages / 4, at;
	struct dmm_system_config cfg = { .nr_frames = npages, .flags = DMM_SYS_NO_CONTENTS };
	struct mirror_device_config dc = { .type = DMM_MEMORY_DEVICE_PRIVATE, .pages = nmig,
					   .no_contents = true };
	struct mirror_device *dev;
	struct mirror_result res;
	struct dmm_system *sys;
	struct mirror *m;
	struct dmm_mm *mm;
	uint64_t moved = 0;
	double t0;

	bench_must(dmm_system_create(&cfg, &sys), "dmm_system_create (scale)");
	bench_must(mirror_device_create(sys, "scale", &dc, &dev), "mirror_device_create (scale)");
	mm = bench_mm(sys);
	bench_must(mirror_open(dev, mm, &m), "mirror_open (scale)");
	bench_must(dmm_mmap(mm, SCALE_BASE, npages * PAGE, DMM_PROT_READ | DMM_PROT_WRITE,
			    DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS | DMM_MAP_FIXED, NULL, 0, &at),
		   "dmm_mmap (scale)");

	t0 = bench_now_ns();
	bench_must(dmm_madvise(mm, at, npages * PAGE, DMM_MADV_POPULATE_WRITE), "MADV_POPULATE_WRITE (scale)");
	ns[PH_TOUCH] = (bench_now_ns() - t0) / (double)npages;

	t0 = bench_now_ns();
	for (uint64_t off = 0; off < nmig; off += SCALE_BATCH) {
		bench_must(mirror_migrate_to_dev(m, at + off * PAGE, SCALE_BATCH, NULL, &res),
			   "mirror_migrate_to_dev (scale)");
		moved += res.cpages;
	}
	ns[PH_TO_DEV] = (bench_now_ns() - t0) / (double)nmig;

	t0 = bench_now_ns();
	for (uint64_t off = 0; off < nmig; off += SCALE_BATCH) {
		bench_must(mirror_migrate_to_sys(m, at + off * PAGE, SCALE_BATCH, &res),
			   "mirror_migrate_to_sys (scale)");
		moved += res.cpages;
	}
	ns[PH_TO_SYS] = (bench_now_ns() - t0) / (double)nmig;
	if (moved != 2 * nmig) {
		fprintf(stderr, "devmm bench: scale: %" PRIu64 " of %" PRIu64 " pages migrated\n", moved, 2 * nmig);
		exit(1);
	}

	t0 = bench_now_ns();
	bench_must(dmm_munmap(mm, at, npages * PAGE), "dmm_munmap (scale)");
	ns[PH_UNMAP] = (bench_now_ns() - t0) / (double)npages;

	if (dmm_system_nr_free(sys) != npages) {
		fprintf(stderr, "devmm bench: scale: %" PRIu64 " frames not freed\n",
			npages - dmm_system_nr_free(sys));
		exit(1);
	}
	mirror_close(m);
	dmm_mm_exit(mm);
	mirror_device_destroy(dev);
	bench_system_done(sys, "scale");
}

/* Reset the process's resident high-water mark (VmHWM) to its current
 * resident size: "5" to clear_refs (Linux >= 4.0). */
static void rss_peak_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (!f || fputs("5", f) < 0 || fclose(f))
		bench_die("/proc/self/clear_refs", errno);
}

static uint64_t rss_peak_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kb = 0;

	if (!f)
		bench_die("/proc/self/status", errno);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %" SCNu64 " kB", &kb) == 1)
			break;
	fclose(f);
	if (!kb)
		bench_die("VmHWM", ENOENT);
	return kb * 1024;
}

static void json_phases(struct bench_result *r, const double ns[NR_PHASES], const char *key)
{
	size_t len = strlen(r->json);

	len += (size_t)snprintf(r->json + len, sizeof(r->json) - len, ", \"%s\": {", key);
	for (int p = 0; p < NR_PHASES && len < sizeof(r->json); p++)
		len += (size_t)snprintf(r->json + len, sizeof(r->json) - len, "%s\"%s\": %.4g", p ? ", " : "",
					phase_names[p], ns[p]);
	if (len < sizeof(r->json))
		snprintf(r->json + len, sizeof(r->json) - len, "}");
}

void bench_scale_64g(const struct bench_opts *o, struct bench_result *r)
{
	double small[MAX_ROUNDS][NR_PHASES], med[NR_PHASES], big[NR_PHASES], v[MAX_ROUNDS];
	uint64_t peak;

	for (int i = 0; i < o->warmup; i++)
		scale_run(SCALE_SMALL_SHIFT, small[0]);
	for (int i = 0; i < o->rounds; i++)
		scale_run(SCALE_SMALL_SHIFT, small[i]);
	for (int p = 0; p < NR_PHASES; p++) {
		for (int i = 0; i < o->rounds; i++)
			v[i] = small[i][p];
		med[p] = bench_median(v, o->rounds);
	}
	rss_peak_reset();
	scale_run(SCALE_BIG_SHIFT, big);
	peak = rss_peak_bytes();
	r->ratio = 0;
	for (int p = 0; p < NR_PHASES; p++) {
		double ratio = big[p] / med[p];

		if (ratio > r->ratio) {
			r->ratio = ratio;
			r->devmm = big[p];
			r->baseline = med[p];
		}
	}
	json_phases(r, big, "phases");
	json_phases(r, med, "baseline_phases");
	bench_extra(r, "peak_rss_bytes", (double)peak);
	bench_extra(r, "pages", (double)(1ull << SCALE_BIG_SHIFT));
	bench_extra(r, "baseline_pages", (double)(1ull << SCALE_SMALL_SHIFT));
	bench_note(r, "ns/page 64 GiB | 64 MiB: touch %.0f | %.0f, to_dev %.0f | %.0f, to_sys %.0f | %.0f, "
		   "unmap %.0f | %.0f; peak RSS %.2f GiB (target <= 1.5); devmm/baseline = the worst phase",
		   big[PH_TOUCH], med[PH_TOUCH], big[PH_TO_DEV], med[PH_TO_DEV], big[PH_TO_SYS], med[PH_TO_SYS],
		   big[PH_UNMAP], med[PH_UNMAP], (double)peak / (1u << 30));
}

void bench_scale_sweep(const struct bench_opts *o, struct bench_result *r)
{
	double ns[NR_PHASES], worst = 0, best = 1e300;
	size_t len;

	(void)o;
	len = (size_t)snprintf(r->json, sizeof(r->json), ", \"points\": [");
	for (unsigned int s = SCALE_SMALL_SHIFT; s <= SCALE_BIG_SHIFT; s++) {
		double sum = 0;

		scale_run(s, ns);
		for (int p = 0; p < NR_PHASES; p++)
			sum += ns[p];
		if (sum > worst)
			worst = sum;
		if (sum < best)
			best = sum;
		if (len < sizeof(r->json))
			len += (size_t)snprintf(r->json + len, sizeof(r->json) - len,
						"%s{\"pages\": %llu, \"touch\": %.4g, \"to_dev\": %.4g, "
						"\"to_sys\": %.4g, \"unmap\": %.4g}",
						s > SCALE_SMALL_SHIFT ? ", " : "", 1ull << s, ns[PH_TOUCH],
						ns[PH_TO_DEV], ns[PH_TO_SYS], ns[PH_UNMAP]);
		printf("    %10llu pages: touch %.0f, to_dev %.0f, to_sys %.0f, unmap %.0f ns/page\n", 1ull << s,
		       ns[PH_TOUCH], ns[PH_TO_DEV], ns[PH_TO_SYS], ns[PH_UNMAP]);
		fflush(stdout);
	}
	if (len < sizeof(r->json))
		snprintf(r->json + len, sizeof(r->json) - len, "]");
	if (len >= sizeof(r->json))
		bench_die("scale_sweep: JSON row", ENOSPC);
	/* The sum of the four phases' ns/page: the worst size against the best. */
	r->devmm = worst;
	r->baseline = best;
	r->ratio = worst / best;
	bench_note(r, "2^14 .. 2^24 pages, contents=none; devmm / baseline: the summed ns/page of the "
		   "four phases at the worst size against the best");
}
