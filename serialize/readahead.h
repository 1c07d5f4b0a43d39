/* SPDX-License-Identifier: GPL-2.0 */
/* A thread reading a descriptor ahead into a ring (serialize/readahead.c). */
#ifndef STASIS_SERIALIZE_READAHEAD_H
#define STASIS_SERIALIZE_READAHEAD_H

#include <stddef.h>
#include <sys/types.h>

struct readahead;

/* Reads fd ahead into a ring of size bytes (a multiple of the page size);
 * NULL (logged at debug level) where it cannot: read fd directly then. */
struct readahead *readahead_start(int fd, size_t size);
/* The next len bytes (at most size), contiguous in the ring, at *p: len,
 * fewer at the end of the input, -1 (errno) on a read error. They stay
 * there until readahead_release. */
ssize_t readahead_take(struct readahead *ra, void **p, size_t len);
/* Everything taken so far may be read over. */
void readahead_release(struct readahead *ra);
/* Stops the thread (it may have read past what was taken) and frees. */
void readahead_stop(struct readahead *ra);

#endif
