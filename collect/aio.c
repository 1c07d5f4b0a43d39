// SPDX-License-Identifier: GPL-2.0
/*
 * aio contexts: each io_setup ring is a mapping of the task ("/[aio]
 * (deleted)") whose address is the context's handle. The ring (header and
 * completed events not reaped yet) is read from the mapping; requests still
 * in flight are not visible from outside, as with CRIU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/aio_abi.h>

#include "collect.h"
#include "stasis/aio.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

int aio_collect_vma(struct ctask *ct, const struct proc_vma *v, Stasis__MmEntry *mm)
{
	unsigned long len = v->end - v->start;
	struct aio_ring_header *ring;
	Stasis__AioRing *ar;
	unsigned nr;

	if (len > AIO_RING_MAX) {
		pr_err("task %d: aio ring at %lx is too large (%lu bytes)", ct->pid, v->start, len);
		return -1;
	}
	ring = xmalloc(len);
	if (rmem_read(&ct->threads[0], v->start, ring, len)) {
		free(ring);
		return -1;
	}
	nr = aio_ring_slots(len);
	if (ring->magic != AIO_RING_MAGIC || ring->compat_features != AIO_RING_COMPAT_FEATURES ||
	    ring->incompat_features != AIO_RING_INCOMPAT_FEATURES ||
	    ring->header_length != sizeof(*ring) || ring->nr != nr || ring->head >= nr ||
	    ring->tail >= nr) {
		pr_err("task %d: aio ring at %lx is not a ring stasis knows (magic %#x, %u slots)",
		       ct->pid, v->start, ring->magic, ring->nr);
		free(ring);
		return -1;
	}
	ar = xmalloc(sizeof(*ar));
	stasis__aio_ring__init(ar);
	ar->id = v->start;
	ar->len = len;
	ar->nr_req = aio_nr_req(len);
	ar->ring.data = (uint8_t *)ring;
	ar->ring.len = len;
	mm->aios = xrealloc(mm->aios, (mm->n_aios + 1) * sizeof(*mm->aios));
	mm->aios[mm->n_aios++] = ar;
	pr_debug("task %d: aio ring at %lx, %u slots, head %u, tail %u", ct->pid, v->start, nr,
		 ring->head, ring->tail);
	return 0;
}
