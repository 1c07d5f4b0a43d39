// SPDX-License-Identifier: GPL-2.0
/* The name index (include/stasis/nameidx.h): FNV-1a, linear probing. */
#include <stdlib.h>
#include <string.h>

#include "stasis/nameidx.h"
#include "stasis/util.h"

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static const char *entry_name(const void *table, size_t stride, uint32_t i)
{
	return *(char *const *)((const char *)table + i * stride);
}

int64_t name_index_find(const struct name_index *x, const void *table, size_t stride,
			const char *name)
{
	if (!x->size)
		return -1;
	for (uint32_t h = name_hash(name) & (x->size - 1);; h = (h + 1) & (x->size - 1)) {
		uint32_t v = x->slot[h];

		if (!v)
			return -1;
		if (!strcmp(entry_name(table, stride, v - 1), name))
			return v - 1;
	}
}

static void put(struct name_index *x, const void *table, size_t stride, uint32_t i)
{
	uint32_t h = name_hash(entry_name(table, stride, i)) & (x->size - 1);

	while (x->slot[h])
		h = (h + 1) & (x->size - 1);
	x->slot[h] = i + 1;
}

void name_index_add(struct name_index *x, const void *table, size_t stride, uint32_t i)
{
	if ((uint64_t)(i + 1) * 2 > x->size) {
		uint32_t size = x->size ? x->size * 2 : 64;

		free(x->slot);
		x->slot = xzalloc(size * sizeof(*x->slot));
		x->size = size;
		for (uint32_t k = 0; k < i; k++)
			put(x, table, stride, k);
	}
	put(x, table, stride, i);
}

void name_index_free(struct name_index *x)
{
	free(x->slot);
	x->slot = NULL;
	x->size = 0;
}
