// SPDX-License-Identifier: GPL-2.0
/*
 * Pipes and FIFOs. Every description of one pipe object (both ends, in
 * any task) gets the same pipe_id, so the restore makes one pipe. The
 * data queued in it is copied without taking it out: a new read end of
 * the same pipe (opening /proc/PID/fd/N works whichever end the task
 * holds) is tee(2)d into a private pipe of the same size, and written
 * once, to pipes-data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

#define CHUNK (1u << 20)

struct pipe_obj {
	dev_t dev;
	ino_t ino;
	char *data;
	size_t len;
	bool fifo, reader, writer; /* the ends the tree holds */
	pid_t pid;		   /* one holder and its fd, for messages */
	int fd;
};

static struct pipe_obj *pipes;
static size_t nr_pipes;

static bool ends_deleted(const char *link)
{
	size_t len = strlen(link);

	return len > 10 && !strcmp(link + len - 10, " (deleted)");
}

/* The size of the pipe behind src and the bytes queued in it, which are
 * left where they are. */
static int read_queued(const struct fd_src *src, struct pipe_obj *p, int *sizep)
{
	char path[64];
	int in, tmp[2] = {-1, -1}, queued = 0, ret = -1, size;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", src->pid, src->fd);
	in = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (in < 0) {
		pr_perror("cannot open a read end of %s (fd %d of task %d)", src->link, src->fd,
			  src->pid);
		return -1;
	}
	size = *sizep = fcntl(in, F_GETPIPE_SZ);
	if (size < 0 || ioctl(in, FIONREAD, &queued) || queued < 0) {
		pr_perror("cannot count the bytes queued in %s", src->link);
		goto out;
	}
	if (!queued) {
		ret = 0;
		goto out;
	}
	/* tee copies buffer by buffer: the copy needs as many slots */
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) ||
	    (fcntl(tmp[1], F_GETPIPE_SZ) < size && fcntl(tmp[1], F_SETPIPE_SZ, size) < 0)) {
		pr_perror("cannot make a pipe of %d bytes to copy %s", size, src->link);
		goto out;
	}
	n = tee(in, tmp[1], queued, SPLICE_F_NONBLOCK);
	if (n != queued) {
		pr_err("fd %d of task %d: copied %zd of the %d bytes queued in %s", src->fd,
		       src->pid, n, queued, src->link);
		goto out;
	}
	p->data = xmalloc(queued);
	if (read_full(tmp[0], p->data, queued) != queued) {
		pr_perror("cannot read the copy of %s", src->link);
		goto out;
	}
	p->len = queued;
	ret = 0;
out:
	close(in);
	if (tmp[0] >= 0) {
		close(tmp[0]);
		close(tmp[1]);
	}
	return ret;
}

static int pipe_common(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__PipeEntry *pe = xmalloc(sizeof(*pe));
	size_t i;
	int size;

	stasis__pipe_entry__init(pe);
	fe->pipe = pe;
	pe->has_ino = true;
	pe->ino = src->st.st_ino;
	for (i = 0; i < nr_pipes; i++)
		if (pipes[i].dev == src->st.st_dev && pipes[i].ino == src->st.st_ino)
			break;
	pe->pipe_id = i + 1;
	if (i == nr_pipes) {
		pipes = xrealloc(pipes, (nr_pipes + 1) * sizeof(*pipes));
		pipes[i] = (struct pipe_obj){.dev = src->st.st_dev,
					     .ino = src->st.st_ino,
					     .fifo = fe->type == STASIS__FD_TYPE__FIFO,
					     .pid = src->pid,
					     .fd = src->fd};
	}
	pipes[i].reader |= (src->flags & O_ACCMODE) != O_WRONLY;
	pipes[i].writer |= (src->flags & O_ACCMODE) != O_RDONLY;
	if (i < nr_pipes)
		return 0; /* another end or description: data already taken */
	if (read_queued(src, &pipes[nr_pipes], &size))
		return -1;
	pe->has_size = pe->has_bytes = true;
	pe->size = size;
	pe->bytes = pipes[nr_pipes].len;
	nr_pipes++;
	return 0;
}

static bool pipe_match(const struct fd_src *src)
{
	return S_ISFIFO(src->st.st_mode) && !strncmp(src->link, "pipe:[", 6);
}

static int pipe_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	fe->type = STASIS__FD_TYPE__PIPE;
	return pipe_common(src, fe);
}

const struct fd_dump_ops pipe_dump_ops = {"pipe", pipe_match, pipe_dump};

static bool fifo_match(const struct fd_src *src)
{
	return S_ISFIFO(src->st.st_mode) && src->link[0] == '/';
}

static int fifo_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	/* unlinked: the restore makes it again, opens it and unlinks it */
	if (ends_deleted(src->link)) {
		fe->has_ghost = true;
		if (ghost_collect_fd(src, &fe->ghost))
			return -1;
	}
	fe->type = STASIS__FD_TYPE__FIFO;
	return pipe_common(src, fe);
}

const struct fd_dump_ops fifo_dump_ops = {"FIFO", fifo_match, fifo_dump};

int pipes_write(struct img_writer *w)
{
	/* the other end of such a pipe is closed or outside the tree: in the
	 * second case the restored pipe lacks a peer it had (CRIU's
	 * --inherit-fd is how one would give it back) */
	for (size_t i = 0; i < nr_pipes; i++)
		if (!pipes[i].fifo && pipes[i].reader != pipes[i].writer)
			pr_warn("fd %d of task %d: pipe:[%lu] has no %s end in the tree; if a "
				"process outside holds one, the restored pipe will not have it",
				pipes[i].fd, pipes[i].pid, (unsigned long)pipes[i].ino,
				pipes[i].reader ? "write" : "read");
	for (size_t i = 0; i < nr_pipes; i++)
		for (size_t off = 0; off < pipes[i].len; off += CHUNK) {
			Stasis__DataChunk c = STASIS__DATA_CHUNK__INIT;
			size_t n = pipes[i].len - off < CHUNK ? pipes[i].len - off : CHUNK;

			c.id = i + 1;
			c.offset = off;
			c.data.len = n;
			c.data.data = (uint8_t *)pipes[i].data + off;
			if (imgw_record(w, "pipes-data", &c.base))
				return -1;
		}
	return 0;
}
