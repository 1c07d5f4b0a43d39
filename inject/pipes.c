// SPDX-License-Identifier: GPL-2.0
/*
 * Pipes and FIFOs on restore. The first description of a pipe_id makes
 * the object: a new pipe (or the FIFO opened read-write by its path,
 * which never blocks), its size set and its data written back. stasis-inject
 * holds it open meanwhile, and every description, whichever end, is a new
 * open of /proc/self/fd/HOLDER with the dumped flags, so that each is its
 * own open file description and none blocks. The holders are closed once
 * the last description of the object is open: a reader must see end of
 * file when the tree's writers are gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

struct rpipe {
	uint32_t id;
	int rd, wr;	/* holders; the same descriptor for a FIFO */
	bool made;	/* rd and wr are open (until released) */
	bool rd_given, wr_given; /* the holder's own description went to the tree */
	unsigned left;	/* descriptions still to open */
	uint32_t size;	/* F_SETPIPE_SZ, 0 if unknown */
	uint64_t bytes; /* queued at the dump, in pipes-data */
};

static struct rpipe *rpipes;
static size_t nr_rpipes;
static bool loaded;

/* Every pipe object of the files image, in one pass: how many descriptions
 * it has, and its size and queued bytes (from the one that carries them). */
static void load(void)
{
	unsigned n = records_count("files");

	loaded = true;
	for (unsigned i = 0; i < n; i++) {
		Stasis__FileEntry *fe = records_get("files", i, &stasis__file_entry__descriptor);
		struct rpipe *p = NULL;

		if (fe && fe->pipe &&
		    (fe->type == STASIS__FD_TYPE__PIPE || fe->type == STASIS__FD_TYPE__FIFO)) {
			for (size_t j = 0; j < nr_rpipes && !p; j++)
				if (rpipes[j].id == fe->pipe->pipe_id)
					p = &rpipes[j];
			if (!p) {
				rpipes = xrealloc(rpipes, (nr_rpipes + 1) * sizeof(*rpipes));
				p = &rpipes[nr_rpipes++];
				*p = (struct rpipe){.id = fe->pipe->pipe_id, .rd = -1, .wr = -1};
			}
			p->left++;
			if (fe->pipe->has_size)
				p->size = fe->pipe->size;
			if (fe->pipe->has_bytes)
				p->bytes = fe->pipe->bytes;
		}
		if (fe)
			protobuf_c_message_free_unpacked(&fe->base, NULL);
	}
}

/* The queued data back into the pipe, through wr (non-blocking). */
static int fill(struct rpipe *p, const char *what, uint64_t bytes)
{
	unsigned n = records_count("pipes-data");
	uint64_t done = 0;

	for (unsigned i = 0; i < n && done < bytes; i++) {
		Stasis__DataChunk *c =
		    records_get("pipes-data", i, &stasis__data_chunk__descriptor);
		int ret = 0;

		if (!c)
			return -1;
		if (c->id == p->id) {
			if (c->offset != done || c->data.len > bytes - done) {
				pr_err("%s: the data in the checkpoint is out of order", what);
				ret = -1;
			} else if (write_full(p->wr, c->data.data, c->data.len)) {
				pr_perror("%s: cannot put back %llu bytes of data", what,
					  (unsigned long long)bytes);
				ret = -1;
			}
			done += c->data.len;
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
		if (ret)
			return -1;
	}
	if (done != bytes) {
		pr_err("%s: the checkpoint lacks %llu of its %llu bytes of data", what,
		       (unsigned long long)(bytes - done), (unsigned long long)bytes);
		return -1;
	}
	return 0;
}

static int make(struct rpipe *p, Stasis__FileEntry *fe)
{
	bool fifo = fe->type == STASIS__FD_TYPE__FIFO;
	char what[4200];
	int size;

	snprintf(what, sizeof(what), "%s %s", fifo ? "FIFO" : "pipe", fe->path);
	p->made = true;
	if (fifo) {
		struct stat st;

		/* an unlinked one is made again, held and unlinked (ghost.c) */
		p->rd = p->wr = fe->has_ghost ? ghost_reopen(fe->ghost, O_RDWR | O_NONBLOCK)
					      : open(fe->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (p->rd < 0) {
			pr_perror("cannot open the FIFO %s", fe->path);
			return -1;
		}
		if (fstat(p->rd, &st) || !S_ISFIFO(st.st_mode)) {
			pr_err("%s is not a FIFO any more", fe->path);
			return -1;
		}
	} else {
		int fds[2];

		if (pipe2(fds, O_CLOEXEC | O_NONBLOCK)) {
			pr_perror("cannot create a pipe");
			return -1;
		}
		p->rd = fds[0];
		p->wr = fds[1];
	}
	size = fcntl(p->wr, F_GETPIPE_SZ);
	if (p->size && p->size != (uint32_t)size &&
	    (size = fcntl(p->wr, F_SETPIPE_SZ, p->size)) < 0) {
		size = fcntl(p->wr, F_GETPIPE_SZ);
		if (p->bytes > (uint64_t)size) {
			pr_perror("%s: cannot make it %u bytes large again", what, p->size);
			return -1;
		}
		pr_warn("%s: cannot make it %u bytes large again (%s); it stays at %d", what,
			p->size, strerror(errno), size);
	}
	return p->bytes ? fill(p, what, p->bytes) : 0;
}

static void release(struct rpipe *p)
{
	if (p->rd >= 0)
		close(p->rd);
	if (p->wr >= 0 && p->wr != p->rd)
		close(p->wr);
	p->rd = p->wr = -1;
}

static int pipe_open(Stasis__FileEntry *fe)
{
	int flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY | O_CLOEXEC);
	struct rpipe *p = NULL;
	char path[64];
	bool wr, *given;
	int fd;

	if (!fe->pipe) {
		pr_err("file %u (%s) lacks its pipe record", fe->id, fe->path);
		return -1;
	}
	if (!loaded)
		load();
	for (size_t i = 0; i < nr_rpipes && !p; i++)
		if (rpipes[i].id == fe->pipe->pipe_id)
			p = &rpipes[i];
	if (!p || (p->made && p->rd < 0)) {
		pr_err("file %u (%s): more descriptions of the pipe than the checkpoint counts",
		       fe->id, fe->path);
		return -1;
	}
	if (!p->made && make(p, fe))
		return -1;
	wr = (flags & O_ACCMODE) == O_WRONLY;
	given = wr ? &p->wr_given : &p->rd_given;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", wr ? p->wr : p->rd);
	if (fe->type == STASIS__FD_TYPE__PIPE && !(flags & O_LARGEFILE) && !*given) {
		/* the end pipe() made: an open of it would add O_LARGEFILE,
		 * which F_SETFL cannot take away */
		*given = true;
		fd = fcntl(wr ? p->wr : p->rd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0 || fcntl(fd, F_SETFL, flags)) {
			pr_perror("cannot give %s the end pipe() made", fe->path);
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
	} else {
		fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			pr_perror("cannot open %s %s again",
				  fe->type == STASIS__FD_TYPE__FIFO ? "FIFO" : "pipe", fe->path);
		else if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags)) {
			pr_perror("cannot set the flags of %s", fe->path);
			close(fd);
			fd = -1;
		}
	}
	if (p->left)
		p->left--;
	if (!p->left)
		release(p);
	return fd;
}

const struct fd_restore_ops pipe_restore_ops = {STASIS__FD_TYPE__PIPE, pipe_open, NULL};
const struct fd_restore_ops fifo_restore_ops = {STASIS__FD_TYPE__FIFO, pipe_open, NULL};
