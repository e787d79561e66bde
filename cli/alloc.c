/* SPDX-License-Identifier: MIT */
/*
 * Memory of the front end: every allocation goes through script_malloc(),
 * so a test can make the Nth one fail and check that each failure path
 * reports -ENOMEM and leaks nothing. On top of it, arenas (a parsed script
 * or one expanded step is freed at once) and small growable vectors.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "script_int.h"

/* Countdown to the allocation that fails; 0 = never. Test-only, unlocked. */
static unsigned long fail_countdown;

void script_fail_alloc(unsigned long nth)
{
	fail_countdown = nth;
}

static bool should_fail(void)
{
	if (!fail_countdown)
		return false;
	return --fail_countdown == 0;
}

void *script_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *script_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

/* ------------------------------------------------------------------------ */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	alignas(max_align_t) unsigned char data[];
};

#define ARENA_CHUNK 8192u
#define ALIGN_UP(n) (((n) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

static struct arena_chunk *chunk_new(size_t min)
{
	size_t size = min > ARENA_CHUNK ? min : ARENA_CHUNK;
	struct arena_chunk *c;

	if (size > SIZE_MAX - sizeof(*c))
		return NULL;
	c = script_malloc(sizeof(*c) + size);
	if (!c)
		return NULL;
	c->next = NULL;
	c->used = 0;
	c->size = size;
	return c;
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	void *p;

	if (n > SIZE_MAX / 2)
		return NULL;
	n = ALIGN_UP(n ? n : 1);
	if (!c || c->size - c->used < n) {
		c = chunk_new(n);
		if (!c)
			return NULL;
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *keep = a->head;

	if (!keep || keep->size != ARENA_CHUNK) {
		arena_free(a);
		return;
	}
	a->head = keep->next;
	arena_free(a);
	keep->next = NULL;
	keep->used = 0;
	a->head = keep;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;

	while (c) {
		struct arena_chunk *next = c->next;

		free(c);
		c = next;
	}
	a->head = NULL;
}

/* ------------------------------------------------------------------------ */

int vec_push(struct vec *v, const void *item)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		void *d;

		if (cap > SIZE_MAX / v->elem)
			return -ENOMEM;
		d = script_realloc(v->data, cap * v->elem);
		if (!d)
			return -ENOMEM;
		v->data = d;
		v->cap = cap;
	}
	memcpy((char *)v->data + v->n * v->elem, item, v->elem);
	v->n++;
	return 0;
}

void vec_free(struct vec *v)
{
	free(v->data);
	v->data = NULL;
	v->n = v->cap = 0;
}
