/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A hash index over a table of entries 0..n-1 that each begin with their
 * name (a char *), so that finding an image by name costs no scan: the
 * image tables of the stream (lib image.c) and of stasis-seal.
 */
#ifndef STASIS_NAMEIDX_H
#define STASIS_NAMEIDX_H

#include <stddef.h>
#include <stdint.h>

struct name_index {
	uint32_t *slot; /* entry + 1, 0 when free */
	uint32_t size;	/* power of two, at least twice the entries */
};

/* The entry named name, or -1. */
int64_t name_index_find(const struct name_index *x, const void *table, size_t stride,
			const char *name);
/* Adds entry i, the newest of the table (the table may have moved). */
void name_index_add(struct name_index *x, const void *table, size_t stride, uint32_t i);
void name_index_free(struct name_index *x);

#endif
