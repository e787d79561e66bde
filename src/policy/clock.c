/* SPDX-License-Identifier: MIT */
/*
 * Virtual time of the policy engine (managed-memory.md §5.6): the link
 * presets, link lanes with one transfer in flight per direction and the
 * fault-service costs (the per-stream clocks live in engine.c). Nothing
 * here reads host time: a run's simulated time depends on its inputs only.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "engine.h"

/* pascal-pcie3: the affine fit of §2.2, t = max(1.7 µs, 0.72 µs + B / 12.2 GB/s);
 * fault groups 11.6 µs per block plus 0.22 µs per page. */
#define PASCAL_MIN_NS 1700
#define PASCAL_ALPHA_NS 720
#define PASCAL_BETA_BYTES_PER_US 12200
#define PASCAL_BLOCK_NS 11600
#define PASCAL_PAGE_NS 220
/* uvmsmart-pcie3: speed(size) = (2a/π) atan(b · size / 1024) GiB/s with
 * a = 12 GiB/s, b = 0.07292; 45 µs per far fault. */
#define UVMSMART_A 12.0
#define UVMSMART_B 0.07292
#define UVMSMART_FAR_FAULT_NS 45000

/* An unsigned number: digits only at the start (strtoull would take a
 * sign, "-1" wrapping to 2^64 - 1, and leading blanks). */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return (errno || *end) ? -EINVAL : 0;
}

int dmm_timing_parse(const char *spec, struct dmm_timing *out)
{
	struct dmm_timing t = { 0 };

	if (!spec || !out)
		return -EINVAL;
	if (!strcmp(spec, "pascal-pcie3")) {
		t.preset = DMM_TIMING_PASCAL_PCIE3;
	} else if (!strcmp(spec, "uvmsmart-pcie3")) {
		t.preset = DMM_TIMING_UVMSMART_PCIE3;
	} else if (!strncmp(spec, "custom:", 7)) {
		char buf[64], *colon;

		if (strlen(spec + 7) >= sizeof(buf))
			return -EINVAL;
		strcpy(buf, spec + 7);
		colon = strchr(buf, ':');
		if (!colon)
			return -EINVAL;
		*colon = 0;
		t.preset = DMM_TIMING_CUSTOM;
		if (parse_u64(buf, &t.alpha_ns) || parse_u64(colon + 1, &t.beta_bytes_per_us) ||
		    !t.beta_bytes_per_us)
			return -EINVAL;
		t.fault_block_ns = PASCAL_BLOCK_NS;
		t.fault_page_ns = PASCAL_PAGE_NS;
		t.cpu_fault_ns = PASCAL_BLOCK_NS;
	} else {
		return -EINVAL;
	}
	*out = t;
	return 0;
}

uint64_t dmm_timing_transfer_ns(const struct dmm_timing *t, uint64_t bytes)
{
	uint64_t ns;

	if (!t || !bytes)
		return 0;
	switch (t->preset) {
	case DMM_TIMING_UVMSMART_PCIE3: {
		double speed = (2.0 * UVMSMART_A / M_PI) * atan(UVMSMART_B * (double)bytes / 1024.0);

		return (uint64_t)llround((double)bytes / (speed * 1073741824.0) * 1e9);
	}
	case DMM_TIMING_CUSTOM:
		ns = t->alpha_ns + bytes * 1000 / t->beta_bytes_per_us;
		return ns < t->min_ns ? t->min_ns : ns;
	case DMM_TIMING_PASCAL_PCIE3:
	default:
		ns = PASCAL_ALPHA_NS + bytes * 1000 / PASCAL_BETA_BYTES_PER_US;
		return ns < PASCAL_MIN_NS ? PASCAL_MIN_NS : ns;
	}
}

/* One transfer of @bytes on lane @l, wanted at @at: it starts when the
 * lane is free (one in flight per direction). Returns its end. */
uint64_t lane_transfer(const struct dmm_timing *t, struct lane *l, uint64_t at, uint64_t bytes)
{
	uint64_t start = at > l->busy_until ? at : l->busy_until;
	uint64_t d = dmm_timing_transfer_ns(t, bytes);

	l->busy_until = start + d;
	l->bytes += bytes;
	l->busy_ns += d;
	return l->busy_until;
}

/* The fault-service cost of a batch: per block and per page serviced
 * (pascal, custom) or per far fault (uvmsmart, its "added afterwards"
 * metric serialised into the batch). */
uint64_t timing_batch_cost(const struct dmm_timing *t, unsigned int blocks, unsigned int pages,
			   unsigned int far_faults)
{
	switch (t->preset) {
	case DMM_TIMING_UVMSMART_PCIE3:
		return (uint64_t)far_faults * UVMSMART_FAR_FAULT_NS;
	case DMM_TIMING_CUSTOM:
		return (uint64_t)blocks * t->fault_block_ns + (uint64_t)pages * t->fault_page_ns +
		       (uint64_t)far_faults * t->far_fault_ns;
	case DMM_TIMING_PASCAL_PCIE3:
	default:
		return (uint64_t)blocks * PASCAL_BLOCK_NS + (uint64_t)pages * PASCAL_PAGE_NS;
	}
}

/* The fixed part of a CPU fault on a device page (transfers come on top). */
uint64_t timing_cpu_fault_cost(const struct dmm_timing *t)
{
	switch (t->preset) {
	case DMM_TIMING_UVMSMART_PCIE3:
		return UVMSMART_FAR_FAULT_NS;
	case DMM_TIMING_CUSTOM:
		return t->cpu_fault_ns;
	case DMM_TIMING_PASCAL_PCIE3:
	default:
		return PASCAL_BLOCK_NS;
	}
}
