/* SPDX-License-Identifier: MIT */
/*
 * The uvm policy's tunables: one table of names (NVIDIA's module
 * parameters without the uvm_perf_ prefix), defaults and valid ranges, and
 * the calls that set and read them by name. Defaults are NVIDIA's
 * (shared/spec/managed-memory.md sections 1.1, 1.3, 1.4); the ranges are
 * NVIDIA's where it states one, else the bounds docs/managed-memory.md
 * gives.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "uvm.h"

#define P(field, d, lo, hi, text) \
	{ #field, d, lo, hi, (unsigned int)offsetof(struct uvm_params, field), text }

const struct uvm_param_desc uvm_param_table[] = {
	P(prefetch_enable, 1, 0, 1, "tree prefetcher on"),
	P(prefetch_threshold, 51, 1, 100, "percent of a tree node that must be set for it to qualify"),
	P(prefetch_min_faults, 1, 1, 20, "faults to the same destination before prefetching"),
	P(thrashing_enable, 1, 0, 1, "thrashing detection and mitigation on"),
	P(thrashing_threshold, 3, 1, 7, "events within the lapse that make a page thrash (3-bit counter)"),
	P(thrashing_pin_threshold, 10, 1, 255, "throttlings before the page is pinned"),
	P(thrashing_lapse_usec, 500, 5, 500000, "the lapse, microseconds"),
	P(thrashing_nap, 1, 1, 100, "throttling period, in lapses"),
	P(thrashing_epoch, 2000, 1, 100000, "quiet time before a block's state is reset, in lapses"),
	P(thrashing_pin, 300, 0, 100000, "pin time, in lapses; 0: pinned forever"),
	P(thrashing_max_resets, 4, 0, 255, "epoch resets per block"),
	P(lapse_vote_threshold, 32, 1, 127, "votes that move the adaptive lapse"),
	P(lapse_adapt, 0, 0, 1, "adapt the lapse to the observed gaps (devmm switch)"),
	P(fault_batch_count, 256, 1, 8192, "fault entries fetched per batch"),
	P(fault_replay_policy, UVM_REPLAY_BATCH_FLUSH, UVM_REPLAY_BLOCK, UVM_REPLAY_ONCE,
	  "0 block, 1 batch, 2 batch_flush, 3 once"),
	P(fault_max_batches_per_service, 20, 1, 1000, "batches per service round"),
	P(fault_max_throttle_per_service, 5, 1, 1000, "batches with throttled faults per service round"),
	P(fault_coalesce, 1, 0, 1, "coalesce duplicate fault entries"),
	P(fault_replay_update_put_ratio, 50, 0, 100, "duplicate percent that re-reads PUT before a flush"),
	P(reenable_prefetch_faults_lapse_msec, 1000, 0, 1000000, "hardware prefetch faults back on after, ms"),
	P(map_remote_on_native_atomics_fault, 0, 0, 1, "atomic faults map remotely with native atomics"),
};

const unsigned int uvm_param_count = sizeof(uvm_param_table) / sizeof(uvm_param_table[0]);

static uint32_t *param_field(struct uvm_params *p, const struct uvm_param_desc *d)
{
	return (uint32_t *)((char *)p + d->offset);
}

void uvm_params_default(struct uvm_params *p)
{
	memset(p, 0, sizeof(*p));
	for (unsigned int i = 0; i < uvm_param_count; i++)
		*param_field(p, &uvm_param_table[i]) = uvm_param_table[i].def;
}

const struct uvm_param_desc *uvm_param_find(const char *name)
{
	if (!name)
		return NULL;
	for (unsigned int i = 0; i < uvm_param_count; i++)
		if (!strcmp(uvm_param_table[i].name, name))
			return &uvm_param_table[i];
	return NULL;
}

int uvm_param_set(struct uvm_params *p, const char *name, int64_t value)
{
	const struct uvm_param_desc *d = uvm_param_find(name);

	if (!d)
		return -EINVAL;
	if (value < (int64_t)d->min || value > (int64_t)d->max)
		return -ERANGE;
	*param_field(p, d) = (uint32_t)value;
	return 0;
}

int uvm_param_get(const struct uvm_params *p, const char *name, int64_t *value)
{
	const struct uvm_param_desc *d = uvm_param_find(name);

	if (!d)
		return -EINVAL;
	*value = *(const uint32_t *)((const char *)p + d->offset);
	return 0;
}

static const char *const replay_names[] = { "block", "batch", "batch_flush", "once" };

/* The value of VALUE: 0, -EINVAL (not a number), -ERANGE (does not fit). */
static int parse_value(const char *name, const char *s, int64_t *out)
{
	char *end;

	if (!strcmp(name, "fault_replay_policy"))
		for (unsigned int i = 0; i < 4; i++)
			if (!strcmp(s, replay_names[i])) {
				*out = i;
				return 0;
			}
	if (!*s || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

int uvm_param_parse(struct uvm_params *p, const char *assignment)
{
	const char *eq = assignment ? strchr(assignment, '=') : NULL;
	char name[64];
	int64_t v;
	int err;

	if (!eq || (size_t)(eq - assignment) >= sizeof(name))
		return -EINVAL;
	memcpy(name, assignment, (size_t)(eq - assignment));
	name[eq - assignment] = '\0';
	if (!uvm_param_find(name))
		return -EINVAL;
	err = parse_value(name, eq + 1, &v);
	if (err)
		return err;
	return uvm_param_set(p, name, v);
}
