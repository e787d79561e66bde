/* SPDX-License-Identifier: MIT */
/*
 * Provenance: every event the engine applies (faults, migrations with
 * their cause and origin, throttles, pins, replays, unmaps) goes to the
 * policy's on_event hook, to a user callback and, when asked, to a
 * JSON-lines file (one object per line, written with libjansson so that
 * any JSON reader takes it). eng->lock is held throughout.
 */
#include <errno.h>
#include <stdlib.h>

#include <jansson.h>

#include "engine.h"

const char *dmm_event_name(enum dmm_event_type type)
{
	static const char *const n[DMM_NR_EVENTS] = { "fault", "cpu_fault", "migrate", "throttle", "pin",
						      "unpin", "cancel", "batch", "replay", "unmap" };

	return (unsigned int)type < DMM_NR_EVENTS ? n[type] : NULL;
}

static const char *access_name(enum dmm_access a)
{
	static const char *const n[] = { "prefetch", "read", "write", "atomic" };

	return (unsigned int)a <= DMM_ACCESS_ATOMIC ? n[a] : "?";
}

static json_t *proc_json(unsigned int p)
{
	char buf[16];

	if (p == DMM_PROC_NONE)
		return json_null();
	if (p == DMM_PROC_CPU)
		return json_string("cpu");
	snprintf(buf, sizeof(buf), "gpu%u", p - 1);
	return json_string(buf);
}

/* The event as a JSON object; NULL: no memory. Fields that do not apply to
 * the event's type are left out. */
static json_t *event_json(const struct dmm_event *ev)
{
	json_t *o = json_object();
	bool moves = ev->type == DMM_EV_MIGRATE || ev->type == DMM_EV_PIN || ev->type == DMM_EV_UNPIN ||
		     ev->type == DMM_EV_THROTTLE;
	int bad = 0;

	if (!o)
		return NULL;
	bad |= json_object_set_new(o, "t", json_integer((json_int_t)ev->t));
	bad |= json_object_set_new(o, "ev", json_string(dmm_event_name(ev->type)));
	if (ev->t_end > ev->t)
		bad |= json_object_set_new(o, "t_end", json_integer((json_int_t)ev->t_end));
	if (ev->type != DMM_EV_BATCH && ev->type != DMM_EV_REPLAY)
		bad |= json_object_set_new(o, "addr", json_integer((json_int_t)ev->addr));
	if (ev->npages != 1 && ev->type != DMM_EV_REPLAY)
		bad |= json_object_set_new(o, "npages", json_integer((json_int_t)ev->npages));
	bad |= json_object_set_new(o, "from", proc_json(ev->from));
	bad |= json_object_set_new(o, "to", proc_json(ev->to));
	if (moves)
		bad |= json_object_set_new(o, "cause", json_string(dmm_cause_name(ev->cause)));
	if (ev->type == DMM_EV_FAULT || ev->type == DMM_EV_CPU_FAULT || ev->type == DMM_EV_CANCEL)
		bad |= json_object_set_new(o, "access", json_string(access_name(ev->access)));
	bad |= json_object_set_new(o, "batch", json_integer((json_int_t)ev->origin.batch));
	bad |= json_object_set_new(o, "fault", json_integer((json_int_t)ev->origin.fault));
	bad |= json_object_set_new(o, "rule", json_integer((json_int_t)ev->origin.rule));
	if (ev->type == DMM_EV_CANCEL)
		bad |= json_object_set_new(o, "error", json_integer(ev->error));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int dmm_event_to_json(const struct dmm_event *ev, char *buf, size_t size)
{
	json_t *o;
	size_t n;

	if (!ev || (!buf && size) || (unsigned int)ev->type >= DMM_NR_EVENTS)
		return -EINVAL;
	o = event_json(ev);
	if (!o)
		return -ENOMEM;
	n = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (n + 1 > size) {
		json_decref(o);
		return n ? -ENOSPC : -ENOMEM;
	}
	json_dumpb(o, buf, size, JSON_COMPACT | JSON_PRESERVE_ORDER);
	buf[n] = 0;
	json_decref(o);
	return (int)n;
}

/* The block an event is about: the one holding all its pages, if the
 * engine tracks it (eng->lock held). */
static struct mblock *event_block(struct dmm_engine *eng, const struct dmm_event *ev)
{
	uint64_t last;
	struct mblock *b;

	if (ev->type == DMM_EV_BATCH || ev->type == DMM_EV_REPLAY || !ev->npages ||
	    ev->npages > DMM_MBLOCK_PAGES)
		return NULL;
	last = ev->addr + (ev->npages - 1) * DMM_PAGE_SIZE;
	if (last < ev->addr || (last >> DMM_MBLOCK_SHIFT) != (ev->addr >> DMM_MBLOCK_SHIFT))
		return NULL;
	b = block_lookup(eng, range_of(eng, ev->addr), ev->addr);
	if (!b || ev->addr < b->range->start || last >= b->range->end)
		return NULL;
	return b;
}

void emit(struct dmm_engine *eng, const struct dmm_event *ev)
{
	if (eng->ops->on_event) {
		struct mblock *b = event_block(eng, ev);
		struct dmm_block_view v;

		if (b)
			block_view(eng, b, ev->t, &v);
		eng->ops->on_event(eng->pctx, b ? &v : NULL, ev);
	}
	if (eng->cb)
		eng->cb(eng->cb_arg, ev);
	if (eng->jsonl) {
		json_t *o = event_json(ev);

		/* A line that cannot be built is dropped: provenance is an
		 * observer and never changes the run. */
		if (o && !json_dumpf(o, eng->jsonl, JSON_COMPACT | JSON_PRESERVE_ORDER))
			fputc('\n', eng->jsonl);
		json_decref(o);
	}
}

int dmm_engine_set_event_cb(struct dmm_engine *eng, dmm_event_cb cb, void *arg)
{
	if (!eng)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	eng->cb = cb;
	eng->cb_arg = arg;
	pthread_mutex_unlock(&eng->lock);
	return 0;
}

int dmm_engine_events_jsonl(struct dmm_engine *eng, FILE *f)
{
	if (!eng)
		return -EINVAL;
	pthread_mutex_lock(&eng->lock);
	if (eng->jsonl)
		fflush(eng->jsonl);
	eng->jsonl = f;
	pthread_mutex_unlock(&eng->lock);
	return 0;
}
