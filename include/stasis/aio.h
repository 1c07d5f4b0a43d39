/* SPDX-License-Identifier: GPL-2.0 */
/* The aio ring as the kernel lays it out (fs/aio.c), for collect and inject. */
#ifndef STASIS_AIO_H
#define STASIS_AIO_H

#include <stdint.h>

#define AIO_RING_MAGIC 0xa10a10a1
#define AIO_RING_COMPAT_FEATURES 1
#define AIO_RING_INCOMPAT_FEATURES 0
/* larger rings are refused: io_setup caps a context at aio-max-nr events */
#define AIO_RING_MAX (64u << 20)

struct aio_ring_header {
	uint32_t id; /* the context's index in the mm's table */
	uint32_t nr; /* slots */
	uint32_t head; /* next event to reap (written by user space too) */
	uint32_t tail; /* next slot the kernel fills */
	uint32_t magic;
	uint32_t compat_features;
	uint32_t incompat_features;
	uint32_t header_length;
	/* struct io_event events[nr] follow */
};

#define AIO_EVENT_SIZE 32

/* Slots of a ring of len bytes: what the kernel makes of its pages. */
static inline uint32_t aio_ring_slots(uint64_t len)
{
	return (len - sizeof(struct aio_ring_header)) / AIO_EVENT_SIZE;
}

/*
 * The nr_events to give io_setup for a ring of len bytes: the kernel
 * doubles the request (after raising it to 4 per possible CPU), adds 2
 * and rounds the ring up to whole pages.
 */
static inline uint32_t aio_nr_req(uint64_t len)
{
	return (aio_ring_slots(len) - 2) / 2;
}

#endif
