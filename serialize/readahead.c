// SPDX-License-Identifier: GPL-2.0
/*
 * A descriptor read ahead on a thread of its own, into a ring that is
 * mapped twice in a row, so that anything up to the ring's size taken from
 * it is contiguous. stasis-inject reads its stream so: copying the pipe's
 * data into memory then goes on beside putting the last frame's pages into
 * the task, instead of before it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "readahead.h"

struct readahead {
	int fd, stop_fd;
	char *ring;
	size_t size;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t data, space;
	/* bytes read in, given out, and given back (may be read over) */
	uint64_t head, pos, tail;
	int err;
	bool eof, stop;
};

/* What one wait for the input came to. */
enum ra_step { RA_READ, RA_AGAIN, RA_EOF, RA_FAILED, RA_STOPPED };

static enum ra_step read_some(struct readahead *ra, char *at, size_t room, ssize_t *n)
{
	struct pollfd pfd[2] = { { ra->fd, POLLIN, 0 }, { ra->stop_fd, POLLIN, 0 } };

	if (poll(pfd, 2, -1) < 0)
		return errno == EINTR ? RA_AGAIN : RA_FAILED;
	if (pfd[1].revents)
		return RA_STOPPED;
	*n = read(ra->fd, at, room);
	if (*n > 0)
		return RA_READ;
	if (!*n)
		return RA_EOF;
	return errno == EINTR || errno == EAGAIN ? RA_AGAIN : RA_FAILED;
}

static void *readahead_main(void *arg)
{
	struct readahead *ra = arg;

	pthread_mutex_lock(&ra->mu);
	for (;;) {
		while (!ra->stop && ra->head - ra->tail == ra->size)
			pthread_cond_wait(&ra->space, &ra->mu);
		if (ra->stop)
			break;
		/* the ring's second mapping makes the free room contiguous */
		size_t room = ra->size - (ra->head - ra->tail);
		char *at = ra->ring + ra->head % ra->size;
		ssize_t n = 0;

		pthread_mutex_unlock(&ra->mu);
		enum ra_step step = read_some(ra, at, room, &n);
		int err = errno;

		pthread_mutex_lock(&ra->mu);
		if (step == RA_STOPPED)
			break;
		if (step == RA_AGAIN)
			continue;
		if (step == RA_READ)
			ra->head += n;
		else if (step == RA_EOF)
			ra->eof = true;
		else
			ra->err = err;
		pthread_cond_signal(&ra->data);
		if (step != RA_READ)
			break;
	}
	pthread_mutex_unlock(&ra->mu);
	return NULL;
}

static char *ring_map(size_t size)
{
	int fd = memfd_create("stasis-readahead", MFD_CLOEXEC);
	char *base = MAP_FAILED;

	if (fd < 0 || ftruncate(fd, size))
		goto out;
	base = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		goto out;
	if (mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
		    MAP_FAILED) {
		munmap(base, 2 * size);
		base = MAP_FAILED;
	}
out:
	if (fd >= 0)
		close(fd);
	return base == MAP_FAILED ? NULL : base;
}

struct readahead *readahead_start(int fd, size_t size)
{
	struct readahead *ra = xzalloc(sizeof(*ra));
	sigset_t all, old;
	int err;

	ra->fd = fd;
	ra->size = size;
	ra->stop_fd = eventfd(0, EFD_CLOEXEC);
	ra->ring = ring_map(size);
	if (ra->stop_fd < 0 || !ra->ring) {
		pr_debug("no read-ahead ring: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&ra->mu, NULL);
	pthread_cond_init(&ra->data, NULL);
	pthread_cond_init(&ra->space, NULL);
	/* signals are for the thread that traces and waits */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&ra->th, NULL, readahead_main, ra);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		return ra;
	pr_debug("no read-ahead thread: %s", strerror(err));
	pthread_mutex_destroy(&ra->mu);
	pthread_cond_destroy(&ra->data);
	pthread_cond_destroy(&ra->space);
fail:
	if (ra->ring)
		munmap(ra->ring, 2 * size);
	if (ra->stop_fd >= 0)
		close(ra->stop_fd);
	free(ra);
	return NULL;
}

ssize_t readahead_take(struct readahead *ra, void **p, size_t len)
{
	size_t n;

	pthread_mutex_lock(&ra->mu);
	/* what is taken must fit beside what is still held */
	if (ra->pos - ra->tail + len > ra->size) {
		pthread_mutex_unlock(&ra->mu);
		errno = EFBIG;
		return -1;
	}
	while (ra->head - ra->pos < len && !ra->eof && !ra->err)
		pthread_cond_wait(&ra->data, &ra->mu);
	n = ra->head - ra->pos < len ? ra->head - ra->pos : len;
	if (!n && ra->err) {
		errno = ra->err;
		pthread_mutex_unlock(&ra->mu);
		return -1;
	}
	*p = ra->ring + ra->pos % ra->size;
	ra->pos += n;
	pthread_mutex_unlock(&ra->mu);
	return n;
}

void readahead_release(struct readahead *ra)
{
	pthread_mutex_lock(&ra->mu);
	if (ra->tail != ra->pos) {
		ra->tail = ra->pos;
		pthread_cond_signal(&ra->space);
	}
	pthread_mutex_unlock(&ra->mu);
}

void readahead_stop(struct readahead *ra)
{
	uint64_t one = 1;

	if (!ra)
		return;
	pthread_mutex_lock(&ra->mu);
	ra->stop = true;
	pthread_cond_signal(&ra->space);
	pthread_mutex_unlock(&ra->mu);
	if (write(ra->stop_fd, &one, sizeof(one)) != sizeof(one))
		pr_debug("cannot wake the read-ahead thread: %s", strerror(errno));
	pthread_join(ra->th, NULL);
	pthread_mutex_destroy(&ra->mu);
	pthread_cond_destroy(&ra->data);
	pthread_cond_destroy(&ra->space);
	munmap(ra->ring, 2 * ra->size);
	close(ra->stop_fd);
	free(ra);
}
