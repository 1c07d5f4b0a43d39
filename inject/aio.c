// SPDX-License-Identifier: GPL-2.0
/*
 * aio contexts on restore: io_setup with the nr_events that gives a ring
 * of the dumped size, the kernel's tail moved to the dumped one by
 * requests that complete at once (writes to /dev/null), the head set as
 * user space may set it, the events copied in, and the ring moved to its
 * old address with mremap (the kernel follows it: the address is the
 * context's handle).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/aio_abi.h>

#include "inject.h"
#include "stasis/aio.h"
#include "stasis/log.h"
#include "stasis/util.h"

#define IOCB_OFF 0
#define IOCBP_OFF 4096
#define CTX_OFF 1024
#define BUF_OFF 2048
#define MAX_BATCH ((GADGET_SCRATCH_PAGES * PAGE_SIZE - IOCBP_OFF) / sizeof(uint64_t))

/* Moves the new ring's tail (and head) to the dumped ones. */
static int move_tail(struct itask *t, uint64_t ctx, const struct aio_ring_header *want)
{
	struct iocb cb = { .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_nbytes = 1 };
	uint64_t *ptrs;
	unsigned count, done = 0, batch;
	unsigned long at;
	long fd, r = 0;

	if (!want->head && !want->tail)
		return 0;
	/* tail behind head: a full turn first, or the kernel's count of
	 * completed events comes out wrong */
	count = want->tail < want->head ? want->nr + want->tail : want->tail;
	batch = count < want->nr - 1 ? count : want->nr - 1;
	if (batch > MAX_BATCH)
		batch = MAX_BATCH;
	at = scratch_put(t, BUF_OFF, "/dev/null", sizeof("/dev/null"));
	if (!at)
		return -1;
	fd = ISYS(t, SYS_openat, AT_FDCWD, at, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_err("task %d: cannot open /dev/null for its aio ring: %s", t->pid, strerror(-fd));
		return -1;
	}
	cb.aio_fildes = fd;
	cb.aio_buf = t->scratch + BUF_OFF;
	ptrs = xmalloc(batch * sizeof(*ptrs));
	for (unsigned i = 0; i < batch; i++)
		ptrs[i] = t->scratch + IOCB_OFF;
	if (!scratch_put(t, IOCB_OFF, &cb, sizeof(cb)) ||
	    !scratch_put(t, IOCBP_OFF, ptrs, batch * sizeof(*ptrs)))
		r = -1;
	while (!r && done < count) {
		unsigned n = count - done < batch ? count - done : batch;
		uint32_t head;

		r = ISYS(t, SYS_io_submit, ctx, n, t->scratch + IOCBP_OFF);
		if (r <= 0) {
			pr_err("task %d: cannot submit requests to its aio ring: %s", t->pid,
			       r ? strerror(-r) : "none taken");
			r = -1;
			break;
		}
		done += r;
		/* reaping as user space does, by moving the head, makes room */
		head = done < want->head ? done : want->head;
		r = rmem_write(&t->rt, ctx + offsetof(struct aio_ring_header, head), &head,
			       sizeof(head));
	}
	free(ptrs);
	ISYS(t, SYS_close, fd);
	return r ? -1 : 0;
}

static int restore_ring(struct itask *t, const Stasis__AioRing *ar)
{
	const struct aio_ring_header *want = (const void *)ar->ring.data;
	struct aio_ring_header now;
	uint64_t ctx = 0;
	long r;

	if (ar->len > AIO_RING_MAX || ar->len % PAGE_SIZE || ar->len <= sizeof(now) ||
	    ar->ring.len != ar->len || ar->id % PAGE_SIZE || aio_ring_slots(ar->len) < 3 ||
	    want->nr != aio_ring_slots(ar->len) || want->head >= want->nr ||
	    want->tail >= want->nr) {
		pr_err("task %d: invalid aio ring at %#llx in the checkpoint", t->pid,
		       (unsigned long long)ar->id);
		return -1;
	}
	if (!scratch_put(t, CTX_OFF, &ctx, sizeof(ctx)))
		return -1;
	r = ISYS(t, SYS_io_setup, ar->nr_req, t->scratch + CTX_OFF);
	if (r || rmem_read(&t->rt, t->scratch + CTX_OFF, &ctx, sizeof(ctx)) ||
	    rmem_read(&t->rt, ctx, &now, sizeof(now))) {
		pr_err("task %d: cannot set up an aio context of %u events: %s", t->pid, ar->nr_req,
		       r ? strerror(-r) : "ring unreadable");
		return -1;
	}
	if (now.nr != want->nr) {
		pr_err("task %d: the aio ring at %#llx has %u slots here, %u in the checkpoint",
		       t->pid, (unsigned long long)ar->id, now.nr, want->nr);
		return -1;
	}
	if (move_tail(t, ctx, want))
		return -1;
	/* the events; the header stays the new one but for the head */
	if (rmem_write(&t->rt, ctx + sizeof(now), (const char *)ar->ring.data + sizeof(now),
		       ar->len - sizeof(now)) ||
	    rmem_write(&t->rt, ctx + offsetof(struct aio_ring_header, head), &want->head,
		       sizeof(want->head)))
		return -1;
	r = ISYS(t, SYS_mremap, ctx, ar->len, ar->len, MREMAP_MAYMOVE | MREMAP_FIXED, ar->id);
	if ((uint64_t)r != ar->id) {
		pr_err("task %d: cannot move its aio ring to %#llx: %s", t->pid,
		       (unsigned long long)ar->id, r < 0 ? strerror(-r) : "placed elsewhere");
		return -1;
	}
	return 0;
}

int aio_restore(struct itask *t)
{
	for (size_t i = 0; i < t->mm->n_aios; i++)
		if (restore_ring(t, t->mm->aios[i]))
			return -1;
	return 0;
}
