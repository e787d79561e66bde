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
	{ #field, d, lo, hi, (unsigned int)offsetof(struct uvm_params, field), text },

const struct uvm_param_desc uvm_param_table[] = { UVM_PARAM_LIST(P, P) };

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
